"""What the fork server imports before it forks the embedded cluster's workers (``forkserver.PRELOAD``):
Dask and exoflow's runner, with Python's cyclic garbage collector off, then every object made
so far frozen (see exoflow.forkserver's docstring)."""
import gc

gc.disable()
try:
    import distributed  # noqa: F401
    import exoflow.runner  # noqa: F401
finally:
    gc.freeze()
    gc.enable()
