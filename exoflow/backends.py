"""Array backends: the same kernel code runs on NumPy (CPU) or CuPy (GPU).

Kernels take an array namespace ``xp`` and use only functions NumPy and CuPy
share, so the CPU test suite covers the GPU logic. The backend is chosen on the
worker that runs the task (the client may have no GPU at all).
"""
from __future__ import annotations

import functools
from types import ModuleType

import numpy as np

from exoflow.errors import UsageError

BACKENDS = ("cpu", "gpu", "auto")
# Dask resource that GPU workers advertise (``dask cuda worker … --resources GPU=1``); chunk tasks
# of a run with ``--backend gpu`` ask for it, so they run only where a GPU is.
GPU_RESOURCE = {"GPU": 1}


def is_backend_option(name: str) -> bool:
    """Whether a job parameter is a --backend choice."""
    return name == "backend" or name.endswith(".backend")     # a composed run's: JOB.backend


def task_resources(params: dict) -> dict | None:
    """The Dask resources a chunk task of a run with these job parameters needs."""
    gpu = any(v == "gpu" for k, v in params.items() if is_backend_option(k))
    return GPU_RESOURCE if gpu else None


def resolve_auto(params: dict, gpu_workers: bool) -> dict:
    """``params`` with each ``--backend auto`` (of jobs whose kernels have a GPU form) made "gpu"
    where the cluster has GPU workers, else "cpu"."""
    pick = "gpu" if gpu_workers else "cpu"
    return {k: pick if is_backend_option(k) and v == "auto" else v for k, v in params.items()}


def backend_named(params: dict) -> str | None:
    """The run's backend(s) for its first line ("gpu", "cpu", "cpu, gpu"); None for jobs without."""
    names = sorted({str(v) for k, v in params.items() if is_backend_option(k)})
    return ", ".join(names) or None


class BackendUnavailable(UsageError):
    """Raised on a worker; Dask re-raises it on the client, which reports one line and exits 2."""


@functools.lru_cache(maxsize=1)
def gpu_available() -> bool:
    """A CUDA device and CuPy are both present on this process's machine."""
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:   # ImportError, or CUDA runtime errors when there is no driver/device
        return False


def array_module(backend: str) -> ModuleType:
    """numpy for "cpu"; cupy for "gpu" (an error if there is none); "auto" picks cupy when usable."""
    if backend == "cpu" or (backend == "auto" and not gpu_available()):
        return np
    if not gpu_available():
        raise BackendUnavailable("--backend gpu: no CUDA device or CuPy on this worker "
                           "(install exoflow[gpu-cuda12] and run on a GPU worker)")
    import cupy
    return cupy


def to_host(a) -> np.ndarray:
    """A NumPy array from either backend."""
    return a.get() if hasattr(a, "get") else np.asarray(a)
