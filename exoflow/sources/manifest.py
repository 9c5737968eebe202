"""Listings given as a file: newline- or NUL-separated paths, or an exoflow Parquet manifest.

The client only cuts the file into byte ranges (text) or parts (Parquet);
workers read their share and ``lstat`` each path, so a listing of millions
of paths never passes through the client. A path listed twice (however spelled:
``./a``, ``a``, ``a//``) is one entry: each piece's paths are keyed by a 128-bit hash
of their absolute spelling, and the repeats are found from the keys alone.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pyarrow.parquet as pq
import xxhash

from exoflow.paths import raw_paths
from exoflow.errors import UsageError
from exoflow.longpath import stat_path
from exoflow.sources.entries import EntryCollector
from exoflow.fileio import describe_error
from exoflow.sources.walk import absolute

RANGE_BYTES = 4 * 2**20


@dataclass(frozen=True)
class TextRange:
    path: str
    start: int
    end: int
    sep: bytes
    base: str | None = None    # relative entries are below this directory (None: the worker's own)


@dataclass(frozen=True)
class ParquetPart:
    path: str
    base: str | None = None


def plan(listing: str, base: str | None = None) -> list[TextRange] | list[ParquetPart]:
    """Cut a listing file into pieces for workers; bad input raises UsageError. ``base``: the directory
    relative entries are below, for workers that do not share the client's (they are then spelled
    from /)."""
    path = absolute(listing)          # workers open it wherever they run; messages keep your spelling
    if os.path.isdir(path):
        # an exoflow output directory: its files/ dataset, not its other outputs (findings/, audit/ …)
        top = os.path.join(path, "files") if os.path.isdir(os.path.join(path, "files")) else path
        parts = sorted(os.path.join(r, f) for r, _, fs in os.walk(top) for f in fs if f.endswith(".parquet"))
        if not parts:
            raise UsageError(f"--from-list {listing}: directory holds no Parquet manifest")
        for part in parts:
            _check_manifest(part)
        return [ParquetPart(p, base) for p in parts]
    try:
        with open(path, "rb") as f:
            head = f.read(4)
            size = os.fstat(f.fileno()).st_size
            f.seek(0)
            sample = f.read(1 << 20)
    except OSError as e:
        raise UsageError(f"--from-list {listing}: {e.strerror}") from None
    if head == b"PAR1":
        _check_manifest(path)
        return [ParquetPart(path, base)]
    sep = b"\0" if b"\0" in sample else b"\n"
    return [TextRange(path, s, min(s + RANGE_BYTES, size), sep, base)
            for s in range(0, max(size, 1), RANGE_BYTES)]


def _check_manifest(path: str) -> None:
    try:
        schema = pq.read_schema(path)
    except Exception as e:  # pyarrow raises several types for corrupt files
        raise UsageError(f"--from-list {path}: not a readable Parquet file ({e})") from None
    if "path" not in schema.names:
        raise UsageError(f"--from-list {path}: Parquet manifest has no 'path' column")


def _read_range(r: TextRange) -> list[str]:
    """The paths whose first byte lies in [start, end)."""
    with open(r.path, "rb") as f:
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
        names = pq.read_schema(piece.path).names
        paths = [p for p in raw_paths(pq.read_table(piece.path, columns=[c for c in ("path", "path_bytes")
                                                                         if c in names])) if p is not None]
    return [absolute(p, piece.base) for p in paths] if piece.base else paths


def _keys(paths: list[str]) -> np.ndarray:
    """128-bit keys of the paths' absolute spellings (``./a``, ``a`` and ``a//`` are one path)."""
    digest, cwd = xxhash.xxh3_128_digest, os.getcwd()
    raw = b"".join(digest(os.fsencode(absolute(p, cwd))) for p in paths)
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


def collect(piece: TextRange | ParquetPart, drop: np.ndarray | None = None) -> EntryCollector:
    """lstat every path of a listing piece once; ``drop``: positions of paths listed before (from
    ``repeats`` over every piece; None: the repeats within this piece)."""
    paths = _paths(piece)
    if drop is None:
        drop = repeats([_keys(paths)])[0]
    if len(drop):
        keep = np.ones(len(paths), dtype=bool)
        keep[drop] = False
        paths = [p for p, k in zip(paths, keep.tolist()) if k]
    out = EntryCollector()
    for p in paths:
        out.start_run(0, p.lstrip("/").split("/", 1)[0] or "/")
        try:
            out.add(p, stat_path(p, follow_symlinks=False))
        except OSError as e:
            out.add_error(p, describe_error(e))
    return out
