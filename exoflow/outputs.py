"""The run's output directory, local or in object storage: one set of calls for both.

``OUT`` is a local directory or an fsspec URL (``s3://bucket/prefix``). Workers write their parts
straight to it and the after-steps, report.html and summary.json read and write it through these
calls: a local path goes to the ``os`` calls (and Arrow's own file system), a URL to its fsspec
file system. Paths are joined with ``os.path.join`` (``s3://b/p`` + ``files`` is ``s3://b/p/files``).

The store's options (endpoint, credentials: ``--storage-options``) travel once per process, not in
every task: ``register(root, storage)`` (on the client, and on every worker through
``Executor.everywhere``) and every call on a path under ``root`` uses them.

Writes are atomic for readers: locally a temporary name, then a rename (``fileio.atomic_write``);
on a store the object is put whole when the block ends (a PUT is atomic), and nothing is put when
it raises.
"""
from __future__ import annotations

import contextlib
import io
import os
import shutil
from typing import IO, Any, Iterator

from exoflow.fileio import atomic_write as local_atomic_write
from exoflow.sources.objects import filesystem, is_url

_stores: dict[str, str] = {}        # URL root -> its storage options (JSON text)


def register(root: str, storage: str) -> None:
    """Paths under the URL ``root`` are reached with ``storage``'s options in this process."""
    _stores[root.rstrip("/")] = storage


def unregister(root: str, storage: str = "") -> None:
    """``register``'s counterpart (``storage``: ignored, for ``Executor.everywhere``)."""
    _stores.pop(root.rstrip("/"), None)


def storage_of(url: str) -> str:
    """The options registered for the longest root above ``url`` ("" for fsspec's own configuration)."""
    roots = [r for r in _stores if url == r or url.startswith(r + "/")]
    return _stores[max(roots, key=len)] if roots else ""


def fsspec_options(path: str) -> dict[str, Any] | None:
    """The fsspec options for ``path`` as a dict (for Dask's ``storage_options=``); None for a local path."""
    from exoflow.sources.objects import parse_options
    return parse_options(storage_of(path)) if is_url(path) else None


def store(url: str):
    """(fsspec file system, the path it takes) for a URL under a registered root."""
    return filesystem(url, storage_of(url))


def _arrow(path: str) -> dict[str, Any]:
    """Arrow's arguments for ``path``: the path and, for a URL, its file system."""
    if not is_url(path):
        return {}
    fs, _ = store(path)
    return {"filesystem": fs}


def _bare(path: str) -> str:
    return store(path)[1] if is_url(path) else path


# ---- writing ----------------------------------------------------------------------------

@contextlib.contextmanager
def atomic_write(path: str, mode: str = "w", errors: str = "strict") -> Iterator[IO]:
    """Write ``path`` (a file or an object) whole or not at all: readers see the old one or the whole
    new one; on an exception nothing is written and the exception goes on. Text is UTF-8
    (``errors`` as ``open``'s). Raises OSError (locally) or the store's errors."""
    if not is_url(path):
        with local_atomic_write(path, mode, errors) as f:
            yield f
        return
    buffer = io.BytesIO()
    f = buffer if "b" in mode else io.TextIOWrapper(buffer, encoding="utf-8", errors=errors, write_through=True)
    yield f
    fs, bare = store(path)
    fs.pipe_file(bare, buffer.getvalue())


def makedirs(path: str) -> None:
    """A directory for files to come (a store has no directories: nothing to do)."""
    if not is_url(path):
        os.makedirs(path, exist_ok=True)


def remove(path: str) -> None:
    """Remove one file (object); raises FileNotFoundError where there is none."""
    if not is_url(path):
        os.unlink(path)
        return
    fs, bare = store(path)
    fs.rm_file(bare)


def rmtree(path: str) -> None:
    """Remove a directory (every object under a URL) and what it holds; nothing there is no error."""
    if not is_url(path):
        shutil.rmtree(path, ignore_errors=True)
        return
    fs, bare = store(path)
    with contextlib.suppress(FileNotFoundError):
        fs.rm(bare.rstrip("/"), recursive=True)


# ---- reading ----------------------------------------------------------------------------

def open_read(path: str, mode: str = "rb") -> IO:
    """``path`` opened for reading (text as UTF-8). Raises OSError (FileNotFoundError …)."""
    if not is_url(path):
        return open(path, mode, **({} if "b" in mode else {"encoding": "utf-8"}))
    fs, bare = store(path)
    return fs.open(bare, mode, **({} if "b" in mode else {"encoding": "utf-8"}))


def exists(path: str) -> bool:
    if not is_url(path):
        return os.path.exists(path)
    fs, bare = store(path)
    return fs.exists(bare)


def isdir(path: str) -> bool:
    """A directory (a prefix that holds objects)."""
    if not is_url(path):
        return os.path.isdir(path)
    fs, bare = store(path)
    return fs.isdir(bare)


def listdir(path: str) -> list[str]:
    """The names in a directory (under a prefix, one level), [] where there is none."""
    if not is_url(path):
        return os.listdir(path) if os.path.isdir(path) else []
    fs, bare = store(path)
    try:
        return [p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(bare.rstrip("/"), detail=False, refresh=True)]
    except FileNotFoundError:
        return []


def parts(directory: str) -> list[str]:
    """The Parquet parts (``*.parquet``) directly in ``directory``, sorted, each spelled as ``directory``
    is (path or URL)."""
    return sorted(os.path.join(directory, n) for n in listdir(directory) if n.endswith(".parquet"))


def dataset(source: str | list[str]):
    """``pyarrow.dataset.dataset`` of a Parquet directory or list of parts (paths or URLs, not mixed)."""
    import pyarrow.dataset as ds
    first = source[0] if isinstance(source, list) and source else source
    if isinstance(first, str) and is_url(first):
        bare = [_bare(p) for p in source] if isinstance(source, list) else _bare(source)
        return ds.dataset(bare, format="parquet", **_arrow(first))
    return ds.dataset(source, format="parquet")


def read_table(path: str, columns: list[str] | None = None):
    """A Parquet part's ``columns`` (all by default), decoded in the calling thread: a task runs
    beside others on every core already, and Arrow's thread pool costs more than it gains on parts
    of this size (8x the CPU of a 2 MB signature part on a busy 2-core machine). Raises OSError or
    ArrowException as ``pq.read_table``."""
    import pyarrow.parquet as pq
    return pq.read_table(_bare(path), columns=columns, use_threads=False, **_arrow(path))


def parquet_file(path: str):
    import pyarrow.parquet as pq
    return pq.ParquetFile(_bare(path), **_arrow(path))


def read_schema(path: str):
    import pyarrow.parquet as pq
    return pq.read_schema(_bare(path), **_arrow(path))
