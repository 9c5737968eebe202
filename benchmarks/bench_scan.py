"""exoflow scan (secrets + placeholders packs) against ripgrep running the same patterns.

    python benchmarks/bench_scan.py [--runs 3] [--warmup 1] [TREE ...]   (default: /usr and Python's lib/)

Both honour .gitignore and skip binary files; rg gets --hidden because scan reads hidden files.
Whole processes, median of --runs, ratio = exoflow / rg (target: <= 1.5).
"""
from __future__ import annotations

import argparse
import os
import sys
import sysconfig
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from common import machine, measure, need, tree_stats  # noqa: E402

from exoflow.ops.scan.rules import load_rules  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("trees", nargs="*", default=["/usr", sysconfig.get_paths()["stdlib"]])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--rules", default="secrets,placeholders")
    args = ap.parse_args()
    rg = need("rg")
    patterns = [r.pattern for r in load_rules(args.rules).rules]
    rg_cmd = [rg, "-c", "--hidden", "--glob", "!.git", "-j", str(os.cpu_count())] + [a for p in patterns for a in ("-e", p)]
    print(f"machine: {machine()}\nrules: {args.rules} ({len(patterns)} patterns)\n")
    print("| tree | files | bytes | exoflow scan (s) | rg (s) | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for tree in args.trees:
        files, nbytes = tree_stats(tree)
        with tempfile.TemporaryDirectory() as tmp:
            ex = measure([sys.executable, "-m", "exoflow", "run", "scan", tree, "--rules", args.rules, "-q",
                          "--no-dashboard", "--no-sarif", "--overwrite", "--out", os.path.join(tmp, "o")],
                         runs=args.runs, warmup=args.warmup)
        r = measure(rg_cmd + [tree], runs=args.runs, warmup=args.warmup)
        print(f"| {tree} | {files:,} | {nbytes / 2**20:,.0f} MiB | {ex.wall:.2f} | {r.wall:.2f} | {ex.wall / r.wall:.2f} |",
              flush=True)


if __name__ == "__main__":
    main()
