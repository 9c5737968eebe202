"""scan: planted secrets, placeholders and emoji found at their exact line and column by every
engine; secrets never in clear in any output; SARIF valid against the official schema."""
from __future__ import annotations

import base64
import json
import random
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from conftest import REPO, exoflow, read_dataset
from exoflow.batch import fed
from exoflow.ops.scan import kernel as S
from exoflow.ops.scan.rules import load_rules
from exoflow.errors import UsageError

SCHEMA = REPO / "tests" / "data" / "sarif-schema-2.1.0.json"       # the official schema; source in tests/data/README.md
ENGINES = ["hyperscan", "re2", "re"]

# planted values (built at run time so this file holds no literal token)
AWS = "AKIA" + "Q7XK2M4PZR6TYW3N"
GHP = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A"
SLACK = "xoxb-" + "1234567890123-1234567890123-" + "aBcDeFgHiJkLmNoPqRsTuVwX"
PASSWORD = "Zq8#kLm2Vx9!pQ4w"
STRIPE = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"
PG_PASS = "s3cr3tP4ss"


def key_lines(seed: int) -> list[str]:
    """The base64 lines of a made-up 2048-bit PKCS#8 key: the standard ASN.1 start (the same in
    every such key, not secret) and random bytes."""
    body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC" + base64.b64encode(
        random.Random(seed).randbytes(1170)).decode()
    return [body[i:i + 64] for i in range(0, len(body), 64)]


# a multi-line PEM block; one body line has "/TODO+" (valid base64) after a "//", which the
# placeholders pack matches: that finding must not show the line
PEM_LINES = key_lines(1)
PEM_LINES[7] = PEM_LINES[7][:10] + "//" + PEM_LINES[7][12:30] + "/TODO+" + PEM_LINES[7][36:]
PEM = "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(PEM_LINES) + "\n-----END RSA PRIVATE KEY-----\n"
# a Google service account file: the key on ONE line, its newlines written as backslash-n
SA_LINES = key_lines(2)
SA_JSON = ('{"type": "service_account", "project_id": "demo", "private_key": "-----BEGIN PRIVATE KEY-----\\n'
           + "\\n".join(SA_LINES) + '\\n-----END PRIVATE KEY-----\\n", "client_email": '
           '"svc@demo.iam.gserviceaccount.com", "token_uri": "https://oauth2.googleapis.com/token"}\n')
# a JWT longer than the context kept around a match, inside a long minified line
_rng = random.Random(3)
_b64url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
JWT = ("eyJhbGciOiJIUzI1NiJ9.ey" + "".join(_rng.choice(_b64url) for _ in range(400)) + "."
       + "".join(_rng.choice(_b64url) for _ in range(300)))
MINIFIED = "var a=[" + ",".join(str(i) for i in range(400)) + f'];var cfg={{"auth":"{JWT}","n":[1,2,3]}};\n'


def distinctive(lines: list[str]) -> list[str]:
    """Several 12-byte pieces of a key body past the standard ASN.1 start (the first 51
    characters), from inside lines: the start of the body (what a context around the BEGIN
    marker would show first), then every other line."""
    pieces = [lines[0][52:64]] + [line[k:k + 12] for line in lines[1::2] for k in (0, 40)]
    return [p for p in pieces if len(p) == 12]


KEY_PIECES = distinctive(PEM_LINES) + distinctive(SA_LINES) + [PEM_LINES[7][40:52], PEM_LINES[7][12:24]]
SECRETS = [AWS, GHP, SLACK, PASSWORD, STRIPE, PG_PASS] + KEY_PIECES + [JWT[k:k + 12] for k in range(30, 700, 97)]

FILES = {
    "app.py": f'import os\n# TODO: remove this\nKEY = "{AWS}"\npassword = "{PASSWORD}"\n',
    "crlf.js": f"// FIXME later\r\nconst t = '{GHP}'; // caf\u00e9 \U0001F600\r\n",
    "emoji.md": "plain\nnote \u00e9\u00e8 \U0001F680 and \u2705 and \u2764\ufe0f end\n",
    "no-newline.txt": f"x {SLACK}",                          # match at the very end of a file
    "starts.cfg": f"{STRIPE} at the very start\n",          # match at the very start of the next file
    "db.yaml": f"url: postgres://admin:{PG_PASS}@db.internal:5432/app\n",
    "split.sh": "echo TOD",                                  # must not join with the next file
    "z.sh": "O\n# HACK: x\n",
    "id_rsa": PEM,
    "sa.json": SA_JSON,
    "min.js": MINIFIED,
    "page.html": "<p>\n  <!-- XXX: check this --> <b>\n",
}


def expected_hits() -> set[tuple[str, int, int, str]]:
    """(file, line, column, rule) computed with plain string methods (code points)."""
    planted = [("app.py", "TODO", "todo"), ("app.py", AWS, "aws-access-key-id"),
               ("app.py", PASSWORD, "generic-password-assignment"), ("crlf.js", "FIXME", "fixme"),
               ("crlf.js", GHP, "github-pat"), ("crlf.js", "\U0001F600", "emoji"),
               ("emoji.md", "\U0001F680", "emoji"), ("emoji.md", "\u2705", "emoji"),
               ("emoji.md", "\u2764", "emoji-presentation"), ("no-newline.txt", SLACK, "slack-bot-token"),
               ("starts.cfg", STRIPE, "stripe-secret-key"), ("db.yaml", PG_PASS, "database-url-credentials"),
               ("z.sh", "HACK", "hack"), ("id_rsa", "-----BEGIN", "private-key"), ("id_rsa", "TODO", "todo"),
               ("sa.json", "-----BEGIN", "private-key"), ("min.js", JWT, "jwt"), ("page.html", "XXX", "xxx")]
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
def test_match_is_the_reported_span(engine):
    """``match`` is the text from column to end_column (not the comment starter before a
    placeholder); secrets' matches are REDACTED, and nothing of a line from a secret on."""
    rs = load_rules("secrets,placeholders,emoji")
    c = S.compiled_for(rs, engine)
    names = list(FILES)
    buf, lo, hi = S.pack_segments([FILES[n].encode() for n in names])
    rows = S._scan_segments(c, buf, lo, hi, np.ones(len(names), np.int64))
    for seg, ln, col, end, rule, match, ctx, red in zip(*(rows[k] for k in (
            "seg", "line", "column", "end_column", "rule", "match", "context", "redacted"))):
        line = FILES[names[seg]].split("\n")[ln - 1].rstrip("\r")
        if red:
            assert match == "REDACTED" and ctx.endswith("REDACTED"), (rule, ctx)
            assert ctx[:-len("REDACTED")].strip() in line[:col - 1], (rule, ctx)   # only what precedes it
        else:
            assert match == line[col - 1:end - 1], (rule, match)
    got = {(names[s], r, m) for s, r, m in zip(rows["seg"], rows["rule"], rows["match"])}
    assert {("page.html", "xxx", "XXX"), ("z.sh", "hack", "HACK"), ("app.py", "todo", "TODO"),
            ("crlf.js", "fixme", "FIXME")} <= got


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
        got, binary, nbytes = fed(S.LargeScan(c), pieces).finish()
        assert not binary and nbytes == len(data)
        want = set()
        for k in range(5, 300, 37):
            want.add((k + 1, lines[k].index(AWS) + 1, "aws-access-key-id"))
            want.add((k + 1, lines[k].index("TODO") + 1, "todo"))
        assert set(zip(got["line"], got["column"], got["rule"])) == want, piece
        assert AWS not in json.dumps(got)


def test_binary_detection():
    from exoflow.kernels.bytestats import nul_rows
    data = np.frombuffer(b"text\x00bin" + b"plain" + b"" + b"\x00" + b"\x00tail", dtype=np.uint8)
    offsets = np.array([0, 8, 13, 13, 14, 19])
    assert nul_rows(data, offsets).tolist() == [True, False, False, True, True]
    # bytes past the last offset (a buffer with slack) do not count for the last file
    assert nul_rows(np.frombuffer(b"ab\x00", dtype=np.uint8), np.array([0, 2])).tolist() == [False]


def test_entropy_and_allowlists(tmp_path):
    # scan uses the profile kernel's entropy (one shared implementation)
    from exoflow.kernels.bytestats import byte_entropy
    assert byte_entropy(b"") == 0.0 and byte_entropy(b"aaaa") == 0.0
    assert abs(byte_entropy(b"abcd") - 2.0) < 1e-9
    assert abs(byte_entropy(b"aab") - 0.9182958340544896) < 1e-12
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

    # no secret in clear anywhere: Parquet (raw and decoded), SARIF, summary, report.html, terminal
    assert_no_secrets(out, r, rows)
    assert {x["match"] for x in rows if x["rule"] == "aws-access-key-id"} == {"REDACTED"}
    assert any("REDACTED" in x["context"] for x in rows if x["rule"] == "database-url-credentials")
    # private keys: the one-line JSON key is one secret up to its END marker; the TODO inside the
    # multi-line block is reported, but neither its match nor its context shows the line
    sa = next(x for x in rows if x["rule"] == "private-key" and x["path"].endswith("sa.json"))
    sa_line = SA_JSON.splitlines()[0]
    assert sa["end_column"] - 1 == sa_line.index("-----END PRIVATE KEY-----") + len("-----END PRIVATE KEY-----")
    assert sa["context"] == sa_line[:sa_line.index("-----BEGIN")] + "REDACTED"
    todo = next(x for x in rows if x["rule"] == "todo" and x["path"].endswith("id_rsa"))
    assert (todo["match"], todo["context"], todo["redacted"]) == ("REDACTED", "REDACTED", True)
    jwt = next(x for x in rows if x["rule"] == "jwt")
    assert jwt["context"].endswith('"auth":"REDACTED') and len(jwt["context"]) <= S.CONTEXT_MAX + 8

    # the match is the text from column to end_column (code points), for every rule not redacted
    shown = [x for x in rows if x["rule"] and not x["redacted"]]
    assert {x["rule"] for x in shown} >= {"todo", "fixme", "hack", "xxx", "emoji", "emoji-presentation"}
    for x in shown:
        line = FILES[Path(x["path"]).name].split("\n")[x["line"] - 1]
        assert x["match"] == line[x["column"] - 1:x["end_column"] - 1], x
    assert {x["match"] for x in shown if x["rule"] == "xxx"} == {"XXX"}

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


def assert_no_secrets(out: Path, r, rows: list[dict]) -> None:
    """No planted secret (nor a 12-byte piece of a key body or a long token) in any output
    file, in any decoded value of the findings, on stdout or stderr."""
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {"summary.json", "report.html", "scan.sarif"} <= {p.name for p in files}
    assert any(p.suffix == ".parquet" for p in files)
    for path in files:
        blob = path.read_bytes()
        for s in SECRETS:
            assert s.encode() not in blob, (path, s)
    values = json.dumps(rows, default=str, ensure_ascii=False)
    for s in SECRETS:
        assert s not in values, s
        assert s not in r.stdout and s not in r.stderr, s


@pytest.mark.parametrize("engine", ENGINES)
def test_private_key_block_hidden_across_streamed_windows(engine):
    """A PEM block in a streamed file: a match inside it, in a later window than its BEGIN
    line, shows nothing of the line; outside the block lines show again."""
    rs = load_rules("secrets,placeholders")
    c = S.compiled_for(rs, engine)
    data = ("# TODO before\n" + "x\n" * 50 + PEM + "# TODO after\n").encode()
    for piece in (7, 100, 4096):
        pieces = (memoryview(data)[i:i + piece] for i in range(0, len(data), piece))
        got, _, _ = fed(S.LargeScan(c), pieces).finish()
        rows = sorted(zip(got["line"], got["rule"], got["match"], got["context"]))
        pem_line = 52                                      # the BEGIN line
        assert rows == [(1, "todo", "TODO", "# TODO before"),
                        (pem_line, "private-key", "REDACTED", "REDACTED"),
                        (pem_line + 8, "todo", "REDACTED", "REDACTED"),
                        (pem_line + len(PEM_LINES) + 2, "todo", "TODO", "# TODO after")], piece
        assert not any(k in json.dumps(got) for k in KEY_PIECES)


def test_top_above_20_with_many_chunks(tmp_path):
    """--top 30 over many chunks gives the first 30 findings (the merge used to keep 20)."""
    tree = tmp_path / "tree"
    tree.mkdir()
    for i in range(12):
        (tree / f"f{i:02}.py").write_text("".join(f"# TODO item {k}\n" for k in range(5)))
    r = exoflow("run", "scan", str(tree), "--rules", "placeholders", "--no-dashboard", "--out",
                str(tmp_path / "o"), "--chunk-files", "2", "--top", "30", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)["result"]
    assert res["findings"] == 60
    got = [(Path(e["path"]).name, e["line"]) for e in res["examples"]]
    assert got == [(f"f{i:02}.py", k + 1) for i in range(12) for k in range(5)][:30]


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
