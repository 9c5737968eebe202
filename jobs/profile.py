"""Profile: per file byte entropy, line and CRLF counts, non-ASCII and binary detection (NumPy or CuPy).

Reads:    every regular file's contents, in batches (large files streamed).
Computes: entropy (bits/byte), lines, crlf, non_ascii, binary per file, from one
          byte histogram per file made over the whole batch buffer at once.
Writes:   OUT/files/*.parquet, OUT/summary.json; prints an entropy histogram
          and the most random (compressed/encrypted-looking) files.

    exoflow run profile /data [--backend cpu|gpu|auto]
"""
from exoflow.ops.profile import plots
from exoflow import Argument, ChunkOptions, Job, Reads, main
from exoflow.backends import BACKENDS
from exoflow.ops.profile.kernel import profile_columns, profiles_of_large
from exoflow.ops.profile.reducer import ProfileReducer

job = Job(
    name="profile",
    plots=plots.bars,
    description=__doc__,
    kernels=[profile_columns],
    reducer=ProfileReducer(),
    reads=Reads(consume=profiles_of_large),
    chunk=ChunkOptions(max_files=5_000, max_bytes=64 * 2**20),
    columns=["path", "path_bytes", "type", "size", "mtime_ns", "entropy", "lines", "crlf", "non_ascii", "binary",
             "error"],
    arguments=[Argument("--backend", choices=BACKENDS, default="cpu",
                        help="cpu: NumPy; gpu: CuPy on GPU workers; auto: CuPy where a GPU is present")],
)

if __name__ == "__main__":
    main(job)
