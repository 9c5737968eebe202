"""The profile job and its xp kernel, against per-file values computed plainly in Python."""
from __future__ import annotations

import math
import os
import random
from collections import Counter

import numpy as np
import pytest

from conftest import exoflow, read_dataset
from exoflow.backends import gpu_available
from exoflow.kernels import bytestats as k


def plain_profile(data: bytes) -> dict:
    counts = Counter(data)
    n = len(data)
    entropy = -sum(c / n * math.log2(c / n) for c in counts.values()) if n else 0.0
    return {"entropy": entropy, "lines": data.count(b"\n"), "crlf": data.count(b"\r\n"),
            "non_ascii": sum(1 for b in data if b >= 128), "binary": b"\0" in data[:8192]}


def make_files(root, rng: random.Random) -> dict[str, bytes]:
    files = {
        "empty": b"",
        "one.txt": b"a",
        "crlf.txt": b"line one\r\nline two\r\n\r\nend",
        "cr-at-end.txt": b"abc\r",                     # next file starts with \n: not a pair
        "lf-first.txt": b"\nxyz",
        "utf8.txt": "naïve café — ünïcödé 🚀\n".encode() * 50,
        "late-nul.bin": b"x" * 9000 + b"\0",           # NUL after the first 8 KiB: text, as ripgrep says
        "early-nul.bin": b"\0" + b"y" * 100,
        "random.bin": rng.randbytes(3000),
        # large: streamed in pieces of 4096 with --piece-size; CRLF straddles the piece boundary at 4096
        "large-crlf.txt": b"z" * 4095 + b"\r\n" + b"line\r\n" * 2000,
        "large-random.bin": rng.randbytes(50_000),
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    return files


@pytest.mark.parametrize("backend", ["cpu", pytest.param("gpu", marks=pytest.mark.skipif(
    not gpu_available(), reason="no CUDA device with CuPy on this machine"))])
def test_profile_job_matches_plain_python(tmp_path, backend):
    tree = tmp_path / "t"
    tree.mkdir()
    files = make_files(tree, random.Random(3))
    os.symlink("one.txt", tree / "link")            # listed, never read: its profile is null
    os.mkfifo(tree / "fifo")
    r = exoflow("run", "profile", str(tree), "--out", str(tmp_path / "o"), "--no-dashboard", "-q",
                "--piece-size", "4096", "--chunk-files", "4", "--backend", backend)
    assert r.returncode == 0, r.stderr
    t = read_dataset(tmp_path / "o" / "files")
    got = {p.rsplit("/", 1)[1]: row for p, row in zip(t.column("path").to_pylist(), t.to_pylist())}
    assert set(got) == set(files) | {"link", "fifo"}
    for name in ("link", "fifo"):
        assert [got[name][c] for c in ("entropy", "lines", "crlf", "non_ascii", "binary")] == [None] * 5
    for name, data in files.items():
        want = plain_profile(data)
        row = got[name]
        assert row["entropy"] == pytest.approx(want["entropy"], abs=1e-9), name
        assert (row["lines"], row["crlf"], row["non_ascii"], row["binary"]) == \
            (want["lines"], want["crlf"], want["non_ascii"], want["binary"]), name


def test_kernels_on_a_batch_buffer_match_per_file_results():
    rng = np.random.default_rng(5)
    parts = [rng.integers(0, 256, rng.integers(0, 400), dtype=np.uint8).tobytes() for _ in range(60)]
    parts += [b"", b"\r\n" * 7, b"\r", b"\n"]           # empty files and pairs at file edges
    data = np.frombuffer(b"".join(parts), dtype=np.uint8)
    offsets = np.concatenate(([0], np.cumsum([len(p) for p in parts]))).astype(np.int64)
    n = len(parts)
    hist = k.histograms(np, data, offsets, n)
    crlf = k.crlf_counts(np, data, offsets, n)
    ent = k.entropy_bits(np, hist)
    for i, p in enumerate(parts):
        assert hist[i].tolist() == np.bincount(np.frombuffer(p, np.uint8), minlength=256).tolist()
        assert crlf[i] == p.count(b"\r\n")
        assert ent[i] == pytest.approx(plain_profile(p)["entropy"], abs=1e-9)


@pytest.mark.skipif(k._native is None, reason="exoflow._native is not built")
def test_compiled_histograms_equal_the_bincount():
    rng = np.random.default_rng(11)
    for _ in range(20):   # files under and over the C loop's 1024-byte switch, empty ones, runs of one byte
        parts = [rng.integers(0, 256, rng.integers(0, 5000), dtype=np.uint8).tobytes() for _ in range(50)]
        parts += [b"", b"\xff" * 4099, b"\0" * 1023, b"a" * 1024]
        data = np.frombuffer(b"".join(parts), dtype=np.uint8)
        offsets = np.concatenate(([0], np.cumsum([len(p) for p in parts]))).astype(np.int64)
        n = len(parts)
        assert np.array_equal(k.histograms(np, data, offsets, n), k.histograms(np, data, offsets, n, native=False))


@pytest.mark.skipif(not gpu_available(), reason="no CUDA device with CuPy on this machine")
def test_gpu_kernels_equal_cpu_kernels():
    import cupy as cp
    rng = np.random.default_rng(9)
    parts = [rng.integers(0, 256, rng.integers(0, 5000), dtype=np.uint8).tobytes() for _ in range(500)]
    data = np.frombuffer(b"".join(parts), dtype=np.uint8)
    offsets = np.concatenate(([0], np.cumsum([len(p) for p in parts]))).astype(np.int64)
    n = len(parts)
    for fn in (k.histograms, k.crlf_counts, k.first_nul):
        cpu = fn(np, data, offsets, n)
        gpu = fn(cp, cp.asarray(data), cp.asarray(offsets), n).get()
        assert np.array_equal(cpu, gpu), fn.__name__
    assert np.allclose(k.entropy_bits(np, k.histograms(np, data, offsets, n)),
                       k.entropy_bits(cp, k.histograms(cp, cp.asarray(data), cp.asarray(offsets), n)).get())


@pytest.mark.skipif(gpu_available(), reason="checks the message given where there is no GPU")
def test_gpu_backend_without_a_gpu_is_a_clear_error(tmp_path):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "f").write_bytes(b"data")
    r = exoflow("run", "profile", str(tmp_path / "t"), "--backend", "gpu", "--out", str(tmp_path / "o"),
                "--no-dashboard", "-q")
    assert r.returncode == 2, r.stderr
    # the first missing piece is named: dask-cuda, then CuPy (exoflow.gpu), then a device
    assert "Traceback" not in r.stderr and r.stderr.startswith("exoflow: error: --backend gpu: ")
    assert len(r.stderr.splitlines()) == 1 and ("not installed" in r.stderr or "no GPU found" in r.stderr)
