"""Byte profile of each file, vectorised over the whole batch buffer.

One pass over ``batch.data`` gives every file's byte histogram at once
(``bincount`` over file-index * 256 + byte), from which entropy, line counts,
NUL (binary) and non-ASCII counts follow. Written against ``xp`` (NumPy or
CuPy): the same code is the CPU and the GPU path.
"""
from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..backends import array_module, to_host
from ..batch import Batch
from ..sources.entries import describe_error

try:
    from .. import _native     # byte histograms in one C pass (setup.py); optional
except ImportError:            # pragma: no cover - installs without a C compiler
    _native = None

SNIFF = 8192          # NUL in the first 8 KiB means binary (ripgrep's and git's heuristic)


def histograms(xp: ModuleType, data: Any, offsets: Any, n: int, native: bool = True) -> Any:
    """(n, 256) int64 byte counts per file from one contiguous buffer. On NumPy, one C pass
    when ``exoflow._native`` is built (about 18x less CPU than the bincount below, which is the
    CuPy path and the fallback)."""
    if xp is np and native and _native is not None:
        out = np.zeros((n, 256), dtype=np.int64)
        _native.byte_histograms(np.ascontiguousarray(data, dtype=np.uint8),
                                np.require(offsets[: n + 1], np.int64, ["C", "A"]), out)
        return out
    # file index of every byte: +1 at each file start, summed (works for empty files, and on CuPy)
    owner = xp.cumsum(xp.bincount(offsets[1:n], minlength=data.size + 1)[: data.size])
    flat = xp.bincount(owner * 256 + data.astype(xp.int64), minlength=n * 256)
    return flat.reshape(n, 256)


def entropy_bits(xp: ModuleType, hist: Any) -> Any:
    """Shannon entropy in bits per byte of each histogram row (0 for empty files)."""
    p = hist / xp.maximum(hist.sum(axis=1, keepdims=True), 1)
    return -(p * xp.log2(xp.where(p > 0, p, 1))).sum(axis=1)


def byte_entropy(data: bytes) -> float:
    """Shannon entropy in bits per byte of one byte string (``entropy_bits`` of its histogram)."""
    if not data:
        return 0.0
    hist = np.bincount(np.frombuffer(data, dtype=np.uint8), minlength=256)
    return float(entropy_bits(np, hist[None, :])[0])


def nul_rows(data: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """True for each file ``data[offsets[i]:offsets[i+1]]`` that holds a NUL byte anywhere
    (ripgrep's "binary"), in one pass: a segmented minimum (``minimum.reduceat``). Shared by
    the scan and codestats kernels."""
    n = len(offsets) - 1
    out = np.zeros(n, dtype=bool)
    nonempty = np.flatnonzero(np.diff(offsets) > 0)
    if len(nonempty):
        # only the bytes the offsets cover, so the last file's minimum stops at its end
        out[nonempty] = np.minimum.reduceat(data[: int(offsets[-1])], offsets[nonempty]) == 0
    return out


def crlf_counts(xp: ModuleType, data: Any, offsets: Any, n: int) -> Any:
    """Number of "\\r\\n" pairs inside each file (a pair never spans two files)."""
    if data.size < 2:
        return xp.zeros(n, dtype=xp.int64)
    starts = xp.flatnonzero((data[:-1] == 13) & (data[1:] == 10))
    owner = xp.searchsorted(offsets, starts, side="right") - 1
    inside = starts + 1 < offsets[owner + 1]
    return xp.bincount(owner[inside], minlength=n)


def first_nul(xp: ModuleType, data: Any, offsets: Any, n: int) -> Any:
    """True where a NUL byte occurs in the first SNIFF bytes of the file."""
    pos = xp.flatnonzero(data == 0)
    owner = xp.searchsorted(offsets, pos, side="right") - 1
    early = pos - offsets[owner] < SNIFF
    return xp.bincount(owner[early], minlength=n) > 0


def profile_columns(batch: Batch) -> dict[str, pa.Array]:
    """entropy (bits/byte), lines, crlf, non_ascii, binary per row; null where no content was read
    (not a regular file, or it could not be read)."""
    xp = array_module(batch.params.get("backend", "cpu"))
    n = batch.num_rows
    data = xp.asarray(batch.data)                 # one host-to-device copy on GPU workers
    offsets = xp.asarray(batch.offsets)
    hist = histograms(xp, data, offsets, n)
    crlf = crlf_counts(xp, data, offsets, n)
    binary = first_nul(xp, data, offsets, n)
    hist, crlf, binary = to_host(hist), to_host(crlf), to_host(binary)
    failed = False
    for i in np.flatnonzero(batch.large):         # streamed files: fold their pieces into the same columns
        try:
            hist[i], crlf[i], binary[i] = _streamed(xp, batch, i)
        except OSError as e:
            batch.errors[i] = describe_error(e)
            failed = True
    is_file = pc.fill_null(pc.equal(batch.table.column("type"), "file"), False).to_numpy(zero_copy_only=False)
    read = is_file & np.array([e is None for e in batch.errors], dtype=bool) if n else is_file
    values = {
        "entropy": to_host(entropy_bits(np, hist)),
        "lines": hist[:, 10],
        "crlf": crlf,
        "non_ascii": hist[:, 128:].sum(axis=1),
        "binary": binary,
    }
    columns = {name: pa.array(v, mask=~read) for name, v in values.items()}
    if failed:   # a streamed file failed part-way: its reason joins the error column
        columns["error"] = pc.coalesce(batch.table.column("error"), pa.array(batch.errors, pa.string()))
    return columns


def _streamed(xp: ModuleType, batch: Batch, i: int) -> tuple[np.ndarray, int, bool]:
    """The same profile for a file read in pieces (a CRLF may straddle two pieces)."""
    hist = np.zeros(256, dtype=np.int64)
    crlf, seen, binary, last_cr = 0, 0, False, False
    for piece in batch.pieces(i):
        a = xp.asarray(np.frombuffer(piece, dtype=np.uint8))
        whole = xp.asarray(np.array([0, len(a)], dtype=np.int64))
        hist += to_host(xp.bincount(a, minlength=256))
        crlf += int(to_host(crlf_counts(xp, a, whole, 1))[0]) + int(last_cr and piece[0] == 10)
        if seen < SNIFF:
            head = a[: SNIFF - seen]
            binary |= bool(to_host(first_nul(xp, head, xp.asarray(np.array([0, len(head)])), 1))[0])
        seen += len(a)
        last_cr = piece[-1] == 13
    return hist, crlf, binary
