"""exoflow checksum (xxh3-128, sha256) vs xxh128sum / sha256sum run as
`find TREE -type f -print0 | xargs -0 -P2 TOOL`, whole process, median of runs.

    python benchmarks/bench_checksum.py                    # /usr and a generated tree
    python benchmarks/bench_checksum.py --trees /usr --runs 3
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import measure, need, trees  # noqa: E402
from make_tree import make_tree  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trees", nargs="*", default=["/usr", "GEN"], help="trees (GEN = benchmarks/make_tree.py)")
    p.add_argument("--gen-files", type=int, default=50_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--procs", type=int, default=2, help="xargs -P for the coreutils tools (default: 2)")
    a = p.parse_args()
    for t in ("xxh128sum", "sha256sum"):
        need(t)
    for tree, work, n, size in trees(a.trees, "bench-checksum-", lambda path: make_tree(path, a.gen_files)):
        out = os.path.join(work, "out")
        print(f"\ntree {tree}: {n:,} entries, {size / 1e9:.2f} GB")
        print(f"{'tool':<36}{'median s':>10}{'min':>8}{'max':>8}{'MB/s':>9}{'exoflow/tool':>14}")
        for alg, tool in (("xxh3-128", "xxh128sum"), ("sha256", "sha256sum")):
            exo = [sys.executable, "-m", "exoflow", "run", "checksum", tree, "--hash", alg, "--out", out,
                   "--overwrite", "-q", "--no-dashboard"]
            shell = f"find {shlex.quote(tree)} -type f -print0 | xargs -0 -P{a.procs} {tool} > /dev/null"
            te = measure(exo, runs=a.runs)
            tt = measure(shell, runs=a.runs, shell=True)
            for name, t in ((f"exoflow checksum --hash {alg}", te), (f"find|xargs -P{a.procs} {tool}", tt)):
                print(f"{name:<36}{t.wall:>10.2f}{t.wall_min:>8.2f}{t.wall_max:>8.2f}{size / 1e6 / t.wall:>9.0f}"
                      f"{tt.wall / te.wall if name.startswith('exo') else 1:>13.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
