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
