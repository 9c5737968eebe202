"""Dedup job: duplicate sets equal jdupes' on a tree with every trap planted; actions keep
content, need --apply, and skip files changed between scan and action."""
from __future__ import annotations

import json
import os
import random
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from conftest import exoflow, read_dataset

from exoflow.ops.dedup.stages import MAP_BATCH, READ_COLUMNS, _slices, find_duplicates, split_candidates
from exoflow.ops.dedup.actions import act_on_group


def make_tree(root: Path) -> None:
    """Planted duplicates, hard links, empty files, symlinks and near misses."""
    rnd = os.urandom
    big = bytearray(rnd(300_000))
    big[150_000] = big[-1] = ord("Z")   # never equal to the planted "A"/"B"/"1"/"2" near misses below
    big = bytes(big)
    files = {
        "a/dup1": b"same small content\n", "b/dup1-copy": b"same small content\n", "c/dup1-again": b"same small content\n",
        "a/big": big, "b/big-copy": big,                                   # > 64 KiB: prefix + suffix + full
        "a/samesize1": b"x" * 1000, "a/samesize2": b"y" * 1000,            # same size, different content
        "p/prefix1": big[:-1] + b"A", "p/prefix2": big[:-1] + b"B",        # same prefix, different suffix
        "m/middle1": big[:150_000] + b"1" + big[150_001:],                 # same prefix and suffix, middle differs
        "m/middle2": big[:150_000] + b"2" + big[150_001:],
        "e/empty1": b"", "e/empty2": b"", "e/empty3": b"",
        "u/unique": rnd(5000),
        "h/orig": b"linked content", "h/copy": b"linked content",
        "x/4096a": b"q" * 4096, "x/4096b": b"q" * 4096,                    # exactly the prefix length
    }
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    os.link(root / "h/orig", root / "h/orig-hardlink")       # same inode: one file, not a duplicate
    os.link(root / "u/unique", root / "u/unique-link")       # only hard links: no group at all
    os.symlink("../a/dup1", root / "b/symlink-to-dup1")      # symlinks are not followed


def _ours(out: Path) -> set[frozenset]:
    t = read_dataset(out / "duplicates").to_pandas()
    return {frozenset(g["path"]) for _, g in t.groupby("group_id")}


def _jdupes(root: Path, *flags: str) -> set[frozenset]:
    r = subprocess.run(["jdupes", "-r", "-q", *flags, "."], cwd=root, capture_output=True, text=True, check=True)
    groups = [g for g in r.stdout.strip().split("\n\n") if g.strip()]
    return {frozenset(str(root / os.path.normpath(p)) for p in g.splitlines()) for g in groups}


def _by_inode(groups: set[frozenset]) -> set[frozenset]:
    """Groups as sets of (device, inode): which name of a hard-linked file is shown may differ."""
    return {frozenset((os.lstat(p).st_dev, os.lstat(p).st_ino) for p in g) for g in groups}


def _run(tree: Path, out: Path, *args: str) -> subprocess.CompletedProcess:
    r = exoflow("run", "dedup", str(tree), "--out", str(out), "--chunk-files", "4", "--no-dashboard", *args)
    assert r.returncode == 0, r.stderr
    return r


def test_duplicate_sets_equal_jdupes(tmp_path):
    tree = tmp_path / "t"
    make_tree(tree)
    r = _run(tree, tmp_path / "out")
    ours, theirs = _ours(tmp_path / "out"), _jdupes(tree)
    assert len(ours) == 4          # dup1 x3, big x2, h/orig+copy, x/4096 x2
    assert _by_inode(ours) == _by_inode(theirs)
    assert "reclaimable" in r.stdout
    # the readable report lists the same groups, the largest reclaimable first
    text = (tmp_path / "out" / "duplicates.txt").read_text()
    blocks = [b.splitlines() for b in text.strip().split("\n\n")]
    assert {frozenset(b[1:]) for b in blocks} == ours
    assert blocks[0][1:] == sorted([str(tree / "a/big"), str(tree / "b/big-copy")])


def test_flags_match_jdupes_include_empty_and_hardlinks(tmp_path):
    tree = tmp_path / "t"
    make_tree(tree)
    _run(tree, tmp_path / "z", "--include-empty")
    assert _by_inode(_ours(tmp_path / "z")) == _by_inode(_jdupes(tree, "-z"))
    _run(tree, tmp_path / "H", "--hardlinks")
    ours = _ours(tmp_path / "H")
    assert ours == _jdupes(tree, "-H")          # with -H every name is listed, so paths compare exactly
    assert frozenset({str(tree / "u/unique"), str(tree / "u/unique-link")}) in ours


def _contents(tree: Path) -> dict[str, bytes]:
    return {str(p.relative_to(tree)): p.read_bytes() for p in tree.rglob("*") if p.is_file() and not p.is_symlink()}


def test_actions_need_apply_and_keep_content(tmp_path):
    tree = tmp_path / "t"
    make_tree(tree)
    before = _contents(tree)
    inodes = {p: os.lstat(tree / p).st_ino for p in before}
    _run(tree, tmp_path / "dry", "--action", "hardlink")
    assert {p: os.lstat(tree / p).st_ino for p in before} == inodes          # dry run: nothing changed
    log = (tmp_path / "dry" / "actions.log").read_text()
    assert log.count("\tdry-run\t") == 5 and "\tdone\t" not in log

    _run(tree, tmp_path / "apply", "--action", "hardlink", "--keep", "first", "--apply")
    assert _contents(tree) == before                                         # every name, same bytes
    for group in _ours(tmp_path / "apply"):
        assert len({os.lstat(p).st_ino for p in group}) == 1                 # now one inode per group
    # every name of a duplicate file is changed: h/orig and its second name h/orig-hardlink both
    # now lead to the keeper h/copy (5 duplicate files, 6 names)
    assert len({os.lstat(tree / p).st_ino for p in ("h/copy", "h/orig", "h/orig-hardlink")}) == 1
    assert (tmp_path / "apply" / "actions.log").read_text().count("\tdone\t") == 6

    tree2 = tmp_path / "t2"
    make_tree(tree2)
    before2 = _contents(tree2)
    _run(tree2, tmp_path / "del", "--action", "delete", "--keep", "shortest-path", "--apply")
    after2 = _contents(tree2)
    assert set(before2.values()) == set(after2.values())                     # no content lost
    assert len(before2) - len(after2) == 6                                 # 5 files, one with 2 names
    assert "h/copy" in after2 and "h/orig" not in after2 and "h/orig-hardlink" not in after2
    assert "a/dup1" in after2 and "a/big" in after2                          # the shortest path is kept
    assert "c/dup1-again" not in after2 and "b/big-copy" not in after2


def _group(tree: Path, names: list[str]) -> pd.DataFrame:
    rows = []
    for n in names:
        st = os.lstat(tree / n)
        rows.append({"group_id": 1, "path": str(tree / n), "path_bytes": None, "size": st.st_size,
                     "mtime_ns": st.st_mtime_ns, "inode": st.st_ino, "device": st.st_dev})
    return pd.DataFrame(rows)


def test_changed_between_scan_and_action_is_skipped(tmp_path):
    tree = tmp_path / "t"
    make_tree(tree)
    g = _group(tree, ["a/dup1", "b/dup1-copy", "c/dup1-again"])
    (tree / "b/dup1-copy").write_bytes(b"edited after the scan\n")          # metadata differs
    target = tree / "c/dup1-again"                                          # bytes differ, metadata restored
    st = target.stat()
    target.write_bytes(b"SAME small content\n")
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    lines: list[list[str]] = []
    act_on_group(g.to_dict("records"), {"action": "delete", "apply": True, "keep": "first"}, lines.append)
    status = {line[3]: (line[2], line[5]) for line in lines if line[2] != "note"}
    assert status[str(tree / "a/dup1")][0] == "kept"
    assert status[str(tree / "b/dup1-copy")][0] == "skipped" and "changed since scan" in status[str(tree / "b/dup1-copy")][1]
    assert status[str(tree / "c/dup1-again")] == ("skipped", "contents differ byte by byte")
    assert (tree / "b/dup1-copy").exists() and target.read_bytes() == b"SAME small content\n"


def _listing(tree: Path) -> pd.DataFrame:
    """Listing rows (the columns dedup reads) of every regular file under ``tree``."""
    rows = []
    for p in sorted(tree.rglob("*")):
        st = os.lstat(p)
        if p.is_file() and not p.is_symlink():
            rows.append({"path": str(p), "path_bytes": None, "type": "file", "size": st.st_size,
                         "mtime_ns": st.st_mtime_ns, "inode": st.st_ino, "device": st.st_dev,
                         "nlink": st.st_nlink, "error": None})
    return pd.DataFrame(rows, columns=READ_COLUMNS)


def test_shuffle_pieces_hold_all_candidates_of_their_sizes(tmp_path):
    tree = tmp_path / "t"
    make_tree(tree)
    df = _listing(tree)
    df.loc[df["path"].str.endswith("u/unique"), ["type", "error"]] = ["file", "EACCES: Permission denied"]
    parts = []
    for i, half in enumerate((df.iloc[::2], df.iloc[1::2])):       # two listing parts, one map task
        parts.append(str(tmp_path / f"part-{i}.parquet"))
        pq.write_table(pa.Table.from_pandas(half, preserve_index=False), parts[-1])
    sizes = np.array(sorted(s for s, n in df["size"].value_counts().items() if n >= 2 and s > 0))
    pieces = split_candidates([(p, 0, None) for p in parts], sizes, 3, include_empty=False)
    assert len(pieces) == 3
    seen = [set(p.column("size").to_pylist()) for p in pieces]
    for a in range(3):
        for b in range(a + 1, 3):
            assert not seen[a] & seen[b]                                # each size lives in one piece
    paths = sorted(x for p in pieces for x in p.column("path").to_pylist())
    ok = df["error"].isna() & df["size"].isin(sizes)
    assert paths == sorted(df.loc[ok, "path"])                          # no errors, no empties, no unique sizes


def test_file_changed_since_listing_is_left_out(tmp_path):
    tree = tmp_path / "t"
    make_tree(tree)
    df = _listing(tree)
    df = df[df["path"].str.contains("dup1")]                            # three equal small files
    (tree / "c/dup1-again").write_bytes(b"same small content\n plus more")   # grew after the listing
    r = find_duplicates(df.copy(), {"hash": "xxh3-128"})
    assert sorted(r["rows"]["path"]) == [str(tree / "a/dup1"), str(tree / "b/dup1-copy")]
    assert r["stats"]["errors"] == 1 and "changed" in r["errors"][0][1]


def test_awkward_names_in_report_and_actions(tmp_path):
    """A name with a newline posing as a group header, and a protected copy: the run completes,
    the report escapes names, the log is written, and --keep-path is honoured."""
    tree = tmp_path / "t"
    (tree / "keep").mkdir(parents=True)
    data = b"same bytes\n" * 10
    names = ["a", "d2\n# group 9: fake", "keep/precious"]
    for n in names:
        (tree / n).write_bytes(data)
    r = exoflow("run", "dedup", str(tree), "--out", str(tmp_path / "o"), "--no-dashboard", "-q",
                "--action", "delete", "--keep", "first", "--keep-path", "*/keep/*", "--apply")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    report = (tmp_path / "o" / "duplicates.txt").read_text()
    assert str(tree / "d2") + "\\n# group 9: fake" in report            # escaped, one line
    assert report.count("# group ") == 1 + 1                             # the real header + the escaped text
    assert [l for l in report.splitlines() if l.startswith("# group")] == [report.splitlines()[0]]
    log = (tmp_path / "o" / "actions.log").read_text()
    assert "\tkept\t" + str(tree / "keep/precious") in log               # --keep-path wins over --keep first
    assert (tree / "keep/precious").read_bytes() == data                  # the protected copy survives
    assert not (tree / "a").exists() and not (tree / names[1]).exists()   # the others were removed


def test_small_candidates_read_in_bounded_batches_give_the_same_groups(tmp_path, monkeypatch):
    """The first pass reads small files READ_BATCH bytes at a time: a bound of a few bytes (one
    file per batch) and an unbounded one find the same duplicates."""
    import pandas as pd

    from exoflow.ops.dedup import stages as dedup

    tree = tmp_path / "t"
    make_tree(tree)
    rows = []
    for p in sorted(tree.rglob("*")):
        st = os.lstat(p)
        if p.is_file() and not p.is_symlink() and st.st_size:
            rows.append({"path": str(p), "path_bytes": None, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                         "inode": st.st_ino, "device": st.st_dev, "nlink": st.st_nlink})
    df = pd.DataFrame(rows)
    found = []
    for bound in (10**9, 1):
        monkeypatch.setattr(dedup, "READ_BATCH", bound)
        r = dedup.find_duplicates(df.copy(), {"hash": "xxh3-128"})
        found.append(sorted(map(tuple, r["rows"][["size", "hash", "path"]].values.tolist())))
    assert found[0] == found[1] and len(found[0]) == 9    # dup1 x3, big x2, 4096 x2, h/orig + h/copy


def _long_named_tree(root: Path, files: int) -> None:
    """``files`` files of 1-400 bytes (every size 100 times), every 5th the start of one random
    blob (sizes 1, 6, 11, ...: 80 duplicate groups of 100 files), under paths of ~3.8 KB: many candidates and big rows."""
    # a fixed blob: from a random one, the 100 two-byte slices collide in about 1 run of 13 and make
    # an 81st group (seed 1 gives none: counted over all 40,000 files)
    blob = random.Random(1).randbytes(1 << 16)
    deep = "/".join(["d" * 200] * 17)
    for i in range(files):
        if i % 500 == 0:
            folder = root / f"{i // 500:03d}" / deep
            folder.mkdir(parents=True)
        size = 1 + i % 400
        start = (i * 7919) % 60000 if i % 5 else 0
        (folder / (f"{i:06d}" + "f" * 200)).write_bytes(blob[start:start + size])


def test_completes_by_spilling_under_a_memory_limit_below_its_stages(tmp_path):
    """40,000 candidates with ~3.8 KB paths: the shuffle holds ~150 MB of paths (~800 MB at the
    reduce tasks' peaks), while a 300 MiB worker, which holds ~150 MiB before any data, pauses at
    255 MiB. The run completes by spilling to disk with the groups of a run without a limit and
    of jdupes. (Before: workers killed in the map tasks or stuck paused.)"""
    tree = tmp_path / "t"
    _long_named_tree(tree, 40_000)
    groups, summaries = {}, {}
    for limit in ("300MiB", "4GiB"):
        out = tmp_path / limit
        r = exoflow("run", "dedup", str(tree), "--out", str(out), "--workers", "2", "--no-dashboard", "-q",
                    "--memory-limit", limit, timeout=240)
        assert r.returncode == 0, (limit, r.stderr)
        groups[limit] = _ours(out)
        summaries[limit] = json.loads((out / "summary.json").read_text())
    paths = read_dataset(tmp_path / "4GiB" / "files").column("path").to_pylist()
    assert sum(map(len, paths)) > 140 * 2**20                       # what the shuffle carries: paths alone
    # per tier (exoflow.spilling): host -> disk only; lz4-compressed on disk (the paths repeat)
    tiers = {limit: summaries[limit]["spilled_by_tier"] for limit in summaries}
    assert tiers["300MiB"]["host_to_disk"] > 4 * summaries["300MiB"]["spilled_bytes"] > 0
    assert tiers["300MiB"]["device_to_host"] is None and "host -&gt; disk" in (tmp_path / "300MiB" / "report.html").read_text()
    assert tiers["4GiB"] == {"device_to_host": None, "host_to_disk": 0} and summaries["4GiB"]["spilled_bytes"] == 0
    assert len(groups["4GiB"]) == 80 and groups["300MiB"] == groups["4GiB"] == _jdupes(tree)


def test_map_tasks_get_about_equal_rows():
    """The listing parts of a /usr inventory (rows counted from its parts) dealt to two map tasks:
    whole parts, largest first to the task with fewer rows, by hand: 50,000 + 8,297 + 2,004 + 571
    = 60,872 rows and 43,247 + 21,458 = 64,705 (dealt in order they were 95,822 and 29,755)."""
    parts, rows = ["a", "b", "c", "d", "e", "f"], np.array([2004, 50000, 571, 43247, 8297, 21458])
    groups = _slices(parts, rows, 1_600_000, 2)
    assert groups == [[("a", 0, 2004), ("b", 0, 50000), ("c", 0, 571), ("e", 0, 8297)],
                      [("d", 0, 43247), ("f", 0, 21458)]]
    # a part larger than a task's share is cut at whole batches: 12 * 4096 = 49,152 rows
    assert MAP_BATCH == 4096
    groups = _slices(["big", "small"], np.array([100_000, 10]), 1_600_000, 2)
    assert groups == [[("big", 0, 49152), ("big", 98304, 100_000)], [("big", 49152, 98304), ("small", 0, 10)]]
    # every row once, for many shapes, and no task over its share by more than one slice
    rng = np.random.default_rng(5)
    for _ in range(200):
        n, n_map, map_rows = int(rng.integers(1, 12)), int(rng.integers(1, 6)), int(rng.integers(1, 300_000))
        rows = rng.integers(0, 120_000, n)
        groups = _slices([str(i) for i in range(n)], rows, map_rows, n_map)
        covered = sorted((int(p), a, b) for g in groups for p, a, b in g)
        for i in range(n):
            spans = [(a, b) for p, a, b in covered if p == i]
            assert spans[0][0] == 0 and spans[-1][1] == max(int(rows[i]), 0)
            assert all(b == c for (_, b), (c, _) in zip(spans, spans[1:]))
        step = max(MAP_BATCH, min(map_rows, -(-int(rows.sum()) // n_map)) // MAP_BATCH * MAP_BATCH)
        loads = [sum(b - a for _, a, b in g) for g in groups]
        assert max(loads) <= -(-int(rows.sum()) // n_map) + step
