"""The inventory summary: totals, by type, by extension, by top directory,
largest files and an age histogram, merged from per-chunk partial sums."""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from exoflow.ops.inventory.summary import InventoryPart, InventorySummary
from exoflow.tables import human_bytes, human_count, table
from exoflow.tables import largest

# size classes, powers of 4 from 1 KiB: class i holds sizes in [SIZE_EDGES[i-1], SIZE_EDGES[i])
SIZE_EDGES = [1, 2**10, 2**12, 2**14, 2**16, 2**18, 2**20, 2**22, 2**24, 2**26, 2**28, 2**30, 2**32]
SIZE_LABELS = ["0 B", "< 1K", "1-4K", "4-16K", "16-64K", "64-256K", "256K-1M", "1-4M", "4-16M", "16-64M",
               "64-256M", "256M-1G", "1-4G", "≥ 4G"]
AGE_BINS = [  # (label, upper bound in seconds of age)
    ("future", 0), ("< 1 day", 86400), ("1-7 days", 7 * 86400), ("7-30 days", 30 * 86400),
    ("1-12 months", 365 * 86400), ("1-2 years", 2 * 365 * 86400), ("2-5 years", 5 * 365 * 86400),
    ("> 5 years", float("inf")),
]


def _group(t: pa.Table, key: str) -> dict[str, list[int]]:
    g = t.group_by(key).aggregate([("path", "count"), ("size", "sum")])   # path is never null
    return {k if k is not None else "": [int(c), int(s or 0)]
            for k, c, s in zip(g.column(key).to_pylist(), g.column("path_count").to_pylist(),
                               g.column("size_sum").to_pylist())}


def _add_groups(a: dict[str, list[int]], b: dict[str, list[int]]) -> None:
    for k, (c, s) in b.items():
        if k in a:
            a[k][0] += c
            a[k][1] += s
        else:
            a[k] = [c, s]


class InventoryReducer:
    """Sizes count regular files only; hard-linked files count once in ``allocated``."""

    def __init__(self, top: int = 20) -> None:
        self.top = top

    def chunk(self, t: pa.Table, params: dict[str, Any]) -> InventoryPart:
        now_ns = int((params.get("now") or time.time()) * 1e9)
        top = int(params.get("top", self.top))
        # regular files (find -type f) are counted; sizes and ages come from those whose lstat worked
        # (a failed lstat leaves a row with an error and no size)
        regular = pc.fill_null(pc.equal(t.column("type"), "file"), False)
        files = t.filter(pc.and_(regular, pc.is_valid(t.column("size"))))
        sizes = files.column("size").to_numpy()
        ages = (now_ns - files.column("mtime_ns").to_numpy()) / 1e9
        edges = np.array([b for _, b in AGE_BINS[:-1]], dtype=float)
        bins = np.searchsorted(edges, ages, side="left")
        age_count = np.bincount(bins, minlength=len(AGE_BINS))
        age_bytes = np.bincount(bins, weights=sizes, minlength=len(AGE_BINS))
        size_bins = np.searchsorted(np.array(SIZE_EDGES, dtype=np.int64), sizes, side="right")
        size_count = np.bincount(size_bins, minlength=len(SIZE_LABELS))
        size_bytes = np.bincount(size_bins, weights=sizes, minlength=len(SIZE_LABELS))
        nlink = pc.fill_null(t.column("nlink"), 1).to_numpy()
        alloc = pc.fill_null(t.column("allocated"), 0).to_numpy()
        largest_idx = largest(sizes, top, files.column("path"))
        err = t.filter(pc.is_valid(t.column("error")))
        return {
            "top": top,
            "entries": t.num_rows,
            "files": int(pc.sum(regular.cast(pa.int64())).as_py() or 0),
            "bytes": int(sizes.sum()),
            # each of a file's n names carries 1/n of its blocks: exact when all its links are in the tree,
            # and no set of (device, inode) has to be held on the client
            "allocated": float((alloc / np.maximum(nlink, 1)).sum()),
            "hardlinked_names": int((nlink > 1).sum()),
            "errors": err.num_rows,
            "error_examples": list(zip(err.column("path").to_pylist()[:10], err.column("error").to_pylist()[:10])),
            "by_type": _group(t, "type"),
            "by_extension": _group(files, "extension"),
            "by_top_dir": _group(files, "top_dir"),
            "largest": [[p, int(s)] for p, s in zip(files.column("path").take(pa.array(largest_idx)).to_pylist(),
                                                    sizes[largest_idx])],
            "age": [[int(c), int(b)] for c, b in zip(age_count, age_bytes)],
            "sizes": [[int(c), int(b)] for c, b in zip(size_count, size_bytes)],
        }

    def merge(self, total: InventoryPart | None, part: InventoryPart) -> InventoryPart:
        if total is None:
            return part
        for k in ("entries", "files", "bytes", "allocated", "hardlinked_names", "errors"):
            total[k] += part[k]
        total["error_examples"] = (total["error_examples"] + part["error_examples"])[:10]
        for k in ("by_type", "by_extension", "by_top_dir"):
            _add_groups(total[k], part[k])
        total["largest"] = sorted(total["largest"] + part["largest"], key=lambda r: (-r[1], r[0]))[: part["top"]]
        for k in ("age", "sizes"):
            total[k] = [[a[0] + b[0], a[1] + b[1]] for a, b in zip(total[k], part[k])]
        return total

    def finish(self, total: InventoryPart | None, params: dict[str, Any]) -> InventorySummary:
        if total is None:
            total = self.chunk(_empty(), params)
        total.pop("top")
        total["allocated"] = int(round(total["allocated"]))
        total["age"] = [{"age": label, "files": c, "bytes": b} for (label, _), (c, b) in zip(AGE_BINS, total["age"])]
        total["sizes"] = [{"size": label, "files": c, "bytes": b} for label, (c, b) in zip(SIZE_LABELS, total["sizes"])]
        for k in ("by_type", "by_extension", "by_top_dir"):
            rows = sorted(total[k].items(), key=lambda kv: (-kv[1][1], -kv[1][0], kv[0]))
            total[k] = [{"name": n, "files": c, "bytes": s} for n, (c, s) in rows]
        return total

    def report(self, s: InventorySummary, params: dict[str, Any]) -> str:
        top = int(params.get("top", self.top))
        parts = [table("Totals", ["", "value"], [
            ["entries", human_count(s["entries"])], ["regular files", human_count(s["files"])],
            ["bytes (apparent)", human_bytes(s["bytes"])], ["allocated", human_bytes(s["allocated"])],
            ["errors", human_count(s["errors"])]])]
        parts.append(table("By type", ["type", "entries", "bytes"],
                           [[r["name"], human_count(r["files"]), human_bytes(r["bytes"])] for r in s["by_type"]]))
        for key, title in (("by_extension", "By extension"), ("by_top_dir", "By top-level directory")):
            rows = s[key][:top]
            more = len(s[key]) - len(rows)
            parts.append(table(f"{title} (top {len(rows)} by bytes{f', {more} more in summary.json' if more > 0 else ''})",
                               ["name", "files", "bytes"],
                               [[r["name"] or "(none)", human_count(r["files"]), human_bytes(r["bytes"])] for r in rows]))
        parts.append(table(f"Largest {len(s['largest'])} files", ["path", "bytes"],
                           [[p, human_bytes(n)] for p, n in s["largest"]]))
        parts.append(table("Size (regular files)", ["size", "files", "bytes"],
                           [[r["size"], human_count(r["files"]), human_bytes(r["bytes"])] for r in s["sizes"]
                            if r["files"]]))
        parts.append(table("Age (modification time)", ["age", "files", "bytes"],
                           [[r["age"], human_count(r["files"]), human_bytes(r["bytes"])] for r in s["age"]]))
        if s["errors"]:
            parts.append(table("Errors (first 10)", ["path", "error"], s["error_examples"]))
        return "\n\n".join(parts)


def _empty() -> pa.Table:
    from exoflow.sources.entries import SCHEMA
    t = SCHEMA.empty_table()
    return t.append_column("allocated", pa.array([], pa.int64())).append_column("extension", pa.array([], pa.string()))
