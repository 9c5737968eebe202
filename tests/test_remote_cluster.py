"""--scheduler: a job submitted to a separately started scheduler and workers, as on a real cluster."""
from __future__ import annotations

import http.server
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import dask_cluster, exoflow, free_port, make_grid, read_dataset
from oracle import walk_lstat


@pytest.fixture(scope="module")
def scheduler():
    with dask_cluster(nworkers=2, nthreads=1) as (addr, worker_pid):
        yield addr, worker_pid


def test_inventory_on_a_running_scheduler(scheduler, tmp_path):
    scheduler, _ = scheduler
    tree = make_grid(tmp_path / "t", 5, 30, lambda f: b"x" * f, ".txt")
    r = exoflow("run", "inventory", str(tree), "--scheduler", scheduler, "--out", str(tmp_path / "o"),
                "--chunk-files", "7")
    assert r.returncode == 0, r.stderr
    assert scheduler in r.stderr                      # says where it ran
    t = read_dataset(tmp_path / "o" / "files")
    assert {p.encode(): (s, "file") for p, s in zip(t.column("path").to_pylist(), t.column("size").to_pylist())} \
        == walk_lstat(str(tree))


def test_gpu_run_on_a_cluster_without_gpu_workers_is_a_clear_error(scheduler, tmp_path):
    """Chunk tasks of a --backend gpu run ask for the GPU resource: with no worker advertising it they
    would wait for ever, so the run stops at once."""
    scheduler, _ = scheduler
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "a").write_bytes(b"abc")
    r = exoflow("run", "profile", str(tree), "--backend", "gpu", "--scheduler", scheduler,
                "--out", str(tmp_path / "o"), "-q", timeout=60)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and "no worker of the cluster advertises the resource GPU=1" in r.stderr


def test_users_own_job_file_is_shipped_to_remote_workers(scheduler, tmp_path):
    """The workers cannot import the user's file: its code travels by value."""
    scheduler, _ = scheduler
    job_dir = tmp_path / "elsewhere"
    job_dir.mkdir()
    src = (Path(__file__).parents[1] / "jobs" / "inventory.py").read_text()
    src = src.replace("kernels=[inventory_columns]", "kernels=[inventory_columns, doubled]")
    src = src.replace("job = Job(", "def doubled(batch):\n    import pyarrow.compute as pc\n"
                      "    return {'size2': pc.multiply(batch.table.column('size'), 2)}\n\n\njob = Job(")
    assert '"version_id"]' in src                   # the recipe's output columns end there
    src = src.replace('"version_id"]', '"version_id", "size2"]')
    (job_dir / "sizes_job.py").write_text(src)
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "a").write_bytes(b"abc")
    r = exoflow("run", str(job_dir / "sizes_job.py"), str(tree), "--scheduler", scheduler,
                "--out", str(tmp_path / "o"), "-q")
    assert r.returncode == 0, r.stderr
    assert read_dataset(tmp_path / "o" / "files").column("size2").to_pylist() == [6]


def test_a_worker_killed_mid_run_loses_and_doubles_nothing(scheduler, tmp_path):
    """Dask recomputes the lost tasks; deterministic part names mean no row is lost or doubled."""
    import psutil
    addr, worker_cli = scheduler
    tree = make_grid(tmp_path / "t", 40, 250)
    out = tmp_path / "o"
    p = subprocess.Popen([sys.executable, "-m", "exoflow.cli", "run", "profile", str(tree), "--scheduler", addr,
                          "--out", str(out), "--chunk-files", "100", "-q"], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and p.poll() is None and len(list((out / "files").glob("*.parquet"))
                                                                  if (out / "files").exists() else []) < 3:
        time.sleep(0.01)
    victims = psutil.Process(worker_cli).children()
    assert p.poll() is None and victims, "the run ended before a worker could be killed"
    victims[0].kill()                                   # SIGKILL: the worker's results are gone
    err = p.communicate(timeout=120)[1]
    assert p.returncode == 0, err
    paths = read_dataset(out / "files").column("path").to_pylist()
    assert len(paths) == len(set(paths)) == 10_000
    from distributed import Client
    with Client(addr, timeout="10s") as c:              # the nanny brings the worker back for later tests
        c.wait_for_workers(2, timeout=30)


# ---- --scheduler at something that is not a Dask scheduler -------------------------------------

def _listen(handle) -> int:
    """A TCP server on 127.0.0.1 that hands each connection to ``handle`` in a thread; returns its port."""
    server = socket.create_server(("127.0.0.1", 0))

    def accept() -> None:
        while True:
            conn, _ = server.accept()
            threading.Thread(target=handle, args=(conn,), daemon=True).start()
    threading.Thread(target=accept, daemon=True).start()
    return server.getsockname()[1]


class _QuietHTTP(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def _http_proxy(conn) -> None:      # answers whatever arrives with HTTP: "HTTP/1.1" read as a length is 3 EiB
    conn.recv(65536)
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    conn.close()


def _garbage(conn) -> None:
    conn.sendall(os.urandom(4096))
    time.sleep(30)


def _silent(conn) -> None:
    time.sleep(30)


def _tls_server(cert: Path, key: Path):
    def handle(conn) -> None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        try:
            ctx.wrap_socket(conn, server_side=True).recv(100)
        except OSError:
            pass
        time.sleep(30)
    return handle


@pytest.fixture(scope="module")
def not_schedulers(tmp_path_factory) -> dict[str, str]:
    """Addresses where something other than a Dask scheduler answers, or nothing does."""
    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _QuietHTTP)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    refused = free_port()
    addresses = {"http server": web.server_address[1], "http proxy": _listen(_http_proxy),
                 "garbage": _listen(_garbage), "silent": _listen(_silent),
                 "closes at once": _listen(socket.socket.close), "refused": refused}
    if shutil.which("openssl"):
        d = tmp_path_factory.mktemp("tls")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", d / "key.pem",
                        "-out", d / "cert.pem", "-days", "2", "-subj", "/CN=localhost"],
                       check=True, capture_output=True)
        addresses["tls server"] = _listen(_tls_server(d / "cert.pem", d / "key.pem"))
    out = {kind: f"tcp://127.0.0.1:{port}" for kind, port in addresses.items()}
    out["unresolvable"] = "tcp://exoflow-no-such-host.invalid:8786"      # .invalid never resolves (RFC 6761)
    return out


NOT_A_SCHEDULER = {"http server", "http proxy", "garbage", "silent", "closes at once", "tls server"}


@pytest.mark.parametrize("kind", sorted(NOT_A_SCHEDULER | {"refused", "unresolvable"}))
def test_what_answers_at_scheduler_is_checked_within_the_connect_timeout(not_schedulers, kind):
    """Dask's connect read an HTTP reply as a 3 EiB message length (MemoryError) and waited for ever on a
    server that says nothing: one bounded question instead, one line."""
    from exoflow.cluster import check_scheduler
    from exoflow.errors import UsageError
    if kind not in not_schedulers:
        pytest.skip("openssl is not installed: no certificate for the TLS server")
    address = not_schedulers[kind]
    with pytest.raises(UsageError) as e:
        check_scheduler(address, timeout=2)
    message = str(e.value)
    expected = (f"{address} is not a Dask scheduler (" if kind in NOT_A_SCHEDULER
                else f"cannot reach scheduler {address}: ")
    assert message.startswith(expected) and "\n" not in message, message


def test_an_http_proxy_at_scheduler_is_one_line_and_exit_2(not_schedulers, tmp_path):
    r = exoflow("run", "inventory", str(tmp_path), "--scheduler", not_schedulers["http proxy"],
                "--out", str(tmp_path / "o"), timeout=60)
    assert r.returncode == 2
    assert r.stderr.splitlines() == [f"exoflow: error: {not_schedulers['http proxy']} is not a Dask scheduler "
                                     "(its answer is not in Dask's protocol)"]
    assert not (tmp_path / "o").exists()


def test_a_silent_server_stops_at_dasks_connect_timeout(not_schedulers, tmp_path):
    r = exoflow("run", "inventory", str(tmp_path), "--scheduler", not_schedulers["silent"], "-q",
                "--out", str(tmp_path / "o"), env={**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"},
                timeout=60)
    assert r.returncode == 2
    assert r.stderr.splitlines() == [f"exoflow: error: {not_schedulers['silent']} is not a Dask scheduler "
                                     "(no answer in Dask's protocol within 2 s)"]


def test_a_dask_worker_is_not_a_scheduler(scheduler):
    from distributed import Client

    from exoflow.cluster import check_scheduler
    from exoflow.errors import UsageError
    addr, _ = scheduler
    with Client(addr, timeout="10s") as c:
        worker = next(iter(c.scheduler_info()["workers"]))
    check_scheduler(addr, timeout=5)                    # the scheduler itself passes
    with pytest.raises(UsageError, match=f"^{worker} is not a Dask scheduler \\(it is a Dask Worker\\)$"):
        check_scheduler(worker, timeout=5)
