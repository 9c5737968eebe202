"""scan on real-world spellings (issue 11): secret keywords inside identifiers of every naming
style, secrets in string-escaped text, unquoted config values, UTF-16 by BOM (ripgrep as the
oracle), contexts cut on character boundaries, every secret-rule span redacted in every output,
--baseline with fingerprints, inline allow comments, and the engine named. Expected lines and
columns are computed from the planted text with plain string methods (code points)."""
from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from conftest import REPO, exoflow, read_dataset
from exoflow.ops.scan import kernel as S
from exoflow.ops.scan.rules import load_rules
from exoflow.errors import UsageError

SCHEMA = REPO / "tests" / "data" / "sarif-schema-2.1.0.json"       # the official schema; source in tests/data/README.md
_rng = random.Random(11)
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789!#%+/=@^~"


def value() -> str:
    """A random 24-character password starting with a letter or digit (a bare value starting
    with YAML/INI syntax such as ! # & * | > is not taken for a secret) and ending with a digit
    (letters alone make a name, not a secret); built at run time: this file holds no secret."""
    return (_rng.choice(_ALPHABET[:56]) + "".join(_rng.choice(_ALPHABET) for _ in range(22))
            + _rng.choice("23456789"))


GHP = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A"
AWS = "AKIA" + "Q7XK2M4PZR6TYW3N"

# (file, line template with {v}): each line must give ONE finding of the rule, at {v}
QUOTED = [
    ("a.py", 'db_password = "{v}"'), ("a.py", 'DB_PASSWORD = "{v}"'), ("a.py", "self.dbPassword = '{v}'"),
    ("a.py", 'token = "{v}"'), ("a.py", 'API_KEY = "{v}"'), ("a.py", 'client_secret: str = "{v}"'),
    ("a.py", 'auth_token_prod = "{v}"'), ("a.py", 'login(user="bob", passwd=b"{v}")'),
    ("app.js", "const githubToken = `{v}`;"), ("app.js", 'config.db.password = "{v}";'),
    ("main.go", 'var dbPass string = "{v}"'), ("main.c", 'static const char admin_pwd[] = "{v}";'),
    ("Main.java", 'private static final String SECRET_KEY = "{v}";'), ("config.json", '{{"db-password": "{v}"}}'),
    ("values.yaml", '  dbPassword: "{v}"'), ("deploy.sh", 'export DB_PASSWORD="{v}"'), (".env", 'DB_PASSWORD="{v}"'),
    ("settings.rb", "  :api_key => '{v}',"), ("index.php", '$dbPassword = "{v}";'),
    # string-escaped text: notebooks, JSON in JSON (once and twice), escaped strings in code, HTML
    ("nb.ipynb", '    "password = \\"{v}\\"\\n",'), ("nested.json", '{{"body": "{{\\"api_token\\": \\"{v}\\"}}"}}'),
    ("twice.json", '"{{\\\\\\"secret\\\\\\": \\\\\\"{v}\\\\\\"}}"'), ("b.py", 's = "cfg: {{\\"password\\": \\"{v}\\"}}"'),
    ("page.html", '<div data-cfg="{{&quot;token&quot;: &quot;{v}&quot;}}"></div>'),
]
UNQUOTED = [
    (".env", "DB_PASS={v}"), (".env.production", "export STRIPE_TOKEN={v}"),
    ("application.properties", "app.datasource.password={v}"), ("db.ini", "password = {v}"),
    ("config.yaml", "  password: {v}"), ("docker-compose.yml", "      - POSTGRES_PASSWORD={v}"),
    ("Dockerfile.prod", "ENV DB_PASSWORD={v}"), ("run.sh", "DB_PASSWORD={v} ./start"),
    ("settings.cfg", "secret_key: {v}"),
]
PAIRS = [
    ("appsettings.json", '{{"Db": "Server=db;Database=app;User Id=sa;Password={v};"}}'),
    ("README.md", 'curl "https://api.example.org/v1/items?access_token={v}&page=2"'),
    ("README.md", "run: mysql --db-password={v} -u root"), ("env.json", '{{"env": "DB_PASSWORD={v}\\nDEBUG=1"}}'),
]
XML = [("settings.xml", "<server><id>x</id><password>{v}</password></server>"),
       ("web.config", '<add key="DbPassword" value="{v}" />'), ("app.xml", "  <db.password>{v}</db.password>")]
TOKENS = [("log.json", '{{"msg": "line1\\n' + GHP + '"}}', GHP, "github-pat"),
          ("log.json", '{{"k": "aws\\t' + AWS + '"}}', AWS, "aws-access-key-id")]
# none of these is a finding
NOT_SECRETS = [
    ("c.py", 'tokenizer = "{v}"'), ("c.py", 'bypass = "{v}"'), ("c.py", "password = get_password_from_vault()"),
    ("c.py", 'token_url = "https://auth.internal/oauth2/token"'), ("c.py", 'password_file = "/etc/app/{v}"'),
    ("c.py", 'NextToken = "{v}"'), ("c.py", 'password = "0f8fad5b-d9cb-469f-a165-70867728950e"'),
    ("c.py", 'password = "${{DB_PASSWORD}}"'), ("c.py", 'secret = "SYMMETRIC_DEFAULT"'),
    ("c.py", 'db_password = f"{{prefix}}-{v}"'), ("c.py", "password = {v}"), ("c.py", "password=getPassword();"),
    ("c.js", "n.token=e.token;"), ("c.xml", "<password_file>/etc/{v}</password_file>"),
]


def planted_tree(root: Path) -> tuple[set, list[str]]:
    """The cases written under ``root``: (file, line, column, rule) expected, and the values."""
    want: set = set()
    values: list[str] = [GHP, AWS]
    files: dict[str, list[str]] = {}
    cases = ([(n, t, "generic-password-assignment") for n, t in QUOTED]
             + [(n, t, "generic-password-config") for n, t in UNQUOTED]
             + [(n, t, "generic-password-pair") for n, t in PAIRS] + [(n, t, "generic-password-xml") for n, t in XML]
             + [(n, t, None) for n, t in NOT_SECRETS])
    for name, template, rule in cases:
        v = value()
        line = template.format(v=v)
        files.setdefault(name, []).append(line)
        values.append(v)
        if rule:
            want.add((name, len(files[name]), line.index(v) + 1, rule))
    for name, line, token, rule in TOKENS:
        files.setdefault(name, []).append(line)
        want.add((name, len(files[name]), line.index(token) + 1, rule))
    for name, lines in files.items():
        (root / name).write_text("\n".join(lines) + "\n")
    return want, values


@pytest.mark.parametrize("engine", ["hyperscan", "re2", "re"])
def test_keywords_in_identifiers_escaped_and_unquoted(tmp_path, engine):
    """Items 1-3: every spelling is found at its value, once, by every engine; the look-alikes
    are not."""
    tree = tmp_path / "t"
    tree.mkdir()
    want, values = planted_tree(tree)
    out = tmp_path / "o"
    r = exoflow("run", "scan", str(tree), "--engine", engine, "--out", str(out), "--no-dashboard")
    assert r.returncode == 0, r.stderr
    rows = read_dataset(out / "findings").to_pylist()
    got = {(Path(x["path"]).name, x["line"], x["column"], x["rule"]) for x in rows}
    assert got == want, (got - want, want - got)
    assert_nothing_shown(out, r, values)


def assert_nothing_shown(out: Path, r, values: list[str]) -> None:
    """None of ``values`` in any output file (Parquet, SARIF, summary.json, report.html) nor
    on the terminal."""
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {"summary.json", "report.html", "scan.sarif"} <= {p.name for p in files}
    for path in files:
        blob = path.read_bytes()
        for v in values:
            assert v.encode() not in blob, (path, v)
    for v in values:
        assert v not in r.stdout and v not in r.stderr, v


def test_contexts_redacted_for_every_secret_span(tmp_path):
    """Item 3: a placeholder on a line whose secret is reported, or matched by a secret rule but
    not reported (a stopword, an unquoted value in code, an allowlisted name), shows nothing
    from that secret on, in any output."""
    tree = tmp_path / "t"
    tree.mkdir()
    v = [value() for _ in range(5)]
    lines = {
        "application.properties": f"app.datasource.password={v[0]}  # TODO rotate\n",
        "a.py": f'password = "example-{v[1]}"  # TODO\n'           # stopword "example": not reported
                f"password = {v[2]}  # FIXME\n"                     # unquoted in code: not reported
                f'token_url = "https://x.org/?t={v[3]}"  # XXX\n'  # an allowlisted name
                f'aws = "{v[4]}"  # TODO\n',                         # no secret rule matches: shown
    }
    for name, text in lines.items():
        (tree / name).write_text(text)
    out = tmp_path / "o"
    r = exoflow("run", "scan", str(tree), "--rules", "secrets,placeholders", "--out", str(out), "--no-dashboard")
    assert r.returncode == 0, r.stderr
    rows = read_dataset(out / "findings").to_pylist()
    got = {(Path(x["path"]).name, x["line"], x["rule"], x["context"]) for x in rows}
    assert got == {
        ("application.properties", 1, "generic-password-config", "app.datasource.password=REDACTED"),
        ("application.properties", 1, "todo", "app.datasource.password=REDACTED"),
        ("a.py", 1, "todo", 'password = "REDACTED'),
        ("a.py", 2, "fixme", "password = REDACTED"),
        ("a.py", 3, "xxx", 'token_url = "REDACTED'),
        ("a.py", 4, "todo", f'aws = "{v[4]}"  # TODO'),
    }
    assert_nothing_shown(out, r, v[:4])


def rg_matches(tree: Path, pattern: str) -> set[tuple[str, int, int]]:
    """(file name, line, code point column) of each match, from ripgrep's JSON output."""
    rg = shutil.which("rg")
    assert rg, "ripgrep (rg) is the oracle: .ci/apt-packages.txt installs it"
    p = subprocess.run([rg, "--json", "-e", pattern, str(tree)], capture_output=True, text=True)
    out = set()
    for line in p.stdout.splitlines():
        ev = json.loads(line)
        if ev["type"] == "match":
            text = ev["data"]["lines"]["text"].encode()
            for sm in ev["data"]["submatches"]:
                out.add((Path(ev["data"]["path"]["text"]).name, ev["data"]["line_number"],
                         len(text[:sm["start"]].decode()) + 1))
    return out


def test_utf16_by_bom_as_ripgrep(tmp_path):
    """Item 4: UTF-16 LE and BE with a BOM (CRLF too, and streamed in pieces) are decoded;
    lines and columns refer to the decoded text, as ripgrep reports them. A UTF-8 BOM is not
    a column either."""
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "deploy.yml").write_bytes(f"\ufeffname: déploy\n  gh: \"café {GHP}\"\n".encode("utf-16-le"))
    (tree / "be.txt").write_bytes(f"\ufeffx\r\ny\r\n€ {GHP}\r\n".encode("utf-16-be"))
    (tree / "bom8.txt").write_bytes(f"\ufeff{GHP}\n".encode())
    big = "".join(f"row {i} é\n" for i in range(3000)) + f"late {GHP}\n"
    (tree / "big.log").write_bytes(("\ufeff" + big).encode("utf-16-le"))
    (tree / "nul.txt").write_bytes(f"\ufeffa\0b {GHP}\n".encode("utf-16-le"))      # decoded text has a NUL
    want = {(n, line, col, "github-pat") for n, line, col in rg_matches(tree, "ghp_[A-Za-z0-9]{36}")}
    assert {w[0] for w in want} == {"deploy.yml", "be.txt", "bom8.txt", "big.log"}       # rg decodes them too
    assert ("deploy.yml", 2, 13, "github-pat") in want and ("bom8.txt", 1, 1, "github-pat") in want   # by hand
    out = tmp_path / "o"
    r = exoflow("run", "scan", str(tree), "--out", str(out), "--no-dashboard", "--piece-size", "4k", "--json")
    assert r.returncode == 0, r.stderr
    got = {(Path(x["path"]).name, x["line"], x["column"], x["rule"]) for x in read_dataset(out / "findings").to_pylist()}
    assert got == want
    res = json.loads(r.stdout)["result"]
    assert res["binary_files"] == 1 and res["scanned_files"] == 4


@pytest.mark.parametrize("char", ["é", "中", "\U0001F600"])
@pytest.mark.parametrize("shift", [0, 1, 2, 3])
def test_context_cut_on_character_boundaries(char, shift):
    """Item 5: a context window whose ends fall inside a multi-byte character never shows
    U+FFFD; it is a piece of the line as the file holds it."""
    c = S.compiled_for(load_rules("placeholders"), "re")
    lines = ["# TODO " + "x" * shift + char * 200, "y" * shift + char * 200 + " # TODO",
             char * 100 + "z" * shift + " # TODO " + char * 100]
    for line in lines:
        buf = (line + "\n").encode()
        rows = S._scan_segments(c, buf, np.array([0]), np.array([len(buf)]), np.ones(1, np.int64))
        (ctx,) = rows["context"]
        assert "\ufffd" not in ctx and ctx in line and "TODO" in ctx, (line[:20], ctx[:20])
        assert len(ctx.encode()) <= S.CONTEXT_MAX


def test_baseline_and_inline_allow_comments(tmp_path):
    """Item 13: with --baseline, a secret that moved (lines added above it) is not new, an
    edited one is; inline allow comments (exoflow's, gitleaks', detect-secrets' on the line
    and on the line before) suppress their line; SARIF carries the fingerprints, and a
    baseline given as the SARIF file works the same."""
    tree = tmp_path / "t"
    tree.mkdir()
    a, b, c = value(), value(), value()
    (tree / "app.py").write_text(f'db_password = "{a}"\n# TODO later\n')
    (tree / "conf.py").write_text(f'api_key = "{b}"\n')
    first = tmp_path / "first"
    r = exoflow("run", "scan", str(tree), "--rules", "secrets,placeholders", "--out", str(first), "--no-dashboard",
                "--fail-on", "medium")
    assert r.returncode == 1, r.stderr
    rows = read_dataset(first / "findings").to_pylist()
    sarif = json.loads((first / "scan.sarif").read_text())["runs"][0]["results"]
    assert sorted(x["fingerprint"] for x in rows) == sorted(x["partialFingerprints"]["exoflowFingerprint/v1"]
                                                            for x in sarif)
    # moved: three lines above; edited: b changes; new lines: allowed in four ways, one not
    (tree / "app.py").write_text(f'\n\n\ndb_password = "{a}"\n# TODO later\n')
    (tree / "conf.py").write_text(f'api_key = "{b}Q"\n'
                                  f'password = "{c}1"  # gitleaks:allow\n'
                                  f'password = "{c}2"  # pragma: allowlist secret\n'
                                  f'password = "{c}3"  # exoflow:allow\n'
                                  f'# pragma: allowlist nextline secret\npassword = "{c}4"\n'
                                  f'password = "{c}5"\n')
    for base in (first, first / "scan.sarif"):
        out = tmp_path / "second"
        r = exoflow("run", "scan", str(tree), "--rules", "secrets,placeholders", "--out", str(out), "--no-dashboard",
                    "--overwrite", "--fail-on", "medium", "--baseline", str(base), "--json")
        assert r.returncode == 1, r.stderr
        rows = read_dataset(out / "findings").to_pylist()
        got = {(Path(x["path"]).name, x["line"], x["rule"], x["suppressed"]) for x in rows}
        assert got == {("app.py", 4, "generic-password-assignment", "baseline"), ("app.py", 5, "todo", "baseline"),
                       ("conf.py", 1, "generic-password-assignment", None),
                       ("conf.py", 2, "generic-password-assignment", "inline"),
                       ("conf.py", 3, "generic-password-assignment", "inline"),
                       ("conf.py", 4, "generic-password-assignment", "inline"),
                       ("conf.py", 6, "generic-password-assignment", "inline"),
                       ("conf.py", 7, "generic-password-assignment", None)}
        res = json.loads(r.stdout)["result"]
        assert res["findings"] == 2 and res["suppressed"] == {"inline": 4, "baseline": 2}
        assert {(e["path"].rsplit("/", 1)[1], e["line"]) for e in res["examples"]} == {("conf.py", 1), ("conf.py", 7)}
        doc = json.loads((out / "scan.sarif").read_text())
        jsonschema.validate(doc, json.loads(SCHEMA.read_text()))
        results = doc["runs"][0]["results"]
        assert sorted(x["locations"][0]["physicalLocation"]["region"]["startLine"] for x in results) == [1, 7]
        assert {x["baselineState"] for x in results} == {"new"}
    # only baselined and allowed findings: --fail-on passes
    (tree / "conf.py").write_text(f'api_key = "{b}"\n')
    r = exoflow("run", "scan", str(tree), "--out", str(tmp_path / "third"), "--no-dashboard", "--fail-on", "low",
                "--baseline", str(first))
    assert r.returncode == 0, r.stderr


def test_fingerprints_survive_moves_not_edits():
    """The fingerprint hashes rule, path relative to the scanned root and secret, not the line;
    the same secret twice in a file gives :1 and :2."""
    rs = load_rules("secrets")
    v = value()

    def fps(text: str, depth: int = 1, path: str = "/r/x.py") -> list[str]:
        import pyarrow as pa
        c = S.compiled_for(rs, "re")
        buf = text.encode()
        rows = S._scan_segments(c, buf, np.array([0]), np.array([len(buf)]), np.ones(1, np.int64))
        files = pa.table({"path": [path], "path_bytes": [path.encode()], "depth": pa.array([depth], pa.int32())})
        return S._findings_table(files, np.zeros(len(rows["seg"]), np.int64), rows, c).column("fingerprint").to_pylist()

    one = fps(f'token = "{v}"\n')
    assert len(one) == 1 and one[0].endswith(":1")
    assert fps(f'\n\nx = 1\ntoken = "{v}"\n') == one                  # moved
    assert fps(f'token = "{v}"\n', path="/elsewhere/r/x.py") == one    # another checkout of the tree
    assert fps(f'token = "{v}X"\n') != one                              # edited
    two = fps(f'token = "{v}"\npassword = "{v}"\n')
    assert [f.split(":")[1] for f in two] == ["1", "2"] and two[0] == one[0]


def test_bad_baseline_one_line_exit_2(tmp_path):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "a.py").write_text("x = 1\n")
    (tmp_path / "notjson.sarif").write_text("{")
    for bad, msg in ((tmp_path / "missing", "No such file"), (tmp_path / "t", "not a scan output"),
                     (tmp_path / "notjson.sarif", "not a SARIF file")):
        r = exoflow("run", "scan", str(tmp_path / "t"), "--out", str(tmp_path / "o"), "--no-dashboard",
                    "--baseline", str(bad))
        lines = [x for x in r.stderr.splitlines() if x.strip()]
        assert r.returncode == 2 and len(lines) == 1 and msg in lines[0] and "Traceback" not in r.stderr, r.stderr
        assert not (tmp_path / "o").exists()


def test_engine_named_in_info_and_first_line(tmp_path):
    """Item 12: `exoflow info` and the scan's first line say which engine runs; without
    Hyperscan and RE2 the fallback says so, and finds the same."""
    from exoflow.ops.scan.kernel import resolve_engine
    info = json.loads(exoflow("info", "--json").stdout)
    assert resolve_engine("auto") == "hyperscan"
    assert info["jobs"]["scan engine"] == "hyperscan"
    assert "scan engine" in exoflow("info").stdout
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "a.py").write_text(f'db_password = "{value()}"\n# TODO x\n')
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    for mod in ("hyperscan", "re2"):
        (blocked / f"{mod}.py").write_text("raise ModuleNotFoundError('hidden by the test')\n")
    import os
    env = {**os.environ, "PYTHONPATH": f"{blocked}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    found = {}
    for name, kw in (("fast", {}), ("slow", {"env": env})):
        r = exoflow("run", "scan", str(tree), "--rules", "secrets,placeholders", "--out", str(tmp_path / name),
                    "--no-dashboard", **kw)
        assert r.returncode == 0, r.stderr
        found[name] = r.stdout.splitlines()[0], {(x["line"], x["column"], x["rule"])
                                                 for x in read_dataset(tmp_path / name / "findings").to_pylist()}
    assert found["fast"][0] == "scan engine: hyperscan"
    assert found["slow"][0].startswith("scan engine: re (") and "pip install" in found["slow"][0]
    assert found["slow"][1] == found["fast"][1] and len(found["fast"][1]) == 2


def test_rule_path_and_regex_target(tmp_path):
    """Rule files: `path` limits a rule to matching files; an allowlist's regexTarget picks
    what its regexes test; a bad regexTarget is a usage error."""
    f = tmp_path / "r.toml"
    f.write_text("""
[[rules]]
id = "ticket"
regex = '''TICKET-([0-9]{3,})'''
path = '''[.]md$'''
redact = false
[[rules.allowlists]]
regexTarget = "line"
regexes = ['''wontfix''']
""")
    rs = load_rules(str(f))
    assert rs.rules[0].path == "[.]md$" and rs.rules[0].allow_line_regexes == ("wontfix",)
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "a.md").write_text("see TICKET-123\nTICKET-456 wontfix\n")
    (tree / "a.txt").write_text("see TICKET-789\n")
    r = exoflow("run", "scan", str(tree), "--rules", str(f), "--out", str(tmp_path / "o"), "--no-dashboard")
    assert r.returncode == 0, r.stderr
    got = {(Path(x["path"]).name, x["line"], x["match"]) for x in read_dataset(tmp_path / "o" / "findings").to_pylist()}
    assert got == {("a.md", 1, "123")}
    f.write_text("[[rules]]\nid = 'x'\nregex = 'a+'\n[rules.allowlist]\nregexTarget = 'path'\nregexes = ['b']\n")
    with pytest.raises(UsageError, match="regexTarget"):
        load_rules(str(f))
