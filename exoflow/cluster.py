"""The Dask cluster a run uses: an embedded LocalCluster, or an existing scheduler."""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import warnings
from typing import TYPE_CHECKING, Iterator

import dask

from .options import ClusterOptions
from .sinks import UsageError

if TYPE_CHECKING:
    from distributed import Client

# Settings that keep big jobs alive (spill to local disk, compressed, before a worker is paused
# or killed) and the work spread (stealing); cluster/dask.yaml holds the same for real clusters.
WORKER_CONFIG = {
    "distributed.worker.memory.spill-compression": "auto",
    "distributed.worker.memory.target": 0.6,
    "distributed.worker.memory.spill": 0.7,
    "distributed.worker.memory.pause": 0.85,
    "distributed.worker.memory.terminate": 0.95,
    "distributed.scheduler.work-stealing": True,
    # Dask's default (1 s) is most of a short run: a worker idled while chunk tasks queued on the
    # other (they go where their listing part is); codestats on a Python lib ran 0.1-0.3 s faster
    "distributed.scheduler.work-stealing-interval": "100ms",
}


# GPU runs on the embedded cluster: every worker process opens its own CUDA context (start-up
# time, GPU memory), so a few processes with several threads each. Each advertises GPU=1: one
# chunk task at a time per process, the other threads list. On one H100 with 16 cores,
# 2 processes x 8 threads ran the profile job fastest (docs/gpu.md).
GPU_WORKERS = 2


def worker_shape(opts: ClusterOptions) -> tuple[int, int]:
    """(worker processes, threads each) of the embedded cluster."""
    cores = os.cpu_count() or 1
    if opts.resources and "GPU" in opts.resources:
        workers = opts.workers or min(GPU_WORKERS, cores)
        return workers, opts.threads_per_worker or max(1, cores // workers)
    return opts.workers or cores, opts.threads_per_worker or 1


@contextlib.contextmanager
def connect(opts: ClusterOptions) -> Iterator[Client]:
    """Yield a Client; the embedded cluster lives exactly as long as the block."""
    from distributed import Client, LocalCluster

    with dask.config.set(WORKER_CONFIG):
        if opts.scheduler:
            if not opts.scheduler.startswith(("tcp://", "tls://", "ucx://", "inproc://")):
                raise UsageError(f"--scheduler {opts.scheduler}: expected an address like tcp://HOST:8786")
            try:
                client = Client(opts.scheduler, timeout="10s")
            except (OSError, TimeoutError) as e:
                raise UsageError(f"cannot reach scheduler {opts.scheduler}: {e}") from None
            with client:
                yield client
            return
        workers, threads = worker_shape(opts)
        # fork: workers start in ~0.3 s instead of re-importing everything (spawn)
        method = "fork" if sys.platform == "linux" else "spawn"
        # Worker processes ignore Ctrl-C (SIGINT goes to the whole process group): the client
        # catches it, cancels the tasks and shuts the cluster down in order.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        with dask.config.set({"distributed.worker.multiprocessing-method": method}), warnings.catch_warnings():
            # a taken port is not a problem: another one is used and its URL printed
            warnings.filterwarnings("ignore", message=".*already in use")
            try:
                cluster = LocalCluster(
                    n_workers=workers,
                    threads_per_worker=threads,
                    memory_limit=opts.memory_limit,
                    resources=opts.resources,
                    processes=True,
                    dashboard_address=opts.dashboard or None,
                    host="127.0.0.1",
                    silence_logs=logging.CRITICAL,  # task errors reach the client, which reports them in one line
                    # the exoflow page and /metrics; Dask's dashboard is attached once the run is going
                    scheduler_kwargs={"preload": ["exoflow.dashboard"], "dashboard": False},
                )
            except (ValueError, RuntimeError, OSError) as e:   # bad --memory-limit, address in use …
                cause = e.__cause__ or e
                raise UsageError(f"cannot start the local cluster: {cause}") from None
            finally:
                signal.signal(signal.SIGINT, previous)
        if opts.dashboard != "":
            from .dashboard import attach_later
            attach_later(cluster.scheduler)
        with cluster, Client(cluster) as client:
            try:
                yield client
            except BaseException:
                # interrupted or failed: the in-process scheduler may complain about comms the
                # teardown closes under it; the user gets exoflow's one line instead
                logging.getLogger("distributed").setLevel(logging.CRITICAL + 1)
                raise


def describe(client: Client) -> dict:
    """Scheduler address, dashboard (and exoflow's page on it), workers and threads, for summaries."""
    from .dashboard import page_url, serves

    info = client.scheduler_info(n_workers=-1)
    workers = info.get("workers", {})
    # the scheduler's HTTP server runs even without a dashboard (for /metrics): ask for the page itself
    try:
        served = client.run_on_scheduler(serves, "/status")
    except Exception:
        served = False
    dashboard = client.dashboard_link if served else None
    return {
        "scheduler": client.scheduler.address,
        "dashboard": dashboard,
        "exoflow_page": page_url(client) if dashboard else None,
        "workers": len(workers),
        "threads": sum(w.get("nthreads", 0) for w in workers.values()),
    }


