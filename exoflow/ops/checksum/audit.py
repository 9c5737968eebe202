"""Audit a tree against an earlier checksum manifest, on the run's executor (hashdeep's audit mode).

Each regular file ends up with one status:

* unchanged  same path, same size and digests
* modified   same path, different content
* added      new path whose content is not a removed file's
* removed    old path whose content is not at an added path
* moved      content of a removed path found at an added path (renamed/moved)
* unreadable same path, but the file could not be read now

Both manifests may be larger than memory: the path join and the move matching
are Dask dataframe merges/shuffles, and the client only reads counts and a
few examples back.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from exoflow.executors import Executor

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from exoflow import outputs
from exoflow.ops.checksum.manifests import has_values
from exoflow.kernels.hashing import COLUMNS
from exoflow.paths import exact_paths

STATUSES = ["unchanged", "modified", "added", "removed", "moved", "unreadable"]
AUDIT_SCHEMA = pa.schema([("status", pa.string()), ("path", pa.string()), ("old_path", pa.string()),
                          ("size", pa.int64()), ("old_size", pa.int64()), ("digest", pa.string()),
                          ("old_digest", pa.string()), ("trusted", pa.bool_())])


def _prepare(df: pd.DataFrame, digest_cols: list[str]) -> pd.DataFrame:
    """Regular files only, with an exact-path ``key`` (the name's bytes) and a ``content`` key
    (size + digests)."""
    df = df[df["type"] == "file"]
    raw = df["path_bytes"].tolist() if "path_bytes" in df else None
    key = pd.Series([os.fsencode(p) for p in exact_paths(df["path"].tolist(), raw)], index=df.index, dtype=object)
    digest = df[digest_cols[0]].astype(object)
    for c in digest_cols[1:]:
        digest = digest + ":" + df[c].astype(object)
    content = df["size"].astype("Int64").astype(str).astype(object) + "/" + digest
    out = pd.DataFrame({"key": key.astype(object), "path": df["path"].astype(object),
                        "size": df["size"].astype("Int64"), "digest": digest, "content": content.where(digest.notna()),
                        "present": True}, index=df.index)
    if "trusted" in df:
        out["trusted"] = df["trusted"].astype("boolean")
    return out


def _classify(df: pd.DataFrame) -> pd.DataFrame:
    new, old = df["present"].eq(True), df["present_old"].eq(True)
    status = np.select([new & old & df["content"].isna(), new & old & (df["content"] == df["content_old"]).fillna(False),
                        new & old, new], ["unreadable", "unchanged", "modified", "added"], "removed")
    return pd.DataFrame({
        "status": status.astype(object),
        "path": df["path"].where(new, None).astype(object),
        "old_path": df["path_old"].where(old, None).astype(object),
        "size": df["size"].astype("Int64"), "old_size": df["size_old"].astype("Int64"),
        "digest": df["digest"].astype(object), "old_digest": df["digest_old"].astype(object),
        "trusted": df["trusted"].astype("boolean") if "trusted" in df else pd.array([pd.NA] * len(df), "boolean"),
        "content": df["content"].where(new, df["content_old"]).astype(object),
    }, index=df.index)


def _pair_moves(df: pd.DataFrame) -> pd.DataFrame:
    """Within one content value, pair removed paths with added paths (in path order): moved."""
    if df.empty:
        return df.drop(columns="content")
    rows = []
    for _, g in df.groupby("content", sort=False):
        added = g[g["status"] == "added"].sort_values("path")
        removed = g[g["status"] == "removed"].sort_values("old_path")
        k = min(len(added), len(removed))
        if k:
            moved = added.iloc[:k].copy()
            moved["status"] = "moved"
            moved["old_path"] = removed["old_path"].to_numpy()[:k]
            moved["old_size"] = removed["old_size"].to_numpy()[:k]
            moved["old_digest"] = removed["old_digest"].to_numpy()[:k]
            rows += [moved, added.iloc[k:], removed.iloc[k:]]
        else:
            rows.append(g)
    return pd.concat(rows).drop(columns="content")


def run_audit(ex: Executor, dataset_dir: str, old_files: list[str], names: tuple[str, ...], out_dir: str,
              examples: int = 20) -> dict[str, Any]:
    """Compare the manifest just written with the old one; write OUT/audit/ and return counts."""
    import dask.dataframe as dd

    old_cols = set(ds.dataset(old_files, format="parquet").schema.names)
    # compare only digests the old manifest really holds (its schema has a column for every algorithm)
    digest_cols = [COLUMNS[a] for a in names if COLUMNS[a] in old_cols and has_values(old_files, COLUMNS[a])]
    base = ["path", "path_bytes", "type", "size"]
    new = dd.read_parquet(dataset_dir, columns=base + digest_cols + ["trusted"],
                          storage_options=outputs.fsspec_options(dataset_dir))
    old = dd.read_parquet(old_files, columns=[c for c in base if c in old_cols] + digest_cols)
    meta_in = _prepare(pd.DataFrame({"path": pd.Series([], dtype=object), "path_bytes": pd.Series([], dtype=object),
                                     "type": pd.Series([], dtype=object), "size": pd.Series([], dtype="Int64"),
                                     **{c: pd.Series([], dtype=object) for c in digest_cols},
                                     "trusted": pd.Series([], dtype="boolean")}), digest_cols)
    new = new.map_partitions(_prepare, digest_cols, meta=meta_in)
    old = old.map_partitions(_prepare, digest_cols, meta=meta_in.drop(columns="trusted"))
    joined = new.merge(old, on="key", how="outer", suffixes=("", "_old"))
    classified = joined.map_partitions(_classify, meta=_classify(joined._meta))
    # Only added/removed rows with a readable digest can be moves: match them by content.
    maybe = classified["status"].isin(["added", "removed"]) & classified["content"].notnull()
    settled = classified[~maybe].drop(columns="content")
    paired = classified[maybe].shuffle(on="content").map_partitions(_pair_moves, meta=settled._meta)
    result = dd.concat([settled, paired])
    audit_dir = os.path.join(out_dir, "audit")
    ex.compute(result.to_parquet(audit_dir, write_index=False, schema=AUDIT_SCHEMA, compute=False,
                                 storage_options=outputs.fsspec_options(audit_dir)))
    return summarise(audit_dir, examples)


def summarise(audit_dir: str, examples: int) -> dict[str, Any]:
    """Counts per status and the first ``examples`` paths of each non-unchanged status, streamed."""
    counts = dict.fromkeys(STATUSES, 0)
    shown: dict[str, list] = {s: [] for s in STATUSES if s != "unchanged"}
    trusted = 0
    for batch in outputs.dataset(audit_dir).to_batches(columns=["status", "path", "old_path", "trusted"]):
        vc = pc.value_counts(batch.column(0))
        for v, c in zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist()):
            counts[v] += c
        trusted += int(pc.sum(pc.fill_null(batch.column(3), False)).as_py() or 0)
        if any(len(v) < examples for v in shown.values()):
            t = pa.Table.from_batches([batch]).filter(pc.not_equal(batch.column(0), "unchanged"))
            for s, p, o in zip(*(t.column(i).to_pylist() for i in range(3))):
                if len(shown[s]) < examples:
                    shown[s].append([p or "", o or ""])
    for v in shown.values():
        v.sort()
    differ = sum(c for s, c in counts.items() if s != "unchanged")
    return {"counts": counts, "examples": shown, "trusted": trusted, "differences": differ, "dataset": audit_dir}
