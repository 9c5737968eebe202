"""The running cluster's warm driver: ``exoflow run`` hands it the run instead of importing Dask.

``exoflow cluster start`` runs ``python -m exoflow.driver SOCKET SCHEDULER_PID`` beside the
scheduler (exoflow/service.py): one process and one thread that has imported Dask, exoflow's
runner and every shipped job, listening on the Unix socket ``driver.sock`` in the cluster's state
directory (mode 0600; a peer's uid, gid, groups and capabilities must be the driver's). When a run would use that cluster
(no --embedded, --scheduler, --scheduler-file or DASK_SCHEDULER_ADDRESS: exoflow/discovery.py),
``exoflow.submit`` (the command's side: no Dask import) sends the driver the command's argv,
working directory, environment, umask and stream settings, with its stdin, stdout and stderr as
file descriptors (SCM_RIGHTS). The driver forks a child per run, from its single thread with no
Client or thread made (exoflow.forkserver says why: held locks; the imports are frozen out of the
garbage collector's walks the same way). The child takes the command's place (dup2 of the three
descriptors, chdir, environ, umask, Dask's configuration read again from that environment) and
runs ``cli.run_here``, what the command would have run itself: it finds the cluster as any run
does and connects a Client, and its output, progress line, terminal detection and exit code are
the command's. The command forwards SIGINT, SIGTERM and SIGHUP to the child and ends with the
child's exit code (or the signal that ended it). A missing, stale or refusing socket: one note on
stderr, and the run goes on in the command's own process. The driver ends with its scheduler
(``--idle-timeout``) or ``exoflow cluster stop``; code changed since it started is not seen
until the next ``cluster start``, and a command of another exoflow installation or Python is refused.

The protocol, on a stream socket: the request is an 8-byte length with the three descriptors,
then that many bytes of JSON; the driver answers lines, ``A`` (accepted: sent before the child is forked, so a
command that gave up waiting is never run twice) or ``R reason``
(refused), then, once the run has ended, ``X code`` (exit code) or ``K signal`` (killed by it); the command sends
``S signal`` lines.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import sys

from exoflow.errors import EXIT_INTERNAL, exit_on_interrupt
from exoflow.submit import CONNECT_TIMEOUT, FORWARDED, LENGTH, identity, installation, send_line, socket_name, why

# what a run imports: Dask and exoflow's runner (the fork server's preload), the command's run path
WARM = ("exoflow._preload", "exoflow.cli", "exoflow.cluster", "exoflow.config", "exoflow.dashboard",
        "exoflow.discovery", "exoflow.journal", "exoflow.pins", "exoflow.progress", "exoflow.report",
        "exoflow.results", "exoflow.sinks", "exoflow.spilling", "pyarrow.acero", "tornado.platform.asyncio")


def _warm() -> None:
    """Import what a run imports (``WARM``) and every shipped job."""
    import importlib

    from exoflow.composed import load
    for name in WARM:
        importlib.import_module(name)
    importlib.import_module("exoflow.report")._bokeh_js()     # read once, for every run's report.html
    # what a Client sends the scheduler when it connects: each package's version from its metadata
    # (importlib_metadata and the email parser) and the host's (``uname -p``, a subprocess), cached
    from distributed.versions import get_versions
    get_versions()
    _cache_config_files()
    _reread_dask_config()
    from exoflow.jobs_registry import shipped
    for name in shipped():
        load(name)


class Driver:
    """The driver's one thread: a selector over the listening socket, the scheduler's pidfd, and
    each run's connection and child pidfd."""

    def __init__(self, path: str, scheduler_pid: int) -> None:
        import selectors
        self.path = path
        self.selector = selectors.DefaultSelector()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        previous = os.umask(0o177)               # the socket is made mode 0600
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            with socket_name(path) as address:
                self.listener.bind(address)
        finally:
            os.umask(previous)
        self.listener.listen(64)
        self.scheduler = os.pidfd_open(scheduler_pid)
        self.runs: dict[int, tuple[socket.socket, int, int]] = {}    # pidfd -> (connection, pid, pidfd)
        self.selector.register(self.listener, selectors.EVENT_READ, self._accept)
        self.selector.register(self.scheduler, selectors.EVENT_READ, self._scheduler_ended)

    def serve(self) -> None:
        """Take runs until the scheduler has ended and no run is left."""
        while self.selector.get_map():
            for key, _ in self.selector.select():
                key.data(key.fileobj)

    def _scheduler_ended(self, fd: int) -> None:
        self.selector.unregister(fd)
        os.close(fd)
        self.scheduler = -1
        self.selector.unregister(self.listener)
        self.listener.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        print("exoflow driver: the scheduler ended; the driver ends with its last run", flush=True)

    def _accept(self, listener: socket.socket) -> None:
        import selectors
        conn, _ = listener.accept()
        conn.settimeout(CONNECT_TIMEOUT)
        fds: list[int] = []
        try:
            msg, fds, _, _ = socket.recv_fds(conn, LENGTH.size, 3)
            body = _receive(conn, LENGTH.unpack(msg)[0]) if len(msg) == LENGTH.size else b""
            request = json.loads(body)
            if not isinstance(request, dict):
                raise ValueError("the request is not a JSON object")
            refusal = self._refusal(conn, request, fds)
            if refusal:
                send_line(conn, f"R {refusal}")
                conn.close()
                return
            conn.sendall(b"A\n")                    # first: a command that gave up is not run
            sys.stdout.flush()
            sys.stderr.flush()
            # the child's signals wait until it has its handlers (a forwarded Ctrl-C could come at once)
            mask = signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
            pid = os.fork()
            if pid == 0:
                self._close_all(conn)
                _child(request, fds, mask)        # never returns
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            print(f"exoflow driver: run {pid}: {json.dumps(request['argv'])} in {json.dumps(request['cwd'])}", flush=True)
            conn.setblocking(True)
            pidfd = os.pidfd_open(pid)
            self.runs[pidfd] = (conn, pid, pidfd)
            self.selector.register(pidfd, selectors.EVENT_READ, self._run_ended)
            self.selector.register(conn, selectors.EVENT_READ, lambda c, pidfd=pidfd: self._message(pidfd))
        except (OSError, ValueError) as e:
            print(f"exoflow driver: a request failed: {why(e)}", flush=True)
            conn.close()
        finally:
            for fd in fds:
                os.close(fd)

    def _refusal(self, conn: socket.socket, request: dict, fds: list[int]) -> str | None:
        _, uid, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
        if uid != os.getuid():
            return f"the driver runs as uid {os.getuid()}, the command as {uid}"
        if request.get("identity") != identity():
            return "the command's gid, groups or capabilities are not the driver's"
        if len(fds) != 3:
            return "the request did not carry stdin, stdout and stderr"
        if request.get("installation") != installation():
            return (f"the driver runs exoflow from {installation()[0]} (Python {installation()[1].split()[0]}), "
                    f"the command from {request['installation'][0]}: restart the cluster")
        return None

    def _message(self, pidfd: int) -> None:
        """The command's lines (``S signal``: forwarded to the child); its end ends the child."""
        conn, pid, _ = self.runs[pidfd]
        try:
            block = conn.recv(4096)
        except OSError:
            block = b""
        signals = [int(line[2:]) for line in block.decode(errors="replace").splitlines()
                   if line.startswith("S ") and line[2:].isdigit()]
        if not block:
            self.selector.unregister(conn)           # the command is gone: so is its run
            signals = [signal.SIGTERM]
        for sig in signals:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def _run_ended(self, pidfd: int) -> None:
        conn, pid, _ = self.runs.pop(pidfd)
        code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        send_line(conn, f"X {code}" if code >= 0 else f"K {-code}")
        self.selector.unregister(pidfd)
        os.close(pidfd)
        with contextlib.suppress(KeyError):
            self.selector.unregister(conn)
        conn.close()

    def _close_all(self, conn: socket.socket) -> None:
        """In a child: the driver's descriptors are not its."""
        self.selector.close()
        self.listener.close()
        conn.close()
        for other, _, pidfd in self.runs.values():
            other.close()
            os.close(pidfd)
        if self.scheduler >= 0:
            os.close(self.scheduler)


def _receive(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        block = conn.recv(min(n - len(data), 1 << 20))
        if not block:
            raise ValueError("the request was cut short")
        data += block
    return data


def _child(request: dict, fds: list[int], mask: set) -> None:
    """Take the command's place and run what it would have run; exit with its code. ``mask``: the
    signal mask to restore once the handlers are the command's (a Ctrl-C before the run catches
    interrupts ends it at once, as in the command: ``errors.exit_on_interrupt``)."""
    code: object = EXIT_INTERNAL
    signal.signal(signal.SIGINT, signal.default_int_handler)
    exit_on_interrupt()
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    try:
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)      # its line goes to the command's stderr
        os.chdir(request["cwd"])
        os.umask(request["umask"])
        os.environ.clear()
        os.environ.update(request["env"])
        _reread_dask_config()
        _std_streams(request["streams"])
        sys.argv = [request["argv0"], *request["argv"][1:]]
        from exoflow.cli import run_here
        code = run_here(request["argv"])
    except SystemExit as e:
        code = e.code
    except BaseException:
        import traceback
        traceback.print_exc()
    finally:
        if isinstance(code, str):
            print(code, file=sys.stderr)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code if isinstance(code, int) else (0 if code is None else 1))


def _std_streams(settings: list) -> None:
    """sys.stdin, stdout and stderr made anew on descriptors 0, 1 and 2 as the command's were
    (encoding, errors, line buffering: a terminal's stdout is line-buffered, a pipe's is not)."""
    import io
    for fd, name, (encoding, errors, line_buffering) in zip((0, 1, 2), ("stdin", "stdout", "stderr"), settings):
        raw = io.FileIO(fd, "r" if fd == 0 else "w", closefd=False)
        stream = io.TextIOWrapper(io.BufferedReader(raw) if fd == 0 else io.BufferedWriter(raw), encoding, errors,
                                  line_buffering=line_buffering)
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


def _cache_config_files() -> None:
    """Dask's configuration files parsed once, in the driver, for every run's child while a file is
    unchanged: each child reads them again (``_reread_dask_config``), and YAML parsed in Python costs
    ~6 ms a file (~/.config/dask holds two once dask-jobqueue and dask-kubernetes have been imported)."""
    import dask.config
    load = getattr(dask.config, "_load_config_file", None)     # dask's reader of one file
    if load is None:
        return
    parsed: dict[tuple, dict | None] = {}

    def cached(path: str) -> dict | None:
        try:
            st = os.stat(path)
        except OSError:
            return load(path)
        key = (path, st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
        if key not in parsed:
            parsed[key] = load(path)      # a malformed file raises, each time, as dask's reader does
        return parsed[key]
    dask.config._load_config_file = cached


def _reread_dask_config() -> None:
    """Dask's configuration as a process started with this environment reads it (YAML paths and
    DASK_* variables)."""
    import dask.config
    dask.config.paths[:] = dask.config._get_paths()
    dask.config.refresh()


def main(argv: list[str]) -> None:
    """``python -m exoflow.driver SOCKET SCHEDULER_PID``, run by ``exoflow cluster start``."""
    import gc
    import threading
    import time
    began = time.perf_counter()
    gc.disable()
    _warm()
    gc.freeze()
    gc.enable()
    if threading.active_count() != 1:          # forking from a process with threads is what we avoid
        raise SystemExit(f"exoflow driver: importing made {threading.active_count() - 1} threads; not serving")
    driver = Driver(argv[0], int(argv[1]))
    print(f"exoflow driver: serving on {argv[0]} (warm in {time.perf_counter() - began:.2f} s, "
          f"{len(sys.modules)} modules)", flush=True)
    driver.serve()


if __name__ == "__main__":
    main(sys.argv[1:])
