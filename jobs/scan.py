"""Scan: find secrets, placeholder markers and emoji in file contents with rule packs.

Reads:    file contents (text files; binary files, with a NUL byte, are skipped);
          honours .gitignore by default; skips .git/ directories.
Computes: one row per finding: path, line, column (code points, 1-based), rule,
          severity, the match and a context line (secrets REDACTED everywhere).
Writes:   OUT/findings/*.parquet, OUT/scan.sarif (SARIF 2.1.0), OUT/summary.json;
          prints findings by severity and rule. --fail-on SEVERITY: exit 1 on findings
          at or above it (for CI); --baseline PREVIOUS: only findings not in an earlier
          scan count; inline allow comments (exoflow:allow, gitleaks:allow,
          pragma: allowlist secret) are honoured.

    exoflow run scan . --rules secrets,placeholders --fail-on high
"""
import argparse
import os

import pyarrow as pa

from exoflow.ops.scan import plots, tables
from exoflow import Argument, Finish, Job, Reads, WalkOptions, main, outputs
from exoflow.ops.scan.rules import PACKS, SEVERITIES, load_rules, parse_severity
from exoflow.ops.scan.kernel import ENGINES, engine_available, large_scans, scan_findings
from exoflow.ops.scan.reducer import ScanReducer, environment
from exoflow.options import count_at_least, local_path
from exoflow.ops.scan.sarif import Baseline, read_fingerprints, write_sarif
from exoflow.errors import UsageError


def engine_arg(name: str) -> str:
    if name not in ENGINES:
        raise UsageError(f"unknown engine {name!r} (one of: {', '.join(ENGINES)})")
    if name != "auto" and not engine_available(name):
        raise UsageError(f"engine {name} is not installed (pip install {'google-re2' if name == 're2' else name})")
    return name


def baseline_arg(spec: str) -> Baseline:
    """--baseline: an earlier scan's output directory (its findings dataset) or SARIF file."""
    local_path(spec)
    try:
        return Baseline(spec, read_fingerprints(spec))
    except (OSError, ValueError, KeyError, TypeError, pa.ArrowException) as e:
        raise UsageError(f"--baseline {spec}: {getattr(e, 'strerror', None) or e}") from None


def write_outputs(f: Finish) -> dict:
    """SARIF from the findings dataset (already redacted), written on the client: the
    findings reported (none suppressed by an allow comment or the baseline)."""
    result = dict(f.result)
    if f.params.get("sarif", True):
        import pyarrow.dataset as ds
        cols = ["path", "line", "column", "end_column", "rule", "severity", "match", "context", "fingerprint"]

        def findings():
            if not outputs.isdir(f.dataset_dir):
                return
            d = outputs.dataset(f.dataset_dir)
            for b in d.to_batches(columns=cols, filter=ds.field("rule").is_valid() & ds.field("suppressed").is_null()):
                yield from b.to_pylist()

        path = os.path.join(f.out_dir, "scan.sarif")
        write_sarif(path, f.params["rules"].rules, findings(), baseline=f.params.get("baseline") is not None)
        result["sarif"] = path
    return result


job = Job(
    name="scan",
    plots=plots.bars,
    tables=tables.tables,
    description=__doc__,
    kernels=[],
    reducer=ScanReducer(),
    reads=Reads(consume=large_scans),
    walk=WalkOptions(gitignore=True, exclude=(".git",)),     # repositories' .git, a worktree's .git file too
    dataset="findings",
    emit=scan_findings,
    after=write_outputs,
    arguments=[
        Argument("--rules", type=load_rules, default="secrets", metavar="PACKS",
                 help=f"comma-separated rule packs ({', '.join(PACKS)}) and/or rule files (.toml, .yaml); "
                      "default: secrets"),
        Argument("--fail-on", type=parse_severity, default=None, metavar="SEVERITY",
                 help=f"exit 1 when a finding at or above SEVERITY exists ({', '.join(SEVERITIES)})"),
        Argument("--engine", type=engine_arg, default="auto", metavar="NAME",
                 help="matching engine: auto (hyperscan, else re2, else re), hyperscan, re2, re"),
        Argument("--sarif", action=argparse.BooleanOptionalAction, default=True,
                 help="write OUT/scan.sarif (default: on)"),
        Argument("--top", type=count_at_least(0), default=20, metavar="N", help="findings listed on the terminal and in summary.json, most severe first (default: 20)"),
        Argument("--baseline", type=baseline_arg, default=None, metavar="PREVIOUS",
                 help="report (and --fail-on) only findings not in PREVIOUS: an earlier scan's output directory "
                      "or its scan.sarif, matched by fingerprint (rule, path, secret; not the line)"),
    ],
    environment=environment,
)

if __name__ == "__main__":
    main(job)
