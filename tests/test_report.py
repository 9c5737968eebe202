"""report.html: written by every run, self-contained, renders in headless Chromium with the run's data."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from chromium import CHROMIUM, Chromium
from conftest import exoflow

from exoflow import report
from exoflow.telemetry import RunStats, rate_series


def make_tree(root: Path) -> dict[str, tuple[int, int]]:
    """Files by extension -> (count, bytes)."""
    truth: dict[str, tuple[int, int]] = {}
    for ext, n, size in (("py", 30, 300), ("txt", 12, 5000), ("bin", 3, 70_000)):
        d = root / ext
        d.mkdir(parents=True)
        for i in range(n):
            (d / f"f{i}.{ext}").write_bytes(b"a" * (size + i))
        truth[ext] = (n, sum(size + i for i in range(n)))
    return truth


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/apt-packages.txt)")
def test_report_renders_with_run_data(tmp_path):
    truth = make_tree(tmp_path / "tree")
    files, nbytes = sum(c for c, _ in truth.values()), sum(b for _, b in truth.values())
    out = tmp_path / "out"
    r = exoflow("run", "inventory", str(tmp_path / "tree"), "--out", str(out), "--no-dashboard", "--workers", "2",
                "--chunk-files", "10")
    assert r.returncode == 0, r.stderr
    # the terminal headline ends with the same figures as the report, spill included
    assert f"inventory: {files} regular files," in r.stderr and "files/s" in r.stderr and "0 errors, 0 B spilled" in r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["spilled_bytes"] == 0 and summary["time_by_activity"].get("inventory_columns", 0) > 0
    page = out / "report.html"
    text = page.read_text()
    assert "cdn.bokeh.org" not in text and "<script" in text      # self-contained: Bokeh's JS inline
    with Chromium() as browser:
        browser.open(page.as_uri())
        browser.wait_for("typeof Bokeh !== 'undefined' && Bokeh.documents.length > 0 && Object.keys(Bokeh.index).length > 0")
        src = browser.bokeh_sources()
        headline = browser.evaluate("document.getElementById('report-headline').outerHTML + document.title")
        canvases = browser.evaluate("Object.values(Bokeh.index).length")
        assert not browser.errors, browser.errors
    assert canvases >= 1
    rate = src["report-rate"]
    assert sum(rate["files_per_s"]) * rate["width"][0] / 0.9 == pytest.approx(files, rel=1e-6)
    assert sum(rate["bytes_per_s"]) * rate["width"][0] / 0.9 == pytest.approx(nbytes, rel=1e-6)
    acts = dict(zip(src["report-activity"]["activity"], src["report-activity"]["seconds"]))
    assert acts.get("inventory_columns", 0) > 0 and acts.get("write", 0) > 0
    sizes = src["inventory-sizes"]
    assert sum(sizes["files"]) == files and sum(sizes["bytes"]) == nbytes
    assert sizes["files"][sizes["size"].index("< 1K")] == 30 and sizes["files"][sizes["size"].index("64-256K")] == 3
    ext = dict(zip(src["inventory-extensions"]["name"], zip(src["inventory-extensions"]["files"],
                                                           src["inventory-extensions"]["bytes"])))
    assert ext == truth
    dirs = dict(zip(src["inventory-dirs"]["name"], src["inventory-dirs"]["files"]))
    assert dirs == {k: c for k, (c, _) in truth.items()}
    for figure in (f"{files}</div>", "wall time", "files/s", "bytes/s", "errors", "spilled", "exoflow inventory"):
        assert figure in headline


def test_failing_job_plots_do_not_cost_the_report(tmp_path):
    def broken(summary):
        raise ValueError("no plots today")
    summary = {"job": "x", "files": 1, "bytes": 2, "wall_s": 0.5, "files_per_s": 2.0, "bytes_per_s": 4.0, "errors": 0}
    path = report.write(str(tmp_path), summary, {"events": [], "time_by_activity": {"read": 1.5}}, broken)
    text = Path(path).read_text()
    assert "<p>The job's plots failed: ValueError: no plots today</p>" in text
    assert "report-activity" in text


def test_rate_series_bins_add_up():
    s = RunStats("r", started=100.0, ended=110.0)
    for t, f, b in ((101.0, 10, 100), (101.2, 30, 300), (109.9, 40, 1000)):
        s.apply({"kind": "chunk", "time": t, "files": f - s.files, "bytes": b - s.bytes, "worker": "w"})
    series = rate_series(s, bins=10)
    width = series["width"][0] / 0.9
    assert width == pytest.approx(1.0) and len(series["t"]) == 10
    assert series["files_per_s"][1] == pytest.approx(30) and series["files_per_s"][9] == pytest.approx(10)
    assert sum(series["bytes_per_s"]) * width == pytest.approx(1000)


def _job_tree(root: Path) -> None:
    """Known answers for each job's plot: duplicate groups of 3 and 2 copies, placeholders in
    comments, a Python file of 3 code / 2 comment / 1 blank lines, a zero file and a random one."""
    root.mkdir()
    for i in range(3):
        (root / f"triple{i}.dat").write_bytes(b"t" * 100)     # 3 copies: 200 bytes reclaimable
    for i in range(2):
        (root / f"pair{i}.dat").write_bytes(b"p" * 50)        # 2 copies: 50 bytes reclaimable
    (root / "work.py").write_text("# TODO one\nx = 1\n\n# FIXME two\ny = 2  # TODO three\nz = 3\n")
    (root / "zeros.bin").write_bytes(bytes(4096))              # entropy 0
    (root / "noise.bin").write_bytes(np.random.default_rng(3).integers(0, 256, 65536, np.uint8).tobytes())


JOB_PLOTS = {
    # job: (extra args, source name, check(source))
    "dedup": ([], "dedup-copies", lambda src: (
        dict(zip(src["copies"], zip(src["groups"], src["reclaimable"])))
        == {"2": (1, 50), "3": (1, 200), "4": (0, 0), "5-9": (0, 0), "10-99": (0, 0), "100+": (0, 0)})),
    "scan": (["--rules", "placeholders", "--fail-on", "critical"], "scan-rules", lambda src: (
        dict(zip(src["rule"], src["findings"])) == {"todo": 2, "fixme": 1})),
    "codestats": ([], "codestats-lines", lambda src: (
        dict(zip(src["language"], zip(src["code"], src["comment"], src["blank"])))["Python"] == (3, 2, 1))),
    # entropy 0: the five copies and zeros.bin; work.py 4.04 bits per byte; noise.bin 8.00
    "profile": ([], "profile-entropy", lambda src: (
        dict(zip(src["bits_per_byte"], src["files"]))
        == {**{f"{lo / 2:.1f}-{lo / 2 + 0.5:.1f}": 0 for lo in range(16)}, "0.0-0.5": 6, "4.0-4.5": 1, "7.5-8.0": 1})),
}


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/apt-packages.txt)")
@pytest.mark.parametrize("job", sorted(JOB_PLOTS))
def test_each_jobs_plot_shows_its_results(tmp_path, job):
    """report.html of dedup, scan, codestats and profile runs: the job's plot is rendered with data
    equal to hand-computed answers for a small tree."""
    tree = tmp_path / "tree"
    _job_tree(tree)
    args, name, check = JOB_PLOTS[job]
    out = tmp_path / "out"
    r = exoflow("run", job, str(tree), "--out", str(out), "--no-dashboard", *args)
    assert r.returncode == 0, r.stderr
    with Chromium() as browser:
        browser.open((out / "report.html").as_uri())
        browser.wait_for("typeof Bokeh !== 'undefined' && Bokeh.documents.length > 0 && Object.keys(Bokeh.index).length > 0")
        src = browser.bokeh_sources()
        assert not browser.errors, browser.errors
    assert name in src, sorted(src)
    assert check(src[name]), src[name]


def test_the_report_tables_say_why_they_failed_however_the_task_fails():
    """The report's table task failing, at submission (a client already closed) or when it runs,
    leaves report.html without those tables and one note naming the error, not a failed run."""
    class Refusing:
        def submit(self, *args, **kwargs):
            raise RuntimeError("the client is closed")

    class Failing:
        def submit(self, *args, **kwargs):
            class Future:
                def result(self):
                    raise OSError("the worker is gone")
            return Future()

    for ex, why in ((Refusing(), "RuntimeError: the client is closed"), (Failing(), "OSError: the worker is gone")):
        assert report.submit_tables(ex, {}, None)() == {
            "job": [], "job_note": f"The report's tables failed: {why}", "errors": None}
