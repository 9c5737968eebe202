"""Checksum manifests: the Parquet manifest's schema, earlier manifests (--verify,
--trust-mtime), and the text manifests (sha256sum/b3sum/xxh128sum formats).

The manifest schema is fixed (every algorithm has a column; unselected ones
are null) so manifests from different runs always compare.
"""
from __future__ import annotations

import os
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from exoflow.executors import Executor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from exoflow.kernels.hashing import COLUMNS
from exoflow.errors import UsageError
from exoflow.options import local_path
from exoflow import outputs
from exoflow.fileio import escape_line


MANIFEST_COLUMNS = ["path", "path_bytes", "type", "size", "mtime_ns", "inode", "device",
                    *COLUMNS.values(), "trusted", "error"]
TEXT_NAMES = {"xxh3-128": "checksums.xxh128", "blake3": "checksums.b3", "sha256": "checksums.sha256",
              "sha1": "checksums.sha1", "md5": "checksums.md5"}
# Characters escaped in text manifests, as each tool writes them (checked against the tools in
# tests/test_checksum.py). coreutils 9 escapes \\, \n and \r: sha256sum, sha1sum and md5sum
# take every name. b3sum 1.x escapes \\ and \n only (its --check reads a raw \r as it is).
# xxhsum 0.8 escapes nothing.
_ESCAPES = {"default": [("\\", "\\\\"), ("\n", "\\n"), ("\r", "\\r")], "blake3": [("\\", "\\\\"), ("\n", "\\n")],
            "xxh3-128": []}
# Names a format cannot hold, left out of its text manifest and listed in UNLISTED: b3sum --check
# refuses names that are not UTF-8 or hold U+FFFD ("Unicode replacement character in path"); an
# xxhsum line cannot hold a newline.
CANNOT_HOLD = {"blake3": "files whose names are not UTF-8 or hold U+FFFD (b3sum --check refuses them)",
               "xxh3-128": "files whose names hold a newline (xxhsum cannot write them)"}
UNLISTED = "{}.unlisted.txt"      # beside OUT/checksums.<ext>


# ---- the old manifest (--verify) ------------------------------------------------

def manifest_files(spec: str) -> list[str]:
    """Parquet files of a manifest given as an exoflow output dir, a dataset dir or one file."""
    if os.path.isfile(spec):
        return [spec]
    if os.path.isdir(os.path.join(spec, "files")):
        spec = os.path.join(spec, "files")
    if os.path.isdir(spec):
        parts = sorted(os.path.join(r, f) for r, _, fs in os.walk(spec) for f in fs if f.endswith(".parquet"))
        if parts:
            return parts
    raise UsageError(f"{spec}: no Parquet manifest found")


@lru_cache(maxsize=8)
def manifest_algorithms(spec: str) -> tuple[str, ...]:
    """Algorithms present (non-empty) in a manifest, in COLUMNS order."""
    files = manifest_files(spec)
    try:
        names = pq.read_schema(files[0]).names
    except Exception as e:  # pyarrow raises several types for corrupt files
        raise UsageError(f"{spec}: not a readable Parquet manifest ({e})") from None
    if "path" not in names:
        raise UsageError(f"{spec}: not a checksum manifest (no 'path' column)")
    present = [a for a, c in COLUMNS.items() if c in names]
    filled = tuple(a for a in present if has_values(files, COLUMNS[a]))
    if not filled:
        raise UsageError(f"{spec}: manifest holds no hashes ({', '.join(COLUMNS.values())})")
    return filled


def has_values(files: list[str], column: str) -> bool:
    """Whether any row of ``column`` is non-null (from the Parquet statistics, no data read)."""
    for f in files:
        meta = pq.ParquetFile(f).metadata
        idx = meta.schema.names.index(column)
        for g in range(meta.num_row_groups):
            rg = meta.row_group(g)
            stats = rg.column(idx).statistics
            if rg.num_rows and (stats is None or not stats.has_null_count or stats.null_count < rg.num_rows):
                return True
    return False


def verify_argument(text: str) -> str:
    """argparse type for --verify: the manifest must exist and hold hashes (exit 2 otherwise)."""
    import argparse
    local_path(text)
    try:
        manifest_algorithms(os.path.abspath(text))
    except UsageError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return os.path.abspath(text)


def _holds(t: pa.Table, name: pa.ChunkedArray, algorithm: str) -> pa.ChunkedArray | None:
    """Which names the algorithm's text format can hold (None: all of them)."""
    if algorithm == "blake3":
        utf8 = pc.is_null(t.column("path_bytes")) if "path_bytes" in t.column_names else None
        clean = pc.invert(pc.match_substring(t.column("path"), "\ufffd"))
        return clean if utf8 is None else pc.and_(utf8, clean)
    if algorithm == "xxh3-128":
        return pc.invert(pc.match_substring(name, "\n"))
    return None


def text_lines(table: pa.Table, algorithm: str) -> tuple[bytes, list[str]]:
    """``HASH  NAME\\n`` lines for rows with a digest; names with special characters are
    escaped and the line starts with a backslash, as coreutils does. Also the names the format
    cannot hold (left out of the lines; see CANNOT_HOLD), escaped (``fileio.escape_line``)."""
    col = COLUMNS[algorithm]
    t = table.filter(pc.is_valid(table.column(col)))
    if not t.num_rows:
        return b"", []
    exact = t.column("path_bytes") if "path_bytes" in t.column_names else pa.nulls(t.num_rows, pa.binary())
    name = pc.coalesce(exact, pc.cast(t.column("path"), pa.binary()))
    holds = _holds(t, name, algorithm)
    unlisted = []
    if holds is not None:
        unlisted = [escape_line(n) for n in name.filter(pc.invert(holds)).to_pylist()]   # few, if any
        t, name = t.filter(holds), name.filter(holds)
    if not t.num_rows:
        return b"", unlisted
    escapes = _ESCAPES.get(algorithm, _ESCAPES["default"])
    special = pa.array([False] * t.num_rows, pa.bool_())
    for raw, _ in escapes:
        special = pc.or_(special, pc.match_substring(name, raw))
    for raw, esc in escapes:
        name = pc.replace_substring(name, raw, esc)
    prefix = pc.if_else(special, pa.scalar(b"\\"), pa.scalar(b""))
    lines = pc.binary_join_element_wise(prefix, pc.cast(t.column(col), pa.binary()), pa.scalar(b"  "), name,
                                        pa.scalar(b"\n"), pa.scalar(b""))
    lines = lines.combine_chunks() if isinstance(lines, pa.ChunkedArray) else lines
    _, offs_buf, data = lines.buffers()
    offsets = np.frombuffer(offs_buf, dtype=np.int32)[lines.offset:lines.offset + len(lines) + 1]
    return bytes(memoryview(data)[offsets[0]:offsets[-1]]), unlisted   # the lines are contiguous in the buffer


def write_text_part(part: str, out: str, algorithm: str) -> tuple[str, int]:
    """One Parquet part of the manifest -> its text lines in ``out`` and the names left out in
    ``out.unlisted``, one escaped name a line (a worker task); returns ``out`` and how many."""
    data, unlisted = text_lines(outputs.read_table(part, columns=["path", "path_bytes", COLUMNS[algorithm]]),
                                algorithm)
    for path, content in ((out, data), (out + ".unlisted", "".join(n + "\n" for n in unlisted).encode())):
        with outputs.atomic_write(path, "wb") as f:
            f.write(content)
    return out, len(unlisted)


def write_text_manifests(ex: Executor, dataset_dir: str, out_dir: str,
                         names: tuple[str, ...]) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """Write OUT/checksums.<alg> for each algorithm: parts converted by tasks on ``ex``, joined here.
    Returns {alg: path} and {alg: {"names": names left out, "list": OUT/checksums.<ext>.unlisted.txt
    or None when none was}}."""
    import shutil
    parts = outputs.parts(dataset_dir)
    tmp_dir = os.path.join(out_dir, ".text-parts")
    outputs.makedirs(tmp_dir)
    written, left_out = {}, {}
    for a in names:
        futures = [ex.submit(write_text_part, p, os.path.join(tmp_dir, f"{a}-{i:06d}.txt"), a)
                   for i, p in enumerate(parts)]
        target = os.path.join(out_dir, TEXT_NAMES[a])
        listing = os.path.join(out_dir, UNLISTED.format(TEXT_NAMES[a]))
        count = 0
        with outputs.atomic_write(target, "wb") as out, outputs.atomic_write(listing, "wb") as unlisted:
            for fut in futures:
                piece, n = fut.result()
                for src, dst in ((piece, out), (piece + ".unlisted", unlisted)):
                    with outputs.open_read(src) as f:
                        shutil.copyfileobj(f, dst, 1 << 20)
                    outputs.remove(src)
                count += n
        if not count:
            outputs.remove(listing)
        written[a] = target
        left_out[a] = {"names": count, "list": listing if count else None}
    outputs.rmtree(tmp_dir)
    return written, left_out


def left_out_warnings(left_out: dict[str, dict[str, Any]]) -> list[str]:
    """One line per text manifest that leaves names out: how many, which kind, where listed."""
    return [f"{TEXT_NAMES[a]} leaves out {v['names']:,} of the {CANNOT_HOLD[a]}; listed in {v['list']}"
            for a, v in left_out.items() if v["names"]]
