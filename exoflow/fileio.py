"""File-I/O basics shared by every layer (a leaf module: imports nothing of exoflow).

``OPEN_FLAGS`` for reading a user's file, one-line errno descriptions, the compiled
``_native`` module when the install built it (setup.py; ``None`` without a C compiler),
atomic writes (``atomic_write``) and names escaped onto one line of text (``escape_line``).
"""
from __future__ import annotations

import contextlib
import errno
import os
from typing import IO, Iterator

try:
    from exoflow import _native as native    # the compiled lister, reader and kernels; optional
except ImportError:                          # pragma: no cover - installs without a C compiler
    native = None

TMP_SUFFIX = ".tmp"    # a file being written (``atomic_write``); an interrupted run's are removed
OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # never blocks on a FIFO swapped in


def describe_error(exc: OSError) -> str:
    """A stable one-line description: ``EACCES: Permission denied``."""
    if exc.errno is None and exc.args:      # exoflow's own (e.g. batch.FileChanged)
        return str(exc.args[0])
    code = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
    return f"{code}: {exc.strerror or exc}"


def describe_errno(code: int) -> str:
    """``describe_error`` for a bare errno (from the compiled lister and reader)."""
    return describe_error(OSError(code, os.strerror(code)))


@contextlib.contextmanager
def atomic_write(path: str, mode: str = "w", errors: str = "strict") -> Iterator[IO]:
    """Write ``path`` so that readers see the old file or the whole new one, never a part: the
    text goes to ``PATH.PID.tmp`` (opened with ``mode``; text as UTF-8, ``errors`` as ``open``'s),
    renamed over ``path`` when the block ends; on an exception the temporary file is removed and the
    exception goes on. Raises OSError as open, write and rename do."""
    tmp = f"{path}.{os.getpid()}{TMP_SUFFIX}"
    try:
        with open(tmp, mode, **({} if "b" in mode else {"encoding": "utf-8", "errors": errors})) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def escape_line(name: str | bytes, tab: bool = False) -> str:
    """A name as one line of text (manifests, duplicates.txt, actions.log): backslash first, so
    every escape can be undone, then ``\\n`` and ``\\r`` (and ``\\t`` with ``tab``) as backslash
    escapes; bytes that are not UTF-8 (surrogate-escaped in a ``str``) as ``\\xHH``."""
    raw = name if isinstance(name, bytes) else os.fsencode(name)
    raw = raw.replace(b"\\", b"\\\\").replace(b"\n", b"\\n").replace(b"\r", b"\\r")
    if tab:
        raw = raw.replace(b"\t", b"\\t")
    return raw.decode("utf-8", "backslashreplace")
