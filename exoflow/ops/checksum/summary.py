"""The checksum job's summary: what ``ChecksumReducer`` produces (chunk -> ``ChecksumPart``,
finished the same), what the job's after-step adds (``ChecksumSummary``: text manifests, the
audit of --verify), what its terminal report reads, and summary.json's ``result``."""
from __future__ import annotations

from typing import TypedDict

from exoflow.summary import ErrorExample, JobResult


class ChecksumPart(TypedDict):
    files: int                      # regular files
    hashed: int                     # files hashed (read) by this run
    bytes_hashed: int
    trusted: int                    # --trust-mtime in this run: digests reused, files not read
    reused: int                     # --since: digests of the earlier run, files not read (the audit's
                                    # ``trusted`` counts the manifest's column, which these keep)
    errors: int
    error_examples: list[ErrorExample]   # the first 10


class TextUnlisted(TypedDict):
    names: int                      # names the text format cannot hold, left out of it
    list: str | None                # the file listing them (None when none was)


class Audit(TypedDict):
    """--verify: ``ops/checksum/audit.summarise``."""

    counts: dict[str, int]          # status (audit.STATUSES) -> files
    examples: dict[str, list[list[str]]]   # status -> [[path, old path]] (first --show, sorted)
    trusted: int
    differences: int                # files not unchanged
    dataset: str                    # OUT/audit


class _Outputs(JobResult, total=False):
    text_manifests: dict[str, str]  # --text: algorithm -> OUT/checksums.<ext>; warnings for names left out
    text_unlisted: dict[str, TextUnlisted]
    audit: Audit                    # --verify; exit_code 1 when differences


class ChecksumSummary(ChecksumPart, _Outputs):
    algorithms: list[str]           # the digests computed, e.g. ["xxh3-128"]
