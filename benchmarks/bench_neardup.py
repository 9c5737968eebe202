"""exoflow neardup (whole process) vs datasketch MinHashLSH and rensa (in-process), median of runs.

    python benchmarks/bench_neardup.py                      # 20,000 files, 3 runs each
    python benchmarks/bench_neardup.py --files 5000 --runs 1

All three get the same shingles (5-character n-grams of each file's text), 128 permutations
and threshold 0.8 (9 bands x 13 rows, datasketch's choice; rensa needs the permutations to be a
multiple of the bands, so it gets 9 x 13 = 117, the ones the bands use), and each pipeline
is complete: read the files, shingle, MinHash, LSH candidates, keep candidates whose signature
agreement is >= 0.8. The corpus is benchmarks/neardup_corpus.py's (stdlib text with planted
near-copies). Recall and precision are measured against the exact Jaccard of the planted
families' pairs and of every pair any tool reported (an all-pairs product of 20,000 files is
too big; a true pair no tool reports would be missed by this oracle).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from itertools import combinations

sys.path.insert(0, os.path.dirname(__file__))
from common import machine, measure  # noqa: E402
from neardup_corpus import build  # noqa: E402

PERM, THRESHOLD, SIZE = 128, 0.8, 5


def read_texts(root: str) -> dict[str, str]:
    out = {}
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            with open(p, encoding="utf-8", errors="replace") as f:
                out[p] = f.read()
    return out


def shingle_list(text: str) -> list[str]:
    return [text[i:i + SIZE] for i in range(len(text) - SIZE + 1)] or ([text] if text else [])


def run_datasketch(root: str) -> set[frozenset]:
    from datasketch import MinHash, MinHashLSH
    texts = read_texts(root)
    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=PERM)
    mh = {}
    for p, t in texts.items():
        m = MinHash(num_perm=PERM)
        m.update_batch([s.encode() for s in shingle_list(t)])
        mh[p] = m
        lsh.insert(p, m)
    return {frozenset((p, q)) for p, m in mh.items() for q in lsh.query(m)
            if q != p and m.jaccard(mh[q]) >= THRESHOLD}


def run_rensa(root: str, bands: int, rows: int) -> set[frozenset]:
    from rensa import RMinHash, RMinHashLSH
    texts = read_texts(root)
    paths = list(texts)
    lsh = RMinHashLSH(threshold=THRESHOLD, num_perm=bands * rows, num_bands=bands)
    mh = []
    for i, p in enumerate(paths):
        m = RMinHash(num_perm=bands * rows, seed=1)
        m.update(shingle_list(texts[p]))
        mh.append(m)
        lsh.insert(i, m)
    return {frozenset((paths[i], paths[j])) for i, m in enumerate(mh) for j in lsh.query(m)
            if j != i and m.jaccard(mh[j]) >= THRESHOLD}


def exoflow_pairs(out: str) -> set[frozenset]:
    import pyarrow.dataset as ds
    t = ds.dataset(os.path.join(out, "pairs"), format="parquet").to_table().to_pydict()
    return {frozenset(x) for x in zip(t["path_a"], t["path_b"])}


def jaccard(a: str, b: str) -> float:
    x, y = set(shingle_list(a)), set(shingle_list(b))
    return len(x & y) / len(x | y) if x | y else 0.0


def timed(fn, runs: int):
    walls, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        walls.append(time.perf_counter() - t0)
    return statistics.median(walls), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--json", help="write the figures here")
    a = ap.parse_args()
    from exoflow.ops.neardup.lsh import optimal_param
    bands, rows = optimal_param(THRESHOLD, PERM)
    work = tempfile.mkdtemp(prefix="bench-neardup-")
    try:
        root = os.path.join(work, "corpus")
        texts = build(root, a.files, doc_bytes=2000)
        size = sum(len(t.encode()) for t in texts.values())
        print(f"machine: {machine()}\ncorpus: {len(texts)} files, {size / 1e6:.1f} MB")
        out = os.path.join(work, "out")
        cmd = [sys.executable, "-m", "exoflow", "run", "neardup", root, "--out", out, "-q", "--no-dashboard",
               "--workers", str(a.workers), "--threshold", str(THRESHOLD), "--permutations", str(PERM)]
        ex = measure(cmd, runs=a.runs, warmup=1, prepare=lambda: shutil.rmtree(out, ignore_errors=True), memory=True)
        found = {"exoflow": exoflow_pairs(out)}
        rn_wall, found["rensa"] = timed(lambda: run_rensa(root, bands, rows), a.runs)
        ds_wall, found["datasketch"] = timed(lambda: run_datasketch(root), a.runs)
        families: dict[str, list[str]] = {}
        for p in texts:
            families.setdefault(os.path.basename(p).rsplit("-", 1)[0], []).append(p)
        candidates = {frozenset(c) for f in families.values() for c in combinations(f, 2)}
        candidates |= set().union(*found.values())
        truth = {c for c in candidates if jaccard(*(texts[p] for p in c)) >= THRESHOLD}
        rows = {}
        for name, wall in (("exoflow", ex.wall), ("rensa", rn_wall), ("datasketch", ds_wall)):
            f = found[name]
            rows[name] = {"wall_s": round(wall, 2), "pairs": len(f), "recall": round(len(f & truth) / len(truth), 4),
                          "precision": round(len(f & truth) / max(len(f), 1), 4)}
        print(f"true pairs (exact Jaccard >= {THRESHOLD}): {len(truth)}")
        for name, r in rows.items():
            ratio = r["wall_s"] / rows["exoflow"]["wall_s"]
            print(f"{name:10s} {r['wall_s']:8.2f} s  {ratio:6.2f}x exoflow's time  pairs {r['pairs']:6d}  "
                  f"recall {r['recall']:.4f}  precision {r['precision']:.4f}")
        print(f"exoflow: min {ex.wall_min:.2f} s, max {ex.wall_max:.2f} s, client {ex.client_mb:.0f} MB, "
              f"workers {ex.children_mb:.0f} MB")
        if a.json:
            with open(a.json, "w") as fh:
                json.dump({"machine": machine(), "files": len(texts), "bytes": size, "runs": a.runs, **rows}, fh,
                          indent=1)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
