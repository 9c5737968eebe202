"""Scan rules: the shipped packs (exoflow/ops/scan/packs/*.toml) and users' TOML or YAML files.

The format follows gitleaks' TOML rules::

    redact = true                     # default for the rules of this file (true: never show matches)
    [allowlist]                       # applies to every rule of the file
    paths = ['''(^|/)tests?/''']      # regexes on the path
    [[rules]]
    id = "aws-access-key-id"
    description = "AWS access key ID"
    severity = "high"                 # critical | high | medium | low | info
    regex = '''\\b((?:AKIA|ASIA)[A-Z2-7]{16})\\b'''
    secretGroup = 1                   # the group that is the secret (default: 1 if any, else all)
    entropy = 3.0                     # minimum Shannon entropy (bits/byte) of the secret
    keywords = ["akia", "asia"]       # a match's line must contain one (case-insensitive)
    path = '''\\.env$'''               # only files whose path matches (as gitleaks' rule `path`)
    [rules.allowlist]                 # also [[rules.allowlists]], as in gitleaks 8.21+
    regexes = ['''EXAMPLE$''']        # regexes on the secret
    regexTarget = "secret"            # what `regexes` test: secret (default) | match | line
    stopwords = ["example"]           # substrings of the secret (case-insensitive)
    paths = []

Instead of ``regex`` a rule may give ``codepoints = ["1F300-1F5FF", "2600"]``: the
loader builds the UTF-8 byte pattern (the emoji pack uses this).

Patterns are Python ``re`` syntax over bytes and match within one line.
"""
from __future__ import annotations

import hashlib
import importlib.resources
import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from typing import Any

from exoflow.errors import UsageError
from exoflow.options import local_path

SEVERITIES = ("info", "low", "medium", "high", "critical")   # ascending
PACKS = ("secrets", "placeholders", "emoji")


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    severity: str
    pattern: str                              # Python regex over bytes (ASCII text; \xNN for bytes)
    keywords: tuple[str, ...] = ()
    entropy: float | None = None
    secret_group: int | str | None = None
    redact: bool = True
    path: str | None = None                   # the rule applies only to files whose path matches
    allow_paths: tuple[str, ...] = ()
    allow_regexes: tuple[str, ...] = ()       # on the secret
    allow_match_regexes: tuple[str, ...] = ()  # on the whole match
    allow_line_regexes: tuple[str, ...] = ()   # on the line
    allow_stopwords: tuple[str, ...] = ()
    source: str = ""

    def compiled(self) -> re.Pattern[bytes]:
        return re.compile(self.pattern.encode("latin-1"))


@dataclass(frozen=True)
class RuleSet:
    """What ``--rules`` names, loaded on the client and shipped to the workers as plain data."""

    spec: str
    rules: tuple[Rule, ...] = field(default=())

    @property
    def key(self) -> str:
        """A fingerprint of the rule definitions: workers cache compiled engines by it."""
        blob = json.dumps([r.__dict__ for r in self.rules], sort_keys=True, default=str)
        return hashlib.sha1(blob.encode()).hexdigest()

    def __str__(self) -> str:   # what summary.json records
        return self.spec


def severity_rank(name: str) -> int:
    return SEVERITIES.index(name)


def parse_severity(text: str) -> str:
    s = text.strip().lower()
    if s not in SEVERITIES:
        raise UsageError(f"unknown severity {text!r} (one of: {', '.join(SEVERITIES)})")
    return s


# ---- UTF-8 byte patterns for code point ranges ----------------------------------

def _utf8_split(lo: int, hi: int) -> list[tuple[bytes, bytes]]:
    """Split [lo, hi] into ranges whose UTF-8 forms differ byte by byte within a box
    (the algorithm of Rust's regex-syntax Utf8Sequences)."""
    for a, b in ((0, 0x7F), (0x80, 0x7FF), (0x800, 0xFFFF), (0x10000, 0x10FFFF)):
        if lo <= b < hi and lo >= a:
            return _utf8_split(lo, b) + _utf8_split(b + 1, hi)
    for i in range(1, 4):
        m = (1 << (6 * i)) - 1
        if lo & ~m != hi & ~m:
            if lo & m:
                return _utf8_split(lo, lo | m) + _utf8_split((lo | m) + 1, hi)
            if hi & m != m:
                return _utf8_split(lo, (hi & ~m) - 1) + _utf8_split(hi & ~m, hi)
    return [(chr(lo).encode(), chr(hi).encode())]


def codepoint_pattern(ranges: list[str]) -> str:
    """``["1F300-1F5FF", "2600"]`` -> a byte regex matching one of those code points in UTF-8."""
    alts = []
    for text in ranges:
        lo_s, _, hi_s = text.partition("-")
        lo, hi = int(lo_s, 16), int(hi_s or lo_s, 16)
        if not (0 <= lo <= hi <= 0x10FFFF) or (lo <= 0xDFFF and hi >= 0xD800):
            raise ValueError(f"bad code point range {text!r}")
        for a, b in _utf8_split(lo, hi):
            alts.append("".join(f"\\x{x:02x}" if x == y else f"[\\x{x:02x}-\\x{y:02x}]" for x, y in zip(a, b)))
    return "(?:" + "|".join(alts) + ")"


# ---- loading ----------------------------------------------------------------

def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{where}: expected a list of strings")
    return tuple(value)


TARGETS = ("secret", "match", "line")     # what an allowlist's regexes test (gitleaks' regexTarget)


def _allow(d: dict, where: str) -> dict[str, tuple[str, ...]]:
    """An allowlist table (or a list of them) as {"paths", "stopwords", "secret", "match",
    "line"}: the last three are regexes by what they test."""
    lists = [d] if isinstance(d, dict) else list(d or [])
    out: dict[str, list[str]] = {k: [] for k in ("paths", "stopwords") + TARGETS}
    for a in lists:
        if not isinstance(a, dict):
            raise UsageError(f"{where}: an allowlist must be a table")
        target = a.get("regexTarget", "secret")
        if target not in TARGETS:
            raise UsageError(f"{where}: regexTarget must be one of {', '.join(TARGETS)}")
        out["paths"] += _strings(a.get("paths"), where)
        out[target] += _strings(a.get("regexes"), where)
        out["stopwords"] += [s.lower() for s in _strings(a.get("stopwords"), where)]
    for k in ("paths",) + TARGETS:
        for p in out[k]:
            _check_regex(p, where)
    return {k: tuple(v) for k, v in out.items()}


def _check_regex(pattern: str, where: str) -> re.Pattern:
    try:
        return re.compile(pattern.encode("utf-8"))
    except re.error as e:
        raise UsageError(f"{where}: bad regex {pattern!r}: {e}") from None


def _rule(d: dict, source: str, redact_default: bool, global_allow: tuple) -> Rule:
    if not isinstance(d, dict):
        raise UsageError(f"{source}: each [[rules]] entry must be a table")
    rid = d.get("id")
    if not isinstance(rid, str) or not rid:
        raise UsageError(f"{source}: a rule without an 'id'")
    where = f"{source}: rule {rid}"
    if "regex" in d and "codepoints" in d:
        raise UsageError(f"{where}: give 'regex' or 'codepoints', not both")
    if "codepoints" in d:
        try:
            pattern = codepoint_pattern(list(_strings(d["codepoints"], where)))
        except ValueError as e:
            raise UsageError(f"{where}: {e}") from None
        pattern = d.get("prefix", "") + pattern + d.get("suffix", "")
    elif isinstance(d.get("regex"), str):
        # non-ASCII literals become their UTF-8 bytes; the engine works on bytes
        pattern = d["regex"].encode("utf-8").decode("latin-1")
    else:
        raise UsageError(f"{where}: needs a 'regex' string")
    try:
        rx = re.compile(pattern.encode("latin-1"))
    except re.error as e:
        raise UsageError(f"{where}: bad regex: {e}") from None
    if rx.match(b""):
        raise UsageError(f"{where}: the regex matches the empty string")
    group = d.get("secretGroup", d.get("secret_group"))
    if group is None and rx.groups:
        group = 1
    if group is not None and not (isinstance(group, int) and 0 <= group <= rx.groups
                                  or isinstance(group, str) and group in rx.groupindex):
        raise UsageError(f"{where}: secretGroup {group!r} is not a group of the regex")
    entropy = d.get("entropy")
    if entropy is not None and not isinstance(entropy, (int, float)):
        raise UsageError(f"{where}: entropy must be a number")
    sev = d.get("severity", "high" if redact_default else "medium")
    if not isinstance(sev, str):
        raise UsageError(f"{where}: severity must be a string")
    try:
        sev = parse_severity(sev)
    except UsageError as e:
        raise UsageError(f"{where}: {e}") from None
    path = d.get("path")
    if path is not None:
        if not isinstance(path, str):
            raise UsageError(f"{where}: path must be a regex string")
        _check_regex(path, where)
    a = _allow(d.get("allowlists", d.get("allowlist", {})), where)
    a = {k: a[k] + global_allow[k] for k in a}
    return Rule(id=rid, description=str(d.get("description", rid)), severity=sev, pattern=pattern,
                keywords=tuple(k.lower() for k in _strings(d.get("keywords"), where)),
                entropy=float(entropy) if entropy is not None else None, secret_group=group,
                redact=bool(d.get("redact", redact_default)), path=path, allow_paths=a["paths"],
                allow_regexes=a["secret"], allow_match_regexes=a["match"], allow_line_regexes=a["line"],
                allow_stopwords=a["stopwords"], source=source)


def parse_rules(doc: dict, source: str) -> list[Rule]:
    """Rules from a parsed TOML/YAML document."""
    if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list) or not doc["rules"]:
        raise UsageError(f"{source}: no [[rules]] found")
    redact = doc.get("redact", True)
    if not isinstance(redact, bool):
        raise UsageError(f"{source}: 'redact' must be true or false")
    global_allow = _allow(doc.get("allowlist", {}), f"{source}: [allowlist]")
    return [_rule(d, source, redact, global_allow) for d in doc["rules"]]


def _read(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise UsageError(f"rules file {path}: {e.strerror}") from None
    try:
        if path.endswith((".yaml", ".yml")):
            import yaml
            return yaml.safe_load(raw.decode("utf-8"))
        return tomllib.loads(raw.decode("utf-8"))
    except Exception as e:   # TOML/YAML syntax errors: one line
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UsageError(f"rules file {path}: {msg}") from None


def pack(name: str) -> list[Rule]:
    text = importlib.resources.files("exoflow.ops.scan.packs").joinpath(f"{name}.toml").read_text("utf-8")
    return parse_rules(tomllib.loads(text), name)


def load_rules(spec: str) -> RuleSet:
    """``"secrets,placeholders"`` or ``"secrets,./my-rules.toml"``: packs by name, files by path."""
    rules: list[Rule] = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        if item in PACKS:
            rules += pack(item)
        elif item.endswith((".toml", ".yaml", ".yml")) or os.sep in item:
            rules += parse_rules(_read(local_path(item)), item)
        else:
            raise UsageError(f"unknown rule pack {item!r} (packs: {', '.join(PACKS)}; or a .toml/.yaml file)")
    if not rules:
        raise UsageError("--rules: no rules given")
    seen: set[str] = set()
    for r in rules:
        if r.id in seen:
            raise UsageError(f"rule id {r.id!r} is defined twice")
        seen.add(r.id)
    return RuleSet(spec, tuple(rules))
