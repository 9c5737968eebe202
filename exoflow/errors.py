"""exoflow's own exceptions and its command parsers' error rule (a leaf module: imports nothing of
exoflow, so commands that need no Dask stay lean)."""
from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from typing import Any, Iterator


class UsageError(Exception):
    """Bad input or settings: reported as one line, exit code 2, before anything starts."""


# The command's exit codes (exoflow.cli's docstring says what each means).
EXIT_OK, EXIT_FILE_ERRORS, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

# Ctrl-C that Python lost: a KeyboardInterrupt raised while a finalizer (``__del__``) runs is
# printed as "Exception ignored" and dropped (seen with Dask's Future.__del__: a run then finished
# as if never interrupted). The run's handler notes it first; the run checks the note.
_interrupted = False


def _on_sigint(signum, frame) -> None:
    global _interrupted
    _interrupted = True
    raise KeyboardInterrupt


def catch_interrupts() -> None:
    """Note every Ctrl-C (``check_interrupt``) and raise KeyboardInterrupt as Python does, unless
    SIGINT is ignored (a background job) or has a handler of its own. Call from the main thread."""
    if signal.getsignal(signal.SIGINT) in (signal.default_int_handler, _exit_at_once):
        signal.signal(signal.SIGINT, _on_sigint)
        if sys.unraisablehook is not _unraisable:
            global _unraisable_before
            _unraisable_before, sys.unraisablehook = sys.unraisablehook, _unraisable


_unraisable_before = sys.unraisablehook


def _unraisable(unraisable) -> None:
    """An interrupt raised in a finalizer is noted (``check_interrupt`` raises it again), not printed
    as "Exception ignored in …" with its traceback; anything else goes to the hook there was."""
    if not issubclass(unraisable.exc_type, KeyboardInterrupt):
        _unraisable_before(unraisable)


def exit_on_interrupt(starting: bool = True) -> None:
    """Start-up (``starting``): until a run catches interrupts (``catch_interrupts``) a Ctrl-C ends
    the command at once, one line and exit 130. Start-up imports for up to a second, makes nothing
    that needs undoing, and Python would print the traceback of the import it stopped (or a library
    turn the interrupt into an ImportError). Not when SIGINT is ignored (a background job) or has a
    handler of its own. ``starting=False``: a Ctrl-C raises KeyboardInterrupt again (a command
    that starts processes undoes its work). Call from the main thread."""
    if starting and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _exit_at_once)
    elif not starting and signal.getsignal(signal.SIGINT) is _exit_at_once:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _exit_at_once(signum, frame) -> None:
    os.write(2, b"exoflow: interrupted\n")
    remove_mp_tempdir()
    os._exit(EXIT_INTERRUPTED)


@contextlib.contextmanager
def held_interrupts() -> Iterator[None]:
    """A Ctrl-C during the block (steps that must not be cut apart) is held, and handled as it
    would have been once the block is over. A handler, not the signal mask: Python runs handlers
    in the main thread whichever thread the signal reached. Call from the main thread."""
    held: list[tuple[int, Any]] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: held.append((signum, frame)))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if held and callable(previous):
            previous(*held[0])
        elif held and previous == signal.SIG_DFL:
            os.kill(os.getpid(), signal.SIGINT)


def remove_mp_tempdir() -> None:
    """Remove the temporary directory multiprocessing made for this process (``pymp-…``: the fork
    server's socket), which a finalizer would have removed, before an ``os._exit`` that skips it."""
    process = sys.modules.get("multiprocessing.process")
    tempdir = process.current_process()._config.get("tempdir") if process else None   # util.get_temp_dir's
    if tempdir:
        import shutil
        shutil.rmtree(tempdir, ignore_errors=True)


def check_interrupt() -> None:
    """Raise KeyboardInterrupt when a Ctrl-C came since ``catch_interrupts`` (even one Python lost)."""
    if _interrupted:
        raise KeyboardInterrupt


class Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line with the usage hint, exit 2."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")
