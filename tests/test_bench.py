"""exoflow bench: modes, saved results with the machine description, --compare flags a slowdown."""
from __future__ import annotations

import json
from pathlib import Path

from conftest import exoflow

from exoflow import bench as bench_mod
from exoflow.bench import compare

NAP_JOB = '''
"""inventory plus a pause per chunk: a job whose speed the test controls (EXOFLOW_TEST_NAP seconds)."""
import os
import time

from exoflow import Job, main
from exoflow.kernels.stat import inventory_columns
from exoflow.reducers.inventory import InventoryReducer


def nap(batch):
    time.sleep(float(os.environ.get("EXOFLOW_TEST_NAP", "0")))
    return {}


job = Job(name="nap", description=__doc__, kernels=[inventory_columns, nap], reducer=InventoryReducer())

if __name__ == "__main__":
    main(job)
'''

FILES, CHUNK = 40, 10


def setup(tmp_path: Path) -> tuple[Path, Path]:
    tree = tmp_path / "tree"
    tree.mkdir()
    for i in range(FILES):
        (tree / f"f{i}").write_bytes(b"z" * i)
    job = tmp_path / "nap.py"
    job.write_text(NAP_JOB)
    return tree, job


def bench(tmp_path, tree, job, nap: float, *args: str):
    import os
    env = {**os.environ, "EXOFLOW_TEST_NAP": str(nap)}
    return exoflow("bench", str(job), str(tree), "--chunk-files", str(CHUNK), "--no-dashboard", "--workers", "2",
                   *args, cwd=str(tmp_path), env=env, timeout=180)


def test_bench_save_compare_and_slowdown(tmp_path):
    tree, job = setup(tmp_path)
    saved = tmp_path / "base.json"
    r = bench(tmp_path, tree, job, 0.03, "--modes", "serial,cpu,gpu", "--repeats", "3", "--warmup", "1",
              "--save", str(saved))
    assert r.returncode == 0, r.stderr
    result = json.loads(saved.read_text())
    assert result["files"] == FILES and result["bytes"] == sum(range(FILES))
    assert result["machine"]["cores"] >= 1 and "distributed" in result["machine"]["packages"]
    gpu = bench_mod._gpu_available() is None          # dask-cuda and a GPU: the gpu mode runs too
    for mode in ("serial", "cpu") + (("gpu",) if gpu else ()):
        m = result["modes"][mode]
        assert len(m["runs"]) == 3 and all(run["files"] == FILES for run in m["runs"])
        # 4 chunks of 30 ms each: serial cannot beat 4 naps per run
        assert m["wall_s"]["min"] >= 4 * 0.03 if mode == "serial" else m["wall_s"]["min"] > 0
        assert m["files_per_s"]["min"] <= m["files_per_s"]["median"] <= m["files_per_s"]["max"]
    if not gpu:
        assert "skipped" in result["modes"]["gpu"]
    assert "serial" in r.stdout and "files/s" in r.stdout

    # the same result compared with itself: accepted
    same = exoflow("bench", "--result", str(saved), "--compare", str(saved))
    assert same.returncode == 0, same.stdout + same.stderr
    assert "1.00" in same.stdout and "SLOWER" not in same.stdout

    # a real rerun at the same speed: accepted (loose threshold: a shared machine is noisy)
    again = bench(tmp_path, tree, job, 0.03, "--modes", "serial", "--compare", str(saved), "--threshold", "0.5")
    assert again.returncode == 0, again.stdout + again.stderr

    # an injected slowdown (10x longer naps): flagged, exit 1
    slow = bench(tmp_path, tree, job, 0.3, "--modes", "serial", "--repeats", "3", "--warmup", "0",
                 "--compare", str(saved))
    assert slow.returncode == 1, slow.stdout + slow.stderr
    assert "SLOWER" in slow.stdout and "serial" in slow.stdout


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
    r = exoflow("info", "--json")
    assert r.returncode == 0
    d = json.loads(r.stdout)
    assert d["cores"] >= 1 and d["memory_bytes"] > 0 and d["exoflow"]
