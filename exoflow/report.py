"""report.html: a self-contained page (Bokeh standalone, inline JS, no server) beside a run's results.

It shows the headline figures, the throughput timeline (from the run's
``exoflow`` events on the scheduler), where the time went (Dask's fine
performance metrics of exoflow's tasks) and the job's own plots: a job may
set ``Job.plots = fn(summary) -> [bokeh figures]`` (see docs/report.md).
"""
from __future__ import annotations

import html
import logging
import os
import sys
import threading
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from distributed import Client

from .metrics import TOPIC
from .telemetry import RunStats, fold, rate_series, spilled_bytes, time_by_activity

logger = logging.getLogger(__name__)

REPORT = "report.html"


# ---- what the report needs from the cluster (client side) -------------------------

def _scheduler_metrics(dask_scheduler=None) -> dict:
    return dict(dask_scheduler.cumulative_worker_metrics)


async def _flush_metrics(dask_worker=None) -> None:
    # fine metrics reach the scheduler with each heartbeat: send one now so the last chunks count
    await dask_worker.heartbeat()


def preload() -> threading.Thread:
    """Import Bokeh (~0.7 s) in the background while the run goes on, not after it."""
    def load() -> None:
        import bokeh.embed  # noqa: F401
        import bokeh.layouts  # noqa: F401
        import bokeh.models  # noqa: F401
        import bokeh.plotting  # noqa: F401
    t = threading.Thread(target=load, name="exoflow-report-preload", daemon=True)
    t.start()
    return t


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
    from .tables import human_bytes as hb
    return hb(n)


def headline(summary: dict) -> list[tuple[str, str]]:
    """The figures shown at the top of the report and at the end of the terminal output."""
    from .tables import human_count
    return [("files", human_count(summary.get("files", 0))), ("bytes", human_bytes(summary.get("bytes", 0))),
            ("wall time", f"{summary.get('wall_s', 0):.2f} s"),
            ("files/s", human_count(summary.get("files_per_s") or 0)),
            ("bytes/s", human_bytes(summary.get("bytes_per_s") or 0) + "/s"),
            ("errors", human_count(summary.get("errors", 0))),
            ("spilled", human_bytes(summary.get("spilled_bytes", 0) or 0))]


def _figure(title: str, **kw):
    from bokeh.plotting import figure
    return figure(title=title, height=300, sizing_mode="stretch_width", toolbar_location=None, tools="", **kw)


def throughput_plots(stats: RunStats | None) -> list:
    """Files/s and bytes/s over the run, from its chunk events."""
    from bokeh.models import ColumnDataSource, HoverTool, NumeralTickFormatter

    if stats is None or not stats.points:
        return []
    src = ColumnDataSource(rate_series(stats), name="report-rate")
    files = _figure("Files/s over the run", x_axis_label="seconds since start")
    files.vbar(x="t", top="files_per_s", width="width", source=src)
    bytes_ = _figure("Bytes/s over the run", x_axis_label="seconds since start")
    bytes_.vbar(x="t", top="bytes_per_s", width="width", source=src, color="#ff7f0e")
    bytes_.yaxis.formatter = NumeralTickFormatter(format="0.0 b")
    for f in (files, bytes_):
        f.add_tools(HoverTool(tooltips=[("t", "@t s"), ("files/s", "@files_per_s{0,0}"),
                                        ("bytes/s", "@bytes_per_s{0.0 b}")]))
    return [files, bytes_]


def activity_plot(seconds: dict[str, float]) -> list:
    """Task seconds per activity (read, a kernel, write …), summed over all workers."""
    from bokeh.models import ColumnDataSource, HoverTool

    if not seconds:
        return []
    names = list(seconds)
    src = ColumnDataSource({"activity": names, "seconds": list(seconds.values())}, name="report-activity")
    f = _figure("Where time goes: task seconds per activity", y_range=names[::-1], x_axis_label="seconds")
    f.hbar(y="activity", right="seconds", height=0.8, source=src, color="#9467bd")
    f.add_tools(HoverTool(tooltips=[("activity", "@activity"), ("seconds", "@seconds{0.000}")]))
    return [f]


def build(summary: dict, telemetry: dict, plots: Callable[[dict], list] | None = None) -> str:
    """The report's HTML text."""
    from bokeh.embed import file_html
    from bokeh.layouts import column, gridplot
    from bokeh.models import Div
    from bokeh.resources import INLINE

    stats = fold(telemetry.get("events", []), None)
    run_stats = next(iter(stats.values()), None)
    cells = "".join(f"<td><div style='font-size:1.6em;font-weight:bold'>{html.escape(v)}</div>"
                    f"<div style='color:#666'>{html.escape(k)}</div></td>" for k, v in headline(summary))
    sources = ", ".join(html.escape(str(s)) for s in summary.get("sources", []))
    head = Div(text=f"<h1>exoflow {html.escape(str(summary.get('job', '')))}</h1>"
                    f"<p>{sources} &middot; started {html.escape(str(summary.get('started', '')))} &middot; "
                    f"{html.escape(str(summary.get('cluster', {}).get('workers', '?')))} workers, "
                    f"{html.escape(str(summary.get('cluster', {}).get('threads', '?')))} threads &middot; "
                    f"exoflow {html.escape(str(summary.get('exoflow_version', '')))}</p>"
                    f"<table style='width:100%;text-align:center'><tr>{cells}</tr></table>",
               sizing_mode="stretch_width", name="report-headline")
    parts: list = [head]
    timeline = throughput_plots(run_stats)
    if timeline:
        parts += [Div(text="<h2>Throughput</h2>"), gridplot([timeline], sizing_mode="stretch_width")]
    else:
        parts.append(Div(text="<h2>Throughput</h2><p>No chunk events were recorded for this run.</p>"))
    activity = activity_plot(telemetry.get("time_by_activity", {}))
    parts += [Div(text="<h2>Where time goes</h2>")] + (activity or [Div(text="<p>No fine metrics recorded.</p>")])
    if plots is not None:
        try:
            job_figs = list(plots(summary))
        except Exception as e:     # a job's plot bug must not cost the rest of the report
            job_figs = [Div(text=f"<p>The job's plots failed: {html.escape(f'{type(e).__name__}: {e}')}</p>")]
        if job_figs:
            parts += [Div(text=f"<h2>{html.escape(str(summary.get('job', 'job')))}</h2>")]
            parts += [gridplot([job_figs[i:i + 2] for i in range(0, len(job_figs), 2)], sizing_mode="stretch_width")]
    layout = column(parts, sizing_mode="stretch_width")
    return file_html(layout, resources=INLINE, title=f"exoflow {summary.get('job', '')} report")


def write(out_dir: str, summary: dict, telemetry: dict, plots: Callable[[dict], list] | None = None) -> str | None:
    """Write OUT/report.html; returns its path, or None (one warning line) if it could not be made."""
    path = os.path.join(out_dir, REPORT)
    try:
        text = build(summary, telemetry, plots)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
        return path
    except Exception as e:      # the results are written; a report problem must not fail the run
        print(f"exoflow: warning: report.html not written: {type(e).__name__}: {e}", file=sys.stderr)
        return None
