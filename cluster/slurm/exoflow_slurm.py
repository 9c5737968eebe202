#!/usr/bin/env python3
"""exoflow's Dask workers as SLURM batch jobs (dask-jobqueue); runs find them by a scheduler file.

The scheduler runs in this process (on a login node, or in a batch job of its own), with exoflow's
dashboard page, and writes its scheduler file on the shared file system; each SLURM job runs
``dask worker`` processes (one thread each) with the memory tiers of exoflow's dask.yaml. Ctrl-C or
SIGTERM cancels the worker jobs and stops the scheduler.

    pip install exoflow dask-jobqueue     # into an environment every compute node sees at the same path
    python cluster/slurm/exoflow_slurm.py --scheduler-file /shared/exoflow/scheduler.json \\
        --jobs 4 --cores 32 --memory 128GiB --queue batch --walltime 04:00:00 &
    exoflow run inventory /shared/data --scheduler-file /shared/exoflow/scheduler.json --out /shared/results/inv

``--dry-run`` prints the batch script a worker job would run and submits nothing.
"""
from __future__ import annotations

import argparse
import shlex
import signal
import sys
from pathlib import Path


def default_config() -> str:
    """exoflow's dask.yaml as installed (cluster/dask.yaml links to the same file)."""
    import exoflow
    return str(Path(exoflow.__file__).with_name("dask.yaml"))


def make_cluster(scheduler_file: str, *, cores: int, memory: str, processes: int | None = None,
                 queue: str | None = None, account: str | None = None, walltime: str = "01:00:00",
                 interface: str | None = None, local_directory: str | None = None, config: str | None = None):
    """A ``dask_jobqueue.SLURMCluster`` with no job submitted yet: its scheduler (started here, with the
    ``exoflow.dashboard`` preload) writes ``scheduler_file``; each job runs ``processes`` workers (default:
    one per core) of one thread and ``memory / processes`` memory limit, with ``DASK_CONFIG=config``
    (default: exoflow's dask.yaml, which the compute nodes must see at the same path)."""
    import dask
    import yaml
    from dask_jobqueue import SLURMCluster
    config = config or default_config()
    with open(config) as f:                      # the scheduler's settings (work stealing) from the same file
        dask.config.update(dask.config.config, yaml.safe_load(f), priority="new")
    scheduler_options = {"scheduler_file": scheduler_file, "preload": ["exoflow.dashboard"],
                         "dashboard_address": ":8787"}
    if interface:
        scheduler_options["interface"] = interface
    return SLURMCluster(cores=cores, processes=processes or cores, memory=memory, queue=queue, account=account,
                        walltime=walltime, interface=interface, local_directory=local_directory,
                        job_name="exoflow-worker", scheduler_options=scheduler_options,
                        job_script_prologue=[f"export DASK_CONFIG={shlex.quote(config)}"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scheduler-file", required=True, help="on a file system the clients and compute nodes share")
    p.add_argument("--jobs", type=int, default=1, help="worker jobs to submit (default 1)")
    p.add_argument("--cores", type=int, required=True, help="cores per job")
    p.add_argument("--processes", type=int, help="worker processes per job (default: one per core)")
    p.add_argument("--memory", required=True, help="memory per job (128GiB): each worker gets its share")
    p.add_argument("--queue", help="SLURM partition")
    p.add_argument("--account", help="SLURM account")
    p.add_argument("--walltime", default="01:00:00", help="per job (default 01:00:00)")
    p.add_argument("--interface", help="network interface of scheduler and workers (ib0)")
    p.add_argument("--local-directory", help="workers' spill directory, on node-local disk ($TMPDIR)")
    p.add_argument("--config", help="DASK_CONFIG for the workers (default: exoflow's dask.yaml)")
    p.add_argument("--dry-run", action="store_true", help="print a worker job's batch script, submit nothing")
    a = p.parse_args(argv)
    cluster = make_cluster(a.scheduler_file, cores=a.cores, processes=a.processes, memory=a.memory, queue=a.queue,
                           account=a.account, walltime=a.walltime, interface=a.interface,
                           local_directory=a.local_directory, config=a.config)
    try:
        if a.dry_run:
            print(cluster.job_script())
            return 0
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))     # close() below cancels the jobs
        cluster.scale(jobs=a.jobs)
        print(f"scheduler {cluster.scheduler_address}, dashboard {cluster.dashboard_link}; {a.jobs} job(s) "
              f"submitted; use: exoflow run JOB PATH --scheduler-file {a.scheduler_file}", flush=True)
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        cluster.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
