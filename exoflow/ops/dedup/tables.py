"""The dedup job's tables in report.html: what was found, the largest groups with their paths,
the actions and the bytes they really freed (a ``Job.tables`` hook: runs where OUT is)."""
from __future__ import annotations

import os

import pyarrow.compute as pc
import pyarrow.dataset as ds

from exoflow import outputs
from exoflow.plots import Table
from exoflow.tables import human_bytes, human_count

PATHS = 10      # paths shown per group (all are in OUT/duplicates)


def group_paths(dataset_dir: str, group_ids: list[int], limit: int = PATHS) -> dict[int, list[str]]:
    """The first ``limit`` paths (sorted) of each group in ``group_ids``, streamed from the
    duplicates dataset (a group of a million copies costs one batch of memory)."""
    shown: dict[int, list[str]] = {g: [] for g in group_ids}
    if not group_ids or not outputs.isdir(dataset_dir):
        return shown
    d = outputs.dataset(dataset_dir)
    for b in d.to_batches(columns=["group_id", "path"], filter=ds.field("group_id").isin(group_ids)):
        for gid, paths in shown.items():
            if len(paths) < limit:
                paths += pc.filter(b.column(1), pc.equal(b.column(0), gid)).slice(0, limit - len(paths)).to_pylist()
        if all(len(p) >= limit for p in shown.values()):
            break
    return {g: sorted(p) for g, p in shown.items()}


def tables(summary: dict, out_dir: str) -> list[Table]:
    r = summary.get("result", {})
    applied = bool(summary.get("params", {}).get("apply"))
    actions = r.get("actions")
    rows = [["duplicate groups", human_count(r.get("groups", 0))],
            ["files in groups", human_count(r.get("files_in_groups", 0))],
            ["duplicate files (beyond one per group)", human_count(r.get("duplicate_files", 0))],
            ["reclaimable", human_bytes(r.get("reclaimable", 0))]]
    if actions:
        rows.append(["bytes reclaimed (measured after the changes)",
                     human_bytes(actions.get("freed_bytes", 0)) if applied else "none: dry run (no --apply)"])
    out = [Table("Duplicates", "dedup-results", ["", "value"], rows)]
    top = r.get("top", [])
    if top:
        paths = group_paths(os.path.join(out_dir, "duplicates"), [g["group_id"] for g in top])
        out.append(Table(f"Largest {len(top)} groups by reclaimable bytes", "dedup-groups",
                         ["group", "files", "size", "reclaimable", "paths"],
                         [[g["group_id"], g["files"], human_bytes(g["size"]), human_bytes(g["reclaimable"]),
                           paths[g["group_id"]] + ([f"… {g['files'] - len(paths[g['group_id']]):,} more"]
                                                   if g["files"] > len(paths[g["group_id"]]) else [])]
                          for g in top],
                         f"All groups: {r.get('report') or os.path.join(out_dir, 'duplicates.txt')} and "
                         "OUT/duplicates (exoflow query OUT \"select * from duplicates\")."))
    if actions:
        action = summary.get("params", {}).get("action")
        out.append(Table(f"Actions ({action}, {'applied' if applied else 'dry run'})", "dedup-actions",
                         ["status", "names"], [[k, v] for k, v in sorted(actions.get("counts", {}).items())],
                         f"Every name and what was done: {actions.get('log')}"))
    if r.get("hash_errors"):
        out.append(Table("Files that could not be read for hashing", "dedup-read-errors", ["path", "error"],
                         [list(e) for e in r.get("error_examples", [])],
                         f"{r['hash_errors']:,} files left out of the groups; the first "
                         f"{len(r.get('error_examples', []))} shown."))
    return out
