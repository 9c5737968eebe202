"""neardup's stages after the signatures are written, on the cluster.

1. shuffle   map tasks (a signature part each, or a slice of one where the part would make more
             than MAP_BYTES of output) cut their rows' (bucket key, file id, signature) per LSH
             band into P pieces by key (each piece gathered into a result of its own); reduce
             task j joins piece j of every map (plain futures, as dedup's shuffle: pieces stay
             on the workers and spill like any result), so one partition holds every file of
             its buckets. Few, large tasks: each Dask task costs a few ms of CPU (client,
             scheduler, worker), and a run has maps x P pieces.
2. pairs     each reduce task pairs the files sharing a bucket and scores each pair by the
             share of equal signature values (the MinHash estimate of their Jaccard); only
             these pairs (two ids and a score) come back to the client.
3. verify    pairs at or above --threshold are kept; with --verify-exact, tasks read both
             files again and compute the exact Jaccard of their shingle sets instead.
4. clusters  connected components of the kept pairs (client: the pairs are few); each
             cluster's representative is its file with the most kept pairs (then the
             smallest path); the members' rows (path, size, signature) are fetched from the
             parts that hold them, and their similarity to the representative computed.

A file id is (part number << 32 | row in the part), the parts in name order.
"""
from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    from exoflow.executors import Executor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from exoflow.batch import stream
from exoflow.ops.neardup.kernel import shingle_set, shingling, signature_matrix
from exoflow.ops.neardup.lsh import band_keys, bucket_pairs, components, unique_pairs
from exoflow.ops.neardup.minhash import Shingling
from exoflow import outputs
from exoflow.sinks import write_part

MAP_BYTES = 32 * 2**20            # shuffled bytes a map task makes, at most about
PIECE_BYTES = 32 * 2**20          # shuffled bytes a reduce task holds, about
EXACT_PAIRS = 2_000               # pairs per exact-Jaccard task
READ_PIECE = 16 * 2**20
HISTOGRAM_BINS = 20               # similarity to the representative, 0.05 wide
CLUSTER_SCHEMA = pa.schema([("cluster_id", pa.int64()), ("path", pa.string()), ("path_bytes", pa.binary()),
                            ("size", pa.int64()), ("similarity", pa.float64()), ("representative", pa.bool_())])
PAIR_SCHEMA = pa.schema([("path_a", pa.string()), ("path_b", pa.string()), ("similarity", pa.float64())])


# ---- tasks (run on workers) ----------------------------------------------------------------

def band_rows(path: str, part: int, start: int, stop: int, bands: int, rows: int, permutations: int,
              nparts: int) -> tuple[list[tuple[np.ndarray, np.ndarray, np.ndarray]], np.ndarray]:
    """Map side: the files with a signature among rows [start, stop) of a part: their signatures
    (uint32, files x permutations) and, per piece (``nparts`` of them, by bucket key), the
    (bucket key, file id, row in the signatures) of each of their bands."""
    col = outputs.read_table(path, columns=["signature"]).column("signature").slice(start, stop - start)
    valid = np.flatnonzero(pc.is_valid(col).to_numpy(zero_copy_only=False)) + start
    sig = signature_matrix(col, permutations)[valid - start]
    keys = band_keys(sig, bands, rows).ravel()                     # file-major: file i, band j at i*bands+j
    ids = np.repeat((np.int64(part) << 32) | valid.astype(np.int64), bands)
    which = np.repeat(np.arange(len(valid)), bands)
    dest = ((keys >> np.uint64(32)) % np.uint64(nparts)).astype(np.int64)
    order = np.argsort(dest, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(dest, minlength=nparts))]).tolist()
    return [(keys[order[a:b]], ids[order[a:b]], which[order[a:b]]) for a, b in zip(bounds[:-1], bounds[1:])], sig


def piece(mapped: tuple[list[tuple[np.ndarray, ...]], np.ndarray], j: int) -> tuple[np.ndarray, ...]:
    """Piece j of a map's output as (bucket key, file id, signature) per band, the signatures
    gathered here: a result of its own that Dask can spill (a reference into the map's output
    would keep that in memory after Dask spilled it)."""
    pieces, sig = mapped
    keys, ids, which = pieces[j]
    return keys.copy(), ids.copy(), sig[which]


def bucket_candidates(pieces: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, ...]:
    """Reduce side: piece j of every map -> (id_a, id_b, share of equal signature values) of
    each pair of files sharing a bucket, id_a < id_b, each pair once."""
    keys = np.concatenate([p[0] for p in pieces])
    ids = np.concatenate([p[1] for p in pieces])
    i, j = bucket_pairs(keys)
    a, b, i, j = unique_pairs(ids[i], ids[j], i, j)
    sig = _take_rows([p[2] for p in pieces], np.concatenate([i, j]))     # the pairs' rows only
    k = sig.shape[1]
    return a, b, np.count_nonzero(sig[: len(i)] == sig[len(i):], axis=1) / k if len(i) else np.zeros(0)


def _take_rows(blocks: list[np.ndarray], index: np.ndarray) -> np.ndarray:
    """Rows ``index`` (int64) of the 2-D ``blocks`` stacked, without stacking them (a reduce
    task's pieces hold every file's signature once per band; its pairs need a few)."""
    starts = np.cumsum([0] + [len(b) for b in blocks])
    block = np.searchsorted(starts, index, side="right") - 1
    out = np.empty((len(index), blocks[0].shape[1]), blocks[0].dtype)
    for w in np.unique(block).tolist():
        at = np.flatnonzero(block == w)
        out[at] = blocks[w][index[at] - starts[w]]
    return out


def fetch_rows(path: str, rows: np.ndarray, permutations: int) -> dict[str, Any]:
    """Rows ``rows`` of a signature part: path, exact name, size, signature."""
    t = outputs.read_table(path, columns=["path", "path_bytes", "size", "signature"]).take(pa.array(rows))
    return {"path": t.column("path").to_pylist(), "path_bytes": t.column("path_bytes").to_pylist(),
            "size": t.column("size").to_numpy(), "signature": signature_matrix(t.column("signature"), permutations)}


def _read(name: str, storage: str) -> Iterator[bytes]:
    """The file's bytes in pieces, through the engine's reader (which notices a file that changes
    while it is read; ``storage``: the options of an object's store); each piece is a copy (the
    reader's buffer is reused)."""
    return (bytes(piece) for piece in stream(name, READ_PIECE, storage))


def exact_jaccard(names_a: list[str], names_b: list[str], sh: Shingling, storage: str = "") -> np.ndarray:
    """Exact Jaccard of the shingle sets (as 64-bit hashes) of each pair of files; NaN where a
    file can no longer be read."""
    sets: dict[str, np.ndarray | None] = {}
    for name in dict.fromkeys(names_a + names_b):
        try:
            sets[name] = shingle_set(_read(name, storage), sh)
        except OSError:
            sets[name] = None
    out = np.full(len(names_a), np.nan)
    for k, (x, y) in enumerate(zip(names_a, names_b)):
        sx, sy = sets[x], sets[y]
        if sx is not None and sy is not None and (len(sx) or len(sy)):
            common = len(np.intersect1d(sx, sy, assume_unique=True))
            out[k] = common / (len(sx) + len(sy) - common)
    return out


# ---- the client's steps -----------------------------------------------------------------------

def _exact_name(path: str, raw: bytes | None) -> str:
    return os.fsdecode(raw) if raw is not None else path


def _fetch(ex: Executor, parts: list[str], ids: np.ndarray, permutations: int) -> dict[str, Any]:
    """The rows of the files ``ids`` (sorted, unique), from the parts that hold them, in id order."""
    part, row = ids >> 32, ids & 0xFFFFFFFF
    cuts = np.flatnonzero(np.diff(part, prepend=-1)).tolist() + [len(ids)]
    futures = [ex.submit(fetch_rows, parts[int(part[a])], row[a:b], permutations)
               for a, b in zip(cuts[:-1], cuts[1:])]
    got = ex.gather(futures)
    return {"path": [p for g in got for p in g["path"]], "path_bytes": [p for g in got for p in g["path_bytes"]],
            "size": np.concatenate([g["size"] for g in got]) if got else np.zeros(0, np.int64),
            "signature": np.concatenate([g["signature"] for g in got]) if got else np.zeros((0, permutations),
                                                                                             np.uint32)}


def _exact(ex: Executor, names: list[str], a: np.ndarray, b: np.ndarray, sh: Shingling,
           storage: str) -> np.ndarray:
    """Exact Jaccard of the pairs (a[i], b[i]) of indices into ``names``, in tasks of EXACT_PAIRS."""
    futures = [ex.submit(exact_jaccard, [names[i] for i in a[k:k + EXACT_PAIRS].tolist()],
                             [names[i] for i in b[k:k + EXACT_PAIRS].tolist()], sh, storage)
               for k in range(0, len(a), EXACT_PAIRS)]
    return np.concatenate(ex.gather(futures)) if futures else np.zeros(0)


def _shuffle(ex: Executor, parts: list[str], text_files: int, bands: int, rows: int,
             permutations: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stages 1-2: candidate pairs (id_a, id_b, signature agreement), each once."""
    threads = max(1, sum(ex.nthreads().values()))
    per_file = bands * (16 + 4 * permutations)
    nparts = max(2 * threads, math.ceil(text_files * per_file / PIECE_BYTES))
    step = max(1, MAP_BYTES // per_file)                 # rows of a part per map task
    maps = [ex.submit(band_rows, path, p, start, start + step, bands, rows, permutations, nparts)
            for p, path in enumerate(parts) for start in range(0, outputs.parquet_file(path).metadata.num_rows, step)]
    reduces = [ex.submit(bucket_candidates, [ex.submit(piece, m, j) for m in maps])
               for j in range(nparts)]
    del maps
    found = ex.gather(reduces)
    a, b, sim = (np.concatenate([f[k] for f in found]) for k in range(3))
    return a, b, sim                  # a bucket is in one partition, but a pair may share several


def _clusters(nodes: np.ndarray, labels: np.ndarray, degree: np.ndarray,
              paths: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(cluster id per node: 1 = most files, ties by representative path; representative node
    per node: most kept pairs, then smallest path)."""
    if not len(nodes):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    path_rank = np.empty(len(paths), np.int64)
    path_rank[np.argsort(np.array(paths, dtype=object), kind="stable")] = np.arange(len(paths))
    order = np.lexsort((path_rank, -degree, labels))              # per label: representative first
    first = np.concatenate([[True], labels[order][1:] != labels[order][:-1]])
    rep_of_label = np.zeros(len(nodes), np.int64)
    rep_of_label[labels[order][first]] = order[first]
    rep = rep_of_label[labels]
    size = np.bincount(labels, minlength=len(nodes))
    roots = labels[order][first]
    rank = np.lexsort((path_rank[rep_of_label[roots]], -size[roots]))
    cid_of_label = np.zeros(len(nodes), np.int64)
    cid_of_label[roots[rank]] = np.arange(1, len(roots) + 1)
    return cid_of_label[labels], rep


def run_stages(ex: Executor, dataset_dir: str, out_dir: str, params: dict[str, Any], text_files: int,
               bands: int, rows: int) -> dict[str, Any]:
    """Stages 1-4 and the outputs (OUT/clusters, OUT/pairs); returns the summary's part."""
    sh = shingling(params)
    threshold = float(params["threshold"])
    parts = outputs.parts(dataset_dir)
    a, b, sim = _shuffle(ex, parts, text_files, bands, rows, sh.permutations) if text_files else \
        (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    a, b, sim = unique_pairs(a, b, sim)
    summary: dict[str, Any] = {"candidate_pairs": int(len(a))}
    if params.get("verify_exact") and len(a):
        ids = np.unique(np.concatenate([a, b]))
        got = _fetch(ex, parts, ids, sh.permutations)
        names = [_exact_name(p, r) for p, r in zip(got["path"], got["path_bytes"])]
        sim = _exact(ex, names, np.searchsorted(ids, a), np.searchsorted(ids, b), sh, params.get("storage") or "")
    keep = sim >= threshold
    a, b, sim = a[keep], b[keep], sim[keep]
    nodes, labels = components(a, b)
    got = _fetch(ex, parts, nodes, sh.permutations)
    ea, eb = np.searchsorted(nodes, a), np.searchsorted(nodes, b)
    degree = np.bincount(np.concatenate([ea, eb]), minlength=len(nodes))
    cluster, rep = _clusters(nodes, labels, degree, got["path"])
    if params.get("verify_exact"):
        names = [_exact_name(p, r) for p, r in zip(got["path"], got["path_bytes"])]
        similarity = _exact(ex, names, rep, np.arange(len(nodes)), sh, params.get("storage") or "")
    else:
        similarity = (got["signature"] == got["signature"][rep]).mean(axis=1) if len(nodes) else np.zeros(0)
    similarity[rep == np.arange(len(nodes))] = 1.0
    _write(out_dir, got, cluster, similarity, rep, ea, eb, sim)
    summary.update(_summary(got, cluster, similarity, rep, int(params.get("top") or 20)),
                   verified_pairs=int(len(a)), clusters_dir=os.path.join(out_dir, "clusters"))
    return summary


def _write(out_dir: str, got: dict[str, Any], cluster: np.ndarray, similarity: np.ndarray, rep: np.ndarray,
           ea: np.ndarray, eb: np.ndarray, sim: np.ndarray) -> None:
    """OUT/clusters (a row per file in a cluster, by cluster then path) and OUT/pairs (the kept pairs)."""
    paths = np.array(got["path"], dtype=object)
    order = np.lexsort((paths, cluster)) if len(paths) else np.zeros(0, np.int64)
    table = pa.table({"cluster_id": cluster, "path": paths.tolist(), "path_bytes": got["path_bytes"],
                      "size": got["size"], "similarity": similarity, "representative": rep == np.arange(len(rep))},
                     schema=CLUSTER_SCHEMA).take(pa.array(order, pa.int64()))
    write_part(table, os.path.join(out_dir, "clusters"), "part-000000.parquet")
    pairs = pa.table({"path_a": paths[ea].tolist(), "path_b": paths[eb].tolist(), "similarity": sim},
                     schema=PAIR_SCHEMA)
    write_part(pairs, os.path.join(out_dir, "pairs"), "part-000000.parquet")


def _summary(got: dict[str, Any], cluster: np.ndarray, similarity: np.ndarray, rep: np.ndarray,
             top: int) -> dict[str, Any]:
    """Cluster counts, the similarity histogram (files other than representatives) and the largest clusters."""
    n = int(cluster.max()) if len(cluster) else 0
    files = np.bincount(cluster, minlength=n + 1)[1:]
    nbytes = np.bincount(cluster, weights=got["size"], minlength=n + 1)[1:]
    low = np.full(n + 1, np.inf)
    np.minimum.at(low, cluster, similarity)
    reps = np.flatnonzero(rep == np.arange(len(rep)))
    rep_path = dict(zip(cluster[reps].tolist(), [got["path"][i] for i in reps.tolist()]))
    others = similarity[rep != np.arange(len(rep))]
    counts, edges = np.histogram(others, bins=HISTOGRAM_BINS, range=(0.0, 1.0))
    return {"clusters": n, "files_in_clusters": int(len(cluster)),
            "similarity_histogram": [{"from": round(float(lo), 2), "to": round(float(hi), 2), "files": int(c)}
                                     for lo, hi, c in zip(edges[:-1], edges[1:], counts)],
            "largest": [{"cluster_id": c, "files": int(files[c - 1]), "bytes": int(nbytes[c - 1]),
                         "min_similarity": float(low[c]), "representative": rep_path[c]}
                        for c in range(1, min(n, top) + 1)]}
