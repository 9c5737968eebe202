"""exoflow: inventory, checksum, deduplicate, scan and profile file trees too big
for one machine, as a Dask dataflow.

What job scripts import::

    from exoflow import Job, Argument, Batch, WalkOptions, ChunkOptions, main
"""
__version__ = "0.1.0"

import os as _os

# Arrow's query engine (group_by) warns on stderr about buffers that arrive unaligned from
# Dask's zero-copy transfers; copying them is the right answer and the warning is noise.
_os.environ.setdefault("ACERO_ALIGNMENT_HANDLING", "reallocate")

from .batch import Batch  # noqa: E402
from .job import Argument, Finish, Job, Kernel, Reducer  # noqa: E402
from .options import ChunkOptions, LoadOptions, WalkOptions  # noqa: E402


def main(job: Job) -> None:
    """Run ``job`` from the command line: ``python jobs/NAME.py PATH... [options]``."""
    from .cli import job_main
    job_main(job)


__all__ = ["Argument", "Batch", "Finish", "ChunkOptions", "Job", "Kernel", "LoadOptions", "Reducer", "WalkOptions", "main"]
