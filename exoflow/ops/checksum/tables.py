"""The checksum job's tables in report.html: what was hashed and, with --verify, the audit's
counts and its differing files read from OUT/audit (a ``Job.tables`` hook: runs where OUT is)."""
from __future__ import annotations

import os

import pyarrow.dataset as ds

from exoflow.plots import Table
from exoflow.report import first_rows

from exoflow.ops.checksum.audit import STATUSES
from exoflow.ops.checksum.reducer import summary_rows

SHOWN = 50      # differing files shown per audit status (all are in OUT/audit)


def tables(summary: dict, out_dir: str) -> list[Table]:
    r = summary.get("result", {})
    rows = summary_rows(r, bool(summary.get("params", {}).get("trust_mtime")))
    out = [Table(f"Checksums ({', '.join(r.get('algorithms', []))})", "checksum-results", ["", "value"], rows)]
    audit = r.get("audit")
    if not audit:
        return out
    verify = summary.get("params", {}).get("verify")
    out.append(Table(f"Audit against {verify}", "checksum-audit", ["status", "files"],
                     [[k, v] for k, v in audit["counts"].items()],
                     "no differences" if not audit["differences"] else f"{audit['differences']:,} files differ"))
    audit_dir = audit.get("dataset") or os.path.join(out_dir, "audit")
    shown, left = [], 0
    for status in STATUSES[1:]:
        found, n = first_rows(audit_dir, ["status", "path", "old_path"], ds.field("status") == status, SHOWN)
        shown += sorted(found, key=lambda row: (row[1] or "", row[2] or ""))
        left += n - len(found)
    if shown:
        out.append(Table("Files that differ", "checksum-differences", ["status", "path", "old path"],
                         [[s, p or "", o or ""] for s, p, o in shown],
                         (f"The first {SHOWN} of each status shown, {left:,} more" if left else "All shown")
                         + f"; every file's status: {audit_dir} (exoflow query OUT \"select * from audit\")."))
    return out
