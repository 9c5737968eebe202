"""Finding jobs: a name from the shipped jobs/ directory, or a user's job file."""
from __future__ import annotations

import ast
import importlib
import importlib.resources
import importlib.util
import os
import sys

from typing import TYPE_CHECKING

from exoflow.errors import UsageError

if TYPE_CHECKING:
    from exoflow.job import Job


def shipped() -> dict[str, str]:
    """name -> first line of the job's docstring, for the jobs shipped with exoflow."""
    out = {}
    for entry in sorted(importlib.resources.files("exoflow.jobs").iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".py") and not entry.name.startswith("_"):
            doc = ast.get_docstring(ast.parse(entry.read_text())) or ""
            out[entry.name[:-3]] = doc.strip().splitlines()[0] if doc.strip() else ""
    return out


def load(spec: str) -> Job:
    """``spec`` is a job name (``inventory``) or a path to a job file (``jobs/inventory.py``)."""
    import cloudpickle

    from exoflow.job import Job
    if spec.endswith(".py") or os.sep in spec:
        if not os.path.isfile(spec):
            raise UsageError(f"job file {spec} not found")
        name = "exoflow_userjob_" + os.path.basename(spec)[:-3].replace("-", "_")
        module_spec = importlib.util.spec_from_file_location(name, spec)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)
        except Exception as e:
            raise UsageError(f"job file {spec} failed to load: {type(e).__name__}: {e}") from None
        # workers (possibly remote) cannot import the user's file: ship its code by value
        cloudpickle.register_pickle_by_value(module)
    else:
        if spec not in shipped():
            raise UsageError(f"unknown job {spec!r}; available: {', '.join(shipped())} (or a path to a job file)")
        module = importlib.import_module(f"exoflow.jobs.{spec}")
    job = getattr(module, "job", None)
    if not isinstance(job, Job):
        raise UsageError(f"{spec} does not define a module-level `job = exoflow.Job(...)`")
    return job
