"""Plugins the client registers on the cluster (the scheduler and workers import exoflow): tasks
placed on a preferred worker (``DaskExecutor.submit(where=…)``) stay runnable when that worker
leaves (``ForgetDepartedWorkers``); a setting every worker holds while a run lasts (``Everywhere``)."""
from __future__ import annotations

from typing import Any

from typing import Callable

from distributed.diagnostics.plugin import SchedulerPlugin, WorkerPlugin


class ForgetDepartedWorkers(SchedulerPlugin):
    """A Dask scheduler plugin: a worker that leaves is taken out of the preferred workers of the
    tasks that may run elsewhere (``allow_other_workers``), and those waiting for a worker are
    scheduled again. Dask keeps such a task's preference for a departed address: when no worker
    was running as it became ready (all paused at their memory limit, or restarting), it waits for
    a worker at that address for ever, and a worker restarted at its memory limit comes back at
    another address (dask/distributed#7346; a run hung in its listing phase)."""

    name = "exoflow-forget-departed-workers"
    idempotent = True

    def remove_worker(self, scheduler, worker: str, *, stimulus_id: str, **kwargs: Any) -> None:
        freed = []
        for ts in scheduler.tasks.values():
            if ts.loose_restrictions and ts.worker_restrictions and worker in ts.worker_restrictions:
                ts.worker_restrictions = (ts.worker_restrictions - {worker}) or None
                if ts.state == "no-worker":
                    freed.append(ts.key)
        if freed:       # to a worker now, where one runs; else they wait for the next one
            scheduler.transitions({k: "processing" for k in freed}, stimulus_id=stimulus_id)


class Everywhere(WorkerPlugin):
    """A Dask worker plugin: ``setup(*args)`` on every worker, those there now and those that join
    while it is registered; ``teardown(*args)`` when it is removed (``DaskExecutor.everywhere``)."""

    def __init__(self, setup: Callable, teardown: Callable, args: tuple) -> None:
        self._setup, self._teardown, self._args = setup, teardown, args

    def setup(self, worker: Any) -> None:
        self._setup(*self._args)

    def teardown(self, worker: Any) -> None:
        self._teardown(*self._args)
