"""The inventory job as a user runs it, against os.walk + lstat and find -printf."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import IS_ROOT, exoflow, read_dataset
from oracle import find_printf, walk_lstat


def exact_paths(t) -> list[bytes]:
    paths, raw = t.column("path").to_pylist(), t.column("path_bytes").to_pylist()
    return [r if r is not None else p.encode() for p, r in zip(paths, raw)]


def rows_by_path(t) -> dict[bytes, dict]:
    return dict(zip(exact_paths(t), t.to_pylist()))


def test_inventory_matches_oracles(awkward_tree, out_dir):
    tree, special = awkward_tree
    r = exoflow("run", "inventory", str(tree), "--out", str(out_dir / "inv"), "--no-dashboard",
                "--chunk-files", "3", "--json", obey_permissions=True)
    assert r.returncode == 1, r.stderr          # finished, with per-file errors (the locked directory)
    assert "Traceback" not in r.stderr
    summary = json.loads(r.stdout)
    t = read_dataset(out_dir / "inv" / "files")
    rows = rows_by_path(t)
    locked = os.fsencode(str(special["locked"]))

    # the locked directory is one error row; a file in a directory that can be listed but not
    # entered is a row with its type from readdir and the lstat error; the rest matches the oracles
    assert rows[locked]["type"] == "dir" and rows[locked]["error"].startswith("EACCES")
    inner = os.fsencode(str(special["listable"] / "f"))
    assert (rows[inner]["type"], rows[inner]["size"]) == ("file", None) and rows[inner]["error"].startswith("EACCES")
    expected = {p: v for p, v in walk_lstat(str(tree)).items() if not p.startswith(locked + b"/") and p != inner}
    got = {p: (r["size"], r["type"]) for p, r in rows.items() if p not in (locked, inner)}
    assert got == expected
    assert {p: v for p, v in find_printf(str(tree)).items() if not p.startswith(locked + b"/") and p != inner} \
        == expected

    # awkward names survive exactly; special files are typed, never opened
    assert os.fsencode(str(special["bad"])) in rows
    assert os.fsencode(str(tree / "new\nline.txt")) in rows
    assert rows[os.fsencode(str(special["fifo"]))]["type"] == "fifo"
    assert rows[os.fsencode(str(tree / "sock"))]["type"] == "socket"
    if IS_ROOT:
        assert rows[os.fsencode(str(special["chardev"]))]["type"] == "char"

    # per-file fields against lstat of the same file
    one = os.fsencode(str(tree / "a" / "one.txt"))
    st = os.lstat(one)
    r1 = rows[one]
    assert (r1["inode"], r1["device"], r1["nlink"], r1["mtime_ns"], r1["mode"]) == \
        (st.st_ino, st.st_dev, 2, st.st_mtime_ns, st.st_mode)
    assert (r1["uid"], r1["gid"], r1["extension"], r1["depth"], r1["top_dir"]) == (st.st_uid, st.st_gid, "txt", 2, "a")
    sparse = rows[os.fsencode(str(tree / "sparse.bin"))]
    assert sparse["size"] == 10 * 2**20 and sparse["allocated"] == os.lstat(tree / "sparse.bin").st_blocks * 512
    assert rows[os.fsencode(str(tree / "a/b/c/archive.tar.gz"))]["extension"] == "gz"
    assert rows[os.fsencode(str(tree / "a/b/two.TXT"))]["extension"] == "txt"
    assert rows[os.fsencode(str(tree / ".hidden"))]["extension"] == ""

    # the summary agrees with the dataset
    res = summary["result"]
    files = [r for r in rows.values() if r["type"] == "file" and r["size"] is not None]
    assert summary["entries"] == t.num_rows == res["entries"]
    regular = [r for r in rows.values() if r["type"] == "file"]     # find -type f: with or without lstat
    assert summary["files"] == res["files"] == len(regular) == len(files) + 1     # listable-only/f: no lstat
    assert res["bytes"] == sum(r["size"] for r in files)
    assert summary["errors"] == res["errors"] == 2
    assert res["largest"][0] == [str(tree / "sparse.bin"), 10 * 2**20]
    assert {e["name"]: e["files"] for e in res["by_type"]} == \
        {k: sum(1 for r in rows.values() if r["type"] == k) for k in {r["type"] for r in rows.values()}}
    assert sum(a["files"] for a in res["age"]) == len(files)
    assert (out_dir / "inv" / "summary.json").exists()


def test_follow_symlinks_detects_loops(awkward_tree, out_dir):
    tree, special = awkward_tree
    special["locked"].chmod(0o755)
    special["listable"].chmod(0o755)
    r = exoflow("run", "inventory", str(tree), "-L", "--out", str(out_dir / "inv"), "--no-dashboard", "-q")
    assert r.returncode == 1, r.stderr
    rows = rows_by_path(read_dataset(out_dir / "inv" / "files"))
    loop = rows[os.fsencode(str(tree / "a/b/loop"))]
    assert loop["error"] == "ELOOP: symlink loop"
    assert rows[os.fsencode(str(tree / "broken-link"))]["error"].startswith("broken symlink")
    # the link to a directory was walked: its files appear under the link's path
    assert rows[os.fsencode(str(tree / "link-to-dir/one.txt"))]["type"] == "file"
    # regular files match find -L (which also reports the loop and the broken link)
    find_files = {p for p, (_, t) in find_printf(str(tree), "-L").items()
                  if t == "file" and b"/loop/" not in p}
    ours = {p for p, r in rows.items() if r["type"] == "file" and r["error"] is None}
    assert ours == find_files


def test_walk_filters(tmp_path, out_dir):
    tree = tmp_path / "t"
    for rel, size in [("a.py", 10), ("b.txt", 2000), ("sub/c.py", 3000), ("sub/deep/d.py", 1),
                      ("node_modules/x.py", 5), (".git/config", 7), ("sub/.env", 9)]:
        p = tree / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x" * size)

    def listed(*args: str) -> set[str]:
        out = out_dir / str(len(list(out_dir.iterdir())))
        r = exoflow("run", "inventory", str(tree), "--out", str(out), "--no-dashboard", "-q", *args)
        assert r.returncode == 0, r.stderr
        return {p[len(str(tree)) + 1:] for p in read_dataset(out / "files").column("path").to_pylist()}

    everything = {"a.py", "b.txt", "sub/c.py", "sub/deep/d.py", "node_modules/x.py", ".git/config", "sub/.env"}
    assert listed() == everything
    assert listed("--no-hidden") == everything - {".git/config", "sub/.env"}
    assert listed("--include", "*.py") == {"a.py", "sub/c.py", "sub/deep/d.py", "node_modules/x.py"}
    assert listed("--exclude", "node_modules", "--exclude", "*.txt") == everything - {"node_modules/x.py", "b.txt"}
    assert listed("--max-depth", "1") == {"a.py", "b.txt"}
    assert listed("--max-depth", "2") == {"a.py", "b.txt", "sub/c.py", "node_modules/x.py", ".git/config", "sub/.env"}
    assert listed("--min-size", "1k") == {"b.txt", "sub/c.py"}
    assert listed("--max-size", "9") == {"sub/deep/d.py", "node_modules/x.py", ".git/config", "sub/.env"}


def test_gitignore_matches_git_check_ignore(tmp_path, out_dir):
    tree = tmp_path / "repo"
    files = ["keep.py", "build/out.o", "debug.log", "src/app.py", "src/gen/x.py", "src/important.log",
             "docs/a.md", "docs/tmp/b.md", "vendor/lib.c"]
    for rel in files:
        p = tree / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(rel)
    for d in range(30):     # enough entries that the first listing task hands back directories
        for f in range(80):  # (with their ignore rules) to the client and other workers
            p = tree / "bulk" / f"d{d}" / (f"f{f}.log" if f % 10 == 0 else f"f{f}.txt")
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text("x")
            files.append(str(p.relative_to(tree)))
    (tree / ".gitignore").write_text("build/\n*.log\n!src/important.log\n/vendor\n")
    (tree / "src" / ".gitignore").write_text("gen/\n")
    (tree / "docs" / ".ignore").write_text("tmp\n")
    import subprocess
    subprocess.run(["git", "init", "-q", str(tree)], check=True)
    ignored = subprocess.run(["git", "-C", str(tree), "check-ignore", "--no-index", *files],
                             capture_output=True, text=True).stdout.split()
    # git does not read .ignore files (ripgrep does): add that rule's effect by hand
    expected = set(files) - set(ignored) - {"docs/tmp/b.md"} | {".gitignore", "src/.gitignore", "docs/.ignore"}
    r = exoflow("run", "inventory", str(tree), "--gitignore", "--exclude", ".git", "--out", str(out_dir / "g"),
                "--no-dashboard", "-q")
    assert r.returncode == 0, r.stderr
    got = {p[len(str(tree)) + 1:] for p in read_dataset(out_dir / "g" / "files").column("path").to_pylist()}
    assert got == expected


def test_one_file_system_against_find_xdev(tmp_path, out_dir):
    """-x against find -xdev, on a tree holding a file system of its own (a tmpfs the test mounts)."""
    tree = tmp_path / "t"
    mnt = tree / "d" / "mnt"
    mnt.mkdir(parents=True)
    (tree / "top.txt").write_text("t")
    (tree / "d" / "beside.txt").write_text("b")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "exoflow-test", str(mnt)], capture_output=True,
                       text=True)
    if r.returncode:
        why = r.stderr.strip().partition("\n")[0]
        pytest.skip(f"-x needs a second file system and a tmpfs cannot be mounted here: {why}")
    try:
        (mnt / "sub").mkdir()
        (mnt / "sub" / "inner.txt").write_text("i")
        (mnt / "on-tmpfs.txt").write_text("o")

        def find(*expression: str) -> set[str]:
            out = subprocess.run(["find", str(tree), *expression, "-not", "-type", "d", "-printf", r"%p\0"],
                                 capture_output=True, check=True).stdout
            return {os.fsdecode(p) for p in out.split(b"\0") if p}

        def ours(*args: str) -> set[str]:
            out = out_dir / f"x{len(args)}"
            r = exoflow("run", "inventory", str(tree), "--out", str(out), "--no-dashboard", "-q", *args)
            assert r.returncode == 0, r.stderr
            return set(read_dataset(out / "files").column("path").to_pylist())

        assert find("-xdev") == {str(tree / "top.txt"), str(tree / "d" / "beside.txt")}    # the test is live
        assert ours("-x") == find("-xdev")
        assert ours() == find() == find("-xdev") | {str(mnt / "sub" / "inner.txt"), str(mnt / "on-tmpfs.txt")}
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_listing_files_give_the_same_rows(tmp_path, out_dir):
    tree = tmp_path / "t"
    tree.mkdir()
    names = ["plain.txt", "sp ace.txt", "new\nline.txt", "uni-é.txt"]
    for n in names:
        (tree / n).write_text(n)
    paths = [str(tree / n) for n in names] + [str(tree / "gone.txt")]
    (tmp_path / "list.nul").write_bytes(b"\0".join(p.encode() for p in paths) + b"\0")
    (tmp_path / "list.txt").write_text("\n".join(p for p in paths if "\n" not in p) + "\n")
    r = exoflow("run", "inventory", "--from-list", str(tmp_path / "list.nul"), "--out", str(out_dir / "nul"),
                "--no-dashboard", "-q")
    assert r.returncode == 1, r.stderr          # gone.txt does not exist: an error row, not a crash
    t = read_dataset(out_dir / "nul" / "files")
    rows = {p: e for p, e in zip(t.column("path").to_pylist(), t.column("error").to_pylist())}
    assert set(rows) == set(paths)
    assert rows[str(tree / "gone.txt")].startswith("ENOENT")
    r = exoflow("run", "inventory", "--from-list", str(tmp_path / "list.txt"), "--out", str(out_dir / "txt"),
                "--no-dashboard", "-q")
    assert set(read_dataset(out_dir / "txt" / "files").column("path").to_pylist()) == \
        {p for p in paths if "\n" not in p}
    # an exoflow output directory is itself a manifest
    r = exoflow("run", "inventory", "--from-list", str(out_dir / "nul" / "files"), "--out", str(out_dir / "pq"),
                "--no-dashboard", "-q")
    assert set(read_dataset(out_dir / "pq" / "files").column("path").to_pylist()) == set(paths)


def test_job_file_forms_agree(tmp_path, out_dir):
    """exoflow run NAME, exoflow run FILE, python FILE and a user's copy give the same rows."""
    import subprocess
    import sys
    tree = tmp_path / "t"
    (tree / "d").mkdir(parents=True)
    for i in range(20):
        (tree / "d" / f"f{i}").write_bytes(b"x" * i)
    user_job = tmp_path / "my_job.py"
    shutil.copy(Path(__file__).parents[1] / "jobs" / "inventory.py", user_job)
    runs = {
        "name": exoflow("run", "inventory", str(tree), "--out", str(out_dir / "a"), "--no-dashboard", "-q"),
        "file": exoflow("run", "jobs/inventory.py", str(tree), "--out", str(out_dir / "b"), "--no-dashboard", "-q",
                        cwd=str(Path(__file__).parents[1])),
        "user": exoflow("run", str(user_job), str(tree), "--out", str(out_dir / "c"), "--no-dashboard", "-q"),
        "python": subprocess.run([sys.executable, str(Path(__file__).parents[1] / "jobs" / "inventory.py"), str(tree),
                                  "--out", str(out_dir / "d"), "--no-dashboard", "-q"], capture_output=True, text=True),
    }
    for name, r in runs.items():
        assert r.returncode == 0, (name, r.stderr)
    tables = [read_dataset(out_dir / d / "files").sort_by("path").select(["path", "size"]) for d in "abcd"]
    assert all(t.equals(tables[0]) for t in tables) and tables[0].num_rows == 20


def test_empty_tree(tmp_path, out_dir):
    (tmp_path / "e").mkdir()
    r = exoflow("run", "inventory", str(tmp_path / "e"), "--out", str(out_dir / "o"), "--no-dashboard", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["files"] == 0
    assert read_dataset(out_dir / "o" / "files").num_rows == 0


def test_top_is_not_capped_by_chunks(tmp_path, out_dir):
    tree = tmp_path / "t"
    tree.mkdir()
    for i in range(40):
        (tree / f"f{i:02d}").write_bytes(b"x" * (i + 1))
    r = exoflow("run", "inventory", str(tree), "--chunk-files", "5", "--top", "30", "--json",
                "--out", str(out_dir / "o"), "--no-dashboard")
    largest = json.loads(r.stdout)["result"]["largest"]
    assert [size for _, size in largest] == list(range(40, 10, -1))


def test_listing_from_an_output_directory_reads_only_its_files_dataset(tmp_path, out_dir):
    import pyarrow as pa
    import pyarrow.parquet as pq
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "a").write_text("a")
    assert exoflow("run", "inventory", str(tree), "--out", str(out_dir / "first"), "-q",
                   "--no-dashboard").returncode == 0
    (out_dir / "first" / "findings").mkdir()    # another job's dataset beside files/: not a listing
    pq.write_table(pa.table({"path": [str(tree / "a"), None], "line": [1, 2]}),
                   out_dir / "first" / "findings" / "part-0.parquet")
    r = exoflow("run", "inventory", "--from-list", str(out_dir / "first"), "--out", str(out_dir / "second"),
                "-q", "--no-dashboard")
    assert r.returncode == 0, r.stderr
    assert read_dataset(out_dir / "second" / "files").column("path").to_pylist() == [str(tree / "a")]


def _git(*args: str, cwd=None, env=None) -> bytes:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, env=env,
                          capture_output=True, check=True).stdout


def test_gitignore_keeps_what_git_calls_untracked_and_not_ignored(tmp_path):
    """--gitignore against git itself (git ls-files --others --exclude-standard): .gitignore files
    at any depth, .git/info/exclude, the user's core.excludesFile, in a repository and in a worktree
    (whose .git is a file); outside any repository only .gitignore/.ignore files apply."""
    assert shutil.which("git"), "git is required (apt-get install git)"
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "GIT_CONFIG_NOSYSTEM": "1"}
    (home / "global-ignore").write_text("*.bak\n!keep.bak\n")
    _git("config", "--global", "core.excludesFile", "~/global-ignore", env=env)
    tree = tmp_path / "t"
    repo = tree / "repo"
    _git("init", "-q", str(repo), env=env)
    (repo / ".git" / "info").mkdir(exist_ok=True)
    (repo / ".git" / "info" / "exclude").write_text("secret-*\n*.log\n")
    files = {".gitignore": "build/\n!important.log\n", "committed.txt": "c", "a.txt": "a", "x.bak": "",
             "keep.bak": "", "secret-1.txt": "", "app.log": "", "important.log": "", "build/out.o": "",
             "src/.gitignore": "gen.c\n!*.bak\n", "src/m.py": "", "src/y.bak": "", "src/secret-2": "",
             "src/gen.c": "", "docs/z.log": "", "docs/readme.md": ""}
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    _git("add", "committed.txt", cwd=repo, env=env)
    _git("commit", "-q", "-m", "one", cwd=repo, env=env)
    work = tree / "wt"
    _git("worktree", "add", "-q", str(work), cwd=repo, env=env)        # .git is a file there
    for rel in ("w.bak", "secret-w", "w.log", "w.txt"):
        (work / rel).write_text("")
    plain = tree / "plain"                                              # no repository
    plain.mkdir()
    for rel in ("p.bak", "secret-p", "p.txt"):
        (plain / rel).write_text("")
    (plain / ".gitignore").write_text("p.txt\n")

    def untracked(where: Path) -> set[str]:
        out = _git("ls-files", "--others", "--exclude-standard", "-z", cwd=where, env=env)
        return {os.path.relpath(where / p.decode(), tree) for p in out.split(b"\0") if p}
    want = untracked(repo) | untracked(work) | {"repo/committed.txt", "wt/committed.txt", "wt/.git",
                                                "plain/p.bak", "plain/secret-p", "plain/.gitignore"}
    assert "repo/src/y.bak" in want and "repo/x.bak" not in want and "repo/important.log" in want  # the test is live
    r = exoflow("run", "inventory", str(tree), "--gitignore", "--exclude", ".git/", "--out", str(tmp_path / "o"),
                "--no-dashboard", "-q", env=env)
    assert r.returncode == 0, r.stderr
    t = read_dataset(tmp_path / "o" / "files")
    assert {os.path.relpath(p, tree) for p in t.column("path").to_pylist()} == want
    # a directory inside the repository: the ignore files above it apply too, as in git
    for sub in ("src", "docs"):
        want = untracked(repo / sub)
        assert want and len(want) < len(list((repo / sub).iterdir()))
        r = exoflow("run", "inventory", str(repo / sub), "--gitignore", "--out", str(tmp_path / sub),
                    "--no-dashboard", "-q", env=env)
        assert r.returncode == 0, r.stderr
        t = read_dataset(tmp_path / sub / "files")
        assert {os.path.relpath(p, tree) for p in t.column("path").to_pylist()} == want, sub
        r = exoflow("run", "inventory", sub, "--gitignore", "--out", str(tmp_path / f"{sub}-rel"), "--no-dashboard",
                    "-q", cwd=str(repo), env=env)                      # a relative PATH
        assert r.returncode == 0, r.stderr
        t = read_dataset(tmp_path / f"{sub}-rel" / "files")
        assert {os.path.relpath(repo / p, tree) for p in t.column("path").to_pylist()} == want, sub
    # a PATH the repository ignores (git would list nothing) is walked as named, like ripgrep
    r = exoflow("run", "inventory", str(repo / "build"), "--gitignore", "--out", str(tmp_path / "build"),
                "--no-dashboard", "-q", env=env)
    assert r.returncode == 0, r.stderr
    assert read_dataset(tmp_path / "build" / "files").column("path").to_pylist() == [str(repo / "build" / "out.o")]


def test_gitignore_patterns_match_git_entry_by_entry(tmp_path):
    """Cases where matching a directory pattern below the directory goes wrong: a whitelist
    (`*`, `!*/`, `!*.py`), a negated directory holding an ignored one, a repository nested in
    another, a PATH reached through a symlink, and an excludes file that is a symlink."""
    assert shutil.which("git"), "git is required (apt-get install git)"
    home = tmp_path / "home"
    (home / "dotfiles").mkdir(parents=True)
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "GIT_CONFIG_NOSYSTEM": "1"}
    (home / "dotfiles" / "ignore").write_text("*.glob\n")
    (home / ".config" / "git").mkdir(parents=True)
    (home / ".config" / "git" / "ignore").symlink_to(home / "dotfiles" / "ignore")   # a dotfile manager's link
    repo = tmp_path / "repo"
    _git("init", "-q", str(repo), env=env)
    files = {".gitignore": "node_modules/\n__pycache__/\n!vendor/\n*.log\nbuild/\n",
             "white/.gitignore": "*\n!*/\n!*.py\n",
             "white/a.py": "", "white/a.txt": "", "white/pkg/b.py": "", "white/pkg/b.txt": "",
             "vendor/node_modules/p/i.js": "", "vendor/v.js": "", "tests/__pycache__/t.pyc": "", "tests/t.py": "",
             "sub/.gitignore": "!logs/\n", "sub/logs/a.log": "", "sub/x.glob": "", "src/build/o.o": "", "src/m.py": "",
             "inner/.gitignore": "keep.txt\n", "inner/keep.txt": "", "inner/x.log": "", "inner/b.py": ""}
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    _git("init", "-q", str(repo / "inner"), env=env)                      # a repository of its own
    (tmp_path / "link").symlink_to(repo / "src")

    def git_sees(where: Path, rel_to: Path) -> set[str]:
        out = _git("ls-files", "--others", "--exclude-standard", "-z", cwd=where, env=env)
        return {os.path.relpath(where / p.decode(), rel_to) for p in out.split(b"\0") if p and not p.endswith(b"/")}

    def exoflow_sees(path: Path, name: str) -> set[str]:
        r = exoflow("run", "inventory", str(path), "--gitignore", "--exclude", ".git/", "--out", str(tmp_path / f"out-{name}"),
                    "--no-dashboard", "-q", env=env)
        assert r.returncode == 0, r.stderr
        return {os.path.relpath(p, path) for p in read_dataset(tmp_path / f"out-{name}" / "files").column("path").to_pylist()}

    # git lists the nested repository as "inner/"; its files are what git says inside it
    want = git_sees(repo, repo) | {f"inner/{p}" for p in git_sees(repo / "inner", repo / "inner")}
    assert {"white/pkg/b.py", "vendor/v.js", "inner/x.log"} <= want                 # the test is live
    assert not {"white/pkg/b.txt", "vendor/node_modules/p/i.js", "sub/logs/a.log", "sub/x.glob", "inner/keep.txt"} & want
    assert exoflow_sees(repo, "all") == want
    assert exoflow_sees(repo / "white", "white") == git_sees(repo / "white", repo / "white")
    assert exoflow_sees(tmp_path / "link", "link") == git_sees(repo / "src", repo / "src") == {"m.py"}
