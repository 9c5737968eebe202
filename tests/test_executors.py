"""One executor interface: the in-process executor (exoflow bench's serial mode) does the same work
as a Dask cluster, after-steps included. Oracles: the Dask run's outputs (every Parquet row,
the summary, the after-steps' files), jdupes for dedup's groups, sha256sum -c for the text
manifest, a hand count for the audit. And the command line's flags are the options' fields."""
from __future__ import annotations

import dataclasses
import json
import os
import platform
import subprocess
import time
from pathlib import Path

import pytest

from conftest import read_dataset, run_here
from test_dedup import _by_inode, _jdupes

from exoflow.config import configure, flag_name, run_parser
from exoflow.executors import DaskExecutor, InProcess
from exoflow.jobs_registry import load, shipped
from exoflow.options import ChunkOptions, ClusterOptions, LoadOptions, WalkOptions

AWS = "AKIA" + "Q7XK2M4PZR6TYW3N"          # a key scan reports (see test_scan.py)
# summary keys that differ between any two runs: timings, where things ran, how the work was cut
VOLATILE = {"wall_s", "files_per_s", "bytes_per_s", "started", "cluster", "chunks", "time_by_activity",
            "spilled_bytes", "spilled_by_tier", "out", "dataset", "params"}


@pytest.fixture(scope="module")
def cluster():
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as c, \
            Client(c) as client:
        yield DaskExecutor(client)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """Duplicates small and large (and hard links, empty files, a symlink), code, text, a secret."""
    root = tmp_path_factory.mktemp("exec") / "t"
    big = os.urandom(200_000)
    files = {"a/dup": b"same\n", "b/dup": b"same\n", "c/dup": b"same\n", "a/big": big, "b/big": big,
             "a/near": big[:-1] + b"x", "e/empty1": b"", "e/empty2": b"", "src/m.py": b"# c\nx = 1\n\nprint(x)\n",
             "src/k.c": b"int main(void) { return 0; }\n", "conf/keys.env": f"AWS_KEY={AWS}\n".encode(),
             "notes.txt": "hello\nworld\n".encode()}
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    os.link(root / "a/dup", root / "a/dup-link")
    os.symlink("a/dup", root / "link")
    return root


def _run(executor, job: str, tree: Path, out: Path, *flags_: str) -> dict:
    return run_here(job, tree, out, *flags_, chunk_files=3, executor=executor)


def _rows(path: Path) -> list:
    """Every row of a Parquet dataset, in a fixed order."""
    return sorted(read_dataset(path).to_pylist(), key=lambda r: json.dumps(r, sort_keys=True, default=repr))


def _canonical(x):
    """Lists as sorted multisets: reducers keep ties (equal sizes …) in the order chunks arrive,
    which no two cluster runs share either."""
    if isinstance(x, dict):
        return {k: _canonical(v) for k, v in x.items()}
    if isinstance(x, list):
        return sorted((_canonical(v) for v in x), key=lambda v: json.dumps(v, sort_keys=True))
    return x


def _same_summary(serial: dict, dask: dict, out_s: Path, out_d: Path) -> None:
    def plain(s: dict, out: Path) -> dict:
        return _canonical(json.loads(json.dumps({k: v for k, v in s.items() if k not in VOLATILE}, default=str)
                                     .replace(str(out), "OUT")))
    assert plain(serial, out_s) == plain(dask, out_d)


AFTER_FILES = {"dedup": ["duplicates.txt"], "checksum": ["checksums.sha256", "checksums.xxh128"]}
AFTER_DATASETS = {"dedup": ["duplicates"]}


@pytest.mark.parametrize("job,flags_", [("inventory", []), ("checksum", ["--text", "--hash", "sha256,xxh3-128"]),
                                        ("dedup", []), ("scan", []), ("profile", []), ("codestats", [])])
def test_serial_and_dask_runs_give_the_same_outputs(cluster, tree, tmp_path, job, flags_):
    s = _run(InProcess(), job, tree, tmp_path / "serial", *flags_)
    d = _run(cluster, job, tree, tmp_path / "dask", *flags_)
    _same_summary(s, d, tmp_path / "serial", tmp_path / "dask")
    assert s["files"] == 13 and s["chunks"] >= 5                   # 13 regular files in chunks of 3
    dataset = load(job).dataset
    for name in [dataset, *AFTER_DATASETS.get(job, [])]:
        assert _rows(tmp_path / "serial" / name) == _rows(tmp_path / "dask" / name), name
    for name in AFTER_FILES.get(job, []):
        assert (tmp_path / "serial" / name).read_bytes() == (tmp_path / "dask" / name).read_bytes(), name
    assert (tmp_path / "serial" / "report.html").exists()
    if job == "dedup":     # and both equal jdupes' groups
        rows = read_dataset(tmp_path / "serial" / "duplicates").to_pandas()
        groups = {frozenset(g["path"]) for _, g in rows.groupby("group_id")}
        assert len(groups) == 2 and _by_inode(groups) == _by_inode(_jdupes(tree))
    if job == "checksum":
        ok = subprocess.run(["sha256sum", "-c", "--quiet", str(tmp_path / "serial" / "checksums.sha256")],
                            cwd=tree, capture_output=True, text=True)
        assert ok.returncode == 0, ok.stdout + ok.stderr


def test_serial_audit_equals_the_clusters(cluster, tree, tmp_path):
    """checksum --verify's audit (Dask dataframe joins and a shuffle) on both executors: one file
    moved, one modified, one added, counted by hand."""
    t = tmp_path / "t"
    subprocess.run(["cp", "-a", str(tree), str(t)], check=True)
    _run(InProcess(), "checksum", t, tmp_path / "old")
    os.rename(t / "notes.txt", t / "renamed.txt")
    (t / "src/m.py").write_bytes(b"x = 2\n")
    (t / "new.txt").write_bytes(b"new\n")
    s = _run(InProcess(), "checksum", t, tmp_path / "s", "--verify", str(tmp_path / "old"))
    d = _run(cluster, "checksum", t, tmp_path / "d", "--verify", str(tmp_path / "old"))
    _same_summary(s, d, tmp_path / "s", tmp_path / "d")
    assert _rows(tmp_path / "s" / "audit") == _rows(tmp_path / "d" / "audit")
    assert s["result"]["audit"]["counts"] == {"unchanged": 11, "modified": 1, "added": 1, "removed": 0, "moved": 1,
                                              "unreadable": 0}


def test_serial_task_errors_surface_as_on_a_cluster():
    """A task's exception is raised by result()/gather, and a task fed a failed one fails too."""
    ex = InProcess()
    bad = ex.submit(int, "x")
    after = ex.submit(lambda v: v + 1, bad)
    with pytest.raises(ValueError):
        ex.gather([after])
    assert ex.gather([ex.submit(sum, [ex.submit(int, "2"), 3])]) == [5]


def _defaults(job) -> dict[type, object]:
    return {WalkOptions: job.walk, ChunkOptions: job.chunk, LoadOptions: LoadOptions(),
            ClusterOptions: ClusterOptions()}


@pytest.mark.parametrize("name", list(shipped()))
def test_every_option_field_has_a_flag_whose_default_is_the_fields(name):
    job = load(name)
    p = run_parser(job, "test")
    args = p.parse_args([])
    text = p.format_help()
    for options, defaults in _defaults(job).items():
        for f in dataclasses.fields(options):
            if "derived" in f.metadata:            # set from other flags or by the job: says so
                assert "flag" not in f.metadata and f.metadata["derived"]
                continue
            fl = f.metadata["flag"]
            default = getattr(defaults, f.name)
            value = getattr(args, f.name)
            assert (tuple(value) if fl.kind == "list" else value) == default, f.name
            assert all(n in text for n in fl.names)
            if "{default}" in fl.help:
                assert f"(default: {fl.show(default)}" in " ".join(text.split()), f.name
    # no flags given: the run gets exactly the job's own options
    cfg, cluster, _ = configure(job, p.parse_args(["."]))
    assert dataclasses.replace(cfg.walk, git_excludes=()) == dataclasses.replace(job.walk, git_excludes=())
    assert (cfg.chunk.max_files, cfg.chunk.max_bytes) == (job.chunk.max_files, job.chunk.max_bytes)
    assert cfg.load == LoadOptions() and dataclasses.replace(cluster, resources=None, source="") == ClusterOptions()


def test_a_flag_given_at_its_default_still_counts_as_given():
    """--memory-limit auto with --scheduler is refused like any value: the option asks for an effect."""
    from exoflow.errors import UsageError
    job = load("inventory")
    args = run_parser(job, "test").parse_args([".", "--scheduler", "tcp://127.0.0.1:9", "--memory-limit", "auto"])
    with pytest.raises(UsageError, match=f"{flag_name('memory_limit')} shapes the embedded cluster"):
        configure(job, args)


def test_a_placed_task_runs_elsewhere_when_its_worker_left_while_none_was_running():
    """A task placed on worker A (``where``) becomes ready while no worker runs (A paused at its
    memory limit); B joins, then A leaves (a restart at its limit). Dask kept A's address as the
    task's only valid worker, so it waited for ever (a dedup run hung in its listing phase 1 time
    in 5). Oracle: the task's result, computed on B."""
    import operator

    from distributed import Client, LocalCluster, wait
    from distributed.core import Status

    def status(address, dask_scheduler=None):
        return dask_scheduler.workers[address].status.name

    def state(key, dask_scheduler=None):
        return getattr(dask_scheduler.tasks.get(key), "state", None)

    def until(check, what):
        for _ in range(200):
            if check():
                return
            time.sleep(0.05)
        raise AssertionError(what)

    # no memory limit: Dask's memory monitor would resume the paused worker
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None, memory_limit=0) as c, \
            Client(c) as client:
        ex = DaskExecutor(client)
        [a] = client.nthreads()
        client.run(lambda dask_worker: setattr(dask_worker, "status", Status.paused))
        until(lambda: client.run_on_scheduler(status, a) == "paused", "A paused")
        f = ex.submit(operator.add, 1, 2, key="placed", where=a)
        until(lambda: client.run_on_scheduler(state, "placed") == "no-worker", "no worker runs it")
        c.scale(2)
        until(lambda: len(client.nthreads()) == 2, "B joined")
        c.sync([w for w in c.workers.values() if w.address == a][0].close)
        wait(f, timeout=20)
        assert f.result() == 3 and a not in client.nthreads()


def test_tasks_given_to_a_paused_worker_move_to_a_running_one():
    """Worker A, busy, gets three more tasks, then pauses at its memory limit (it never starts
    them); B is idle. Dask's stealing leaves them on A (they prefer A), so they waited for ever and
    the memory watch stopped the run (dedup under 300 MiB, 2 runs in 47). cluster.move_off_paused
    hands them to B. Oracle: their results, and B ran them."""
    import dask
    import numpy as np
    from distributed import Client, Event, LocalCluster, wait
    from distributed.core import Status

    from exoflow.cluster import move_off_paused

    def block(name):
        Event(name).wait()
        return "A"

    def worker_of(x):
        from distributed import get_worker
        return get_worker().address

    # Dask's periodic stealing off (in-process transfers look free to it; in the dedup run it kept
    # the tasks where their inputs were): only move_off_paused moves them
    with dask.config.set({"distributed.scheduler.work-stealing-interval": "1h"}), \
            LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None, memory_limit=0) as c, \
            Client(c) as client:
        a, b = sorted(client.nthreads())
        blocker = client.submit(block, "exoflow-test-block", workers=[a], pure=False)
        big = client.scatter(np.zeros(2**20), workers=[a])     # their input is on A
        queued = [client.submit(worker_of, big, workers=[a], allow_other_workers=True, pure=False)
                  for _ in range(3)]
        time.sleep(1)
        client.run(lambda dask_worker: setattr(dask_worker, "status", Status.paused), workers=[a])
        Event("exoflow-test-block").set()
        wait(blocker, timeout=20)
        time.sleep(1)
        assert all(f.status == "pending" for f in queued)       # A is paused: nothing runs them
        assert client.run_on_scheduler(move_off_paused) == 3
        wait(queued, timeout=20)
        assert client.gather(queued) == [b] * 3


def _mmapped_blocks_after_a_1mib_malloc() -> int:
    """Blocks glibc maps on their own (mallinfo2's hblks) added by one 1 MiB malloc in this process:
    1 at glibc's 128 KiB threshold, 0 when such blocks come from the heap."""
    import ctypes

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                                         "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = MallInfo2
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    before = libc.mallinfo2().hblks
    block = libc.malloc(2**20)
    added = libc.mallinfo2().hblks - before
    libc.free(block)
    return added


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator only (not this C library)")
def test_workers_with_room_take_blocks_from_the_heap_tight_ones_map_them(tmp_path):
    """Dask's MALLOC_TRIM_THRESHOLD_ fixes glibc's mmap threshold at 128 KiB; a run's first task on
    a worker (allocator.settle) puts it back to 32 MiB where the memory limit is at least
    allocator.ROOMY per thread, not on tighter workers (the oracle: glibc's own count of mapped
    blocks)."""
    from distributed import Client, LocalCluster
    from conftest import run_config
    from exoflow.allocator import ROOMY
    from exoflow.runner import run
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "f").write_text("x")
    for limit, mapped in ((ROOMY, 0), (250 * 2**20, 1)):
        with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0",
                          memory_limit=limit) as c, Client(c) as client:
            env = client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_"))
            assert set(env.values()) == {"65536"}                 # Dask's, as on every nanny's worker
            assert set(client.run(_mmapped_blocks_after_a_1mib_malloc).values()) == {1}
            out = tmp_path / f"out-{limit}"
            run(client, run_config("inventory", tmp_path / "t", out))
            assert set(client.run(_mmapped_blocks_after_a_1mib_malloc).values()) == {mapped}, limit
