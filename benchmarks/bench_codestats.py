"""exoflow codestats against cloc on a Python installation's lib/ tree.

    python benchmarks/bench_codestats.py [--runs 3] [--warmup 1] [--cloc-runs N] [TREE]

cloc runs with --skip-uniqueness (it counts every file, as codestats does). Prints wall
times (median of --runs; cloc: of --cloc-runs, default --runs, its last run's table is the
one compared), the speed-up (target: >= 20x) and code-line totals per language (target:
within 1% of cloc for Python, C and Bourne Shell).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import machine, measure, need, tree_stats  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("tree", nargs="?", default=os.path.dirname(sysconfig.get_paths()["purelib"]))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--cloc-runs", type=int, default=None, help="cloc takes minutes: fewer runs (default --runs)")
    args = ap.parse_args()
    cloc = need("cloc")
    files, nbytes = tree_stats(args.tree)
    print(f"machine: {machine()}\ntree: {args.tree}: {files:,} files, {nbytes / 2**20:,.0f} MiB\n")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "o")
        ex_cmd = [sys.executable, "-m", "exoflow", "run", "codestats", args.tree, "-q", "--no-dashboard",
                  "--overwrite", "--out", out]
        ex = measure(ex_cmd, runs=args.runs, warmup=args.warmup)
        ours = {r["language"]: r for r in json.load(open(os.path.join(out, "summary.json")))["result"]["languages"]}
    cl_cmd = [cloc, "--quiet", "--skip-uniqueness", "--json", args.tree]
    cl_walls = []
    for _ in range(args.cloc_runs or args.runs):   # timed here: its output is the table compared below
        t0 = time.perf_counter()
        cl_out = subprocess.run(cl_cmd, capture_output=True, text=True).stdout
        cl_walls.append(time.perf_counter() - t0)
    cl_wall = statistics.median(cl_walls)
    theirs = json.loads(cl_out)
    print("| tool | wall (s, median) | runs |\n|---|---:|---:|")
    print(f"| exoflow codestats | {ex.wall:.2f} | {args.runs} |\n| cloc | {cl_wall:.2f} | {len(cl_walls)} |\n")
    print(f"speed-up: {cl_wall / ex.wall:.1f}x\n")
    print("| language | files (exoflow / cloc) | code exoflow | code cloc | difference |")
    print("|---|---:|---:|---:|---:|")
    for lang in ("Python", "C", "C/C++ Header", "Bourne Shell"):
        if lang in theirs and lang in ours:
            a, b = ours[lang]["code"], theirs[lang]["code"]
            print(f"| {lang} | {ours[lang]['files']} / {theirs[lang]['nFiles']} | {a:,} | {b:,} | "
                  f"{(a - b) / b * 100:+.2f}% |")


if __name__ == "__main__":
    main()
