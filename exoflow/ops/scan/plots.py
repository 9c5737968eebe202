"""The scan job's charts in report.html."""
from __future__ import annotations

from exoflow.ops.scan.summary import ScanSummary
from exoflow.plots import Bars, ORANGE, columns
from exoflow.summary import RunSummary


def bars(summary: RunSummary, top: int = 20) -> list[Bars]:
    """Findings by rule (the rules with most findings first)."""
    result: ScanSummary = summary.get("result", {})
    rows = sorted(result.get("by_rule", []), key=lambda r: -r["findings"])[:top]
    if not rows:
        return []
    return [Bars("Findings by rule", "scan-rules", columns(rows, ("rule", "severity", "findings", "files")), "rule",
                 ["findings"], [("rule", "@rule"), ("severity", "@severity"), ("findings", "@findings{0,0}"),
                                ("files", "@files{0,0}")], horizontal=True, colors=[ORANGE])]
