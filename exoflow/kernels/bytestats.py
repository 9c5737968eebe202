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


from exoflow.fileio import native as _native

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
