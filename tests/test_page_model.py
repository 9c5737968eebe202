"""The exoflow page's numbers, computed from a run's own events (no browser, no cluster): the
files/s bins against the header's files/s, the progress fraction while the listing grows, and each
run's share of the task seconds. The page in Chromium: tests/test_service.py -k page."""
from __future__ import annotations


import pytest

from conftest import make_grid, run_config
from exoflow import runner
from exoflow.dashboard import ExoflowPlugin, run_row
from exoflow.executors import InProcess
from exoflow.telemetry import RunStats, fold, rate_series


@pytest.fixture(scope="module")
def events(tmp_path_factory) -> tuple[list[dict], dict]:
    """The events of a checksum run over 5 x 6 files in chunks of 4, its first listing task cut
    after 4 entries: several listing tasks, so chunks finish while more are being listed."""
    base = tmp_path_factory.mktemp("page")
    tree = make_grid(base / "t", 5, 6, lambda f: b"z" * (f + 1))
    cfg = run_config("checksum", tree, base / "out")
    ex = InProcess()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runner, "FIRST_BUDGET", (4, 10.0))
        summary = runner.run(ex, cfg)
    return ex.events, summary


def test_progress_never_goes_back_while_the_listing_grows(events):
    evs, summary = events
    stats, raw, shown = RunStats(evs[0]["run"]), [], []
    for msg in evs:
        stats.apply(msg)
        if stats.chunks_listed:
            raw.append(stats.chunks / stats.chunks_listed)
        shown.append(stats.progress)
    assert any(b < a for a, b in zip(raw, raw[1:])), "the run never listed after chunks were done: no test"
    assert all(b >= a for a, b in zip(shown, shown[1:])), shown
    assert shown[-1] == 1.0 and stats.status == "done"
    kinds = [m["kind"] for m in evs]
    assert kinds.count("listing-done") == 1 and kinds.index("listing-done") < kinds.index("run-end")
    at_end = fold(evs[:kinds.index("listing-done") + 1])[stats.run]
    assert at_end.listing_done and at_end.chunks_listed == summary["chunks"] and at_end.files_listed == 30


def test_rate_bins_mean_is_the_header_rate(events):
    """The bins cover the run's wall interval exactly: their mean is files / seconds, the header's
    (and the list's) files/s, for a finished run and for one still running (``end`` = now)."""
    stats = next(iter(fold(events[0]).values()))
    assert stats.files == 30 and run_row(stats)["files_per_s"] == round(stats.files / stats.elapsed, 1)
    one = RunStats("one", started=100.0)
    one.apply({"kind": "chunk", "time": 100.03, "files": 7, "bytes": 70, "worker": "w"})
    for s, end in ((stats, None), (stats, stats.started + (stats.ended - stats.started) * 0.7),
                   (one, 100.04), (one, 103.3), (one, 250.0)):
        for bins in (60, 7, 1):
            series = rate_series(s, bins=bins, end=end)
            n = len(series["t"])
            files_s, bytes_s = s.rate(end)
            assert sum(series["files_per_s"]) / n == pytest.approx(files_s, rel=1e-9)
            assert sum(series["bytes_per_s"]) / n == pytest.approx(bytes_s, rel=1e-9)
            assert n <= bins and (n == 1 or series["width"][0] / 0.9 >= 0.5)
    assert len(rate_series(one, end=103.3)["t"]) == 6        # 3.3 s: six bins of 0.55 s


class FakeScheduler:
    def __init__(self) -> None:
        self.cumulative_worker_metrics: dict = {}

    def add(self, prefix: str, activity: str, seconds: float) -> None:
        key = ("execute", prefix, activity, "seconds")
        self.cumulative_worker_metrics[key] = self.cumulative_worker_metrics.get(key, 0) + seconds


def test_each_run_gets_its_own_task_seconds():
    """Fine metrics that arrive after a run's end (the last heartbeat) are still that run's, until
    the next run starts; the report's table task and other work are no run's."""
    sched = FakeScheduler()
    plugin = ExoflowPlugin(sched)
    sched.add("exoflow-chunk", "read", 5.0)            # before any run the page saw

    def event(run: str, kind: str, t: float) -> None:
        plugin.log_event("exoflow", {"kind": kind, "run": run, "job": "j", "time": t})

    event("a", "run-start", 1.0)
    sched.add("exoflow-chunk", "read", 2.0)
    event("a", "run-end", 2.0)
    sched.add("exoflow-chunk", "write", 0.5)           # a's last heartbeat
    sched.add("exoflow-report", "thread-cpu", 9.0)     # report.html's tables
    sched.add("shuffle", "thread-cpu", 9.0)            # not exoflow
    assert plugin.activity("a") == {"read": 2.0, "write": 0.5}
    event("b", "run-start", 3.0)
    sched.add("exoflow-list", "list", 1.0)
    sched.add("exoflow-chunk", "read", 3.0)
    assert plugin.activity("a") == {"read": 2.0, "write": 0.5}
    assert plugin.activity("b") == {"read": 3.0, "list": 1.0}
    assert plugin.activity("unknown") == {}
