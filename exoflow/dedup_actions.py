"""Acting on duplicate groups: hardlink, symlink, reflink or delete the extra copies.

Safety rules, in the order they are checked for every (keeper, duplicate) pair:

* dry run unless --apply: nothing changes, the log says what would happen;
* files matching --keep-path are never modified; the keeper is never modified;
* both files must still have the size, mtime_ns, inode and device of the scan,
  and their bytes are compared in full just before the change (a file changed
  between scan and action is skipped and logged);
* replacement is atomic: the new link/clone gets a temporary name in the
  duplicate's directory and is renamed over it;
* every decision is one line of OUT/actions.log (tab-separated).
"""
from __future__ import annotations

import fcntl
import fnmatch
import os
import shutil
import stat as stat_mod
import uuid
from typing import Any

import pandas as pd

from .batch import OPEN_FLAGS
from .sources.entries import describe_error

ACTIONS = ("hardlink", "symlink", "reflink", "delete")
KEEP = ("oldest", "newest", "first", "shortest-path")
FICLONE = 0x40049409            # linux/fs.h: _IOW(0x94, 9, int)
LOG_HEADER = "group_id\taction\tstatus\tpath\tkeeper\treason\n"


def _exact(path: str, raw: Any) -> str:
    return os.fsdecode(raw) if isinstance(raw, (bytes, bytearray)) else path


def _protected(exact: str, keep_paths: list[str]) -> bool:
    """--keep-path patterns are matched against the exact name (not its UTF-8 display form)."""
    return any(fnmatch.fnmatch(exact, pat) for pat in keep_paths)


def choose_keeper(g: pd.DataFrame, keep: str, keep_paths: list[str]) -> Any:
    """Index of the copy to keep: among --keep-path matches if any, by the --keep rule, then path."""
    exact = [_exact(p, r) for p, r in zip(g["path"], g["path_bytes"])]
    pool = g[[_protected(e, keep_paths) for e in exact]] if keep_paths else g
    if pool.empty:
        pool = g
    by = {"oldest": (["mtime_ns", "path"], [True, True]), "newest": (["mtime_ns", "path"], [False, True]),
          "first": (["path"], [True]), "shortest-path": (["_len", "path"], [True, True])}[keep]
    return pool.assign(_len=pool["path"].str.len()).sort_values(by[0], ascending=by[1], kind="stable").index[0]


def _is_scanned(fd: int, row: pd.Series) -> bool:
    st = os.fstat(fd)
    return (stat_mod.S_ISREG(st.st_mode) and (st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)
            == (row["size"], row["mtime_ns"], row["inode"], row["device"]))


def differs(keeper: str, dup: str, krow: pd.Series, row: pd.Series, piece: int = 1 << 20) -> str | None:
    """None when both files are still the ones the scan saw (checked on the opened descriptors,
    so a swap after the last lstat cannot pass) and equal byte by byte; else why not."""
    fa, fb = os.open(keeper, OPEN_FLAGS), os.open(dup, OPEN_FLAGS)
    try:
        if not (_is_scanned(fa, krow) and _is_scanned(fb, row)):
            return "changed since scan (the file opened is not the one scanned)"
        while True:
            x, y = os.read(fa, piece), os.read(fb, piece)
            if x != y:
                return "contents differ byte by byte"
            if not x:
                return None
    finally:
        os.close(fa)
        os.close(fb)


def _unchanged(path: str, row: pd.Series) -> str | None:
    """None if the file still matches the scan, else why not."""
    try:
        st = os.lstat(path)
    except OSError as e:
        return "gone: " + describe_error(e)
    if not stat_mod.S_ISREG(st.st_mode):
        return "changed since scan: no longer a regular file"
    if (st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev) != (row["size"], row["mtime_ns"], row["inode"], row["device"]):
        return "changed since scan (size, mtime, inode or device differ)"
    return None


def _temp_name(path: str) -> str:
    d, base = os.path.split(path)
    return os.path.join(d, f".{base}.exoflow-{uuid.uuid4().hex[:8]}.tmp")


def replace(action: str, keeper: str, dup: str) -> None:
    """Do one change; raises OSError (the duplicate is then left as it was)."""
    if action == "delete":
        os.unlink(dup)
        return
    tmp = _temp_name(dup)
    try:
        if action == "hardlink":
            os.link(keeper, tmp)
        elif action == "symlink":
            os.symlink(os.path.abspath(keeper), tmp)
        else:  # reflink: a copy-on-write clone with the duplicate's permissions and times
            src = os.open(keeper, OPEN_FLAGS)
            try:
                dst = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
                try:
                    fcntl.ioctl(dst, FICLONE, src)
                finally:
                    os.close(dst)
            finally:
                os.close(src)
            shutil.copystat(dup, tmp, follow_symlinks=False)
        os.replace(tmp, dup)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


def act_on_group(g: pd.DataFrame, params: dict[str, Any]) -> list[list[str]]:
    """Log lines for one group (and the changes, with --apply)."""
    action, apply = params["action"], bool(params.get("apply"))
    keep_paths = list(params.get("keep_path") or [])
    k = choose_keeper(g, params.get("keep") or "oldest", keep_paths)
    krow = g.loc[k]
    keeper = _exact(krow["path"], krow["path_bytes"])
    gid = str(krow["group_id"])
    lines = []
    for i, row in g.iterrows():
        if i == k:
            lines.append([gid, action, "kept", row["path"], row["path"], ""])
            continue
        dup = _exact(row["path"], row["path_bytes"])

        def log(status: str, reason: str = "") -> None:
            lines.append([gid, action, status, row["path"], krow["path"], reason])
        if keep_paths and _protected(dup, keep_paths):
            log("protected", "matches --keep-path")
            continue
        if (row["device"], row["inode"]) == (krow["device"], krow["inode"]):
            log("skipped", "already the same file (hard link)")
            continue
        if action == "hardlink" and row["device"] != krow["device"]:
            log("skipped", "different file systems: cannot hard link")
            continue
        why = _unchanged(keeper, krow) or _unchanged(dup, row)
        if why:
            log("skipped", why)
            continue
        try:
            why = differs(keeper, dup, krow, row)
            if why:
                log("skipped", why)
                continue
            if not apply:
                log("dry-run", "would " + action + " (use --apply)")
                continue
            why = _unchanged(keeper, krow) or _unchanged(dup, row)   # last look at both just before the change
            if why:
                log("skipped", why)
                continue
            replace(action, keeper, dup)
            log("done")
        except OSError as e:
            log("failed", describe_error(e))
    return lines


def apply_actions(rows: pd.DataFrame, out_dir: str, part: int, params: dict[str, Any]) -> dict[str, Any]:
    """Act on every group of a partition; write its log piece (a worker task)."""
    d = os.path.join(out_dir, ".action-parts")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, f"{part:06d}.tsv")
    counts: dict[str, int] = {}
    with open(path, "w", encoding="utf-8", errors="replace") as f:
        for _, g in rows.groupby("group_id", sort=True):
            for line in act_on_group(g, params):
                counts[line[2]] = counts.get(line[2], 0) + 1
                f.write("\t".join(_log_field(s) for s in line) + "\n")
    return {"log": path, "counts": counts}


def _log_field(text: str) -> str:
    """One tab-separated field: backslash first, so every escape can be undone unambiguously."""
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def merge_logs(pieces: list[dict[str, Any] | None], out_dir: str) -> dict[str, Any]:
    """OUT/actions.log from the pieces (each already in group order), and total counts."""
    target = os.path.join(out_dir, "actions.log")
    counts: dict[str, int] = {}
    with open(target, "w", encoding="utf-8") as out:
        out.write(LOG_HEADER)
        for p in pieces:
            if not p:
                continue
            for k, v in p["counts"].items():
                counts[k] = counts.get(k, 0) + v
            with open(p["log"], encoding="utf-8") as f:
                shutil.copyfileobj(f, out)
    shutil.rmtree(os.path.join(out_dir, ".action-parts"), ignore_errors=True)
    return {"log": target, "counts": counts}
