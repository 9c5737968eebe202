"""What a job is: kernels that add columns to each chunk, and a reducer that summarises.

A job file builds one ``Job`` and ends with ``exoflow.main(job)`` so that it
also runs as ``python jobs/NAME.py PATH``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from exoflow.batch import Batch
from exoflow.metrics import meter
from exoflow.options import ChunkOptions, LoadOptions, WalkOptions

if TYPE_CHECKING:
    from exoflow.executors import Executor

# A kernel: a pure function from a batch to new columns (name -> Arrow or NumPy array).
Kernel = Callable[[Batch], dict[str, Any]]


class Reducer(Protocol):
    """Summarises a job: ``chunk`` runs on the worker that wrote the chunk and
    returns something small; ``merge`` folds those into one summary on the
    client; ``report`` renders it for a terminal."""

    def chunk(self, table: pa.Table, params: dict[str, Any]) -> dict: ...

    def merge(self, total: dict | None, part: dict) -> dict: ...

    def finish(self, total: dict | None, params: dict[str, Any]) -> dict: ...

    def report(self, summary: dict, params: dict[str, Any]) -> str: ...


@dataclass
class Finish:
    """What a job's ``after`` step gets once every chunk is written (runs on the client)."""

    executor: Executor              # submit further stages where the run's tasks ran (exoflow.executors)
    out_dir: str
    dataset_dir: str                # the Parquet dataset the chunk tasks wrote
    params: dict[str, Any]
    result: dict                    # the reducer's finished summary
    load: LoadOptions
    chunk: ChunkOptions


@dataclass(frozen=True)
class Argument:
    """A job-specific command-line flag: ``Argument("--top", type=int, default=20, help=…)``."""

    flag: str
    kwargs: dict[str, Any]

    def __init__(self, flag: str, **kwargs: Any) -> None:
        object.__setattr__(self, "flag", flag)
        object.__setattr__(self, "kwargs", kwargs)

    @property
    def dest(self) -> str:
        return self.kwargs.get("dest") or self.flag.lstrip("-").replace("-", "_")


@dataclass(frozen=True)
class Job:
    name: str
    description: str
    kernels: Sequence[Kernel]
    reducer: Reducer
    columns: Sequence[str] | None = None      # output columns in order (None: listing + kernel columns)
    reads_content: bool = False                # load file bytes into the batch before the kernels
    walk: WalkOptions = field(default_factory=WalkOptions)
    chunk: ChunkOptions = field(default_factory=ChunkOptions)
    arguments: Sequence[Argument] = ()
    dataset: str = "files"                    # name of the Parquet dataset directory in the output
    # Optional further stages on Finish.executor (dedup's grouping, an audit …); returns the
    # final summary. A summary key "exit_code" (0/1) makes the command exit with it.
    after: Callable[[Finish], dict] | None = None
    # Optional: turn the chunk's per-file rows (after the kernels) into the rows written, for jobs
    # whose output is not one row per file (scan: one row per finding).
    emit: Callable[[Batch, pa.Table], pa.Table] | None = None
    # Optional: the job's own plots in report.html, fn(summary) -> list of exoflow.plots.Bars (docs/report.md).
    plots: Callable[[dict], list] | None = None
    # Optional: the job's own tables in report.html, fn(summary, out_dir) -> list of exoflow.plots.Table;
    # it runs on a worker, where the run's datasets are, and may read them (bounded: docs/report.md).
    tables: Callable[[dict, str], list] | None = None
    # The dataset ``exoflow run --format`` writes to stdout (None: ``dataset``; dedup: its duplicates).
    main_table: str | None = None
    # Optional: fn(params) raising exoflow.errors.UsageError for options that cannot work together
    # (one option needing another, …); runs before the cluster starts.
    check: Callable[[dict[str, Any]], None] | None = None
    # Optional: fn() -> {setting: value} for what this machine's install gives the job (scan: which
    # matching engine), shown by ``exoflow info`` and recorded with ``exoflow bench`` results.
    environment: Callable[[], dict[str, str]] | None = None

    def process(self, batch: Batch) -> pa.Table:
        """Run the kernels over a batch and return the chunk's output rows."""
        table = batch.table
        if self.reads_content and any(batch.errors):
            # a file that could not be read keeps its row; the reason goes to `error`
            merged = pc.coalesce(table.column("error"), pa.array(batch.errors, pa.string()))
            table = table.set_column(table.column_names.index("error"), "error", merged)
        for kernel in self.kernels:
            with meter(getattr(kernel, "__name__", type(kernel).__name__)):
                columns = kernel(batch)
            for name, values in columns.items():
                col = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(values)
                if name in table.column_names:
                    table = table.set_column(table.column_names.index(name), name, col)
                else:
                    table = table.append_column(name, col)
        if self.emit is not None:
            table = self.emit(batch, table)
        if self.columns is not None:
            table = table.select(list(self.columns))
        return table
