"""exoflow's own exceptions and its command parsers' error rule (a leaf module: imports nothing of
exoflow, so commands that need no Dask stay lean)."""
from __future__ import annotations

import argparse


class UsageError(Exception):
    """Bad input or settings: reported as one line, exit code 2, before anything starts."""


# The command's exit codes (exoflow.cli's docstring says what each means).
EXIT_OK, EXIT_FILE_ERRORS, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line with the usage hint, exit 2."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")
