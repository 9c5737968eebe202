"""The walk on real-world edges: overlapping PATHs, trees deeper than PATH_MAX, a tree bind-mounted
below itself, unreadable PATHs, relative PATHs on a remote cluster, size bounds; each against find,
jdupes, coreutils or a hand count."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from conftest import IS_ROOT, dask_cluster, exoflow, read_dataset
from oracle import find_printf
from exoflow.batch import read_files, stream
from exoflow.kernels.hashing import hash_stream
from exoflow.longpath import PATH_MAX, open_path, parent_at, stat_path
from exoflow.options import WalkOptions
from exoflow.paths import raw_paths
from exoflow.runner import plan
from exoflow.sources import manifest
from exoflow.sources.entries import EntryCollector
from exoflow.sources.walk import Walker, native_available

NATIVE = [True, False] if native_available() else [False]


def walk_table(paths, native: bool = True, **opts):
    """The listing of PATHs, roots planned as a run plans them (no cluster)."""
    o = WalkOptions(**opts)
    roots = plan([str(p) for p in paths], o)
    w = Walker(o, native=native)
    for f in roots.files:
        w.add_root_file(f)
    w.run(list(roots.dirs), 10**9)
    return w.out.table()


def walked(paths, native: bool = True, **opts) -> list[str]:
    return walk_table(paths, native, **opts).column("path").to_pylist()


def canonical(p: str | bytes) -> str:
    """One spelling per entry: its directory's real path and its name."""
    p = os.fsdecode(p)
    return os.path.join(os.path.realpath(os.path.dirname(p)), os.path.basename(p))


def find(*args: str, spelled: bool = False) -> set[str]:
    """Non-directory entries from GNU find ("find ARGS -not -type d"), canonical unless ``spelled``."""
    out = subprocess.run(["find", *args, "-not", "-type", "d", "-print0"], capture_output=True).stdout
    return {os.fsdecode(p) if spelled else canonical(p) for p in out.split(b"\0") if p}


@pytest.fixture
def overlapping(tmp_path):
    t = tmp_path / "t"
    (t / "pics" / "deep").mkdir(parents=True)
    (t / ".hid" / "in").mkdir(parents=True)
    for p, data in {"a": b"dup", "x.jpg": b"1", "pics/b": b"dup", "pics/x.jpg": b"22", "pics/c": b"c" * 10,
                    "pics/deep/x.jpg": b"333", ".hid/in/h": b"h"}.items():
        (t / p).write_bytes(data)
    os.link(t / "pics" / "c", t / "pics" / "c-link")
    os.symlink("pics", t / "link-to-pics")
    os.symlink("t", tmp_path / "L")
    return t


# ---- 5. overlapping PATHs ------------------------------------------------------------------

@pytest.mark.parametrize("native", NATIVE)
@pytest.mark.parametrize("spellings", [["t/pics"], ["t"], ["./t/"], ["t/link-to-pics"], ["L"], ["t/pics/c"],
                                       ["t/pics", "L/pics/", "t/link-to-pics", "t/pics/deep", "t/a", "L/a"]])
def test_overlapping_paths_list_each_file_once(overlapping, monkeypatch, spellings, native):
    monkeypatch.chdir(overlapping.parent)
    for paths in (["t", *spellings], [*spellings, "t"]):
        got = walked(paths, native)
        assert len(got) == len({canonical(p) for p in got}), paths      # no entry twice
        assert {canonical(p) for p in got} == find("t"), paths


@pytest.mark.parametrize("options,find_args", [
    ({"max_depth": 1}, ["-maxdepth", "1"]),
    ({"max_depth": 2}, ["-maxdepth", "2"]),
    ({"hidden": False}, None),
    ({"include": ("/x.jpg",)}, None),
    ({"exclude": ("/x.jpg",)}, None),
    ({"include": ("pics/x.jpg",)}, None),
    ({"include": ("pics/*/x.jpg",), "max_depth": 2}, None),
    ({"exclude": ("pics/",)}, None),
    ({"exclude": ("c",)}, None),
])
@pytest.mark.parametrize("inner", ["t/pics", "t/.hid/in", "t/pics/c"])
def test_overlapping_paths_with_filters_list_the_union(overlapping, monkeypatch, options, find_args, inner):
    """An option can keep the outer PATH's walk from some of the inner PATH's files (or judge them
    differently): the inner PATH is then walked too, and each file is listed once when either keeps it.
    Oracle: find over each PATH (where find has the option), else each PATH walked on its own."""
    monkeypatch.chdir(overlapping.parent)
    got = walked(["t", inner], **options)
    assert len(got) == len({canonical(p) for p in got})
    if find_args:
        want = find("t", *find_args) | find(inner, *find_args)
    else:
        want = {canonical(p) for root in ("t", inner) for p in walked([root], **options)}
    assert {canonical(p) for p in got} == want


def test_overlap_across_file_systems_with_one_file_system(tmp_path):
    """-x: the outer walk stops at a mount point, so a PATH beyond it is walked on its own."""
    t = tmp_path / "t"
    (t / "m").mkdir(parents=True)
    (t / "f").write_bytes(b"f")
    r = subprocess.run(["mount", "-t", "tmpfs", "none", str(t / "m")], capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        (t / "m" / "sub").mkdir()
        (t / "m" / "sub" / "g").write_bytes(b"g")
        (t / "m" / "h").write_bytes(b"h")
        for paths in ([t, t / "m" / "sub"], [t / "m" / "sub", t]):
            got = walked(paths, one_file_system=True)
            assert sorted(map(canonical, got)) == sorted(find(str(t), "-xdev") | find(str(t / "m" / "sub"), "-xdev"))
            assert len(got) == 2
    finally:
        subprocess.run(["umount", str(t / "m")], check=True)


def test_overlapping_paths_end_to_end(overlapping, tmp_path):
    """Every job sees one entry per file: inventory counts them once (and says which PATHs overlap);
    dedup --hardlinks finds jdupes -H's groups, not a file duplicated with itself."""
    r = exoflow("run", "inventory", "t", "./t/", "t/pics", "L", "t/link-to-pics", "--out", str(tmp_path / "i"),
                "--no-dashboard", "--json", cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    rows = read_dataset(tmp_path / "i" / "files").column("path").to_pylist()
    assert {canonical(tmp_path / p) for p in rows} == find(str(overlapping)) and len(rows) == len(set(rows))
    assert r.stderr.count("each file is listed once") == 1
    assert "./t/ is t" in r.stderr and "t/pics is inside t" in r.stderr and "L is t" in r.stderr
    r = exoflow("run", "inventory", "t", "t/pics", "-q", "--out", str(tmp_path / "q"), "--no-dashboard",
                cwd=str(tmp_path))
    assert (r.returncode, r.stderr, r.stdout) == (0, "", "")            # -q: nothing but errors

    r = exoflow("run", "dedup", "t", "t/pics", "--hardlinks", "--out", str(tmp_path / "d"), "--no-dashboard",
                cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    t = read_dataset(tmp_path / "d" / "duplicates").to_pandas()
    ours = {frozenset(canonical(tmp_path / p) for p in g["path"]) for _, g in t.groupby("group_id")}
    out = subprocess.run(["jdupes", "-r", "-q", "-H", "t"], cwd=tmp_path, capture_output=True, text=True,
                         check=True).stdout
    theirs = {frozenset(canonical(tmp_path / p) for p in g.splitlines()) for g in out.strip().split("\n\n")}
    assert ours == theirs and len(ours) == 2          # {a, pics/b} and {pics/c, pics/c-link}


def test_from_list_lists_a_path_once_however_spelled(tmp_path, monkeypatch):
    """Repeats in a listing, in one piece or across pieces, are one entry."""
    t = tmp_path / "t"
    t.mkdir()
    (t / "a").write_bytes(b"a")
    (t / "b").write_bytes(b"b")
    lines = ["t/a", "./t/a", "t//a", str(t / "a"), "t/b", "t/./b", "t/a"]
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{p}\n" for p in lines))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(manifest, "RANGE_BYTES", 8)               # several pieces
    pieces = manifest.plan(str(listing))
    assert len(pieces) > 1
    drops = manifest.repeats([manifest.piece_keys(p) for p in pieces])
    rows = [p for piece, drop in zip(pieces, drops) for p in manifest.collect(piece, drop)
            .column("path").to_pylist()]
    assert sorted(rows) == ["t/a", "t/b"]                           # hand count: two files

    # a Parquet manifest (an exoflow output directory) read by workers elsewhere: relative entries
    # are below the client's directory and come out spelled from /
    (tmp_path / "out" / "files").mkdir(parents=True)
    pq.write_table(pa.table({"path": ["t/a", "t//a", "t/b", None]}), tmp_path / "out" / "files" / "part-0.parquet")
    pieces = manifest.plan("out", base=str(tmp_path))
    rows = [p for piece in pieces for p in manifest.collect(piece).column("path").to_pylist()]
    assert sorted(rows) == [str(t / "a"), str(t / "b")]


def test_from_list_repeats_across_pieces_end_to_end(tmp_path):
    """A listing of 2 pieces (4 MiB each) whose every line is t/a or t/b, spelled long: two entries."""
    t = tmp_path / "t"
    t.mkdir()
    (t / "a").write_bytes(b"a")
    (t / "b").write_bytes(b"b")
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"t/{'./' * 1000}{'a' if i % 3 else 'b'}\n" for i in range(2200)))
    assert len(manifest.plan(str(listing))) == 2
    r = exoflow("run", "inventory", "--from-list", "list.txt", "--out", str(tmp_path / "o"), "--no-dashboard",
                "-q", cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    rows = read_dataset(tmp_path / "o" / "files").column("path").to_pylist()
    assert len(rows) == 2 and {canonical(tmp_path / p) for p in rows} == {str(t / "a"), str(t / "b")}


# ---- 6. deeper than PATH_MAX ------------------------------------------------------------------

BIG = b"big " * 30_000        # 120 kB: over dedup's 64 KiB whole-read bound and the 64k piece size


SCRIPT = b"#!/bin/sh\n# hand-counted: 3 lines, 2 comments (#! is one), 1 code\necho deep\n"


@pytest.fixture(scope="module")
def deep_tree(tmp_path_factory):
    """A chain of 40 directories with 200-byte names (paths to 8 kB), a file at each level, two at
    the top and a shell script at the bottom: 43 files. Returns (root, {path: content})."""
    root = tmp_path_factory.mktemp("deep") / "deep"
    root.mkdir()
    contents = {str(root / "top-same"): b"same", str(root / "top-big"): BIG}
    for p, data in contents.items():
        Path(p).write_bytes(data)
    fd, path = os.open(root, os.O_RDONLY), str(root)
    try:
        for i in range(40):
            name = f"d{i:02d}" + "x" * 197
            os.mkdir(name, dir_fd=fd)
            sub = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd, path = sub, f"{path}/{name}"
            data = b"same" if i % 10 == 0 else BIG if i == 39 else b"level %d " % i * (i * 800)
            f = os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
            os.write(f, data)
            os.close(f)
            contents[f"{path}/f"] = data
        f = os.open("script", os.O_WRONLY | os.O_CREAT, 0o755, dir_fd=fd)     # known by its shebang only
        os.write(f, SCRIPT)
        os.close(f)
        contents[f"{path}/script"] = SCRIPT
    finally:
        os.close(fd)
    assert max(len(os.fsencode(p)) for p in contents) > PATH_MAX + 3900
    return root, contents


def test_longpath_helpers_reach_past_path_max(deep_tree):
    _, contents = deep_tree
    deepest = max((p for p in contents if p.endswith("/f")), key=len)
    with pytest.raises(OSError):
        os.stat(deepest)                                            # the kernel refuses the path
    assert stat_path(deepest).st_size == len(BIG)
    fd = open_path(deepest, os.O_RDONLY)
    try:
        assert os.read(fd, 4) == b"big "
    finally:
        os.close(fd)
    with parent_at(deepest) as (dir_fd, name):
        assert dir_fd is not None and name == "f" and os.stat(name, dir_fd=dir_fd).st_size == len(BIG)
    with parent_at("short/path") as (dir_fd, name):
        assert (dir_fd, name) == (None, "short/path")
    assert hash_stream(["sha256"], stream(deepest, 1 << 20)) == [hashlib.sha256(BIG).hexdigest()]


@pytest.mark.parametrize("native", NATIVE)
def test_batch_reads_files_past_path_max(deep_tree, native):
    _, contents = deep_tree
    paths = sorted(contents)
    data, offsets, errors, large = read_files(paths, np.ones(len(paths), bool), 1 << 20, 64 * 1024, native)
    assert not any(errors)
    for i, p in enumerate(paths):
        if large[i]:
            assert len(contents[p]) > 64 * 1024
            assert b"".join(bytes(x) for x in stream(p, 4096)) == contents[p]
        else:
            assert bytes(data[offsets[i]:offsets[i + 1]]) == contents[p]


@pytest.mark.parametrize("native", NATIVE)
@pytest.mark.parametrize("options", [{}, {"exclude": ("nothing",)}])
def test_deep_tree_is_listed_as_find_lists_it(deep_tree, native, options):
    root, contents = deep_tree
    t = walk_table([root], native, **options)
    assert sorted(t.column("path").to_pylist()) == sorted(os.fsdecode(p) for p in find_printf(str(root)))
    assert t.num_rows == 43 and t.column("error").null_count == 43


def test_deep_tree_is_hashed_and_deduplicated(deep_tree, tmp_path):
    root, contents = deep_tree

    r = exoflow("run", "checksum", str(root), "--hash", "sha256", "--piece-size", "64k", "--out",
                str(tmp_path / "c"), "--no-dashboard", "-q")
    assert r.returncode == 0, r.stderr
    t = read_dataset(tmp_path / "c" / "files")
    assert dict(zip(t.column("path").to_pylist(), t.column("sha256").to_pylist())) == \
        {p: hashlib.sha256(d).hexdigest() for p, d in contents.items()}

    r = exoflow("run", "dedup", str(root), "--out", str(tmp_path / "d"), "--no-dashboard", "-q")
    assert r.returncode == 0, r.stderr
    t = read_dataset(tmp_path / "d" / "duplicates").to_pandas()
    groups = {frozenset(g["path"]) for _, g in t.groupby("group_id")}
    by_content: dict[bytes, set[str]] = {}
    for p, d in contents.items():
        by_content.setdefault(d, set()).add(p)
    assert groups == {frozenset(ps) for ps in by_content.values() if len(ps) > 1}   # hand-planted: 5 + 2
    assert sorted(len(g) for g in groups) == [2, 5]

    r = exoflow("run", "codestats", str(root), "--out", str(tmp_path / "s"), "--no-dashboard", "-q")
    assert r.returncode == 0, r.stderr
    t = read_dataset(tmp_path / "s" / "files")
    script = next(p for p in contents if p.endswith("/script"))
    row = t.filter(pc.equal(t.column("path"), script)).to_pylist()
    assert [(x["language"], x["lines"], x["comment"], x["code"]) for x in row] == [("Bourne Shell", 3, 2, 1)]


# ---- 7. a tree bind-mounted below itself ------------------------------------------------------

@pytest.fixture
def bind_loop(tmp_path):
    t = tmp_path / "t"
    (t / "sub" / "mnt").mkdir(parents=True)
    (t / "x").mkdir()
    (t / "f1").write_bytes(b"1")
    (t / "x" / "f2").write_bytes(b"22")
    r = subprocess.run(["mount", "--bind", str(t), str(t / "sub" / "mnt")], capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"cannot bind-mount here: {r.stderr.strip()}")
    try:
        yield t
    finally:
        subprocess.run(["umount", str(t / "sub" / "mnt")], check=True)


@pytest.mark.parametrize("options", [{}, {"one_file_system": True}, {"follow_symlinks": True},
                                     {"exclude": ("nothing",)}])
def test_bind_mount_loop_is_an_error_row_as_find_reports(bind_loop, options):
    t = walk_table([bind_loop], **options)
    errors = {p: e for p, e in zip(t.column("path").to_pylist(), t.column("error").to_pylist()) if e}
    found = subprocess.run(["find", str(bind_loop)], capture_output=True, text=True)
    assert found.returncode == 1 and "File system loop detected" in found.stderr
    loop = str(bind_loop / "sub" / "mnt")
    assert f"'{loop}'" in found.stderr.replace("‘", "'").replace("’", "'")
    assert errors == {loop: f"ELOOP: file system loop: the same directory as {bind_loop}"}
    assert set(t.column("path").to_pylist()) - {loop} == {os.fsdecode(p) for p in find_printf(str(bind_loop))}


def test_bind_mount_loop_end_to_end(bind_loop, tmp_path):
    r = exoflow("run", "inventory", str(bind_loop), "--out", str(tmp_path / "o"), "--no-dashboard", "--json")
    assert r.returncode == 1, r.stderr
    summary = json.loads(r.stdout)
    assert summary["errors"] == 1 and summary["result"]["files"] == 2 and summary["result"]["bytes"] == 3


# ---- 8. listing parts of any shape; an unreadable PATH ---------------------------------------

def _collector(shape: str, tmp_path: Path) -> EntryCollector:
    c = EntryCollector()
    c.start_run(0, None)
    (tmp_path / "f").write_bytes(b"abc")
    st = os.lstat(tmp_path / "f")
    if shape in ("one row", "errors and rows"):
        c.add(str(tmp_path / "f"), st)
    if shape in ("one error", "two errors", "errors and rows"):
        c.add_error("/gone/dir", "EACCES: Permission denied", hint="dir")
    if shape == "two errors":
        c.add_error("/gone/file", "ENOENT: No such file or directory", hint="file")
    if shape == "error with a stat":
        c.add_error(str(tmp_path / "f"), "ELOOP: file system loop", st=st)
    return c


@pytest.mark.parametrize("shape", ["empty", "one row", "one error", "two errors", "errors and rows",
                                   "error with a stat"])
def test_a_listing_part_of_any_shape_is_a_table(shape, tmp_path):
    t = _collector(shape, tmp_path).table()
    want = {"empty": [], "one row": [(str(tmp_path / "f"), "file", 3, None)],
            "one error": [("/gone/dir", "dir", None, "EACCES: Permission denied")],
            "two errors": [("/gone/dir", "dir", None, "EACCES: Permission denied"),
                           ("/gone/file", "file", None, "ENOENT: No such file or directory")],
            "errors and rows": [(str(tmp_path / "f"), "file", 3, None),
                                ("/gone/dir", "dir", None, "EACCES: Permission denied")],
            "error with a stat": [(str(tmp_path / "f"), "file", 3, "ELOOP: file system loop")]}[shape]
    assert list(zip(*(t.column(c).to_pylist() for c in ("path", "type", "size", "error")))) == want


@pytest.mark.skipif(not IS_ROOT, reason="makes a directory owned by another user (needs root)")
def test_unreadable_path_is_one_error_row(tmp_path):
    """A PATH that is a directory the user cannot read (root's powers dropped; the directory is
    uid 65534's, mode 0700): one EACCES row, exit 1 (it was an internal error)."""
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "f").write_bytes(b"x")
    os.chown(secret / "f", 65534, 65534)
    os.chown(secret, 65534, 65534)
    secret.chmod(0o700)
    r = exoflow("run", "inventory", str(secret), "--out", str(tmp_path / "o"), "--no-dashboard", "-q",
                obey_permissions=True)
    assert r.returncode == 1, r.stderr
    assert "internal error" not in r.stderr
    t = read_dataset(tmp_path / "o" / "files")
    assert [(p, e.split(":")[0]) for p, e in zip(t.column("path").to_pylist(), t.column("error").to_pylist())] \
        == [(str(secret), "EACCES")]


# ---- 9. a relative PATH on a remote cluster ---------------------------------------------------

@pytest.fixture(scope="module")
def elsewhere_worker():
    """A scheduler and one worker whose working directory is / (not the client's)."""
    with dask_cluster(nworkers=1, nthreads=2, cwd="/") as (addr, _):
        yield addr


def test_relative_paths_on_a_worker_elsewhere(elsewhere_worker, tmp_path):
    """PATHs and --from-list entries are relative to the client's working directory, wherever the
    workers run: they are sent spelled from / (symlinks kept)."""
    (tmp_path / "t" / "sub").mkdir(parents=True)
    (tmp_path / "t" / "sub" / "a").write_bytes(b"a")
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "b").write_bytes(b"bb")
    os.symlink("t", tmp_path / "link")
    (tmp_path / "list.txt").write_text("more/b\n./more/b\n")
    r = exoflow("run", "checksum", "link", "--from-list", "list.txt", "--hash", "sha256", "--scheduler",
                elsewhere_worker, "--out", "o", "-q", cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    t = read_dataset(tmp_path / "o" / "files")
    assert dict(zip(t.column("path").to_pylist(), t.column("sha256").to_pylist())) == {
        str(tmp_path / "link" / "sub" / "a"): hashlib.sha256(b"a").hexdigest(),
        str(tmp_path / "more" / "b"): hashlib.sha256(b"bb").hexdigest()}


# ---- 13 (part). size bounds select regular files ---------------------------------------------

@pytest.fixture
def sized(tmp_path):
    t = tmp_path / "t"
    (t / "d").mkdir(parents=True)
    for name, n in {"small": 10, "mid": 500, "big": 5000, "d/mid2": 1000, "d/edge": 100}.items():
        (t / name).write_bytes(b"x" * n)
    os.symlink("mid", t / "link-to-mid")              # the link's own size is 3
    os.symlink("big", t / "link-to-big")
    os.symlink("d", t / "link-to-d")
    os.symlink("missing", t / "broken")
    os.mkfifo(t / "fifo")
    os.symlink("d/../" * 30 + "small", t / "long-link")   # a symlink of 155 bytes: within the bounds itself
    return t


@pytest.mark.parametrize("follow", [False, True])
def test_size_bounds_keep_only_regular_files(sized, follow):
    """--min-size 100 --max-size 1000 = find -type f -size +99c -size -1001c (with -L: find -L, a link
    to a regular file counts as that file)."""
    got = walked([sized], follow_symlinks=follow, min_size=100, max_size=1000)
    errors = [p for p in got if p.endswith("broken")]
    want = find(*(["-L"] if follow else []), str(sized), "-type", "f", "-size", "+99c", "-size", "-1001c",
                spelled=True)
    assert set(got) - set(errors) == want
    assert len(want) == (6 if follow else 3)   # hand count: mid, d/mid2, d/edge (+ link-to-mid, link-to-d/mid2, /edge)
    assert errors == ([str(sized / "broken")] if follow else [])
    # a PATH that is a file obeys the bounds too (as find FILE -size does)
    assert walked([sized / "big"], min_size=100, max_size=1000) == []
    assert walked([sized / "fifo"], min_size=1) == []
    assert walked([sized / "mid"], min_size=100) == [str(sized / "mid")]


def test_the_run_never_walks_its_own_output(tmp_path):
    """--out inside a PATH, and the default ./exoflow-… under '.': the rows are find's listing of
    the tree as it was before the run (oracle), never the run's own parts or marker."""
    tree = tmp_path / "t"
    make_small = [tree / "a" / "x.txt", tree / "b.txt"]
    for p in make_small:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    before = find(str(tree), "-mindepth", "1", "!", "-type", "d")
    r = exoflow("run", "checksum", str(tree), "--out", str(tree / "out"), "--json", "--no-dashboard")
    assert r.returncode == 0, r.stderr
    assert {canonical(p) for p in read_dataset(tree / "out" / "files").column("path").to_pylist()} == before
    r = exoflow("run", "inventory", ".", "--json", "--no-dashboard", cwd=str(tree))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)["out"]
    assert os.path.dirname(out) == str(tree) and os.path.basename(out).startswith("exoflow-inventory-")
    rows = {canonical(os.path.join(tree, p)) for p in read_dataset(Path(out) / "files").column("path").to_pylist()}
    assert rows == before | find(str(tree / "out"), "!", "-type", "d")


def test_names_not_utf8_with_globs_and_ignore_files(tmp_path):
    """Names that are not UTF-8 (files and directories) pass every matcher: --include, --exclude,
    .gitignore and scan's default exclude, with Hyperscan/RE2 installed (pathspec would pick them
    and they take only UTF-8). Oracle: GNU find with the same name tests."""
    tree = tmp_path / "t"
    bad_dir = os.fsencode(tree) + b"/d\xe9j\xe0"
    os.makedirs(bad_dir)
    for name in (b"/bad-\xff\xfe.txt", b"/bad-\xff\xfe.log", b"/ok.txt"):
        with open(os.fsencode(tree) + name, "wb") as f:
            f.write(b"x\n")
        with open(bad_dir + name, "wb") as f:
            f.write(b"y\n")
    (tree / ".gitignore").write_bytes(b"*.log\n")
    def exact(root, native, **opts) -> set[str]:
        return set(raw_paths(walk_table([root], native, **opts)))

    for native in NATIVE:
        assert exact(tree, native, exclude=("*.log",)) == find(str(tree), "-not", "-name", "*.log")
        assert exact(tree, native, include=("*.txt",)) == find(str(tree), "-name", "*.txt")
        glob = os.fsdecode(b"bad-\xff*")           # a glob that is not UTF-8 either
        assert exact(tree, native, exclude=(glob,)) == find(str(tree), "-not", "-name", glob)
        got = exact(tree, native, gitignore=True, hidden=True, exclude=(".git",))
        assert got == find(str(tree), "-not", "-name", "*.log")
    r = exoflow("run", "inventory", str(tree), "--exclude", os.fsdecode(b"bad-\xff*"), "--out", str(tmp_path / "i"),
                "--no-dashboard")
    assert r.returncode == 0, r.stderr
    r = exoflow("run", "scan", str(tree), "--out", str(tmp_path / "o"), "--no-dashboard")
    assert r.returncode == 0, r.stderr
    # scan honours .gitignore and lists hidden files (.env files hold secrets): find's count
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["files"] == len(
        find(str(tree), "-not", "-name", "*.log"))


# ---- the budget of a listing task --------------------------------------------------------

def _levels(root: Path) -> Path:
    """root/aN/bM/file: 3 directories of 3 subdirectories of 2 files each (hand count: 12 directories
    with root's, 18 files)."""
    for a in range(3):
        for b in range(3):
            d = root / f"a{a}" / f"b{b}"
            d.mkdir(parents=True)
            (d / "f1").write_bytes(b"1")
            (d / "f2").write_bytes(b"2")
    return root


@pytest.mark.parametrize("native", NATIVE)
def test_breadth_first_leaves_the_shallow_directories_and_depth_first_the_deep(tmp_path, native):
    """A budget of one entry (directories are not entries): breadth first lists root and a0..a2, then
    one bN's two files, and leaves the other 8 bN; depth first goes down to a2/b2's files and leaves
    a0, a1 and a2's other two bN. Walking on from what is left lists every entry once."""
    root = _levels(tmp_path / "t")
    everything = sorted(walked([root], native))
    for breadth_first, left_depths in ((True, [2] * 8), (False, [1, 1, 2, 2])):
        o = WalkOptions()
        w = Walker(o, native=native)
        stack = w.run(list(plan([str(root)], o).dirs), 1, breadth_first=breadth_first)
        assert sorted(d.depth for d in stack) == left_depths and len(w.out) == 2
        w.run(stack, 10**9)
        assert sorted(w.out.table().column("path").to_pylist()) == everything


@pytest.mark.parametrize("native", NATIVE)
def test_a_listing_task_stops_at_its_bytes_of_paths(tmp_path, monkeypatch, native):
    """LISTING_BYTES bounds a task's part as entries do: with room for about one directory's paths
    (each bN holds two paths of len(prefix) + 2 characters), a task lists one or two directories."""
    import exoflow.sources.walk as walk
    root = _levels(tmp_path / "t")
    monkeypatch.setattr(walk, "LISTING_BYTES", 2 * len(str(root / "a0" / "b0" / "f1")))
    o = WalkOptions()
    w = Walker(o, native=native)
    stack = w.run(list(plan([str(root / "a0")], o).dirs), 10**9)     # a0: its 3 bN, then b2's files
    assert w.out.path_bytes >= walk.LISTING_BYTES and len(stack) == 2
    assert sorted(d.depth for d in stack) == [1, 1]


@pytest.mark.skipif(not native_available(), reason="exoflow._native is not built (no C compiler at install)")
@pytest.mark.parametrize("budget, breadth_first, rounds", [(10**9, False, 1), (3, False, 9), (3, True, 9), (1, False, 40)])
def test_the_compiled_walk_lists_what_the_python_walk_lists(tmp_path, overlapping, budget, breadth_first, rounds):
    """``exoflow._native.walk_dirs`` (the walk's loop in C) against the os.scandir walk, an
    independent implementation: the same rows in the same order (paths, lstat fields, depth, top
    directory, errors), the same directories left at each budget and the same count of directories
    listed, on an awkward tree (a device, a FIFO, a socket, names not UTF-8, links) beside
    overlapping PATHs, with --max-depth and without."""
    from conftest import make_awkward_tree
    awkward = tmp_path / "awkward"
    awkward.mkdir()
    special = make_awkward_tree(awkward)
    try:
        _levels(awkward / "levels")
        for paths, opts in [([awkward], {}), ([overlapping, overlapping / "pics"], {}), ([awkward], {"max_depth": 2})]:
            results = []
            for native in (True, False):
                o = WalkOptions(**opts)
                w = Walker(o, native=native)
                stack, left = list(plan([str(p) for p in paths], o).dirs), []
                for _ in range(rounds):
                    stack = w.run(stack, budget, breadth_first=breadth_first)
                    left.append(sorted(d.path for d in stack))
                results.append((w.out.table(), left, w.dirs_scanned, stack))
            (a, a_left, a_dirs, a_stack), (b, b_left, b_dirs, b_stack) = results
            assert a.num_rows > 5 and a.equals(b)
            assert a_left == b_left and a_dirs == b_dirs and a_stack == b_stack
    finally:
        special["locked"].chmod(0o755)
        special["listable"].chmod(0o755)
