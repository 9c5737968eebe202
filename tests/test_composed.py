"""Composed runs (``exoflow run checksum+scan+…``): one walk, each file read at most once, and each
job's outputs what it writes alone. Oracles: the same jobs run alone on the same tree (every
Parquet row, the summary's counts and result, the after-steps' files), a count of the opens of
the engine's reader, and the sizes of the files the jobs select."""
from __future__ import annotations

import collections
import json
import os
from pathlib import Path

import pytest

from conftest import exoflow, make_awkward_tree, read_dataset, run_here

import exoflow.batch as batch_mod
from exoflow.composed import ALL, load
from exoflow.config import configure, run_parser
from exoflow.paths import raw_paths

GHP = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A"      # a token scan reports (test_scan.py)
JOBS = ("inventory", "checksum", "scan", "codestats", "profile")
FLAGS = {"checksum": ["--hash", "sha256,xxh3-128", "--text"]}
COUNTS = ("files", "other_entries", "entries", "bytes", "errors")
PIECE = 64 * 1024       # a small --piece-size: the tree's files over it are streamed


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """The awkward tree, with a git repository (.git, .gitignore: an ignored file and directory
    that hold secrets), code, a secret scan reports and files over checksum's 1 MiB piece."""
    root = tmp_path_factory.mktemp("composed") / "t"
    root.mkdir()
    special = make_awkward_tree(root)
    files = {"repo/.git/HEAD": b"ref: refs/heads/main\n", "repo/.git/config": f"token = {GHP}\n".encode(),
             "repo/.gitignore": b"*.log\nbuild/\n", "repo/app.py": f"# a key\nKEY = '{GHP}'\n\nprint(KEY)\n".encode(),
             "repo/debug.log": f"{GHP}\n".encode(), "repo/build/gen.py": b"x = 1\n",
             "repo/sub/.ignore": b"skip.c\n", "repo/sub/skip.c": b"int x;\n", "repo/sub/keep.c": b"int y;\n",
             "src/m.sh": b"#!/bin/sh\n# c\necho hi\n", "big/random.bin": os.urandom(1_500_000),
             "big/text.txt": b"line\r\n" * 400_000,
             # over PIECE: code with a secret, a script known by its shebang, an extensionless file that
             # is not (codestats reads its head only), UTF-16 text with a secret
             "big/code.py": b"# a comment\nx = 1\n\n" * 4000 + f"KEY = '{GHP}'\n".encode(),
             "big/run": b"#!/bin/sh\n" + b"echo hi\n" * 10_000, "big/NOTES": b"plain words\n" * 8000,
             "big/wide.txt": "\ufeff".encode("utf-16-le") + ("w\u00f6rds\r\n" * 8000 + f"t = {GHP}\n").encode("utf-16-le")}
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    yield root
    special["locked"].chmod(0o755)
    special["listable"].chmod(0o755)


def _rows(path: Path) -> list:
    rows = read_dataset(path).to_pylist()
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=repr))


def _plain(x, out: Path):
    """JSON-able, OUT spelled "OUT", lists as sorted multisets (ties keep their chunks' order)."""
    x = json.loads(json.dumps(x, default=str).replace(str(out), "OUT"))

    def canonical(v):
        if isinstance(v, dict):
            return {k: canonical(w) for k, w in v.items()}
        if isinstance(v, list):
            return sorted((canonical(w) for w in v), key=lambda w: json.dumps(w, sort_keys=True))
        return v
    return canonical(x)


@pytest.fixture(scope="module")
def alone(tree, tmp_path_factory):
    """fn(piece size) -> {job: (its summary, its OUT)} of each job run alone with that --piece-size."""
    runs: dict[str, dict[str, tuple[dict, Path]]] = {}

    def get(piece: str = "16M") -> dict[str, tuple[dict, Path]]:
        if piece not in runs:
            base = tmp_path_factory.mktemp("alone")
            runs[piece] = {j: (run_here(j, tree, base / j, *FLAGS.get(j, []),
                                        *(["--piece-size", piece] if load(j).reads_content else [])), base / j)
                           for j in JOBS}
        return runs[piece]
    return get


@pytest.fixture
def count_opens(monkeypatch):
    """Opens of files for their contents, by path (the Python reader: the compiled one is off)."""
    opened: collections.Counter = collections.Counter()
    real = batch_mod.open_path

    def counting(path, flags):
        opened[path] += 1
        return real(path, flags)
    monkeypatch.setattr(batch_mod, "_native", None)
    monkeypatch.setattr(batch_mod, "open_path", counting)
    return opened


@pytest.mark.parametrize("piece", ["16M", str(PIECE)])
def test_each_job_writes_what_it_writes_alone_and_each_file_is_read_once(tree, alone, tmp_path, count_opens, piece):
    """With the default --piece-size every file is loaded whole; with a small one the files over it
    are streamed, once, to the consumers of all the jobs: each is still opened once and read once."""
    solo = alone(piece)
    count_opens.clear()         # the solo runs' opens
    out = tmp_path / "o"
    s = run_here("+".join(JOBS), tree, out, *FLAGS["checksum"], "--piece-size", piece)
    assert s["job"] == "inventory+checksum+scan+codestats+profile"
    for name in JOBS:
        a, a_out = solo[name]
        section = s["result"]["jobs"][name]
        dataset = load(name).dataset
        assert section["dataset"] == str(out / name / dataset)
        assert _rows(out / name / dataset) == _rows(a_out / dataset), name
        assert {k: section[k] for k in COUNTS} == {k: a[k] for k in COUNTS}, name
        assert _plain(section["result"], out / name) == _plain(a["result"], a_out), name
        assert _plain(section["params"], out) == _plain(a["params"], a_out), name
    for manifest in ("checksums.sha256", "checksums.xxh128"):
        lines = sorted((out / "checksum" / manifest).read_bytes().splitlines())
        assert lines == sorted((solo["checksum"][1] / manifest).read_bytes().splitlines())
    a_scan = solo["scan"][1]
    sarif = [json.loads((d / "scan.sarif").read_text())["runs"][0]["results"] for d in (out / "scan", a_scan)]
    assert _plain(sarif[0], out) == _plain(sarif[1], a_scan) and sarif[0]    # the secrets are found
    # scan alone skipped .git, the ignored files and directory: so did its part of the composed run
    scanned = {r["path"] for r in read_dataset(out / "scan" / "findings").to_pylist()}
    assert all(any(p.endswith(f) for p in scanned) for f in ("repo/app.py", "big/code.py", "big/wide.txt"))
    assert not any(p.endswith(("debug.log", "gen.py", "skip.c")) or "/.git/" in p for p in scanned)
    # one read: each file opened once, large or not, and the bytes read those of the regular files
    # some job selects (all of them: checksum, scan and profile read every file), each byte once
    assert count_opens and max(count_opens.values()) == 1
    inventory = read_dataset(out / "inventory" / "files")
    readable = {p: r["size"] for p, r in zip(raw_paths(inventory), inventory.to_pylist())
                if r["type"] == "file" and r["error"] is None}
    assert set(count_opens) == set(readable)
    assert s["bytes_read"] == sum(readable.values()) > 10 * 2**20
    large = [p for p, n in readable.items() if n > PIECE]
    assert len(large) == 7       # sparse.bin, random.bin, text.txt, code.py, run, NOTES, wide.txt


def test_rows_a_job_does_not_select_are_not_read_for_it(tree, alone, tmp_path, count_opens):
    """codestats reads files of a known language (and scripts by shebang): with inventory, which
    reads nothing, the run opens exactly the files codestats alone opens, and writes its rows."""
    solo = alone()
    count_opens.clear()
    run_here("codestats", tree, tmp_path / "alone")
    by_codestats = dict(count_opens)
    count_opens.clear()
    out = tmp_path / "o"
    s = run_here("inventory+codestats", tree, out)
    assert dict(count_opens) == by_codestats and not any(p.endswith(".bin") for p in by_codestats)
    assert _rows(out / "codestats" / "files") == _rows(solo["codestats"][1] / "files")
    assert s["result"]["jobs"]["codestats"]["files"] == solo["codestats"][0]["files"]


def test_a_large_file_is_read_only_as_far_as_its_jobs_want(tree, tmp_path, count_opens):
    """codestats wants only the head of an extensionless file without a shebang (big/NOTES): alone
    or with inventory, it is opened once and its first piece read, the rest not; with checksum it
    is read whole, once. Oracle: the files' sizes (hand count of the bytes read)."""
    for spec in ("codestats", "inventory+codestats", "checksum+codestats"):
        count_opens.clear()
        s = run_here(spec, tree, tmp_path / spec, "--piece-size", str(PIECE))
        sizes = {p: os.path.getsize(p) for p in count_opens}
        notes = next(p for p in sizes if p.endswith("big/NOTES"))
        assert set(count_opens.values()) == {1}
        unread = 0 if "checksum" in spec else sizes[notes] - PIECE
        assert s["bytes_read"] == sum(sizes.values()) - unread, spec


def test_all_is_the_reading_jobs_and_the_inventory():
    assert [j.name for j in load("all").jobs] == list(ALL) == list(JOBS)
    assert [j.name for j in load("all+dedup").jobs] == [*ALL, "dedup"]


def test_a_user_job_file_takes_part(tree, tmp_path):
    job_file = tmp_path / "sizes.py"
    job_file.write_text(
        "import numpy as np\nfrom exoflow import Job, Reads\n"
        "class Count:\n    def chunk(self, t, p): return {'rows': t.num_rows}\n"
        "    def merge(self, total, part): return {'rows': (total or {'rows': 0})['rows'] + part['rows']}\n"
        "    def finish(self, total, p): return total or {'rows': 0}\n"
        "    def report(self, s, p): return str(s)\n"
        "def first(batch):\n    n = batch.num_rows\n"
        "    return {'first': [int(batch.data[batch.offsets[i]]) if batch.offsets[i + 1] > batch.offsets[i] else None"
        " for i in range(n)]}\n"
        "job = Job(name='firstbyte', description='first byte', kernels=[first], reducer=Count(),\n"
        "          reads=Reads(rows=lambda t, p: np.asarray(t.column('size').fill_null(0)) < 100))\n")
    out = tmp_path / "o"
    s = run_here(f"inventory+{job_file}", tree, out)
    rows = {r["path"]: r["first"] for r in read_dataset(out / "firstbyte" / "files").to_pylist()}
    one = next(p for p in rows if p.endswith("a/one.txt"))
    assert rows[one] == ord("1") and all(v is None for p, v in rows.items() if p.endswith("random.bin"))
    assert s["result"]["jobs"]["inventory"]["files"] == s["result"]["jobs"]["firstbyte"]["files"]


@pytest.mark.parametrize("args,message", [
    (["--top", "3"], "--top is an option of inventory, scan: give --inventory.top or --scan.top"),
    (["--scan.nope", "x"], "unrecognized arguments: --scan.nope"),
    (["--checksum.hash", "nope"], "--checksum.hash"),
    (["--resume"], "--resume is not supported for a composed run"),
    (["--since", "."], "--since is not supported for a composed run"),
])
def test_option_namespacing_errors_are_one_line_exit_2(tree, tmp_path, args, message):
    r = exoflow("run", "inventory+checksum+scan", str(tree), "--out", str(tmp_path / "o"), *args)
    assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "o").exists()


def test_namespaced_and_plain_options_reach_their_job(tree, tmp_path):
    """--scan.top and --inventory.top apart; --hash (only checksum has it) plain."""
    job = load("inventory+checksum+scan")
    args = run_parser(job, "t").parse_args([str(tree), "--scan.top", "1", "--inventory.top", "2", "--hash", "md5"])
    params = configure(job, args).run.params
    assert (params["scan.top"], params["inventory.top"], params["checksum.hash"]) == (1, 2, ("md5",))


def test_overlapping_paths_with_different_walks_are_refused(tree, tmp_path):
    r = exoflow("run", "checksum+scan", str(tree), str(tree / "repo"), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "PATHs overlap" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = exoflow("run", "scan+nope", str(tree))
    assert r.returncode == 2 and "unknown job 'nope'" in r.stderr


def test_composed_command_linerun_here(tree, tmp_path):
    """The whole command: one summary.json, one report.html with a section per job, exit 0/1 as
    the jobs' (the awkward tree has unreadable entries: 1)."""
    out = tmp_path / "o"
    r = exoflow("run", "checksum+scan", str(tree), "--out", str(out), "--workers", "1", "-q", obey_permissions=True)
    assert r.returncode == 1, r.stderr
    s = json.loads((out / "summary.json").read_text())
    assert s["job"] == "checksum+scan" and set(s["result"]["jobs"]) == {"checksum", "scan"}
    page = (out / "report.html").read_text()
    assert "<h2>checksum</h2>" in page and "<h2>scan</h2>" in page and "report-table-scan-results" in page
    shown = exoflow("show", str(out))
    assert shown.returncode == 0 and "checksum\n========" in shown.stdout and "scan\n====" in shown.stdout
    pytest.importorskip("duckdb", reason="exoflow query needs DuckDB (exoflow[sql])")
    q = exoflow("query", str(out), "select count(*) as n from checksum_files", "--format", "csv")
    assert q.returncode == 0 and q.stdout.split()[-1] == str(s["result"]["jobs"]["checksum"]["entries"]), q.stderr
