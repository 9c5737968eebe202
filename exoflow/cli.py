"""The ``exoflow`` command.

    exoflow run JOB PATH... [options]   run a job (a shipped job's name or a job file)
    exoflow jobs                        list the shipped jobs

Exit codes: 0 success; 1 finished, but some files had errors (see the
``error`` column); 2 usage error or unusable input; 3 internal error;
130 interrupted.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import re
import sys
from typing import TYPE_CHECKING, Sequence

from . import __version__
from .options import ChunkOptions, ClusterOptions, LoadOptions, WalkOptions
from .sinks import UsageError

if TYPE_CHECKING:
    from .job import Job

EXIT_OK, EXIT_FILE_ERRORS, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

_UNITS = {"": 1, "b": 1, "k": 2**10, "kb": 10**3, "kib": 2**10, "m": 2**20, "mb": 10**6, "mib": 2**20,
          "g": 2**30, "gb": 10**9, "gib": 2**30, "t": 2**40, "tb": 10**12, "tib": 2**40}


def parse_size(text: str) -> int:
    """'1500', '64k', '10MiB', '2G' -> bytes (k/M/G alone are binary, as in find and du)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise argparse.ArgumentTypeError(f"invalid size {text!r} (examples: 4096, 64k, 10MiB, 2G)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def _size_at_least(minimum: int):
    """An argparse type: a size (see parse_size) of at least ``minimum`` bytes."""
    def parse(text: str) -> int:
        n = parse_size(text)
        if n < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum} bytes, got {text!r}")
        return n
    return parse


def _dashboard_address(text: str) -> str:
    """HOST:PORT (or :PORT) with a numeric port, as the dashboard server needs."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"invalid address {text!r} (expected HOST:PORT, e.g. 127.0.0.1:8787)")
    return text


def _memory_limit(text: str) -> str:
    """'auto', a fraction of the machine's memory (0.5), or a size (4GiB); at least what a worker
    needs (cluster.MIN_WORKER_MEMORY; 'auto' is checked when the number of workers is known)."""
    from .cluster import check_memory_limit
    if text != "auto":
        try:
            check_memory_limit(text)
        except UsageError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return text


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


_positive = count_at_least(1)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line with the usage hint, exit 2
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def run_parser(job: Job, prog: str) -> argparse.ArgumentParser:
    """The options of ``exoflow run JOB``: shared by every job, plus the job's own."""
    p = _Parser(prog=prog, description=job.description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="*", metavar="PATH", help="files or directories to process")
    p.add_argument("--from-list", metavar="FILE",
                   help="read paths from FILE: newline- or NUL-separated (detected), or an exoflow Parquet manifest")
    out = p.add_argument_group("output")
    out.add_argument("--out", metavar="DIR", help="output directory (default: ./exoflow-JOB-DATE-TIME)")
    out.add_argument("--overwrite", action="store_true", help="replace an earlier exoflow result in --out")
    out.add_argument("--json", action="store_true", help="print the summary as JSON on stdout instead of tables")
    out.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")

    w, d = p.add_argument_group("what to walk"), job.walk
    w.add_argument("--include", action="append", default=list(d.include), metavar="GLOB",
                   help="keep only files matching GLOB (gitignore syntax, repeatable)")
    w.add_argument("--exclude", action="append", default=list(d.exclude), metavar="GLOB",
                   help="skip files and directories matching GLOB (gitignore syntax, repeatable)")
    w.add_argument("--gitignore", action=argparse.BooleanOptionalAction, default=d.gitignore,
                   help="honour .gitignore and .ignore files, and in git repositories .git/info/exclude and "
                        f"the user's core.excludesFile (default: {'on' if d.gitignore else 'off'})")
    w.add_argument("--hidden", action=argparse.BooleanOptionalAction, default=d.hidden,
                   help=f"include names starting with '.' (default: {'on' if d.hidden else 'off'})")
    w.add_argument("-L", "--follow", action="store_true", default=d.follow_symlinks,
                   help="follow symbolic links (loops are detected and reported)")
    w.add_argument("-x", "--one-file-system", action="store_true", default=d.one_file_system,
                   help="do not descend into other file systems")
    w.add_argument("--max-depth", type=_positive, default=d.max_depth, metavar="N",
                   help="descend at most N levels (1: only entries directly under each PATH)")
    w.add_argument("--min-size", type=parse_size, default=d.min_size, metavar="SIZE", help="skip smaller regular files")
    w.add_argument("--max-size", type=parse_size, default=d.max_size, metavar="SIZE", help="skip larger regular files")

    c = p.add_argument_group("chunks and cluster")
    c.add_argument("--chunk-files", type=_positive, default=job.chunk.max_files, metavar="N",
                   help=f"at most N files per task (default: {job.chunk.max_files})")
    # None: not given (these options, and the embedded cluster's, are refused where they cannot apply)
    c.add_argument("--chunk-bytes", type=_size_at_least(1), metavar="SIZE",
                   help=f"at most SIZE bytes of content per task (default: {job.chunk.max_bytes // 2**20}MiB)")
    c.add_argument("--piece-size", type=_size_at_least(1024), metavar="SIZE",
                   help="jobs that read contents: files larger than SIZE are streamed in pieces of SIZE "
                        f"(default: {LoadOptions.piece_bytes // 2**20}MiB; checksum: at most 1MiB, which "
                        "keeps the bytes it hashes in the CPU cache)")
    c.add_argument("--scheduler", metavar="ADDRESS",
                   help="use a running Dask scheduler (tcp://HOST:8786) instead of an embedded cluster")
    c.add_argument("--workers", type=_positive, metavar="N",
                   help="embedded cluster: worker processes (default: CPU cores; with --backend gpu: 2)")
    c.add_argument("--threads-per-worker", type=_positive, metavar="N",
                   help="embedded cluster (default: 1; with --backend gpu: CPU cores / workers)")
    c.add_argument("--memory-limit", type=_memory_limit, metavar="SIZE",
                   help="embedded cluster: memory per worker before spilling to disk (default: auto)")
    c.add_argument("--dashboard", type=_dashboard_address, metavar="HOST:PORT",
                   help="embedded cluster: dashboard address (default: 127.0.0.1:8787; another port if taken)")
    c.add_argument("--no-dashboard", action="store_const", dest="dashboard", const="", help="no dashboard")

    if job.arguments:
        g = p.add_argument_group(f"{job.name} options")
        for a in job.arguments:
            g.add_argument(a.flag, **a.kwargs)
    return p


# the flag of each WalkOptions field, for messages
WALK_FLAGS = {"include": "--include", "exclude": "--exclude", "gitignore": "--gitignore/--no-gitignore",
              "hidden": "--hidden/--no-hidden", "follow_symlinks": "--follow", "one_file_system": "--one-file-system",
              "max_depth": "--max-depth", "min_size": "--min-size", "max_size": "--max-size"}
EMBEDDED_ONLY = {"workers": "--workers", "threads_per_worker": "--threads-per-worker",
                 "memory_limit": "--memory-limit", "dashboard": "--dashboard/--no-dashboard"}
CONTENT_ONLY = {"chunk_bytes": "--chunk-bytes", "piece_size": "--piece-size"}


def _options(args: argparse.Namespace, job: Job, params: dict) -> tuple[WalkOptions, ChunkOptions, LoadOptions,
                                                                     ClusterOptions]:
    """The run's options from the command line, checked (UsageError) before anything starts."""
    from .backends import task_resources
    from .sources.gitignore import user_excludes
    walk = WalkOptions(include=tuple(args.include), exclude=tuple(args.exclude), gitignore=args.gitignore,
                       git_excludes=user_excludes() if args.gitignore else (),
                       hidden=args.hidden, follow_symlinks=args.follow, one_file_system=args.one_file_system,
                       max_depth=args.max_depth, min_size=args.min_size, max_size=args.max_size)
    check_options(args, job, walk, params)
    chunk = ChunkOptions(max_files=args.chunk_files, max_bytes=args.chunk_bytes or job.chunk.max_bytes,
                         read_order=job.chunk.read_order)
    load = LoadOptions(piece_bytes=args.piece_size or LoadOptions.piece_bytes)
    cluster = ClusterOptions(scheduler=args.scheduler, workers=args.workers,
                             threads_per_worker=args.threads_per_worker, memory_limit=args.memory_limit or "auto",
                             dashboard=ClusterOptions.dashboard if args.dashboard is None else args.dashboard,
                             # embedded workers share this machine's GPU(s), if any, for --backend gpu
                             resources=task_resources(params))
    return walk, chunk, load, cluster


def check_options(args: argparse.Namespace, job: Job, walk: WalkOptions, params: dict) -> None:
    """Raise UsageError for options that cannot have the effect asked: a glob that can never match,
    bounds that exclude everything, an option that only applies with another, or with another
    kind of job or cluster; then the job's own checks (``Job.check``)."""
    import importlib.util

    from .backends import task_resources
    for flag, patterns in (("--include", walk.include), ("--exclude", walk.exclude)):
        check_globs(flag, patterns)
    if walk.min_size is not None and walk.max_size is not None and walk.min_size > walk.max_size:
        raise UsageError(f"--min-size {walk.min_size:,} bytes is above --max-size {walk.max_size:,} bytes: "
                         "no file can match")
    if args.from_list and not args.paths:
        changed = [flag for name, flag in WALK_FLAGS.items() if getattr(walk, name) != getattr(job.walk, name)]
        if changed:
            raise UsageError(f"{changed[0]} selects what a walk finds, and no PATH is walked "
                             "(--from-list entries are taken as listed)")
    if args.scheduler:
        given = [flag for name, flag in EMBEDDED_ONLY.items() if getattr(args, name) is not None]
        if given:
            raise UsageError(f"{given[0]} shapes the embedded cluster, not one given with --scheduler")
    elif task_resources(params) and importlib.util.find_spec("cupy") is None:
        # the embedded workers are this machine's; this check does not touch CUDA itself
        raise UsageError("--backend gpu: no CUDA device or CuPy on this machine: CuPy is not installed "
                         "(install exoflow[gpu-cuda12], or give --scheduler with GPU workers)")
    reads = job.chunk.read_order if job.chunk.read_order is not None else job.reads_content
    if not reads:
        given = [flag for name, flag in CONTENT_ONLY.items() if getattr(args, name) is not None]
        if given:
            raise UsageError(f"{given[0]} applies to jobs whose chunk tasks read file contents; "
                             f"the {job.name} job's do not")
    if job.check is not None:
        job.check(params)


def check_globs(flag: str, patterns: Sequence[str]) -> None:
    """Each GLOB must be a gitignore pattern that can change the outcome: one that compiles
    (``a\\`` and ``[z-a]`` do not), is no comment or blank line, has no unterminated ``[`` (git
    matches nothing with it), and is no negation with nothing before it to take back. Raises
    UsageError naming the first one that cannot."""
    import warnings

    import pathspec
    earlier = False
    for text in patterns:
        try:
            with warnings.catch_warnings():       # re's FutureWarnings about sets like '[[]'
                warnings.simplefilter("ignore")
                compiled = pathspec.GitIgnoreSpec.from_lines([text]).patterns
        except Exception as e:      # pathspec's own errors and re.error, by pattern
            raise UsageError(f"{flag} {text!r}: not a valid pattern ({e})") from None
        include = compiled[0].include if compiled else None
        if include is None:
            raise UsageError(f"{flag} {text!r}: {_never_matches(text)}")
        if not include and not earlier:
            raise UsageError(f"{flag} {text!r}: a negated pattern only takes back what an earlier {flag} "
                             "matched, and none comes before it")
        earlier = earlier or include


def _never_matches(text: str) -> str:
    if not text.strip():
        return "an empty pattern matches nothing"
    if text.startswith("#"):
        return "a comment in gitignore syntax, matches nothing (write '\\#' for a name starting with '#')"
    hint = " (an unterminated '['; write '\\[' for a literal bracket)" if "[" in text else ""
    return f"can never match, in git as here{hint}"


def _started() -> None:
    """Start-up is over: what it made (modules, the job) is frozen, never walked by the cyclic
    garbage collector, which ``main`` turned off for it and is back on (see exoflow.forkserver)."""
    gc.freeze()
    gc.enable()


def run_job(job: Job, argv: Sequence[str], prog: str) -> int:
    """Parse a job's options, run it, print the report; return the exit code."""
    from .progress import Progress
    from .runner import RunConfig, run, validate
    from .sinks import (check_out_dir, claim_out_dir, default_out_dir, discard_out_dir, holds_results,
                        keep_out_dir, prepare_out_dir, remove_partial_files)
    from .report import headline_counts
    from .tables import human_bytes, human_count

    args = run_parser(job, prog).parse_args(argv)
    params = {a.dest: getattr(args, a.dest) for a in job.arguments}
    walk, chunk, load, cluster_opts = _options(args, job, params)
    cfg = RunConfig(job=job, paths=list(args.paths), out_dir="", from_list=args.from_list, params=params,
                    walk=walk, chunk=chunk, load=load)
    notes = validate(cfg)
    if args.overwrite and args.out is None:
        raise UsageError("--overwrite replaces an earlier result in --out DIR; the default output directory is new")
    out_dir = default_out_dir(job.name) if args.out is None else args.out
    created = check_out_dir(out_dir, args.overwrite)   # fail before starting anything; create once connected
    say = (lambda *a: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    for note in notes:
        say(f"{prog}: {note}")
    _started()

    from .cluster import connect, describe
    try:
        with connect(cluster_opts) as client:
            cfg.out_dir = prepare_out_dir(out_dir if args.out else claim_out_dir(out_dir), args.overwrite)
            info = describe(client)
            say(f"exoflow {job.name}: {info['workers']} workers, {info['threads']} threads on {info['scheduler']}"
                + (f"; dashboard {info['dashboard']}" if info["dashboard"] else "")
                + (f"; exoflow page {info['exoflow_page']}" if info["exoflow_page"] else ""))
            progress = Progress(enabled=not args.quiet and sys.stderr.isatty())
            summary = run(client, cfg, progress)
    except KeyboardInterrupt:
        if cfg.out_dir:
            remove_partial_files(cfg.out_dir)
            if holds_results(cfg.out_dir):
                keep_out_dir(cfg.out_dir)
                print(f"{prog}: interrupted; complete parts so far are in {cfg.out_dir} (no summary.json)",
                      file=sys.stderr)
                return EXIT_INTERRUPTED
            discard_out_dir(cfg.out_dir, created)     # nothing written: as if never started
        print(f"{prog}: interrupted before anything was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BaseException:
        if cfg.out_dir:          # a run that failed leaves nothing behind, and an earlier result as it was
            discard_out_dir(cfg.out_dir, created)
        raise
    keep_out_dir(cfg.out_dir)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    elif not args.quiet:
        print(job.reducer.report(summary["result"], params))
        print()
    for warning in summary["result"].get("warnings", []):
        say(f"{prog}: warning: {warning}")
    say(f"{job.name}: {headline_counts(summary)}, {human_bytes(summary['bytes'])} in "
        f"{summary['wall_s']:.2f} s ({human_count(summary['files_per_s'] or 0)} files/s, "
        f"{human_bytes(summary['bytes_per_s'] or 0)}/s), {human_count(summary['errors'])} errors, "
        f"{human_bytes(summary.get('spilled_bytes') or 0)} spilled -> {cfg.out_dir}")
    job_code = int(summary["result"].get("exit_code", 0) or 0)
    return max(EXIT_FILE_ERRORS if summary["errors"] else EXIT_OK, job_code)


def _guard(fn, prog: str) -> int:
    """Expected problems are one line and exit 2; anything else is one line and exit 3."""
    try:
        return fn()
    except UsageError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:
        if os.environ.get("EXOFLOW_DEBUG"):
            raise
        print(f"{prog}: internal error: {type(e).__name__}: {e} (set EXOFLOW_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return EXIT_INTERNAL


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``exoflow`` command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    p = _Parser(prog="exoflow", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"exoflow {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    r = sub.add_parser("run", help="run a job: exoflow run JOB PATH... (see exoflow run JOB --help)", add_help=False)
    r.add_argument("job", metavar="JOB", help="a job name (see 'exoflow jobs') or a path to a job file")
    sub.add_parser("jobs", help="list the jobs shipped with exoflow")
    sub.add_parser("bench", help="benchmark a job: exoflow bench JOB PATH... (see exoflow bench JOB --help)",
                   add_help=False)
    sub.add_parser("info", help="describe this machine and exoflow's versions (add --json)", add_help=False)
    if not argv:
        p.print_help(sys.stderr)
        return EXIT_USAGE
    if argv[0] in ("bench", "info"):
        from . import bench
        return _guard(lambda: bench.main(argv[0], argv[1:]), f"exoflow {argv[0]}")
    args, rest = p.parse_known_args(argv[:2] if argv[0] == "run" else argv)
    if args.command == "jobs":
        from .jobs_registry import shipped
        for name, line in shipped().items():
            print(f"{name:<12} {line}")
        return EXIT_OK
    if args.command == "run":
        gc.disable()                  # start-up: see _started
        if not any(a == "--scheduler" or a.startswith("--scheduler=") for a in argv):
            from . import forkserver
            forkserver.start()        # its imports overlap the job's loading and checks below
        from .jobs_registry import load
        return _guard(lambda: run_job(load(args.job), argv[2:], f"exoflow run {args.job}"), "exoflow")
    p.error(f"unknown arguments: {' '.join(rest)}")
    return EXIT_USAGE


def _leave(code: int) -> None:
    """Exit without the interpreter's teardown (freeing every object: ~0.4 s after a big run).
    Everything is written and closed by now; only the standard streams need a flush."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def entry() -> None:
    """The ``exoflow`` console command."""
    _leave(main())


def job_main(job: Job) -> None:
    """``python jobs/NAME.py PATH...``: the same options as ``exoflow run NAME``."""
    prog = os.path.basename(sys.argv[0])
    _leave(_guard(lambda: run_job(job, sys.argv[1:], prog), prog))


if __name__ == "__main__":
    entry()
