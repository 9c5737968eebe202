"""Content hashes of a batch: xxh3-128, blake3, sha256, sha1, md5.

Small files are hashed straight from memoryview slices of the batch buffer
(no copies); files larger than the batch bound are fed piece by piece to a
``Digests`` consumer by the engine (``Reads.consume``) so memory stays bounded
whatever the file size. Hashing is inherently one call per file, but every
call works on the batch's memory.
"""
from __future__ import annotations

import hashlib
from typing import Callable, Iterable, Sequence

import blake3
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from exoflow.batch import Batch, fed
from exoflow.fileio import native
from exoflow.paths import exact_bytes

# algorithm name (as on the command line) -> column name in the manifest
COLUMNS = {"xxh3-128": "xxh3_128", "blake3": "blake3", "sha256": "sha256", "sha1": "sha1", "md5": "md5"}
DEFAULT = "xxh3-128"

_NEW: dict[str, Callable[[], object]] = {
    "xxh3-128": xxhash.xxh3_128,
    "blake3": blake3.blake3,
    "sha256": hashlib.sha256,
    "sha1": hashlib.sha1,
    "md5": hashlib.md5,
}


def _one_shot(name: str) -> Callable[[memoryview], str]:
    """The fastest whole-buffer hex digest for ``name``."""
    if name == "xxh3-128":
        return xxhash.xxh3_128_hexdigest
    new = _NEW[name]
    return lambda mv: new(mv).hexdigest()


_HEX = np.array([f"{i:02x}".encode() for i in range(256)], dtype="S2")


def span_hexdigests(name: str, data, offsets: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Hex digests with algorithm ``name`` (a key of COLUMNS) of the spans
    ``data[offsets[i]:offsets[i+1]]`` of ``rows`` (int positions): object (N,), str at ``rows``,
    None elsewhere; N = len(offsets) - 1. ``data``: bytes-like; ``offsets``: int64 (N+1), sorted.
    xxh3-128 hashes every span in one C call (``_native.xxh3_128_spans``); the others, and xxh3-128
    without the compiled module, one call per span."""
    n = len(offsets) - 1
    out = np.full(n, None, dtype=object)
    if not len(rows):
        return out
    if name == "xxh3-128" and native is not None:
        keys = np.empty((n, 2), np.uint64)
        native.xxh3_128_spans(data, np.ascontiguousarray(offsets, np.int64), keys)
        out[rows] = key_hexdigests(keys[rows])
        return out
    fn, mv, offs = _one_shot(name), memoryview(data), offsets.tolist()
    out[rows] = [fn(mv[offs[i]:offs[i + 1]]) for i in rows.tolist()]
    return out


def key_hexdigests(keys: np.ndarray) -> np.ndarray:
    """XXH3-128 digests as uint64 (N, 2) (high, low) -> their hex digests (str (N,), 32 characters,
    as xxhash's ``hexdigest`` and xxh128sum write them)."""
    return _HEX[keys.astype(">u8").view(np.uint8)].view("S32").ravel().astype(str)


def parse_algorithms(text: str) -> tuple[str, ...]:
    """'sha256,blake3' -> ('sha256', 'blake3'); unknown names raise ValueError."""
    names = tuple(dict.fromkeys(n.strip().lower() for n in text.split(",") if n.strip()))
    bad = [n for n in names if n not in COLUMNS]
    if bad or not names:
        raise ValueError(f"unknown hash {', '.join(bad) or text!r} (choose from {', '.join(COLUMNS)})")
    return names


def hash_argument(text: str) -> tuple[str, ...]:
    """argparse type for --hash: ``parse_algorithms`` with its error as argparse's."""
    import argparse
    try:
        return parse_algorithms(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


class Digests:
    """A ``batch.Consumer``: every algorithm of ``names`` (keys of COLUMNS) over one file's pieces."""

    def __init__(self, names: Sequence[str]) -> None:
        self.hashes = [_NEW[n]() for n in names]

    def update(self, piece: memoryview) -> bool:
        for h in self.hashes:
            h.update(piece)
        return True

    def hexdigests(self) -> list[str]:
        """One hex digest per name, of the pieces fed so far."""
        return [h.hexdigest() for h in self.hashes]


def hash_stream(names: Sequence[str], pieces: Iterable[memoryview]) -> list[str]:
    """Hex digests (one str per name of ``names``) of a stream of pieces (bytes-like; e.g.
    ``batch.stream``'s), for every algorithm in one pass over the data. Raises what the stream
    raises (OSError, ``batch.FileChanged``)."""
    return fed(Digests(names), pieces).hexdigests()


def _hashed(batch: Batch) -> np.ndarray:
    """Bool per row: a file ``hash_batch`` hashes (selected, or every regular file when unset;
    read without error)."""
    chosen = batch.selected if batch.selected is not None else \
        pc.fill_null(pc.equal(batch.table.column("type"), "file"), False).to_numpy(zero_copy_only=False)
    errors = batch.errors or [None] * batch.num_rows
    return chosen & np.array([e is None for e in errors], dtype=bool)


def digest_consumers(batch: Batch, names: Sequence[str]) -> dict[int, Digests]:
    """``Reads.consume`` for ``hash_batch``: a ``Digests`` per large file it hashes."""
    if batch.large is None or not batch.num_rows:
        return {}
    return {i: Digests(names) for i in np.flatnonzero(_hashed(batch) & batch.large).tolist()}


def hash_batch(batch: Batch, names: Sequence[str]) -> tuple[dict[str, list[str | None]], list[str | None]]:
    """Hash every loaded file of ``batch`` (its ``selected`` rows; every regular file when unset)
    with each algorithm of ``names`` (keys of COLUMNS); a large file's digests are those of its
    consumer (``digest_consumers``, fed by the engine: ``batch.streamed``). A batch hashed while
    read (``batch.xxh3``, ``Reads.xxh3_only``) gives its digests, for ``names`` == (xxh3-128,)
    only: ValueError for others.

    Returns ``({column: hex digests}, errors)``, one entry per row: digests are None for rows
    that were not selected or could not be read; ``errors`` holds ``batch.errors``. Raises
    nothing for per-file problems.
    """
    n = batch.num_rows
    out: dict[str, list[str | None]] = {COLUMNS[a]: [None] * n for a in names}
    errors: list[str | None] = list(batch.errors) if batch.errors else [None] * n
    if n == 0:
        return out, errors
    large = batch.large if batch.large is not None else np.zeros(n, dtype=bool)
    ok = _hashed(batch)
    if batch.xxh3 is not None:                         # hashed while read (Reads.xxh3_only)
        if tuple(names) != (DEFAULT,):
            raise ValueError(f"the batch holds {DEFAULT} digests only, not {', '.join(names)}")
        out[COLUMNS[DEFAULT]] = np.where(ok, key_hexdigests(batch.xxh3), None).tolist()
        return out, errors
    in_buffer = np.flatnonzero(ok & ~large)            # hashed in place, slices of the buffer
    if len(in_buffer):
        data = batch.data if batch.data is not None else b""
        offsets = batch.offsets if batch.offsets is not None else np.zeros(n + 1, np.int64)
        for a in names:
            out[COLUMNS[a]] = span_hexdigests(a, data, offsets, in_buffer).tolist()
    for i in np.flatnonzero(ok & large).tolist():       # streamed by the engine
        for a, d in zip(names, batch.streamed[i].hexdigests()):
            out[COLUMNS[a]][i] = d
    return out, errors


# ---- finding a path's rows in another table ------------------------------------

def path_keys(table: pa.Table) -> np.ndarray:
    """uint64 (N, 2): the XXH3-128 (high, low 64 bits) of each row's exact path bytes (``path_bytes``
    where set, else ``path`` in UTF-8), hashed over Arrow's buffer in C (per row in Python without
    ``_native``). Equal keys mean equal paths but for a 2**-128 chance."""
    path = table.column("path")
    raw = table.column("path_bytes") if "path_bytes" in table.column_names else None
    if native is not None and not path.null_count and (raw is None or raw.null_count == len(raw)):
        return _utf8_keys(path)          # every path is its UTF-8: hashed in place, chunk by chunk
    raw = exact_bytes(table)
    n = len(raw)
    keys = np.zeros((n, 2), np.uint64)
    if native is None:
        for i, b in enumerate(raw.to_pylist()):
            v = xxhash.xxh3_128_intdigest(b)
            keys[i] = (v >> 64, v & 0xFFFFFFFFFFFFFFFF)
        return keys
    offsets = np.frombuffer(raw.buffers()[1], np.int64)[raw.offset:raw.offset + n + 1] if n else np.zeros(1, np.int64)
    data = raw.buffers()[2]
    native.xxh3_128_spans(memoryview(data) if data is not None else b"", offsets, keys)
    return keys


def _utf8_keys(path: pa.ChunkedArray) -> np.ndarray:
    """``path_keys`` of a string column without nulls, over its own buffers (no copy)."""
    keys = np.zeros((len(path), 2), np.uint64)
    at = 0
    for chunk in path.chunks:
        m = len(chunk)
        if m:
            _, offsets, data = chunk.buffers()
            width = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
            spans = np.frombuffer(offsets, width)[chunk.offset:chunk.offset + m + 1].astype(np.int64)
            native.xxh3_128_spans(memoryview(data) if data is not None else b"", spans, keys[at:at + m])
        at += m
    return keys


class PathIndex:
    """Rows of a table found by exact path: its ``path_keys`` sorted once. ``order``: int64, the
    table's rows in key order, the rows of one path adjacent (in no given order); per distinct path (sorted by ``hi``)
    its ``hi`` and ``lo`` keys, its first position in ``order`` and its number of rows. Paths that
    share a 64-bit ``hi`` (astronomically rare) count as absent: such a file is only read again."""

    ARRAYS = ("order", "starts", "counts", "hi", "lo", "bucket")

    def __init__(self, keys: np.ndarray) -> None:
        self.order = np.argsort(keys[:, 0])       # equal keys (one path's rows) end up adjacent
        hi, lo = keys[self.order, 0], keys[self.order, 1]
        new = np.ones(len(hi), bool)
        new[1:] = (hi[1:] != hi[:-1]) | (lo[1:] != lo[:-1])
        self.starts = np.flatnonzero(new)
        self.counts = np.diff(np.append(self.starts, len(hi)))
        self.hi, self.lo = hi[self.starts], lo[self.starts]
        clash = np.zeros(len(self.hi), bool)
        clash[1:] = self.hi[1:] == self.hi[:-1]
        clash[:-1] |= clash[1:]
        self.counts[clash] = 0
        # Where each bucket of the top ``bits`` bits of ``hi`` starts (about one path per bucket: the
        # keys are hashes): a lookup reads a few neighbours, not 20 steps of a binary search.
        per_bucket = np.bincount((self.hi >> self._shift()).astype(np.int64), minlength=2**self._bits())
        self.bucket = np.concatenate(([0], np.cumsum(per_bucket)))
        self.widest = int(np.diff(self.bucket).max()) if len(self.hi) else 0

    def _bits(self) -> int:
        return max(1, int(len(self.hi)).bit_length())

    def _shift(self) -> np.uint64:
        return np.uint64(64 - self._bits())

    def arrays(self) -> dict[str, np.ndarray]:
        """The index as arrays (``ARRAYS``), for ``from_arrays`` in another process."""
        return {name: getattr(self, name) for name in self.ARRAYS}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> PathIndex:
        """The index ``arrays`` gave, its arrays used as they are (e.g. memory-mapped, read-only)."""
        index = cls.__new__(cls)
        for name in cls.ARRAYS:
            setattr(index, name, arrays[name])
        index.widest = int(np.diff(index.bucket).max()) if len(index.hi) else 0
        return index

    def __len__(self) -> int:
        return len(self.order)

    def find(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each key (N, 2): (first, end), its rows' positions in ``order``; first == end when
        absent."""
        n = len(keys)
        first, end = np.zeros(n, np.int64), np.zeros(n, np.int64)
        if not len(self.hi) or not n:
            return first, end
        b = (keys[:, 0] >> self._shift()).astype(np.int64)
        at, stop = self.bucket[b], self.bucket[b + 1]
        for _ in range(self.widest):           # the j-th path of each key's bucket
            live = np.flatnonzero(at < stop)
            if not len(live):
                break
            pos = at[live]
            hit = live[(self.hi[pos] == keys[live, 0]) & (self.lo[pos] == keys[live, 1])]
            first[hit] = self.starts[at[hit]]
            end[hit] = first[hit] + self.counts[at[hit]]
            at[live] += 1
        return first, end
