"""The codestats summary: files, blank, comment and code lines by language, like cloc's table."""
from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from exoflow.ops.codestats.summary import CodestatsPart, CodestatsSummary
from exoflow.tables import human_bytes, table

FIELDS = ("files", "bytes", "blank", "comment", "code")


class CodestatsReducer:
    def chunk(self, t: pa.Table, params: dict[str, Any]) -> CodestatsPart:
        known = t.filter(pc.is_valid(t.column("language")))
        if not known.num_rows:
            return {}
        g = known.group_by("language").aggregate([("code", "count"), ("size", "sum"), ("blank", "sum"),
                                                  ("comment", "sum"), ("code", "sum")])
        cols = [g.column(k).to_pylist() for k in ("language", "code_count", "size_sum", "blank_sum",
                                                  "comment_sum", "code_sum")]
        return {lang: [int(v or 0) for v in vals] for lang, *vals in zip(*cols)}

    def merge(self, total: CodestatsPart | None, part: CodestatsPart) -> CodestatsPart:
        total = total or {}
        for lang, vals in part.items():
            old = total.setdefault(lang, [0] * len(FIELDS))
            for i, v in enumerate(vals):
                old[i] += v
        return total

    def finish(self, total: CodestatsPart | None, params: dict[str, Any]) -> CodestatsSummary:
        rows = sorted((total or {}).items(), key=lambda kv: (-kv[1][4], kv[0]))
        langs = [{"language": lang, **dict(zip(FIELDS, vals))} for lang, vals in rows]
        sums = {k: sum(r[k] for r in langs) for k in FIELDS}
        return {"languages": langs, "total": sums}

    def report(self, s: CodestatsSummary, params: dict[str, Any]) -> str:
        rows = [[r["language"], r["files"], r["blank"], r["comment"], r["code"], human_bytes(r["bytes"])]
                for r in s["languages"]]
        t = s["total"]
        rows.append(["SUM:", t["files"], t["blank"], t["comment"], t["code"], human_bytes(t["bytes"])])
        return table("Code by language", ["Language", "files", "blank", "comment", "code", "bytes"], rows)
