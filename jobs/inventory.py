"""Inventory: one row of metadata per file, with totals, extensions, directories, largest files and ages.

Reads:    a tree walk (or a listing); no file contents.
Computes: path, size, allocated, mtime_ns, mode, type, uid, gid, inode, device,
          nlink, extension, depth, top_dir, error for every entry; etag, storage_class and
          version_id for objects (s3://… PATHs).
Writes:   OUT/files/*.parquet, OUT/summary.json; prints the summary tables.

    exoflow run inventory /data
"""
from exoflow import Argument, ChunkOptions, Job, main
from exoflow.ops.inventory import plots
from exoflow.options import count_at_least
from exoflow.kernels.stat import inventory_columns
from exoflow.ops.inventory.reducer import InventoryReducer

job = Job(
    name="inventory",
    # no contents read: a chunk costs about 1 µs a file, so bigger chunks spend less on Dask per file
    chunk=ChunkOptions(max_files=50_000),
    description=__doc__,
    kernels=[inventory_columns],
    reducer=InventoryReducer(),
    columns=["path", "path_bytes", "type", "size", "allocated", "mtime_ns", "mode", "uid", "gid",
             "inode", "device", "nlink", "extension", "depth", "top_dir", "error",
             "etag", "storage_class", "version_id"],     # object storage's (null for local files)
    arguments=[Argument("--top", type=count_at_least(0), default=20, metavar="N",
                        help="rows in each summary table (default: 20)")],
    plots=plots.bars,      # report.html: size distribution, top extensions and directories, ages
)

if __name__ == "__main__":
    main(job)
