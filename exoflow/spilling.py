"""Bytes spilled per memory tier, counted on each worker as Dask moves task results down a tier:
device -> host on GPU workers (dask-cuda's DeviceHostFile), host -> disk on every worker (Dask's
SpillBuffer, or DeviceHostFile's host buffer). Each move adds the result's size in memory to the
worker's fine metric ``(SPILL, tier, "bytes")``; the scheduler sums them over workers
(``Scheduler.cumulative_worker_metrics``) and ``exoflow.telemetry.spilled_by_tier`` reads them."""
from __future__ import annotations

from functools import partial
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin
from distributed.sizeof import safe_sizeof

from exoflow.telemetry import SPILL


def spill_buffers(data: Any) -> list[tuple[str, Any]]:
    """(tier, zict.Buffer) of a worker's ``data``: dask-cuda's DeviceHostFile has a device buffer
    (spilling to its host buffer) and a host buffer (spilling to disk); Dask's SpillBuffer is the
    host buffer itself. A mapping that does not spill (no memory limit) has none."""
    found = [("device_to_host", getattr(data, "device_buffer", None)),
             ("host_to_disk", getattr(data, "host_buffer", data))]
    return [(tier, b) for tier, b in found if isinstance(getattr(b, "fast_to_slow_callbacks", None), list)]


def _moved(worker: Any, tier: str, key: Any, value: Any) -> None:
    worker.digest_metric((SPILL, tier, "bytes"), safe_sizeof(value))


class SpillCounter(WorkerPlugin):
    """Counts what each tier of a worker spills (see the module's docstring). A tier the worker has
    starts at 0, so a run reports 0 for a tier that did not spill and nothing for one it lacks."""

    name = "exoflow-spill-counter"
    idempotent = True

    def setup(self, worker: Any) -> None:
        for tier, buffer in spill_buffers(worker.data):
            if not any(getattr(cb, "func", None) is _moved for cb in buffer.fast_to_slow_callbacks):
                buffer.fast_to_slow_callbacks.append(partial(_moved, worker, tier))
            worker.digest_metric((SPILL, tier, "bytes"), 0)
