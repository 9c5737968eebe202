"""The embedded cluster's start: workers that cannot inherit a lock held by another thread, and a
start that is bounded in time."""
from __future__ import annotations

import builtins
import importlib
import sys
import threading
import time

import pytest

from exoflow import cluster
from exoflow.options import ClusterOptions
from exoflow.sinks import UsageError

HELD_IMPORT = """
import builtins
gate = getattr(builtins, "exoflow_test_gate", None)
if gate is not None:      # only in the test's process: its import stays in progress until the gate opens
    gate.wait()
"""


def test_clusters_start_while_another_thread_is_in_the_middle_of_an_import(tmp_path, monkeypatch):
    """A thread of this process is inside an import (holding that module's import lock) while clusters
    start one after another, and every worker imports that module as it starts (a worker preload).
    A worker forked from this process would inherit the held lock and wait for ever (the start then
    fails after START_TIMEOUT); a worker from the fork server imports it afresh."""
    module = tmp_path / "exoflow_held_import.py"
    module.write_text(HELD_IMPORT)
    monkeypatch.setattr(builtins, "exoflow_test_gate", threading.Event(), raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    importer = threading.Thread(target=importlib.import_module, args=("exoflow_held_import",), daemon=True)
    importer.start()
    deadline = time.monotonic() + 10
    while "exoflow_held_import" not in sys.modules and time.monotonic() < deadline:
        time.sleep(0.01)
    monkeypatch.setattr(cluster, "START_TIMEOUT", 15.0)
    try:
        import dask
        with dask.config.set({"distributed.worker.preload": [str(module)]}):
            for _ in range(3):
                assert importer.is_alive() and "exoflow_held_import" in sys.modules   # still importing
                with cluster.connect(ClusterOptions(workers=2, dashboard="")) as client:
                    assert sum(client.nthreads().values()) == 2
                    assert client.submit(sum, [1, 2], pure=False).result(timeout=30) == 3
    finally:
        builtins.exoflow_test_gate.set()
        importer.join(timeout=10)
        sys.modules.pop("exoflow_held_import", None)
