"""The inventory job's charts in report.html."""
from __future__ import annotations

from exoflow.ops.inventory.summary import InventorySummary
from exoflow.plots import BROWN, BYTES_TIPS, Bars, GREEN, columns, top_bars
from exoflow.summary import RunSummary


def bars(summary: RunSummary) -> list[Bars]:
    """Size distribution, top extensions, top directories, ages (all from the summary)."""
    result: InventorySummary = summary.get("result", {})
    figs = []
    if result.get("sizes"):
        figs.append(Bars("File size distribution", "inventory-sizes", columns(result["sizes"], ("size", "files", "bytes")),
                         "size", ["files"], [("size", "@size"), *BYTES_TIPS], colors=[GREEN], value_label="files"))
    figs.append(top_bars(result.get("by_extension", []), "Top extensions by bytes", "inventory-extensions"))
    figs.append(top_bars(result.get("by_top_dir", []), "Top directories by bytes", "inventory-dirs"))
    if result.get("age"):
        figs.append(Bars("Age (modification time)", "inventory-age", columns(result["age"], ("age", "files", "bytes")),
                         "age", ["bytes"], [("age", "@age"), *BYTES_TIPS], value_format="0.0 b", colors=[BROWN]))
    return figs
