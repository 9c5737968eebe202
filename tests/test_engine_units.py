"""Engine pieces checked directly: chunk cutting, the batch loader, the walk under change."""
from __future__ import annotations

import os
import random
import shutil

import numpy as np
import pytest

from conftest import make_awkward_tree, make_grid
from exoflow.batch import feed, load, stream, stream_large
from exoflow.chunks import cut
from exoflow.options import ChunkOptions, LoadOptions, WalkOptions
from exoflow.sources.walk import Walker, native_available, root_item


def test_cut_respects_both_bounds():
    sizes = np.array([10, 10, 10, 100, 5, 5, 5, 5, 1000, 0, 0], dtype=np.int64)
    # hand-computed: at most 3 files and 30 bytes per chunk; a 100- or 1000-byte file stands alone
    assert cut(sizes, ChunkOptions(max_files=3, max_bytes=30)) == \
        [(0, 3), (3, 4), (4, 7), (7, 8), (8, 9), (9, 11)]
    rng = np.random.default_rng(1)
    sizes = rng.integers(0, 5000, 2000)
    ranges = cut(sizes, ChunkOptions(max_files=37, max_bytes=20_000))
    assert ranges[0][0] == 0 and ranges[-1][1] == len(sizes)
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    for s, e in ranges:
        assert e - s <= 37 and (sizes[s:e].sum() <= 20_000 or e - s == 1)


def _listing(paths):
    from exoflow.sources.entries import EntryCollector
    out = EntryCollector()
    out.start_run(1, "t")
    for p in paths:
        out.add(p, os.lstat(p))
    return out.table()


READERS = [pytest.param(True, id="compiled"), pytest.param(False, id="python")]


@pytest.mark.parametrize("native", READERS)
def test_batch_holds_exact_contents_and_streams_large_files(tmp_path, native):
    rng = random.Random(7)
    contents = {}
    for i in range(30):
        data = rng.randbytes(rng.choice([0, 1, 17, 4096, 70_000]))
        p = tmp_path / f"f{i}"
        p.write_bytes(data)
        contents[str(p)] = data
    os.mkfifo(tmp_path / "fifo")                  # must never be opened (it would block)
    paths = list(contents) + [str(tmp_path / "fifo")]
    batch = load(_listing(paths), LoadOptions(piece_bytes=5000), native=native)
    stream_large(batch, lambda b: {i: Collect() for i in np.flatnonzero(b.large).tolist()})
    assert batch.offsets[0] == 0 and len(batch.offsets) == len(paths) + 1
    for i, p in enumerate(paths[:-1]):
        if len(contents[p]) > 5000:
            assert batch.large[i] and bytes(batch.content(i)) == b""
            assert b"".join(batch.streamed[i].pieces) == contents[p]
            assert all(len(piece) <= 5000 for piece in batch.streamed[i].pieces)
        else:
            assert not batch.large[i] and bytes(batch.content(i)) == contents[p]
    assert batch.errors[-1] is None and bytes(batch.content(len(paths) - 1)) == b""
    # one contiguous buffer: every small file's bytes, in order, nothing else
    assert bytes(batch.data) == b"".join(c for c in contents.values() if len(c) <= 5000)


@pytest.mark.parametrize("native", READERS)
def test_batch_records_files_that_changed_or_vanished(tmp_path, native):
    if native and not native_available():
        pytest.skip("exoflow._native is not built")
    a, b, c, d, e, f = (tmp_path / n for n in "abcdef")
    for p in (a, b, c, d, e, f):
        p.write_bytes(b"12345")
    table = _listing([str(p) for p in (a, b, c, d, e, f)])
    a.unlink()                                   # vanished after listing
    b.write_bytes(b"1234567890" * 10)            # grew after listing (past the buffer's room)
    d.unlink()
    os.mkfifo(d)                                 # a FIFO swapped in: never read (it could block)
    e.unlink()
    os.symlink(c, e)                             # a symlink swapped in: not followed
    f.write_bytes(b"x" * 9000)                   # now larger than the piece size: streamed
    batch = load(table, LoadOptions(piece_bytes=8192), native=native)
    assert batch.errors[0].startswith("ENOENT")
    assert batch.errors[1] is None and bytes(batch.content(1)) == b"1234567890" * 10
    assert bytes(batch.content(2)) == b"12345"
    assert batch.errors[3] == "changed: no longer a regular file" and bytes(batch.content(3)) == b""
    assert batch.errors[4].startswith("ELOOP") and bytes(batch.content(4)) == b""
    assert batch.large[5] and not batch.large[:5].any() and batch.errors[5] is None
    assert bytes(batch.data) == b"1234567890" * 10 + b"12345"


def test_walk_records_a_file_that_vanishes_between_readdir_and_stat(tmp_path, monkeypatch):
    for n in ("keep", "gone"):
        (tmp_path / n).write_text(n)
    real_scandir = os.scandir

    class Vanishing:
        """scandir that deletes 'gone' right after listing it, as a busy tree would."""
        def __init__(self, fd):
            self.it = real_scandir(fd)
        def __enter__(self):
            entries = list(self.it)
            (tmp_path / "gone").unlink()
            return iter(entries)
        def __exit__(self, *a):
            self.it.close()

    monkeypatch.setattr("exoflow.sources.walk.os.scandir", Vanishing)
    w = Walker(WalkOptions())
    assert w.run([root_item(str(tmp_path), WalkOptions())], 100) == []
    t = w.out.table()
    rows = dict(zip(t.column("path").to_pylist(), t.column("error").to_pylist()))
    assert rows[str(tmp_path / "keep")] is None
    assert rows[str(tmp_path / "gone")].startswith("ENOENT")
    assert t.column("type").to_pylist()[t.column("path").to_pylist().index(str(tmp_path / "gone"))] == "file"


def test_walk_budget_hands_back_unvisited_directories(tmp_path):
    make_grid(tmp_path, 10, 10, lambda f: b"x")
    w = Walker(WalkOptions())
    left = w.run([root_item(str(tmp_path), WalkOptions())], 25)
    assert left and len(w.out) < 100
    while left:                                  # the handed-back directories finish the walk
        left = w.run(left, 25)
    assert len(w.out) == 100 and len(set(w.out.table().column("path").to_pylist())) == 100


@pytest.mark.skipif(not shutil.which("cc"), reason="no C compiler on this machine")
def test_compiled_lister_is_built_where_a_compiler_exists():
    """setup.py marks the extension optional: a failed build would otherwise go unnoticed."""
    assert native_available()


@pytest.mark.skipif(not native_available(), reason="exoflow._native is not built (no C compiler at install)")
def test_compiled_lister_gives_the_same_table_as_os_scandir(tmp_path):
    """The two listers (C and os.scandir) of one awkward tree, below the root so that the compiled one
    lists every special entry: identical rows, column by column."""
    nested = tmp_path / "top" / "nested"
    nested.mkdir(parents=True)
    special = make_awkward_tree(nested)
    try:
        tables = []
        for native in (True, False):
            w = Walker(WalkOptions(), native=native)
            left = w.run([root_item(str(tmp_path), WalkOptions())], 10**6)
            assert left == []
            tables.append(w.out.table().sort_by("path_bytes").sort_by("path"))
        assert tables[0].num_rows > 15
        assert tables[0].to_pydict() == tables[1].to_pydict()
    finally:
        special["locked"].chmod(0o755)
        special["listable"].chmod(0o755)


class Collect:
    """A consumer (``batch.Consumer``) keeping the pieces it is fed; after ``stop_after`` bytes it
    wants no more, and ``then`` runs once when the first piece comes."""

    def __init__(self, stop_after: int | None = None, then=None) -> None:
        self.pieces, self.stop_after, self.then = [], stop_after, then

    def update(self, piece) -> bool:
        self.pieces.append(bytes(piece))
        if self.then:
            self.then()
            self.then = None
        return self.stop_after is None or sum(map(len, self.pieces)) < self.stop_after


def test_streamed_file_that_changes_while_read_is_an_error(tmp_path):
    """A file that grows while fed: an error for each consumer still reading, none for one that had
    stopped; one open for them all (the oracle: the bytes written and a count of opens)."""
    p = tmp_path / "big"
    p.write_bytes(b"a" * 10_000)
    batch = load(_listing([str(p)]), LoadOptions(piece_bytes=4096))
    assert batch.large[0]

    def append():                              # appended after the first piece was read
        with open(p, "ab") as f:
            f.write(b"b" * 5000)
    head, whole = Collect(stop_after=4096, then=append), Collect()
    assert feed(batch.pieces, [{0: head}, {0: whole}]) == [{}, {0: "changed: file changed while being read"}]
    assert head.pieces == [b"a" * 4096]
    again = Collect()
    assert feed(batch.pieces, [{0: again}]) == [{}]        # unchanged now: fine
    assert b"".join(again.pieces) == b"a" * 10_000 + b"b" * 5000


def test_feed_reads_each_file_once_for_all_consumers_and_stops_when_none_wants_more(tmp_path, monkeypatch):
    import exoflow.batch as batch_mod
    data = {tmp_path / n: os.urandom(50_000) for n in "ab"}
    for p, d in data.items():
        p.write_bytes(d)
    paths = [str(p) for p in data]
    opened, reads, real_open, real_readv = [], [], batch_mod.open_path, batch_mod.os.readv
    monkeypatch.setattr(batch_mod, "open_path", lambda p, flags: opened.append(p) or real_open(p, flags))
    monkeypatch.setattr(batch_mod.os, "readv", lambda fd, bufs: reads.append(1) or real_readv(fd, bufs))
    one, two, head = Collect(), Collect(), Collect(stop_after=1)
    assert feed(lambda i: stream(paths[i], 8192), [{0: one, 1: head}, {0: two}]) == [{}, {}]
    assert opened == paths
    assert b"".join(one.pieces) == b"".join(two.pieces) == data[tmp_path / "a"]
    assert head.pieces == [data[tmp_path / "b"][:8192]]
    assert len(reads) == 7 + 1 + 1                # a: 7 pieces and the end; b: one piece, then not read


def test_listing_tasks_go_to_the_least_busy_worker():
    from exoflow.runner import _Load
    load = _Load({})
    assert load.least_busy() is None                     # a real cluster whose workers have not joined yet
    load.update({"a": 1, "b": 1})
    first = load.add(load.least_busy(), "list")
    second = load.add(load.least_busy(), "list")
    assert {first[0], second[0]} == {"a", "b"}           # one listing each before any gets two
    for _ in range(3):
        load.add("a", "chunk")                           # a's listing left chunks there
    load.done(first if first[0] == "a" else second, "list", 0.2)
    load.done(first if first[0] == "b" else second, "list", 0.2)
    assert load.least_busy() == "b"                      # same listings in flight: less work wins
    load.add("b", "chunk")
    load.update({"b": 1, "c": 2})                        # a left, c joined
    assert set(load.busy) == {"b", "c"} and load.least_busy() == "c"


@pytest.mark.parametrize("native", READERS)
def test_extension_matches_os_path_splitext(native):
    """The extension kernel (the C pass and Arrow's RE2) against Python's os.path.splitext on
    tricky and random names, on a slice and on a chunked array."""
    if native and not native_available():
        pytest.skip("exoflow._native is not built")
    import pyarrow as pa

    from exoflow.kernels.stat import extension

    names = ["a.b", ".bashrc", "..foo", "a..b", "dir.d/file", "dir.d/.x", "x.", "x.tar.GZ", "/", "", "é.ÉXT",
             "/usr/lib/x.so.6", "a/b/.c.d", "a/b/..c.d", "...", "a/.", "a/..", "noext", "a.b/c", "./x.py", "é/ü.Ü",
             "X.TXT", "a.ÉXT", "d.ir/.", "x/y.Z"]
    rng = random.Random(1)
    names += ["".join(rng.choice("aB./éÉ") for _ in range(rng.randint(0, 8))) for _ in range(3000)]

    def oracle(p: str) -> str:
        return os.path.splitext(p.rsplit("/", 1)[-1])[1][1:].lower()

    assert extension(pa.array(names), native).to_pylist() == [oracle(n) for n in names]
    assert extension(pa.array(names).slice(5, 100), native).to_pylist() == [oracle(n) for n in names[5:105]]
    chunked = pa.chunked_array([pa.array(names[:10]), pa.array(names[10:20])])
    assert extension(chunked, native).to_pylist() == [oracle(n) for n in names[:20]]
    assert extension(pa.array([], pa.string()), native).to_pylist() == []


@pytest.mark.parametrize("native", READERS)
def test_reader_refuses_a_name_with_a_nul_byte(tmp_path, native):
    """A NUL byte in a name (possible in a crafted manifest) must not open the file its prefix names."""
    if native and not native_available():
        pytest.skip("exoflow._native is not built")
    from exoflow.batch import read_files

    a = tmp_path / "a"
    a.write_bytes(b"hello")
    data, offsets, errors, large = read_files([str(a) + "\0junk", str(a)], np.array([True, True]), 64, 1024,
                                              native=native)
    assert errors[0].startswith("EINVAL") and errors[1] is None
    assert bytes(data) == b"hello" and offsets.tolist() == [0, 0, 5]


def test_python_reader_notices_a_rewrite_at_the_same_size(tmp_path, monkeypatch):
    """A file rewritten in place while it is read is reported, never returned with mixed bytes.
    (The C reader makes the same two fstat calls around its read; they cannot be interposed here.)"""
    import exoflow.batch as B

    a = tmp_path / "a"
    a.write_bytes(b"hello")
    real_fstat = os.fstat
    calls = []

    def fstat_then_rewrite(fd):
        st = real_fstat(fd)
        calls.append(st)
        if len(calls) == 1:                   # after the first fstat the file changes, same size
            with open(a, "r+b") as f:
                f.write(b"HELLO")
            # its mtime moves, as it does for any rewrite a clock tick later (no waiting for one)
            os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        return st
    monkeypatch.setattr(B.os, "fstat", fstat_then_rewrite)
    data, offsets, errors, large = B.read_files([str(a)], np.array([True]), 64, 1024, native=False)
    assert errors[0] == "changed: file changed while being read" and bytes(data) == b""


@pytest.mark.skipif(not native_available(), reason="exoflow._native is not built (no C compiler at install)")
def test_mtime_beyond_2262_is_saturated_by_both_listers(tmp_path):
    """int64 nanoseconds end in 2262: a later mtime is stored as the largest value, never wrapped
    around and never aborting the walk."""
    d = tmp_path / "top" / "sub"
    d.mkdir(parents=True)
    f = d / "future"
    f.write_bytes(b"x")
    try:
        os.utime(f, ns=(0, 10_400_000_000_000_000_000))        # the year 2299
    except (OSError, OverflowError):
        pytest.skip("this file system cannot store the year 2299")
    for native in (True, False):
        w = Walker(WalkOptions(), native=native)
        w.run([root_item(str(tmp_path), WalkOptions())], 10**6)
        t = w.out.table()
        row = t.column("path").to_pylist().index(str(f))
        assert t.column("mtime_ns")[row].as_py() == np.iinfo(np.int64).max


def test_largest_equals_a_sort_by_value_then_name():
    """Ties go by name (path): the same files whatever the chunks and the merge order."""
    import pyarrow as pa
    from exoflow.tables import largest
    rng = np.random.default_rng(5)
    for n, k, hi in ((0, 20, 5), (10, 20, 5), (1000, 20, 7), (1000, 1, 3), (5000, 20, 10**9), (50, 0, 3)):
        names = [f"/t/{i}" for i in rng.permutation(n)]
        for values in (rng.integers(0, hi, n), np.round(rng.random(n) * hi, 1)):   # sizes; entropies
            want = sorted(range(n), key=lambda i: (-values[i], names[i]))[:k]
            assert largest(values, k, pa.array(names, pa.string())).tolist() == want


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")   # the dropped interrupt
def test_a_ctrl_c_python_drops_in_a_finalizer_still_stops_the_run():
    """A KeyboardInterrupt raised while a __del__ runs is printed and dropped by Python (a run
    through the driver once finished with exit 0 after Ctrl-C, the interrupt lost in Dask's
    Future.__del__). The run's handler notes it and the run's loop raises it. Oracle: Python's own
    behaviour without the note (nothing raised), and the raise with it."""
    import signal
    from exoflow import errors

    class Finalized:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(10_000):         # the handler runs here, inside the finalizer
                pass

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        Finalized()                          # made and dropped: the interrupt is lost
        errors.catch_interrupts()
        errors.check_interrupt()             # nothing noted yet
        Finalized()
        with pytest.raises(KeyboardInterrupt):
            errors.check_interrupt()
    finally:
        errors._interrupted = False
        signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("native", READERS)
def test_path_keys_are_xxh3_128_of_the_exact_path_bytes(monkeypatch, native):
    """path_keys (C over Arrow's buffer, or Python per row) against the xxhash package's XXH3-128 of
    each exact path (non-UTF-8 names through path_bytes, empty names, a slice, several chunks);
    PathIndex finds each path's rows, and nothing for an absent path."""
    import pyarrow as pa
    import xxhash

    import exoflow.kernels.hashing as hashing
    import exoflow.paths as paths
    if native and not native_available():
        pytest.skip("exoflow._native is not built")
    if not native:
        monkeypatch.setattr(hashing, "native", None)
    rng = random.Random(2)
    names = [b"", b"/usr/bin/python3", "é/ü".encode(), b"bad\xff\xfename", b"a" * 300, b"x\xc3"]
    names += [bytes(rng.choice(b"ab/\xff\xc3\xa9") for _ in range(rng.randint(0, 40))) for _ in range(500)]
    path, path_bytes = paths.path_columns(pa.array(names, pa.binary()))
    table = pa.Table.from_arrays([path, path_bytes], ["path", "path_bytes"])
    want = np.array([[v >> 64, v & (2**64 - 1)] for v in map(xxhash.xxh3_128_intdigest, names)], np.uint64)
    assert (hashing.path_keys(table) == want).all()
    assert (hashing.path_keys(table.slice(7, 50)) == want[7:57]).all()
    two = pa.concat_tables([table.slice(0, 3), table.slice(3)])
    assert (hashing.path_keys(two) == want).all()
    # every name valid UTF-8 (no path_bytes): hashed in place over the string column's chunks
    utf8 = [i for i, n in enumerate(names) if table.column("path_bytes")[i].as_py() is None]
    plain = pa.concat_tables([table.take(utf8[:5]), table.take(utf8[5:])])
    assert plain.column("path").num_chunks == 2 and len(utf8) > 20
    assert (hashing.path_keys(plain) == want[utf8]).all()
    assert (hashing.path_keys(plain.slice(3, 40)) == want[utf8][3:43]).all()
    index = hashing.PathIndex(want)
    first, end = index.find(np.vstack([want[3], want[3] + np.uint64(1)]))
    assert index.order[first[0]] in [i for i, n in enumerate(names) if n == names[3]] and end[0] > first[0]
    assert first[1] == end[1]
    # by hand: two rows of one path, one row, two paths sharing a 64-bit hi
    hand = hashing.PathIndex(np.array([[5, 1], [3, 2], [5, 1], [7, 9], [7, 8]], np.uint64))
    first, end = hand.find(np.array([[5, 1], [3, 2], [7, 9], [7, 8], [4, 4]], np.uint64))
    assert [sorted(hand.order[a:b].tolist()) for a, b in zip(first, end)] == [[0, 2], [1], [], [], []]
