"""The scan kernel: rule matching over a whole batch buffer.

Two steps, so every engine gives the same findings:

1. Candidates: a multi-pattern engine runs over ONE buffer holding every text file of
   the chunk and reports (rule, end offset) pairs. Hyperscan (all rules in one database,
   one pass) when installed; else RE2 per rule over the buffer; with Python ``re`` a rule
   with keywords gets the lines holding one of them (one literal search per keyword set).
2. Confirmation: each (rule, line) candidate's line is matched with the rule's Python
   regex, which fixes the exact span, the secret group, keywords, entropy and allowlists.
   Rules with a ``path`` filter or path allowlist are not confirmed in other files.

Lines, columns and file rows come from offsets with NumPy (``searchsorted`` over the
file offsets and the newline positions). Columns are 1-based and count Unicode code
points (UTF-8 lead bytes; an invalid byte counts as one). UTF-16 files (by BOM) are
decoded to UTF-8 first and a UTF-8 BOM is dropped (``text.py``), as ripgrep does. Binary
files (a NUL byte anywhere in the text, as ripgrep) are skipped. Files larger than the
piece size are streamed: each window ends at a newline and the unfinished line is carried
into the next, so a match is never cut at a piece boundary.

Redaction: on every line shown, nothing from the start of the first span any redacted
(secret) rule's regex matches there (its secret group; reported or not: entropy,
allowlists, path filters do not count) to the end of the line is shown (``match`` and
``context`` of every finding on that line), since a rule's regex may cover only the start
of a longer secret. Lines inside a private key block (after a ``-----BEGIN … PRIVATE
KEY-----`` marker of the same file, up to its ``-----END …-----`` marker) are never shown at
all, and a BEGIN marker hides the rest of its line, whatever rules are loaded. Contexts
are cut on character boundaries.

Each finding has a fingerprint (rule, path relative to the scanned root, secret; not the
line) and ``suppressed``: ``inline`` (an allow comment on its line) or ``baseline`` (its
fingerprint is in --baseline), else null.
"""
from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from exoflow.batch import Batch
from exoflow.kernels.bytestats import byte_entropy
from exoflow.ops.scan.rules import Rule, RuleSet, severity_rank
from exoflow.kernels.text import TextDecoder, bom_rows, decode_utf16, text_rows

ENGINES = ("auto", "hyperscan", "re2", "re")
CARRY_MAX = 1 << 20        # a line longer than this in a streamed file may be split
CONTEXT_MAX = 240          # bytes of a line kept as context around a match
REDACTED = b"REDACTED"
# private key block markers: what lies between them is never shown (see the module doc)
PEM_MARK = re.compile(rb"-----(BEGIN|END)[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----")
# inline allow comments: on a finding's line (exoflow's own, gitleaks', detect-secrets', trufflehog's,
# ggshield's), or detect-secrets' "nextline" form on the line before
ALLOW_MARK = re.compile(rb"exoflow:allow|gitleaks:allow|pragma: ?(?:allow|white)list[ -]secret"
                        rb"|trufflehog:ignore|ggignore")
ALLOW_NEXT_MARK = re.compile(rb"pragma: ?allowlist[ -]nextline[ -]secret")
ROW_KEYS = ("seg", "line", "column", "end_column", "rule", "severity", "match", "context", "redacted",
            "allowed", "digest")

FINDINGS_SCHEMA = pa.schema([
    ("path", pa.string()), ("path_bytes", pa.binary()), ("line", pa.int64()), ("column", pa.int64()),
    ("end_column", pa.int64()), ("rule", pa.string()), ("severity", pa.string()), ("match", pa.string()),
    ("context", pa.string()), ("redacted", pa.bool_()), ("fingerprint", pa.string()), ("suppressed", pa.string()),
    ("error", pa.string()),
])


def engine_available(name: str) -> bool:
    """Whether the matching engine ``name`` (hyperscan, re2, re) can be imported here."""
    try:
        __import__({"hyperscan": "hyperscan", "re2": "re2", "re": "re"}[name])
        return True
    except ImportError:
        return False


def resolve_engine(name: str) -> str:
    """``auto`` -> the fastest engine installed (hyperscan, else re2, else Python's re); other
    names as given."""
    if name == "auto":
        return next(e for e in ("hyperscan", "re2", "re") if engine_available(e))
    return name


# ---- compiled engines (cached per worker thread, keyed by the rule set) ---------

class Compiled:
    """Rules compiled for one engine: a candidate finder plus Python regexes for confirming."""

    def __init__(self, rules: tuple[Rule, ...], engine: str) -> None:
        self.rules = rules
        self.engine = engine
        self.confirm = [r.compiled() for r in rules]
        self.allow = [tuple([re.compile(p.encode("utf-8")) for p in ps]
                            for ps in (r.allow_regexes, r.allow_match_regexes, r.allow_line_regexes)) for r in rules]
        self.redactors = [i for i, r in enumerate(rules) if r.redact]
        self.groups = [_group_index(rx, r.secret_group) for rx, r in zip(self.confirm, rules)]
        self.keywords = [tuple(k.encode() for k in r.keywords) for r in rules]
        self.finders: list[Any] = list(self.confirm)
        self.hs_db = None
        if engine == "hyperscan":
            import hyperscan
            flags = hyperscan.HS_FLAG_PREFILTER | hyperscan.HS_FLAG_MULTILINE | hyperscan.HS_FLAG_ALLOWEMPTY
            self.hs_db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            self.hs_db.compile(expressions=[r.pattern.encode("latin-1") for r in rules], ids=list(range(len(rules))),
                               elements=len(rules), flags=[flags] * len(rules))
        elif engine == "re2":
            import re2
            opts = re2.Options()
            opts.encoding = re2.Options.Encoding.LATIN1   # bytes, as Python re and Hyperscan see them
            opts.log_errors = False
            for i, r in enumerate(rules):
                try:
                    self.finders[i] = re2.compile(r.pattern.encode("latin-1"), opts)
                except Exception:   # lookarounds, backreferences: this rule stays on Python re
                    pass
        # Python re is slow over a whole buffer with complex rules: a rule with keywords that
        # is left to it gets as candidates the lines holding one of its keywords (what
        # _confirm requires anyway), found by one literal search per set of keywords
        groups: dict[tuple[bytes, ...], list[int]] = {}
        for i, r in enumerate(rules):
            if r.keywords and self.finders[i] is self.confirm[i]:
                groups.setdefault(self.keywords[i], []).append(i)
                self.finders[i] = None
        self.line_finders = [(re.compile(b"(?:" + b"|".join(re.escape(k) for k in sorted(kw, key=len, reverse=True))
                                         + b")[^\n]*"), members) for kw, members in groups.items()]

    def candidates(self, buf: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rule index, first byte, last byte) of candidate matches in ``buf``; for
        Hyperscan the first byte is unknown and equals the last."""
        ids: list[int] = []
        lo: list[int] = []
        hi: list[int] = []
        if self.hs_db is not None:
            def on_match(i: int, _frm: int, to: int, _flags: int, _ctx: Any) -> None:
                ids.append(i)
                hi.append(to - 1)
            self.hs_db.scan(buf, match_event_handler=on_match)
            lo = hi
        else:
            low = buf.lower() if any(r.keywords for r in self.rules) else b""
            for rx, members in self.line_finders:
                for m in rx.finditer(low):
                    for i in members:
                        ids.append(i)
                        lo.append(m.start())
                        hi.append(m.start())
            for i, (rule, finder) in enumerate(zip(self.rules, self.finders)):
                if finder is None or rule.keywords and not any(k in low for k in self.keywords[i]):
                    continue   # found by the keyword lines; or the keyword prefilter: no match here
                for m in finder.finditer(buf):
                    ids.append(i)
                    lo.append(m.start())
                    hi.append(max(m.start(), m.end() - 1))
        return (np.asarray(ids, dtype=np.int64), np.asarray(lo, dtype=np.int64), np.asarray(hi, dtype=np.int64))


def _group_index(rx: re.Pattern, group: int | str | None) -> int:
    if group is None:
        return 0
    return rx.groupindex[group] if isinstance(group, str) else int(group)


_local = threading.local()


def compiled_for(ruleset: RuleSet, engine: str) -> Compiled:
    """The rule set compiled for ``engine``, once per worker thread (engines' scratch is per thread)."""
    cache = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = {}
    key = (ruleset.key, engine)
    if key not in cache:
        cache[key] = Compiled(ruleset.rules, resolve_engine(engine))
    return cache[key]


# ---- matching a buffer of segments ------------------------------------------------

@dataclass
class Hit:
    """One confirmed match of a rule in a buffer (offsets in bytes)."""

    seg: int             # index of the segment (file or window) in the buffer
    rule: int
    line_start: int      # absolute offset of the line in the buffer
    start: int           # the reported span (the secret group), relative to the line
    end: int


def _line_bounds(buf: bytes, pos: int, seg_lo: int, seg_hi: int) -> tuple[int, int]:
    ls = buf.rfind(b"\n", seg_lo, pos) + 1
    ls = max(ls, seg_lo)
    le = buf.find(b"\n", pos, seg_hi)
    return ls, (seg_hi if le < 0 else le)


def match_buffer(c: Compiled, buf: bytes, seg_lo: np.ndarray, seg_hi: np.ndarray,
                 off: dict[int, np.ndarray] | None = None) -> tuple[list[Hit], set[tuple[int, int]]]:
    """Confirmed matches in ``buf``, whose segments [seg_lo[k], seg_hi[k]) are files or
    windows, and the (rule, line start) pairs of every candidate (the lines where a rule
    may match: a superset of its matches, kept for redaction). ``off``: rule index -> True
    for the segments the rule does not apply to (``rules_off``): not confirmed there."""
    off = off or {}
    ids, lo, hi = c.candidates(buf)
    hits: list[Hit] = []
    seen: set[tuple[int, int]] = set()
    lo_list, hi_list = seg_lo.tolist(), seg_hi.tolist()
    for pos_arr in ((lo, hi) if lo is not hi else (hi,)):
        segs = np.searchsorted(seg_lo, pos_arr, side="right") - 1
        line_of: dict[int, tuple[int, int]] = {}     # each rule's last line: its candidates come in order
        for rule, pos, seg in zip(ids.tolist(), pos_arr.tolist(), segs.tolist()):
            if seg < 0 or pos >= hi_list[seg]:
                continue
            ls, le = line_of.get(rule, (1, 0))
            if ls <= pos <= le:                        # on the line just seen (its newline included)
                continue
            ls, le = line_of[rule] = _line_bounds(buf, pos, lo_list[seg], hi_list[seg])
            if (rule, ls) in seen:
                continue
            seen.add((rule, ls))
            if rule not in off or not off[rule][seg]:
                hits += _confirm(c, rule, seg, buf, ls, le)
    return hits, seen


def _confirm(c: Compiled, i: int, seg: int, buf: bytes, ls: int, le: int) -> list[Hit]:
    rule = c.rules[i]
    line = buf[ls:le]
    if line.endswith(b"\r"):          # CRLF: the CR is not part of the line
        line = line[:-1]
    if rule.keywords:
        low = line.lower()
        if not any(k in low for k in c.keywords[i]):
            return []
    out = []
    g = c.groups[i]
    on_secret, on_match, on_line = c.allow[i]
    if any(a.search(line) for a in on_line):
        return []
    for m in c.confirm[i].finditer(line):
        s, e = m.span(g)
        if s < 0:
            s, e = m.span()
        secret = line[s:e]
        if rule.entropy is not None and byte_entropy(secret) < rule.entropy:
            continue
        if rule.allow_stopwords and any(w.encode() in secret.lower() for w in rule.allow_stopwords):
            continue
        if any(a.search(secret) for a in on_secret) or any(a.search(m.group()) for a in on_match):
            continue
        out.append(Hit(seg, i, ls, s, e))
    return out


def secret_start(c: Compiled, line: bytes, rules: Iterable[int]) -> int:
    """Where the first span that any of the redacted (secret) ``rules``' regexes matches on
    ``line`` begins (its secret group), whether or not it is reported (entropy, allowlists,
    path filters ignored); ``len(line)`` when none does."""
    cut = len(line)
    for i in rules:
        m = c.confirm[i].search(line)
        if m is not None:
            s = m.start(c.groups[i])
            cut = min(cut, m.start() if s < 0 else s)
    return cut


# ---- from hits to rows ----------------------------------------------------------

def _codepoints(b: bytes) -> int:
    a = np.frombuffer(b, dtype=np.uint8)
    return int(np.count_nonzero((a & 0xC0) != 0x80))


def pem_marks(buf: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Offsets of the private key BEGIN/END markers in ``buf`` and True where BEGIN."""
    if b"PRIVATE KEY" not in buf:
        return np.zeros(0, np.int64), np.zeros(0, bool)
    ms = [(m.start(), m.group(1) == b"BEGIN") for m in PEM_MARK.finditer(buf)]
    return np.array([p for p, _ in ms], np.int64), np.array([b for _, b in ms], bool)


def _hidden_from(line: bytes, ls: int, seg_start: int, hits: list[Hit], c: Compiled, secret_rules: list[int],
                 marks: tuple[np.ndarray, np.ndarray], open_at_seg_start: bool) -> int:
    """The first byte of ``line`` (which starts at ``ls`` in the buffer) never shown:
    the start of the first span a redacted rule's regex matches on it (reported or not), of
    a private key BEGIN marker on it, 0 inside a private key block; ``len(line)`` when all
    of it may be shown. ``secret_rules``: the redacted rules that may match on the line."""
    cut = min([h.start for h in hits if c.rules[h.rule].redact] + [secret_start(c, line, secret_rules)])
    pos, begin = marks
    if len(pos):
        k = int(np.searchsorted(pos, ls, side="left")) - 1       # the last marker before the line
        if (begin[k] if k >= 0 and pos[k] >= seg_start else open_at_seg_start):
            return 0
        on_line = np.flatnonzero(begin & (pos >= ls) & (pos < ls + len(line)))
        if len(on_line):
            cut = min(cut, int(pos[on_line[0]]) - ls)
    elif open_at_seg_start:
        return 0
    return cut


def _window(line: bytes, start: int, end: int, cut: int) -> tuple[int, int]:
    """[lo, hi) of at most CONTEXT_MAX visible bytes (before ``cut``) around the span
    [start, end), or the span's visible part when it is longer; both ends on character
    boundaries (never inside a UTF-8 sequence)."""
    a, b = min(start, cut), min(end, cut)
    if cut <= CONTEXT_MAX:
        return 0, cut
    lo = max(0, min(a - max(0, CONTEXT_MAX - (b - a)) // 2, cut - CONTEXT_MAX))
    hi = min(cut, lo + max(CONTEXT_MAX, b - a))
    return _char_boundary(line, lo, +1), _char_boundary(line, hi, -1)


def _char_boundary(line: bytes, pos: int, step: int) -> int:
    """``pos`` moved by ``step`` (+1: forward, -1: back) off UTF-8 continuation bytes to a
    character's first byte, over at most 3 of them (invalid UTF-8 stays as it is)."""
    for _ in range(3):
        if not (0 < pos < len(line) and 0x80 <= line[pos] < 0xC0):
            break
        pos += step
    return pos


def _text(line: bytes, lo: int, hi: int, cut: int) -> str:
    """line[lo:hi] as text, REDACTED in place of everything from ``cut`` on."""
    if hi <= cut:
        return line[lo:hi].decode("utf-8", "replace")
    return (line[lo:cut] if lo < cut else b"").decode("utf-8", "replace") + REDACTED.decode()


def hit_rows(c: Compiled, buf: bytes, hits: list[Hit], candidates: set[tuple[int, int]], seg_lo: np.ndarray,
             seg_line0: np.ndarray, open_at_start: bool = False, prev_line: bytes = b"") -> dict[str, list]:
    """Line, column, match, context, inline allow marker and fingerprint digest of each hit;
    line numbers via newline positions. ``candidates``: match_buffer's (rule, line start)
    pairs. ``open_at_start``: the buffer's first segment starts inside a private key block,
    and ``prev_line`` is the line before it (a window of a streamed file)."""
    cols: dict[str, list] = {k: [] for k in ROW_KEYS}
    if not hits:
        return cols
    by_line: dict[int, list[Hit]] = {}
    for h in hits:
        by_line.setdefault(h.line_start, []).append(h)
    line_no = _line_numbers(buf, hits, seg_lo, seg_line0)
    marks = pem_marks(buf)
    lines: dict[int, tuple[bytes, int, bool]] = {}
    for ls, on_line in by_line.items():
        seg = on_line[0].seg
        line, before = _line_at(buf, ls, int(seg_lo[seg]), prev_line if seg == 0 else b"")
        secret_rules = [i for i in c.redactors if (i, ls) in candidates]
        hidden = _hidden_from(line, ls, int(seg_lo[seg]), on_line, c, secret_rules, marks, open_at_start and seg == 0)
        lines[ls] = line, hidden, bool(ALLOW_MARK.search(line) or ALLOW_NEXT_MARK.search(before))
    for h in hits:
        rule = c.rules[h.rule]
        line, cut, allowed = lines[h.line_start]
        lo, hi = _window(line, h.start, h.end, cut)
        col = 1 + _codepoints(line[:h.start])
        cols["seg"].append(h.seg)
        cols["line"].append(line_no[(h.seg, h.line_start)])
        cols["column"].append(col)
        cols["end_column"].append(col + _codepoints(line[h.start:h.end]))
        cols["rule"].append(rule.id)
        cols["severity"].append(rule.severity)
        # the match is the reported span: the text from column to end_column
        cols["match"].append(REDACTED.decode() if rule.redact else _text(line, h.start, h.end, cut))
        cols["context"].append(_text(line, lo, len(line) if hi == cut else hi, cut).strip())
        cols["redacted"].append(rule.redact or cut < h.end)
        cols["allowed"].append(allowed)
        cols["digest"].append(_digest(rule, line, h))
    return cols


def _line_at(buf: bytes, ls: int, seg_start: int, prev_line: bytes) -> tuple[bytes, bytes]:
    """The line starting at ``ls`` and the line before it (``prev_line`` for the first
    line of the segment), without their CR LF."""
    le = buf.find(b"\n", ls)
    line = buf[ls: len(buf) if le < 0 else le].rstrip(b"\r")
    if ls <= seg_start:
        return line, prev_line
    return line, buf[max(buf.rfind(b"\n", seg_start, ls - 1) + 1, seg_start): ls - 1].rstrip(b"\r")


def _digest(rule: Rule, line: bytes, h: Hit) -> str:
    """What a finding's fingerprint hashes, itself hashed at once: the rule and the secret
    (a redacted rule) or the whole line, blanks trimmed (other rules): not the line number,
    so a finding keeps its fingerprint when lines move, and changes when it is edited."""
    text = line[h.start:h.end] if rule.redact else line.strip()
    return hashlib.sha256(rule.id.encode() + b"\0" + text).hexdigest()


def _line_numbers(buf: bytes, hits: list[Hit], seg_lo: np.ndarray,
                  seg_line0: np.ndarray) -> dict[tuple[int, int], int]:
    """(segment, line start) -> 1-based line number: one newline search per segment with hits."""
    starts: dict[int, set[int]] = {}
    for h in hits:
        starts.setdefault(h.seg, set()).add(h.line_start)
    data = np.frombuffer(buf, dtype=np.uint8)
    out = {}
    for seg, ls_set in starts.items():
        ls = np.array(sorted(ls_set), dtype=np.int64)
        lo = int(seg_lo[seg])
        newlines = np.flatnonzero(data[lo:int(ls[-1])] == 10) + lo
        numbers = int(seg_line0[seg]) + np.searchsorted(newlines, ls, side="left")
        out.update({(seg, int(a)): int(n) for a, n in zip(ls, numbers)})
    return out


# ---- the batch ------------------------------------------------------------------


def pack_segments(parts: list) -> tuple[bytes, np.ndarray, np.ndarray]:
    """One buffer of files, each followed by a newline so that no match joins two files;
    returns it with each file's [lo, hi)."""
    sizes = np.array([len(p) for p in parts], dtype=np.int64)
    hi = np.cumsum(sizes + 1) - 1
    return b"\n".join(parts), hi - sizes, hi


def _scan_segments(c: Compiled, buf: bytes, seg_lo: np.ndarray, seg_hi: np.ndarray, seg_line0: np.ndarray,
                   open_at_start: bool = False, prev_line: bytes = b"",
                   off: dict[int, np.ndarray] | None = None) -> dict[str, list]:
    hits, candidates = match_buffer(c, buf, seg_lo, seg_hi, off)
    return hit_rows(c, buf, hits, candidates, seg_lo, seg_line0, open_at_start, prev_line)


class LargeScan:
    """A ``batch.Consumer``: one large file's findings, its pieces re-cut at newlines into windows of
    whole lines (a line longer than CARRY_MAX is cut) and scanned as they come; UTF-16 with a BOM
    is decoded on the way (``text.TextDecoder``). A NUL in the text makes the file binary: no
    more is wanted. ``off``: as ``rules_off`` gives it for this one file."""

    def __init__(self, c: Compiled, off: dict[int, np.ndarray] | None = None) -> None:
        self.c, self.off = c, off
        self.out: dict[str, list] = {k: [] for k in ROW_KEYS}
        self.text = TextDecoder()
        self.carry = b""          # text after the last newline, for the next window
        self.line0 = 1
        self.read = 0             # bytes fed
        self.binary = False
        self.in_key = False       # inside a private key block that began in an earlier window
        self.prev = b""           # the last line of the previous window

    def update(self, piece: memoryview) -> bool:
        self.read += len(piece)
        text = self.text.decode(piece)
        return self._lines(text) if text else True

    def finish(self) -> tuple[dict[str, list], bool, int]:
        """Once the last piece is in (or the consumer stopped): (rows of its findings, is binary,
        bytes read)."""
        if not self.binary and self._lines(self.text.end()) and self.carry:
            self._scan(self.carry)
            self.carry = b""
        return ({k: [] for k in ROW_KEYS} if self.binary else self.out), self.binary, self.read

    def _lines(self, text: bytes) -> bool:
        window = self.carry + text
        cut = window.rfind(b"\n") + 1
        if cut == 0:
            if len(window) <= CARRY_MAX:
                self.carry = window
                return True
            cut = len(window)
        self.carry = window[cut:]
        return self._scan(window[:cut])

    def _scan(self, window: bytes) -> bool:
        if b"\0" in window:
            self.binary = True
            return False
        one = np.zeros(1, dtype=np.int64)
        rows = _scan_segments(self.c, window, one, np.array([len(window)]), one + self.line0, self.in_key,
                              self.prev, self.off)
        for k, v in rows.items():
            self.out[k].extend(v)
        pos, begin = pem_marks(window)
        if len(pos):
            self.in_key = bool(begin[-1])
        self.line0 += window.count(b"\n")
        self.prev = window[window.rfind(b"\n", 0, len(window) - 1) + 1:].rstrip(b"\r\n")
        return True


def large_scans(batch: Batch) -> dict[int, LargeScan]:
    """``Reads.consume`` of the scan job: a ``LargeScan`` per large file without an error."""
    if batch.large is None or not batch.num_rows:
        return {}
    t = batch.table
    ok = batch.large & pc.is_null(t.column("error")).to_numpy(zero_copy_only=False) \
        & np.array([e is None for e in batch.errors], dtype=bool)
    c = compiled_for(batch.params["rules"], batch.params.get("engine") or "auto")
    paths = t.column("path")
    return {i: LargeScan(c, rules_off(c, paths.take(pa.array([i])))) for i in np.flatnonzero(ok).tolist()}


def _text_parts(data: np.ndarray, offsets: np.ndarray, rows: np.ndarray) -> tuple[list, np.ndarray]:
    """The text of the files ``rows`` of a batch buffer as the scan reads it (UTF-16 by BOM
    decoded to UTF-8, a UTF-8 BOM dropped: ``text.py``), and True where it holds a NUL
    (binary once decoded, as ripgrep)."""
    utf16, utf8 = (m[rows] for m in bom_rows(data, offsets))
    mv = memoryview(data)
    lo = offsets[rows] + 3 * utf8
    parts: list = [mv[a:b] for a, b in zip(lo.tolist(), offsets[rows + 1].tolist())]
    nul = np.zeros(len(rows), bool)
    for k in np.flatnonzero(utf16).tolist():           # only the UTF-16 files, rare
        parts[k] = decode_utf16(parts[k])
        nul[k] = b"\0" in parts[k]
    return parts, nul


def scan_findings(batch: Batch, files: pa.Table) -> pa.Table:
    """A chunk's findings (one row per finding) plus one row per file that could not be
    read. Counts of scanned and skipped files ride along in the schema metadata."""
    params = batch.params
    c = compiled_for(params["rules"], params.get("engine") or "auto")
    # UTF-16 files (BOM) hold NULs: decoded first, binary only when their text has a NUL
    data, offsets, large, is_file, failed, _, _, binary = text_rows(batch, files)
    sizes = np.diff(offsets)
    candidates = np.flatnonzero(is_file & ~failed & ~large & ~binary & (sizes > 0))
    parts, nul = _text_parts(data, offsets, candidates)
    binary[candidates[nul]] = True
    text = is_file & ~failed & ~large & ~binary

    # all text files of the chunk in one buffer, one segment each
    rows = candidates[~nul]
    buf, seg_lo, seg_hi = pack_segments([p for p, bad in zip(parts, nul.tolist()) if not bad])
    paths = files.column("path")
    found = _scan_segments(c, buf, seg_lo, seg_hi, np.ones(len(rows), dtype=np.int64),
                           off=rules_off(c, paths.take(pa.array(rows, pa.int64()))))
    found_rows = [rows[np.asarray(found.pop("seg"), dtype=np.int64)]]
    scanned_bytes = int(sizes[rows].sum())

    for i in np.flatnonzero(is_file & ~failed & large).tolist():    # fed by the engine (large_scans)
        got, is_binary, nbytes = batch.streamed[i].finish()
        binary[i] = is_binary
        text[i] = not is_binary
        scanned_bytes += nbytes
        found_rows.append(np.full(len(got.pop("seg")), i, dtype=np.int64))
        for k, v in got.items():
            found[k].extend(v)

    baseline = params.get("baseline")
    table = _findings_table(files, np.concatenate(found_rows), found, c,
                            baseline.fingerprints if baseline is not None else None)
    err_rows = np.flatnonzero(failed)
    if len(err_rows):
        e = files.take(pa.array(err_rows)).select(["path", "path_bytes", "error"])
        cols = {f.name: pa.nulls(len(err_rows), f.type) for f in FINDINGS_SCHEMA}
        cols.update(path=e.column("path"), path_bytes=e.column("path_bytes"), error=e.column("error"))
        table = pa.concat_tables([table, pa.table(cols, schema=FINDINGS_SCHEMA)])
    stats = {"regular_files": int(is_file.sum()), "scanned_files": int(text.sum()),
             "binary_files": int((binary & is_file & ~failed).sum()), "scanned_bytes": int(scanned_bytes),
             "engine": c.engine}
    import json
    return table.replace_schema_metadata({"exoflow.scan": json.dumps(stats)})


def _findings_table(files: pa.Table, rows: np.ndarray, found: dict[str, list], c: Compiled,
                    baseline: Any = None) -> pa.Table:
    """The findings of the chunk's files ``rows`` (one per finding) as FINDINGS_SCHEMA rows,
    sorted, one per secret; fingerprints and ``suppressed`` (inline allow comment, or in
    ``baseline``: a set of fingerprints) set."""
    take = pa.array(rows, pa.int64())
    paths = files.column("path").take(take)
    keep = _one_finding_per_secret(c, paths.to_pylist(), found)
    t = pa.table({
        "path": paths,
        "path_bytes": files.column("path_bytes").take(take),
        **{k: pa.array(found[k], FINDINGS_SCHEMA.field(k).type)
           for k in ("line", "column", "end_column", "rule", "severity", "match", "context", "redacted")},
        "suppressed": pa.array(["inline" if a else None for a in found["allowed"]], pa.string()),
        "depth": files.column("depth").take(take),
        "digest": pa.array(found["digest"], pa.string()),
    }).filter(pa.array(keep)).sort_by([("path", "ascending"), ("line", "ascending"), ("column", "ascending"),
                             ("rule", "ascending")])
    fp = pa.array(_fingerprints(t.column("depth"), t.column("path"), t.column("digest")), pa.string())
    suppressed = t.column("suppressed")
    if baseline and t.num_rows:
        known = pc.and_(pc.is_null(suppressed), pc.is_in(fp, value_set=pa.array(sorted(baseline), pa.string())))
        suppressed = pc.if_else(known, "baseline", suppressed)
    return pa.table({**{k: t.column(k) for k in FINDINGS_SCHEMA.names if k in t.column_names},
                     "fingerprint": fp, "suppressed": suppressed,
                     "error": pa.nulls(t.num_rows, pa.string())}).select(FINDINGS_SCHEMA.names).cast(FINDINGS_SCHEMA)


def rules_off(c: Compiled, paths: pa.Array | pa.ChunkedArray) -> dict[int, np.ndarray]:
    """Rule index -> True for the files (``paths``) the rule does not apply to: its ``path``
    regex does not match, or a path allowlist does. Only rules with such filters appear."""
    out = {}
    for i, r in enumerate(c.rules):
        off = np.zeros(len(paths), dtype=bool)
        if r.path:
            off |= ~_path_search(paths, r.path)
        if r.allow_paths:
            off |= _path_search(paths, "|".join(f"(?:{p})" for p in r.allow_paths))
        if off.any():
            out[i] = off
    return out


def _path_search(paths: pa.Array | pa.ChunkedArray, pattern: str) -> np.ndarray:
    """True where ``pattern`` (Python ``re``) is found in the path: Arrow's RE2 over the
    column, or Python's ``re`` path by path for the patterns RE2 does not take."""
    try:
        found = pc.match_substring_regex(paths, pattern)
    except pa.ArrowInvalid:
        rx = re.compile(pattern)
        return np.array([bool(rx.search(p)) for p in paths.to_pylist()], dtype=bool)
    return pc.fill_null(found, False).to_numpy(zero_copy_only=False)


def _one_finding_per_secret(c: Compiled, paths: list[str], found: dict[str, list]) -> np.ndarray:
    """False for a finding of a redacted rule whose span overlaps, on the same line, the
    span of a kept finding of another redacted rule that ranks before it (higher severity,
    then earlier rule): a GitHub token assigned to ``token:`` is one github-pat finding,
    not also a generic one."""
    index = {r.id: i for i, r in enumerate(c.rules)}
    redact = {r.id for r in c.rules if r.redact}
    order = sorted((k for k in range(len(paths)) if found["rule"][k] in redact),
                   key=lambda k: (paths[k], found["line"][k], -severity_rank(found["severity"][k]),
                                  index[found["rule"][k]], found["column"][k]))
    out = np.ones(len(paths), dtype=bool)
    kept: dict[tuple[str, int], list[int]] = {}
    for k in order:
        col, end, rule = found["column"][k], found["end_column"][k], found["rule"][k]
        on_line = kept.setdefault((paths[k], found["line"][k]), [])
        if any(found["column"][j] < end and col < found["end_column"][j] and found["rule"][j] != rule
               for j in on_line):
            out[k] = False
        else:
            on_line.append(k)
    return out


def _fingerprints(depth: pa.ChunkedArray, paths: pa.ChunkedArray, digests: pa.ChunkedArray) -> list[str]:
    """``HASH:N`` per finding: HASH (32 hex digits) of the path relative to the scanned root
    (its last ``depth`` components; the name for a root that is a file) and the digest (rule
    and secret, see ``_digest``); N counts equal HASHes in file order from 1, so a secret
    written twice gives two fingerprints. Findings come grouped by file, in line order."""
    out, seen = [], {}
    for d, p, g in zip(depth.to_pylist(), paths.to_pylist(), digests.to_pylist()):
        rel = "/".join(p.split("/")[-max(d or 0, 1):])
        h = hashlib.sha256(f"{rel}\0{g}".encode()).hexdigest()[:32]
        seen[h] = seen.get(h, 0) + 1
        out.append(f"{h}:{seen[h]}")
    return out
