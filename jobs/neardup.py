"""Neardup: near-duplicate text files by MinHash and LSH, grouped into clusters.

Reads:    file contents (text files; binary files, with a NUL byte, are skipped as scan skips
          them; UTF-16 files by BOM are decoded); files larger than a piece are streamed.
Computes: a MinHash signature per file over its shingles (5-character n-grams by default,
          --words for word n-grams), LSH buckets (bands x rows chosen for --threshold as
          datasketch chooses them), candidate pairs grouped by bucket on the cluster, each
          verified by signature agreement (--verify-exact: exact Jaccard of the shingle
          sets), clusters as connected components of the verified pairs.
Writes:   OUT/signatures/*.parquet (per file: size, shingles, signature or why skipped),
          OUT/clusters/*.parquet (cluster_id, path, size, similarity to the cluster's
          representative, representative), OUT/pairs/*.parquet (the verified pairs).
          Reporting only: no file is changed.

    exoflow run neardup ~/src --threshold 0.8
    exoflow run neardup docs/ --words --shingle 3 --verify-exact
"""
import argparse

from exoflow import Argument, Finish, Job, Reads, main
from exoflow.backends import BACKENDS
from exoflow.ops.neardup import plots
from exoflow.ops.neardup.kernel import large_signatures, neardup_rows
from exoflow.ops.neardup.lsh import optimal_param
from exoflow.ops.neardup.reducer import NeardupReducer
from exoflow.ops.neardup.stages import run_stages
from exoflow.options import count_at_least

MAX_PERMUTATIONS = 4096


def _threshold(text: str) -> float:
    try:
        t = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
    if not 0 < t < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {text}")
    return t


def _permutations(text: str) -> int:
    n = count_at_least(2)(text)
    if n > MAX_PERMUTATIONS:
        raise argparse.ArgumentTypeError(f"at most {MAX_PERMUTATIONS}, got {n}")
    return n


def after(f: Finish) -> dict:
    """Bands x rows for the threshold, then the shuffle, verification and clusters on the cluster."""
    p = f.params
    bands, rows = optimal_param(p["threshold"], p["permutations"])
    summary = run_stages(f.executor, f.dataset_dir, f.out_dir, {**p, "storage": f.load.storage_options},
                         f.result["text_files"], bands, rows)
    return {**f.result, **summary, "bands": bands, "rows": rows, "permutations": p["permutations"],
            "shingle": p["shingle"], "threshold": p["threshold"], "verify_exact": bool(p.get("verify_exact"))}


job = Job(
    name="neardup",
    description=__doc__,
    kernels=[],
    reducer=NeardupReducer(),
    reads=Reads(consume=large_signatures),
    dataset="signatures",
    emit=neardup_rows,
    after=after,
    plots=plots.bars,
    arguments=[
        Argument("--shingle", type=count_at_least(1), default=5, metavar="N",
                 help="characters (or words, with --words) per shingle (default: 5)"),
        Argument("--words", action="store_true", help="shingles of words (runs of non-whitespace), not characters"),
        Argument("--permutations", type=_permutations, default=128, metavar="K",
                 help="MinHash values per signature (default: 128)"),
        Argument("--threshold", type=_threshold, default=0.8, metavar="J",
                 help="Jaccard similarity at which two files are near-duplicates (default: 0.8)"),
        Argument("--verify-exact", action="store_true",
                 help="verify candidate pairs by the exact Jaccard of their shingle sets (reads them again)"),
        Argument("--top", type=count_at_least(0), default=20, metavar="N",
                 help="largest clusters shown and kept in summary.json (default: 20)"),
        Argument("--backend", choices=BACKENDS, default="cpu",
                 help="cpu: C/NumPy; gpu: CuPy on GPU workers; auto: CuPy where a GPU is present"),
    ],
)

if __name__ == "__main__":
    main(job)
