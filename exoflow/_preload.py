"""What the fork server imports before it forks the embedded cluster's workers (``forkserver.PRELOAD``):
Dask, exoflow's runner and the modules of a worker's HTTP routes (Dask's
``distributed.worker.http.routes``, which each worker would import at its start: 30 ms), with
Python's cyclic garbage collector off, then every object made so far frozen (see
exoflow.forkserver's docstring)."""
import gc
import importlib
import os

import yaml

# The workers' environment before Arrow is imported (Arrow reads its allocator once, at import):
# dask.yaml's distributed.nanny.pre-spawn-environ, which a real cluster's nanny sets before it
# starts a worker; a variable already set wins, as there.
with open(os.path.join(os.path.dirname(__file__), "dask.yaml"), encoding="utf-8") as _f:
    for _k, _v in yaml.safe_load(_f)["distributed"]["nanny"]["pre-spawn-environ"].items():
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
