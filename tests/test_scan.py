"""scan: planted secrets, placeholders and emoji found at their exact line and column by every
engine; secrets never in clear in any output; SARIF valid against the official schema."""
from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from conftest import REPO, exoflow, read_dataset
from exoflow.kernels import scan as S
from exoflow.kernels.rules import load_rules
from exoflow.sinks import UsageError

SCHEMA = REPO.parent / "shared" / "schemas" / "sarif-schema-2.1.0.json"
ENGINES = ["hyperscan", "re2", "re"]

# planted values (built at run time so this file holds no literal token)
AWS = "AKIA" + "Q7XK2M4PZR6TYW3N"
GHP = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A"
SLACK = "xoxb-" + "1234567890123-1234567890123-" + "aBcDeFgHiJkLmNoPqRsTuVwX"
PASSWORD = "Zq8#kLm2Vx9!pQ4w"
STRIPE = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"
PG_PASS = "s3cr3tP4ss"
SECRETS = [AWS, GHP, SLACK, PASSWORD, STRIPE, PG_PASS]

FILES = {
    "app.py": f'import os\n# TODO: remove this\nKEY = "{AWS}"\npassword = "{PASSWORD}"\n',
    "crlf.js": f"// FIXME later\r\nconst t = '{GHP}'; // caf\u00e9 \U0001F600\r\n",
    "emoji.md": "plain\nnote \u00e9\u00e8 \U0001F680 and \u2705 and \u2764\ufe0f end\n",
    "no-newline.txt": f"x {SLACK}",                          # match at the very end of a file
    "starts.cfg": f"{STRIPE} at the very start\n",          # match at the very start of the next file
    "db.yaml": f"url: postgres://admin:{PG_PASS}@db.internal:5432/app\n",
    "split.sh": "echo TOD",                                  # must not join with the next file
    "z.sh": "O\n# HACK: x\n",
}


def expected_hits() -> set[tuple[str, int, int, str]]:
    """(file, line, column, rule) computed with plain string methods (code points)."""
    planted = [("app.py", "TODO", "todo"), ("app.py", AWS, "aws-access-key-id"),
               ("app.py", PASSWORD, "generic-password-assignment"), ("crlf.js", "FIXME", "fixme"),
               ("crlf.js", GHP, "github-pat"), ("crlf.js", "\U0001F600", "emoji"),
               ("emoji.md", "\U0001F680", "emoji"), ("emoji.md", "\u2705", "emoji"),
               ("emoji.md", "\u2764", "emoji-presentation"), ("no-newline.txt", SLACK, "slack-bot-token"),
               ("starts.cfg", STRIPE, "stripe-secret-key"), ("db.yaml", PG_PASS, "database-url-credentials"),
               ("z.sh", "HACK", "hack")]
    out = set()
    for name, needle, rule in planted:
        text = FILES[name]
        i = text.index(needle)
        line = text.count("\n", 0, i) + 1
        col = i - (text.rfind("\n", 0, i) + 1) + 1
        out.add((name, line, col, rule))
    return out


def run_kernel(engine: str, files: dict[str, str]) -> set[tuple[str, int, int, str]]:
    rs = load_rules("secrets,placeholders,emoji")
    c = S.compiled_for(rs, engine)
    names = list(files)
    buf, lo, hi = S.pack_segments([files[n].encode() for n in names])
    rows = S._scan_segments(c, buf, lo, hi, np.ones(len(names), np.int64))
    return {(names[s], l, col, r) for s, l, col, r in zip(rows["seg"], rows["line"], rows["column"], rows["rule"])}


@pytest.mark.parametrize("engine", ENGINES)
def test_kernel_exact_positions(engine):
    assert S.engine_available(engine), f"{engine} must be installed for this test"
    assert run_kernel(engine, FILES) == expected_hits()


@pytest.mark.parametrize("engine", ENGINES)
def test_streamed_large_file_keeps_matches_across_pieces(engine):
    """A file streamed in small pieces: every match straddling a piece boundary is found."""
    rs = load_rules("secrets,placeholders")
    c = S.compiled_for(rs, engine)
    lines = [f"line {i} filler text" for i in range(300)]
    for k in range(5, 300, 37):
        lines[k] = f"k{k} = '{AWS}'  # TODO x"
    data = ("\r\n".join(lines) + "\n").encode()
    for piece in (7, 64, 1000):
        pieces = (memoryview(data)[i:i + piece] for i in range(0, len(data), piece))
        got, binary, nbytes = S.scan_large(c, pieces)
        assert not binary and nbytes == len(data)
        want = set()
        for k in range(5, 300, 37):
            want.add((k + 1, lines[k].index(AWS) + 1, "aws-access-key-id"))
            want.add((k + 1, lines[k].index("TODO") + 1, "todo"))
        assert set(zip(got["line"], got["column"], got["rule"])) == want, piece
        assert AWS not in json.dumps(got)


def test_binary_detection():
    data = np.frombuffer(b"text\x00bin" + b"plain" + b"", dtype=np.uint8)
    offsets = np.array([0, 8, 13, 13])
    assert S.binary_rows(data, offsets).tolist() == [True, False, False]


def test_entropy_and_allowlists(tmp_path):
    assert S.shannon_entropy(b"aaaa") == 0.0
    assert abs(S.shannon_entropy(b"abcd") - 2.0) < 1e-9
    rs = load_rules("secrets")
    c = S.compiled_for(rs, "re")
    text = b'password = "aaaaaaaaaaaa"\npassword = "example-Zq8#kLm2Vx9"\n'
    rows = S._scan_segments(c, text, np.array([0]), np.array([len(text)]), np.ones(1, np.int64))
    assert rows["rule"] == []     # low entropy; stopword "example"


def test_rules_files_toml_and_yaml(tmp_path):
    toml = tmp_path / "r.toml"
    toml.write_text("""
[allowlist]
paths = ['''skip[.]txt$''']
[[rules]]
id = "ticket"
description = "Ticket id"
severity = "low"
regex = '''\\b(TICKET-[0-9]{3,})\\b'''
keywords = ["ticket-"]
redact = false
""")
    yaml = tmp_path / "r.yaml"
    yaml.write_text("rules:\n  - id: internal-host\n    severity: high\n    regex: '(corp[.]internal)'\n")
    rs = load_rules(f"{toml},{yaml}")
    assert [r.id for r in rs.rules] == ["ticket", "internal-host"]
    assert rs.rules[0].redact is False and rs.rules[1].redact is True and rs.rules[1].severity == "high"
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "a.txt").write_text("see TICKET-1234 on corp.internal\n")
    (tree / "skip.txt").write_text("TICKET-999\n")
    out = tmp_path / "out"
    r = exoflow("run", "scan", str(tree), "--rules", f"{toml},{yaml}", "--out", str(out), "--no-dashboard")
    assert r.returncode == 0, r.stderr
    t = read_dataset(out / "findings").to_pylist()
    assert sorted((Path(x["path"]).name, x["rule"], x["column"], x["match"]) for x in t) == [
        ("a.txt", "internal-host", 20, "REDACTED"), ("a.txt", "ticket", 5, "TICKET-1234")]


@pytest.mark.parametrize("bad,msg", [
    ("nopack", "unknown rule pack 'nopack'"),
    ("{dir}/bad.toml", "bad.toml"),
    ("{dir}/badre.toml", "bad regex"),
    ("{dir}/missing.toml", "No such file"),
])
def test_bad_rules_one_line_exit_2(tmp_path, bad, msg):
    (tmp_path / "bad.toml").write_text("[[rules]\nid = 1\n")
    (tmp_path / "badre.toml").write_text("[[rules]]\nid = 'x'\nregex = '(unclosed'\n")
    r = exoflow("run", "scan", str(tmp_path), "--rules", bad.format(dir=tmp_path), "--out", str(tmp_path / "o"),
                "--no-dashboard")
    assert r.returncode == 2, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and msg in lines[0] and "Traceback" not in r.stderr, r.stderr
    with pytest.raises(UsageError):
        load_rules("nopack")


def make_tree(root: Path) -> None:
    for name, text in FILES.items():
        (root / name).write_bytes(text.encode())
    (root / "image.bin").write_bytes(b"\x89PNG\0\0" + AWS.encode() + b"\n")       # binary: skipped
    (root / "ignored").mkdir()
    (root / ".gitignore").write_text("ignored/\n")
    (root / "ignored" / "secret.py").write_text(f"k = '{AWS}'\n")                  # .gitignore: skipped
    big = "".join(f"row {i}\n" for i in range(2000)) + f"late = '{GHP}'\n"        # > --piece-size: streamed
    (root / "big.log").write_text(big)


def test_scan_job_end_to_end(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    make_tree(tree)
    out = tmp_path / "out"
    r = exoflow("run", "scan", str(tree), "--rules", "secrets,placeholders,emoji", "--out", str(out),
                "--no-dashboard", "--chunk-files", "3", "--piece-size", "4k", "--fail-on", "high")
    assert r.returncode == 1, r.stderr                      # critical/high findings exist
    t = read_dataset(out / "findings")
    rows = t.to_pylist()
    got = {(Path(x["path"]).name, x["line"], x["column"], x["rule"]) for x in rows if x["rule"]}
    want = expected_hits() | {("big.log", 2001, 9, "github-pat")}
    assert got == want
    summary = json.loads((out / "summary.json").read_text())
    res = summary["result"]
    assert res["findings"] == len(want) and res["binary_files"] == 1 and res["exit_code"] == 1
    assert summary["files"] == len(FILES) + 3               # + image.bin, big.log, .gitignore

    # no secret in clear anywhere: Parquet, SARIF, summary, terminal
    for path in out.rglob("*"):
        if path.is_file():
            blob = path.read_bytes()
            for s in SECRETS:
                assert s.encode() not in blob, (path, s)
    for s in SECRETS:
        assert s not in r.stdout and s not in r.stderr
    assert {x["match"] for x in rows if x["rule"] == "aws-access-key-id"} == {"REDACTED"}
    assert any("REDACTED" in x["context"] for x in rows if x["rule"] == "database-url-credentials")

    # SARIF: valid against the official schema; same findings; code point columns
    sarif = json.loads((out / "scan.sarif").read_text())
    assert SCHEMA.exists(), SCHEMA
    jsonschema.validate(sarif, json.loads(SCHEMA.read_text()))
    run = sarif["runs"][0]
    assert run["columnKind"] == "unicodeCodePoints"
    locs = {(Path(x["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]).name,
             x["locations"][0]["physicalLocation"]["region"]["startLine"],
             x["locations"][0]["physicalLocation"]["region"]["startColumn"], x["ruleId"]) for x in run["results"]}
    assert locs == want


def test_fail_on_threshold_and_json(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.py").write_text("# TODO x\n# FIXME y\n")
    base = ["run", "scan", str(tree), "--rules", "placeholders", "--no-dashboard", "--overwrite", "--out",
            str(tmp_path / "o")]
    assert exoflow(*base, "--fail-on", "high").returncode == 0
    r = exoflow(*base, "--fail-on", "medium", "--json")
    assert r.returncode == 1
    res = json.loads(r.stdout)["result"]
    assert res["by_severity"]["medium"] == 1 and res["by_severity"]["low"] == 1
    r = exoflow(*base, "--fail-on", "urgent")
    assert r.returncode == 2 and "unknown severity" in r.stderr
