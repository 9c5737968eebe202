"""The codestats kernel: language, lines, blank, comment and code lines per file.

Each language's comments are found by one regex (code and strings skipped in bulk, see
``languages.comment_regex``). Running it over every byte is what used to cost most, so
for most languages the regex reads a *token text* instead: NumPy finds, over the whole
batch buffer at once, the bytes the language's comment and string syntax is written
with (``languages.token_chars``: quotes, backslash, ``#``, ``/``, ``*`` … and newline),
and every run of other bytes between them becomes ONE byte: ``a`` if the run holds
something above a space, else a space. The regex reads that text exactly as it reads
the original (it only tells those bytes apart from "anything else", and neighbouring
delimiters stay neighbours), and the text keeps what the line counts need, so lines are
counted on it too. On Python sources it is ~10x shorter than the original.

A line is blank when it holds only whitespace, code when it holds a byte outside
comments that is not whitespace, comment otherwise (cloc's definitions). A last line
without a newline counts. Python triple-quoted strings count as comments, as in cloc.
Languages whose syntax depends on letters or counted repeats (Ruby ``=begin``, Perl
POD, Java/Go/Rust character literals, ``rem``) are read byte by byte, the same way.
"""
from __future__ import annotations

import re
from functools import lru_cache
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from exoflow.batch import Batch, Reads
from exoflow.kernels.bytestats import nul_rows
from exoflow.ops.codestats.languages import (BACKTICK, C_BLOCK, CPP_RAW, DQ, EXTENSIONS, FILENAMES,
                                             JS_REGEX, LANGS, PREFIXES, SQ, UTF8_BOM, by_shebang,
                                             comment_regex, token_chars)
from exoflow.kernels.stat import extension
from exoflow.kernels.text import UTF16_BOMS, decode_utf16

from exoflow.fileio import native as _native

MAX_FILE = 256 * 2**20      # larger files are not counted (cloc's default cap is 100 MB)
HEAD = 256                  # bytes read to find a shebang
CODE, SPACE = ord("a"), ord(" ")   # stand-ins for a run of other bytes (with / without a non-blank)


@lru_cache(maxsize=None)
def _regex(lang: str) -> re.Pattern[bytes] | None:
    return comment_regex(LANGS[lang])


@lru_cache(maxsize=None)
def _token_chars(lang: str) -> bytes | None:
    """The language's token bytes plus newline (None: its regex, or the C scanner of C-like
    syntax, reads the original bytes)."""
    if _native is not None and _c_flags(lang) is not None:
        return None
    chars = token_chars(LANGS[lang])
    return None if chars is None else bytes(sorted(set(chars) | {10}))


_C_FLAGS = {BACKTICK: 1, JS_REGEX: 2, CPP_RAW: 4}    # the strings _native.c_comments knows, by flag


@lru_cache(maxsize=None)
def _c_flags(lang: str) -> int | None:
    """The flags of ``_native.c_comments`` that read the language as its comment regex does
    (``//`` and ``/* */`` comments, one-line "..." and '...' strings, and by flag template
    strings, regex literals and C++ raw strings), or None for any other syntax."""
    lang_ = LANGS[lang]
    extra = lang_.strings[:-2]
    if ((lang_.line, lang_.block, lang_.nested, lang_.doc, lang_.strings[-2:]) != (("//",), (C_BLOCK,), False, (), (DQ, SQ))
            or not set(extra) <= set(_C_FLAGS)):
        return None
    return sum(_C_FLAGS[x] for x in extra)


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
    """Append the [start, end) byte spans of comments in buf[lo:hi] (one search per comment)."""
    rx = _regex(lang)
    if rx is None:
        return
    text = bytes(buf[lo:hi])      # a copy: lookbehinds at its start see no other file's bytes
    pos, end = 0, len(text)
    search = rx.search
    while pos < end:
        m = search(text, pos)
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
            e = _nested_end(lang, text, e, end)
        starts.append(lo + s)
        ends.append(lo + e)
        pos = e


@lru_cache(maxsize=None)
def _python_syntax(lang: str) -> bool:
    """Comments and strings written as Python's (Python, Cython)."""
    a, b = LANGS[lang], LANGS["Python"]
    return (a.line, a.block, a.nested, a.strings, a.doc) == (b.line, b.block, b.nested, b.strings, b.doc)


def all_comment_spans(buf: bytes, langs: list[str], seg_lo: list[int], seg_hi: list[int],
                      native: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Sorted [start, end) spans of the comments in each segment of ``buf`` (segments sorted).

    Languages without nested comments take one ``findall`` per file: the regex's matches
    tile the file as (code, comment) pairs, so the spans come from a cumulative sum of
    their lengths without a Python step per comment. Python's syntax, most of the lines
    in the trees measured, is scanned in C when ``exoflow._native`` is built (the same spans
    as its regex, which the tests compare it with; the regex was 0.4 s of CPU on a Python lib),
    and so is C-like syntax (C, C++, JavaScript, TypeScript, ...: see ``_c_flags``), on the
    original bytes: its regex literals and raw strings need the letters and blanks before a
    ``/`` or ``"``, which a token text does not keep."""
    lens: list[int] = []          # (gap or code, comment) length pairs, tiling buf[0:last]
    starts: list[int] = []        # spans found by searching (nested comments)
    ends: list[int] = []
    py_lo: list[int] = []         # segments for the C Python scanner
    py_hi: list[int] = []
    c_lo: list[int] = []          # segments for the C scanner of C-like syntax, and its flags
    c_hi: list[int] = []
    c_flags: list[int] = []
    pos = 0
    use_c = native and _native is not None
    for lang, a, b in zip(langs, seg_lo, seg_hi):
        rx = _regex(lang)
        if rx is None or b <= a:
            continue
        if use_c and _python_syntax(lang):
            py_lo.append(a)
            py_hi.append(b)
        elif use_c and _c_flags(lang) is not None:
            c_lo.append(a)
            c_hi.append(b)
            c_flags.append(_c_flags(lang))
        elif "n" not in rx.groupindex:
            lens += (a - pos, 0)
            lens += map(len, chain.from_iterable(map(_code_and_comment(rx), rx.findall(buf[a:b]))))
            pos = b
        else:
            comment_spans(lang, buf, a, b, starts, ends)
    cum = np.cumsum(np.array(lens, dtype=np.int64))
    if len(cum) and cum[-1] != pos:
        raise AssertionError("comment regex matches do not tile the text")   # a bug in a language's regex
    is_comment = np.array(lens[1::2], dtype=np.int64) > 0
    py_s, py_e = _native.python_comments(buf, _int64(py_lo), _int64(py_hi)) if py_lo else (b"", b"")
    c_s, c_e = _native.c_comments(buf, _int64(c_lo), _int64(c_hi), _int64(c_flags)) if c_lo else (b"", b"")
    s = np.concatenate([cum[0::2][is_comment], np.array(starts, dtype=np.int64), np.frombuffer(py_s, np.int64),
                        np.frombuffer(c_s, np.int64)])
    e = np.concatenate([cum[1::2][is_comment], np.array(ends, dtype=np.int64), np.frombuffer(py_e, np.int64),
                        np.frombuffer(c_e, np.int64)])
    if sum(map(bool, (len(starts), len(lens), py_lo, c_lo))) > 1:      # spans from more than one source
        order = np.argsort(s, kind="stable")
        s, e = s[order], e[order]
    return s, e


@lru_cache(maxsize=None)
def _code_and_comment(rx: re.Pattern[bytes]) -> itemgetter:
    """Picks groups k and c from a ``findall`` tuple (strings may hold groups of their own)."""
    return itemgetter(rx.groupindex["k"] - 1, rx.groupindex["c"] - 1)


def _int64(a) -> np.ndarray:
    """What the C passes read: contiguous, aligned int64."""
    return np.require(a, np.int64, ["C", "A"])


def count_lines(buf: bytes | np.ndarray, seg_lo: np.ndarray, seg_hi: np.ndarray, starts: np.ndarray | list[int],
                ends: np.ndarray | list[int], native: bool = True) -> dict[str, np.ndarray]:
    """Lines, blank, comment and code lines of each segment [seg_lo, seg_hi) of ``buf`` (segments
    sorted and disjoint), given the sorted, non-overlapping comment spans [starts, ends). In one
    C pass when ``exoflow._native`` is built (about 6x less CPU), else in NumPy passes over every byte."""
    n_seg = len(seg_lo)
    data = np.frombuffer(buf, dtype=np.uint8)
    if not len(data) or not n_seg:
        return {k: np.zeros(n_seg, dtype=np.int64) for k in ("lines", "blank", "comment", "code")}
    seg_lo, seg_hi = _int64(seg_lo), _int64(seg_hi)
    if native and _native is not None:
        counts = np.empty((n_seg, 4), dtype=np.int64)
        _native.count_lines(data, seg_lo, seg_hi, _int64(starts), _int64(ends), counts)
        return {"lines": counts[:, 0], "blank": counts[:, 1], "comment": counts[:, 2], "code": counts[:, 3]}
    # comments blanked out (to spaces) in a copy: a line has code where the copy still
    # has a byte above ' ', and comment where only the original has one
    starts, ends = np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64)
    clean = data
    if len(starts):
        bounds = np.empty(2 * len(starts) + 2, dtype=np.int64)
        bounds[0], bounds[-1] = 0, len(data)
        bounds[1:-1:2], bounds[2:-1:2] = starts, ends
        in_comment = np.repeat(np.tile(np.array([False, True]), len(starts) + 1)[:-1], np.diff(bounds))
        clean = np.where(in_comment, np.uint8(SPACE), data)
    is_start = np.zeros(len(data) + 1, dtype=bool)      # a mask, not a sort: O(bytes)
    is_start[np.flatnonzero(data == 10) + 1] = True
    is_start[seg_lo] = True
    is_start[seg_hi] = True                             # a last line without newline ends at its segment
    line_starts = np.flatnonzero(is_start[:-1])
    has_code = np.maximum.reduceat(clean, line_starts) > SPACE
    nonblank = np.maximum.reduceat(data, line_starts) > SPACE
    # segment i holds the lines starting in [seg_lo, seg_hi): sums by differences of running totals
    first, stop = np.searchsorted(line_starts, seg_lo), np.searchsorted(line_starts, seg_hi)
    code_sum = np.concatenate([[0], np.cumsum(has_code)])
    nonblank_sum = np.concatenate([[0], np.cumsum(nonblank)])
    lines = stop - first
    code = code_sum[stop] - code_sum[first]
    nonblank_n = nonblank_sum[stop] - nonblank_sum[first]
    # a line with code is nonblank: comment lines are the other nonblank ones
    return {"lines": lines, "blank": lines - nonblank_n, "comment": nonblank_n - code, "code": code}


@lru_cache(maxsize=None)
def _classes(chars: bytes) -> bytes:
    """translate() table: token bytes -> 2, other bytes above a space -> 1, the rest -> 0."""
    table = bytearray(b"\1" * 256)
    table[:SPACE + 1] = bytes(SPACE + 1)
    for c in chars:
        table[c] = 2
    return bytes(table)


def token_text(data: bytearray, file_lo: np.ndarray, chars: bytes, native: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The token text of contiguous files (file i is data[file_lo[i]:file_lo[i+1]], all
    nonempty): each byte in ``chars`` kept, each run of other bytes (never across a file
    start) replaced by CODE or SPACE. Returns the text and the files' starts in it. In one
    C pass when ``exoflow._native`` is built, else in NumPy passes over every byte."""
    if native and _native is not None:
        text = np.empty(len(data), dtype=np.uint8)        # never longer than the original
        starts = np.empty(len(file_lo), dtype=np.int64)
        size = _native.token_text(data, _int64(file_lo), _classes(chars), text, starts)
        return text[:size], starts
    cls = np.frombuffer(data.translate(_classes(chars)), dtype=np.uint8)   # the passes over every byte
    is_cut = cls == 2
    is_cut[file_lo] = True
    cut = np.flatnonzero(is_cut)           # each token byte, and each file start
    # OR over [cut i, cut i+1): bit 1 = cut i is a token byte, bit 0 = a non-blank byte follows before the next
    bits = np.bitwise_or.reduceat(cls, cut)
    # cut i gives up to two output bytes: its token byte, then a stand-in for the run after it
    out = np.empty((len(cut), 2), dtype=np.uint8)
    keep = np.empty((len(cut), 2), dtype=bool)
    out[:, 0] = np.frombuffer(data, dtype=np.uint8)[cut]
    np.greater_equal(bits, 2, out=keep[:, 0])
    out[:, 1] = SPACE + (CODE - SPACE) * (bits & 1)
    np.greater(np.diff(cut, append=len(data)), keep[:, 0], out=keep[:, 1])   # a run follows
    text = out[keep]
    first = np.searchsorted(cut, file_lo)
    starts = np.zeros(len(file_lo), dtype=np.int64)
    np.cumsum(np.add.reduceat(keep.ravel(), 2 * first, dtype=np.int64)[:-1], out=starts[1:])
    return text, starts


def _starts_with(data: np.ndarray, lo: np.ndarray, hi: np.ndarray, prefix: bytes) -> np.ndarray:
    """True for each segment data[lo[i]:hi[i]] that starts with ``prefix`` (a few column reads)."""
    ok = (hi - lo) >= len(prefix)
    if not ok.any():
        return ok
    for k, byte in enumerate(prefix):
        ok &= data[np.minimum(lo + k, len(data) - 1)] == byte
    return ok


def _buffer_stats(buf: bytes | np.ndarray, langs: list[str], seg_lo: np.ndarray, seg_hi: np.ndarray) -> dict[str, np.ndarray]:
    """Lines, blank, comment and code lines of each segment [seg_lo, seg_hi) of ``buf`` in
    language ``langs[i]``; a UTF-8 byte-order mark at a segment's start is not part of its text.
    Files are grouped by their token bytes; each group's files are copied next to each other,
    shortened to their token text where the language has one, and counted there."""
    data = np.frombuffer(buf, dtype=np.uint8)
    seg_lo, seg_hi = np.asarray(seg_lo, dtype=np.int64), np.asarray(seg_hi, dtype=np.int64)
    seg_lo = seg_lo + len(UTF8_BOM) * _starts_with(data, seg_lo, seg_hi, UTF8_BOM)
    out = {k: np.zeros(len(langs), dtype=np.int64) for k in ("lines", "blank", "comment", "code")}
    groups: dict[bytes | None, list[int]] = {}
    for i, (lang, a, b) in enumerate(zip(langs, seg_lo.tolist(), seg_hi.tolist())):
        if b > a:
            groups.setdefault(_token_chars(lang), []).append(i)
    for chars, idx in groups.items():
        lo, hi = seg_lo[idx], seg_hi[idx]
        file_lo = np.zeros(len(idx) + 1, dtype=np.int64)
        np.cumsum(hi - lo, out=file_lo[1:])
        view = memoryview(data)       # one copy: the group's files next to each other
        part = bytearray().join([view[a:b] for a, b in zip(lo.tolist(), hi.tolist())])
        if chars is not None:
            tokens, file_lo[:-1] = token_text(part, file_lo[:-1], chars)
            file_lo[-1] = len(tokens)
            part = tokens.tobytes()
        text = bytes(part)
        group_langs = [langs[i] for i in idx]
        starts, ends = all_comment_spans(text, group_langs, file_lo[:-1].tolist(), file_lo[1:].tolist())
        st = count_lines(text, file_lo[:-1], file_lo[1:], starts, ends)
        for k in out:
            out[k][idx] = st[k]
    return out


@lru_cache(maxsize=1)
def _name_tables() -> tuple[pa.Array, ...]:
    return tuple(pa.array(list(x)) for table in (FILENAMES, EXTENSIONS, PREFIXES) for x in (table, table.values()))


def languages_by_name(paths: pa.Array | pa.ChunkedArray) -> pa.Array:
    """``by_name`` of every path's file name, as column operations (no Python step per file)."""
    names, name_langs, exts, ext_langs, prefixes, prefix_langs = _name_tables()
    # the name after the last /; names may hold \n (an extract is ~2x faster than removing ^.*/)
    base = pc.utf8_lower(pc.struct_field(pc.extract_regex(paths, pattern="(?s)(?:^|/)(?P<b>[^/]*)$"), [0]))
    ext = extension(paths)
    by_file = pc.take(name_langs, pc.index_in(base, value_set=names))
    by_ext = pc.take(ext_langs, pc.index_in(ext, value_set=exts))
    stem = pc.replace_substring_regex(base, pattern=r"(?s)\..*$", replacement="")
    by_prefix = pc.take(prefix_langs, pc.index_in(pc.if_else(pc.equal(ext, ""), None, stem), value_set=prefixes))
    return pc.coalesce(by_file, by_ext, by_prefix)


def counted_rows(table: pa.Table, params: dict[str, Any]) -> pa.Array:
    """The codestats job's row selector (``Reads.rows``): files of at most MAX_FILE bytes in a
    language known by name, and files without an extension of more than 2 bytes (a script is
    known by its shebang, read from its loaded contents). Arrow boolean, one per row."""
    path, size = table.column("path"), pc.fill_null(table.column("size"), 0)
    by_name = pc.is_valid(languages_by_name(path))
    script = pc.and_(pc.equal(extension(path), ""), pc.greater(size, 2))
    return pc.and_(pc.or_(by_name, script), pc.less_equal(size, MAX_FILE))


class LargeFile:
    """A ``batch.Consumer`` keeping a large file's bytes (``data``) to count them: all of them while
    its language is known (``lang``: by name); an extensionless file's first HEAD bytes decide
    by its shebang first, and the rest is not read when neither knows it."""

    def __init__(self, lang: str | None, shebang: bool) -> None:
        self.data = bytearray()
        self.lang, self.pending = lang, shebang

    def update(self, piece: memoryview) -> bool:
        self.data += piece
        if self.pending and len(self.data) >= HEAD:
            self.pending = False
            self.lang = _by_head(bytes(self.data[:HEAD]), self.lang)
        return self.pending or self.lang is not None


def large_files(batch: Batch) -> dict[int, LargeFile]:
    """``Reads.consume`` of the codestats job: a ``LargeFile`` per large file it reads."""
    if batch.large is None or not batch.num_rows:
        return {}
    ok = batch.large & batch.selected & np.array([e is None for e in batch.errors], dtype=bool)
    rows = np.flatnonzero(ok)
    t = batch.table
    langs = languages_by_name(t.column("path").take(pa.array(rows, pa.int64()))).to_pylist()
    no_ext = pc.equal(extension(t.column("path")), "").to_numpy(zero_copy_only=False)
    return {i: LargeFile(lang, bool(no_ext[i])) for i, lang in zip(rows.tolist(), langs)}


READS = Reads(rows=counted_rows, consume=large_files)


def _by_head(head: bytes, lang: str | None) -> str | None:
    """The language by the shebang of a file starting with ``head`` (UTF-16 decoded), else ``lang``."""
    decoded = decode_utf16(head)
    return by_shebang(head if decoded is None else decoded) or lang


def _head(batch: Batch, i: int) -> bytes:
    """The first HEAD bytes of row ``i``'s loaded file (a large one's from its consumer)."""
    if batch.large[i]:
        return bytes(batch.streamed[i].data[:HEAD])
    return bytes(batch.content(i)[:HEAD])


def _languages(batch: Batch, read: np.ndarray) -> list[str | None]:
    """Per row, where ``read`` (bool per row: its contents were loaded): the language by file
    name; a name without an extension by its shebang first, if it has one (a ``build`` script
    starting ``#!/bin/sh`` is shell, not Bazel), then by the name. None elsewhere."""
    t = batch.table
    langs = np.full(t.num_rows, None, dtype=object)
    rows = np.flatnonzero(read)
    if len(rows):      # by name: only the rows read (the selector named the rest already)
        langs[rows] = languages_by_name(t.column("path").take(pa.array(rows))).to_numpy(zero_copy_only=False)
    langs = langs.tolist()
    no_ext = read & pc.equal(extension(t.column("path")), "").to_numpy(zero_copy_only=False)
    for i in np.flatnonzero(no_ext & (t.column("size").fill_null(0).to_numpy() > 2)).tolist():
        langs[i] = _by_head(_head(batch, i), langs[i])
    return langs


def codestats_columns(batch: Batch) -> dict[str, pa.Array]:
    """The codestats kernel: ``language`` (string) and ``lines``, ``blank``, ``comment``, ``code``
    (int64 line counts), null where no language is known, the file is binary, over MAX_FILE or
    not read; ``error`` (string) when a file could not be read. The engine loaded the rows
    ``READS`` selects; files over the piece bound were kept whole by their consumers (``LargeFile``)."""
    n = batch.num_rows
    errors: list[str | None] = list(batch.errors) if batch.errors else [None] * n
    read = np.zeros(n, dtype=bool) if batch.selected is None else \
        batch.selected & np.array([e is None for e in errors], dtype=bool)
    large = batch.large if batch.large is not None else np.zeros(n, dtype=bool)
    langs = _languages(batch, read)
    known = np.array([lang is not None for lang in langs], dtype=bool)
    cols = {k: np.zeros(n, dtype=np.int64) for k in ("lines", "blank", "comment", "code")}
    # row -> contents of a file counted on its own: over the piece bound, kept whole by its consumer
    alone: dict[int, bytes] = {i: bytes(batch.streamed[i].data) for i in np.flatnonzero(known & large).tolist()}
    if batch.data is not None and n:
        data, offsets = batch.data, batch.offsets
        lo, hi = offsets[:-1], offsets[1:]
        in_buf = known & ~large
        # UTF-16 (by its byte-order mark): decoded, then counted on its own
        utf16 = in_buf & np.logical_or.reduce([_starts_with(data, lo, hi, bom) for bom in UTF16_BOMS])
        for i in np.flatnonzero(utf16).tolist():
            alone[i] = bytes(data[lo[i]:hi[i]])
        # binary files (a NUL byte) are not code: cloc skips them too
        binary = nul_rows(data, offsets) & in_buf & ~utf16
        known &= ~binary
        use = np.flatnonzero(in_buf & ~binary & ~utf16)
        if len(use):
            st = _buffer_stats(data, [langs[i] for i in use], lo[use], hi[use])
            for k in cols:
                cols[k][use] = st[k]
    for i, text in alone.items():
        decoded = decode_utf16(text)
        text = text if decoded is None else decoded
        known[i] = b"\0" not in text
        if known[i]:
            one = _buffer_stats(text, [langs[i]], np.array([0]), np.array([len(text)]))
            for k in cols:
                cols[k][i] = one[k][0]
    mask = ~known
    out = {"language": pa.array([lang if ok else None for lang, ok in zip(langs, known)], pa.string())}
    for k in ("lines", "blank", "comment", "code"):
        out[k] = pa.array(cols[k], pa.int64(), mask=mask)
    if any(errors):
        out["error"] = pc.coalesce(batch.table.column("error"), pa.array(errors, pa.string()))
    return out
