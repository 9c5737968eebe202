"""Memory tiers: bytes spilled per tier (exoflow.spilling), counted on zict buffers shaped as
dask-cuda's DeviceHostFile (device -> host -> disk) and Dask's SpillBuffer (host -> disk). The
runs that really spill (CPU workers under a memory limit) are in test_dedup.py and
test_neardup.py; a GPU worker's device tier needs a GPU and dask-cuda (not on CI)."""
from __future__ import annotations

import zict

from exoflow.spilling import SpillCounter, spill_buffers
from exoflow.telemetry import SPILL, spilled_by_tier


class FakeWorker:
    def __init__(self, data) -> None:
        self.data, self.metrics = data, {}

    def digest_metric(self, name, value) -> None:
        self.metrics[name] = self.metrics.get(name, 0) + value


class DeviceHostFile:
    """What exoflow.spilling reads of dask-cuda's DeviceHostFile: a device buffer spilling to the
    host buffer, which spills to disk."""

    def __init__(self, device: int, host: int) -> None:
        weight = lambda k, v: len(v)     # noqa: E731  (dask's sizeof of bytes: their length)
        self.disk: dict = {}
        self.host_buffer = zict.Buffer({}, self.disk, host, weight=weight)
        self.device_buffer = zict.Buffer({}, self.host_buffer, device, weight=weight)


def test_each_tier_counts_what_it_moved_down():
    """Hand count: device and host 10 bytes each, three 6-byte values, least recent first out.
    Putting a, b, c: a then b leave the device (12 bytes device -> host); on the host, b's arrival
    pushes a to disk (6 bytes host -> disk)."""
    data = DeviceHostFile(device=10, host=10)
    worker = FakeWorker(data)
    SpillCounter().setup(worker)
    SpillCounter().setup(worker)                    # a plugin registered again counts once
    assert worker.metrics == {(SPILL, "device_to_host", "bytes"): 0, (SPILL, "host_to_disk", "bytes"): 0}
    for k in "abc":
        data.device_buffer[k] = b"x" * 6
    assert worker.metrics == {(SPILL, "device_to_host", "bytes"): 12, (SPILL, "host_to_disk", "bytes"): 6}
    assert list(data.disk) == ["a"] and set(data.host_buffer.fast) == {"b"}


def test_a_cpu_workers_spill_buffer_is_one_tier_and_a_plain_dict_none():
    from distributed.spill import SpillBuffer
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        buf = SpillBuffer(d, target=100)
        assert [t for t, _ in spill_buffers(buf)] == ["host_to_disk"]
    assert spill_buffers({}) == []


def test_spilled_by_tier_is_the_runs_share_and_none_for_a_tier_absent():
    key = (SPILL, "host_to_disk", "bytes")
    assert spilled_by_tier({key: 700}, {key: 200}) == {"device_to_host": None, "host_to_disk": 500}
    assert spilled_by_tier({}) == {"device_to_host": None, "host_to_disk": None}


# ---- GPU workers (exoflow.gpu): the settings as dask-cuda's API takes them, without a GPU ----------

# dask-cuda's documented names (docs.rapids.ai/api/dask-cuda: LocalCUDACluster's parameters, and
# LocalCluster's resources; the options of ``dask cuda worker``)
CUDA_CLUSTER_PARAMS = {"n_workers", "threads_per_worker", "memory_limit", "device_memory_limit", "rmm_pool_size",
                       "rmm_allocator_external_lib_list", "local_directory", "resources"}
CUDA_WORKER_FLAGS = {"--nthreads", "--memory-limit", "--device-memory-limit", "--rmm-pool-size", "--resources",
                     "--set-rmm-allocator-for-libs", "--local-directory", "--name", "--no-dashboard",
                     "--death-timeout", "--scheduler-file", "--preload"}


def test_embedded_gpu_cluster_is_local_cuda_cluster_with_the_tiers(monkeypatch):
    """--backend gpu on the embedded cluster: LocalCUDACluster, one worker per GPU (two visible
    here), the cores shared, the host memory limit, device limit and RMM pool of exoflow.gpu.
    A stand-in dask_cuda records the call (no GPU needed)."""
    import sys
    import types

    import pytest

    from exoflow import cluster, gpu
    from exoflow.errors import UsageError
    from exoflow.options import ClusterOptions
    calls = []

    def local_cuda_cluster(**kw):
        calls.append(kw)
        raise RuntimeError("stand-in")
    monkeypatch.setitem(sys.modules, "dask_cuda", types.SimpleNamespace(LocalCUDACluster=local_cuda_cluster))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    monkeypatch.setattr(cluster.os, "cpu_count", lambda: 16)
    with pytest.raises(UsageError, match="cannot start the local cluster: stand-in"):
        with cluster._local(ClusterOptions(memory_limit="1GiB", resources={"GPU": 1})):
            pass
    [kw] = calls
    assert {k: kw[k] for k in CUDA_CLUSTER_PARAMS} == {
        "n_workers": 2, "threads_per_worker": 8, "memory_limit": 2**30, "device_memory_limit": 0.8,
        "rmm_pool_size": 0.5, "rmm_allocator_external_lib_list": "cupy", "local_directory": gpu.spill_directory(),
        "resources": {"GPU": 1}}
    assert kw["scheduler_kwargs"]["preload"] == ["exoflow.dashboard"] and kw["processes"] is True


def test_cluster_start_gpu_runs_dask_cuda_workers_with_the_same_settings():
    import argparse

    from exoflow import gpu, service
    args = argparse.Namespace(host="127.0.0.1", port=0, dashboard="", idle_timeout=None, backend="gpu")
    _, work = service._commands(args, 1, 8, 2**30, None)
    assert work[1:5] == ["-m", "dask", "cuda", "worker"] and service.CUDA_WORKERS in " ".join(work)
    flags, wanted = work[5:], gpu.worker_flags(8, 2**30)
    assert {f for f in flags if f.startswith("--")} <= CUDA_WORKER_FLAGS
    assert flags[2:2 + len(wanted)] == wanted and dict(zip(wanted[::2], wanted[1::2])) == {
        "--nthreads": "8", "--memory-limit": str(2**30), "--device-memory-limit": "0.8", "--rmm-pool-size": "0.5",
        "--set-rmm-allocator-for-libs": "cupy", "--resources": "GPU=1"}


def test_the_kubernetes_gpu_workers_have_the_same_tiers():
    from pathlib import Path

    import yaml

    from exoflow import gpu
    docs = list(yaml.safe_load_all((Path(__file__).parent.parent / "cluster/kubernetes/exoflow-cluster.yaml").read_text()))
    [group] = [d for d in docs if d and d["kind"] == "DaskWorkerGroup"]
    args = group["spec"]["worker"]["spec"]["containers"][0]["args"]
    wanted = gpu.worker_flags(1, "auto")
    for flag, value in zip(wanted[::2], wanted[1::2]):
        if flag != "--nthreads":
            assert args[args.index(flag) + 1] == value, flag


def test_gpu_backend_without_dask_cuda_is_one_line_and_nothing_left(tmp_path):
    """On this machine (no dask-cuda, CuPy or GPU in CI): exit 2, one line naming what is missing."""
    from conftest import exoflow

    from exoflow import gpu
    why = gpu.missing()
    if why is None:
        import pytest
        pytest.skip("GPU workers can start here")
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "a.txt").write_text("x")
    for cmd in (["run", "profile", str(tmp_path / "t"), "--backend", "gpu", "--out", str(tmp_path / "o")],
                ["run", "neardup", str(tmp_path / "t"), "--backend", "gpu", "--out", str(tmp_path / "o")],
                ["cluster", "start", "--backend", "gpu"]):
        r = exoflow(*cmd)
        assert r.returncode == 2 and r.stderr.splitlines() == [r.stderr.strip()], r.stderr
        assert f"--backend gpu: {why}" in r.stderr and "Traceback" not in r.stderr
        assert not (tmp_path / "o").exists()


def test_missing_names_each_part(monkeypatch):
    import importlib.util

    from exoflow import gpu
    found = {"dask_cuda": True, "cupy": True}
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda m, *a: (object() if found[m] else None)
                        if m in found else real(m, *a))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert gpu.missing() is None
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert gpu.missing().startswith("no GPU found")
    found["cupy"] = False
    assert gpu.missing().startswith("CuPy is not installed")
    found["dask_cuda"] = False
    assert gpu.missing().startswith("dask-cuda is not installed")


def test_auto_picks_gpu_only_with_gpu_workers_and_the_first_line_says(tmp_path):
    from conftest import exoflow

    from exoflow.backends import backend_named, resolve_auto
    params = {"backend": "auto", "threshold": 0.8}
    assert resolve_auto(params, True) == {"backend": "gpu", "threshold": 0.8}
    assert resolve_auto(params, False)["backend"] == "cpu"
    assert resolve_auto({"profile.backend": "auto", "scan.x": "auto"}, True) == {"profile.backend": "gpu", "scan.x": "auto"}
    assert backend_named({"a.backend": "gpu", "b.backend": "cpu"}) == "cpu, gpu" and backend_named({}) is None
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "a.txt").write_text("x")
    r = exoflow("run", "profile", str(tmp_path / "t"), "--backend", "auto", "--out", str(tmp_path / "o"),
                "--workers", "1", "--no-dashboard")
    from exoflow import gpu
    expected = "gpu" if gpu.missing() is None else "cpu"
    assert r.returncode == 0 and f"; backend {expected}" in r.stderr.splitlines()[0], r.stderr


# ---- exoflow info's GPU check ----------------------------------------------------------------------

def test_the_gpu_checks_reference_is_32_bit_arithmetic():
    """The oracle of the GPU check, against Python's integers modulo 2**32."""
    import numpy as np

    from exoflow.gpu import _ADD, _MULT, check_reference
    x = np.array([0, 1, 2**31, 2**32 - 1, 123456789], np.uint32)
    def by_hand(v):
        y = (v * _MULT + _ADD) % 2**32
        return y ^ (y >> 15)
    assert check_reference(x).tolist() == [by_hand(int(v)) for v in x]


def test_info_checks_each_gpu_or_says_why_not():
    import json

    import pytest
    from conftest import exoflow

    from exoflow.gpu import missing
    r = exoflow("info", "--json")
    check = json.loads(r.stdout)["gpu_check"]
    why = missing(("cupy",))
    if why:
        assert r.returncode == 0 and check == {"skipped": why}
        assert f"skipped: {why}" in exoflow("info").stdout
        pytest.skip(f"the kernel itself needs a GPU: {why}")
    assert check["devices"] and all(g["ok"] for g in check["devices"]), check
    assert r.returncode == 0


def test_a_run_resumes_whatever_backend_auto_became(tmp_path):
    """--backend auto is settled once connected (gpu or cpu), and both give the same rows: the
    journal's identity of a run leaves the backend out, so --resume with auto finds the run."""
    from conftest import run_config

    from exoflow.journal import identity
    (tmp_path / "t").mkdir()
    ids = [identity(run_config("profile", tmp_path / "t", tmp_path / b, "--backend", b)) for b in ("auto", "cpu")]
    assert ids[0] == ids[1]
    other = identity(run_config("profile", tmp_path / "t", tmp_path / "o", "--max-depth", "1"))
    assert other != ids[0]


# ---- a listing task run again (its result lost with a worker restarted at its memory limit) -----

def test_a_listing_task_run_again_in_the_same_run_gives_its_first_answer(tmp_path):
    """Dask runs a task again when its result was lost with its worker. A walk again may list other
    directories (its budget is in time too, and the tree may have changed), while the client has
    already placed what the first walk left and cut chunks from its rows: a dedup run under 300 MiB
    per worker listed 32,500 of 40,000 files, without an error. The second run of the task gives
    the first one's rows and 'left' from its saved part. Oracle: the first answer; another run's
    task walks afresh."""
    from exoflow import runner
    from exoflow.options import ChunkOptions, WalkOptions
    from exoflow.runner import list_tree, listing_part, plan
    for d in "abc":
        (tmp_path / "t" / d).mkdir(parents=True)
        (tmp_path / "t" / d / "f").write_text(d)
    stack = plan([str(tmp_path / "t")], WalkOptions()).dirs
    save = str(tmp_path / "L-000001.arrow")
    args = (stack, [], WalkOptions(), (2, 60.0), ChunkOptions())
    first = list_tree("run1", *args, save=save)
    rows = listing_part("run1", save)              # what its chunk tasks read
    (tmp_path / "t" / "a" / "new").write_text("x")
    runner._PARTS.clear()                          # a worker restarted: the task runs again elsewhere
    again = list_tree("run1", *args, save=save)
    assert listing_part("run1", save).equals(rows) and rows.num_rows == 2
    assert [d.path for d in again["left"]] == [d.path for d in first["left"]] and first["left"]
    assert {k: again[k] for k in ("files", "dirs", "chunks")} == {k: first[k] for k in ("files", "dirs", "chunks")}
    list_tree("run2", *args, save=save)            # the file is not this run's: a walk of the changed tree
    assert not listing_part("run2", save).equals(rows)


def test_chunk_tasks_take_their_listing_part_kept_or_read_back(tmp_path, monkeypatch):
    """A chunk task depends on no task's result: it takes its listing part from those its worker
    keeps (runner.listing_part), else reads the part its listing task saved (a worker that did not
    make it, or dropped it). Kept parts are bounded in bytes (least recently used dropped first),
    a run's parts go when another run keeps one, and a part's last chunk task drops it. Oracle:
    the tables written (journal.save_listing)."""
    import pyarrow as pa

    from exoflow import journal, runner
    monkeypatch.setattr(runner, "_PARTS", type(runner._PARTS)())
    parts = {}
    for name, n in (("a", 1000), ("b", 2000), ("c", 3000)):
        parts[name] = pa.table({"path": [f"/{name}/{i}" for i in range(n)], "size": list(range(n))})
        journal.save_listing(parts[name], str(tmp_path / name))
    path = {k: str(tmp_path / k) for k in parts}
    assert runner.listing_part("r1", path["a"]).equals(parts["a"])          # read back, then kept
    assert ("r1", path["a"]) in runner._PARTS
    monkeypatch.setattr(runner, "PARTS_BYTES", parts["a"].nbytes + parts["b"].nbytes + 1)
    runner._keep("r1", path["b"], parts["b"])
    runner._keep("r1", path["c"], parts["c"])                                # a and b no longer fit
    assert list(runner._PARTS) == [("r1", path["c"])]
    assert runner.listing_part("r1", path["b"]).equals(parts["b"])          # read back again: c goes
    assert list(runner._PARTS) == [("r1", path["b"])]
    kept = runner._PARTS["r1", path["b"]]
    assert runner.listing_part("r1", path["b"], forget=True) is kept          # its last chunk: dropped
    assert not runner._PARTS
    runner._keep("r1", path["a"], parts["a"])
    runner._keep("r2", path["b"], parts["b"])                                # another run: r1's go
    assert list(runner._PARTS) == [("r2", path["b"])]
