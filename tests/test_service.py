"""exoflow cluster start|status|stop|logs, runs that find the cluster, TLS: the CLI as a user runs it.

Every test that starts a cluster stops it in a finally (``exoflow cluster stop``, then SIGKILL for
any process still running in the cluster's state directory) and fails if any was left: the
oracle for "left behind" is the system's process table (each process the service starts runs
with the state directory as its working directory, and so do its children)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from conftest import exoflow, free_port, make_grid, read_dataset


def in_dir(state: Path) -> list[psutil.Process]:
    """Processes whose working directory is ``state``: the cluster's, and only those."""
    found = []
    for p in psutil.process_iter():
        try:
            if p.cwd() == str(state):
                found.append(p)
        except psutil.Error:
            pass
    return found


class Cluster:
    """``exoflow cluster ARGS`` with its own state directory."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.env = {**os.environ, "EXOFLOW_STATE_DIR": str(state)}
        self.env.pop("DASK_SCHEDULER_ADDRESS", None)

    def __call__(self, *args: str, env: dict | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
        return exoflow(*args, env={**self.env, **(env or {})}, timeout=timeout)

    def status(self) -> dict:
        r = self("cluster", "status", "--json")
        return json.loads(r.stdout)


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path / "state")
    try:
        yield c
    finally:
        if (c.state / "cluster.json").exists():
            c("cluster", "stop")
        left = in_dir(c.state)
        for p in left:
            p.kill()
        psutil.wait_procs(left, timeout=10)
        assert not left, f"processes left running: {[(p.pid, p.name()) for p in left]}"


def rows(out: Path) -> list:
    t = read_dataset(out / "files")
    return sorted(zip(t.column("path").to_pylist(), t.column("size").to_pylist(), t.column("type").to_pylist()))


def one_line_exit_2(r: subprocess.CompletedProcess) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert len(r.stderr.splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr


def test_start_status_runs_find_it_stop(cluster, tmp_path):
    tree = make_grid(tmp_path / "t", 4, 25, lambda f: b"x" * f)
    r = cluster("cluster", "start", "--workers", "2", "--dashboard", "127.0.0.1:0")
    assert r.returncode == 0, r.stderr
    s = cluster.status()
    assert s["running"] and (s["workers"], s["threads"]) == (2, 2) and s["address"].startswith("tcp://127.0.0.1:")
    assert s["exoflow_page"].endswith("/exoflow") and s["runs_done"] == 0
    started = [psutil.Process(pid) for pid in s["pids"].values()]
    started += [c for p in started for c in p.children(recursive=True)]
    assert len(started) >= 4                        # scheduler, worker command, 2 worker processes

    again = cluster("cluster", "start")
    one_line_exit_2(again)
    assert "already running at " + s["address"] in again.stderr

    r = cluster("run", "inventory", str(tree), "--out", str(tmp_path / "o1"))
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines()[0].endswith(f"on {s['address']} (the running exoflow cluster); dashboard "
                                             f"{s['dashboard']}; exoflow page {s['exoflow_page']}")
    r = cluster("run", "inventory", str(tree), "--out", str(tmp_path / "o2"), "--embedded")
    assert r.returncode == 0, r.stderr
    assert "(an embedded cluster)" in r.stderr.splitlines()[0] and s["address"] not in r.stderr
    assert rows(tmp_path / "o1") == rows(tmp_path / "o2") and len(rows(tmp_path / "o1")) == 100
    # a scheduler named any other way comes first; the same one here, so the label tells which
    r = cluster("run", "inventory", str(tree), "--out", str(tmp_path / "o3"),
                env={"DASK_SCHEDULER_ADDRESS": s["address"]})
    assert f"on {s['address']} (DASK_SCHEDULER_ADDRESS)" in r.stderr.splitlines()[0]
    r = cluster("run", "inventory", str(tree), "--out", str(tmp_path / "o4"),
                "--scheduler-file", s["scheduler_file"])
    assert f"on {s['address']} (--scheduler-file {s['scheduler_file']})" in r.stderr.splitlines()[0]
    # the embedded cluster's shape is refused for the cluster found, with the way out
    r = cluster("run", "inventory", str(tree), "--out", str(tmp_path / "o5"), "--workers", "1")
    one_line_exit_2(r)
    assert "add --embedded" in r.stderr and not (tmp_path / "o5").exists()
    assert cluster.status()["runs_done"] == 3

    logs = cluster("cluster", "logs", "-n", "5")
    assert logs.returncode == 0 and "scheduler.log <==" in logs.stdout and "workers.log <==" in logs.stdout

    r = cluster("cluster", "stop")
    assert r.returncode == 0 and f"stopped the exoflow cluster at {s['address']}" in r.stdout, r.stderr
    assert not [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not (cluster.state / "cluster.json").exists() and not (cluster.state / "scheduler.json").exists()
    r = cluster("cluster", "status")
    assert r.returncode == 1 and r.stdout.strip() == "no exoflow cluster is running"


def test_dask_scheduler_address_is_honoured(cluster, tmp_path):
    """Nothing listens there: the run says so (it does not fall back to an embedded cluster)."""
    port = free_port()
    r = cluster("run", "inventory", str(tmp_path), "--out", str(tmp_path / "o"),
                env={"DASK_SCHEDULER_ADDRESS": f"tcp://127.0.0.1:{port}", "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "1s"})
    one_line_exit_2(r)
    assert f"cannot reach scheduler tcp://127.0.0.1:{port}" in r.stderr and not (tmp_path / "o").exists()


def write_state(state_dir: Path, scheduler: dict, workers: dict | None = None) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    processes = {"scheduler": scheduler, **({"workers": workers} if workers else {})}
    (state_dir / "cluster.json").write_text(json.dumps({"address": "tcp://127.0.0.1:9", "started": time.time(),
                                                        "processes": processes, "tls": None, "options": {}}))
    (state_dir / "scheduler.json").write_text(json.dumps({"address": "tcp://127.0.0.1:9"}))


def test_a_stale_state_is_reported_removed_and_never_used(cluster, tmp_path):
    gone = subprocess.Popen(["true"])
    created = psutil.Process(gone.pid).create_time() if psutil.pid_exists(gone.pid) else time.time()
    gone.wait()
    write_state(cluster.state, {"pid": gone.pid, "create_time": created, "marker": "distributed.cli.dask_scheduler"})
    r = cluster("cluster", "status")
    assert r.returncode == 1
    assert r.stdout.splitlines() == [f"removed a stale cluster state (its scheduler, pid {gone.pid}, is gone)",
                                     "no exoflow cluster is running"]
    assert not (cluster.state / "cluster.json").exists() and not (cluster.state / "scheduler.json").exists()
    write_state(cluster.state, {"pid": gone.pid, "create_time": created, "marker": "distributed.cli.dask_scheduler"})
    r = cluster("run", "inventory", str(tmp_path / "state"), "--out", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    assert "(an embedded cluster)" in r.stderr.splitlines()[0]
    (cluster.state / "cluster.json").write_text("{not json")
    r = cluster("cluster", "stop")
    assert r.returncode == 0 and "stale" in r.stdout and not (cluster.state / "cluster.json").exists()


def test_a_reused_pid_is_never_signalled(cluster, tmp_path):
    """The state names live processes that are not the ones started: one with the scheduler's command
    line but another start time (a pid reused by a later scheduler), one that started then but runs
    another program. Neither is stopped; the state is stale."""
    marker = "distributed.cli.dask_scheduler"
    same_name = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", marker])
    other = subprocess.Popen(["sleep", "120"])
    try:
        time.sleep(0.2)
        ct = {p.pid: psutil.Process(p.pid).create_time() for p in (same_name, other)}
        for scheduler, workers in (({"pid": same_name.pid, "create_time": ct[same_name.pid] - 30, "marker": marker},
                                    {"pid": other.pid, "create_time": ct[other.pid],
                                     "marker": "distributed.cli.dask_worker"}),
                                   ({"pid": other.pid, "create_time": ct[other.pid], "marker": marker}, None)):
            write_state(cluster.state, scheduler, workers)
            r = cluster("cluster", "stop")
            assert r.returncode == 0 and "removed a stale cluster state" in r.stdout, r.stdout
            assert same_name.poll() is None and other.poll() is None     # both still running
            assert not (cluster.state / "cluster.json").exists()
    finally:
        for p in (same_name, other):
            p.kill()
            p.wait()


def test_tls_cluster(cluster, tmp_path):
    tree = make_grid(tmp_path / "t", 2, 10)
    r = cluster("cluster", "start", "--workers", "1", "--tls", "--dashboard", "127.0.0.1:0")
    assert r.returncode == 0, r.stderr
    s = cluster.status()
    address = s["address"]
    assert address.startswith("tls://127.0.0.1:") and s["tls"] and s["workers"] == 1
    # nothing of the cluster listens beyond loopback: the dashboard included
    sched = psutil.Process(s["pids"]["scheduler"])
    listening = {c.laddr for c in sched.net_connections("inet") if c.status == psutil.CONN_LISTEN}
    assert len(listening) == 2 and {a.ip for a in listening} == {"127.0.0.1"}, listening
    keys = sorted((cluster.state / "tls").glob("*-key.pem"))
    assert len(keys) == 3 and all(k.stat().st_mode & 0o077 == 0 for k in keys)

    r = cluster("run", "inventory", str(tree), "--out", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    assert f"on {address} (the running exoflow cluster)" in r.stderr.splitlines()[0]
    assert len(rows(tmp_path / "o")) == 20
    # a plain tcp:// client is refused, and so is a tls:// one without the cluster's certificates
    r = cluster("run", "inventory", str(tree), "--out", str(tmp_path / "o2"), "--scheduler",
                address.replace("tls://", "tcp://"))
    one_line_exit_2(r)
    assert "a TLS scheduler refuses tcp:// clients" in r.stderr
    r = exoflow("run", "inventory", str(tree), "--out", str(tmp_path / "o2"), "--scheduler", address,
                env={**cluster.env, "EXOFLOW_STATE_DIR": str(tmp_path / "elsewhere")})
    one_line_exit_2(r)
    assert "tls:// needs TLS files" in r.stderr and not (tmp_path / "o2").exists()
    # a cluster started by other means: the files given on the command line
    tls = cluster.state / "tls"
    r = exoflow("run", "inventory", str(tree), "--out", str(tmp_path / "o3"), "-q", "--scheduler", address,
                "--tls-ca-file", str(tls / "ca.pem"), "--tls-cert", str(tls / "client.pem"),
                "--tls-key", str(tls / "client-key.pem"), env={**cluster.env, "EXOFLOW_STATE_DIR": str(tmp_path / "x")})
    assert r.returncode == 0, r.stderr
    assert rows(tmp_path / "o3") == rows(tmp_path / "o")
    r = cluster("cluster", "stop")
    assert r.returncode == 0 and not tls.exists()


@pytest.mark.parametrize("args, message", [
    (["start", "--workers", "0"], "--workers: must be at least 1"),
    (["start", "--memory-limit", "lots"], "'lots' is not a memory size"),
    (["start", "--memory-limit", "100MiB"], "below the 200.00 MiB a worker"),
    (["start", "--idle-timeout", "soon"], "--idle-timeout 'soon'"),
    (["start", "--dashboard", "nowhere"], "invalid address"),
    (["bogus"], "unknown command 'bogus'"),
    ([], "a command is needed"),
])
def test_bad_cluster_options_are_one_line_and_start_nothing(cluster, args, message):
    r = cluster("cluster", *args)
    one_line_exit_2(r)
    assert message in r.stderr
    assert not cluster.state.exists() or not any(cluster.state.glob("*.json"))


@pytest.mark.parametrize("args, message", [
    (["--scheduler", "tcp://127.0.0.1:9", "--embedded"], "--scheduler and --embedded both choose the cluster"),
    (["--tls-cert", "x.pem"], "--tls-ca-file, --tls-key: a TLS scheduler needs"),
    (["--scheduler-file", "/nonexistent.json"], "--scheduler-file /nonexistent.json: No such file or directory"),
])
def test_bad_run_cluster_options_are_one_line(cluster, tmp_path, args, message):
    r = cluster("run", "inventory", str(tmp_path), "--out", str(tmp_path / "o"), *args)
    one_line_exit_2(r)
    assert message in r.stderr and not (tmp_path / "o").exists()


def test_a_start_that_fails_leaves_nothing_running(cluster):
    """The scheduler cannot listen on a port taken: one line naming why, no process, no state."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = cluster("cluster", "start", "--workers", "1", "--port", str(port), "--no-dashboard")
    one_line_exit_2(r)
    assert r.stderr.startswith("exoflow cluster: error: the cluster did not start: the scheduler process ended")
    assert not in_dir(cluster.state) and not (cluster.state / "cluster.json").exists()


# The page's tick labels, as BokehJS draws them: the axis view's major ticks through its formatter.
TICK_LABELS_JS = """
((fig_name, side) => {
  const axis = Bokeh.documents[0].get_model_by_name(fig_name)[side][0];
  for (const root of Bokeh.index.roots) {
    const stack = [root];
    while (stack.length) {
      const v = stack.pop();
      if (v.model === axis) return Array.from(axis.formatter.doFormat(v.tick_coords.major[side === "below" ? 0 : 1], {loc: 0}));
      for (const c of v.children()) stack.push(c);
    }
  }
  return null;
})(%r, %r)
"""


def page_source(browser, name: str) -> dict:
    return browser.evaluate(f"(() => {{ const d = Bokeh.documents[0].get_model_by_name({name!r}).data; const o = {{}};"
                            " for (const [k, v] of Object.entries(d)) o[k] = Array.from(v); return o; })()")


def test_the_exoflow_page_lists_every_run_and_shows_the_one_picked(cluster, tmp_path):
    """Two different jobs and then a one-chunk run on one exoflow cluster: its page (headless Chromium)
    lists the three, newest first, with what each run's summary.json says; it shows the latest by
    default; picking an older run (a row of the list, or the menu) shows that run's plots, and its
    "where time goes" is that run's alone: report.html's time_by_activity (summary.json, the runner's
    own snapshots) within tolerance. The one-chunk run's axes have distinct tick labels; the files/s
    bins' mean is the header's files/s."""
    from chromium import CHROMIUM, Chromium
    if CHROMIUM is None:
        pytest.skip("needs Debian's chromium (.ci/apt-packages.txt)")
    tree = make_grid(tmp_path / "t", 3, 7, lambda f: b"y" * (f + 1) * 1000)
    tiny = make_grid(tmp_path / "tiny", 1, 2)
    assert cluster("cluster", "start", "--workers", "1", "--dashboard", "127.0.0.1:0").returncode == 0
    summaries = []
    for job, path in (("inventory", tree), ("checksum", tree), ("inventory", tiny)):
        out = tmp_path / f"{job}-{path.name}"
        r = cluster("run", job, str(path), "--out", str(out), "-q")
        assert r.returncode == 0, r.stderr
        summaries.append(json.loads((out / "summary.json").read_text()))
    assert summaries[2]["chunks"] == 1
    page = cluster.status()["exoflow_page"]
    with Chromium() as browser:
        browser.open(page)
        browser.wait_for("typeof Bokeh !== 'undefined' && Bokeh.documents.length > 0 && "
                         "Bokeh.documents[0].get_model_by_name('exoflow-runs').data.job.length == 3 && "
                         "Bokeh.documents[0].get_model_by_name('exoflow-shown').data.run.length == 1")
        runs = page_source(browser, "exoflow-runs")
        ids = {runs["out"][i]: runs["run"][i] for i in range(3)}
        latest = page_source(browser, "exoflow-shown")
        rate = page_source(browser, "exoflow-rate")
        ticks = {(f, side): browser.evaluate(TICK_LABELS_JS % (f, side))
                 for f in ("exoflow-files-fig", "exoflow-bytes-fig") for side in ("below", "left")}
        header = browser.evaluate("Bokeh.documents[0].get_model_by_name('exoflow-header').text")
        legend_outside = browser.evaluate("(f => f.above.some(m => m.name == 'exoflow-memory-legend') && "
                                          "!f.center.some(m => m.items !== undefined))"
                                          "(Bokeh.documents[0].get_model_by_name('exoflow-memory-fig'))")
        shown = {}
        for how, i in (("row", 0), ("menu", 1)):      # the oldest by its row (the last), the checksum run by the menu
            run = ids[summaries[i]["out"]]
            if how == "row":
                browser.evaluate("Bokeh.documents[0].get_model_by_name('exoflow-runs').selected.indices = [2]")
            else:
                browser.evaluate(f"Bokeh.documents[0].get_model_by_name('exoflow-select').value = {run!r}")
            assert browser.wait_for("Bokeh.documents[0].get_model_by_name('exoflow-shown').data.run[0] == "
                                    f"{run!r}"), how
            browser.wait_for("Bokeh.documents[0].get_model_by_name('exoflow-activity').data.seconds.length > 0")
            act = page_source(browser, "exoflow-activity")
            shown[i] = (page_source(browser, "exoflow-shown"), page_source(browser, "exoflow-rate"),
                        dict(zip(act["activity"], act["seconds"])))
        assert not [e for e in browser.errors if "favicon" not in e], browser.errors
    # the list: every run, newest first, as its summary.json says
    summaries.reverse()
    assert runs["job"] == [s["job"] for s in summaries] == ["inventory", "checksum", "inventory"]
    assert runs["files"] == [s["files"] for s in summaries] and runs["bytes"] == [s["bytes"] for s in summaries]
    assert runs["out"] == [s["out"] for s in summaries] and runs["paths"] == [str(tiny), str(tree), str(tree)]
    assert runs["status"] == ["done"] * 3 and runs["errors"] == [0] * 3
    summaries.reverse()
    # shown by default: the latest run; its bins' mean is the header's files/s, its ticks are distinct
    assert latest["run"] == [ids[summaries[2]["out"]]] and latest["files"] == [2]
    assert f"{latest['files_per_s'][0]:,.1f} files/s" in header
    for (fig, side), labels in ticks.items():
        assert labels and len(set(labels)) == len(labels) >= 3, (fig, side, labels)
    for sh, rt in [(latest, rate)] + [v[:2] for v in shown.values()]:
        assert sum(rt["files_per_s"]) / len(rt["files_per_s"]) == pytest.approx(sh["files_per_s"][0], rel=1e-9)
        assert sum(rt["files_per_s"]) * rt["width"][0] / 0.9 == pytest.approx(sh["files"][0], rel=1e-9)
    # picked runs: their own plots and their own share of the task seconds, as report.html has it
    for i, (sh, rt, acts) in shown.items():
        assert sh["run"] == [ids[summaries[i]["out"]]] and sh["job"] == [summaries[i]["job"]]
        assert sh["files"] == [summaries[i]["files"]]
        report = summaries[i]["time_by_activity"]
        for activity in set(report) | set(acts):
            assert acts.get(activity, 0) == pytest.approx(report.get(activity, 0), rel=0.05, abs=1e-3), activity
    assert set(shown[0][2]) != set(shown[1][2])      # checksum hashes; inventory does not
    assert legend_outside        # the memory legend is laid out above the plot, not over its bars
