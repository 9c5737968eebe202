"""The scan job's summary: what ``ScanReducer`` produces (chunk -> ``ScanPart``, merged,
finished -> ``ScanSummary``; the after-step adds ``sarif``), what its terminal report and plots
read, and summary.json's ``result``. Findings suppressed (inline allow, --baseline) count only
in ``suppressed``."""
from __future__ import annotations

from typing import TypedDict

from exoflow.summary import JobResult


class Finding(TypedDict):
    """One finding as listed: ``match`` already redacted."""

    path: str
    line: int                       # 1-based
    column: int                     # 1-based, in code points
    rule: str
    severity: str                   # one of rules.SEVERITIES
    match: str


class Suppressed(TypedDict):
    inline: int
    baseline: int


class _Stats(TypedDict):
    regular_files: int
    scanned_files: int
    binary_files: int               # skipped: a NUL byte
    scanned_bytes: int
    engine: str | None              # hyperscan, re2 or re
    findings: int
    suppressed: Suppressed
    examples: list[Finding]         # most severe first, then path, line, column; at most --top


class ScanPart(_Stats):
    by_rule: dict[str, list]        # rule -> [severity, findings, files]
    top: int


class RuleRow(TypedDict):
    rule: str
    severity: str
    findings: int
    files: int


class _Outputs(JobResult, total=False):
    sarif: str                      # OUT/scan.sarif (unless --no-sarif); exit_code with --fail-on


class ScanSummary(_Stats, _Outputs):
    by_rule: list[RuleRow]          # most severe first, then most findings
    by_severity: dict[str, int]     # every severity, most severe first
