"""The profile job's summary: what ``ProfileReducer`` produces (chunk -> ``ProfilePart``, merged,
finished -> ``ProfileSummary``), what its terminal report and plots read, and summary.json's
``result``. Counts are of regular files read without an error."""
from __future__ import annotations

from typing import TypedDict


class _Counts(TypedDict):
    files: int
    bytes: int
    binary_files: int               # a NUL byte in the first 8 KiB
    binary_bytes: int
    lines: int                      # \n characters
    crlf_files: int
    non_ascii_files: int            # text files with a byte >= 0x80
    most_random: list[list]         # [path, bits per byte, bytes], highest entropy first, at most top


class ProfilePart(_Counts):
    entropy_files: list[int]        # per 0.5 bits-per-byte class (reducer.EDGES)
    entropy_bytes: list[int]


class EntropyRow(TypedDict):
    bits_per_byte: str              # "0.0-0.5" … "7.5-8.0"
    files: int
    bytes: int


class ProfileSummary(_Counts):
    entropy_histogram: list[EntropyRow]
