"""Independent oracles, written without exoflow code: os.walk + lstat, and find -printf."""
from __future__ import annotations

import os
import stat
import subprocess

TYPE = {stat.S_IFREG: "file", stat.S_IFDIR: "dir", stat.S_IFLNK: "symlink", stat.S_IFIFO: "fifo",
        stat.S_IFSOCK: "socket", stat.S_IFCHR: "char", stat.S_IFBLK: "block"}
FIND_TYPE = {"f": "file", "d": "dir", "l": "symlink", "p": "fifo", "s": "socket", "c": "char", "b": "block"}


def walk_lstat(root: str) -> dict[bytes, tuple[int, str]]:
    """Every non-directory entry under root: exact path bytes -> (size, type)."""
    out = {}
    for d, dirs, files in os.walk(os.fsencode(root)):
        for name in files + [x for x in dirs if os.path.islink(os.path.join(d, x))]:
            p = os.path.join(d, name)
            st = os.lstat(p)
            out[p] = (st.st_size, TYPE[stat.S_IFMT(st.st_mode)])
    return out


def find_printf(root: str, *options: str) -> dict[bytes, tuple[int, str]]:
    """The same from GNU find (``options`` such as -L go before the root): NUL-separated records."""
    raw = subprocess.run(["find", *options, root, "-not", "-type", "d", "-printf", r"%p\0%s\0%y\0"],
                         capture_output=True, check=False).stdout
    fields = raw.split(b"\0")[:-1]
    return {fields[i]: (int(fields[i + 1]), FIND_TYPE[fields[i + 2].decode()]) for i in range(0, len(fields), 3)}
