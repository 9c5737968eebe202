"""Scheduler preload: the "exoflow" dashboard page and Prometheus metrics.

    dask scheduler --preload exoflow.dashboard

(the embedded cluster loads it by itself). It adds

* a ``SchedulerPlugin`` that folds the ``exoflow`` events (run-start, listed,
  chunk, run-end) into per-run statistics;
* a Bokeh page ``/exoflow`` on the scheduler's dashboard, listed in its menu:
  files/s and bytes/s over time, per-worker rates, each run's progress and
  errors, time per activity (Dask's fine performance metrics) and each
  worker's memory tiers;
* ``exoflow_*`` counters and gauges on the scheduler's ``/metrics``.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Any, Iterator

from distributed.diagnostics.plugin import SchedulerPlugin

from exoflow.metrics import TOPIC
from exoflow.telemetry import RunStats, rate_series, task_seconds, time_by_activity

logger = logging.getLogger(__name__)

PLUGIN_NAME = "exoflow"
PAGE = "exoflow"
KEEP_RUNS = 50            # runs whose details (rates, workers) are kept; counters never go down
KEEP_ROWS = 100_000       # the page's list of runs (a few hundred bytes each)
RUN_COLUMNS = ("run", "job", "paths", "start", "duration_s", "files", "bytes", "bytes_h", "files_per_s", "errors",
               "status", "out")


class ExoflowPlugin(SchedulerPlugin):
    """Folds exoflow's events into per-run statistics and per-job totals."""

    name = PLUGIN_NAME

    def __init__(self, scheduler=None) -> None:
        self.scheduler = scheduler     # for snapshots of its fine metrics (None: no activity per run)
        self.runs: OrderedDict[str, RunStats] = OrderedDict()
        # run -> [exoflow task seconds at its run-start, at the first run-start after its end (None:
        # not yet, its share is read live)]; the same subtraction as report.html's
        self.snapshots: dict[str, list] = {}
        # job -> monotonic totals for the Prometheus counters (runs are evicted, totals are not)
        self.totals: dict[str, dict[str, int]] = {}
        self.runs_ended = 0      # runs that ended on this scheduler (``exoflow cluster status``)
        self.past: list[dict] = []       # run_row of each run whose details were dropped, oldest first

    def log_event(self, topic: str, msg: Any) -> None:
        if topic != TOPIC or not isinstance(msg, dict) or "run" not in msg:
            return
        stats = self.runs.get(msg["run"])
        if stats is None:
            stats = self.runs[msg["run"]] = RunStats(msg["run"], job=str(msg.get("job", "?")))
            while len(self.runs) > KEEP_RUNS:
                old = self.runs.popitem(last=False)[1]
                self.snapshots.pop(old.run, None)
                self.past.append(run_row(old))
            del self.past[:-KEEP_ROWS]
            if msg.get("kind") == "run-start":
                self._snapshot(msg["run"])
        if msg.get("kind") == "run-end" and stats.status == "running":
            self.runs_ended += 1
        stats.apply(msg)
        if msg.get("kind") == "chunk":
            t = self.totals.setdefault(stats.job, {"files": 0, "bytes": 0, "errors": 0, "chunks": 0})
            t["files"] += int(msg.get("files", 0))
            t["bytes"] += int(msg.get("bytes", 0))
            t["errors"] += int(msg.get("errors", 0))
            t["chunks"] += 1

    def _snapshot(self, run: str) -> None:
        """At a run's start: its "before", and the "after" of every run that ended before it
        (their tasks are over and the runner has flushed their metrics by then)."""
        if self.scheduler is None:
            return
        now = task_seconds(self.scheduler.cumulative_worker_metrics)
        for r, snaps in self.snapshots.items():
            if snaps[1] is None and self.runs[r].ended is not None:
                snaps[1] = now
        self.snapshots[run] = [now, None]

    def activity(self, run: str) -> dict[str, float]:
        """Task seconds per activity of ``run`` (``time_by_activity``): Dask's fine metrics between
        its start and the next run's start after its end (or now). Runs that overlap share each
        other's seconds (Dask's metrics are per task prefix, not per run); {} for a run whose start
        this plugin did not see."""
        snaps = self.snapshots.get(run)
        if snaps is None or self.scheduler is None:
            return {}
        return time_by_activity(snaps[1] or self.scheduler.cumulative_worker_metrics, snaps[0])

    def rows(self) -> dict[str, list]:
        """Every run this scheduler has seen (the latest KEEP_ROWS), newest first: RUN_COLUMNS -> values."""
        rows = [*self.past, *map(run_row, self.runs.values())][::-1]
        return {c: [r[c] for r in rows] for c in RUN_COLUMNS}

    def current(self, run: str | None = None) -> RunStats | None:
        """The run to show: ``run`` where its details are kept, else the latest one still
        running, else the latest one."""
        if run in self.runs:
            return self.runs[run]
        running = [r for r in self.runs.values() if r.status == "running"]
        return running[-1] if running else next(reversed(self.runs.values()), None)


def run_row(r: RunStats) -> dict:
    """One run for the page's list: start as local time, duration in s, files/s over the run."""
    return {"run": r.run, "job": r.job, "paths": " ".join(r.sources), "start": time.strftime(
                "%Y-%m-%d %H:%M:%S", time.localtime(r.started)), "duration_s": round(r.elapsed, 2),
            "files": r.files, "bytes": r.bytes, "bytes_h": _fmt_bytes(r.bytes),
            "files_per_s": round(r.rate()[0], 1), "errors": r.errors, "status": r.status, "out": r.out}


# ---- Prometheus ----------------------------------------------------------------

class ExoflowCollector:
    """``exoflow_*`` metrics for prometheus_client's registry (the one Dask's /metrics serves)."""

    def __init__(self, plugin: ExoflowPlugin) -> None:
        self.plugin = plugin

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        p = self.plugin
        counters = {
            "files": CounterMetricFamily("exoflow_files_processed", "Files processed", labels=["job"]),
            "bytes": CounterMetricFamily("exoflow_bytes_processed", "Bytes of files processed", labels=["job"]),
            "errors": CounterMetricFamily("exoflow_errors", "Files that could not be processed", labels=["job"]),
            "chunks": CounterMetricFamily("exoflow_chunks_done", "Chunk tasks finished", labels=["job"]),
        }
        for job, totals in sorted(p.totals.items()):
            for k, family in counters.items():
                family.add_metric([job], totals[k])
        yield from counters.values()

        runs = list(p.runs.values())
        pending = GaugeMetricFamily("exoflow_chunks_pending", "Chunks listed but not done, running runs",
                                    labels=["job"])
        files_s = GaugeMetricFamily("exoflow_files_per_second", "Files/s over the last 10 s of running runs",
                                    labels=["job"])
        bytes_s = GaugeMetricFamily("exoflow_bytes_per_second", "Bytes/s over the last 10 s of running runs",
                                    labels=["job"])
        by_job: dict[str, list[float]] = {}
        for r in runs:
            acc = by_job.setdefault(r.job, [0, 0.0, 0.0])
            if r.status == "running":
                f, b = r.recent_rate()
                acc[0] += r.chunks_pending
                acc[1] += f
                acc[2] += b
        for job, (n, f, b) in sorted(by_job.items()):
            pending.add_metric([job], n)
            files_s.add_metric([job], f)
            bytes_s.add_metric([job], b)
        yield pending
        yield files_s
        yield bytes_s
        yield GaugeMetricFamily("exoflow_runs_active", "Runs started and not ended",
                                value=sum(r.status == "running" for r in runs))


_collector: ExoflowCollector | None = None


def _register_prometheus(plugin: ExoflowPlugin) -> None:
    global _collector
    try:
        import prometheus_client
    except ImportError:
        logger.warning("exoflow: prometheus_client is not installed; no exoflow_* metrics on /metrics")
        return
    if _collector is None:
        _collector = ExoflowCollector(plugin)
        prometheus_client.REGISTRY.register(_collector)
    else:   # one registry per process: the latest scheduler wins (as in Dask's own collectors)
        _collector.plugin = plugin


# ---- the Bokeh page --------------------------------------------------------------

PLAIN = "0,0.[00]"     # number axes in plain digits (Bokeh's default turns to 1.000e+6 from 100,000)


def _fmt_bytes(n: float) -> str:
    from dask.utils import format_bytes
    return format_bytes(int(n))


MIN_SPAN_S = 1.0     # the time axes span at least this: a short run's bars, not a dot on a zero-wide axis
LATEST = "latest"    # the run menu's value for "the latest run" (the default)


class ExoflowPage:
    """The page's figures and data sources; ``update`` refreshes them from the plugin.

    The plots show one run: the one picked in the list of runs or in the "run shown" menu
    (``exoflow-select``), else the latest (``ExoflowPlugin.current``). Its figures are in the
    source ``exoflow-shown`` (run, job, status, files, seconds, files_per_s, bytes_per_s: the header)."""

    def __init__(self, scheduler, plugin: ExoflowPlugin) -> None:
        from bokeh.layouts import column, row
        from bokeh.models import (ColumnDataSource, DataTable, Div, HoverTool, Legend, LegendItem, NumberFormatter,
                                  NumeralTickFormatter, Range1d, Select, TableColumn)
        from bokeh.plotting import figure

        self.scheduler, self.plugin = scheduler, plugin
        self.chosen: str | None = None     # the run picked (None: the latest)
        self.shown_src = ColumnDataSource({c: [] for c in ("run", "job", "status", "files", "seconds", "files_per_s",
                                                           "bytes_per_s")}, name="exoflow-shown")
        # the header prints exoflow-shown (its tag puts that source in the browser's document too)
        self.header = Div(text="", name="exoflow-header", sizing_mode="stretch_width", tags=[self.shown_src])
        self.rate_src = ColumnDataSource({"t": [], "width": [], "files_per_s": [], "bytes_per_s": []}, name="exoflow-rate")
        self.worker_src = ColumnDataSource({"worker": [], "files_per_s": [], "bytes_per_s": [], "files": []},
                                           name="exoflow-workers")
        self.progress_src = ColumnDataSource({"label": [], "done": [], "files": [], "files_listed": [], "chunks": [],
                                              "chunks_listed": [], "errors": [], "status": [], "listing": [],
                                              "color": []}, name="exoflow-progress")
        self.activity_src = ColumnDataSource({"activity": [], "seconds": []}, name="exoflow-activity")
        self.memory_src = ColumnDataSource({"worker": [], "memory": [], "unmanaged": [], "spilled": [], "gpu": [],
                                            "memory_h": [], "spilled_h": [], "gpu_h": []}, name="exoflow-memory")

        self.runs_src = ColumnDataSource({c: [] for c in RUN_COLUMNS}, name="exoflow-runs")
        whole = NumberFormatter(format="0,0")
        titles = {"job": "job", "paths": "PATHs", "start": "start", "duration_s": "seconds", "files": "files",
                  "bytes_h": "bytes", "files_per_s": "files/s", "errors": "errors", "status": "status",
                  "out": "output directory"}
        formats = {"files": whole, "files_per_s": whole, "errors": whole, "duration_s": NumberFormatter(format="0.00")}
        self.runs_table = DataTable(source=self.runs_src, height=180, sizing_mode="stretch_width", index_position=None,
                                    selectable=True,
                                    columns=[TableColumn(field=c, title=t, **({"formatter": formats[c]}
                                                                              if c in formats else {}))
                                             for c, t in titles.items()])
        self.select = Select(title="Run shown (or click a run in the list)", value=LATEST,
                             options=[(LATEST, "the latest run")], name="exoflow-select", width=480)
        self.select.on_change("value", self._on_select)
        self.runs_src.selected.on_change("indices", self._on_row)

        def fig(title: str, **kw):
            return figure(title=title, height=260, sizing_mode="stretch_width", toolbar_location=None,
                          tools="", **kw)

        # the run's time axis, from its start to its end (now) and at least MIN_SPAN_S: set by update
        self.time_range = Range1d(0, MIN_SPAN_S, name="exoflow-time-range")
        self.files_fig = fig("Files/s (run shown)", x_axis_label="seconds since start", x_range=self.time_range,
                             y_range=Range1d(0, 1), name="exoflow-files-fig")
        self.files_fig.vbar(x="t", top="files_per_s", width="width", source=self.rate_src, color="#1f77b4")
        self.files_fig.yaxis.formatter = NumeralTickFormatter(format="0,0.[0]")
        self.bytes_fig = fig("Bytes/s (run shown)", x_axis_label="seconds since start", x_range=self.time_range,
                             y_range=Range1d(0, 1), name="exoflow-bytes-fig")
        self.bytes_fig.vbar(x="t", top="bytes_per_s", width="width", source=self.rate_src, color="#ff7f0e")
        self.bytes_fig.yaxis.formatter = NumeralTickFormatter(format="0.0 b")
        for f in (self.files_fig, self.bytes_fig):      # time axes: 1,500,000 s, never 1.500e+6
            f.xaxis.formatter = NumeralTickFormatter(format=PLAIN)
            f.add_tools(HoverTool(tooltips=[("t", "@t s"), ("files/s", "@files_per_s{0,0}"),
                                            ("bytes/s", "@bytes_per_s{0.0 b}")]))

        self.worker_fig = fig("Files/s per worker (run shown)", y_range=[])
        self.worker_fig.xaxis.formatter = NumeralTickFormatter(format="0,0")
        self.worker_fig.hbar(y="worker", right="files_per_s", height=0.8, source=self.worker_src)
        self.worker_fig.add_tools(HoverTool(tooltips=[("worker", "@worker"), ("files/s", "@files_per_s{0,0}"),
                                                      ("bytes/s", "@bytes_per_s{0.0 b}"), ("files", "@files")]))

        self.progress_fig = fig("Progress of each run (chunks done / listed; pale while still listing)",
                                y_range=[], x_range=(0, 1))
        self.progress_fig.hbar(y="label", right="done", height=0.8, source=self.progress_src, color="color")
        self.progress_fig.xaxis.formatter = NumeralTickFormatter(format="0%")
        self.progress_fig.add_tools(HoverTool(tooltips=[
            ("run", "@label"), ("status", "@status @listing"), ("chunks", "@chunks / @chunks_listed"),
            ("files", "@files / @files_listed"), ("errors", "@errors")]))

        self.activity_fig = fig("Where time goes: task seconds per activity (run shown)", y_range=[])
        self.activity_fig.xaxis.formatter = NumeralTickFormatter(format=PLAIN)
        self.activity_fig.hbar(y="activity", right="seconds", height=0.8, source=self.activity_src, color="#9467bd")

        self.memory_fig = fig("Worker memory: in memory, unmanaged, spilled to disk, GPU", y_range=[],
                              name="exoflow-memory-fig")
        bars = self.memory_fig.hbar_stack(["memory", "unmanaged", "spilled", "gpu"], y="worker", height=0.8,
                                          source=self.memory_src, color=["#1f77b4", "#aec7e8", "#d62728", "#76b900"])
        # the legend goes above the plot area, never over the bars
        self.memory_fig.add_layout(Legend(items=[LegendItem(label=label, renderers=[r]) for label, r in zip(
            ["in memory", "unmanaged", "spilled", "GPU"], bars)], orientation="horizontal", location="top_left",
            name="exoflow-memory-legend"), "above")
        self.memory_fig.xaxis.formatter = NumeralTickFormatter(format="0.0 b")
        self.memory_fig.add_tools(HoverTool(tooltips=[("worker", "@worker"), ("in memory", "@memory_h"),
                                                      ("spilled", "@spilled_h"), ("GPU", "@gpu_h")]))

        self.root = column(self.header, Div(text="<b>Runs on this scheduler</b> (newest first)"), self.runs_table,
                           self.select,
                           row(self.files_fig, self.bytes_fig, sizing_mode="stretch_width"),
                           row(self.progress_fig, self.worker_fig, sizing_mode="stretch_width"),
                           row(self.activity_fig, self.memory_fig, sizing_mode="stretch_width"),
                           sizing_mode="stretch_width")

    def _on_select(self, attr: str, old: str, new: str) -> None:
        self.chosen = None if new == LATEST else new
        self.update()

    def _on_row(self, attr: str, old: list[int], new: list[int]) -> None:
        run = self.runs_src.data["run"][new[0]] if new else None
        if run in self.plugin.runs:     # a run whose details were dropped cannot be shown
            self.select.value = run

    def update(self) -> None:
        if self.chosen is not None and self.chosen not in self.plugin.runs:   # its details were dropped
            self.select.value = LATEST     # -> _on_select: chosen = None, update()
            return
        cur = self.plugin.current(self.chosen)
        rows = self.plugin.rows()
        if rows != dict(self.runs_src.data):
            self.runs_src.data = rows
        picked = [rows["run"].index(cur.run)] if self.chosen and cur is not None and cur.run == self.chosen else []
        if list(self.runs_src.selected.indices) != picked:
            self.runs_src.selected.indices = picked
        options = [(LATEST, "the latest run")] + [(r.run, f"{r.job} {r.run} ({run_row(r)['start']})")
                                                    for r in reversed(self.plugin.runs.values())]
        if options != [tuple(o) for o in self.select.options]:
            self.select.options = options
        if cur is None:
            self.header.text = "<h3>exoflow</h3><p>No exoflow run has reported to this scheduler yet.</p>"
        else:
            self._show(cur, cur.ended or time.time())
        self._update_progress(cur)
        self._update_memory()

    def _show(self, cur: RunStats, at: float) -> None:
        """The plots of run ``cur`` up to ``at`` (its end, or now)."""
        span = cur.span(at)
        f, b = cur.rate(at)
        recent = "" if cur.ended else " (last 10 s: {:,.0f} files/s)".format(cur.recent_rate(now=at)[0])
        which = "the run picked" if self.chosen else "the latest run"
        self.header.text = (
            f"<h3>exoflow {cur.job} <small>run {cur.run} ({cur.status}; {which})</small></h3>"
            f"<p>{cur.files:,} files, {_fmt_bytes(cur.bytes)} done of {cur.files_listed:,} files listed"
            f"{'' if cur.listing_done else ' so far'}; chunks {cur.chunks}/{cur.chunks_listed}; "
            f"<b>{cur.errors:,} errors</b>; {f:,.1f} files/s, {_fmt_bytes(b)}/s over {span:.2f} s{recent}</p>")
        self.shown_src.data = {"run": [cur.run], "job": [cur.job], "status": [cur.status], "files": [cur.files],
                               "seconds": [span], "files_per_s": [f], "bytes_per_s": [b]}
        series = rate_series(cur, end=at)
        self.rate_src.data = series
        self.time_range.update(start=0, end=max(span, MIN_SPAN_S))
        for fig, col in ((self.files_fig, "files_per_s"), (self.bytes_fig, "bytes_per_s")):
            fig.y_range.update(start=0, end=max(max(series[col]) * 1.1, 1))
        workers = sorted(cur.workers.items())
        self.worker_src.data = {"worker": [w for w, _ in workers],
                                "files_per_s": [v[0] / span for _, v in workers],
                                "bytes_per_s": [v[1] / span for _, v in workers],
                                "files": [v[0] for _, v in workers]}
        self.worker_fig.y_range.factors = [w for w, _ in workers]
        activities = self.plugin.activity(cur.run)
        self.activity_src.data = {"activity": list(activities), "seconds": list(activities.values())}
        self.activity_fig.y_range.factors = list(activities)[::-1]

    def _update_progress(self, cur: RunStats | None) -> None:
        """The last 10 runs' (and the one shown) ``RunStats.progress``: never decreasing."""
        runs = list(self.plugin.runs.values())[-10:]
        if cur is not None and cur not in runs:
            runs.insert(0, cur)
        labels = [f"{r.job} {r.run}" for r in runs]
        self.progress_src.data = {
            "label": labels, "done": [r.progress for r in runs],
            "files": [r.files for r in runs], "files_listed": [r.files_listed for r in runs],
            "chunks": [r.chunks for r in runs], "chunks_listed": [r.chunks_listed for r in runs],
            "errors": [r.errors for r in runs], "status": [r.status for r in runs],
            "listing": ["" if r.listing_done else "(still listing)" for r in runs],
            "color": ["#2ca02c" if r.listing_done else "#98df8a" for r in runs]}
        self.progress_fig.y_range.factors = labels

    def _update_memory(self) -> None:
        rows = []
        for addr, ws in sorted(self.scheduler.workers.items()):
            mem = ws.memory
            rows.append((addr, mem.managed, mem.unmanaged, mem.spilled, gpu_memory_used(ws.metrics)))
        cols = list(zip(*rows)) if rows else [[]] * 5
        self.memory_src.data = {"worker": list(cols[0]), "memory": list(cols[1]), "unmanaged": list(cols[2]),
                                "spilled": list(cols[3]), "gpu": list(cols[4]),
                                "memory_h": [_fmt_bytes(v) for v in cols[1]],
                                "spilled_h": [_fmt_bytes(v) for v in cols[3]],
                                "gpu_h": [_fmt_bytes(v) for v in cols[4]]}
        self.memory_fig.y_range.factors = list(cols[0])


def gpu_memory_used(metrics: dict) -> int:
    """Bytes used on a worker's GPU, from its heartbeat metrics (Dask reads them with pynvml;
    0 where there is no GPU). The system monitor's key is always there on GPU machines; the
    "gpu" entry only on some workers (it depends on when NVML was first initialised)."""
    return int(metrics.get("gpu_memory_used") or (metrics.get("gpu") or {}).get("memory-used") or 0)


def exoflow_doc(scheduler, extra: dict, doc) -> None:
    """The Bokeh document of the /exoflow page (one per browser tab)."""
    from distributed.dashboard.components.scheduler import BOKEH_THEME, env

    plugin = scheduler.plugins.get(PLUGIN_NAME)
    page = ExoflowPage(scheduler, plugin or ExoflowPlugin())
    page.update()
    doc.add_periodic_callback(page.update, 500)
    doc.title = "Dask: exoflow"
    doc.add_root(page.root)
    doc.template = env.get_template("simple.html")
    doc.template_variables.update(extra)
    doc.theme = BOKEH_THEME


def _add_page(scheduler) -> str | None:
    """Serve /exoflow from the scheduler's HTTP server and list it in the menu. Returns the path."""
    app = getattr(scheduler, "http_application", None)
    dask_bokeh = [a for a in getattr(app, "applications", []) if "bokeh" in type(a).__module__.lower()
                  or "Bokeh" in type(a).__name__]
    if app is None or not dask_bokeh:
        return None      # no dashboard (bokeh missing, or dashboard off)
    if any(f"/{PAGE}" in getattr(a, "app_paths", ()) for a in dask_bokeh):
        return PAGE
    from tornado.ioloop import IOLoop

    from distributed.dashboard.core import BokehApplication
    from distributed.dashboard.scheduler import template_variables

    variables = template_variables(scheduler)     # memoized, shared with every Dask page: the menu
    if PAGE not in variables["pages"]:
        variables["pages"].append(PAGE)
    prefix = getattr(dask_bokeh[0], "_prefix", "") or ""
    bokeh_app = BokehApplication({f"/{PAGE}": exoflow_doc}, scheduler, prefix=prefix,
                                 template_variables=variables)
    app.add_application(bokeh_app)
    bokeh_app.initialize(IOLoop.current())
    bokeh_app.start()
    return PAGE


def dask_setup(scheduler) -> None:
    """Preload entry point (``--preload exoflow.dashboard``)."""
    plugin = scheduler.plugins.get(PLUGIN_NAME)
    if plugin is None:
        plugin = ExoflowPlugin(scheduler)
        scheduler.add_plugin(plugin, name=PLUGIN_NAME)
    _register_prometheus(plugin)
    try:
        _add_page(scheduler)
    except Exception as e:     # the page is a convenience: never stop a scheduler over it
        logger.warning("exoflow: dashboard page not available: %s: %s", type(e).__name__, e)


def _starting_application():
    """Answers the dashboard's pages until they are attached: 503 and a page that reloads itself
    every second (a tornado application consulted before Dask's, removed once they are there)."""
    from tornado import web

    class Handler(web.RequestHandler):
        def get(self, *args) -> None:
            self.set_status(503)
            self.set_header("Retry-After", "1")
            self.set_header("Cache-Control", "no-store")
            self.write("<!DOCTYPE html><html><head><meta http-equiv='refresh' content='1'>"
                       "<title>Dask: starting</title></head><body><p>The dashboard is starting…</p></body></html>")

    app = web.Application([(rf"/(?:status|{PAGE})?/?", Handler)])
    app.exoflow_starting = True      # serves() tells from it that the pages are on their way
    return app


def attach_later(scheduler) -> None:
    """Give an embedded scheduler started with ``dashboard=False`` Dask's dashboard and the exoflow page.

    Importing Bokeh and building Dask's dashboard takes ~0.4 s of CPU, which a cluster started
    with its dashboard pays before the first task; here a thread imports it while the run goes
    on and the event loop attaches it to the HTTP server already listening (``/metrics`` is
    served from the start; until then the pages answer 503 with a page that reloads itself).
    Call it after the workers are forked: a fork must not copy a thread in the middle of an import."""
    app = scheduler.http_application
    starting = _starting_application()
    app.add_application(starting)

    def done() -> None:
        if starting in app.applications:
            app.applications.remove(starting)

    def attach(dash) -> None:
        try:
            dash.connect(app, scheduler.http_server, scheduler, prefix="/")
            _add_page(scheduler)
        except Exception as e:    # a convenience: never stop a run over it
            logger.warning("exoflow: dashboard not available: %s: %s", type(e).__name__, e)
        finally:
            done()

    def load() -> None:
        try:
            import distributed.dashboard.scheduler as dash
        except ImportError:       # bokeh missing: no dashboard, as Dask itself would do
            scheduler.loop.add_callback(done)
            return
        scheduler.loop.add_callback(attach, dash)

    threading.Thread(target=load, name="exoflow-dashboard", daemon=True).start()


def serves(path: str, dask_scheduler=None) -> bool:
    """Whether the scheduler's Bokeh server has (or is about to have) a page at ``path``
    (run on the scheduler)."""
    apps = getattr(getattr(dask_scheduler, "http_application", None), "applications", [])
    return any(getattr(a, "exoflow_starting", False) or path in getattr(a, "app_paths", ()) for a in apps)
