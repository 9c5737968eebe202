"""Dedup's first stage: how often each file size occurs, merged from the chunks.

Only (size, count) pairs travel to the client, never paths; the client keeps
16 bytes per distinct size. Sizes seen at least twice are the candidates of
the next stages (exoflow/ops/dedup/stages.py).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from exoflow.ops.dedup.summary import DedupPart, DedupSizes, DedupSummary
from exoflow.tables import human_bytes, human_count, table


def _compact(sizes: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    u, inv = np.unique(sizes, return_inverse=True)
    return u, np.bincount(inv, weights=counts, minlength=len(u)).astype(np.int64)


class DedupReducer:
    def chunk(self, t: pa.Table, params: dict[str, Any]) -> DedupPart:
        ok = pc.and_(pc.fill_null(pc.equal(t.column("type"), "file"), False), pc.is_null(t.column("error")))
        sizes = t.filter(ok).column("size").to_numpy(zero_copy_only=False).astype(np.int64)
        u, c = np.unique(sizes, return_counts=True)
        return {"sizes": u, "counts": c.astype(np.int64), "files": len(sizes), "bytes": int(sizes.sum())}

    def merge(self, total: DedupPart | None, part: DedupPart) -> DedupPart:
        if total is None:
            return part
        total["files"] += part["files"]
        total["bytes"] += part["bytes"]
        total["sizes"], total["counts"] = _compact(np.concatenate([total["sizes"], part["sizes"]]),
                                                   np.concatenate([total["counts"], part["counts"]]))
        return total

    def finish(self, total: DedupPart | None, params: dict[str, Any]) -> DedupSizes:
        total = total or {"sizes": np.zeros(0, np.int64), "counts": np.zeros(0, np.int64), "files": 0, "bytes": 0}
        keep = total["counts"] >= 2
        if not params.get("include_empty"):
            keep &= total["sizes"] > 0
        return {"files": total["files"], "bytes": total["bytes"], "candidate_sizes": total["sizes"][keep],
                "candidate_files": int(total["counts"][keep].sum())}

    def report(self, s: DedupSummary, params: dict[str, Any]) -> str:
        st = s["stages"]
        parts = [table("Duplicates", ["", "value"], [
            ["regular files scanned", human_count(s["files"])],
            ["duplicate groups", human_count(s["groups"])],
            ["files in groups", human_count(s["files_in_groups"])],
            ["duplicate files (beyond one per group)", human_count(s["duplicate_files"])],
            ["reclaimable", human_bytes(s["reclaimable"])]]),
            table("Stages (candidates left)", ["stage", "files"], [
                ["same size", human_count(st["size"])], ["hard links collapsed", human_count(st["after_links"])],
                ["first read (<= 64 KiB: full hash)", human_count(st["after_prefix"])],
                ["full hash", human_count(st["after_full"])]])]
        if s["top"]:
            parts.append(table(f"Top {len(s['top'])} groups by reclaimable bytes (all in {s.get('report')})",
                               ["group", "files", "size", "reclaimable", "hash"],
                               [[g["group_id"], g["files"], human_bytes(g["size"]), human_bytes(g["reclaimable"]),
                                 g["hash"][:16]] for g in s["top"]]))
        if s.get("actions"):
            a = s["actions"]
            rows = [[k, human_count(v)] for k, v in sorted(a["counts"].items())]
            if params.get("apply"):
                rows.append(["freed (measured after the changes)", human_bytes(a["freed_bytes"])])
            if a["leftovers_removed"]:
                rows.append(["leftovers of an interrupted run removed", human_count(a["leftovers_removed"])])
            parts.append(table(f"Actions ({params.get('action')}, {'applied' if params.get('apply') else 'dry run'};"
                               f" log: {a['log']})", ["status", "names"], rows))
        if s["hash_errors"]:
            parts.append(table("Read errors (first 10)", ["path", "error"], s["error_examples"]))
        return "\n\n".join(parts)
