"""Writing results: Parquet parts (atomic), summary.json, and the output directory."""
from __future__ import annotations

import itertools
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from exoflow import outputs
from exoflow.errors import UsageError, held_interrupts
from exoflow.fileio import TMP_SUFFIX
from exoflow.journal import STATE

MARKER = ".exoflow-run"   # marks a directory as an exoflow result, so --overwrite may replace it


def write_part(table: pa.Table, directory: str, name: str) -> str:
    """Write one chunk's rows to ``directory`` (a path, or a URL: ``exoflow.outputs``); readers never
    see a half-written part (temp name, then rename; on a store one PUT)."""
    outputs.makedirs(directory)
    final = os.path.join(directory, name)
    # A small dictionary page limit: columns of mostly distinct values (paths, inodes, digests)
    # give up dictionary encoding early instead of after 1 MiB of wasted work; repetitive ones
    # (type, extension, top_dir …) keep it. About 20% less time and smaller files.
    with outputs.atomic_write(final, "wb") as f:
        pq.write_table(table, f, compression="zstd", dictionary_pagesize_limit=64 * 1024)
    return final


def default_out_dir(job: str) -> str:
    """The default ``--out``: ``exoflow-JOB-YYYYmmdd-HHMMSS`` (local time) in the working directory,
    ``-2``, ``-3`` … added while the name is taken. Only a name, free when asked: ``claim_out_dir``
    creates it once the run starts."""
    base = f"exoflow-{job}-{time.strftime('%Y%m%d-%H%M%S')}"
    return next(name for name in _numbered(base) if not os.path.lexists(name))


def claim_out_dir(path: str) -> str:
    """Create the directory ``path``, or ``path-2``, ``path-3`` … where another run took it first, and
    return the one created. mkdir is atomic, so runs started together never share a directory.
    Raises OSError (other than the name being taken) as mkdir does."""
    for name in _numbered(path):       # endless: some name is free
        try:
            os.mkdir(name)
        except FileExistsError:
            continue
        return name


def _numbered(base: str):
    """base, base-2, base-3, …"""
    yield base
    for n in itertools.count(2):
        yield f"{base}-{n}"


REPLACED = ".exoflow-replaced"   # inside --out: an earlier result, kept until the new run ends


def check_out_dir(path: str, overwrite: bool) -> list[str]:
    """Raise UsageError unless ``path`` can be used as the output directory; return the directories
    the run will create (outermost first; empty when ``path`` exists). Changes nothing that stays:
    a directory that must be created is created and removed again, the one sure test."""
    if not path:
        raise UsageError("--out: empty path")
    p = Path(path).absolute()
    if p.exists() and not p.is_dir():
        raise UsageError(f"--out {path} exists and is not a directory")
    if p.is_dir() and any(p.iterdir()):
        if not overwrite:
            raise UsageError(f"output directory {path} is not empty (use --overwrite to replace an earlier result)")
        if not (p / MARKER).exists():
            raise UsageError(f"output directory {path} is not an exoflow result; refusing to delete it")
    missing = []
    existing = p
    while not existing.is_dir():           # the nearest directory that exists must take new entries
        if existing.exists() or existing.is_symlink():
            raise UsageError(f"--out {path}: {existing} is not a directory")
        missing.insert(0, str(existing))
        existing = existing.parent
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"--out {path}: cannot write in {existing}")
    if missing:
        try:
            with held_interrupts():         # a Ctrl-C now ends the command at once: not in between
                os.mkdir(missing[0])
                os.rmdir(missing[0])
        except OSError as e:
            raise UsageError(f"--out {path}: cannot create {missing[0]}: {e.strerror}") from None
    return missing


def prepare_out_dir(path: str, overwrite: bool) -> str:
    """Create the output directory; with ``overwrite`` an earlier exoflow result in it is moved
    into ``path/.exoflow-replaced`` (dropped by ``keep_out_dir``, put back by ``discard_out_dir``)."""
    check_out_dir(path, overwrite)
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    held = p / REPLACED
    shutil.rmtree(held, ignore_errors=True)     # left by a run that was killed: an older result
    old = list(p.iterdir())
    if old:
        held.mkdir()
        for e in old:
            os.rename(e, held / e.name)
    (p / MARKER).write_text("exoflow output directory\n")
    return str(p.resolve())


def holds_results(out_dir: str) -> bool:
    """Whether a run wrote any file besides the marker and its journal (an earlier result it
    replaces aside)."""
    for root, dirs, files in os.walk(out_dir):
        if root == out_dir:
            dirs[:] = [d for d in dirs if d not in (REPLACED, STATE)]
            files = [f for f in files if f != MARKER]
        if files:
            return True
    return False


def keep_out_dir(out_dir: str) -> None:
    """The run ended (done or interrupted): drop the earlier result it replaced."""
    shutil.rmtree(os.path.join(out_dir, REPLACED), ignore_errors=True)


def discard_out_dir(out_dir: str, created: list[str]) -> None:
    """The run failed: remove what it wrote. A directory that existed before is left as it was
    (an earlier result it was to replace is put back); ``created`` (from ``check_out_dir``):
    the directories above ``out_dir`` that the run made, removed while empty."""
    held = os.path.join(out_dir, REPLACED)
    if created:
        shutil.rmtree(out_dir, ignore_errors=True)
        for d in reversed(created[:-1]):
            try:
                os.rmdir(d)
            except OSError:
                break
        return
    for name in os.listdir(out_dir):
        p = os.path.join(out_dir, name)
        if name == REPLACED:
            continue
        if os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p)
        else:
            os.unlink(p)
    if os.path.isdir(held):
        for name in os.listdir(held):
            os.rename(os.path.join(held, name), os.path.join(out_dir, name))
        os.rmdir(held)


def remove_partial_files(out_dir: str) -> None:
    """After an interrupted run: drop parts that were still being written."""
    for root, _dirs, files in os.walk(out_dir):
        for f in files:
            if f.endswith(TMP_SUFFIX):
                try:
                    os.unlink(os.path.join(root, f))
                except OSError:
                    pass


def write_json(path: str, data: Any) -> None:
    """``data`` as indented JSON (values JSON cannot hold as text), written atomically."""
    with outputs.atomic_write(path) as f:
        json.dump(data, f, indent=2, default=str)
        f.write("\n")
