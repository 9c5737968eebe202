"""exoflow's own exceptions (a leaf module: imports nothing of exoflow)."""
from __future__ import annotations


class UsageError(Exception):
    """Bad input or settings: reported as one line, exit code 2, before anything starts."""
