"""Where a run's tasks run: one interface, two executors, the same task functions.

The runner's listing and chunk phases and the jobs' after-steps (dedup's stages, checksum's
text manifests and audit) hand their work to an ``Executor``:

* ``DaskExecutor(client)``: tasks on a Dask cluster (``exoflow run``, ``exoflow bench``'s cpu
  and gpu modes);
* ``InProcess()``: each task runs in this process, in the submitting thread, as it is submitted
  (``exoflow bench``'s serial mode, tests): no scheduler, no workers, nothing pickled but the job.

Futures passed as task arguments (also inside lists, tuples and dicts) are replaced by their
results, as Dask does, so a stage written for one executor runs on the other unchanged.
"""
from __future__ import annotations

import collections
import contextlib
import os
import uuid
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Protocol

from exoflow.metrics import TOPIC, collecting

if TYPE_CHECKING:
    from distributed import Client


class Future(Protocol):
    key: str

    def result(self) -> Any: ...


class Executor(Protocol):
    """Tasks (for the runner and after-steps):

    * ``submit(fn, *args, key=None, where=None, priority=0, resources=None) -> Future``: run
      ``fn(*args)``; ``key`` names the task (its prefix groups it in metrics and on the dashboard;
      None: the function's name and a random suffix); ``where``: a worker address to prefer;
      ``resources``: e.g. {"GPU": 1}, what a worker must advertise.
    * ``gather(futures) -> list`` of results, in order; a task's exception is raised here.
    * ``as_completed()``: an iterable of (future, result) as futures finish (a task's exception raised
      there), to which ``add(future)`` adds more, also while it is iterated.
    * ``nthreads() -> {worker: threads}``; ``cancel(futures)``.
    * ``task_memory() -> int | None``: bytes one task may use at its peak (see ``task_memory``);
      None where the workers have no memory limit (in-process: this process's memory).
    * ``compute(*collections) -> tuple``: Dask collections (dask.dataframe) computed here.

    The run (for the runner): ``everywhere(setup, teardown, *args)``, a context manager: ``setup(*args)``
    in every process that runs tasks (and in those that join) until it ends, then ``teardown(*args)``
    there; ``log_event(msg)`` on the ``exoflow`` topic; ``shares_cwd()``: whether
    a relative PATH means the same where tasks run; ``check_resources(needed)`` raises UsageError
    when no worker has them; ``describe() -> {scheduler, dashboard, exoflow_page, workers, threads}``;
    ``metrics()``: cumulative fine metrics (a snapshot before a run); ``telemetry(run_id, before) ->
    {events, time_by_activity, spilled_bytes}`` after it.
    """

    def submit(self, fn: Callable, *args: Any, key: str | None = None, where: str | None = None,
               priority: int = 0, resources: dict | None = None) -> Future: ...

    def gather(self, futures: Iterable[Future]) -> list: ...

    def as_completed(self) -> Any: ...

    def nthreads(self) -> dict[str, int]: ...

    def task_memory(self) -> int | None: ...

    def cancel(self, futures: Iterable[Future]) -> None: ...

    def compute(self, *collections: Any) -> tuple: ...

    def everywhere(self, setup: Callable, teardown: Callable, *args: Any) -> Any: ...

    def log_event(self, msg: dict) -> None: ...

    def shares_cwd(self) -> bool: ...

    def check_resources(self, needed: dict) -> None: ...

    def describe(self) -> dict: ...

    def metrics(self) -> dict: ...

    def telemetry(self, run_id: str, before: dict) -> dict: ...


# What a worker process holds before any task's data (Python, Dask, Arrow, pandas, after tasks ran;
# cluster.MIN_WORKER_MEMORY), and the least a task is given however tight the limit.
WORKER_HELD = 150 * 2**20
LEAST_TASK_MEMORY = 8 * 2**20


def task_memory(workers: Iterable[tuple[int, int]]) -> int | None:
    """Bytes one task may use at its peak on the tightest of ``workers`` ((memory limit in bytes, 0
    for none; threads)): its limit up to Dask's pause fraction, less WORKER_HELD, shared by its
    threads (at least LEAST_TASK_MEMORY). None when no worker has a limit. A stage sizes its tasks
    by it, so that their working memory (not spillable) fits and their results can spill."""
    import dask
    pause = dask.config.get("distributed.worker.memory.pause") or 1.0
    shares = [max(int(limit * pause) - WORKER_HELD, 0) // threads for limit, threads in workers if limit]
    return max(min(shares), LEAST_TASK_MEMORY) if shares else None


def as_executor(target: Any) -> Executor:
    """An Executor as is; a ``distributed.Client`` wrapped in a DaskExecutor."""
    return target if isinstance(target, (DaskExecutor, InProcess)) else DaskExecutor(target)


class DaskExecutor:
    """The tasks on a Dask cluster, through its client. Every task is impure (never merged with an
    equal-looking one), as exoflow's tasks read files that change."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.pins: bool | None = None      # may ``where`` pin tasks (see ``submit``)? None: not asked yet

    def submit(self, fn, *args, key=None, where=None, priority=0, resources=None):
        # preferred, and allowed elsewhere should that worker leave: only where the scheduler runs
        # exoflow.pins.ForgetDepartedWorkers (Dask would leave the task unrunnable for ever)
        placed = {"workers": [where], "allow_other_workers": True} if where and self._can_pin() else {}
        return self.client.submit(fn, *args, key=key, pure=False, priority=priority, resources=resources, **placed)

    def _can_pin(self) -> bool:
        if self.pins is None:
            try:
                from exoflow.pins import ForgetDepartedWorkers
                self.client.register_plugin(ForgetDepartedWorkers())
                self.pins = True
            except Exception:              # a scheduler that cannot import exoflow: no pins
                self.pins = False
        return self.pins

    def gather(self, futures):
        return self.client.gather(list(futures))

    def as_completed(self):
        from distributed import as_completed
        # results fetched by the client's event loop as each task ends, not one round trip at a time
        # on the thread that submits the next tasks
        return as_completed(with_results=True)

    def nthreads(self):
        return self.client.nthreads()

    def task_memory(self):
        workers = self.client.scheduler_info(n_workers=-1).get("workers", {}).values()
        return task_memory([(w.get("memory_limit") or 0, w.get("nthreads") or 1) for w in workers])

    def cancel(self, futures):
        self.client.cancel(list(futures), force=True)

    def compute(self, *collections):
        import dask
        with self.client.as_current():      # also what a shuffle's method is chosen by
            return dask.compute(*collections, scheduler=self.client)

    @contextlib.contextmanager
    def everywhere(self, setup, teardown, *args):
        from exoflow.pins import Everywhere
        name = f"exoflow-everywhere-{uuid.uuid4().hex}"
        self.client.register_plugin(Everywhere(setup, teardown, args), name=name)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):     # a cluster gone with the run: nothing to undo
                self.client.unregister_worker_plugin(name)

    def log_event(self, msg):
        self.client.log_event(TOPIC, msg)

    def shares_cwd(self):
        """Whether every worker runs in this process's working directory (an embedded cluster's do)."""
        try:
            return set(self.client.run(os.getcwd).values()) == {os.getcwd()}
        except Exception:     # a worker that cannot answer: do not rely on it
            return False

    def check_resources(self, needed):
        """Fail now, not hang: tasks asking for a resource wait until a worker that has it joins."""
        from exoflow.errors import UsageError
        workers = self.client.scheduler_info(n_workers=-1).get("workers", {}).values()
        if not any(all(w.get("resources", {}).get(r, 0) >= n for r, n in needed.items()) for w in workers):
            wanted = ", ".join(f"{r}={n}" for r, n in needed.items())
            raise UsageError(f"--backend gpu: no worker of the cluster advertises the resource {wanted} "
                             f"(start GPU workers with: dask cuda worker SCHEDULER --resources {wanted})")

    def describe(self):
        from exoflow.cluster import describe
        return describe(self.client)

    def metrics(self):
        """The scheduler's fine metrics now (before a run); from now on, each worker's spilling
        counted per memory tier (exoflow.spilling.SpillCounter)."""
        from exoflow import report
        from exoflow.spilling import SpillCounter
        try:
            self.client.register_plugin(SpillCounter())
        except Exception as e:       # a worker that cannot import exoflow fails the run's tasks anyway
            report.logger.debug("counting spilled bytes per tier: %s", e)
        return report.snapshot(self.client)

    def telemetry(self, run_id, before):
        from exoflow import report
        return report.collect(self.client, run_id, before)


class Done:
    """An InProcess task's outcome: its result, or the exception ``result()`` raises."""

    def __init__(self, key: str, value: Any = None, error: BaseException | None = None) -> None:
        self.key, self._value, self._error = key, value, error

    def result(self) -> Any:
        if self._error is not None:
            raise self._error
        return self._value


class _Completed:
    """(future, result) in the order the futures were added (each is done when added)."""

    def __init__(self) -> None:
        self.queue: collections.deque[Done] = collections.deque()

    def add(self, future: Done) -> None:
        self.queue.append(future)

    def __iter__(self) -> Iterator[tuple[Done, Any]]:
        while self.queue:
            future = self.queue.popleft()
            yield future, future.result()


def _resolved(x: Any) -> Any:
    if isinstance(x, Done):
        return x.result()
    if type(x) in (list, tuple):
        return type(x)(_resolved(v) for v in x)
    if type(x) is dict:
        return {k: _resolved(v) for k, v in x.items()}
    return x


class InProcess:
    """Each task runs in this process when it is submitted, one after another. Its fine metrics
    (``exoflow.metrics.meter``) and events are kept for the run's report, under the same task-key
    prefixes and names as a cluster's."""

    WORKER = "in-process"

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.fine: collections.Counter = collections.Counter()

    def submit(self, fn, *args, key=None, where=None, priority=0, resources=None):
        from dask.utils import funcname, key_split
        from distributed.metrics import context_meter

        key = key or f"{funcname(fn)}-{uuid.uuid4().hex}"
        prefix = key_split(key)

        def digest(label, value, unit):
            self.fine["execute", prefix, label, unit] += value

        try:
            args = _resolved(args)
            with context_meter.add_callback(digest), collecting(self.events.append):
                return Done(key, fn(*args))
        except Exception as e:        # kept for result(), as a cluster keeps a task's error
            return Done(key, error=e)

    def gather(self, futures):
        return [f.result() for f in futures]

    def as_completed(self):
        return _Completed()

    def nthreads(self):
        return {self.WORKER: 1}

    def task_memory(self):
        return None

    def cancel(self, futures):
        pass                          # every task has run already

    def compute(self, *collections):
        import dask
        with dask.config.set({"dataframe.shuffle.method": "tasks"}):
            return dask.compute(*collections, scheduler="sync")

    @contextlib.contextmanager
    def everywhere(self, setup, teardown, *args):
        setup(*args)
        try:
            yield
        finally:
            teardown(*args)

    def log_event(self, msg):
        self.events.append(msg)

    def shares_cwd(self):
        return True

    def check_resources(self, needed):
        pass                          # the tasks use this machine's devices, if it has them

    def describe(self):
        return {"scheduler": self.WORKER, "dashboard": None, "exoflow_page": None, "workers": 1, "threads": 1}

    def metrics(self):
        return dict(self.fine)

    def telemetry(self, run_id, before):
        from exoflow.telemetry import bytes_read, spilled_by_tier, spilled_bytes, time_by_activity
        now = self.metrics()
        return {"events": [m for m in self.events if m.get("run") == run_id],
                "time_by_activity": time_by_activity(now, before), "bytes_read": bytes_read(now, before),
                "spilled_bytes": spilled_bytes(now, before), "spilled_by_tier": spilled_by_tier(now, before)}
