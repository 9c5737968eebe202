#!/usr/bin/env python3
"""Screenshots for the README: docs/img/dashboard.png (the exoflow page during a run) and
docs/img/report.png (a run's report.html), made with headless Chromium.

    python scripts/screenshots.py [TREE]     (default TREE: this Python's lib/ directory)
"""
from __future__ import annotations

import os
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
    print(f"wrote {img / 'dashboard.png'} and {img / 'report.png'} (tree: {tree})")


if __name__ == "__main__":
    main()
