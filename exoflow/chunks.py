"""Cutting a listing part into chunks: one Dask task each."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from exoflow.options import ChunkOptions


def order_for_reading(listing: pa.Table) -> pa.Table:
    """Sort by (device, inode): on most file systems that is close to on-disk order."""
    if listing.num_rows < 2:
        return listing
    return listing.sort_by([("device", "ascending"), ("inode", "ascending")])


def content_bytes(listing: pa.Table) -> np.ndarray:
    """Bytes a chunk would read per row: the size of regular files, 0 otherwise."""
    is_file = pc.fill_null(pc.equal(listing.column("type"), "file"), False)
    sizes = pc.fill_null(listing.column("size"), 0)
    return pc.if_else(is_file, sizes, 0).to_numpy(zero_copy_only=False).astype(np.int64)


def cut(sizes: np.ndarray, opts: ChunkOptions, files: np.ndarray | None = None) -> list[tuple[int, int]]:
    """Row ranges holding at most ``max_files`` files and ``max_bytes`` bytes each. ``sizes``: int64
    bytes per row; ``files``: float64, what each row counts towards ``max_files`` (None: 1 each).

    A file larger than ``max_bytes`` gets a chunk of its own. The loop runs
    once per chunk, not per file.
    """
    n = len(sizes)
    csum = np.concatenate(([0], np.cumsum(sizes, dtype=np.int64)))
    fsum = np.concatenate(([0], np.cumsum(files))) if files is not None else None
    ranges = []
    start = 0
    while start < n:
        by_bytes = int(np.searchsorted(csum, csum[start] + opts.max_bytes, side="right")) - 1
        by_files = start + opts.max_files if fsum is None else \
            int(np.searchsorted(fsum, fsum[start] + opts.max_files, side="right")) - 1
        stop = max(start + 1, min(by_files, by_bytes, n))
        ranges.append((start, stop))
        start = stop
    return ranges


def read_batches(sizes: np.ndarray, limit: int, max_bytes: int,
                 read: np.ndarray | None = None) -> list[tuple[int, int]]:
    """Row ranges whose files read whole into one buffer take at most about ``max_bytes`` of it:
    files over ``limit`` bytes are streamed and take no room; each read file takes one byte more
    than its size (the loader's room to notice a file that grew). ``read``: bool per row, the rows
    that are read (None: all); the others take no room. ``sizes``: int64 bytes per row."""
    room = np.where(sizes <= limit, sizes + 1, 1)
    if read is not None:
        room = np.where(read, room, 0)
    return cut(room, ChunkOptions(max_files=max(len(sizes), 1), max_bytes=max_bytes))
