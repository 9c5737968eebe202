"""Results a person can read: report.html's own tables for each job (dedup groups against jdupes,
checksum's audit against a hand-made set of changes, scan's findings never showing a secret, the
rows with an error), the whole run's timeline, listed vs read bytes, plain axes; ``exoflow show``
against the run's own stdout, ``exoflow query`` against find, ``--format`` against find -print0."""
from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pyarrow as pa
import pytest

from chromium import CHROMIUM, Chromium
from conftest import exoflow

from exoflow import report
from exoflow.plots import top_bars
from exoflow.sinks import write_part

AWS = "AKIA" + "Q7XK2M4PZR6TYW3N"          # the planted secret (same shape as test_scan's)


class _Tables(HTMLParser):
    """report.html's result tables by id: rows of cells; a cell with <div>s is the list of their texts."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list]] = {}
        self.current: list | None = None
        self.cell: list | None = None
        self.div: list[str] | None = None
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and (a.get("id") or "").startswith("report-table-"):
            self.current = self.tables.setdefault(a["id"][len("report-table-"):], [])
        elif self.current is not None and tag == "tr":
            self.current.append([])
        elif self.current is not None and tag in ("td", "th"):
            self.cell, self.text = [], []
        elif self.cell is not None and tag == "div":
            self.div = []

    def handle_endtag(self, tag):
        if tag == "table":
            self.current = None
        elif tag == "div" and self.div is not None:
            self.cell.append("".join(self.div))
            self.div = None
        elif tag in ("td", "th") and self.cell is not None:
            self.current[-1].append(self.cell if self.cell else "".join(self.text))
            self.cell = None

    def handle_data(self, data):
        if self.div is not None:
            self.div.append(data)
        elif self.cell is not None:
            self.text.append(data)


def tables_of(out: Path) -> dict[str, list[list]]:
    """{name: rows without the header row}."""
    return {k: v[1:] for k, v in _Tables((out / "report.html").read_text()).tables.items()}


def _run(*args: str, cwd: Path, **kw) -> subprocess.CompletedProcess:
    r = exoflow("run", *args, "--no-dashboard", "--workers", "1", cwd=str(cwd), **kw)
    assert r.returncode in (0, 1), r.stderr
    return r


def _show_matches(out: Path, run: subprocess.CompletedProcess, cwd: Path) -> None:
    """exoflow show OUT prints the run's stdout tables again, then the run's last line."""
    r = exoflow("show", str(out), cwd=str(cwd))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(run.stdout), (r.stdout, run.stdout)
    assert r.stdout.rstrip().splitlines()[-1] == run.stderr.rstrip().splitlines()[-1]


# ---- dedup ---------------------------------------------------------------------------

def _jdupes(root: Path) -> set[frozenset]:
    r = subprocess.run(["jdupes", "-r", "-q", "."], cwd=root, capture_output=True, text=True, check=True)
    return {frozenset(os.path.normpath(os.path.join(root.name, p)) for p in g.splitlines())
            for g in r.stdout.strip().split("\n\n") if g.strip()}


def test_dedup_report_groups_are_jdupes_groups_and_actions_free_bytes(tmp_path):
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    sizes = {}
    for i in range(3):
        (tree / f"triple{i}.dat").write_bytes(b"t" * 5000)
    for i in range(2):
        (tree / "sub" / f"pair{i}.dat").write_bytes(b"p" * 9000)
    (tree / "same-size-other.dat").write_bytes(b"q" * 9000)    # a size twin, not a duplicate
    (tree / "unique.dat").write_bytes(b"u" * 123)
    for p in tree.rglob("*.dat"):
        sizes[p] = p.stat().st_size
    expected = _jdupes(tree)
    assert len(expected) == 2
    before = {str(p.relative_to(tmp_path)): (p.stat().st_ino, p.stat().st_blocks * 512) for p in sizes}

    out = tmp_path / "out"
    run = _run("dedup", "tree", "--out", str(out), "--action", "hardlink", "--apply", cwd=tmp_path)
    t = tables_of(out)
    groups = {frozenset(row[4]) for row in t["dedup-groups"]}
    assert groups == expected
    key = dict((k, v) for k, v in t["dedup-results"])
    assert key["duplicate groups"] == "2" and key["duplicate files (beyond one per group)"] == "3"
    # bytes reclaimed: the blocks of the names that now point at their keeper (st_blocks: hand count)
    changed = sum(blocks for p, (ino, blocks) in before.items() if os.stat(tmp_path / p).st_ino != ino)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["result"]["actions"]["freed_bytes"] == changed > 0
    from exoflow.tables import human_bytes
    assert key["bytes reclaimed (measured after the changes)"] == human_bytes(changed)
    assert dict(t["dedup-actions"])["done"] == "3"
    # listed bytes: every regular file; bytes read: only the files whose size occurs twice or more
    counts = {}
    for s in sizes.values():
        counts[s] = counts.get(s, 0) + 1
    assert summary["bytes"] == sum(sizes.values())
    assert summary["bytes_read"] == sum(s for s in sizes.values() if counts[s] > 1)
    _show_matches(out, run, tmp_path)


# ---- checksum --verify and the error rows --------------------------------------------

def test_checksum_report_lists_audit_changes_and_error_rows(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    for name in ("keep", "edit", "gone", "old-name"):
        (tree / name).write_bytes(name.encode() * 100)
    (tree / "locked").write_bytes(b"secret bytes")
    (tree / "locked").chmod(0o000)
    old = tmp_path / "old"
    run = _run("checksum", "tree", "--out", str(old), cwd=tmp_path, obey_permissions=True)
    assert run.returncode == 1          # the unreadable file is an error row
    t = tables_of(old)
    assert [r[0] for r in t["errors"]] == ["tree/locked"] and "EACCES" in t["errors"][0][-1]
    summary = json.loads((old / "summary.json").read_text())
    readable = sum(p.stat().st_size for p in tree.iterdir() if p.name != "locked")
    assert summary["bytes"] == readable + len(b"secret bytes") and summary["bytes_read"] == readable
    _show_matches(old, run, tmp_path)

    (tree / "edit").write_bytes(b"changed")
    (tree / "gone").unlink()
    (tree / "old-name").rename(tree / "new-name")
    (tree / "added").write_bytes(b"brand new")
    expected = {("modified", "tree/edit", "tree/edit"), ("removed", "", "tree/gone"),
                ("moved", "tree/new-name", "tree/old-name"), ("added", "tree/added", ""),
                ("unreadable", "tree/locked", "tree/locked")}
    new = tmp_path / "new"
    run = _run("checksum", "tree", "--out", str(new), "--verify", str(old), cwd=tmp_path, obey_permissions=True)
    t = tables_of(new)
    assert {tuple(r) for r in t["checksum-differences"]} == expected
    counts = dict(t["checksum-audit"])
    assert counts["unchanged"] == "1" and counts["moved"] == "1" and counts["modified"] == "1"
    _show_matches(new, run, tmp_path)


def test_error_table_is_bounded_and_counts_all(tmp_path):
    n = report.ERROR_ROWS + 50
    rows = pa.table({"path": [f"p{i}" for i in range(n + 10)], "type": ["file"] * (n + 10),
                     "error": [f"EIO: {i}" for i in range(n)] + [None] * 10})
    write_part(rows.slice(0, 70), str(tmp_path / "files"), "part-1.parquet")
    write_part(rows.slice(70), str(tmp_path / "files"), "part-2.parquet")
    t = report.error_table(str(tmp_path / "files"))
    assert len(t.rows) == report.ERROR_ROWS and t.rows[0] == ["p0", "file", "EIO: 0"]
    assert f"{n:,} rows with an error" in t.note


# ---- scan ----------------------------------------------------------------------------

def test_scan_report_shows_findings_never_the_secret(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "config.py").write_text(f'aws_key = "{AWS}"\n# TODO rotate\n')
    (tree / "notes.py").write_text("# FIXME one\n# TODO two\n")
    out = tmp_path / "out"
    run = _run("scan", "tree", "--out", str(out), "--rules", "secrets,placeholders", cwd=tmp_path)
    text = (out / "report.html").read_text()
    assert AWS not in text and AWS[4:] not in text
    t = tables_of(out)
    by_rule = {r[0]: int(r[2]) for r in t["scan-by-rule"]}
    assert by_rule.get("todo") == 2 and by_rule.get("fixme") == 1
    column = len('aws_key = "') + 1                            # 1-based, where the key starts
    secret_rows = [r for r in t["scan-findings"] if r[0] == f"tree/config.py:1:{column}"]
    assert len(secret_rows) == 1 and AWS not in secret_rows[0][3]
    severity = {r[0]: int(r[1]) for r in t["scan-severity"]}
    assert sum(severity.values()) == len(t["scan-findings"]) == 4
    _show_matches(out, run, tmp_path)


# ---- the page itself ------------------------------------------------------------------

def _events(t0: float, chunk: float, after: float, end: float) -> list[dict]:
    return [{"kind": "run-start", "run": "r", "time": t0, "job": "dedup"},
            {"kind": "chunk", "run": "r", "time": t0 + chunk, "files": 10, "bytes": 100},
            {"kind": "after", "run": "r", "time": t0 + after},
            {"kind": "run-end", "run": "r", "time": t0 + end, "status": "done"}]


def _specs(text: str) -> dict[str, list[dict]]:
    start = text.index("id='exoflow-report-plots'>") + len("id='exoflow-report-plots'>")
    return json.loads(text[start:text.index("</script>", start)])


def test_timeline_covers_the_after_step():
    """A 6.4 s dedup whose chunks ended at 2 s: the timeline runs to 6.4 s and names the after-step."""
    summary = {"job": "dedup", "files": 10, "entries": 10, "bytes": 100, "wall_s": 6.4}
    text = report.build(summary, {"events": _events(1000.0, 1.0, 2.0, 6.4)})
    rate = _specs(text)["plots-throughput"][0]["data"]
    # the bins cover the run's wall time exactly (telemetry.rate_series): the last one ends at 6.4 s
    assert rate["t"][-1] + rate["width"][-1] / 0.9 / 2 == pytest.approx(6.4, abs=0.01)
    assert "after-step (further stages, outputs): 2.00-6.40 s" in text


def test_zero_file_run_draws_no_empty_axes():
    summary = {"job": "inventory", "files": 0, "entries": 0, "bytes": 0, "wall_s": 0.1}
    text = report.build(summary, {"events": [], "time_by_activity": {}},
                        lambda s: [top_bars([], "Top extensions by bytes", "inventory-extensions")])
    assert all(not specs for specs in _specs(text).values())
    assert "Top extensions by bytes: no files." in text and "No files." in text


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/apt-packages.txt)")
def test_axes_are_plain_numbers(tmp_path):
    """Every number axis of the page formats 1,500,000 without scientific notation (Bokeh's
    default formatter gives 1.500e+6), the time axes included."""
    summary = {"job": "x", "files": 10, "entries": 10, "bytes": 100, "wall_s": 2e6}
    path = report.write(str(tmp_path), summary, {"events": _events(0.0, 1e6, 1.5e6, 2e6),
                                                 "time_by_activity": {"read": 1.5e6}})
    with Chromium() as browser:
        browser.open(Path(path).as_uri())
        browser.wait_for("typeof Bokeh !== 'undefined' && Object.keys(Bokeh.index).length > 0")
        labels = browser.evaluate("""(() => {
          const out = [];
          for (const doc of Bokeh.documents) for (const m of doc.all_models)
            if (m instanceof Bokeh.LinearAxis) out.push(...m.formatter.doFormat([0, 1500000], {loc: 0}));
          return out; })()""")
        assert not browser.errors, browser.errors
    assert len(labels) >= 6 and not any("e+" in x or "e-" in x for x in labels), labels


# ---- exoflow query and --format -------------------------------------------------------

def _find(tmp_path: Path, *args: str) -> bytes:
    return subprocess.run(["find", "tree", "-mindepth", "1", "!", "-type", "d", *args], cwd=tmp_path,
                          capture_output=True, check=True).stdout


def test_query_and_format_against_find(tmp_path):
    tree = tmp_path / "tree"
    (tree / "d").mkdir(parents=True)
    for i in range(7):
        (tree / "d" / f"f{i}.txt").write_bytes(b"x" * i)
    (tree / "new\nline.txt").write_bytes(b"n")
    with open(os.fsencode(tree) + b"/bad-\xff-name", "wb") as f:
        f.write(b"b")
    os.symlink("d", tree / "link")
    out = tmp_path / "out"
    raw = subprocess.run([sys.executable, "-m", "exoflow.cli", "run", "inventory", "tree", "--out", str(out),
                          "--no-dashboard", "--workers", "1", "--format", "paths", "-0"],
                         cwd=tmp_path, capture_output=True, check=True).stdout
    assert raw.endswith(b"\0")
    assert set(raw.split(b"\0")[:-1]) == set(_find(tmp_path, "-print0").split(b"\0")[:-1])

    jl = exoflow("run", "inventory", "tree", "--out", str(tmp_path / "out3"), "--no-dashboard", "--workers", "1",
                 "--format", "jsonl", cwd=str(tmp_path))
    rows = [json.loads(line) for line in jl.stdout.splitlines()]
    assert len(rows) == 10 and {"path", "size", "type"} <= set(rows[0]) and "inventory:" in jl.stderr

    files = len(_find(tmp_path, "-type", "f", "-print0").split(b"\0")) - 1
    q = exoflow("query", str(out), "select count(*) as n from files where type = 'file'", "--format", "csv")
    assert q.returncode == 0, q.stderr
    assert list(csv.reader(io.StringIO(q.stdout))) == [["n"], [str(files)]]
    q = exoflow("query", str(out), "select nope from files")
    assert q.returncode == 2 and len(q.stderr.splitlines()) == 1 and "query failed" in q.stderr


def test_query_without_duckdb_is_one_line(tmp_path):
    (tmp_path / "files").mkdir()
    write_part(pa.table({"path": ["a"]}), str(tmp_path / "files"), "part-1.parquet")
    fake = tmp_path / "nodeps"
    fake.mkdir()
    (fake / "duckdb.py").write_text("raise ImportError('no duckdb here')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake), os.environ.get("PYTHONPATH", "")])}
    r = exoflow("query", str(tmp_path), "select 1", env=env)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip() == "exoflow query: error: exoflow query needs DuckDB: pip install 'exoflow[sql]' " \
                               "(or pip install duckdb)"
