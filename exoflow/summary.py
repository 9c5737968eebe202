"""The summary every run has (summary.json): the engine's envelope around a job's own summary.

``runner.run`` writes it, the terminal's last line (cli), report.html (report) and ``exoflow bench``
read it. The job's own summary is ``RunSummary["result"]``: its declared type lives in
``exoflow/ops/<job>/summary.py`` (``InventorySummary`` …), produced by the job's reducer
(``Reducer.finish``, then its ``after`` step) and read by its terminal report and its plots.
A leaf module: types only, nothing of exoflow imported.
"""
from __future__ import annotations

from typing import Any, TypedDict

# A path and why it failed: (path, "EACCES: Permission denied"), a list once read back from summary.json.
ErrorExample = tuple[str, str]


class ClusterInfo(TypedDict, total=False):
    """``cluster.describe``: where the run ran."""

    scheduler: str
    dashboard: str | None
    exoflow_page: str | None
    workers: int
    threads: int
    gpu_workers: int         # workers advertising the GPU resource (dask-cuda workers)


class RunSummary(TypedDict, total=False):
    """summary.json. Counts are of the listing (rows), bytes are apparent sizes (``st_size``) of
    regular files, times in seconds. ``total=False``: a summary read back from an older run may
    lack a key added since; every run of this version writes all of them."""

    job: str
    exoflow_version: str
    sources: list[str]                  # the PATHs, then the --from-list file
    out: str                            # the output directory
    dataset: str                        # OUT/<Job.dataset>: the Parquet dataset of the chunk tasks
    started: str                        # local time, ISO 8601 (%Y-%m-%dT%H:%M:%S%z)
    wall_s: float                       # the whole run, after-steps included
    files: int                          # regular files (find -type f)
    other_entries: int                  # symlinks, FIFOs, sockets, devices (find ! -type f ! -type d)
    entries: int                        # every row listed, with unreadable directories' error rows
    bytes: int
    errors: int                         # rows with an error
    dirs: int                           # directories read
    chunks: int                         # chunk tasks
    files_per_s: float | None           # None for a run of no measurable time
    bytes_per_s: float | None
    cluster: ClusterInfo
    params: dict[str, Any]              # the job's options as parsed (destination name -> value)
    result: dict[str, Any]              # the job's summary: ops/<job>/summary.py declares its type
    spilled_bytes: int                  # bytes the workers wrote to disk spilling (Dask's, compressed)
    # bytes (in memory) each tier spilled to the next: device_to_host (GPU workers), host_to_disk;
    # None for a tier the workers lack (no GPU, no memory limit)
    spilled_by_tier: dict[str, int | None]
    time_by_activity: dict[str, float]  # task seconds per activity (read, a kernel, write …)


class JobResult(TypedDict, total=False):
    """Keys any job's summary may carry that the engine reads."""

    exit_code: int           # 0/1: the command exits with it (scan --fail-on, checksum --verify)
    warnings: list[str]      # one line each, printed after the job's report
