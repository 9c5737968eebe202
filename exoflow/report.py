"""report.html: a self-contained page (BokehJS inline, no server) beside a run's results.

It shows the headline figures, the throughput timeline (from the run's
``exoflow`` events on the scheduler), where the time went (Dask's fine
performance metrics of exoflow's tasks) and the job's own plots: a job may
set ``Job.plots = fn(summary) -> [plots.Bars]`` (see docs/report.md). The
plots travel as JSON specs and BokehJS draws them in the browser (report.js).
"""
from __future__ import annotations

import html
import importlib.util
import json
import logging
import os
import sys
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from distributed import Client

from exoflow.fileio import atomic_write
from exoflow.metrics import TOPIC
from exoflow.plots import ORANGE, PURPLE, Bars
from exoflow.summary import RunSummary
from exoflow.telemetry import RunStats, fold, rate_series, spilled_bytes, time_by_activity

logger = logging.getLogger(__name__)

REPORT = "report.html"


# ---- what the report needs from the cluster (client side) -------------------------

def _scheduler_metrics(dask_scheduler=None) -> dict:
    return dict(dask_scheduler.cumulative_worker_metrics)


async def _flush_metrics(dask_worker=None) -> None:
    # fine metrics reach the scheduler with each heartbeat: send one now so the last chunks count
    await dask_worker.heartbeat()


def snapshot(client: Client) -> dict:
    """The scheduler's cumulative fine metrics before a run (it may have run other work)."""
    try:
        return client.run_on_scheduler(_scheduler_metrics)
    except Exception:
        return {}


def collect(client: Client, run_id: str, before: dict) -> dict[str, Any]:
    """After a run: its events, seconds per activity and bytes spilled."""
    try:
        client.run(_flush_metrics)
    except Exception as e:   # a worker gone at the end only makes the breakdown a little short
        logger.debug("flushing worker metrics failed: %s", e)
    try:
        metrics = client.run_on_scheduler(_scheduler_metrics)
        events = [msg for _, msg in client.get_events(TOPIC) if isinstance(msg, dict) and msg.get("run") == run_id]
    except Exception as e:
        logger.debug("reading scheduler metrics failed: %s", e)
        metrics, events = {}, []
    return {"events": events, "time_by_activity": time_by_activity(metrics, before),
            "spilled_bytes": spilled_bytes(metrics, before)}


# ---- the page ------------------------------------------------------------------------

def human_bytes(n: float) -> str:
    from exoflow.tables import human_bytes as hb
    return hb(n)


def headline_counts(summary: RunSummary) -> str:
    """'4,692 regular files (+82 other entries)': regular files and the other entries (symlinks,
    FIFOs, …) apart, as the terminal's last line says them."""
    from exoflow.tables import human_count
    files, other = summary.get("files", 0), summary.get("other_entries", 0)
    return f"{human_count(files)} regular file{'s' * (files != 1)}" + (
        f" (+{human_count(other)} other {'entries' if other != 1 else 'entry'})" if other else "")


def headline(summary: RunSummary) -> list[tuple[str, str]]:
    """The figures shown at the top of the report."""
    from exoflow.tables import human_count
    return [("regular files", human_count(summary.get("files", 0))),
            ("other entries", human_count(summary.get("other_entries", 0))),
            ("bytes", human_bytes(summary.get("bytes", 0))),
            ("wall time", f"{summary.get('wall_s', 0):.2f} s"),
            ("files/s", human_count(summary.get("files_per_s") or 0)),
            ("bytes/s", human_bytes(summary.get("bytes_per_s") or 0) + "/s"),
            ("errors", human_count(summary.get("errors", 0))),
            ("spilled", human_bytes(summary.get("spilled_bytes", 0) or 0))]


def throughput_plots(stats: RunStats | None) -> list[Bars]:
    """Files/s and bytes/s over the run, from its chunk events."""
    if stats is None or not stats.points:
        return []
    series = rate_series(stats)
    tips = [("t", "@t s"), ("files/s", "@files_per_s{0,0}"), ("bytes/s", "@bytes_per_s{0.0 b}")]
    return [Bars("Files/s over the run", "report-rate", series, "t", ["files_per_s"], tips, numeric=True,
                 width="width", category_label="seconds since start", value_format="0,0"),
            Bars("Bytes/s over the run", "report-rate", series, "t", ["bytes_per_s"], tips, numeric=True,
                 width="width", category_label="seconds since start", value_format="0.0 b", colors=[ORANGE])]


def activity_plot(seconds: dict[str, float]) -> list[Bars]:
    """Task seconds per activity (read, a kernel, write …), summed over all workers."""
    if not seconds:
        return []
    data = {"activity": list(seconds), "seconds": list(seconds.values())}
    return [Bars("Where time goes: task seconds per activity", "report-activity", data, "activity", ["seconds"],
                 [("activity", "@activity"), ("seconds", "@seconds{0.000}")], horizontal=True, colors=[PURPLE],
                 value_label="seconds")]


def _bokeh_js() -> str:
    """BokehJS and its plotting API, read from the installed bokeh package (not imported)."""
    spec = importlib.util.find_spec("bokeh")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("bokeh is not installed")
    js = os.path.join(spec.submodule_search_locations[0], "server", "static", "js")
    return "".join(f"<script>{_read(os.path.join(js, name))}</script>\n" for name in ("bokeh.min.js", "bokeh-api.min.js"))


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def _json_for_script(obj: Any) -> str:
    """JSON that cannot end its <script> element early."""
    return json.dumps(obj, default=str).replace("</", "<\\/")


def build(summary: RunSummary, telemetry: dict, plots: Callable[[RunSummary], list] | None = None) -> str:
    """The report's HTML text: figures and sections in HTML, plots as Bars specs that report.js draws."""
    stats = fold(telemetry.get("events", []), None)
    run_stats = next(iter(stats.values()), None)
    cells = "".join(f"<td><div class='big'>{html.escape(v)}</div><div class='label'>{html.escape(k)}</div></td>"
                    for k, v in headline(summary))
    sources = ", ".join(html.escape(str(s)) for s in summary.get("sources", []))
    cluster = summary.get("cluster", {})
    job = html.escape(str(summary.get("job", "")))
    sections = {"plots-throughput": throughput_plots(run_stats),
                "plots-activity": activity_plot(telemetry.get("time_by_activity", {})), "plots-job": []}
    job_note = ""
    if plots is not None:
        try:
            sections["plots-job"] = list(plots(summary))
        except Exception as e:     # a job's plot bug must not cost the rest of the report
            job_note = f"<p>The job's plots failed: {html.escape(f'{type(e).__name__}: {e}')}</p>"
    body = [f"<h1>exoflow {job}</h1>",
            f"<p>{sources} &middot; started {html.escape(str(summary.get('started', '')))} &middot; "
            f"{html.escape(str(cluster.get('workers', '?')))} workers, {html.escape(str(cluster.get('threads', '?')))} "
            f"threads &middot; exoflow {html.escape(str(summary.get('exoflow_version', '')))}</p>",
            f"<table id='report-headline'><tr>{cells}</tr></table>",
            "<h2>Throughput</h2>",
            "" if sections["plots-throughput"] else "<p>No chunk events were recorded for this run.</p>",
            "<div id='plots-throughput'></div>",
            "<h2>Where time goes</h2>",
            "" if sections["plots-activity"] else "<p>No fine metrics recorded.</p>",
            "<div id='plots-activity'></div>"]
    if sections["plots-job"] or job_note:
        body += [f"<h2>{job or 'job'}</h2>", job_note, "<div id='plots-job'></div>"]
    specs = {k: [b.spec() for b in v] for k, v in sections.items()}
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>exoflow {job} report</title>\n"
            f"<style>{STYLE}</style>\n{_bokeh_js()}</head>\n<body>\n" + "\n".join(body) +
            f"\n<script type='application/json' id='exoflow-report-plots'>{_json_for_script(specs)}</script>\n"
            f"<script>{_read(os.path.join(os.path.dirname(__file__), 'report.js'))}</script>\n</body></html>\n")


STYLE = ("body{font-family:sans-serif;margin:1em 2em;color:#222} table#report-headline{width:100%;text-align:center}"
         " .big{font-size:1.6em;font-weight:bold} .label{color:#666}")


def write(out_dir: str, summary: RunSummary, telemetry: dict,
          plots: Callable[[RunSummary], list] | None = None) -> str | None:
    """Write OUT/report.html; returns its path, or None (one warning line) if it could not be made."""
    path = os.path.join(out_dir, REPORT)
    try:
        text = build(summary, telemetry, plots)
        with atomic_write(path) as f:
            f.write(text)
        return path
    except Exception as e:      # the results are written; a report problem must not fail the run
        print(f"exoflow: warning: report.html not written: {type(e).__name__}: {e}", file=sys.stderr)
        return None
