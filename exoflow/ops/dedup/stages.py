"""Exact duplicate detection on the cluster, in stages that each cut the candidates.

1. size      the chunk phase counts sizes (``DedupReducer``); only sizes seen at least
             twice stay candidates (empty files dropped unless --include-empty).
2. shuffle   candidates are shuffled by size with plain futures (map tasks cut their listing
             parts' candidates into P pieces by size, reduce task j joins piece j of each;
             pieces stay on the workers and spill like any result), so one partition holds
             every file of its sizes and no process holds every path.
3. links     within a partition, names of the same (device, inode) are one file.
4. prefix    files up to 64 KiB: the full hash, in one read; larger files: hash of the
             first and last 4 KiB.
5. full      full hash, streamed in bounded pieces, of files over 64 KiB still paired.

Groups are ranked by reclaimable bytes on the client from a per-group summary
(size, digest, count: no paths); each partition then writes its Parquet part
and its piece of the text report, and applies actions when asked.
"""
from __future__ import annotations

import heapq
import itertools
import math
import operator
import os
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    from exoflow.executors import Executor

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from exoflow import outputs
from exoflow.kernels.hashing import _one_shot, hash_stream, span_hexdigests
from exoflow.batch import RESIZED, read_ends, read_files, stream
from exoflow.chunks import read_batches
from exoflow.paths import exact_paths
from exoflow.fileio import describe_error, escape_line
from exoflow.sinks import write_part
from exoflow.tables import human_bytes

PREFIX = 4096
SUFFIX_FROM = 64 * 1024         # larger files: first and last PREFIX bytes hashed; smaller: whole file
READ_BATCH = 32 * 2**20         # bytes of small candidates read into memory at once
FULL_PIECE = 2**20              # the full hash streams files in pieces of this size
MAP_ROWS = 1_600_000            # listing rows read by one map task (32 parts of 50,000), at most
MAP_BATCH = 4096                # listing rows a map task decodes at once
ROWS_PER_REDUCE = 500_000       # candidates per reduce partition, at most
# A task's peak memory over the Arrow bytes of the listing rows it holds, with a margin (measured: 4
# for a map task; 5.3 for a reduce task beside its input pieces, which are 1 more, and 2 while
# they are read back from disk: pandas with a Python string per path, sorted and filtered copies;
# a reduce partition may hold 1.35 times the mean). With the workers' memory limit
# (Executor.task_memory) they size the tasks, so that a task's working memory, which Dask cannot
# spill, fits beside what the worker holds, and the pieces and results in between are many and
# small enough to spill.
MAP_PEAK = 5
REDUCE_PEAK = 11
READ_SCHEMA = pa.schema([("path", pa.string()), ("path_bytes", pa.binary()), ("type", pa.string()),
                         ("size", pa.int64()), ("mtime_ns", pa.int64()), ("inode", pa.uint64()),
                         ("device", pa.uint64()), ("nlink", pa.int64()), ("error", pa.string())])
READ_COLUMNS = READ_SCHEMA.names
OBJECT_DEVICE = 2**64 - 1       # the device of objects (URLs) in the stages: no file system has it
GROUP_SCHEMA = pa.schema([("group_id", pa.int64()), ("size", pa.int64()), ("hash", pa.string()),
                          ("path", pa.string()), ("path_bytes", pa.binary()), ("mtime_ns", pa.int64()),
                          ("inode", pa.uint64()), ("device", pa.uint64()), ("nlink", pa.int64())])


def _exact(df: pd.DataFrame) -> list[str]:
    return exact_paths(df["path"].tolist(), df["path_bytes"].tolist())


def _bucket(size: np.ndarray, nparts: int) -> np.ndarray:
    """Partition of each size: a multiplicative hash, so aligned sizes (multiples of 4096) still spread."""
    mixed = size.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)    # wraps mod 2**64 on purpose
    return ((mixed >> np.uint64(32)) % np.uint64(nparts)).astype(np.int64)


Slice = tuple  # (listing part, first row, end row or None): the rows a map task reads of a part


def _candidates(piece: Slice, sizes: pa.Array, include_empty: bool) -> pa.Table:
    """The candidates among rows [first, end) of a listing part (regular files without error of a
    size in ``sizes``), read MAP_BATCH rows at a time: a map task holds its candidates, never the part.
    ``first`` is a multiple of MAP_BATCH (the batches before it are decoded and dropped)."""
    part, first, end = piece
    f = outputs.parquet_file(part)
    end = f.metadata.num_rows if end is None else end
    kept = []
    for batch in itertools.islice(f.iter_batches(batch_size=MAP_BATCH, columns=READ_COLUMNS),
                                  first // MAP_BATCH, -(-end // MAP_BATCH)):
        t = pa.Table.from_batches([batch]).cast(READ_SCHEMA)
        keep = pc.and_(pc.fill_null(pc.equal(t.column("type"), "file"), False), pc.is_null(t.column("error")))
        keep = pc.and_(keep, pc.is_in(t.column("size"), value_set=sizes))
        if not include_empty:
            keep = pc.and_(keep, pc.greater(t.column("size"), 0))
        kept.append(t.filter(keep).drop_columns(["type", "error"]))
    return pa.concat_tables(kept) if kept else pa.table({n: pa.array([], READ_SCHEMA.field(n).type)
                                                          for n in READ_COLUMNS if n not in ("type", "error")})


def split_candidates(slices: list[Slice], sizes: np.ndarray, nparts: int,
                     include_empty: bool) -> list[pa.Table]:
    """Map side of the shuffle (a worker task): candidate rows of some slices of listing parts, cut
    into ``nparts`` pieces by size so that piece j of every map task holds all candidates of its sizes."""
    value_set = pa.array(sizes, pa.int64())
    # one contiguous table (each batch's candidates copied once): a take from chunks joins them each time
    t = pa.concat_tables([_candidates(sl, value_set, include_empty) for sl in slices]).combine_chunks()
    t = _object_identities(t)
    bucket = _bucket(t.column("size").to_numpy(), nparts)
    order = np.argsort(bucket, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(bucket, minlength=nparts))]).tolist()
    # a take per piece, not slices of one table: each piece owns its buffers (a pickled slice
    # would carry the whole table)
    return [t.take(pa.array(order[a:b])) for a, b in zip(bounds[:-1], bounds[1:])]


def _object_identities(t: pa.Table) -> pa.Table:
    """Objects (no device, no inode) are each a file of their own: (OBJECT_DEVICE, a hash of the URL)."""
    missing = pc.is_null(t.column("inode")).to_numpy(zero_copy_only=False)
    if not missing.any():
        return t
    urls = t.column("path").filter(pa.array(missing)).to_pylist()
    inode = pc.fill_null(t.column("inode"), 0).to_numpy(zero_copy_only=False).astype(np.uint64)   # a copy
    inode[missing] = np.fromiter((xxhash.xxh3_64_intdigest(u.encode()) for u in urls), np.uint64, len(urls))
    device = pc.fill_null(t.column("device"), pa.scalar(OBJECT_DEVICE, pa.uint64()))
    t = t.set_column(t.schema.get_field_index("inode"), "inode", pa.array(inode, pa.uint64()))
    return t.set_column(t.schema.get_field_index("device"), "device", device)


def _paired(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Rows whose key occurs at least twice."""
    if df.empty:
        return df
    return df[df.groupby(keys, sort=False)[keys[0]].transform("size").to_numpy() >= 2]


def _prefix_suffix(path: str, size: int, one_shot, storage: str) -> str:
    """Files over SUFFIX_FROM: the hash of their first and last PREFIX bytes (read by the engine)."""
    return one_shot(read_ends(path, size, PREFIX, storage))


def _per_inode(df: pd.DataFrame) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """Each distinct (device, inode) once, in that order (the disk's; with --hardlinks several
    names share one): (exact paths, paths as shown, sizes, which), row r's file being which[r]."""
    dev, ino = df["device"].to_numpy(np.uint64), df["inode"].to_numpy(np.uint64)
    order = np.lexsort((ino, dev))
    new = np.ones(len(order), dtype=bool)
    new[1:] = (dev[order][1:] != dev[order][:-1]) | (ino[order][1:] != ino[order][:-1])
    which = np.empty(len(order), dtype=np.int64)
    which[order] = np.cumsum(new) - 1
    firsts = order[new]
    return _exact(df.iloc[firsts]), df["path"].iloc[firsts].tolist(), df["size"].to_numpy(np.int64)[firsts], which


def _first_digests(df: pd.DataFrame, algorithm: str, errors: list, read_batch: int, storage: str) -> pd.Series:
    """Per row: the whole file's hash when it is at most SUFFIX_FROM bytes (so it needs no second
    pass), else the hash of its first and last PREFIX bytes. Small files are read by the engine's
    loader, ``read_batch`` bytes at a time, and hashed together (``span_hexdigests``); a file whose
    size differs from the listing is left out (reason kept)."""
    paths, shown, sizes, which = _per_inode(df)
    small = sizes <= SUFFIX_FROM
    digests = np.full(len(paths), None, dtype=object)
    one_shot = _one_shot(algorithm)
    failures: list[tuple[int, str]] = []          # (file, reason), reported in file order
    for a, b in read_batches(sizes, SUFFIX_FROM, read_batch):
        sel = small[a:b]
        data, offsets, read_errors, large = read_files(paths[a:b], sel, int(sizes[a:b][sel].sum()) + b - a + 1,
                                                       SUFFIX_FROM, sizes=sizes[a:b], storage=storage)
        failed = np.array([e is not None for e in read_errors], dtype=bool)
        whole = sel & ~failed & ~np.asarray(large, dtype=bool) & (np.diff(offsets) == sizes[a:b])
        digests[a:b] = span_hexdigests(algorithm, data, offsets, np.flatnonzero(whole))
        failures += [(a + j, read_errors[j] if failed[j] else RESIZED) for j in np.flatnonzero(sel & ~whole).tolist()]
        for j in np.flatnonzero(~sel).tolist():
            try:
                digests[a + j] = _prefix_suffix(paths[a + j], int(sizes[a + j]), one_shot, storage)
            except OSError as e:
                failures.append((a + j, describe_error(e)))
    errors += [[shown[k], reason] for k, reason in sorted(failures)]
    return pd.Series(digests[which], index=df.index, dtype=object)


def _digests(df: pd.DataFrame, fn, errors: list) -> pd.Series:
    """``fn(path, size)`` per row in (device, inode) order, once per inode; failures drop the row,
    reason kept."""
    paths, shown, sizes, which = _per_inode(df)
    out: list[str | None] = [None] * len(paths)
    for k in range(len(paths)):
        try:
            out[k] = fn(paths[k], int(sizes[k]))
        except OSError as e:
            errors.append([shown[k], describe_error(e)])
    return pd.Series(np.asarray(out, dtype=object)[which], index=df.index, dtype=object)


def find_duplicates(df: pd.DataFrame, params: dict[str, Any]) -> dict[str, Any]:
    """One shuffled partition (every candidate of its sizes) -> duplicate rows + stage counts."""
    algorithm = params.get("hash") or "xxh3-128"
    stats = {"candidates": len(df)}
    errors: list = []
    df = df.sort_values("path", kind="stable").reset_index(drop=True)   # shuffled rows repeat index values
    names = df
    if not params.get("hardlinks"):
        df = df.drop_duplicates(["device", "inode"])          # jdupes: links are one file, not duplicates
    df = _paired(df, ["size"])
    stats["after_links"] = len(df)
    storage = params.get("storage") or ""
    df = df.assign(key=_first_digests(df, algorithm, errors, params.get("read_batch") or READ_BATCH, storage))
    df = _paired(df[df["key"].notna()], ["size", "key"])
    stats["after_prefix"] = len(df)
    whole = (df["size"] <= SUFFIX_FROM).to_numpy()            # the first pass already hashed them in full
    big = df[~whole]
    full = _digests(big, lambda p, s: hash_stream([algorithm], stream(p, FULL_PIECE, storage, s))[0], errors) \
        if len(big) else pd.Series([], dtype=object)
    df = df.assign(hash=df["key"].where(whole, full))
    df = _paired(df[df["hash"].notna()], ["size", "hash"])
    stats["after_full"] = len(df)
    groups = df.groupby(["size", "hash"], sort=False).size().rename("count").reset_index()
    if params.get("hardlinks"):   # reclaimable counts distinct inodes only
        inodes = (df.drop_duplicates(["size", "hash", "device", "inode"])     # a file is (device, inode)
                  .groupby(["size", "hash"], sort=False).size().rename("inodes").reset_index())
        groups = groups.merge(inodes, on=["size", "hash"])
    else:
        groups["inodes"] = groups["count"]
    stats["errors"] = len(errors)
    links = _other_names(names, df) if params.get("action") else names.iloc[:0]
    return {"rows": df.drop(columns="key"), "groups": groups, "stats": stats, "errors": errors[:10],
            "links": links, "keep_matched": _keep_matched(df, links, params)}


def _other_names(names: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """The names (rows of ``names``) of the files in ``rows`` that the groups leave out: without
    --hardlinks a group shows one name per file, but an action must change them all."""
    rest = names.drop(index=rows.index)
    return rest.merge(rows[["device", "inode"]].drop_duplicates(), on=["device", "inode"])[
        ["path", "path_bytes", "device", "inode"]]


def _keep_matched(rows: pd.DataFrame, links: pd.DataFrame, params: dict[str, Any]) -> np.ndarray:
    """Per canonical --keep-path pattern: whether it matches a name of a file in this partition's groups."""
    from exoflow.ops.dedup.actions import exact_names, keep_matches
    patterns = params.get("keep_patterns") or []
    if not patterns or not params.get("action"):
        return np.zeros(len(patterns), bool)
    names = pd.concat([rows[["path", "path_bytes"]], links[["path", "path_bytes"]]])
    return keep_matches(exact_names(names["path"].tolist(), names["path_bytes"].tolist(), params["cwd"])[0],
                        patterns).any(axis=0)


def reduce_pieces(pieces: list[pa.Table], params: dict[str, Any]) -> dict[str, Any]:
    """Reduce side of the shuffle (a worker task): piece j of every map task -> its duplicates."""
    return find_duplicates(pa.concat_tables(pieces).to_pandas(), params)


def group_summary(result: dict[str, Any]) -> dict[str, Any]:
    """What the client needs to rank groups: no paths."""
    g = result["groups"]
    return {"size": g["size"].to_numpy(np.int64), "count": g["count"].to_numpy(np.int64),
            "inodes": g["inodes"].to_numpy(np.int64), "hash": g["hash"].to_numpy(object),
            "stats": result["stats"], "errors": result["errors"], "keep_matched": result["keep_matched"]}


COPY_CLASSES = [(2, 2, "2"), (3, 3, "3"), (4, 4, "4"), (5, 9, "5-9"), (10, 99, "10-99"), (100, None, "100+")]


def by_copies(size: np.ndarray, inodes: np.ndarray) -> list[dict[str, Any]]:
    """Groups and reclaimable bytes by the number of copies (distinct files) in a group."""
    rows = []
    for lo, hi, label in COPY_CLASSES:
        sel = (inodes >= lo) & (inodes <= (hi if hi is not None else np.iinfo(np.int64).max))
        rows.append({"copies": label, "groups": int(sel.sum()), "reclaimable": int((size * (inodes - 1))[sel].sum())})
    return rows


def rank(summaries: list[dict[str, Any]]) -> list[np.ndarray]:
    """Global group ids (1 = most reclaimable bytes), returned per partition in local order."""
    size = np.concatenate([s["size"] for s in summaries]) if summaries else np.zeros(0, np.int64)
    inodes = np.concatenate([s["inodes"] for s in summaries]) if summaries else np.zeros(0, np.int64)
    digest = np.concatenate([s["hash"] for s in summaries]) if summaries else np.zeros(0, object)
    reclaim = size * (inodes - 1)
    order = np.lexsort((digest.astype(str), -size, -reclaim))   # last key is primary
    ids = np.empty(len(order), np.int64)
    ids[order] = np.arange(1, len(order) + 1)
    bounds = np.cumsum([0] + [len(s["size"]) for s in summaries])
    return [ids[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def write_groups(result: dict[str, Any], ids: np.ndarray, out_dir: str, part: int,
                 params: dict[str, Any]) -> dict[str, Any]:
    """Write a partition's groups (Parquet + text report piece) and apply actions (a worker task)."""
    from exoflow.ops.dedup.actions import apply_actions
    rows, groups = result["rows"], result["groups"].assign(group_id=ids)
    rows = rows.merge(groups[["size", "hash", "group_id", "count"]], on=["size", "hash"]).sort_values(
        ["group_id", "path"], kind="stable")
    table = pa.Table.from_pandas(rows[[f.name for f in GROUP_SCHEMA]], schema=GROUP_SCHEMA, preserve_index=False)
    name = f"part-{part:06d}.parquet"
    if table.num_rows:
        write_part(table, os.path.join(out_dir, "duplicates"), name)
    text = os.path.join(out_dir, ".report-parts", f"{part:06d}.txt")
    outputs.makedirs(os.path.dirname(text))
    algorithm = params.get("hash") or "xxh3-128"
    columns = (rows[c].tolist() for c in ("group_id", "count", "size", "hash", "path"))
    with outputs.atomic_write(text, errors="replace") as f:
        last = None                          # rows are in group order: a header where the group changes
        for gid, n, size, digest, path in zip(*columns):
            if gid != last:
                if last is not None:
                    f.write("\n")              # a blank line ends each group
                f.write(f"# group {gid}: {n} files of {human_bytes(size)} ({size} bytes), {algorithm} {digest}\n")
                last = gid
            f.write(report_name(path) + "\n")
        if last is not None:
            f.write("\n")
    actions = None
    if params.get("action"):   # every name of each file in a group, also those the groups leave out
        files = rows.drop_duplicates(["device", "inode"])[["device", "inode", "group_id", "size", "mtime_ns"]]
        actions = apply_actions(pd.concat([rows, result["links"].merge(files, on=["device", "inode"])]),
                                out_dir, part, params)
    return {"text": text, "actions": actions}


def report_name(path: str) -> str:
    """A path as one line of duplicates.txt: \\ \n \r escaped, and a leading # as \\#, so no
    name can end a line early or pose as a group header."""
    name = escape_line(path)
    return "\\" + name if name.startswith("#") else name


def _blocks(path: str) -> Iterator[tuple[int, str]]:
    """(group id, block text) from a report piece."""
    block: list[str] = []
    gid = 0
    with outputs.open_read(path, "r") as f:
        for line in f:
            if line.startswith("# group ") and block:
                yield gid, "".join(block)
                block = []
            if line.startswith("# group "):
                gid = int(line[8:line.index(":")])
            block.append(line)
    if block:
        yield gid, "".join(block)


def merge_reports(pieces: list[str], target: str) -> None:
    """k-way merge of the sorted report pieces into one file ordered by group id (streamed)."""
    with outputs.atomic_write(target) as out:
        for _, text in heapq.merge(*(_blocks(p) for p in pieces)):
            out.write(text)
    if pieces:
        outputs.rmtree(os.path.dirname(pieces[0]))


def _footers(parts: list[str]) -> tuple[np.ndarray, float]:
    """(rows of each listing part, Arrow bytes of a row in the columns dedup reads) from the parts'
    Parquet footers (uncompressed sizes), without reading the data."""
    rows, nbytes = np.zeros(len(parts), np.int64), 0
    for i, p in enumerate(parts):
        md = outputs.parquet_file(p).metadata
        rows[i] = md.num_rows
        nbytes += sum(rg.column(c).total_uncompressed_size for rg in map(md.row_group, range(md.num_row_groups))
                      for c in range(rg.num_columns) if rg.column(c).path_in_schema in READ_COLUMNS)
    return rows, nbytes / max(int(rows.sum()), 1)


def _slices(parts: list[str], rows: np.ndarray, map_rows: int, n_map: int) -> list[list[Slice]]:
    """The listing parts cut into slices of whole MAP_BATCH batches, at most ``map_rows`` rows and
    no more than a map task's share, dealt to ``n_map`` map tasks of about equal rows: the largest
    slice first to the task with the fewest rows so far (whole parts balance unless one is much
    larger than the rest). Each task reads its slices in listing order."""
    share = -(-int(rows.sum()) // n_map)
    step = max(MAP_BATCH, min(map_rows, share) // MAP_BATCH * MAP_BATCH)
    slices = [(p, a, min(a + step, int(n))) for p, n in zip(parts, rows) for a in range(0, max(int(n), 1), step)]
    load, groups = np.zeros(n_map, np.int64), [[] for _ in range(n_map)]
    for i in sorted(range(len(slices)), key=lambda i: slices[i][1] - slices[i][2]):
        k = int(np.argmin(load))
        groups[k].append(i)
        load[k] += slices[i][2] - slices[i][1]
    return [[slices[i] for i in sorted(g)] for g in groups if g]


def _plan(ex: Executor, parts: list[str], candidates: int | None) -> tuple[list[list[Slice]], int, int]:
    """(slices of listing parts per map task, number of reduce partitions, bytes of small files a
    reduce task reads at once): at least one task per thread, and, where the workers have a memory
    limit, tasks whose peak (MAP_PEAK, REDUCE_PEAK times the Arrow bytes of their rows) fits in
    ``ex.task_memory()``, so a listing of any size stays in pieces the workers can spill. A reduce
    partition holds all files of its sizes: one very common size makes one partition bigger."""
    threads = max(1, sum(ex.nthreads().values()))
    rows, row_bytes = _footers(parts)
    memory = ex.task_memory()
    map_rows, reduce_rows, read_batch = MAP_ROWS, ROWS_PER_REDUCE, READ_BATCH
    if memory is not None:
        map_rows = max(1, min(map_rows, int(memory / (MAP_PEAK * row_bytes))))
        reduce_rows = max(1, min(reduce_rows, int(memory / (REDUCE_PEAK * row_bytes))))
        read_batch = max(SUFFIX_FROM, min(read_batch, memory // 8))
    total = int(rows.sum())
    n_map = max(min(threads, len(parts)), math.ceil(total / map_rows))
    wanted = candidates if candidates is not None else total
    return (_slices(parts, rows, map_rows, n_map), max(2 * threads, math.ceil(wanted / reduce_rows)), read_batch)


def _check_keep_paths(summaries: list[dict[str, Any]], params: dict[str, Any]) -> None:
    """Raise UsageError, before any partition acts, if some --keep-path matches no name of a
    file in any group (while there are groups)."""
    from exoflow.errors import UsageError
    patterns = params.get("keep_path") or []
    if not patterns or not sum(len(s["size"]) for s in summaries):
        return
    matched = np.logical_or.reduce([s["keep_matched"] for s in summaries])
    missing = [p for p, m in zip(patterns, matched) if not m]
    if missing:
        raise UsageError(f"--keep-path {', '.join(map(repr, missing))} matches no file in any duplicate group "
                         f"(relative patterns are taken from {params['cwd']}); nothing was changed")


def run_stages(ex: Executor, dataset_dir: str, out_dir: str, sizes: np.ndarray, params: dict[str, Any],
               candidates: int | None = None) -> dict[str, Any]:
    """Stages 2-5 and the outputs; returns the summary. ``candidates``: files of repeated sizes
    (from the size stage), to size the shuffle."""
    summary: dict[str, Any] = {"groups": 0, "duplicate_files": 0, "files_in_groups": 0, "reclaimable": 0,
                               "stages": {"size": 0, "after_links": 0, "after_prefix": 0, "after_full": 0},
                               "hash_errors": 0, "error_examples": [], "top": [], "by_copies": []}
    parts = outputs.parts(dataset_dir)
    if not len(sizes) or not parts:
        return summary
    # A shuffle by size made of plain futures: every map task cuts its candidates into P pieces,
    # reduce task j joins piece j of each. All of it is submitted at once (one round trip) and
    # stays on the workers; the client only receives per-group summaries (no paths).
    groups, nparts, read_batch = _plan(ex, parts, candidates)
    params = {**params, "read_batch": read_batch}
    # the sizes travel in a task, not scattered: scattered data dies with its worker (a worker the nanny
    # restarts at the memory limit) and every task after it is cancelled; a task is computed again
    sizes_f = ex.submit(np.asarray, sizes, np.int64)
    # spread over the workers: Dask would run them all where the sizes are, one after another
    nthreads = sorted(ex.nthreads().items())
    workers = [w for k in range(max((n for _, n in nthreads), default=0)) for w, n in nthreads if k < n] or [None]
    maps = [ex.submit(split_candidates, g, sizes_f, nparts, bool(params.get("include_empty")),
                      where=workers[i % len(workers)]) for i, g in enumerate(groups)]
    results = [ex.submit(reduce_pieces, [ex.submit(operator.getitem, m, j) for m in maps], params)
               for j in range(nparts)]
    # not held here: a map's output is released once its pieces are taken (each piece a table of its
    # own, which Dask spills as it needs), so the workers never hold the listing twice
    del maps, sizes_f
    summaries = ex.gather([ex.submit(group_summary, r) for r in results])
    if params.get("action"):
        _check_keep_paths(summaries, params)
    ids = rank(summaries)
    writes = ex.gather([ex.submit(write_groups, r, i, out_dir, n, params) for n, (r, i) in enumerate(zip(results, ids))])
    del results
    from exoflow.ops.dedup.actions import merge_logs
    if params.get("action"):      # first: after --apply the log is what must never be lost
        summary["actions"] = merge_logs([w["actions"] for w in writes], out_dir)
    merge_reports([w["text"] for w in writes], os.path.join(out_dir, "duplicates.txt"))
    for s in summaries:
        for k in ("after_links", "after_prefix", "after_full"):
            summary["stages"][k] += s["stats"][k]
        summary["stages"]["size"] += s["stats"]["candidates"]
        summary["hash_errors"] += s["stats"]["errors"]
        summary["error_examples"] = (summary["error_examples"] + s["errors"])[:10]
    if summaries:
        size = np.concatenate([s["size"] for s in summaries])
        count = np.concatenate([s["count"] for s in summaries])
        inodes = np.concatenate([s["inodes"] for s in summaries])
        digest = np.concatenate([s["hash"] for s in summaries])
        gid = np.concatenate(ids)
        summary.update(groups=int(len(size)), files_in_groups=int(count.sum()),
                       duplicate_files=int((inodes - 1).sum()), reclaimable=int((size * (inodes - 1)).sum()))
        summary["by_copies"] = by_copies(size, inodes)
        top = np.argsort(gid)[: int(params.get("top") or 20)]
        summary["top"] = [{"group_id": int(gid[i]), "size": int(size[i]), "files": int(count[i]),
                           "reclaimable": int(size[i] * (inodes[i] - 1)), "hash": str(digest[i])} for i in top]
    return summary
