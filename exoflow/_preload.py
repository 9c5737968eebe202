"""What the fork server imports before it forks the embedded cluster's workers (``forkserver.PRELOAD``):
Dask, exoflow's runner and the modules of a worker's HTTP routes (Dask's
``distributed.worker.http.routes``, which each worker would import at its start: 30 ms), with
Python's cyclic garbage collector off, then every object made so far frozen (see
exoflow.forkserver's docstring)."""
import gc
import importlib
import importlib.util
import os

import yaml

# The workers' environment before NumPy and Arrow are imported (OpenBLAS reads its thread count and
# Arrow its allocator once, at import): distributed.nanny.pre-spawn-environ, Dask's defaults
# (distributed.yaml: one BLAS/OpenMP thread per worker process) then exoflow's (dask.yaml), which a
# real cluster's nanny sets before it starts a worker; a variable already set wins, as there.
_environ = {}
for _path in (os.path.join(os.path.dirname(importlib.util.find_spec("distributed").origin), "distributed.yaml"),
              os.path.join(os.path.dirname(__file__), "dask.yaml")):
    with open(_path, encoding="utf-8") as _f:
        _environ.update(yaml.safe_load(_f)["distributed"]["nanny"]["pre-spawn-environ"])
for _k, _v in _environ.items():
    os.environ.setdefault(_k, str(_v))

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
