"""The ``exoflow`` command.

    exoflow run JOB PATH... [options]   run a job (a shipped job's name or a job file)
    exoflow jobs                        list the shipped jobs
    exoflow info [--json]               this machine and exoflow's versions
    exoflow bench JOB PATH... [options] benchmark a job (serial and on the cluster)
    exoflow show OUT                    a finished run's tables again (from OUT/summary.json)
    exoflow query OUT "SQL"             SQL over OUT's Parquet datasets (DuckDB; exoflow[sql])
    exoflow cluster start|status|stop|logs   a cluster kept running in the background, which runs use

Exit codes: 0 success; 1 finished, but some files had errors (see the
``error`` column); 2 usage error or unusable input (or an object store that
failed during the run); 3 internal error;
130 interrupted.
"""
from __future__ import annotations

import argparse
import gc
import os
import sys
from typing import TYPE_CHECKING, Sequence

from exoflow import __version__
from exoflow.errors import (EXIT_FILE_ERRORS, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, UsageError,
                            catch_interrupts, check_interrupt, exit_on_interrupt, held_interrupts,
                            remove_mp_tempdir)

if TYPE_CHECKING:
    from exoflow.job import Job


def add_format_options(p: argparse.ArgumentParser, job: Job) -> None:
    """``exoflow run``'s text output that pipes: --format and -0 (not bench's: it prints timings)."""
    from exoflow.results import FORMATS
    g = p.add_argument_group("text output")
    g.add_argument("--format", choices=FORMATS, metavar="FORMAT",
                   help=f"write the job's main table ({job.main_table or job.dataset or 'not in a composed run'}) "
                        "to stdout as jsonl, csv or paths, instead of the terminal tables (the last line still goes "
                        "to stderr)")
    # -0 is read as --null by run_job: an option "-0" would make argparse take "-1" for an option
    # everywhere (``--top -1`` would no longer say "must be at least 0")
    g.add_argument("--null", action="store_true", dest="nul",
                   help="-0, --null: with --format paths, end each path with NUL, not newline (as find -print0)")


def _started() -> None:
    """Start-up is over: what it made (modules, the job) is frozen, never walked by the cyclic
    garbage collector, which ``main`` turned off for it and is back on (see exoflow.forkserver)."""
    gc.freeze()
    gc.enable()


def run_job(job: Job, argv: Sequence[str], prog: str) -> int:
    """Parse a job's options, run it, print the report; return the exit code."""
    from exoflow.config import configure, run_parser
    from exoflow.progress import Progress
    from exoflow.runner import run
    from exoflow.sinks import (check_out_dir, claim_out_dir, default_out_dir, discard_out_dir,
                               holds_results, keep_out_dir, prepare_out_dir, remove_partial_files)
    from exoflow.report import summary_line
    from exoflow.incremental import check_since_out
    from exoflow.journal import check_resume
    from exoflow.results import write_main_table
    from exoflow import outputs
    from exoflow.sources.objects import check_output, is_url, store_failure
    from exoflow.sources.objects import describe as describe_store

    parser = run_parser(job, prog)
    add_format_options(parser, job)
    cut = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args([("--null" if a == "-0" else a) for a in argv[:cut]] + list(argv[cut:]))
    if args.format and args.json:
        raise UsageError("--format and --json both choose what stdout holds: give one")
    if args.nul and args.format != "paths":
        raise UsageError("-0 applies to --format paths")
    if args.format and not (job.main_table or job.dataset):
        raise UsageError(f"--format writes one job's table, and {job.name} writes one per job: "
                         "run that job alone, or use exoflow query OUT")
    cfg, cluster_opts, notes = configure(job, args)
    remote = args.out.rstrip("/") if args.out and is_url(args.out) else None    # the workers write there
    if remote and (args.resume or args.overwrite):
        raise UsageError(f"{'--resume' if args.resume else '--overwrite'} applies to a local --out DIR; an "
                         "object-storage --out must hold nothing yet")
    if remote:
        check_output(remote, cfg.load.storage_options)
        outputs.register(remote, cfg.load.storage_options)
    if args.overwrite and args.out is None:
        raise UsageError("--overwrite replaces an earlier result in --out DIR; the default output directory is new")
    if args.resume and (args.out is None or args.overwrite):
        raise UsageError("--resume finishes the run killed in --out DIR: give --out, and no --overwrite")
    out_dir = remote or (default_out_dir(job.name) if args.out is None else args.out)
    if args.resume:
        check_resume(out_dir, cfg)
    if cfg.since and not remote:
        check_since_out(cfg.since, out_dir)
    # fail before starting anything; create once connected
    created = [] if args.resume or remote else check_out_dir(out_dir, args.overwrite)
    say = (lambda *a: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    for note in notes:
        say(f"{prog}: {note}")
    _started()
    catch_interrupts()
    # After a Ctrl-C, Dask's sync() can leave a cancel callback that fails in the client's event loop
    # (a NameError in distributed.utils.sync), which tornado logs with a traceback; the interrupt is
    # reported in one line below.
    import logging
    logging.getLogger("tornado.application").setLevel(logging.CRITICAL)

    from exoflow.backends import backend_named, resolve_auto
    from exoflow.cluster import connect, describe
    try:
        with connect(cluster_opts) as client:
            with held_interrupts():        # moved aside and noted as one step: a Ctrl-C puts it back
                cfg.out_dir = remote or (os.path.realpath(out_dir) if args.resume else
                                         prepare_out_dir(out_dir if args.out else claim_out_dir(out_dir),
                                                         args.overwrite))
            info = describe(client)
            cfg.params = resolve_auto(cfg.params, info["gpu_workers"] > 0)
            backend = backend_named(cfg.params)
            say(f"exoflow {job.name}: {info['workers']} workers, {info['threads']} threads on {info['scheduler']} "
                f"({cluster_opts.source})" + (f"; backend {backend}" if backend else "")
                + (f"; dashboard {info['dashboard']}" if info["dashboard"] else "")
                + (f"; exoflow page {info['exoflow_page']}" if info["exoflow_page"] else ""))
            progress = Progress(enabled=not args.quiet and sys.stderr.isatty(), name=job.name)
            summary = run(client, cfg, progress)
            check_interrupt()      # one that a finalizer caught while the run wound up
        check_interrupt()          # or while the client and its embedded cluster closed
    except KeyboardInterrupt:
        if cfg.out_dir and outputs.exists(os.path.join(cfg.out_dir, "summary.json")):   # the run's end
            if not remote:
                keep_out_dir(cfg.out_dir)
            report = outputs.exists(os.path.join(cfg.out_dir, "report.html"))
            print(f"{prog}: interrupted after the run had finished; its results are in {cfg.out_dir}"
                  + ("" if report else " (but for report.html)"), file=sys.stderr)
            return EXIT_INTERRUPTED
        if remote:        # no --resume for a store: what the run wrote there goes
            why = remove_url(remote)
            print(f"{prog}: interrupted; " + (f"nothing is left under {remote}" if why is None else
                  f"what the run wrote under {remote} could not be removed: {why}"), file=sys.stderr)
            return EXIT_INTERRUPTED
        if cfg.out_dir:
            remove_partial_files(cfg.out_dir)
            if holds_results(cfg.out_dir):
                keep_out_dir(cfg.out_dir)
                print(f"{prog}: interrupted; complete parts so far are in {cfg.out_dir} (no summary.json; "
                      "add --resume to finish)", file=sys.stderr)
                return EXIT_INTERRUPTED
            discard_out_dir(cfg.out_dir, created)     # nothing written: as if never started
        print(f"{prog}: interrupted before anything was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BaseException as e:
        # a run that failed leaves nothing behind, and an earlier result as it was; a resumed one
        # leaves its journal, to be resumed again
        left = remove_url(remote) if remote else None
        if not remote and cfg.out_dir and not args.resume:
            discard_out_dir(cfg.out_dir, created)
        stores = remote or any(map(is_url, [*cfg.paths, cfg.from_list or ""]))
        if stores and isinstance(e, Exception) and store_failure(e):    # not exoflow's failure: exit 2, one line
            raise UsageError(f"the run stopped: the object store failed: {describe_store(e)}"
                             + (f"; what the run wrote under {remote} could not be removed" if left else
                                f"; nothing is left under {remote}" if remote else "")) from None
        if left:
            print(f"{prog}: warning: what the run wrote under {remote} could not be removed: {left}", file=sys.stderr)
        raise
    if not remote:
        keep_out_dir(cfg.out_dir)
    if args.json:
        import json
        print(json.dumps(summary, indent=2, default=str))
    elif args.format:        # stdout holds only the table: pipes to jq, xargs -0, a spreadsheet …
        main_dir = os.path.join(cfg.out_dir, job.main_table or job.dataset)
        if outputs.isdir(main_dir):
            write_main_table(main_dir, args.format, args.nul)
    elif not args.quiet:
        print(job.reducer.report(summary["result"], cfg.params))
        print()
    for warning in summary["result"].get("warnings", []):
        say(f"{prog}: warning: {warning}")
    say(summary_line(summary))
    job_code = int(summary["result"].get("exit_code", 0) or 0)
    return max(EXIT_FILE_ERRORS if summary["errors"] else EXIT_OK, job_code)


def remove_url(url: str) -> str | None:
    """Remove what a run that failed or was interrupted wrote under the --out ``url`` (it held nothing
    before); the store's reason where it refuses (one line), else None."""
    from exoflow import outputs
    from exoflow.sources.objects import describe
    try:
        outputs.rmtree(url)
    except Exception as e:
        return describe(e)
    return None


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
    from exoflow.errors import Parser
    p = Parser(prog="exoflow", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"exoflow {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    r = sub.add_parser("run", help="run a job: exoflow run JOB PATH... (see exoflow run JOB --help)", add_help=False)
    r.add_argument("job", metavar="JOB", help="a job name (see 'exoflow jobs') or a path to a job file; "
                   "several joined by '+' run in one pass (checksum+scan; all: every job that reads contents)")
    sub.add_parser("jobs", help="list the jobs shipped with exoflow")
    sub.add_parser("bench", help="benchmark a job: exoflow bench JOB PATH... (see exoflow bench JOB --help)",
                   add_help=False)
    sub.add_parser("info", help="describe this machine and exoflow's versions (add --json)", add_help=False)
    sub.add_parser("show", help="print a finished run's tables again: exoflow show OUT", add_help=False)
    sub.add_parser("cluster", help="a cluster in the background: exoflow cluster start|status|stop|logs",
                   add_help=False)
    sub.add_parser("query", help='SQL over a run\'s Parquet datasets: exoflow query OUT "SQL" (needs exoflow[sql])',
                   add_help=False)
    if not argv:
        p.print_help(sys.stderr)
        return EXIT_USAGE
    if argv[0] != "run":      # these commands handle Ctrl-C themselves
        exit_on_interrupt(starting=False)
    if argv[0] in ("bench", "info"):
        from exoflow import bench
        return _guard(lambda: bench.main(argv[0], argv[1:]), f"exoflow {argv[0]}")
    if argv[0] == "cluster":
        from exoflow import service
        return _guard(lambda: service.main(argv[1:]), "exoflow cluster")
    if argv[0] in ("show", "query"):
        from exoflow import results
        return _guard(lambda: results.main(argv[0], argv[1:]), f"exoflow {argv[0]}")
    args, rest = p.parse_known_args(argv[:2] if argv[0] == "run" else argv)
    if args.command == "jobs":
        from exoflow.jobs_registry import shipped
        for name, line in shipped().items():
            print(f"{name:<12} {line}")
        return EXIT_OK
    if args.command == "run":
        from exoflow.submit import submit
        code = submit(argv)           # the running exoflow cluster's warm driver runs it, if there is one
        return run_here(argv) if code is None else code
    p.error(f"unknown arguments: {' '.join(rest)}")
    return EXIT_USAGE


def run_here(argv: Sequence[str]) -> int:
    """``exoflow run JOB …`` (``argv``) in this process; the exit code."""
    gc.disable()                      # start-up: see _started
    from exoflow.discovery import may_use_running_cluster
    if not may_use_running_cluster(list(argv)):
        from exoflow import forkserver
        forkserver.start()            # its imports overlap the job's loading and checks below
    from exoflow.composed import load
    return _guard(lambda: run_job(load(argv[1]), argv[2:], f"exoflow run {argv[1]}"), "exoflow")


def _leave(code: int) -> None:
    """Exit without the interpreter's teardown (freeing every object: ~0.4 s after a big run).
    Everything is written and closed by now; the standard streams need a flush, and the temporary
    directory multiprocessing made for the fork server's socket (``pymp-…``, removed by a finalizer
    that ``os._exit`` skips) has to go."""
    sys.stdout.flush()
    sys.stderr.flush()
    remove_mp_tempdir()
    os._exit(code)


def entry() -> None:
    """The ``exoflow`` command (``exoflow.__main__``, which handles a Ctrl-C during start-up)."""
    exit_on_interrupt()
    _leave(main())


def job_main(job: Job) -> None:
    """``python jobs/NAME.py PATH...``: the same options as ``exoflow run NAME``."""
    exit_on_interrupt()
    prog = os.path.basename(sys.argv[0])
    _leave(_guard(lambda: run_job(job, sys.argv[1:], prog), prog))


if __name__ == "__main__":
    entry()
