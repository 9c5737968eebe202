"""Declared reads (``Job.reads``): the engine loads exactly the rows a job's selector picks, whole
or in cache-sized sub-batches, and kernels never open files."""
from __future__ import annotations

import ast
import glob
import os
import random
import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import exoflow.batch
from exoflow.batch import Reads, batches
from exoflow.job import Job
from exoflow.options import LoadOptions, WalkOptions
from exoflow.sources.walk import Walker, root_item

READERS = [pytest.param(True, id="compiled"), pytest.param(False, id="python")]
MODES = [pytest.param(None, id="whole-chunk"), pytest.param(30_000, id="sub-batches")]


def _listing(root: Path) -> pa.Table:
    w = Walker(WalkOptions())
    w.run([root_item(str(root), WalkOptions())], 10_000)
    return w.out.table()


def _tree(root: Path, n: int = 40) -> dict[str, bytes]:
    rng = random.Random(12)
    files = {}
    for i in range(n):
        data = rng.randbytes(rng.choice([0, 1, 100, 4096, 9000, 25_000, 70_000]))
        p = root / f"d{i % 3}" / f"f{i:02d}"
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(data)
        files[str(p)] = data
    os.mkfifo(root / "fifo")                # never opened (it would block), selected or not
    os.symlink("d0/f00", root / "link")     # not a regular file: never read
    return files


class Keep:
    """A consumer keeping the pieces of the large file it is fed."""

    def __init__(self) -> None:
        self.pieces = []

    def update(self, piece) -> bool:
        self.pieces.append(bytes(piece))
        return True


@pytest.mark.parametrize("native", READERS)
@pytest.mark.parametrize("batch_bytes", MODES)
def test_only_the_selected_rows_are_loaded(tmp_path, monkeypatch, native, batch_bytes):
    files = _tree(tmp_path)
    chosen = sorted(random.Random(3).sample(sorted(files), 17)) + [str(tmp_path / "fifo"), str(tmp_path / "link")]
    table = _listing(tmp_path)
    opened = []
    real_open = exoflow.batch.open_path
    monkeypatch.setattr(exoflow.batch, "open_path", lambda p, flags: opened.append(p) or real_open(p, flags))
    reads = Reads(rows=lambda t, params: pc.is_in(t.column("path"), pa.array(chosen)), batch_bytes=batch_bytes,
                  piece_bytes=20_000, consume=lambda b: {i: Keep() for i in np.flatnonzero(b.large).tolist()})
    seen = {}
    for batch in batches(table, reads, LoadOptions(), {}, native=native):
        if batch_bytes is not None:      # a sub-batch holds about batch_bytes, or one file alone
            assert batch.data.size <= batch_bytes + batch.num_rows or batch.selected.sum() == 1
        for i, path in enumerate(batch.paths):
            assert batch.selected[i] == (path in files and path in chosen), path
            if batch.large[i]:
                seen[path] = b"".join(batch.streamed[i].pieces)
            elif batch.selected[i]:
                seen[path] = bytes(batch.content(i))
            else:
                assert batch.offsets[i] == batch.offsets[i + 1], path    # holds no bytes
    want = {p: files[p] for p in chosen if p in files}      # the oracle: the files selected
    assert seen == want
    if not native:        # the Python reader opens files through open_path: only the selected ones
        assert set(opened) == set(want)


def test_an_empty_chunk_still_gets_one_batch():
    from exoflow.sources.entries import SCHEMA
    got = list(batches(SCHEMA.empty_table(), Reads(batch_bytes=1000), LoadOptions()))
    assert len(got) == 1 and got[0].num_rows == 0


def _tool_digests(tool: str, paths: list[str]) -> dict[str, str]:
    out = subprocess.run([tool, "--", *paths], capture_output=True, check=True).stdout.decode()
    return {line.split("  ", 1)[1]: line.split("  ", 1)[0] for line in out.splitlines()}


def test_checksum_sub_batches_equal_sha256sum_and_xxh128sum(tmp_path):
    from exoflow.ops.checksum.kernel import checksum_columns, digests_of_large, hashed_rows
    from exoflow.ops.checksum.manifests import MANIFEST_COLUMNS
    from exoflow.ops.checksum.reducer import ChecksumReducer
    files = _tree(tmp_path, 60)
    table = _listing(tmp_path)
    reads = Reads(rows=hashed_rows, batch_bytes=10_000, piece_bytes=16_384, consume=digests_of_large)
    params = {"hash": ("sha256", "xxh3-128")}
    assert len(list(batches(table, reads, LoadOptions(), params))) > 5         # many sub-batches
    job = Job("t", "", [checksum_columns], ChecksumReducer(), columns=MANIFEST_COLUMNS, reads=reads)
    rows = job.process_chunk(table, params, LoadOptions()).to_pylist()
    assert [r["path"] for r in rows] == table.column("path").to_pylist()     # every row, in order
    got = {r["path"]: (r["sha256"], r["xxh3_128"]) for r in rows if r["sha256"]}
    sha, xxh = _tool_digests("sha256sum", sorted(files)), _tool_digests("xxh128sum", sorted(files))
    assert got == {p: (sha[p], xxh[p]) for p in files}
    assert all(r["error"] is None for r in rows)


def test_codestats_reads_files_of_known_languages_and_scripts(tmp_path, monkeypatch):
    from exoflow.ops.codestats.kernel import MAX_FILE, READS, codestats_columns
    from exoflow.ops.codestats.reducer import CodestatsReducer
    script = b"#!/bin/sh\n# say hi\n\necho hi\n" + b"echo more\n" * 3000      # 30 KB, no extension
    files = {"a.py": b"# c\nx = 1\n\n", "b.c": b"int x; /* c */\n", "Makefile": b"all:\n\ttrue\n",
             "run": script, "LICENSE": b"MIT License\n", "xy": b"ab", "data.bin": b"\0\1\2\3",
             "pic.png": b"\x89PNG....", "notes.xyz": b"text\n"}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    with open(tmp_path / "huge.py", "wb") as f:      # sparse: over MAX_FILE, never read
        f.truncate(MAX_FILE + 1)
    table = _listing(tmp_path)
    picked = {os.path.basename(p) for p, s in zip(table.column("path").to_pylist(),
                                                  exoflow.batch.selection(table, READS, {})) if s}
    # hand list: known by name (.py, .c, Makefile) or extensionless over 2 bytes (may be a script)
    assert picked == {"a.py", "b.c", "Makefile", "run", "LICENSE"}
    job = Job("t", "", [codestats_columns], CodestatsReducer(), reads=READS)
    counts = []
    for piece in (1 << 20, 4096):       # the script in the buffer, then streamed in pieces
        rows = {os.path.basename(r["path"]): r for r in
                job.process_chunk(table, {}, LoadOptions(piece_bytes=piece)).to_pylist()}
        # hand counts: 3004 lines, 1 blank; known as shell by its shebang alone
        run = rows["run"]
        assert (run["language"], run["lines"], run["blank"], run["comment"] + run["code"]) == ("Bourne Shell", 3004, 1, 3003)
        counts.append(run)
        assert (rows["a.py"]["language"], rows["a.py"]["code"], rows["a.py"]["comment"]) == ("Python", 1, 1)
        assert rows["LICENSE"]["language"] is None and rows["huge.py"]["language"] is None
        assert all(r["error"] is None for r in rows.values())
    assert counts[0] == counts[1]


KERNEL_MODULES = sorted(glob.glob(os.path.join(os.path.dirname(exoflow.batch.__file__), "kernels", "*.py"))
                        + glob.glob(os.path.join(os.path.dirname(exoflow.batch.__file__), "ops", "*", "kernel.py")))
OPENERS = {"open", "open_path", "pread", "preadv", "readv", "read_files", "load", "batches", "stream", "read_ends",
           "feed", "stream_large"}


@pytest.mark.parametrize("path", KERNEL_MODULES, ids=os.path.basename)
def test_kernel_modules_never_open_files(path):
    """Kernels read contents only from their batch (and large files from the pieces fed to them)."""
    tree = ast.parse(Path(path).read_text())
    calls = {getattr(n.func, "attr", None) or getattr(n.func, "id", None) for n in ast.walk(tree)
             if isinstance(n, ast.Call)}
    assert not calls & OPENERS, (path, calls & OPENERS)
