"""One composed run against its jobs run one by one: exoflow run checksum+scan+codestats+profile.

    python benchmarks/bench_composed.py [--runs 3] [--warmup 1] [--usr] [--cold [drop|evict]] [TREE ...]

Default TREE: this Python's lib/ directory; --usr adds /usr. Each command is a whole process
(``exoflow run …``, its embedded cluster included), timed as the median of --runs after --warmup
runs (page cache warm), the commands taking turns round by round. --cold: the page cache is
emptied before every run, so each run reads from the disk: by /proc/sys/vm/drop_caches where it
can be written (root, outside a container that forbids it), else, or with --cold evict, by
evicting every regular file of the trees with posix_fadvise(POSIX_FADV_DONTNEED) (the way used
is printed). Prints the wall
times and the ratios: the composed run over the slowest job alone (target: <= 1.3x) and over the
sum of the jobs alone.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile
from typing import Callable

sys.path.insert(0, os.path.dirname(__file__))
from common import machine, measure, tree_stats  # noqa: E402

JOBS = ("checksum", "scan", "codestats", "profile")


def drop_caches() -> None:
    subprocess.run(["sync"], check=True)
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def evict(trees: list[str]) -> None:
    """Every regular file of ``trees`` out of the page cache (its clean pages), file by file."""
    for tree in trees:
        for top, dirs, names in os.walk(tree):
            for name in names:
                try:
                    fd = os.open(os.path.join(top, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
                except OSError:
                    continue
                try:
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                except OSError:
                    pass
                finally:
                    os.close(fd)


def cold_start(how: str, trees: list[str]) -> tuple[str, Callable[[], None]]:
    """How the page cache is emptied before each run: (its description, the function). ``how``:
    "drop" (the whole cache, falling back to "evict" where that is forbidden) or "evict" (the
    trees' pages only: on a shared machine the others' stay)."""
    reason = "asked for"
    if how == "drop":
        try:
            drop_caches()
            return "dropped before each run (/proc/sys/vm/drop_caches)", drop_caches
        except OSError as e:
            reason = f"drop_caches: {e.strerror}"
    return f"the trees' pages evicted before each run (posix_fadvise DONTNEED; {reason})", lambda: evict(trees)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("trees", nargs="*", default=[os.path.dirname(sysconfig.get_paths()["purelib"])])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--usr", action="store_true", help="add /usr to the trees")
    ap.add_argument("--cold", "--drop-caches", nargs="?", const="drop", choices=("drop", "evict"),
                    help="empty the page cache before every run: drop (drop_caches, else as evict; the default) "
                         "or evict (posix_fadvise DONTNEED on each file of the trees)")
    ap.add_argument("--jobs", default="+".join(JOBS), help=f"the composed run (default: {'+'.join(JOBS)})")
    args = ap.parse_args()
    jobs = args.jobs.split("+")
    trees = args.trees + ["/usr"] * args.usr
    prepare, cache = None, "warm"
    if args.cold:
        cache, prepare = cold_start(args.cold, trees)
    print(f"machine: {machine()}; page cache: {cache}")
    with tempfile.TemporaryDirectory() as tmp:
        for tree in trees:
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
                    cmd = [sys.executable, "-m", "exoflow", "run", spec, tree, "-q", "--no-dashboard",
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
