"""SARIF 2.1.0 output for scan findings (what GitHub code scanning ingests).

Columns are Unicode code points (``columnKind: unicodeCodePoints``), 1-based, and
``endColumn`` is exclusive, as SARIF defines. Relative paths are written relative to
``%SRCROOT%`` (the directory the scan was started from); others as ``file://`` URIs; objects
(``s3://…``) as their absolute URLs.
Only redacted text ever reaches this file: it is built from the findings dataset. Each
result carries the finding's fingerprint in ``partialFingerprints`` (``exoflowFingerprint/v1``),
which ``--baseline`` reads back.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Iterable
from urllib.parse import quote

from exoflow import __version__
from exoflow import outputs
from exoflow.ops.scan.rules import Rule
from exoflow.sources.objects import is_url

LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "1.0"}
SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
FINGERPRINT_KEY = "exoflowFingerprint/v1"    # partialFingerprints: the findings' fingerprint column


@dataclass(frozen=True)
class Baseline:
    """What --baseline names: its path (what summary.json records) and its fingerprints."""

    spec: str
    fingerprints: frozenset[str]

    def __str__(self) -> str:
        return self.spec


def read_fingerprints(path: str) -> frozenset[str]:
    """The fingerprints of an earlier scan: ``path`` is its output directory (the
    ``fingerprint`` column of every finding in ``findings/``, or else its ``scan.sarif``)
    or a SARIF file (``partialFingerprints``). Raises OSError (unreadable), ValueError
    (no fingerprints: not a scan output, or one from before fingerprints)."""
    if os.path.isdir(path):
        dataset = os.path.join(path, "findings")
        if os.path.isdir(dataset):
            import pyarrow.dataset as ds
            d = ds.dataset(dataset, format="parquet")
            if "fingerprint" not in d.schema.names:
                raise ValueError("its findings have no fingerprints (written by an older exoflow); scan again")
            col = d.to_table(columns=["fingerprint"], filter=ds.field("fingerprint").is_valid()).column(0)
            return frozenset(col.to_pylist())
        path = os.path.join(path, "scan.sarif")
        if not os.path.exists(path):
            raise ValueError("not a scan output directory (no findings/ nor scan.sarif)")
    with open(path, "rb") as f:
        try:
            doc = json.load(f)
        except ValueError:
            raise ValueError("not a SARIF file (not JSON)") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("runs"), list):
        raise ValueError("not a SARIF file (no runs)")
    fps = [r.get("partialFingerprints", {}).get(FINGERPRINT_KEY) for run in doc["runs"]
           for r in run.get("results") or []]
    if fps and not all(fps):
        raise ValueError(f"results without an {FINGERPRINT_KEY} fingerprint (not written by this exoflow)")
    return frozenset(fps)


def rule_descriptor(r: Rule) -> dict:
    d = {
        "id": r.id,
        "name": "".join(w.capitalize() for w in r.id.replace("_", "-").split("-")),
        "shortDescription": {"text": r.description},
        "fullDescription": {"text": f"{r.description} (rule {r.id}, severity {r.severity})"},
        "defaultConfiguration": {"level": LEVEL[r.severity]},
        "properties": {"tags": ["security", "secret"] if r.redact else ["maintainability"]},
    }
    if r.redact:   # GitHub ranks security alerts by this number
        d["properties"]["security-severity"] = SECURITY_SEVERITY[r.severity]
    return d


def artifact_location(path: str, root: str) -> dict:
    """A relative URI under %SRCROOT% where the path lies under ``root``; else a file:// URI; an
    object's URL (``s3://bucket/key``) as itself, its key percent-encoded (RFC 3986), no base."""
    if is_url(path):
        scheme, rest = path.split("://", 1)
        return {"uri": f"{scheme}://{quote(rest)}"}
    full = os.path.abspath(os.path.join(root, path))
    rel = os.path.relpath(full, root)
    if not rel.startswith(".."):
        return {"uri": quote(rel.replace(os.sep, "/")), "uriBaseId": "SRCROOT"}
    return {"uri": "file://" + quote(full)}


def result(f: dict, rule_index: dict[str, int], root: str, baseline: bool = False) -> dict:
    region = {"startLine": f["line"], "startColumn": f["column"], "endLine": f["line"],
              "endColumn": f["end_column"], "snippet": {"text": f["match"]}}
    out = {
        "ruleId": f["rule"],
        "ruleIndex": rule_index[f["rule"]],
        "level": LEVEL[f["severity"]],
        "message": {"text": f"{f['rule']}: {f['match']}"},
        "locations": [{"physicalLocation": {"artifactLocation": artifact_location(f["path"], root),
                                            "region": region,
                                            "contextRegion": {"startLine": f["line"],
                                                              "snippet": {"text": f["context"]}}}}],
        "partialFingerprints": {FINGERPRINT_KEY: f["fingerprint"]},
    }
    if baseline:      # compared with a --baseline: every result written is new
        out["baselineState"] = "new"
    return out


def write_sarif(path: str, rules: Iterable[Rule], findings: Iterable[dict], root: str | None = None,
                baseline: bool = False) -> int:
    """Stream findings (dicts with path, line, column, end_column, rule, severity, match,
    context, fingerprint) into a SARIF log at ``path``; returns the number of results.
    ``baseline``: the findings were compared with a baseline (``baselineState: new``)."""
    root = os.path.abspath(root or os.getcwd())
    rules = list(rules)
    rule_index = {r.id: i for i, r in enumerate(rules)}
    run = {
        "tool": {"driver": {"name": "exoflow-scan", "version": __version__, "semanticVersion": __version__,
                            "informationUri": "https://github.com/exoflow/exoflow",
                            "rules": [rule_descriptor(r) for r in rules]}},
        "originalUriBaseIds": {"SRCROOT": {"uri": "file://" + quote(root.rstrip("/") + "/")}},
        "columnKind": "unicodeCodePoints",
        "results": [],
    }
    head, tail = json.dumps({"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}, indent=1).rsplit('"results": []', 1)
    n = 0
    with outputs.atomic_write(path) as out:
        out.write(head + '"results": [')
        for f in findings:
            out.write(("," if n else "") + "\n  " + json.dumps(result(f, rule_index, root, baseline),
                                                                ensure_ascii=False))
            n += 1
        out.write("\n ]" + tail + "\n")
    return n
