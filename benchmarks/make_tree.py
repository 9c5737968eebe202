"""Make a reproducible tree of small files for benchmarks.

    python benchmarks/make_tree.py /tmp/tree1m            # 1,000,000 files
    python benchmarks/make_tree.py /tmp/tree10k --files 10000

Layout: 100 top directories x 100 subdirectories x N files, with sizes drawn
from a fixed-seed generator (0 to 4 KiB), so every run makes the same tree.
"""
from __future__ import annotations

import argparse
import os
import random
import sys


def make_tree(root: str, files: int, fanout: int = 100, seed: int = 42) -> int:
    rng = random.Random(seed)
    leaves = fanout * fanout
    per_leaf = max(1, -(-files // leaves))
    blob = bytes(rng.getrandbits(8) for _ in range(8192))
    made = 0
    for a in range(fanout):
        for b in range(fanout):
            if made >= files:
                return made
            d = os.path.join(root, f"d{a:03d}", f"s{b:03d}")
            os.makedirs(d, exist_ok=True)
            for c in range(min(per_leaf, files - made)):
                size = rng.randrange(0, 4097)
                start = rng.randrange(0, 4096)
                fd = os.open(os.path.join(d, f"f{c:04d}.dat"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.write(fd, blob[start:start + size])
                os.close(fd)
                made += 1
    return made


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("root")
    p.add_argument("--files", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=42)
    a = p.parse_args()
    if os.path.exists(a.root) and os.listdir(a.root):
        print(f"make_tree: {a.root} exists and is not empty", file=sys.stderr)
        return 2
    n = make_tree(a.root, a.files, seed=a.seed)
    print(f"{n} files under {a.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
