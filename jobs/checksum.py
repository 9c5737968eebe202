"""Checksum: a hash manifest of every file (xxh3-128, blake3, sha256, sha1, md5), with audit.

Reads:    a tree walk; the content of every regular file (large files streamed in pieces).
Computes: xxh3_128 / blake3 / sha256 / sha1 / md5 columns (hex; unselected ones null).
Writes:   OUT/files/*.parquet (path, size, mtime_ns, inode, device, digests, trusted, error),
          OUT/checksums.<alg> in sha256sum/b3sum format with --text,
          OUT/audit/*.parquet with --verify; OUT/summary.json.

    exoflow run checksum /data --hash sha256,blake3 --text
    exoflow run checksum /data --verify exoflow-checksum-OLD --trust-mtime   # exit 1 if anything differs
"""
from exoflow import Argument, ChunkOptions, Finish, Job, main
from exoflow.checksum import (MANIFEST_COLUMNS, algorithms, checksum_columns, hash_argument, manifest_files,
                              verify_argument, write_text_manifests)
from exoflow.reducers.checksum import ChecksumReducer


def after(f: Finish) -> dict:
    """Text manifests and the audit run on the cluster once every chunk is hashed."""
    result = dict(f.result, algorithms=list(algorithms(f.params)))
    if f.params.get("text"):
        result["text_manifests"] = write_text_manifests(f.client, f.dataset_dir, f.out_dir, algorithms(f.params))
    if f.params.get("verify"):
        from exoflow.audit import run_audit
        audit = run_audit(f.client, f.dataset_dir, manifest_files(f.params["verify"]), algorithms(f.params),
                          f.out_dir, examples=f.params.get("show", 20))
        result["audit"] = audit
        result["exit_code"] = 1 if audit["differences"] else 0
    return result


job = Job(
    name="checksum",
    description=__doc__,
    kernels=[checksum_columns],
    reducer=ChecksumReducer(),
    columns=MANIFEST_COLUMNS,
    reads_content=False,          # checksum_columns loads only the files it must hash (see --trust-mtime)
    chunk=ChunkOptions(max_files=5_000, max_bytes=128 * 2**20, read_order=True),  # but it reads: disk order, bounded
    arguments=[
        Argument("--hash", type=hash_argument, metavar="ALG[,ALG…]",
                 help="xxh3-128 (default), blake3, sha256, sha1, md5; several comma-separated "
                      "(default with --verify: the old manifest's)"),
        Argument("--text", action="store_true",
                 help="also write OUT/checksums.<alg> that sha256sum -c / b3sum --check / xxh128sum -c accept"),
        Argument("--verify", type=verify_argument, metavar="OLD",
                 help="audit against an earlier manifest (its output dir, files/ dir or a .parquet); exit 1 on differences"),
        Argument("--trust-mtime", action="store_true",
                 help="with --verify: reuse the old digest when size, mtime_ns, inode and device are unchanged"),
        Argument("--show", type=int, default=20, metavar="N", help="example paths per audit status (default: 20)"),
    ],
    after=after,
)

if __name__ == "__main__":
    main(job)
