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

# LocalCUDACluster's names; fractions of each GPU's memory (dask-cuda reads a float up to 1 as a
# fraction of the device's); CuPy's allocations from the RMM pool
SETTINGS = {"device_memory_limit": 0.8, "rmm_pool_size": 0.5, "rmm_allocator_external_lib_list": "cupy"}
# ``dask cuda worker``'s flag where it is not the keyword's name with dashes
FLAGS = {"rmm_allocator_external_lib_list": "--set-rmm-allocator-for-libs"}
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


def missing(modules: tuple[str, ...] = ("dask_cuda", "cupy")) -> str | None:
    """Why dask-cuda GPU workers cannot start on this machine (dask-cuda or CuPy not installed, no
    GPU), or None when they can; ``modules``: the packages needed."""
    names = {"dask_cuda": "dask-cuda", "cupy": "CuPy"}
    for module in modules:
        name = names[module]
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
    return [arg for k, v in flags.items() for arg in (FLAGS.get(k, f"--{k.replace('_', '-')}"), str(v))]


# ---- exoflow info: is each GPU computing right? --------------------------------------------------

CHECK_N = 1 << 20          # elements of the check kernel
_MULT, _ADD = 0x9E3779B1, 0x7F4A7C15


def check_reference(x):
    """What the check kernel computes, on NumPy: a 32-bit multiply-add-xorshift of each uint32
    element (arithmetic modulo 2**32, as MinHash's permutations)."""
    import numpy as np
    y = (x.astype(np.uint64) * _MULT + _ADD) & 0xFFFFFFFF
    return (y ^ (y >> 15)).astype(np.uint32)


def validate() -> dict:
    """Each GPU runs a short CuPy kernel (compiled by NVRTC, as neardup's kernel is) over
    CHECK_N values, checked against ``check_reference`` on NumPy: ``{"devices": [{"device": i,
    "name": …, "ok": bool, "detail": …}]}``, or ``{"skipped": reason}`` without CuPy or a GPU."""
    why = missing(("cupy",))
    if why:
        return {"skipped": why}
    import cupy
    import numpy as np
    x = np.arange(CHECK_N, dtype=np.uint32) * np.uint32(2654435761)
    want = check_reference(x)
    kernel = cupy.ElementwiseKernel(
        "uint32 x", "uint32 z",
        f"unsigned int y = x * {_MULT}u + {_ADD}u; z = y ^ (y >> 15);", "exoflow_gpu_check")
    devices = []
    for i in range(cupy.cuda.runtime.getDeviceCount()):
        try:
            with cupy.cuda.Device(i):
                name = cupy.cuda.runtime.getDeviceProperties(i)["name"]
                got = kernel(cupy.asarray(x)).get()
            bad = int(np.count_nonzero(got != want))
            devices.append({"device": i, "name": name.decode() if isinstance(name, bytes) else str(name),
                            "ok": bad == 0, "detail": "kernel result equals NumPy's" if not bad
                            else f"{bad:,} of {CHECK_N:,} values differ from NumPy's"})
        except Exception as e:          # a driver, NVRTC or memory error: this GPU cannot run kernels
            devices.append({"device": i, "name": "?", "ok": False,
                            "detail": " ".join(f"{type(e).__name__}: {e}".split())})
    return {"devices": devices}
