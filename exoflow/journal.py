"""The run's journal in ``OUT/.exoflow-journal/``: what ``--resume`` needs to finish a killed run.

``run.json``       the run's identity (job, sources, options) and its start (``now``)
``listing/``       each listing part as its listing task made it (the listing SCHEMA, an Arrow IPC file,
                   LZ4: 8x cheaper to write than Parquet with zstd, 0.04 s against 0.32 s for /usr's
                   125k entries; an earlier exoflow's ``.parquet`` parts are read too)
``journal.jsonl``  one JSON line per listing part saved and per chunk part written, appended on the
                   client as each lands (one write: the page cache keeps it through a kill; it is not
                   fsync'd, as the parts it names are not, which was 10 % of a run on /usr); a last
                   line cut short is ignored

A resumed run lists only the directories no journalled listing covered (the walk's frontier:
the roots and every part's left-over directories, less those a part finished), replays the
journalled chunks from their parts (their summaries are made again from the rows written) and
runs the others; what else the killed run wrote (parts never journalled, after-step outputs,
summary.json) is removed first, so nothing is doubled. ``--since`` reads the same files of an
earlier run (``exoflow.incremental``).
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import pickle
import re
import shutil
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import xxhash

from exoflow import outputs
from exoflow.errors import UsageError

if TYPE_CHECKING:
    from exoflow.runner import RunConfig

STATE = ".exoflow-journal"
RUN_FILE = "run.json"
JOURNAL = "journal.jsonl"
LISTING = "listing"
KEEP = (".exoflow-run", ".exoflow-replaced", STATE)     # what a resumed run keeps in OUT besides its dataset
_NUMBER = re.compile(r"-(\d+)(?:\.parquet)?$")     # L-<run id>-000012, part-000013.parquet
LISTING_SUFFIXES = (".arrow", ".parquet")            # the suffix listing parts are written with, then an earlier one


# ---- the run's identity -----------------------------------------------------------

def _canonical(value: Any) -> Any:
    """A JSON value standing for ``value``: JSON values as they are, others (a scan's rule set …)
    as the SHA-256 of their pickle, which is the same for equal values of plain data."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _canonical(v) for k, v in sorted(value.items())}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"dataclass": type(value).__name__, **_canonical(dataclasses.asdict(value))}
    return "pickle-sha256:" + hashlib.sha256(pickle.dumps(value, protocol=4)).hexdigest()


def identity(cfg: RunConfig) -> dict[str, Any]:
    """What makes two runs the same run: the job, its sources (absolute), the job's options and
    the engine's (walk, chunk, load; of --storage-options only a digest: no secret is written), and
    ``--since``'s earlier output. Not ``--backend``: NumPy and CuPy kernels give the same rows (and
    ``auto`` is settled only once connected)."""
    from exoflow.backends import is_backend_option
    from exoflow.sources.objects import is_url
    absolute = lambda p: os.path.abspath(p) if p and not is_url(p) else p     # noqa: E731
    storage = cfg.load.storage_options
    load = dataclasses.replace(cfg.load, storage_options="sha256:" + hashlib.sha256(storage.encode()).hexdigest()
                               if storage else "")
    return {
        "job": cfg.job.name,
        "paths": [absolute(p) for p in cfg.paths],
        "from_list": absolute(cfg.from_list),
        "params": _canonical({k: v for k, v in cfg.params.items() if k != "now" and not is_backend_option(k)}),
        "walk": _canonical(cfg.walk),
        "chunk": _canonical(dataclasses.replace(cfg.chunk, reused_before=None)),   # --since is below
        "load": _canonical(load),
        "since": absolute(cfg.since),
    }


def read_run_file(out_dir: str) -> dict[str, Any] | None:
    """``OUT/.exoflow-journal/run.json`` ({"identity": …, "now": …}), or None where there is none."""
    try:
        with open(os.path.join(out_dir, STATE, RUN_FILE), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def check_resume(out_dir: str, cfg: RunConfig) -> None:
    """Raise UsageError unless ``out_dir`` holds the journal of this same run (before anything starts)."""
    held = read_run_file(out_dir)
    if held is None:
        raise UsageError(f"--resume: {out_dir} holds no exoflow journal to resume")
    differs = [k for k, v in identity(cfg).items() if held["identity"].get(k) != v]
    if differs:
        what = {"job": "another job", "paths": "other PATHs", "from_list": "another --from-list",
                "params": f"other {cfg.job.name} options", "since": "another --since"}
        raise UsageError(f"--resume: {out_dir} holds a run of {held['identity']['job']} with "
                         + ", ".join(what.get(k, f"other {k} options") for k in differs)
                         + "; give the same job, PATHs and options")


# ---- a chunk's identity -----------------------------------------------------------

def rows_hash(table: pa.Table) -> str:
    """A digest of a chunk's listing rows (paths and the stat columns), hex: a journalled chunk is
    replayed only when the rows it was made from are the same."""
    h = xxhash.xxh3_128()
    for name in ("path_bytes", "path", "etag"):
        for chunk in table.column(name).chunks if name in table.column_names else ():
            h.update(_binary_bytes(chunk))
    for name in ("size", "mtime_ns", "ctime_ns", "inode", "device", "mode"):
        h.update(np.ascontiguousarray(table.column(name).fill_null(0).to_numpy()).tobytes())
    return h.hexdigest()


def _binary_bytes(arr: pa.Array) -> bytes:
    """A string/binary array's values and lengths, however it is sliced; nulls as empty."""
    arr = arr.fill_null(b"" if pa.types.is_binary(arr.type) else "")
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset:arr.offset + len(arr) + 1]
    data = arr.buffers()[2]
    values = bytes(memoryview(data)[offsets[0]:offsets[-1]]) if data is not None and len(offsets) else b""
    return values + np.diff(offsets).tobytes()


# ---- the journal ------------------------------------------------------------------

@dataclass
class Resumed:
    """What a killed run had finished, from its journal."""

    now: float                                      # the run's ``now`` (reducers' ages depend on it)
    listings: dict[str, dict] = field(default_factory=dict)       # listing name -> its record
    chunks: dict[tuple[str, int, int], dict] = field(default_factory=dict)  # (listing, start, stop) -> record
    seq: int = 0                                    # the highest part number used

    def frontier(self, roots: list, root_files: list[str]) -> tuple[list, list[str]]:
        """The directories (``walk.DirItem``) and root files still to list: the roots and every
        journalled part's left-over directories, less the directories a journalled part finished."""
        finished = set().union(*(set(r["finished"]) for r in self.listings.values()))
        todo: dict[str, Any] = {}
        for item in [*roots, *(d for r in self.listings.values() for d in unpack(r["left"]))]:
            if item.ident not in finished:
                todo.setdefault(item.ident, item)
        files_done = any(r.get("root_files") for r in self.listings.values())
        return list(todo.values()), [] if files_done else root_files

    def pieces_done(self) -> set[int]:
        """The --from-list pieces whose listing parts are journalled."""
        return {r["piece"] for r in self.listings.values() if r.get("piece") is not None}


def pack(items: list) -> str:
    return base64.b64encode(pickle.dumps(items, protocol=4)).decode()


def unpack(text: str) -> list:
    return pickle.loads(base64.b64decode(text))


class Journal:
    """The client's handle on ``OUT/.exoflow-journal``: ``create`` for a new run, ``reopen`` for
    ``--resume``; ``add`` appends one record."""

    def __init__(self, out_dir: str) -> None:
        self.dir = os.path.join(out_dir, STATE)
        self.listing_dir = os.path.join(self.dir, LISTING)
        outputs.makedirs(self.listing_dir)
        # an object-storage OUT keeps the listing parts (for a listing task run again), but no lines:
        # objects cannot be appended to, and --resume takes a local OUT
        self.fd = None if outputs.is_url(out_dir) else \
            os.open(os.path.join(self.dir, JOURNAL), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    @classmethod
    def create(cls, out_dir: str, cfg: RunConfig, now: float) -> Journal:
        j = cls(out_dir)
        with outputs.atomic_write(os.path.join(j.dir, RUN_FILE)) as f:
            json.dump({"identity": identity(cfg), "now": now}, f, indent=1)
        return j

    @classmethod
    def reopen(cls, out_dir: str, cfg: RunConfig) -> tuple[Journal, Resumed]:
        """The journal of a killed run (``check_resume`` first), its finished work, and OUT cleaned
        of everything else it wrote. Raises UsageError as ``check_resume``."""
        check_resume(out_dir, cfg)
        j = cls(out_dir)
        resumed = Resumed(now=read_run_file(out_dir)["now"])
        for rec in j.records():
            name = rec.get("listing") if rec["kind"] == "chunk" else rec["name"]
            if rec["kind"] == "listing" and os.path.exists(j.listing_path(name)):
                resumed.listings[name] = rec
            elif rec["kind"] == "chunk" and name in resumed.listings:
                resumed.chunks[(name, rec["start"], rec["stop"])] = rec
        names = [*resumed.listings, *(r["part"] for r in resumed.chunks.values())]
        resumed.seq = max((int(m.group(1)) for m in map(_NUMBER.search, names) if m), default=0)
        j._clean(out_dir, cfg.job.dataset, resumed)
        return j, resumed

    def records(self) -> list[dict]:
        with open(os.path.join(self.dir, JOURNAL), "rb") as f:
            lines = f.read().split(b"\n")
        return [json.loads(line) for line in lines[:-1] if line]   # the last is empty, or cut short

    def _clean(self, out_dir: str, dataset: str, resumed: Resumed) -> None:
        for name in os.listdir(out_dir):
            if name not in (*KEEP, dataset):
                _remove(os.path.join(out_dir, name))
        keep_parts = {r["part"] for r in resumed.chunks.values()}
        data = os.path.join(out_dir, dataset)
        for name in os.listdir(data) if os.path.isdir(data) else []:
            if name not in keep_parts:
                _remove(os.path.join(data, name))
        for name in os.listdir(self.listing_dir):
            if os.path.splitext(name)[0] not in resumed.listings:
                _remove(os.path.join(self.listing_dir, name))

    def listing_path(self, name: str) -> str:
        return os.path.join(self.listing_dir, name + LISTING_SUFFIXES[0])

    def add(self, record: dict) -> None:
        """Append ``record`` as one line (one write, in the file when this returns)."""
        if self.fd is not None:
            os.write(self.fd, (json.dumps(record, separators=(",", ":")) + "\n").encode())

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)


def save_listing(table: pa.Table, path: str) -> None:
    """Write a listing part (``Journal.listing_path``); readers never see half of one."""
    import pyarrow.feather as feather
    with outputs.atomic_write(path, "wb") as f:
        feather.write_feather(table, f, compression="lz4")


def read_listing(path: str, columns: list[str] | None = None) -> pa.Table:
    """A saved listing part (``save_listing``, or an earlier exoflow's Parquet one)."""
    if path.endswith(".parquet"):
        return outputs.read_table(path, columns=columns)
    import pyarrow.feather as feather
    if outputs.is_url(path):
        with outputs.open_read(path) as f:
            return feather.read_table(pa.BufferReader(f.read()), columns=columns)
    return feather.read_table(path, columns=columns, memory_map=False)


def listing_parts(out_dir: str) -> list[str]:
    """The saved listing parts of the run in ``out_dir``, in the order they were numbered."""
    folder = os.path.join(out_dir, STATE, LISTING)
    names = os.listdir(folder) if os.path.isdir(folder) else []
    return sorted(os.path.join(folder, n) for n in names if n.endswith(LISTING_SUFFIXES))


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def test_pause(kind: str) -> None:
    """Test-only hook: ``EXOFLOW_TEST_DELAY="list=0.5,chunk=0.2,after=30"`` sleeps that many seconds at
    the start of each listing task, chunk task, or before the after-step, so tests can kill a run
    at a chosen point. Unset in normal use."""
    spec = os.environ.get("EXOFLOW_TEST_DELAY")
    if spec:
        delays = dict(item.split("=") for item in spec.split(","))
        if kind in delays:
            time.sleep(float(delays[kind]))
