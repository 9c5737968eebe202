"""Paths of any length: opening and ``stat`` past PATH_MAX.

The kernel refuses a path of PATH_MAX (4096) bytes or more with ENAMETOOLONG, though a
tree may be nested deeper than that. These helpers try the path as it is first (the
common case costs nothing extra); on ENAMETOOLONG they open its directories a piece at
a time (each piece shorter than PATH_MAX, opened with ``O_PATH`` relative to the one
before, so only search permission is needed, as for the kernel's own lookup) and finish
with the ``*at`` call on the last name. Symlinks inside the path are followed as the
kernel follows them; flags such as ``O_NOFOLLOW`` apply to the last name only, as usual.
``exoflow._native.read_files`` does the same in C.
"""
from __future__ import annotations

import errno
import os
from contextlib import contextmanager
from typing import Any, Callable, Iterator

PATH_MAX = 4096          # Linux: bytes of a path with its terminating NUL
_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC


def open_path(path: str | bytes, flags: int, mode: int = 0o777) -> int:
    """``os.open(path, flags, mode)`` for a path of any length; raises OSError as os.open does."""
    try:
        return os.open(path, flags, mode)
    except OSError as e:
        if e.errno != errno.ENAMETOOLONG:
            raise
    with parent_at(path, force=True) as (fd, name):
        return os.open(name, flags, mode, dir_fd=fd)


def stat_path(path: str | bytes, follow_symlinks: bool = True) -> os.stat_result:
    """``os.stat(path, follow_symlinks=...)`` for a path of any length; raises OSError as os.stat does."""
    try:
        return os.stat(path, follow_symlinks=follow_symlinks)
    except OSError as e:
        if e.errno != errno.ENAMETOOLONG:
            raise
    with parent_at(path, force=True) as (fd, name):
        return os.stat(name, dir_fd=fd, follow_symlinks=follow_symlinks)


def call_at(func: Callable[..., Any], path: str | bytes, *args: Any, **kwargs: Any) -> Any:
    """``func(path, *args, **kwargs)`` for a path of any length, where ``func`` takes ``dir_fd``
    (os.lstat, os.unlink, os.mkdir, os.rmdir, os.readlink …): its ``*at`` form past PATH_MAX.
    Raises OSError as ``func`` does."""
    with parent_at(path) as (fd, name):
        return func(name, *args, dir_fd=fd, **kwargs)


def call_at2(func: Callable[..., Any], src: str | bytes, dst: str | bytes, *args: Any, **kwargs: Any) -> Any:
    """``func(src, dst, *args, **kwargs)`` for paths of any length, where ``func`` takes
    ``src_dir_fd`` and ``dst_dir_fd`` (os.link, os.rename, os.replace …). Raises OSError as ``func`` does."""
    with parent_at(src) as (sfd, sname), parent_at(dst) as (dfd, dname):
        return func(sname, dname, *args, src_dir_fd=sfd, dst_dir_fd=dfd, **kwargs)


def real_path(path: str) -> str:
    """``os.path.realpath(path)`` for a path of any length: os.path.realpath silently stops resolving
    symlinks past PATH_MAX; this resolves each name's symlink as the kernel does at any depth (a
    name that does not exist, or a loop of more than 40 links, is kept as it is, as realpath does)."""
    try:
        return os.path.realpath(path, strict=True)
    except OSError as e:
        if e.errno != errno.ENAMETOOLONG:
            return os.path.realpath(path)
    todo = os.path.join(os.getcwd(), path).split("/")[::-1]       # names still to resolve (a stack)
    done, hops = "", 0                                             # the real path so far ("" for /)
    while todo:
        name = todo.pop()
        if name in ("", "."):
            continue
        if name == "..":
            done = done.rpartition("/")[0]
            continue
        step = f"{done}/{name}"
        try:
            link = call_at(os.readlink, step) if hops < 40 else None
        except OSError:                                            # not a symlink (EINVAL), or missing
            link = None
        if link is None:
            done = step
            continue
        hops += 1
        done = "" if link.startswith("/") else done
        todo.extend(link.split("/")[::-1])
    return done or "/"


@contextmanager
def parent_at(path: str | bytes, force: bool = False) -> Iterator[tuple[int | None, str | bytes]]:
    """``(dir_fd, name)`` for the ``*at`` form of a call on ``path`` (``os.open(name, …, dir_fd=dir_fd)``,
    ``os.unlink``, ``os.rename``, ``os.link`` … with ``dir_fd`` / ``src_dir_fd`` / ``dst_dir_fd``):
    ``(None, path)`` when the path is shorter than PATH_MAX (unless ``force``), else a descriptor of
    its directory (``O_PATH``, closed on exit) and its last name. Raises OSError when a directory on
    the way cannot be opened."""
    raw = os.fsencode(path)
    head, slash, name = raw.rstrip(b"/").rpartition(b"/")
    if (len(raw) < PATH_MAX and not force) or not slash:     # short, or a bare name
        yield None, path
        return
    fd = open_dir_pieces(head or b"/")
    try:
        yield fd, name if isinstance(path, bytes) else os.fsdecode(name)
    finally:
        os.close(fd)


def open_dir_pieces(path: bytes) -> int:
    """An ``O_PATH`` descriptor of the directory ``path`` (any length), opened a piece at a time."""
    fd = None
    try:
        for piece in _pieces(path):
            new = os.open(piece, _DIR_FLAGS, dir_fd=fd)
            if fd is not None:
                os.close(fd)
            fd = new
    except BaseException:
        if fd is not None:
            os.close(fd)
        raise
    return fd if fd is not None else os.open(".", _DIR_FLAGS)


def _pieces(path: bytes) -> list[bytes]:
    """``path`` cut at slashes into pieces shorter than PATH_MAX (the first keeps a leading ``/``)."""
    pieces: list[bytes] = []
    current = b"/" if path.startswith(b"/") else b""
    for name in path.split(b"/"):
        if not name:
            continue
        if current.strip(b"/") and len(current) + 1 + len(name) >= PATH_MAX:
            pieces.append(current)
            current = b""
        current += (b"/" if current.strip(b"/") else b"") + name
    return pieces + [current] if current else pieces
