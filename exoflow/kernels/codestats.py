"""The codestats kernel: language, lines, blank, comment and code lines per file.

Comments are found per file by one regex per language (code and strings skipped in
bulk, so the Python loop runs once per comment, not per line or byte); everything
else is NumPy over the chunk's buffer: whitespace and comment masks, line starts
from newline positions, and per-line maxima with ``reduceat``.

A line is blank when it holds only whitespace, code when it holds a byte outside
comments that is not whitespace, comment otherwise (cloc's definitions). A last line
without a newline counts. Python triple-quoted strings count as comments, as in cloc.
"""
from __future__ import annotations

import os
import re
from functools import lru_cache

import numpy as np
import pyarrow as pa

from ..batch import Batch, load
from ..options import LoadOptions
from ..paths import raw_paths
from .languages import LANGS, by_name, by_shebang, comment_regex

MAX_FILE = 256 * 2**20      # larger files are not counted (cloc's default cap is 100 MB)
HEAD = 256                  # bytes read to find a shebang



@lru_cache(maxsize=None)
def _regex(lang: str) -> re.Pattern[bytes] | None:
    return comment_regex(LANGS[lang])


@lru_cache(maxsize=None)
def _nest_regex(lang: str) -> re.Pattern[bytes]:
    blocks = LANGS[lang].block
    return re.compile("|".join(f"(?P<o{i}>{o})|(?P<c{i}>{c})" for i, (o, c) in enumerate(blocks)).encode())


def _nested_end(lang: str, buf: bytes | np.ndarray, pos: int, end: int) -> int:
    """End of a nested block comment whose opener ends at ``pos`` (depth counting)."""
    depth = 1
    for m in _nest_regex(lang).finditer(buf, pos, end):
        depth += 1 if m.lastgroup.startswith("o") else -1
        if depth == 0:
            return m.end()
    return end


def comment_spans(lang: str, buf: bytes | np.ndarray, lo: int, hi: int, starts: list[int], ends: list[int]) -> None:
    """Append the [start, end) byte spans of comments in buf[lo:hi]."""
    rx = _regex(lang)
    if rx is None:
        return
    pos = lo
    search = rx.search
    while pos < hi:
        m = search(buf, pos, hi)
        if m is None:
            return
        s, e = m.span("c")
        if s >= 0:
            if e == s:   # defensive: never loop on an empty comment
                e += 1
        else:
            s, e = m.span("n") if "n" in rx.groupindex else (-1, -1)
            if s < 0:
                return    # matched the end: no comment left
            e = _nested_end(lang, buf, e, hi)
        starts.append(s)
        ends.append(e)
        pos = e


def count_lines(buf: bytes | np.ndarray, seg_lo: np.ndarray, seg_hi: np.ndarray, starts: list[int],
                ends: list[int]) -> dict[str, np.ndarray]:
    """Lines, blank, comment and code lines of each segment [seg_lo, seg_hi) of ``buf``."""
    n_seg = len(seg_lo)
    zero = {k: np.zeros(n_seg, dtype=np.int64) for k in ("lines", "blank", "comment", "code")}
    data = np.frombuffer(buf, dtype=np.uint8)
    if not len(data) or not n_seg:
        return zero
    # comments blanked out (to spaces) in a copy: a line has code where the copy still
    # has a byte above ' ', and comment where only the original has one
    clean = data.copy()
    for s, e in zip(starts, ends):
        clean[s:e] = 32
    nonempty = seg_hi > seg_lo
    is_start = np.zeros(len(data) + 1, dtype=bool)      # a mask, not a sort: O(bytes)
    is_start[np.flatnonzero(data == 10) + 1] = True
    is_start[seg_lo[nonempty]] = True
    line_starts = np.flatnonzero(is_start[:-1])
    has_code = np.maximum.reduceat(clean, line_starts) > 32
    has_comment = np.maximum.reduceat(data, line_starts) > 32
    # empty segments share their start with the next one: map lines by nonempty ones
    ne_idx = np.flatnonzero(nonempty)
    seg_of = ne_idx[np.maximum(np.searchsorted(seg_lo[ne_idx], line_starts, side="right") - 1, 0)]
    inside = (line_starts >= seg_lo[seg_of]) & (line_starts < seg_hi[seg_of])   # not in a gap between segments
    seg_of, has_code, has_comment = seg_of[inside], has_code[inside], has_comment[inside]
    out = {
        "lines": np.bincount(seg_of, minlength=n_seg),
        "code": np.bincount(seg_of, weights=has_code, minlength=n_seg),
        "comment": np.bincount(seg_of, weights=~has_code & has_comment, minlength=n_seg),
    }
    out["blank"] = out["lines"] - out["code"] - out["comment"]
    return {k: v.astype(np.int64) for k, v in out.items()}


def _languages(batch: Batch) -> list[str | None]:
    """By file name and extension; extensionless files by their shebang."""
    t = batch.table
    paths = raw_paths(t)
    types = t.column("type").to_pylist()
    sizes = t.column("size").fill_null(0).to_pylist()
    langs: list[str | None] = [None] * len(paths)
    for i, (p, kind, size) in enumerate(zip(paths, types, sizes)):
        if kind != "file":
            continue
        name = os.path.basename(p)
        langs[i] = by_name(name)
        if langs[i] is None and "." not in name[1:] and size > 2:
            langs[i] = by_shebang(_head(p))
    return langs


def _head(path: str) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return b""
    try:
        return os.pread(fd, HEAD, 0)
    except OSError:
        return b""
    finally:
        os.close(fd)


def _buffer_stats(buf: bytes | np.ndarray, langs: list[str], seg_lo: np.ndarray, seg_hi: np.ndarray) -> dict[str, np.ndarray]:
    starts: list[int] = []
    ends: list[int] = []
    for lang, a, b in zip(langs, seg_lo.tolist(), seg_hi.tolist()):
        if b > a:
            comment_spans(lang, buf, a, b, starts, ends)
    return count_lines(buf, seg_lo, seg_hi, starts, ends)


def codestats_columns(batch: Batch) -> dict[str, pa.Array]:
    """language, lines, blank, comment, code (null where no language or binary) and error."""
    n = batch.num_rows
    langs = _languages(batch)
    known = np.array([lang is not None for lang in langs], dtype=bool)
    cols = {k: np.zeros(n, dtype=np.int64) for k in ("lines", "blank", "comment", "code")}
    errors: list[str | None] = [None] * n
    rows = np.flatnonzero(known)
    if len(rows):
        sub = load(batch.table.take(pa.array(rows)), LoadOptions(piece_bytes=batch.piece_bytes))
        for j, e in enumerate(sub.errors):
            if e is not None:
                errors[rows[j]] = e
                known[rows[j]] = False
        # files that did not fit the buffer: read whole, counted on their own
        for j in np.flatnonzero(sub.large).tolist():
            i = int(rows[j])
            known[i] = False
            try:
                with open(sub.paths[j], "rb") as f:
                    data = f.read(MAX_FILE + 1)
            except OSError as e:
                errors[i] = str(e)
                continue
            if len(data) > MAX_FILE or b"\0" in data:
                continue
            one = _buffer_stats(data, [langs[i]], np.array([0]), np.array([len(data)]))
            for k in cols:
                cols[k][i] = one[k][0]
            known[i] = True
        offsets = sub.offsets
        data = sub.data
        in_buf = np.array([known[r] for r in rows], dtype=bool) & ~sub.large
        # binary files (a NUL byte) are not code: cloc skips them too
        lo, hi = offsets[:-1], offsets[1:]
        nonempty = np.flatnonzero(hi > lo)
        binary = np.zeros(len(rows), dtype=bool)
        if len(nonempty):
            binary[nonempty] = np.minimum.reduceat(data, lo[nonempty]) == 0
        for j in np.flatnonzero(binary & in_buf).tolist():
            known[rows[j]] = False
        in_buf &= ~binary
        use = np.flatnonzero(in_buf)
        if len(use):
            st = _buffer_stats(data, [langs[rows[j]] for j in use], lo[use], hi[use])
            for k in cols:
                cols[k][rows[use]] = st[k]
    mask = ~known
    out = {"language": pa.array([lang if ok else None for lang, ok in zip(langs, known)], pa.string())}
    for k in ("lines", "blank", "comment", "code"):
        out[k] = pa.array(cols[k], pa.int64(), mask=mask)
    if any(errors):
        import pyarrow.compute as pc
        out["error"] = pc.coalesce(batch.table.column("error"), pa.array(errors, pa.string()))
    return out
