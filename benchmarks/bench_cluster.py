"""`exoflow run inventory` on a running `exoflow cluster` (warm) and on its embedded cluster (cold)
vs `find TREE -printf`, whole process, median of runs, page cache warm (issue 13, point 4); and a
run over an empty directory (the fixed cost).

    python benchmarks/bench_cluster.py                  # /usr, 2 workers, median of 5
    python benchmarks/bench_cluster.py --trees /usr /tmp/tree1m --workers 2 --runs 5

The cluster is started in a scratch state directory (EXOFLOW_STATE_DIR) and stopped at the end.
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from common import machine, measure, tree_stats  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trees", nargs="*", default=["/usr"])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--runs", type=int, default=5)
    a = p.parse_args()
    work = tempfile.mkdtemp(prefix="bench-cluster-")
    os.environ["EXOFLOW_STATE_DIR"] = os.path.join(work, "state")
    os.environ.pop("DASK_SCHEDULER_ADDRESS", None)
    exoflow = [sys.executable, "-m", "exoflow.cli"]
    print(f"machine: {machine()}")
    subprocess.run([*exoflow, "cluster", "start", "--workers", str(a.workers), "--dashboard", "127.0.0.1:0"],
                   check=True, stdout=subprocess.DEVNULL)
    try:
        print("| tree | entries | tool | wall s (min-max) | entries/s | exoflow ratio |")
        print("|---|---:|---|---:|---:|---:|")
        for tree in a.trees:
            entries, _ = tree_stats(tree)
            out = os.path.join(work, "out")
            run = [*exoflow, "run", "inventory", tree, "--out", out, "--overwrite", "-q"]
            tf = measure(f"find {shlex.quote(tree)} -printf '%p %s %T@ %m %U %G\\n' > /dev/null", runs=a.runs,
                         shell=True)
            rows = [("exoflow run inventory (exoflow cluster, warm)", measure(run, runs=a.runs)),
                    ("exoflow run inventory --embedded (cold)",
                     measure([*run, "--embedded", "--workers", str(a.workers), "--no-dashboard"], runs=a.runs)),
                    ("find -printf", tf)]
            for name, t in rows:
                ratio = f"{tf.wall / t.wall:.2f}x" if name.startswith("exoflow") else ""
                print(f"| {tree} | {entries:,} | {name} | {t.wall:.2f} ({t.wall_min:.2f}-{t.wall_max:.2f}) "
                      f"| {entries / t.wall:,.0f} | {ratio} |")
        empty = os.path.join(work, "empty")
        os.mkdir(empty)
        for name, extra in (("exoflow cluster, warm", []), ("--embedded (cold)", ["--embedded", "--no-dashboard"])):
            t = measure([*exoflow, "run", "inventory", empty, "--out", os.path.join(work, "o"), "--overwrite", "-q",
                         *extra], runs=a.runs)
            print(f"| (empty directory) | 0 | exoflow run inventory ({name}) | {t.wall:.2f} "
                  f"({t.wall_min:.2f}-{t.wall_max:.2f}) | | |")
    finally:
        subprocess.run([*exoflow, "cluster", "stop"], stdout=subprocess.DEVNULL)
        subprocess.run(["rm", "-rf", work])
    return 0


if __name__ == "__main__":
    sys.exit(main())
