"""A run's configuration from the command line, for ``exoflow run``, ``exoflow bench`` and
``python jobs/NAME.py``: ``run_parser`` builds the parser from the options dataclasses' flags
(``exoflow.options.Flag``) and the job's own ``Argument``s; ``configure`` turns the parsed
arguments into the ``RunConfig`` and ``ClusterOptions`` that ``exoflow.runner.run`` and
``exoflow.cluster.connect`` take, checked before anything starts.
"""
from __future__ import annotations

import argparse
import dataclasses
import pkgutil
from typing import TYPE_CHECKING, Any, NamedTuple, Sequence

from exoflow.errors import Parser, UsageError
from exoflow.options import local_path
from exoflow.options import ChunkOptions, ClusterOptions, Flag, LoadOptions, WalkOptions
from exoflow.runner import RunConfig, validate

if TYPE_CHECKING:
    from exoflow.job import Job

OPTIONS = (WalkOptions, ChunkOptions, LoadOptions, ClusterOptions)
# fields that only shape an embedded cluster, and those only of use to a job that reads contents
EMBEDDED_ONLY = ("workers", "threads_per_worker", "memory_limit", "dashboard")
CONTENT_ONLY = ("max_bytes", "piece_bytes")


def flags(options: type) -> dict[str, Flag]:
    """field name -> its flag, for the fields of an options dataclass that have one."""
    return {f.name: f.metadata["flag"] for f in dataclasses.fields(options) if "flag" in f.metadata}


def flag_name(field_name: str) -> str:
    """How messages name the flag of an options field: ``--max-depth``, ``--hidden/--no-hidden``."""
    return next(fl[field_name] for fl in map(flags, OPTIONS) if field_name in fl).name


def _given(namespace: argparse.Namespace, dest: str) -> None:
    namespace.given = getattr(namespace, "given", frozenset()) | {dest}


class _Store(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        _given(namespace, self.dest)


class _Append(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, [*getattr(namespace, self.dest), values])   # a new list: never the default's
        _given(namespace, self.dest)


class _Const(argparse.Action):
    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, nargs=0, **kw)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, self.const)
        _given(namespace, self.dest)


class _OnOff(argparse.BooleanOptionalAction):
    def __call__(self, parser, namespace, values, option_string=None):
        super().__call__(parser, namespace, values, option_string)
        _given(namespace, self.dest)


def _add(group, name: str, f: Flag, default: Any) -> None:
    """One field's flag(s); the value lands in ``args.<field name>``."""
    kw: dict[str, Any] = {"dest": name, "default": default, "help": f.help.format(default=f.show(default))}
    if f.kind == "value":
        parse = pkgutil.resolve_name(f.parse) if isinstance(f.parse, str) else f.parse
        group.add_argument(*f.names, action=_Store, type=parse, metavar=f.metavar, **kw)
    elif f.kind == "list":
        group.add_argument(*f.names, action=_Append, metavar=f.metavar, **{**kw, "default": list(default)})
    elif f.kind == "switch":
        group.add_argument(*f.names, action=_Const, const=True, **kw)
    elif f.kind == "on-off":
        group.add_argument(*f.names, action=_OnOff, **kw)
    else:
        raise ValueError(f"{name}: unknown flag kind {f.kind!r}")
    if f.off:
        group.add_argument(f.off[0], action=_Const, const="", dest=name, help=f.off[1])


def run_parser(job: Job, prog: str) -> Parser:
    """The options of ``exoflow run JOB``: shared by every job (from the options dataclasses, with
    the job's own walk and chunk defaults), plus the job's own ``Argument``s."""
    p = Parser(prog=prog, description=job.description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="*", metavar="PATH", help="files or directories to process")
    p.add_argument("--from-list", metavar="FILE",
                   help="read paths from FILE: newline- or NUL-separated (detected), or an exoflow Parquet manifest")
    out = p.add_argument_group("output")
    out.add_argument("--out", metavar="DIR", help="output directory (default: ./exoflow-JOB-DATE-TIME)")
    out.add_argument("--overwrite", action="store_true", help="replace an earlier exoflow result in --out")
    out.add_argument("--resume", action="store_true",
                     help="finish the run that was killed in --out DIR (same job, PATHs and options); "
                          "chunks it completed are not done again")
    out.add_argument("--since", metavar="PREVIOUS_OUT", type=local_path,
                     help="reuse PREVIOUS_OUT's results (same job and job options) for files whose device, "
                          "inode, size, mtime and ctime are unchanged; read the others")
    out.add_argument("--json", action="store_true", help="print the summary as JSON on stdout instead of tables")
    out.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    groups = {"what to walk": [job.walk], "chunks and cluster": [job.chunk, LoadOptions(), ClusterOptions()]}
    for title, defaults in groups.items():
        g = p.add_argument_group(title)
        for d in defaults:
            for name, f in flags(type(d)).items():
                _add(g, name, f, getattr(d, name))
    if job.arguments:
        g = p.add_argument_group(f"{job.name} options")
        for a in job.arguments:
            g.add_argument(a.flag, **a.kwargs)
    return p


class Configured(NamedTuple):
    run: RunConfig           # out_dir is "" until the caller has its output directory
    cluster: ClusterOptions
    notes: list[str]         # for the user (which PATHs overlap)


def configure(job: Job, args: argparse.Namespace) -> Configured:
    """The run that ``args`` (parsed by ``run_parser(job, …)``) asks for. Raises UsageError for options
    that cannot have the effect asked and for inputs that cannot work, before any cluster starts."""
    from exoflow.backends import resolve_auto, task_resources
    from exoflow.sources.gitignore import user_excludes

    params = {a.dest: getattr(args, a.dest) for a in job.arguments}

    def values(options: type) -> dict[str, Any]:
        return {name: getattr(args, name) for name in flags(options)}

    walk = WalkOptions(**{**values(WalkOptions), "include": tuple(args.include), "exclude": tuple(args.exclude)},
                       git_excludes=user_excludes() if args.gitignore else ())
    cluster = check_cluster(args, ClusterOptions(**values(ClusterOptions)))
    if not cluster.scheduler:
        # the embedded cluster: dask-cuda workers on this machine's GPUs for --backend gpu, and for
        # --backend auto where they can start (the run's backend is settled once connected)
        from exoflow import gpu
        params = resolve_auto(params, gpu.missing() is None)
        cluster = dataclasses.replace(cluster, resources=task_resources(params))
    check_options(args, job, walk, params, cluster)
    from exoflow.composed import ComposedJob, configured
    if isinstance(job, ComposedJob):     # each job's own walk, and the one walk that serves them all
        if args.resume or args.since:
            raise UsageError(f"{'--resume' if args.resume else '--since'} is not supported for a composed run "
                             f"({job.name}) yet: run the jobs one by one")
        job, walk = configured(job, walk, getattr(args, "given", frozenset()), list(args.paths), user_excludes)
    cfg = RunConfig(job=job, paths=list(args.paths), out_dir="", from_list=args.from_list, params=params, walk=walk,
                    chunk=ChunkOptions(**values(ChunkOptions), read_order=job.chunk.read_order),
                    load=LoadOptions(**values(LoadOptions)), since=args.since, resume=args.resume)
    return Configured(cfg, cluster, validate(cfg))


def check_cluster(args: argparse.Namespace, cluster: ClusterOptions) -> ClusterOptions:
    """The cluster the run will use (``exoflow.service.discover``), once its options are checked:
    one way to name a scheduler, complete and readable TLS files, no embedded cluster's shape for
    a running one. Raises UsageError."""
    from exoflow.discovery import check_tls_files, discover
    named = [f for f, v in (("--scheduler", cluster.scheduler), ("--scheduler-file", cluster.scheduler_file),
                            ("--embedded", cluster.embedded)) if v]
    if len(named) > 1:
        raise UsageError(f"{named[0]} and {named[1]} both choose the cluster: give one")
    check_tls_files(cluster)
    cluster = discover(cluster)
    if cluster.scheduler:
        shaping = [flag_name(n) for n in EMBEDDED_ONLY if n in getattr(args, "given", frozenset())]
        if shaping:
            if cluster.source.startswith("--scheduler"):
                raise UsageError(f"{shaping[0]} shapes the embedded cluster, not one given with --scheduler")
            raise UsageError(f"{shaping[0]} shapes the embedded cluster, and this run would use "
                             f"{cluster.source} at {cluster.scheduler}: add --embedded for an embedded cluster")
    return cluster


def check_options(args: argparse.Namespace, job: Job, walk: WalkOptions, params: dict,
                  cluster: ClusterOptions) -> None:
    """Raise UsageError for options that cannot have the effect asked: a glob that can never match,
    bounds that exclude everything, an option that only applies with another, or with another
    kind of job or cluster; then the job's own checks (``Job.check``)."""
    from exoflow.backends import task_resources
    given = getattr(args, "given", frozenset())
    for flag, patterns in (("--include", walk.include), ("--exclude", walk.exclude)):
        check_globs(flag, patterns)
    if walk.min_size is not None and walk.max_size is not None and walk.min_size > walk.max_size:
        raise UsageError(f"--min-size {walk.min_size:,} bytes is above --max-size {walk.max_size:,} bytes: "
                         "no file can match")
    if args.from_list and not args.paths:
        changed = [flag_name(n) for n in flags(WalkOptions) if getattr(walk, n) != getattr(job.walk, n)]
        if changed:
            raise UsageError(f"{changed[0]} selects what a walk finds, and no PATH is walked "
                             "(--from-list entries are taken as listed)")
    if not cluster.scheduler and task_resources(params):
        # the embedded workers are this machine's; this check does not touch CUDA itself
        from exoflow import gpu
        gpu.check()
    reads = job.chunk.read_order if job.chunk.read_order is not None else job.reads_content
    if not reads:
        content = [flag_name(n) for n in CONTENT_ONLY if n in given]
        if content:
            raise UsageError(f"{content[0]} applies to jobs whose chunk tasks read file contents; "
                             f"the {job.name} job's do not")
    if job.check is not None:
        job.check(params)
    from exoflow.sources.objects import is_url
    out = getattr(args, "out", None)
    if args.storage_options and not (any(map(is_url, args.paths)) or args.from_list or (out and is_url(out))):
        raise UsageError("--storage-options applies to object storage (s3://… or gs://… PATHs, --out or "
                         "--from-list), and none is given")
    changing = job.changes_files(params) if job.changes_files is not None else None
    url = next((p for p in args.paths if is_url(p)), None)
    if changing and url:
        raise UsageError(f"{changing} changes files, and {url} is in object storage, which exoflow only reads: "
                         f"run without {changing}")


def check_globs(flag: str, patterns: Sequence[str]) -> None:
    """Each GLOB must be a gitignore pattern that can change the outcome: one that compiles
    (``a\\`` and ``[z-a]`` do not), is no comment or blank line, has no unterminated ``[`` (git
    matches nothing with it), and is no negation with nothing before it to take back. Raises
    UsageError naming the first one that cannot."""
    import warnings

    from exoflow.sources.walk import compiled_globs
    earlier = False
    for text in patterns:
        try:
            with warnings.catch_warnings():       # re's FutureWarnings about sets like '[[]'
                warnings.simplefilter("ignore")
                compiled = compiled_globs((text,)).patterns
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
