"""The checksum summary: files hashed, files trusted (--trust-mtime) or reused (--since), bytes
read, errors; plus the audit's counts and examples when --verify ran."""
from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from exoflow.ops.checksum.summary import ChecksumPart, ChecksumSummary
from exoflow.tables import human_bytes, human_count, table


def summary_rows(r: dict, trust_mtime: bool = False) -> list[list[str]]:
    """The summary's counts as (label, value) rows for the terminal and report.html; trusted with
    --trust-mtime (or when some were), reused when --since reused some."""
    rows = [["regular files", human_count(r.get("files", 0))], ["hashed", human_count(r.get("hashed", 0))],
            ["bytes hashed", human_bytes(r.get("bytes_hashed", 0))]]
    if trust_mtime or r.get("trusted"):
        rows.append(["trusted (not re-hashed: size, mtime, inode, device unchanged)", human_count(r.get("trusted", 0))])
    if r.get("reused"):
        rows.append(["reused (--since: unchanged, not re-hashed)", human_count(r["reused"])])
    return rows + [["errors", human_count(r.get("errors", 0))]]


class ChecksumReducer:
    def chunk(self, t: pa.Table, params: dict[str, Any]) -> ChecksumPart:
        is_file = pc.fill_null(pc.equal(t.column("type"), "file"), False)
        trusted = pc.fill_null(t.column("trusted"), False)
        digest_cols = [c for c in ("xxh3_128", "blake3", "sha256", "sha1", "md5") if t.column(c).null_count < len(t)]
        has = pc.is_valid(t.column(digest_cols[0])) if digest_cols else pa.array([False] * len(t), pa.bool_())
        hashed = pc.and_(has, pc.invert(trusted))
        err = t.filter(pc.is_valid(t.column("error")))
        size = pc.fill_null(t.column("size"), 0)
        return {
            "files": int(pc.sum(is_file).as_py() or 0),
            "hashed": int(pc.sum(hashed).as_py() or 0),
            "bytes_hashed": int(pc.sum(pc.if_else(hashed, size, 0)).as_py() or 0),
            "trusted": int(pc.sum(trusted).as_py() or 0),
            "reused": 0,
            "errors": err.num_rows,
            "error_examples": list(zip(err.column("path").to_pylist()[:10], err.column("error").to_pylist()[:10])),
        }

    def reused(self, t: pa.Table, params: dict[str, Any]) -> ChecksumPart:
        """Rows --since took from the earlier run: their digests count as reused, neither hashed
        nor trusted (trusted counts this run's --trust-mtime; the rows keep the earlier run's
        ``trusted`` column, which the audit's own count reads)."""
        part = self.chunk(t, params)
        part.update(reused=part["hashed"] + part["trusted"], hashed=0, bytes_hashed=0, trusted=0)
        return part

    def merge(self, total: ChecksumPart | None, part: ChecksumPart) -> ChecksumPart:
        if total is None:
            return part
        for k in ("files", "hashed", "bytes_hashed", "trusted", "reused", "errors"):
            total[k] += part[k]
        total["error_examples"] = (total["error_examples"] + part["error_examples"])[:10]
        return total

    def finish(self, total: ChecksumPart | None, params: dict[str, Any]) -> ChecksumPart:
        return total or {"files": 0, "hashed": 0, "bytes_hashed": 0, "trusted": 0, "reused": 0, "errors": 0,
                         "error_examples": []}

    def report(self, s: ChecksumSummary, params: dict[str, Any]) -> str:
        parts = [table(f"Checksums ({', '.join(s.get('algorithms', []))})", ["", "value"],
                       summary_rows(s, bool(params.get("trust_mtime"))))]
        for alg, path in s.get("text_manifests", {}).items():
            left = s.get("text_unlisted", {}).get(alg) or {"names": 0}
            parts.append(f"{alg} text manifest: {path}" + (
                f" (leaves out {human_count(left['names'])} files whose names it cannot hold: listed in {left['list']})"
                if left["names"] else ""))
        audit = s.get("audit")
        if audit:
            parts.append(table("Audit against " + str(params.get("verify")), ["status", "files"],
                               [[k, human_count(v)] for k, v in audit["counts"].items()]))
            for status, ex in audit["examples"].items():
                if ex:
                    cols = ["new path", "old path"] if status == "moved" else ["path"]
                    shown = [[p, o] if status == "moved" else [p or o] for p, o in ex]
                    parts.append(table(f"{status} (first {len(ex)}; all in {audit['dataset']})", cols, shown))
            parts.append("audit: " + ("no differences" if not audit["differences"]
                                      else f"{human_count(audit['differences'])} files differ"))
        if s["errors"]:
            parts.append(table("Errors (first 10)", ["path", "error"], s["error_examples"]))
        return "\n\n".join(parts)
