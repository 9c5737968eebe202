"""Several jobs in one run: ``exoflow run checksum+scan+codestats+profile PATH``.

One walk, one listing, each file read at most once: a chunk's rows are loaded once for the union
of the jobs' row selectors (``Job.reads``), and every job's kernels run on the same batch, each
seeing only its own rows and contents (``_view``). Each job writes what it writes alone under
``OUT/JOB/`` (its dataset, its after-step's outputs); summary.json's ``result`` holds a section per
job (``{"jobs": {name: {counts, out, dataset, params, result}}, "exit_code", "warnings"}``) and
report.html a section per job.

* Walks: the run walks with the union of the jobs' walk options (``sources.views.union``); a job
  whose own walk lists less (scan honours .gitignore and skips .git) gets its rows marked in the
  listing tasks (``sources.views.WalkViews``) and sees only those, as when run alone.
* Options: a job's own options are ``--JOB.OPTION`` (``--scan.rules``, ``--checksum.hash``); the
  plain ``--OPTION`` is accepted where one job of the run has it. Engine options are shared.
* Files over ``--piece-size`` are not loaded whole: each is opened and read once, its pieces fed
  to the consumers of every job that reads it (``Reads.consume``, ``batch.feed``).
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import os
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from exoflow import jobs_registry
from exoflow.batch import Batch, Reads, batches, feed, selection
from exoflow.chunks import content_bytes, read_batches
from exoflow.errors import UsageError
from exoflow.job import Argument, Finish, Job
from exoflow.metrics import meter
from exoflow.options import ChunkOptions, LoadOptions, WalkOptions
from exoflow.sources.views import WalkViews, column, describe, union

# ``exoflow run all``: the shipped jobs whose chunk tasks read contents, and the inventory. Not
# neardup (its LSH shuffle and clusters cost more than the read; add it: all+neardup) nor dedup
# (it reads in its own after-stages, from checksum-like hashes of its candidates: all+dedup).
ALL = ("inventory", "checksum", "scan", "codestats", "profile")
COUNTS = ("entries", "files", "other_entries", "bytes", "errors")


def load(spec: str) -> Job:
    """A job name or job file (``jobs_registry.load``), or several joined by ``+`` (``all`` stands
    for ``ALL``): then their ``ComposedJob``. Raises UsageError for an unknown job, a name given
    twice or an empty one."""
    if "+" not in spec and spec != "all" or os.path.isfile(spec):
        return jobs_registry.load(spec)
    parts = spec.split("+")
    if not all(parts):
        raise UsageError(f"{spec!r}: a job name is missing around '+'")
    specs = list(dict.fromkeys(p for part in parts for p in (ALL if part == "all" else (part,))))
    return compose([jobs_registry.load(s) for s in specs])


def compose(jobs: Sequence[Job]) -> ComposedJob:
    """One job that runs ``jobs`` in one pass. Raises UsageError for two jobs of one name, or walks
    that one walk cannot serve (``sources.views.union``)."""
    names = [j.name for j in jobs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UsageError(f"two jobs are named {twice[0]!r}: a composed run writes each job's results to OUT/JOB/")
    bad = [n for n in names if "+" in n or "." in n or "/" in n]
    if bad:
        raise UsageError(f"job name {bad[0]!r}: a job in a composed run is named without '+', '.' or '/'")
    jobs = tuple(jobs)
    reading = [j for j in jobs if j.reads_content] or jobs
    return ComposedJob(
        name="+".join(names),
        description=f"{'+'.join(names)}: one walk and one read of each file for the jobs\n\n"
                    + "\n".join(f"  {j.name:<10} {(j.description or '').strip().splitlines()[0]}" for j in jobs),
        kernels=[],
        reducer=ComposedReducer(jobs),
        reads=Reads() if any(j.reads_content for j in jobs) else None,
        walk=union([j.walk for j in jobs], names),
        chunk=ChunkOptions(max_files=min(j.chunk.max_files for j in jobs),
                           max_bytes=min(j.chunk.max_bytes for j in reading)),
        arguments=_arguments(jobs),
        dataset="",
        after=functools.partial(_after, jobs),
        plots=functools.partial(_plots, jobs),
        tables=functools.partial(_tables, jobs),
        check=functools.partial(_check, jobs),
        environment=functools.partial(_environment, jobs),
        jobs=jobs,
    )


def params_of(job: Job, params: dict[str, Any]) -> dict[str, Any]:
    """A job's own options out of the composed run's (``JOB.dest`` keys), with the run's ``now``."""
    prefix = job.name + "."
    own = {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}
    return {"now": params["now"], **own} if "now" in params else own


# ---- options ------------------------------------------------------------------------

class _Ambiguous(argparse.Action):
    """A plain option that several jobs of the run have: one line naming the namespaced forms."""

    def __init__(self, option_strings, dest, owners: tuple[str, ...] = (), **kw: Any) -> None:
        super().__init__(option_strings, dest, **kw)
        self.owners = owners

    def __call__(self, parser, namespace, values, option_string=None):
        forms = " or ".join(f"--{o}.{option_string.lstrip('-')}" for o in self.owners)
        parser.error(f"{option_string} is an option of {', '.join(self.owners)}: give {forms}")


def _arguments(jobs: Sequence[Job]) -> list[Argument]:
    """``--JOB.OPTION`` for every job's own option; the plain form too where one job has it, and
    one that says which to give where several do."""
    owners: dict[str, list[str]] = {}
    for j in jobs:
        for a in j.arguments:
            owners.setdefault(a.flag, []).append(j.name)
    out = []
    for j in jobs:
        for a in j.arguments:
            kw = {**a.kwargs, "dest": f"{j.name}.{a.dest}"}
            out.append(Argument(f"--{j.name}.{a.flag.lstrip('-')}", **kw))
            if len(owners[a.flag]) == 1:
                out.append(Argument(a.flag, **{**kw, "help": argparse.SUPPRESS}))
    for flag, names in owners.items():
        if len(names) > 1:
            first = next(a for a in next(j for j in jobs if j.name == names[0]).arguments if a.flag == flag)
            out.append(Argument(flag, action=_Ambiguous, owners=tuple(names), nargs="?", default=argparse.SUPPRESS,
                                dest=f"{names[0]}.{first.dest}", help=argparse.SUPPRESS))
    return out


def _check(jobs: Sequence[Job], params: dict[str, Any]) -> None:
    for j in jobs:
        if j.check is not None:
            j.check(params_of(j, params))


def _environment(jobs: Sequence[Job]) -> dict[str, str]:
    return {f"{j.name}.{k}": v for j in jobs if j.environment is not None for k, v in j.environment().items()}


def configured(job: ComposedJob, walk: WalkOptions, given: frozenset[str], paths: list[str],
               git_excludes) -> tuple[ComposedJob, WalkOptions]:
    """Each job's own walk (its defaults with the walk flags given on the command line, as when it
    runs alone: ``walk`` is what they parsed to, ``given`` their names; ``git_excludes()`` the
    user's core.excludesFile lines), the run's walk (their union) and the job that marks the rows
    of those that walk differently. Raises UsageError for PATHs that overlap while the jobs walk
    differently (an entry would be reached from two roots)."""
    from exoflow.runner import plan
    from exoflow.sources.objects import is_url
    from exoflow.sources.walk import OWN

    walks = []
    for j in job.jobs:
        changes = {}
        for f in dataclasses.fields(WalkOptions):
            if f.name not in given:
                continue
            value = getattr(walk, f.name)
            # repeatable flags add to the job's own list, as they do alone
            changes[f.name] = getattr(j.walk, f.name) + value[len(getattr(job.walk, f.name)):] \
                if isinstance(value, tuple) else value
        own = dataclasses.replace(j.walk, **changes)
        walks.append(dataclasses.replace(own, git_excludes=git_excludes() if own.gitignore else ()))
    names = [j.name for j in job.jobs]
    run_walk = union(walks, names)
    differ = tuple((n, w) for n, w in zip(names, walks) if w != run_walk)
    if not differ:
        return job, run_walk
    local = [p for p in paths if not is_url(p)]      # prefixes of object storage do not overlap: no views
    for w in (run_walk, *(w for _, w in differ)):
        p = plan(local, w)
        if p.merged or any(d.views != OWN for d in p.dirs):
            n, own = differ[0]
            raise UsageError(f"PATHs overlap, and the jobs walk differently ({n}: {describe(own, run_walk)}): "
                             "give PATHs that do not overlap, or run the jobs apart")
    return dataclasses.replace(job, mark=WalkViews(differ)), run_walk


# ---- the chunk task ------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ComposedJob(Job):
    """Several jobs run as one (``compose``); ``Job``'s hooks dispatch to each of ``jobs``."""

    jobs: tuple[Job, ...] = ()

    def write_chunk(self, table: pa.Table, params: dict[str, Any], load: LoadOptions, out_dir: str,
                    part: str) -> tuple[int, dict]:
        """Load the rows any job selects once, run every job's kernels on the loaded batches (each on
        its own rows: ``_view``), write each job's rows to ``out_dir/JOB/<dataset>/part``. Returns
        (the most rows with an error of one job, ``{job: {"summary": its reducer's chunk summary,
        and COUNTS of its rows}}``)."""
        marks = [c for c in table.column_names if c.startswith(column(""))]
        listing = table.drop_columns(marks)
        n = listing.num_rows
        views = [table.column(column(j.name)).to_numpy(zero_copy_only=False) if column(j.name) in marks
                 else np.ones(n, dtype=bool) for j in self.jobs]
        own = [params_of(j, params) for j in self.jobs]
        parts = self._process(listing, views, own, load, params)
        sizes = content_bytes(listing)
        kinds = listing.column("type")
        is_file = pc.fill_null(pc.equal(kinds, "file"), False).to_numpy(zero_copy_only=False)
        is_dir = pc.fill_null(pc.equal(kinds, "dir"), False).to_numpy(zero_copy_only=False)
        out, worst = {}, 0
        for k, j in enumerate(self.jobs):
            rows = parts[k][0] if len(parts[k]) == 1 else pa.concat_tables(parts[k], promote_options="default")
            errors, summary = j.write_rows(rows, own[k], os.path.join(out_dir, j.name), part)
            v = views[k]
            entries, files = int(v.sum()), int((is_file & v).sum())
            out[j.name] = {"summary": summary, "entries": entries, "files": files, "errors": errors,
                           "other_entries": entries - files - int((is_dir & v).sum()), "bytes": int(sizes[v].sum())}
            worst = max(worst, errors)
        return worst, out

    def _process(self, listing: pa.Table, views: list[np.ndarray], own: list[dict], load: LoadOptions,
                 params: dict[str, Any]) -> list[list[pa.Table]]:
        """Each job's output rows for the chunk, in parts. A job that reads nothing runs once on its
        rows. The contents are loaded once for all the others: as one batch when one of them takes
        the whole chunk at once (the others get their own sub-batches of it), else in sub-batches
        of the smallest ``batch_bytes`` they ask for."""
        parts: list[list[pa.Table]] = [[] for _ in self.jobs]
        reading = [k for k, j in enumerate(self.jobs) if j.reads_content]
        for k, j in enumerate(self.jobs):
            if not j.reads_content:
                parts[k].append(j.process(Batch(_own_rows(listing, views[k]), own[k], piece_bytes=load.piece_bytes)))
        if not reading:
            return parts
        chosen = {k: _chosen(listing, views[k], self.jobs[k].reads, own[k]) for k in reading}
        wanted = np.logical_or.reduce(list(chosen.values()))
        limit = {k: min(load.piece_bytes, self.jobs[k].reads.piece_bytes or load.piece_bytes) for k in reading}
        sub = {k: self.jobs[k].reads.batch_bytes for k in reading}
        whole = any(b is None for b in sub.values())
        reads = Reads(rows=lambda t, p: wanted, batch_bytes=None if whole else min(sub.values()),
                      piece_bytes=max(limit.values()))
        sizes = listing.column("size").fill_null(0).to_numpy()
        start = 0
        for batch in batches(listing, reads, load, params):
            stop = start + batch.num_rows
            fed = self._feed(batch, {k: chosen[k][start:stop] for k in reading}, own)
            for k in reading:
                ranges = [(0, batch.num_rows)]
                if whole and sub[k] is not None:      # the job's own sub-batches of the chunk's batch
                    ranges = read_batches(sizes[start:stop], batch.piece_bytes, sub[k], chosen[k][start:stop]) \
                        or ranges
                for a, b in ranges:
                    parts[k].append(self.jobs[k].process(_view(batch, a, b, views[k][start + a:start + b],
                                                               chosen[k][start + a:start + b], own[k], limit[k],
                                                               *fed[k])))
            start = stop
        return parts

    def _feed(self, batch: Batch, chosen: dict[int, np.ndarray], own: list[dict]) -> dict[int, tuple[dict, dict]]:
        """The batch's large files read once for all jobs: for each reading job ``k`` (``chosen[k]``:
        bool per row of the batch, its rows to read), (its consumers, {row: reason} for those that
        did not get their bytes), by rows of the batch (``batch.feed``)."""
        wants = []
        for k, mine in chosen.items():
            consume = self.jobs[k].reads.consume
            # the job's consumers see its params and large rows, not the others'
            errors = [e if c else None for e, c in zip(batch.errors, mine.tolist())]
            wants.append({} if consume is None else consume(
                Batch(batch.table, own[k], errors=errors, large=batch.large & mine, paths=batch.paths,
                      piece_bytes=batch.piece_bytes, selected=mine, storage=batch.storage)))
        with meter("read"):
            failed = feed(batch.pieces, wants)
        return {k: (w, f) for k, w, f in zip(chosen, wants, failed)}


def _own_rows(listing: pa.Table, view: np.ndarray) -> pa.Table:
    return listing if view.all() else listing.filter(pa.array(view))


def _chosen(listing: pa.Table, view: np.ndarray, reads: Reads, params: dict[str, Any]) -> np.ndarray:
    """Bool per row of ``listing``: the rows whose contents the job reads (of its own rows, ``view``)."""
    out = np.zeros(listing.num_rows, dtype=bool)
    out[view] = selection(_own_rows(listing, view), reads, params)
    return out


def _view(batch: Batch, a: int, b: int, rows: np.ndarray, chosen: np.ndarray, params: dict[str, Any],
          piece_bytes: int, consumers: dict[int, Any], failed: dict[int, str]) -> Batch:
    """One job's batch out of rows ``[a, b)`` of the run's: its own ``rows`` of them only, with the
    contents of those it ``chosen`` (the others read as not read: no bytes, no read error), its
    large files' ``consumers`` and the reasons of those that ``failed`` (both by rows of the
    run's batch), its ``params`` and its ``piece_bytes``."""
    table = batch.table.slice(a, b - a)
    offsets = batch.offsets[a:b + 1]
    selected = batch.selected[a:b]
    if rows.all() and np.array_equal(chosen, selected):
        data, offsets = batch.data[offsets[0]:offsets[-1]], offsets - offsets[0]
    else:        # copy the job's bytes out: rows it did not choose must hold none
        table = table.filter(pa.array(rows))
        lengths = np.diff(offsets)
        keep = rows & chosen
        data = batch.data[offsets[0]:offsets[-1]][np.repeat(keep, lengths)]
        offsets = np.zeros(int(rows.sum()) + 1, dtype=np.int64)
        np.cumsum((lengths * keep)[rows], out=offsets[1:])
    idx = np.flatnonzero(rows)
    errors = np.array(batch.errors[a:b], dtype=object)
    errors[~chosen] = None
    for r, reason in failed.items():
        if a <= r < b:
            errors[r - a] = reason
    at = np.cumsum(rows) - 1          # row of the run's batch - a -> row of the view
    streamed = {int(at[r - a]): c for r, c in consumers.items() if a <= r < b and r not in failed}
    return Batch(table, params, data, offsets, errors[idx].tolist(), (batch.large[a:b] & chosen)[idx],
                 np.array(batch.paths[a:b], dtype=object)[idx].tolist(), piece_bytes, chosen[idx], batch.storage,
                 streamed)


# ---- the client: summaries, after-steps, report ----------------------------------------

@dataclasses.dataclass(frozen=True)
class ComposedReducer:
    """Each job's reducer on its part of the chunk summaries (``ComposedJob.write_chunk``)."""

    jobs: tuple[Job, ...]

    def merge(self, total: dict | None, part: dict) -> dict:
        total = total or {}
        for j in self.jobs:
            t, p = total.get(j.name), part[j.name]
            total[j.name] = {"summary": j.reducer.merge(t and t["summary"], p["summary"]),
                             **{k: (t[k] if t else 0) + p[k] for k in COUNTS}}
        return total

    def finish(self, total: dict | None, params: dict[str, Any]) -> dict:
        sections = {}
        for j in self.jobs:
            t = (total or {}).get(j.name)
            sections[j.name] = {**{k: t[k] if t else 0 for k in COUNTS},
                                "result": j.reducer.finish(t["summary"] if t else None, params_of(j, params))}
        return {"jobs": sections}

    def report(self, summary: dict, params: dict[str, Any]) -> str:
        return "\n\n".join(f"{j.name}\n{'=' * len(j.name)}\n"
                           + j.reducer.report(summary["jobs"][j.name]["result"], params_of(j, params))
                           for j in self.jobs)


def _after(jobs: Sequence[Job], f: Finish) -> dict:
    """Each job's after-step in turn, with its own OUT/JOB, dataset, options and summary; the run's
    exit code is the highest of theirs and their warnings are named by job."""
    result = dict(f.result)
    codes, warnings = [0], []
    for j in jobs:
        section = result["jobs"][j.name]
        out = os.path.join(f.out_dir, j.name)
        dataset = os.path.join(out, j.dataset)
        params = params_of(j, f.params)
        if j.after is not None:
            section["result"] = j.after(Finish(f.executor, out, dataset, params, section["result"], f.load, f.chunk))
        result["jobs"][j.name] = {"job": j.name, "out": out, "dataset": dataset, **section,
                                  "params": {k: v for k, v in params.items() if k != "now"}}
        codes.append(int(section["result"].get("exit_code", 0) or 0))
        warnings += [f"{j.name}: {w}" for w in section["result"].get("warnings", [])]
    result["exit_code"] = max(codes)
    if warnings:
        result["warnings"] = warnings
    return result


def job_summary(summary: dict, job: Job) -> dict:
    """The run's summary as the job's own hooks read it: its section's counts, paths and result."""
    return {**summary, **summary["result"]["jobs"][job.name]}


def _plots(jobs: Sequence[Job], summary: dict) -> list:
    out = []
    for j in jobs:
        if j.plots is not None:
            for b in j.plots(job_summary(summary, j)):
                out.append(dataclasses.replace(b, section=j.name))
    return out


def _tables(jobs: Sequence[Job], summary: dict, out_dir: str) -> list:
    """Each job's tables and its rows with an error, in its section (one job's failure is a note there)."""
    from exoflow.plots import Table
    from exoflow.report import error_table
    out = []
    for j in jobs:
        s = job_summary(summary, j)
        try:
            made = list(j.tables(s, s["out"])) if j.tables is not None else []
        except Exception as e:     # a job's table bug must not cost the other jobs' tables
            made = [Table(f"{j.name}: its tables failed", f"{j.name}-failed", [], [], f"{type(e).__name__}: {e}")]
        errors = error_table(s["dataset"])
        out += [dataclasses.replace(t, section=j.name) for t in made + ([errors] if errors else [])]
    return out
