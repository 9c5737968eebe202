"""exoflow profile with NumPy kernels (--backend cpu) against the same kernels on CuPy (--backend gpu).

    python benchmarks/bench_profile.py [--runs 3] [--warmup 1] [TREE|GEN ...]

Two measurements, each median of --runs:
- whole process: `exoflow run profile TREE --backend cpu|gpu` on the embedded cluster, reading
  included (GEN: a generated tree of 20,000 text and binary files, about 1 GiB);
- the kernels alone on one batch buffer of 5,000 files and 64 MiB (the job's chunk bounds):
  NumPy against CuPy, the host-to-device copy and the copy of the results back included.
There is no per-file byte-profile tool to anchor against; the CPU backend is the reference.
The gpu rows say "skipped" where no CUDA device with CuPy is present.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import measure, trees  # noqa: E402

from exoflow.backends import gpu_available  # noqa: E402
from exoflow.kernels import bytestats as k  # noqa: E402


def make_gen(root: str, files: int = 20_000, seed: int = 11) -> None:
    """Mixed text (LF and CRLF) and random binary files, sizes log-normal around 32 KiB."""
    rng = np.random.default_rng(seed)
    line = b"the quick brown fox jumps over the lazy dog 0123456789\r\n"
    for i in range(files):
        d = os.path.join(root, f"d{i % 100:02d}")
        os.makedirs(d, exist_ok=True)
        size = int(min(rng.lognormal(10.4, 1.0), 2**20))
        data = rng.bytes(size) if i % 3 == 0 else (line * (size // len(line) + 1))[:size]
        with open(os.path.join(d, f"f{i:05d}"), "wb") as f:
            f.write(data)


def kernels(xp, data: np.ndarray, offsets: np.ndarray, n: int) -> None:
    """What profile_columns does with the buffer: to the device, the kernels, the results back."""
    d, o = xp.asarray(data), xp.asarray(offsets)
    hist = k.histograms(xp, d, o, n)
    crlf, binary = k.crlf_counts(xp, d, o, n), k.first_nul(xp, d, o, n)
    for a in (hist, crlf, binary):
        a.get() if hasattr(a, "get") else a


def time_kernels(xp, runs: int) -> float:
    rng = np.random.default_rng(3)
    n, total = 5_000, 64 * 2**20
    sizes = rng.multinomial(total, np.full(n, 1 / n))
    offsets = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
    data = rng.integers(0, 256, total, dtype=np.uint8)
    kernels(xp, data, offsets, n)                      # warm-up (CuPy compiles its kernels here)
    walls = []
    for _ in range(runs):
        t0 = time.perf_counter()
        kernels(xp, data, offsets, n)
        walls.append(time.perf_counter() - t0)
    return statistics.median(walls)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("trees", nargs="*", default=["GEN"])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    args = ap.parse_args()
    gpu = gpu_available()
    backends = ["cpu", "gpu"] if gpu else ["cpu"]
    for tree, work, files, nbytes in trees(args.trees, "exoflow-bench-profile-", make_gen):
        print(f"\ntree: {tree}: {files:,} files, {nbytes / 2**20:,.0f} MiB")
        print("| backend | wall (s, median) | min | max | files/s | MiB/s |\n|---|---:|---:|---:|---:|---:|")
        walls = {}
        for b in backends:
            cmd = [sys.executable, "-m", "exoflow", "run", "profile", tree, "--backend", b, "-q",
                   "--no-dashboard", "--overwrite", "--out", os.path.join(work, f"out-{b}")]
            t = measure(cmd, runs=args.runs, warmup=args.warmup)
            walls[b] = t.wall
            print(f"| {b} | {t.wall:.2f} | {t.wall_min:.2f} | {t.wall_max:.2f} | {files / t.wall:,.0f} | "
                  f"{nbytes / 2**20 / t.wall:,.0f} |")
        if not gpu:
            print("| gpu | skipped: no CUDA device with CuPy | | | | |")
        else:
            print(f"\ngpu / cpu throughput: {walls['cpu'] / walls['gpu']:.2f}x")
    print("\nkernels alone, one buffer of 5,000 files, 64 MiB (median of "
          f"{max(args.runs, 5)}):\n| backend | seconds | GiB/s |\n|---|---:|---:|")
    for name in backends:
        if name == "gpu":
            import cupy as xp
        else:
            xp = np
        s = time_kernels(xp, max(args.runs, 5))
        print(f"| {name} | {s:.4f} | {64 / 1024 / s:.2f} |")


if __name__ == "__main__":
    main()
