"""LSH banding, candidate pairs from buckets, and connected components, vectorised (NumPy).

* ``optimal_param``: bands x rows for a target Jaccard threshold, minimising the weighted sum
  of the false-positive and false-negative probability areas, as datasketch computes it
  (datasketch/lsh.py ``_optimal_param``, weights 0.5/0.5): the integrands are polynomials of
  degree bands*rows <= permutations, so Gauss-Legendre quadrature with permutations/2+2 nodes
  is exact (datasketch uses scipy's ``quad``; the tests compare the choices).
* ``band_keys``: one 64-bit bucket key per (file, band), the band's index folded in, so one
  key names a bucket of one band.
* ``bucket_pairs``: the pairs of files sharing a bucket (every pair in buckets of up to
  MAX_BUCKET files; in larger ones each file with the bucket's first, which keeps them
  connected without a quadratic number of pairs).
* ``components``: connected components of the verified pairs (union-find by hooking roots
  to the smaller and compressing paths, all edges at once).
"""
from __future__ import annotations

import numpy as np

from exoflow.ops.neardup.minhash import fmix64

MAX_BUCKET = 64
_MIX = np.uint64(0x9E3779B97F4A7C15)


def optimal_param(threshold: float, permutations: int, fp_weight: float = 0.5,
                  fn_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows) with bands * rows <= permutations minimising fp_weight * P(false positive
    area) + fn_weight * P(false negative area) at ``threshold`` (0 < threshold < 1); the first
    minimum in (bands, rows) order, as datasketch."""
    bands = np.concatenate([np.full(permutations // b, b) for b in range(1, permutations + 1)])
    rows = np.concatenate([np.arange(1, permutations // b + 1) for b in range(1, permutations + 1)])
    x, w = np.polynomial.legendre.leggauss(permutations // 2 + 2)

    def area(lo: float, hi: float, positive: bool) -> np.ndarray:
        s = lo + (hi - lo) * (x + 1) / 2                                   # nodes on [lo, hi]
        agree = np.exp(rows[:, None] * np.log(s)[None, :])                 # P(a band agrees) at s
        miss = np.exp(bands[:, None] * np.log1p(-agree))                   # P(no band agrees)
        return ((1 - miss if positive else miss) * w).sum(axis=1) * (hi - lo) / 2

    error = fp_weight * area(0.0, threshold, True) + fn_weight * area(threshold, 1.0, False)
    best = int(np.argmin(error))
    return int(bands[best]), int(rows[best])


def band_keys(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """uint64 (n, bands): the bucket key of each file's band j (signature values j*rows ..
    (j+1)*rows-1 of the uint32 (n, k) ``sig``, and j, hashed)."""
    n = len(sig)
    h = np.broadcast_to((np.arange(bands, dtype=np.uint64) + np.uint64(1)) * _MIX, (n, bands)).copy()
    v = sig[:, : bands * rows].reshape(n, bands, rows).astype(np.uint64)
    for c in range(rows):
        h = (h ^ v[:, :, c]) * _MIX
    return fmix64(np, h)


def bucket_pairs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i, j), i != j, of rows sharing a bucket key (uint64 ``keys``): every pair in
    buckets of up to MAX_BUCKET rows, else each row with the bucket's first. Unordered, may repeat."""
    order = np.argsort(keys, kind="stable")
    k = keys[order]
    head = np.concatenate([[True], k[1:] != k[:-1]]) if len(k) else np.zeros(0, bool)
    starts = np.flatnonzero(head)
    lengths = np.diff(np.concatenate([starts, [len(k)]]))
    run_len = np.repeat(lengths, lengths)
    pos = np.arange(len(k)) - np.repeat(starts, lengths)
    first, second = [], []
    small = run_len <= MAX_BUCKET
    for d in range(1, int(min(lengths.max(initial=1), MAX_BUCKET))):
        at = np.flatnonzero(small & (pos + d < run_len))
        first.append(order[at])
        second.append(order[at + d])
    big = np.flatnonzero(~small & (pos > 0))
    first.append(order[big - pos[big]])
    second.append(order[big])
    return np.concatenate(first).astype(np.int64), np.concatenate(second).astype(np.int64)


def unique_pairs(a: np.ndarray, b: np.ndarray, *values: np.ndarray) -> tuple[np.ndarray, ...]:
    """The pairs (a, b) as (min, max), each once (the first occurrence's ``values`` kept)."""
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    keep = lo != hi
    lo, hi = lo[keep], hi[keep]
    order = np.lexsort((hi, lo))                     # by (lo, hi), stable: a pair's first occurrence leads
    head = np.ones(len(order), bool)
    head[1:] = (lo[order][1:] != lo[order][:-1]) | (hi[order][1:] != hi[order][:-1])
    first = np.sort(order[head])
    return (lo[first], hi[first], *(v[keep][first] for v in values))


def components(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Connected components of the edges (a[i], b[i]) (int64 node ids): (nodes, sorted int64 ids
    of every node on an edge; labels, int64: the index in ``nodes`` of the component's smallest node)."""
    nodes, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
    ea, eb = inverse[: len(a)], inverse[len(a):]
    parent = np.arange(len(nodes))
    while True:
        ra, rb = parent[ea], parent[eb]
        if (ra == rb).all():
            return nodes, parent
        low = np.minimum(ra, rb)
        np.minimum.at(parent, ra, low)               # hook each root onto the smaller one
        np.minimum.at(parent, rb, low)
        while True:                                  # compress: every node points at its root
            up = parent[parent]
            if (up == parent).all():
                break
            parent = up
