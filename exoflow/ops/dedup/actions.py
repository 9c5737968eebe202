"""Acting on duplicate groups: hardlink, symlink, reflink or delete the extra copies.

A group holds files (one per (device, inode)); each file may have several names in the
listing. One file is kept; every other file is acted on through every name it has in the
listing. Safety rules, in the order they are checked:

* dry run unless --apply: nothing changes, the log says what would happen;
* a file with a name matching --keep-path is never changed; the keeper is never changed;
* both files must still have the size, mtime_ns, inode and device of the scan, and their
  bytes are compared in full just before the change (a file changed between scan and action
  is skipped and logged);
* reflink shares the duplicate's extents with the keeper's in place (``FIDEDUPERANGE``: the
  kernel compares the bytes again and remaps only equal ranges), so the duplicate keeps its
  inode, owner, mode, times, links and open descriptors;
* with --apply, both files are locked (flock, in (device, inode) order) while they are checked
  and changed, so two runs never act on the same pair at once (they could remove both copies);
* hardlink and symlink replace the name (that is what they are), delete removes it; a name is
  never changed blindly: the new entry is made in a temporary directory beside it and swapped
  with the name atomically (``renameat2(RENAME_EXCHANGE)``; delete moves the name there), then
  what was swapped out must be the scanned file and the keeper still the scanned keeper; only
  then is it removed, else the swap is undone (``skipped``). Where renameat2 is not supported,
  the name is changed right after the last check and the log says so;
* every decision is one line of the log, written and flushed before the change is made
  (``started``) and again after it (``done``/``failed``), so a killed run leaves a record;
* temporary directories left by a killed run (``.exoflow-dedup-ACTION-DEV-INO-RUN-RAND.tmp``,
  naming the keeper's device and inode) are found by the next run with --action: exoflow's
  unfinished new entry is removed, a user's file in one is put back under its name (never over
  another file), and the empty directory removed (with --apply). Names of that form, or in such
  a directory, are never acted on (logged ``skipped``);
* names of any depth: past PATH_MAX every call is made relative to a descriptor of the name's
  directory (exoflow.longpath). A symlink holds the keeper's absolute path, or where that is
  PATH_MAX or longer (the kernel follows no such link) the path from the duplicate's directory;
  where both are, the name is skipped with the reason.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import fnmatch
import functools
import glob
import itertools
import os
import re
import shutil
import stat as stat_mod
import struct
import time
import uuid
from typing import Any, Callable

import numpy as np
import pandas as pd

from exoflow.fileio import OPEN_FLAGS
from exoflow.longpath import PATH_MAX, call_at, call_at2, open_path, parent_at, real_path, stat_path
from exoflow.fileio import atomic_write, describe_error, escape_line
from exoflow.paths import exact_paths

ACTIONS = ("hardlink", "symlink", "reflink", "delete")
KEEP = ("oldest", "newest", "first", "shortest-path")
LOG_HEADER = "group_id\taction\tstatus\tpath\tkeeper\treason\n"
LOG_PIECES = "actions.log.d"      # per-partition logs while actions run (left as they are by a killed run)
TEMP_RE = re.compile(r"\.exoflow-dedup-(?P<action>hardlink|symlink|delete)-(?P<dev>[0-9a-f]+)-(?P<ino>[0-9a-f]+)"
                     r"-(?P<run>[0-9a-f]{8})-[0-9a-f]{8}\.tmp")
# Test hook (tests/test_dedup_actions.py): after making its N-th temporary name, a task sleeps, so
# a test can SIGKILL the run in exactly that state.
PAUSE_ENV = "EXOFLOW_TEST_PAUSE_AFTER_TEMP"
PAUSED_ENV = "EXOFLOW_TEST_PAUSED_DIR"   # where a process that paused (PAUSE_ENV) leaves a file paused-PID
LOCK_WAIT = 10.0                 # seconds to wait for a file another process holds locked (flock)

RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2          # linux/fs.h
_AT_FDCWD = -100
_UNSUPPORTED = (errno.ENOSYS, errno.EINVAL)       # no renameat2, or a file system without the flag
_RENAMEAT2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)   # glibc >= 2.28
if _RENAMEAT2 is not None:
    _RENAMEAT2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

FIDEDUPERANGE = 0xC0189436       # linux/fs.h: _IOWR(0x94, 54, struct file_dedupe_range)
FILE_DEDUPE_RANGE_DIFFERS = 1
DEDUPE_STEP = 16 << 20           # bytes per FIDEDUPERANGE call (Btrfs caps a call at 16 MiB)
_DEDUPE = struct.Struct("=QQHHI")  # src_offset, src_length, dest_count, reserved1, reserved2
_DEDUPE_INFO = struct.Struct("=qQQiI")  # dest_fd, dest_offset, bytes_deduped, status, reserved
FS_IOC_FIEMAP = 0xC020660B       # linux/fs.h: _IOWR('f', 11, struct fiemap)
FIEMAP_FLAG_SYNC, FIEMAP_EXTENT_LAST, FIEMAP_EXTENT_SHARED = 0x1, 0x1, 0x2000
_FIEMAP = struct.Struct("=QQIIII")  # fm_start, fm_length, fm_flags, fm_mapped_extents, fm_extent_count, reserved
_EXTENT = struct.Struct("=QQQ16xI12x")  # fe_logical, fe_physical, fe_length, fe_flags (56 bytes)


# ---- names and --keep-path --------------------------------------------------------------

def absolute(path: str, cwd: str) -> str:
    """``path`` (as walked, maybe relative to the CLI's directory ``cwd``) as an absolute name of
    the same file: ``.`` and repeated slashes dropped, ``..`` kept (it may cross a symlink)."""
    p = os.path.join(cwd, path)
    return p if ".." in p.split("/") else os.path.normpath(p)


def canonical_patterns(patterns: list[str], cwd: str) -> list[tuple[str, str]]:
    """Each --keep-path GLOB as (absolute form, real form), matched against a file's absolute
    and real path. A relative GLOB is taken relative to ``cwd`` (the CLI's working directory)
    unless it starts with a wildcard (``*.jpg``, ``*/master/*``: any leading directories); a
    GLOB naming a directory (``master``, ``master/``, ``mast*/``) means everything under it. The
    real form resolves the symlinks of the GLOB's leading directories (those without wildcards)."""
    out = []
    for pat in patterns:
        if pat.startswith("*"):
            out.append((pat, pat))
            continue
        parts = pat.split("/")
        n = next((i for i, s in enumerate(parts) if glob.has_magic(s)), len(parts))
        lead = "/".join(parts[:n]) or ("/" if pat.startswith("/") else ".")
        head, rest = os.path.join(cwd, lead), "/".join(parts[n:])
        if pat.endswith("/") or (not rest and _is_dir(head)):
            rest += "*"
        forms = [glob.escape(f) for f in (absolute(head, "/"), real_path(head))]
        out.append(tuple(os.path.join(f, rest) if rest else f for f in forms))
    return out


def _is_dir(path: str) -> bool:
    try:
        return stat_mod.S_ISDIR(stat_path(path).st_mode)
    except OSError:
        return False


def keep_matches(names: list[str], patterns: list[tuple[str, str]]) -> np.ndarray:
    """bool (len(names), len(patterns)): which absolute names match which canonical pattern
    (by their absolute form, or by their real path: symlinked directories resolved)."""
    out = np.zeros((len(names), len(patterns)), dtype=bool)
    for i, name in enumerate(names):
        real = None
        for j, (pa, pr) in enumerate(patterns):
            if fnmatch.fnmatchcase(name, pa):
                out[i, j] = True
                continue
            real = real if real is not None else real_path(name)
            out[i, j] = fnmatch.fnmatchcase(real, pr)
    return out


def exact_names(paths: list[str], raw: list[Any], cwd: str) -> tuple[list[str], list[str]]:
    """(exact absolute names to act on, absolute names as shown) from the walked names as shown
    and their exact bytes (``path_bytes``: None, or bytes where the name is not UTF-8)."""
    return [absolute(p, cwd) for p in exact_paths(paths, raw)], [absolute(p, cwd) for p in paths]


Name = dict          # one name of a file: group_id, path, path_bytes, size, mtime_ns, inode, device, _exact, …
KEEP_ORDER = {"oldest": lambda f: (f[0]["mtime_ns"], f[0]["_shown"]),
              "newest": lambda f: (-f[0]["mtime_ns"], f[0]["_shown"]),
              "first": lambda f: f[0]["_shown"],
              "shortest-path": lambda f: (len(f[0]["_shown"]), f[0]["_shown"])}


def choose_keeper(files: list[list[Name]], protected: list[bool], keep: str) -> int:
    """Which file (a list of its names, in order of absolute path) to keep: among the protected
    files if any, by the --keep rule, ties by absolute path."""
    pool = [i for i, p in enumerate(protected) if p] or range(len(files))
    return min(pool, key=lambda i: KEEP_ORDER[keep](files[i]))


# ---- checks --------------------------------------------------------------------------------

def _is_scanned(st: os.stat_result, row: Name) -> bool:
    return (stat_mod.S_ISREG(st.st_mode) and (st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)
            == (row["size"], row["mtime_ns"], row["inode"], row["device"]))


def _unchanged(path: str, row: Name) -> str | None:
    """None if the name still leads to the file the scan saw, else why not."""
    try:
        st = stat_path(path, follow_symlinks=False)
    except OSError as e:
        return "gone: " + describe_error(e)
    if not stat_mod.S_ISREG(st.st_mode):
        return "changed since scan: no longer a regular file"
    if not _is_scanned(st, row):
        return "changed since scan (size, mtime, inode or device differ)"
    return None


def _open_scanned(path: str, row: Name) -> int:
    """A descriptor of the file the scan saw (checked on the descriptor, so a swap after the
    last lstat cannot pass); raises OSError."""
    fd = open_path(path, OPEN_FLAGS)
    if not _is_scanned(os.fstat(fd), row):
        os.close(fd)
        raise OSError("changed since scan (the file opened is not the one scanned)")
    return fd


def same_bytes(fa: int, fb: int, piece: int = 1 << 20) -> bool:
    """Whether two open files hold the same bytes (read from offset 0, streamed)."""
    pos = 0
    while True:
        x, y = os.pread(fa, piece, pos), os.pread(fb, piece, pos)
        if x != y:
            return False
        if not x:
            return True
        pos += len(x)


# ---- the changes -----------------------------------------------------------------------------

def dedupe(src: int, dst: int, size: int) -> None:
    """Make the open file ``dst`` share ``src``'s extents for bytes [0, size), in place
    (FIDEDUPERANGE, DEDUPE_STEP bytes a call); the kernel compares the bytes and remaps only
    equal ranges. Raises OSError (EOPNOTSUPP where the file system cannot; EILSEQ if the bytes
    differ)."""
    off = 0
    while off < size:
        n = min(DEDUPE_STEP, size - off)
        buf = bytearray(_DEDUPE.pack(off, n, 1, 0, 0) + _DEDUPE_INFO.pack(dst, off, 0, 0, 0))
        fcntl.ioctl(src, FIDEDUPERANGE, buf)
        _fd, _off, done, status, _r = _DEDUPE_INFO.unpack_from(buf, _DEDUPE.size)
        if status < 0:
            raise OSError(-status, os.strerror(-status))
        if status == FILE_DEDUPE_RANGE_DIFFERS:
            raise OSError(errno.EILSEQ, "the kernel found the bytes differ")
        if done <= 0:
            raise OSError(errno.EIO, "the kernel deduplicated no bytes")
        off += done


def exclusive_bytes(fd: int) -> int:
    """Bytes of an open file's extents that no other file shares (FIEMAP, synced first):
    what deleting or deduplicating it frees. Raises OSError where FIEMAP is unsupported."""
    return _extent_bytes(fd)[0]


def shared_bytes(fd: int) -> int:
    """Bytes of an open file's extents that other files share (reflinks, earlier dedupes): what
    removing its last name does not free; 0 where FIEMAP is unsupported (tmpfs: nothing shared)."""
    try:
        return _extent_bytes(fd)[1]
    except OSError:
        return 0


def _extent_bytes(fd: int) -> tuple[int, int]:
    """(exclusive, shared) bytes of an open file's extents (FIEMAP, synced first); raises OSError."""
    total, shared, start, count = 0, 0, 0, 256
    while True:
        buf = bytearray(_FIEMAP.pack(start, 2**64 - 1 - start, FIEMAP_FLAG_SYNC, 0, count, 0)
                        + bytes(count * 56))
        fcntl.ioctl(fd, FS_IOC_FIEMAP, buf)
        mapped = _FIEMAP.unpack_from(buf)[3]
        flags = FIEMAP_EXTENT_LAST
        for i in range(mapped):
            logical, _phys, length, flags = _EXTENT.unpack_from(buf, _FIEMAP.size + 56 * i)
            if flags & FIEMAP_EXTENT_SHARED:
                shared += length
            else:
                total += length
            start = logical + length
        if not mapped or flags & FIEMAP_EXTENT_LAST:
            return total, shared


class Skip(Exception):
    """Nothing was changed, for the reason given (a file changed or is in use)."""


def renameat2(src: str, dst: str, flags: int) -> None:
    """rename(2) of paths of any length with RENAME_NOREPLACE (fails with EEXIST where ``dst``
    exists) or RENAME_EXCHANGE (swaps the two names atomically; both must exist). Raises
    OSError: ENOSYS where the C library or kernel lacks renameat2, EINVAL where the file system
    lacks the flag."""
    if _RENAMEAT2 is None:
        raise OSError(errno.ENOSYS, "renameat2 is not in this C library")
    with parent_at(src) as (sfd, sname), parent_at(dst) as (dfd, dname):
        failed = _RENAMEAT2(_AT_FDCWD if sfd is None else sfd, os.fsencode(sname),
                            _AT_FDCWD if dfd is None else dfd, os.fsencode(dname), flags)
    if failed:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), src, None, dst)


def lock(fds: list[int]) -> None:
    """An exclusive flock on each open file, in the order given (callers give (device, inode)
    order, so two runs never wait for each other crosswise), waiting up to LOCK_WAIT s for each;
    raises Skip if another process holds one longer, OSError where flock fails otherwise."""
    for fd in fds:
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise Skip(f"another process (another exoflow run?) held a lock on it for over {LOCK_WAIT:g} s")
                time.sleep(0.01)


def looks_temporary(path: str) -> bool:
    """Whether a name, or its directory's, has the form of exoflow's temporary names (TEMP_RE)."""
    return any(TEMP_RE.fullmatch(os.path.basename(p)) for p in (path, os.path.dirname(path)))


def temp_dir(dup: str, action: str, keeper: os.stat_result, run_id: str) -> tuple[str, int]:
    """A new directory no user file has, in ``dup``'s directory, named after the action and the
    keeper's device and inode (TEMP_RE), and a descriptor holding an exclusive flock on it (so the
    leftover sweep of another run leaves it alone while it is in use)."""
    path = os.path.join(os.path.dirname(dup), f".exoflow-dedup-{action}-{keeper.st_dev:x}-{keeper.st_ino:x}"
                                              f"-{run_id}-{uuid.uuid4().hex[:8]}.tmp")
    call_at(os.mkdir, path, 0o700)
    fd = -1
    try:
        fd = open_path(path, _DIR_FLAGS)
        fcntl.flock(fd, fcntl.LOCK_EX)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        call_at(os.rmdir, path)
        raise
    return path, fd


_TEMPS_MADE = itertools.count(1)       # temporary directories this process made (for the test hook)


def _pause_for_tests() -> None:
    """Test hook: between the last check of a name and its change (tests monkeypatch it to race
    the change; PAUSE_ENV makes the N-th call sleep, after leaving its mark in PAUSED_ENV's directory)."""
    if next(_TEMPS_MADE) == int(os.environ.get(PAUSE_ENV) or 0):
        if os.environ.get(PAUSED_ENV):
            open(os.path.join(os.environ[PAUSED_ENV], f"paused-{os.getpid()}"), "w").close()
        time.sleep(3600)


def symlink_target(keeper: str, dup: str) -> str:
    """What symlink writes at ``dup`` (absolute) to lead to ``keeper`` (absolute): the keeper's
    absolute path; where that is PATH_MAX or longer (the kernel follows no such link), the path
    from ``dup``'s directory to it, if that is shorter. Raises Skip where both are too long."""
    rel = keeper if len(os.fsencode(keeper)) < PATH_MAX else os.path.relpath(keeper, os.path.dirname(dup))
    if len(os.fsencode(rel)) >= PATH_MAX:
        raise Skip(f"a symlink to the keeper could not be followed: its path ({len(os.fsencode(keeper))} bytes) "
                   f"and the path to it from here ({len(os.fsencode(rel))} bytes) are both PATH_MAX "
                   f"({PATH_MAX} bytes) or longer")
    return rel


def is_new_entry(path: str, action: str, keeper: tuple[int, int], home: str) -> bool:
    """Whether ``path`` is exactly what hardlink/symlink makes for a name in the directory ``home``
    (``path`` is there, or in a temporary directory in it): another name of the keeper (device,
    inode), which has other names, or a symlink to it that symlink_target writes (its text leads
    to the keeper from ``home``; relative only where the absolute path would be PATH_MAX or longer)."""
    try:
        st = stat_path(path, follow_symlinks=False)
        if action == "hardlink":
            return stat_mod.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) == keeper and st.st_nlink > 1
        if action != "symlink" or not stat_mod.S_ISLNK(st.st_mode):
            return False
        text = call_at(os.readlink, path)
        target = os.path.join(home, text)
        if not os.path.isabs(text) and len(os.fsencode(os.path.normpath(target))) < PATH_MAX:
            return False                      # relative, where symlink_target writes the absolute path
        t = stat_path(target)
        return stat_mod.S_ISREG(t.st_mode) and (t.st_dev, t.st_ino) == keeper
    except OSError:
        return False


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = stat_path(path, follow_symlinks=False)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _make_entry(action: str, keeper: str, kid: tuple[int, int], path: str, dup: str) -> tuple[int, int]:
    """A hard link to / a symlink to the keeper (symlink_target) at ``path``, a temporary name of
    ``dup``, checked to lead to it from ``dup``'s directory; returns the (device, inode) of the entry
    made. Raises Skip (nothing left), OSError."""
    if action == "hardlink":
        call_at2(os.link, keeper, path, follow_symlinks=False)
    else:
        with parent_at(path) as (fd, name):
            os.symlink(symlink_target(keeper, dup), name, dir_fd=fd)
    if not is_new_entry(path, action, kid, os.path.dirname(dup)):
        if action == "symlink" or stat_path(path, follow_symlinks=False).st_nlink > 1:
            call_at(os.unlink, path)          # ours: a symlink, or a name of a file that has others
        raise Skip("changed since scan: the keeper was replaced during the action, or a symlinked directory "
                   "on the way to it from here leads elsewhere")
    return _identity(path)


def put_back(side: str, name: str, ours: Callable[[str], bool]) -> None:
    """Move the file at ``side`` back to ``name``: renamed where the name is free (never over
    another file), or swapped with exoflow's new entry there (``ours(name)``), which is then
    removed. Raises FileExistsError where the name holds any other file (both are left where
    they are), OSError."""
    try:
        return renameat2(side, name, RENAME_NOREPLACE)
    except FileExistsError:
        if not ours(name):
            raise FileExistsError(errno.EEXIST, f"its name is taken by another file: it is kept at {side}") from None
    renameat2(side, name, RENAME_EXCHANGE)
    if not ours(side):
        raise FileExistsError(errno.EEXIST, f"another file took its name meanwhile: that file is kept at {side}")
    call_at(os.unlink, side)


def change_name(action: str, krow: Name, kst: os.stat_result, row: Name, run_id: str, log: Callable) -> str:
    """Replace the name ``row["_exact"]`` by a hard link to / symlink to the keeper, or remove it
    (delete), so that only the file the scan saw can be removed: the new entry is made in a
    temporary directory beside the name and swapped with it atomically (RENAME_EXCHANGE; delete:
    the name is moved there), then what was swapped out is checked to be the scanned file and the
    keeper to be the scanned keeper; only then is it removed, else it is put back. Where renameat2
    is not supported, the name is replaced or removed after the last check (as the note returned
    says). Returns a note for the log ("" if none); raises Skip (nothing changed), OSError."""
    dup, keeper, kid = row["_exact"], krow["_exact"], (kst.st_dev, kst.st_ino)
    tmp, held = temp_dir(dup, action, kst, run_id)
    side = os.path.join(tmp, os.path.basename(dup))
    log("started", "temporary name " + os.path.basename(tmp))
    made = None                               # (device, inode) of the new entry
    try:
        if action != "delete":
            made = _make_entry(action, keeper, kid, side, dup)
        _pause_for_tests()
        try:
            renameat2(dup, side, RENAME_NOREPLACE if action == "delete" else RENAME_EXCHANGE)
        except OSError as e:
            if e.errno not in _UNSUPPORTED:
                raise
            if action == "delete":
                call_at(os.unlink, dup)
            else:
                call_at2(os.replace, side, dup)
            return f"renameat2 not supported here ({describe_error(e)}): changed after the last check, unchecked after"
        why = _unchanged(side, row) or _unchanged(keeper, krow)
        if why:
            try:
                put_back(side, dup, lambda p: _identity(p) == made)
            except OSError as e:
                raise OSError(e.errno, f"{why}; found after the swap, which could not be undone: {e.strerror}") from e
            raise Skip(why + "; found after the swap, which was undone")
        call_at(os.unlink, side)
        return ""
    finally:
        if made and _identity(side) == made:
            call_at(os.unlink, side)          # the entry made, never swapped in (or swapped back)
        with contextlib.suppress(OSError):
            call_at(os.rmdir, tmp)            # left only while it holds a user's file (the log says where)
        os.close(held)


# ---- one group -------------------------------------------------------------------------------

def act_on_group(g: list[Name], params: dict[str, Any], write: Callable[[list[str]], None]) -> int:
    """Decide (and with --apply make) the changes for one group: ``g`` has one dict per name
    (keys group_id, path, path_bytes, size, mtime_ns, inode, device). Writes a log line per
    decision through ``write``; returns the bytes the file system freed (measured after the
    changes)."""
    action = params["action"]
    exact, shown = exact_names([r["path"] for r in g], [r["path_bytes"] for r in g], params.get("cwd") or os.getcwd())
    patterns = params.get("keep_patterns") or []
    matched = keep_matches(exact, patterns).any(axis=1).tolist() if patterns else [False] * len(g)
    rows = sorted(({**r, "_exact": e, "_shown": s, "_match": m} for r, e, s, m in zip(g, exact, shown, matched)),
                  key=lambda r: r["_shown"])
    temps = [r for r in rows if looks_temporary(r["_exact"])]       # never acted on, never the keeper
    by_file: dict[tuple[int, int], list[Name]] = {}
    by_match: dict[tuple[int, int], bool] = {}          # a file is protected by any of its names
    for r in rows:
        if not looks_temporary(r["_exact"]):
            key = (r["device"], r["inode"])
            by_file.setdefault(key, []).append(r)
            by_match[key] = by_match.get(key, False) or r["_match"]
    files, protected = list(by_file.values()), list(by_match.values())
    k = choose_keeper(files, protected, params.get("keep") or "oldest") if files else -1
    krow = files[k][0] if files else None

    def line(status: str, row: Name, reason: str = "") -> None:
        write([str(row["group_id"]), action, status, row["_exact"], krow["_exact"] if krow else "", reason])

    def each(names: list[Name], status: str, reason: str) -> None:
        for row in names:
            line(status, row, reason)

    each(temps, "skipped", "named like exoflow's temporary names (.exoflow-dedup-…tmp, or in such a directory): "
                           "never acted on")
    freed = 0
    for i, names in enumerate(files):
        if i == k:
            line("kept", names[0])
            each(names[1:], "kept", "another name of the keeper")
        elif protected[i]:
            each(names, "protected", "matches --keep-path")
        elif names[0]["device"] != krow["device"] and action in ("hardlink", "reflink"):
            each(names, "skipped", f"different file systems: cannot {action}")
        else:
            freed += _act_on_file(action, bool(params.get("apply")), krow, names, params.get("run_id") or "0" * 8,
                                  line)
    return freed


def _act_on_file(action: str, apply: bool, krow: Name, names: list[Name], run_id: str, line: Callable) -> int:
    """Verify one duplicate file (all its names) against the keeper, then change it (with --apply,
    holding flocks on both files, taken in (device, inode) order)."""
    if action == "symlink":
        names = _linkable(krow, names, line)
        if not names:
            return 0
    why = _unchanged(krow["_exact"], krow)
    for row in names:
        why = why or _unchanged(row["_exact"], row)
    fk = fd = -1
    try:
        if not why:
            fk = _open_scanned(krow["_exact"], krow)
            fd = _open_scanned(names[0]["_exact"], names[0])
            if apply:      # another run acting on the same files waits (its checks come after the lock)
                lock([f for _, f in sorted([((krow["device"], krow["inode"]), fk),
                                            ((names[0]["device"], names[0]["inode"]), fd)])])
        status, why = ("skipped", why) if why else ("skipped", "contents differ byte by byte") \
            if not same_bytes(fk, fd) else ("dry-run", f"would {action} (use --apply)") if not apply else ("", "")
    except Skip as e:
        status, why = "skipped", str(e)
    except OSError as e:
        status, why = "failed", describe_error(e)
    try:
        if status:
            for row in names:
                line(status, row, why)
            return 0
        if action == "reflink":
            return _dedupe_file(fk, fd, names, line)
        return _change_names(action, krow, names, fk, fd, line, run_id)
    finally:
        for f in (fk, fd):
            if f >= 0:
                os.close(f)


def _linkable(krow: Name, names: list[Name], line: Callable) -> list[Name]:
    """symlink: the names a symlink that the kernel can follow to the keeper can replace
    (symlink_target); each other name is logged ``skipped``, with the reason."""
    out = []
    for row in names:
        try:
            symlink_target(krow["_exact"], row["_exact"])
            out.append(row)
        except Skip as e:
            line("skipped", row, str(e))
    return out


def _dedupe_file(fk: int, fd: int, names: list[Name], line: Callable) -> int:
    """reflink: the duplicate's extents shared with the keeper's in place; returns the bytes freed
    (its extents no other file shared, before minus after; also where the kernel stopped part
    way, having shared the ranges before the one that failed)."""
    try:
        before = exclusive_bytes(fd)
    except OSError as e:
        line("failed", names[0], describe_error(e))
        return 0
    line("started", names[0], "FIDEDUPERANGE")
    try:
        dedupe(fk, fd, int(names[0]["size"]))
        status, why = "done", "extents shared with the keeper in place"
    except OSError as e:
        status, why = "failed", describe_error(e)
    freed = max(0, before - exclusive_bytes(fd))
    line(status, names[0], f"{why}; {freed} bytes freed")
    for row in names[1:] if status == "done" else []:
        line("done", row, "another name of the same file")
    return freed


def _identity_note(fk: int, fd: int) -> str:
    """For hardlink/symlink: the owner and mode the name now shows, where they change."""
    k, d = os.fstat(fk), os.fstat(fd)
    if (k.st_uid, k.st_gid, k.st_mode) == (d.st_uid, d.st_gid, d.st_mode):
        return ""
    return (f"the name now leads to the keeper (uid {k.st_uid}, gid {k.st_gid}, mode {k.st_mode & 0o7777:o}; "
            f"was uid {d.st_uid}, gid {d.st_gid}, mode {d.st_mode & 0o7777:o})")


def _change_names(action: str, krow: Name, names: list[Name], fk: int, fd: int, line: Callable,
                  run_id: str) -> int:
    """hardlink/symlink/delete on every name of the duplicate; returns the bytes freed."""
    kst, note = os.fstat(fk), "" if action == "delete" else _identity_note(fk, fd)
    for row in names:
        why = _unchanged(krow["_exact"], krow) or _unchanged(row["_exact"], row)   # last look before the change
        if why:
            line("skipped", row, why)
            continue
        try:
            done = change_name(action, krow, kst, row, run_id, lambda s, r="", row=row: line(s, row, r))
            line("done", row, "; ".join(filter(None, (note, done))))
        except Skip as e:
            line("skipped", row, str(e))
        except OSError as e:
            line("failed", row, describe_error(e))
    return _freed(fd, names, line)


def _freed(fd: int, names: list[Name], line: Callable) -> int:
    """Bytes freed by removing every name of the file open as ``fd``: its allocated blocks once it
    has no name left, less the extents it shares with other files (0, with a note in the log,
    while it has names outside the listing)."""
    st = os.fstat(fd)
    if st.st_nlink:
        line("note", names[0], f"the file still has {st.st_nlink} name(s) (outside the listing "
                               "or not changed): no space freed")
        return 0
    shared = shared_bytes(fd)
    if shared:
        line("note", names[0], f"{shared} bytes of its extents are shared with other files: not freed")
    return max(0, st.st_blocks * 512 - shared)


# ---- leftovers of a killed run ----------------------------------------------------------------

def sweep_leftovers(dirs: list[str], params: dict[str, Any], write: Callable[[list[str]], None]) -> int:
    """Find the temporary directories (TEMP_RE) that earlier, killed runs left in ``dirs`` and clear
    each (with --apply; a dry run says what it would do): exoflow's unfinished new entry is removed;
    a user's file that was set aside is put back under its name (never deleted, never put over
    another file: where another file has the name now, it is left where it is, ``leftover-kept``);
    then the empty directory is removed. Directories of this run, or locked by a running one, are
    left alone. Returns how many directories were removed."""
    removed = 0
    for d in dirs:
        for m in _temp_dirs_in(d):
            if m["run"] != params.get("run_id"):
                removed += _sweep_temp_dir(os.path.join(d, m[0]), m, params, write)
    return removed


def _temp_dirs_in(d: str) -> list[re.Match]:
    """The subdirectories of ``d`` (a path of any length) named like temporary ones (TEMP_RE);
    [] where ``d`` cannot be read."""
    try:
        fd = open_path(d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return []
    try:
        with os.scandir(fd) as entries:
            return [m for e in entries if (m := TEMP_RE.fullmatch(e.name)) and e.is_dir(follow_symlinks=False)]
    except OSError:
        return []
    finally:
        os.close(fd)


def _sweep_temp_dir(tmp: str, m: re.Match, params: dict[str, Any], write: Callable[[list[str]], None]) -> int:
    """Clear one temporary directory of an earlier run (see sweep_leftovers); 1 if removed."""
    apply = bool(params.get("apply"))

    def log(status: str, path: str, why: str) -> None:
        write(["-", params["action"], status, path, "", why])
    try:
        held = open_path(tmp, _DIR_FLAGS)
    except OSError:
        return 0                                    # gone meanwhile: cleared by another partition
    try:
        try:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0                                # in use by a running exoflow
        entries = os.listdir(held)
        for name in entries:
            _sweep_entry(os.path.join(tmp, name), m, apply, log)
        if not entries:
            log("leftover-removed" if apply else "leftover", tmp, "an empty temporary directory of an interrupted "
                "run: " + ("removed" if apply else "would be removed (use --apply)"))
        if apply:
            with contextlib.suppress(OSError):
                call_at(os.rmdir, tmp)              # not if it still holds a user's file (leftover-kept)
                return 1
        return 0
    finally:
        os.close(held)


def _sweep_entry(side: str, m: re.Match, apply: bool, log: Callable[[str, str, str], None]) -> None:
    """One entry of an earlier run's temporary directory: removed if it is exoflow's new entry,
    else (a user's file) put back under its name, if that is free or holds exoflow's new entry."""
    action, kid = m["action"], (int(m["dev"], 16), int(m["ino"], 16))
    orig = os.path.join(os.path.dirname(os.path.dirname(side)), os.path.basename(side))
    ours = functools.partial(is_new_entry, action=action, keeper=kid, home=os.path.dirname(orig))
    if ours(side):
        status, what, done = "leftover-removed", "an unfinished new entry (a name of, or symlink to, a kept file)", \
            "removed"
    elif _identity(orig) and not ours(orig):
        return log("leftover-kept", side, f"a file an interrupted run set aside; another file has its name {orig} "
                                          "now: left here")
    else:
        status, what, done = "leftover-restored", "a file an interrupted run set aside", f"put back as {orig}"
    if not apply:
        return log("leftover", side, f"{what}: would be {done} (use --apply)")
    log("started", side, f"{what}: {done}")
    try:
        if status == "leftover-removed":
            call_at(os.unlink, side)
        else:
            put_back(side, orig, ours)
        log(status, side, f"{what}: {done}")
    except OSError as e:
        log("leftover-kept" if isinstance(e, FileExistsError) else "failed", side, describe_error(e))


# ---- a partition, and the log ----------------------------------------------------------------

def apply_actions(rows: pd.DataFrame, out_dir: str, part: int, params: dict[str, Any]) -> dict[str, Any]:
    """Act on every group of a partition (``rows``: one row per name, all names of each file
    in the listing); write its log piece, each line flushed before the next step (a worker task).
    Returns {"log": path, "counts": {status: lines}, "freed": bytes, "leftovers_removed": n}."""
    d = os.path.join(out_dir, LOG_PIECES)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, f"{part:06d}.tsv")
    counts: dict[str, int] = {}
    records = rows[["group_id", "path", "path_bytes", "size", "mtime_ns", "inode", "device"]].to_dict("records")
    exact, _ = exact_names(rows["path"].tolist(), rows["path_bytes"].tolist(), params.get("cwd") or os.getcwd())
    with open(path, "w", encoding="utf-8", errors="replace") as f:
        def write(fields: list[str]) -> None:
            f.write("\t".join(escape_line(s, tab=True) for s in fields) + "\n")
            f.flush()
            counts[fields[2]] = counts.get(fields[2], 0) + 1

        removed = sweep_leftovers(sorted({os.path.dirname(p) for p in exact}), params, write)
        todo = sorted(records, key=lambda r: r["group_id"])
        freed = sum(act_on_group(list(g), params, write)
                    for _, g in itertools.groupby(todo, key=lambda r: r["group_id"]))
    return {"log": path, "counts": counts, "freed": freed, "leftovers_removed": removed}


def merge_logs(pieces: list[dict[str, Any] | None], out_dir: str) -> dict[str, Any]:
    """OUT/actions.log from the pieces (each in group order), and totals: counts per status
    (``started`` and ``note`` lines left out), bytes freed, leftovers removed."""
    target = os.path.join(out_dir, "actions.log")
    counts: dict[str, int] = {}
    freed = removed = 0
    with atomic_write(target) as out:
        out.write(LOG_HEADER)
        for p in pieces:
            if not p:
                continue
            for k, v in p["counts"].items():
                if k not in ("started", "note"):
                    counts[k] = counts.get(k, 0) + v
            freed += p["freed"]
            removed += p["leftovers_removed"]
            with open(p["log"], encoding="utf-8") as f:
                shutil.copyfileobj(f, out)
    shutil.rmtree(os.path.join(out_dir, LOG_PIECES), ignore_errors=True)
    return {"log": target, "counts": counts, "freed_bytes": freed, "leftovers_removed": removed}
