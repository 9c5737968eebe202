"""A near-duplicate corpus from real text on this machine (Python's standard library sources and
documentation files), shared by tests/test_neardup.py and benchmarks/bench_neardup.py.

Documents are pieces of about ``doc_bytes`` of distinct stdlib files (cut at line ends). Some
documents get near-copies with planted edits at known rates: words inserted, deleted or
substituted, or paragraphs reordered; the rest are unrelated files.

    python benchmarks/neardup_corpus.py DIR --files 20000
"""
from __future__ import annotations

import argparse
import glob
import os
import random
import sysconfig

EDITS = ("insert", "delete", "substitute", "reorder")
RATES = (0.005, 0.01, 0.02, 0.04, 0.08, 0.15)        # share of words edited (reorder: of paragraphs moved)


def stdlib_texts(limit: int, doc_bytes: int, seed: int = 0) -> list[str]:
    """Up to ``limit`` distinct documents of about ``doc_bytes`` from stdlib .py/.txt/.rst files
    (several per long file, cut at line ends; exact repeats dropped)."""
    root = sysconfig.get_paths()["stdlib"]
    names = sorted(p for ext in ("py", "txt", "rst") for p in glob.glob(f"{root}/**/*.{ext}", recursive=True)
                   if "site-packages" not in p and "dist-packages" not in p)
    random.Random(seed).shuffle(names)
    docs, seen = [], set()
    for name in names:
        try:
            with open(name, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError):
            continue
        at = 0
        while at < len(text) and len(docs) < limit:
            end = text.find("\n", at + doc_bytes)
            end = len(text) if end < 0 else end + 1
            piece = text[at:end]
            at = end
            if len(piece) >= doc_bytes // 2 and len(piece.split()) > 50 and piece not in seen:
                seen.add(piece)
                docs.append(piece)
        if len(docs) >= limit:
            break
    return docs


def mutate(text: str, edit: str, rate: float, rng: random.Random, vocabulary: list[str]) -> str:
    """``text`` with ``rate`` of its words inserted after / deleted / substituted, or with that
    share of its paragraphs (blank-line separated; lines when it has few) moved elsewhere."""
    if edit == "reorder":
        sep = "\n\n" if text.count("\n\n") >= 4 else "\n"
        paras = text.split(sep)
        for _ in range(max(1, round(rate * len(paras)))):
            paras.insert(rng.randrange(len(paras)), paras.pop(rng.randrange(len(paras))))
        return sep.join(paras)
    out = []
    for line in text.split("\n"):
        words = []
        for w in line.split(" "):
            if rng.random() >= rate:
                words.append(w)
            elif edit == "insert":
                words += [w, rng.choice(vocabulary)]
            elif edit == "substitute":
                words.append(rng.choice(vocabulary))
        out.append(" ".join(words))
    return "\n".join(out)


def build(root: str, files: int, doc_bytes: int = 3000, families: float = 0.3, seed: int = 1) -> dict[str, str]:
    """Write ``files`` text files under ``root``: a share ``families`` of the documents get 1-3
    near-copies (edit kind and rate drawn from EDITS x RATES). Returns {path: text}."""
    rng = random.Random(seed)
    base = stdlib_texts(files, doc_bytes)
    vocabulary = sorted({w for d in base[:200] for w in d.split()})
    texts: dict[str, str] = {}
    i = 0
    while len(texts) < files and i < len(base):
        doc = base[i]
        family = [doc]
        if rng.random() < families:
            family += [mutate(doc, rng.choice(EDITS), rng.choice(RATES), rng, vocabulary)
                       for _ in range(rng.randint(1, 3))]
        for k, text in enumerate(family[: files - len(texts)]):
            path = os.path.join(root, f"d{i % 100:02d}", f"doc{i:06d}-{k}.txt")
            texts[path] = text
        i += 1
    for path, text in texts.items():
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    return texts


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root")
    ap.add_argument("--files", type=int, default=20_000)
    ap.add_argument("--doc-bytes", type=int, default=3000)
    a = ap.parse_args()
    print(len(build(a.root, a.files, a.doc_bytes)), "files under", a.root)
