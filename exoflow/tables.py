"""Plain-text tables and human-readable numbers for terminal reports."""
from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"


def human_count(n: float) -> str:
    return f"{n:,.0f}"


_NUMERIC = re.compile(r"[-+]?[\d.,]+(?: ?[A-Za-z]{1,3}|%)?")   # 1,234  2.5 MiB  75%


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Numbers (with an optional unit) right-aligned, text left-aligned."""
    cells = [[str(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    numeric = [i > 0 and bool(cells) and all(_NUMERIC.fullmatch(r[i]) or not r[i] for r in cells)
               for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if numeric[i] else v.ljust(w)
                         for i, (v, w) in enumerate(zip(values, widths))).rstrip()

    out = [title, line(headers), line(["-" * w for w in widths])]
    out += [line(r) for r in cells]
    return "\n".join(out)


def largest(values: np.ndarray, k: int, names: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Indices (int64) of the ``k`` largest ``values``, largest first, equal values in the order of
    ``names`` (the files' paths, one per value): the pick and its order do not depend on how the files
    were cut into chunks or in which order the chunks' parts are merged. From a partition: a chunk has
    thousands of files, a summary keeps the top 10 or 20."""
    n = len(values)
    k = min(max(k, 0), n)
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    kth = np.partition(values, n - k)[n - k]
    picked = np.flatnonzero(values >= kth)          # the k largest and every value equal to the k-th
    candidates = pa.table({"value": values[picked], "name": names.take(pa.array(picked))})
    order = pc.sort_indices(candidates, sort_keys=[("value", "descending"), ("name", "ascending")])
    return picked[order.to_numpy()[:k]]
