"""Options that shape a run: what is walked, how it is chunked and read, which cluster runs it.

Each field that the command line sets carries its flag in its metadata (``Flag``: names, help,
how a value is parsed); ``exoflow.config`` builds the parser from them, so a flag's default is
the field's default (or a job's own, e.g. ``Job(walk=WalkOptions(gitignore=True))``) and its
help text says that default. A field the command line does not set says why (``derived``).
"""
from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from typing import Any, Callable

URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")     # a scheme and "://": object storage (fsspec)


def local_path(value: str) -> str:
    """argparse type of an option or argument that takes a local file or directory (--since, --verify,
    --baseline, exoflow show OUT …): ``value`` unchanged; raises ArgumentTypeError for a URL, which
    only a PATH, --from-list and --out take."""
    if URL.match(value):
        raise argparse.ArgumentTypeError(f"{value}: takes a local path, not a URL (object storage is read "
                                         "as a PATH or --from-list, and written with --out)")
    return value


def count_at_least(minimum: int):
    """An argparse type for job and engine options: a whole number of at least ``minimum``."""
    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
        if n < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {n}")
        return n
    return parse


positive = count_at_least(1)

_UNITS = {"": 1, "b": 1, "k": 2**10, "kb": 10**3, "kib": 2**10, "m": 2**20, "mb": 10**6, "mib": 2**20,
          "g": 2**30, "gb": 10**9, "gib": 2**30, "t": 2**40, "tb": 10**12, "tib": 2**40}


def parse_size(text: str) -> int:
    """'1500', '64k', '10MiB', '2G' -> bytes (k/M/G alone are binary, as in find and du)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise argparse.ArgumentTypeError(f"invalid size {text!r} (examples: 4096, 64k, 10MiB, 2G)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def size_at_least(minimum: int):
    """An argparse type: a size (see parse_size) of at least ``minimum`` bytes."""
    def parse(text: str) -> int:
        n = parse_size(text)
        if n < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum} bytes, got {text!r}")
        return n
    return parse


def dashboard_address(text: str) -> str:
    """HOST:PORT (or :PORT) with a numeric port, as the dashboard server needs."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"invalid address {text!r} (expected HOST:PORT, e.g. 127.0.0.1:8787)")
    return text


def json_object(text: str) -> str:
    """--storage-options: a JSON object, returned as canonical JSON text (sorted keys, hashable); ""
    (the default: fsspec's configuration) stays ""."""
    import json
    if not text:
        return ""
    try:
        value = json.loads(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON ({e})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object ({...})")
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def mebibytes(n: int) -> str:
    return f"{n // 2**20}MiB"


def on_off(v: bool) -> str:
    return "on" if v else "off"


@dataclass(frozen=True)
class Flag:
    """A field's command-line flag.

    kind: "value" (takes an argument), "list" (repeatable, each use adds one), "switch" (sets
    True), "on-off" (``--x`` / ``--no-x``). ``help`` may hold ``{default}``: the default as ``show``
    spells it. ``parse``: the argparse type, or "module:function" for one in a module this leaf
    cannot import. ``off``: a second flag that sets the field to "" (``--no-dashboard``)."""

    names: tuple[str, ...]
    help: str
    kind: str = "value"
    metavar: str | None = None
    parse: Callable[[str], Any] | str | None = None
    show: Callable[[Any], str] = str
    off: tuple[str, str] | None = None          # (flag, help)

    @property
    def name(self) -> str:
        """How messages name it: ``--max-depth``, ``--gitignore/--no-gitignore``."""
        long = self.names[-1]
        if self.kind == "on-off":
            return f"{long}/--no-{long[2:]}"
        return f"{long}/{self.off[0]}" if self.off else long


def flag(default: Any, *names: str, help: str, **kw: Any) -> Any:
    """A dataclass field with its flag: ``max_depth: int | None = flag(None, "--max-depth", help=…)``."""
    return field(default=default, metadata={"flag": Flag(names, help, **kw)})


def derived(default: Any, why: str) -> Any:
    """A field with no flag of its own: ``why`` says what sets it."""
    return field(default=default, metadata={"derived": why})


@dataclass(frozen=True)
class WalkOptions:
    """How a tree is walked and which entries are kept.

    A job may change the defaults (the scan job honours ``.gitignore``, the inventory job does not).
    """

    include: tuple[str, ...] = flag((), "--include", kind="list", metavar="GLOB",   # a file must match one
                                    help="keep only files matching GLOB (gitignore syntax, repeatable)")
    exclude: tuple[str, ...] = flag((), "--exclude", kind="list", metavar="GLOB",
                                    help="skip files and directories matching GLOB (gitignore syntax, repeatable)")
    gitignore: bool = flag(False, "--gitignore", kind="on-off", show=on_off,
                           help="honour .gitignore and .ignore files, and in git repositories .git/info/exclude "
                                "and the user's core.excludesFile (default: {default})")
    git_excludes: tuple[str, ...] = derived((), "the user's core.excludesFile lines, read when --gitignore is on")
    hidden: bool = flag(True, "--hidden", kind="on-off", show=on_off,
                        help="include names starting with '.' (default: {default})")
    # symlinked dirs are descended into; loops detected by (dev, inode)
    follow_symlinks: bool = flag(False, "-L", "--follow", kind="switch",
                                 help="follow symbolic links (loops are detected and reported)")
    one_file_system: bool = flag(False, "-x", "--one-file-system", kind="switch",
                                 help="do not descend into other file systems")
    max_depth: int | None = flag(None, "--max-depth", parse=positive, metavar="N",
                                 help="descend at most N levels (1: only entries directly under each PATH)")
    min_size: int | None = flag(None, "--min-size", parse=parse_size, metavar="SIZE",   # bytes; regular files
                                help="skip smaller regular files")
    max_size: int | None = flag(None, "--max-size", parse=parse_size, metavar="SIZE",
                                help="skip larger regular files")


@dataclass(frozen=True)
class ChunkOptions:
    """Bounds of one chunk (one task): whichever is reached first."""

    max_files: int = flag(20_000, "--chunk-files", parse=positive, metavar="N",
                          help="at most N files per task (default: {default})")
    max_bytes: int = flag(256 * 2**20, "--chunk-bytes", parse=size_at_least(1), metavar="SIZE", show=mebibytes,
                          help="at most SIZE bytes of content per task (default: {default})")
    # Content reading: sort by (device, inode) and bound the bytes per chunk. None = whether the
    # job reads contents (Job.reads).
    read_order: bool | None = derived(None, "the job: whether it reads contents (Job.reads), or its own ChunkOptions")
    # --since: when the earlier run started (ns since the epoch). A file whose ctime (an object's
    # mtime) is older is expected unchanged, its rows reused, not read: it counts no bytes towards
    # max_bytes and ``incremental.REUSED_COST`` towards max_files. An estimate for the cut only.
    reused_before: int | None = derived(None, "--since")


@dataclass(frozen=True)
class LoadOptions:
    """How file contents are read into a batch."""

    piece_bytes: int = flag(16 * 2**20, "--piece-size", parse=size_at_least(1024), metavar="SIZE", show=mebibytes,
                            help="jobs that read contents: files larger than SIZE are streamed in pieces of SIZE "
                                 "(default: {default}; checksum: at most 1MiB, which keeps the bytes it hashes "
                                 "in the CPU cache)")
    storage_options: str = flag("", "--storage-options", parse=json_object, metavar="JSON",
                                show=lambda v: v or "fsspec's configuration",
                                help="object-storage PATHs (s3://…): the fsspec file system's options as a JSON "
                                     "object, e.g. '{{\"client_kwargs\": {{\"endpoint_url\": \"http://host:9000\"}}}}' "
                                     "(default: {default})")


@dataclass(frozen=True)
class ClusterOptions:
    """Which cluster runs the tasks: a running scheduler, or an embedded cluster shaped by the rest."""

    scheduler: str | None = flag(None, "--scheduler", metavar="ADDRESS",     # tcp:// or tls://; None = embedded
                                 help="use a running Dask scheduler (tcp://HOST:8786) instead of an embedded cluster")
    scheduler_file: str | None = flag(None, "--scheduler-file", metavar="FILE", parse=local_path,
                                      help="use the running Dask scheduler that FILE (dask scheduler --scheduler-file) "
                                           "names")
    embedded: bool = flag(False, "--embedded", kind="switch",
                          help="start an embedded cluster for this run even when a scheduler is set or an "
                               "'exoflow cluster' runs")
    tls_ca_file: str | None = flag(None, "--tls-ca-file", metavar="FILE", parse=local_path,
                                   help="TLS scheduler: the CA certificate (PEM) that signed the cluster's certificates")
    tls_cert: str | None = flag(None, "--tls-cert", metavar="FILE", parse=local_path, help="TLS scheduler: this client's certificate (PEM)")
    tls_key: str | None = flag(None, "--tls-key", metavar="FILE", parse=local_path, help="TLS scheduler: this client's private key (PEM)")
    workers: int | None = flag(None, "--workers", parse=positive, metavar="N",
                               help="embedded cluster: worker processes (default: CPU cores; with --backend gpu: one per GPU)")
    threads_per_worker: int | None = flag(None, "--threads-per-worker", parse=positive, metavar="N",
                                          help="embedded cluster (default: 1; with --backend gpu: CPU cores / workers)")
    memory_limit: str = flag("auto", "--memory-limit", parse="exoflow.cluster:memory_limit_argument", metavar="SIZE",
                             help="embedded cluster: memory per worker before spilling to disk (default: {default})")
    dashboard: str = flag("127.0.0.1:8787", "--dashboard", parse=dashboard_address, metavar="HOST:PORT",
                          off=("--no-dashboard", "no dashboard"),
                          help="embedded cluster: dashboard address (default: {default}; another port if taken)")
    resources: dict | None = derived(None, "--backend gpu: what each embedded worker advertises, e.g. {'GPU': 1}")
    source: str = derived("", "exoflow.service.discover: which cluster the run uses, in words (empty until then)")
