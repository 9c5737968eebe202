"""GPU workers: dask-cuda workers, one per GPU, with their memory tiers. The one place for their
settings: the embedded cluster (``--backend gpu``) passes them to ``LocalCUDACluster``,
``exoflow cluster start --backend gpu`` to ``dask cuda worker``, ``exoflow bench``'s gpu mode
goes through the embedded cluster, and the recipes in cluster/ carry the same flags
(tests/test_tiers.py checks the Kubernetes one).

Memory tiers of a GPU worker: task results live in GPU memory up to DEVICE_MEMORY_LIMIT of the
GPU, then move to host memory (dask-cuda's device -> host spilling), which spills to disk at the
worker's host memory limit (exoflow/dask.yaml's fractions); CuPy allocates from an RMM pool of
RMM_POOL_SIZE of the GPU, made once at start (no cudaMalloc per batch)."""
from __future__ import annotations

import importlib.util
import os
import tempfile

from exoflow.backends import GPU_RESOURCE
from exoflow.errors import UsageError

# fractions of each GPU's memory (dask-cuda reads a float up to 1 as a fraction of the device's)
SETTINGS = {"device_memory_limit": 0.8, "rmm_pool_size": 0.5}
INSTALL = "install exoflow[gpu-cuda12], or [gpu-cuda11]/[gpu-cuda13] for that CUDA"


def gpu_count() -> int:
    """GPUs this process may use (CUDA_VISIBLE_DEVICES, else NVML's count; 0 without a driver),
    found without creating a CUDA context."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip()])
    try:
        from distributed.diagnostics import nvml
        return nvml.device_get_count()
    except Exception:          # no pynvml, no driver
        return 0


def missing() -> str | None:
    """Why dask-cuda GPU workers cannot start on this machine (dask-cuda or CuPy not installed, no
    GPU), or None when they can."""
    for module, name in (("dask_cuda", "dask-cuda"), ("cupy", "CuPy")):
        if importlib.util.find_spec(module) is None:
            return f"{name} is not installed ({INSTALL})"
    if not gpu_count():
        return "no GPU found on this machine (NVML sees none, or CUDA_VISIBLE_DEVICES is empty)"
    return None


def check() -> None:
    """Raise UsageError (one line) unless GPU workers can start here (see ``missing``)."""
    why = missing()
    if why:
        raise UsageError(f"--backend gpu: {why}")


def spill_directory() -> str:
    """Where GPU workers spill to disk: Dask's temporary-directory, else the system's."""
    import dask
    return dask.config.get("temporary-directory", None) or tempfile.gettempdir()


def local_cluster_kwargs(workers: int | None, threads: int, memory_limit: int) -> dict:
    """``LocalCUDACluster``'s keyword arguments for ``workers`` workers (None: one per GPU) of
    ``threads`` threads and ``memory_limit`` bytes of host memory each."""
    return {"n_workers": workers, "threads_per_worker": threads, "memory_limit": memory_limit,
            "resources": dict(GPU_RESOURCE), "local_directory": spill_directory(), **SETTINGS}


def worker_flags(threads: int, memory_limit: int | str) -> list[str]:
    """``dask cuda worker``'s flags for the same workers (one per GPU of its host)."""
    flags = {"nthreads": threads, "memory_limit": memory_limit,
             "resources": ",".join(f"{k}={v}" for k, v in GPU_RESOURCE.items()), **SETTINGS}
    return [arg for k, v in flags.items() for arg in (f"--{k.replace('_', '-')}", str(v))]
