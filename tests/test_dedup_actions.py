"""Dedup actions keep users' data and files' identity: reflink dedupes in place (on an XFS image
the test makes), --keep-path is compared in one canonical form, every name of a duplicate file
is acted on and the bytes freed are measured, and a run killed mid --apply leaves a log and
leftovers that the next run removes."""
from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import IS_ROOT, exoflow

from exoflow.ops.dedup import actions as dedup_actions
from exoflow.ops.dedup.actions import (PAUSE_ENV, PAUSED_ENV, act_on_group, canonical_patterns, keep_matches,
                                       sweep_leftovers)

MiB = 2**20


def _dedup(paths: str | Path | list, out: Path, *args: str, cwd: Path | None = None,
           **kw) -> subprocess.CompletedProcess:
    paths = [str(p) for p in paths] if isinstance(paths, list) else [str(paths)]
    return exoflow("run", "dedup", *paths, "--out", str(out), "--no-dashboard", *args,
                   cwd=str(cwd) if cwd else None, **kw)


def _actions(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())["result"]["actions"]


# ---- 1. reflink: in place, on a reflink-capable file system ------------------------------------

@pytest.fixture
def xfs(tmp_path: Path):
    """A fresh XFS (reflink=1) on a loop device, mounted at tmp_path/mnt; removed afterwards."""
    if not IS_ROOT:
        pytest.skip("mounting a loop device needs root")
    for tool, package in (("mkfs.xfs", "xfsprogs"), ("filefrag", "e2fsprogs")):
        if not shutil.which(tool):
            pytest.skip(f"{tool} not installed (Debian package {package})")
    img, mnt = tmp_path / "xfs.img", tmp_path / "mnt"
    with open(img, "wb") as f:
        f.truncate(300 * MiB)                    # sparse; the smallest XFS mkfs.xfs accepts
    subprocess.run(["mkfs.xfs", "-q", "-m", "reflink=1", str(img)], check=True)
    loop = subprocess.run(["losetup", "-f", "--show", str(img)], capture_output=True, text=True)
    if loop.returncode:
        pytest.skip(f"no loop device: {loop.stderr.strip()}")
    dev = loop.stdout.strip()
    mnt.mkdir()
    mounted = subprocess.run(["mount", dev, str(mnt)], capture_output=True, text=True)
    try:
        if mounted.returncode:
            pytest.skip(f"cannot mount XFS: {mounted.stderr.strip()}")
        yield mnt
    finally:
        if mounted.returncode == 0:
            subprocess.run(["umount", str(mnt)], check=True)
        subprocess.run(["losetup", "-d", dev], check=True)


def _shared(path: Path) -> list[bool]:
    """Per extent, whether filefrag (e2fsprogs, FIEMAP) flags it shared."""
    out = subprocess.run(["filefrag", "-v", str(path)], capture_output=True, text=True, check=True).stdout
    return ["shared" in line for line in out.splitlines() if line.strip()[:1].isdigit() and ".." in line]


def _free(path: Path) -> int:
    os.sync()
    st = os.statvfs(path)
    return st.f_bfree * st.f_frsize


def test_reflink_dedupes_in_place_keeping_identity(xfs: Path, tmp_path: Path):
    tree = xfs / "t"
    tree.mkdir()
    data = os.urandom(8 * MiB)
    (tree / "keep").write_bytes(data)           # written twice: no cp/cat, which clone on XFS
    (tree / "dup").write_bytes(data)
    os.utime(tree / "keep", ns=(10**18, 10**18))                 # the oldest: the keeper
    os.link(tree / "dup", tree / "dup-link")
    os.chown(tree / "dup", 12345, 123)
    os.chmod(tree / "dup", 0o640)
    before = os.lstat(tree / "dup")
    held = os.open(tree / "dup", os.O_RDWR)                      # a writer that had it open before
    try:
        assert not any(_shared(tree / "dup"))
        free = _free(xfs)
        r = _dedup(tree, tmp_path / "o", "--action", "reflink", "--keep", "oldest", "--apply", "-q")
        assert r.returncode == 0, r.stderr
        after = os.lstat(tree / "dup")
        keys = ("st_ino", "st_dev", "st_uid", "st_gid", "st_mode", "st_nlink", "st_mtime_ns")
        assert {k: getattr(after, k) for k in keys} == {k: getattr(before, k) for k in keys}
        assert os.lstat(tree / "dup-link").st_ino == before.st_ino
        assert (tree / "dup").read_bytes() == data
        assert _shared(tree / "dup") and all(_shared(tree / "dup"))           # extents really shared
        assert _free(xfs) - free >= 8 * MiB                                    # and the space came back
        assert _actions(tmp_path / "o")["freed_bytes"] == 8 * MiB             # hand count: dup's 8 MiB
        os.pwrite(held, b"WRITTEN", 0)                                         # the old descriptor still
    finally:                                                                   # writes into the file
        os.close(held)
    assert (tree / "dup").read_bytes()[:7] == b"WRITTEN"
    assert (tree / "keep").read_bytes() == data                               # copy on write: keeper intact
    log = (tmp_path / "o" / "actions.log").read_text()
    assert log.count("\tdone\t") == 2 and "\tstarted\t" in log                 # dup and its second name


def test_reflink_stopped_part_way_reports_the_bytes_it_freed(xfs: Path):
    """The bytes change after the comparison (simulated: equal for the first 16 MiB call, not
    after): the kernel shares the first range and refuses the rest; the file reads as before and
    the log says failed, with the bytes really freed. Oracle: statvfs before and after."""
    from exoflow.ops.dedup.actions import DEDUPE_STEP, _dedupe_file
    a = os.urandom(DEDUPE_STEP + 4 * MiB)
    b = a[:DEDUPE_STEP + MiB] + os.urandom(3 * MiB)
    (xfs / "k").write_bytes(a)
    (xfs / "d").write_bytes(b)
    free, lines = _free(xfs), []
    fk, fd = os.open(xfs / "k", os.O_RDONLY), os.open(xfs / "d", os.O_RDONLY)
    try:
        freed = _dedupe_file(fk, fd, [{"size": len(a)}], lambda status, row, why="": lines.append((status, why)))
    finally:
        os.close(fk)
        os.close(fd)
    assert (xfs / "d").read_bytes() == b and (xfs / "k").read_bytes() == a
    assert lines[-1][0] == "failed" and f"{DEDUPE_STEP} bytes freed" in lines[-1][1]
    assert freed == _free(xfs) - free == DEDUPE_STEP


@pytest.mark.parametrize("action", ["hardlink", "symlink", "delete"])
def test_removing_a_reflinked_copy_frees_only_its_own_extents(xfs: Path, tmp_path: Path, action: str):
    """A duplicate that already shares its extents with the keeper (cp --reflink, or an earlier
    --action reflink) frees nothing when its names are removed; one that does not frees its
    blocks. Oracle: by hand (1 MiB), and statvfs before and after (less the inode chunks XFS may allocate)."""
    tree = xfs / "t"
    tree.mkdir()
    a, b = os.urandom(4 * MiB), os.urandom(MiB)
    (tree / "keep").write_bytes(a)
    subprocess.run(["cp", "--reflink=always", str(tree / "keep"), str(tree / "clone")], check=True)
    (tree / "keep2").write_bytes(b)
    (tree / "copy2").write_bytes(b)
    for n in ("keep", "keep2"):
        os.utime(tree / n, ns=(10**18, 10**18))
    free = _free(xfs)
    r = _dedup(tree, tmp_path / "o", "--action", action, "--apply", "-q")
    assert r.returncode == 0, r.stderr
    assert (tree / "clone").read_bytes() == a if action != "delete" else not (tree / "clone").exists()
    assert _actions(tmp_path / "o")["freed_bytes"] == MiB
    # XFS may allocate inode chunks (32 KiB each) for the symlinks and temporary directories made
    assert 0 <= MiB - (_free(xfs) - free) <= 2 * 32768


def test_reflink_where_unsupported_fails_and_changes_nothing(tmp_path: Path):
    """On a file system without FIDEDUPERANGE (ext4, tmpfs) the action fails per file, files intact."""
    for n in ("a", "b"):
        (tmp_path / n).write_bytes(b"same\n" * 1000)
    before = os.lstat(tmp_path / "b")
    lines: list[list[str]] = []
    act_on_group(_rows(tmp_path, ["a", "b"]), {"action": "reflink", "apply": True, "keep": "first"}, lines.append)
    status = {Path(line[3]).name: line[2] for line in lines if line[2] != "started"}
    if status["b"] == "done":
        pytest.skip("this file system supports FIDEDUPERANGE")
    assert status == {"a": "kept", "b": "failed"}
    assert os.lstat(tmp_path / "b").st_ino == before.st_ino and (tmp_path / "b").read_bytes() == b"same\n" * 1000


def _rows(root: Path, names: list[str]) -> list[dict]:
    """One group's names as act_on_group takes them (from the file system as it is now)."""
    sts = [os.lstat(root / n) for n in names]
    return [{"group_id": 1, "path": str(root / n), "path_bytes": None, "size": st.st_size,
             "mtime_ns": st.st_mtime_ns, "inode": st.st_ino, "device": st.st_dev} for n, st in zip(names, sts)]


# ---- 2. --keep-path in one canonical form -------------------------------------------------------

def _inbox_master(root: Path) -> None:
    for d in ("inbox", "master"):
        (root / d).mkdir(parents=True)
        (root / d / "a.jpg").write_bytes(b"photo\n" * 100)
    os.symlink("master", root / "mlink")


def test_keep_path_spellings_all_mean_the_same_files(tmp_path: Path):
    """Any spelling of the pattern matches any spelling of a name of the master file (the
    name walked through a symlinked PATH included), never the inbox copy. Oracle: by hand."""
    _inbox_master(tmp_path)
    cwd = str(tmp_path)
    spellings = ["master/*", "./master/*", f"{tmp_path}/master/*", "master", "master/", "./master/",
                 "mlink/*", f"{tmp_path}/mlink", "*/master/*", "inbox/../master/*",
                 "mast*/*", "mast*/", "./m?ster/", "[m]aster/*", f"{tmp_path}/mas*/"]   # wildcards in the first part
    master = ["master/a.jpg", "./master/a.jpg", f"{tmp_path}/master/a.jpg", "mlink/a.jpg",
              f"{tmp_path}/./mlink/a.jpg", "inbox/../master/a.jpg"]
    inbox = ["inbox/a.jpg", "./inbox/a.jpg", f"{tmp_path}/inbox/a.jpg"]
    from exoflow.ops.dedup.actions import absolute
    m = keep_matches([absolute(n, cwd) for n in master + inbox], canonical_patterns(spellings, cwd))
    assert m[:len(master)].all()
    assert not m[len(master):].any()
    # the working directory is the CLI's: the same patterns from elsewhere name other files
    assert not keep_matches([f"{tmp_path}/master/a.jpg"], canonical_patterns(["master/*"], "/")).any()
    # a relative pattern with a wildcard in its first part is still relative: never /master/*
    for pat in ("mast*/*", "mast*/", "[m]aster/*", "?aster/*"):
        assert not keep_matches(["/master/a.jpg"], canonical_patterns([pat], cwd)).any(), pat


def test_keep_path_relative_to_relative_paths(tmp_path: Path):
    """The issue's case: PATHs ./inbox ./mlink (master through a symlink), --keep-path 'master/*':
    the master copy is kept, the inbox copy deleted."""
    _inbox_master(tmp_path)
    r = _dedup(["./inbox", "./mlink"], tmp_path / "o", "--keep-path", "master/*", "--action", "delete",
               "--apply", "-q", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "master/a.jpg").exists() and not (tmp_path / "inbox/a.jpg").exists()


def test_keep_path_matching_nothing_is_a_usage_error(tmp_path: Path):
    _inbox_master(tmp_path)
    r = _dedup(["./inbox", "./master"], tmp_path / "o", "--keep-path", "masters/*", "--action", "delete",
               "--apply", "-q", cwd=tmp_path)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "masters/*" in r.stderr and "Traceback" not in r.stderr
    assert (tmp_path / "inbox/a.jpg").exists() and (tmp_path / "master/a.jpg").exists()   # nothing changed
    assert not (tmp_path / "o").exists()                                                  # nothing left


@pytest.mark.parametrize("args", [["--apply"], ["--keep-path", "x/*"], ["--keep", "newest"], ["--top", "-1"],
                                  ["--action", "delete", "--top", "-1"]])
def test_bad_options_are_usage_errors_before_the_cluster(tmp_path: Path, args: list[str]):
    _inbox_master(tmp_path)
    r = _dedup(tmp_path / "inbox", tmp_path / "o", *args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert "error:" in lines[0] and "Traceback" not in r.stderr and "workers" not in r.stderr   # not started
    assert lines[1:] in ([], ["(see 'exoflow run dedup --help')"])
    assert not (tmp_path / "o").exists()


def test_log_names_files_exactly(tmp_path: Path):
    """Names that are not UTF-8 and differ only there are told apart in actions.log (their bytes
    as \\xNN; backslash, tab and newline escaped). Oracle: the names os.listdir gives as bytes."""
    import codecs
    d = os.fsencode(tmp_path / "t")
    os.mkdir(d)
    names = [b"keep", b"a\xff", b"a\xfe", b"b\\xff", b"c\tx\ny"]
    for n in names:
        with open(os.path.join(d, n), "wb") as f:
            f.write(b"same bytes\n" * 100)
    os.utime(os.path.join(d, b"keep"), ns=(10**18, 10**18))
    r = _dedup(tmp_path / "t", tmp_path / "o", "--action", "delete", "-q")
    assert r.returncode == 0, r.stderr
    rows = [line.split("\t") for line in (tmp_path / "o/actions.log").read_text().splitlines()[1:]]
    got = {codecs.escape_decode(row[3].encode())[0]: row[2] for row in rows}
    assert got == {os.path.join(d, n): "kept" if n == b"keep" else "dry-run" for n in os.listdir(d)}


# ---- 3. every name of a duplicate file; bytes freed measured ------------------------------------

@pytest.mark.parametrize("action", ["hardlink", "delete"])
def test_hard_linked_set_plus_older_copy(tmp_path: Path, action: str):
    """t/in/old (oldest) and t/in/new1 = t/in/new2 (one file, two names): both names are acted
    on, so the file is gone and its blocks are freed. t/in/x-old and t/in/x-new whose file has a
    third name outside the walked PATH: nothing is freed, and the report says so. Oracle: the
    file system's own st_blocks of the files, hand-summed."""
    tin, tout = tmp_path / "t/in", tmp_path / "t/out"
    tin.mkdir(parents=True)
    tout.mkdir()
    a, b = os.urandom(100_000), os.urandom(50_000)
    for name, data in (("old", a), ("new1", a), ("x-old", b), ("x-new", b)):
        (tin / name).write_bytes(data)
    os.utime(tin / "old", ns=(10**18, 10**18))
    os.utime(tin / "x-old", ns=(10**18, 10**18))
    os.link(tin / "new1", tin / "new2")
    os.link(tin / "x-new", tout / "x-new-elsewhere")
    freed = os.lstat(tin / "new1").st_blocks * 512                # the only file that loses every name
    r = _dedup(tin, tmp_path / "o", "--action", action, "--keep", "oldest", "--apply")
    assert r.returncode == 0, r.stderr
    old = os.lstat(tin / "old").st_ino
    if action == "hardlink":
        assert {os.lstat(tin / n).st_ino for n in ("old", "new1", "new2")} == {old}
        assert (tin / "new1").read_bytes() == a
    else:
        assert not (tin / "new1").exists() and not (tin / "new2").exists()
    assert (tout / "x-new-elsewhere").read_bytes() == b                     # the name outside is untouched
    acts = _actions(tmp_path / "o")
    assert acts["freed_bytes"] == freed
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())["result"]
    assert summary["reclaimable"] == 150_000                                 # expected, not measured
    assert "freed (measured after the changes)" in r.stdout
    log = (tmp_path / "o" / "actions.log").read_text()
    assert log.count("\tdone\t") == 3                                        # new1, new2, x-new
    assert "still has 1 name(s)" in log                                      # x-new: why nothing was freed


# ---- 4. killed mid --apply ----------------------------------------------------------------------

def _temps(tree: Path) -> list[Path]:
    """exoflow's temporary directories (and look-alikes) in ``tree``; os.walk, as rglob fails on a
    directory removed while it is listed (a change finishing)."""
    return sorted(Path(d, n) for d, dirs, files in os.walk(tree) for n in dirs + files
                  if n.startswith(".exoflow-dedup-"))


def test_sigkill_mid_apply_leaves_a_log_and_the_rerun_removes_its_leftovers(tmp_path: Path):
    """40 pairs in 4 directories; the run is SIGKILLed (every process of it) while a worker holds
    the temporary directory of its 3rd change, with the new link in it (the test hook PAUSE_ENV
    makes that moment certain and leaves a mark in PAUSED_ENV's directory), and the other worker
    has paused the same way or has no change left to make (Dask does not promise that both make
    three). Nothing is lost, the log says what was done and started, and the rerun removes
    exactly exoflow's leftovers, not a user's file that only looks like one."""
    tree = tmp_path / "t"
    names = []
    for i in range(40):
        d = tree / f"d{i % 4}"
        d.mkdir(parents=True, exist_ok=True)
        data = os.urandom(1000 + i)                                  # sizes differ: groups spread over partitions
        for n in (f"a{i}", f"b{i}"):
            (d / n).write_bytes(data)
            names.append((d / n, data))
    keeper = os.lstat(tree / "d0/a0")
    fake = tree / "d0" / f".exoflow-dedup-hardlink-{keeper.st_dev:x}-{keeper.st_ino:x}-deadbeef-00000000.tmp"
    fake.write_bytes(b"a user's file with a name like exoflow's")
    args = ["--action", "hardlink", "--keep", "first", "--apply", "--workers", "2", "--threads-per-worker", "1"]
    cmd = [sys.executable, "-m", "exoflow.cli", "run", "dedup", str(tree), "--out", str(tmp_path / "killed"),
           "--no-dashboard", "-q", *args]
    marks = tmp_path / "paused"
    marks.mkdir()
    p = subprocess.Popen(cmd, env={**os.environ, PAUSE_ENV: "3", PAUSED_ENV: str(marks)}, start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    logs = tmp_path / "killed/actions.log.d"

    def done() -> int:
        return sum(f.read_text().count("\tdone\t") for f in logs.iterdir()) if logs.is_dir() else 0

    def paused() -> int:
        return len(list(marks.iterdir()))

    try:
        deadline = time.monotonic() + 60
        while not paused() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert paused(), "the run never reached its pause"
        seen, still = done(), time.monotonic()                             # the other worker pauses or runs out
        while paused() < 2 and time.monotonic() - still < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
            if done() != seen:
                seen, still = done(), time.monotonic()
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    for _ in range(100):                                               # every process of the run is gone
        try:
            os.killpg(p.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    left = [t for t in _temps(tree) if t != fake]
    assert len(left) == paused()                                       # a change in flight per paused worker
    assert all(path.read_bytes() == data for path, data in names)      # nothing lost
    pieces = "".join(f.read_text() for f in logs.iterdir())
    assert pieces.count("\tdone\t") >= 2 * len(left)                   # 2 changes per paused worker before it
    for t in left:
        assert "temporary name " + t.name in pieces                     # the change in flight is in the log

    # --hidden: the leftovers are listed too (as other names of the keepers); they are never acted on
    r = exoflow("run", "dedup", str(tree), "--out", str(tmp_path / "rerun"), "--no-dashboard", "--hidden", *args)
    assert r.returncode == 0, r.stderr
    assert _temps(tree) == [fake] and fake.read_bytes().startswith(b"a user's file")
    assert all(path.read_bytes() == data for path, data in names)
    for i in range(40):
        assert os.lstat(tree / f"d{i % 4}/a{i}").st_ino == os.lstat(tree / f"d{i % 4}/b{i}").st_ino
    acts = _actions(tmp_path / "rerun")
    assert acts["leftovers_removed"] == len(left) and "leftover-kept" not in acts["counts"]
    log = (tmp_path / "rerun" / "actions.log").read_text()
    assert sorted(os.path.dirname(line.split("\t")[3]) for line in log.splitlines()
                  if "\tleftover-removed\t" in line) == sorted(map(str, left))
    assert "leftovers of an interrupted run removed" in r.stdout


def test_sweep_removes_only_what_exoflow_leaves_and_puts_back_the_rest(tmp_path: Path):
    """Temporary directories of another run, in each state a killed run can leave: exoflow's
    unfinished new entry (a hard link or symlink to the kept file) is removed; a file set aside
    (delete) is put back under its free name; a file swapped out for a link is swapped back (the
    change undone); a file whose name another file has now is left where it is; an empty one is
    removed. The current run's directories, one another process holds locked (in use), and a
    plain file named like one are left alone. A dry run changes nothing. Oracle: the inodes and
    contents the test made."""
    import fcntl
    keeper = tmp_path / "keeper"
    keeper.write_bytes(b"kept data")
    st = os.lstat(keeper)

    def temp(action: str, n: int, run: str = "aaaaaaaa") -> Path:
        d = tmp_path / f".exoflow-dedup-{action}-{st.st_dev:x}-{st.st_ino:x}-{run}-{n:08x}.tmp"
        d.mkdir()
        return d
    new_link, new_sym = temp("hardlink", 1) / "n1", temp("symlink", 2) / "n2"
    os.link(keeper, new_link)
    os.symlink(str(keeper), new_sym)
    aside, swapped_l, swapped_s = temp("delete", 3) / "n3", temp("hardlink", 4) / "n4", temp("symlink", 5) / "n5"
    taken, own, empty, locked = temp("delete", 6) / "n6", temp("hardlink", 7, "cccccccc") / "n7", temp("delete", 8), \
        temp("delete", 9) / "n9"
    for p in (aside, swapped_l, swapped_s, taken, locked):
        p.write_bytes(b"user data " + p.name.encode())
    os.link(keeper, tmp_path / "n4")                             # the links that were swapped in
    os.symlink(str(keeper), tmp_path / "n5")
    (tmp_path / "n6").write_bytes(b"another file")
    os.link(keeper, own)
    (tmp_path / f".exoflow-dedup-delete-{st.st_dev:x}-{st.st_ino:x}-aaaaaaaa-0000000a.tmp").write_bytes(b"file")
    inodes = {p: os.lstat(p).st_ino for p in (aside, swapped_l, swapped_s)}
    held = os.open(locked.parent, os.O_RDONLY)
    fcntl.flock(held, fcntl.LOCK_EX)
    try:
        for apply in (False, True):
            lines: list[list[str]] = []
            removed = sweep_leftovers([str(tmp_path)], {"action": "delete", "apply": apply, "run_id": "cccccccc"},
                                      lines.append)
            status = {os.path.relpath(line[3], tmp_path).split("/")[-1]: line[2] for line in lines
                      if line[2] != "started"}
            if not apply:
                assert removed == 0 and status == {"n1": "leftover", "n2": "leftover", "n3": "leftover",
                                                   "n4": "leftover", "n5": "leftover", "n6": "leftover-kept",
                                                   empty.name: "leftover"}
                assert all(os.path.lexists(p) for p in (new_link, new_sym, aside, swapped_l, swapped_s, empty))
    finally:
        os.close(held)
    assert removed == 6 and status == {"n1": "leftover-removed", "n2": "leftover-removed", "n3": "leftover-restored",
                                       "n4": "leftover-restored", "n5": "leftover-restored", "n6": "leftover-kept",
                                       empty.name: "leftover-removed"}
    for p in (aside, swapped_l, swapped_s):                     # each user file is back, as the same file
        back = tmp_path / p.name
        assert os.lstat(back).st_ino == inodes[p] and back.read_bytes() == b"user data " + p.name.encode()
        assert not p.parent.exists()
    assert not (tmp_path / "n1").exists() and not os.path.lexists(tmp_path / "n2")
    assert not new_link.parent.exists() and not new_sym.parent.exists() and not empty.exists()
    assert taken.read_bytes() == b"user data n6" and (tmp_path / "n6").read_bytes() == b"another file"
    assert own.exists() and locked.exists()
    assert keeper.read_bytes() == b"kept data" and os.lstat(keeper).st_nlink == 2      # itself and own


# ---- races: the change is checked after an atomic swap; concurrent runs; temporary-like names ----

def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _contents(root: Path) -> set[str]:
    """sha256 of every regular file's bytes under root (through any name), hidden ones too."""
    return {_sha(p) for p in root.rglob("*") if p.is_file() and not p.is_symlink()}


def _needs_swap(d: Path) -> None:
    """Skip where the file system under d cannot swap two names atomically (renameat2)."""
    from exoflow.ops.dedup.actions import RENAME_EXCHANGE, renameat2
    (d / "probe1").write_bytes(b"1")
    (d / "probe2").write_bytes(b"2")
    try:
        renameat2(str(d / "probe1"), str(d / "probe2"), RENAME_EXCHANGE)
    except OSError as e:
        pytest.skip(f"renameat2(RENAME_EXCHANGE) not supported here: {e}")
    finally:
        for n in ("probe1", "probe2"):
            os.unlink(d / n)


@pytest.mark.parametrize("raced", ["dup", "keep"])
@pytest.mark.parametrize("action", ["hardlink", "symlink", "delete"])
def test_a_file_renamed_onto_a_name_during_the_change_is_never_lost(tmp_path: Path, monkeypatch, action: str,
                                                                   raced: str):
    """Between exoflow's last check and its change, another file is renamed onto the duplicate's
    (or the keeper's) name: the test hook makes that moment certain. The change is undone, the
    log says skipped, nothing is left behind, and every content survives, the duplicate as the
    same file. Oracle: sha256 of the contents written, inode of the duplicate."""
    _needs_swap(tmp_path)
    same, other = os.urandom(5000), os.urandom(5000)
    for n, data in (("dup", same), ("keep", same), ("other", other)):
        (tmp_path / n).write_bytes(data)
    os.utime(tmp_path / "keep", ns=(10**18, 10**18))
    rows, dup_ino = _rows(tmp_path, ["keep", "dup"]), os.lstat(tmp_path / "dup").st_ino
    calls = []

    def race() -> None:
        calls.append(raced)
        os.rename(tmp_path / "other", tmp_path / raced)
    monkeypatch.setattr(dedup_actions, "_pause_for_tests", race)
    lines: list[list[str]] = []
    act_on_group(rows, {"action": action, "apply": True, "keep": "oldest", "run_id": "aaaaaaaa"}, lines.append)
    assert calls == [raced]
    assert (tmp_path / raced).read_bytes() == other
    if raced == "keep":                                  # the scanned keeper is gone: dup is the last copy
        assert os.lstat(tmp_path / "dup").st_ino == dup_ino and (tmp_path / "dup").read_bytes() == same
    assert not (tmp_path / "dup").is_symlink()
    assert _contents(tmp_path) >= {hashlib.sha256(same).hexdigest(), hashlib.sha256(other).hexdigest()}
    assert not _temps(tmp_path)
    status = [line[2] for line in lines if Path(line[3]).name == "dup" and line[2] not in ("started", "note")]
    assert status == ["skipped"], lines


def _no_renameat2(*args) -> None:
    raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS))


@pytest.mark.parametrize("swap", ["renameat2", "without renameat2"])
@pytest.mark.parametrize("action", ["delete", "symlink", "hardlink"])
def test_two_runs_with_opposite_keepers_leave_every_content(tmp_path: Path, monkeypatch, action: str, swap: str):
    """Two appliers (threads) act on the same group at once, one keeping a, the other b; each
    waits in the window between its last check and its change for the other to reach its own
    (the test hook; 0.5 s at most). At least one copy of the bytes must stay readable, under one
    of the two names, also where renameat2 is missing (then only the locks protect them).
    Oracle: sha256 of the content written."""
    if swap == "renameat2":
        _needs_swap(tmp_path)
    else:
        monkeypatch.setattr(dedup_actions, "renameat2", _no_renameat2)
    data = os.urandom(5000)
    for n in ("a", "b"):
        (tmp_path / n).write_bytes(data)
    os.utime(tmp_path / "a", ns=(10**18, 10**18))           # a: oldest, b: newest
    rows = _rows(tmp_path, ["a", "b"])
    ready = {"A": threading.Event(), "B": threading.Event()}

    def meet() -> None:
        me = threading.current_thread().name
        ready[me].set()
        ready["B" if me == "A" else "A"].wait(0.5)
    monkeypatch.setattr(dedup_actions, "_pause_for_tests", meet)
    lines: list[list[str]] = []
    threads = [threading.Thread(target=act_on_group, name=name, args=(
        rows, {"action": action, "apply": True, "keep": keep, "run_id": run}, lines.append))
        for name, keep, run in (("A", "oldest", "aaaaaaaa"), ("B", "newest", "bbbbbbbb"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    readable = []
    for n in ("a", "b"):
        try:
            readable.append(_sha(tmp_path / n))
        except OSError:
            pass
    assert hashlib.sha256(data).hexdigest() in readable, lines
    assert not _temps(tmp_path)


@pytest.mark.parametrize("action", ["hardlink", "delete"])
def test_without_renameat2_the_change_is_made_and_the_log_says_so(tmp_path: Path, monkeypatch, action: str):
    """Where renameat2 is missing (ENOSYS; EINVAL where a file system lacks the flag), the
    change is made as before (after the last check) and the log's reason says the swap was not
    possible."""
    monkeypatch.setattr(dedup_actions, "renameat2", _no_renameat2)
    data = os.urandom(3000)
    for n in ("keep", "dup"):
        (tmp_path / n).write_bytes(data)
    lines: list[list[str]] = []
    act_on_group(_rows(tmp_path, ["dup", "keep"]), {"action": action, "apply": True, "keep": "shortest-path"},
                 lines.append)
    done = [line for line in lines if line[2] == "done"]
    assert len(done) == 1 and Path(done[0][3]).name == "keep" and "renameat2" in done[0][5]
    assert (tmp_path / "dup").read_bytes() == data and not _temps(tmp_path)
    if action == "hardlink":
        assert os.lstat(tmp_path / "keep").st_ino == os.lstat(tmp_path / "dup").st_ino
    else:
        assert not (tmp_path / "keep").exists()


def test_names_like_temporary_ones_are_never_acted_on_and_logged(tmp_path: Path):
    """A duplicate whose own name, or whose directory's name, has the form of exoflow's temporary
    names is left alone, with a `skipped` line saying why (never silently left out), and is
    never chosen as the keeper."""
    from exoflow.ops.dedup.actions import apply_actions
    data = os.urandom(3000)
    look_alike = ".exoflow-dedup-delete-1-2-aaaaaaaa-bbbbbbbb.tmp"
    temp_dir = tmp_path / ".exoflow-dedup-delete-1-2-cccccccc-dddddddd.tmp"
    temp_dir.mkdir()
    (tmp_path / "x").write_bytes(b"another file now has the name the file inside had")
    for p in (tmp_path / look_alike, temp_dir / "x", tmp_path / "keep", tmp_path / "dup"):
        p.write_bytes(data)
    rows = pd.DataFrame(_rows(tmp_path, [look_alike, temp_dir.name + "/x", "keep", "dup"]))
    out = tmp_path / "o"
    apply_actions(rows, str(out), 0, {"action": "delete", "apply": True, "keep": "first", "run_id": "eeeeeeee"})
    lines = [line.split("\t") for line in (out / "actions.log.d/000000.tsv").read_text().splitlines()]
    status = {line[3]: (line[2], line[5]) for line in lines if line[2] != "started"}
    assert {Path(p).name: s for p, (s, _) in status.items()} == {
        look_alike: "skipped", "x": "skipped", "dup": "kept", "keep": "done"}
    assert "temporary" in status[str(tmp_path / look_alike)][1]
    assert (tmp_path / look_alike).read_bytes() == data and (temp_dir / "x").read_bytes() == data
    assert (tmp_path / "dup").read_bytes() == data and not (tmp_path / "keep").exists()


# ---- 6. trees deeper than PATH_MAX ---------------------------------------------------------------

LEVELS = [f"d{i:02d}" + "x" * 198 for i in range(30)]       # 200-byte names: 30 levels are 6 kB
DEEP, MID = "/".join(LEVELS), "/".join(LEVELS[:22])          # both past PATH_MAX (4096 bytes)
DEEP_FILES = {   # name under the root: (content, keeper?); --keep oldest picks the keepers
    f"{DEEP}/a-keep": ("A", True), f"{DEEP}/a-dup": ("A", False),        # same deep directory
    "b-keep": ("B", True), f"{DEEP}/b-dup": ("B", False),                # keeper near the top
    f"{DEEP}/c-keep": ("C", True), "c-dup": ("C", False),                # keeper deep, copy near the top
    f"{MID}/d-keep": ("D", True), f"{DEEP}/d-dup": ("D", False),         # both deep, 8 levels apart
    f"{DEEP}/unique": ("E", False)}


def _dir_at(root: Path, rel: str) -> tuple[int, str]:
    """The test's own walk: a descriptor of rel's directory under root (opened a name at a time,
    so any depth), and rel's last name."""
    *dirs, name = rel.split("/")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    for d in dirs:
        sub = os.open(d, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = sub
    return fd, name


def _read_at(root: Path, rel: str) -> bytes:
    """The bytes under root/rel (following a symlink there, as the kernel does)."""
    d, name = _dir_at(root, rel)
    try:
        f = os.open(name, os.O_RDONLY, dir_fd=d)
    finally:
        os.close(d)
    with os.fdopen(f, "rb") as fh:
        return fh.read()


def _find(root: Path) -> dict[str, tuple[str, int, str]]:
    """Every non-directory entry under root, from GNU find: relative name -> (type, inode, symlink target)."""
    raw = subprocess.run(["find", str(root), "-not", "-type", "d", "-printf", r"%P\0%y\0%i\0%l\0"],
                         capture_output=True, check=True).stdout.split(b"\0")[:-1]
    return {os.fsdecode(raw[i]): (raw[i + 1].decode(), int(raw[i + 2]), os.fsdecode(raw[i + 3]))
            for i in range(0, len(raw), 4)}


@pytest.fixture
def deep_dups(tmp_path: Path):
    """A function making DEEP_FILES under a root (fresh each time: the actions change it), with a
    second name of a-dup (every name is acted on) and an earlier run's leftovers at depth: a
    hard link and a relative symlink it made to a-keep (removed by the sweep) and a user's file it
    set aside (put back). Returns (root, {content letter: bytes})."""
    def make(root: Path) -> tuple[Path, dict[str, bytes]]:
        root.mkdir()
        d = os.open(root, os.O_RDONLY)
        for name in LEVELS:
            os.mkdir(name, dir_fd=d)
            sub = os.open(name, os.O_RDONLY, dir_fd=d)
            os.close(d)
            d = sub
        os.close(d)
        data = {c: os.urandom(4096 * (2 + i)) for i, c in enumerate("ABCDEF")}   # whole blocks, sizes differ
        for rel, (c, keeper) in DEEP_FILES.items():
            d, name = _dir_at(root, rel)
            f = os.open(name, os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=d)
            os.write(f, data[c])
            os.close(f)
            os.utime(name, dir_fd=d, ns=(10**18, 10**18) if keeper else (2 * 10**18, 2 * 10**18))
            os.close(d)
        d, _ = _dir_at(root, f"{DEEP}/x")
        try:
            os.link("a-dup", "a-dup2", src_dir_fd=d, dst_dir_fd=d)
            st = os.stat("a-keep", dir_fd=d)
            tmp = {a: f".exoflow-dedup-{a}-{st.st_dev:x}-{st.st_ino:x}-deadbeef-{i:08x}.tmp"
                   for i, a in enumerate(("hardlink", "symlink", "delete"))}
            for t in tmp.values():
                os.mkdir(t, dir_fd=d)
            os.link("a-keep", f"{tmp['hardlink']}/a-new", src_dir_fd=d, dst_dir_fd=d)
            os.symlink("a-keep", f"{tmp['symlink']}/a-new", dir_fd=d)     # relative to its home, DEEP
            f = os.open(f"{tmp['delete']}/f-aside", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=d)
            os.write(f, data["F"])
            os.close(f)
        finally:
            os.close(d)
        return root, data
    return make


def _deep_run(root: Path, out: Path, action: str, *args: str) -> tuple[dict, dict[str, tuple[str, str]]]:
    r = _dedup(root, out, "--action", action, "--keep", "oldest", "-q", *args)
    assert r.returncode == 0, r.stderr
    log = [line.split("\t") for line in (out / "actions.log").read_text().splitlines()[1:]]
    return _actions(out), {os.path.relpath(line[3], root): (line[2], line[5]) for line in log
                           if line[2] not in ("started", "note") and line[0] != "-"}


@pytest.mark.parametrize("action", ["hardlink", "symlink", "delete", "reflink"])
def test_actions_past_path_max(deep_dups, tmp_path: Path, request, action: str):
    """Every action on duplicates nested deeper than PATH_MAX (6 kB paths): done as on short paths,
    every name of a file acted on, an earlier run's leftovers at depth cleared. symlink writes the
    keeper's absolute path where it is shorter than PATH_MAX, else the path from the link's
    directory; where both are too long for the kernel to follow (c-dup, keeper 6 kB deep) the pair
    is skipped with the reason. Oracle: GNU find's entries (type, inode, symlink target), the
    bytes read through each name by the test's own openat walk (sha256), by-hand freed bytes."""
    root, data = deep_dups(request.getfixturevalue("xfs") / "t" if action == "reflink" else tmp_path / "t")
    before = _find(root)
    assert len(before) == 13 and sum(v[0] == "f" for v in before.values()) == 12
    dups = {rel for rel, (_, keeper) in DEEP_FILES.items() if not keeper and rel != f"{DEEP}/unique"}
    dups.add(f"{DEEP}/a-dup2")
    refused = {"c-dup"} if action == "symlink" else set()
    if action == "symlink":                               # a dry run says the same, and changes nothing
        _, status = _deep_run(root, tmp_path / "dry", action)
        assert {rel: s for rel, (s, _) in status.items() if rel in dups} == \
            {rel: "skipped" if rel in refused else "dry-run" for rel in dups}
        assert _find(root) == before
    acts, status = _deep_run(root, tmp_path / "o", action, "--apply")

    after = _find(root)
    assert not [rel for rel in after if ".exoflow-dedup-" in rel]                   # leftovers cleared
    aside = next(ino for rel, (_, ino, _) in before.items() if rel.endswith("/f-aside"))
    assert after[f"{DEEP}/f-aside"][1] == aside and _read_at(root, f"{DEEP}/f-aside") == data["F"]   # put back
    assert acts["leftovers_removed"] == 3
    letter = {rel: c for rel, (c, _) in DEEP_FILES.items()} | {f"{DEEP}/a-dup2": "A"}
    for rel, c in letter.items():                                                   # every content, every name
        if action == "delete" and rel in dups:
            assert rel not in after
            continue
        assert hashlib.sha256(_read_at(root, rel)).digest() == hashlib.sha256(data[c]).digest(), rel
    keeper_of = {c: rel for rel, (c, keeper) in DEEP_FILES.items() if keeper}
    expect_status = {rel: ("skipped" if rel in refused else "done") for rel in dups}
    assert {rel: s for rel, (s, _) in status.items() if rel in dups} == expect_status
    if refused:
        assert "PATH_MAX" in status["c-dup"][1]
    for rel in dups - refused if action != "delete" else ():
        kino = after[keeper_of[letter[rel]]][1]
        typ, ino, target = after[rel]
        if action == "hardlink":
            assert (typ, ino) == ("f", kino), rel
        elif action == "reflink":
            assert (typ, ino) == ("f", before[rel][1]), rel                         # the same file, in place
        elif action == "symlink":
            assert typ == "l" and target == {"a": "a-keep", "b": str(root / "b-keep"),
                                             "d": "../" * 8 + "d-keep"}[os.path.basename(rel)[0]], rel
    for rel in refused | set(keeper_of.values()):
        assert after[rel] == before[rel]                                            # untouched
    files = sum(v[0] == "f" for v in after.values())                                # names left + f-aside
    assert files == {"hardlink": 11, "reflink": 11, "symlink": 7, "delete": 6}[action]
    freed = "ABD" if action == "symlink" else "ABCD"                               # whole blocks: size = blocks
    assert acts["freed_bytes"] == sum(len(data[c]) for c in freed)


def test_keep_path_matches_past_path_max(tmp_path: Path):
    """--keep-path naming a directory 6 kB deep matches the names reached through symlinks to it at
    that depth (one with ``..``), resolved as the kernel resolves them (os.path.realpath stops
    resolving past PATH_MAX), and no other. Oracle: the links made by hand."""
    root = tmp_path / "t"
    root.mkdir()
    d, _ = _dir_at(root, "x")
    for name in LEVELS + ["sub"]:
        os.mkdir(name, dir_fd=d)
        sub = os.open(name, os.O_RDONLY, dir_fd=d)
        os.close(d)
        d = sub
    os.close(d)
    d, _ = _dir_at(root, f"{DEEP}/x")
    try:
        os.mkdir("other", dir_fd=d)
        os.symlink("sub", "link", dir_fd=d)
        os.symlink(f"../{LEVELS[-1]}/sub", "up-and-back", dir_fd=d)
    finally:
        os.close(d)
    deep = f"{root}/{DEEP}"
    names = [f"{deep}/{n}/f" for n in ("sub", "link", "up-and-back", "other")]
    for pattern in (f"{deep}/sub", f"{deep}/link/*", f"{deep}/up-and-back/"):
        assert keep_matches(names, canonical_patterns([pattern], "/"))[:, 0].tolist() == [True, True, True, False]
