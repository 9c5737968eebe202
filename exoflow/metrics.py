"""What tasks report while they run, for the dashboard page, /metrics and the run report.

* ``meter(label)``: Dask's fine performance metrics (``context_meter``), so the
  time of each activity (list, read, a kernel's name, write) shows on Dask's
  own "Fine Performance Metrics" page and on exoflow's.
* ``emit(...)``: an event on the scheduler's ``exoflow`` topic; the scheduler
  plugin in ``exoflow.dashboard`` (when loaded) turns them into rates.
"""
from __future__ import annotations

import time
from typing import Any

from distributed.metrics import context_meter

TOPIC = "exoflow"

meter = context_meter.meter


def count(label: str, value: float, unit: str) -> None:
    """A non-time fine metric, e.g. ``count("read", nbytes, "bytes")``."""
    context_meter.digest_metric(label, value, unit)


def emit(kind: str, run: str, **fields: Any) -> None:
    """Send an event to the scheduler from inside a task (no-op outside a worker)."""
    from distributed import get_worker
    try:
        worker = get_worker()
    except ValueError:
        return
    worker.log_event(TOPIC, {"kind": kind, "run": run, "worker": worker.address, "time": time.time(), **fields})
