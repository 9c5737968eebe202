"""Reducers: per-chunk summaries folded into one on the client."""
from __future__ import annotations

import numpy as np


def largest(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest values, largest first, ties in their original order: what a
    stable sort of everything gives, from a partition (a chunk has thousands of files, a summary
    keeps the top 10 or 20)."""
    n = len(values)
    if k >= n:
        return np.argsort(-values, kind="stable")
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    kth = np.partition(values, n - k)[n - k]
    above = np.flatnonzero(values > kth)
    ties = np.flatnonzero(values == kth)[: k - len(above)]
    picked = np.concatenate([above, ties])
    return picked[np.argsort(-values[picked], kind="stable")]
