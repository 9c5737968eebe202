"""Lossless file names in Arrow tables.

Inside exoflow a path is a Python ``str`` decoded with ``surrogateescape``
(what ``os`` returns), so any byte sequence a file system allows round-trips.
Parquet strings must be valid UTF-8, so a table carries two columns:

* ``path``: the name as UTF-8; invalid bytes shown as U+FFFD (for reading).
* ``path_bytes``: the exact bytes, set only where ``path`` is not exact.

``exact_paths`` (lists) and ``raw_paths`` (a table) turn them back into names that ``open`` accepts; ``exact_bytes``
gives a table's exact names as one binary array.
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import pyarrow as pa
import pyarrow.compute as pc


def _display(name: str) -> str:
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def path_columns(raw: pa.BinaryArray) -> tuple[pa.Array, pa.Array]:
    """``path`` and ``path_bytes`` arrays from the exact bytes of OS paths.

    Fast path: Arrow checks the whole buffer is UTF-8 at once; otherwise row by row."""
    try:
        return raw.cast(pa.string()), pa.nulls(len(raw), pa.binary())
    except pa.ArrowInvalid:
        pass
    shown, exact = [], []
    for b in raw.to_pylist():
        try:
            shown.append(b.decode("utf-8"))
            exact.append(None)
        except UnicodeDecodeError:
            shown.append(b.decode("utf-8", "replace"))
            exact.append(b)
    return pa.array(shown, pa.string()), pa.array(exact, pa.binary())


def display_column(names: Sequence[str]) -> pa.Array:
    """A UTF-8 string array for names shown to people (lossy where not UTF-8)."""
    try:
        return pa.array(names, pa.string())
    except UnicodeEncodeError:
        return pa.array([None if n is None else _display(n) for n in names], pa.string())


def exact_paths(paths: Sequence[str], raw: Sequence[Any] | None) -> list[str]:
    """The exact OS paths (``str`` with surrogateescape) of rows given their ``path`` values and
    their ``path_bytes`` values (None, or NaN from a pandas column, where ``path`` is exact)."""
    exact = list(paths)
    for i, b in enumerate(raw if raw is not None else ()):
        if isinstance(b, (bytes, bytearray)):
            exact[i] = os.fsdecode(b)
    return exact


def raw_paths(table: pa.Table) -> list[str]:
    """The exact OS paths of a table's rows (``str`` with surrogateescape)."""
    raw = table.column("path_bytes") if "path_bytes" in table.column_names else None
    return exact_paths(table.column("path").to_pylist(),
                       raw.to_pylist() if raw is not None and raw.null_count < len(raw) else None)


def exact_bytes(table: pa.Table) -> pa.Array:
    """Large binary (int64 offsets: any number of rows): each row's exact path bytes (``path_bytes``
    where set, else ``path`` in UTF-8; a null path as empty)."""
    raw = table.column("path").cast(pa.large_binary())
    if "path_bytes" in table.column_names:
        exact = table.column("path_bytes").cast(pa.large_binary())
        raw = pc.if_else(pc.is_valid(exact), exact, raw)
    return raw.fill_null(b"").combine_chunks()

