"""The running cluster's warm driver (exoflow/driver.py): a run handed to it is the command's own run.

The oracle for "the same run" is the same command run in its own process against the same
cluster (``--scheduler-file``, which never goes through the driver); which way a run went is
the driver's log, and the command's imports are its sys.modules."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil

from conftest import exiting, make_grid, on_terminal
from test_service import Cluster, cluster, one_line_exit_2, rows  # noqa: F401  (cluster: the fixture)


def driver_runs(c: Cluster) -> int:
    return (c.state / "logs" / "driver.log").read_text().count("exoflow driver: run ")


def start(c: Cluster) -> dict:
    r = c("cluster", "start", "--workers", "1", "--no-dashboard")
    assert r.returncode == 0, r.stderr
    assert (c.state / "driver.sock").stat().st_mode & 0o777 == 0o600
    return c.status()


def test_a_run_through_the_driver_is_the_command_s_own(cluster, tmp_path):
    tree = make_grid(tmp_path / "t", 3, 20, lambda f: b"x" * f)
    s = start(cluster)
    cases = [(["run", "inventory", str(tree)], 0),
             (["run", "inventory", str(tree), "--format", "paths"], 0),
             (["run", "inventory", str(tree / "missing")], 2),      # bad PATH
             (["run", "inventory", str(tree), "--bogus"], 2),      # usage error
             (["run", "nosuchjob", str(tree)], 2)]
    for i, (argv, code) in enumerate(cases):
        before = driver_runs(cluster)
        via = cluster(*argv, "--out", str(tmp_path / f"d{i}"))
        assert driver_runs(cluster) == before + 1, (argv, via.stderr)
        here = cluster(*argv, "--out", str(tmp_path / f"h{i}"), "--scheduler-file", s["scheduler_file"])
        assert (via.returncode, here.returncode) == (code, code), (argv, via.stderr, here.stderr)
        if "--format" in argv:      # rows come part by part, in the order chunks end: as a set
            assert sorted(via.stdout.splitlines()) == sorted(here.stdout.splitlines()) != [], argv
        else:
            assert via.stdout == here.stdout, argv
        if code == 2:
            one_line_exit_2(via)
            assert via.stderr == here.stderr
        else:
            assert via.stderr.splitlines()[0].endswith("(the running exoflow cluster)")
            assert len(via.stderr.splitlines()) == len(here.stderr.splitlines()) == 2, via.stderr
            assert via.stderr.splitlines()[1].split(" in ")[0] == here.stderr.splitlines()[1].split(" in ")[0]
            assert rows(tmp_path / f"d{i}") == rows(tmp_path / f"h{i}") and len(rows(tmp_path / f"d{i}")) == 60
    # the run's child works where the command does (a relative PATH and --out) and with its umask
    before = driver_runs(cluster)
    r = subprocess.run([sys.executable, "-m", "exoflow.cli", "run", "inventory", "t", "--out", "rel", "-q"],
                       cwd=tmp_path, env=cluster.env, capture_output=True, text=True, timeout=60,
                       preexec_fn=lambda: os.umask(0o077))
    assert r.returncode == 0 and driver_runs(cluster) == before + 1, r.stderr
    assert len(rows(tmp_path / "rel")) == 60 and (tmp_path / "rel" / "summary.json").stat().st_mode & 0o777 == 0o600
    # the command hands the run over without importing Dask, Arrow or pandas
    check = ("import sys; from exoflow.cli import main; code = main(sys.argv[1:]); "
             "print(code, [m for m in ('dask', 'distributed', 'pandas', 'pyarrow', 'numpy') if m in sys.modules])")
    r = subprocess.run([sys.executable, "-c", check, "run", "inventory", str(tree), "-q", "--out", str(tmp_path / "m")],
                       env=cluster.env, capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "0 []", r.stderr

    # Ctrl-C on the command reaches the run: interrupted as a run in the command's own process is
    big = make_grid(tmp_path / "big", 40, 400)
    p = subprocess.Popen([sys.executable, "-m", "exoflow.cli", "run", "checksum", str(big), "--out",
                          str(tmp_path / "c"), "--chunk-files", "20", "-q"], env=cluster.env,
                         stderr=subprocess.PIPE, text=True)
    files = tmp_path / "c" / "files"
    deadline = time.monotonic() + 60
    while not (files.is_dir() and any(files.glob("part-*.parquet"))) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert p.poll() is None, "the run ended before it could be interrupted"
    p.send_signal(signal.SIGINT)          # the command alone: the run's process is the driver's child
    err = p.communicate(timeout=60)[1]
    assert p.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err and not (tmp_path / "c" / "summary.json").exists()
    assert psutil.Process(s["pids"]["driver"]).children() == []

    # stderr on a terminal: the run's child sees the terminal, and draws its progress line there
    code, text = on_terminal([sys.executable, "-m", "exoflow.cli", "run", "inventory", str(big), "--out",
                              str(tmp_path / "tty"), "--chunk-files", "100"], env=cluster.env)
    assert code == 0, text
    assert "\r" in text and "entries/s" in text and "(the running exoflow cluster)" in text

    # the driver ends with its scheduler (as after an --idle-timeout), and takes its socket along
    driver = psutil.Process(s["pids"]["driver"])
    psutil.Process(s["pids"]["scheduler"]).kill()
    driver.wait(30)
    assert not (cluster.state / "driver.sock").exists()



def test_a_stale_or_refusing_driver_socket_falls_back_to_the_command(cluster, tmp_path):
    tree = make_grid(tmp_path / "t", 2, 10)
    s = start(cluster)
    sock = cluster.state / "driver.sock"
    sock.chmod(0o660)                     # not this user's alone: never used
    r = cluster("run", "inventory", str(tree), "--out", str(tmp_path / "o1"))
    assert r.returncode == 0, r.stderr
    note, first = r.stderr.splitlines()[:2]
    assert "the cluster's driver cannot take this run" in note and "running it here" in note
    assert first.endswith("(the running exoflow cluster)") and len(rows(tmp_path / "o1")) == 20
    driver = psutil.Process(s["pids"]["driver"])
    driver.kill()                         # the socket stays behind, and nothing listens on it
    driver.wait(10)
    sock.chmod(0o600)
    r = cluster("run", "inventory", str(tree), "--out", str(tmp_path / "o2"))
    assert r.returncode == 0, r.stderr
    assert "the cluster's driver cannot take this run" in r.stderr.splitlines()[0], r.stderr
    assert rows(tmp_path / "o2") == rows(tmp_path / "o1")
    assert driver_runs(cluster) == 0


def test_ctrl_c_at_any_moment_of_a_run_through_the_driver(cluster, tmp_path):
    """A Ctrl-C from the command's start-up (after Python's own) to its run's, through the driver: exit 130 and one
    line, never a traceback (a SIGINT raised in the run's child while it started could leave a lock
    of the logging module held, and the run hung for ever), never lost (the run finished as if
    none came), and no child of the driver left."""
    big = make_grid(tmp_path / "big", 40, 400)
    s = start(cluster)
    driver = psutil.Process(s["pids"]["driver"])
    interrupted = 0
    for i, delay in enumerate([0.08 + 0.03 * k for k in range(19)]):
        out = tmp_path / f"o{i}"
        p = subprocess.Popen([sys.executable, "-m", "exoflow", "run", "checksum", str(big), "--out", str(out), "-q",
                              "--chunk-files", "20"], env=cluster.env, stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        if p.poll() is not None or exiting(p.pid):     # ended before the Ctrl-C: not this case
            p.communicate(timeout=60)
            continue
        p.send_signal(signal.SIGINT)
        err = p.communicate(timeout=60)[1]
        assert p.returncode == 130 and len(err.strip().splitlines()) == 1, (delay, err)
        assert "interrupted" in err and "Traceback" not in err, err
        # once the summary is written the run has finished, and says so
        assert (out / "summary.json").exists() == ("after the run had finished" in err), (delay, err)
        deadline = time.monotonic() + 10
        while driver.children() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert driver.children() == []
        interrupted += 1
    assert interrupted >= 10, "too few runs were still going when interrupted"
