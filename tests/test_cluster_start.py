"""The embedded cluster: workers that cannot inherit a lock held by another thread, a start bounded
in time, and memory limits: below what a worker needs is a usage error; a run whose workers run out
of memory completes or stops with one line, never hangs or ends in an internal error."""
from __future__ import annotations

import builtins
import importlib
import subprocess
import sys
import threading
import time
from pathlib import Path

import dask
import pytest
from conftest import REPO, exoflow, read_dataset

from exoflow import cluster
from exoflow.options import ClusterOptions
from exoflow.errors import UsageError

HELD_IMPORT = """
import builtins
gate = getattr(builtins, "exoflow_test_gate", None)
if gate is not None:      # only in the test's process: its import stays in progress until the gate opens
    gate.wait()
"""


def test_clusters_start_while_another_thread_is_in_the_middle_of_an_import(tmp_path, monkeypatch):
    """A thread of this process is inside an import (holding that module's import lock) while clusters
    start one after another, and every worker imports that module as it starts (a worker preload).
    A worker forked from this process inherits the held lock and waits for ever (checked: with
    multiprocessing-method "fork" every start fails after START_TIMEOUT); a worker from the fork
    server imports the module afresh."""
    module = tmp_path / "exoflow_held_import.py"
    module.write_text(HELD_IMPORT)
    monkeypatch.setattr(builtins, "exoflow_test_gate", threading.Event(), raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    importer = threading.Thread(target=importlib.import_module, args=("exoflow_held_import",), daemon=True)
    importer.start()
    deadline = time.monotonic() + 10
    while "exoflow_held_import" not in sys.modules and time.monotonic() < deadline:
        time.sleep(0.01)
    monkeypatch.setattr(cluster, "START_TIMEOUT", 20.0)
    try:
        with dask.config.set({"distributed.worker.preload": [str(module)]}):
            for _ in range(3):
                assert importer.is_alive() and "exoflow_held_import" in sys.modules   # still importing
                with cluster.connect(ClusterOptions(workers=2, dashboard="")) as client:
                    assert sum(client.nthreads().values()) == 2
                    assert client.submit(sum, [1, 2], pure=False).result(timeout=30) == 3
    finally:
        builtins.exoflow_test_gate.set()
        importer.join(timeout=10)
        sys.modules.pop("exoflow_held_import", None)


def test_a_worker_that_does_not_start_is_one_line_not_a_wait(tmp_path, monkeypatch):
    wedge = tmp_path / "wedged_worker_start.py"
    wedge.write_text("import time\ntime.sleep(120)\n")      # the workers' preload never returns in time
    monkeypatch.setattr(cluster, "START_TIMEOUT", 3.0)
    with dask.config.set({"distributed.worker.preload": [str(wedge)]}):
        with pytest.raises(UsageError, match=r"^cannot start the local cluster: a worker process did not join "
                                             r"within 3 s$"):
            with cluster.connect(ClusterOptions(workers=1, dashboard="")):
                pass


def test_memory_limit_below_what_a_worker_needs_is_a_usage_error(tmp_path):
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "f").write_bytes(b"x")
    for limit in ("1k", "0.000001", "199MiB"):          # a size, a fraction of the machine's memory
        r = exoflow("run", "inventory", str(tree), "--memory-limit", limit, "--out", str(tmp_path / "o"))
        assert r.returncode == 2
        first = r.stderr.splitlines()[0]
        assert "argument --memory-limit" in first and "below the 200.00 MiB a worker process needs" in first
        assert "Traceback" not in r.stderr and not (tmp_path / "o").exists()      # nothing started, nothing left
    r = exoflow("run", "inventory", str(tree), "--memory-limit", "200MiB", "--out", str(tmp_path / "o"), "-q")
    assert r.returncode == 0, r.stderr                                       # the floor itself runs


def hold_memory(limit: int, fraction: float, seconds: float = 0) -> int:
    """In a worker: hold memory until the process is at ``fraction`` of ``limit`` (a module global:
    not a task result, so nothing Dask could spill), then sleep ``seconds``."""
    import psutil
    need = int(limit * fraction) - psutil.Process().memory_info().rss
    globals().setdefault("held", []).append(b"x" * max(need, 0))
    time.sleep(seconds)
    return need


def test_workers_paused_at_their_memory_limit_stop_the_run_with_one_line(monkeypatch):
    """A worker paused above its limit with nothing to spill never runs another task (Dask waits for ever):
    the memory watch stops the run with one line that names the limit and the task waiting."""
    monkeypatch.setattr(cluster, "STALL_SECONDS", 2.0)
    limit = 512 * 2**20
    with pytest.raises(UsageError) as e:
        with cluster.connect(ClusterOptions(workers=1, memory_limit="512MiB", dashboard="")) as client:
            # paused at 85%: held for 0.5 s, so that the worker's memory monitor (every 100 ms) has paused
            # it before the next task comes (one sent at once could come first and run)
            client.submit(hold_memory, limit, 0.9, 0.5, pure=False).result(timeout=60)
            client.submit(len, [1, 2], key="waiting-task-1", pure=False).result(timeout=120)
    message = str(e.value)
    assert message.startswith("stopped: no task could run for 2 s: 1 of 1 workers paused at their memory limit "
                              "(512.00 MiB per worker, paused above 85%) with nothing left to spill")
    assert "tasks waiting for memory: waiting-task" in message and "\n" not in message


def test_a_task_that_needs_more_than_the_limit_stops_the_run_with_one_line(monkeypatch):
    """The nanny restarts a worker above 95% of its limit; once Dask gives the task up (KilledWorker)
    the run stops with one line naming the task and the limit, not an internal error."""
    limit = 512 * 2**20
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):    # give up after the first restart
        with pytest.raises(UsageError) as e:
            with cluster.connect(ClusterOptions(workers=1, memory_limit="512MiB", dashboard="")) as client:
                client.submit(hold_memory, limit, 1.2, 60, key="greedy-task-1", pure=False).result(timeout=120)
    message = str(e.value)
    assert message.startswith("stopped: task greedy-task needs more memory than a worker has: its workers reached ")
    assert "over 95% of their 512.00 MiB memory limit, and were restarted (restarts: 1;" in message


@pytest.fixture(scope="module")
def small_file_tree(tmp_path_factory) -> Path:
    """benchmarks/make_tree.py's tree of small files (sizes 0-4 KiB, many duplicates), 30,000 files."""
    root = tmp_path_factory.mktemp("mem") / "t"
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "make_tree.py"), str(root), "--files", "30000"],
                   check=True, capture_output=True)
    return root


def test_dedup_under_memory_limits_around_where_it_stops_fitting(small_file_tree, tmp_path):
    """On 2 workers this tree's dedup stops fitting at about 200 MiB per worker (measured 2026-11:
    200 MiB stopped in 3 runs of 4, 210-240 MiB completed): at each limit the run either completes
    with jdupes' groups or stops with one line that names the limit; the generous one completes."""
    r = subprocess.run(["jdupes", "-r", "-q", str(small_file_tree)], capture_output=True, text=True, check=True)
    expected = {frozenset(g.splitlines()) for g in r.stdout.strip().split("\n\n")}
    for limit, must_complete in (("200MiB", False), ("2GiB", True)):
        out = tmp_path / limit
        r = exoflow("run", "dedup", str(small_file_tree), "--out", str(out), "--memory-limit", limit,
                    "--workers", "2", "--no-dashboard", "-q", timeout=240)
        if r.returncode == 0:
            groups = read_dataset(out / "duplicates").to_pandas().groupby("group_id")["path"]
            assert {frozenset(paths) for _, paths in groups} == expected, limit
            continue
        assert not must_complete and r.returncode == 2, (limit, r.stderr)
        line, = r.stderr.splitlines()
        assert line.startswith("exoflow: error: stopped: ") and "--memory-limit" in line, line
        assert "200.00 MiB" in line, line                          # the limit, as the workers have it



def _blas_threads() -> int | None:
    """The threads NumPy's OpenBLAS runs in this process (None where NumPy has no OpenBLAS)."""
    import ctypes
    import numpy  # noqa: F401
    libs = sorted({line.split()[-1] for line in open("/proc/self/maps") if "openblas" in line.lower()})
    if not libs:
        return None
    lib = ctypes.CDLL(libs[0])
    for name in ("openblas_get_num_threads", "scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_"):
        if hasattr(lib, name):
            return getattr(lib, name)()
    return None


def test_embedded_workers_run_blas_in_one_thread_as_a_nanny_sets_it(monkeypatch):
    """The embedded cluster's workers are forked from a fork server that has imported NumPy: OpenBLAS
    read its thread count there, before any nanny could set OPENBLAS_NUM_THREADS (Dask's
    distributed.nanny.pre-spawn-environ: one BLAS thread per worker process, the oracle). Each
    worker's OpenBLAS runs that many threads, not one per core."""
    import distributed  # noqa: F401   (registers Dask's defaults)
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    want = int(dask.config.get("distributed.nanny.pre-spawn-environ")["OPENBLAS_NUM_THREADS"])
    with cluster.connect(ClusterOptions(workers=2, dashboard="")) as client:
        seen = client.run(_blas_threads)
    if None in seen.values():
        pytest.skip("NumPy here has no OpenBLAS")
    assert list(seen.values()) == [want, want], seen


def _settings(keys: list[str]) -> list:
    return [dask.config.get(k) for k in keys]


def test_a_users_dask_settings_win_over_exoflows(monkeypatch):
    """exoflow/dask.yaml gives the workers its settings, but not over the user's own: a setting
    given with dask.config.set (as a DASK_* variable or a config file gives it) reaches the embedded
    cluster's workers as given, the others take exoflow's (the oracle: exoflow/dask.yaml read here);
    ``exoflow cluster start`` hands its processes the user's DASK_* variable, not exoflow's value."""
    import yaml

    from exoflow import service
    with open(REPO / "exoflow" / "dask.yaml", encoding="utf-8") as f:
        ours = yaml.safe_load(f)["distributed"]
    keys = ["distributed.admin.tick.interval", "distributed.worker.profile.interval"]
    with dask.config.set({keys[0]: "30ms"}):
        with cluster.connect(ClusterOptions(workers=1, dashboard="")) as client:
            seen = list(client.run(_settings, keys).values())
    assert seen == [["30ms", ours["worker"]["profile"]["interval"]]]

    monkeypatch.setenv("DASK_DISTRIBUTED__WORKER__MEMORY__TARGET", "0.5")
    dask.config.refresh()
    try:
        env = service._dask_env()
    finally:
        monkeypatch.delenv("DASK_DISTRIBUTED__WORKER__MEMORY__TARGET")
        dask.config.refresh()
    assert env["DASK_DISTRIBUTED__WORKER__MEMORY__TARGET"] == "0.5"
    assert env["DASK_DISTRIBUTED__WORKER__MEMORY__SPILL"] == str(ours["worker"]["memory"]["spill"])
    assert env["DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL"] == ours["admin"]["tick"]["interval"]
