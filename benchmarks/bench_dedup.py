"""exoflow dedup vs jdupes -r and rmlint, whole process, median of runs, same duplicate sets.

    python benchmarks/bench_dedup.py                       # /usr and a generated tree
    python benchmarks/bench_dedup.py --trees /usr --runs 3
    python benchmarks/bench_dedup.py --gen-files 20000     # size of the generated tree

The generated tree has planted duplicates, hard links, empty files, same-size-different
files and same-prefix-different-suffix files. Duplicate sets are compared with jdupes'
(as sets of (device, inode), since which name of a hard-linked file is shown may differ).
"""
from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys

import pyarrow.dataset as ds

sys.path.insert(0, os.path.dirname(__file__))
from common import measure, need, trees  # noqa: E402


def make_dup_tree(root: str, files: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    blobs = [rng.randbytes(rng.choice([100, 3000, 5000, 70_000, 300_000])) for _ in range(max(1, files // 10))]
    for i in range(files):
        d = os.path.join(root, f"d{i % 50:02d}", f"s{i % 7}")
        os.makedirs(d, exist_ok=True)
        p = os.path.join(d, f"f{i:06d}")
        kind = i % 10
        if kind < 4:                                    # planted duplicate of a shared blob
            data = rng.choice(blobs)
        elif kind == 4:                                 # same prefix, different last byte
            b = rng.choice(blobs)
            data = b[:-1] + bytes([rng.randrange(256)])
        elif kind == 5:
            data = b""
        else:
            data = rng.randbytes(rng.choice([100, 3000, 5000]))   # same size, different content
        with open(p, "wb") as f:
            f.write(data)
        if kind == 6:
            os.link(p, p + ".hardlink")


def jdupes_sets(root: str) -> set[frozenset]:
    out = subprocess.run(["jdupes", "-r", "-q", root], capture_output=True, text=True, errors="surrogateescape").stdout
    return {frozenset(_ino(p) for p in g.splitlines()) for g in out.strip().split("\n\n") if g.strip()}


def _ino(p: str) -> tuple[int, int]:
    st = os.lstat(p)
    return st.st_dev, st.st_ino


def exoflow_sets(out: str) -> set[frozenset]:
    t = ds.dataset(os.path.join(out, "duplicates"), format="parquet").to_table(columns=["group_id", "device", "inode"])
    groups: dict[int, set] = {}
    for g, d, i in zip(*(t.column(c).to_pylist() for c in ("group_id", "device", "inode"))):
        groups.setdefault(g, set()).add((d, i))
    return {frozenset(s) for s in groups.values()}


def _measure_cpu(cmd: list[str], runs: int, warmup: int = 1):
    """measure() plus CPU seconds (user, sys) per run, averaged over all runs including the warm-up:
    the resource usage of waited-for children, which includes exoflow's worker processes."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    timing = measure(cmd, runs=runs, warmup=warmup, memory=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    n = runs + warmup
    return timing, ((after.ru_utime - before.ru_utime) / n, (after.ru_stime - before.ru_stime) / n)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trees", nargs="*", default=["/usr", "GEN"], help="trees (GEN = the generated tree)")
    p.add_argument("--gen-files", type=int, default=20_000)
    p.add_argument("--runs", type=int, default=3)
    a = p.parse_args()
    for t in ("jdupes", "rmlint"):
        need(t)
    for tree, work, n, size in trees(a.trees, "bench-dedup-", lambda path: make_dup_tree(path, a.gen_files)):
        out = os.path.join(work, "out")
        exo = [sys.executable, "-m", "exoflow", "run", "dedup", tree, "--out", out, "--overwrite", "-q",
               "--no-dashboard"]
        rm_out = os.path.join(work, "rmlint.json")
        tools = {
            "exoflow dedup": exo,
            "jdupes -r": ["jdupes", "-r", "-q", tree],
            "rmlint": ["rmlint", "-o", f"json:{rm_out}", "-T", "df", tree],
        }
        times, cpu = {}, {}
        for name, cmd in tools.items():
            times[name], cpu[name] = _measure_cpu(cmd, a.runs)
        same = exoflow_sets(out) == jdupes_sets(tree)
        base = times["jdupes -r"].wall
        print(f"\ntree {tree}: {n:,} entries, {size / 1e9:.2f} GB; duplicate sets identical to jdupes: {same}")
        print(f"{'tool':<16}{'median s':>10}{'min':>8}{'max':>8}{'vs jdupes':>11}{'peak MB':>10}"
              f"{'user s':>8}{'sys s':>8}")
        for name, t in times.items():
            print(f"{name:<16}{t.wall:>10.2f}{t.wall_min:>8.2f}{t.wall_max:>8.2f}{t.wall / base:>10.2f}x"
                  f"{t.client_mb + t.children_mb:>10.0f}{cpu[name][0]:>8.2f}{cpu[name][1]:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
