"""exoflow bench: modes, saved results with the machine description, --compare flags a slowdown.
Speeds are never asserted (a shared machine is noisy): baselines whose speeds the test sets stand
for a faster and a slower machine."""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tomllib
from importlib.metadata import version
from importlib.util import find_spec
from pathlib import Path

import pytest

from conftest import REPO, exoflow

from exoflow.bench import FORMAT, compare

FILES, CHUNK = 40, 10
BYTES = sum(range(FILES))          # file i holds i bytes


def make_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    tree.mkdir()
    for i in range(FILES):
        (tree / f"f{i}").write_bytes(b"z" * i)
    return tree


def saved(path: Path, medians: dict[str, float | None]) -> Path:
    """A saved result whose median files/s per mode the test sets (None: the mode was skipped)."""
    modes = {mode: {"skipped": "not here"} if m is None else {"files_per_s": {"median": m, "min": m, "max": m}}
             for mode, m in medians.items()}
    path.write_text(json.dumps({"format": FORMAT, "job": "inventory", "sources": ["t"], "files": FILES,
                                "bytes": BYTES, "modes": modes}))
    return path


def verdicts(stdout: str) -> dict[str, str]:
    """mode -> the verdict column of the comparison table."""
    lines = stdout[stdout.index("Compared with the saved result"):].splitlines()
    rule = next(line for line in lines if line.startswith("---"))
    last = rule.rindex(" ") + 1                        # where the verdict column starts
    return {line.split()[0]: line[last:].strip() for line in lines[lines.index(rule) + 1:] if line.strip()}


def gpu_here() -> bool:
    """The gpu mode can run: dask-cuda installed and nvidia-smi lists a GPU."""
    if find_spec("dask_cuda") is None or not shutil.which("nvidia-smi"):
        return False
    return "GPU" in subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout


def test_bench_runs_the_modes_saves_and_compares_a_live_run(tmp_path):
    tree = make_tree(tmp_path)
    # a machine a million million times faster in serial, a snail in cpu
    baseline = saved(tmp_path / "baseline.json", {"serial": 1e12, "cpu": 1e-6, "gpu": None})
    result_file = tmp_path / "result.json"
    r = exoflow("bench", "inventory", str(tree), "--chunk-files", str(CHUNK), "--no-dashboard", "--workers", "2",
                "--modes", "serial,cpu,gpu", "--repeats", "3", "--warmup", "1", "--save", str(result_file),
                "--compare", str(baseline), cwd=str(tmp_path), timeout=180)
    assert r.returncode == 1, r.stdout + r.stderr          # slower than the baseline in one mode
    v = verdicts(r.stdout)
    assert v["serial"].startswith("SLOWER by 100%") and v["cpu"].startswith("faster by")
    assert v["gpu"] == "not compared (missing in one result)"
    result = json.loads(result_file.read_text())
    assert (result["files"], result["bytes"], result["job"]) == (FILES, BYTES, "inventory")
    assert result["machine"]["cores"] == os.cpu_count()
    assert result["machine"]["packages"]["distributed"] == version("distributed")
    ran = ("serial", "cpu") + (("gpu",) if gpu_here() else ())
    for mode in ran:
        m = result["modes"][mode]
        assert [(run["files"], run["bytes"]) for run in m["runs"]] == [(FILES, BYTES)] * 3
        walls = [run["wall_s"] for run in m["runs"]]
        assert m["wall_s"] == {"median": statistics.median(walls), "min": min(walls), "max": max(walls)}
        assert m["files_per_s"]["median"] == pytest.approx(statistics.median(FILES / w for w in walls))
        assert m["bytes_per_s"]["max"] == pytest.approx(BYTES / min(walls))
    if "gpu" not in ran:
        assert "skipped" in result["modes"]["gpu"]
    assert "serial" in r.stdout and "files/s" in r.stdout


def test_saved_results_compared(tmp_path):
    """--result FILE --compare FILE: exit 1 exactly when a mode's median is slower than the threshold."""
    base = saved(tmp_path / "base.json", {"serial": 100.0, "cpu": 100.0, "gpu": None})
    same = exoflow("bench", "--result", str(base), "--compare", str(base))
    assert same.returncode == 0, same.stdout + same.stderr
    assert verdicts(same.stdout) == {"serial": "ok", "cpu": "ok", "gpu": "not compared (missing in one result)"}
    slow = exoflow("bench", "--result", str(saved(tmp_path / "slow.json", {"serial": 89.0, "cpu": 95.0, "gpu": None})),
                   "--compare", str(base))
    assert slow.returncode == 1, slow.stdout + slow.stderr
    assert verdicts(slow.stdout)["serial"] == "SLOWER by 11% (threshold 10%)" and verdicts(slow.stdout)["cpu"] == "ok"
    loose = exoflow("bench", "--result", str(tmp_path / "slow.json"), "--compare", str(base), "--threshold", "20%")
    assert loose.returncode == 0, loose.stdout + loose.stderr


def test_compare_threshold_is_exact():
    def res(median):
        return {"files": 1, "bytes": 1, "modes": {"cpu": {"files_per_s": {"median": median}}}}
    assert compare(res(89.0), res(100.0), 0.10)[1] == ["cpu"]      # 11% slower: flagged
    assert compare(res(91.0), res(100.0), 0.10)[1] == []           # 9% slower: within the threshold
    assert compare(res(150.0), res(100.0), 0.10)[1] == []          # faster is never a failure


def test_bench_usage_errors(tmp_path):
    r = exoflow("bench", "--compare", str(tmp_path / "missing.json"))
    assert r.returncode == 2 and "--result" in r.stderr
    (tmp_path / "bad.json").write_text("{}")
    r = exoflow("bench", "--result", str(tmp_path / "bad.json"), "--compare", str(tmp_path / "bad.json"))
    assert r.returncode == 2 and "not an exoflow bench result" in r.stderr
    r = exoflow("bench", "inventory", str(tmp_path), "--modes", "turbo")
    assert r.returncode == 2 and "unknown mode turbo" in r.stderr


def test_info_json():
    """The machine as the operating system and the package metadata describe it."""
    r = exoflow("info", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["cores"] == os.cpu_count()
    assert d["memory_bytes"] == os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert d["exoflow"] == tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert d["python"] == ".".join(map(str, sys.version_info[:3]))
    assert d["packages"]["pyarrow"] == version("pyarrow")
