"""exoflow: inventory, checksum, deduplicate, scan and profile file trees too big
for one machine, as a Dask dataflow.

What job scripts import::

    from exoflow import Job, Argument, Batch, Reads, WalkOptions, ChunkOptions, main
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from exoflow.job import Job

__version__ = "0.1.0"

import os as _os

# Arrow's query engine (group_by) warns on stderr about buffers that arrive unaligned from
# Dask's zero-copy transfers; copying them is the right answer and the warning is noise.
_os.environ.setdefault("ACERO_ALIGNMENT_HANDLING", "reallocate")

# What job scripts import, loaded on first use: the command imports this package before it starts
# the workers' fork server, and the fork server's imports should overlap Arrow's and Dask's here.
_EXPORTS = {"Batch": "batch", "Argument": "job", "Finish": "job", "Job": "job", "Kernel": "job", "Reducer": "job",
            "Reads": "batch",
            "ChunkOptions": "options", "LoadOptions": "options", "WalkOptions": "options"}


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'exoflow' has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def main(job: Job) -> None:
    """Run ``job`` from the command line: ``python jobs/NAME.py PATH... [options]``."""
    from exoflow.cli import job_main
    job_main(job)


__all__ = ["Argument", "Batch", "Finish", "ChunkOptions", "Job", "Kernel", "LoadOptions", "Reads", "Reducer", "WalkOptions", "main"]
