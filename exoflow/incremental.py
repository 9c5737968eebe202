"""``--since PREVIOUS_OUT``: an earlier run's per-file results reused for the files that did not change.

A file is unchanged when its exact path, device, inode, size, mtime_ns and ctime_ns (an object's:
ETag, size and LastModified; it has no inode or ctime) equal those in the earlier run's saved
listing (``OUT/.exoflow-journal/listing``, see ``exoflow.journal``): an edit that restores mtime still moves ctime, and a file replaced by another has a new inode. Its
rows of the earlier dataset (one per file, or a scan's findings of it: every row with its path)
stand for it; the chunk's other rows go through the job as usual (the engine leaves the reused
rows out of what is read). Files that had an ``error`` then are read again.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import threading
import uuid
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from exoflow import outputs
from exoflow.errors import UsageError
from exoflow.journal import identity, listing_parts, read_listing, read_run_file
from exoflow.kernels.hashing import PathIndex, path_keys

if TYPE_CHECKING:
    from exoflow.job import Job
    from exoflow.options import LoadOptions
    from exoflow.runner import RunConfig

KEY = ("device", "inode", "size", "mtime_ns", "ctime_ns")
LAYOUT = "layout.json"     # of a saved Earlier: where its arrays are in arrays.bin
PREPARED = "earlier-"      # + the run's id: the directory of a saved Earlier in a run's journal

# What a reused file counts towards a chunk's --chunk-files: its rows are copied, nothing is read
# (about 1 µs a file, against some 10 µs to open and read a small one).
REUSED_COST = 0.1


def check_since(cfg: RunConfig) -> None:
    """Raise UsageError unless ``cfg.since`` is a finished run of the same job with the same job options
    whose saved listing has every KEY column (before anything starts)."""
    prev, job = cfg.since, cfg.job
    if job.reads is None:
        raise UsageError(f"--since: the {job.name} job reads no file contents; there is nothing to reuse")
    if not os.path.isdir(prev):
        what = "not a directory" if os.path.lexists(prev) else "no such directory"
        raise UsageError(f"--since {prev}: {what} (give the --out directory of an earlier {job.name} run)")
    held = read_run_file(prev)
    if held is None:
        raise UsageError(f"--since {prev}: no listing of an exoflow run there (an output of exoflow before "
                         "--since existed cannot be used: run once without --since)")
    if held["identity"]["job"] != job.name:
        other = held["identity"]["job"]
        raise UsageError(f"--since {prev}: holds {'an' if other[0] in 'aeiou' else 'a'} {other} run, not {job.name}")
    mine, theirs = identity(cfg)["params"], held["identity"]["params"]
    differ = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
    if differ:
        raise UsageError(f"--since {prev}: made with other {job.name} options ("
                         + ", ".join("--" + k.replace("_", "-") for k in differ) + "); give the same")
    if not os.path.exists(os.path.join(prev, "summary.json")):
        raise UsageError(f"--since {prev}: that run did not finish (finish it with --resume first)")
    parts = listing_parts(prev)
    if parts and any(k not in read_listing(parts[0]).column_names for k in KEY):
        raise UsageError(f"--since {prev}: its listing has no {', '.join(KEY)} (made by an earlier exoflow)")


def started_ns(out_dir: str) -> int | None:
    """When the run in ``out_dir`` started (ns since the epoch; kept by ``--resume``), or None
    where it has no run file."""
    held = read_run_file(out_dir)
    return None if held is None else int(held["now"] * 1e9)


def check_since_out(since: str, out_dir: str) -> None:
    """Raise UsageError when --since names the run's own --out (which --overwrite replaces, and
    --resume writes, before the earlier run is read)."""
    if os.path.realpath(since) == os.path.realpath(out_dir):
        raise UsageError(f"--since {since}: the same directory as --out, which this run writes: give another --out")


def expected_unchanged(table: pa.Table, before: int | None) -> np.ndarray:
    """Bool per listing row: a regular file listed without error whose ctime (an object's, which
    has none: its mtime) is older than ``before`` (ns; None: none is). No earlier run is read: a
    cheap estimate of ``Earlier.unchanged`` for cutting chunks, wrong only for files changed while
    the earlier run ran or listed with an error then."""
    if before is None or not table.num_rows:
        return np.zeros(table.num_rows, bool)
    when = pc.coalesce(table.column("ctime_ns"), table.column("mtime_ns"))
    ok = pc.and_(pc.equal(table.column("type"), "file"), pc.is_null(table.column("error")))
    return pc.fill_null(pc.and_(ok, pc.less(when, before)), False).to_numpy(zero_copy_only=False)


class Earlier:
    """The earlier run: its saved listing (its regular files listed without error, indexed by path,
    with their KEY columns and ETags) and its dataset's rows (indexed by path: how many rows each
    path has, which hold an ``error``). Built once per run by the ``prepare`` task, which writes it
    where every worker maps it (``save``, ``mapped``); held per worker process (``earlier``)."""

    def __init__(self, index: PathIndex, meta: dict[str, np.ndarray], etag: pa.Array, rows: pa.Table,
                 by_path: PathIndex, failed: PathIndex) -> None:
        self.index, self.meta, self.etag = index, meta, etag
        self.rows, self.by_path, self.failed = rows, by_path, failed

    @classmethod
    def load(cls, out_dir: str, dataset: str) -> Earlier:
        """Read and index the run in ``out_dir`` (its ``dataset`` directory)."""
        parts = listing_parts(out_dir)
        wanted = ["path", "path_bytes", "type", "error", "etag", *KEY]
        listing = pa.concat_tables([_with_etag(t.select([c for c in wanted if c in t.column_names]))
                                    for t in map(read_listing, parts)]) \
            if parts else _with_etag(pa.table({c: [] for c in KEY + ("path", "type", "error")}))
        keep = pc.and_(pc.fill_null(pc.equal(listing.column("type"), "file"), False), pc.is_null(listing.column("error")))
        if not pc.all(keep).as_py():
            listing = listing.filter(keep)
        index = PathIndex(path_keys(listing))
        meta = {k: listing.column(k).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)[index.order]
                for k in KEY}
        etag = listing.column("etag").take(pa.array(index.order, pa.int64())).fill_null("").combine_chunks()
        rows = _read_dataset(out_dir, dataset)
        keys = path_keys(rows)
        failed = pc.is_valid(rows.column("error")).to_numpy(zero_copy_only=False) \
            if "error" in rows.column_names else np.zeros(rows.num_rows, bool)
        # files whose rows hold an error are read again
        return cls(index, meta, etag, rows, PathIndex(keys), PathIndex(keys[failed]))

    def save(self, where: str) -> None:
        """Write to the new directory ``where``: the arrays in one file, the tables as Arrow IPC
        files, ``LAYOUT``. They are written to a directory of their own, renamed to ``where``
        whole: a reader sees all of one save or nothing. Where ``where`` exists already (the task
        ran twice: Dask ran it again after its worker left), that save stands and this one is dropped."""
        tmp = f"{where}.{uuid.uuid4().hex}.tmp"
        os.mkdir(tmp)          # not makedirs: a task of a run that has ended (its OUT removed) makes nothing
        try:
            arrays = {f"meta.{k}": v for k, v in self.meta.items()}
            for name in ("index", "by_path", "failed"):
                arrays.update({f"{name}.{k}": v for k, v in getattr(self, name).arrays().items()})
            layout, offset = {}, 0
            with open(os.path.join(tmp, "arrays.bin"), "wb") as f:
                for name, a in arrays.items():
                    a = np.ascontiguousarray(a)
                    f.write(b"\0" * (-offset % 64))
                    offset += -offset % 64
                    layout[name] = {"dtype": a.dtype.str, "count": len(a), "offset": offset}
                    f.write(memoryview(a).cast("B"))
                    offset += a.nbytes
            for name, table in (("etag", pa.table({"etag": self.etag})), ("rows", self.rows)):
                with pa.OSFile(os.path.join(tmp, f"{name}.arrow"), "wb") as f, pa.ipc.new_file(f, table.schema) as w:
                    w.write_table(table)
            with open(os.path.join(tmp, LAYOUT), "w", encoding="utf-8") as f:
                json.dump(layout, f)
            os.rename(tmp, where)
        except OSError:
            if not os.path.exists(os.path.join(where, LAYOUT)):
                raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    @classmethod
    def mapped(cls, where: str) -> Earlier:
        """What ``save`` wrote to ``where``, memory-mapped: nothing is copied, the pages are shared
        by every process on the host."""
        with open(os.path.join(where, LAYOUT), encoding="utf-8") as f:
            layout = json.load(f)
        raw = np.memmap(os.path.join(where, "arrays.bin"), np.uint8, "r") if layout else np.zeros(0, np.uint8)
        arrays = {name: np.frombuffer(raw, np.dtype(a["dtype"]), a["count"], a["offset"]) if a["count"]
                  else np.zeros(0, np.dtype(a["dtype"])) for name, a in layout.items()}

        def group(name: str) -> dict[str, np.ndarray]:
            return {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith(name + ".")}

        etag, rows = (pa.ipc.open_file(pa.memory_map(os.path.join(where, f"{n}.arrow"))).read_all()
                      for n in ("etag", "rows"))
        return cls(PathIndex.from_arrays(group("index")), group("meta"), etag.column("etag"), rows,
                   PathIndex.from_arrays(group("by_path")), PathIndex.from_arrays(group("failed")))

    def unchanged(self, table: pa.Table, one_row: bool, keys: np.ndarray | None = None,
                  rows: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """Bool per row of ``table`` (listing rows): a regular file listed without error, now and
        then, whose path and KEY columns (and ETag) are as before, with no earlier row holding an
        ``error`` (and, ``one_row``, with exactly one earlier row). ``keys``: its ``path_keys``;
        ``rows``: their ``by_path.find``."""
        n = table.num_rows
        if not n or not len(self.index):
            return np.zeros(n, bool)
        keys = path_keys(table) if keys is None else keys
        first, end = self.index.find(keys)
        ok = (end > first) & pc.fill_null(pc.equal(table.column("type"), "file"), False).to_numpy(zero_copy_only=False)
        ok &= pc.is_null(table.column("error")).to_numpy(zero_copy_only=False)
        for k in KEY:
            ok &= table.column(k).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64) == self.meta[k][first]
        etag = _with_etag(table).column("etag").fill_null("")
        ok &= pc.equal(etag, self.etag.take(pa.array(first, pa.int64()))).to_numpy(zero_copy_only=False)
        first, end = self.failed.find(keys)
        ok &= end == first
        if one_row:
            first, end = self.by_path.find(keys) if rows is None else rows
            ok &= (end - first) == 1
        return ok

    def split(self, table: pa.Table, one_row: bool) -> tuple[np.ndarray, pa.Table]:
        """(bool per row of ``table``: ``unchanged``, the earlier dataset's rows of those files:
        every row of each)."""
        keys = path_keys(table)
        first, end = self.by_path.find(keys)
        same = self.unchanged(table, one_row, keys, (first, end))
        first, end = first[same], end[same]
        counts = end - first
        starts = np.repeat(first - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
        rows = np.sort(self.by_path.order[starts + np.arange(int(counts.sum()))])
        return same, self.rows.take(pa.array(rows, pa.int64()))


def _read_dataset(out_dir: str, dataset: str) -> pa.Table:
    """The earlier dataset, its parts in name order (``outputs.parts``), one chunk per column."""
    parts = outputs.parts(os.path.join(out_dir, dataset))
    return pa.concat_tables([outputs.read_table(f) for f in parts], promote_options="permissive").combine_chunks()


# One per worker process, read by one thread while the others wait, and read again when the run
# it stands for was written again (its LAYOUT's, or summary.json's, mtime): a long-lived worker
# serves many runs.
_LOADING = threading.Lock()


def _stamp(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0


def prepared_dir(journal_dir: str, run_id: str) -> str:
    """Where ``prepare`` saves the earlier run for the run ``run_id``: a directory of its own in
    the run's journal, so that no other run (nor a task of a killed one, still running) writes it."""
    return os.path.join(journal_dir, f"{PREPARED}{run_id}")


def remove_prepared(journal_dir: str) -> None:
    """Remove every run's prepared earlier run (and half-written ones) from ``journal_dir``."""
    with contextlib.suppress(OSError):
        for name in os.listdir(journal_dir):
            if name.startswith(PREPARED):
                shutil.rmtree(os.path.join(journal_dir, name), ignore_errors=True)


def prepare(since: str, dataset: str, where: str | None) -> tuple[str, str]:
    """The task that builds the earlier run once for every chunk task of this run: loaded from
    ``since`` and saved to ``where`` (``prepared_dir``, on storage every worker reads). Returns
    what the chunk tasks pass to ``earlier``: ("mapped", ``where``), or ("load", ``since``) when
    ``where`` is None (an output on object storage: each worker process loads its own)."""
    if where is None:
        return "load", since
    Earlier.load(since, dataset).save(where)
    return "mapped", where


def earlier(source: tuple[str, str], dataset: str) -> Earlier:
    """The earlier run, as ``prepare`` said: mapped from where it was saved, or loaded. Raises
    FileNotFoundError when the saved one is gone (its run ended)."""
    kind, path = source
    with _LOADING:
        if kind == "mapped":
            layout = os.path.join(path, LAYOUT)
            if not os.path.exists(layout):
                raise FileNotFoundError(errno.ENOENT, "the earlier run prepared for --since is gone "
                                        "(its run ended or was stopped)", path)
            return _earlier(kind, path, dataset, _stamp(layout))
        return _earlier(kind, path, dataset, _stamp(os.path.join(path, "summary.json")))


def forget() -> None:
    """Drop this process's earlier run (its memory, its mapped files)."""
    with _LOADING:
        _earlier.cache_clear()


@lru_cache(maxsize=1)
def _earlier(kind: str, path: str, dataset: str, stamp: int) -> Earlier:
    return Earlier.mapped(path) if kind == "mapped" else Earlier.load(path, dataset)


def _with_etag(table: pa.Table) -> pa.Table:
    """``table`` with an ``etag`` column (all null for a listing made before exoflow had one)."""
    if "etag" in table.column_names:
        return table.set_column(table.schema.get_field_index("etag"), "etag", table.column("etag").cast(pa.string()))
    return table.append_column("etag", pa.nulls(table.num_rows, pa.string()))


def process_chunk(job: Job, table: pa.Table, params: dict[str, Any], load: LoadOptions,
                  source: tuple[str, str]) -> tuple[pa.Table, int]:
    """A chunk's output rows with the earlier run's rows for its unchanged files, and how many files
    were reused (``source``: what ``prepare`` returned). The other rows go through
    ``job.process_chunk``; the reused rows come after them."""
    same, old = earlier(source, job.dataset).split(table, one_row=job.emit is None)
    if not same.any():
        return job.process_chunk(table, params, load), 0
    fresh = job.process_chunk(table.filter(pa.array(~same)), params, load)
    old = old.select(fresh.column_names)
    return pa.concat_tables([fresh, old], promote_options="permissive"), int(same.sum())
