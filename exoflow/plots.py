"""Jobs' own plots for report.html (the ``Job.plots`` hook): ``fn(summary) -> [bokeh figures]``.

Bokeh is imported inside the functions: loading a job stays cheap."""
from __future__ import annotations



def _figure(title: str, **kw):
    from bokeh.plotting import figure
    return figure(title=title, height=320, sizing_mode="stretch_width", toolbar_location=None, tools="", **kw)


def _bars(title: str, name: str, data: dict, category: str, value: str, tooltips: list[tuple[str, str]],
          horizontal: bool = False, value_format: str | None = None, color: str | None = None):
    """One bar per category (in the order given; horizontal bars list the first at the top)."""
    from bokeh.models import ColumnDataSource, HoverTool, NumeralTickFormatter
    src = ColumnDataSource(data, name=name)
    cats = [str(c) for c in data[category]]
    kw = {"color": color} if color else {}
    if horizontal:
        f = _figure(title, y_range=cats[::-1])
        f.hbar(y=category, right=value, height=0.8, source=src, **kw)
        axis = f.xaxis
    else:
        f = _figure(title, x_range=cats)
        f.vbar(x=category, top=value, width=0.8, source=src, **kw)
        f.xaxis.major_label_orientation = 0.8
        axis = f.yaxis
    if value_format:
        axis.formatter = NumeralTickFormatter(format=value_format)
    f.add_tools(HoverTool(tooltips=tooltips))
    return f


def top_bars(rows: list[dict], title: str, name: str, top: int = 15):
    """Horizontal bars of bytes for the first ``top`` rows of a by_* table ({"name", "files", "bytes"})."""
    rows = rows[:top]
    data = {"name": [r["name"] or "(none)" for r in rows], "bytes": [r["bytes"] for r in rows],
            "files": [r["files"] for r in rows]}
    return _bars(title, name, data, "name", "bytes", [("", "@name"), ("bytes", "@bytes{0.0 b}"), ("files", "@files{0,0}")],
                 horizontal=True, value_format="0.0 b")


def inventory(summary: dict) -> list:
    """Size distribution, top extensions, top directories, ages (all from the summary)."""
    result = summary.get("result", {})
    figs = []
    sizes = result.get("sizes", [])
    if sizes:
        data = {k: [r[k] for r in sizes] for k in ("size", "files", "bytes")}
        figs.append(_bars("File size distribution", "inventory-sizes", data, "size", "files",
                          [("size", "@size"), ("files", "@files{0,0}"), ("bytes", "@bytes{0.0 b}")], color="#2ca02c"))
    figs.append(top_bars(result.get("by_extension", []), "Top extensions by bytes", "inventory-extensions"))
    figs.append(top_bars(result.get("by_top_dir", []), "Top directories by bytes", "inventory-dirs"))
    ages = result.get("age", [])
    if ages:
        data = {k: [a[k] for a in ages] for k in ("age", "files", "bytes")}
        figs.append(_bars("Age (modification time)", "inventory-age", data, "age", "bytes",
                          [("age", "@age"), ("files", "@files{0,0}"), ("bytes", "@bytes{0.0 b}")],
                          value_format="0.0 b", color="#8c564b"))
    return figs


def dedup(summary: dict) -> list:
    """Reclaimable bytes by the number of copies in a group."""
    rows = summary.get("result", {}).get("by_copies", [])
    if not any(r["groups"] for r in rows):
        return []
    data = {k: [r[k] for r in rows] for k in ("copies", "groups", "reclaimable")}
    return [_bars("Reclaimable bytes by copies in a group", "dedup-copies", data, "copies", "reclaimable",
                  [("copies", "@copies"), ("groups", "@groups{0,0}"), ("reclaimable", "@reclaimable{0.0 b}")],
                  value_format="0.0 b", color="#d62728")]


def scan(summary: dict, top: int = 20) -> list:
    """Findings by rule (the rules with most findings first)."""
    rows = sorted(summary.get("result", {}).get("by_rule", []), key=lambda r: -r["findings"])[:top]
    if not rows:
        return []
    data = {k: [r[k] for r in rows] for k in ("rule", "severity", "findings", "files")}
    return [_bars("Findings by rule", "scan-rules", data, "rule", "findings",
                  [("rule", "@rule"), ("severity", "@severity"), ("findings", "@findings{0,0}"),
                   ("files", "@files{0,0}")], horizontal=True, color="#ff7f0e")]


def codestats(summary: dict, top: int = 15) -> list:
    """Code, comment and blank lines of the languages with most code."""
    from bokeh.models import ColumnDataSource, HoverTool
    rows = summary.get("result", {}).get("languages", [])[:top]
    if not rows:
        return []
    data = {k: [r[k] for r in rows] for k in ("language", "files", "code", "comment", "blank")}
    langs = data["language"]
    f = _figure("Lines by language", y_range=langs[::-1], x_axis_label="lines")
    f.hbar_stack(["code", "comment", "blank"], y="language", height=0.8, source=ColumnDataSource(data, name="codestats-lines"),
                 color=["#1f77b4", "#2ca02c", "#c7c7c7"], legend_label=["code", "comment", "blank"])
    f.legend.location = "bottom_right"
    f.add_tools(HoverTool(tooltips=[("language", "@language"), ("files", "@files{0,0}"), ("code", "@code{0,0}"),
                                    ("comment", "@comment{0,0}"), ("blank", "@blank{0,0}")]))
    return [f]


def profile(summary: dict) -> list:
    """Files per entropy class (bits per byte)."""
    rows = summary.get("result", {}).get("entropy_histogram", [])
    if not rows:
        return []
    data = {k: [r[k] for r in rows] for k in ("bits_per_byte", "files", "bytes")}
    return [_bars("Entropy (bits per byte; near 8 = compressed or encrypted)", "profile-entropy", data,
                  "bits_per_byte", "files", [("bits/byte", "@bits_per_byte"), ("files", "@files{0,0}"),
                                             ("bytes", "@bytes{0.0 b}")], color="#9467bd")]
