"""--scheduler: a job submitted to a separately started scheduler and workers, as on a real cluster."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import exoflow, make_grid, read_dataset
from oracle import walk_lstat


@pytest.fixture(scope="module")
def scheduler():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    addr = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", str(port), "--dashboard-address", "127.0.0.1:0"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)]
    procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", addr, "--nworkers", "2",
                                   "--nthreads", "1", "--no-dashboard"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env))
    from distributed import Client
    deadline = time.time() + 60
    while True:
        try:
            with Client(addr, timeout="2s") as c:
                if len(c.scheduler_info()["workers"]) == 2:
                    break
        except OSError:
            pass
        if time.time() > deadline:
            pytest.fail("the test scheduler and workers did not start")
        time.sleep(0.3)
    yield addr, procs[1].pid
    for p in reversed(procs):
        p.terminate()
        p.wait(timeout=30)


def test_inventory_on_a_running_scheduler(scheduler, tmp_path):
    scheduler, _ = scheduler
    tree = make_grid(tmp_path / "t", 5, 30, lambda f: b"x" * f, ".txt")
    r = exoflow("run", "inventory", str(tree), "--scheduler", scheduler, "--out", str(tmp_path / "o"),
                "--chunk-files", "7")
    assert r.returncode == 0, r.stderr
    assert scheduler in r.stderr                      # says where it ran
    t = read_dataset(tmp_path / "o" / "files")
    assert {p.encode(): (s, "file") for p, s in zip(t.column("path").to_pylist(), t.column("size").to_pylist())} \
        == walk_lstat(str(tree))


def test_gpu_run_on_a_cluster_without_gpu_workers_is_a_clear_error(scheduler, tmp_path):
    """Chunk tasks of a --backend gpu run ask for the GPU resource: with no worker advertising it they
    would wait for ever, so the run stops at once."""
    scheduler, _ = scheduler
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "a").write_bytes(b"abc")
    r = exoflow("run", "profile", str(tree), "--backend", "gpu", "--scheduler", scheduler,
                "--out", str(tmp_path / "o"), "-q", timeout=60)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and "no worker of the cluster advertises the resource GPU=1" in r.stderr


def test_users_own_job_file_is_shipped_to_remote_workers(scheduler, tmp_path):
    """The workers cannot import the user's file: its code travels by value."""
    scheduler, _ = scheduler
    job_dir = tmp_path / "elsewhere"
    job_dir.mkdir()
    src = (Path(__file__).parents[1] / "jobs" / "inventory.py").read_text()
    src = src.replace("kernels=[inventory_columns]", "kernels=[inventory_columns, doubled]")
    src = src.replace("job = Job(", "def doubled(batch):\n    import pyarrow.compute as pc\n"
                      "    return {'size2': pc.multiply(batch.table.column('size'), 2)}\n\n\njob = Job(")
    src = src.replace('"top_dir", "error"]', '"top_dir", "error", "size2"]')
    (job_dir / "sizes_job.py").write_text(src)
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "a").write_bytes(b"abc")
    r = exoflow("run", str(job_dir / "sizes_job.py"), str(tree), "--scheduler", scheduler,
                "--out", str(tmp_path / "o"), "-q")
    assert r.returncode == 0, r.stderr
    assert read_dataset(tmp_path / "o" / "files").column("size2").to_pylist() == [6]


def test_a_worker_killed_mid_run_loses_and_doubles_nothing(scheduler, tmp_path):
    """Dask recomputes the lost tasks; deterministic part names mean no row is lost or doubled."""
    import psutil
    addr, worker_cli = scheduler
    tree = make_grid(tmp_path / "t", 40, 250)
    out = tmp_path / "o"
    p = subprocess.Popen([sys.executable, "-m", "exoflow.cli", "run", "profile", str(tree), "--scheduler", addr,
                          "--out", str(out), "--chunk-files", "100", "-q"], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and p.poll() is None and len(list((out / "files").glob("*.parquet"))
                                                                  if (out / "files").exists() else []) < 3:
        time.sleep(0.01)
    victims = psutil.Process(worker_cli).children()
    assert p.poll() is None and victims, "the run ended before a worker could be killed"
    victims[0].kill()                                   # SIGKILL: the worker's results are gone
    err = p.communicate(timeout=120)[1]
    assert p.returncode == 0, err
    paths = read_dataset(out / "files").column("path").to_pylist()
    assert len(paths) == len(set(paths)) == 10_000
    from distributed import Client
    with Client(addr, timeout="10s") as c:              # the nanny brings the worker back for later tests
        c.wait_for_workers(2, timeout=30)
