"""Shared helpers: generated trees with every awkward case, and running the CLI as a user does."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pyarrow.dataset as ds
import pytest

REPO = Path(__file__).resolve().parents[1]
IS_ROOT = os.geteuid() == 0
# The tests' runs use the embedded cluster or the scheduler they name: not an 'exoflow cluster' or a
# scheduler address the person running them has (tests/test_service.py sets its own state directory)
os.environ["EXOFLOW_STATE_DIR"] = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"exoflow-test-state-{os.getpid()}")
os.environ.pop("DASK_SCHEDULER_ADDRESS", None)
# A suite started in the background by a shell without job control inherits SIGINT ignored, and an
# ignored signal stays ignored across exec: every exoflow the tests start would shrug off the Ctrl-C
# the interrupt tests send (seen with `nohup … &`). Delivered again, the runs get Python's handler.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
# root ignores permission bits; without these two capabilities it obeys them like any user
DROP_ROOT_POWERS = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if IS_ROOT else []


def exoflow(*args: str, cwd: str | None = None, obey_permissions: bool = False, timeout: int = 120,
            **kw) -> subprocess.CompletedProcess:
    """Run ``exoflow ARGS`` in a subprocess, the way a user does."""
    prefix = DROP_ROOT_POWERS if obey_permissions else []
    return subprocess.run([*prefix, sys.executable, "-m", "exoflow.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, **kw)


def read_dataset(path: str | Path):
    return ds.dataset(str(path), format="parquet").to_table()


def make_grid(root: Path, dirs: int, per_dir: int, content=lambda f: b"", suffix: str = "") -> Path:
    """root/d{d}/f{f}{suffix} for dirs x per_dir files; ``content(f)`` gives each file's bytes."""
    for d in range(dirs):
        (root / f"d{d}").mkdir(parents=True)
        for f in range(per_dir):
            (root / f"d{d}" / f"f{f}{suffix}").write_bytes(content(f))
    return root


def make_awkward_tree(root: Path) -> dict[str, Path]:
    """Every per-file problem the walk must survive. Returns named special paths."""
    (root / "a" / "b" / "c").mkdir(parents=True)
    (root / "a" / "one.txt").write_bytes(b"1")
    (root / "a" / "b" / "two.TXT").write_bytes(b"22")
    (root / "a" / "b" / "c" / "archive.tar.gz").write_bytes(b"x" * 5000)
    (root / "empty").write_bytes(b"")
    (root / ".hidden").write_bytes(b"hidden")
    (root / ".hiddendir").mkdir()
    (root / ".hiddendir" / "inside.py").write_bytes(b"print()\n")
    (root / "sparse.bin").write_bytes(b"")
    with open(root / "sparse.bin", "r+b") as f:
        f.truncate(10 * 2**20)                               # allocated << size
    os.link(root / "a" / "one.txt", root / "hardlink.txt")
    os.symlink("a/one.txt", root / "link-to-file")
    os.symlink("a", root / "link-to-dir")
    os.symlink("does-not-exist", root / "broken-link")
    os.symlink("..", root / "a" / "b" / "loop")               # a loop when following links
    os.mkfifo(root / "fifo")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(root / "sock"))
    sock.close()
    bad = os.fsencode(str(root)) + b"/bad-\xff\xfe-name.txt"  # not valid UTF-8
    with open(bad, "wb") as f:
        f.write(b"bad name")
    (root / "new\nline.txt").write_bytes(b"newline in name")
    locked = root / "locked"
    locked.mkdir()
    (locked / "secret.txt").write_bytes(b"cannot list me")
    locked.chmod(0o000)
    listable = root / "listable-only"              # r-- : names can be read, but not lstat'ed
    listable.mkdir()
    (listable / "f").write_bytes(b"abc")
    listable.chmod(0o444)
    unreadable = root / "unreadable.txt"
    unreadable.write_bytes(b"no read")
    unreadable.chmod(0o000)
    out = {"locked": locked, "listable": listable, "bad": Path(os.fsdecode(bad)), "fifo": root / "fifo"}
    if IS_ROOT:
        os.mknod(root / "null-device", 0o600 | 0o020000, os.makedev(1, 3))  # a char device like /dev/null
        out["chardev"] = root / "null-device"
    return out


@pytest.fixture
def awkward_tree(tmp_path: Path):
    tree = tmp_path / "tree"
    tree.mkdir()
    special = make_awkward_tree(tree)
    yield tree, special
    special["locked"].chmod(0o755)
    special["listable"].chmod(0o755)


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    d = tmp_path / "out"
    d.mkdir()
    return d


def run_config(spec: str, tree: Path, out: Path, *flags: str, chunk_files: int = 4):
    """The RunConfig ``exoflow run SPEC TREE --chunk-files N FLAGS --out OUT`` makes (SPEC: a job,
    a job file or ``a+b``; TREE: a PATH or a list of them), with OUT created."""
    from exoflow.composed import load
    from exoflow.config import configure, run_parser
    job = load(spec)
    paths = [str(t) for t in tree] if isinstance(tree, list) else [str(tree)]
    cfg = configure(job, run_parser(job, "test").parse_args([*paths, "--chunk-files", str(chunk_files),
                                                             *flags])).run
    cfg.out_dir = str(out)
    Path(out).mkdir()
    return cfg


def run_here(spec: str, tree: Path, out: Path, *flags: str, chunk_files: int = 4, executor=None) -> dict:
    """``run_config``'s run on ``executor`` (default: in this process, ``executors.InProcess``);
    returns its summary."""
    from exoflow.executors import InProcess
    from exoflow.runner import run
    return run(executor or InProcess(), run_config(spec, tree, out, *flags, chunk_files=chunk_files))


def exiting(pid: int) -> bool:
    """The process has begun to exit (PF_EXITING in /proc/PID/stat's flags, linux/sched.h; or is a
    zombie): a signal now is not seen, and the exit code is the run's. Its teardown takes a few ms
    after ``os._exit``, while ``Popen.poll`` still says it runs."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return True
    return fields[0] in ("Z", "X") or bool(int(fields[6]) & 0x4)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (free when this returns)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def dask_cluster(nworkers: int, nthreads: int, cwd: str | None = None):
    """A real ``dask scheduler`` and ``dask worker`` (run in ``cwd``) on 127.0.0.1, as a user
    starts them; yields (address, the worker command's pid) once all workers have joined."""
    port = free_port()
    addr = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", str(port), "--dashboard-address", "127.0.0.1:0"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)]
    procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", addr, "--nworkers",
                                   str(nworkers), "--nthreads", str(nthreads), "--no-dashboard"], cwd=cwd,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env))
    try:
        from distributed import Client
        deadline = time.time() + 60
        while True:
            try:
                with Client(addr, timeout="2s") as c:
                    if len(c.scheduler_info()["workers"]) == nworkers:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                pytest.fail("the test scheduler and workers did not start")
            time.sleep(0.3)
        yield addr, procs[1].pid
    finally:
        for p in reversed(procs):
            p.terminate()
            p.wait(timeout=30)


def on_terminal(argv: list[str], env: dict | None = None) -> tuple[int, str]:
    """Run ``argv`` with its stderr on a pseudo-terminal (stdout discarded): (exit code, all it
    wrote there, decoded)."""
    import pty
    master, slave = pty.openpty()
    p = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    seen = b""
    while True:
        try:
            block = os.read(master, 65536)
        except OSError:           # the terminal's other end is closed
            break
        if not block:
            break
        seen += block
    p.wait(timeout=60)
    os.close(master)
    return p.returncode, seen.decode(errors="replace")
