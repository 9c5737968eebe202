"""The fork server the embedded cluster's workers are forked from.

A worker forked from the client process could inherit a lock (of an import, of logging) that
one of the client's threads held at that moment, and wait on it for ever (a start once hung for
11 minutes). Python's fork server is a fresh process (fork and exec) whose one thread imports
``PRELOAD`` and then forks each worker from itself, so no worker inherits a held lock.
``exoflow run`` starts it first thing, so its imports overlap the command's own; the cluster
start (``cluster.connect``) reuses it.

Start-up makes modules, classes and functions, which live as long as the process, and little
garbage: Python's cyclic garbage collector, which these imports ran about 25 times (0.1 s of CPU
in each process), finds almost none. So the fork server (``exoflow._preload``) and the command
(``cli.main`` to ``cli.run_job``) import with it off, then freeze what they made (``gc.freeze``:
never walked again) and turn it back on; the workers' collections then skip what they inherit,
so they neither walk it nor copy its memory pages (Python's recipe for fork without exec).
"""
from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import signal
import sys
from multiprocessing import resource_tracker

# SIGINT ignored (exoflow._no_sigint); Dask and exoflow's runner, with the garbage collector off
PRELOAD = ["exoflow._no_sigint", "exoflow._preload"]
_QUIET_TRACKER = "ignore:resource_tracker:UserWarning"


def start() -> None:
    """Start the fork server once per process (a no-op when it runs). It ignores SIGINT, and so
    do the workers it forks: the client catches Ctrl-C and stops them in order. SIGINT is blocked
    while it starts (the server unblocks it): a Ctrl-C meanwhile comes to this process once it is
    started, not lost. Call from the main thread."""
    # A second Ctrl-C during the teardown leaves the cluster's semaphores to multiprocessing's
    # resource tracker (started with the fork server, with this process's warning options), which
    # removes them and, once the command has exited, said so on its stderr.
    if _QUIET_TRACKER not in sys.warnoptions:
        sys.warnoptions.append(_QUIET_TRACKER)
    # the resource tracker first: starting it unblocks SIGINT (multiprocessing blocks and then
    # unblocks it around that start, whatever the mask was), which would let one in while the
    # fork server starts
    resource_tracker.ensure_running()
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})    # the server inherits the mask
    try:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        multiprocessing.forkserver.ensure_running()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
