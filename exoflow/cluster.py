"""The Dask cluster a run uses: an embedded LocalCluster, or an existing scheduler."""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import ssl
import threading
import time
import warnings
from typing import TYPE_CHECKING, Iterator

import dask
import yaml
import distributed  # noqa: F401  (its config defaults must be loaded before any dask.config.set)
from dask.utils import format_bytes, key_split, parse_timedelta

from exoflow import forkserver
from exoflow.options import ClusterOptions
from exoflow.errors import UsageError, held_interrupts
from exoflow.summary import ClusterInfo

if TYPE_CHECKING:
    from distributed import Client



def _dotted(tree: dict, prefix: str = "") -> Iterator[tuple[str, object]]:
    """A nested config as ("distributed.worker.memory.target", 0.6) pairs, what dask.config.set
    takes without replacing the rest of each section."""
    for k, v in tree.items():
        if isinstance(v, dict):
            yield from _dotted(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


# Memory tiers (spill, pause, terminate) and work stealing: exoflow/dask.yaml, the one source,
# also given to real clusters (cluster/dask.yaml links to it); a user's own Dask settings win
# (exoflow_settings).
with open(os.path.join(os.path.dirname(__file__), "dask.yaml"), encoding="utf-8") as _f:
    WORKER_CONFIG = dict(_dotted(yaml.safe_load(_f)))


def user_set(key: str) -> bool:
    """Whether the Dask setting ``key`` holds a value of the user's (a DASK_* variable, a Dask
    configuration file, dask.config.set), not Dask's default."""
    return dask.config.get(key, None) != dask.config.get(key, None, dask.config.merge(*dask.config.defaults))


def exoflow_settings() -> dict[str, object]:
    """WORKER_CONFIG less the settings the user gave a value of their own (``user_set``): theirs win.
    One left at Dask's default value takes exoflow's."""
    return {k: v for k, v in WORKER_CONFIG.items() if not user_set(k)}


# A worker process that has not joined the scheduler after this many seconds is a failed start
# (one line, exit 2), never a wait without end; it bounds a worker restarted later in a run too.
START_TIMEOUT = 60.0
# --scheduler: how long to wait for an answer unless distributed.comm.timeouts.connect is set
CONNECT_TIMEOUT = "10s"
# The least memory a worker can run with: an idle worker process (Python, Dask, Arrow, pandas)
# holds about 90 MiB, 130-150 MiB once it has run tasks, and pauses at 85% of its limit.
MIN_WORKER_MEMORY = 200 * 2**20
# No task running anywhere while workers paused at their memory limit hold the tasks, nothing
# spilled and no worker come or gone for this long: no task can start again (Dask would wait
# for ever), so the run stops (see ``stuck``).
STALL_SECONDS = 5.0
WATCH_INTERVAL = 1.0
# Dask's note that a limit above the machine's memory is lowered to it: the workers use the lower one
_QUIET = logging.getLogger("exoflow.memory-limit")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


def gpu_run(opts: ClusterOptions) -> bool:
    """Whether the embedded cluster's workers are dask-cuda GPU workers (--backend gpu)."""
    return bool(opts.resources and "GPU" in opts.resources)


def worker_shape(opts: ClusterOptions) -> tuple[int, int]:
    """(worker processes, threads each) of the embedded cluster. GPU workers: one per GPU (each
    opens its own CUDA context), the cores shared among them: a worker advertises GPU=1, so one
    chunk task at a time runs on its GPU while its other threads list."""
    cores = os.cpu_count() or 1
    if gpu_run(opts):
        from exoflow.gpu import gpu_count
        workers = opts.workers or max(1, gpu_count())
        return workers, opts.threads_per_worker or max(1, cores // workers)
    return opts.workers or cores, opts.threads_per_worker or 1


def memory_limit_bytes(limit: str, threads: int = 1, workers: int = 1) -> int:
    """Bytes per worker for ``--memory-limit``, as Dask's workers read it: 'auto' (the machine's memory
    shared by ``workers``), a fraction of the machine's memory (0.5), or a size ('4GiB', '1500').
    Raises ValueError for anything else (a negative number, a fraction above 1, 'lots')."""
    from distributed.worker_memory import parse_memory_limit
    if limit == "auto":
        limit = str(1 / workers)
    try:
        number: float | None = float(limit)
    except ValueError:
        number = None                      # a size with a unit
    if number is not None and (number < 0 or (number > 1 and not number.is_integer())):
        raise ValueError(limit)            # Dask would read "1.5" as 1 byte
    return parse_memory_limit(limit, threads, logger=_QUIET) or 0


def check_memory_limit(limit: str, threads: int = 1, workers: int = 1) -> int:
    """Bytes per worker (see memory_limit_bytes); raises UsageError below MIN_WORKER_MEMORY."""
    try:
        n = memory_limit_bytes(limit, threads, workers)
    except (ValueError, TypeError):       # Dask's parse_bytes: either
        raise UsageError(f"{limit!r} is not a memory size (examples: auto, 0.5, 4GiB)") from None
    if n < MIN_WORKER_MEMORY:
        given = (f"the machine's memory shared by {workers} workers is {format_bytes(n)} each (use fewer --workers)"
                 if limit == "auto" else f"{limit} is {format_bytes(n)} per worker")
        raise UsageError(f"{given}, below the {format_bytes(MIN_WORKER_MEMORY)} a worker process needs to run "
                         "(it holds 90-150 MiB before any data, and pauses at 85% of its limit)")
    return n


def memory_limit_argument(text: str) -> str:
    """The argparse type of --memory-limit: 'auto', a fraction of the machine's memory (0.5), or a
    size (4GiB); at least what a worker needs ('auto' is checked when the number of workers is known)."""
    if text != "auto":
        try:
            check_memory_limit(text)
        except UsageError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return text


@contextlib.contextmanager
def connect(opts: ClusterOptions) -> Iterator[Client]:
    """Yield a Client to the cluster ``exoflow.service.discover(opts)`` picks (--scheduler,
    --scheduler-file, Dask's scheduler-address, a running ``exoflow cluster``, else an embedded one);
    the embedded cluster lives exactly as long as the block.

    Raises UsageError (one line) when ``--scheduler`` is not a Dask scheduler that answers within
    the connect timeout, when the embedded cluster cannot start (a memory limit below
    MIN_WORKER_MEMORY, a worker not joining within START_TIMEOUT), and when the block fails because
    the workers ran out of memory (see ``watch_memory``)."""
    from exoflow.discovery import discover
    opts = discover(opts)
    with dask.config.set(exoflow_settings()):
        cluster = _remote(opts) if opts.scheduler else _local(opts)
        with cluster as client, watch_memory(client, embedded=not opts.scheduler):
            _prompt(client)
            yield client


# Dask's client sends the scheduler its messages (tasks, released results) in batches at least
# 10 ms apart (hard-coded), so a task submitted just after another message waits up to 10 ms. The
# scheduler answers clients in batches 2 ms apart; the client does the same (an empty run on a
# running cluster: 119 ms against 109 ms, median of 20).
CLIENT_BATCH_INTERVAL = 0.002


def _prompt(client: Client) -> None:
    comm = getattr(client, "scheduler_comm", None)     # a distributed.batched.BatchedSend
    if isinstance(getattr(comm, "interval", None), float):
        comm.interval = min(comm.interval, CLIENT_BATCH_INTERVAL)


def connect_timeout() -> float:
    """Seconds: Dask's ``distributed.comm.timeouts.connect`` where the user set it, else CONNECT_TIMEOUT."""
    key = "distributed.comm.timeouts.connect"
    return parse_timedelta(dask.config.get(key) if user_set(key) else CONNECT_TIMEOUT, default="seconds")


async def _identity(address: str, state: dict, security=None) -> dict:
    """The ``identity`` answer of whatever listens at ``address``; ``state`` says how far it got."""
    from distributed.comm import connect as open_comm
    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.security import Security
    scheme, location = parse_address(address)
    while scheme in ("tcp", "tls"):      # reachable at all? (an unknown name fails at once)
        try:
            _, writer = await asyncio.open_connection(*parse_host_port(location))
        except ConnectionRefusedError:   # perhaps a scheduler still starting: Dask's connect retries too
            state["refused"] = True
            await asyncio.sleep(0.1)
            continue
        writer.close()
        break
    state["stage"] = "talk"
    args = (security or Security()).get_connection_args("client")
    if scheme == "tls" and args.get("ssl_context") is None:
        raise UsageError(f"--scheduler {address}: tls:// needs TLS files: --tls-ca-file, --tls-cert and --tls-key "
                         "(or Dask's distributed.comm.tls.ca-file, distributed.comm.tls.client.cert and .key)")
    if scheme == "tcp" and args.get("require_encryption"):
        raise UsageError(f"--scheduler {address}: the TLS files given are for a tls:// address")
    comm = await open_comm(address, **args)
    try:
        await comm.write({"op": "identity", "reply": True})
        return await comm.read()
    finally:
        comm.abort()


def _one_line(e: BaseException) -> str:
    if isinstance(e, ssl.SSLError):
        text = f"TLS: {e.reason or e}"
    elif isinstance(e, OSError) and (e.errno or 0) > 0:
        text = os.strerror(e.errno)             # asyncio's "Connect call failed (…)" says less
    else:
        text = getattr(e, "strerror", None) or str(e)     # a failed name lookup: its own words
    return " ".join(text.split()) or type(e).__name__


def check_scheduler(address: str, timeout: float, security=None) -> None:
    """Raise UsageError unless a Dask scheduler answers at ``address`` within ``timeout`` seconds.

    Dask's own connect reads the peer's first 8 bytes as a message length and waits for that
    many: a server of another protocol made it wait for ever (a silent one, HTTP) or allocate
    exabytes (an HTTP reply's "HTTP/1.1"). Here whatever answers gets one question, bounded in time.
    ``security``: a distributed.Security for tls:// (default: Dask's TLS settings)."""
    from distributed.comm import CommClosedError
    if not address.startswith(("tcp://", "tls://", "ucx://")):
        raise UsageError(f"--scheduler {address}: expected an address like tcp://HOST:8786")
    state = {"stage": "connect", "refused": False}
    loop = asyncio.new_event_loop()      # closed without waiting for a name lookup still in its executor
    try:
        reply = loop.run_until_complete(asyncio.wait_for(_identity(address, state, security), timeout))
    except UsageError:
        raise
    except Exception as e:    # whatever a server of another protocol makes Dask's reader do (MemoryError, …)
        if state["stage"] == "connect":
            if isinstance(e, asyncio.TimeoutError):
                why = f"connection refused for {timeout:g} s" if state["refused"] else f"no answer within {timeout:g} s"
            else:
                why = _one_line(e)
            raise UsageError(f"cannot reach scheduler {address}: {why}") from None
        if isinstance(e, asyncio.TimeoutError):
            why = f"no answer in Dask's protocol within {timeout:g} s"
        elif isinstance(e, (CommClosedError, ssl.SSLError)):
            why = f"it closed the connection without a Dask answer: {_one_line(e.__cause__ or e)}"
            if address.startswith("tcp://"):
                why += "; a TLS scheduler refuses tcp:// clients: use tls:// with its certificates"
        else:
            why = "its answer is not in Dask's protocol"
        raise UsageError(f"{address} is not a Dask scheduler ({why})") from None
    finally:
        loop.close()
    kind = reply.get("type") if isinstance(reply, dict) else None
    if kind != "Scheduler":
        raise UsageError(f"{address} is not a Dask scheduler" + (f" (it is a Dask {kind})" if kind else ""))


@contextlib.contextmanager
def _remote(opts: ClusterOptions) -> Iterator[Client]:
    from distributed import Client

    from exoflow.discovery import security
    address, sec, timeout = opts.scheduler, security(opts), connect_timeout()
    check_scheduler(address, timeout, sec)
    try:
        client = Client(address, timeout=timeout, security=sec)
    except (OSError, TimeoutError) as e:
        raise UsageError(f"cannot reach scheduler {address}: {e}") from None
    with client:
        yield client


def _start_failure(e: Exception) -> str:
    """Why LocalCluster did not start, in words; re-raises what is not a failed start (a bug)."""
    chain: BaseException | None = e
    while chain is not None:     # a worker that did not join in time surfaces from Dask's clean-up of it
        if isinstance(chain, asyncio.TimeoutError):
            return f"a worker process did not join within {START_TIMEOUT:g} s"
        chain = chain.__cause__ or chain.__context__
    if not isinstance(e, (ValueError, RuntimeError, OSError)):    # an address in use, …
        raise e
    cause = e.__cause__ or e
    return str(cause) or type(cause).__name__


@contextlib.contextmanager
def _local(opts: ClusterOptions) -> Iterator[Client]:
    from distributed import Client, LocalCluster

    workers, threads = worker_shape(opts)
    memory_limit = check_memory_limit(opts.memory_limit, threads, workers)
    # Worker processes ignore Ctrl-C (SIGINT goes to the whole process group): the client
    # catches it, cancels the tasks and shuts the cluster down in order. The fork server ignores it
    # (forkserver.start), and so do the workers it forks. One while the cluster starts is held until
    # it has started (errors.held_interrupts), then stops the run as any other does.
    with contextlib.ExitStack() as stack:
        with held_interrupts():
            with dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"}), \
                    warnings.catch_warnings():
                # a taken port is not a problem: another one is used and its URL printed
                warnings.filterwarnings("ignore", message=".*already in use")
                common = dict(
                    processes=True,
                    death_timeout=START_TIMEOUT,     # a worker that does not join in time fails the start
                    dashboard_address=opts.dashboard or None,
                    host="127.0.0.1",
                    silence_logs=logging.CRITICAL,  # task errors reach the client, which reports them in one line
                    # the exoflow page and /metrics; Dask's dashboard is attached once the run is going
                    scheduler_kwargs={"preload": ["exoflow.dashboard"], "dashboard": False},
                )
                try:
                    forkserver.start()
                    if gpu_run(opts):            # dask-cuda workers, one per GPU, settings from exoflow.gpu
                        from dask_cuda import LocalCUDACluster

                        from exoflow import gpu
                        cluster = LocalCUDACluster(**gpu.local_cluster_kwargs(workers, threads, memory_limit),
                                                   **common)
                    else:
                        cluster = LocalCluster(n_workers=workers, threads_per_worker=threads,
                                               memory_limit=memory_limit, **common)
                except Exception as e:
                    raise UsageError(f"cannot start the local cluster: {_start_failure(e)}") from None
            stack.enter_context(cluster)
            client = stack.enter_context(Client(cluster))
            stack.push(_quiet_teardown)
        if opts.dashboard != "":
            from exoflow.dashboard import attach_later
            attach_later(cluster.scheduler)
        yield client


def _quiet_teardown(exc_type, exc, tb) -> bool:
    """Interrupted or failed: the in-process scheduler may complain about comms the teardown closes
    under it; the user gets exoflow's one line instead."""
    if exc_type is not None:
        logging.getLogger("distributed").setLevel(logging.CRITICAL + 1)
    return False


class _Watch(threading.Thread):
    """From the client, every WATCH_INTERVAL: are the workers stuck at their memory limit? When they
    are (see ``stuck``) for STALL_SECONDS with nothing spilled meanwhile, the tasks given to paused
    workers go to running ones (``move_off_paused``); where none runs, it says why in ``reason``
    and cancels the client's futures here (the scheduler's tasks go with the cluster or the client),
    which ends whatever waits on them."""

    def __init__(self, client: Client, embedded: bool) -> None:
        super().__init__(name="exoflow memory watch", daemon=True)
        self.client, self.embedded = client, embedded
        self.since = time.time()          # memory restarts before the run are not its own
        self.reason: str | None = None
        self.workers: dict = {}            # as last seen with any worker (their limits, for messages)
        self.done = threading.Event()

    def run(self) -> None:
        stuck_since, seen = None, None
        while not self.done.is_set():
            try:
                workers = self.client.scheduler_info(n_workers=-1)["workers"]
            except Exception:              # the client is closing
                return
            self.workers = workers or self.workers
            # progress all the same: data spilled, a worker gone or back (a restart), or a task changed state
            # on some worker (data fetched for a task, a task released): a paused worker may wait on that
            now = (sum(w["metrics"].get("spilled_bytes", {}).get("disk", 0) for w in workers.values()), set(workers),
                   sorted((a, sorted(w["metrics"].get("task_counts", {}).items())) for a, w in workers.items()))
            if not stuck(workers, self.embedded):
                stuck_since = None
            elif stuck_since is None or now != seen:
                if stuck_since is None:     # memory that finished tasks freed may unpause a worker
                    self.release(workers)
                stuck_since, seen = time.monotonic(), now
            elif time.monotonic() - stuck_since >= STALL_SECONDS:
                if self.move_off_paused():    # a running worker takes them: progress
                    stuck_since = None
                else:
                    self.stop_run(workers)
                    stuck_since = None
            self.done.wait(WATCH_INTERVAL)

    def move_off_paused(self) -> int:
        try:
            return self.client.run_on_scheduler(move_off_paused)
        except Exception:                  # the client is closing; a scheduler without exoflow
            return 0

    def release(self, workers: dict) -> None:
        with contextlib.suppress(Exception):       # a worker gone meanwhile, the client closing
            self.client.run(release_memory, workers=list(workers))

    def stop_run(self, workers: dict) -> None:
        try:
            paused = [a for a, w in workers.items() if w["status"] == "paused"]
            # the tasks given to paused workers, else (queued on the scheduler) what this client waits for
            keys = [k for ks in self.client.processing(paused).values() for k in ks] or [
                k for k, state in list(self.client.futures.items()) if state.status == "pending"]
            waiting = sorted({key_split(k) for k in keys})
            self.reason = stall_message(workers, waiting, self.memory_restarts())
        except Exception:                  # the client is closing
            return

        def cancel() -> None:              # on the client's loop, as Dask's own cancel does
            for state in list(self.client.futures.values()):
                state.cancel(reason="out of memory", msg=self.reason)
        self.client.loop.add_callback(cancel)

    def memory_restarts(self) -> list[dict]:
        """Workers the nanny restarted at the terminate fraction of their limit since the watch began."""
        return [e for t, e in self.client.get_events("worker-restart-memory") if t >= self.since]


def move_off_paused(dask_scheduler=None) -> int:
    """On the scheduler: the tasks given to workers paused at their memory limit go to running
    workers, through Dask's own steal request (a worker gives up only a task it has not started).
    A paused worker never starts them, and Dask's stealing leaves a task where it is when fetching
    its inputs costs more than running it (dedup's piece tasks: a run stopped with one worker
    paused and the other idle). Returns how many tasks were asked to move."""
    from distributed.core import Status
    s = dask_scheduler
    stealing = s.extensions.get("stealing")
    moved = 0
    for victim in [ws for ws in s.workers.values() if ws.status == Status.paused] if stealing else []:
        for ts in list(victim.processing):
            if ts.actor or (ts.worker_restrictions and not ts.loose_restrictions):
                continue                   # bound to that worker
            thieves = [ws for ws in s.running
                       if all(ws.resources.get(r, 0) >= n for r, n in (ts.resource_restrictions or {}).items())]
            if thieves:
                stealing.move_task_request(ts, victim, min(thieves, key=lambda ws: ws.occupancy))
                moved += 1
    return moved


def release_memory() -> None:
    """On a worker: hand back to the system the memory that finished tasks freed but the process
    kept (Python's cyclic garbage, Arrow's memory pool, glibc's heap), which can hold a worker
    paused above its limit with no task running (Dask's "unmanaged memory")."""
    import ctypes
    import gc

    import pyarrow as pa
    gc.collect()
    pa.default_memory_pool().release_unused()
    with contextlib.suppress(OSError, AttributeError):    # not glibc
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def stuck(workers: dict, embedded: bool) -> bool:
    """No task can run: none is running, and a worker paused at its memory limit holds tasks (all
    are paused, or the paused one has tasks the others do not take: their data is there). An
    embedded cluster: or no worker at all (a real cluster may still be getting its workers)."""
    if not workers:
        return embedded
    states = [(w["status"] == "paused", w["metrics"].get("task_counts", {})) for w in workers.values()]
    if any(counts.get("executing") or counts.get("long-running") for _, counts in states):
        return False
    paused = [counts for is_paused, counts in states if is_paused]
    return len(paused) == len(states) or any(counts.get(s) for counts in paused for s in ("ready", "constrained",
                                                                                         "waiting"))


def _limits(workers: dict) -> str:
    """The workers' memory limit, or its range."""
    limits = [w.get("memory_limit") or 0 for w in workers.values()]
    low, high = format_bytes(min(limits, default=0)), format_bytes(max(limits, default=0))
    return low if low == high else f"{low} to {high}"


def stall_message(workers: dict, waiting: list[str], restarts: list[dict]) -> str:
    """One line: the limit, what the paused workers hold, and which tasks needed more."""
    if not workers:
        return (f"stopped: no worker has been running for {STALL_SECONDS:g} s"
                + (f" (restarts at their memory limit: {len(restarts)}; give the workers more memory: "
                   "--memory-limit)" if restarts else ""))
    paused = [w for w in workers.values() if w["status"] == "paused"]
    held = max(w["metrics"].get("memory", 0) for w in paused)
    results = max(w["metrics"].get("managed_bytes", 0) for w in paused)
    fraction = dask.config.get("distributed.worker.memory.pause")
    return (f"stopped: no task could run for {STALL_SECONDS:g} s: {len(paused)} of {len(workers)} workers paused "
            f"at their memory limit ({_limits(workers)} per worker, paused above {fraction:.0%}) with nothing left "
            f"to spill; a paused worker holds {format_bytes(held)}, {format_bytes(results)} of it task results"
            + (f"; tasks waiting for memory: {', '.join(waiting)}" if waiting else "")
            + " (give the workers more memory: --memory-limit)")


def killed_message(e: Exception, restarts: list[dict], workers: dict) -> str:
    """KilledWorker after memory restarts, in one line: which task needed more than the limit."""
    fraction = dask.config.get("distributed.worker.memory.terminate")
    limit = f" {_limits(workers)}" if workers else ""
    return (f"stopped: task {key_split(e.task)} needs more memory than a worker has: its workers reached "
            f"{format_bytes(max(r.get('rss', 0) for r in restarts))}, over {fraction:.0%} of their{limit} memory "
            f"limit, and were restarted (restarts: {len(restarts)}; give the workers more memory: --memory-limit)")


@contextlib.contextmanager
def watch_memory(client: Client, embedded: bool) -> Iterator[None]:
    """Turn the ways a block ends when its workers have too little memory into one line (UsageError):
    workers stuck at the limit (``_Watch``; Dask itself would wait for ever), and a task whose
    workers the nanny restarted at the limit until Dask gave it up (KilledWorker)."""
    from distributed.scheduler import KilledWorker
    watch = _Watch(client, embedded)
    watch.start()
    try:
        yield
    except Exception as e:
        if watch.reason:
            raise UsageError(watch.reason) from None
        if isinstance(e, KilledWorker):
            restarts = watch.memory_restarts()
            if restarts:
                raise UsageError(killed_message(e, restarts, watch.workers)) from None
        raise
    finally:
        watch.done.set()


def _facts(dask_scheduler=None) -> dict:
    """Run on the scheduler: each worker's (threads, resources), and whether its HTTP server has the
    dashboard and exoflow's page (it runs even without a dashboard, for /metrics)."""
    from exoflow.dashboard import PAGE, serves
    return {"workers": [(ws.nthreads, dict(ws.resources)) for ws in dask_scheduler.workers.values()],
            "dashboard": serves("/status", dask_scheduler), "page": serves(f"/{PAGE}", dask_scheduler)}


def describe(client: Client) -> ClusterInfo:
    """Scheduler address, dashboard (and exoflow's page on it), workers and threads, for summaries
    (two round trips to the scheduler)."""
    from exoflow.dashboard import PAGE
    try:
        facts = client.run_on_scheduler(_facts)
    except Exception:         # a scheduler that cannot import exoflow: no page of ours to point at
        workers = client.scheduler_info(n_workers=-1).get("workers", {}).values()
        facts = {"workers": [(w.get("nthreads", 0), w.get("resources", {})) for w in workers],
                 "dashboard": False, "page": False}
    dashboard = client.dashboard_link if facts["dashboard"] else None
    return {
        "scheduler": client.scheduler.address,
        "dashboard": dashboard,
        "exoflow_page": dashboard.rsplit("/", 1)[0] + f"/{PAGE}" if dashboard and facts["page"] else None,
        "workers": len(facts["workers"]),
        "threads": sum(n for n, _ in facts["workers"]),
        "gpu_workers": sum(bool(r.get("GPU")) for _, r in facts["workers"]),
    }


