"""Codestats: lines of code, comments and blanks per file and by language, like cloc.

Reads:    file contents of files in a known language (by name, extension, name prefix or
          shebang; 70+ languages); UTF-16 (by BOM) decoded; binary files are skipped.
Computes: one row per file: language, lines, blank, comment, code (null where no
          language is known), with each language's comment syntax (nested block
          comments where the language nests them; comment markers in strings, raw
          strings, heredocs and regex literals are code).
Writes:   OUT/files/*.parquet, OUT/summary.json; prints a table by language.

    exoflow run codestats ~/src/project
"""
from exoflow.ops.codestats import plots
from exoflow import ChunkOptions, Job, main
from exoflow.ops.codestats.kernel import READS, codestats_columns
from exoflow.ops.codestats.reducer import CodestatsReducer

job = Job(
    name="codestats",
    plots=plots.bars,
    description=__doc__,
    kernels=[codestats_columns],
    reducer=CodestatsReducer(),
    columns=["path", "path_bytes", "size", "language", "lines", "blank", "comment", "code", "error"],
    reads=READS,      # files in a known language, and extensionless ones (scripts by shebang)
    # bounded bytes (the kernel holds ~5 bytes per byte read); chunks small enough to balance
    # two workers on a 1 GiB tree
    chunk=ChunkOptions(max_files=5_000, max_bytes=32 * 2**20),
)

if __name__ == "__main__":
    main(job)
