"""The listing table: one row per entry, built from ``lstat`` results.

Every source (tree walk, listing file, Parquet manifest) fills an
``EntryCollector``; the table it builds is what chunks are cut from.
"""
from __future__ import annotations

import os
from operator import attrgetter

import numpy as np
import pyarrow as pa

from exoflow.paths import display_column, path_columns

# Index = (st_mode >> 12) & 0xF, the file-type bits of st_mode.
TYPE_NAMES = np.array(
    ["unknown", "fifo", "char", "unknown", "dir", "unknown", "block", "unknown",
     "file", "unknown", "symlink", "unknown", "socket", "unknown", "unknown", "unknown"],
    dtype=object,
)
TYPE_DICT = pa.array(TYPE_NAMES.tolist(), pa.string())
# Mode bits standing in for the type when stat failed and only readdir's d_type is known.
HINT_MODE = {"file": 0o100000, "dir": 0o040000, "symlink": 0o120000}

# listing column -> os.stat_result attribute
STAT_FIELDS = {"size": "st_size", "blocks": "st_blocks", "mtime_ns": "st_mtime_ns", "mode": "st_mode",
               "uid": "st_uid", "gid": "st_gid", "inode": "st_ino", "device": "st_dev", "nlink": "st_nlink",
               "ctime_ns": "st_ctime_ns"}

SCHEMA = pa.schema([
    ("path", pa.string()),
    ("path_bytes", pa.binary()),
    ("type", pa.string()),
    ("size", pa.int64()),
    ("blocks", pa.int64()),
    ("mtime_ns", pa.int64()),
    ("mode", pa.int64()),
    ("uid", pa.int64()),
    ("gid", pa.int64()),
    ("inode", pa.uint64()),
    ("device", pa.uint64()),
    ("nlink", pa.int64()),
    ("ctime_ns", pa.int64()),     # inode change time: --since tells an edit that restored mtime by it
    ("depth", pa.int32()),
    ("top_dir", pa.string()),
    ("error", pa.string()),
    # object storage (exoflow.sources.objects); null for local files
    ("etag", pa.string()),
    ("storage_class", pa.string()),
    ("version_id", pa.string()),
])
OBJECT_COLUMNS = ("etag", "storage_class", "version_id")


class EntryCollector:
    """Accumulates entries; ``table()`` builds the Arrow listing in one pass.

    Rows arrive in blocks of flat bytes (paths, their lengths, N x 10 stat fields) from
    the compiled lister, or one at a time (``add``) from Python; the latter are sealed
    into a block before the next block, so rows keep their order. Depth and top
    directory are constant within a directory, so they are kept as runs (``start_run``)
    rather than per entry.
    """

    def __init__(self) -> None:
        self.paths: list[str] = []                       # rows added one at a time, not yet sealed
        self.stats: list[os.stat_result | None] = []
        self.blocks: list[tuple[bytes, bytes, bytes]] = []
        self.sealed = 0                                  # rows in blocks
        self.no_stat: list[int] = []                     # error rows without a stat result
        self.runs: list[tuple[int, int, str | None]] = []   # (first row, depth, top)
        self.errors: dict[int, tuple[str, str | None]] = {}  # row -> (error, type hint)
        self.path_bytes = 0                              # of every row's path (characters, from Python)

    def __len__(self) -> int:
        return self.sealed + len(self.paths)

    def start_run(self, depth: int, top: str | None) -> None:
        """Rows added from now on have this depth and top directory."""
        run = (len(self), depth, top)
        if self.runs and self.runs[-1][0] == run[0]:
            self.runs[-1] = run
        else:
            self.runs.append(run)

    def add(self, path: str, st: os.stat_result) -> None:
        self.path_bytes += len(path)
        self.paths.append(path)
        self.stats.append(st)

    def extend(self, paths: list[str], stats: list[os.stat_result]) -> None:
        """``add`` of each of ``paths`` with its stat result."""
        self.path_bytes += sum(map(len, paths))
        self.paths.extend(paths)
        self.stats.extend(stats)

    def add_error(self, path: str, error: str, st: os.stat_result | None = None,
                  hint: str | None = None) -> None:
        self.errors[len(self)] = (error, hint)
        if st is None:
            self.no_stat.append(len(self))
        self.path_bytes += len(path)
        self.paths.append(path)
        self.stats.append(st or _NO_STAT)

    def add_block(self, paths: bytes, lengths: bytes, stats: bytes) -> None:
        """A block of rows: paths concatenated (bytes), their lengths and N x 10 stat fields (int64
        bytes, in STAT_FIELDS' order)."""
        self._seal()
        self.path_bytes += len(paths)
        self.blocks.append((paths, lengths, stats))
        self.sealed += len(lengths) // 8

    def add_rows(self, paths: bytes, lengths: bytes, stats: bytes, runs: list[tuple[int, int, str | None]],
                 problems: list[tuple[int, str, str | None]]) -> None:
        """Rows of many directories as ``exoflow._native.walk_dirs`` returns them: ``runs`` (first
        row, depth, top) and ``problems`` (row, error, type hint: rows without a stat result)
        numbered from this block's first row."""
        base = len(self)
        self.add_block(paths, lengths, stats)
        self.runs.extend((base + row, depth, top) for row, depth, top in runs)
        for row, error, hint in problems:
            self.errors[base + row] = (error, hint)
            self.no_stat.append(base + row)

    def _seal(self) -> None:
        n = len(self.paths)
        if not n:
            return
        cols = np.empty((n, len(STAT_FIELDS)), dtype=np.int64)
        for j, attr in enumerate(STAT_FIELDS.values()):
            dtype = np.uint64 if attr in ("st_ino", "st_dev") else np.int64
            try:
                cols[:, j] = np.fromiter(map(attrgetter(attr), self.stats), dtype=dtype, count=n).view(np.int64)
            except OverflowError:     # an mtime past 2262 (or before 1677) in ns: saturated, as the C lister does
                info = np.iinfo(dtype)
                cols[:, j] = np.array([min(max(v, info.min), info.max) for v in map(attrgetter(attr), self.stats)],
                                      dtype=dtype).view(np.int64)
        encoded = [os.fsencode(p) for p in self.paths]
        lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=n)
        self.blocks.append((b"".join(encoded), lengths.tobytes(), cols.tobytes()))
        self.sealed += n
        self.paths, self.stats = [], []

    def _run_columns(self, n: int) -> tuple[pa.Array, pa.Array]:
        """depth and top_dir expanded from runs; top_dir through a dictionary (C++ does the copying)."""
        if not self.runs:
            return pa.array([], pa.int32()), pa.array([], pa.string())
        starts = np.array([r[0] for r in self.runs] + [n], dtype=np.int64)
        lengths = np.diff(starts)
        depth = np.repeat(np.array([r[1] for r in self.runs], dtype=np.int32), lengths)
        which = np.repeat(np.arange(len(self.runs), dtype=np.int32), lengths)
        tops = pa.DictionaryArray.from_arrays(pa.array(which), display_column([r[2] for r in self.runs]))
        return pa.array(depth), tops.cast(pa.string())

    def table(self) -> pa.Table:
        self._seal()
        n = len(self)
        stats = np.frombuffer(b"".join(b[2] for b in self.blocks), dtype=np.int64).reshape(n, len(STAT_FIELDS))
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.frombuffer(b"".join(b[1] for b in self.blocks), dtype=np.int64), out=offsets[1:])
        raw = pa.Array.from_buffers(pa.large_binary(), n, [None, pa.py_buffer(offsets),
                                                          pa.py_buffer(b"".join(b[0] for b in self.blocks))])
        missing = None
        if self.no_stat:
            missing = np.zeros(n, dtype=bool)
            missing[self.no_stat] = True
        # copies: the stat block is a read-only view of bytes, and a column of a one-row block would
        # still be that view (a single element counts as contiguous), so writing a mode would fail
        cols = {f: stats[:, j].copy() for j, f in enumerate(STAT_FIELDS)}
        mode = cols["mode"]
        errors: list[str | None] = [None] * n if self.errors else []
        for i, (err, hint) in self.errors.items():
            errors[i] = err
            if missing is not None and missing[i]:
                mode[i] = HINT_MODE.get(hint, 0)
        types = pa.DictionaryArray.from_arrays(pa.array(((mode >> 12) & 0xF).astype(np.int8)), TYPE_DICT)
        if missing is not None:
            mode[missing] = 0
        depth, tops = self._run_columns(n)
        path, path_bytes = path_columns(raw.cast(pa.binary()))
        arrays = [path, path_bytes, types.cast(pa.string())]
        for f in STAT_FIELDS:
            col = cols[f].view(np.uint64) if SCHEMA.field(f).type == pa.uint64() else cols[f]
            arrays.append(pa.array(col, mask=missing))
        arrays += [depth, tops, pa.array(errors, pa.string()) if self.errors else pa.nulls(n, pa.string())]
        arrays += [pa.nulls(n, SCHEMA.field(c).type) for c in OBJECT_COLUMNS]
        return pa.Table.from_arrays(arrays, schema=SCHEMA)


_NO_STAT = os.stat_result((0,) * os.stat_result.n_fields)   # stands in until the row is masked
