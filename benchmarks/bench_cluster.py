"""Issue 13, point 4: exoflow on a running `exoflow cluster` (warm: the run goes through its driver)
and on its embedded cluster (cold), against the reference tools, whole process, median of runs,
page cache warm. Each job and its tool run in turns (``common.measure_rounds``), so that the
machine's drift from minute to minute falls on both.

    inventory   vs find TREE -printf …                       files/s, target >= 0.8x
    dedup       vs jdupes -r -q -m TREE                       time,    target <= 1.0x
    checksum    vs find -print0 | xargs -0 -P2 xxh128sum      files/s, target >= 0.8x
    an empty directory (the fixed cost of a run)              target <= 0.25 s
    exoflow --version, exoflow jobs                           target <= 0.15 s

    python benchmarks/bench_cluster.py                  # /usr, 2 workers, median of 5
    python benchmarks/bench_cluster.py --trees /usr /tmp/tree1m --jobs inventory --runs 3

The cluster is started in a scratch state directory (EXOFLOW_STATE_DIR) and stopped at the end.
The machine's load average is printed before and after: on a shared machine, compare ratios,
and let it rest before a bench (on the 2-core machine of README, benches run back to back slowed
exoflow, which keeps both cores and five processes busy, more than the tools: inventory 0.80x
median against 0.92-0.97x after a rest).
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from common import machine, measure, measure_rounds, need, tree_stats  # noqa: E402

# job -> (reference tool's name, its shell command for TREE, the ratio: "rate" (exoflow's files/s over
# the tool's, higher is better) or "time" (exoflow's time over the tool's, lower is better), target)
REFERENCES = {
    "inventory": ("find -printf", "find {tree} -printf '%p %s %T@ %m %U %G\\n' > /dev/null", "rate", 0.8),
    "dedup": ("jdupes -r -q -m", "jdupes -r -q -m {tree} > /dev/null", "time", 1.0),
    "checksum": ("find -print0 | xargs -0 -P2 xxh128sum",
                 "find {tree} -type f -print0 | xargs -0 -P2 xxh128sum > /dev/null 2>&1; true", "rate", 0.8),
}


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def row(*cells: object) -> None:
    print("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |", flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trees", nargs="*", default=["/usr"])
    p.add_argument("--jobs", nargs="*", default=list(REFERENCES), choices=list(REFERENCES))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads-per-worker", type=int, default=1)
    p.add_argument("--no-cold", action="store_true", help="leave out the embedded (cold) runs")
    p.add_argument("--runs", type=int, default=5)
    a = p.parse_args()
    for tool in ("find", "jdupes", "xxh128sum"):
        need(tool)
    work = tempfile.mkdtemp(prefix="bench-cluster-")
    os.environ["EXOFLOW_STATE_DIR"] = os.path.join(work, "state")
    os.environ.pop("DASK_SCHEDULER_ADDRESS", None)
    exoflow = [sys.executable, "-m", "exoflow"]
    print(f"machine: {machine()}; load average before: {load()}")
    shape = ["--workers", str(a.workers), "--threads-per-worker", str(a.threads_per_worker)]
    print(f"cluster: {a.workers} workers x {a.threads_per_worker} threads")
    subprocess.run([*exoflow, "cluster", "start", *shape, "--dashboard", "127.0.0.1:0"],
                   check=True, stdout=subprocess.DEVNULL)
    out = os.path.join(work, "out")
    os.mkdir(os.path.join(work, "probe"))
    probe = subprocess.run([*exoflow, "run", "inventory", os.path.join(work, "probe"), "--out", out, "--overwrite",
                            "-q"], capture_output=True, text=True)
    if "driver" in probe.stderr:     # e.g. another exoflow installation than the command's: "warm" would not be
        print(f"warning: the warm runs do not go through the driver: {probe.stderr.strip()}")
    try:
        row("tree", "entries", "tool", "wall s (min-max)", "entries/s", "exoflow ratio", "target")
        row("---", "---:", "---", "---:", "---:", "---:", "---:")
        for tree in a.trees:
            entries, _ = tree_stats(tree)
            for job in a.jobs:
                name, ref_cmd, kind, target = REFERENCES[job]
                run = [*exoflow, "run", job, tree, "--out", out, "--overwrite", "-q"]
                cmds = {f"exoflow run {job} (exoflow cluster, warm)": (run, False),
                        name: (ref_cmd.format(tree=shlex.quote(tree)), True)}
                if not a.no_cold:
                    cmds[f"exoflow run {job} --embedded (cold)"] = ([*run, "--embedded", *shape, "--no-dashboard"], False)
                timed = dict(zip(cmds, measure_rounds(list(cmds.values()), runs=a.runs)))
                ref = timed.pop(name)
                timings = [*timed.items(), (name, ref)]
                for label, t in timings:
                    ratio = ""
                    if label.startswith("exoflow"):
                        ratio = f"{ref.wall / t.wall:.2f}x" if kind == "rate" else f"{t.wall / ref.wall:.2f}x time"
                    row(tree, f"{entries:,}", label, f"{t.wall:.2f} ({t.wall_min:.2f}-{t.wall_max:.2f})",
                        f"{entries / t.wall:,.0f}", ratio,
                        (">= " if kind == "rate" else "<= ") + f"{target}x" if ratio else "")
        empty = os.path.join(work, "empty")
        os.mkdir(empty)
        for label, extra in (("exoflow cluster, warm", []), ("--embedded (cold)", ["--embedded", "--no-dashboard"])):
            t = measure([*exoflow, "run", "inventory", empty, "--out", out, "--overwrite", "-q", *extra], runs=a.runs)
            row("(empty directory)", 0, f"exoflow run inventory ({label})", f"{t.wall:.2f} ({t.wall_min:.2f}-"
                f"{t.wall_max:.2f})", "", "", "<= 0.25 s" if not extra else "")
        for argv in (["--version"], ["jobs"]):
            t = measure([*exoflow, *argv], runs=a.runs)
            row("", "", f"exoflow {' '.join(argv)}", f"{t.wall:.2f} ({t.wall_min:.2f}-{t.wall_max:.2f})", "", "",
                "<= 0.15 s")
    finally:
        subprocess.run([*exoflow, "cluster", "stop"], stdout=subprocess.DEVNULL)
        subprocess.run(["rm", "-rf", work])
        print(f"load average after: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
