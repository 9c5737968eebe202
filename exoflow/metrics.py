"""What tasks report while they run, for the dashboard page, /metrics and the run report.

* ``meter(label)``: Dask's fine performance metrics (``context_meter``), so the
  time of each activity (list, read, a kernel's name, write) shows on Dask's
  own "Fine Performance Metrics" page and on exoflow's.
* ``emit(...)``: an event on the scheduler's ``exoflow`` topic; the scheduler
  plugin in ``exoflow.dashboard`` (when loaded) turns them into rates. Outside a
  worker (``exoflow.executors.InProcess``) it goes to the sinks of ``collecting``.
"""
from __future__ import annotations

import contextlib
import time
from typing import Any, Callable, Iterator

from distributed.metrics import context_meter

TOPIC = "exoflow"

meter = context_meter.meter
_sinks: list[Callable[[dict], None]] = []     # where events go outside a worker (see ``collecting``)


def count(label: str, value: float, unit: str) -> None:
    """A non-time fine metric, e.g. ``count("read", nbytes, "bytes")``."""
    context_meter.digest_metric(label, value, unit)


def emit(kind: str, run: str, **fields: Any) -> None:
    """Send an event to the scheduler from inside a task; outside a worker, to the sinks of
    ``collecting`` (none: dropped)."""
    from distributed import get_worker
    try:
        worker = get_worker()
    except ValueError:
        msg = {"kind": kind, "run": run, "worker": "in-process", "time": time.time(), **fields}
        for sink in _sinks:
            sink(msg)
        return
    worker.log_event(TOPIC, {"kind": kind, "run": run, "worker": worker.address, "time": time.time(), **fields})


@contextlib.contextmanager
def collecting(sink: Callable[[dict], None]) -> Iterator[None]:
    """Within the block, events emitted outside a worker go to ``sink(msg)``."""
    _sinks.append(sink)
    try:
        yield
    finally:
        _sinks.remove(sink)
