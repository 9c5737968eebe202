"""report.html: a self-contained page (BokehJS inline, no server) beside a run's results.

It shows the headline figures, the job's own results (``Job.tables = fn(summary, out_dir) ->
[plots.Table]``, run where the datasets are, and ``Job.plots = fn(summary) -> [plots.Bars]``;
see docs/report.md), the rows with an error, the throughput timeline of the whole run (from
the run's ``exoflow`` events on the scheduler) and where the time went (Dask's fine
performance metrics of exoflow's tasks). The plots travel as JSON specs and BokehJS draws
them in the browser (report.js); the tables are plain HTML.
"""
from __future__ import annotations

import functools
import html
import importlib.util
import json
import logging
import os
import sys
import uuid
from typing import TYPE_CHECKING, Any, Callable

import cloudpickle

if TYPE_CHECKING:
    from distributed import Client

    from exoflow.executors import Executor

from exoflow import outputs
from exoflow.metrics import TOPIC
from exoflow.plots import ORANGE, PURPLE, Bars, Table
from exoflow.summary import RunSummary
from exoflow.telemetry import (REPORT_TASK, TIERS, RunStats, bytes_read, fold, rate_series, spilled_by_tier,
                               spilled_bytes, time_by_activity)

logger = logging.getLogger(__name__)

REPORT = "report.html"


# ---- what the report needs from the cluster (client side) -------------------------

def _scheduler_metrics(dask_scheduler=None) -> dict:
    return dict(dask_scheduler.cumulative_worker_metrics)


def _run_record(run_id: str, dask_scheduler=None) -> tuple[dict, list[dict]]:
    """The scheduler's cumulative fine metrics and the run's events (one round trip)."""
    events = [msg for _, msg in dask_scheduler.get_events(TOPIC) if isinstance(msg, dict) and msg.get("run") == run_id]
    return _scheduler_metrics(dask_scheduler), events


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
    """After a run: its events, seconds per activity, bytes read and bytes spilled."""
    try:
        client.run(_flush_metrics)
    except Exception as e:   # a worker gone at the end only makes the breakdown a little short
        logger.debug("flushing worker metrics failed: %s", e)
    try:
        metrics, events = client.run_on_scheduler(_run_record, run_id)
    except Exception as e:
        logger.debug("reading scheduler metrics failed: %s", e)
        metrics, events = {}, []
    return {"events": events, "time_by_activity": time_by_activity(metrics, before),
            "bytes_read": bytes_read(metrics, before), "spilled_bytes": spilled_bytes(metrics, before),
            "spilled_by_tier": spilled_by_tier(metrics, before)}


ERROR_ROWS = 100     # error rows shown in the report (all of them are in the dataset)
TableHook = Callable[[dict, str], list]


def first_rows(dataset_dir: str, columns: list[str], where: Any = None, limit: int = ERROR_ROWS) -> tuple[list[list], int]:
    """The first ``limit`` rows (lists of ``columns`` values, in dataset order) of a Parquet dataset
    that match ``where`` (a ``pyarrow.dataset`` expression), and how many match: streamed batch by
    batch, so a large dataset costs one batch of memory. For the tables of report.html."""
    rows: list[list] = []
    n = 0
    for b in outputs.dataset(dataset_dir).to_batches(columns=columns, filter=where):
        n += b.num_rows
        if len(rows) < limit:
            rows += [list(r) for r in zip(*(b.column(c).slice(0, limit - len(rows)).to_pylist() for c in columns))]
    return rows, n


def error_table(dataset_dir: str, limit: int = ERROR_ROWS) -> Table | None:
    """The dataset's rows with an ``error``: the first ``limit`` (path, type where the dataset has
    it, error) and how many there are, streamed (one column's batches at a time, nulls dropped by
    the scan). None when the dataset has no ``error`` column."""
    import pyarrow.dataset as ds
    names = outputs.dataset(dataset_dir).schema.names if outputs.isdir(dataset_dir) else []
    if "error" not in names:
        return None
    cols = [c for c in ("path", "type", "error") if c in names]
    rows, n = first_rows(dataset_dir, cols, ds.field("error").is_valid(), limit)
    name = os.path.basename(dataset_dir.rstrip(os.sep))
    note = ("No row has an error." if not n else
            f"{n:,} rows with an error" + (f"; the first {len(rows)} shown" if n > len(rows) else "") +
            f" (all: exoflow query OUT \"select path, error from {name} where error is not null\")")
    return Table(f"Errors ({name})", "errors", cols, rows, note)


def _tables_task(hook_blob: bytes | None, summary: dict) -> dict[str, Any]:
    """Runs where the run's datasets are (a worker): the job's tables and the error rows."""
    out: dict[str, Any] = {"job": [], "job_note": "", "errors": None}
    if hook_blob is not None:
        try:
            out["job"] = [t.spec() for t in cloudpickle.loads(hook_blob)(summary, summary["out"])]
        except Exception as e:     # a job's table bug must not cost the rest of the report
            out["job_note"] = f"The job's tables failed: {type(e).__name__}: {e}"
    errors = error_table(summary.get("dataset") or os.path.join(summary["out"], "files"))
    out["errors"] = errors.spec() if errors is not None else None
    return out


def submit_tables(executor: Executor, summary: dict, hook: TableHook | None) -> Callable[[], dict[str, Any]]:
    """Start making the report's tables where the run's tasks run (the datasets are on the workers'
    disks; a client elsewhere may not see them); the function returned waits for them. The task
    reads ``summary``'s result and params only, so it runs while the run's telemetry is gathered."""
    blob = cloudpickle.dumps(hook) if hook is not None else None
    try:
        future = executor.submit(_tables_task, blob, summary, key=f"{REPORT_TASK}-{uuid.uuid4().hex[:8]}")
    except Exception as e:
        note = _tables_failed(e)        # (``e`` is gone once the except block ends)
        return lambda: note

    def wait() -> dict[str, Any]:
        try:
            return future.result()
        except Exception as e:
            return _tables_failed(e)
    return wait


def _tables_failed(e: Exception) -> dict[str, Any]:
    """The report's tables when making them failed: none, and a note saying why."""
    return {"job": [], "job_note": f"The report's tables failed: {type(e).__name__}: {e}", "errors": None}


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
    """The figures shown at the top of the report. Listed bytes: the sizes of the regular files
    listed; bytes read: the contents the run really read (none for a job that reads no
    contents; less where checksum --trust-mtime reused digests or dedup skipped unique sizes)."""
    from exoflow.tables import human_count
    read = summary.get("bytes_read")
    return [("regular files", human_count(summary.get("files", 0))),
            ("other entries", human_count(summary.get("other_entries", 0))),
            ("listed bytes", human_bytes(summary.get("bytes", 0))),
            ("bytes read", "-" if read is None else human_bytes(read)),
            ("wall time", f"{summary.get('wall_s', 0):.2f} s"),
            ("files/s", human_count(summary.get("files_per_s") or 0)),
            ("listed bytes/s", human_bytes(summary.get("bytes_per_s") or 0) + "/s"),
            ("errors", human_count(summary.get("errors", 0))),
            ("spilled", spilled_text(summary))]


def spilled_phrase(summary: dict) -> str:
    """``0 B spilled``, or ``spilled 1.2 GiB GPU -> host, …`` (see spilled_text)."""
    text = spilled_text(summary)
    return f"spilled {text}" if "->" in text else f"{text} spilled"


TIER_NAMES = {"device_to_host": "GPU -> host", "host_to_disk": "host -> disk"}


def spilled_text(summary: dict) -> str:
    """What the run spilled per memory tier, e.g. ``1.2 GiB GPU -> host, 300.0 MiB host -> disk
    (41.0 MiB written)``: the tiers that spilled; the bytes written are Dask's, compressed."""
    tiers = summary.get("spilled_by_tier") or {}
    written = summary.get("spilled_bytes") or 0
    parts = [f"{human_bytes(tiers[t])} {TIER_NAMES[t]}" for t in TIERS if tiers.get(t)]
    if not parts:         # nothing spilled (or counted per tier: a run read back from an older summary)
        return human_bytes(written)
    return ", ".join(parts) + (f" ({human_bytes(written)} written)" if written else "")


def summary_line(summary: dict) -> str:
    """The terminal's last line, ``JOB: N regular files, … -> OUT`` (also ``exoflow show``'s)."""
    from exoflow.tables import human_count
    read = summary.get("bytes_read")
    return (f"{summary['job']}: {headline_counts(summary)}, {human_bytes(summary['bytes'])} listed"
            + ("" if read is None else f", {human_bytes(read)} read")
            + f" in {summary['wall_s']:.2f} s ({human_count(summary['files_per_s'] or 0)} files/s, "
            f"{human_bytes(summary['bytes_per_s'] or 0)}/s), {human_count(summary['errors'])} errors, "
            f"{spilled_phrase(summary)} -> {summary['out']}")


def throughput_plots(stats: RunStats | None) -> list[Bars]:
    """Files/s and bytes/s over the whole run (after-steps included), from its chunk events."""
    if stats is None or not stats.points:
        return []
    series = rate_series(stats)
    tips = [("t", "@t s"), ("files/s", "@files_per_s{0,0}"), ("bytes/s", "@bytes_per_s{0.0 b}")]
    return [Bars("Files/s over the run", "report-rate", series, "t", ["files_per_s"], tips, numeric=True,
                 width="width", category_label="seconds since start", value_format="0,0"),
            Bars("Bytes/s over the run", "report-rate", series, "t", ["bytes_per_s"], tips, numeric=True,
                 width="width", category_label="seconds since start", value_format="0.0 b", colors=[ORANGE])]


def phases(stats: RunStats | None, job: str) -> str:
    """When the chunk tasks ran and when the job's after-step did, in seconds since the start."""
    if stats is None or stats.ended is None:
        return ""
    end = stats.ended - stats.started
    if stats.after_started is None:
        return f"The run took {end:.2f} s."
    mid = stats.after_started - stats.started
    return (f"Listing and chunk tasks: 0-{mid:.2f} s; the {job} job's after-step (further stages, "
            f"outputs): {mid:.2f}-{end:.2f} s (no files counted there).")


def activity_plot(seconds: dict[str, float]) -> list[Bars]:
    """Task seconds per activity (read, a kernel, write …), summed over all workers."""
    if not seconds:
        return []
    data = {"activity": list(seconds), "seconds": list(seconds.values())}
    return [Bars("Where time goes: task seconds per activity", "report-activity", data, "activity", ["seconds"],
                 [("activity", "@activity"), ("seconds", "@seconds{0.000}")], horizontal=True, colors=[PURPLE],
                 value_label="seconds")]


@functools.lru_cache(maxsize=1)
def _bokeh_js() -> str:
    """BokehJS and its plotting API, read from the installed bokeh package (not imported); read once
    per process (the cluster's warm driver reads it before it forks its runs)."""
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


def _table_html(t: dict) -> str:
    """A Table spec as HTML: lists in a cell one per line, numbers right-aligned."""
    def cell(v: Any) -> str:
        if isinstance(v, list):
            return "<td>" + "".join(f"<div>{html.escape(str(x))}</div>" for x in v) + "</td>"
        num = isinstance(v, (int, float)) and not isinstance(v, bool)
        return f"<td class='num'>{v:,}</td>" if num else f"<td>{html.escape('' if v is None else str(v))}</td>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in t["headers"])
    rows = "".join("<tr>" + "".join(cell(v) for v in r) + "</tr>" for r in t["rows"])
    note = f"<p class='note'>{html.escape(t['note'])}</p>" if t.get("note") else ""
    body = f"<table class='results' id='report-table-{html.escape(t['name'])}'><tr>{head}</tr>{rows}</table>" \
        if t["rows"] else ""
    return f"<h3>{html.escape(t['title'])}</h3>{note}{body}"


def _drawable(specs: list[Bars]) -> tuple[list[Bars], str]:
    """Charts with data, and a plain note for those without (a run of no files: no empty axes)."""
    empty = [b.title for b in specs if not len(b.data.get(b.category, []))]
    return [b for b in specs if len(b.data.get(b.category, []))], "".join(
        f"<p class='note'>{html.escape(t)}: no files.</p>" for t in empty)


def _section_titles(plots: list[Bars], tables: list[dict]) -> list[str]:
    """The job sections of the page in order: "" (the job's own) first, then each ``section`` named
    by a plot or table (a composed run's jobs)."""
    return list(dict.fromkeys(["", *(b.section for b in plots), *(t.get("section", "") for t in tables)]))


def build(summary: RunSummary, telemetry: dict, plots: Callable[[RunSummary], list] | None = None,
          tables: dict | None = None) -> str:
    """The report's HTML text: figures, tables and sections in HTML, plots as Bars specs that
    report.js draws. ``tables``: what ``tables()`` made on the cluster (job tables, error rows)."""
    stats = fold(telemetry.get("events", []), None)
    run_stats = next(iter(stats.values()), None)
    cells = "".join(f"<td><div class='big'>{html.escape(v)}</div><div class='label'>{html.escape(k)}</div></td>"
                    for k, v in headline(summary))
    sources = ", ".join(html.escape(str(s)) for s in summary.get("sources", []))
    cluster = summary.get("cluster", {})
    job = html.escape(str(summary.get("job", "")))
    tables = tables or {}
    sections = {"plots-throughput": throughput_plots(run_stats),
                "plots-activity": activity_plot(telemetry.get("time_by_activity", {})), "plots-job": []}
    notes = [f"<p>{html.escape(tables['job_note'])}</p>" if tables.get("job_note") else ""]
    if plots is not None:
        try:
            sections["plots-job"] = list(plots(summary))
        except Exception as e:     # a job's plot bug must not cost the rest of the report
            notes.append(f"<p>The job's plots failed: {html.escape(f'{type(e).__name__}: {e}')}</p>")
    job_plots = sections.pop("plots-job")
    titles = _section_titles(job_plots, tables.get("job", []))
    for i, title in enumerate(titles):     # a composed run: one section per job, in its order
        sections[f"plots-job-{i}" if i else "plots-job"] = [b for b in job_plots if b.section == title]
    empty = {}
    for k in sections:
        sections[k], empty[k] = _drawable(sections[k])
    no_files = not summary.get("entries", summary.get("files", 0))
    body = [f"<h1>exoflow {job}</h1>",
            f"<p>{sources} &middot; started {html.escape(str(summary.get('started', '')))} &middot; "
            f"{html.escape(str(cluster.get('workers', '?')))} workers, {html.escape(str(cluster.get('threads', '?')))} "
            f"threads &middot; exoflow {html.escape(str(summary.get('exoflow_version', '')))}</p>",
            f"<table id='report-headline'><tr>{cells}</tr></table>"]
    for i, title in enumerate(titles):
        plots_id = f"plots-job-{i}" if i else "plots-job"
        job_tables = "".join(_table_html(t) for t in tables.get("job", []) if t.get("section", "") == title)
        if job_tables or sections[plots_id] or empty[plots_id] or (any(notes) and not i):
            body += [f"<h2>{html.escape(title) or job or 'job'}</h2>", *(notes if not i else []), job_tables,
                     empty[plots_id], f"<div id='{plots_id}'></div>"]
    if tables.get("errors"):
        body += ["<h2>Errors</h2>", _table_html(tables["errors"])]
    body += ["<h2>Throughput</h2>",
             f"<p class='note'>{html.escape(phases(run_stats, str(summary.get('job', ''))))}</p>",
             "" if sections["plots-throughput"] else
             "<p class='note'>No files.</p>" if no_files else "<p>No chunk events were recorded for this run.</p>",
             "<div id='plots-throughput'></div>",
             "<h2>Where time goes</h2>",
             "" if sections["plots-activity"] else "<p>No fine metrics recorded.</p>",
             "<div id='plots-activity'></div>"]
    specs = {k: [b.spec() for b in v] for k, v in sections.items()}
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>exoflow {job} report</title>\n"
            f"<style>{STYLE}</style>\n{_bokeh_js()}</head>\n<body>\n" + "\n".join(body) +
            f"\n<script type='application/json' id='exoflow-report-plots'>{_json_for_script(specs)}</script>\n"
            f"<script>{_read(os.path.join(os.path.dirname(__file__), 'report.js'))}</script>\n</body></html>\n")


STYLE = ("body{font-family:sans-serif;margin:1em 2em;color:#222} table#report-headline{width:100%;text-align:center}"
         " .big{font-size:1.6em;font-weight:bold} .label{color:#666} .note{color:#555}"
         " table.results{border-collapse:collapse;margin-bottom:1em;font-size:0.9em}"
         " table.results th,table.results td{border-bottom:1px solid #ddd;padding:2px 10px;text-align:left;"
         "vertical-align:top} table.results td.num{text-align:right;font-variant-numeric:tabular-nums}"
         " table.results td div{font-family:monospace}")


def write(out_dir: str, summary: RunSummary, telemetry: dict, plots: Callable[[RunSummary], list] | None = None,
          tables: dict | None = None) -> str | None:
    """Write OUT/report.html; returns its path, or None (one warning line) if it could not be made."""
    path = os.path.join(out_dir, REPORT)
    try:
        text = build(summary, telemetry, plots, tables)
        with outputs.atomic_write(path) as f:
            f.write(text)
        return path
    except Exception as e:      # the results are written; a report problem must not fail the run
        print(f"exoflow: warning: report.html not written: {type(e).__name__}: {e}", file=sys.stderr)
        return None
