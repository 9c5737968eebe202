"""A directory walk that runs inside a worker task.

The client hands a task a few directories and a budget (entries and seconds); the
task walks them depth first, stops once either is spent, and hands back the
directories it did not reach so the client can share them among workers.
Entry types come from readdir's d_type; ``lstat`` runs once per kept
non-directory entry (its fields are the inventory), and on directories only
when following symlinks or staying on one file system needs it.

Directories without filters (the common case) are listed by ``exoflow._native``
when it is built: the walk's loop itself runs there (``walk_dirs``), and Python lists
only the roots and what it cannot (a directory that is its own ancestor); filters,
and installs without a C compiler, use ``os.scandir``.
"""
from __future__ import annotations

import collections
import dataclasses
import functools
import os
import re
import stat as stat_mod
import time
from dataclasses import dataclass

import numpy as np

import pathspec

from exoflow.options import WalkOptions
from exoflow.sources import gitignore
from exoflow.longpath import open_path, stat_path
from exoflow.sources.entries import EntryCollector
from exoflow.fileio import describe_errno, describe_error

from exoflow.fileio import native as _native

IGNORE_FILES = (".gitignore", ".ignore")
# A listing task's paths, at most (about): its part stays in a worker's memory until its chunks are
# done, and its chunks hold these paths again; entries alone would not bound it (paths of 4 KB).
LISTING_BYTES = 32 * 2**20
D_TYPE_HINT = {stat_mod.S_IFREG >> 12: "file", stat_mod.S_IFLNK >> 12: "symlink", stat_mod.S_IFDIR >> 12: "dir"}


@dataclass(frozen=True)
class IgnoreRules:
    """The patterns of one ignore file, relative to its directory.

    Directories handed back to the client carry these, so they travel as text; each process
    compiles them once."""

    base: str
    lines: tuple[str, ...]
    within: str = ""     # for a directory above a walk root (base is then the root): the root's path from it
    git: bool = True     # from git's files (.gitignore, info/exclude, core.excludesFile), not an .ignore file

    @property
    def patterns(self) -> tuple[tuple[re.Pattern[str], bool], ...]:
        return _ignore_patterns(self.lines)


@functools.lru_cache(maxsize=4096)
def _ignore_patterns(lines: tuple[str, ...]) -> tuple[tuple[re.Pattern[str], bool], ...]:
    """Each pattern of an ignore file as (regex, whether a match ignores), matched against one
    entry at a time as git does: pathspec translates the globs, but its directory patterns also
    match everything below the directory, which would let a negation (``!*/``, ``!vendor/``)
    re-include files under it; the walk never enters an ignored directory anyway."""
    spec = compiled_globs(lines)
    return tuple((re.compile(p.regex.pattern.replace("(?P<ps_d>/)", "(?P<ps_d>/)$")), bool(p.include))
                 for p in spec.patterns if p.include is not None)


@functools.lru_cache(maxsize=4096)
def compiled_globs(lines: tuple[str, ...]) -> pathspec.PathSpec:
    """Python's ``re`` as pathspec's matcher: its RE2 and Hyperscan backends take UTF-8 text and
    fail on a name that is not UTF-8 (surrogate-escaped in a ``str``), which ``re`` matches."""
    return pathspec.GitIgnoreSpec.from_lines(lines, backend="simple")


View = tuple[str, int]    # see DirItem.views
OWN: tuple[View, ...] = (("", 0),)


@dataclass(frozen=True)
class DirItem:
    path: str
    depth: int                                    # depth of the directory itself (a root is 0)
    top: str | None                               # first path component under the root
    root: str                                     # the root this directory was reached from
    ancestors: tuple[tuple[int, int], ...] = ()   # (dev, ino) of the directories above it, the root's first
    ignores: tuple[IgnoreRules, ...] = ()
    dev: int | None = None                        # the root's device, kept for one_file_system
    # How the roots that list this tree see it, for --include/--exclude/--max-depth: ("", 0) is its own
    # root; a root nested in another PATH also keeps the outer root's view (its path below the outer
    # root + "/", its depth there), so an entry is kept when any view keeps it (the union of the PATHs).
    views: tuple[View, ...] = OWN
    others: frozenset[tuple[int, int]] = frozenset()   # (dev, ino) of the roots: each walks its own tree

    @property
    def ident(self) -> str:
        """What the journal knows the item by (``objects.Prefix.ident``'s counterpart)."""
        return self.path


def _spec(patterns: tuple[str, ...]) -> pathspec.PathSpec | None:
    """--include / --exclude globs (gitignore syntax, matched against the path under the root)."""
    return compiled_globs(patterns) if patterns else None


def _relative(path: str, base: str) -> str:
    return path[len(base) + 1:] if base != "/" else path[1:]


def _ignored(rules: tuple[IgnoreRules, ...], path: str, is_dir: bool) -> bool:
    """Git semantics: the last matching pattern decides, deeper files after shallower ones."""
    verdict = False
    for rule in rules:
        rel = (rule.within + _relative(path, rule.base)).rstrip("/") + ("/" if is_dir else "")
        for regex, ignores in rule.patterns:
            if regex.search(rel):
                verdict = ignores
    return verdict


INFO_EXCLUDE = ".git/info/exclude"   # how ``_load_ignores``'s ``read`` names a repository's info/exclude


def _load_ignores(dirpath: str, names: set[str], git_excludes: tuple[str, ...], read=None) -> tuple[IgnoreRules, ...]:
    """The ignore rules a directory adds, weakest first (a later file overrides an earlier one):
    at a repository's top (it holds ``.git``) the user's core.excludesFile, then the repository's
    ``.git/info/exclude``, as git orders them; then ``.gitignore``, then ``.ignore`` (ripgrep's order).
    ``read(name)``: the lines of ``name`` (an IGNORE_FILES name or INFO_EXCLUDE) in the directory,
    None when it cannot be read (default: the local file's, ``_read_local``)."""
    read = read or functools.partial(_read_local, dirpath)
    found = []
    if ".git" in names:
        found += [IgnoreRules(dirpath, git_excludes)] if git_excludes else []
        found += _rules(dirpath, read(INFO_EXCLUDE))
    for fname in IGNORE_FILES:
        if fname in names:
            found += _rules(dirpath, read(fname), git=fname == ".gitignore")
    return tuple(found)


def _read_local(dirpath: str, name: str) -> tuple[str, ...] | None:
    """An ignore file's lines; one in the tree is never followed through a symlink (as git does),
    info/exclude may be (a ``.git`` file's ``gitdir:`` is followed to it)."""
    if name == INFO_EXCLUDE:
        path = gitignore.info_exclude(os.path.join(dirpath, ".git"))
        return gitignore.read_lines(path, follow=True) if path else None
    return gitignore.read_lines(os.path.join(dirpath, name), follow=False)


def _rules(base: str, lines: tuple[str, ...] | None, git: bool = True) -> list[IgnoreRules]:
    """An ignore file's rules (none from one that is missing, empty or unusable, as in git)."""
    if not lines:
        return []
    try:
        _ignore_patterns(lines)   # a bad pattern fails here
    except ValueError:
        return []
    return [IgnoreRules(base, lines, git=git)]


def inherited(ignores: tuple[IgnoreRules, ...], names: set[str]) -> tuple[IgnoreRules, ...]:
    """The rules a directory's entries inherit: at the top of a repository nested in another
    (it holds ``.git``) the outer repository's git rules stop, as in git; .ignore files go on."""
    return tuple(r for r in ignores if not r.git) if ".git" in names else ignores


def parent_rules(root: str, git_excludes: tuple[str, ...]) -> tuple[IgnoreRules, ...]:
    """The ignore rules of the directories above a walk root, up to the top of the git repository
    the root is in (its real path's): what git applies to the root's files (``git ls-files`` run
    in it). None when the root is in no repository, is a repository's top, or is itself ignored
    (then the tree is walked as named, as ripgrep searches a path you give it; git lists nothing)."""
    real = os.path.realpath(root)
    if os.path.lexists(os.path.join(real, ".git")):
        return ()
    chain, d = [], real
    while True:
        parent = os.path.dirname(d)
        if parent == d:
            return ()
        d = parent
        chain.append(d)
        if os.path.lexists(os.path.join(d, ".git")):
            break
    chain.reverse()                    # the repository's top first: deeper files override
    rules: tuple[IgnoreRules, ...] = ()
    for i, a in enumerate(chain):
        try:
            names = set(os.listdir(a)) & {*IGNORE_FILES, ".git"}
        except OSError:
            names = set()
        rules += _load_ignores(a, names, git_excludes)   # only the top holds .git
        below = chain[i + 1] if i + 1 < len(chain) else real
        if _ignored(rules, below, True):
            return ()   # the root or a directory above it is ignored: walked as named
    return tuple(IgnoreRules(root, r.lines, os.path.relpath(real, r.base) + "/", r.git) for r in rules)


def native_available() -> bool:
    return _native is not None


class Walker:
    """Walks directories for one task and collects their entries."""

    def __init__(self, opts: WalkOptions, native: bool = True) -> None:
        self.opts = opts
        self.include = _spec(opts.include)
        self.exclude = _spec(opts.exclude)
        self.out = EntryCollector()
        self.dirs_scanned = 0
        # no filter needs a look at an entry before its lstat: the compiled lister can do them all
        self.plain = not (self.include or self.exclude or opts.gitignore or opts.follow_symlinks
                          or opts.one_file_system or opts.min_size is not None or opts.max_size is not None
                          or not opts.hidden)
        self.native = native and self.plain and _native is not None

    def wanted(self, item: DirItem, path: str, depth: int, ignores: tuple[IgnoreRules, ...]) -> bool:
        """A file passes the ignore files and --include/--exclude."""
        if ignores and _ignored(ignores, path, False):
            return False
        return (self.include is None and self.exclude is None) or self.keep_file(item, path, depth)

    def keep_file(self, item: DirItem, path: str, depth: int) -> bool:
        """Some view of ``item`` (see DirItem.views) reaches the file at ``depth`` and its globs keep it."""
        rel = _relative(path, item.root)
        limit = self.opts.max_depth
        return any(self.matches(above + rel) for above, k in item.views if limit is None or depth + k <= limit)

    def matches(self, rel: str) -> bool:
        if self.exclude is not None and self.exclude.match_file(rel):
            return False
        return self.include is None or self.include.match_file(rel)

    def entered(self, item: DirItem, path: str) -> tuple[View, ...]:
        """The views of ``item`` whose --exclude does not skip the directory ``path``."""
        if self.exclude is None:
            return item.views
        rel = _relative(path, item.root) + "/"
        return tuple(v for v in item.views if not self.exclude.match_file(v[0] + rel))

    def descending(self, views: tuple[View, ...], depth: int) -> tuple[View, ...]:
        """The views that list the entries of a directory at ``depth`` (--max-depth)."""
        limit = self.opts.max_depth
        return views if limit is None else tuple(v for v in views if depth + v[1] < limit)

    def run(self, stack: list[DirItem], budget: int, seconds: float = float("inf"),
            breadth_first: bool = False) -> list[DirItem]:
        """Walk until ``budget`` entries (or LISTING_BYTES of their paths) are collected or
        ``seconds`` have passed; return the directories not reached. Depth first (a stack: few
        directories pending at a time), or ``breadth_first`` (a queue: what is left is many
        directories of similar depth, which split evenly between tasks)."""
        start, start_bytes = len(self.out), self.out.path_bytes
        deadline = time.monotonic() + seconds
        todo = collections.deque(stack) if breadth_first else stack
        take = todo.popleft if breadth_first else todo.pop
        while todo and len(self.out) - start < budget and self.out.path_bytes - start_bytes < LISTING_BYTES \
                and time.monotonic() < deadline:
            if not self.native or not self.walk_native(todo, breadth_first, budget - (len(self.out) - start),
                                                       LISTING_BYTES - (self.out.path_bytes - start_bytes), deadline):
                self.scan(take(), todo)
        return list(todo)

    def walk_native(self, todo: list[DirItem] | collections.deque, breadth_first: bool, budget: int,
                    max_bytes: int, deadline: float) -> bool:
        """Walk on in ``exoflow._native.walk_dirs`` (``scan``'s loop in C, for a walk without filters)
        over the directories below the roots: all of ``todo`` (depth first: those above its last
        root), until the budget (entries, ``max_bytes`` of paths,
        ``deadline``) is spent. False when the next one is not such (a root), or when the compiled
        walk stopped before one it leaves to ``scan``, which is then next in ``todo``: a directory
        that is one of its own ancestors (``loop``'s row), or whose fstat failed."""
        if breadth_first:      # the queue's front comes first: all of it, once no root is left
            cut = len(todo) if any(d.top is None for d in todo) else 0
        else:                  # the stack's top comes first: what lies above its last root
            cut = next((i + 1 for i in range(len(todo) - 1, -1, -1) if todo[i].top is None), 0)
        mine = list(todo)[cut:]
        if not mine:
            return False
        limit = self.opts.max_depth
        dlimits = [2**62 if limit is None else limit - min(k for _, k in d.views) for d in mine]
        keys = {o: np.array(sorted(o), dtype=np.uint64).tobytes() for o in {d.others for d in mine}}
        others = [keys[d.others] for d in mine]
        stack = [(os.fsencode(d.path), d.depth, i, d.ancestors) for i, d in enumerate(mine)]
        paths, lengths, stats, runs, problems, left, dirs, handoff = _native.walk_dirs(
            stack, dlimits, others, budget, max_bytes, deadline, breadth_first)
        self.dirs_scanned += dirs
        runs = np.frombuffer(runs, dtype=np.int64).reshape(-1, 3).tolist()
        problems = np.frombuffer(problems, dtype=np.int64).reshape(-1, 3).tolist()
        self.out.add_rows(paths, lengths, stats, [(row, depth, mine[o].top) for row, depth, o in runs],
                          [(row, describe_errno(code), D_TYPE_HINT.get(d_type)) for row, code, d_type in problems])
        rest = [DirItem(os.fsdecode(p), depth, mine[o].top, mine[o].root, chain, mine[o].ignores, mine[o].dev,
                        mine[o].views, mine[o].others) for p, depth, o, chain in left]
        if breadth_first:
            todo.clear()               # a deque: handed over whole
        else:
            del todo[cut:]
        todo.extend(rest)
        return not handoff

    def add_root_file(self, path: str) -> None:
        """A root that is not a directory becomes a row of its own (when the size bounds keep it)."""
        self.out.start_run(0, None)
        try:
            st = stat_path(path)       # roots are followed, as find -H does
        except OSError as e:
            self.out.add_error(path, describe_error(e))
            return
        if self.size_ok(st):
            self.out.add(path, st)

    def unreadable(self, item: DirItem, e: OSError) -> None:
        """A directory that cannot be opened or listed is an error row of its own."""
        self.out.start_run(item.depth, item.top)
        self.out.add_error(item.path, describe_error(e), hint="dir")

    def loop(self, item: DirItem, key: tuple[int, int], st: os.stat_result) -> None:
        """A directory that is one of its own ancestors (a tree bind-mounted below itself): an error row,
        not entered (find: "File system loop detected")."""
        above = item.path
        for _ in range(len(item.ancestors) - item.ancestors.index(key)):
            above = os.path.dirname(above)
        self.out.start_run(item.depth, item.top)
        self.out.add_error(item.path, f"ELOOP: file system loop: the same directory as {above}", st=st)

    def children(self, item: DirItem) -> tuple[str, int, bool]:
        """(path prefix, depth, whether to descend) of a directory's entries."""
        depth = item.depth + 1
        prefix = item.path if item.path.endswith("/") else item.path + "/"
        return prefix, depth, bool(self.descending(item.views, depth))

    def child(self, item: DirItem, path: str, top: str | None, chain: tuple[tuple[int, int], ...],
              ignores: tuple[IgnoreRules, ...] = (), views: tuple[View, ...] | None = None) -> DirItem:
        """The item of a subdirectory of ``item``; ``chain``: ``item``'s ancestors and itself."""
        return DirItem(path, item.depth + 1, top, item.root, chain, ignores, item.dev,
                       item.views if views is None else views, item.others)

    def scan(self, item: DirItem, stack: list[DirItem]) -> None:
        d = item.path
        try:
            fd = open_path(d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            self.unreadable(item, e)
            return
        try:
            st = os.fstat(fd)        # one per directory: loops (bind mounts, -L) and other PATHs' trees
            key = (st.st_dev, st.st_ino)
            if key in item.ancestors:
                self.loop(item, key, st)
                return
            if item.depth and key in item.others:
                return                # another PATH: its own walk lists this tree
            chain = item.ancestors + (key,)
            self.dirs_scanned += 1
            try:
                with os.scandir(fd) as it:
                    entries = list(it)
            except OSError as e:
                self.unreadable(item, e)
                return
            ignores = item.ignores
            if self.opts.gitignore:
                names = {e.name for e in entries if e.name in IGNORE_FILES or e.name == ".git"}
                ignores = inherited(ignores, names) + _load_ignores(d, names, self.opts.git_excludes)
            if item.top is None:
                for e in entries:  # directly under a root: each entry is its own top directory
                    self.out.start_run(1, e.name)
                    self.scan_entries(item, fd, [e], ignores, chain, stack)
            else:
                self.out.start_run(item.depth + 1, item.top)
                self.scan_entries(item, fd, entries, ignores, chain, stack)
        finally:
            os.close(fd)

    def scan_entries(self, item: DirItem, fd: int, entries: list[os.DirEntry], ignores: tuple[IgnoreRules, ...],
                     chain: tuple[tuple[int, int], ...], stack: list[DirItem]) -> None:
        prefix, depth, descend = self.children(item)
        if self.plain:
            self.plain_entries(item, fd, entries, prefix, descend, chain, stack)
            return
        for e in entries:
            self.filtered_entry(item, fd, e, _is_dir(e), prefix + e.name, depth, ignores, chain, stack)

    def plain_entries(self, item: DirItem, fd: int, entries: list[os.DirEntry], prefix: str, descend: bool,
                      chain: tuple[tuple[int, int], ...], stack: list[DirItem]) -> None:
        """The common case, no filters: list comprehensions instead of a loop with branches."""
        try:
            is_dir = [e.is_dir(follow_symlinks=False) for e in entries]
        except OSError:   # d_type unknown and the entry vanished: let the careful path decide
            is_dir = [_is_dir(e) for e in entries]
        files = [e.name for e, d in zip(entries, is_dir) if not d]
        if descend:
            top = item.top
            stack.extend(self.child(item, prefix + e.name, top or e.name, chain)
                         for e, d in zip(entries, is_dir) if d)
        out, stat = self.out, os.stat
        try:
            stats = [stat(n, dir_fd=fd, follow_symlinks=False) for n in files]
        except OSError:
            stats = None
        if stats is not None:
            out.extend([prefix + n for n in files], stats)
            return
        for e, d in zip(entries, is_dir):   # something vanished or failed: one entry at a time
            if d:
                continue
            try:
                out.add(prefix + e.name, stat(e.name, dir_fd=fd, follow_symlinks=False))
            except OSError as err:
                out.add_error(prefix + e.name, describe_error(err), hint=_hint(e))

    def filtered_entry(self, item: DirItem, fd: int, e: os.DirEntry, is_dir: bool, path: str, depth: int,
                       ignores: tuple[IgnoreRules, ...], chain: tuple[tuple[int, int], ...],
                       stack: list[DirItem]) -> None:
        opts = self.opts
        name = e.name
        if not opts.hidden and name[0] == ".":
            return
        top = item.top or name
        is_link = not is_dir and opts.follow_symlinks and e.is_symlink()
        views = item.views
        if is_dir or is_link:
            if ignores and _ignored(ignores, path, True):
                return
            views = self.entered(item, path)
            if not views:
                return
        if is_link:
            self.symlink(item, e, fd, path, depth, top, views, ignores, chain, stack)
            return
        if is_dir:
            views = self.descending(views, depth)
            if not views:
                return
            if opts.one_file_system:
                try:
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except OSError as err:
                    self.out.add_error(path, describe_error(err), hint="dir")
                    return
                if st.st_dev != item.dev:
                    return
            stack.append(self.child(item, path, top, chain, ignores, views))
            return
        if not self.wanted(item, path, depth, ignores):
            return
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except OSError as err:
            self.out.add_error(path, describe_error(err), hint=_hint(e))
            return
        if self.size_ok(st):
            self.out.add(path, st)

    def size_ok(self, st: os.stat_result) -> bool:
        """With --min-size/--max-size only regular files within the bounds are kept (as fd and
        find -type f -size do); a symlink followed with -L is its target."""
        lo, hi = self.opts.min_size, self.opts.max_size
        if lo is None and hi is None:
            return True
        return stat_mod.S_ISREG(st.st_mode) and (lo is None or st.st_size >= lo) and (hi is None or st.st_size <= hi)

    def symlink(self, item: DirItem, e: os.DirEntry, fd: int, path: str, depth: int, top: str,
                views: tuple[View, ...], ignores: tuple[IgnoreRules, ...], chain: tuple[tuple[int, int], ...],
                stack: list[DirItem]) -> None:
        """Following symlinks: a link to a directory is walked unless it loops back."""
        try:
            st = os.stat(e.name, dir_fd=fd)
        except OSError as err:
            try:
                lst = os.stat(e.name, dir_fd=fd, follow_symlinks=False)
            except OSError:
                lst = None
            self.out.add_error(path, "broken symlink: " + describe_error(err), st=lst, hint="symlink")
            return
        if stat_mod.S_ISDIR(st.st_mode):
            views = self.descending(views, depth)
            if (st.st_dev, st.st_ino) in chain:
                self.out.add_error(path, "ELOOP: symlink loop", st=os.stat(e.name, dir_fd=fd, follow_symlinks=False))
            elif views and not (self.opts.one_file_system and st.st_dev != item.dev):
                stack.append(self.child(item, path, top, chain, ignores, views))
            return
        if self.wanted(item, path, depth, ignores) and self.size_ok(st):
            self.out.add(path, st)


def _is_dir(e: os.DirEntry) -> bool:
    try:
        return e.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _hint(e: os.DirEntry) -> str | None:
    try:
        if e.is_symlink():
            return "symlink"
        return "file" if e.is_file(follow_symlinks=False) else None
    except OSError:
        return None


def root_item(path: str, opts: WalkOptions, st: os.stat_result | None = None) -> DirItem:
    """The starting item for a root directory (its symlink, if any, is followed); ``st``: its stat.
    (``plan_roots`` sets its views and the other roots.)"""
    st = st or stat_path(path)
    root = path.rstrip("/") or "/"
    ignores = parent_rules(root, opts.git_excludes) if opts.gitignore else ()
    return DirItem(root, 0, None, root, (), ignores, st.st_dev)


def absolute(path: str, cwd: str | None = None) -> str:
    """``path`` made absolute against ``cwd`` (default: this process's), its spelling kept: symlinks are
    not resolved and ``..`` stays (dropping it with the name before would be wrong after a symlink);
    ``.`` and repeated or trailing slashes go."""
    names = [n for n in os.path.join(cwd or os.getcwd(), path).split("/") if n not in ("", ".")]
    return "/" + "/".join(names)


@dataclass
class RootPlan:
    """The PATHs to walk, each file and directory reached through them once (see ``plan_roots``)."""

    dirs: list[DirItem]
    files: list[str]
    merged: list[tuple[str, str, str]]   # (a PATH left out, "is" or "is inside", the PATH that lists it)


def plan_roots(given: list[tuple[str, os.stat_result]], opts: WalkOptions) -> RootPlan:
    """Overlapping PATHs, decided on the client before the walk: ``given`` is each PATH (as it is to be
    spelled in the output) with its ``stat``.

    A PATH that is another one (same real path, or same directory) or that the walk of another lists
    exactly (a real path below it, reached by that walk, and no --include/--exclude/--max-depth that
    would judge its entries differently from there) is left out (``merged``). A directory PATH below
    another that is kept stays a root of its own: every walk skips the directories of the other roots
    (``DirItem.others``), and it keeps the outer root's view of its tree (``DirItem.views``), so each
    file is listed once and kept when any PATH's options keep it (the union)."""
    walker = Walker(opts)
    exact = not (opts.include or opts.exclude or opts.max_depth is not None)
    reals = [os.path.realpath(p) for p, _ in given]
    kept: list[tuple[int, DirItem, list[View]]] = []      # directory roots: index, item, views
    files: list[int] = []
    merged: list[tuple[str, str, str]] = []
    for i in sorted(range(len(given)), key=lambda i: reals[i].rstrip("/").count("/")):   # outer roots first
        path, st = given[i]
        is_dir = stat_mod.S_ISDIR(st.st_mode)
        views, cover, same = list(OWN), None, True
        for j, outer, _ in kept:
            ostat = given[j][1]
            if reals[i] == reals[j] or (is_dir and (st.st_dev, st.st_ino) == (ostat.st_dev, ostat.st_ino)):
                cover = j
                break
            below = _below(reals[i], reals[j])
            if below is not None and _reaches(walker, outer, reals[j], below, is_dir, st):
                if exact or not is_dir:
                    cover, same = j, False
                    break
                views.append((below + "/", below.count("/") + 1))
        if cover is None and not is_dir:
            cover = next((j for j in files if reals[j] == reals[i]), None)
        if cover is not None:
            merged.append((path, "is" if same else "is inside", given[cover][0]))
        elif is_dir:
            kept.append((i, root_item(path, opts, st), views))
        else:
            files.append(i)
    others = frozenset((given[i][1].st_dev, given[i][1].st_ino) for i, _, _ in kept)
    dirs = [dataclasses.replace(item, views=tuple(views), others=others) for _, item, views in sorted(kept)]
    return RootPlan(dirs, [given[i][0] for i in sorted(files)], merged)


def _below(real: str, outer: str) -> str | None:
    """``real``'s path below ``outer`` (both real paths), or None when it is not below it."""
    prefix = outer.rstrip("/") + "/"
    return real[len(prefix):] if real.startswith(prefix) and real != prefix else None


def _reaches(walker: Walker, outer: DirItem, outer_real: str, below: str, is_dir: bool,
             st: os.stat_result) -> bool:
    """Whether the walk of the root ``outer`` (real path ``outer_real``) enters the directory, or lists
    the file, at ``below`` under it: the walk's own rules applied along that one path (each directory
    on the way readable, not hidden, ignored or excluded, within --max-depth, on the root's file system)."""
    opts, item = walker.opts, dataclasses.replace(outer, views=OWN)
    ignores, path, real = outer.ignores, outer.path, outer_real
    names = below.split("/")
    for depth, name in enumerate(names, 1):
        try:
            os.close(open_path(real, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
        except OSError:
            return False
        if opts.gitignore:
            present = {n for n in (*IGNORE_FILES, ".git") if os.path.lexists(os.path.join(real, n))}
            ignores = inherited(ignores, present) + _load_ignores(path, present, opts.git_excludes)
        path, real = path.rstrip("/") + "/" + name, os.path.join(real, name)
        if not opts.hidden and name.startswith("."):
            return False
        if depth == len(names) and not is_dir:
            return walker.wanted(item, path, depth, ignores) and walker.size_ok(st)
        if (ignores and _ignored(ignores, path, True)) or not walker.entered(item, path) \
                or not walker.descending(OWN, depth):
            return False
        try:
            if opts.one_file_system and stat_path(real).st_dev != outer.dev:
                return False
        except OSError:
            return False
    return True
