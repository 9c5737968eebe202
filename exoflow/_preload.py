"""What the fork server imports before it forks the embedded cluster's workers (``forkserver.PRELOAD``):
Dask, exoflow's runner and the modules of a worker's HTTP routes (Dask's
``distributed.worker.http.routes``, which each worker would import at its start: 30 ms), with
Python's cyclic garbage collector off, then every object made so far frozen (see
exoflow.forkserver's docstring)."""
import gc
import importlib

gc.disable()
try:
    import dask
    import distributed  # noqa: F401
    import exoflow.runner  # noqa: F401
    for route in dask.config.get("distributed.worker.http.routes"):
        importlib.import_module(route)
finally:
    gc.freeze()
    gc.enable()
