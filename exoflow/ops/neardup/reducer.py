"""neardup's chunk counts (files, text files, skipped, shingles) and the terminal report."""
from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from exoflow.ops.neardup.kernel import BINARY, NO_TEXT
from exoflow.tables import human_bytes, human_count, table

COUNTS = ("files", "text_files", "binary_files", "no_text_files", "errors", "text_bytes", "shingles")


class NeardupReducer:
    def chunk(self, t: pa.Table, params: dict[str, Any]) -> dict:
        ok = pc.is_null(t.column("error"))
        text = pc.is_valid(t.column("signature"))
        skipped = t.column("skipped")
        return {"files": int(pc.sum(ok).as_py() or 0) if t.num_rows else 0,
                "text_files": int(pc.sum(text).as_py() or 0) if t.num_rows else 0,
                "binary_files": int(pc.sum(pc.equal(skipped, BINARY)).as_py() or 0),
                "no_text_files": int(pc.sum(pc.equal(skipped, NO_TEXT)).as_py() or 0),
                "errors": int(pc.sum(pc.invert(ok)).as_py() or 0) if t.num_rows else 0,
                "text_bytes": int(pc.sum(t.filter(text).column("size")).as_py() or 0),
                "shingles": int(pc.sum(t.column("shingles")).as_py() or 0)}

    def merge(self, total: dict | None, part: dict) -> dict:
        return part if total is None else {k: total[k] + part[k] for k in COUNTS}

    def finish(self, total: dict | None, params: dict[str, Any]) -> dict:
        return total or dict.fromkeys(COUNTS, 0)

    def report(self, s: dict, params: dict[str, Any]) -> str:
        method = "exact Jaccard of the shingle sets" if params.get("verify_exact") else "MinHash signature agreement"
        parts = [table("Near-duplicates", ["", "value"], [
            ["text files (signatures)", human_count(s["text_files"])],
            ["skipped: binary / no text", f"{human_count(s['binary_files'])} / {human_count(s['no_text_files'])}"],
            ["read errors", human_count(s["errors"])],
            ["shingles", f"{human_count(s['shingles'])} ({s['shingle']} {'words' if params.get('words') else 'characters'})"],
            ["LSH", f"{s['bands']} bands x {s['rows']} rows of {s['permutations']} permutations, threshold {s['threshold']}"],
            ["candidate pairs", human_count(s["candidate_pairs"])],
            [f"pairs verified ({method})", human_count(s["verified_pairs"])],
            ["clusters", human_count(s["clusters"])],
            ["files in clusters", human_count(s["files_in_clusters"])]])]
        if s["largest"]:
            parts.append(table(f"Largest {len(s['largest'])} clusters (all in {s['clusters_dir']})",
                               ["cluster", "files", "bytes", "min similarity", "representative"],
                               [[c["cluster_id"], c["files"], human_bytes(c["bytes"]), f"{c['min_similarity']:.3f}",
                                 c["representative"]] for c in s["largest"]]))
        return "\n\n".join(parts)
