"""The exoflow dashboard page (rendered in headless Chromium), /metrics, and the preload on a remote scheduler."""
from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from chromium import CHROMIUM, Chromium
from conftest import exoflow

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/apt-packages.txt)")

N_DIRS, PER_DIR = 3, 40


def make_tree(root: Path) -> tuple[int, int]:
    """N_DIRS * PER_DIR files of distinct sizes; returns (files, bytes)."""
    total = 0
    for d in range(N_DIRS):
        (root / f"d{d}").mkdir(parents=True)
        for i in range(PER_DIR):
            size = 100 * d + i
            (root / f"d{d}" / f"f{i}.dat").write_bytes(b"x" * size)
            total += size
    return N_DIRS * PER_DIR, total


def fetch(url: str, wait: float = 20.0) -> str:
    """GET ``url``; the embedded cluster attaches its dashboard a moment after start (until then
    it answers 503, "starting"), so that is retried for up to ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return urllib.request.urlopen(url).read().decode()
        except urllib.error.HTTPError as e:
            if e.code != 503 or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def parts_written(summary: dict) -> int:
    """Chunks of a run, counted on disk: one Parquet part each."""
    return len(list((Path(summary["out"]) / "files").glob("part-*.parquet")))


def metric(text: str, name: str, job: str | None = "inventory") -> float:
    label = f'{{job="{job}"}}' if job else ""
    m = re.search(rf"^{re.escape(name + label)} (\S+)$", text, re.M)
    assert m, f"{name}{label} not in /metrics"
    return float(m.group(1))


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """An embedded cluster (as `exoflow run` starts it) after two inventory runs over one tree."""
    from exoflow.cluster import connect, describe
    from exoflow.jobs_registry import load
    from exoflow.options import ChunkOptions, ClusterOptions
    from exoflow.runner import RunConfig, run

    base = tmp_path_factory.mktemp("dash")
    files, nbytes = make_tree(base / "tree")
    with connect(ClusterOptions(workers=2, dashboard="127.0.0.1:0")) as client:
        summaries = [run(client, RunConfig(job=load("inventory"), paths=[str(base / "tree")], out_dir=str(base / f"out{i}"),
                                           chunk=ChunkOptions(max_files=25, read_order=False)))
                     for i in range(2)]
        yield client, describe(client), summaries, files, nbytes


def test_dashboard_answers_starting_until_attached_then_serves():
    """Right after an embedded cluster starts, the dashboard URL printed at start answers 503 with a
    page that reloads itself (not a 404); a moment later Dask's page and the exoflow page are there."""
    from exoflow.cluster import connect, describe
    from exoflow.options import ClusterOptions

    with connect(ClusterOptions(workers=1, dashboard="127.0.0.1:0")) as client:
        info = describe(client)
        try:
            first = urllib.request.urlopen(info["dashboard"])
            pytest.skip(f"the dashboard was attached before the first request ({first.status})")
        except urllib.error.HTTPError as e:
            assert e.code == 503 and "http-equiv='refresh'" in e.read().decode()
        assert 'href="exoflow"' in fetch(info["dashboard"])
        assert "exoflow" in fetch(info["exoflow_page"])


def test_page_is_listed_and_renders_the_run(ran):
    client, info, summaries, files, nbytes = ran
    assert info["exoflow_page"] and info["exoflow_page"].endswith("/exoflow")
    status = fetch(info["dashboard"])
    assert 'href="exoflow"' in status                      # in the menu of Dask's own pages
    with Chromium() as browser:
        browser.open(info["exoflow_page"])
        browser.wait_for("typeof Bokeh !== 'undefined' && Bokeh.documents.length > 0 && "
                         "Bokeh.documents[0].get_model_by_name('exoflow-rate').data.t.length > 0")
        src = browser.bokeh_sources()
        assert browser.evaluate("document.querySelector('a[href=\"exoflow\"]') !== null")
        assert not browser.errors, browser.errors
    assert src is not None
    # throughput: the rate bins integrate back to the files and bytes of the run shown (the latest)
    rate = src["exoflow-rate"]
    width = rate["width"][0] / 0.9
    assert sum(rate["files_per_s"]) * width == pytest.approx(files, rel=1e-6)
    assert sum(rate["bytes_per_s"]) * width == pytest.approx(nbytes, rel=1e-6)
    # per-worker rates: both workers' files add up to the run's
    workers = src["exoflow-workers"]
    assert sum(workers["files"]) == files and all(v > 0 for v in workers["files_per_s"])
    # progress of each run: two runs, complete, chunks (the parts each wrote) and files done of total, no errors
    prog = src["exoflow-progress"]
    assert prog["files"] == [files, files] and prog["files_listed"] == [files, files]
    assert prog["chunks"] == prog["chunks_listed"] == [parts_written(s) for s in summaries]
    assert prog["done"] == [1, 1] and prog["errors"] == [0, 0] and prog["status"] == ["done", "done"]
    # where time goes: exoflow's meters, from Dask's fine performance metrics
    acts = dict(zip(src["exoflow-activity"]["activity"], src["exoflow-activity"]["seconds"]))
    assert acts.get("inventory_columns", 0) > 0 and acts.get("list", 0) > 0 and acts.get("write", 0) > 0
    # memory tiers: one bar per worker, with real process memory
    mem = src["exoflow-memory"]
    assert len(mem["worker"]) == 2 and all(v > 0 for v in mem["unmanaged"])


def test_dask_fine_metrics_have_exoflow_activities(ran):
    client = ran[0]
    m = client.run_on_scheduler(lambda dask_scheduler: dict(dask_scheduler.cumulative_worker_metrics))
    for activity in ("list", "inventory_columns", "write", "summarise"):
        prefix = "exoflow-list" if activity == "list" else "exoflow-chunk"
        assert m.get(("execute", prefix, activity, "seconds"), 0) > 0, activity


def test_metrics_endpoint_counts_the_runs(ran):
    client, info, summaries, files, nbytes = ran
    text = urllib.request.urlopen(info["dashboard"].rsplit("/", 1)[0] + "/metrics").read().decode()
    assert metric(text, "exoflow_files_processed_total") == 2 * files
    assert metric(text, "exoflow_bytes_processed_total") == 2 * nbytes
    assert metric(text, "exoflow_errors_total") == 0
    assert metric(text, "exoflow_chunks_done_total") == sum(parts_written(s) for s in summaries)
    assert metric(text, "exoflow_chunks_pending") == 0
    assert metric(text, "exoflow_runs_active", job=None) == 0
    assert "# TYPE exoflow_files_processed_total counter" in text
    assert "# TYPE exoflow_files_per_second gauge" in text


def test_remote_scheduler_with_preload(tmp_path):
    """`dask scheduler --preload exoflow.dashboard`: the page and /metrics work for a remote cluster too."""
    import socket
    files, _ = make_tree(tmp_path / "tree")
    ports = []
    for _ in range(2):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        ports.append(s.getsockname()[1])
        s.close()
    addr, http = f"tcp://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}"
    sched = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                              "--port", str(ports[0]), "--dashboard-address", f"127.0.0.1:{ports[1]}",
                              "--preload", "exoflow.dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = None
    try:
        worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", addr, "--nworkers", "1",
                                   "--nthreads", "1", "--no-dashboard"], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        r = exoflow("run", "inventory", str(tmp_path / "tree"), "--out", str(tmp_path / "out"), "--scheduler", addr,
                    "--chunk-files", "30")
        assert r.returncode == 0, r.stderr
        assert f"exoflow page {http}/exoflow" in r.stderr
        text = urllib.request.urlopen(f"{http}/metrics").read().decode()
        assert metric(text, "exoflow_files_processed_total") == files
        assert "exoflow" in urllib.request.urlopen(f"{http}/exoflow").read().decode()
    finally:
        for p in (worker, sched):
            if p is not None:
                p.terminate()
                p.wait(20)
