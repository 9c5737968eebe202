"""The neardup job's charts in report.html: similarity to the representative, largest clusters."""
from __future__ import annotations

from exoflow.plots import BLUE, ORANGE, Bars, columns


def bars(summary: dict) -> list[Bars]:
    """Files by similarity to their cluster's representative, and the largest clusters' files."""
    result = summary.get("result", {})
    hist = [{**r, "bin": f"{r['from']:.2f}-{r['to']:.2f}"} for r in result.get("similarity_histogram", [])]
    largest = [{**c, "name": f"#{c['cluster_id']} {c['representative']}"} for c in result.get("largest", [])[:15]]
    out = []
    if any(r["files"] for r in hist):
        out.append(Bars("Similarity to the cluster's representative", "neardup-similarity",
                        columns(hist, ("bin", "files")), "bin", ["files"],
                        [("similarity", "@bin"), ("files", "@files{0,0}")], colors=[BLUE],
                        category_label="similarity", value_label="files"))
    if largest:
        out.append(Bars("Largest clusters", "neardup-clusters", columns(largest, ("name", "files", "bytes")), "name",
                        ["files"], [("", "@name"), ("files", "@files{0,0}"), ("bytes", "@bytes{0.0 b}")],
                        horizontal=True, colors=[ORANGE], value_label="files"))
    return out
