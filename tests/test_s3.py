"""Object storage: moto's S3 server on loopback holds a tree of a few thousand objects (nested
prefixes, empty objects, names with spaces and non-ASCII, objects over the piece size); a local
directory holds the same files. Inventory, checksum, dedup and scan over ``s3://`` must give what
they give over the local copy, and what independent oracles say: hashlib's SHA-256 of each file,
the MD5 S3 gives as ETag, duplicate groups counted by hand from the contents. Store errors are
one line and exit 2 before anything starts; an object that changes or goes after the listing is an
error row."""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from conftest import dask_cluster, exoflow, free_port, read_dataset, run_config, run_here

pytest.importorskip("s3fs", reason="object storage needs s3fs (exoflow[s3], in the test extra)")
pytest.importorskip("moto.server", reason="the S3 server of these tests is moto[server] (in the test extra)")

BUCKET = "tree"
PIECE = 4096                  # --piece-size: objects over it are streamed in ranged reads
N = 2000
AWS = "AKIA" + "Q7XK2M4PZR6TYW3N"      # a key the scan finds (as in test_scan)


def contents() -> dict[str, bytes]:
    """Relative path -> bytes: nested prefixes, empty files, names with spaces and non-ASCII, and
    under d0/ (what the content jobs read: moto serves ~100 objects/s on a loaded machine) repeated
    contents (duplicates), secrets for scan and objects over PIECE (two of them equal)."""
    files = {}
    for i in range(N):
        name = f"d{i % 7}/s{i % 5}/{'naïve file' if i % 11 == 0 else 'f'} {i}.txt"
        if i % 13 == 0:
            name = f"d{i % 7}/日本/{i}.txt"
        body = b"x" * i + str(i).encode()        # sizes differ: dedup reads only what may repeat
        if i % 50 == 25:
            body = f"copy {i % 3}\n".encode()
        elif i % 97 == 0:
            body = b""
        elif i % 350 == 0:                        # in d0
            body += f"\naws_key = {AWS}\n".encode()
        files[name] = body
    big = bytes(range(256)) * 64          # 16 KiB: streamed in 4 pieces
    files["d0/big/one.bin"] = big
    files["d0/big/two copy.bin"] = big
    files["d0/big/other.bin"] = big[::-1]
    files["top.txt"] = b"top\n"
    return files


def in_d0(files: dict[str, bytes]) -> dict[str, bytes]:
    return {k[3:]: v for k, v in files.items() if k.startswith("d0/")}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """(storage options JSON, s3fs file system, local copy, contents) with the objects under s3://tree/data."""
    import s3fs
    from moto.server import ThreadedMotoServer
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    options = {"key": "testing", "secret": "testing",
               "client_kwargs": {"endpoint_url": f"http://127.0.0.1:{port}", "region_name": "us-east-1"}}
    fs = s3fs.S3FileSystem(**options, skip_instance_cache=True)
    fs.call_s3("create_bucket", Bucket=BUCKET)
    files = contents()
    # the bulk straight into the server's store (a PUT through HTTP costs ~10 ms here); the big ones
    # through HTTP; every read in the tests goes through HTTP
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    for k, v in files.items():
        if "/big/" not in k:
            backend.put_object(BUCKET, f"data/{k}", v)
    fs.pipe({f"{BUCKET}/data/{k}": v for k, v in files.items() if "/big/" in k})
    local = tmp_path_factory.mktemp("local") / "data"
    for k, v in files.items():
        (local / k).parent.mkdir(parents=True, exist_ok=True)
        (local / k).write_bytes(v)
    yield json.dumps(options), fs, local, files
    server.stop()


def _rel(paths: list[str], root: str) -> list[str]:
    return [p[len(root) + 1:] for p in paths]


def table(out: Path, dataset: str, root: str):
    t = read_dataset(out / dataset).to_pandas()
    return t.assign(rel=_rel(t["path"].tolist(), root))


def run_to_url(spec: str, root: str, url: str, scratch: Path, *flags: str) -> dict:
    """``run_here`` with ``--out URL``: the parts, after-step outputs, summary.json and report.html
    written to the store (in this process; the CLI tests below use workers in other processes)."""
    from exoflow.executors import InProcess
    from exoflow.runner import run
    cfg = run_config(spec, root, scratch, *flags, chunk_files=500)
    os.rmdir(cfg.out_dir)        # run_config made it
    cfg.out_dir = url
    return run(InProcess(), cfg)


RUN_FLAGS = {"inventory": (), "checksum+scan": ("--hash", "sha256", "--piece-size", str(PIECE)), "dedup": ()}


@pytest.fixture(scope="module")
def runs(store, tmp_path_factory):
    """Each job over the bucket and over the local copy, in this process: {job: {"s3"|"local": out}}."""
    storage, _, local, _ = store
    base = tmp_path_factory.mktemp("runs")
    roots = {"s3": f"s3://{BUCKET}/data", "local": str(local)}
    # the content jobs over d0/; checksum and scan in one composed run, so the objects are read once
    got = {}
    for job, fl in RUN_FLAGS.items():
        below = "" if job == "inventory" else "/d0"
        for kind, root in roots.items():
            out = base / f"{job}-{kind}"
            extra = ("--storage-options", storage) if kind == "s3" else ()
            summary = run_here(job, root + below, out, *extra, *fl, chunk_files=500)
            got.setdefault(job, {})[kind] = (out, root + below, summary)
    return got


@pytest.fixture(scope="module")
def url_runs(store, runs, tmp_path_factory):
    """``runs``' s3 runs again with --out s3://tree/out/JOB: {job: (that URL, summary)}."""
    storage = store[0]
    scratch = tmp_path_factory.mktemp("unused")
    got = {}
    for job, (_, root, _) in {job: kinds["s3"] for job, kinds in runs.items()}.items():
        url = f"s3://{BUCKET}/out/{job}"
        got[job] = (url, run_to_url(job, root, url, scratch / job, "--storage-options", storage, *RUN_FLAGS[job]))
    return got


def test_inventory_lists_the_objects_as_the_tree(runs, store):
    _, _, _, files = store
    frames = {k: table(out, "files", root) for k, (out, root, _) in runs["inventory"].items()}
    s3, local = frames["s3"], frames["local"]
    files_s3 = s3[s3["type"] == "file"].set_index("rel")
    files_local = local[local["type"] == "file"].set_index("rel")
    assert sorted(files_s3.index) == sorted(files_local.index) == sorted(files)
    assert (files_s3["size"] == files_local["size"].loc[files_s3.index]).all()
    for col in ("depth", "top_dir"):
        assert (files_s3[col] == files_local[col].loc[files_s3.index]).all(), col
    assert sorted(s3[s3["type"] == "dir"]["rel"]) == sorted(local[local["type"] == "dir"]["rel"])
    # S3's ETag of a single-part upload is the MD5 of the bytes (oracle: hashlib)
    assert all(files_s3["etag"][k] == hashlib.md5(v).hexdigest() for k, v in files.items())
    assert set(files_s3["storage_class"]) == {"STANDARD"}
    assert files_s3["inode"].isna().all() and files_local["etag"].isna().all()
    assert s3["error"].isna().all()


def test_checksum_hashes_byte_for_byte(runs, store):
    _, _, _, files = store
    for kind, (out, root, summary) in runs["checksum+scan"].items():
        t = table(out / "checksum", "files", root)
        got = dict(zip(t[t["type"] == "file"]["rel"], t[t["type"] == "file"]["sha256"]))
        assert got == {k: hashlib.sha256(v).hexdigest() for k, v in in_d0(files).items()}, kind
        assert summary["errors"] == 0


def _groups(out: Path, root: str) -> set[frozenset[str]]:
    t = table(out, "duplicates", root)
    found = defaultdict(set)
    for gid, rel in zip(t["group_id"], t["rel"]):
        found[gid].add(rel)
    return {frozenset(g) for g in found.values()}


def test_dedup_finds_the_same_groups(runs, store):
    _, _, _, files = store
    by_content = defaultdict(set)
    for k, v in in_d0(files).items():
        if v:                             # dedup leaves empty files out by default
            by_content[v].add(k)
    expected = {frozenset(g) for g in by_content.values() if len(g) > 1}
    assert frozenset({"big/one.bin", "big/two copy.bin"}) in expected and len(expected) > 2
    for kind, (out, root, _) in runs["dedup"].items():
        assert _groups(out, root) == expected, kind


def test_scan_finds_the_same_findings(runs, store):
    found = {}
    for kind, (out, root, _) in runs["checksum+scan"].items():
        t = table(out / "scan", "findings", root)
        t = t[t["rule"].notna()]
        found[kind] = sorted(zip(t["rel"], t["rule"], t["line"], t["column"]))
    assert found["s3"] == found["local"]
    planted = {k for k, v in in_d0(store[3]).items() if AWS.encode() in v}
    assert len(planted) > 2 and {rel for rel, rule, *_ in found["s3"] if "aws" in rule.lower()} == planted


def _store_table(fs, url: str):
    """A Parquet dataset under ``url`` read back from the store, as a table."""
    import pyarrow.dataset as ds
    return ds.dataset(url.split("://", 1)[1], filesystem=fs, format="parquet").to_table()


def _sorted(t):
    keys = [c for c in ("path", "group_id", "line", "column", "rule") if c in t.column_names]
    return t.sort_by([(k, "ascending") for k in keys]).to_pydict()


OUTPUTS = {"inventory": (["files"], []), "checksum+scan": (["checksum/files", "scan/findings"], ["scan/scan.sarif"]),
           "dedup": (["files", "duplicates"], ["duplicates.txt"])}


@pytest.mark.parametrize("job", list(OUTPUTS))
def test_out_url_holds_what_a_local_out_holds(runs, url_runs, store, job):
    """Oracle: the same run (the same objects, options and chunks) with a local --out: every dataset
    equal row for row, the text outputs byte for byte, summary.json's counts and results the same."""
    _, fs, _, _ = store
    local, _, local_summary = runs[job]["s3"]
    url, summary = url_runs[job]
    datasets, texts = OUTPUTS[job]
    for name in datasets:
        want = read_dataset(local / name)
        got = _store_table(fs, f"{url}/{name}")
        assert got.schema == want.schema and _sorted(got) == _sorted(want), name
        assert got.num_rows > 0, name
    for name in texts:
        assert fs.cat(f"{url.split('://', 1)[1]}/{name}") == (local / name).read_bytes(), name
    written = json.loads(fs.cat(f"{url.split('://', 1)[1]}/summary.json"))
    assert written["out"] == url and written["dataset"] == summary["dataset"]
    for k in ("files", "bytes", "errors", "entries"):
        assert written[k] == local_summary[k], k
    # the results name their files under OUT: the local one's, spelled as the URL
    assert written["result"] == json.loads(json.dumps(local_summary["result"], default=str).replace(str(local), url))
    assert fs.exists(f"{url.split('://', 1)[1]}/report.html")
    # nothing staged: no temporary parts, no after-step pieces left under the URL
    left = [p for p in fs.find(url.split("://", 1)[1]) if ".tmp" in p or "-parts/" in p]
    assert left == []


def test_since_reuses_objects_whose_etag_size_and_mtime_are_unchanged(store, tmp_path):
    storage, fs, _, files = store
    root = f"s3://{BUCKET}/data/d1/s1"
    flags = ("--storage-options", storage, "--hash", "sha256")
    run_here("checksum", root, tmp_path / "first", *flags, chunk_files=500)
    name = "d1/s1/f 1.txt"     # b"x1": another byte of the same size, in the same second
    fs.pipe(f"{BUCKET}/data/{name}", b"y1")
    try:
        summary = run_here("checksum", root, tmp_path / "again", *flags, "--since", str(tmp_path / "first"),
                           chunk_files=500)
    finally:
        fs.pipe(f"{BUCKET}/data/{name}", files[name])
    mine = [k for k in files if k.startswith("d1/s1/")]
    assert summary["since"]["files_read"] == 1
    assert summary["since"]["files_reused"] == len(mine) - 1
    t = table(tmp_path / "again", "files", f"s3://{BUCKET}/data")
    assert dict(zip(t["rel"], t["sha256"])) == {k: hashlib.sha256(b"y1" if k == name else files[k]).hexdigest()
                                                for k in mine}


def test_overlapping_urls_are_listed_once(store):
    from exoflow.options import WalkOptions
    from exoflow.runner import plan
    root = f"s3://{BUCKET}/data"
    p = plan([f"{root}/d0", root + "/", f"{root}/top.txt", f"{root}/d1/s1/f 1.txt", str(store[2])], WalkOptions(),
             storage=store[0])
    assert [d.path for d in p.dirs] == [str(store[2]), root] and p.files == []
    assert sorted(m[0] for m in p.merged) == [f"{root}/d0", f"{root}/d1/s1/f 1.txt", f"{root}/top.txt"]


def test_objects_that_change_after_the_listing_are_error_rows(store):
    from exoflow.batch import CHANGED, RESIZED, load, stream
    from exoflow.options import LoadOptions, WalkOptions
    from exoflow.sources.objects import Lister, Prefix
    storage, fs, _, _ = store
    root = f"s3://{BUCKET}/moving"
    bodies = {"gone.txt": b"soon gone", "resized.txt": b"short", "same.txt": b"kept",
              "big.bin": b"a" * (3 * PIECE), "big-gone.bin": b"b" * (3 * PIECE)}
    fs.pipe({f"{BUCKET}/moving/{k}": v for k, v in bodies.items()})
    lister = Lister(WalkOptions(), storage)
    lister.run([Prefix(root, 0, None, root)], 10_000)
    listing = lister.out.table()
    fs.rm([f"{BUCKET}/moving/gone.txt", f"{BUCKET}/moving/big-gone.bin"])
    fs.pipe(f"{BUCKET}/moving/resized.txt", b"longer than before")
    fs.pipe(f"{BUCKET}/moving/big.bin", b"c" * (3 * PIECE))       # same size, another version
    batch = load(listing, LoadOptions(piece_bytes=PIECE, storage_options=storage))
    rel = _rel(listing.column("path").to_pylist(), root)
    errors = dict(zip(rel, batch.errors))
    assert errors["gone.txt"].startswith("ENOENT")
    assert errors["resized.txt"] == RESIZED
    assert errors["same.txt"] is None and bytes(batch.content(rel.index("same.txt"))) == b"kept"
    assert batch.large[rel.index("big.bin")] and batch.large[rel.index("big-gone.bin")]
    with pytest.raises(OSError, match=CHANGED):
        b"".join(batch.pieces(rel.index("big.bin")))
    with pytest.raises(OSError, match="ENOENT"):
        b"".join(batch.pieces(rel.index("big-gone.bin")))
    assert b"".join(stream(f"{root}/big.bin", PIECE, storage)) == b"c" * (3 * PIECE)   # no listing to differ from
    pieces = stream(f"{root}/big.bin", PIECE, storage)
    assert bytes(next(pieces)) == b"c" * PIECE
    fs.pipe(f"{BUCKET}/moving/big.bin", b"d" * (3 * PIECE))      # changed while it is read
    with pytest.raises(OSError, match=CHANGED):
        list(pieces)
    assert pc.all(pc.is_null(listing.column("inode"))).as_py()


def test_cli_runs_on_the_embedded_cluster_and_writes_to_out_url(store, tmp_path):
    """Workers in other processes get the storage options: the CLI's checksum equals the oracle; its
    output, written under --out s3://…, holds the dataset and a summary that says where it is; the
    working directory holds nothing (no local copy)."""
    import pyarrow.dataset as ds
    storage, fs, _, files = store
    root = f"s3://{BUCKET}/data"
    out = f"s3://{BUCKET}/results/one"
    r = exoflow("run", "checksum", f"{root}/d0/big", "--storage-options", storage, "--piece-size", str(PIECE),
                "--hash", "sha256", "--workers", "2", "--out", out, "-q", cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert list(tmp_path.iterdir()) == []
    assert json.loads(fs.cat(f"{BUCKET}/results/one/summary.json"))["out"] == out
    t = ds.dataset(f"{BUCKET}/results/one/files", filesystem=fs, format="parquet").to_table().to_pandas()
    got = dict(zip(_rel(t["path"].tolist(), f"{root}"), t["sha256"]))
    assert got == {k: hashlib.sha256(v).hexdigest() for k, v in files.items() if k.startswith("d0/big/")}


def test_workers_elsewhere_write_the_parts_to_the_store(store, tmp_path):
    """A cluster whose workers run in another directory, a client in a third with its own TMPDIR:
    dedup's parts, its after-step's groups and duplicates.txt, summary.json and report.html land
    under the URL, and no directory of the client's or the workers' holds anything."""
    storage, fs, _, files = store
    client, workers, tmp = (tmp_path / n for n in ("client", "workers", "tmp"))
    for d in (client, workers, tmp):
        d.mkdir()
    out = f"s3://{BUCKET}/results/elsewhere"
    with dask_cluster(1, 2, cwd=str(workers)) as (addr, _):
        r = exoflow("run", "dedup", f"s3://{BUCKET}/data/d0/big", "--storage-options", storage, "--scheduler", addr,
                    "--out", out, "-q", cwd=str(client), env={**os.environ, "TMPDIR": str(tmp)})
    assert r.returncode == 0, r.stderr
    assert [list(d.iterdir()) for d in (client, workers, tmp)] == [[], [], []]
    held = {p.split("/results/elsewhere/", 1)[1] for p in fs.find(f"{BUCKET}/results/elsewhere")}
    assert {"summary.json", "report.html", "duplicates.txt"} <= held
    assert any(h.startswith("files/part-") for h in held) and any(h.startswith("duplicates/part-") for h in held)
    report = fs.cat(f"{BUCKET}/results/elsewhere/duplicates.txt").decode()
    assert "one.bin" in report and "two copy.bin" in report and "other.bin" not in report


FAILING_JOB = """
import dataclasses
from exoflow.composed import load

def after(f):
    raise RuntimeError("the after-step failed on purpose")

job = dataclasses.replace(load("inventory"), name="failing", after=after)
"""


def test_a_failed_run_leaves_nothing_under_the_url(store, tmp_path):
    """Parts written by the workers, then the after-step fails: exit 3, one line, and the URL holds
    nothing (as before the run)."""
    storage, fs, _, _ = store
    job = tmp_path / "failing.py"
    job.write_text(FAILING_JOB)
    out = f"s3://{BUCKET}/results/failed"
    r = exoflow("run", str(job), f"s3://{BUCKET}/data/d1", "--storage-options", storage, "--workers", "1",
                "--out", out, "-q", cwd=str(tmp_path))
    assert r.returncode == 3, r.stderr
    assert "failed on purpose" in r.stderr and "Traceback" not in r.stderr
    assert fs.find(f"{BUCKET}/results/failed") == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["failing.py"]


def test_an_interrupted_run_leaves_nothing_under_the_url(store, tmp_path):
    """Ctrl-C once the workers' parts are in the store (the after-step held back): exit 130, one
    line, and the URL holds nothing."""
    storage, fs, _, _ = store
    out = f"{BUCKET}/results/interrupted"
    p = subprocess.Popen([sys.executable, "-m", "exoflow.cli", "run", "checksum", f"s3://{BUCKET}/data/d1/s1",
                          "--storage-options", storage, "--workers", "1", "--out", f"s3://{out}", "-q"],
                         cwd=str(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "EXOFLOW_TEST_DELAY": "after=60"})
    try:
        deadline = time.time() + 60
        while not any("/files/part-" in f for f in fs.find(out)) and time.time() < deadline:
            time.sleep(0.2)
        assert any("/files/part-" in f for f in fs.find(out)), "no part reached the store"
        p.send_signal(signal.SIGINT)
        err = p.communicate(timeout=60)[1]
    finally:
        p.kill()
    assert p.returncode == 130, err
    assert "nothing is left under" in err and "Traceback" not in err, err
    fs.invalidate_cache()         # this file system listed the prefix while the run wrote there
    assert fs.find(out) == [] and list(tmp_path.iterdir()) == []


def _run_list(listing: str, out: Path, *flags: str) -> dict:
    """``exoflow run checksum --from-list LISTING --out OUT FLAGS`` in this process."""
    from exoflow.composed import load
    from exoflow.config import configure, run_parser
    from exoflow.executors import InProcess
    from exoflow.runner import run
    job = load("checksum")
    cfg = configure(job, run_parser(job, "test").parse_args(["--from-list", listing, "--chunk-files", "7",
                                                             "--hash", "sha256", *flags])).run
    cfg.out_dir = str(out)
    out.mkdir()
    return run(InProcess(), cfg)


def test_from_list_of_object_urls(store, tmp_path):
    """--from-list with object URLs (and a local path beside them): each object hashed as hashlib
    says, an object that does not exist an error row; the same list read from S3 gives the same."""
    storage, fs, local, files = store
    names = sorted(k for k in files if k.startswith("d2/s3/"))[:12] + ["d0/big/one.bin"]
    missing = f"s3://{BUCKET}/data/d2/no such object.txt"
    entries = [f"s3://{BUCKET}/data/{k}" for k in names] + [missing, str(local / "top.txt")]
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(entries) + "\n")
    fs.pipe(f"{BUCKET}/lists/list.txt", listing.read_bytes())
    want = {f"s3://{BUCKET}/data/{k}": hashlib.sha256(files[k]).hexdigest() for k in names}
    want[str(local / "top.txt")] = hashlib.sha256(b"top\n").hexdigest()
    for kind, source in (("local list", str(listing)), ("list on S3", f"s3://{BUCKET}/lists/list.txt")):
        summary = _run_list(source, tmp_path / kind, "--storage-options", storage, "--piece-size", str(PIECE))
        t = read_dataset(tmp_path / kind / "files").to_pandas().set_index("path")
        assert dict(t["sha256"].dropna()) == want, kind
        assert t["error"][missing].startswith("ENOENT"), kind
        assert t["error"].notna().sum() == 1 and summary["errors"] == 1, kind


def test_from_list_url_that_is_not_there_is_one_line(store, tmp_path):
    code, err = _cli("inventory", "--from-list", f"s3://{BUCKET}/lists/none.txt", "--storage-options", store[0],
                     "--out", str(tmp_path / "out"))
    assert code == 2 and "ENOENT" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def _cli(*args: str) -> tuple[int, str]:
    """``exoflow run ARGS`` in this process (as test_durable does): (exit code, stderr)."""
    import contextlib
    import io

    from exoflow.cli import _guard, run_job
    from exoflow.composed import load
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            code = _guard(lambda: run_job(load(args[0]), list(args[1:]), f"exoflow run {args[0]}"), "exoflow")
        except SystemExit as e:       # argparse's usage errors
            code = e.code
    return code, err.getvalue()


@pytest.mark.parametrize("what", ["no bucket", "no prefix", "bad endpoint", "bad json", "not an object",
                                  "action", "denied", "unknown key", "out taken", "out no bucket"])
def test_store_errors_are_one_line_exit_2_and_leave_nothing(store, tmp_path, monkeypatch, what):
    import boto3
    import moto.settings
    storage, _, _, _ = store
    options = json.loads(storage)
    url = f"s3://{BUCKET}/data"
    if what in ("denied", "unknown key"):     # moto checks credentials and IAM policies from now on
        ep = options["client_kwargs"]["endpoint_url"]
        iam = boto3.client("iam", endpoint_url=ep, region_name="us-east-1", aws_access_key_id="testing",
                           aws_secret_access_key="testing")
        user = f"nobody-{free_port()}"        # a user without any policy
        iam.create_user(UserName=user)
        key = iam.create_access_key(UserName=user)["AccessKey"]
        options.update(key=key["AccessKeyId"], secret=key["SecretAccessKey"]) if what == "denied" else \
            options.update(key="AKIAUNKNOWNUNKNOWN000", secret="wrong")
        monkeypatch.setattr(moto.settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
    args = {"denied": ["inventory", url, "--storage-options", json.dumps(options)],
            "unknown key": ["inventory", url, "--storage-options", json.dumps(options)],
            "no bucket": ["inventory", "s3://no-such-bucket/x", "--storage-options", storage],
            "no prefix": ["inventory", f"s3://{BUCKET}/nothing-here", "--storage-options", storage],
            "bad endpoint": ["inventory", url, "--storage-options", json.dumps(
                {**options, "client_kwargs": {"endpoint_url": f"http://127.0.0.1:{free_port()}"}})],
            "bad json": ["inventory", url, "--storage-options", "{'key': 1}"],
            "not an object": ["inventory", url, "--storage-options", "[1]"],
            "action": ["dedup", url, "--storage-options", storage, "--action", "hardlink"],
            "out taken": ["inventory", url, "--storage-options", storage],        # data/ holds the tree
            "out no bucket": ["inventory", url, "--storage-options", storage]}[what]
    out = tmp_path / "out"
    out_url = {"out taken": url, "out no bucket": "s3://no-such-bucket/results"}.get(what)
    code, err = _cli(*args, "--out", out_url or str(out))
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    expected = {"no bucket": "ENOENT", "no prefix": "ENOENT", "bad endpoint": "Could not connect",
                "bad json": "not valid JSON", "not an object": "JSON object", "action": "--action",
                "denied": "EACCES", "unknown key": "EACCES", "out taken": "stored there already",
                "out no bucket": "ENOENT"}[what]
    assert expected in err
    assert not out.exists()


# ---- a flat prefix's listing, split over tasks ---------------------------------------

def flat_names() -> set[str]:
    """The names under s3://flat/many: a numbered sequence and names made to straddle the cuts
    (``objects.cut``): shared starts (``0``, ``00``, ``0010`` …: names that are cuts themselves),
    non-ASCII (2, 3 and 4 UTF-8 bytes), spaces, characters below and above the digits, and a name
    ``m`` beside a sub-prefix ``m/`` and ``m0``."""
    names = {f"{i:05d}" for i in range(2000)}
    names |= {"0", "00", "000", "0001", "00010", "0002", "001", "01", "1", "2", "9", "99999", "a", "a0", "a00",
              "aa", "aaa", "é", "ée", "日本", "日本語", "😀", "z😀", "with space", " lead", "!", "~", "~~", "m",
              "m0", "m/x", "m/y", "日本/z"}
    return names


@pytest.fixture(scope="module")
def flat(store):
    """(storage options, the bucket ``flat``): ``many/`` holds ``flat_names``; ``k1000/`` and
    ``k1001/`` hold 1,000 and 1,001 keys, one and just over one S3 page."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends
    storage, fs, _, _ = store
    fs.call_s3("create_bucket", Bucket="flat")
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    keys = {f"many/{n}" for n in flat_names()} | {f"k{n}/{i:04d}" for n in (1000, 1001) for i in range(n)}
    for k in keys:
        backend.put_object("flat", k, b"")
    return storage, keys


@pytest.mark.parametrize("prefix, page", [("many", 40), ("k1000", 1000), ("k1001", 1000)])
def test_a_flat_prefix_is_listed_in_ranges_by_several_tasks(flat, monkeypatch, prefix, page):
    """Listing tasks as the client runs them (each a Lister with a budget of rows, handing back what
    it did not reach): every key once (oracle: the keys put), no task over its budget and one page."""
    from exoflow.options import WalkOptions
    from exoflow.sources import objects
    storage, keys = flat
    monkeypatch.setattr(objects, "PAGE", page)
    root, budget = f"s3://flat/{prefix}", 150
    stack, listed, tasks = [objects.Prefix(root, 0, None, root)], [], 0
    while stack:
        lister = objects.Lister(WalkOptions(hidden=True), storage)
        stack = lister.run(stack[:4], budget) + stack[4:]
        rows = lister.out.table().column("path").to_pylist()
        assert len(rows) <= budget + page
        listed += rows
        tasks += 1
    want = [f"s3://flat/{k}" for k in keys if k.startswith(prefix + "/")]
    assert len(listed) == len(set(listed)) and sorted(listed) == sorted(want)
    assert tasks > 1 if len(want) > page else tasks == 1


def test_a_flat_prefix_spreads_over_listing_tasks_in_a_run(flat, monkeypatch, tmp_path):
    """A whole inventory run: more than one listing task lists the one prefix (their keys counted
    as the executor runs them), and the rows are the keys put."""
    from exoflow import runner
    from exoflow.executors import InProcess
    from exoflow.sources import objects
    storage, keys = flat
    monkeypatch.setattr(objects, "PAGE", 40)
    monkeypatch.setattr(runner, "BUDGET", (150, 60.0))

    class Counting(InProcess):
        parts: list[int] = []

        def submit(self, fn, *args, key=None, **kw):
            done = super().submit(fn, *args, key=key, **kw)
            if key and key.startswith("exoflow-list-"):
                self.parts.append(done.result()["files"])     # a listing task answers its meta
            return done

    ex = Counting()
    run_here("inventory", "s3://flat/many", tmp_path / "out", "--storage-options", storage, "--hidden",
             executor=ex, chunk_files=500)
    t = read_dataset(tmp_path / "out" / "files")
    assert sorted(t.column("path").to_pylist()) == sorted(f"s3://flat/{k}" for k in keys if k.startswith("many/"))
    assert len(ex.parts) > 1 and max(ex.parts) <= 150 + 40


def test_a_resumed_run_lists_the_ranges_left_not_their_prefix():
    """--resume's frontier knows a range by its prefix and bounds (``Prefix.ident``): a root whose
    first listing was journalled leaves its ranges to list, not the whole prefix again."""
    from exoflow.journal import Resumed, pack
    from exoflow.sources.objects import Prefix
    root = Prefix("s3://b/p", 0, None, "s3://b/p")
    r1, r2 = (Prefix(root.path, 0, None, root.root, after=a, until=u) for a, u in (("0039", "005"), ("005", None)))
    r1a = Prefix(root.path, 0, None, root.root, after="0049", until="005")
    done = Resumed(0.0, {"L1": {"finished": [root.ident], "left": pack([r1, r2])},
                         "L2": {"finished": [r1.ident], "left": pack([r1a])}})
    assert done.frontier([root], []) == ([r2, r1a], [])


def test_cut_covers_the_rest_of_a_range_exactly():
    """``cut``'s ranges follow one another from the page's last name to the range's end, each
    non-empty as strings (after < until), at most SPLIT of them; oracle: a sorted list of names
    (random, non-ASCII) split at the cuts holds each name after the page once."""
    import bisect
    import random

    from exoflow.sources.objects import SPLIT, cut
    rng = random.Random(7)
    alphabet = "0123456789abz é日😀-_."
    for _ in range(200):
        names = sorted({"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6))) for _ in range(300)})
        k = rng.randint(1, len(names) - 2)
        until = rng.choice([None, names[rng.randint(k, len(names) - 1)]])
        ranges = cut(names[:k], until)
        assert 1 <= len(ranges) <= SPLIT and ranges[0][0] == names[k - 1] and ranges[-1][1] == until
        assert all(a < b for a, b in ranges if b is not None)
        assert all(ranges[i][1] == ranges[i + 1][0] for i in range(len(ranges) - 1))
        rest = [n for n in names[k:] if until is None or n <= until]
        covered = [n for a, b in ranges for n in names[bisect.bisect_right(names, a):
                                                         bisect.bisect_right(names, b) if b else len(names)]]
        assert covered == rest


# ---- ignore files in a store ---------------------------------------------------------

IGNORED_TREE = {
    ".gitignore": b"*.log\n!keep.log\n/build/\nsecret*\ndocs/*.md\n",
    "a.txt": b"a", "b.log": b"b", "keep.log": b"k", "secret.key": b"s", "build/x.txt": b"x",
    "build/.gitignore": b"!*\n",                 # inside an ignored directory: never read
    "docs/guide.md": b"g", "docs/deep/more.md": b"m", "docs/index.txt": b"i",
    "sub/.gitignore": b"*.txt\n!important.txt\nbuild/\n", "sub/c.txt": b"c", "sub/important.txt": b"i",
    "sub/d.md": b"d", "sub/build/y.md": b"y", "sub/deeper/e.txt": b"e", "sub/deeper/f.md": b"f",
    "sub/deeper/.gitignore": b"!e.txt\n",        # re-includes what sub/.gitignore ignores, below it
    "日本/.gitignore": "名前*\n".encode(), "日本/名前.txt": b"n", "日本/other.txt": b"o",
    "sp ace/x.log": b"l", "sp ace/y.txt": b"y",
    # names before ".gitignore": a first page of 3 ends before it
    "odd/!a.txt": b"a", "odd/#b.log": b"b", "odd/-c.log": b"c", "odd/.gitignore": b"z.txt\n", "odd/z.txt": b"z",
}


def _listed_files(out: Path, root: str) -> list[str]:
    t = table(out, "files", root)
    return sorted(t[t["type"] == "file"]["rel"])


@pytest.fixture(scope="module")
def ignored_tree(store, tmp_path_factory):
    """(s3:// URL, local directory) of IGNORED_TREE."""
    _, fs, _, _ = store
    local = tmp_path_factory.mktemp("ignored") / "tree"
    for k, v in IGNORED_TREE.items():
        (local / k).parent.mkdir(parents=True, exist_ok=True)
        (local / k).write_bytes(v)
    fs.pipe({f"{BUCKET}/ignored/{k}": v for k, v in IGNORED_TREE.items()})
    return f"s3://{BUCKET}/ignored", local


def test_ignore_files_apply_in_a_store_listed_in_one_listing_per_prefix(ignored_tree, tmp_path):
    """memory:// (no StartAfter: each prefix is one listing) honours the ignore files too; oracle:
    the local walk of the same tree."""
    import fsspec
    _, local = ignored_tree
    fsspec.filesystem("memory").pipe({f"/ignored-tree/{k}": v for k, v in IGNORED_TREE.items()})
    run_here("inventory", "memory://ignored-tree", tmp_path / "mem", "--gitignore", "--hidden")
    run_here("inventory", str(local), tmp_path / "local", "--gitignore", "--hidden")
    got = _listed_files(tmp_path / "mem", "memory://ignored-tree")
    assert got == _listed_files(tmp_path / "local", str(local)) and "sub/deeper/e.txt" in got


@pytest.mark.parametrize("page", [3, 1000])
def test_ignore_files_in_a_store_apply_as_in_the_local_walk(store, ignored_tree, tmp_path, monkeypatch, page):
    """--gitignore over the same tree in the store and on disk lists the same files; oracle: git
    ls-files --others --exclude-standard over a git repository of the local copy. Pages of 3 names:
    the ranges of a prefix keep its rules, and ignore files the first page does not reach are
    looked up."""
    import os
    import shutil
    import subprocess

    from exoflow.sources import objects
    monkeypatch.setattr(objects, "PAGE", page)
    storage = store[0]
    root, local = ignored_tree
    run_here("inventory", root, tmp_path / "s3", "--storage-options", storage, "--gitignore", "--hidden")
    run_here("inventory", str(local), tmp_path / "local", "--gitignore", "--hidden")
    got = _listed_files(tmp_path / "s3", root)
    assert got == _listed_files(tmp_path / "local", str(local))
    if shutil.which("git") is None:
        pytest.skip("the oracle is git, which is not installed")
    repo = tmp_path / "repo"
    shutil.copytree(local, repo)
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True, env=env)
    r = subprocess.run(["git", "ls-files", "-z", "--others", "--exclude-standard"], cwd=repo, check=True, env=env,
                       capture_output=True)
    assert got == sorted(r.stdout.decode().split("\0")[:-1])
    assert "sub/deeper/e.txt" in got and "build/x.txt" not in got and "a.txt" in got


def test_url_paths_inside_another_list_what_local_paths_do(store, ignored_tree, tmp_path):
    """A URL PATH inside another is left out where the outer PATH's listing reaches it, and listed as
    named where that listing's options skip it (build/: ignore files; sub/: --exclude; docs/deep:
    --max-depth; .gitignore: hidden), each file once; oracle: the same PATHs in the local copy."""
    root, local = ignored_tree
    flags = ("--gitignore", "--exclude", "sub", "--max-depth", "2")
    below = ["", "build", "sub", "sub/deeper/e.txt", "docs/deep", "sub/.gitignore"]
    run_here("inventory", [f"{root}/{b}".rstrip("/") for b in below], tmp_path / "s3", "--storage-options",
             store[0], *flags)
    run_here("inventory", [f"{local}/{b}".rstrip("/") for b in below], tmp_path / "local", *flags)
    got = table(tmp_path / "s3", "files", root)["rel"].tolist()
    assert sorted(got) == sorted(table(tmp_path / "local", "files", str(local))["rel"])
    assert len(got) == len(set(got)) and {"build/x.txt", "docs/deep/more.md", "sub/d.md"} <= set(got)


def test_a_range_that_cannot_be_listed_is_an_error_row_that_names_it(store):
    """A range of a prefix that fails (here: no such bucket) is the prefix's error row, which says
    which of its names it could not list."""
    from exoflow.options import WalkOptions
    from exoflow.sources.objects import Lister, Prefix
    root = "s3://no-such-bucket/p"
    lister = Lister(WalkOptions(), store[0])
    assert lister.run([Prefix(root, 0, None, root, after="a", until="b")], 10) == []
    t = lister.out.table()
    assert t.column("path").to_pylist() == [root] and t.column("type").to_pylist() == ["dir"]
    error = t.column("error")[0].as_py()
    assert error.startswith("ENOENT") and error.endswith("(its names after 'a' up to 'b')")


# ---- keys that local paths cannot be: empty names, names ending in "/" -----------------

EDGE_KEYS = {"e/a.txt": b"a", "e/dbl//x.txt": b"x", "e//lead.txt": b"lead", "e/obj/": b"an object named obj/",
             "e/obj/in.txt": b"in", "e/marker/": b"", "e/marker/in.txt": b"m", "e/trail//": b"two slashes",
             "e/big/": bytes(range(256)) * 12, "e/s/b.txt": b"b", "//root.txt": b"r", "e/dbl//y//z": b"z"}


@pytest.fixture(scope="module")
def edges(store):
    """(storage options, s3fs) with the bucket ``edges`` holding EDGE_KEYS (``e/marker/``: an empty
    directory marker as S3 consoles make, the one key not listed)."""
    storage, fs, _, _ = store
    fs.call_s3("create_bucket", Bucket="edges")
    for k, v in EDGE_KEYS.items():
        fs.call_s3("put_object", Bucket="edges", Key=k, Body=v)
    return storage, fs


@pytest.mark.parametrize("path, prefix, page", [("s3://edges/e", "e/", 1000), ("s3://edges/e/", "e/", 2),
                                                ("s3://edges/e/dbl", "e/dbl/", 1000), ("s3://edges", "", 3),
                                                ("s3://edges///root.txt", "//root.txt", 1000),
                                                ("s3://edges/e/dbl//y/", "e/dbl//y/", 1000)])
def test_every_key_under_a_prefix_is_a_row(edges, tmp_path, monkeypatch, path, prefix, page):
    """Keys with empty names between slashes, leading slashes, keys ending in "/" with contents (one
    over the piece size: streamed): each a row with the SHA-256 hashlib gives of what was stored;
    the oracle is S3's own flat listing (list_objects_v2 without a delimiter), less empty "…/" markers."""
    from exoflow.sources import objects
    storage, fs = edges
    monkeypatch.setattr(objects, "PAGE", page)          # ranges of a prefix start and end on such names too
    raw = fs.call_s3("list_objects_v2", Bucket="edges", Prefix=prefix)["Contents"]
    want = {f"s3://edges/{c['Key']}": hashlib.sha256(EDGE_KEYS[c["Key"]]).hexdigest()
            for c in raw if not (c["Key"].endswith("/") and c["Size"] == 0)}
    run_here("checksum", path, tmp_path / "out", "--storage-options", storage, "--hash", "sha256",
             "--piece-size", "1024")
    t = read_dataset(tmp_path / "out" / "files").to_pandas()
    assert t["error"].isna().all(), t[t["error"].notna()]
    assert dict(zip(t["path"], t["sha256"])) == want
    assert len(t) == len(want)


@pytest.mark.parametrize("path, out", [("s3://selfout", "s3://selfout/out/self"),
                                       ("s3://selfout/out/", "s3a://selfout/out/self"),
                                       ("s3://selfout", "s3://selfout//out")])
def test_a_run_never_lists_its_own_out_url(store, tmp_path, path, out):
    """--out under a listed prefix (another spelling of the protocol, a trailing "/" on the PATH, a
    prefix with an empty name): the journal's run.json is there before the listing reaches the
    prefix (and parts as it goes on), and none is a row; the oracle is the keys written before the run."""
    storage, fs, _, _ = store
    if not fs.exists("selfout"):
        fs.call_s3("create_bucket", Bucket="selfout")
        for k in ("d/a.txt", "d/b/c.txt", "out/x.txt", "out/selfish.txt", "top"):
            fs.call_s3("put_object", Bucket="selfout", Key=k, Body=k.encode())
    keys = _keys(fs, "selfout", "")
    below = path.split("selfout", 1)[1].strip("/")
    want = {f"s3://selfout/{k}" for k in keys if k.startswith(below)}
    try:
        run_to_url("inventory", path, out, tmp_path / "scratch", "--storage-options", storage)
        held = _keys(fs, "selfout", out.split("selfout/", 1)[1] + "/")      # s3fs's find misses "//"
        assert any(k.endswith("/summary.json") for k in held)
        parts = [k for k in held if "/files/" in k and k.endswith(".parquet")]
        rows = [r for k in parts for r in pq.read_table(io.BytesIO(
            fs.cat_file(f"selfout/{k}"))).column("path").to_pylist()]
        assert sorted(rows) == sorted(want)
    finally:
        for k in _keys(fs, "selfout", out.split("selfout/", 1)[1] + "/"):
            fs.call_s3("delete_object", Bucket="selfout", Key=k)


def _keys(fs, bucket: str, prefix: str) -> list[str]:
    """The keys under ``prefix``, from S3's flat listing (list_objects_v2, no delimiter)."""
    return [c["Key"] for c in fs.call_s3("list_objects_v2", Bucket=bucket, Prefix=prefix).get("Contents", [])]


def test_sarif_locates_object_findings_by_their_urls(store, tmp_path):
    """SARIF 2.1.0 artifactLocation of a finding in an object: its absolute URL, no uriBaseId (a
    base applies to relative URIs only), the key percent-encoded (spaces, non-ASCII, '#', '?'); the
    oracle: urllib.parse takes the URI back to the key, and the log validates against the schema."""
    import string
    import urllib.parse

    import jsonschema
    storage, fs, _, _ = store
    keys = ["conf/secrets.env", "conf/naïve #1?.env", "conf/a//b.env"]
    fs.call_s3("create_bucket", Bucket="sarif")
    for k in keys:
        fs.call_s3("put_object", Bucket="sarif", Key=k, Body=f"aws_key = {AWS}\n".encode())
    run_here("scan", "s3://sarif/conf", tmp_path / "out", "--storage-options", storage)
    doc = json.loads((tmp_path / "out" / "scan.sarif").read_text())
    schema = Path(__file__).parent / "data" / "sarif-schema-2.1.0.json"
    jsonschema.validate(doc, json.loads(schema.read_text()))
    locations = [r["locations"][0]["physicalLocation"]["artifactLocation"] for r in doc["runs"][0]["results"]]
    allowed = set(string.ascii_letters + string.digits + "-._~:/?#[]@!$&'()*+,;=%")
    found = set()
    for loc in locations:
        assert set(loc) == {"uri"} and set(loc["uri"]) <= allowed, loc
        parts = urllib.parse.urlsplit(loc["uri"])
        assert (parts.scheme, parts.netloc, parts.query, parts.fragment) == ("s3", "sarif", "", ""), loc
        found.add(urllib.parse.unquote(parts.path)[1:])
    assert found == set(keys)


@pytest.mark.parametrize("argv", [
    ["run", "checksum", "PATH", "--verify", "URL"], ["run", "checksum", "PATH", "--since", "URL"],
    ["run", "scan", "PATH", "--baseline", "URL"], ["run", "scan", "PATH", "--rules", "secrets,URL/rules.toml"],
    ["run", "inventory", "PATH", "--scheduler-file", "URL"], ["run", "inventory", "PATH", "--tls-ca-file", "URL"],
    ["show", "URL"], ["query", "URL", "select 1"], ["bench", "--result", "URL", "--compare", "URL"]])
def test_a_url_where_only_a_local_path_is_taken_is_one_line(store, tmp_path, argv):
    """Every option and command that takes a local path (the CLI's parsers: --verify, --since,
    --baseline, --rules files, the cluster's FILE options, show, query, bench's files) says so of a
    URL, as given (not made a local path), in one line, exit 2, and nothing is written."""
    import contextlib
    import io

    from exoflow.cli import main
    url = f"s3://{BUCKET}/results/o/cs"
    argv = [a.replace("URL", url).replace("PATH", str(store[2] / "d1")) for a in argv]
    if argv[0] == "run":
        argv += ["--storage-options", store[0], "--out", str(tmp_path / "out")]
        code, text = _cli(*argv[1:])          # in this process, as exoflow run's: no cluster
    else:
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as e:
                code = e.code
        text = err.getvalue()
    lines = text.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in lines[0], lines
    assert f"{url}" in lines[0] and "takes a local path, not a URL" in lines[0], lines
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("stage, wait_for", [("list", "/.exoflow-journal/run.json"), ("after", "/files/part-")])
def test_a_store_that_stops_answering_is_one_line_exit_2(tmp_path, stage, wait_for):
    """The S3 server killed while the run lists (its listing tasks held back) or before the
    after-step (the parts in the store): one line naming the store's failure (not an internal
    error), exit 2, no traceback, nothing in the working directory."""
    import s3fs
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run = None
    try:
        options = {"key": "testing", "secret": "testing", "config_kwargs": {"retries": {"max_attempts": 1}},
                   "client_kwargs": {"endpoint_url": f"http://127.0.0.1:{port}", "region_name": "us-east-1"}}
        fs = s3fs.S3FileSystem(**options, skip_instance_cache=True, use_listings_cache=False)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                fs.call_s3("create_bucket", Bucket="down")
                break
            except Exception:
                time.sleep(0.2)
        fs.pipe({f"down/data/{i}.txt": str(i).encode() for i in range(5)})
        run = subprocess.Popen([sys.executable, "-m", "exoflow.cli", "run", "checksum", "s3://down/data",
                                "--storage-options", json.dumps(options), "--workers", "1", "-q",
                                "--out", "s3://down/out/run"], cwd=str(tmp_path), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "EXOFLOW_TEST_DELAY": f"{stage}=5"})
        deadline = time.time() + 60
        while not any(wait_for in k for k in _keys(fs, "down", "out/")) and time.time() < deadline:
            time.sleep(0.1)
        assert any(wait_for in k for k in _keys(fs, "down", "out/")), "the run wrote nothing"
        server.kill()
        err = run.communicate(timeout=120)[1]
    finally:
        server.kill()
        if run is not None:
            run.kill()
    assert run.returncode == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "the object store failed" in lines[0] and "Could not connect" in lines[0], err
    assert list(tmp_path.iterdir()) == []


def test_store_failures_are_told_from_exoflow_failures():
    """What ends a run: the store's failures (connection refused or closed, timeouts, expired
    credentials, 5xx answers, as botocore/aiohttp/fsspec raise them and as s3fs translates them,
    also after a trip through pickle from a worker, which drops the chain) against exoflow's own
    (a failing after-step, a full local disk, a bug)."""
    import errno
    import pickle

    import aiohttp
    from botocore.exceptions import (ClientError, ConnectionClosedError, ConnectTimeoutError,
                                     EndpointConnectionError, NoCredentialsError, ReadTimeoutError)
    from fsspec.exceptions import FSTimeoutError
    from s3fs.errors import translate_boto_error

    from exoflow.sources.objects import store_failure

    def answer(code: str, status: int):
        return ClientError({"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
                           "GetObject")
    url = "http://127.0.0.1:1/b/k"
    store = [EndpointConnectionError(endpoint_url=url), ConnectionClosedError(endpoint_url=url),
             ConnectTimeoutError(endpoint_url=url), ReadTimeoutError(endpoint_url=url), NoCredentialsError(),
             aiohttp.ServerDisconnectedError(), FSTimeoutError(), answer("SlowDown", 503),
             answer("InternalError", 500), answer("ServiceUnavailable", 503), answer("ExpiredToken", 400)]
    store += [translate_boto_error(answer(c, s)) for c, s in (("ExpiredToken", 400), ("InternalError", 500),
                                                                ("ServiceUnavailable", 503), ("SlowDown", 503))]
    store += [pickle.loads(pickle.dumps(e)) for e in store[-4:]]
    ours = [RuntimeError("the after-step failed on purpose"), OSError(errno.ENOSPC, "No space left on device"),
            PermissionError(errno.EACCES, "Permission denied"), KeyError("x"), ValueError("bad")]
    assert [e for e in store if not store_failure(e)] == []
    assert [e for e in ours if store_failure(e)] == []


def test_a_file_url_path_never_lists_the_runs_local_out(tmp_path):
    """A local --out inside a file:// PATH (spelled through a symlink): not listed; the oracle is
    the files written before the run."""
    tree = tmp_path / "tree"
    (tree / "d").mkdir(parents=True)
    for name in ("a.txt", "d/b.txt"):
        (tree / name).write_text(name)
    (tmp_path / "link").symlink_to(tree)
    run_here("inventory", f"file://{tmp_path}/link", tree / "out")
    t = read_dataset(tree / "out" / "files").to_pandas()
    assert sorted(t["path"]) == [f"file://{tmp_path}/link/a.txt", f"file://{tmp_path}/link/d/b.txt"]


def test_from_list_reads_keys_with_empty_names_and_ending_in_slash(edges, tmp_path):
    """--from-list entries that are such keys: each read (HEAD, then the bytes) to hashlib's SHA-256."""
    storage, _ = edges
    keys = ["e/obj/", "e/trail//", "e/dbl//x.txt", "//root.txt", "e/big/"]
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"s3://edges/{k}\n" for k in keys))
    _run_list(str(listing), tmp_path / "out", "--storage-options", storage, "--piece-size", "1024")
    t = read_dataset(tmp_path / "out" / "files").to_pandas()
    assert t["error"].isna().all(), t[t["error"].notna()]
    assert dict(zip(t["path"], t["sha256"])) == {f"s3://edges/{k}": hashlib.sha256(EDGE_KEYS[k]).hexdigest()
                                                 for k in keys}
