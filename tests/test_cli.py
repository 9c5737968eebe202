"""The command as a user meets it: exit codes, one-line errors, output directories, Ctrl-C."""
from __future__ import annotations

import ast
import contextlib
import fnmatch
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

from conftest import REPO, exiting, exoflow, free_port, make_grid, on_terminal, read_dataset
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
    cases = (["--max-depth", "0"], ["--min-size", "12 parsecs"], ["--chunk-files", "x"], ["--bogus"],
             ["--piece-size", "0"], ["--chunk-bytes", "0"], ["--dashboard", "nonsense:xx"], ["--memory-limit", "lots"])
    for args, r in zip(cases, run_all([("inventory", str(tmp_path), *args) for args in cases], tmp_path)):
        assert r.returncode == 2, args
        one_line_error(r)


def test_unreachable_scheduler(tmp_path):
    port = free_port()
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
    assert "inventory: 1 regular file, 5 B listed, 0 B read in" in r.stderr and "files/s" in r.stderr
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


HEAVY = ("dask", "distributed", "pandas", "pyarrow", "numpy", "cloudpickle")
LEAN_CHECK = """
import sys
from exoflow.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as e:
    code = e.code
print(code, sorted(m for m in HEAVY if m in sys.modules), file=sys.stderr)
"""


def test_commands_that_need_no_dask_import_none_of_it(tmp_path):
    """--version, --help, jobs, cluster status (none running: 1) and show's usage errors import no Dask, Arrow or pandas
    (they are most of a command's start-up): the modules loaded, as sys.modules has them."""
    cases = [(["--version"], 0), (["--help"], 0), (["jobs"], 0), (["cluster", "status"], 1),
             (["show", str(tmp_path / "none")], 2)]
    for argv, code in cases:
        r = subprocess.run([sys.executable, "-c", f"HEAVY = {HEAVY!r}" + LEAN_CHECK, *argv],
                           capture_output=True, text=True, timeout=60)
        assert r.stderr.splitlines()[-1] == f"{code} []", (argv, r.stderr)


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


def test_ctrl_c_twice_is_still_one_line(tmp_path):
    """A second SIGINT while the run winds down after the first: exit 130 and the one line, nothing
    after it (multiprocessing's resource tracker said "leaked semaphore objects" once we had gone)."""
    tree = make_grid(tmp_path / "t", 10, 50)
    p = subprocess.Popen([sys.executable, "-m", "exoflow.cli", "run", "checksum", str(tree), "--out",
                          str(tmp_path / "o"), "--chunk-files", "50", "--workers", "2", "--no-dashboard", "-q"],
                         stderr=subprocess.PIPE, text=True, env={**os.environ, "EXOFLOW_TEST_DELAY": "chunk=2"})
    time.sleep(4)                                       # the cluster is up, chunk tasks are running
    assert p.poll() is None, "the run ended before it could be interrupted"
    p.send_signal(signal.SIGINT)
    time.sleep(0.3)
    with contextlib.suppress(ProcessLookupError):
        p.send_signal(signal.SIGINT)
    err = p.communicate(timeout=60)[1]                  # the tracker, which shares stderr, has ended too
    assert p.returncode == 130 and "interrupted" in err, err
    assert len(err.strip().splitlines()) == 1, err


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
    tree = make_grid(tmp_path / "t", 20, 300, lambda f: b"x" * 100)
    code, text = on_terminal([sys.executable, "-m", "exoflow.cli", "run", "inventory", str(tree), "--out",
                              str(tmp_path / "o"), "--no-dashboard", "--chunk-files", "100", "--workers", "1"])
    assert code == 0, text
    assert "\r" in text and "entries/s" in text and "/s" in text
    assert "ETA" in text or "listing" in text
    # without a terminal there is no progress line
    r = exoflow("run", "inventory", str(tree), "--out", str(tmp_path / "o2"), "--no-dashboard")
    assert r.returncode == 0, r.stderr
    assert "files/s" in r.stderr and "\r" not in r.stderr and "ETA" not in r.stderr


# ---- bad options: one line, exit 2, before anything starts, nothing left behind ----------------

def tree_state(root: Path) -> dict[str, tuple]:
    """Everything under ``root``: relative path -> (type, size, inode, content of small files)."""
    state = {}
    for d, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(d, name)
            st = os.lstat(p)
            small = os.path.isfile(p) and not os.path.islink(p) and st.st_size < 1 << 20
            state[os.path.relpath(p, root)] = (st.st_mode, st.st_size, st.st_ino,
                                               Path(p).read_bytes() if small else None)
    return state


def refused(r: subprocess.CompletedProcess, message: str) -> None:
    """Exit 2 and exactly one line on stderr, naming the problem."""
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and "error" in lines[0] and message in lines[0], r.stderr


def run_all(cases: list[tuple], cwd: Path) -> list[subprocess.CompletedProcess]:
    """Each case's exoflow command, a few at a time (each only starts Python and gives up)."""
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(lambda args: exoflow("run", *args, cwd=str(cwd)), cases))


def test_every_kind_of_bad_option_is_refused_before_anything_starts(tmp_path):
    import pyarrow as pa
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "a.txt").write_text("a")
    listing = tmp_path / "list.txt"
    listing.write_text(f"{tree / 'a.txt'}\n")
    old = tmp_path / "old.parquet"           # a manifest holding xxh3-128 digests only
    pq.write_table(pa.table({"path": ["t/a.txt"], "xxh3_128": ["0" * 32]}), old)
    out = ["--out", str(tmp_path / "new" / "out")]
    kinds = {   # kind -> (job, options, what the one line says)
        "negative count": ("inventory", ["--top", "-1"], "at least 0"),
        "negative count, scan": ("scan", ["--top", "-1"], "at least 0"),
        "negative count, checksum": ("checksum", ["--show", "-1"], "at least 0"),
        "bounds that exclude every file": ("inventory", ["--min-size", "10k", "--max-size", "1k"], "no file can match"),
        "needs --verify": ("checksum", ["--trust-mtime"], "give --verify"),
        "needs --verify, --show": ("checksum", ["--show", "5"], "give --verify"),
        "needs --out": ("inventory", ["--overwrite"], "--out DIR"),
        "embedded cluster only": ("inventory", ["--scheduler", "tcp://127.0.0.1:9", "--workers", "2"],
                                  "embedded cluster"),
        "embedded cluster only, dashboard": ("inventory", ["--scheduler", "tcp://127.0.0.1:9", "--no-dashboard"],
                                             "embedded cluster"),
        "job reads no contents": ("inventory", ["--piece-size", "1M"], "read file contents"),
        "walk option, nothing walked": ("inventory", ["--from-list", str(listing), "--include", "*.txt"], "no PATH"),
        "hash the old manifest lacks": ("checksum", ["--verify", str(old), "--hash", "sha256"], "has only xxh3-128"),
    }
    if importlib.util.find_spec("dask_cuda") is None:
        kinds["GPU backend without dask-cuda, embedded cluster"] = ("profile", ["--backend", "gpu"],
                                                                     "dask-cuda is not installed")
    elif importlib.util.find_spec("cupy") is None:
        kinds["GPU backend without CuPy, embedded cluster"] = ("profile", ["--backend", "gpu"], "CuPy is not installed")
    before = tree_state(tmp_path)
    cases = [(job, *([] if "--from-list" in opts else [str(tree)]), *opts, *([] if "--overwrite" in opts else out))
             for job, opts, _ in kinds.values()]
    for (kind, (_, _, message)), r in zip(kinds.items(), run_all(cases, tmp_path)):
        refused(r, message)
    assert tree_state(tmp_path) == before           # no --out, no default exoflow-* directory, nothing


def test_out_that_cannot_be_made_is_refused(tmp_path):
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "a.txt").write_text("a")
    (tmp_path / "file").write_text("not a directory")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    cases = {"": "empty path", str(tmp_path / "file"): "not a directory",
             str(tmp_path / "file" / "sub"): "is not a directory", str(ro / "out"): "cannot write in"}
    if os.path.isdir("/proc/self"):      # procfs: writable for root by its mode, yet takes no new entries
        cases["/proc/nope"] = "cannot create /proc/nope"
    before = tree_state(tmp_path)
    for out, message in cases.items():
        r = exoflow("run", "inventory", str(tree), "--out", out, cwd=str(tmp_path),
                    obey_permissions=out.startswith(str(ro)))     # root may write anywhere
        refused(r, message)
    assert tree_state(tmp_path) == before


def git_ignores(tmp_path: Path, pattern: str, names: list[str]) -> list[str]:
    """The names git's own matcher ignores with ``pattern`` in a .gitignore (the oracle)."""
    repo = tmp_path / "repo"
    if not repo.exists():
        repo.mkdir()
        subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / ".gitignore").write_text(pattern + "\n")
    r = subprocess.run(["git", "-C", str(repo), "check-ignore", "--no-index", "--", *names],
                       capture_output=True, text=True)
    assert r.returncode in (0, 1), r.stderr
    return r.stdout.splitlines()


def test_globs_that_can_never_match_are_refused_as_git_matches_nothing(tmp_path):
    names = ["[", "a[b", "#x", "x", "a\\", " ", "z", "ab", "a[b]"]
    tree = tmp_path / "t"
    tree.mkdir()
    for n in names:
        (tree / n).write_text(n)
    never = {"[": "unterminated '['", "a[b": "unterminated '['", "[a-": "unterminated '['", "#x": "comment",
             " ": "empty pattern", "!x": "negated pattern", "a\\": "not a valid pattern"}
    for pattern in never:
        assert git_ignores(tmp_path, pattern, names) == [], pattern
    assert git_ignores(tmp_path, "[z-a]", names) == ["z"]      # git matches it; Python's re cannot compile it
    before = tree_state(tmp_path)
    cases = [(job, str(tree), flag, p, "--out", str(tmp_path / "o")) for p in [*never, "[z-a]"]
             for job, flag in [("inventory", "--include")]] + [("scan", str(tree), "--exclude", "[", "--out",
                                                                 str(tmp_path / "o"))]
    results = run_all(cases, tmp_path)
    for pattern, r in zip([*never, "[z-a]"], results):
        refused(r, never.get(pattern, "not a valid pattern"))
    refused(results[-1], "--exclude '['")
    assert tree_state(tmp_path) == before
    # patterns that name the bracket itself are valid and match what git matches
    for pattern in ("\\[", "[[]", "a[[]b]"):
        r = exoflow("run", "inventory", str(tree), "--include", pattern, "--json", "--out",
                    str(tmp_path / f"ok{len(pattern)}"), "--no-dashboard", "--workers", "1", cwd=str(tmp_path))
        assert r.returncode == 0, r.stderr
        kept = sorted(read_dataset(tmp_path / f"ok{len(pattern)}" / "files").column("path").to_pylist())
        assert kept == sorted(str(tree / n) for n in git_ignores(tmp_path, pattern, names)) != [], pattern


FAILING_JOB = '''
from exoflow import Job, main
from exoflow.ops.inventory.reducer import InventoryReducer


def boom(batch):
    raise RuntimeError("this kernel always fails")


job = Job(name="boom", description="fails after the cluster started", kernels=[boom], reducer=InventoryReducer())
'''


def _tree_and_failing_job(tmp_path: Path) -> tuple[Path, Path]:
    """A tree of one file, and a job file whose kernel always fails."""
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "a.txt").write_text("a")
    job = tmp_path / "boom.py"
    job.write_text(FAILING_JOB)
    return tree, job


def test_a_run_that_fails_leaves_nothing_behind(tmp_path):
    """New directories are removed, an existing one is left as it was (an earlier result that
    --overwrite was to replace is put back), so a rerun is not blocked."""
    tree, job = _tree_and_failing_job(tmp_path)
    prev = tmp_path / "prev"
    assert exoflow("run", "inventory", str(tree), "--out", str(prev), "-q", "--no-dashboard",
                   "--workers", "1").returncode == 0
    (tmp_path / "empty").mkdir()
    before = tree_state(tmp_path)
    cases = [(str(job), str(tree), "--out", str(tmp_path / "a" / "b" / "c")),
             (str(job), str(tree), "--out", str(tmp_path / "empty")),
             (str(job), str(tree), "--out", str(prev), "--overwrite")]
    for r in run_all([(*c, "--no-dashboard", "--workers", "1", "-q") for c in cases], tmp_path):
        assert r.returncode == 3, r.stderr
        assert len(r.stderr.splitlines()) == 1 and "this kernel always fails" in r.stderr, r.stderr
    assert tree_state(tmp_path) == before


def test_runs_leave_nothing_in_the_temporary_directory(tmp_path):
    """A finished run, a failed one and a refused one on the embedded cluster leave TMPDIR as they
    found it but for Dask's shared ``dask-scratch-space`` and its locks (multiprocessing's ``pymp-…``
    directory for the fork server's socket was left by every run: 8,600 of them on this machine)."""
    tree, job = _tree_and_failing_job(tmp_path)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp)}
    codes = [exoflow("run", spec, str(tree), "--out", str(tmp_path / out), "-q", "--no-dashboard", "--workers", "1",
                     env=env).returncode for spec, out in (("inventory", "ok"), (str(job), "failed"))]
    codes.append(exoflow("run", "inventory", str(tmp_path / "missing"), env=env).returncode)
    assert codes == [0, 3, 2]
    scratch = tmp / "dask-scratch-space"          # Dask's, shared by its clusters: its directory and locks
    left = [p for p in tmp.rglob("*") if p != scratch and not (p.parent == scratch and p.suffix == ".lock")]
    assert left == [], left


def test_headlines_count_regular_files_and_other_entries_apart(tmp_path):
    """Terminal, summary.json and report.html of several jobs (a listing job, one that reads every
    file, one that writes rows per finding): regular files as ``find -type f`` counts them, other
    entries as ``find ! -type f ! -type d``."""
    import socket
    tree = tmp_path / "t"
    (tree / "sub").mkdir(parents=True)
    for i in range(4):
        (tree / "sub" / f"f{i}.txt").write_text("x" * i)
    os.link(tree / "sub" / "f1.txt", tree / "hardlink.txt")     # a second name: a regular file for find too
    os.symlink("sub/f1.txt", tree / "link")
    os.symlink("sub", tree / "dirlink")
    os.symlink("nowhere", tree / "broken")
    os.mkfifo(tree / "fifo")
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(tree / "sock"))
    (tree / "emptydir").mkdir()

    def find(*test: str) -> int:
        found = subprocess.run(["find", str(tree), *test, "-print0"], capture_output=True, check=True).stdout
        return found.count(b"\0")
    regular, other = find("-type", "f"), find("!", "-type", "f", "!", "-type", "d")
    assert (regular, other) == (5, 5)          # the oracle agrees with the hand count
    jobs = ["inventory", "checksum", "scan"]
    results = run_all([(job, str(tree), "--json", "--out", str(tmp_path / job), "--no-dashboard", "--workers", "1")
                       for job in jobs], tmp_path)
    for job, r in zip(jobs, results):
        assert r.returncode == 0, r.stderr
        s = json.loads(r.stdout)
        assert (s["files"], s["other_entries"], s["entries"]) == (regular, other, regular + other), job
        assert f"{job}: {regular} regular files (+{other} other entries), " in r.stderr, r.stderr
        page = (tmp_path / job / "report.html").read_text()
        for n, label in ((regular, "regular files"), (other, "other entries")):
            assert f"<div class='big'>{n}</div><div class='label'>{label}</div>" in page, job


SLOW_JOB = '''
import time
from exoflow import Job, main
from exoflow.ops.inventory.reducer import InventoryReducer


def slow(batch):
    time.sleep(60)
    return {}


job = Job(name="slow", description="writes nothing for a minute", kernels=[slow], reducer=InventoryReducer())
'''


def test_ctrl_c_before_any_result_leaves_the_out_dir_as_it_was(tmp_path):
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "a.txt").write_text("a")
    (tmp_path / "slow.py").write_text(SLOW_JOB)
    prev = tmp_path / "prev"
    assert exoflow("run", "inventory", str(tree), "--out", str(prev), "-q", "--no-dashboard",
                   "--workers", "1").returncode == 0
    before = tree_state(tmp_path)
    p = subprocess.Popen([sys.executable, "-m", "exoflow.cli", "run", str(tmp_path / "slow.py"), str(tree),
                          "--out", str(prev), "--overwrite", "--no-dashboard", "--workers", "1"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    first = p.stderr.readline()           # printed once the output directory is made
    assert "workers" in first, first
    os.killpg(p.pid, signal.SIGINT)
    err = first + p.communicate(timeout=60)[1]
    assert p.returncode == 130 and "interrupted before anything was written" in err, err
    assert tree_state(tmp_path) == before


def test_ctrl_c_at_any_moment_of_start_up(tmp_path):
    """The command (``python -m exoflow``, what the console script runs) interrupted from its
    imports (after Python's own start-up, ~40 ms here: a traceback there is Python's) to its
    embedded cluster's start and the run's first tasks: exit 130 and one line, never
    a traceback of the import it stopped, never lost while the cluster started (the run then
    finished as if none came), nothing left in a new --out or $TMPDIR and no process of its group left."""
    tree = make_grid(tmp_path / "t", 40, 400)
    interrupted = 0
    for i, delay in enumerate([0.08, 0.1, 0.2, 0.3, 0.45, 0.6, 0.75, 0.9, 1.05, 1.2, 1.4, 1.7]):
        out, tmp = tmp_path / f"o{i}", tmp_path / f"tmp{i}"
        tmp.mkdir()
        p = subprocess.Popen([sys.executable, "-m", "exoflow", "run", "checksum", str(tree), "--out", str(out),
                              "--workers", "1", "--no-dashboard", "-q"], stderr=subprocess.PIPE, text=True,
                             start_new_session=True, env={**os.environ, "TMPDIR": str(tmp)})
        time.sleep(delay)
        if p.poll() is not None or exiting(p.pid):     # finished before the Ctrl-C
            p.communicate(timeout=60)
            continue
        os.killpg(p.pid, signal.SIGINT)
        err = p.communicate(timeout=60)[1]
        assert p.returncode == 130 and len(err.strip().splitlines()) == 1, (delay, err)
        assert "interrupted" in err and "Traceback" not in err, err
        assert (out / "summary.json").exists() == ("after the run had finished" in err), (delay, err)
        if "complete parts" not in err and "finished" not in err:
            assert not out.exists(), (delay, err)
        # multiprocessing's pymp-… (the fork server's socket) goes too, though os._exit skips its finalizer
        assert not list(tmp.glob("pymp-*")), (delay, err)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                os.killpg(p.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"processes of the run left after a Ctrl-C at {delay} s")
        interrupted += 1
    assert interrupted >= 8, "too few runs were still going when interrupted"


def test_a_ctrl_c_while_overwrite_moves_the_earlier_result_aside_puts_it_back(tmp_path, monkeypatch, capsys):
    """``--overwrite`` moves the earlier result aside (into OUT/.exoflow-replaced) before the run and
    puts it back when the run writes nothing. A SIGINT sent right after the first of those moves
    (os.rename wrapped to send it) once cut them apart: the run said "interrupted before anything
    was written" and left the result half moved, its marker hidden, so the next run refused the
    directory. Now the move is one step: the earlier result comes back file for file."""
    from exoflow import sinks
    from exoflow.cli import _guard, run_job
    from exoflow.composed import load
    tree = make_grid(tmp_path / "t", 2, 20)
    out = tmp_path / "o"
    assert exoflow("run", "inventory", str(tree), "--out", str(out), "-q").returncode == 0
    def listing() -> dict[str, bytes]:
        return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    before = listing()
    assert len(before) > 3
    rename, moved = os.rename, []
    def rename_then_interrupt(a, b):
        rename(a, b)
        moved.append(a)
        if len(moved) == 1:
            os.kill(os.getpid(), signal.SIGINT)
    from exoflow import errors
    monkeypatch.setattr(sinks.os, "rename", rename_then_interrupt)
    monkeypatch.setattr(errors, "_interrupted", False)      # the run notes its Ctrl-C here: not for later tests
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        code = _guard(lambda: run_job(load("inventory"), [str(tree), "--out", str(out), "--overwrite", "--workers",
                                                          "1", "--no-dashboard", "-q"], "exoflow run"), "exoflow")
    finally:
        signal.signal(signal.SIGINT, previous)
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert code == 130 and "interrupted" in err and len(moved) > 1, err
    assert listing() == before
    assert exoflow("run", "inventory", str(tree), "--out", str(out), "--overwrite", "-q").returncode == 0
