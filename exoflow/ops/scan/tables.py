"""The scan job's tables in report.html: findings by severity and by rule, and the most severe
findings, redacted as the scan wrote them (a ``Job.tables`` hook)."""
from __future__ import annotations

from exoflow.plots import Table


def tables(summary: dict, out_dir: str) -> list[Table]:
    r = summary.get("result", {})
    sup = r.get("suppressed", {})
    rows = [["files scanned", r.get("scanned_files", 0)], ["binary files skipped", r.get("binary_files", 0)],
            ["findings", r.get("findings", 0)]]
    rows += [[f"not reported: {why}", n] for why, n in sup.items() if n]
    out = [Table("Scan", "scan-results", ["", "value"], rows),
           Table("Findings by severity", "scan-severity", ["severity", "findings"],
                 [[k, v] for k, v in r.get("by_severity", {}).items()])]
    if r.get("by_rule"):
        out.append(Table("Findings by rule", "scan-by-rule", ["rule", "severity", "findings", "files"],
                         [[x["rule"], x["severity"], x["findings"], x["files"]] for x in r["by_rule"]]))
    examples = r.get("examples", [])
    if examples:
        # "match" is what the scan wrote: a secret rule's match is already redacted there
        out.append(Table(f"Top {len(examples)} findings, most severe first", "scan-findings",
                         ["location", "rule", "severity", "match"],
                         [[f"{e['path']}:{e['line']}:{e['column']}", e["rule"], e["severity"], e["match"][:120]]
                          for e in examples],
                         "All findings: OUT/findings and OUT/scan.sarif (exoflow query OUT \"select * from findings\")."))
    return out
