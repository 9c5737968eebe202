"""What a job is: kernels that add columns to each chunk, and a reducer that summarises.

A job file builds one ``Job`` and ends with ``exoflow.main(job)`` so that it
also runs as ``python jobs/NAME.py PATH``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from exoflow.batch import Batch, Reads, batches
from exoflow.metrics import meter
from exoflow.options import ChunkOptions, LoadOptions, WalkOptions
from exoflow.sinks import write_part
from exoflow.summary import RunSummary

if TYPE_CHECKING:
    from exoflow.executors import Executor

# A kernel: a pure function from a batch to new columns (name -> Arrow or NumPy array, one value
# per row of the batch). It reads contents only from the batch (``data``/``offsets``; a large
# file's result from ``Batch.streamed``, the consumer ``Reads.consume`` made for it, fed by the
# engine) and never opens files itself.
Kernel = Callable[[Batch], dict[str, Any]]


class Reducer(Protocol):
    """Summarises a job in three shapes, each a dict whose keys the job declares as TypedDicts in
    ``exoflow/ops/<job>/summary.py`` (``InventoryPart``, ``InventorySummary`` …):

    * a *partial* (``chunk`` and ``merge``): small whatever the chunk's size (counts, sums,
      histograms, a bounded top-N; never one entry per file), picklable, sent to the client;
    * the job's *summary* (``finish``, then the job's ``after`` step if any): JSON-serialisable,
      it becomes summary.json's ``result`` (``exoflow.summary.RunSummary``);
    * the terminal text (``report``).

    Merging is associative and does not depend on where chunks are cut: for any listing cut in
    two, ``finish(merge(merge(None, chunk(A)), chunk(B)))`` equals ``finish(merge(None, chunk(A + B)))``
    (tests/test_summaries.py checks every shipped reducer).
    """

    def chunk(self, table: pa.Table, params: dict[str, Any]) -> dict:
        """On the worker that wrote the chunk: ``table`` is the chunk's output rows (``Job.columns``),
        ``params`` the run's options (and ``now``, the run's start in epoch seconds). Returns a partial."""
        ...

    def merge(self, total: dict | None, part: dict) -> dict:
        """On the client, once per chunk as it finishes (in any order): ``part`` folded into ``total``
        (None for the first), which may be changed in place. Returns the new total partial. (Also on
        the worker, to fold a chunk's ``reused`` partial into its ``chunk`` one.)"""
        ...

    # Optional: ``reused(table, params) -> partial`` (``chunk``'s shape) for the rows of a chunk that
    # --since took from an earlier run, whose files were not read again; ``Job.summarise`` merges it
    # with ``chunk`` of the rows the run made. For jobs of one row per file (no ``emit``) that count
    # the work a run did (checksum's files hashed); without it every row goes through ``chunk``.

    def finish(self, total: dict | None, params: dict[str, Any]) -> dict:
        """On the client after the last chunk (``total`` None when there was none): the job's summary."""
        ...

    def report(self, summary: dict, params: dict[str, Any]) -> str:
        """The summary (after the job's ``after`` step) as text for a terminal: tables, no trailing newline."""
        ...


@dataclass
class Finish:
    """What a job's ``after`` step gets once every chunk is written (runs on the client)."""

    executor: Executor              # submit further stages where the run's tasks ran (exoflow.executors)
    out_dir: str
    dataset_dir: str                # the Parquet dataset the chunk tasks wrote
    params: dict[str, Any]
    result: dict                    # the reducer's finished summary (Reducer.finish)
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
        """The key of the option's value in the job's ``params`` (argparse's ``dest``)."""
        return self.kwargs.get("dest") or self.flag.lstrip("-").replace("-", "_")


@dataclass(frozen=True)
class Job:
    """A job: kernels that add columns to each chunk's rows, and a reducer that summarises them.

    Per chunk (a task on a worker): the listing rows (``exoflow.sources.entries.SCHEMA``, one
    row per entry) are loaded as ``reads`` says into ``Batch``es; each kernel returns
    ``{column: array of num_rows values}`` (Arrow or NumPy) added to the rows; ``emit`` may turn
    them into other rows; ``columns`` picks what is written to ``OUT/<dataset>/part-*.parquet``;
    ``reducer.chunk`` makes the chunk's small summary. On the client: ``reducer.merge`` folds
    them, ``reducer.finish`` makes the summary, ``after`` runs further stages, ``plots`` and
    ``tables`` draw it in report.html and ``reducer.report`` on the terminal.

    ``reads``: which files' contents the kernels need and how they are loaded (``Reads``:
    a row selector; the whole chunk at once or cache-sized sub-batches). None: no contents;
    the kernels get the listing rows only. Kernels never open files.

    A job file builds one ``Job`` named ``job`` and ends with ``exoflow.main(job)`` (README:
    "Writing a job"). Options that cannot work together raise ``exoflow.errors.UsageError``
    from ``check``; a kernel reports per-file problems in the ``error`` column, never raises
    for them.
    """

    name: str
    description: str
    kernels: Sequence[Kernel]
    reducer: Reducer
    columns: Sequence[str] | None = None      # output columns in order (None: listing + kernel columns)
    reads: Reads | None = None                 # contents the kernels need (None: none)
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
    # Optional: the job's own plots in report.html, fn(summary.json's RunSummary) -> list of exoflow.plots.Bars
    # (docs/report.md).
    plots: Callable[[RunSummary], list] | None = None
    # Optional: the job's own tables in report.html, fn(summary, out_dir) -> list of exoflow.plots.Table;
    # it runs on a worker, where the run's datasets are, and may read them (bounded: docs/report.md).
    tables: Callable[[dict, str], list] | None = None
    # The dataset ``exoflow run --format`` writes to stdout (None: ``dataset``; dedup: its duplicates).
    main_table: str | None = None
    # Optional: fn(params) raising exoflow.errors.UsageError for options that cannot work together
    # (one option needing another, …); runs before the cluster starts.
    check: Callable[[dict[str, Any]], None] | None = None
    # Optional: fn(params) -> the flag that makes this run change the files it reads (dedup:
    # "--action"), or None; such a run refuses object-storage PATHs, which exoflow only reads.
    changes_files: Callable[[dict[str, Any]], str | None] | None = None
    # Optional: fn() -> {setting: value} for what this machine's install gives the job (scan: which
    # matching engine), shown by ``exoflow info`` and recorded with ``exoflow bench`` results.
    environment: Callable[[], dict[str, str]] | None = None
    # Optional: fn(listing rows) -> listing rows, applied in each listing task to the rows a walk found
    # (not to --from-list entries); a composed run marks there which of its jobs' walks keep each row.
    mark: Callable[[pa.Table], pa.Table] | None = None

    @property
    def reads_content(self) -> bool:
        """Whether the job's chunk tasks read file contents."""
        return self.reads is not None

    def process_chunk(self, table: pa.Table, params: dict[str, Any], load: LoadOptions) -> pa.Table:
        """One chunk's output rows: the contents ``reads`` selects are loaded (``batch.batches``)
        and the kernels run on each batch; sub-batches' rows are concatenated in order.
        ``table``: the chunk's listing rows (``exoflow.sources.entries.SCHEMA``)."""
        if self.reads is None:
            return self.process(Batch(table, params, piece_bytes=load.piece_bytes))
        parts = [self.process(batch) for batch in batches(table, self.reads, load, params)]
        return parts[0] if len(parts) == 1 else pa.concat_tables(parts, promote_options="default")

    def write_chunk(self, table: pa.Table, params: dict[str, Any], load: LoadOptions, out_dir: str,
                    part: str) -> tuple[int, dict]:
        """The chunk task's work on the worker: the chunk's output rows (``process_chunk``) written
        to ``out_dir/<dataset>/part``. Returns (rows with an ``error``, the reducer's chunk summary).
        Raises OSError when the part cannot be written."""
        return self.write_rows(self.process_chunk(table, params, load), params, out_dir, part)

    def write_rows(self, result: pa.Table, params: dict[str, Any], out_dir: str, part: str,
                   reused: int = 0) -> tuple[int, dict]:
        """A chunk's output rows written to ``out_dir/<dataset>/part``; returns (rows with an
        ``error``, the reducer's chunk summary). ``reused``: see ``summarise``."""
        with meter("write"):
            write_part(result, os.path.join(out_dir, self.dataset), part)
        return self.summarise(result, params, reused)

    def summarise(self, result: pa.Table, params: dict[str, Any], reused: int = 0) -> tuple[int, dict]:
        """(rows of a chunk's output with an ``error``, the reducer's chunk summary). ``reused``: with
        --since, how many files' rows were taken from an earlier run (``incremental.process_chunk``:
        they come last, one per file for a job without ``emit``); the reducer's ``reused``
        summarises those where it has one."""
        errors = pc.count(result.column("error")).as_py() if "error" in result.column_names else 0  # non-null
        with meter("summarise"):
            earlier = getattr(self.reducer, "reused", None)
            if not reused or self.emit is not None or not callable(earlier):
                summary = self.reducer.chunk(result, params)
            else:
                made = result.num_rows - reused
                summary = self.reducer.merge(self.reducer.chunk(result.slice(0, made), params),
                                             earlier(result.slice(made), params))
        return errors, summary

    def process(self, batch: Batch) -> pa.Table:
        """Run the kernels over a batch and return its output rows (one per listing row, unless
        ``emit`` makes others); per-row read errors of the batch go to the ``error`` column.
        Raises what a kernel raises (a kernel reports per-file problems as rows, not exceptions)."""
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
