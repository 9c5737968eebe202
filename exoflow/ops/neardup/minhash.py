"""Shingles and MinHash signatures of text segments, written once for NumPy and CuPy (``xp``).

The definitions (``exoflow._native.minhash_spans`` computes the same values in one C pass;
the tests compare the two):

* a segment is ``data[lo[i]:hi[i]]``, one file's text;
* tokens are characters (a UTF-8 lead byte and the continuation bytes after it; a stray
  continuation byte at a segment's start is a character of its own) or, with ``words``,
  runs of bytes other than ASCII whitespace (what ``bytes.split()`` gives);
* a token's hash folds its bytes, ``t = t * P + byte + 1`` mod 2**64;
* the shingles are all runs of ``size`` consecutive tokens of a segment; a segment with
  1 to size-1 tokens has one shingle of all of them (none without tokens). A shingle's
  hash folds its tokens' hashes, ``g = g * Q + t`` mod 2**64, then MurmurHash3's fmix64;
  MinHash uses its top 32 bits;
* permutation j maps a hash h to ``(a[j] * h + b[j]) mod 2**32`` (a[j] odd, so a bijection),
  datasketch 2.0's ``affine32`` scheme (datasketch/minhash.py ``_init_permutations``); the
  signature holds, per permutation, the minimum over the segment's shingles (EMPTY if none).

Streaming (files larger than a piece): with ``open_end`` the last segment continues in the
next window; a token running to its end is unfinished (no shingle holds it yet) and the
call returns the byte to resume from, so every shingle is made exactly once.

Vectorised over the whole group of segments: token bounds from byte masks, token hashes from
prefix sums (``sum (byte+1) * P**-j`` scaled by ``P**(end-1)``), shingles by ``size`` shifted
multiply-adds, and a segmented minimum per block of shingles (``minimum.reduceat`` on NumPy,
a small CUDA kernel on CuPy).
"""
from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from exoflow.backends import to_host
from exoflow.fileio import native as _native

P = 0x100000001B3                 # FNV's 64-bit prime: odd, so invertible mod 2**64
P_INV = pow(P, -1, 2**64)
Q = 0x9E3779B97F4A7C15
EMPTY = 0xFFFFFFFF                # a signature value no shingle set: the segment has no shingles
WHITESPACE = np.zeros(256, dtype=bool)
WHITESPACE[list(b" \t\n\r\x0b\x0c")] = True
BLOCK = 1 << 16                   # shingles permuted at once (BLOCK x permutations uint32)
GROUP_BYTES = {"numpy": 1 << 20, "cupy": 64 << 20}   # text hashed at once (~100 bytes of temporaries per byte)


@dataclass(frozen=True)
class Shingling:
    """How files become signatures: ``size`` characters (or words) per shingle, ``permutations``
    uint32 values per signature, drawn from ``seed``."""

    size: int = 5
    words: bool = False
    permutations: int = 128
    seed: int = 1

    def coefficients(self) -> tuple[np.ndarray, np.ndarray]:
        """(a, b): uint32 arrays of ``permutations`` values, a odd (as datasketch draws them)."""
        gen = np.random.RandomState(self.seed)
        a = gen.randint(0, 1 << 31, self.permutations, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
        b = gen.randint(0, 1 << 32, self.permutations, dtype=np.uint64).astype(np.uint32)
        return a, b


def fmix64(xp: ModuleType, h: Any) -> Any:
    """MurmurHash3's 64-bit finalizer over a uint64 array (an avalanching bijection)."""
    s = xp.uint64(33)
    h = h ^ (h >> s)
    h = h * xp.uint64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> s)
    h = h * xp.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> s)


def _powers(xp: ModuleType, base: int, m: int) -> Any:
    """uint64 base**0 .. base**(m-1) mod 2**64."""
    steps = xp.full(m, base, dtype=xp.uint64)
    steps[:1] = 1
    return xp.cumprod(steps)


def token_bounds(xp: ModuleType, data: Any, offsets: Any, words: bool) -> tuple[Any, Any]:
    """(starts, ends): int64 byte positions of every token of the contiguous segments
    ``data[offsets[i]:offsets[i+1]]``, in order."""
    m = int(data.size)
    edge = xp.zeros(m + 1, dtype=bool)
    edge[offsets] = True                                   # a segment starts or ends here
    tok = ~xp.asarray(WHITESPACE)[data] if words else xp.ones(m, dtype=bool)
    prev = xp.concatenate([xp.zeros(1, dtype=bool), tok[:-1]]) & ~edge[:m]
    start = tok & ~prev if words else edge[:m] | ((data & 0xC0) != 0x80)
    after = xp.concatenate([start[1:], xp.zeros(1, dtype=bool)])
    nxt = xp.concatenate([tok[1:], xp.zeros(1, dtype=bool)])
    last = tok & (~nxt | edge[1:] | after)
    return xp.flatnonzero(start), xp.flatnonzero(last) + 1


def token_hashes(xp: ModuleType, data: Any, starts: Any, ends: Any) -> Any:
    """uint64 hash of each token ``data[starts[i]:ends[i]]``: its bytes folded t = t * P + byte + 1,
    from one prefix sum over the buffer."""
    m = int(data.size)
    if not m:
        return xp.zeros(0, dtype=xp.uint64)
    weighted = (data.astype(xp.uint64) + xp.uint64(1)) * _powers(xp, P_INV, m)
    prefix = xp.concatenate([xp.zeros(1, dtype=xp.uint64), xp.cumsum(weighted, dtype=xp.uint64)])
    return (prefix[ends] - prefix[starts]) * _powers(xp, P, m)[ends - 1]


def shingle_hashes(xp: ModuleType, data: Any, offsets: Any, size: int, words: bool, open_end: bool = False,
                   short_ok: bool = True) -> tuple[Any, Any, int]:
    """The shingles of the segments ``data[offsets[i]:offsets[i+1]]`` (uint8 data, int64 offsets):
    (uint64 hashes, int64 segment of each, ascending, where to resume the last segment (its byte
    position) with ``open_end``, else -1)."""
    nseg = len(offsets) - 1
    starts, ends = token_bounds(xp, data, offsets, words)
    owner = xp.searchsorted(offsets[1:], starts, side="right")
    carry = -1
    if open_end and nseg:
        last_end = int(offsets[-1])
        pending = last_end
        if len(ends) and int(ends[-1]) == last_end and int(owner[-1]) == nseg - 1:        # the token running to the end is unfinished
            pending = int(starts[-1])
            starts, ends, owner = starts[:-1], ends[:-1], owner[:-1]
        t = int((owner == nseg - 1).sum())
        j = t - size + 1                                    # the first shingle not yet made
        carry = int(offsets[-2]) if j <= 0 else int(starts[len(starts) - t + j]) if j < t else pending
    hashes = token_hashes(xp, data, starts, ends)
    n_tok = len(hashes)
    count = xp.bincount(owner, minlength=nseg)
    first = xp.cumsum(count) - count
    short = (count >= 1) & (count < size) & bool(short_ok)
    if open_end and nseg:
        short[-1] = False
    short_at = xp.flatnonzero(short)
    short_val = xp.zeros(len(short_at), dtype=xp.uint64)
    g = hashes.copy()
    for w in range(1, size):                               # g[i]: tokens i .. i+w-1 folded
        hit = count[short_at] == w
        short_val[hit] = g[first[short_at[hit]]]
        k = max(n_tok - w, 0)
        g[:k] = g[:k] * xp.uint64(Q) + hashes[w: w + k]
    n_full = max(n_tok - size + 1, 0)
    full = xp.flatnonzero(owner[size - 1: size - 1 + n_full] == owner[:n_full])
    values = xp.concatenate([g[full], short_val])
    segment = xp.concatenate([owner[full], short_at])
    order = xp.argsort(segment) if len(short_at) else xp.arange(len(segment))   # any order within a segment
    return fmix64(xp, values)[order], segment[order], carry


def _segment_min(xp: ModuleType, h32: Any, segment: Any, a: Any, b: Any, out: Any) -> None:
    """out[s, j] = min(out[s, j], min over h32 of segment s of (a[j] * h + b[j]) mod 2**32);
    ``segment`` ascending. NumPy: blocks of BLOCK shingles, ``minimum.reduceat``; CuPy: a kernel."""
    if xp is not np:
        return _segment_min_cuda(xp, h32, segment, a, b, out)
    for lo in range(0, len(h32), BLOCK):
        h, s = h32[lo: lo + BLOCK], segment[lo: lo + BLOCK]
        v = h[:, None] * a[None, :] + b[None, :]             # uint32: wraps mod 2**32
        heads = np.flatnonzero(np.concatenate([[True], s[1:] != s[:-1]]))
        rows = s[heads]
        out[rows] = np.minimum(out[rows], np.minimum.reduceat(v, heads, axis=0))


_CUDA_SOURCE = r"""
extern "C" __global__ void segment_min(const unsigned int *h, const long long *bounds, const unsigned int *a,
                                       const unsigned int *b, unsigned int *out, long long nseg, int k) {
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= nseg * k) return;
    long long s = t / k;
    int j = (int)(t % k);
    unsigned int m = out[t], aj = a[j], bj = b[j];
    for (long long p = bounds[s]; p < bounds[s + 1]; p++) {
        unsigned int v = aj * h[p] + bj;
        m = v < m ? v : m;
    }
    out[t] = m;
}
"""


def _segment_min_cuda(cp: ModuleType, h32: Any, segment: Any, a: Any, b: Any, out: Any) -> None:
    """The CuPy form of _segment_min: one thread per (segment, permutation), looping over the
    segment's shingles (threads of a warp read the same hash)."""
    kernel = cp.RawKernel(_CUDA_SOURCE, "segment_min")
    nseg, k = out.shape
    bounds = cp.concatenate([cp.zeros(1, cp.int64), cp.cumsum(cp.bincount(segment, minlength=nseg))])
    threads = 256
    blocks = (nseg * k + threads - 1) // threads
    if blocks:
        kernel((blocks,), (threads,), (h32, bounds.astype(cp.int64), a, b, out, cp.int64(nseg), cp.int32(k)))


def _gather(xp: ModuleType, data: Any, lo: np.ndarray, hi: np.ndarray) -> tuple[Any, Any]:
    """The segments [lo[i], hi[i]) of ``data`` copied into one contiguous buffer: (buffer, offsets)."""
    sizes = hi - lo
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    index = np.arange(int(offsets[-1]), dtype=np.int64) + np.repeat(lo - offsets[:-1], sizes)
    return data[xp.asarray(index)], xp.asarray(offsets)


def _groups(lo: np.ndarray, hi: np.ndarray, limit: int) -> list[tuple[int, int]]:
    """Ranges of segments of about ``limit`` bytes (a larger segment alone)."""
    before = np.concatenate([[0], np.cumsum(hi - lo)[:-1]]) if len(lo) else np.zeros(0, np.int64)
    cuts = np.flatnonzero(np.diff(before // limit, prepend=-1)).tolist() + [len(lo)]
    return list(zip(cuts[:-1], cuts[1:]))


def signatures(xp: ModuleType, data: Any, lo: np.ndarray, hi: np.ndarray, shingling: Shingling, out: Any,
               counts: np.ndarray, open_end: bool = False, short_ok: bool = True, native: bool = True) -> int:
    """Min the shingles of each segment ``data[lo[i]:hi[i]]`` (data: uint8 on ``xp``'s device; lo, hi:
    int64 NumPy) into ``out[i]`` (uint32, n x permutations, on ``xp``; EMPTY where nothing yet) and
    add their number to ``counts[i]`` (int64, NumPy). Returns where to resume the last segment
    (``open_end``; see the module doc), else -1. On NumPy, the C pass when built."""
    a, b = shingling.coefficients()
    if xp is np and native and _native is not None:
        return _native.minhash_spans(np.ascontiguousarray(data, dtype=np.uint8), np.require(lo, np.int64, "C"),
                                     np.require(hi, np.int64, "C"), shingling.size, shingling.words, a, b, out,
                                     counts, open_end, short_ok)
    a, b = xp.asarray(a), xp.asarray(b)
    carry = -1
    groups = _groups(lo, hi, GROUP_BYTES["numpy" if xp is np else "cupy"])
    for g0, g1 in groups:
        buf, offsets = _gather(xp, data, lo[g0:g1], hi[g0:g1])
        is_last = open_end and g1 == len(lo)
        h, seg, resume = shingle_hashes(xp, buf, offsets, shingling.size, shingling.words, is_last, short_ok)
        counts[g0:g1] += np.bincount(to_host(seg), minlength=g1 - g0)
        _segment_min(xp, (h >> xp.uint64(32)).astype(xp.uint32), seg, a, b, out[g0:g1])
        if is_last:
            carry = int(lo[-1]) + resume - int(offsets[-2])
    return carry
