"""Plots of report.html as data: a job's ``plots(summary)`` hook returns ``Bars`` specs.

The page draws them in the browser with BokehJS (``report.js``), so a run never imports
Bokeh's Python side for its report: that import and the model building cost about half
a second of the client's CPU per run, taken from the workers on a small machine.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

BLUE, GREEN, ORANGE, RED, PURPLE, BROWN, GREY = "#1f77b4", "#2ca02c", "#ff7f0e", "#d62728", "#9467bd", "#8c564b", "#c7c7c7"


@dataclass
class Bars:
    """A bar chart: one bar per row of ``data``, labelled by its ``category`` column.

    Several ``values`` columns are stacked in that order. ``numeric``: the category
    column holds numbers (a timeline), and ``width`` names the column of bar widths.
    ``name`` names the chart's data source in the page (tests find the data by it).
    """

    title: str
    name: str
    data: dict[str, list]
    category: str
    values: list[str]
    tooltips: list[tuple[str, str]]
    horizontal: bool = False         # bars grow to the right, first row at the top
    value_format: str | None = None  # Bokeh NumeralTickFormatter format for the value axis ("0.0 b": bytes)
    colors: list[str] = field(default_factory=lambda: [BLUE])
    numeric: bool = False
    width: str | float = 0.8
    category_label: str | None = None
    value_label: str | None = None

    def spec(self) -> dict[str, Any]:
        """What report.js reads; stacked charts get each value's [_lo, _hi) bounds."""
        d = asdict(self)
        if len(self.values) > 1:
            data = dict(self.data)
            lo = [0] * len(data[self.category])
            for i, v in enumerate(self.values):
                hi = [a + b for a, b in zip(lo, data[v])]
                data[f"_lo{i}"], data[f"_hi{i}"] = lo, hi
                lo = hi
            d["data"] = data
        return d


def _table(rows: list[dict], keys: tuple[str, ...]) -> dict[str, list]:
    return {k: [r[k] for r in rows] for k in keys}


BYTES_TIPS = [("files", "@files{0,0}"), ("bytes", "@bytes{0.0 b}")]


def top_bars(rows: list[dict], title: str, name: str, top: int = 15) -> Bars:
    """Bytes of the first ``top`` rows of a by_* table ({"name", "files", "bytes"})."""
    rows = [{**r, "name": r["name"] or "(none)"} for r in rows[:top]]
    return Bars(title, name, _table(rows, ("name", "files", "bytes")), "name", ["bytes"],
                [("", "@name"), *BYTES_TIPS], horizontal=True, value_format="0.0 b")


def inventory(summary: dict) -> list[Bars]:
    """Size distribution, top extensions, top directories, ages (all from the summary)."""
    result = summary.get("result", {})
    figs = []
    if result.get("sizes"):
        figs.append(Bars("File size distribution", "inventory-sizes", _table(result["sizes"], ("size", "files", "bytes")),
                         "size", ["files"], [("size", "@size"), *BYTES_TIPS], colors=[GREEN], value_label="files"))
    figs.append(top_bars(result.get("by_extension", []), "Top extensions by bytes", "inventory-extensions"))
    figs.append(top_bars(result.get("by_top_dir", []), "Top directories by bytes", "inventory-dirs"))
    if result.get("age"):
        figs.append(Bars("Age (modification time)", "inventory-age", _table(result["age"], ("age", "files", "bytes")),
                         "age", ["bytes"], [("age", "@age"), *BYTES_TIPS], value_format="0.0 b", colors=[BROWN]))
    return figs


def dedup(summary: dict) -> list[Bars]:
    """Reclaimable bytes by the number of copies in a group."""
    rows = summary.get("result", {}).get("by_copies", [])
    if not any(r["groups"] for r in rows):
        return []
    return [Bars("Reclaimable bytes by copies in a group", "dedup-copies",
                 _table(rows, ("copies", "groups", "reclaimable")), "copies", ["reclaimable"],
                 [("copies", "@copies"), ("groups", "@groups{0,0}"), ("reclaimable", "@reclaimable{0.0 b}")],
                 value_format="0.0 b", colors=[RED], category_label="copies")]


def scan(summary: dict, top: int = 20) -> list[Bars]:
    """Findings by rule (the rules with most findings first)."""
    rows = sorted(summary.get("result", {}).get("by_rule", []), key=lambda r: -r["findings"])[:top]
    if not rows:
        return []
    return [Bars("Findings by rule", "scan-rules", _table(rows, ("rule", "severity", "findings", "files")), "rule",
                 ["findings"], [("rule", "@rule"), ("severity", "@severity"), ("findings", "@findings{0,0}"),
                                ("files", "@files{0,0}")], horizontal=True, colors=[ORANGE])]


def codestats(summary: dict, top: int = 15) -> list[Bars]:
    """Code, comment and blank lines of the languages with most code, stacked."""
    rows = summary.get("result", {}).get("languages", [])[:top]
    if not rows:
        return []
    return [Bars("Lines by language", "codestats-lines", _table(rows, ("language", "files", "code", "comment", "blank")),
                 "language", ["code", "comment", "blank"],
                 [("language", "@language"), ("files", "@files{0,0}"), ("code", "@code{0,0}"),
                  ("comment", "@comment{0,0}"), ("blank", "@blank{0,0}")],
                 horizontal=True, colors=[BLUE, GREEN, GREY], value_label="lines")]


def profile(summary: dict) -> list[Bars]:
    """Files per entropy class (bits per byte)."""
    rows = summary.get("result", {}).get("entropy_histogram", [])
    if not rows:
        return []
    return [Bars("Entropy (bits per byte; near 8 = compressed or encrypted)", "profile-entropy",
                 _table(rows, ("bits_per_byte", "files", "bytes")), "bits_per_byte", ["files"],
                 [("bits/byte", "@bits_per_byte"), *BYTES_TIPS], colors=[PURPLE], value_label="files")]
