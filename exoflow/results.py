"""Reading a finished run's results back: ``exoflow show``, ``exoflow query`` and ``--format``.

    exoflow show OUT                 the run's terminal tables again, from OUT/summary.json
    exoflow query OUT "SQL"          SQL over OUT's Parquet datasets (DuckDB: pip install exoflow[sql])
    exoflow run JOB PATH --format jsonl|csv|paths [-0]   the job's main table on stdout

Each dataset directory of OUT (``files``, ``findings``, ``duplicates``, ``audit`` …) is a
DuckDB view of the same name. Expected problems raise ``UsageError`` (one line, exit 2).
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from typing import IO, TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    import pyarrow as pa

from exoflow.errors import Parser, UsageError
from exoflow.options import local_path

FORMATS = ("jsonl", "csv", "paths")
QUERY_FORMATS = ("table", "jsonl", "csv")


# ---- OUT and its datasets ----------------------------------------------------------

def read_summary(out_dir: str) -> dict:
    """OUT/summary.json of a finished run. Raises UsageError when OUT holds none."""
    path = os.path.join(out_dir, "summary.json")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise UsageError(f"{out_dir}: no summary.json (not the output directory of a finished exoflow run)") from None
    except (OSError, ValueError) as e:
        raise UsageError(f"{path}: {getattr(e, 'strerror', None) or e}") from None


def datasets(out_dir: str) -> dict[str, str]:
    """name -> directory, for each directory of OUT holding Parquet parts (``files``, ``findings`` …);
    a composed run's (``OUT/JOB/<dataset>``) are named ``JOB_<dataset>`` (``scan_findings``)."""
    if not os.path.isdir(out_dir):
        raise UsageError(f"{out_dir}: no such directory")
    out = {}
    for entry in sorted(os.scandir(out_dir), key=lambda e: e.name):
        if not entry.is_dir():
            continue
        if _holds_parts(entry.path):
            out[entry.name] = entry.path
        else:
            for sub in sorted(os.scandir(entry.path), key=lambda e: e.name):
                if sub.is_dir() and _holds_parts(sub.path):
                    out[f"{entry.name}_{sub.name}"] = sub.path
    return out


def _holds_parts(path: str) -> bool:
    return any(n.endswith(".parquet") for n in os.listdir(path))


def batches(dataset_dir: str) -> Iterator[pa.RecordBatch]:
    """A dataset's rows in part order, a batch at a time (a directory, or a URL: ``exoflow.outputs``)."""
    from exoflow import outputs
    yield from outputs.dataset(outputs.parts(dataset_dir)).to_batches()


# ---- text output that pipes ------------------------------------------------------------

def _text_columns(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Without binary columns (``path_bytes``: exact names are for ``--format paths -0``)."""
    import pyarrow as pa
    keep = [i for i, f in enumerate(batch.schema) if not (pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type))]
    return batch.select(keep)


def write_rows(rows: Iterator[pa.RecordBatch], fmt: str, out: IO[bytes], nul: bool = False) -> int:
    """Write record batches as JSON lines, CSV (one header line) or paths; returns rows written.

    ``paths``: each row's exact path (``path_bytes`` where the name is not UTF-8), one per line,
    or NUL-terminated with ``nul`` (the only form safe for every name, as ``find -print0``)."""
    import pyarrow as pa

    from exoflow.paths import raw_paths
    text = None if fmt == "paths" else io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    writer = None
    n = 0
    for b in rows:
        n += b.num_rows
        if fmt == "paths":
            end = b"\0" if nul else b"\n"
            out.write(b"".join(os.fsencode(p) + end for p in raw_paths(pa.Table.from_batches([b]))))
            continue
        b = _text_columns(b)
        if fmt == "jsonl":
            text.write("".join(json.dumps(r, default=str, ensure_ascii=False) + "\n" for r in b.to_pylist()))
        else:
            if writer is None:
                writer = csv.writer(text)
                writer.writerow(b.schema.names)
            writer.writerows(zip(*(c.to_pylist() for c in b.columns)))
    if text is not None:
        text.flush()
        text.detach()
    out.flush()
    return n


def write_main_table(dataset_dir: str, fmt: str, nul: bool = False, out: IO[bytes] | None = None) -> int:
    """``exoflow run --format``: the run's main table to stdout."""
    return write_rows(batches(dataset_dir), fmt, out or sys.stdout.buffer, nul)


# ---- exoflow show --------------------------------------------------------------------

def show(out_dir: str, out: IO[str] | None = None) -> int:
    """Print a finished run's terminal tables again (its reducer's report of summary.json) and its
    last line. Raises UsageError for a directory without a run or a job that cannot be loaded."""
    summary = read_summary(out_dir)
    from exoflow.composed import load
    from exoflow.report import summary_line
    out = out or sys.stdout
    job = load(str(summary.get("job")))
    out.write(job.reducer.report(summary["result"], summary.get("params", {})) + "\n\n")
    for warning in summary["result"].get("warnings", []):
        out.write(f"warning: {warning}\n")
    out.write(summary_line(summary) + "\n")
    return 0


# ---- exoflow query -------------------------------------------------------------------

def connect(out_dir: str):
    """A DuckDB connection with a view per dataset of OUT. Raises UsageError without DuckDB."""
    try:
        import duckdb
    except ImportError:
        raise UsageError("exoflow query needs DuckDB: pip install 'exoflow[sql]' (or pip install duckdb)") from None
    found = datasets(out_dir)
    if not found:
        raise UsageError(f"{out_dir}: no Parquet datasets (not the output directory of an exoflow run)")
    con = duckdb.connect()
    for name, path in found.items():
        glob = os.path.join(os.path.abspath(path), "*.parquet").replace("'", "''")
        con.execute(f'CREATE VIEW "{name.replace(chr(34), chr(34) * 2)}" AS SELECT * FROM read_parquet(\'{glob}\')')
    return con


def query(out_dir: str, sql: str, fmt: str = "table", out: IO[bytes] | None = None) -> int:
    """Run ``sql`` over OUT's datasets and print the result. Raises UsageError when DuckDB is
    missing or the SQL fails (DuckDB's message, one line)."""
    from exoflow.tables import table
    con = connect(out_dir)
    import duckdb
    out = out or sys.stdout.buffer
    try:
        rel = con.sql(sql)
        if rel is None:          # a statement with no result (CREATE …)
            return 0
        # DuckDB 2 names it to_arrow_reader; 1.x fetch_arrow_reader
        reader = rel.to_arrow_reader() if hasattr(rel, "to_arrow_reader") else rel.fetch_arrow_reader()
        if fmt != "table":
            write_rows(iter(reader), fmt, out)
            return 0
        result = reader.read_all()
    except duckdb.Error as e:
        raise UsageError(f"query failed: {' '.join(str(e).split())}") from None
    rows = [["" if v is None else v for v in r] for r in zip(*(c.to_pylist() for c in result.columns))]
    out.write((table(f"{result.num_rows:,} row{'s' * (result.num_rows != 1)}", result.column_names, rows) + "\n").encode("utf-8", "replace"))
    out.flush()
    return 0


def main(command: str, argv: list[str]) -> int:
    """``exoflow show OUT`` and ``exoflow query OUT SQL [--format …]``."""
    if command == "show":
        p = Parser(prog="exoflow show", description="Print a finished run's tables again, from OUT/summary.json.")
        p.add_argument("out", metavar="OUT", type=local_path, help="the run's output directory")
        return show(p.parse_args(argv).out)
    p = Parser(prog="exoflow query", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", metavar="OUT", type=local_path, help="the run's output directory")
    p.add_argument("sql", metavar="SQL", help="DuckDB SQL; each dataset of OUT is a view: files, findings, duplicates, audit …")
    p.add_argument("--format", choices=QUERY_FORMATS, default="table",
                   help="table (default), jsonl or csv (with a header line)")
    args = p.parse_args(argv)
    return query(args.out, args.sql, args.format)
