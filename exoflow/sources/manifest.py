"""Listings given as a file: newline- or NUL-separated paths, or an exoflow Parquet manifest.

The client only cuts the file into byte ranges (text) or parts (Parquet);
workers read their share and ``lstat`` each path, so a listing of millions
of paths never passes through the client.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import pyarrow.parquet as pq

from ..paths import raw_paths
from ..sinks import UsageError
from .entries import EntryCollector, describe_error

RANGE_BYTES = 4 * 2**20


@dataclass(frozen=True)
class TextRange:
    path: str
    start: int
    end: int
    sep: bytes


@dataclass(frozen=True)
class ParquetPart:
    path: str


def plan(listing: str) -> list[TextRange] | list[ParquetPart]:
    """Cut a listing file into pieces for workers; bad input raises UsageError."""
    if os.path.isdir(listing):
        # an exoflow output directory: its files/ dataset, not its other outputs (findings/, audit/ …)
        base = os.path.join(listing, "files") if os.path.isdir(os.path.join(listing, "files")) else listing
        parts = sorted(os.path.join(r, f) for r, _, fs in os.walk(base) for f in fs if f.endswith(".parquet"))
        if not parts:
            raise UsageError(f"--from-list {listing}: directory holds no Parquet manifest")
        for part in parts:
            _check_manifest(part)
        return [ParquetPart(p) for p in parts]
    try:
        with open(listing, "rb") as f:
            head = f.read(4)
            size = os.fstat(f.fileno()).st_size
            f.seek(0)
            sample = f.read(1 << 20)
    except OSError as e:
        raise UsageError(f"--from-list {listing}: {e.strerror}") from None
    if head == b"PAR1":
        _check_manifest(listing)
        return [ParquetPart(listing)]
    sep = b"\0" if b"\0" in sample else b"\n"
    return [TextRange(listing, s, min(s + RANGE_BYTES, size), sep) for s in range(0, max(size, 1), RANGE_BYTES)]


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


def collect(piece: TextRange | ParquetPart) -> EntryCollector:
    """lstat every path of a listing piece."""
    if isinstance(piece, TextRange):
        paths = _read_range(piece)
    else:
        paths = raw_paths(pq.read_table(piece.path, columns=[c for c in ("path", "path_bytes")
                                                              if c in pq.read_schema(piece.path).names]))
    out = EntryCollector()
    lstat = os.lstat
    for p in paths:
        if p is None:      # a manifest row without a path (e.g. a removed file in an audit) lists nothing
            continue
        out.start_run(0, p.lstrip("/").split("/", 1)[0] or "/")
        try:
            out.add(p, lstat(p))
        except OSError as e:
            out.add_error(p, describe_error(e))
    return out
