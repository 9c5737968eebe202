"""Scaling on one machine (issue 13, point 7): files/s of inventory, checksum and scan with 1 and
2 worker processes; the scheduler's cost per task; and files/s against the chunk size.

    python benchmarks/bench_scaling.py [--runs 3] [--workers 1 2] [--chunk-files 500 2000 20000] [TREE]

Default TREE: this Python's lib/ directory. Every exoflow command is a whole process on a fresh
embedded cluster (``--embedded --workers N --threads-per-worker 1``), page cache warm, median of
--runs after one warm-up. Two rates are printed: whole process (what a user waits for, start-up
included) and in-run (summary.json's files_per_s: listing to last part, the part that grows with
workers and hosts). The per-task cost is measured on a Dask LocalCluster with the same worker
count: the wall time of 2,000 no-op tasks submitted at once, divided by their number. The model
that uses these figures is in docs/scaling.md.
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
from common import machine, measure, tree_stats  # noqa: E402

JOBS = ("inventory", "checksum", "scan")


def in_run_rate(cmd: list[str], out: str, runs: int) -> float:
    """Median of summary.json's files_per_s over ``runs`` runs of ``cmd`` (which writes ``out``)."""
    rates = []
    for _ in range(runs):
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(os.path.join(out, "summary.json")) as f:
            rates.append(json.load(f)["files_per_s"])
    return statistics.median(rates)


def task_cost(workers: int, tasks: int = 2000) -> float:
    """Seconds per no-op task through a scheduler with ``workers`` single-threaded processes."""
    from distributed import Client, LocalCluster, wait

    with LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        wait(client.map(int, range(200), pure=False))          # warm-up: connections, pickling
        t0 = time.perf_counter()
        wait(client.map(int, range(tasks), pure=False))
        return (time.perf_counter() - t0) / tasks


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("tree", nargs="?", default=sysconfig.get_paths()["stdlib"])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--workers", type=int, nargs="*", default=[1, 2])
    p.add_argument("--chunk-files", type=int, nargs="*", default=[500, 2000, 20000])
    a = p.parse_args()
    files, size = tree_stats(a.tree)
    print(f"machine: {machine()}")
    print(f"tree: {a.tree}: {files:,} entries, {size / 1e6:,.0f} MB; median of {a.runs} runs, page cache warm")
    work = tempfile.mkdtemp(prefix="bench-scaling-")
    out = os.path.join(work, "out")

    def cmd(job: str, workers: int, *extra: str) -> list[str]:
        return [sys.executable, "-m", "exoflow", "run", job, a.tree, "--out", out, "--overwrite", "-q",
                "--embedded", "--no-dashboard", "--workers", str(workers), "--threads-per-worker", "1", *extra]

    print("\n| job | workers | whole process s | files/s whole | files/s in-run | in-run vs 1 worker |")
    print("|---|---:|---:|---:|---:|---:|")
    for job in JOBS:
        base = None
        for w in a.workers:
            t = measure(cmd(job, w), runs=a.runs)
            rate = in_run_rate(cmd(job, w), out, a.runs)
            base = base or rate
            print(f"| {job} | {w} | {t.wall:.2f} | {files / t.wall:,.0f} | {rate:,.0f} | {rate / base:.2f}x |")

    print("\n| workers | scheduler cost per task (ms) |")
    print("|---:|---:|")
    for w in a.workers:
        print(f"| {w} | {task_cost(w) * 1e3:.2f} |")

    w = max(a.workers)
    print(f"\n| job | --chunk-files | chunks | files/s in-run ({w} workers) |")
    print("|---|---:|---:|---:|")
    for job in ("inventory", "checksum"):
        for n in a.chunk_files:
            rate = in_run_rate(cmd(job, w, "--chunk-files", str(n)), out, a.runs)
            with open(os.path.join(out, "summary.json")) as f:
                chunks = json.load(f)["chunks"]
            print(f"| {job} | {n:,} | {chunks} | {rate:,.0f} |")
    subprocess.run(["rm", "-rf", work])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
