"""The codestats job's charts in report.html."""
from __future__ import annotations

from exoflow.ops.codestats.summary import CodestatsSummary
from exoflow.plots import BLUE, Bars, GREEN, GREY, columns
from exoflow.summary import RunSummary


def bars(summary: RunSummary, top: int = 15) -> list[Bars]:
    """Code, comment and blank lines of the languages with most code, stacked."""
    result: CodestatsSummary = summary.get("result", {})
    rows = result.get("languages", [])[:top]
    if not rows:
        return []
    return [Bars("Lines by language", "codestats-lines", columns(rows, ("language", "files", "code", "comment", "blank")),
                 "language", ["code", "comment", "blank"],
                 [("language", "@language"), ("files", "@files{0,0}"), ("code", "@code{0,0}"),
                  ("comment", "@comment{0,0}"), ("blank", "@blank{0,0}")],
                 horizontal=True, colors=[BLUE, GREEN, GREY], value_label="lines")]
