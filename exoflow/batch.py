"""Batch: a chunk's listing rows plus, when a job reads contents, their bytes.

All small files of a chunk are read into ONE contiguous ``uint8`` buffer with
an ``int64`` offsets array (file ``i`` is ``data[offsets[i]:offsets[i+1]]``),
the layout of an Arrow binary column, so a kernel can work on the whole chunk
at once and the same buffer can move to a GPU in one copy. Files larger than
``LoadOptions.piece_bytes`` are not put in the buffer; kernels read them with
``Batch.pieces(i)``, which streams them through a reused piece buffer.
"""
from __future__ import annotations

import errno
import os
import stat as stat_mod
import threading
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from exoflow.longpath import open_path
from exoflow.metrics import count
from exoflow.options import LoadOptions
from exoflow.paths import raw_paths
from exoflow.fileio import OPEN_FLAGS, describe_errno, describe_error

NOT_REGULAR = "changed: no longer a regular file"
GREW = "changed: file grew while being read"
CHANGED = "changed: file changed while being read"     # its bytes could mix two versions

from exoflow.fileio import native as _native

_local = threading.local()


class FileChanged(OSError):
    """A file changed (or stopped being a regular file) while exoflow read it."""


def _reusable(name: str, size: int) -> np.ndarray:
    """A per-thread buffer of at least ``size`` bytes, grown but never shrunk, reused across chunks."""
    buf = getattr(_local, name, None)
    if buf is None or buf.size < size:
        buf = np.empty(max(size, 1 << 20), dtype=np.uint8)
        setattr(_local, name, buf)
    return buf


@dataclass
class Batch:
    table: pa.Table                         # the chunk's listing rows
    params: dict[str, Any] = field(default_factory=dict)
    data: np.ndarray | None = None          # uint8 contents of the rows in the buffer
    offsets: np.ndarray | None = None       # int64, num_rows + 1
    errors: list[str | None] = field(default_factory=list)   # per row: why its content is missing
    large: np.ndarray | None = None         # bool per row: streamed with pieces(), not in data
    paths: list[str] = field(default_factory=list)
    piece_bytes: int = LoadOptions.piece_bytes

    @property
    def num_rows(self) -> int:
        return self.table.num_rows

    def content(self, i: int) -> memoryview:
        """The bytes of row ``i`` (empty when not loaded)."""
        return memoryview(self.data)[self.offsets[i]:self.offsets[i + 1]]

    def pieces(self, i: int) -> Iterator[memoryview]:
        """Stream a large file in pieces of ``piece_bytes`` through a reused buffer.

        Raises OSError on read problems, and FileChanged when the file is not a regular
        file or changes while it is read (so a digest never mixes two versions of a file).
        Each piece is only valid until the next.
        """
        if self.piece_bytes < 1:
            raise ValueError("piece_bytes must be at least 1")
        buf = memoryview(_reusable("piece", self.piece_bytes))[: self.piece_bytes]
        fd = open_path(self.paths[i], OPEN_FLAGS)
        try:
            before = os.fstat(fd)
            if not stat_mod.S_ISREG(before.st_mode):
                raise FileChanged(NOT_REGULAR)
            total = 0
            while True:
                n = os.readv(fd, [buf])
                if n == 0:
                    break
                total += n
                yield buf[:n]
            count("read", total, "bytes")
            after = os.fstat(fd)
            if total != before.st_size or not _same_version(before, after):
                raise FileChanged(CHANGED)
        finally:
            os.close(fd)


def load(table: pa.Table, opts: LoadOptions, params: dict[str, Any] | None = None, native: bool = True) -> Batch:
    """Read the chunk's regular files into one buffer (large ones are left for streaming).

    The reading runs in ``exoflow._native.read_files`` (GIL released) when it is built,
    else in the Python loop ``_read_python``; both give the same batch."""
    n = table.num_rows
    paths = raw_paths(table)
    is_file = pc.fill_null(pc.equal(table.column("type"), "file"), False).to_numpy(zero_copy_only=False)
    sizes = table.column("size").fill_null(0).to_numpy()
    # +1 per file: room to notice a file that grew
    capacity = int(sizes[is_file & (sizes <= opts.piece_bytes)].sum()) + n + 1
    data, offsets, errors, large = read_files(paths, is_file, capacity, opts.piece_bytes, native)
    return Batch(table, params or {}, data, offsets, errors, large, paths, opts.piece_bytes)


def read_files(paths: list[str], is_file: np.ndarray, capacity: int, limit: int,
               native: bool = True) -> tuple[np.ndarray, np.ndarray, list[str | None], np.ndarray]:
    """The loader's reading step: the regular files among ``paths`` (where ``is_file``) of at most
    ``limit`` bytes, read whole into one reused buffer (``capacity`` is a first size; it grows).
    Returns (data, offsets, errors, large): row i is data[offsets[i]:offsets[i+1]]; errors[i] says
    why it was not read; large[i] marks files over ``limit`` (not read)."""
    read = _read_native if native and _native is not None else _read_python
    data, offsets, errors, large = read(paths, is_file, capacity, limit)
    count("read", data.size, "bytes")     # report.html's "bytes read"
    return data, offsets, errors, large


def _read_native(paths: list[str], is_file: np.ndarray, capacity: int,
                 limit: int) -> tuple[np.ndarray, np.ndarray, list[str | None], np.ndarray]:
    n = len(paths)
    rows = np.flatnonzero(is_file)
    todo = [paths[i] for i in rows.tolist()]
    ends = np.zeros(len(todo), dtype=np.int64)
    codes = np.zeros(len(todo), dtype=np.int32)
    buf = _reusable("batch", capacity)
    start = pos = 0
    while True:
        start, pos = _native.read_files(todo, OPEN_FLAGS, limit, buf, ends, codes, start, pos)
        if start == len(todo):
            break
        bigger = _reusable("batch", 2 * buf.size)     # a file grew since the listing
        bigger[:pos] = buf[:pos]
        buf = bigger
    row_end = np.zeros(n, dtype=np.int64)
    row_end[rows] = ends
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.maximum.accumulate(row_end, out=offsets[1:])   # rows that are not files hold no bytes
    errors: list[str | None] = [None] * n
    large = np.zeros(n, dtype=bool)
    own = {_native.NOT_REGULAR: NOT_REGULAR, _native.GREW: GREW, _native.CHANGED: CHANGED}   # else an errno
    for k in np.flatnonzero(codes).tolist():
        code, i = int(codes[k]), int(rows[k])
        if code == _native.LARGE:
            large[i] = True
        else:
            errors[i] = own.get(code) or describe_errno(code)
    return buf[:pos], offsets, errors, large


def _same_version(before: os.stat_result, after: os.stat_result) -> bool:
    return (before.st_size, before.st_mtime_ns, before.st_ctime_ns) == (after.st_size, after.st_mtime_ns, after.st_ctime_ns)


def _read_python(paths: list[str], is_file: np.ndarray, capacity: int,
                 limit: int) -> tuple[np.ndarray, np.ndarray, list[str | None], np.ndarray]:
    n = len(paths)
    errors: list[str | None] = [None] * n
    large = np.zeros(n, dtype=bool)
    offsets = np.zeros(n + 1, dtype=np.int64)
    buf = _reusable("batch", capacity)
    mv = memoryview(buf)
    pos = 0
    for i in range(n):
        offsets[i] = pos
        if not is_file[i]:
            continue
        try:
            fd = open_path(paths[i], OPEN_FLAGS)
        except OSError as e:
            errors[i] = describe_error(e)
            continue
        except ValueError:       # a NUL byte in the name (from a manifest): no such file can exist
            errors[i] = describe_errno(errno.EINVAL)
            continue
        try:
            st = os.fstat(fd)
            if not stat_mod.S_ISREG(st.st_mode):
                errors[i] = NOT_REGULAR
                continue
            want = st.st_size
            if want > limit:
                large[i] = True
                continue
            if pos + want + 1 > buf.size:   # grew since listing: move to a bigger buffer
                bigger = _reusable("batch", 2 * (pos + want + 1))
                bigger[:pos] = buf[:pos]
                buf, mv = bigger, memoryview(bigger)
            got = 0
            while got <= want:
                r = os.readv(fd, [mv[pos + got:pos + want + 1]])
                if r == 0:
                    break
                got += r
            if got > want:
                errors[i] = GREW
                continue
            if not _same_version(st, os.fstat(fd)):
                errors[i] = CHANGED
                continue
            pos += got
        except OSError as e:
            errors[i] = describe_error(e)
        finally:
            os.close(fd)
    offsets[n] = pos
    return buf[:pos], offsets, errors, large
