"""The profile job's kernel: entropy, lines, CRLF, non-ASCII bytes and binary per file."""
from __future__ import annotations

from types import ModuleType

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from exoflow.backends import array_module, to_host
from exoflow.batch import Batch
from exoflow.kernels.bytestats import SNIFF, crlf_counts, entropy_bits, first_nul, histograms


def profile_columns(batch: Batch) -> dict[str, pa.Array]:
    """entropy (bits/byte), lines, crlf, non_ascii, binary per row; null where no content was read
    (not a regular file, or it could not be read)."""
    xp = array_module(batch.params.get("backend", "cpu"))
    n = batch.num_rows
    data = xp.asarray(batch.data)                 # one host-to-device copy on GPU workers
    offsets = xp.asarray(batch.offsets)
    hist = histograms(xp, data, offsets, n)
    crlf = crlf_counts(xp, data, offsets, n)
    binary = first_nul(xp, data, offsets, n)
    hist, crlf, binary = to_host(hist), to_host(crlf), to_host(binary)
    for i, c in batch.streamed.items():           # streamed files: their consumers' profiles
        hist[i], crlf[i], binary[i] = c.hist, c.crlf, c.binary
    is_file = pc.fill_null(pc.equal(batch.table.column("type"), "file"), False).to_numpy(zero_copy_only=False)
    read = is_file & np.array([e is None for e in batch.errors], dtype=bool) if n else is_file
    values = {
        "entropy": to_host(entropy_bits(np, hist)),
        "lines": hist[:, 10],
        "crlf": crlf,
        "non_ascii": hist[:, 128:].sum(axis=1),
        "binary": binary,
    }
    return {name: pa.array(v, mask=~read) for name, v in values.items()}


class StreamedProfile:
    """A ``batch.Consumer``: the same profile for a file fed in pieces (a CRLF may straddle two):
    ``hist`` (int64, 256), ``crlf``, ``binary`` (a NUL in the first SNIFF bytes)."""

    def __init__(self, xp: ModuleType) -> None:
        self.xp = xp
        self.hist = np.zeros(256, dtype=np.int64)
        self.crlf, self.seen, self.binary, self.last_cr = 0, 0, False, False

    def update(self, piece: memoryview) -> bool:
        xp = self.xp
        a = xp.asarray(np.frombuffer(piece, dtype=np.uint8))
        whole = xp.asarray(np.array([0, len(a)], dtype=np.int64))
        self.hist += to_host(xp.bincount(a, minlength=256))
        self.crlf += int(to_host(crlf_counts(xp, a, whole, 1))[0]) + int(self.last_cr and piece[0] == 10)
        if self.seen < SNIFF:
            head = a[: SNIFF - self.seen]
            self.binary |= bool(to_host(first_nul(xp, head, xp.asarray(np.array([0, len(head)])), 1))[0])
        self.seen += len(a)
        self.last_cr = piece[-1] == 13
        return True


def profiles_of_large(batch: Batch) -> dict[int, StreamedProfile]:
    """``Reads.consume`` of the profile job: a ``StreamedProfile`` per large file."""
    xp = array_module(batch.params.get("backend", "cpu"))
    return {i: StreamedProfile(xp) for i in np.flatnonzero(batch.large).tolist()} if batch.large is not None else {}
