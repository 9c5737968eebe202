#!/usr/bin/env python3
"""Screenshots for the README, made with headless Chromium: docs/img/dashboard.png (the exoflow
page during a run), docs/img/report.png (an inventory run's report.html) and
docs/img/report-JOB.png for each shipped job's report.html, from runs over a demo tree (a copy
of part of TREE with planted duplicates, a secret, placeholders, and changes between two
checksum runs for ``--verify``).

    python scripts/screenshots.py [TREE]     (default TREE: this Python's lib/ directory)

Needs Debian's chromium and websocket-client (the test extra).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from chromium import Chromium  # noqa: E402


def _wait_served(url: str, seconds: float = 20.0) -> None:
    import urllib.error
    import urllib.request
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url).read()
            return
        except urllib.error.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


# job -> extra options of its demo run
JOBS = {"inventory": [], "dedup": ["--action", "hardlink"], "scan": ["--rules", "secrets,placeholders"],
        "codestats": [], "profile": []}


def demo_tree(tree: str, root: Path) -> Path:
    """A small tree with something for every job to find: part of TREE (its json/ and email/
    packages when it is a Python stdlib), three copies of a file, a planted fake key, TODOs."""
    demo = root / "demo"
    demo.mkdir()
    for name in ("json", "email", "logging"):
        if os.path.isdir(os.path.join(tree, name)):
            shutil.copytree(os.path.join(tree, name), demo / name, ignore=shutil.ignore_patterns("__pycache__"))
    if not any(demo.iterdir()):
        shutil.copytree(tree, demo / "tree", symlinks=True)
    for i in range(3):
        (demo / f"backup-{i}.csv").write_bytes(b"id,value\n" + b"1,2\n" * 5000)
    (demo / "settings.py").write_text('AWS_KEY = "AKIA' + 'Q7XK2M4PZR6TYW3N"  # TODO move to the vault\n')
    return demo


def _exoflow(*args: str, cwd: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "exoflow.cli", "run", *args, "--no-dashboard", "--workers", "2"],
                       cwd=cwd, capture_output=True, text=True)
    if r.returncode not in (0, 1):
        raise SystemExit(f"exoflow run {' '.join(args)} failed: {r.stderr.strip()}")


def job_reports(tree: str, img: Path, out: Path) -> list[Path]:
    """docs/img/report-JOB.png of each job's report.html; checksum's from a --verify run."""
    demo = demo_tree(tree, out)
    reports = {}
    for job, extra in JOBS.items():
        _exoflow(job, "demo", "--out", str(out / job), *extra, cwd=out)
        reports[job] = out / job / "report.html"
    _exoflow("checksum", "demo", "--out", str(out / "checksum-old"), cwd=out)
    first = sorted(p for p in demo.rglob("*.py") if p.is_file())
    first[0].write_text(first[0].read_text() + "\n# edited\n")          # modified
    first[1].rename(first[1].with_name("renamed_" + first[1].name))       # moved
    first[2].unlink()                                                     # removed
    (demo / "NEW.txt").write_text("added after the first run\n")          # added
    _exoflow("checksum", "demo", "--out", str(out / "checksum"), "--verify", str(out / "checksum-old"), cwd=out)
    reports["checksum"] = out / "checksum" / "report.html"
    shots = []
    with Chromium(width=1400, height=2200) as browser:
        for job, page in sorted(reports.items()):
            browser.open(page.as_uri())
            browser.wait_for("typeof Bokeh !== 'undefined' && Object.keys(Bokeh.index).length > 0")
            time.sleep(0.5)
            shots.append(img / f"report-{job}.png")
            browser.screenshot(str(shots[-1]))
    return shots


def main() -> None:
    from exoflow.cluster import connect, describe
    from exoflow.jobs_registry import load
    from exoflow.options import ChunkOptions, ClusterOptions
    from exoflow.runner import RunConfig, run

    tree = sys.argv[1] if len(sys.argv) > 1 else sysconfig.get_paths()["stdlib"]
    img = REPO / "docs" / "img"
    img.mkdir(parents=True, exist_ok=True)
    out = tempfile.mkdtemp(prefix="exoflow-screenshots-")
    with connect(ClusterOptions(workers=2, dashboard="127.0.0.1:0")) as client:
        page = describe(client)["exoflow_page"]
        job = load("inventory")
        # a first run so the page has a finished run in its progress chart; then shoot during a second one
        run(client, RunConfig(job=job, paths=[tree], out_dir=os.path.join(out, "first"),
                              chunk=ChunkOptions(max_files=2000, read_order=False)))
        second = threading.Thread(target=run, args=(client, RunConfig(
            job=job, paths=[tree], out_dir=os.path.join(out, "second"), chunk=ChunkOptions(max_files=500, read_order=False))))
        _wait_served(page)     # the embedded cluster attaches its dashboard a moment after start
        with Chromium(width=1400, height=1000) as browser:
            browser.open(page)
            second.start()
            second.join()
            time.sleep(1.5)       # two page refreshes after the run
            browser.wait_for("Bokeh.documents.length > 0")
            browser.screenshot(str(img / "dashboard.png"))
        with Chromium(width=1400, height=1800) as browser:
            browser.open(Path(out, "second", "report.html").as_uri())
            browser.wait_for("typeof Bokeh !== 'undefined' && Object.keys(Bokeh.index).length > 0")
            time.sleep(0.5)
            browser.screenshot(str(img / "report.png"))
    shots = job_reports(tree, img, Path(out))
    print(f"wrote {img / 'dashboard.png'}, {img / 'report.png'} and {', '.join(str(p) for p in shots)} (tree: {tree})")


if __name__ == "__main__":
    main()
