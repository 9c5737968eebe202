"""exoflow's own exceptions (a leaf module: imports nothing of exoflow)."""
from __future__ import annotations


class UsageError(Exception):
    """Bad input or settings: reported as one line, exit code 2, before anything starts."""


# The command's exit codes (exoflow.cli's docstring says what each means).
EXIT_OK, EXIT_FILE_ERRORS, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
