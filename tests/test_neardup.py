"""neardup: near-duplicate text files by MinHash LSH.

Oracles: the exact Jaccard of every pair's shingle sets, computed here in plain Python on the
texts (characters of the decoded str, or ``bytes.split()`` words); datasketch's ``_optimal_param``
and MinHashLSH candidate pairs; a plain-Python fold of the documented hash definitions; the
NumPy form against the C pass (and CuPy, where there is a GPU)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, exoflow, read_dataset
from exoflow.backends import gpu_available
from exoflow.batch import fed
from exoflow.ops.neardup import lsh
from exoflow.ops.neardup.kernel import LargeSignature, shingle_set
from exoflow.ops.neardup.minhash import EMPTY, P, Q, Shingling, shingle_hashes, signatures

sys.path.insert(0, str(REPO / "benchmarks"))
from neardup_corpus import build  # noqa: E402

M64 = 2**64 - 1


def shingles(text: str, size: int, words: bool) -> set:
    """The oracle's shingle set: n-grams of characters of the str, or of ``bytes.split()`` words;
    a text with 1 to size-1 tokens is one shingle."""
    tokens = text.encode().split() if words else list(text)
    grams = {tuple(tokens[i:i + size]) for i in range(len(tokens) - size + 1)}
    return grams or ({tuple(tokens)} if tokens else set())


def exact_jaccard(sets: list[set]) -> np.ndarray:
    """Exact Jaccard of every pair of sets (n x n), by a sparse product (every pair, not only candidates)."""
    from scipy.sparse import csr_matrix
    index: dict = {}
    cols = [index.setdefault(s, len(index)) for st in sets for s in st]
    rows = np.repeat(np.arange(len(sets)), [len(s) for s in sets])
    x = csr_matrix((np.ones(len(cols), np.int32), (rows, cols)), shape=(len(sets), len(index)))
    inter = (x @ x.T).toarray()
    size = np.array([len(s) for s in sets])
    union = size[:, None] + size[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """~320 stdlib documents with planted near-copies, plus: a UTF-16 copy of one, a file larger
    than the piece size the runs use and a near-copy of it, a binary file and an empty one."""
    root = tmp_path_factory.mktemp("nd") / "corpus"
    texts = build(str(root), 320, doc_bytes=2000, families=0.5)
    first = texts[min(texts)]
    (root / "utf16.txt").write_bytes(b"\xff\xfe" + first.encode("utf-16-le"))
    texts[str(root / "utf16.txt")] = first
    big = "".join(sorted(texts.values())[:40])                    # ~80 KB: streamed with --piece-size 16KiB
    for name, text in (("big.txt", big), ("big-copy.txt", big.replace("def ", "def  ", 5))):
        (root / name).write_text(text)
        texts[str(root / name)] = text
    (root / "image.bin").write_bytes(bytes(range(256)) * 40)
    (root / "empty.txt").write_bytes(b"")
    return root, texts


def true_pairs(texts: dict[str, str], size: int, words: bool, threshold: float) -> dict[frozenset, float]:
    paths = sorted(texts)
    j = exact_jaccard([shingles(texts[p], size, words) for p in paths])
    a, b = np.nonzero(np.triu(j >= threshold, 1))
    return {frozenset((paths[x], paths[y])): j[x, y] for x, y in zip(a.tolist(), b.tolist())}


def run(root: Path, out: Path, *args: str) -> dict:
    r = exoflow("run", "neardup", str(root), "--out", str(out), "--workers", "2", "--no-dashboard", "-q",
                "--piece-size", "16KiB", *args, timeout=240)
    assert r.returncode == 0, r.stderr
    return json.loads((out / "summary.json").read_text())


def found_pairs(out: Path) -> dict[frozenset, float]:
    t = read_dataset(out / "pairs").to_pydict()
    return {frozenset((a, b)): s for a, b, s in zip(t["path_a"], t["path_b"], t["similarity"])}


# Character 5-grams (the default) are the gate: recall and precision at 0.8. Word 3-grams of
# these ~2 KB documents give ~300 shingles a file, so the 128-value estimate is noisier (measured:
# recall 0.87 at J >= 0.8, the misses all below 0.89): their recall is checked from J >= 0.9.
@pytest.mark.parametrize("args,size,words,recall_from", [((), 5, False, 0.8),
                                                         (("--words", "--shingle", "3"), 3, True, 0.9)])
def test_recall_and_precision_against_exact_jaccard(corpus, tmp_path, args, size, words, recall_from):
    """At threshold 0.8: >= 0.95 recall of the pairs whose exact Jaccard is >= recall_from, and
    >= 0.95 precision (pairs reported whose exact Jaccard is >= 0.8)."""
    root, texts = corpus
    truth = true_pairs(texts, size, words, 0.8)
    sure = {k for k, v in truth.items() if v >= recall_from}
    summary = run(root, tmp_path / "o", *args)
    found = found_pairs(tmp_path / "o")
    assert len(sure) >= 30, len(sure)                         # the corpus plants enough near-copies
    assert len(found.keys() & sure) / len(sure) >= 0.95, (len(found.keys() & sure), len(sure))     # recall
    assert len(found.keys() & truth.keys()) / len(found) >= 0.95, (len(found.keys() & truth.keys()), len(found))
    r = summary["result"]
    assert (r["binary_files"], r["no_text_files"], r["text_files"]) == (1, 1, len(texts))
    clusters = read_dataset(tmp_path / "o" / "clusters").to_pandas()
    in_pairs = {p for pair in found for p in pair}
    assert set(clusters["path"]) == in_pairs and r["files_in_clusters"] == len(in_pairs)
    assert (clusters.groupby("cluster_id")["representative"].sum() == 1).all()
    assert (clusters.loc[clusters["representative"], "similarity"] == 1.0).all()
    big = {str(root / "big.txt"), str(root / "big-copy.txt")}
    assert frozenset(big) in found                            # streamed in pieces, still found
    utf16 = frozenset({str(root / "utf16.txt"), min(p for p in texts if p.endswith("-0.txt"))})
    assert found.get(utf16) == 1.0                            # decoded: the same text as its original


def test_verify_exact_gives_the_exact_jaccard(corpus, tmp_path):
    """--verify-exact: every pair reported has exact Jaccard >= 0.8 and its similarity is that value."""
    root, texts = corpus
    truth = true_pairs(texts, 5, False, 0.8)
    run(root, tmp_path / "o", "--verify-exact")
    found = found_pairs(tmp_path / "o")
    assert found.keys() <= truth.keys()
    assert len(found) / len(truth) >= 0.95
    for pair, s in found.items():
        assert s == pytest.approx(truth[pair], abs=1e-12), pair


def _datasketch_pairs(minhashes: list) -> set[frozenset]:
    from datasketch import MinHashLSH
    index = MinHashLSH(threshold=0.8, num_perm=128)
    for i, m in enumerate(minhashes):
        index.insert(i, m)
    assert (index.b, index.r) == lsh.optimal_param(0.8, 128)
    return {frozenset((i, j)) for i, m in enumerate(minhashes) for j in index.query(m) if i != j}


def test_candidates_agree_with_datasketch(corpus):
    """Candidate pairs against datasketch's MinHashLSH at 128 permutations and threshold 0.8:
    1. from the same signatures (ours given to datasketch): >= 95% agreement (intersection over
       union; the banding and buckets are then all that differs: expected 100%);
    2. each side hashing on its own (datasketch: SHA-1 and its permutations): >= 95% agreement on
       the pairs whose exact Jaccard is outside 0.7-0.9, where the S-curve is steep and two
       independent draws legitimately differ (measured on this corpus: 91% over all pairs)."""
    from datasketch import MinHash
    _, texts = corpus
    paths = sorted(texts)
    sets = [shingles(texts[p], 5, False) for p in paths]
    blobs = [texts[p].encode() for p in paths]
    bounds = np.concatenate([[0], np.cumsum([len(b) for b in blobs])]).astype(np.int64)
    sig = np.full((len(blobs), 128), EMPTY, np.uint32)
    signatures(np, np.frombuffer(b"".join(blobs), np.uint8), bounds[:-1], bounds[1:], Shingling(), sig,
               np.zeros(len(blobs), np.int64))
    bands, rows = lsh.optimal_param(0.8, 128)
    x, y = lsh.bucket_pairs(lsh.band_keys(sig, bands, rows).ravel())      # row i * bands + band
    ours = {frozenset((i, j)) for i, j in zip((x // bands).tolist(), (y // bands).tolist()) if i != j}

    same = _datasketch_pairs([MinHash(num_perm=128, hashvalues=s, scheme="affine32") for s in sig])
    assert len(ours & same) / len(ours | same) >= 0.95, (len(ours), len(same), len(ours & same))

    own = []
    for st in sets:
        m = MinHash(num_perm=128)
        m.update_batch(["".join(s).encode() for s in st])
        own.append(m)
    theirs = _datasketch_pairs(own)
    j = exact_jaccard(sets)
    clear = {p for p in ours | theirs if not 0.7 <= j[tuple(p)] <= 0.9}
    assert len(ours & theirs & clear) / len(clear) >= 0.95, (len(ours & clear), len(theirs & clear), len(clear))


@pytest.mark.parametrize("permutations", [16, 128, 256])
def test_bands_and_rows_are_datasketchs(permutations):
    from datasketch.lsh import _optimal_param
    for t in np.round(np.arange(0.1, 0.96, 0.05), 2).tolist():
        assert lsh.optimal_param(t, permutations) == _optimal_param(t, permutations, 0.5, 0.5), t


def _fold(values, base: int) -> int:
    g = 0
    for v in values:
        g = (g * base + v) & M64
    return g


def _fmix(h: int) -> int:
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & M64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & M64
    return h ^ (h >> 33)


@pytest.mark.parametrize("words", [False, True])
def test_shingle_hashes_follow_the_documented_definition(words):
    """Plain-Python fold of the module doc's definitions (characters of the decoded text, or
    bytes.split() words) gives the same set of shingle hashes as the vectorised form."""
    texts = ["", "ab", "hello wörld, ça va? \u20ac 😀 text\n", "  lead and\ttrail  ", "one",
             "x" * 3 + " y" * 7, "naïve café " * 5]
    for size in (1, 3, 5):
        for text in texts:
            tokens = [w for w in text.encode().split()] if words else [c.encode() for c in text]
            th = [_fold((b + 1 for b in t), P) for t in tokens]
            grams = [th[i:i + size] for i in range(len(th) - size + 1)] or ([th] if th else [])
            expected = {_fmix(_fold(g, Q)) for g in grams}
            data = np.frombuffer(text.encode(), np.uint8)
            h, seg, _ = shingle_hashes(np, data, np.array([0, len(data)]), size, words)
            assert set(h.tolist()) == expected and len(h) == len(grams), (text, size)


def _signatures(data, lo, hi, sh, native, open_end=False, short_ok=True):
    out = np.full((len(lo), sh.permutations), EMPTY, np.uint32)
    counts = np.zeros(len(lo), np.int64)
    carry = signatures(np, data, lo, hi, sh, out, counts, open_end, short_ok, native=native)
    return out, counts, carry


def test_compiled_signatures_equal_numpy():
    """The C pass and the NumPy form: equal signatures, counts and resume points, on random bytes,
    UTF-8, whitespace runs, empty and adjacent segments, streaming flags; every 8th trial longer
    than the C pass's blocks of 512 shingles (ASCII runs, a block's last characters with
    continuation bytes)."""
    from exoflow.fileio import native
    if native is None:
        pytest.skip("exoflow._native is not built (no C compiler)")
    rng = np.random.default_rng(0)
    alphabets = [b"ab \n", "aé€😀 \t".encode(), bytes(range(256)), b"xyz  ", b"abcdefgh \n" * 6 + "é".encode()]
    for trial in range(120):
        alphabet = list(alphabets[trial % len(alphabets)])
        m = int(rng.integers(0, 400)) if trial % 8 else int(rng.integers(6000, 10000))
        data = np.array(rng.choice(alphabet, m), dtype=np.uint8)
        cuts = np.sort(rng.integers(0, m + 1, int(rng.integers(0, 10)) * 2)).astype(np.int64) if trial % 8 \
            else np.array([0, m // 2, m // 2, m], np.int64)
        for size, words in ((1, False), (3, True), (5, False), (2, True)):
            sh = Shingling(size=size, words=words, permutations=24)
            for flags in ((False, True), (True, True), (True, False), (False, False)):
                c = _signatures(data, cuts[0::2], cuts[1::2], sh, True, *flags)
                py = _signatures(data, cuts[0::2], cuts[1::2], sh, False, *flags)
                assert np.array_equal(c[0], py[0]) and np.array_equal(c[1], py[1]) and c[2] == py[2], trial


@pytest.mark.parametrize("words", [False, True])
def test_streamed_signature_equals_the_whole_file(corpus, words, monkeypatch):
    """A file fed in small windows (each resuming where the last one's shingles stopped) has the
    signature, shingle count and shingle set of the whole file at once."""
    from exoflow.ops.neardup import kernel
    monkeypatch.setattr(kernel, "WINDOW", 1000)
    _, texts = corpus
    text = "".join(sorted(texts.values())[:5]).encode()
    sh = Shingling(size=4, words=words)
    data = np.frombuffer(text, np.uint8)
    whole, count, _ = _signatures(data, np.array([0]), np.array([len(data)]), sh, True)
    pieces = [text[i:i + 777] for i in range(0, len(text), 777)]
    sig, n, binary = fed(LargeSignature(sh), pieces).result()
    assert not binary and n == count[0] and np.array_equal(sig, whole[0])
    h, _, _ = shingle_hashes(np, data, np.array([0, len(data)]), 4, words)
    assert np.array_equal(shingle_set(pieces, sh), np.unique(h))


def test_components_are_union_find():
    """Connected components against a plain union-find on random graphs."""
    rng = np.random.default_rng(3)
    for _ in range(20):
        a, b = rng.integers(0, 300, 200), rng.integers(0, 300, 200)
        nodes, labels = lsh.components(a * 7, b * 7)
        parent = {}

        def find(x):
            while parent.setdefault(x, x) != x:
                x = parent[x]
            return x
        for x, y in zip((a * 7).tolist(), (b * 7).tolist()):
            parent[find(x)] = find(y)
        groups = {}
        for n in nodes.tolist():
            groups.setdefault(find(n), set()).add(n)
        ours = {}
        for n, l in zip(nodes.tolist(), labels.tolist()):
            ours.setdefault(l, set()).add(n)
        assert sorted(map(sorted, groups.values())) == sorted(map(sorted, ours.values()))


def test_completes_by_spilling_under_a_memory_limit_below_its_shuffle(tmp_path):
    """520 small files at 1024 permutations and threshold 0.5 (128 bands): the shuffle holds
    520 x 128 x (16 + 4096) bytes, ~274 MB, more than a worker's 250 MiB limit. The run completes
    by spilling to disk (summary.json's spilled_bytes) with the clusters and pairs of a run
    without a limit."""
    root = tmp_path / "c"
    build(str(root), 520, doc_bytes=400, families=0.3)
    outs = {}
    for limit in ("250MiB", "4GiB"):
        out = tmp_path / limit
        r = exoflow("run", "neardup", str(root), "--out", str(out), "--workers", "2", "--no-dashboard", "-q",
                    "--permutations", "1024", "--threshold", "0.5", "--memory-limit", limit, timeout=240)
        assert r.returncode == 0, (limit, r.stderr)
        outs[limit] = json.loads((out / "summary.json").read_text())
        res = outs[limit]["result"]
        assert res["text_files"] * res["bands"] * (16 + 4 * 1024) > 250 * 2**20
    # per tier (exoflow.spilling): host -> disk only, nothing without the limit; written compressed
    # where that pays (lz4 packs the ids; random hashes are written as they are)
    tiers = {limit: outs[limit]["spilled_by_tier"] for limit in outs}
    assert tiers["250MiB"]["host_to_disk"] >= outs["250MiB"]["spilled_bytes"] > 0
    assert tiers["4GiB"] == {"device_to_host": None, "host_to_disk": 0} and outs["4GiB"]["spilled_bytes"] == 0
    assert tiers["250MiB"]["device_to_host"] is None
    for name in ("clusters", "pairs"):
        a, b = (read_dataset(tmp_path / limit / name).to_pandas() for limit in ("250MiB", "4GiB"))
        assert len(a) and a.equals(b), name


def test_bad_threshold_is_a_usage_error(tmp_path):
    (tmp_path / "t").mkdir()
    for bad in ("1", "x"):
        r = exoflow("run", "neardup", str(tmp_path / "t"), "--threshold", bad, "--out", str(tmp_path / "o"))
        assert r.returncode == 2 and len(r.stderr.splitlines()) == 1 and "--threshold" in r.stderr, r.stderr
        assert not (tmp_path / "o").exists()


@pytest.mark.skipif(not gpu_available(), reason="no CUDA device with CuPy on this machine")
def test_gpu_signatures_and_clusters_equal_cpu(corpus, tmp_path):
    """The CuPy form (token hashing with cupy, the segment-min CUDA kernel) gives the C pass's
    signatures; a whole run on GPU workers gives the CPU run's clusters."""
    import cupy as cp
    _, texts = corpus
    blobs = [t.encode() for t in sorted(texts.values())]
    data = np.frombuffer(b"".join(blobs), np.uint8)
    bounds = np.concatenate([[0], np.cumsum([len(b) for b in blobs])]).astype(np.int64)
    for sh in (Shingling(), Shingling(size=3, words=True, permutations=256)):
        cpu = _signatures(data, bounds[:-1], bounds[1:], sh, True)
        out = cp.full((len(blobs), sh.permutations), EMPTY, cp.uint32)
        counts = np.zeros(len(blobs), np.int64)
        signatures(cp, cp.asarray(data), bounds[:-1], bounds[1:], sh, out, counts)
        assert np.array_equal(out.get(), cpu[0]) and np.array_equal(counts, cpu[1])
    root = corpus[0]
    run(root, tmp_path / "cpu")
    run(root, tmp_path / "gpu", "--backend", "gpu")
    cols = ["cluster_id", "path", "similarity"]
    assert read_dataset(tmp_path / "gpu" / "clusters").to_pandas()[cols].equals(
        read_dataset(tmp_path / "cpu" / "clusters").to_pandas()[cols])
