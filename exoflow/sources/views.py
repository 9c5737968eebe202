"""Several walks from one: a composed run (``exoflow.composed``) walks once with the union of its
jobs' walk options (``union``), and each listing task marks which of its rows each job's own
walk would have listed (``WalkViews``), by the walk's own rules (``walk.Walker``) applied along
each row's path: hidden names, .gitignore/.ignore files (read once per directory), --include,
--exclude, --max-depth and the size bounds. --from-list entries are taken as listed, unmarked.
"""
from __future__ import annotations

import os
import stat as stat_mod
from dataclasses import dataclass, fields, replace
from typing import Sequence

import numpy as np
import pyarrow as pa

from exoflow.errors import UsageError
from exoflow.options import WalkOptions
from exoflow.paths import raw_paths
from exoflow.sources.walk import IGNORE_FILES, DirItem, IgnoreRules, Walker, _ignored, _load_ignores, \
    inherited, parent_rules

# a walk with these cannot be told apart from another one after the fact: the jobs must agree
MUST_AGREE = {"follow_symlinks": "-L/--follow", "one_file_system": "-x/--one-file-system"}


def column(name: str) -> str:
    """The listing column that marks the rows the job ``name``'s own walk lists (bool)."""
    return f"walk:{name}"


def _common(lists: Sequence[tuple[str, ...]], empty_wins: bool) -> tuple[str, ...]:
    """Globs that keep at least what each of ``lists`` keeps. Negations make a list's meaning depend
    on its order: lists that differ with one then give no glob at all."""
    if all(lst == lists[0] for lst in lists):
        return lists[0]
    if any(p.startswith("!") for lst in lists for p in lst):
        return ()
    if empty_wins:      # --include: a file must match one; any list without one keeps everything
        return () if any(not lst for lst in lists) else tuple(dict.fromkeys(p for lst in lists for p in lst))
    return tuple(p for p in lists[0] if all(p in lst for lst in lists[1:]))     # --exclude: the shared ones


def _loosest(values: list, pick) -> int | None:
    return None if any(v is None for v in values) else pick(values)


def union(walks: Sequence[WalkOptions], names: Sequence[str]) -> WalkOptions:
    """Walk options that list every entry any of ``walks`` lists (``names``: their jobs, for
    messages). Raises UsageError where they differ in what one walk cannot serve
    (``MUST_AGREE``)."""
    for name, flag in MUST_AGREE.items():
        values = {getattr(w, name) for w in walks}
        if len(values) > 1:
            on = [n for n, w in zip(names, walks) if getattr(w, name)]
            raise UsageError(f"{flag}: {', '.join(on)} walk{'s' * (len(on) == 1)} with it and the others do not; "
                             f"give {flag.split('/')[0]} to walk with it for all")
    gitignore = all(w.gitignore for w in walks)
    return replace(walks[0], include=_common([w.include for w in walks], True),
                   exclude=_common([w.exclude for w in walks], False), gitignore=gitignore,
                   git_excludes=walks[0].git_excludes if gitignore else (),
                   hidden=any(w.hidden for w in walks),
                   max_depth=_loosest([w.max_depth for w in walks], max),
                   min_size=_loosest([w.min_size for w in walks], min),
                   max_size=_loosest([w.max_size for w in walks], max))


def describe(walk: WalkOptions, base: WalkOptions) -> str:
    """How ``walk`` differs from ``base``, for messages: ``--gitignore, --exclude .git``."""
    out = []
    for f in fields(WalkOptions):
        a, b = getattr(walk, f.name), getattr(base, f.name)
        if a == b or f.name == "git_excludes":
            continue
        if isinstance(a, tuple):
            out += [f"--{f.name} {p}" for p in a if p not in b]
        elif isinstance(a, bool):
            out.append(f"--{'' if a else 'no-'}{f.name.replace('_', '-')}")
        else:
            out.append(f"--{f.name.replace('_', '-')} {a}")
    return ", ".join(out)


@dataclass(frozen=True)
class WalkViews:
    """``Job.mark`` of a composed run: adds a bool ``column(name)`` per job whose walk is not the
    run's (``walks[name]``), True where that walk lists the row. Roots must not overlap (the
    composed run refuses PATHs that do when its jobs walk differently)."""

    walks: tuple[tuple[str, WalkOptions], ...]

    def __call__(self, table: pa.Table) -> pa.Table:
        if not table.num_rows:
            return self._empty(table)
        paths = raw_paths(table)
        depth = table.column("depth").to_numpy(zero_copy_only=False)
        kinds = table.column("type").to_pylist()
        modes = table.column("mode").to_pylist()
        sizes = table.column("size").to_pylist()
        for name, walk in self.walks:
            verdict = _Verdicts(walk)
            keep = np.fromiter((verdict.keeps(p, int(d), k, m, s) for p, d, k, m, s in
                                zip(paths, depth, kinds, modes, sizes)), dtype=bool, count=len(paths))
            table = table.append_column(column(name), pa.array(keep))
        return table

    def _empty(self, table: pa.Table) -> pa.Table:
        for name, _ in self.walks:
            table = table.append_column(column(name), pa.array([], pa.bool_()))
        return table


class _Verdicts:
    """One walk's rules along rows' paths, each directory judged once (as the walk would)."""

    def __init__(self, opts: WalkOptions) -> None:
        self.walker = Walker(opts)
        self.opts = opts
        # directory path -> (its item, the rules its entries get), or None: the walk does not enter it
        self.dirs: dict[str, tuple[DirItem, tuple[IgnoreRules, ...]] | None] = {}

    def keeps(self, path: str, depth: int, kind: str | None, mode: int | None, size: int | None) -> bool:
        if kind == "dir":            # a directory's own row: it could not be read (or loops)
            return self.entered(path, depth) is not None
        if depth == 0:               # a PATH that is a file: only the size bounds apply
            return self.size_ok(mode, size)
        parent = self.entered(os.path.dirname(path), depth - 1)
        if parent is None:
            return False
        item, rules = parent
        if not self.opts.hidden and os.path.basename(path).startswith("."):
            return False
        return self.walker.wanted(item, path, depth, rules) and self.size_ok(mode, size)

    def size_ok(self, mode: int | None, size: int | None) -> bool:
        lo, hi = self.opts.min_size, self.opts.max_size
        if (lo is None and hi is None) or mode is None:   # no bounds; or an entry that could not be stat'ed
            return True
        return stat_mod.S_ISREG(mode) and (lo is None or size >= lo) and (hi is None or size <= hi)

    def entered(self, path: str, depth: int) -> tuple[DirItem, tuple[IgnoreRules, ...]] | None:
        """The directory at ``depth`` below its root, as the walk holds it, or None."""
        chain = []            # the directories above it not judged yet, deepest first
        while path not in self.dirs and depth > 0:
            chain.append((path, depth))
            path, depth = os.path.dirname(path), depth - 1
        if path not in self.dirs:       # a root
            ignores = parent_rules(path, self.opts.git_excludes) if self.opts.gitignore else ()
            self.dirs[path] = self.rules(DirItem(path, 0, None, path, (), ignores))
        state = self.dirs[path]
        for sub, d in reversed(chain):
            state = self.dirs[sub] = None if state is None else self.child(state, sub, d)
        return state

    def child(self, parent: tuple[DirItem, tuple[IgnoreRules, ...]], path: str,
              depth: int) -> tuple[DirItem, tuple[IgnoreRules, ...]] | None:
        """A subdirectory as ``Walker.filtered_entry`` judges it."""
        item, rules = parent
        name = os.path.basename(path)
        if not self.opts.hidden and name.startswith("."):
            return None
        if rules and _ignored(rules, path, True):
            return None
        views = self.walker.descending(self.walker.entered(item, path), depth)
        if not views:
            return None
        return self.rules(self.walker.child(item, path, item.top or name, (), rules, views))

    def rules(self, item: DirItem) -> tuple[DirItem, tuple[IgnoreRules, ...]]:
        """The item and the ignore rules its entries get (``Walker.scan``)."""
        if not self.opts.gitignore:
            return item, item.ignores
        names = {n for n in (*IGNORE_FILES, ".git") if os.path.lexists(os.path.join(item.path, n))}
        return item, inherited(item.ignores, names) + _load_ignores(item.path, names, self.opts.git_excludes)
