"""The inventory job's summary: what ``InventoryReducer`` produces (chunk -> ``InventoryPart``,
merged, finished -> ``InventorySummary``), what its terminal report and plots read, and
summary.json's ``result``. Sizes are apparent bytes (``st_size``) of regular files."""
from __future__ import annotations

from typing import TypedDict

from exoflow.summary import ErrorExample


class Group(TypedDict):
    """One row of a by_* table; ``name`` "" where there is none (no extension)."""

    name: str
    files: int       # entries for by_type, regular files otherwise
    bytes: int


class SizeRow(TypedDict):
    size: str        # the size class: "0 B", "< 1K", "1-4K" … (reducer.SIZE_LABELS)
    files: int
    bytes: int


class AgeRow(TypedDict):
    age: str         # the age class of the modification time: "future", "< 1 day" … (reducer.AGE_BINS)
    files: int
    bytes: int


class _Counts(TypedDict):
    entries: int                    # rows listed
    files: int                      # regular files
    bytes: int
    hardlinked_names: int           # names of files with more than one link
    errors: int
    error_examples: list[ErrorExample]   # the first 10
    largest: list[list]             # [path, bytes], largest first, at most --top


class InventoryPart(_Counts):
    """A chunk's partial sums (``chunk`` and ``merge``); small whatever the chunk's size."""

    top: int                        # --top of the run: how many largest files each part keeps
    allocated: float                # blocks' bytes, each name carrying 1/nlink of its file's
    by_type: dict[str, list[int]]   # name -> [files, bytes]; likewise by_extension, by_top_dir
    by_extension: dict[str, list[int]]
    by_top_dir: dict[str, list[int]]
    age: list[list[int]]            # [files, bytes] per reducer.AGE_BINS class
    sizes: list[list[int]]          # [files, bytes] per reducer.SIZE_LABELS class


class InventorySummary(_Counts):
    allocated: int                  # bytes on disk (hard links counted once)
    by_type: list[Group]            # most bytes first (then most files, then name)
    by_extension: list[Group]
    by_top_dir: list[Group]
    age: list[AgeRow]
    sizes: list[SizeRow]
