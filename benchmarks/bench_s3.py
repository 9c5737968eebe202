"""Object storage against local files: inventory and checksum of the same tree over ``s3://`` (moto's
S3 server on loopback) and from the local disk, side by side, whole process, median of runs.

    python benchmarks/bench_s3.py                       # 2,000 small files and 8 x 32 MiB
    python benchmarks/bench_s3.py --files 10000 --big 4 --runs 3

What the loopback server bounds: moto is a Python server (werkzeug, one thread per request, every
request parsed and answered in Python, objects held in its memory), so the s3:// figures are
moto's rate on this machine, not S3's or MinIO's: for small objects they measure requests per
second (one listing request per prefix, one GET per object), for large ones moto's copy of the
body through HTTP. They show the engine's own cost per object (no more than the server's) and
that nothing is serialised on the client; they are no forecast of a real store, where the latency
per request is higher and the bandwidth per connection lower, and concurrency (s3fs's async
fetches, many workers) is what carries throughput.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from common import machine, measure, tree_stats  # noqa: E402
from make_tree import make_tree  # noqa: E402

# the server process: moto's threaded server, filled straight from the local tree (PUTs are not measured)
SERVER = r"""
import logging, os, sys, time
logging.getLogger("werkzeug").setLevel(logging.ERROR)
from moto.server import ThreadedMotoServer
from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends
port, root = int(sys.argv[1]), sys.argv[2]
ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False).start()
backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
backend.create_bucket("bench", "us-east-1")
for d, _, names in os.walk(root):
    for n in names:
        p = os.path.join(d, n)
        with open(p, "rb") as f:
            backend.put_object("bench", os.path.relpath(p, root), f.read())
print("ready", flush=True)
time.sleep(10**6)
"""


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def exoflow(job: str, path: str, out: str, *flags: str) -> list[str]:
    return [sys.executable, "-m", "exoflow", "run", job, path, "--out", out, "--overwrite", "-q",
            "--no-dashboard", *flags]


def make(root: str, files: int, big: int) -> None:
    make_tree(os.path.join(root, "small"), files, fanout=10)
    os.makedirs(os.path.join(root, "big"))
    block = os.urandom(2**20)
    for i in range(big):
        with open(os.path.join(root, "big", f"b{i}.bin"), "wb") as f:
            for _ in range(32):
                f.write(block)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--files", type=int, default=2000, help="small files (0-4 KiB, 10 x 10 prefixes)")
    p.add_argument("--big", type=int, default=8, help="files of 32 MiB")
    p.add_argument("--runs", type=int, default=3)
    a = p.parse_args()
    work = tempfile.mkdtemp(prefix="bench-s3-")
    tree = os.path.join(work, "tree")
    make(tree, a.files, a.big)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port), tree], stdout=subprocess.PIPE)
    try:
        assert server.stdout.readline().strip() == b"ready"
        storage = json.dumps({"key": "bench", "secret": "bench", "client_kwargs": {
            "endpoint_url": f"http://127.0.0.1:{port}", "region_name": "us-east-1"}})
        print(f"machine: {machine()}")
        print(f"moto {__import__('moto').__version__}, s3fs {__import__('s3fs').__version__}, "
              f"server on 127.0.0.1:{port}, its own process; median of {a.runs} runs after one warm-up")
        for part in ("small", "big"):
            n, size = tree_stats(os.path.join(tree, part))
            print(f"\n{part}: {n:,} files, {size / 1e6:,.1f} MB")
            print(f"{'run':<26}{'median s':>10}{'min':>8}{'max':>8}{'files/s':>10}{'MB/s':>9}")
            for job in ("inventory", "checksum"):
                for kind, path, extra in (("local", os.path.join(tree, part), ()),
                                          ("s3://", f"s3://bench/{part}", ("--storage-options", storage))):
                    t = measure(exoflow(job, path, os.path.join(work, "out"), *extra), runs=a.runs)
                    mb = f"{size / 1e6 / t.wall:.1f}" if job == "checksum" else "-"    # inventory reads nothing
                    print(f"{job + ' ' + kind:<26}{t.wall:>10.2f}{t.wall_min:>8.2f}{t.wall_max:>8.2f}"
                          f"{n / t.wall:>10.1f}{mb:>9}")
    finally:
        server.terminate()
        server.wait()
        subprocess.run(["rm", "-rf", work])
    return 0


if __name__ == "__main__":
    sys.exit(main())
