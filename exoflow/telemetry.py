"""Turning exoflow's scheduler events and Dask's fine performance metrics into numbers.

Shared by the dashboard page and Prometheus collector (on the scheduler, fed
live by a ``SchedulerPlugin``) and by the run report (on the client, fed by
``client.get_events("exoflow")`` after the run). Pure Python, no Bokeh.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterable

# Dask's own pieces of a task's time that are not one of exoflow's meters, in plain words.
# thread-cpu and thread-noncpu are what is left of the task outside any meter (e.g. the loop
# between kernels): computing, or waiting (for the disk, a lock, the GIL).
DASK_ACTIVITIES = {"executor": "Dask: starting and ending tasks", "other": "Dask: other",
                   "thread-cpu": "other work in tasks (CPU)", "thread-noncpu": "waiting in tasks (disk, locks)"}


@dataclass
class RunStats:
    """What is known about one run from its events; ``points`` is the cumulative
    (time, files, bytes) after each chunk, the raw material for every rate."""

    run: str
    job: str = "?"
    sources: list[str] = field(default_factory=list)
    out: str = ""                         # the run's output directory
    status: str = "running"
    started: float = 0.0
    listing_done: bool = False            # every listing task finished ("listing-done" or run-end)
    progress: float = 0.0                 # fraction of chunks done, never decreasing (see ``apply``)
    after_started: float | None = None    # the job's after-step (dedup's stages …) began
    ended: float | None = None            # the run ended, after-steps included
    files_listed: int = 0
    bytes_listed: int = 0
    chunks_listed: int = 0
    files: int = 0
    bytes: int = 0
    errors: int = 0
    chunks: int = 0
    workers: dict[str, list[int]] = field(default_factory=dict)    # address -> [files, bytes]
    points: list[tuple[float, int, int]] = field(default_factory=list)

    def apply(self, msg: dict) -> None:
        kind, t = msg.get("kind"), float(msg.get("time") or time.time())
        if kind == "run-start":
            self.job, self.sources, self.started = msg.get("job", self.job), list(msg.get("sources") or []), t
            self.out = str(msg.get("out") or "")
        elif kind == "listed":
            self.files_listed += int(msg.get("files", 0))
            self.bytes_listed += int(msg.get("bytes", 0))
            self.chunks_listed += int(msg.get("chunks", 0))
        elif kind == "chunk":
            files, nbytes = int(msg.get("files", 0)), int(msg.get("bytes", 0))
            self.files += files
            self.bytes += nbytes
            self.errors += int(msg.get("errors", 0))
            self.chunks += 1
            w = self.workers.setdefault(str(msg.get("worker", "?")), [0, 0])
            w[0] += files
            w[1] += nbytes
            self.points.append((t, self.files, self.bytes))
        elif kind == "after":
            self.after_started = t
        elif kind == "listing-done":
            self.listing_done = True
        elif kind == "run-end":
            self.status, self.ended, self.listing_done = msg.get("status", "done"), t, True
        if not self.started:
            self.started = t
        self._advance()

    def _advance(self) -> None:
        """``progress``: chunks done / chunks listed so far, held at its highest value, so the bar
        never goes back when a listing task adds chunks; 1 once the run is done. While
        ``listing_done`` is False it is a fraction of what is listed yet, not of the whole run."""
        if self.status == "done":
            self.progress = 1.0
        elif self.chunks_listed:
            self.progress = max(self.progress, self.chunks / max(self.chunks_listed, self.chunks))

    @property
    def elapsed(self) -> float:
        return self.span()

    def span(self, now: float | None = None) -> float:
        """Seconds from the run's start to its end (to ``now``, default the clock, while it runs)."""
        return max((self.ended or now or time.time()) - self.started, 1e-9)

    def rate(self, now: float | None = None) -> tuple[float, float]:
        """(files/s, bytes/s) over the whole run so far: what the page's header and list show, and
        the mean of ``rate_series``' bins for the same ``now``."""
        span = self.span(now)
        return self.files / span, self.bytes / span

    @property
    def chunks_pending(self) -> int:
        return max(self.chunks_listed - self.chunks, 0) if self.status == "running" else 0

    def recent_rate(self, window: float = 10.0, now: float | None = None) -> tuple[float, float]:
        """(files/s, bytes/s) over the last ``window`` seconds (the whole run once it ended)."""
        if self.ended is not None:
            return self.files / self.elapsed, self.bytes / self.elapsed
        now = now or time.time()
        since = now - window
        before = [p for p in self.points if p[0] < since]
        f0, b0 = (before[-1][1], before[-1][2]) if before else (0, 0)
        span = min(window, max(now - self.started, 1e-9))
        return (self.files - f0) / span, (self.bytes - b0) / span


def fold(events: Iterable[dict], run: str | None = None) -> dict[str, RunStats]:
    """Events (dicts with "kind" and "run") -> RunStats per run, optionally only ``run``."""
    runs: dict[str, RunStats] = {}
    for msg in events:
        if not isinstance(msg, dict) or "run" not in msg or (run is not None and msg["run"] != run):
            continue
        runs.setdefault(msg["run"], RunStats(msg["run"])).apply(msg)
    return runs


MIN_BIN_S = 0.5     # rate bins are at least this wide (but one bin covers a shorter run)


def rate_series(stats: RunStats, bins: int = 60, end: float | None = None) -> dict[str, list[float]]:
    """Files/s and bytes/s in equal time bins that cover the run's wall interval exactly, from its
    start to its end (``end``, default the run's end or the clock): x "t" is each bin's middle in
    seconds since start, "width" 0.9 of a bin (for bars). The bins' mean is ``stats.rate(end)``.

    At most ``bins`` bins, at least MIN_BIN_S wide, so a short run shows a few honest bars
    (a run under a second: one bar), not one spike per chunk.
    """
    span = stats.span(end)
    n = max(1, min(bins, int(span / MIN_BIN_S)))
    width = span / n
    files, nbytes = [0.0] * n, [0.0] * n
    prev_f = prev_b = 0
    for t, f, b in stats.points:
        i = min(max(int((t - stats.started) / width), 0), n - 1)
        files[i] += f - prev_f
        nbytes[i] += b - prev_b
        prev_f, prev_b = f, b
    return {"t": [round((i + 0.5) * width, 3) for i in range(n)], "width": [width * 0.9] * n,
            "files_per_s": [v / width for v in files], "bytes_per_s": [v / width for v in nbytes]}


REPORT_TASK = "exoflow-report"    # report.html's table task, after the run: not the job's time


def _is_task_seconds(key: object) -> bool:
    return (isinstance(key, tuple) and len(key) == 4 and key[0] == "execute" and key[3] == "seconds"
            and str(key[1]).startswith("exoflow-") and key[1] != REPORT_TASK)


def task_seconds(metrics: dict) -> dict:
    """The entries of ``Scheduler.cumulative_worker_metrics`` that ``time_by_activity`` reads
    (exoflow tasks' seconds): a small snapshot to subtract later."""
    return {k: v for k, v in metrics.items() if _is_task_seconds(k)}


def time_by_activity(metrics: dict, before: dict | None = None) -> dict[str, float]:
    """Seconds per activity in exoflow's tasks (the report's table task aside), from ``Scheduler.cumulative_worker_metrics``
    (minus a snapshot ``before`` the run, for a scheduler that ran other work before)."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if not _is_task_seconds(key):
            continue
        value -= (before or {}).get(key, 0)
        name = DASK_ACTIVITIES.get(key[2], key[2])
        out[name] = out.get(name, 0.0) + value
    return {k: round(v, 6) for k, v in sorted(out.items(), key=lambda kv: -kv[1]) if v > 0}


def bytes_read(metrics: dict, before: dict | None = None) -> int:
    """Bytes of file contents read by tasks (``count("read", n, "bytes")`` where the loader and
    the hashers read; after-steps' tasks too, whatever their key), from the fine metrics."""
    return int(sum(v - (before or {}).get(k, 0) for k, v in metrics.items()
                   if isinstance(k, tuple) and len(k) == 4 and k[0] == "execute" and k[2:] == ("read", "bytes")))


def spilled_bytes(metrics: dict, before: dict | None = None) -> int:
    """Bytes written to disk by Dask's spilling (any context), from the fine metrics."""
    return int(sum(v - (before or {}).get(k, 0) for k, v in metrics.items()
                   if isinstance(k, tuple) and len(k) >= 3 and k[-2] == "disk-write" and k[-1] == "bytes"))


# exoflow.spilling.SpillCounter's fine metrics: (SPILL, tier, "bytes") for each tier
SPILL = "exoflow-spill"
TIERS = ("device_to_host", "host_to_disk")


def spilled_by_tier(metrics: dict, before: dict | None = None) -> dict[str, int | None]:
    """Bytes (their size in memory) each memory tier spilled to the next during the run:
    ``{"device_to_host": …, "host_to_disk": …}``, from ``exoflow.spilling.SpillCounter``'s fine
    metrics; None for a tier no worker has (device_to_host without GPU workers, host_to_disk
    without a memory limit)."""
    return {tier: (int(metrics[key] - (before or {}).get(key, 0)) if key in metrics else None)
            for tier in TIERS for key in [(SPILL, tier, "bytes")]}
