"""Object storage as a source: a PATH with a scheme (``s3://bucket/prefix``, ``gs://…``,
``memory://…``, ``file://…``) is listed and read through fsspec (s3fs, gcsfs …; exoflow has no
storage client of its own).

Listing is spread over the workers by prefix, the way directories are (``exoflow.sources.walk``):
a listing task lists its prefixes one level at a time (the store's delimiter listing), keeps their
objects as listing rows and hands the sub-prefixes it did not reach back to the client. On S3
(s3fs) a prefix is listed a page (PAGE names) at a time, and a page that does not reach the end of
its range cuts the rest of the range into up to SPLIT ranges of names (``cut``), each listed on its
own (StartAfter, up to its last name) and cut again (into SPLIT_AGAIN) while it is big: a prefix with millions of keys
directly under it is spread over the workers too, and a task's rows stay within its budget and one
page. Stores without StartAfter (gcsfs, memory:// …), S3 Express directory buckets (their listings
are not in order) and a version-aware s3fs list a prefix in one listing. With --gitignore a
prefix's ``.gitignore`` and ``.ignore`` objects (and, under a ``.git/`` prefix, its ``info/exclude``
and the user's core.excludesFile) apply below it as a directory's files do in the walk.

Every key under a listed prefix is a row, named ``scheme://bucket/`` + the key as is: keys with
empty names (``a//b``, ``//x``) and keys ending in "/" that hold bytes too; an empty object named
``…/`` (the directory marker S3 consoles make) is not a file and is left out. Stores listed with
``fs.ls`` (which drops a trailing "/") give an error row where such a key would be. A PATH's
trailing "/" names the same prefix as without.

Rows fill the listing SCHEMA: ``path`` is the object's URL, ``type`` file (or dir: a prefix that
could not be listed, with its ``error``), ``size``, ``mtime_ns``
(LastModified), a synthetic ``mode``; no inode, device, owner or ctime; ``etag``,
``storage_class`` and ``version_id`` where the store has them.

Options for the store (endpoint, credentials …) are ``--storage-options JSON`` (``storage``: that
JSON text, canonical) or else fsspec's own configuration (``FSSPEC_S3_*``, ``~/.config/fsspec``).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from exoflow.errors import UsageError
from exoflow.options import URL, WalkOptions
from exoflow.paths import path_columns
from exoflow.sources.entries import SCHEMA

if TYPE_CHECKING:
    from exoflow.sources.walk import IgnoreRules

FILE_MODE = 0o100644          # what a listing row of an object says: a regular file, rw-r--r--
DIR_MODE = 0o040755
PAGE = 1000      # names per list request: S3's most
SPLIT = 16       # the most ranges the rest of a prefix is cut into after its first page
SPLIT_AGAIN = 4  # … and the rest of a range so cut, after its first page (more: more empty ranges)
NEAR = 3         # cut with the characters of this many positions from where a page's names differ
# The client's check of a PATH fails fast on an endpoint that does not answer (the tasks keep the
# store's own retries): per protocol, options under the user's.
FAIL_FAST = {"s3": {"config_kwargs": {"connect_timeout": 3, "read_timeout": 10, "retries": {"max_attempts": 1}}}}


def is_url(path: str) -> bool:
    """Whether ``path`` names object storage (a scheme and ``://``), not a local path."""
    return bool(URL.match(path))


def parse_options(text: str) -> dict[str, Any]:
    return json.loads(text) if text else {}


@lru_cache(maxsize=16)
def _filesystem(protocol: str, storage: str):
    """No listings cache unless asked: a process that listed a prefix must not read stale sizes and
    ETags from it later."""
    import fsspec
    return fsspec.filesystem(protocol, **{"use_listings_cache": False, **parse_options(storage)})


def filesystem(url: str, storage: str = ""):
    """(fsspec file system, the path it takes) for ``url``; one file system per protocol and options
    in a process. Raises UsageError when no fsspec implementation serves the protocol."""
    import fsspec
    protocol = fsspec.core.split_protocol(url)[0]
    try:
        fs = _filesystem(protocol, storage)
    except (ImportError, ValueError) as e:
        raise UsageError(f"{url}: {_line(e)}") from None
    return fs, fs._strip_protocol(url) + url[len(url.rstrip("/")):]     # a key may end in "/"


def _line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if isinstance(e, (ImportError, ValueError)) else f"{type(e).__name__}: {text}"


def describe(e: BaseException) -> str:
    """A store's error as the ``error`` column and messages say it, one line."""
    if isinstance(e, FileNotFoundError):
        return "ENOENT: no such bucket, prefix or object"
    if isinstance(e, PermissionError):
        return f"EACCES: access denied ({' '.join(str(e).split())})"
    return _line(e)


# where the exceptions of object storage clients come from (fsspec and the libraries under s3fs/gcsfs)
STORE_MODULES = {"botocore", "aiobotocore", "aiohttp", "s3fs", "gcsfs", "fsspec", "google", "urllib3", "requests"}


def store_failure(e: BaseException) -> bool:
    """Whether ``e``, which stopped a run, is the store's (it stopped answering, timed out, refused
    expired credentials, failed with a 5xx …), not exoflow's: an exception of a storage client's
    module (in its chain too), or an OSError as s3fs translates the store's answers (no errno:
    access denied, expired token …; EREMOTEIO: 500; EBUSY: 503) or ``batch._store_error`` makes.
    Ask only of a run that uses a store (a local EBUSY is not one). An unknown code that s3fs makes
    EIO is known by its chain, which a worker's exception loses on its way to the client."""
    import errno
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if type(e).__module__.split(".")[0] in STORE_MODULES:
            return True
        if isinstance(e, OSError) and e.errno in (None, errno.EREMOTEIO, errno.EBUSY):
            return True
        e = e.__cause__ or e.__context__
    return False


@dataclass(frozen=True)
class Prefix:
    """A prefix still to list (the object-storage ``DirItem``): its URL, depth (a root is 0), the
    first name under the root (None for a root) and the root's URL; or a range of its names (see
    ``cut``)."""

    path: str
    depth: int
    top: str | None
    root: str
    # a range of the names below the prefix (a key's rest, or "sub/" for a sub-prefix): those after
    # ``after`` up to ``until`` included (None: to the end); "" for the prefix's first listing
    after: str = ""
    until: str | None = None
    # --gitignore: the rules of the prefixes above for the first listing, with the prefix's own for a range
    ignores: tuple[IgnoreRules, ...] = ()
    # the run's own output (``place``): a sub-prefix that is it is never listed, as the walk skips --out
    skip: tuple[str, str] | None = None

    @property
    def base(self) -> str:
        """The URL its names follow, less their "/": its own (one ending in "/" is a prefix ``…//``),
        a root's without trailing "/"."""
        return self.path if self.depth else self.path.rstrip("/")

    @property
    def ident(self) -> str:
        """What the journal knows the item by: the URL, and its range."""
        return f"{self.path}\0{self.after}\0{self.until or ''}" if self.after else self.path


@dataclass
class ObjectRoots:
    prefixes: list[Prefix]
    objects: list[str]        # PATHs that are single objects
    merged: list[tuple[str, str, str]]   # (a PATH left out, "is" or "is inside", the PATH that lists it)


def plan(urls: list[str], storage: str, opts: WalkOptions | None = None) -> ObjectRoots:
    """The URL PATHs as listing roots, each checked on the store first (``info``), each object listed
    once (a PATH that is another, or inside another's prefix whose listing with ``opts`` reaches it,
    is left out: ``merged``; one that listing does not reach, as ``walk.plan_roots`` says of
    directories, is listed as named). Raises UsageError (one line) for no such bucket or object,
    access denied, an endpoint that does not answer, expired credentials."""
    opts = opts or WalkOptions()
    roots = ObjectRoots([], [], [])
    for url in sorted(urls, key=lambda u: u.rstrip("/").count("/")):      # outer PATHs first
        fs, path = _checking(url, storage)
        url = url.rstrip("/") if path.rstrip("/") else url
        try:
            info = fs.info(path)
            outer = next((p.path for p in roots.prefixes if url == p.path or (
                url.startswith(p.path.rstrip("/") + "/") and _reaches(p, url, info, opts, storage))),
                url if url in roots.objects else None)
        except Exception as e:      # the store's errors: botocore's, aiohttp's, OSError …
            raise UsageError(f"{url}: {describe(e)}") from None
        if outer is not None:
            roots.merged.append((url, "is" if url == outer else "is inside", outer))
        elif info["type"] == "directory":
            roots.prefixes.append(Prefix(url, 0, None, url))
        else:
            roots.objects.append(url)
    return roots


def _reaches(outer: Prefix, url: str, info: dict, opts: WalkOptions, storage: str) -> bool:
    """Whether the listing of the root ``outer`` lists the prefix or object ``url`` below it
    (``info``: the store's of it): the listing's rules along that one path (--hidden,
    --include/--exclude, --max-depth, the ignore files of the prefixes on the way, the size bounds)."""
    from exoflow.sources.walk import _ignored
    lister, base = Lister(opts, storage), outer.path.rstrip("/")
    names = url[len(base) + 1:].split("/")
    item = outer
    for depth, name in enumerate(names, 1):
        ignores = lister.ignores(item, None) if opts.gitignore else ()
        child = f"{item.base}/{name}"
        is_dir = depth < len(names) or info["type"] == "directory"
        if not lister.kept(child[len(base) + 1:], is_dir) or (ignores and _ignored(ignores, child, is_dir)):
            return False
        if not is_dir:
            return lister.size_ok(info)
        if opts.max_depth is not None and depth >= opts.max_depth:
            return False
        item = Prefix(child, depth, names[0], outer.root, ignores=ignores)
    return True


def place(url: str, storage: str) -> tuple[str, str]:
    """Where the prefix ``url`` is, however it is spelled (a trailing "/", a protocol's other name:
    ``s3a://``): (its file system's first protocol, its path there). A local path's is ("file", its
    real path), as a ``file://`` URL's."""
    import os
    if not is_url(url):
        return "file", os.path.realpath(url)
    import os
    fs, path = filesystem(url, storage)
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return protocol, os.path.realpath(path) if protocol == "file" else path.rstrip("/") or path


def _checking(url: str, storage: str):
    """``filesystem``, with the store's retries cut (FAIL_FAST) for the client's checks."""
    fs, path = filesystem(url, storage)
    opts = parse_options(storage)
    fast = FAIL_FAST.get(fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0])
    if fast:
        opts = {**fast, **opts, "config_kwargs": {**fast["config_kwargs"], **opts.get("config_kwargs", {})},
                "skip_instance_cache": True}
        fs = type(fs)(**opts)
    return fs, path


def check_output(url: str, storage: str) -> None:
    """``--out URL``: its bucket (the first name of the path, where the store has buckets) answers
    and nothing is stored under the URL yet. Raises UsageError (one line) otherwise."""
    fs, path = _checking(url, storage)
    bucket = path.strip("/").split("/", 1)[0] if not fs.root_marker else ""
    try:
        if bucket:
            fs.info(bucket)
        taken = fs.exists(path) and bool(fs.ls(path))
    except Exception as e:
        raise UsageError(f"--out {url}: {describe(e)}") from None
    if taken:
        raise UsageError(f"--out {url}: objects are stored there already; give a prefix that holds none")


def _mtime_ns(info: dict) -> int | None:
    """LastModified (S3), updated/mtime (GCS, local) or created (memory) in ns since the epoch."""
    value = next((info[k] for k in ("LastModified", "mtime", "updated", "created") if info.get(k) is not None), None)
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, dt.datetime):
        return int(value.timestamp()) * 10**9 + value.microsecond * 1000
    return None if value is None else int(float(value) * 1e9)


def etag_of(info: dict) -> str | None:
    """The ETag in what a store says of an object, without its quotes; None where it has none."""
    etag = info.get("ETag") or info.get("etag")
    return etag.strip('"') if isinstance(etag, str) else None


class Rows:
    """Listing rows of objects and prefixes, built into a SCHEMA table by ``table``."""

    def __init__(self) -> None:
        self.cols: dict[str, list] = {k: [] for k in ("path", "type", "size", "mtime_ns", "depth", "top_dir",
                                                       "error", "etag", "storage_class", "version_id")}

    def __len__(self) -> int:
        return len(self.cols["path"])

    def add(self, url: str, info: dict | None, depth: int, top: str | None, error: str | None = None) -> None:
        c = self.cols
        kind = "dir" if info is None or info["type"] == "directory" else "file"
        c["path"].append(url)
        c["type"].append(kind)
        c["size"].append(int(info["size"]) if kind == "file" and info.get("size") is not None else None)
        c["mtime_ns"].append(_mtime_ns(info) if kind == "file" else None)
        c["depth"].append(depth)
        c["top_dir"].append(top)
        c["error"].append(error)
        c["etag"].append(etag_of(info) if kind == "file" else None)
        c["storage_class"].append(info.get("StorageClass") if kind == "file" else None)
        c["version_id"].append(info.get("VersionId") if kind == "file" else None)

    def table(self) -> pa.Table:
        c, n = self.cols, len(self)
        path, path_bytes = path_columns(pa.array(c["path"], pa.string()).cast(pa.binary()))
        is_file = np.array([t == "file" for t in c["type"]], dtype=bool)
        failed = np.array([e is not None for e in c["error"]], dtype=bool)     # as an lstat that failed: no mode
        cols = {"path": path, "path_bytes": path_bytes,
                "mode": pa.array(np.where(is_file, FILE_MODE, DIR_MODE), mask=failed)}
        cols.update({k: pa.array(v, SCHEMA.field(k).type) for k, v in c.items() if k != "path"})
        return pa.table({f.name: cols[f.name] if f.name in cols else pa.nulls(n, f.type) for f in SCHEMA},
                        schema=SCHEMA)


class Lister:
    """Lists prefixes for one listing task (``Walker``'s counterpart): --include/--exclude, --hidden,
    --max-depth, --min-size/--max-size and --gitignore apply as to a tree's relative paths."""

    def __init__(self, opts: WalkOptions, storage: str) -> None:
        from exoflow.sources.walk import compiled_globs
        self.opts, self.storage = opts, storage
        self.include = compiled_globs(opts.include) if opts.include else None
        self.exclude = compiled_globs(opts.exclude) if opts.exclude else None
        self.out = Rows()
        self.prefixes_listed = 0

    def run(self, stack: list[Prefix], budget: int, seconds: float = float("inf")) -> list[Prefix]:
        """List until ``budget`` rows are collected or ``seconds`` have passed; return the prefixes
        and ranges not reached (a task's rows: at most ``budget`` and one page more)."""
        deadline = time.monotonic() + seconds
        start = len(self.out)
        while stack and len(self.out) - start < budget and time.monotonic() < deadline:
            self.scan(stack.pop(), stack)
        return stack

    def add_objects(self, urls: list[str]) -> None:
        """PATHs (or --from-list entries) that are single objects: a row each (when the size bounds keep
        it), looked up concurrently; one that cannot be (gone, denied) is a row with its ``error``."""
        for url, info in zip(urls, infos(urls, self.storage)):
            if isinstance(info, BaseException):
                self.out.add(url, {"type": "file", "size": None}, 0, None, describe(info))
            elif self.size_ok(info):
                self.out.add(url, info, 0, None)

    def size_ok(self, info: dict) -> bool:
        lo, hi = self.opts.min_size, self.opts.max_size
        return (lo is None or info["size"] >= lo) and (hi is None or info["size"] <= hi)

    def kept(self, rel: str, is_dir: bool) -> bool:
        name = rel.rsplit("/", 1)[-1]
        if not self.opts.hidden and name.startswith("."):
            return False
        if self.exclude is not None and self.exclude.match_file(rel + ("/" if is_dir else "")):
            return False
        return is_dir or self.include is None or self.include.match_file(rel)

    def scan(self, item: Prefix, stack: list[Prefix]) -> None:
        """List ``item`` (a prefix, or a range of one): its objects become rows, its sub-prefixes
        and the rest of its range go on ``stack``."""
        from exoflow.sources.walk import _ignored
        fs, path = filesystem(item.path, self.storage)
        try:
            if ordered(fs, path):
                entries, rest = page(fs, path, item)
            else:
                entries, rest = fs.ls(path, detail=True, refresh=True), []
            ignores = item.ignores
            if self.opts.gitignore and not item.after:
                ignores = self.ignores(item, _present(entries, rest))
        except Exception as e:     # a range's row says which names it could not list
            where = f" (its names after {item.after!r}{f' up to {item.until!r}' if item.until else ''})" \
                if item.after else ""
            self.out.add(item.path, None, item.depth, item.top, describe(e) + where)
            return
        self.prefixes_listed += 0 if item.after else 1     # a prefix's ranges count once
        stack.extend(dataclasses.replace(item, after=a, until=u, ignores=ignores) for a, u in rest)
        depth, limit = item.depth + 1, self.opts.max_depth
        for info in sorted(entries, key=lambda i: i["name"]):
            is_dir = info["type"] == "directory"
            name = _name(info, path)
            url = f"{item.base}/{name}"
            if not is_dir and url.endswith("/") and not info["size"]:
                continue      # a directory marker (an empty object named "…/", as S3 consoles make)
            if not name and "rest" not in info:    # fs.ls drops a key's trailing "/": not listable there
                self.out.add(url, None, depth, item.top, "a key with an empty name between '/'s or ending in "
                             "'/': this store's listing cannot list it")
                continue
            rel = url[len(item.root.rstrip("/")) + 1:]
            top = item.top if item.top is not None else name
            if not self.kept(rel, is_dir) or (ignores and _ignored(ignores, url, is_dir)):
                continue
            if is_dir:     # listed by a task of its own, as the walk does directories (no row)
                if (limit is None or depth < limit) and not (item.skip and place(url, self.storage) == item.skip):
                    stack.append(Prefix(url, depth, top, item.root, ignores=ignores, skip=item.skip))
            elif self.size_ok(info):
                self.out.add(url, info, depth, top)

    def ignores(self, item: Prefix, present: set[str] | None) -> tuple[IgnoreRules, ...]:
        """The ignore rules for a prefix's names: those above it (``item.ignores``) as its own
        ``.git`` (a prefix or an object) lets them through, and its own ignore files (read whole).
        ``present``: which of ``.git`` and IGNORE_FILES the prefix holds (``_present``); None: not
        known, each is looked up."""
        from exoflow.sources.walk import IGNORE_FILES, INFO_EXCLUDE, _load_ignores, inherited
        base = item.base
        wanted = [n for n in (*IGNORE_FILES, INFO_EXCLUDE)
                  if present is None or (".git" if n == INFO_EXCLUDE else n) in present]
        lines = dict(zip(wanted, map(_lines, fetch([f"{base}/{n}" for n in wanted], self.storage))))
        if present is None:
            fs, path = filesystem(item.path, self.storage)
            present = {n for n in IGNORE_FILES if lines[n] is not None}
            if lines[INFO_EXCLUDE] is not None or fs.exists(f"{path.rstrip('/')}/.git"):
                present.add(".git")
        return inherited(item.ignores, present) + _load_ignores(base, present, self.opts.git_excludes, lines.get)


def _name(info: dict, path: str) -> str:
    """The name of an object or sub-prefix of the prefix ``path`` (as its file system takes it)
    that ``info`` is: ``page``'s ``rest`` (less a sub-prefix's "/"; empty for an object named as the
    prefix, ``…/``, or a sub-prefix ``…//``), or the last name of ``fs.ls``'s (which drops a key's
    trailing "/": empty where that leaves the prefix itself)."""
    if "rest" in info:
        return info["rest"][:-1] if info["type"] == "directory" else info["rest"]
    full = info["name"].rstrip("/")
    return "" if full == path.rstrip("/") else full.rsplit("/", 1)[-1]


def _present(entries: list[dict], rest: list) -> set[str] | None:
    """Which of ``.git``, ``.gitignore`` and ``.ignore`` a prefix's first listing (``entries``, and
    ``rest``: its range left) names; None when its page ended before ``.ignore`` (not known)."""
    from exoflow.sources.walk import IGNORE_FILES
    if rest and rest[0][0] < max(IGNORE_FILES):
        return None
    return {i["name"].rstrip("/").rsplit("/", 1)[-1] for i in entries} & {".git", *IGNORE_FILES}


def _lines(body) -> tuple[str, ...] | None:
    """An ignore file's lines from its bytes; None for what could not be read (an exception)."""
    return tuple(bytes(body).decode("utf-8", "surrogateescape").splitlines()) if isinstance(body, bytes) else None


def ordered(fs, path: str) -> bool:
    """Whether ``page`` lists the prefix ``path``: S3 and its kin through s3fs (names in order from
    any name on: StartAfter), but not an S3 Express directory bucket (``…--x-s3``, unordered) nor a
    version-aware s3fs (its pages may end within a key's versions)."""
    return (hasattr(fs, "call_s3") and not getattr(fs, "version_aware", False)
            and not path.split("/", 1)[0].endswith("--x-s3"))


def page(fs, path: str, item: Prefix) -> tuple[list[dict], list[tuple[str, str | None]]]:
    """One page (up to PAGE names) of the prefix ``path``'s names in ``item``'s range, through
    s3fs's client: their infos (as s3fs's ``ls`` gives them), and the rest of the range as ranges
    (after, until) (``cut``; none when the page reached the range's end)."""
    bucket, sep, key = path.partition("/")       # not fs.split_path: a key of slashes only stays
    base = key + "/" if sep else ""              # a bucket's root: ""
    # every name of a range (after, until] starts with the two's common start: ask for those only
    narrow = item.after[:_shared(item.after, item.until)] if item.until is not None else ""
    args = {"Bucket": bucket, "Prefix": base + narrow, "Delimiter": "/", "MaxKeys": PAGE, **fs.req_kw}
    if item.after:
        args["StartAfter"] = base + item.after
    while True:       # a page can be empty and truncated (deleted keys): go on to one with names
        out = fs.call_s3("list_objects_v2", **args)
        found = {p["Prefix"][len(base):]: None for p in out.get("CommonPrefixes", [])}
        found.update((c["Key"][len(base):], c) for c in out.get("Contents", []))
        if found or not out.get("IsTruncated"):
            break
        args["ContinuationToken"] = out["NextContinuationToken"]
    names = sorted(found)
    # S3 may give again the sub-prefix that ``after`` is in: a name belongs to the range it sorts in
    # ``rest``: the name after the prefix's key as is (empty for an object named as the prefix "…/")
    infos = [{"name": f"{bucket}/{base}{n}", "rest": n, "type": "directory", "size": 0} if found[n] is None else
             {**found[n], "name": f"{bucket}/{found[n]['Key']}", "rest": n, "type": "file", "size": found[n]["Size"]}
             for n in names if (n > item.after or not item.after) and (item.until is None or n <= item.until)]
    ended = not out.get("IsTruncated") or not names or (item.until is not None and names[-1] >= item.until)
    return infos, [] if ended else cut(names, item.until, SPLIT if item.until is None else SPLIT_AGAIN)


def _shared(a: str, b: str) -> int:
    """The length of the start ``a`` and ``b`` share."""
    n = min(len(a), len(b))
    return next((i for i in range(n) if a[i] != b[i]), n)


def cut(names: list[str], until: str | None, most: int = SPLIT) -> list[tuple[str, str | None]]:
    """The rest of a range after a page of its ``names`` (sorted; the range goes on after the last,
    up to ``until`` included, None: to the end) as up to ``most`` consecutive ranges (after, until)
    that cover it exactly, in order. The cuts are names made from the last one, ``last[:p] + c``:
    at each position p from where the page's names start to differ back to where ``last`` parts from
    ``until``, each larger character c that (a sample of) the page's names have where they vary in
    the NEAR positions from where they differ (the next keys of a sequence: for ``f0049`` after
    ``f0000``, ``f005`` … ``f009``, ``f01`` … ``f09``, ``f1`` …, the ranges of the ``0``-``9``
    names one level up each). Where there are more than ``most`` - 1, evenly spaced ones among
    them. Names compare as S3 orders keys (UTF-8 bytes, the same order as code points)."""
    last = names[-1]
    differ = _shared(names[0], last)
    sample = [*names[::max(1, len(names) // 64)], last]
    near = range(differ, min(differ + NEAR, max(map(len, sample))))     # further on: extensions, ids …
    varying = [i for i in near if len({n[i:i + 1] for n in sample}) > 1]
    chars = sorted({n[i] for n in sample for i in varying if i < len(n)})
    start = _shared(last, until) if until is not None else 0
    marks = sorted({last[:p] + c for p in range(start, min(differ + 1, len(last))) for c in chars if c > last[p]})
    marks = [m for m in marks if until is None or m < until]
    if len(marks) >= most:
        marks = [marks[i * len(marks) // most] for i in range(1, most)]
    edges = [last, *marks, until]
    return list(zip(edges[:-1], edges[1:]))


# ---- reading --------------------------------------------------------------------------

def fetch(urls: list[str], storage: str) -> list[bytes | BaseException]:
    """Each object's whole contents, fetched concurrently (one request each where the store is
    async); an exception in place of the bytes of one that could not be read."""
    if not urls:
        return []
    fs, _ = filesystem(urls[0], storage)
    # not fs.cat: it expands glob characters, and would read x1 for an object named x[1]
    return fs.cat_ranges([filesystem(u, storage)[1] for u in urls], None, None, on_error="return")


def open_object(url: str, storage: str, block_size: int):
    """The object opened for reading in ranged requests of ``block_size`` bytes; ``.details`` holds
    what the store said of it when opened (size, ETag). s3fs makes each request conditional on that
    ETag, so a stream never mixes two versions (it raises instead)."""
    fs, path = filesystem(url, storage)
    if not _named_as_prefix(fs, path):
        return fs.open(path, "rb", block_size=block_size, cache_type="none")
    head = info(url, storage)       # fs.open would drop the key's trailing "/"
    f = fs._open(path, "rb", block_size=block_size, cache_type="none", size=head["size"])
    f.details = head
    return f


def _named_as_prefix(fs, path: str) -> bool:
    """Whether ``path`` is an S3 key that ends in "/" (s3fs's ``open`` and ``info`` take it for a prefix)."""
    return path.endswith("/") and hasattr(fs, "call_s3")


async def _ainfo(fs, path: str) -> dict:
    """``fs._info(path)``; for a key ending in "/" (``_named_as_prefix``), its HEAD, as ``info`` says it."""
    if not _named_as_prefix(fs, path):
        return await fs._info(path)
    bucket, _, key = path.partition("/")
    head = await fs._call_s3("head_object", Bucket=bucket, Key=key, **fs.req_kw)
    return {"name": path, "type": "file", "size": head["ContentLength"], "ETag": head.get("ETag"),
            "LastModified": head.get("LastModified"), "StorageClass": head.get("StorageClass", "STANDARD"),
            "VersionId": head.get("VersionId")}


def details(f) -> dict:
    """What the store said of an object opened with ``open_object`` (``size``; ``ETag`` where it has one)."""
    return getattr(f, "details", None) or {"size": f.size}


def read_range(urls: list[str], starts: list[int], ends: list[int], storage: str) -> list[bytes | BaseException]:
    """Byte ranges ``[start, end)`` of objects, fetched concurrently."""
    fs, _ = filesystem(urls[0], storage)
    return fs.cat_ranges([filesystem(u, storage)[1] for u in urls], starts, ends, on_error="return")


LOOKUPS = 64      # object lookups in flight at once (``infos``)


def infos(urls: list[str], storage: str) -> list[dict | BaseException]:
    """What the store says of each object (``info``), LOOKUPS requests at a time where its file system
    is async (s3fs, gcsfs); the exception in place of one that could not be looked up."""
    from fsspec.asyn import sync
    found: dict[str, dict | BaseException] = {}
    by_fs: dict[Any, list[tuple[str, str]]] = {}
    for url in urls:
        fs, path = filesystem(url, storage)
        by_fs.setdefault(fs, []).append((url, path))
    for fs, items in by_fs.items():
        for i in range(0, len(items), LOOKUPS):
            batch = items[i:i + LOOKUPS]
            if getattr(fs, "async_impl", False):
                got = sync(fs.loop, _gather, [_ainfo(fs, path) for _, path in batch])
            else:
                got = [_info_or_error(fs, path) for _, path in batch]
            found.update((url, g) for (url, _), g in zip(batch, got))
    return [found[u] for u in urls]


async def _gather(coroutines: list) -> list:
    import asyncio
    return await asyncio.gather(*coroutines, return_exceptions=True)


def _info_or_error(fs, path: str) -> dict | BaseException:
    try:
        return fs.info(path)
    except Exception as e:
        return e


def info(url: str, storage: str) -> dict:
    """What the store says of one object now (size, ETag …); raises as the store does."""
    from fsspec.asyn import sync
    fs, path = filesystem(url, storage)
    return sync(fs.loop, _ainfo, fs, path) if _named_as_prefix(fs, path) else fs.info(path)
