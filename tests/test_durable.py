"""--resume after a SIGKILL, and --since reusing an earlier run's per-file results (issue 14, items 3-4).

Oracles: an uninterrupted run of the same job over the same tree (rows and summary, times aside);
xxhash computed here for the files that must be read again; os.lstat for the listing's ctime_ns.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import xxhash

from conftest import exoflow, read_dataset, run_here
from exoflow.cli import _guard, run_job
from exoflow.jobs_registry import load
from exoflow.journal import JOURNAL, STATE, Resumed, listing_parts, read_listing

# Summary keys that differ between two uninterrupted runs too: times, the cluster, how the walk
# happened to cut the listing into parts (chunks), and what was measured of this process's reads.
VARYING = {"started", "wall_s", "files_per_s", "bytes_per_s", "cluster", "time_by_activity", "bytes_read",
           "spilled_bytes", "spilled_by_tier", "chunks", "out", "dataset"}
SECRET = "AKIAIOSFODNN7EXAMPLE"


def make_tree(root: Path, dirs: int = 24, per_dir: int = 100) -> Path:
    for d in range(dirs):
        (root / f"d{d:02}" / "sub").mkdir(parents=True)
        for f in range(per_dir):
            (root / f"d{d:02}" / f"f{f}.txt").write_bytes(f"line {d} {f}\n".encode() * (f % 5))
        (root / f"d{d:02}" / "sub" / "dup.py").write_bytes(b"print('same')\n")      # duplicates for dedup
        (root / f"d{d:02}" / "sub" / f"key{d}.env").write_bytes(f"AWS_KEY={SECRET}\n".encode())
    return root


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return make_tree(tmp_path_factory.mktemp("durable") / "src")


def _rows(path: Path) -> list:
    return sorted(read_dataset(path).to_pylist(), key=lambda r: json.dumps(r, sort_keys=True, default=repr))


def _summary(out: Path) -> dict:
    s = json.loads((out / "summary.json").read_text().replace(str(out), "OUT"))    # paths of outputs in OUT
    return _canonical({k: v for k, v in s.items() if k not in VARYING})


def _canonical(x):
    """Reducers keep ties (equal entropies, sizes …) in the order chunks arrive, which no two runs share:
    lists as sorted multisets, and the rows of a top-N list without their paths (a tie at the cut
    may keep either path)."""
    if isinstance(x, dict):
        return {k: _canonical(v) for k, v in x.items()}
    if isinstance(x, list):
        items = [_canonical([v for v in i if not isinstance(v, str)]) if isinstance(i, list) else _canonical(i)
                 for i in x]
        return sorted(items, key=repr)
    return x


def _journal(out: Path) -> list[dict]:
    try:
        text = (out / STATE / JOURNAL).read_text()
    except OSError:
        return []
    return [json.loads(line) for line in text.split("\n")[:-1] if line]


def _killed(out: Path, delay: str, until, *args: str) -> list[dict]:
    """Start ``exoflow run ARGS --out OUT`` with EXOFLOW_TEST_DELAY=delay, SIGKILL its whole process
    group (client, fork server, workers) once ``until(journal records)`` holds; the records then."""
    env = dict(os.environ, EXOFLOW_TEST_DELAY=delay)
    p = subprocess.Popen([sys.executable, "-m", "exoflow.cli", "run", *args, "--out", str(out), "-q",
                          "--workers", "2", "--no-dashboard"], env=env, start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    try:
        while not until(records := _journal(out)):
            assert p.poll() is None, f"the run ended before the kill: {p.stderr.read().decode()}"
            assert time.monotonic() < deadline, "the run never reached the point to kill it at"
            time.sleep(0.02)
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    assert not _alive(p.pid), f"processes left after the kill: {_alive(p.pid)}"
    return records


def _alive(group: int) -> list[str]:
    """The processes of a process group that are not zombies (waited for up to 5 s)."""
    for _ in range(50):
        ps = subprocess.run(["ps", "-eo", "pid=,pgid=,stat="], capture_output=True, text=True).stdout.split("\n")
        alive = [line for line in ps if line.split()[1:2] == [str(group)] and not line.split()[2].startswith("Z")]
        if not alive:
            return []
        time.sleep(0.1)
    return alive


def _listing_left(records: list[dict]) -> list:
    """The directories the journalled listing parts leave to list (none: the walk is done)."""
    done = Resumed(now=0, listings={r["name"]: r for r in records if r["kind"] == "listing"})
    return done.frontier([], [])[0] if done.listings else ["the root"]


def _count(kind: str, n: int):
    return lambda records: sum(r["kind"] == kind for r in records) >= n


@pytest.fixture(scope="module")
def reference(tree, tmp_path_factory) -> dict[str, Path]:
    """Uninterrupted runs (in this process: the same rows and summary as on a cluster)."""
    base = tmp_path_factory.mktemp("reference")
    outs = {}
    for job in ("checksum", "dedup"):
        outs[job] = base / job
        _run(job, tree, outs[job])
    return outs


def _resume(out: Path, *args: str) -> subprocess.CompletedProcess:
    r = exoflow("run", *args, "--out", str(out), "--resume", "-q", "--workers", "2", "--no-dashboard")
    assert r.returncode == 0, r.stderr
    return r


def test_resume_after_kill_between_chunks(tree, reference, tmp_path):
    out = tmp_path / "out"
    args = ("checksum", str(tree), "--chunk-files", "300")
    records = _killed(out, "chunk=0.4", _count("chunk", 2), *args)
    done = {r["part"]: os.stat(out / "files" / r["part"]).st_ino for r in records if r["kind"] == "chunk"}
    # a part written but not journalled when the kill came: it must not double its rows
    first = next(iter(done))
    (out / "files" / "part-999999.parquet").write_bytes((out / "files" / first).read_bytes())
    _resume(out, *args)
    assert _rows(out / "files") == _rows(reference["checksum"] / "files")
    assert _summary(out) == _summary(reference["checksum"])
    # the journalled chunks were not done again: their parts are the files the killed run wrote
    assert {p: os.stat(out / "files" / p).st_ino for p in done} == done
    assert not (out / "files" / "part-999999.parquet").exists()


def test_resume_after_kill_during_listing(tree, reference, tmp_path):
    out = tmp_path / "out"
    args = ("checksum", str(tree), "--chunk-files", "300")
    records = _killed(out, "list=0.3,chunk=0.3", _count("listing", 1), *args)
    assert _listing_left(records), "the walk was finished before the kill"
    _resume(out, *args)
    assert _rows(out / "files") == _rows(reference["checksum"] / "files")
    assert _summary(out) == _summary(reference["checksum"])
    # listing parts are named L-<run id>-<number>: a task of the killed run still running on a
    # cluster kept running can never write over one the resumed run's chunk tasks read back
    names = [r["name"] for r in _journal(out) if r["kind"] == "listing"]
    killed = {r["name"] for r in records if r["kind"] == "listing"}
    resumed = set(names) - killed
    assert len(set(names)) == len(names) and killed < set(names) and resumed
    run_of = lambda found: {n.split("-")[1] for n in found}       # noqa: E731
    assert len(run_of(resumed)) == 1 and run_of(killed).isdisjoint(run_of(resumed))


def test_resume_after_kill_during_after_step(tree, reference, tmp_path):
    """dedup's stages run after every chunk; a kill there leaves some of their outputs behind."""
    out = tmp_path / "out"
    args = ("dedup", str(tree), "--chunk-files", "300")

    def all_chunks(records):
        listings = [r for r in records if r["kind"] == "listing"]
        return (not _listing_left(records)
                and sum(r["kind"] == "chunk" for r in records) == sum(len(r["chunks"]) for r in listings))

    def after_step_started(records):
        if not all_chunks(records):
            return False
        time.sleep(0.3)          # the client is in the after-step's pause now: leave what a killed stage leaves
        (out / "duplicates").mkdir(exist_ok=True)
        (out / "duplicates" / "part-00000.parquet").write_bytes((out / "files" / records[-1]["part"]).read_bytes())
        (out / "duplicates.txt").write_text("half a report\n")
        return True

    _killed(out, "after=30", after_step_started, *args)
    _resume(out, *args)
    for dataset in ("files", "duplicates"):
        assert _rows(out / dataset) == _rows(reference["dedup"] / dataset)
    assert (out / "duplicates.txt").read_text() == (reference["dedup"] / "duplicates.txt").read_text()
    assert _summary(out) == _summary(reference["dedup"])


def test_resume_usage_errors(tree, reference, tmp_path, capsys):
    """--resume needs this same run's journal: anything else is one line, exit 2, nothing changed."""
    done = reference["checksum"]
    before = sorted(p.name for p in done.rglob("*"))
    other = tmp_path / "other"
    other.mkdir()
    cases = [
        ("checksum", str(tree), "--out", str(tmp_path / "none"), "--resume"),       # no such directory
        ("checksum", str(tree), "--out", str(other), "--resume"),                    # no journal
        ("checksum", str(tree), "--resume"),                                          # no --out
        ("checksum", str(tree / "d01"), "--out", str(done), "--resume"),             # other PATHs
        ("checksum", str(tree), "--chunk-files", "200", "--hash", "sha256", "--out", str(done), "--resume"),
        ("scan", str(tree), "--chunk-files", "200", "--out", str(done), "--resume"),   # another job
    ]
    for job, *args in cases:      # refused before a cluster starts: run here, without the fork server
        code = _guard(lambda: run_job(load(job), args, "exoflow run"), "exoflow")
        err = capsys.readouterr().err
        assert code == 2, (args, err)
        assert len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in done.rglob("*")) == before
    assert os.listdir(other) == []


# ---- --since ------------------------------------------------------------------------

def _run(job: str, tree: Path, out: Path, *flags: str) -> dict:
    return run_here(job, tree, out, *flags, chunk_files=200)


def _change(tree: Path) -> dict[str, Path]:
    """An edit that keeps the size and puts mtime back; a file replaced by another of the same size and
    mtime (new inode); a new file; a removed one."""
    edited, replaced = tree / "d03" / "f4.txt", tree / "d05" / "f9.txt"
    st = os.stat(edited)
    secret = f"AWS_KEY={SECRET}\n".encode()
    edited.write_bytes(secret + b"x" * (st.st_size - len(secret)))       # a finding for scan, same size
    os.utime(edited, ns=(st.st_atime_ns, st.st_mtime_ns))
    st = os.stat(replaced)
    new = replaced.with_name("new-copy")
    new.write_bytes(replaced.read_bytes().upper())
    os.utime(new, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.rename(new, replaced)
    (tree / "d06" / "added.txt").write_bytes(f"AWS_KEY={SECRET}\n".encode())
    (tree / "d07" / "f3.txt").unlink()
    return {"edited": edited, "replaced": replaced}


@pytest.mark.parametrize("job", ["checksum", "codestats", "profile", "scan"])
def test_since_reuses_unchanged_files_and_reads_changed_ones(job, tmp_path):
    tree = make_tree(tmp_path / "src", dirs=8, per_dir=20)
    _run(job, tree, tmp_path / "before")
    old = {r["path"]: r for r in read_dataset(tmp_path / "before" / load(job).dataset).to_pylist()}
    changed = _change(tree)
    s = _run(job, tree, tmp_path / "since", "--since", str(tmp_path / "before"))
    fresh = _run(job, tree, tmp_path / "fresh")
    dataset = load(job).dataset
    assert _rows(tmp_path / "since" / dataset) == _rows(tmp_path / "fresh" / dataset)
    files = fresh["files"]
    if job == "scan":
        # scan's file counts ride in each part's metadata, not in rows: with --since they count the
        # files scanned in this run (documented); findings and the rest are as a fresh run's
        assert s["result"]["scanned_files"] == 3 and fresh["result"]["scanned_files"] == files
        for summary in (s, fresh):
            for k in ("regular_files", "scanned_files", "binary_files", "scanned_bytes", "sarif"):
                summary["result"].pop(k)
    if job == "checksum":
        # hashed counts the files read in this run; the reused ones have their own count
        read = [*changed.values(), tree / "d06" / "added.txt"]
        assert (s["result"]["hashed"], s["result"]["reused"]) == (3, files - 3)
        assert s["result"]["bytes_hashed"] == sum(p.stat().st_size for p in read)
        assert (fresh["result"]["hashed"], fresh["result"]["reused"]) == (files, 0)
        for summary in (s, fresh):
            for k in ("hashed", "reused", "bytes_hashed"):
                summary["result"].pop(k)
    assert _canonical({k: v for k, v in s.items() if k not in VARYING | {"since"}}) == \
        _canonical({k: v for k, v in fresh.items() if k not in VARYING})
    # read: the edited and the replaced file, the new one; every other file reused
    assert s["since"] == {"previous": str(tmp_path / "before"), "files_reused": files - 3, "files_read": 3}
    if job == "checksum":
        rows = {r["path"]: r for r in read_dataset(tmp_path / "since" / "files").to_pylist()}
        for p in changed.values():
            assert rows[str(p)]["xxh3_128"] == xxhash.xxh3_128_hexdigest(p.read_bytes())
            assert rows[str(p)]["xxh3_128"] != old[str(p)]["xxh3_128"]


def test_resumed_since_run_counts_as_the_uninterrupted_one(tmp_path):
    """A --since run killed between chunks and resumed: the chunks it read back from the killed run
    (each journalled with its reused files, which come last in its part) count hashed and reused
    files as an uninterrupted --since run does."""
    tree = make_tree(tmp_path / "src", dirs=8, per_dir=40)
    _run("checksum", tree, tmp_path / "before")
    _change(tree)
    since = ("--since", str(tmp_path / "before"))
    whole = run_here("checksum", tree, tmp_path / "whole", *since, chunk_files=30)["result"]
    args = ("checksum", str(tree), "--chunk-files", "30", *since)
    records = _killed(tmp_path / "out", "chunk=0.4", _count("chunk", 2), *args)
    assert any(r["kind"] == "chunk" and r["reused"] for r in records)
    done = {r["part"]: os.stat(tmp_path / "out" / "files" / r["part"]).st_ino for r in records if r["kind"] == "chunk"}
    _resume(tmp_path / "out", *args)
    assert {p: os.stat(tmp_path / "out" / "files" / p).st_ino for p in done} == done     # read back, not redone
    resumed = json.loads((tmp_path / "out" / "summary.json").read_text())["result"]
    assert (whole["hashed"], whole["reused"]) == (3, whole["files"] - 3)     # _change: 3 read, 1 removed
    for k in ("files", "hashed", "reused", "bytes_hashed", "errors"):
        assert resumed[k] == whole[k], k


def test_since_counts_reused_files_lightly_when_cutting_chunks(tmp_path):
    """A reused file is not read: it takes no bytes of a chunk and a tenth of a file of
    --chunk-files, so each listing part of an unchanged tree is one chunk (counted by hand: 4
    directories of 102 files, 50 files per chunk: at least 9 chunks when every file is read)."""
    tree = make_tree(tmp_path / "src", dirs=4, per_dir=100)
    first = run_here("checksum", tree, tmp_path / "before", chunk_files=50)
    again = run_here("checksum", tree, tmp_path / "since", "--since", str(tmp_path / "before"), chunk_files=50)
    assert first["chunks"] >= -(-first["files"] // 50) >= 9 and again["since"]["files_reused"] == first["files"]
    assert again["chunks"] == len(listing_parts(str(tmp_path / "since")))
    assert _rows(tmp_path / "since" / "files") == _rows(tmp_path / "before" / "files")


def test_since_cut_expects_unchanged_the_files_older_than_the_earlier_run(tmp_path):
    """The cut's estimate, without reading the earlier run: a regular file whose ctime is older
    than the earlier run's start. Counted by hand: 2 of the 4 files are older (one of them now an
    error row), a directory never counts."""
    from exoflow.incremental import expected_unchanged
    listing = pa.table({"type": ["file", "file", "file", "dir", "file"],
                        "error": [None, None, "EACCES", None, None],
                        "ctime_ns": pa.array([10, 30, 10, 10, None], pa.int64()),
                        "mtime_ns": pa.array([10, 10, 10, 10, 15], pa.int64())})   # an object: its mtime
    assert expected_unchanged(listing, 20).tolist() == [True, False, False, False, True]
    assert not expected_unchanged(listing, None).any()


def test_since_cuts_changed_files_as_a_fresh_run_does(tmp_path):
    """Every file touched after the earlier run: none is expected unchanged, so the chunks are as
    many as a fresh run's, and every file is read."""
    tree = make_tree(tmp_path / "src", dirs=4, per_dir=100)
    first = run_here("checksum", tree, tmp_path / "before", chunk_files=50)
    time.sleep(0.01)
    for f in tree.rglob("*"):
        if f.is_file():
            os.chmod(f, 0o644)        # moves ctime: a changed file, read again
    again = run_here("checksum", tree, tmp_path / "since", "--since", str(tmp_path / "before"), chunk_files=50)
    assert again["chunks"] == first["chunks"] and again["since"]["files_reused"] == 0


def test_the_earlier_run_is_prepared_once_and_mapped_alike(tmp_path):
    """``incremental.prepare`` saves the earlier run for every worker; what a worker maps from it
    finds the same rows as what is read straight from the earlier output. A second save to the
    same place (the task run again) leaves the first whole; once its run has ended, a task that
    still asks for it gets one clear error; the run removes it, and what a killed run left."""
    from exoflow.incremental import Earlier, earlier, prepare, remove_prepared
    tree = make_tree(tmp_path / "src", dirs=8, per_dir=20)
    run_here("checksum", tree, tmp_path / "before")
    _change(tree)
    run_here("inventory", tree, tmp_path / "now")
    listing = pa.concat_tables(read_listing(p) for p in listing_parts(str(tmp_path / "now")))
    kind, where = prepare(str(tmp_path / "before"), "files", str(tmp_path / "prepared"))
    assert kind == "mapped"
    loaded, mapped = Earlier.load(str(tmp_path / "before"), "files"), Earlier.mapped(where)
    (same_l, rows_l), (same_m, rows_m) = loaded.split(listing, True), mapped.split(listing, True)
    assert same_l.tolist() == same_m.tolist() and rows_l.equals(rows_m)
    assert int((~same_l & pc.equal(listing.column("type"), "file").to_numpy(zero_copy_only=False)).sum()) == 3
    first = {f.name: f.stat().st_ino for f in Path(where).iterdir()}
    prepare(str(tmp_path / "before"), "files", where)
    assert {f.name: f.stat().st_ino for f in Path(where).iterdir()} == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["before", "now", "prepared", "src"]   # no .tmp left
    with pytest.raises(FileNotFoundError, match="prepared for --since is gone"):
        earlier(("mapped", str(tmp_path / "gone")), "files")
    run_here("checksum", tree, tmp_path / "since", "--since", str(tmp_path / "before"))
    journal_dir = tmp_path / "since" / STATE
    assert not [p for p in journal_dir.iterdir() if p.name.startswith("earlier-")]
    (journal_dir / "earlier-killed00" / "x").mkdir(parents=True)     # what a killed --since run left
    (journal_dir / "earlier-killed00.3f2a.tmp").mkdir()
    kept = sorted(p.name for p in journal_dir.iterdir() if not p.name.startswith("earlier-"))
    remove_prepared(str(journal_dir))                                  # as every run starts
    assert sorted(p.name for p in journal_dir.iterdir()) == kept


def test_since_reads_again_a_file_whose_earlier_row_holds_an_error(tmp_path):
    """An earlier row with an ``error`` (set here by hand in the earlier dataset) is not reused:
    that file is read, and gets its true digest (hashlib's oracle: xxhash's)."""
    import pyarrow.parquet as pq
    tree = make_tree(tmp_path / "src", dirs=2, per_dir=10)
    run_here("checksum", tree, tmp_path / "before", chunk_files=50)
    victim = str(tree / "d01" / "f3.txt")
    for part in (tmp_path / "before" / "files").glob("*.parquet"):
        t = pq.read_table(part)
        hit = pc.equal(t.column("path"), victim)
        if pc.any(hit).as_py():
            t = t.set_column(t.schema.get_field_index("error"), "error",
                             pc.if_else(hit, pa.scalar("EIO: input/output error"), t.column("error")))
            t = t.set_column(t.schema.get_field_index("xxh3_128"), "xxh3_128",
                             pc.if_else(hit, pa.scalar(None, pa.string()), t.column("xxh3_128")))
            pq.write_table(t, part)
    s = run_here("checksum", tree, tmp_path / "since", "--since", str(tmp_path / "before"), chunk_files=50)
    assert s["since"]["files_read"] == 1 and s["errors"] == 0
    rows = {r["path"]: r for r in read_dataset(tmp_path / "since" / "files").to_pylist()}
    assert rows[victim]["xxh3_128"] == xxhash.xxh3_128_hexdigest(open(victim, "rb").read())


def test_listing_ctime_is_lstat_ctime(tmp_path):
    tree = make_tree(tmp_path / "src", dirs=2, per_dir=5)
    _run("checksum", tree, tmp_path / "out")
    parts = listing_parts(str(tmp_path / "out"))
    rows = [r for p in parts for r in read_listing(p).to_pylist()]
    assert rows and all(r["ctime_ns"] == os.lstat(r["path"]).st_ctime_ns for r in rows)


def test_since_reads_an_earlier_exoflow_s_parquet_listing(tmp_path):
    """Listing parts were Parquet before they were Arrow IPC files: an output of then still serves --since."""
    import pyarrow.parquet as pq
    tree = make_tree(tmp_path / "src", dirs=8, per_dir=10)
    _run("checksum", tree, tmp_path / "before")
    for part in listing_parts(str(tmp_path / "before")):
        pq.write_table(read_listing(part), part.removesuffix(".arrow") + ".parquet")
        os.unlink(part)
    assert all(p.endswith(".parquet") for p in listing_parts(str(tmp_path / "before")))
    _change(tree)
    s = _run("checksum", tree, tmp_path / "since", "--since", str(tmp_path / "before"))
    assert s["since"]["files_read"] == 3 and s["since"]["files_reused"] == s["files"] - 3


def test_since_usage_errors(tmp_path, capsys):
    tree = make_tree(tmp_path / "src", dirs=2, per_dir=5)
    before = tmp_path / "before"
    _run("checksum", tree, before)
    old = tmp_path / "old"                     # an output of exoflow before --since: no listing kept
    _run("checksum", tree, old)
    import shutil
    shutil.rmtree(old / STATE)
    unfinished = tmp_path / "unfinished"
    shutil.copytree(before, unfinished)
    (unfinished / "summary.json").unlink()
    cases = {
        ("scan", "--since", str(before)): "holds a checksum run, not scan",
        ("checksum", "--since", str(old)): "no listing of an exoflow run",
        ("checksum", "--since", str(tmp_path / "nothing")): "no such directory (give the --out directory of an "
                                                            "earlier checksum run)",
        ("checksum", "--since", str(before / "summary.json")): "not a directory",
        ("checksum", "--since", str(tree)): "no listing of an exoflow run",
        ("checksum", "--hash", "sha256", "--since", str(before)): "other checksum options (--hash)",
        ("checksum", "--since", str(unfinished)): "did not finish",
        ("inventory", "--since", str(before)): "reads no file contents",
    }
    for (job, *flags), message in cases.items():      # refused before a cluster starts
        code = _guard(lambda: run_job(load(job), [str(tree), *flags, "--out", str(tmp_path / "out")],
                                      "exoflow run"), "exoflow")
        err = capsys.readouterr().err
        assert code == 2 and message in err, (job, flags, err)
        assert len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "out").exists()
    inventory, made = tmp_path / "inventory", tmp_path / "made"
    _run("inventory", tree, inventory)
    assert exoflow("run", "checksum", str(tree), "--out", str(made), "-q").returncode == 0   # an OUT --overwrite may replace
    for job, since, out, message in (
            ("checksum", made, made, "the same directory as --out"),    # --overwrite would remove it first
            ("checksum", inventory, tmp_path / "out", "holds an inventory run, not checksum")):
        listed = sorted(p.name for p in since.rglob("*"))
        code = _guard(lambda: run_job(load(job), [str(tree), "--since", str(since), "--out", str(out), "--overwrite"],
                                      "exoflow run"), "exoflow")
        err = capsys.readouterr().err
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
        assert sorted(p.name for p in since.rglob("*")) == listed and not (tmp_path / "out").exists()
    r = exoflow("run", "checksum", str(tree), "--since", str(old), "--out", str(tmp_path / "out"))   # as a user sees it
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no listing" in r.stderr, r.stderr
