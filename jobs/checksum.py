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
from exoflow.ops.checksum.kernel import READS, algorithms, checksum_columns
from exoflow.ops.checksum.manifests import (MANIFEST_COLUMNS, left_out_warnings, manifest_files, verify_argument,
                                            write_text_manifests)
from exoflow.kernels.hashing import hash_argument
from exoflow.options import count_at_least
from exoflow.ops.checksum.reducer import ChecksumReducer
from exoflow.ops.checksum import tables
from exoflow.errors import UsageError

SHOW = 20


def after(f: Finish) -> dict:
    """Text manifests and the audit run where the chunk tasks ran, once every chunk is hashed."""
    result = dict(f.result, algorithms=list(algorithms(f.params)))
    if f.params.get("text"):
        written, left_out = write_text_manifests(f.executor, f.dataset_dir, f.out_dir, algorithms(f.params))
        result.update(text_manifests=written, text_unlisted=left_out)
        if left_out_warnings(left_out):
            result["warnings"] = left_out_warnings(left_out)
    if f.params.get("verify"):
        from exoflow.ops.checksum.audit import run_audit
        show = f.params.get("show")
        audit = run_audit(f.executor, f.dataset_dir, manifest_files(f.params["verify"]), algorithms(f.params),
                          f.out_dir, examples=SHOW if show is None else show)
        result["audit"] = audit
        result["exit_code"] = 1 if audit["differences"] else 0
    return result


def check(params: dict) -> None:
    """Before the cluster starts: options that need --verify, and --hash against its manifest."""
    for dest, flag in (("trust_mtime", "--trust-mtime"), ("show", "--show")):
        if params.get(dest) not in (None, False) and not params.get("verify"):
            raise UsageError(f"{flag} applies to the audit against an earlier manifest: give --verify OLD")
    algorithms(params)      # raises when --hash shares no algorithm with the manifest to verify


job = Job(
    name="checksum",
    description=__doc__,
    kernels=[checksum_columns],
    reducer=ChecksumReducer(),
    columns=MANIFEST_COLUMNS,
    reads=READS,                  # files not reused by --trust-mtime, hashed in cache-sized sub-batches
    chunk=ChunkOptions(max_files=20_000, max_bytes=512 * 2**20),
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
        Argument("--show", type=count_at_least(0), metavar="N",
                 help=f"with --verify: example paths per audit status (default: {SHOW})"),
    ],
    after=after,
    tables=tables.tables,
    check=check,
)

if __name__ == "__main__":
    main(job)
