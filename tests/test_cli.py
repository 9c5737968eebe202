"""The command as a user meets it: exit codes, one-line errors, output directories, Ctrl-C."""
from __future__ import annotations

import ast
import fnmatch
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

from conftest import REPO, exoflow, make_grid, read_dataset
from oracle import walk_lstat

from exoflow.sinks import claim_out_dir


def one_line_error(r: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in r.stderr, r.stderr
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert lines and "error" in lines[0], r.stderr
    return lines[0]


def test_nonexistent_path(tmp_path):
    r = exoflow("run", "inventory", str(tmp_path / "nope"), "--out", str(tmp_path / "o"))
    assert r.returncode == 2
    assert "no such file or directory" in one_line_error(r)
    assert not (tmp_path / "o").exists()


def test_unknown_job_and_bad_job_file(tmp_path):
    r = exoflow("run", "nosuchjob", str(tmp_path))
    assert r.returncode == 2 and "unknown job 'nosuchjob'" in one_line_error(r)
    bad = tmp_path / "bad.py"
    bad.write_text("raise RuntimeError('boom')\n")
    r = exoflow("run", str(bad), str(tmp_path))
    assert r.returncode == 2 and "failed to load" in one_line_error(r)
    nojob = tmp_path / "nojob.py"
    nojob.write_text("x = 1\n")
    r = exoflow("run", str(nojob), str(tmp_path))
    assert r.returncode == 2 and "does not define" in one_line_error(r)


def test_bad_option_values(tmp_path):
    for args in (["--max-depth", "0"], ["--min-size", "12 parsecs"], ["--chunk-files", "x"], ["--bogus"],
                 ["--piece-size", "0"], ["--chunk-bytes", "0"], ["--dashboard", "nonsense:xx"],
                 ["--memory-limit", "lots"]):
        r = exoflow("run", "inventory", str(tmp_path), *args)
        assert r.returncode == 2, args
        one_line_error(r)


def test_unreachable_scheduler(tmp_path):
    with socket.socket() as s:          # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = exoflow("run", "inventory", str(tmp_path), "--scheduler", f"tcp://127.0.0.1:{port}",
                "--out", str(tmp_path / "o"), timeout=60)
    assert r.returncode == 2
    assert "cannot reach scheduler" in one_line_error(r)
    assert not (tmp_path / "o").exists()          # nothing was written
    r = exoflow("run", "inventory", str(tmp_path), "--scheduler", "localhost:8786", "--out", str(tmp_path / "o2"))
    assert r.returncode == 2 and "expected an address like tcp://" in one_line_error(r)


def test_out_dir_is_never_silently_replaced(tmp_path):
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "f").write_text("x")
    out = tmp_path / "o"
    assert exoflow("run", "inventory", str(tree), "--out", str(out), "-q", "--no-dashboard").returncode == 0
    r = exoflow("run", "inventory", str(tree), "--out", str(out), "-q", "--no-dashboard")
    assert r.returncode == 2 and "--overwrite" in one_line_error(r)
    (tree / "g").write_text("y")
    r = exoflow("run", "inventory", str(tree), "--out", str(out), "-q", "--no-dashboard", "--overwrite")
    assert r.returncode == 0 and read_dataset(out / "files").num_rows == 2
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    r = exoflow("run", "inventory", str(tree), "--out", str(precious), "--overwrite", "--no-dashboard")
    assert r.returncode == 2 and "not an exoflow result" in one_line_error(r)
    assert (precious / "thesis.tex").read_text() == "years of work"


def test_default_out_dir_and_report(tmp_path):
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "a.txt").write_text("hello")
    r = exoflow("run", "inventory", str(tree), "--no-dashboard", cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    outs = [p for p in tmp_path.iterdir() if p.name.startswith("exoflow-inventory-")]
    assert len(outs) == 1 and (outs[0] / "summary.json").exists()
    assert "By extension" in r.stdout and "a.txt" in r.stdout
    assert "1 files" in r.stderr and "files/s" in r.stderr
    assert "dashboard" not in r.stderr            # --no-dashboard: no link to a page that is not served


def test_runs_started_together_get_their_own_default_out_dirs(tmp_path):
    """Two runs started at once in one directory (the same second: the same readable name) both
    complete, each into a directory of its own that the .gitignore pattern exoflow-*-2*/ covers."""
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "a.txt").write_text("hello")
    work = tmp_path / "work"
    work.mkdir()
    cmd = [sys.executable, "-m", "exoflow.cli", "run", "inventory", str(tree), "--json", "--no-dashboard",
           "--workers", "1"]
    procs = [subprocess.Popen(cmd, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=120)
        assert p.returncode == 0, stderr
        summary = json.loads(stdout)
        assert summary["files"] == 1
        outs.append(Path(summary["out"]))
    assert outs[0] != outs[1]
    assert sorted(outs) == sorted(p.resolve() for p in work.iterdir())
    for out in outs:
        assert fnmatch.fnmatch(out.name, "exoflow-*-2*")
        assert json.loads((out / "summary.json").read_text())["out"] == str(out)
        assert read_dataset(out / "files").column("path").to_pylist() == [str(tree / "a.txt")]


def _claim_after(barrier, base: str, names) -> None:
    barrier.wait()
    names.put(claim_out_dir(base))


def test_claim_out_dir_gives_each_of_many_racing_processes_its_own():
    """Eight processes claim one name at the same moment: eight directories, base, base-2 … base-8."""
    import multiprocessing as mp
    import tempfile
    ctx = mp.get_context("fork")
    barrier, names = ctx.Barrier(8), ctx.Queue()
    with tempfile.TemporaryDirectory() as d:
        base = os.path.join(d, "exoflow-x-20000101-000000")
        procs = [ctx.Process(target=_claim_after, args=(barrier, base, names)) for _ in range(8)]
        for p in procs:
            p.start()
        got = sorted(names.get(timeout=30) for _ in procs)
        for p in procs:
            p.join(30)
            assert p.exitcode == 0
        want = sorted([base] + [f"{base}-{n}" for n in range(2, 9)])
        assert got == want and sorted(str(p) for p in Path(d).iterdir()) == want


def test_json_goes_to_stdout_alone(tmp_path):
    tree = tmp_path / "t"
    tree.mkdir()
    for i in range(5):
        (tree / f"{i}.bin").write_bytes(b"x" * (i * 100))
    r = exoflow("run", "inventory", str(tree), "--json", "--out", str(tmp_path / "o"), "--no-dashboard")
    s = json.loads(r.stdout)
    assert r.returncode == 0
    assert (s["files"], s["bytes"], s["errors"]) == (5, 1000, 0)
    assert s["result"]["by_extension"] == [{"name": "bin", "files": 5, "bytes": 1000}]
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["files"] == 5


def test_jobs_lists_the_shipped_jobs():
    """One line per job file in jobs/: its name and the first line of its docstring."""
    r = exoflow("jobs")
    assert r.returncode == 0, r.stderr
    want = {f.stem: ast.get_docstring(ast.parse(f.read_text())).splitlines()[0]
            for f in (REPO / "jobs").glob("*.py") if not f.name.startswith("_")}
    assert "inventory" in want and len(want) >= 6
    assert dict(line.split(None, 1) for line in r.stdout.splitlines()) == want


def test_ctrl_c_leaves_only_complete_parts(tmp_path):
    tree = make_grid(tmp_path / "t", 40, 500)
    out = tmp_path / "o"
    p = subprocess.Popen([sys.executable, "-m", "exoflow.cli", "run", "inventory", str(tree), "--out", str(out),
                          "--chunk-files", "50", "--workers", "1", "--no-dashboard", "-q"],
                         stderr=subprocess.PIPE, text=True, start_new_session=True)

    def parts() -> list[Path]:
        return sorted((out / "files").glob("part-*.parquet")) if (out / "files").is_dir() else []
    deadline = time.monotonic() + 60
    while not parts() and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    # 400 chunks on one worker take seconds: the first part comes long before the last
    assert p.poll() is None, "the run ended before it could be interrupted"
    assert parts(), "no part was written within 60 s"
    os.killpg(p.pid, signal.SIGINT)      # what a terminal's Ctrl-C does: the whole process group
    err = p.communicate(timeout=60)[1]
    assert p.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err, err
    assert not (out / "summary.json").exists()
    leftovers = [f for f in (out / "files").iterdir() if not f.name.endswith(".parquet")]
    assert leftovers == []
    rows = [path for part in parts() for path in pq.read_table(part).column("path").to_pylist()]
    assert 0 < len(rows) == len(set(rows)) < 20_000         # complete parts of an unfinished run
    assert {r.encode() for r in rows} <= set(walk_lstat(str(tree)))


def test_readme_job_example_runs(tmp_path):
    """The job shown in README's 'Writing a job' works as a user's own job file."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme[readme.index("## Writing a job"):]
    code = section[section.index("```python") + len("```python"):section.index("```", section.index("```python") + 9)]
    job_file = tmp_path / "my_job.py"
    job_file.write_text(code)
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "small.txt").write_bytes(b"x" * 10)
    (tree / "large.iso").write_bytes(b"x" * 5000)
    r = exoflow("run", str(job_file), str(tree), "--threshold", "1000", "--out", str(tmp_path / "o"),
                "--no-dashboard", "-q")
    assert r.returncode == 0, r.stderr
    t = read_dataset(tmp_path / "o" / "files")
    assert dict(zip(t.column("path").to_pylist(), t.column("big").to_pylist())) == \
        {str(tree / "small.txt"): False, str(tree / "large.iso"): True}


def test_progress_line_on_a_terminal(tmp_path):
    """With stderr on a terminal, a redrawn progress line shows files/s, bytes/s and an ETA."""
    import pty
    tree = make_grid(tmp_path / "t", 20, 300, lambda f: b"x" * 100)
    master, slave = pty.openpty()
    p = subprocess.Popen([sys.executable, "-m", "exoflow.cli", "run", "inventory", str(tree), "--out",
                          str(tmp_path / "o"), "--no-dashboard", "--chunk-files", "100", "--workers", "1"],
                         stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    seen = b""
    while True:
        try:
            block = os.read(master, 65536)
        except OSError:
            break
        if not block:
            break
        seen += block
    p.wait(timeout=60)
    os.close(master)
    text = seen.decode(errors="replace")
    assert p.returncode == 0, text
    assert "\r" in text and "files/s" in text and "/s" in text
    assert "ETA" in text or "listing" in text
    # without a terminal there is no progress line
    r = exoflow("run", "inventory", str(tree), "--out", str(tmp_path / "o2"), "--no-dashboard")
    assert r.returncode == 0, r.stderr
    assert "files/s" in r.stderr and "\r" not in r.stderr and "ETA" not in r.stderr
