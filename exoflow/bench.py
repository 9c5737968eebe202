"""``exoflow bench`` and ``exoflow info``.

    exoflow bench JOB PATH... [run options] [--modes serial,cpu,gpu] [--repeats 3] [--warmup 1]
                  [--save FILE] [--compare FILE] [--threshold 0.10]
    exoflow bench --result FILE --compare FILE     compare two saved results, run nothing
    exoflow info [--json]

Modes: ``serial`` runs the job's tasks in this process, one after another, no
Dask cluster (``exoflow.executors.InProcess``: the same tasks and after-steps as
a cluster's; the floor every parallel mode must beat); ``cpu`` an embedded CPU
cluster (the run options --workers … apply); ``gpu`` a dask-cuda cluster
when dask-cuda and a GPU are present (skipped otherwise). Each mode does
``--warmup`` unmeasured runs, then ``--repeats`` measured ones; the report is
the median files/s and bytes/s with min–max. Cluster start-up is not measured
(it is paid once per mode); each run's wall time is the run's own.

Exit codes: 0; 1 when --compare finds a mode slower than the baseline by more
than --threshold; 2 usage error.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from typing import Any, Sequence

from exoflow import __version__
from exoflow.backends import GPU_RESOURCE, task_resources
from exoflow.errors import EXIT_FILE_ERRORS, EXIT_OK, UsageError
from exoflow.options import local_path

MODES = ("serial", "cpu", "gpu")
FORMAT = 1       # version of the saved JSON


# ---- exoflow info --------------------------------------------------------------

def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpus() -> list[dict]:
    try:
        from distributed.diagnostics import nvml
        if nvml.device_get_count() < 1:
            return []
        import pynvml
        out = []
        for i in range(nvml.device_get_count()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(h)
            out.append({"name": name.decode() if isinstance(name, bytes) else name,
                        "memory_bytes": int(pynvml.nvmlDeviceGetMemoryInfo(h).total)})
        return out
    except Exception:      # no pynvml, no driver, no GPU
        return []


def info() -> dict[str, Any]:
    """The machine and the versions that shape a benchmark's numbers."""
    from importlib.metadata import PackageNotFoundError, version

    import psutil

    packages = {}
    for name in ("dask", "distributed", "numpy", "pandas", "pyarrow", "bokeh", "cupy", "cudf", "dask-cuda"):
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            pass
    from exoflow.jobs_registry import load, shipped
    from exoflow.sources.walk import native_available

    settings = {}
    for name in shipped():
        job = load(name)
        settings.update(job.environment() if job.environment else {})

    return {"exoflow": __version__, "python": platform.python_version(), "platform": platform.platform(),
            "hostname": platform.node(), "cpu": _cpu_model(), "cores": os.cpu_count(),
            "lister": "compiled (exoflow._native)" if native_available() else "os.scandir (exoflow._native not built)",
            "jobs": settings,
            "memory_bytes": psutil.virtual_memory().total, "gpus": _gpus(), "gpu_check": validate_gpus(),
            "packages": packages}


def validate_gpus() -> dict:
    from exoflow.gpu import validate
    return validate()


def gpu_check_text(check: dict) -> str:
    """``exoflow info``'s line for ``exoflow.gpu.validate``'s result."""
    if "skipped" in check:
        return f"skipped: {check['skipped']}"
    return "; ".join(f"GPU {g['device']} {g['name']}: {'ok' if g['ok'] else 'FAILED'} ({g['detail']})"
                     for g in check.get("devices", [])) or "no GPU"


def format_info(d: dict) -> str:
    from exoflow.tables import human_bytes
    rows = [("exoflow", f"{d['exoflow']} (Python {d['python']})"), ("platform", d["platform"]),
            ("cpu", f"{d['cpu']}, {d['cores']} cores"), ("memory", human_bytes(d["memory_bytes"])),
            ("lister", d.get("lister", "?")), *d.get("jobs", {}).items(),
            ("gpus", ", ".join(f"{g['name']} ({human_bytes(g['memory_bytes'])})" for g in d["gpus"]) or "none"),
            ("gpu check", gpu_check_text(d.get("gpu_check") or {}))]
    rows += list(d["packages"].items())
    width = max(len(k) for k, _ in rows) + 2
    return "\n".join(f"{k:<{width}}{v}" for k, v in rows)


# ---- the modes -------------------------------------------------------------------

def _repeat(fn, cfg, warmup: int, repeats: int, say) -> list[dict]:
    runs = []
    for i in range(warmup + repeats):
        out = tempfile.mkdtemp(prefix="exoflow-bench-")
        try:
            cfg.out_dir = out
            r = fn(cfg)
        finally:
            shutil.rmtree(out, ignore_errors=True)
        if i >= warmup:
            runs.append(r)
            say(f"  run {i - warmup + 1}/{repeats}: {r['files']} files in {r['wall_s']:.3f} s")
    return runs


def run_mode(mode: str, cfg, cluster_opts, warmup: int, repeats: int, say) -> dict:
    """Measure one mode: {"runs": [...], "files_per_s": {...}, ...} or {"skipped": reason}."""
    from exoflow.executors import DaskExecutor, InProcess
    from exoflow.runner import run

    if "backend" in cfg.params:   # a job with NumPy and CuPy kernels runs the ones the mode names
        cfg = dataclasses.replace(cfg, params={**cfg.params, "backend": "gpu" if mode == "gpu" else "cpu"})
        cluster_opts = dataclasses.replace(cluster_opts, resources=task_resources(cfg.params))

    def on(executor):
        def once(c):
            s = run(executor, c)
            return {"files": s["files"], "bytes": s["bytes"], "wall_s": s["wall_s"]}
        return once

    if mode == "serial":
        runs = _repeat(on(InProcess()), cfg, warmup, repeats, say)
    elif mode == "cpu":
        from exoflow.cluster import connect
        with connect(cluster_opts) as client:
            runs = _repeat(on(DaskExecutor(client)), cfg, warmup, repeats, say)
    elif mode == "gpu":
        from exoflow import gpu
        why = gpu.missing()
        if why:
            return {"skipped": why}
        # the embedded cluster's GPU workers: dask-cuda, one per GPU, exoflow.gpu's settings
        from exoflow.cluster import connect
        with connect(dataclasses.replace(cluster_opts, resources=GPU_RESOURCE)) as client:
            runs = _repeat(on(DaskExecutor(client)), cfg, warmup, repeats, say)
    else:
        raise UsageError(f"unknown mode {mode!r}; modes: {', '.join(MODES)}")
    return summarise(runs)


def summarise(runs: list[dict]) -> dict:
    def stats(values: list[float]) -> dict:
        return {"median": statistics.median(values), "min": min(values), "max": max(values)}
    walls = [max(r["wall_s"], 1e-9) for r in runs]
    return {"runs": runs, "wall_s": stats(walls),
            "files_per_s": stats([r["files"] / w for r, w in zip(runs, walls)]),
            "bytes_per_s": stats([r["bytes"] / w for r, w in zip(runs, walls)])}


# ---- reporting and comparing -----------------------------------------------------

def format_result(result: dict) -> str:
    from exoflow.tables import human_bytes, human_count, table
    rows = []
    for mode, m in result["modes"].items():
        if "skipped" in m:
            rows.append([mode, f"skipped: {m['skipped']}", "", ""])
            continue
        f, b = m["files_per_s"], m["bytes_per_s"]
        rows.append([mode, f"{human_count(f['median'])} ({human_count(f['min'])}–{human_count(f['max'])})",
                     f"{human_bytes(b['median'])}/s ({human_bytes(b['min'])}–{human_bytes(b['max'])})",
                     str(len(m["runs"]))])
    title = (f"exoflow bench {result['job']}: {human_count(result['files'])} files, "
             f"{human_bytes(result['bytes'])} in {', '.join(result['sources'])}")
    return table(title, ["mode", "files/s median (min–max)", "bytes/s median (min–max)", "runs"], rows)


def compare(current: dict, baseline: dict, threshold: float) -> tuple[str, list[str]]:
    """A table of median files/s ratios (current / baseline) and the modes slower than the threshold."""
    from exoflow.tables import human_count, table
    rows, slower = [], []
    for mode, m in current["modes"].items():
        base = baseline.get("modes", {}).get(mode)
        if "skipped" in m or not base or "skipped" in base:
            rows.append([mode, "", "", "", "not compared (missing in one result)"])
            continue
        now, then = m["files_per_s"]["median"], base["files_per_s"]["median"]
        ratio = now / then if then else float("inf")
        verdict = "ok"
        if ratio < 1 - threshold:
            verdict = f"SLOWER by {1 - ratio:.0%} (threshold {threshold:.0%})"
            slower.append(mode)
        elif ratio > 1 + threshold:
            verdict = f"faster by {ratio - 1:.0%}"
        rows.append([mode, human_count(then), human_count(now), f"{ratio:.2f}", verdict])
    text = table("Compared with the saved result (median files/s)", ["mode", "baseline", "now", "ratio", ""], rows)
    if (current.get("files"), current.get("bytes")) != (baseline.get("files"), baseline.get("bytes")):
        text += (f"\nnote: the trees differ (baseline {baseline.get('files')} files, {baseline.get('bytes')} bytes; "
                 f"now {current.get('files')} files, {current.get('bytes')} bytes)")
    return text, slower


def _load_result(path: str) -> dict:
    try:
        with open(path) as f:
            d = json.load(f)
    except OSError as e:
        raise UsageError(f"{path}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise UsageError(f"{path}: not a JSON file ({e})") from None
    if not isinstance(d, dict) or d.get("format") != FORMAT or "modes" not in d:
        raise UsageError(f"{path}: not an exoflow bench result")
    return d


def _threshold(text: str) -> float:
    try:
        v = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid threshold {text!r} (examples: 0.1, 10%)") from None
    if not 0 <= v < 1:
        raise argparse.ArgumentTypeError(f"threshold must be between 0 and 1 (or 0% and 100%), got {text}")
    return v


def _add_bench_options(p: argparse.ArgumentParser) -> None:
    from exoflow.options import positive
    g = p.add_argument_group("bench")
    g.add_argument("--modes", default=",".join(MODES),
                   help=f"comma-separated modes to run (default: {','.join(MODES)}; gpu is skipped without a GPU)")
    g.add_argument("--repeats", type=positive, default=3, metavar="N", help="measured runs per mode (default: 3)")
    g.add_argument("--warmup", type=int, default=1, metavar="N", help="unmeasured runs per mode first (default: 1)")
    g.add_argument("--save", metavar="FILE", type=local_path, help="write the result, with the machine description, as JSON")
    g.add_argument("--compare", metavar="FILE", type=local_path, help="compare with a saved result; exit 1 if a mode is slower")
    g.add_argument("--threshold", type=_threshold, default=0.10, metavar="FRACTION",
                   help="--compare: how much slower counts as a regression (default: 0.10 = 10%%)")
    g.add_argument("--result", metavar="FILE", type=local_path, help="use a saved result instead of running (with --compare)")


def bench(argv: Sequence[str]) -> int:
    from exoflow.config import configure, run_parser
    from exoflow.errors import Parser
    from exoflow.jobs_registry import load

    if not argv or argv[0].startswith("-"):      # no JOB: only comparing two saved results
        p = Parser(prog="exoflow bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
        _add_bench_options(p)
        args = p.parse_args(argv)
        if not args.result:
            p.error("give a JOB and PATH to run, or --result FILE --compare FILE")
        result = _load_result(args.result)
    else:
        job = load(argv[0])
        p = run_parser(job, f"exoflow bench {argv[0]}")
        _add_bench_options(p)
        args = p.parse_args(argv[1:])
        if args.result:
            p.error("--result compares a saved result: give no JOB with it")
        modes = [m.strip() for m in args.modes.split(",") if m.strip()]
        bad = [m for m in modes if m not in MODES]
        if bad or not modes:
            p.error(f"--modes: unknown mode {', '.join(bad) or '(none)'}; modes: {', '.join(MODES)}")
        cfg, cluster_opts, _ = configure(job, args)
        if args.compare:
            _load_result(args.compare)        # a bad baseline file fails before minutes of benchmarking
        say = (lambda *a: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
        result = {"format": FORMAT, "job": job.name,
                  "sources": cfg.sources,
                  "repeats": args.repeats, "warmup": args.warmup, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                  "machine": info(), "modes": {}}
        for mode in modes:
            say(f"{mode}:")
            result["modes"][mode] = m = run_mode(mode, cfg, cluster_opts, args.warmup, args.repeats, say)
            if "skipped" in m:
                say(f"  skipped: {m['skipped']}")
            else:
                result.setdefault("files", m["runs"][0]["files"])
                result.setdefault("bytes", m["runs"][0]["bytes"])
        result.setdefault("files", 0)
        result.setdefault("bytes", 0)
        print(format_result(result))
        if args.save:
            with open(args.save, "w") as f:
                json.dump(result, f, indent=2)
    code = EXIT_OK
    if args.compare:
        text, slower = compare(result, _load_result(args.compare), args.threshold)
        print(text)
        if slower:
            code = EXIT_FILE_ERRORS
    return code


def main(command: str, argv: Sequence[str]) -> int:
    """``exoflow bench …`` and ``exoflow info …``."""
    if command == "info":
        from exoflow.errors import Parser
        p = Parser(prog="exoflow info", description="Describe this machine and exoflow's versions, and check "
                   "that each GPU computes a short kernel as NumPy does (exit 1 if one does not).")
        p.add_argument("--json", action="store_true", help="print JSON")
        args = p.parse_args(argv)
        d = info()
        print(json.dumps(d, indent=2) if args.json else format_info(d))
        return 1 if any(not g["ok"] for g in d["gpu_check"].get("devices", [])) else 0
    return bench(argv)
