"""Batch: a chunk's listing rows plus, when a job reads contents, their bytes.

A job declares what it reads with ``Reads``: which rows (a selector, a plain function of the
listing table and the job's options) and whether the kernels get the whole chunk at once or
cache-sized sub-batches. ``batches`` is the engine's loader for it; kernels receive the batches
and never open files (the few reads outside a chunk task, dedup's stages, call ``stream`` and
``read_ends`` here).

All small files of a chunk are read into ONE contiguous ``uint8`` buffer with
an ``int64`` offsets array (file ``i`` is ``data[offsets[i]:offsets[i+1]]``),
the layout of an Arrow binary column, so a kernel can work on the whole chunk
at once and the same buffer can move to a GPU in one copy. Files listed larger than
``LoadOptions.piece_bytes`` are not opened by the loader: each is streamed once, through a reused
piece buffer, past every kernel consumer that asked for it (``Reads.consume``, ``feed``): the
consumers of all the jobs of a composed run share that one read.
"""
from __future__ import annotations

import dataclasses
import errno
import os
import stat as stat_mod
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from exoflow.chunks import read_batches
from exoflow.longpath import open_path
from exoflow.options import LoadOptions
from exoflow.paths import raw_paths
from exoflow.fileio import OPEN_FLAGS, describe_errno, describe_error
from exoflow.metrics import count, meter
from exoflow.sources import objects

NOT_REGULAR = "changed: no longer a regular file"
GREW = "changed: file grew while being read"
CHANGED = "changed: file changed while being read"     # its bytes could mix two versions
RESIZED = "changed: size differs from the listing"

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


# A row selector: fn(table, params) -> one bool per row of ``table`` (NumPy bool array, or an Arrow
# boolean array whose nulls count as False): the rows whose contents the job's kernels need.
Selector = Callable[[pa.Table, dict[str, Any]], Any]


class Consumer(Protocol):
    """A kernel's incremental reader of one large file (a hash, a scanner's carried state, counts),
    fed the file's pieces in order by the engine (``feed``); the kernel reads its result after."""

    def update(self, piece: memoryview) -> bool:
        """Take the file's next piece (valid only during the call; copy what is kept). Returns
        False when no more of the file is wanted (the engine may then stop reading it)."""
        ...


@dataclass(frozen=True)
class Reads:
    """What a job reads of its files' contents; the engine loads exactly that (``batches``).

    ``rows``: a ``Selector``; of the rows it picks only regular files are read. None: every
    regular file. It must be a plain function of (table, params), so the union of several jobs'
    selectors can be computed before reading.
    ``batch_bytes``: None: the chunk's selected files are loaded into one buffer and the kernels
    run once on the whole chunk. A number of bytes: the chunk is cut into sub-batches of
    consecutive rows whose loaded files take about that many bytes; each is loaded and handed
    to the kernels at once, so they compute while its bytes are still in the CPU cache, and the
    sub-batches' output rows are concatenated in order.
    ``piece_bytes``: files listed over this many bytes (or over ``LoadOptions.piece_bytes`` if that
    is smaller) are not loaded (``Batch.large``); they are streamed in pieces of that size. None:
    the LoadOptions'.
    ``consume``: fn(batch) -> {row: Consumer} for the batch's ``large`` rows whose bytes the kernels
    need (it sees the table, params, paths, ``large``, ``selected`` and ``errors``, not ``data``).
    The engine streams each such file once, to the consumers of every job that wants it, and puts
    each consumer that got its bytes in ``Batch.streamed``; for the others the reason goes to
    ``Batch.errors``. None: large files are not read.
    ``xxh3_only``: fn(params) -> True when, for these params, the kernels need each selected file's
    XXH3-128 digest and not its bytes. The engine then reads the chunk's selected files in one
    compiled pass that hashes each piece while it is in the CPU cache, through one buffer of
    ``piece_bytes`` (``digest_batch``): one batch for the whole chunk, no data, nothing streamed,
    the digests in ``Batch.xxh3``. Without the compiled module, or for objects, the bytes are
    loaded as usual.
    """

    rows: Selector | None = None
    batch_bytes: int | None = None
    piece_bytes: int | None = None
    consume: Callable[[Batch], dict[int, Consumer]] | None = None
    xxh3_only: Callable[[dict[str, Any]], bool] | None = None


@dataclass
class Batch:
    """One chunk's rows (or a sub-batch of them) for the kernels, with the contents they asked for.

    Row ``i`` of ``table`` is row ``i`` of every per-row field. When the job reads contents,
    ``data[offsets[i]:offsets[i + 1]]`` holds the bytes of each selected regular file that
    was read whole; other rows hold none (offsets equal). A ``large`` row's bytes went to the
    consumer ``streamed[i]`` made for it (``Reads.consume``), or its ``errors[i]`` says why not.
    """

    table: pa.Table                         # the listing rows (exoflow.sources.entries.SCHEMA)
    params: dict[str, Any] = field(default_factory=dict)
    data: np.ndarray | None = None          # uint8 contents of the rows in the buffer
    offsets: np.ndarray | None = None       # int64, num_rows + 1
    errors: list[str | None] = field(default_factory=list)   # per row: why its content is missing
    large: np.ndarray | None = None         # bool per row: over piece_bytes, streamed, not in data
    paths: list[str] = field(default_factory=list)           # per row: the exact path (str, surrogateescape)
    piece_bytes: int = LoadOptions.piece_bytes
    selected: np.ndarray | None = None      # bool per row: contents asked for (a selected regular file)
    storage: str = ""                       # options of the object store of URL rows (LoadOptions.storage_options)
    streamed: dict[int, Any] = field(default_factory=dict)   # large row -> its fed Consumer
    xxh3: np.ndarray | None = None          # uint64 (num_rows, 2): XXH3-128 (high, low) of each file
                                            # read by digest_batch (0 elsewhere); then data holds nothing

    @property
    def num_rows(self) -> int:
        """Rows of the batch (``table.num_rows``; per-row arrays have this length)."""
        return self.table.num_rows

    def content(self, i: int) -> memoryview:
        """The bytes of row ``i`` (empty when not loaded)."""
        return memoryview(self.data)[self.offsets[i]:self.offsets[i + 1]]

    def pieces(self, i: int) -> Iterator[memoryview]:
        """Row ``i``'s file (a large one) in pieces of ``piece_bytes`` (``stream``; an object's with
        the listing's size and ETag). The engine's ``feed`` reads with it; kernels never do."""
        if not objects.is_url(self.paths[i]):
            return stream(self.paths[i], self.piece_bytes)
        etag = self.table.column("etag")[i].as_py() if "etag" in self.table.column_names else None
        return stream(self.paths[i], self.piece_bytes, self.storage, self.table.column("size")[i].as_py(), etag)


def stream(path: str, piece_bytes: int, storage: str = "", size: int | None = None,
           etag: str | None = None) -> Iterator[memoryview]:
    """A file's bytes in pieces of at most ``piece_bytes`` through a reused per-thread buffer; an
    object's (a URL, ``objects.is_url``; ``storage``: its store's options) in ranged reads.

    Raises OSError on read problems (EINVAL for a name with a NUL byte, which no file can have),
    and FileChanged when the file is not a regular file or changes while it is read (so a digest
    never mixes two versions of a file), or when an object's size or ETag is not the listing's
    ``size`` / ``etag`` (when given); ValueError when
    ``piece_bytes`` < 1. Each piece is only valid until the next.
    """
    if piece_bytes < 1:
        raise ValueError("piece_bytes must be at least 1")
    if objects.is_url(path):
        return _stream_object(path, piece_bytes, storage, size, etag)
    return _stream_file(path, piece_bytes)


def _store_error(e: BaseException) -> OSError:
    """A store's error as an OSError the kernels make an error row of (a version that changed
    while it was read, is ``CHANGED``: s3fs raises its FileExpired, gcsfs one of the same name)."""
    if type(e).__name__ == "FileExpired":
        return FileChanged(CHANGED)
    return e if isinstance(e, OSError) and e.errno is not None else OSError(objects.describe(e))


def _stream_object(url: str, piece_bytes: int, storage: str, size: int | None,
                   etag: str | None) -> Iterator[memoryview]:
    total = 0
    try:
        with objects.open_object(url, storage, piece_bytes) as f:
            now = objects.details(f)
            if size is not None and now["size"] != size:
                raise FileChanged(RESIZED)
            if etag is not None and objects.etag_of(now) not in (None, etag):
                raise FileChanged(CHANGED)
            while data := f.read(piece_bytes):
                total += len(data)
                yield memoryview(data)
    except FileChanged:
        raise
    except Exception as e:
        raise _store_error(e) from None
    count("read", total, "bytes")
    if size is not None and total != size:
        raise FileChanged(RESIZED)


def _stream_file(path: str, piece_bytes: int) -> Iterator[memoryview]:
    buf = memoryview(_reusable("piece", piece_bytes))[:piece_bytes]
    try:
        fd = open_path(path, OPEN_FLAGS)
    except ValueError:       # a NUL byte in the name (from a manifest): no such file can exist
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL)) from None
    total = 0
    try:
        before = os.fstat(fd)
        if not stat_mod.S_ISREG(before.st_mode):
            raise FileChanged(NOT_REGULAR)
        while True:
            n = os.readv(fd, [buf])
            if n == 0:
                break
            total += n
            yield buf[:n]
        after = os.fstat(fd)
        if total != before.st_size or not _same_version(before, after):
            raise FileChanged(CHANGED)
    finally:
        count("read", total, "bytes")      # all of it, or what was read before a stop
        os.close(fd)


def feed(pieces_of: Callable[[int], Iterator[memoryview]], wants: Sequence[dict[int, Consumer]]) -> list[dict[int, str]]:
    """Stream each row ``i`` that a consumer of ``wants`` (dicts row -> ``Consumer``: one per job)
    is for, once (``pieces_of(i)``: its pieces, ``Batch.pieces``), to every such consumer in turn;
    reading stops early when none wants more. Returns, per dict of ``wants``, {row: reason} for the
    consumers that did not get the bytes they wanted: the file could not be opened or read, or
    changed while being read (``stream``'s checks; a consumer that stopped before is unaffected)."""
    failed: list[dict[int, str]] = [{} for _ in wants]
    for i in sorted(set().union(*wants)):
        active = [(k, w[i]) for k, w in enumerate(wants) if i in w]
        pieces = pieces_of(i)
        try:
            for piece in pieces:
                active = [(k, c) for k, c in active if c.update(piece)]
                if not active:
                    break
        except OSError as e:
            for k, _ in active:
                failed[k][i] = describe_error(e)
        finally:
            pieces.close()        # stopped early: the rest is not read
    return failed


def fed(consumer: Any, pieces: Iterable[bytes | memoryview]) -> Any:
    """``consumer`` (a ``Consumer``) fed ``pieces`` in order until it wants no more; returns it.
    (``feed`` does this from a file, for several consumers at once.)"""
    for piece in pieces:
        if not consumer.update(piece):
            break
    return consumer


def stream_large(batch: Batch, consume: Callable[[Batch], dict[int, Consumer]]) -> None:
    """One job's large files: its consumers (``consume(batch)``) fed by ``feed``; those that got
    their bytes go to ``batch.streamed``, the others' reasons to ``batch.errors``."""
    wants = consume(batch)
    failed = feed(batch.pieces, [wants])[0]
    for i, reason in failed.items():
        batch.errors[i] = reason
    batch.streamed = {i: c for i, c in wants.items() if i not in failed}


def read_ends(path: str, size: int, n: int, storage: str = "") -> bytes:
    """The first ``n`` and the last ``n`` bytes of a regular file (or object: a URL, ``storage``: its
    store's options) listed with ``size`` bytes (``size`` >= ``n``), one after the other (2 * ``n`` bytes).

    Raises FileChanged when it is no longer a regular file or its size is not ``size``,
    OSError when it cannot be opened or read."""
    if objects.is_url(path):
        return _object_ends(path, size, n, storage)
    fd = open_path(path, OPEN_FLAGS)
    try:
        st = os.fstat(fd)
        if not stat_mod.S_ISREG(st.st_mode):
            raise FileChanged(NOT_REGULAR)
        if st.st_size != size:
            raise FileChanged(RESIZED)
        count("read", 2 * n, "bytes")
        return os.pread(fd, n, 0) + os.pread(fd, n, size - n)
    finally:
        os.close(fd)


def _object_ends(url: str, size: int, n: int, storage: str) -> bytes:
    try:
        if objects.info(url, storage)["size"] != size:
            raise FileChanged(RESIZED)
        head, tail = objects.read_range([url, url], [0, size - n], [n, size], storage)
    except FileChanged:
        raise
    except Exception as e:
        raise _store_error(e) from None
    for got in (head, tail):
        if isinstance(got, BaseException):
            raise _store_error(got)
        if len(got) != n:
            raise FileChanged(RESIZED)
    count("read", 2 * n, "bytes")
    return head + tail


def selection(table: pa.Table, reads: Reads, params: dict[str, Any]) -> np.ndarray:
    """Bool per row of ``table``: the regular files ``reads.rows`` picks (all when it is None)."""
    is_file = pc.fill_null(pc.equal(table.column("type"), "file"), False).to_numpy(zero_copy_only=False)
    if reads.rows is None or not table.num_rows:
        return is_file
    picked = reads.rows(table, params)
    if isinstance(picked, (pa.Array, pa.ChunkedArray)):
        picked = pc.fill_null(picked, False).to_numpy(zero_copy_only=False)
    return is_file & np.asarray(picked, dtype=bool)


def batches(table: pa.Table, reads: Reads, opts: LoadOptions, params: dict[str, Any] | None = None,
            native: bool = True) -> Iterator[Batch]:
    """The batches a job's kernels get for one chunk: the contents of exactly the rows ``reads``
    selects (``selection``), in one batch, or in sub-batches of consecutive rows of about
    ``reads.batch_bytes`` loaded bytes (at least one batch, empty for an empty table), its large
    files streamed to the consumers ``reads.consume`` makes (``stream_large``). Each batch's
    loading and streaming is metered as "read" (seconds; bytes as read_files and stream count
    them) in Dask's fine metrics."""
    params = params or {}
    limit = min(opts.piece_bytes, reads.piece_bytes or opts.piece_bytes)
    chosen = selection(table, reads, params)
    if reads.xxh3_only is not None and reads.xxh3_only(params) and _native is not None:
        paths = raw_paths(table)
        if _url_rows(paths) is None:
            with meter("read"):
                batch = digest_batch(table, paths, chosen, limit, params)
            yield batch
            return
    sizes = table.column("size").fill_null(0).to_numpy()
    if reads.batch_bytes is None:
        ranges = [(0, table.num_rows)]
    else:
        ranges = read_batches(sizes, limit, reads.batch_bytes, chosen) or [(0, 0)]
    for a, b in ranges:
        with meter("read"):
            batch = load(table.slice(a, b - a), dataclasses.replace(opts, piece_bytes=limit), params, native,
                         chosen[a:b])
            if reads.consume is not None:
                stream_large(batch, reads.consume)
        yield batch


def digest_batch(table: pa.Table, paths: list[str], rows: np.ndarray, piece_bytes: int,
                 params: dict[str, Any]) -> Batch:
    """One batch of ``table`` (``paths``: its ``raw_paths``) whose selected regular files (bool
    mask ``rows``) are hashed, not kept:
    ``_native.xxh3_128_files`` reads each through a reused per-thread buffer of ``piece_bytes``
    and hashes it as it reads (GIL released). ``Batch.xxh3`` holds the digests (uint64 (N, 2)),
    ``errors`` the reasons a file was not hashed (as ``load``'s), ``data`` nothing. Needs the
    compiled module; raises nothing for per-file problems."""
    n = table.num_rows
    todo = np.flatnonzero(rows)
    keys = np.zeros((len(todo), 2), dtype=np.uint64)
    sizes = np.zeros(len(todo), dtype=np.int64)
    codes = np.zeros(len(todo), dtype=np.int32)
    buf = _reusable("piece", piece_bytes)[:piece_bytes]
    total = _native.xxh3_128_files([paths[i] for i in todo.tolist()], OPEN_FLAGS, buf, keys, sizes, codes)
    count("read", total, "bytes")
    xxh3 = np.zeros((n, 2), dtype=np.uint64)
    xxh3[todo] = keys
    errors = _errors(n, todo, codes)
    return Batch(table, params, np.zeros(0, np.uint8), np.zeros(n + 1, np.int64), errors, np.zeros(n, bool),
                 paths, piece_bytes, rows, xxh3=xxh3)


def _errors(n: int, rows: np.ndarray, codes: np.ndarray) -> list[str | None]:
    """Per row of n, the reason a compiled reader's code gives (an errno or one of its own; 0 and
    LARGE: None) for the rows it read (``codes[k]`` is row ``rows[k]``'s)."""
    errors: list[str | None] = [None] * n
    own = {_native.NOT_REGULAR: NOT_REGULAR, _native.GREW: GREW, _native.CHANGED: CHANGED}   # else an errno
    for k in np.flatnonzero(codes).tolist():
        code = int(codes[k])
        if code != _native.LARGE:
            errors[int(rows[k])] = own.get(code) or describe_errno(code)
    return errors


def load(table: pa.Table, opts: LoadOptions, params: dict[str, Any] | None = None, native: bool = True,
         rows: np.ndarray | None = None) -> Batch:
    """Read the chunk's regular files (only those where the bool mask ``rows`` is set, when given)
    into one buffer; files over ``opts.piece_bytes`` are left for streaming (``Batch.large``): those
    listed larger are not even opened, those found larger when opened (grown) are not read.

    The reading runs in ``exoflow._native.read_files`` (GIL released) when it is built,
    else in the Python loop ``_read_python``; both give the same batch. Per-file problems are
    in ``Batch.errors``; nothing is raised for them."""
    n = table.num_rows
    paths = raw_paths(table)
    is_file = pc.fill_null(pc.equal(table.column("type"), "file"), False).to_numpy(zero_copy_only=False)
    if rows is not None:
        is_file = is_file & rows
    sizes = table.column("size").fill_null(0).to_numpy()
    # +1 per file: room to notice a file that grew
    listed_large = is_file & (sizes > opts.piece_bytes)
    capacity = int(sizes[is_file & ~listed_large].sum()) + n + 1
    data, offsets, errors, large = read_files(paths, is_file & ~listed_large, capacity, opts.piece_bytes, native,
                                              sizes, opts.storage_options)
    large |= listed_large
    return Batch(table, params or {}, data, offsets, errors, large, paths, opts.piece_bytes, is_file,
                 opts.storage_options)


def read_files(paths: list[str], is_file: np.ndarray, capacity: int, limit: int, native: bool = True,
               sizes: np.ndarray | None = None,
               storage: str = "") -> tuple[np.ndarray, np.ndarray, list[str | None], np.ndarray]:
    """The loader's reading step: the regular files among ``paths`` (where ``is_file``) of at most
    ``limit`` bytes, read whole into one reused buffer (``capacity`` is a first size; it grows).
    Objects (URLs: ``objects.is_url``) are fetched concurrently from their store (``storage``: its
    options), judged by their listed ``sizes`` (int64 per row; required when there are URLs): one
    whose size is no longer the listing's is an error ``RESIZED``.
    Returns (data, offsets, errors, large): row i is data[offsets[i]:offsets[i+1]]; errors[i] says
    why it was not read; large[i] marks files over ``limit`` (not read)."""
    read = _read_native if native and _native is not None else _read_python
    urls = _url_rows(paths)
    if urls is None:
        data, offsets, errors, large = read(paths, is_file, capacity, limit)
    else:
        data, offsets, errors, large = _read_objects(paths, is_file & urls, limit, sizes, storage)
        if (is_file & ~urls).any():     # a chunk of local files and objects (PATHs of both kinds)
            local = read(paths, is_file & ~urls, capacity, limit)
            data, offsets = _merge((local[0], local[1]), (data, offsets))
            errors = [a or b for a, b in zip(local[2], errors)]
            large = local[3] | large
    count("read", data.size, "bytes")     # report.html's "bytes read"
    return data, offsets, errors, large


def _url_rows(paths: list[str]) -> np.ndarray | None:
    """Bool per path: a URL; None when none is (one search over all the names)."""
    if "://" not in "\n".join(paths):
        return None
    return np.fromiter(map(objects.is_url, paths), dtype=bool, count=len(paths))


def _read_objects(paths: list[str], is_file: np.ndarray, limit: int, sizes: np.ndarray | None,
                  storage: str) -> tuple[np.ndarray, np.ndarray, list[str | None], np.ndarray]:
    n = len(paths)
    if sizes is None:
        raise ValueError("objects are read by their listed sizes: give sizes")
    large = is_file & (sizes > limit)
    rows = np.flatnonzero(is_file & ~large)
    got = objects.fetch([paths[i] for i in rows.tolist()], storage)
    errors: list[str | None] = [None] * n
    lengths = np.zeros(n, dtype=np.int64)
    blobs = []
    for i, blob in zip(rows.tolist(), got):
        if isinstance(blob, BaseException):
            errors[i] = describe_error(_store_error(blob))
        elif len(blob) != sizes[i]:
            errors[i] = RESIZED
        else:
            lengths[i] = len(blob)
            blobs.append(blob)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return np.frombuffer(b"".join(blobs), dtype=np.uint8), offsets, errors, large


def _merge(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Two (data, offsets) over the same rows, each row's bytes in one of them, as one (data, offsets)."""
    la, lb = np.diff(a[1]), np.diff(b[1])
    offsets = np.zeros(len(la) + 1, dtype=np.int64)
    np.cumsum(la + lb, out=offsets[1:])
    out = np.empty(int(offsets[-1]), dtype=np.uint8)
    for (data, offs), lengths in ((a, la), (b, lb)):
        total = int(lengths.sum())
        out[np.repeat(offsets[:-1] - offs[:-1], lengths) + np.arange(total)] = data[offs[0]:offs[0] + total]
    return out, offsets


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
    large = np.zeros(n, dtype=bool)
    large[rows[codes == _native.LARGE]] = True
    return buf[:pos], offsets, _errors(n, rows, codes), large


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
