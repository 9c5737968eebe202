"""Listings given as a file: newline- or NUL-separated paths, or an exoflow Parquet manifest.

The client only cuts the file into byte ranges (text) or parts (Parquet);
workers read their share and ``lstat`` each path, so a listing of millions
of paths never passes through the client. The file may be in object storage (a URL, read
through fsspec with ``--storage-options``), and so may its entries: an object's URL is looked up
on its store (``objects.Lister.add_objects``: one that is gone is a row with an ``error``). A path
listed twice (however spelled: ``./a``, ``a``, ``a//``) is one entry: each piece's paths are keyed
by a 128-bit hash of their absolute spelling (a URL's as written), and the repeats are found from
the keys alone.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from exoflow.paths import raw_paths
from exoflow.errors import UsageError
from exoflow.longpath import stat_path
from exoflow.sources.entries import EntryCollector
from exoflow.fileio import describe_error
from exoflow.options import WalkOptions
from exoflow.sources import objects
from exoflow.sources.walk import absolute

RANGE_BYTES = 4 * 2**20


@dataclass(frozen=True)
class TextRange:
    path: str
    start: int
    end: int
    sep: bytes
    base: str | None = None    # relative entries are below this directory (None: the worker's own)
    storage: str = ""          # --storage-options: for a listing and entries in object storage


@dataclass(frozen=True)
class ParquetPart:
    path: str
    base: str | None = None
    storage: str = ""


class _Files:
    """A listing's files, local or in object storage (``path`` a URL: its fsspec file system)."""

    def __init__(self, path: str, storage: str) -> None:
        self.fs, self.bare = objects.filesystem(path, storage) if objects.is_url(path) else (None, path)

    def open(self, path: str):
        return self.fs.open(self._bare(path), "rb") if self.fs else open(path, "rb")

    def arrow(self, path: str) -> tuple[str, dict]:
        """(the path, Arrow's keyword arguments) to read ``path`` with pyarrow."""
        return (self._bare(path), {"filesystem": self.fs}) if self.fs else (path, {})

    def _bare(self, path: str) -> str:
        return self.fs._strip_protocol(path)

    def kind(self) -> str:
        """"dir", "file", raising OSError (or the store's error) where there is nothing."""
        if self.fs is None:
            os.stat(self.bare)
            return "dir" if os.path.isdir(self.bare) else "file"
        return "dir" if self.fs.info(self.bare)["type"] == "directory" else "file"

    def parquet_under(self, top: str) -> list[str]:
        """The ``*.parquet`` files below ``top``, sorted, spelled as ``top`` is."""
        if self.fs is None:
            return sorted(os.path.join(r, f) for r, _, fs in os.walk(top) for f in fs if f.endswith(".parquet"))
        proto = top.split("://", 1)[0]
        return sorted(f"{proto}://{p}" for p in self.fs.find(self._bare(top)) if p.endswith(".parquet"))


def plan(listing: str, base: str | None = None, storage: str = "") -> list[TextRange] | list[ParquetPart]:
    """Cut a listing file (a path, or an object's URL read with ``storage``'s options) into pieces
    for workers; bad input raises UsageError. ``base``: the directory relative entries are below, for
    workers that do not share the client's (they are then spelled from /)."""
    # workers open it wherever they run; messages keep your spelling
    path = listing if objects.is_url(listing) else absolute(listing)
    files = _Files(path, storage)
    try:
        kind = files.kind()
        if kind == "dir":
            # an exoflow output directory: its files/ dataset, not its other outputs (findings/, audit/ …)
            top = os.path.join(path, "files")
            parts = files.parquet_under(top) or files.parquet_under(path)
        else:
            with files.open(path) as f:
                head = f.read(4)
                f.seek(0)
                sample = f.read(1 << 20)
                size = f.seek(0, os.SEEK_END)
    except Exception as e:      # OSError, or a store's own errors
        why = e.strerror if isinstance(e, OSError) and e.strerror else objects.describe(e)
        raise UsageError(f"--from-list {listing}: {why}") from None
    if kind == "dir":
        if not parts:
            raise UsageError(f"--from-list {listing}: directory holds no Parquet manifest")
        for part in parts:
            _check_manifest(part, files)
        return [ParquetPart(p, base, storage) for p in parts]
    if head == b"PAR1":
        _check_manifest(path, files)
        return [ParquetPart(path, base, storage)]
    sep = b"\0" if b"\0" in sample else b"\n"
    return [TextRange(path, s, min(s + RANGE_BYTES, size), sep, base, storage)
            for s in range(0, max(size, 1), RANGE_BYTES)]


def _check_manifest(path: str, files: _Files) -> None:
    try:
        where, kw = files.arrow(path)
        schema = pq.read_schema(where, **kw)
    except Exception as e:  # pyarrow raises several types for corrupt files
        raise UsageError(f"--from-list {path}: not a readable Parquet file ({e})") from None
    if "path" not in schema.names:
        raise UsageError(f"--from-list {path}: Parquet manifest has no 'path' column")


def _read_range(r: TextRange) -> list[str]:
    """The paths whose first byte lies in [start, end)."""
    with _Files(r.path, r.storage).open(r.path) as f:
        if r.start > 0:
            f.seek(r.start - 1)
            if f.read(1) != r.sep:          # mid-record: the record belongs to the range before
                _read_until(f, r.sep)
        pos = f.tell()
        data = f.read(max(r.end - pos, 0))
        if data and not data.endswith(r.sep):
            data += _read_until(f, r.sep)
    return [os.fsdecode(p) for p in data.split(r.sep) if p]


def _read_until(f, sep: bytes) -> bytes:
    out = bytearray()
    while True:
        block = f.read(65536)
        if not block:
            return bytes(out)
        i = block.find(sep)
        if i >= 0:
            out += block[:i]
            f.seek(i + 1 - len(block), os.SEEK_CUR)
            return bytes(out)
        out += block


def _paths(piece: TextRange | ParquetPart) -> list[str]:
    """The paths of a piece, in order (manifest rows without a path, e.g. a removed file in an audit,
    list nothing); relative ones below ``piece.base`` when it is set."""
    if isinstance(piece, TextRange):
        paths = _read_range(piece)
    else:
        where, kw = _Files(piece.path, piece.storage).arrow(piece.path)
        names = pq.read_schema(where, **kw).names
        paths = [p for p in raw_paths(pq.read_table(where, columns=[c for c in ("path", "path_bytes") if c in names],
                                                    **kw)) if p is not None]
    return [p if objects.is_url(p) else absolute(p, piece.base) for p in paths] if piece.base else paths


def _keys(paths: list[str]) -> np.ndarray:
    """128-bit keys of the paths' absolute spellings (``./a``, ``a`` and ``a//`` are one path)."""
    digest, cwd = xxhash.xxh3_128_digest, os.getcwd()
    raw = b"".join(digest(os.fsencode(p if objects.is_url(p) else absolute(p, cwd))) for p in paths)
    return np.frombuffer(raw, dtype=np.dtype((np.void, 16)))


def piece_keys(piece: TextRange | ParquetPart) -> np.ndarray:
    """The keys of a piece's paths, in order (a worker task)."""
    return _keys(_paths(piece))


def repeats(keys: list[np.ndarray]) -> list[np.ndarray]:
    """For each piece's keys, the positions (int64) of paths listed before: earlier in the piece or
    in an earlier piece."""
    every = np.concatenate(keys) if keys else np.zeros(0, np.dtype((np.void, 16)))
    seen = np.ones(len(every), dtype=bool)
    seen[np.unique(every, return_index=True)[1]] = False        # first occurrences
    bounds = np.cumsum([0] + [len(k) for k in keys])
    return [np.flatnonzero(seen[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


def collect(piece: TextRange | ParquetPart, drop: np.ndarray | None = None) -> pa.Table:
    """The listing rows of a piece: ``lstat`` of every path, the store's ``info`` of every object URL
    (``objects.Lister.add_objects``), each once; ``drop``: positions of paths listed before (from
    ``repeats`` over every piece; None: the repeats within this piece)."""
    paths = _paths(piece)
    if drop is None:
        drop = repeats([_keys(paths)])[0]
    if len(drop):
        keep = np.ones(len(paths), dtype=bool)
        keep[drop] = False
        paths = [p for p, k in zip(paths, keep.tolist()) if k]
    out, stored = EntryCollector(), objects.Lister(WalkOptions(), piece.storage)
    stored.add_objects([p for p in paths if objects.is_url(p)])
    for p in (p for p in paths if not objects.is_url(p)):
        out.start_run(0, p.lstrip("/").split("/", 1)[0] or "/")
        try:
            out.add(p, stat_path(p, follow_symlinks=False))
        except OSError as e:
            out.add_error(p, describe_error(e))
    tables = [t for t in (out.table(), stored.out.table()) if t.num_rows]
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0] if tables else out.table()
