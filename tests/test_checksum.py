"""Checksum job: digests against hashlib/blake3/xxhash and the coreutils/b3sum/xxhsum tools,
text manifests accepted by their --check modes, and the audit against planted changes."""
from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import blake3
import pytest
import xxhash

from conftest import exoflow, read_dataset
from exoflow.batch import load, stream_large
from exoflow.kernels.hashing import COLUMNS, digest_consumers, hash_batch
from exoflow.options import LoadOptions, WalkOptions
from exoflow.sources.walk import Walker, native_available, root_item

ORACLES = {"xxh3-128": lambda b: xxhash.xxh3_128_hexdigest(b), "blake3": lambda b: blake3.blake3(b).hexdigest(),
           "sha256": lambda b: hashlib.sha256(b).hexdigest(), "sha1": lambda b: hashlib.sha1(b).hexdigest(),
           "md5": lambda b: hashlib.md5(b).hexdigest()}
TOOLS = {"sha256": ["sha256sum"], "sha1": ["sha1sum"], "md5": ["md5sum"], "blake3": ["b3sum"],
         "xxh3-128": ["xxh128sum"]}
TEXT = {"sha256": "checksums.sha256", "sha1": "checksums.sha1", "md5": "checksums.md5", "blake3": "checksums.b3",
        "xxh3-128": "checksums.xxh128"}


def make_tree(root: Path) -> dict[str, bytes]:
    """Files of many sizes (some above the tiny piece size used in the runs), awkward names."""
    files = {
        "empty": b"",
        "one": b"1",
        "text.txt": b"hello world\n" * 100,
        "sub/big.bin": os.urandom(300_000),           # streamed in pieces with --piece-size 64k
        "sub/exact": os.urandom(65536),               # exactly one piece
        "sub/deeper/mid.bin": os.urandom(70_000),
        "back\\slash": b"backslash",
        "new\nline": b"newline",
        "sp ace": b"space",
    }
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    bad = os.fsencode(str(root)) + b"/latin1-\xe9.dat"   # not valid UTF-8
    with open(bad, "wb") as f:
        f.write(b"latin1")
    os.symlink("one", root / "link-to-one")                # not hashed: not a regular file
    return files


def _digests(out: Path) -> dict[bytes, dict]:
    t = read_dataset(out / "files").to_pylist()
    return {(r["path_bytes"] or r["path"].encode()): r for r in t}


def test_hash_batch_matches_oracles_in_buffer_and_streamed(tmp_path):
    files = make_tree(tmp_path)
    opts = WalkOptions()
    w = Walker(opts)
    w.run([root_item(str(tmp_path), opts)], 10_000)
    table = w.out.table()
    batch = load(table, LoadOptions(piece_bytes=1000), {})     # most files streamed in 1000-byte pieces
    assert batch.large.sum() >= 3
    stream_large(batch, lambda b: digest_consumers(b, list(COLUMNS)))
    cols, errors = hash_batch(batch, list(COLUMNS))
    seen = 0
    for i, (path, kind) in enumerate(zip(batch.paths, table.column("type").to_pylist())):
        if kind != "file":
            assert all(cols[c][i] is None for c in COLUMNS.values())
            continue
        data = Path(path).read_bytes()
        for alg, col in COLUMNS.items():
            assert cols[col][i] == ORACLES[alg](data), (path, alg)
        seen += 1
    assert seen == len(files) + 1 and not any(errors)


@pytest.mark.parametrize("compiled", [True, False])
def test_span_hexdigests_equal_the_hash_libraries(compiled, monkeypatch):
    """Every algorithm over spans of one buffer (empty spans, spans longer than XXH3's 240-byte
    short path) equals the library's digest of that slice; rows not asked for are None. Without the
    compiled module xxh3-128 goes one call per span, to the same digests."""
    import numpy as np
    from exoflow.kernels import hashing
    if not compiled:
        monkeypatch.setattr(hashing, "native", None)
    rng = np.random.default_rng(7)
    data = rng.integers(0, 256, 200_000, dtype=np.uint8).tobytes()
    offsets = np.unique(np.concatenate([[0, 0, 3, 3, 240, 241, 5000], rng.integers(0, len(data), 300),
                                        [len(data)]])).astype(np.int64)
    offsets = np.insert(offsets, 2, offsets[2])               # an empty span
    rows = np.arange(0, len(offsets) - 1, 3)
    oracle = {"xxh3-128": xxhash.xxh3_128_hexdigest, "blake3": lambda b: blake3.blake3(b).hexdigest(),
              "sha256": lambda b: hashlib.sha256(b).hexdigest(), "sha1": lambda b: hashlib.sha1(b).hexdigest(),
              "md5": lambda b: hashlib.md5(b).hexdigest()}
    for name, fn in oracle.items():
        got = hashing.span_hexdigests(name, data, offsets, rows)
        want = [fn(data[offsets[i]:offsets[i + 1]]) if i in set(rows.tolist()) else None
                for i in range(len(offsets) - 1)]
        assert got.tolist() == want, name


def test_manifest_equals_oracles_and_tools_check_text(tmp_path):
    tree = tmp_path / "t"
    tree.mkdir()
    make_tree(tree)
    out = tmp_path / "out"
    r = exoflow("run", "checksum", "t", "--out", str(out), "--hash", ",".join(COLUMNS), "--text",
                "--piece-size", "64k", "--chunk-files", "3", "--no-dashboard", "--workers", "1", cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    rows = _digests(out)
    regular = [p for p, row in rows.items() if row["type"] == "file"]
    assert len(regular) == 10
    for path in regular:
        data = (tmp_path / os.fsdecode(path)).read_bytes()
        for alg, col in COLUMNS.items():
            assert rows[path][col] == ORACLES[alg](data), (path, alg)
    link = rows[b"t/link-to-one"]
    assert link["type"] == "symlink" and link["sha256"] is None
    for alg, tool in TOOLS.items():
        # the tools' own output for the same files (xxhsum cannot write names with a newline,
        # b3sum cannot check names that are not UTF-8: those are left out of those formats)
        names = [os.fsdecode(p) for p in regular if not (alg == "xxh3-128" and b"\n" in p)
                 and not (alg == "blake3" and b"\xe9" in p)]
        theirs = subprocess.run([*tool, "--", *names], cwd=tmp_path, capture_output=True, check=True).stdout
        ours = (out / TEXT[alg]).read_bytes()
        assert sorted(ours.splitlines()) == sorted(theirs.splitlines()), alg
        check = subprocess.run([*tool, "-c", str(out / TEXT[alg])], cwd=tmp_path, capture_output=True)
        assert check.returncode == 0, (alg, check.stdout, check.stderr)
        assert check.stdout.count(b": OK") == len(names)


def test_audit_finds_exactly_the_planted_changes(tmp_path):
    tree = tmp_path / "t"
    tree.mkdir()
    make_tree(tree)
    old = tmp_path / "old"
    r = exoflow("run", "checksum", "t", "--out", str(old), "--hash", "sha256", "--no-dashboard", "--workers", "1",
                cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    # unchanged tree: exit 0, nothing differs
    same = exoflow("run", "checksum", "t", "--out", str(tmp_path / "same"), "--verify", str(old), "--json",
                   "--no-dashboard", "--workers", "1", cwd=str(tmp_path))
    assert same.returncode == 0, same.stderr
    (tree / "text.txt").write_bytes(b"modified\n")                 # modify
    (tree / "sub" / "added.txt").write_bytes(b"brand new")         # add
    (tree / "one").unlink()                                        # remove
    os.rename(tree / "sub" / "big.bin", tree / "renamed.bin")      # move/rename
    new = tmp_path / "new"
    r = exoflow("run", "checksum", "t", "--out", str(new), "--verify", str(old), "--no-dashboard", "--workers", "1",
                cwd=str(tmp_path))
    assert r.returncode == 1, r.stderr
    audit = read_dataset(new / "audit").to_pylist()
    changed = {(a["status"], a["path"], a["old_path"]) for a in audit if a["status"] != "unchanged"}
    assert changed == {("modified", "t/text.txt", "t/text.txt"), ("added", "t/sub/added.txt", None),
                       ("removed", None, "t/one"), ("moved", "t/renamed.bin", "t/sub/big.bin")}
    assert sum(a["status"] == "unchanged" for a in audit) == 10 - 3
    assert "moved" in r.stdout and "t/renamed.bin" in r.stdout


def test_trust_mtime_skips_rehashing_only_unchanged_metadata(tmp_path):
    tree = tmp_path / "t"
    tree.mkdir()
    make_tree(tree)
    old = tmp_path / "old"
    assert exoflow("run", "checksum", "t", "--out", str(old), "--no-dashboard", "--workers", "1",
                   cwd=str(tmp_path)).returncode == 0
    # same size and mtime, different bytes: with --trust-mtime the old digest is reused (not re-read)
    p = tree / "sub" / "deeper" / "mid.bin"
    st = p.stat()
    p.write_bytes(os.urandom(st.st_size))
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    (tree / "text.txt").write_bytes(b"different length")          # metadata changed: re-hashed
    r = exoflow("run", "checksum", "t", "--out", str(tmp_path / "trust"), "--verify", str(old), "--trust-mtime",
                "--no-dashboard", "--workers", "1", cwd=str(tmp_path))
    assert r.returncode == 1, r.stderr
    audit = {a["path"]: a for a in read_dataset(tmp_path / "trust" / "audit").to_pylist()}
    assert audit["t/sub/deeper/mid.bin"]["status"] == "unchanged" and audit["t/sub/deeper/mid.bin"]["trusted"]
    assert audit["t/text.txt"]["status"] == "modified" and not audit["t/text.txt"]["trusted"]
    assert "trusted (not re-hashed" in r.stdout
    # without --trust-mtime the silent change is found
    r = exoflow("run", "checksum", "t", "--out", str(tmp_path / "full"), "--verify", str(old),
                "--no-dashboard", "--workers", "1", cwd=str(tmp_path))
    audit = {a["path"]: a for a in read_dataset(tmp_path / "full" / "audit").to_pylist()}
    assert audit["t/sub/deeper/mid.bin"]["status"] == "modified"


@pytest.mark.parametrize("args,message", [
    (["--hash", "crc99"], "unknown hash"),
    (["--verify", "/nonexistent/manifest"], "no Parquet manifest"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, args, message):
    r = exoflow("run", "checksum", str(tmp_path), "--out", str(tmp_path / "o"), *args)
    assert r.returncode == 2
    assert message in r.stderr and len(r.stderr.strip().splitlines()) <= 2


def test_verify_with_more_algorithms_than_the_old_manifest_holds(tmp_path):
    """Only digests both manifests hold are compared: an unchanged tree has no differences."""
    tree = tmp_path / "t"
    tree.mkdir()
    for i in range(3):
        (tree / f"f{i}").write_bytes(b"content %d" % i)
    assert exoflow("run", "checksum", str(tree), "--out", str(tmp_path / "old"), "-q",
                   "--no-dashboard").returncode == 0
    r = exoflow("run", "checksum", str(tree), "--verify", str(tmp_path / "old"), "--hash", "xxh3-128,sha256",
                "--out", str(tmp_path / "new"), "--json", "--no-dashboard")
    assert r.returncode == 0, r.stderr
    import json
    audit = json.loads(r.stdout)["result"]["audit"]
    assert audit["differences"] == 0 and audit["counts"]["unchanged"] == 3
    (tree / "f1").write_bytes(b"changed")
    r = exoflow("run", "checksum", str(tree), "--verify", str(tmp_path / "old"), "--hash", "xxh3-128,sha256",
                "--out", str(tmp_path / "new2"), "--json", "--no-dashboard")
    assert r.returncode == 1 and json.loads(r.stdout)["result"]["audit"]["counts"]["modified"] == 1


def test_default_pieces_and_read_batches_hash_every_file(tmp_path):
    """Without --piece-size: files around HASH_PIECE (streamed above it) and enough smaller files
    to fill several HASH_BATCH read batches in one chunk."""
    from exoflow.ops.checksum.kernel import HASH_BATCH, HASH_PIECE
    tree = tmp_path / "t"
    tree.mkdir()
    sizes = [HASH_PIECE - 1, HASH_PIECE, HASH_PIECE + 1, 3 * HASH_PIECE + 7] + [HASH_BATCH // 5] * 12 + [0, 1]
    files = {f"f{i:02d}": os.urandom(s) for i, s in enumerate(sizes)}
    for name, data in files.items():
        (tree / name).write_bytes(data)
    r = exoflow("run", "checksum", "t", "--out", str(tmp_path / "out"), "--hash", "xxh3-128,sha256",
                "--no-dashboard", "-q", cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    rows = _digests(tmp_path / "out")
    assert {os.fsdecode(p)[2:]: (row["xxh3_128"], row["sha256"]) for p, row in rows.items()} == \
        {name: (ORACLES["xxh3-128"](data), ORACLES["sha256"](data)) for name, data in files.items()}
    # the default, xxh3-128 alone: hashed while read (Reads.xxh3_only), the same digests
    r = exoflow("run", "checksum", "t", "--out", str(tmp_path / "out2"), "--no-dashboard", "-q", cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    rows = _digests(tmp_path / "out2")
    assert {os.fsdecode(p)[2:]: (row["xxh3_128"], row["sha256"]) for p, row in rows.items()} == \
        {name: (ORACLES["xxh3-128"](data), None) for name, data in files.items()}


@pytest.mark.skipif(not native_available(), reason="exoflow._native is not built (no C compiler at install)")
def test_xxh3_alone_is_hashed_while_read_other_algorithms_are_loaded(tmp_path):
    """The checksum job's reads: with xxh3-128 alone one batch per chunk, hashed while read and
    holding no bytes; with any other algorithm the loaded sub-batches, as before."""
    from exoflow.batch import batches
    from exoflow.ops.checksum.kernel import HASH_BATCH, HASH_PIECE, READS
    paths = []
    for i in range(2 * HASH_BATCH // (HASH_PIECE // 2)):      # two read batches of files under a piece
        (tmp_path / f"f{i}").write_bytes(os.urandom(HASH_PIECE // 2))
        paths.append(str(tmp_path / f"f{i}"))
    table = _listed(paths)
    fused = list(batches(table, READS, LoadOptions(), {}))
    assert len(fused) == 1 and fused[0].xxh3 is not None and fused[0].data.size == 0
    for params in ({"hash": ("sha256",)}, {"hash": ("xxh3-128", "blake3")}):
        loaded = list(batches(table, READS, LoadOptions(), params))
        assert len(loaded) >= 2 and all(b.xxh3 is None and b.data.size for b in loaded)


AWKWARD = [b"plain", b"new\nline", b"cr\rx", b"back\\slash", b"lit\\n", b"latin1-\xe9", b"repl-\xef\xbf\xbd",
           b"tab\tx", b" lead", b"trail "]


def tool_holds(tool: list[str], cwd: Path, name: bytes) -> bool:
    """The oracle: the tool writes its own line for ``name`` and its --check accepts that line."""
    line = subprocess.run([*tool, "--", name], cwd=cwd, capture_output=True, check=True).stdout
    (cwd / "one-line.txt").write_bytes(line)
    return subprocess.run([*tool, "-c", "one-line.txt"], cwd=cwd, capture_output=True).returncode == 0


def test_text_manifests_list_the_names_their_format_cannot_hold(tmp_path):
    import codecs
    import json
    tree = tmp_path / "t"
    tree.mkdir()
    for name in AWKWARD:
        with open(os.fsencode(str(tree)) + b"/" + name, "wb") as f:
            f.write(b"content of " + name)
    names = {b"t/" + n for n in AWKWARD}
    out = tmp_path / "out"
    r = exoflow("run", "checksum", "t", "--out", str(out), "--hash", "blake3,xxh3-128,sha256", "--text", "--json",
                "--no-dashboard", "--workers", "1", cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)["result"]
    left_out = {}
    for alg in ("blake3", "xxh3-128", "sha256"):
        held = {n for n in names if tool_holds(TOOLS[alg], tmp_path, n)}
        left = names - held
        check = subprocess.run([*TOOLS[alg], "-c", str(out / TEXT[alg])], cwd=tmp_path, capture_output=True)
        assert check.returncode == 0 and check.stdout.count(b": OK") == len(held), (alg, check.stdout, check.stderr)
        unlisted = out / f"{TEXT[alg]}.unlisted.txt"
        assert result["text_unlisted"][alg] == {"names": len(left), "list": str(unlisted) if left else None}
        if left:
            lines = unlisted.read_bytes().splitlines()
            assert {codecs.escape_decode(line)[0] for line in lines} == left and len(lines) == len(left), alg
            warning = f"warning: {TEXT[alg]} leaves out {len(left)} of the files"
            assert sum(warning in line and str(unlisted) in line for line in r.stderr.splitlines()) == 1, r.stderr
        else:
            assert not unlisted.exists()
        left_out[alg] = left
    # what the tools themselves cannot hold: b3sum names that are not UTF-8 or hold U+FFFD, xxhsum newlines
    assert left_out == {"blake3": {b"t/latin1-\xe9", b"t/repl-\xef\xbf\xbd"}, "xxh3-128": {b"t/new\nline"},
                        "sha256": set()}
    assert len(result["warnings"]) == 2


def _listed(paths: list[str]):
    from exoflow.sources.entries import EntryCollector
    out = EntryCollector()
    out.start_run(1, "t")
    for p in paths:
        out.add(p, os.lstat(p))
    return out.table()


@pytest.mark.skipif(not native_available(), reason="exoflow._native is not built (no C compiler at install)")
def test_files_hashed_while_read_equal_xxh128sum_and_the_loading_path(tmp_path):
    """xxh3-128 alone: each file hashed as it is read, in one compiled pass through one buffer
    (``digest_batch``). Its digests against xxh128sum's, and its per-file errors against the
    loading path's (``load`` + ``stream_large``) on the same listing: sizes around the buffer,
    a vanished file, a FIFO and a symlink swapped in after listing, a file that grew past the
    buffer, and a /proc file whose listed size (0) is not its length."""
    import numpy as np
    from exoflow.batch import digest_batch
    piece = 4096
    sizes = [0, 1, 239, 241, piece - 1, piece, piece + 1, 3 * piece + 7, 70_000]
    files = {str(tmp_path / f"s{s}"): os.urandom(s) for s in sizes}
    for p, data in files.items():
        Path(p).write_bytes(data)
    odd = {n: tmp_path / n for n in ("gone", "fifo", "link", "grew", "grew-big")}
    for p in odd.values():
        p.write_bytes(b"12345")
    odd["grew-big"].write_bytes(b"x" * (2 * piece))
    paths = list(files) + [str(p) for p in odd.values()] + ["/proc/self/status"]
    table = _listed(paths)
    odd["gone"].unlink()
    odd["fifo"].unlink()
    os.mkfifo(odd["fifo"])
    odd["link"].unlink()
    os.symlink(next(iter(files)), odd["link"])
    odd["grew"].write_bytes(b"1" * (piece + 10))           # now over the buffer: read in pieces
    with open(odd["grew-big"], "ab") as f:
        f.write(b"y")
    got = digest_batch(table, paths, np.ones(len(paths), bool), piece, {})
    hashed, errors = hash_batch(got, ["xxh3-128"])
    n = len(files)
    assert errors[:n] == [None] * n
    assert errors[n].startswith("ENOENT") and errors[n + 2].startswith("ELOOP")
    assert errors[n + 1] == "changed: no longer a regular file"
    assert errors[n + 3] is None and errors[n + 4] is None      # hashed as they are when read
    assert errors[-1] == "changed: file grew while being read"   # /proc: listed as 0 bytes
    readable = [p for p, e in zip(paths, errors) if e is None]
    theirs = dict(line.split(b"  ", 1)[::-1] for line in subprocess.run(
        ["xxh128sum", "--", *readable], capture_output=True, check=True).stdout.splitlines())
    for i, p in enumerate(paths):
        want = theirs[os.fsencode(p)].decode() if errors[i] is None else None
        assert hashed["xxh3_128"][i] == want, p
    assert got.data.size == 0 and not got.large.any()
    loaded = load(table, LoadOptions(piece_bytes=piece), {})
    stream_large(loaded, lambda b: digest_consumers(b, ["xxh3-128"]))
    assert hash_batch(loaded, ["xxh3-128"]) == (hashed, errors)


def _sysfs_files(size: int) -> list[str]:
    """Readable sysfs settings (they change only when written, unlike counters) whose stated size is
    ``size`` and whose content is shorter (sysfs states 4096 bytes for any length)."""
    found = []
    for name in ("enabled", "defrag", "use_zero_page", "hpage_pmd_size", "shmem_enabled"):
        p = f"/sys/kernel/mm/transparent_hugepage/{name}"
        try:
            if os.lstat(p).st_size == size and 0 < len(Path(p).read_bytes()) < size:
                found.append(p)
        except OSError:
            continue
    return found


@pytest.mark.skipif(not native_available(), reason="exoflow._native is not built (no C compiler at install)")
def test_files_whose_size_is_the_buffer_are_judged_as_the_loader_does(tmp_path):
    """A file of exactly the buffer's size is one the loader reads whole (not streamed), where a
    shorter read than the stated size is no error (sysfs states 4096 bytes for a few): hashed
    while read, it gets the loader's digest, not 'changed'."""
    import numpy as np
    from exoflow.batch import digest_batch
    piece = 4096
    sysfs = _sysfs_files(piece)
    if not sysfs:
        pytest.skip("no readable transparent_hugepage setting in /sys here (sysfs states 4096 bytes)")
    exact = tmp_path / "exact"
    exact.write_bytes(os.urandom(piece))
    paths = [str(exact), *sysfs]
    table = _listed(paths)
    hashed, errors = hash_batch(digest_batch(table, paths, np.ones(len(paths), bool), piece, {}), ["xxh3-128"])
    loaded = load(table, LoadOptions(piece_bytes=piece), {})
    stream_large(loaded, lambda b: digest_consumers(b, ["xxh3-128"]))
    assert errors == [None] * len(paths)
    assert hash_batch(loaded, ["xxh3-128"]) == (hashed, errors)
    assert hashed["xxh3_128"] == [ORACLES["xxh3-128"](Path(p).read_bytes()) for p in paths]
