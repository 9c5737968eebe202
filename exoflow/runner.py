"""A run: listing tasks -> chunk tasks -> Parquet parts -> merged summary.

The tasks run on an executor (``exoflow.executors``: a Dask cluster, or in this process);
the client only steers: it hands directories to listing tasks, turns each
listing part's chunk ranges into chunk tasks, and folds the small per-chunk
summaries. A listing task saves its part (the run's journal) and keeps it in its
worker's memory; its chunk tasks run on any worker, taking the part from there or
reading it back (``listing_part``).
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import json
import os
import threading
import time
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from operator import itemgetter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from distributed import Client

    from exoflow.executors import Executor

import cloudpickle
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from exoflow import __version__, allocator, incremental, journal, outputs, report
from exoflow.backends import task_resources
from exoflow.chunks import content_bytes, cut, order_for_reading
from exoflow.job import Finish, Job
from exoflow.executors import as_executor
from exoflow.metrics import emit, meter
from exoflow.options import ChunkOptions, LoadOptions, WalkOptions
from exoflow.progress import Progress
from exoflow.errors import UsageError, check_interrupt
from exoflow.sinks import write_json
from exoflow.summary import RunSummary
from exoflow.sources import manifest
from exoflow.sources.entries import SCHEMA
from exoflow.longpath import stat_path
from exoflow.sources import objects, walk
from exoflow.sources.walk import DirItem, RootPlan, Walker

# A listing task stops at whichever comes first, entries or seconds, and hands back the
# directories it did not reach. Time keeps tasks short where directories are small and
# many (/usr), so an idle worker soon gets work; entries bound a task's memory.
# The first task goes breadth first and returns early: the directories it leaves, the shallowest
# (largest subtrees), are dealt round-robin to one task per worker thread.
FIRST_BUDGET = (2_000, 0.02, True)
BUDGET = (100_000, 0.3)
# Seconds between two looks at the cluster's workers (which come and go) when placing listing tasks.
WORKERS_EVERY = 1.0
# Jobs that read contents: a listing part holds about this many chunks' worth of files, so a
# chunk task on another worker than its part's reads back a part of about two chunks' rows.
CHUNKS_PER_PART = 2


def walk_budget(chunk: ChunkOptions) -> tuple[int, float]:
    """(entries, seconds) of a listing task. With --since most files are expected unchanged: a
    part holds CHUNKS_PER_PART chunks of reused files (``incremental.REUSED_COST`` each)."""
    if not chunk.read_order:
        return BUDGET
    per_file = incremental.REUSED_COST if chunk.reused_before is not None else 1.0
    return min(BUDGET[0], int(CHUNKS_PER_PART * chunk.max_files / per_file)), BUDGET[1]


@dataclass
class RunConfig:
    """One run: the job, what it reads (``paths``: files and directories, or ``from_list``: a text
    or Parquet listing), where it writes (``out_dir``, made by the caller), the job's ``params``
    (its Argument values) and the engine's options. Build it from a command line with
    ``exoflow.config.configure``."""

    job: Job
    paths: list[str]
    out_dir: str
    from_list: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    walk: WalkOptions = field(default_factory=WalkOptions)
    chunk: ChunkOptions | None = None      # None: the job's own chunk bounds
    load: LoadOptions = field(default_factory=LoadOptions)
    since: str | None = None    # an earlier run's output whose per-file results are reused (exoflow.incremental)
    resume: bool = False        # finish the killed run journalled in out_dir (exoflow.journal)

    def __post_init__(self) -> None:
        if self.chunk is None:
            self.chunk = self.job.chunk
        if self.chunk.read_order is None:   # unset: whether the job reads contents decides
            self.chunk = dataclasses.replace(self.chunk, read_order=self.job.reads_content)
        if self.since and self.chunk.read_order:
            self.chunk = dataclasses.replace(self.chunk, reused_before=incremental.started_ns(self.since))

    @property
    def sources(self) -> list[str]:
        return self.paths + ([self.from_list] if self.from_list else [])


# ---- tasks (run on workers) -------------------------------------------------

def _where() -> str | None:
    """The address of the worker running this task (None outside a cluster: ``executors.InProcess``)."""
    from distributed import get_worker
    try:
        return get_worker().address
    except ValueError:
        return None


# the schema metadata key of a saved listing part: its run and what its walk left (see _saved)
SAVED = b"exoflow-listing"

# The listing parts a worker process made or read, by the path they are saved at, least recently
# used first (``_handed``, ``listing_part``): a chunk task takes its rows from here, or reads the saved
# part where it is not (made by another worker, dropped, or the worker restarted): the part is
# saved in OUT, which every worker reads. So a chunk task depends on no task's result: the listing
# task's result is the meta alone (no task that picks it out, and waits behind another task), and
# an idle worker can take a chunk task from a busy one (Dask's work stealing) at the cost of a read.
_PARTS: OrderedDict[tuple[str, str], pa.Table] = OrderedDict()
_PARTS_LOCK = threading.Lock()
# bytes of parts kept, at most: this share of the worker's memory limit (else PARTS_BYTES)
PARTS_SHARE = 8
PARTS_BYTES = 256 * 2**20


def _parts_bound() -> int:
    from distributed import get_worker
    try:
        limit = get_worker().memory_manager.memory_limit
    except ValueError:         # not in a worker: executors.InProcess
        limit = None
    return limit // PARTS_SHARE if limit else PARTS_BYTES


def _keep(run_id: str, path: str, table: pa.Table) -> None:
    """Keep a listing part for its chunk tasks; drop the least recently used beyond _parts_bound(),
    and every part of another run (a run's parts are of no use after it)."""
    bound = _parts_bound()
    with _PARTS_LOCK:
        for key in [k for k in _PARTS if k[0] != run_id]:
            del _PARTS[key]
        _PARTS[run_id, path] = table
        _PARTS.move_to_end((run_id, path))
        while len(_PARTS) > 1 and sum(t.nbytes for t in _PARTS.values()) > bound:
            _PARTS.popitem(last=False)


def forget_parts(run_id: str) -> None:
    """Drop the run's kept listing parts (on every worker once its chunk tasks are done)."""
    with _PARTS_LOCK:
        for key in [k for k in _PARTS if k[0] == run_id]:
            del _PARTS[key]


def listing_part(run_id: str, path: str, forget: bool = False) -> pa.Table:
    """The listing part saved at ``path``, kept here or read; ``forget``: not kept afterwards
    (its last chunk task)."""
    with _PARTS_LOCK:
        table = _PARTS.pop((run_id, path), None) if forget else _PARTS.get((run_id, path))
        if table is not None and not forget:
            _PARTS.move_to_end((run_id, path))
    if table is None:
        table = _read_saved(path)[0]
        if not forget:
            _keep(run_id, path, table)
    return table


def _handed(run_id: str, listed: tuple[pa.Table, dict], path: str | None) -> dict:
    """What a listing task returns: the meta; the part is kept for its chunk tasks."""
    table, meta = listed
    if meta["chunks"] and path:
        _keep(run_id, path, table)
    return meta


def _listed(run_id: str, table: pa.Table, chunk_opts: ChunkOptions, meta: dict, t0: float,
            save: str | None) -> tuple[pa.Table, dict]:
    """The listing part and its meta for the client: chunks, counts, where it was made and how long
    it took since ``t0`` (for placing the next listing tasks). ``save``: where the part is written
    for the run's journal (``journal.save_listing``), before the client hears of it, with what the
    walk left."""
    if chunk_opts.read_order:
        table = order_for_reading(table)
    if save:
        note = json.dumps({"run": run_id, "left": journal.pack(meta["left"]), "dirs": meta["dirs"]})
        journal.save_listing(table.replace_schema_metadata({**(table.schema.metadata or {}), SAVED: note}), save)
    return _answer(table, chunk_opts, meta, t0)


def _saved(run_id: str, chunk_opts: ChunkOptions, t0: float, save: str | None) -> tuple[pa.Table, dict] | None:
    """The part this listing task saved when it ran before in this run, else None. Dask runs a task
    again when its result was lost with its worker (restarted at its memory limit); a walk again
    could list other directories within its time budget, and overwrite the part its chunk tasks
    read, while the client has already placed the directories the first one left: files were lost."""
    if not save or not outputs.exists(save):
        return None
    table, note = _read_saved(save)
    if note.get("run") != run_id:
        return None
    meta = {"left": journal.unpack(note["left"]), "dirs": note["dirs"]}
    return _answer(table, chunk_opts, meta, t0)


def _read_saved(path: str) -> tuple[pa.Table, dict]:
    """A saved listing part without the note ``_listed`` put in its metadata, and that note ({} when
    it has none: an earlier exoflow's part)."""
    table = journal.read_listing(path)
    metadata = dict(table.schema.metadata or {})
    note = json.loads(metadata.pop(SAVED, b"{}"))
    return table.replace_schema_metadata(metadata or None), note


def _answer(table: pa.Table, chunk_opts: ChunkOptions, meta: dict, t0: float) -> tuple[pa.Table, dict]:
    sizes = content_bytes(table)
    # the byte bound is about memory for contents: without reading, only the file count matters
    bound, files = (sizes if chunk_opts.read_order else np.zeros_like(sizes)), None
    if chunk_opts.reused_before is not None:      # --since: files whose rows are reused are not read
        reused = incremental.expected_unchanged(table, chunk_opts.reused_before)
        bound, files = np.where(reused, 0, bound), np.where(reused, incremental.REUSED_COST, 1.0)
    meta.update(files=table.num_rows, bytes=int(sizes.sum()), chunks=cut(bound, chunk_opts, files), worker=_where(),
                seconds=time.perf_counter() - t0, nbytes=table.nbytes)
    return table, meta


def list_tree(run_id: str, stack: list[DirItem | objects.Prefix], root_files: list[str], opts: WalkOptions,
              budget: tuple, chunk_opts: ChunkOptions, mark=None, storage: str = "",
              save: str | None = None) -> dict:
    """A listing task: walk ``stack`` (directories, and object-storage prefixes listed with
    ``storage``'s options) and ``root_files`` (files and objects) within ``budget`` ((entries,
    seconds), or (entries, seconds, breadth first): ``Walker.run``); ``mark``: ``Job.mark``;
    ``save``: see ``_listed``."""
    allocator.settle()
    t0 = time.perf_counter()
    journal.test_pause("list")
    again = _saved(run_id, chunk_opts, t0, save)
    if again:
        return _handed(run_id, again, save)
    with meter("list"):
        walker, lister = Walker(opts), objects.Lister(opts, storage)
        for f in root_files:
            if not objects.is_url(f):
                walker.add_root_file(f)
        lister.add_objects([f for f in root_files if objects.is_url(f)])
        prefixes = [d for d in stack if isinstance(d, objects.Prefix)]
        left = walker.run([d for d in stack if not isinstance(d, objects.Prefix)], *budget)
        left += lister.run(prefixes, budget[0] - len(walker.out), budget[1])
        tables = [t for t in (walker.out.table(), lister.out.table()) if t.num_rows] or [SCHEMA.empty_table()]
        table = pa.concat_tables(tables)
        listed = _listed(run_id, table if mark is None else mark(table), chunk_opts,
                         {"left": left, "dirs": walker.dirs_scanned + lister.prefixes_listed}, t0, save)
    emit("listed", run_id, files=listed[1]["files"], bytes=listed[1]["bytes"], chunks=len(listed[1]["chunks"]))
    return _handed(run_id, listed, save)


def list_piece(run_id: str, piece: manifest.TextRange | manifest.ParquetPart, chunk_opts: ChunkOptions,
               drop: np.ndarray | None = None, save: str | None = None) -> dict:
    """A piece of a --from-list listing; ``drop``: see ``manifest.collect``."""
    allocator.settle()
    t0 = time.perf_counter()
    again = _saved(run_id, chunk_opts, t0, save)
    if again:
        return _handed(run_id, again, save)
    with meter("list"):
        listed = _listed(run_id, manifest.collect(piece, drop), chunk_opts, {"left": [], "dirs": 0}, t0, save)
    emit("listed", run_id, files=listed[1]["files"], bytes=listed[1]["bytes"], chunks=len(listed[1]["chunks"]))
    return _handed(run_id, listed, save)


def load_listing(run_id: str, path: str, record: dict) -> dict:
    """A listing part a killed run saved (``--resume``), with its journalled chunks and counts."""
    t0 = time.perf_counter()
    table = _read_saved(path)[0]
    return _handed(run_id, (table, {
        "left": [], "dirs": record["dirs"], "files": table.num_rows, "bytes": record["bytes"],
        "chunks": [tuple(c) for c in record["chunks"]], "worker": _where(), "seconds": time.perf_counter() - t0,
        "nbytes": table.nbytes}), path)


@functools.lru_cache(maxsize=8)
def unpack_job(blob: bytes) -> Job:
    """Jobs travel as cloudpickle bytes: Dask pickles a task's arguments by reference when it can,
    which would break a user's job file on workers that cannot import it. Cached per worker."""
    return cloudpickle.loads(blob)


def _replayed(dataset_dir: str, part: str, journalled: dict | None, digest: str) -> pa.Table | None:
    """The rows a killed run wrote for this chunk (``--resume``), when its journal record is for these
    same listing rows and the part can be read; else None (the chunk is run again)."""
    if journalled is None or journalled["hash"] != digest:
        return None
    try:
        return outputs.read_table(os.path.join(dataset_dir, part))
    except (OSError, pa.ArrowException):
        return None


def run_chunk(run_id: str, listing: str, start: int, stop: int, job_blob: bytes, params: dict,
              load_opts: LoadOptions, out_dir: str, part: str, earlier: tuple[str, str] | None = None,
              journalled: dict | None = None, last: bool = False) -> dict:
    """The chunk task: rows ``[start, stop)`` of the listing part saved at ``listing`` (``listing_part``;
    ``last``: its last chunk task, after which it is not kept) through the job (loading, kernels),
    written to ``out_dir/<dataset>/part`` (``Job.write_chunk``); returns the counts and the reducer's
    chunk summary for the client. ``earlier``: with --since, where the earlier run whose rows of
    unchanged files are reused was prepared (``exoflow.incremental.prepare``); ``journalled``: the chunk's journal record from a killed run,
    whose part is read back instead (``exoflow.journal``). Per-file problems are rows with an
    ``error``; an OSError of the part's write raises."""
    allocator.settle()
    t0 = time.perf_counter()
    job = unpack_job(job_blob)
    table = listing_part(run_id, listing, forget=last).slice(start, stop - start)
    nbytes = int(content_bytes(table).sum())
    digest = journal.rows_hash(table)
    result = _replayed(os.path.join(out_dir, job.dataset), part, journalled, digest)
    replayed = result is not None
    reused = journalled["reused"] if replayed else 0
    if replayed:
        errors, summary = job.summarise(result, params, reused)
    else:
        journal.test_pause("chunk")
        if earlier:
            result, reused = incremental.process_chunk(job, table, params, load_opts, earlier)
            errors, summary = job.write_rows(result, params, out_dir, part, reused)
        else:
            errors, summary = job.write_chunk(table, params, load_opts, out_dir, part)  # loads what job.reads selects
    emit("chunk", run_id, files=table.num_rows, bytes=nbytes, errors=errors)
    # rows: the chunk's listing entries (a job may write a different number of rows, e.g. one per
    # finding); of them regular files and other entries (symlinks, FIFOs …; not the error rows of
    # directories that could not be read)
    kinds = table.column("type")
    files = pc.sum(pc.equal(kinds, "file")).as_py() or 0
    dirs = pc.sum(pc.equal(kinds, "dir")).as_py() or 0
    return {"rows": table.num_rows, "files": files, "other": table.num_rows - files - dirs, "bytes": nbytes,
            "errors": errors, "summary": summary, "seconds": time.perf_counter() - t0,
            "hash": digest, "reused": reused, "replayed": replayed}


# ---- the client's loop --------------------------------------------------------

def plan(paths: list[str], opts: WalkOptions, absolute: bool = False, storage: str = "") -> RootPlan:
    """The PATHs as walk roots, each file reached through them once (see ``walk.plan_roots``);
    ``absolute``: spelled from /, for workers that do not share this process's working directory.
    URL PATHs (``objects.is_url``) are checked on their store (``storage``: its options) and become
    prefixes (in ``dirs``) and objects (in ``files``). Raises UsageError for a PATH that cannot be
    reached."""
    urls = [p for p in paths if objects.is_url(p)]
    stored = objects.plan(urls, storage, opts)
    given = []
    for p in (p for p in paths if not objects.is_url(p)):
        try:
            st = stat_path(p)
        except FileNotFoundError:
            raise UsageError(f"{p}: no such file or directory") from None
        except OSError as e:
            raise UsageError(f"{p}: {e.strerror}") from None
        given.append((walk.absolute(p) if absolute else p, st))
    local = walk.plan_roots(given, opts)
    return RootPlan(local.dirs + stored.prefixes, local.files + stored.objects, local.merged + stored.merged)


def _skipping_out_dir(dirs: list[DirItem | objects.Prefix], out_dir: str | None,
                      storage: str) -> list[DirItem | objects.Prefix]:
    """The run's own output directory is never walked nor listed, however it is spelled (``--out``
    inside a PATH, the default ``./exoflow-…`` under ``.``, an --out URL under a PATH's prefix, with
    a trailing "/" or not; a local --out under a ``file://`` PATH): it is skipped like another PATH's tree."""
    if not out_dir:
        return dirs
    try:
        st = None if objects.is_url(out_dir) else os.stat(out_dir)
    except OSError:
        st = None
    where = objects.place(out_dir, storage)
    return [dataclasses.replace(d, skip=where) if isinstance(d, objects.Prefix) else
            d if st is None else dataclasses.replace(d, others=d.others | {(st.st_dev, st.st_ino)}) for d in dirs]


def validate(cfg: RunConfig) -> list[str]:
    """Raise UsageError for inputs that cannot work, before any cluster starts; return notes for the
    user (which PATHs overlap: their files are listed once)."""
    if not cfg.paths and not cfg.from_list:
        raise UsageError("nothing to do: give a PATH or --from-list FILE")
    merged = plan(cfg.paths, cfg.walk, storage=cfg.load.storage_options).merged
    if cfg.from_list:
        manifest.plan(cfg.from_list, storage=cfg.load.storage_options)
    if cfg.since:
        incremental.check_since(cfg)
    return ["PATHs overlap, each file is listed once: " + ", ".join(" ".join(m) for m in merged)] if merged else []


class _Load:
    """What the run has handed each worker and not seen finish: listing tasks, and seconds of
    work estimated from the mean duration of each kind of task so far. A listing task goes
    to the worker with the fewest listings in flight, then the least work."""

    def __init__(self, nthreads: dict[str, int]) -> None:
        self.nthreads = dict(nthreads)
        self.listings = dict.fromkeys(self.nthreads, 0)
        self.busy = dict.fromkeys(self.nthreads, 0.0)
        self.mean = {"list": 0.1, "chunk": 0.1}    # until the first tasks finish
        self.seen = {"list": 0, "chunk": 0}

    def update(self, nthreads: dict[str, int]) -> None:
        """Workers come and go on a real cluster (and may not have joined when a run starts)."""
        for w in set(self.busy) - set(nthreads):
            del self.busy[w], self.listings[w]
        for w in nthreads:
            self.busy.setdefault(w, 0.0)
            self.listings.setdefault(w, 0)
        self.nthreads = dict(nthreads)

    def least_busy(self) -> str | None:
        def key(w: str) -> tuple[float, float]:
            n = max(self.nthreads.get(w, 1), 1)
            return self.listings[w] / n, self.busy[w] / n
        return min(self.busy, key=key, default=None)

    def add(self, worker: str | None, kind: str) -> tuple[str | None, float]:
        """Count a task on ``worker``; returns what ``done`` takes back."""
        if worker is not None:
            self.busy[worker] = self.busy.get(worker, 0.0) + self.mean[kind]
            self.listings[worker] = self.listings.get(worker, 0) + (kind == "list")
        return worker, self.mean[kind]

    def done(self, placed: tuple[str | None, float], kind: str, seconds: float | None) -> None:
        """Take back what ``add`` counted; ``seconds``: how long the task took (None: not a task of
        ``kind`` whose mean it tells, e.g. --since's prepare task, counted as a listing)."""
        worker, counted = placed
        if worker in self.busy:
            self.busy[worker] = max(0.0, self.busy[worker] - counted)
            if kind == "list":
                self.listings[worker] = max(0, self.listings[worker] - 1)
        if seconds is None:
            return
        self.seen[kind] += 1
        self.mean[kind] += (seconds - self.mean[kind]) / self.seen[kind]


class _Run:
    def __init__(self, ex: Executor, cfg: RunConfig, progress: Progress, log: journal.Journal,
                 resumed: journal.Resumed | None) -> None:
        self.ex, self.cfg, self.progress = ex, cfg, progress
        self.journal, self.resumed = log, resumed     # --resume: what the killed run finished
        self.id = uuid.uuid4().hex[:8]
        self.job_blob = cloudpickle.dumps(cfg.job)
        # a composed run has no dataset of its own: each of its jobs writes OUT/JOB/<dataset>
        self.dataset_dir = os.path.join(cfg.out_dir, cfg.job.dataset) if cfg.job.dataset else ""
        self.ac = ex.as_completed()
        self.pending: deque[DirItem] = deque()
        nthreads = ex.nthreads()                 # one call: a round trip to the scheduler
        threads = sum(nthreads.values())
        self.slots = max(2, threads)
        # listing parts whose chunks are not done (listing name -> bytes): the walk
        # goes ahead of the chunks while they take less than half the tasks' memory (see walk_first);
        # never with one thread in all, where nothing runs beside the walk
        self.held: dict[str, int] = {}
        memory = ex.task_memory()
        self.hold_limit = 0 if threads <= 1 else None if memory is None else memory * threads // 2
        self.walks_in_flight = 0
        self.listings: dict[str, str] = {}       # listing future key -> where its part is saved
        self.chunks_left: dict[str, int] = {}    # listing name -> chunks not yet done
        self.chunk_of: dict[str, str] = {}       # chunk future key -> its listing's name
        self.load = _Load(nthreads)               # where the next listing task goes
        self.workers_seen = time.monotonic()      # when self.load last learnt the workers
        self.placed: dict[str, tuple[str | None, float]] = {}  # future key -> what self.load counted
        self.futures: dict[str, Any] = {}        # everything in flight, for cancelling
        self.resources = task_resources(cfg.params)   # chunk tasks of a GPU run go to GPU workers
        if self.resources:
            ex.check_resources(self.resources)
        self.seq = resumed.seq if resumed else 0     # numbers part and listing files: new ones for new work
        self.listing_info: dict[str, dict] = {}   # listing future key -> its journal record so far
        self.chunk_info: dict[str, dict] = {}     # chunk future key -> its journal record so far
        self.reused = 0                           # --since: files whose earlier rows were reused
        self.since = None                         # --since: the prepare task, whose result chunk tasks read
        self.prepared = False                     # and whether it has finished
        if cfg.since:       # the earlier run spelled as workers elsewhere find it, built once for all
            w = self.load.least_busy()
            self.since = ex.submit(incremental.prepare, os.path.abspath(cfg.since), cfg.job.dataset,
                                   self.prepared_dir(), key=self.key("earlier"), where=w, priority=20)
            self.placed[self.since.key] = self.load.add(w, "list")    # the walk starts elsewhere
            self.futures[self.since.key] = self.since
            self.ac.add(self.since)
        self.listed = self.done = self.bytes = self.errors = self.n_chunks = self.dirs = 0
        self.files = self.other = 0      # of the entries done: regular files, other entries
        self.total: dict | None = None

    def prepared_dir(self) -> str | None:
        """Where ``incremental.prepare`` saves the earlier run for this run's workers (None for an
        output on object storage); removed when the run ends."""
        return None if objects.is_url(self.cfg.out_dir) else incremental.prepared_dir(self.journal.dir, self.id)

    def walk_first(self) -> bool:
        """Whether listing tasks go before chunk tasks (placed first, higher priority): the walk finds
        the work and spreads it over the workers, but every part it lists ahead of the chunks is
        rows their tasks will hold (and parts kept in memory, up to a bound); so only while the
        parts waiting are under ``hold_limit`` (None: no bound)."""
        return self.hold_limit is None or sum(self.held.values()) < self.hold_limit

    def key(self, kind: str) -> str:
        self.seq += 1
        return f"exoflow-{kind}-{self.id}-{self.seq:06d}"

    def submit_listing(self, fn, *args, record: dict | None = None, restored: str | None = None) -> None:
        """A listing task ``fn(run id, *args, save)``, its part saved for the journal under the task's
        number; ``record``: what the journal is to say of it (the directories it was given, whether
        it lists the root files, its --from-list piece). ``restored``: the name of a journalled part
        that ``fn`` loads again (nothing saved, nothing journalled)."""
        # on the least busy worker (Dask would queue several on one worker, and does not steal a
        # task of a kind it has no duration for yet)
        w = self.load.least_busy()
        key = self.key("list")
        name = restored or "L-" + key.split("-", 2)[2]     # L-<run id>-<number>: no other run's task writes it
        path = self.journal.listing_path(name)            # where the part is saved (or was, restored)
        save = () if restored else (path,)
        lf = self.ex.submit(fn, self.id, *args, *save, key=key, where=w, priority=20 if self.walk_first() else 0)
        self.placed[lf.key] = self.load.add(w, "list")
        self.listings[lf.key] = path
        self.listing_info[lf.key] = {"kind": "listing", "name": name, "restored": bool(restored), **(record or {})}
        self.futures[lf.key] = lf
        self.walks_in_flight += 1
        self.ac.add(lf)

    def submit_walks(self, budget: tuple | None = None, root_files: list[str] | None = None) -> None:
        budget = budget or walk_budget(self.cfg.chunk)
        if time.monotonic() - self.workers_seen > WORKERS_EVERY:    # a round trip: not at each listing
            self.load.update(self.ex.nthreads())
            self.workers_seen = time.monotonic()
        if root_files:
            self.submit_listing(list_tree, [], root_files, self.cfg.walk, budget, self.cfg.chunk,
                                self.cfg.job.mark, self.cfg.load.storage_options,
                                record={"stack": [], "root_files": True})
        preparing = int(self.since is not None and not self.prepared)    # --since's task holds a slot
        free = self.slots - self.walks_in_flight - preparing
        if free <= 0 or not self.pending:
            return
        # Dealt round-robin (the pending directories come shallow, large subtrees, first); a stack
        # is kept pending for the slot the prepare task holds.
        n = min(free + preparing, len(self.pending))
        stacks = [list(itertools.islice(self.pending, i, None, n)) for i in range(n)]
        self.pending = deque(itertools.chain.from_iterable(stacks[free:]))
        for stack in stacks[:free]:
            self.submit_listing(list_tree, stack, [], self.cfg.walk, budget, self.cfg.chunk, self.cfg.job.mark,
                                self.cfg.load.storage_options, record={"stack": [d.ident for d in stack]})

    def on_listing(self, lf, meta: dict) -> None:
        path = self.listings.pop(lf.key)
        record = self.listing_info.pop(lf.key)
        name = record["name"]
        if not record.pop("restored"):     # the part is saved: the journal says what it covers
            left, stack = {d.ident for d in meta["left"]}, record.pop("stack")
            self.journal.add({**record, "finished": [p for p in stack if p not in left],
                              "left": journal.pack(meta["left"]), "dirs": meta["dirs"], "bytes": meta["bytes"],
                              "chunks": meta["chunks"]})
        del self.futures[lf.key]
        self.walks_in_flight -= 1
        self.load.done(self.placed.pop(lf.key), "list", meta["seconds"])
        where = meta["worker"]    # keeps the part: where its chunk tasks are counted (they run anywhere)
        self.listed += meta["files"]
        self.dirs += meta["dirs"]
        self.pending.extend(meta["left"])
        first = self.walk_first()
        if first:
            self.submit_walks()
        cfg = self.cfg
        for i, (start, stop) in enumerate(meta["chunks"]):
            key = self.key("chunk")
            done = self.resumed.chunks.get((name, start, stop)) if self.resumed else None
            part = done["part"] if done else f"part-{key.rsplit('-', 1)[1]}.parquet"
            cf = self.ex.submit(run_chunk, self.id, path, start, stop, self.job_blob, cfg.params, cfg.load,
                                cfg.out_dir, part, self.since, done, i == len(meta["chunks"]) - 1, key=key,
                                priority=10, resources=self.resources)
            self.chunk_info[cf.key] = {"kind": "chunk", "listing": name, "start": start, "stop": stop, "part": part}
            self.futures[cf.key] = cf
            self.chunk_of[cf.key] = name
            self.placed[cf.key] = self.load.add(where, "chunk")
            self.ac.add(cf)
        if meta["chunks"]:
            self.chunks_left[name] = len(meta["chunks"])
            self.held[name] = meta["nbytes"]
        if not first:
            self.submit_walks()

    def on_chunk(self, cf, r: dict) -> None:
        del self.futures[cf.key]
        record = self.chunk_info.pop(cf.key)
        if not r["replayed"]:
            self.journal.add({**record, "hash": r["hash"], "reused": r["reused"]})
        self.reused += r["reused"]
        self.load.done(self.placed.pop(cf.key), "chunk", r["seconds"])
        name = self.chunk_of.pop(cf.key)
        self.chunks_left[name] -= 1
        if not self.chunks_left[name]:
            del self.chunks_left[name], self.held[name]
        self.done += r["rows"]
        self.files += r["files"]
        self.other += r["other"]
        self.bytes += r["bytes"]
        self.errors += r["errors"]
        self.n_chunks += 1
        self.total = self.cfg.job.reducer.merge(self.total, r["summary"])

    def event(self, kind: str, **fields: Any) -> None:
        self.ex.log_event({"kind": kind, "run": self.id, "job": self.cfg.job.name, "time": time.time(), **fields})

    def execute(self) -> None:
        self.event("run-start", sources=self.cfg.sources, out=self.cfg.out_dir)
        base = None if self.ex.shares_cwd() else os.getcwd()    # relative PATHs mean the same there?
        roots = plan(self.cfg.paths, self.cfg.walk, absolute=base is not None, storage=self.cfg.load.storage_options)
        dirs, files = _skipping_out_dir(roots.dirs, self.cfg.out_dir, self.cfg.load.storage_options), roots.files
        if self.resumed:       # the journalled parts again, and the walk from where they stopped
            for name, record in self.resumed.listings.items():
                self.submit_listing(load_listing, self.journal.listing_path(name), record, restored=name)
            dirs, files = self.resumed.frontier(dirs, files)
        self.pending.extend(dirs)
        if self.cfg.from_list:
            self.submit_list(manifest.plan(self.cfg.from_list, base, self.cfg.load.storage_options))
        self.submit_walks(FIRST_BUDGET, files)
        try:
            for f, result in self.ac:            # a task's exception is raised here
                if f.key in self.listings:
                    self.on_listing(f, result)
                    if self.listing_done():      # the page's progress bar: the whole run is listed
                        self.event("listing-done", files=self.listed)
                elif f is self.since:
                    self.prepared = True
                    self.load.done(self.placed.pop(f.key), "list", None)
                    self.submit_walks()
                else:
                    self.on_chunk(f, result)
                self.progress.update(self.done, self.bytes, self.listed, self.listing_done())
                check_interrupt()
            check_interrupt()
        except BaseException:
            self.ex.cancel(self.futures.values())
            self.event("run-end", status="interrupted", files=self.done, bytes=self.bytes, errors=self.errors)
            raise
        finally:
            self.progress.close()

    def submit_list(self, pieces: list[manifest.TextRange] | list[manifest.ParquetPart]) -> None:
        """Listing tasks for the pieces of a --from-list listing. A path listed twice is one entry: with
        several pieces, a task on the cluster finds the repeats from the pieces' path keys first."""
        done = self.resumed.pieces_done() if self.resumed else set()
        if len(pieces) == 1:
            if 0 not in done:
                self.submit_listing(list_piece, pieces[0], self.cfg.chunk, None, record={"stack": [], "piece": 0})
            return
        keys = [self.ex.submit(manifest.piece_keys, p, key=self.key("keys")) for p in pieces]
        drops = self.ex.submit(manifest.repeats, keys, key=self.key("repeats"))
        for i, piece in enumerate(pieces):
            if i not in done:
                self.submit_listing(list_piece, piece, self.cfg.chunk,
                                    self.ex.submit(itemgetter(i), drops, key=self.key("drop")),
                                    record={"stack": [], "piece": i})

    def listing_done(self) -> bool:
        return not self.pending and self.walks_in_flight == 0


def run(executor: Executor | Client, cfg: RunConfig, progress: Progress | None = None) -> RunSummary:
    """Run a job to completion on ``executor`` (an ``exoflow.executors`` executor, or a Dask client):
    list ``cfg``'s sources, run the chunk tasks, fold their summaries, run the job's ``after``
    step; write ``OUT/<dataset>/``, ``OUT/summary.json`` and ``OUT/report.html``; return the
    summary (``exoflow.summary.RunSummary``: counts, bytes, seconds, the job's ``result``).

    Raises UsageError for sources that cannot be read at all (before any task), what a task
    raises for a failure that is not one file's (a worker lost for good, a full disk), and
    KeyboardInterrupt as it comes; files that cannot be read are rows with an ``error``."""
    ex = as_executor(executor)
    t0 = time.time()
    with contextlib.ExitStack() as stack:
        if objects.is_url(cfg.out_dir):     # the workers write their parts straight to the store
            outputs.register(cfg.out_dir, cfg.load.storage_options)
            stack.enter_context(ex.everywhere(outputs.register, outputs.unregister, cfg.out_dir,
                                              cfg.load.storage_options))
        if cfg.since:        # no worker keeps the earlier run mapped (its files removed) once this one ends
            stack.enter_context(ex.everywhere(incremental.forget, incremental.forget))
        return _run(ex, cfg, progress, t0)


def _run(ex: Executor, cfg: RunConfig, progress: Progress | None, t0: float) -> RunSummary:
    """``run``, once every process can reach ``cfg.out_dir``."""
    if cfg.resume:       # the killed run's start stands: reducers measure ages from it
        log, resumed = journal.Journal.reopen(cfg.out_dir, cfg)
    else:
        log, resumed = journal.Journal.create(cfg.out_dir, cfg, t0), None
    if not objects.is_url(cfg.out_dir):
        incremental.remove_prepared(log.dir)       # a killed --since run's
    params = {"now": resumed.now if resumed else t0, **cfg.params}
    cfg = dataclasses.replace(cfg, params=params)
    r = _Run(ex, cfg, progress or Progress(False), log, resumed)
    metrics_before = ex.metrics()      # for report.html: this run's share of the fine metrics
    try:
        with ex.everywhere(forget_parts, forget_parts, r.id):   # no worker keeps them past the chunk tasks
            r.execute()
    finally:
        log.close()
        if r.prepared_dir():     # this run's earlier run for --since, and any a killed run left
            incremental.remove_prepared(log.dir)
    if r.n_chunks == 0:   # still leave a readable (empty) dataset with the job's columns
        cfg.job.write_chunk(SCHEMA.empty_table(), params, cfg.load, cfg.out_dir, "part-empty.parquet")
    wall = time.time() - t0
    summary: RunSummary = {
        "job": cfg.job.name,
        "exoflow_version": __version__,
        "sources": cfg.sources,
        "out": cfg.out_dir,
        "dataset": r.dataset_dir,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(t0)),
        "wall_s": round(wall, 3),
        "files": r.files,
        "other_entries": r.other,
        "entries": r.done,
        "bytes": r.bytes,
        "errors": r.errors,
        "dirs": r.dirs,
        "chunks": r.n_chunks,
        "files_per_s": round(r.files / wall, 1) if wall else None,
        "bytes_per_s": round(r.bytes / wall, 1) if wall else None,
        "cluster": ex.describe(),
        "params": {k: v for k, v in params.items() if k != "now"},
        "result": cfg.job.reducer.finish(r.total, params),
    }
    if cfg.since:
        summary["since"] = {"previous": cfg.since, "files_reused": r.reused, "files_read": r.files - r.reused}
    if cfg.job.after is not None:
        journal.test_pause("after")
        r.event("after")          # report.html's timeline shows the after-step's part of the run
        try:
            summary["result"] = cfg.job.after(Finish(ex, cfg.out_dir, r.dataset_dir, params, summary["result"],
                                                     cfg.load, cfg.chunk))
        except BaseException:
            r.event("run-end", status="failed", files=r.done, bytes=r.bytes, errors=r.errors)
            raise
        wall = time.time() - t0
        summary["wall_s"] = round(wall, 3)
    r.event("run-end", status="done", files=r.done, bytes=r.bytes, errors=r.errors)
    tables = report.submit_tables(ex, summary, cfg.job.tables)    # made while the telemetry is gathered
    telemetry = ex.telemetry(r.id, metrics_before)
    summary["bytes_read"] = telemetry["bytes_read"]
    summary["spilled_bytes"] = telemetry["spilled_bytes"]
    summary["spilled_by_tier"] = telemetry["spilled_by_tier"]
    summary["time_by_activity"] = telemetry["time_by_activity"]
    write_json(os.path.join(cfg.out_dir, "summary.json"), summary)
    report.write(cfg.out_dir, summary, telemetry, cfg.job.plots, tables())
    return summary
