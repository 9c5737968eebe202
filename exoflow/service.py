"""A long-lived cluster: ``exoflow cluster start|status|stop|logs``.

``start`` runs ``dask scheduler --preload exoflow.dashboard``, ``dask worker`` and exoflow's warm
driver (exoflow/driver.py: runs are handed to it) as background processes (a new session each,
stdio to log files) and records them in the state directory (``state_dir()``):

    cluster.json     the state: address, each process's pid, start time and command marker, the
                     options, when it started, the client's TLS files
    scheduler.json   Dask's scheduler file (``exoflow run --scheduler-file``, ``dask worker
                     --scheduler-file``)
    driver.sock      the driver's Unix socket (mode 0600)
    logs/            scheduler.log, workers.log, driver.log (kept after ``stop``, replaced by the next start)
    tls/             ``--tls``: the private CA's certificate, and a certificate and key per role

A process is ours only while its pid, its start time (psutil's create_time) and its command
line match the state: a pid the system gave to another process since is never signalled, and
a state whose scheduler is gone is stale: reported, its remaining processes ended, removed.

How a run finds the cluster: exoflow/discovery.py.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

from exoflow.discovery import (DRIVER, DRIVER_SOCKET, SCHEDULER, SCHEDULER_FILE, STATE_FILE, WORKERS, live, ours,
                               read_state, running, scheduler_file_address, security, state_dir, state_path)
from exoflow.errors import EXIT_OK, UsageError
from exoflow.fileio import atomic_write
from exoflow.submit import supported

# what each process's command line holds (a pid reused by another program does not)
MARKERS = {SCHEDULER: "distributed.cli.dask_scheduler", WORKERS: "distributed.cli.dask_worker",
           DRIVER: "exoflow.driver"}
CUDA_WORKERS = "dask cuda worker"     # --backend gpu: dask-cuda's workers, one per GPU (python -m dask cuda worker)
START_TIMEOUT = 60.0      # seconds for the scheduler to answer and every worker to join
STOP_TIMEOUT = 10.0       # seconds between SIGTERM and SIGKILL


def _write_state(state: dict) -> None:
    with atomic_write(state_path(STATE_FILE)) as f:
        json.dump(state, f, indent=2)


def _remove_state() -> None:
    for name in (STATE_FILE, SCHEDULER_FILE, DRIVER_SOCKET):
        try:
            os.unlink(state_path(name))
        except FileNotFoundError:
            pass
    shutil.rmtree(state_path("tls"), ignore_errors=True)


def _record(pid: int, marker: str) -> dict:
    import psutil
    return {"pid": pid, "create_time": psutil.Process(pid).create_time(), "marker": marker}


def _end(state: dict) -> int:
    """End the state's processes that are still ours, and their descendants; returns how many."""
    import psutil
    procs = []
    for entry in state.get("processes", {}).values():
        p = ours(entry)
        if p is not None:
            try:
                procs += [p, *p.children(recursive=True)]
            except psutil.Error:
                procs.append(p)
    for p in procs:
        try:
            p.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(procs, timeout=STOP_TIMEOUT)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=STOP_TIMEOUT)
    return len(procs)


def clean_stale() -> str | None:
    """When the state's scheduler is gone (or the state unreadable): end what is left of its
    processes, remove the state and say so; None when there is no state or it is live."""
    state = read_state()
    if state is None or (state and live(state)):
        return None
    _end(state)
    _remove_state()
    pid = state.get("processes", {}).get(SCHEDULER, {}).get("pid", "?") if state else "?"
    return f"removed a stale cluster state (its scheduler, pid {pid}, is gone)"


# ---- exoflow cluster start ------------------------------------------------------------

def _parser(prog: str, description: str):
    from exoflow.errors import Parser
    return Parser(prog=prog, description=description)


def _start_parser():
    from exoflow.cluster import memory_limit_argument
    from exoflow.options import dashboard_address, positive
    p = _parser("exoflow cluster start", "Start a Dask scheduler (with exoflow's dashboard page), workers and a "
                "warm driver in the background; 'exoflow run' hands its runs to the driver and uses them until "
                "'exoflow cluster stop'.")
    p.add_argument("--workers", type=positive, metavar="N",
                   help="worker processes (default: CPU cores; with --backend gpu: one per GPU)")
    p.add_argument("--threads-per-worker", type=positive, metavar="N",
                   help="threads per worker (default: 1; with --backend gpu: CPU cores / workers)")
    p.add_argument("--memory-limit", type=memory_limit_argument, default="auto", metavar="SIZE",
                   help="memory per worker before spilling to disk: a size (4GiB), a fraction of the machine's "
                        "memory (0.5) or auto (default: the machine's memory shared by the workers)")
    p.add_argument("--dashboard", type=dashboard_address, default="127.0.0.1:8787", metavar="HOST:PORT",
                   help="dashboard address (default: 127.0.0.1:8787; another port if taken)")
    p.add_argument("--no-dashboard", action="store_const", const="", dest="dashboard", help="no dashboard")
    p.add_argument("--host", default="127.0.0.1",
                   help="address the scheduler listens on (default: 127.0.0.1; 0.0.0.0 for workers on other hosts)")
    p.add_argument("--port", type=int, default=0, help="scheduler port (default: 0, any free port)")
    p.add_argument("--backend", choices=("cpu", "gpu"), default="cpu",
                   help="gpu: dask-cuda workers, one per GPU, spilling GPU -> host -> disk, advertising the GPU "
                        "resource that --backend gpu runs ask for")
    p.add_argument("--idle-timeout", metavar="DURATION",
                   help="stop the cluster after DURATION (30min, 2h) without a task; default: never")
    p.add_argument("--tls", action="store_true",
                   help="make a private CA and certificates and run on tls:// (runs pick them up from the state)")
    return p


def _dask_env() -> dict[str, str]:
    """The environment of the cluster's processes: exoflow/dask.yaml's settings as DASK_* variables,
    but those the user set otherwise (``cluster.exoflow_settings``)."""
    from exoflow.cluster import exoflow_settings
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    for key, value in exoflow_settings().items():
        env["DASK_" + key.upper().replace(".", "__").replace("-", "_")] = str(value)
    return env


def _spawn(cmd: list[str], log: str, env: dict) -> subprocess.Popen:
    """A detached process: its own session, no terminal, stdout and stderr to ``log``."""
    with open(log, "wb") as out:
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True, env=env, cwd=state_dir())


def _last_line(log: str) -> str:
    try:
        with open(log, encoding="utf-8", errors="replace") as f:
            lines = [ln.strip() for ln in f if ln.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


def _commands(args: argparse.Namespace, workers: int, threads: int, memory: int,
              tls: dict | None) -> tuple[list[str], list[str]]:
    py = [sys.executable, "-m"]
    sched = [*py, MARKERS[SCHEDULER], "--host", args.host, "--port", str(args.port),
             "--scheduler-file", state_path(SCHEDULER_FILE), "--preload", "exoflow.dashboard",
             "--preload", "exoflow._preload"]     # what runs' calls on the scheduler unpickle, imported at start
    sched += ["--dashboard-address", args.dashboard] if args.dashboard else ["--no-dashboard"]
    if args.idle_timeout:
        sched += ["--idle-timeout", args.idle_timeout]
    if args.backend == "gpu":        # one per GPU, with exoflow.gpu's memory tiers
        from exoflow import gpu
        work = [*py, *CUDA_WORKERS.split(), "--scheduler-file", state_path(SCHEDULER_FILE),
                *gpu.worker_flags(threads, memory)]
    else:
        work = [*py, MARKERS[WORKERS], "--scheduler-file", state_path(SCHEDULER_FILE), "--nworkers", str(workers),
                "--nthreads", str(threads), "--memory-limit", str(memory)]
    work += ["--no-dashboard", "--death-timeout", f"{START_TIMEOUT:g}s", "--name", "exoflow",
             "--preload", "exoflow._preload"]       # warm at start: a first run does not wait for their imports
    if tls:
        sched += ["--protocol", "tls", "--tls-ca-file", tls[SCHEDULER].ca, "--tls-cert", tls[SCHEDULER].cert,
                  "--tls-key", tls[SCHEDULER].key]
        work += ["--protocol", "tls", "--tls-ca-file", tls["worker"].ca, "--tls-cert", tls["worker"].cert,
                 "--tls-key", tls["worker"].key]
    return sched, work


def _check_start(args: argparse.Namespace) -> tuple[int, int, int]:
    """(workers, threads each, memory bytes each); UsageError for options that cannot work."""
    from dask.utils import parse_timedelta

    from exoflow.cluster import check_memory_limit, worker_shape
    from exoflow.options import ClusterOptions
    if args.idle_timeout is not None:
        try:
            if parse_timedelta(args.idle_timeout, default="seconds") <= 0:
                raise ValueError
        except (ValueError, TypeError, KeyError):
            raise UsageError(f"--idle-timeout {args.idle_timeout!r}: expected a duration such as 30min or 2h") \
                from None
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port}: expected 0 to 65535")
    if args.backend == "gpu":
        from exoflow import gpu
        gpu.check()
        if args.workers:
            raise UsageError("--workers: with --backend gpu there is one worker per GPU "
                             "(choose the GPUs with CUDA_VISIBLE_DEVICES)")
    workers, threads = worker_shape(ClusterOptions(workers=args.workers, threads_per_worker=args.threads_per_worker,
                                                   resources={"GPU": 1} if args.backend == "gpu" else None))
    return workers, threads, check_memory_limit(args.memory_limit, threads, workers)


def _client(state: dict, timeout: float = 5):
    from distributed import Client
    from exoflow.options import ClusterOptions
    t = state.get("tls") or {}
    opts = ClusterOptions(scheduler=state["address"], tls_ca_file=t.get("ca"), tls_cert=t.get("cert"),
                          tls_key=t.get("key"))
    return Client(state["address"], security=security(opts), timeout=timeout)


def _wait_until_up(state: dict, procs: dict[str, subprocess.Popen], workers: int) -> None:
    """Return once ``workers`` workers have joined and the driver listens; UsageError (why, in
    words) when a process ends or START_TIMEOUT passes first."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        for role, p in procs.items():
            if p.poll() is not None:
                line = _last_line(state_path("logs", f"{role}.log"))
                raise UsageError(f"the {role} process ended (exit {p.returncode})" + (f": {line}" if line else ""))
        if os.path.exists(state_path(SCHEDULER_FILE)):
            if "address" not in state:
                state["address"] = scheduler_file_address(state_path(SCHEDULER_FILE))
            try:
                with _client(state, timeout=2) as c:
                    if len(c.scheduler_info(n_workers=-1)["workers"]) >= workers \
                            and (DRIVER not in procs or os.path.exists(state_path(DRIVER_SOCKET))):
                        return
            except (OSError, TimeoutError):
                pass
        if time.monotonic() > deadline:
            raise UsageError(f"{workers} workers did not join (or the driver did not listen) within "
                             f"{START_TIMEOUT:g} s")
        time.sleep(0.2)


def start(argv: list[str]) -> int:
    """``exoflow cluster start``: the scheduler and workers, running once this returns 0."""
    args = _start_parser().parse_args(argv)
    workers, threads, memory = _check_start(args)
    live = running()
    if live:
        raise UsageError(f"an exoflow cluster is already running at {live.get('address')} "
                         "(see 'exoflow cluster status'; 'exoflow cluster stop' ends it)")
    stale = clean_stale()
    if stale:
        print(f"exoflow cluster: {stale}", file=sys.stderr)
    os.makedirs(state_dir(), mode=0o700, exist_ok=True)     # the user's own: pids, addresses, keys
    os.makedirs(state_path("logs"), mode=0o700, exist_ok=True)
    tls = None
    if args.tls:
        import socket

        from exoflow import tls as tls_files
        hosts = ["127.0.0.1", "localhost", socket.gethostname()] + ([] if args.host in ("0.0.0.0", "::") else [args.host])
        tls = tls_files.make(state_path("tls"), hosts)
    sched_cmd, worker_cmd = _commands(args, workers, threads, memory, tls)
    env = _dask_env()
    state: dict = {"started": time.time(), "processes": {}, "tls": tls and tls["client"]._asdict(),
                   "options": {"workers": workers, "threads_per_worker": threads, "memory_limit": memory,
                               "dashboard": args.dashboard, "host": args.host, "backend": args.backend,
                               "idle_timeout": args.idle_timeout, "tls": args.tls}}
    procs: dict[str, subprocess.Popen] = {}
    try:
        def launch(role: str, cmd: list[str], env: dict) -> None:
            procs[role] = _spawn(cmd, state_path("logs", f"{role}.log"), env)
            marker = CUDA_WORKERS if role == WORKERS and args.backend == "gpu" else MARKERS[role]
            state["processes"][role] = _record(procs[role].pid, marker)
            _write_state(state)           # from now on, a start cut short is a stale state, cleaned

        launch(SCHEDULER, sched_cmd, env)
        launch(WORKERS, worker_cmd, env)
        if supported():   # the driver ends with the scheduler (an --idle-timeout); its runs read the user's Dask settings
            launch(DRIVER, [sys.executable, "-m", MARKERS[DRIVER], state_path(DRIVER_SOCKET),
                            str(procs[SCHEDULER].pid)], dict(os.environ))
        _wait_until_up(state, procs, workers)
        _write_state(state)
    except BaseException as e:
        _end(state)
        _remove_state()
        if isinstance(e, UsageError):
            raise UsageError(f"the cluster did not start: {e} (logs: {state_path('logs')})") from None
        raise
    return _print_status(state, as_json=False)


# ---- status, stop, logs ------------------------------------------------------------------

def _scheduler_facts(dask_scheduler=None) -> dict:
    """On the scheduler: runs the exoflow plugin has seen end and those running."""
    plugin = dask_scheduler.plugins.get("exoflow")
    if plugin is None:
        return {"runs_done": None, "runs_running": None}
    return {"runs_done": plugin.runs_ended, "runs_running": sum(r.status == "running" for r in plugin.runs.values())}


def describe(state: dict) -> dict:
    """What ``status`` reports of a live state: address, URLs, workers, threads, memory, uptime, runs.
    Raises OSError/TimeoutError when the scheduler does not answer."""
    from exoflow import cluster
    with _client(state) as c:
        where = cluster.describe(c)
        ws = c.scheduler_info(n_workers=-1).get("workers", {}).values()
        facts = c.run_on_scheduler(_scheduler_facts)
    return {"running": True, "address": state["address"], "dashboard": where["dashboard"],
            "exoflow_page": where["exoflow_page"], "scheduler_file": state_path(SCHEDULER_FILE),
            "tls": bool(state.get("tls")), "workers": where["workers"], "threads": where["threads"],
            "memory_limit": sum(w.get("memory_limit") or 0 for w in ws),
            "uptime_s": round(time.time() - state["started"], 1), **facts,
            "pids": {role: e["pid"] for role, e in state["processes"].items()}, "logs": state_path("logs")}


def _print_status(state: dict, as_json: bool, note: str | None = None) -> int:
    from dask.utils import format_bytes, format_time
    facts = describe(state)
    if note:
        facts["note"] = note
    if as_json:
        print(json.dumps(facts, indent=2))
        return EXIT_OK
    rows = [("address", facts["address"] + (" (TLS: runs here use the cluster's certificates)" if facts["tls"] else "")),
            ("dashboard", facts["dashboard"] or "none"), ("exoflow page", facts["exoflow_page"] or "none"),
            ("workers", f"{facts['workers']} ({facts['threads']} threads, {format_bytes(facts['memory_limit'])} "
                        "memory limit in all)"),
            ("uptime", format_time(facts["uptime_s"])),
            ("runs done", "?" if facts["runs_done"] is None else f"{facts['runs_done']}"
             + (f" ({facts['runs_running']} running)" if facts["runs_running"] else "")),
            ("scheduler file", facts["scheduler_file"]), ("logs", facts["logs"])]
    print("\n".join(f"{k + ':':<16}{v}" for k, v in rows))
    return EXIT_OK


def status(argv: list[str]) -> int:
    """``exoflow cluster status [--json]``: 0 when a cluster runs and answers, 1 otherwise."""
    p = _parser("exoflow cluster status", "Where the running exoflow cluster is and what it holds.")
    p.add_argument("--json", action="store_true", help="print a JSON object")
    args = p.parse_args(argv)
    stale = clean_stale()
    state = running()
    if state is None:
        facts = {"running": False, **({"note": stale} if stale else {})}
        print(json.dumps(facts) if args.json else "\n".join(filter(None, [stale, "no exoflow cluster is running"])))
        return 1
    try:
        return _print_status(state, args.json)
    except (OSError, TimeoutError) as e:
        raise UsageError(f"the cluster's scheduler (pid {state['processes'][SCHEDULER]['pid']}) runs but does "
                         f"not answer at {state['address']}: {e} (see 'exoflow cluster logs')") from None


def stop(argv: list[str]) -> int:
    """``exoflow cluster stop``: end the processes ``start`` started (only those), remove the state."""
    _parser("exoflow cluster stop", "Stop the exoflow cluster that 'exoflow cluster start' started.").parse_args(argv)
    stale = clean_stale()
    state = running()
    if state is None:
        print(stale or "no exoflow cluster is running")
        return EXIT_OK
    n = _end(state)
    _remove_state()
    print(f"stopped the exoflow cluster at {state['address']} ({n} processes)")
    return EXIT_OK


def logs(argv: list[str]) -> int:
    """``exoflow cluster logs [-n N]``: the last lines of the scheduler's and the workers' logs."""
    from exoflow.options import count_at_least
    p = _parser("exoflow cluster logs", "The last lines of the cluster's log files (kept after stop).")
    p.add_argument("-n", "--lines", type=count_at_least(1), default=20, metavar="N",
                   help="lines per file (default: 20)")
    args = p.parse_args(argv)
    found = [r for r in (SCHEDULER, WORKERS) if os.path.exists(state_path("logs", f"{r}.log"))]
    if not found:
        print(f"no cluster logs in {state_path('logs')}")
        return 1
    for i, role in enumerate(found):
        log = state_path("logs", f"{role}.log")
        with open(log, encoding="utf-8", errors="replace") as f:
            tail = f.readlines()[-args.lines:]
        print(("\n" if i else "") + f"==> {log} <==")
        sys.stdout.write("".join(tail))
    return EXIT_OK


COMMANDS = {"start": start, "status": status, "stop": stop, "logs": logs}


def main(argv: list[str]) -> int:
    """``exoflow cluster COMMAND ...``."""
    if not argv or argv[0] not in COMMANDS:
        given = f"unknown command {argv[0]!r}" if argv and not argv[0].startswith("-") else "a command is needed"
        if argv and argv[0] in ("-h", "--help"):
            print("usage: exoflow cluster {start,status,stop,logs} [options] (see exoflow cluster COMMAND --help)")
            return EXIT_OK
        raise UsageError(f"{given}: exoflow cluster start|status|stop|logs")
    return COMMANDS[argv[0]](argv[1:])
