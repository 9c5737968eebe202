"""Jobs' own plots for report.html (the ``Job.plots`` hook): ``fn(summary) -> [bokeh figures]``."""
from __future__ import annotations

import numpy as np

SIZE_EDGES = [1, 2**10, 2**12, 2**14, 2**16, 2**18, 2**20, 2**22, 2**24, 2**26, 2**28, 2**30, 2**32]
SIZE_LABELS = ["0 B", "< 1K", "1-4K", "4-16K", "16-64K", "64-256K", "256K-1M", "1-4M", "4-16M", "16-64M",
               "64-256M", "256M-1G", "1-4G", "≥ 4G"]


def _figure(title: str, **kw):
    from bokeh.plotting import figure
    return figure(title=title, height=320, sizing_mode="stretch_width", toolbar_location=None, tools="", **kw)


def top_bars(rows: list[dict], title: str, name: str, top: int = 15):
    """Horizontal bars of bytes for the first ``top`` rows of a by_* table ({"name", "files", "bytes"})."""
    from bokeh.models import ColumnDataSource, HoverTool, NumeralTickFormatter
    rows = rows[:top]
    names = [r["name"] or "(none)" for r in rows]
    src = ColumnDataSource({"name": names, "bytes": [r["bytes"] for r in rows], "files": [r["files"] for r in rows]},
                           name=name)
    f = _figure(title, y_range=names[::-1])
    f.hbar(y="name", right="bytes", height=0.8, source=src)
    f.xaxis.formatter = NumeralTickFormatter(format="0.0 b")
    f.add_tools(HoverTool(tooltips=[("", "@name"), ("bytes", "@bytes{0.0 b}"), ("files", "@files{0,0}")]))
    return f


def size_histogram(sizes, title: str = "File size distribution", name: str = "inventory-sizes"):
    """Files and bytes per size class (powers of 4 from 1 KiB)."""
    from bokeh.models import ColumnDataSource, HoverTool
    sizes = np.asarray(sizes, dtype=np.int64)
    bins = np.searchsorted(np.array(SIZE_EDGES, dtype=np.int64), sizes, side="right")
    counts = np.bincount(bins, minlength=len(SIZE_LABELS)).tolist()
    totals = np.bincount(bins, weights=sizes, minlength=len(SIZE_LABELS)).astype(np.int64).tolist()
    src = ColumnDataSource({"size": SIZE_LABELS, "files": counts, "bytes": totals}, name=name)
    f = _figure(title, x_range=SIZE_LABELS, y_axis_label="files")
    f.vbar(x="size", top="files", width=0.8, source=src, color="#2ca02c")
    f.xaxis.major_label_orientation = 0.8
    f.add_tools(HoverTool(tooltips=[("size", "@size"), ("files", "@files{0,0}"), ("bytes", "@bytes{0.0 b}")]))
    return f


def inventory(summary: dict) -> list:
    """Size distribution (read from the run's dataset), top extensions, top directories, ages."""
    from bokeh.models import ColumnDataSource, HoverTool, NumeralTickFormatter
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    result = summary.get("result", {})
    figs = []
    try:
        # the summary has no size histogram: one column of the dataset is cheap (8 bytes a file)
        t = ds.dataset(summary["dataset"], format="parquet").to_table(columns=["size", "type"],
                                                                     filter=ds.field("type") == "file")
        figs.append(size_histogram(pc.fill_null(t.column("size"), 0).to_numpy()))
    except (OSError, KeyError, ValueError):
        pass     # dataset not readable from here (e.g. a remote cluster's disk): skip that plot
    figs.append(top_bars(result.get("by_extension", []), "Top extensions by bytes", "inventory-extensions"))
    figs.append(top_bars(result.get("by_top_dir", []), "Top directories by bytes", "inventory-dirs"))
    ages = result.get("age", [])
    if ages:
        labels = [a["age"] for a in ages]
        src = ColumnDataSource({"age": labels, "files": [a["files"] for a in ages], "bytes": [a["bytes"] for a in ages]},
                               name="inventory-age")
        f = _figure("Age (modification time)", x_range=labels, y_axis_label="bytes")
        f.vbar(x="age", top="bytes", width=0.8, source=src, color="#8c564b")
        f.yaxis.formatter = NumeralTickFormatter(format="0.0 b")
        f.add_tools(HoverTool(tooltips=[("age", "@age"), ("files", "@files{0,0}"), ("bytes", "@bytes{0.0 b}")]))
        figs.append(f)
    return figs
