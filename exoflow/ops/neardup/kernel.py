"""The neardup chunk kernel: one MinHash signature per text file of a batch.

Text as scan reads it: a file with a NUL byte is binary and skipped; a UTF-16 file (by BOM) is
decoded to UTF-8 first (binary if its text has a NUL), a UTF-8 BOM is dropped (kernels/text.py).
The small files' text stays in the batch buffer (UTF-16 ones decoded after it) and is hashed in
one call (``minhash.signatures``: the C pass, or the NumPy/CuPy form). Files larger than the
piece size are streamed: windows of WINDOW bytes, each continuing where the last one's shingles
stopped, so the signature is the one the whole file would give (a word longer than CARRY_MAX
bytes in such a file is cut). The backend (``--backend``) runs the small files' hashing; streamed
files are hashed on the CPU.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from exoflow.backends import array_module, to_host
from exoflow.batch import Batch, fed
from exoflow.kernels.text import TextDecoder, decode_utf16, text_rows
from exoflow.ops.neardup.minhash import EMPTY, Shingling, shingle_hashes, signatures

WINDOW = 1 << 20          # bytes of a streamed file hashed per call
CARRY_MAX = 1 << 20       # at most this much of a window is carried into the next
BINARY, NO_TEXT = "binary", "no text"


def shingling(params: dict[str, Any]) -> Shingling:
    """The job's --shingle, --words, --permutations, --seed as a Shingling."""
    return Shingling(size=int(params.get("shingle") or 5), words=bool(params.get("words")),
                     permutations=int(params.get("permutations") or 128), seed=int(params.get("seed") or 1))


def schema(permutations: int) -> pa.Schema:
    """One row per regular file (and per entry with an error): ``signature`` holds the uint32
    MinHash values (little-endian), null where the file was skipped (``skipped``) or failed."""
    return pa.schema([("path", pa.string()), ("path_bytes", pa.binary()), ("size", pa.int64()),
                      ("skipped", pa.string()), ("shingles", pa.int64()),
                      ("signature", pa.binary(4 * permutations)), ("error", pa.string())])


def signature_column(sig: np.ndarray, valid: np.ndarray) -> pa.Array:
    """uint32 (n, k) signatures as a fixed-size binary column, null where not ``valid``."""
    n, k = sig.shape
    mask = pa.array(valid, pa.bool_()).buffers()[1]
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(4 * k), n, [mask, pa.py_buffer(np.ascontiguousarray(sig))],
                                                null_count=int(n - valid.sum()))


def signature_matrix(col: pa.Array | pa.ChunkedArray, permutations: int) -> np.ndarray:
    """A signature column back as uint32 (n, permutations) (rows of nulls hold anything)."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    flat = np.frombuffer(arr.buffers()[1], dtype=np.uint32) if len(arr) else np.zeros(0, np.uint32)
    return flat[arr.offset * permutations:(arr.offset + len(arr)) * permutations].reshape(len(arr), permutations)


class TextWindows:
    """A file fed piece by piece to ``step(window, open_end) -> resume`` as text windows, each
    starting where the last one's shingles stopped (the last call, from ``end``, with open_end
    False). A NUL byte in its text makes it binary: then no more is wanted."""

    def __init__(self, step: Callable[[bytes, bool], int]) -> None:
        self.step, self.text, self.carry, self.binary = step, TextDecoder(), b"", False

    def update(self, piece: bytes | memoryview) -> bool:
        return self._windows(self.text.decode(piece))

    def end(self) -> bool:
        """After the last piece (or once it wanted no more): whether the file is binary."""
        if not self.binary and self._windows(self.text.end()):
            self.step(self.carry, False)
        return self.binary

    def _windows(self, text: bytes) -> bool:
        for at in range(0, len(text), WINDOW):
            part = text[at: at + WINDOW]
            if b"\0" in part:
                self.binary = True
                return False
            buf = self.carry + part
            self.carry = buf[max(self.step(buf, True), len(buf) - CARRY_MAX):]
        return True


def stream_text(pieces: Iterable[bytes | memoryview], step: Callable[[bytes, bool], int]) -> bool:
    """A file given as pieces through ``TextWindows``; returns whether it is binary."""
    return fed(TextWindows(step), pieces).end()


class LargeSignature:
    """A ``batch.Consumer``: the signature of a large file fed in pieces (``result``)."""

    def __init__(self, sh: Shingling) -> None:
        self.sh = sh
        self.out = np.full((1, sh.permutations), EMPTY, np.uint32)
        self.count = np.zeros(1, np.int64)
        self.windows = TextWindows(self.step)

    def step(self, buf: bytes, open_end: bool) -> int:
        return signatures(np, np.frombuffer(buf, np.uint8), np.zeros(1, np.int64), np.array([len(buf)]), self.sh,
                          self.out, self.count, open_end=open_end, short_ok=not self.count[0])

    def update(self, piece: memoryview) -> bool:
        return self.windows.update(piece)

    def result(self) -> tuple[np.ndarray, int, bool]:
        """(signature uint32 (k,), shingles, binary), once the last piece is in."""
        binary = self.windows.end()
        return self.out[0], int(self.count[0]), binary


def large_signatures(batch: Batch) -> dict[int, LargeSignature]:
    """``Reads.consume`` of the neardup job: a ``LargeSignature`` per large file without an error."""
    if batch.large is None or not batch.num_rows:
        return {}
    ok = batch.large & pc.is_null(batch.table.column("error")).to_numpy(zero_copy_only=False) \
        & np.array([e is None for e in batch.errors], dtype=bool)
    sh = shingling(batch.params)
    return {i: LargeSignature(sh) for i in np.flatnonzero(ok).tolist()}


def shingle_set(pieces: Iterable[bytes | memoryview], sh: Shingling) -> np.ndarray:
    """The sorted distinct uint64 shingle hashes of a file given as pieces (for exact Jaccard)."""
    found: list[np.ndarray] = []

    def step(buf: bytes, open_end: bool) -> int:
        h, _, resume = shingle_hashes(np, np.frombuffer(buf, np.uint8), np.array([0, len(buf)]), sh.size, sh.words,
                                      open_end, short_ok=not any(len(f) for f in found))
        found.append(h)
        return resume
    stream_text(pieces, step)
    return np.unique(np.concatenate(found))


def _texts(data: np.ndarray, offsets: np.ndarray, rows: np.ndarray,
           utf16: np.ndarray, utf8: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The text segments of ``rows`` (files in the buffer): (buffer, lo, hi, has_nul per row):
    UTF-8 BOMs dropped, UTF-16 files decoded and appended after the batch's bytes."""
    lo = offsets[:-1][rows] + 3 * utf8[rows]
    hi = offsets[1:][rows].copy()
    has_nul = np.zeros(len(rows), bool)
    wide = np.flatnonzero(utf16[rows])
    if not len(wide):
        return data, lo, hi, has_nul
    texts = [decode_utf16(data[offsets[i]:offsets[i + 1]].tobytes()) for i in rows[wide].tolist()]
    sizes = np.array([len(t) for t in texts], np.int64)
    lo[wide] = int(offsets[-1]) + np.concatenate([[0], np.cumsum(sizes)[:-1]])
    hi[wide] = lo[wide] + sizes
    has_nul[wide] = [b"\0" in t for t in texts]
    return np.concatenate([data[: int(offsets[-1])], np.frombuffer(b"".join(texts), np.uint8)]), lo, hi, has_nul


def neardup_rows(batch: Batch, files: pa.Table) -> pa.Table:
    """The chunk's rows (schema()): a signature per text file, the reason per skipped one, the error
    per entry that failed. Counts ride in the reducer (reducer.py)."""
    sh = shingling(batch.params)
    n = batch.num_rows
    data, offsets, large, is_file, failed, utf16, utf8, binary = text_rows(batch, files)
    rows = np.flatnonzero(is_file & ~failed & ~large & ~binary)
    buf, lo, hi, has_nul = _texts(data, offsets, rows, utf16, utf8)
    binary[rows[has_nul]] = True
    rows, lo, hi = rows[~has_nul], lo[~has_nul], hi[~has_nul]

    sig = np.full((n, sh.permutations), EMPTY, np.uint32)
    counts = np.zeros(n, np.int64)
    xp = array_module(batch.params.get("backend") or "cpu")
    out, got = (np.full((len(rows), sh.permutations), EMPTY, np.uint32) if xp is np
                else xp.full((len(rows), sh.permutations), EMPTY, xp.uint32)), np.zeros(len(rows), np.int64)
    signatures(xp, buf if xp is np else xp.asarray(buf), lo, hi, sh, out, got)
    sig[rows], counts[rows] = to_host(out), got
    for i in np.flatnonzero(is_file & ~failed & large).tolist():   # fed by the engine (large_signatures)
        sig[i], counts[i], binary[i] = batch.streamed[i].result()
    text = is_file & ~failed & ~binary
    skipped = np.where(is_file & ~failed & binary, BINARY, np.where(text & (counts == 0), NO_TEXT, None))
    valid = text & (counts > 0)
    table = pa.table({"path": files.column("path"), "path_bytes": files.column("path_bytes"),
                      "size": files.column("size"), "skipped": pa.array(skipped, pa.string()),
                      "shingles": pa.array(np.where(text, counts, 0), pa.int64()),
                      "signature": signature_column(sig, valid), "error": files.column("error")}, schema=schema(sh.permutations))
    return table.filter(pa.array(is_file | failed))
