"""Side-by-side timing of whole processes: wall time and peak memory, median of runs."""
from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import psutil


def _compile_exoflow() -> None:
    """Write exoflow's bytecode (``__pycache__``) before anything is timed, as ``pip install`` does
    for a regular install: with PYTHONDONTWRITEBYTECODE set (this machine sets it) an editable
    install would otherwise compile its ~45 modules from source in every process of every run
    (0.27 s of CPU in the client alone, measured with cProfile)."""
    import compileall
    import importlib.util

    for name in ("exoflow", "exoflow.jobs"):
        spec = importlib.util.find_spec(name)
        for where in spec.submodule_search_locations or ():
            compileall.compile_dir(where, quiet=1)


_compile_exoflow()


@dataclass
class Timing:
    wall: float          # seconds, median
    wall_min: float
    wall_max: float
    client_mb: float     # peak RSS of the launched process, MB (median)
    children_mb: float   # peak summed RSS of its descendants (e.g. Dask workers), MB (median)


def _run_once(cmd: list[str] | str, shell: bool, memory: bool) -> tuple[float, float, float]:
    """One whole-process run: (wall s, peak client RSS MB, peak descendants' RSS MB; 0 unless memory)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, shell=shell)
    peak_client = peak_kids = 0
    if memory:
        proc = psutil.Process(p.pid)
        while p.poll() is None:
            try:
                peak_client = max(peak_client, proc.memory_info().rss)
                peak_kids = max(peak_kids, sum(c.memory_info().rss for c in proc.children(recursive=True)))
            except psutil.Error:
                pass
            time.sleep(0.01)
    err = p.communicate()[1].decode(errors="replace")
    wall = time.perf_counter() - t0
    if p.returncode not in (0, 1):
        raise RuntimeError(f"{cmd} failed ({p.returncode}): {err[-500:]}")
    return wall, peak_client / 1e6, peak_kids / 1e6


def _timing(samples: list[tuple[float, float, float]]) -> Timing:
    walls = [s[0] for s in samples]
    return Timing(statistics.median(walls), min(walls), max(walls), statistics.median(s[1] for s in samples),
                  statistics.median(s[2] for s in samples))


def measure(cmd: list[str] | str, runs: int = 3, warmup: int = 1, prepare=None, shell: bool = False,
            memory: bool = False) -> Timing:
    """Run ``cmd`` ``warmup`` + ``runs`` times; stdout is discarded. ``memory``: also sample the peak
    RSS of the command and its descendants every 10 ms (0 when off). The sampling walks /proc for
    descendants and takes about a fifth of a core: on a 2-core machine it slows a command that
    uses both cores (an exoflow cluster, xargs -P2) by up to a third, so timings are taken without it."""
    samples = []
    for i in range(warmup + runs):
        if prepare:
            prepare()
        sample = _run_once(cmd, shell, memory)
        if i >= warmup:
            samples.append(sample)
    return _timing(samples)


def measure_rounds(cmds: list[tuple[list[str] | str, bool]], runs: int = 3, warmup: int = 1) -> list[Timing]:
    """Time several (command, shell) pairs side by side: ``warmup`` + ``runs`` rounds, each running
    every command once, the measured rounds in turn forward and reversed. A shared machine's speed drifts by
    10-15% from one minute to the next (measured here); commands timed in turns see the same
    minutes, so their ratio does not carry the drift that timing one after the other would."""
    samples: list[list] = [[] for _ in cmds]
    for i in range(warmup + runs):
        order = list(range(len(cmds)))
        for k in (order if (i - warmup) % 2 == 0 else order[::-1]):
            sample = _run_once(cmds[k][0], cmds[k][1], memory=False)
            if i >= warmup:
                samples[k].append(sample)
    return [_timing(s) for s in samples]


def machine() -> str:
    mem = psutil.virtual_memory().total / 2**30
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {mem:.0f} GiB, {platform.platform()}"


def tree_stats(root: str) -> tuple[int, int]:
    """(non-directory entries, bytes of regular files) from find, for the report."""
    out = subprocess.run(["find", root, "-not", "-type", "d", "-printf", "%y %s\\n"], capture_output=True,
                         text=True).stdout.splitlines()
    return len(out), sum(int(l.split()[1]) for l in out if l.startswith("f"))


def need(tool: str) -> str:
    path = shutil.which(tool)
    if not path:
        raise SystemExit(f"benchmark needs {tool!r} (apt-get install {tool})")
    return path


def trees(names: list[str], prefix: str, make_gen: Callable[[str], None]) -> Iterator[tuple[str, str, int, int]]:
    """(tree, scratch dir, entries, bytes) for each name; the name GEN is a tree that
    ``make_gen(path)`` generates. The scratch dir (for outputs and GEN) is removed at the end."""
    work = tempfile.mkdtemp(prefix=prefix)
    print(f"machine: {machine()}")
    try:
        for tree in names:
            if tree == "GEN":
                tree = os.path.join(work, "gen")
                make_gen(tree)
            yield (tree, work, *tree_stats(tree))
    finally:
        shutil.rmtree(work, ignore_errors=True)
