"""The checksum job's kernel: the per-chunk hashing step and --trust-mtime reuse.

Which rows are read depends on the old manifest when ``--trust-mtime`` is given:
``hashed_rows`` is the job's row selector (``Reads``), and the engine loads just those files,
in cache-sized sub-batches (``READS``), for the pure ``checksum_columns`` kernel, which hashes
them and fills in the reused digests.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from exoflow.batch import Batch, Reads
from exoflow.errors import UsageError
from exoflow.kernels.hashing import COLUMNS, DEFAULT, PathIndex, digest_consumers, hash_batch, path_keys
from exoflow.ops.checksum.manifests import manifest_algorithms, manifest_files

# Bytes are hashed right after they are copied, while they are still in the CPU cache: filling a
# whole chunk's buffer first and hashing it afterwards took 1.7x the CPU on /usr. With xxh3-128
# alone each file is hashed as it is read, through one HASH_PIECE buffer (Reads.xxh3_only);
# otherwise files over HASH_PIECE are streamed in pieces of that size, smaller ones read in
# batches of HASH_BATCH.
HASH_PIECE = 2**20
HASH_BATCH = 4 * 2**20

def algorithms(params: dict[str, Any]) -> tuple[str, ...]:
    """--hash if given; else the old manifest's algorithms when verifying; else xxh3-128."""
    if params.get("hash"):
        chosen = tuple(params["hash"])
        if params.get("verify") and not set(chosen) & set(manifest_algorithms(params["verify"])):
            raise UsageError(f"--hash {','.join(chosen)}: the manifest to verify has only "
                             f"{','.join(manifest_algorithms(params['verify']))}")
        return chosen
    if params.get("verify"):
        return manifest_algorithms(params["verify"])
    return (DEFAULT,)


# ---- --trust-mtime: reuse hashes of files whose metadata did not change ---------------

class TrustIndex:
    """The old manifest's regular files indexed by exact path (``PathIndex``), with the
    metadata that must match exactly (size, mtime_ns, inode, device) and their digests.
    Loaded once per worker process (see ``trust_index``)."""

    FIELDS = ("size", "mtime_ns", "inode", "device")

    def __init__(self, spec: str, names: tuple[str, ...]) -> None:
        cols = [COLUMNS[a] for a in names]
        parts = []
        for f in manifest_files(spec):
            t = pq.read_table(f, columns=["path", "path_bytes", "type", *self.FIELDS, *cols])
            keep = pc.equal(t.column("type"), "file")
            for c in cols:
                keep = pc.and_(keep, pc.is_valid(t.column(c)))
            parts.append(t.filter(keep))
        t = pa.concat_tables(parts) if parts else pa.table({})
        self.index = PathIndex(path_keys(t) if t.num_rows else np.zeros((0, 2), np.uint64))
        order = self.index.order
        self.meta = {f: t.column(f).to_numpy(zero_copy_only=False)[order].astype(np.int64) for f in self.FIELDS} \
            if t.num_rows else {f: np.zeros(0, np.int64) for f in self.FIELDS}
        self.digests = {c: np.asarray(t.column(c).to_pylist(), dtype=object)[order] if t.num_rows
                        else np.zeros(0, object) for c in cols}

    def lookup(self, table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        """(rows of ``table`` whose path and metadata match, their rows in the index)."""
        if not len(self.index) or not table.num_rows:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        pos, end = self.index.find(path_keys(table))
        ok = end > pos
        ok &= pc.fill_null(pc.equal(table.column("type"), "file"), False).to_numpy(zero_copy_only=False)
        for f in self.FIELDS:
            ok &= pc.fill_null(table.column(f), 0).to_numpy(zero_copy_only=False).astype(np.int64) == self.meta[f][pos]
        rows = np.flatnonzero(ok)
        return rows, pos[rows]


@lru_cache(maxsize=2)
def trust_index(spec: str, names: tuple[str, ...]) -> TrustIndex:
    return TrustIndex(spec, names)


# ---- the chunk step -------------------------------------------------------------

def _trusted(table: pa.Table, params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, TrustIndex | None]:
    """With --trust-mtime: (rows of ``table`` whose old digests are reused, their rows in the
    old manifest's index, the index); else nothing (empty int64 arrays, None)."""
    none = np.zeros(0, np.int64)
    verify = params.get("verify")
    if not (params.get("trust_mtime") and verify):
        return none, none, None
    names, old = algorithms(params), manifest_algorithms(verify)
    if not set(names) <= set(old):      # a new algorithm: every file is hashed
        return none, none, None
    index = trust_index(verify, tuple(a for a in names if a in old))
    return (*index.lookup(table), index)


def hashed_rows(table: pa.Table, params: dict[str, Any]) -> np.ndarray:
    """The checksum job's row selector: bool per row, False where --trust-mtime reuses the old
    digest (only regular files of the selected rows are read)."""
    keep = np.ones(table.num_rows, dtype=bool)
    keep[_trusted(table, params)[0]] = False
    return keep


def digests_of_large(batch: Batch) -> dict:
    """``Reads.consume``: a digest consumer per large file the kernel hashes."""
    return digest_consumers(batch, algorithms(batch.params))


def xxh3_only(params: dict[str, Any]) -> bool:
    """``Reads.xxh3_only``: with xxh3-128 alone (the default), files are hashed while read."""
    return algorithms(params) == (DEFAULT,)


READS = Reads(rows=hashed_rows, batch_bytes=HASH_BATCH, piece_bytes=HASH_PIECE, consume=digests_of_large,
              xxh3_only=xxh3_only)


def checksum_columns(batch: Batch) -> dict[str, Any]:
    """The checksum kernel: a hex digest column per algorithm of COLUMNS (string; null where not
    selected, not a regular file or not readable), ``trusted`` (bool: the digest was reused from
    the old manifest) and ``error`` (string, the listing's or the read's reason) for the batch's
    rows. Files were loaded by the engine as ``READS`` says."""
    t = batch.table
    n = t.num_rows
    cols = {c: np.full(n, None, dtype=object) for c in COLUMNS.values()}
    digests, errors = hash_batch(batch, algorithms(batch.params))
    for c, values in digests.items():
        cols[c][:] = values
    rows, old, index = _trusted(t, batch.params)
    trusted = np.zeros(n, dtype=bool)
    trusted[rows] = True
    if index is not None:
        for c, values in index.digests.items():
            cols[c][rows] = values[old]
    out = {c: pa.array(v, pa.string()) for c, v in cols.items()}
    out.update(trusted=pa.array(trusted), error=pc.coalesce(t.column("error"), pa.array(errors, pa.string())))
    return out


# ---- text manifests in the sha256sum / b3sum format -----------------------------
