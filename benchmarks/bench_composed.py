"""One composed run against its jobs run one by one: exoflow run checksum+scan+codestats+profile.

    python benchmarks/bench_composed.py [--runs 3] [--warmup 1] [--drop-caches] [TREE ...]

Default TREE: this Python's lib/ directory. Each command is a whole process (``exoflow run …``,
its embedded cluster included), timed as the median of --runs after --warmup runs (page cache
warm), the commands taking turns round by round. --drop-caches: the page cache is dropped before every run (needs root; skipped with a
note where /proc/sys/vm/drop_caches cannot be written), so each run reads from the disk.
Prints the wall times and the ratios: the composed run over the slowest job alone (target:
<= 1.3x) and over the sum of the jobs alone.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from common import machine, measure, tree_stats  # noqa: E402

JOBS = ("checksum", "scan", "codestats", "profile")


def drop_caches() -> None:
    subprocess.run(["sync"], check=True)
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def can_drop() -> bool:
    try:
        drop_caches()
        return True
    except OSError:
        return False


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("trees", nargs="*", default=[os.path.dirname(sysconfig.get_paths()["purelib"])])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--drop-caches", action="store_true", help="cold page cache before every run (root)")
    ap.add_argument("--jobs", default="+".join(JOBS), help=f"the composed run (default: {'+'.join(JOBS)})")
    args = ap.parse_args()
    jobs = args.jobs.split("+")
    prepare = None
    if args.drop_caches:
        if not can_drop():
            raise SystemExit("--drop-caches: /proc/sys/vm/drop_caches cannot be written here")
        prepare = drop_caches
    print(f"machine: {machine()}; page cache: {'dropped before each run' if prepare else 'warm'}")
    with tempfile.TemporaryDirectory() as tmp:
        for tree in args.trees:
            files, nbytes = tree_stats(tree)
            print(f"\ntree: {tree}: {files:,} entries, {nbytes / 2**20:,.0f} MiB; median of {args.runs}\n")
            print("| run | wall (s, median) | min | max |\n|---|---:|---:|---:|")
            specs = [*jobs, args.jobs]
            seen: dict[str, list[float]] = {spec: [] for spec in specs}
            out = os.path.join(tmp, "o")
            # round by round, each command once a round: a load that comes and goes on a shared
            # machine falls on all of them alike
            for i in range((0 if prepare else args.warmup) + args.runs):
                for spec in specs:
                    cmd = [sys.executable, "-m", "exoflow.cli", "run", spec, tree, "-q", "--no-dashboard",
                           "--overwrite", "--out", out]
                    wall = measure(cmd, runs=1, warmup=0, prepare=prepare).wall
                    if i >= (0 if prepare else args.warmup):
                        seen[spec].append(wall)
            walls = {spec: statistics.median(w) for spec, w in seen.items()}
            for spec, w in seen.items():
                print(f"| {spec} | {walls[spec]:.2f} | {min(w):.2f} | {max(w):.2f} |", flush=True)
            alone = [walls[j] for j in jobs]
            composed = walls[args.jobs]
            print(f"\ncomposed / slowest alone ({jobs[alone.index(max(alone))]}): {composed / max(alone):.2f}x "
                  f"(target <= 1.3x); composed / sum of the {len(jobs)} alone: {composed / sum(alone):.2f}x "
                  f"({composed:.2f} s vs {sum(alone):.2f} s)")


if __name__ == "__main__":
    main()
