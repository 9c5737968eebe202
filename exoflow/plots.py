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
    section: str = ""                # report.html's section for it ("": the job's; a composed run: a job's name)

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


def columns(rows: list[dict], keys: tuple[str, ...]) -> dict[str, list]:
    """Row dicts -> the column lists a chart's ``data`` holds."""
    return {k: [r[k] for r in rows] for k in keys}


BYTES_TIPS = [("files", "@files{0,0}"), ("bytes", "@bytes{0.0 b}")]


def top_bars(rows: list[dict], title: str, name: str, top: int = 15) -> Bars:
    """Bytes of the first ``top`` rows of a by_* table ({"name", "files", "bytes"})."""
    rows = [{**r, "name": r["name"] or "(none)"} for r in rows[:top]]
    return Bars(title, name, columns(rows, ("name", "files", "bytes")), "name", ["bytes"],
                [("", "@name"), *BYTES_TIPS], horizontal=True, value_format="0.0 b")


@dataclass
class Table:
    """A table in report.html: ``rows`` of cells under ``headers``, drawn as HTML (no script).

    A cell is text or a number shown as given, or a list of texts shown one per line (a
    duplicate group's paths). ``name`` becomes the table's element id, ``report-table-NAME``
    (tests read it back); ``note`` is a line under the title (what was left out, where the
    rest is).
    """

    title: str
    name: str
    headers: list[str]
    rows: list[list[Any]]
    note: str = ""
    section: str = ""                # as Bars.section

    def spec(self) -> dict[str, Any]:
        return asdict(self)
