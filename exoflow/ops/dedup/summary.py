"""The dedup job's summaries: the chunk phase's size counts (``DedupReducer``: chunk ->
``DedupPart``, finished -> ``DedupSizes``, which only the after-step reads) and the final
``DedupSummary`` the stages return: what the terminal report and plots read, and summary.json's
``result``."""
from __future__ import annotations

from typing import TypedDict

import numpy as np

from exoflow.summary import ErrorExample


class DedupPart(TypedDict):
    """Regular files without an error: how often each size occurs (no paths)."""

    sizes: np.ndarray               # int64, distinct sizes, ascending
    counts: np.ndarray              # int64, files of each size
    files: int
    bytes: int


class DedupSizes(TypedDict):
    files: int
    bytes: int
    candidate_sizes: np.ndarray     # int64: sizes held by two files or more (0 only with --include-empty)
    candidate_files: int            # files of those sizes


class Stages(TypedDict):
    """Candidate files left after each stage."""

    size: int
    after_links: int
    after_prefix: int
    after_full: int


class TopGroup(TypedDict):
    group_id: int                   # 1 = most reclaimable bytes
    size: int                       # bytes of one copy
    files: int                      # names in the group
    reclaimable: int                # size x (distinct files - 1)
    hash: str                       # hex digest (--hash)


class CopiesRow(TypedDict):
    copies: str                     # a class of distinct files per group: "2", "3-4" … (stages.COPY_CLASSES)
    groups: int
    reclaimable: int


class Actions(TypedDict):
    """--action: ``ops/dedup/actions.merge_logs``."""

    log: str                        # OUT/actions.log
    counts: dict[str, int]          # log status -> names
    freed_bytes: int                # measured after the changes (--apply)
    leftovers_removed: int


class DedupSummary(TypedDict, total=False):
    files: int                      # regular files scanned
    bytes: int
    groups: int
    files_in_groups: int
    duplicate_files: int            # beyond one per group
    reclaimable: int
    stages: Stages
    hash_errors: int
    error_examples: list[ErrorExample]
    top: list[TopGroup]             # first --top groups by group id
    by_copies: list[CopiesRow]
    report: str                     # OUT/duplicates.txt
    actions: Actions                # only with --action
