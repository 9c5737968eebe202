"""exoflow inventory against find -printf and gdu, side by side, whole process.

    python benchmarks/make_tree.py /tmp/tree1m
    python benchmarks/bench_inventory.py /usr /tmp/tree1m --runs 3

Prints, per tree: median wall time (min-max), files/s, peak memory of the
client and of its children (the Dask workers), and the ratios of exoflow's
files/s to each anchor's. The page cache is warm for every tool (one warm-up
run each), which is what repeated runs measure anyway.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile

from common import machine, measure, need, tree_stats


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("trees", nargs="+")
    p.add_argument("--runs", type=int, default=3)
    a = p.parse_args()
    need("find")
    gdu = shutil.which("gdu")
    out = tempfile.mkdtemp(prefix="bench-inv-")
    print(f"machine: {machine()}")
    print("| tree | entries | bytes | tool | wall s (min-max) | files/s | client MB | workers MB | exoflow ratio |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|")
    for tree in a.trees:
        n, nbytes = tree_stats(tree)
        tools = {
            "exoflow run inventory": [sys.executable, "-m", "exoflow", "run", "inventory", tree, "-q",
                                      "--no-dashboard", "--out", f"{out}/o", "--overwrite"],
            "find -printf": f"find {tree} -printf '%s %T@ %i %p\\n' > /dev/null",
        }
        if gdu:
            tools["gdu -n -p"] = f"gdu -n -p {tree} > /dev/null"
        res = {name: measure(cmd, runs=a.runs, shell=isinstance(cmd, str), memory=True) for name, cmd in tools.items()}
        ours = n / res["exoflow run inventory"].wall
        for name, t in res.items():
            rate = n / t.wall
            ratio = "" if name.startswith("exoflow") else f"{ours / rate:.2f}x"
            print(f"| {tree} | {n:,} | {nbytes:,} | {name} | {t.wall:.2f} ({t.wall_min:.2f}-{t.wall_max:.2f}) | "
                  f"{rate:,.0f} | {t.client_mb:.0f} | {t.children_mb:.0f} | {ratio} |", flush=True)
    shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
