"""Options that shape a listing: what is walked, what is kept, how it is chunked."""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field


def count_at_least(minimum: int):
    """An argparse type for job and engine options: a whole number of at least ``minimum``."""
    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
        if n < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {n}")
        return n
    return parse


@dataclass(frozen=True)
class WalkOptions:
    """How a tree is walked and which entries are kept.

    Every field has a command-line flag of the same name (``--max-depth`` …);
    a job may change the defaults (the scan job honours ``.gitignore``, the
    inventory job does not).
    """

    include: tuple[str, ...] = ()      # gitignore-style globs; a file must match one
    exclude: tuple[str, ...] = ()      # gitignore-style globs; matching files and dirs are skipped
    gitignore: bool = False            # honour .gitignore and .ignore files, and git's exclude files
    git_excludes: tuple[str, ...] = ()  # the user's core.excludesFile lines (sources/gitignore.py reads them)
    hidden: bool = True                # keep entries whose name starts with "."
    follow_symlinks: bool = False      # descend into symlinked dirs; loops detected by (dev, inode)
    one_file_system: bool = False      # do not cross into other mounted file systems
    max_depth: int | None = None       # 1 = only the entries directly under a root
    min_size: int | None = None        # bytes; applies to regular files
    max_size: int | None = None


@dataclass(frozen=True)
class ChunkOptions:
    """Bounds of one chunk (one Dask task): whichever is reached first."""

    max_files: int = 20_000
    max_bytes: int = 256 * 2**20
    # Content reading: sort by (device, inode) and bound the bytes per chunk. None = whether the
    # job reads contents (Job.reads).
    read_order: bool | None = None


@dataclass(frozen=True)
class LoadOptions:
    """How file contents are read into a batch."""

    piece_bytes: int = 16 * 2**20      # files larger than this are streamed in pieces of this size


@dataclass(frozen=True)
class ClusterOptions:
    scheduler: str | None = None        # tcp:// or tls:// address; None = embedded LocalCluster
    workers: int | None = None          # embedded cluster: worker processes (default: CPU cores)
    threads_per_worker: int | None = None   # embedded cluster: None = 1 (GPU runs: cores / workers)
    memory_limit: str = "auto"          # per worker, e.g. "4GiB"
    dashboard: str = "127.0.0.1:8787"   # embedded cluster: where the dashboard listens ("" = off)
    resources: dict | None = None       # embedded cluster: what each worker advertises, e.g. {"GPU": 1}
    extra: dict = field(default_factory=dict)
