"""exoflow --since over an unchanged tree vs an inventory of the same tree, whole process, median of runs.

Side by side: a full checksum (every file read), a checksum --since that full run's output (every
file stat'ed, none read: issue 14 asks at most 1.25x the inventory, the floor), and the inventory;
the same for scan over the Python library.

    python benchmarks/bench_since.py                                   # /usr (checksum), the Python lib (scan)
    python benchmarks/bench_since.py --checksum-trees /usr GEN --runs 3
"""
from __future__ import annotations

import argparse
import os
import sys
import sysconfig

sys.path.insert(0, os.path.dirname(__file__))
from common import measure, trees  # noqa: E402
from make_tree import make_tree  # noqa: E402


def exoflow(job: str, tree: str, out: str, *flags: str) -> list[str]:
    return [sys.executable, "-m", "exoflow", "run", job, tree, "--out", out, "--overwrite", "-q",
            "--no-dashboard", *flags]


# the inventory walks as the job does (scan honours .gitignore and skips .git): the same entries stat'ed
SAME_WALK = {"checksum": [], "scan": ["--gitignore", "--exclude", ".git"]}


def compare(job: str, tree: str, work: str, runs: int) -> None:
    first, again, inv = (os.path.join(work, n) for n in ("first", "again", "inventory"))
    rows = [(f"{job} (every file read)", measure(exoflow(job, tree, first), runs=runs)),
            (f"{job} --since (unchanged)", measure(exoflow(job, tree, again, "--since", first), runs=runs)),
            ("inventory " + " ".join(SAME_WALK[job]), measure(exoflow("inventory", tree, inv, *SAME_WALK[job]),
                                                              runs=runs))]
    floor = rows[-1][1].wall
    print(f"{'run':<34}{'median s':>10}{'min':>8}{'max':>8}{'x inventory':>13}")
    for name, t in rows:
        print(f"{name:<34}{t.wall:>10.2f}{t.wall_min:>8.2f}{t.wall_max:>8.2f}{t.wall / floor:>12.2f}x")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checksum-trees", nargs="*", default=["/usr"], help="trees for checksum (GEN = make_tree.py)")
    p.add_argument("--scan-trees", nargs="*", default=[sysconfig.get_paths()["stdlib"]], help="trees for scan")
    p.add_argument("--gen-files", type=int, default=100_000)
    p.add_argument("--runs", type=int, default=3)
    a = p.parse_args()
    for job, names in (("checksum", a.checksum_trees), ("scan", a.scan_trees)):
        for tree, work, n, size in trees(names, f"bench-since-{job}-", lambda path: make_tree(path, a.gen_files)):
            print(f"\n{job}, tree {tree}: {n:,} entries, {size / 1e9:.2f} GB")
            compare(job, tree, work, a.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
