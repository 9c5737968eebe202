"""Every shipped reducer: the summary of a listing cut in two and merged equals the summary of the
whole (the oracle: the same reducer on the whole listing in one chunk), at several cut points,
empty halves included, on a real tree (through each job's kernels) and on seeded random tables.
The finished summaries also hold exactly the keys their declared types
(exoflow/ops/<job>/summary.py) name."""
from __future__ import annotations

import argparse
import dataclasses
import json
import random
import typing
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from conftest import REPO, make_awkward_tree
from exoflow.jobs_registry import load as load_job
from exoflow.ops.checksum.summary import ChecksumPart
from exoflow.ops.codestats.summary import CodestatsSummary
from exoflow.ops.dedup.summary import DedupSizes
from exoflow.ops.inventory.summary import InventorySummary
from exoflow.ops.profile.summary import ProfileSummary
from exoflow.ops.scan.summary import ScanSummary
from exoflow.options import LoadOptions
from exoflow.sources.entries import SCHEMA
from exoflow.sources.walk import Walker, root_item

JOBS = {"inventory": InventorySummary, "checksum": ChecksumPart, "dedup": DedupSizes, "scan": ScanSummary,
        "codestats": CodestatsSummary, "profile": ProfileSummary}
NOW = 1.7e9
AWS = "AKIA" + "Q7XK2M4PZR6TYW3N"            # a planted secret (built at run time)


def params_of(job, *argv: str) -> dict:
    """The job's options as the command line gives them (defaults through their types)."""
    p = argparse.ArgumentParser()
    for a in job.arguments:
        p.add_argument(a.flag, **a.kwargs)
    return {**vars(p.parse_args(list(argv))), "now": NOW}


def part(job, table: pa.Table, params: dict):
    """What a chunk task hands the client for these listing rows (runner.run_chunk's steps)."""
    return job.reducer.chunk(job.process_chunk(table, params, LoadOptions()), params)


def plain(x):
    """Comparable and JSON-like: arrays and tuples as lists."""
    if isinstance(x, dict):
        return {k: plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, np.ndarray)):
        return [plain(v) for v in x]
    return x.item() if isinstance(x, np.generic) else x


def check_halves(job, table: pa.Table, params: dict, cuts: list[int], chunk=part) -> dict:
    """For each cut: the halves' partials merged and finished equal the whole's summary (returned)."""
    r = job.reducer
    whole = plain(r.finish(r.merge(None, chunk(job, table, params)), params))
    for cut in cuts:
        total = r.merge(None, chunk(job, table.slice(0, cut), params))
        halves = r.finish(r.merge(total, chunk(job, table.slice(cut), params)), params)
        assert plain(halves) == whole, f"{job.name}: cut at {cut} of {table.num_rows}"
    return whole


def cuts(n: int, seed: int, random_ones: int = 4) -> list[int]:
    """The empty halves (0, n), one row alone, and random cut points."""
    rng = random.Random(seed)
    return sorted({0, n, 1, *(rng.randrange(n + 1) for _ in range(random_ones))} & set(range(n + 1)))


def assert_declared(summary: dict, typ) -> None:
    """The keys ``typ`` declares (all required ones, optional ones allowed) and no others,
    recursively into nested TypedDicts and lists of them."""
    hints = typing.get_type_hints(typ)
    assert set(summary) - set(hints) == set(), f"{typ.__name__}: undeclared keys"
    assert typ.__required_keys__ - set(summary) == set(), f"{typ.__name__}: missing keys"
    for k, v in summary.items():
        h = hints[k]
        if typing.is_typeddict(h):
            assert_declared(v, h)
        elif typing.get_origin(h) is list and typing.get_args(h) and typing.is_typeddict(typing.get_args(h)[0]):
            for row in v:
                assert_declared(row, typing.get_args(h)[0])


# ---- a real tree, through each job's kernels ------------------------------------------------

def make_tree(root: Path) -> None:
    """Files every job has something to say about: code with comments, a planted secret and a
    placeholder, duplicates, binary and random bytes, empty files, names that are not UTF-8,
    unreadable files, links, a FIFO (make_awkward_tree)."""
    rng = random.Random(7)
    (root / "src").mkdir()
    for i in range(12):
        (root / "src" / f"m{i}.py").write_text("# comment\n\nx = 1\n" * (i + 1) + f"# TODO fix {i}\n")
        (root / "src" / f"c{i}.c").write_text("/* block\n comment */\nint x;\n" * (i % 4 + 1))
    (root / "src" / "keys.env").write_text(f"aws_access_key_id = {AWS}\n")
    (root / "src" / "keys2.env").write_text(f"aws_access_key_id = {AWS}\n")   # a duplicate, a 2nd finding
    (root / "data").mkdir()
    for i in range(15):
        (root / "data" / f"r{i}.bin").write_bytes(rng.randbytes(rng.choice([100, 4096, 5000, 70_000])))
    for i in range(6):     # duplicates of two sizes, and a pair with a different last byte
        (root / "data" / f"dup{i}").write_bytes(b"d" * (3000 + 1000 * (i % 2)))
    (root / "data" / "near1").write_bytes(b"n" * 9000 + b"1")
    (root / "data" / "near2").write_bytes(b"n" * 9000 + b"2")
    (root / "data" / "empty1").write_bytes(b"")
    (root / "data" / "nul.bin").write_bytes(b"text\0more\r\n" * 50)
    (root / "awkward").mkdir()
    make_awkward_tree(root / "awkward")


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("summaries")
    make_tree(root)
    yield root
    for d in ("locked", "listable-only"):
        (root / "awkward" / d).chmod(0o755)


def listing(job, root: Path) -> pa.Table:
    # without the job's --exclude globs: pathspec fails on a name that is not UTF-8 (a walk bug
    # apart from the reducers; the tree has such a name)
    opts = dataclasses.replace(job.walk, exclude=())
    w = Walker(opts)
    assert w.run([root_item(str(root), opts)], 10**6) == []
    return w.out.table()


@pytest.mark.parametrize("name", JOBS)
def test_halves_merge_to_the_whole_on_a_real_tree(tree, name):
    job = load_job(str(REPO / "jobs" / f"{name}.py"))
    extra = {"scan": ["--rules", "secrets,placeholders", "--top", "3"], "inventory": ["--top", "3"],
             "checksum": ["--hash", "xxh3-128,sha256"], "dedup": ["--include-empty"]}.get(name, [])
    params = params_of(job, *extra)
    table = listing(job, tree)
    assert table.num_rows > 60
    whole = check_halves(job, table, params, cuts(table.num_rows, seed=len(name), random_ones=2))
    assert_declared(whole, JOBS[name])
    json.dumps(whole)                       # summary.json can hold it
    seen = {"scan": whole.get("scanned_files"), "codestats": whole.get("total", {}).get("files")}
    assert seen.get(name, whole.get("files")) > 20          # the halves held the tree's files


# ---- seeded random tables (what the kernels would write), for the reducers that read columns ----

def random_listing(rng: np.random.Generator, n: int) -> dict[str, pa.Array]:
    kinds = rng.choice(["file"] * 8 + ["dir", "symlink"], n)
    error = [None if rng.random() > 0.08 else "EACCES: Permission denied" for _ in range(n)]
    size = rng.choice([0, 1, 512, 4096, 4096, 70_000, 2**21, 2**33], n).astype(np.int64)   # many ties
    return {
        "path": pa.array([f"d{rng.integers(4)}/f{i}.{rng.choice(['py', 'txt', ''])}" for i in range(n)]),
        "path_bytes": pa.nulls(n, pa.binary()),
        "type": pa.array(kinds),
        "size": pa.array([None if e and rng.random() < 0.5 else int(s) for s, e in zip(size, error)], pa.int64()),
        "error": pa.array(error, pa.string()),
    }


def random_table(name: str, seed: int, n: int = 400) -> pa.Table:
    rng = np.random.default_rng(seed)
    cols = random_listing(rng, n)
    if name == "inventory":
        cols.update(allocated=pa.array(rng.integers(0, 64, n) * 512), nlink=pa.array(rng.integers(1, 4, n)),
                    mtime_ns=pa.array((NOW - rng.choice([-10, 10, 1e5, 1e6, 1e7, 5e7, 1e8, 3e8], n)).astype(np.int64)
                                      * 10**9),
                    extension=pa.array(rng.choice(["py", "txt", ""], n)), top_dir=pa.array(rng.choice(["a", "b"], n)))
    elif name == "checksum":
        hashed = rng.random(n) < 0.8
        cols.update(trusted=pa.array(rng.random(n) < 0.2),
                    **{c: pa.array([f"{rng.integers(2**62):x}" if h else None for h in hashed], pa.string())
                       for c in ("xxh3_128", "sha256")},
                    **{c: pa.nulls(n, pa.string()) for c in ("blake3", "sha1", "md5")})
    elif name == "codestats":
        lines = rng.integers(0, 200, (3, n))
        cols.update(language=pa.array([None if rng.random() < 0.2 else str(rng.choice(["Python", "C", "Go"]))
                                       for _ in range(n)]),
                    blank=pa.array(lines[0]), comment=pa.array(lines[1]), code=pa.array(lines[2]))
    elif name == "profile":
        cols["size"] = pa.array(rng.integers(0, 10_000, n))
        cols.update(entropy=pa.array(np.round(rng.random(n) * 8, 1)), lines=pa.array(rng.integers(0, 99, n)),
                    crlf=pa.array(rng.integers(0, 2, n)), non_ascii=pa.array(rng.integers(0, 3, n)),
                    binary=pa.array(rng.random(n) < 0.3))
    return pa.table(cols)


@pytest.mark.parametrize("name", ["inventory", "checksum", "dedup", "codestats", "profile"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_halves_merge_to_the_whole_on_random_tables(name, seed):
    job = load_job(str(REPO / "jobs" / f"{name}.py"))
    params = params_of(job, *(["--top", "5"] if name == "inventory" else []))
    table = random_table(name, seed)
    whole = check_halves(job, table, params, cuts(table.num_rows, seed), chunk=lambda j, t, p: j.reducer.chunk(t, p))
    assert_declared(whole, JOBS[name])


@pytest.mark.parametrize("name", JOBS)
def test_a_run_of_no_chunks_has_the_declared_summary(name):
    """finish(None): what a run over nothing says."""
    job = load_job(str(REPO / "jobs" / f"{name}.py"))
    params = params_of(job)
    assert_declared(plain(job.reducer.finish(None, params)), JOBS[name])
    empty = SCHEMA.empty_table()
    assert plain(job.reducer.finish(job.reducer.merge(None, part(job, empty, params)), params)) == \
        plain(job.reducer.finish(None, params))

