"""The profile summary: text vs binary, lines, CRLF files, an entropy histogram, the most random files."""
from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from exoflow.ops.profile.summary import ProfilePart, ProfileSummary
from exoflow.tables import human_bytes, human_count, table
from exoflow.tables import largest

EDGES = np.arange(0, 8.5, 0.5)   # entropy bins, bits per byte: [0, 0.5), … [7.5, 8]


class ProfileReducer:
    def __init__(self, top: int = 10) -> None:
        self.top = top

    def chunk(self, t: pa.Table, params: dict[str, Any]) -> ProfilePart:
        ok = pc.and_(pc.equal(t.column("type"), "file"), pc.is_null(t.column("error")))
        f = t.filter(pc.fill_null(ok, False))
        ent = f.column("entropy").to_numpy()
        size = f.column("size").to_numpy()
        binary = f.column("binary").to_numpy(zero_copy_only=False)
        bins = np.clip(np.searchsorted(EDGES, ent, side="right") - 1, 0, len(EDGES) - 2)
        order = largest(ent, self.top, f.column("path"))
        return {
            "files": f.num_rows,
            "bytes": int(size.sum()),
            "binary_files": int(binary.sum()),
            "binary_bytes": int(size[binary].sum()),
            "lines": int(f.column("lines").to_numpy().sum()),
            "crlf_files": int((f.column("crlf").to_numpy() > 0).sum()),
            "non_ascii_files": int((f.column("non_ascii").to_numpy()[~binary] > 0).sum()),
            "entropy_files": np.bincount(bins, minlength=len(EDGES) - 1).tolist(),
            "entropy_bytes": np.bincount(bins, weights=size, minlength=len(EDGES) - 1).astype(np.int64).tolist(),
            "most_random": [[p, float(e), int(s)] for p, e, s in
                            zip(f.column("path").take(pa.array(order)).to_pylist(), ent[order], size[order])
                            if s > 0],
        }

    def merge(self, total: ProfilePart | None, part: ProfilePart) -> ProfilePart:
        if total is None:
            return part
        for k in ("files", "bytes", "binary_files", "binary_bytes", "lines", "crlf_files", "non_ascii_files"):
            total[k] += part[k]
        for k in ("entropy_files", "entropy_bytes"):
            total[k] = [a + b for a, b in zip(total[k], part[k])]
        total["most_random"] = sorted(total["most_random"] + part["most_random"],
                                      key=lambda r: (-r[1], r[0]))[: self.top]
        return total

    def finish(self, total: ProfilePart | None, params: dict[str, Any]) -> ProfileSummary:
        if total is None:
            total = {"files": 0, "bytes": 0, "binary_files": 0, "binary_bytes": 0, "lines": 0, "crlf_files": 0,
                     "non_ascii_files": 0, "entropy_files": [0] * (len(EDGES) - 1),
                     "entropy_bytes": [0] * (len(EDGES) - 1), "most_random": []}
        total["entropy_histogram"] = [
            {"bits_per_byte": f"{lo:.1f}-{hi:.1f}", "files": c, "bytes": b}
            for lo, hi, c, b in zip(EDGES[:-1], EDGES[1:], total.pop("entropy_files"), total.pop("entropy_bytes"))]
        return total

    def report(self, s: ProfileSummary, params: dict[str, Any]) -> str:
        parts = [table("Profile", ["", "value"], [
            ["files read", human_count(s["files"])], ["bytes read", human_bytes(s["bytes"])],
            ["binary files (NUL in first 8 KiB)", human_count(s["binary_files"])],
            ["binary bytes", human_bytes(s["binary_bytes"])], ["lines (\\n)", human_count(s["lines"])],
            ["files with CRLF", human_count(s["crlf_files"])],
            ["text files with non-ASCII bytes", human_count(s["non_ascii_files"])]])]
        parts.append(table("Entropy (bits per byte; near 8 = compressed or encrypted)", ["bits/byte", "files", "bytes"],
                           [[r["bits_per_byte"], human_count(r["files"]), human_bytes(r["bytes"])]
                            for r in s["entropy_histogram"]]))
        parts.append(table("Highest entropy", ["path", "bits/byte", "bytes"],
                           [[p, f"{e:.3f}", human_bytes(n)] for p, e, n in s["most_random"]]))
        return "\n\n".join(parts)
