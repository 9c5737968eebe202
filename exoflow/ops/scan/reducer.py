"""The scan summary: findings by rule and severity, files scanned and skipped, the
most severe findings first (matches already redacted), and the --fail-on exit code.
Findings suppressed (an inline allow comment, or in --baseline) are counted apart and
count for nothing else."""
from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from exoflow.ops.scan.rules import SEVERITIES, severity_rank
from exoflow.ops.scan.kernel import resolve_engine
from exoflow.ops.scan.summary import ScanPart, ScanSummary
from exoflow.tables import human_bytes, human_count, table

STATS = ("regular_files", "scanned_files", "binary_files", "scanned_bytes")
SUPPRESSED = ("inline", "baseline")      # findings not reported: an allow comment on the line, in --baseline


def engine_line(engine: str | None, chosen: str = "auto") -> str:
    """The report's first line: which matching engine ran and, when ``--engine auto`` did
    not find Hyperscan, what is missing."""
    return "scan engine: " + (engine or "-") + (ENGINE_NOTES.get(engine or "", "") if chosen == "auto" else "")


def environment() -> dict[str, str]:
    """For ``exoflow info``: the engine ``--engine auto`` picks on this install, with its note."""
    return {"scan engine": engine_line(resolve_engine("auto"))[len("scan engine: "):]}


ENGINE_NOTES = {
    "re2": " (Hyperscan is not installed; pip install hyperscan, where it has wheels, is faster)",
    "re": " (Python's re, several times slower: neither Hyperscan nor RE2 is installed; "
          "pip install hyperscan google-re2)",
}


class ScanReducer:
    def __init__(self, top: int = 20) -> None:
        self.top = top

    def chunk(self, t: pa.Table, params: dict[str, Any]) -> ScanPart:
        meta = json.loads((t.schema.metadata or {}).get(b"exoflow.scan", b"{}"))
        found = t.filter(pc.is_valid(t.column("rule")))
        why = found.column("suppressed")
        suppressed = {k: int(pc.sum(pc.equal(why, k)).as_py() or 0) for k in SUPPRESSED}
        found = found.filter(pc.is_null(why))
        by_rule: dict[str, list] = {}
        if found.num_rows:
            g = found.group_by(["rule", "severity"]).aggregate([("line", "count"), ("path", "count_distinct")])
            for r, s, c, f in zip(*(g.column(k).to_pylist() for k in ("rule", "severity", "line_count",
                                                                       "path_count_distinct"))):
                by_rule[r] = [s, c, f]
        top = int(params.get("top", self.top))
        # the chunk's first `top` findings, most severe first, sorted by Arrow (not per row in Python)
        ex = found.select(["path", "line", "column", "rule", "severity", "match"])
        ex = ex.append_column("rank", pc.index_in(ex.column("severity"), value_set=pa.array(SEVERITIES)))
        ex = ex.sort_by([("rank", "descending"), ("path", "ascending"), ("line", "ascending"),
                         ("column", "ascending")]).slice(0, top).drop(["rank"])
        return {**{k: int(meta.get(k, 0)) for k in STATS}, "engine": meta.get("engine"),
                "findings": found.num_rows, "suppressed": suppressed, "by_rule": by_rule,
                "examples": ex.to_pylist(), "top": top}

    def merge(self, total: ScanPart | None, part: ScanPart) -> ScanPart:
        if total is None:
            return part
        for k in STATS + ("findings",):
            total[k] += part[k]
        for k in SUPPRESSED:
            total["suppressed"][k] += part["suppressed"][k]
        total["engine"] = total["engine"] or part["engine"]
        for r, (s, c, f) in part["by_rule"].items():
            old = total["by_rule"].setdefault(r, [s, 0, 0])
            old[1] += c
            old[2] += f
        # each part holds its chunk's first `top` (the --top of this run): keeping the first
        # `top` of their union keeps the client's memory bounded and loses none of the final top
        top = max(total.get("top", self.top), part.get("top", self.top))
        ex = total["examples"] + part["examples"]
        ex.sort(key=lambda f: (-severity_rank(f["severity"]), f["path"], f["line"], f["column"]))
        total["examples"] = ex[:top]
        total["top"] = top
        return total

    def finish(self, total: ScanPart | None, params: dict[str, Any]) -> ScanSummary:
        if total is None:
            total = {**{k: 0 for k in STATS}, "engine": None, "findings": 0, "suppressed": dict.fromkeys(SUPPRESSED, 0),
                     "by_rule": {}, "examples": []}
        total["engine"] = total["engine"] or resolve_engine(params.get("engine") or "auto")
        top = int(params.get("top", self.top))
        rows = sorted(total["by_rule"].items(), key=lambda kv: (-severity_rank(kv[1][0]), -kv[1][1], kv[0]))
        total["by_rule"] = [{"rule": r, "severity": s, "findings": c, "files": f} for r, (s, c, f) in rows]
        sev = {s: 0 for s in reversed(SEVERITIES)}
        for r in total["by_rule"]:
            sev[r["severity"]] += r["findings"]
        total["by_severity"] = sev
        total["examples"] = total["examples"][:top]
        total.pop("top", None)
        fail_on = params.get("fail_on")
        if fail_on:
            hit = sum(c for s, c in sev.items() if severity_rank(s) >= severity_rank(fail_on))
            total["exit_code"] = 1 if hit else 0
        return total

    def report(self, s: ScanSummary, params: dict[str, Any]) -> str:
        rows = [["rules", str(params.get("rules", ""))], ["files scanned", human_count(s["scanned_files"])],
                ["binary files skipped", human_count(s["binary_files"])],
                ["bytes scanned", human_bytes(s["scanned_bytes"])], ["findings", human_count(s["findings"])]]
        sup = s.get("suppressed", {})
        if sup.get("inline"):
            rows.append(["allowed inline (not reported)", human_count(sup["inline"])])
        if params.get("baseline") is not None:
            rows.append([f"in baseline {params['baseline']} (not reported)", human_count(sup.get("baseline", 0))])
        parts = [engine_line(s.get("engine"), params.get("engine") or "auto"), table("Scan", ["", "value"], rows)]
        parts.append(table("By severity", ["severity", "findings"],
                           [[k, human_count(v)] for k, v in s["by_severity"].items()]))
        if s["by_rule"]:
            parts.append(table("By rule", ["rule", "severity", "findings", "files"],
                               [[r["rule"], r["severity"], human_count(r["findings"]), human_count(r["files"])]
                                for r in s["by_rule"]]))
        if s["examples"]:
            parts.append(table(f"Findings (first {len(s['examples'])}, most severe first)",
                               ["location", "rule", "severity", "match"],
                               [[f"{e['path']}:{e['line']}:{e['column']}", e["rule"], e["severity"],
                                 e["match"][:80]] for e in s["examples"]]))
        if s.get("sarif"):
            parts.append(f"SARIF: {s['sarif']}")
        if params.get("fail_on"):
            parts.append(f"--fail-on {params['fail_on']}: " + ("FAILED" if s.get("exit_code") else "passed"))
        return "\n\n".join(parts)
