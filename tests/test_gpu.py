"""GPU workers as the dashboard shows them (runs only where a CUDA device and CuPy are present)."""
from __future__ import annotations

import time

import pytest

from exoflow.backends import gpu_available
from exoflow.dashboard import gpu_memory_used

pytestmark = pytest.mark.skipif(not gpu_available(), reason="no CUDA device with CuPy on this machine")


def hold_gpu_memory(nbytes: int, release: str) -> int:
    """Hold ``nbytes`` of GPU memory until the event ``release`` is set."""
    import cupy
    from distributed import Event
    a = cupy.zeros(nbytes, dtype=cupy.uint8)
    Event(release).wait(timeout=60)
    return int(a.size)


def test_dashboard_reads_the_gpu_memory_a_worker_holds():
    from distributed import Client, Event, LocalCluster
    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster, Client(cluster) as client:
        release = Event("exoflow-test-release", client=client)
        held = client.submit(hold_gpu_memory, 2**30, "exoflow-test-release")
        seen, deadline = 0, time.monotonic() + 30
        try:
            while seen < 2**30 and not held.done() and time.monotonic() < deadline:
                used = client.run_on_scheduler(lambda dask_scheduler: [gpu_memory_used(ws.metrics)
                                                                       for ws in dask_scheduler.workers.values()])
                seen = max([seen, *used])
                time.sleep(0.25)                  # the metrics come with the worker's heartbeats
        finally:
            release.set()                         # the memory is held until the metrics were read
        assert held.result(timeout=60) == 2**30
        assert seen >= 2**30, f"the worker held 1 GiB on its GPU; its metrics said {seen} bytes"
