"""How a flat S3 prefix's listing splits: list requests and rounds of listing tasks for N keys
directly under one prefix, per shape of name, against the fewest requests (N / 1,000 pages).

    python benchmarks/bench_s3_split.py                 # 200,000 keys per shape
    python benchmarks/bench_s3_split.py --keys 1000000

Counts, not times: ``objects.page`` and ``objects.cut`` list from a stand-in for S3's
ListObjectsV2 (the keys sorted in memory, StartAfter, Prefix, MaxKeys; no delimiter is needed as
no key has a "/"), and every range a round hands back is listed in the next round, as the
client hands them to free workers. Requests beyond the fewest are ranges found (nearly) empty;
rounds bound how long the listing takes with enough workers (each round, one request per task).
"""
from __future__ import annotations

import argparse
import bisect
import random
import uuid

from exoflow.sources import objects


class SortedKeys:
    """ListObjectsV2 over a sorted list of keys (what s3fs's ``call_s3`` would ask of S3)."""

    req_kw: dict = {}

    def __init__(self, keys: list[str]) -> None:
        self.keys, self.requests = sorted(keys), 0

    def split_path(self, path: str):
        bucket, key = path.split("/", 1)
        return bucket, key, None

    def call_s3(self, method: str, Bucket: str, Prefix: str, Delimiter: str, MaxKeys: int,
                StartAfter: str = "", ContinuationToken: str | None = None) -> dict:
        self.requests += 1
        i = bisect.bisect_right(self.keys, max(StartAfter, Prefix))
        page = [k for k in self.keys[i:i + MaxKeys + 1] if k.startswith(Prefix)]
        return {"Contents": [{"Key": k, "Size": 0} for k in page[:MaxKeys]], "IsTruncated": len(page) > MaxKeys,
                "NextContinuationToken": ""}


def shapes(n: int) -> dict[str, list[str]]:
    rng = random.Random(1)
    words = ["alpha", "beta", "Gamma", "delta", "épsilon", "日本"]
    return {"numbered (file0000123.txt)": [f"file{i:07d}.txt" for i in range(n)],
            "random hex (uuid4)": [uuid.UUID(int=rng.getrandbits(128)).hex for _ in range(n)],
            "date-like (2024-03-07T05:12-123.json)": [f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:"
                                                      f"{i % 60:02d}-{i}.json" for i in range(n)],
            "words (beta 日本 delta12)": [" ".join(rng.choice(words) for _ in range(3)) + str(i) for i in range(n)]}


def split(keys: list[str]) -> tuple[int, int]:
    """(list requests, rounds) to list ``keys`` under one prefix; checks each key comes once."""
    store = SortedKeys(["p/" + k for k in keys])
    todo, listed, rounds = [objects.Prefix("s3://b/p", 0, None, "s3://b/p")], 0, 0
    while todo:
        rounds += 1
        left = []
        for item in todo:
            infos, rest = objects.page(store, "b/p", item)
            listed += len(infos)
            left += [objects.Prefix(item.path, 0, None, item.root, after=a, until=u) for a, u in rest]
        todo = left
    assert listed == len(keys), (listed, len(keys))
    return store.requests, rounds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keys", type=int, default=200_000)
    args = ap.parse_args()
    fewest = -(-args.keys // objects.PAGE)
    print(f"| names ({args.keys:,} keys, {objects.PAGE:,} a page) | requests | x the fewest ({fewest:,}) | rounds |")
    print("|---|---|---|---|")
    for name, keys in shapes(args.keys).items():
        requests, rounds = split(keys)
        print(f"| {name} | {requests:,} | {requests / fewest:.1f} | {rounds} |")


if __name__ == "__main__":
    main()
