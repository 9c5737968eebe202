"""The profile job's kernel: entropy, lines, CRLF, non-ASCII bytes and binary per file."""
from __future__ import annotations

from types import ModuleType

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from exoflow.backends import array_module, to_host
from exoflow.batch import Batch
from exoflow.fileio import describe_error
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
    failed = False
    for i in np.flatnonzero(batch.large):         # streamed files: fold their pieces into the same columns
        try:
            hist[i], crlf[i], binary[i] = _streamed(xp, batch, i)
        except OSError as e:
            batch.errors[i] = describe_error(e)
            failed = True
    is_file = pc.fill_null(pc.equal(batch.table.column("type"), "file"), False).to_numpy(zero_copy_only=False)
    read = is_file & np.array([e is None for e in batch.errors], dtype=bool) if n else is_file
    values = {
        "entropy": to_host(entropy_bits(np, hist)),
        "lines": hist[:, 10],
        "crlf": crlf,
        "non_ascii": hist[:, 128:].sum(axis=1),
        "binary": binary,
    }
    columns = {name: pa.array(v, mask=~read) for name, v in values.items()}
    if failed:   # a streamed file failed part-way: its reason joins the error column
        columns["error"] = pc.coalesce(batch.table.column("error"), pa.array(batch.errors, pa.string()))
    return columns


def _streamed(xp: ModuleType, batch: Batch, i: int) -> tuple[np.ndarray, int, bool]:
    """The same profile for a file read in pieces (a CRLF may straddle two pieces)."""
    hist = np.zeros(256, dtype=np.int64)
    crlf, seen, binary, last_cr = 0, 0, False, False
    for piece in batch.pieces(i):
        a = xp.asarray(np.frombuffer(piece, dtype=np.uint8))
        whole = xp.asarray(np.array([0, len(a)], dtype=np.int64))
        hist += to_host(xp.bincount(a, minlength=256))
        crlf += int(to_host(crlf_counts(xp, a, whole, 1))[0]) + int(last_cr and piece[0] == 10)
        if seen < SNIFF:
            head = a[: SNIFF - seen]
            binary |= bool(to_host(first_nul(xp, head, xp.asarray(np.array([0, len(head)])), 1))[0])
        seen += len(a)
        last_cr = piece[-1] == 13
    return hist, crlf, binary
