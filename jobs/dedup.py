"""Dedup: exact duplicate files, found in stages (size, hard links, prefix/suffix hash, full hash).

Reads:    a tree walk (symlinks not followed unless -L); then, on the cluster, only
          candidates: same-size files up to 64 KiB whole, the first/last 4 KiB of larger ones,
          and all bytes of those still paired.
Computes: duplicate groups with jdupes semantics by default (hard links are one file,
          empty files excluded).
Writes:   OUT/files/*.parquet (the listing), OUT/duplicates/*.parquet (group_id, size, hash,
          path, …), OUT/duplicates.txt (groups by reclaimable bytes), OUT/actions.log with --action.

    exoflow run dedup /data
    exoflow run dedup /data --action hardlink --keep oldest            # dry run: see OUT/actions.log
    exoflow run dedup /data --action hardlink --keep oldest --apply
"""
import argparse
import os
import uuid

from exoflow.ops.dedup import plots, tables
from exoflow import Argument, ChunkOptions, Finish, Job, main, outputs
from exoflow.kernels.hashing import hash_argument
from exoflow.ops.dedup.stages import run_stages
from exoflow.ops.dedup.actions import ACTIONS, KEEP, canonical_patterns
from exoflow.ops.dedup.reducer import DedupReducer
from exoflow.errors import UsageError


def after(f: Finish) -> dict:
    """Stages 2-5 where the chunk tasks ran, from the size counts the chunk phase gathered."""
    sizes = f.result.pop("candidate_sizes")
    # taken here, on the client: workers may run elsewhere, in another directory
    cwd = os.getcwd()
    params = {**f.params, "cwd": cwd, "run_id": uuid.uuid4().hex[:8], "storage": f.load.storage_options,
              "keep_patterns": canonical_patterns(f.params.get("keep_path") or [], cwd)}
    try:
        summary = run_stages(f.executor, f.dataset_dir, f.out_dir, sizes, params, f.result.pop("candidate_files", None))
    except UsageError:          # found before anything was changed: leave no result behind either
        outputs.rmtree(f.out_dir)
        raise
    summary.update(files=f.result["files"], bytes=f.result["bytes"],
                   report=os.path.join(f.out_dir, "duplicates.txt"))
    return summary


def check(params: dict) -> None:
    """Options that do nothing without --action are usage errors (before anything starts)."""
    if params.get("action"):
        return
    given = [flag for flag, on in (("--apply", params.get("apply")), ("--keep", params.get("keep")),
                                   ("--keep-path", params.get("keep_path"))) if on]
    if given:
        raise UsageError(f"{given[0]} needs --action ({'|'.join(ACTIONS)})")


def _count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {n}")
    return n


def _hash(text: str) -> str:
    names = hash_argument(text)
    if len(names) != 1:
        raise UsageError("dedup takes one --hash")
    return names[0]


job = Job(
    name="dedup",
    # no contents read: a chunk costs about 1 µs a file, so bigger chunks spend less on Dask per file
    chunk=ChunkOptions(max_files=50_000),
    plots=plots.bars,
    tables=tables.tables,
    main_table="duplicates",      # exoflow run dedup --format: the duplicate files
    description=__doc__,
    kernels=[],
    reducer=DedupReducer(),
    columns=["path", "path_bytes", "type", "size", "mtime_ns", "inode", "device", "nlink", "error"],
    arguments=[
        Argument("--hash", type=_hash, default="xxh3-128", metavar="ALG",
                 help="xxh3-128 (default), blake3, sha256, sha1 or md5"),
        Argument("--hardlinks", action="store_true",
                 help="list hard links of one file as duplicates of each other (jdupes -H)"),
        Argument("--include-empty", action="store_true", help="empty files are duplicates of each other (jdupes -z)"),
        Argument("--action", choices=ACTIONS, help="what to do with the extra copies (dry run unless --apply)"),
        Argument("--keep", choices=KEEP,
                 help="which copy of a group stays: oldest (default), newest, first (path order), shortest-path"),
        Argument("--keep-path", action="append", metavar="GLOB",
                 help="copies whose path matches GLOB are preferred as keeper and never changed (repeatable)"),
        Argument("--apply", action="store_true", help="really change files (default: dry run, logged)"),
        Argument("--top", type=_count, default=20, metavar="N", help="groups shown in the report (default: 20)"),
    ],
    after=after,
    check=check,
    changes_files=lambda params: "--action" if params.get("action") else None,
)

if __name__ == "__main__":
    main(job)
