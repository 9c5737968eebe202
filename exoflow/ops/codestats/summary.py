"""The codestats job's summary, like cloc's table: what ``CodestatsReducer`` produces (chunk ->
``CodestatsPart``, merged, finished -> ``CodestatsSummary``), what its terminal report and plots
read, and summary.json's ``result``."""
from __future__ import annotations

from typing import TypedDict

# language -> [files, bytes, blank, comment, code] (reducer.FIELDS), files of a known language only
CodestatsPart = dict[str, list[int]]


class Totals(TypedDict):
    files: int
    bytes: int
    blank: int                      # lines
    comment: int
    code: int


class LanguageRow(Totals):
    language: str


class CodestatsSummary(TypedDict):
    languages: list[LanguageRow]    # most code first, then by name
    total: Totals
