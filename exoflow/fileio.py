"""File-I/O basics shared by every layer (a leaf module: imports nothing of exoflow).

``OPEN_FLAGS`` for reading a user's file, one-line errno descriptions, and the compiled
``_native`` module when the install built it (setup.py; ``None`` without a C compiler).
"""
from __future__ import annotations

import errno
import os

try:
    from exoflow import _native as native    # the compiled lister, reader and kernels; optional
except ImportError:                          # pragma: no cover - installs without a C compiler
    native = None

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
