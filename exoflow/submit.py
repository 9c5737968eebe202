"""The command's side of the running cluster's warm driver (exoflow/driver.py, which says how it
works): ``submit`` hands ``exoflow run`` to it, and the protocol both sides share. Imports only
the standard library (and exoflow.errors, exoflow.discovery): the command imports no Dask.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import stat
import struct
import sys
from typing import Iterator

from exoflow.errors import EXIT_INTERNAL, EXIT_INTERRUPTED

LENGTH = struct.Struct("!Q")
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
CONNECT_TIMEOUT = 30.0      # seconds for the driver to accept or refuse a request (milliseconds, unless it hangs)


class Refused(Exception):
    """The driver cannot take the run (the reason, in words): it runs in the command instead."""


def supported() -> bool:
    """Whether this system can run the driver (Linux: pidfds, /proc, SCM_RIGHTS); elsewhere runs go
    on in the command, as they do when no driver runs."""
    return sys.platform == "linux" and hasattr(os, "pidfd_open")


def installation() -> list[str]:
    """What must match between the command and the driver: exoflow's directory and Python's version."""
    return [os.path.dirname(os.path.realpath(__file__)), sys.version]


def identity() -> list:
    """What the run's checks and output files depend on beyond the uid (which the driver gets
    from the socket): gid, groups and effective capabilities. The child has the driver's, so they
    must be the command's."""
    with open("/proc/self/status", encoding="ascii") as f:
        caps = next((line.split()[1] for line in f if line.startswith("CapEff:")), "")
    return [os.getgid(), sorted(os.getgroups()), caps]


@contextlib.contextmanager
def socket_name(path: str) -> Iterator[str]:
    """``path`` as bind/connect take it: a Unix socket's name holds at most 107 bytes, so a longer
    one is reached through its directory's descriptor (/proc/self/fd/N/NAME)."""
    if len(os.fsencode(path)) < 100:
        yield path
        return
    fd = os.open(os.path.dirname(path) or ".", os.O_PATH | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{os.path.basename(path)}"
    finally:
        os.close(fd)


def why(e: BaseException) -> str:
    return getattr(e, "strerror", None) or str(e) or type(e).__name__


# ---- the command's side ------------------------------------------------------------------

def submit(argv: list[str]) -> int | None:
    """Run ``exoflow ARGV`` (``run JOB …``) in the running exoflow cluster's driver and return its
    exit code; None when the run should go on in this process: no running exoflow cluster is the
    one it would use, or its driver cannot take it (said in one line on stderr)."""
    from exoflow.discovery import DRIVER_SOCKET, may_use_exoflow_cluster, state_path
    if not may_use_exoflow_cluster(argv):
        return None
    path = state_path(DRIVER_SOCKET)
    try:
        conn = _connect(path)
    except (OSError, Refused) as e:
        from exoflow.discovery import DRIVER, running
        state = running()          # none: the cluster is gone, and the run finds no cluster, as always
        if state and DRIVER in state.get("processes", {}):   # (a cluster of an earlier exoflow has none)
            print(f"exoflow: the cluster's driver cannot take this run ({path}: {why(e)}); running it here",
                  file=sys.stderr, flush=True)
        return None
    with conn:
        forward = _Forward(conn)
        previous = {s: signal.signal(s, forward) for s in FORWARDED}
        try:
            reply = _lines(conn)
            try:
                _request(conn, argv)
                kind, _, value = next(reply, "R the driver closed the connection").partition(" ")
            except (OSError, ValueError, Refused) as e:
                kind, value = "R", why(e)
            if kind != "A":
                if forward.held:            # Ctrl-C before the driver took the run: none is started
                    print("exoflow: interrupted", file=sys.stderr)
                    return EXIT_INTERRUPTED
                print(f"exoflow: the cluster's driver cannot take this run ({value}); running it here",
                      file=sys.stderr, flush=True)
                return None
            forward.start()
            conn.settimeout(None)
            return _outcome(reply)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


class _Forward:
    """The command's handler of ``FORWARDED`` signals: held until the driver has taken the run
    (a line sent before the request would garble it), then sent on to the run's child."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn, self.held, self.live = conn, [], False

    def __call__(self, signum: int, frame: object) -> None:
        if self.live:
            send_line(self.conn, f"S {signum}")
        else:
            self.held.append(signum)

    def start(self) -> None:
        self.live = True
        for signum in self.held:
            send_line(self.conn, f"S {signum}")


def _connect(path: str) -> socket.socket:
    """A connection to the driver's socket, once it is checked to be this user's alone."""
    st = os.lstat(path)
    if not stat.S_ISSOCK(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise Refused("not a socket that only this user can use")
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(CONNECT_TIMEOUT)
    try:
        with socket_name(path) as address:
            conn.connect(address)
    except OSError:
        conn.close()
        raise
    return conn


def _request(conn: socket.socket, argv: list[str]) -> None:
    umask = os.umask(0)
    os.umask(umask)
    if None in (sys.stdin, sys.stdout, sys.stderr):
        raise Refused("stdin, stdout or stderr is closed")
    streams = [[s.encoding, s.errors, s.line_buffering] for s in (sys.stdin, sys.stdout, sys.stderr)]
    body = json.dumps({"argv": argv, "argv0": sys.argv[0], "cwd": os.getcwd(), "env": dict(os.environ),
                       "umask": umask, "streams": streams, "installation": installation(),
                       "identity": identity()}).encode()
    sys.stdout.flush()
    sys.stderr.flush()
    socket.send_fds(conn, [LENGTH.pack(len(body))], [0, 1, 2])
    conn.sendall(body)


def _lines(conn: socket.socket) -> Iterator[str]:
    """The driver's reply lines, until it closes the connection."""
    pending = b""
    while True:
        block = conn.recv(4096)
        if not block:
            return
        pending += block
        *lines, pending = pending.split(b"\n")
        yield from (line.decode() for line in lines)


def send_line(conn: socket.socket, line: str) -> None:
    try:
        conn.sendall(line.encode() + b"\n")
    except OSError:
        pass


def _outcome(reply: Iterator[str]) -> int:
    """The child's exit code; killed by a signal, this process ends by the same signal."""
    for line in reply:
        kind, _, value = line.partition(" ")
        if kind == "X":
            return int(value)
        if kind == "K":
            sig = int(value)
            with contextlib.suppress(OSError, ValueError):     # SIGKILL's cannot be set
                signal.signal(sig, signal.SIG_DFL)
            sys.stdout.flush()
            sys.stderr.flush()
            os.kill(os.getpid(), sig)
            return 128 + sig
    print("exoflow: the cluster's driver ended before the run did", file=sys.stderr)
    return EXIT_INTERNAL
