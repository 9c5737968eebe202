"""SARIF 2.1.0 output for scan findings (what GitHub code scanning ingests).

Columns are Unicode code points (``columnKind: unicodeCodePoints``), 1-based, and
``endColumn`` is exclusive, as SARIF defines. Relative paths are written relative to
``%SRCROOT%`` (the directory the scan was started from); others as ``file://`` URIs.
Only redacted text ever reaches this file: it is built from the findings dataset.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Iterable
from urllib.parse import quote

from . import __version__
from .kernels.rules import Rule

LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "1.0"}
SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"


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
    """A relative URI under %SRCROOT% where the path lies under ``root``; else a file:// URI."""
    full = os.path.abspath(os.path.join(root, path))
    rel = os.path.relpath(full, root)
    if not rel.startswith(".."):
        return {"uri": quote(rel.replace(os.sep, "/")), "uriBaseId": "SRCROOT"}
    return {"uri": "file://" + quote(full)}


def result(f: dict, rule_index: dict[str, int], root: str) -> dict:
    region = {"startLine": f["line"], "startColumn": f["column"], "endLine": f["line"],
              "endColumn": f["end_column"], "snippet": {"text": f["match"]}}
    fp = hashlib.sha256(f"{f['rule']}\0{f['path']}\0{f['context']}".encode()).hexdigest()[:32]
    return {
        "ruleId": f["rule"],
        "ruleIndex": rule_index[f["rule"]],
        "level": LEVEL[f["severity"]],
        "message": {"text": f"{f['rule']}: {f['match']}"},
        "locations": [{"physicalLocation": {"artifactLocation": artifact_location(f["path"], root),
                                            "region": region,
                                            "contextRegion": {"startLine": f["line"],
                                                              "snippet": {"text": f["context"]}}}}],
        "partialFingerprints": {"exoflowFinding/v1": fp},
    }


def write_sarif(path: str, rules: Iterable[Rule], findings: Iterable[dict], root: str | None = None) -> int:
    """Stream findings (dicts with path, line, column, end_column, rule, severity, match,
    context) into a SARIF log at ``path``; returns the number of results."""
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
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as out:
        out.write(head + '"results": [')
        for f in findings:
            out.write(("," if n else "") + "\n  " + json.dumps(result(f, rule_index, root), ensure_ascii=False))
            n += 1
        out.write("\n ]" + tail + "\n")
    os.replace(tmp, path)
    return n
