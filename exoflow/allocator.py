"""glibc's allocator on a worker with room: blocks up to 32 MiB from its heap again, as glibc does by
default. Dask's nanny sets MALLOC_TRIM_THRESHOLD_ (distributed.nanny.pre-spawn-environ), which also
fixes glibc's mmap threshold at 128 KiB (mallopt(3): setting any of these disables the dynamic
threshold), so every larger block a task makes (Arrow buffers, Parquet pages, NumPy arrays) is a
fresh mapping whose pages are faulted in and zeroed, then unmapped: 44,000 page faults per warm
checksum of /usr on two workers, 1.72 s whole process against 1.53 s with the heap (median of 4).
The heap keeps freed blocks (each thread's arena its own), memory Dask counts as unmanaged: at a
250 MiB limit neardup's spilling run was then stopped at the limit 1 time in 10, so only workers
with at least ROOMY bytes of memory limit per thread (or no limit) get it.

It is set by the first listing or chunk task a worker process runs (``settle``), not by a worker
plugin: the scheduler keeps a plugin and makes every worker that joins or restarts load it, and
one that cannot import this module (an older exoflow) would then not start at all."""
from __future__ import annotations

import ctypes
import platform

M_MMAP_THRESHOLD = -3           # glibc's malloc.h
HEAP_BLOCKS = 32 * 2**20        # glibc's largest dynamic threshold on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX)
ROOMY = 2 * 2**30               # bytes of memory limit per worker thread

_settled = False


def heap_blocks(memory_limit: int | None, threads: int = 1) -> bool:
    """Set glibc's mmap threshold to HEAP_BLOCKS in this process when ``memory_limit`` (bytes;
    None or 0: no limit) is at least ROOMY per thread of ``threads``. True when set; False
    elsewhere (a tighter limit, or not glibc)."""
    if (memory_limit and memory_limit < ROOMY * max(threads, 1)) or platform.libc_ver()[0] != "glibc":
        return False
    return ctypes.CDLL(None).mallopt(ctypes.c_int(M_MMAP_THRESHOLD), ctypes.c_int(HEAP_BLOCKS)) == 1


def settle() -> None:
    """In a task on a Dask worker, once per process: ``heap_blocks`` by the worker's memory limit and
    threads. Elsewhere (the client, a serial run) nothing."""
    global _settled
    if _settled:
        return
    _settled = True
    try:
        from distributed import get_worker
        worker = get_worker()
    except ValueError:        # not in a worker's task
        return
    manager = getattr(worker, "memory_manager", None)
    heap_blocks(getattr(manager, "memory_limit", None), getattr(worker, "nthreads", 1) or 1)
