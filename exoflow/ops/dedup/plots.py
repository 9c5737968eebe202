"""The dedup job's charts in report.html."""
from __future__ import annotations

from exoflow.ops.dedup.summary import DedupSummary
from exoflow.plots import Bars, RED, columns
from exoflow.summary import RunSummary


def bars(summary: RunSummary) -> list[Bars]:
    """Reclaimable bytes by the number of copies in a group."""
    result: DedupSummary = summary.get("result", {})
    rows = result.get("by_copies", [])
    if not any(r["groups"] for r in rows):
        return []
    return [Bars("Reclaimable bytes by copies in a group", "dedup-copies",
                 columns(rows, ("copies", "groups", "reclaimable")), "copies", ["reclaimable"],
                 [("copies", "@copies"), ("groups", "@groups{0,0}"), ("reclaimable", "@reclaimable{0.0 b}")],
                 value_format="0.0 b", colors=[RED], category_label="copies")]
