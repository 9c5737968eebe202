"""codestats: hand-counted files for each comment style, language detection, and cloc on real code."""
from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from conftest import REPO, exoflow, read_dataset
from exoflow.ops.codestats import kernel as cs
from exoflow.ops.codestats.kernel import (_buffer_stats, comment_spans, count_lines, languages_by_name,
                                          token_text)
from exoflow.ops.codestats.languages import (EXTENSIONS, FILENAMES, LANGS, PREFIXES, by_name, by_shebang,
                                             token_chars)


def counts(lang: str, text: str) -> tuple[int, int, int, int]:
    """(lines, blank, comment, code) from the kernel for one file."""
    b = text.encode()
    r = _buffer_stats(b, [lang], np.array([0]), np.array([len(b)]))
    return tuple(int(r[k][0]) for k in ("lines", "blank", "comment", "code"))


# (language, text, hand-counted (lines, blank, comment, code))
CASES = [
    ("Python", 'x = 1  # c\n\n# full\ns = "# not a comment"\n"""doc\nmore\n"""\ny = """a\nb"""\n   \n',
     (10, 2, 5, 3)),
    ("Python", "t = '''\n# inside a string\n'''\nu = '\"\"\"'  # a quote in a string\n", (4, 0, 2, 2)),
    ("Python", 'x = 1\n"""open to the end\\', (2, 0, 1, 1)),      # ends in a backslash: once a crash
    ("C", 'int x; /* c */\n/* a\n b */\nchar *s = "/* no */";\n// line\n\nint y;', (7, 1, 3, 3)),
    ("C", "char c = '\"'; /* \" */\nint z; // \"\n", (2, 0, 0, 2)),
    ("C++", "// only\r\nint main() {\r\n\r\n  return 0; /* x */\r\n}\r\n", (5, 1, 1, 3)),
    ("Rust", "/* a /* nested */ still */ fn x() {}\n/* a /* b */\n still */\nlet c = '\"';\n"
             "fn f<'a>(x: &'a str) {} // c\n", (5, 0, 2, 3)),
    ("Haskell", "{- a {- b -} c -}\nmain = putStrLn \"{- no -}\" -- c\n-- line\n", (3, 0, 2, 1)),
    ("OCaml", "(* a (* b *) *)\nlet x = 1 (* c *)\n", (2, 0, 1, 1)),
    ("Bourne Shell", '#!/bin/sh\necho "# x"\n  # c\n\necho hi # c\n', (5, 1, 2, 2)),
    ("HTML", "<!-- a\nb -->\n<p>x</p> <!-- c -->\n\n", (4, 1, 2, 1)),
    ("Lua", "--[[ block\nstill ]]\nprint('--no') -- c\n-- line\n", (4, 0, 3, 1)),
    ("SQL", "-- c\nSELECT '--x' FROM t; /* y */\n/*\n*/\n", (4, 0, 3, 1)),
    ("Ruby", "=begin\ndoc\n=end\nputs '#x' # c\n", (4, 0, 3, 1)),
    ("JavaScript", "const s = `\n// in template\n`;\n// c\n", (4, 0, 1, 3)),
    ("Go", "x := `/* raw\n*/`\n// c\n", (3, 0, 1, 2)),
    ("YAML", "a: 1 # c\n# c\n\nb: '#x'\n", (4, 1, 1, 2)),
    ("JSON", '{"a": "// no"}\n', (1, 0, 0, 1)),
]


@pytest.mark.parametrize("lang,text,expected", CASES)
def test_hand_counted(lang, text, expected):
    assert counts(lang, text) == expected


C = ("/*", "*/")
# every language: a file name, its line comment and its block comment as each language's manual
# writes them (cloc 1.96 agrees on these samples except Perl's POD, CMake's #[[ ]] and
# Scheme's #| |#, which it does not know)
SYNTAX = {
    "Python": ("a.py", "#", ('"""', '"""')), "Cython": ("a.pyx", "#", ('"""', '"""')),
    "C": ("a.c", "//", C), "C/C++ Header": ("a.h", "//", C), "C++": ("a.cpp", "//", C), "C#": ("a.cs", "//", C),
    "Objective-C": ("a.m", "//", C), "Objective-C++": ("a.mm", "//", C), "Java": ("a.java", "//", C),
    "JavaScript": ("a.js", "//", C), "TypeScript": ("a.ts", "//", C), "JSX": ("a.jsx", "//", C),
    "Go": ("a.go", "//", C), "Rust": ("a.rs", "//", C), "Kotlin": ("a.kt", "//", C), "Swift": ("a.swift", "//", C),
    "Scala": ("a.scala", "//", C), "Dart": ("a.dart", "//", C), "Groovy": ("a.groovy", "//", C),
    "D": ("a.d", "//", ("/+", "+/")), "Protocol Buffers": ("a.proto", "//", C), "CSS": ("a.css", None, C),
    "SCSS": ("a.scss", "//", C), "Less": ("a.less", "//", C), "Zig": ("a.zig", "//", None),
    "PHP": ("a.php", "#", C), "Ruby": ("a.rb", "#", ("=begin", "=end")), "Perl": ("a.pl", "#", ("=pod", "=cut")),
    "Bourne Shell": ("a.sh", "#", None), "Bourne Again Shell": ("a.bash", "#", None), "zsh": ("a.zsh", "#", None),
    "Korn Shell": ("a.ksh", "#", None), "C Shell": ("a.csh", "#", None), "Fish Shell": ("a.fish", "#", None),
    "PowerShell": ("a.ps1", "#", ("<#", "#>")), "Lua": ("a.lua", "--", ("--[[", "]]")), "SQL": ("a.sql", "--", C),
    "HTML": ("a.html", None, ("<!--", "-->")), "XML": ("a.xml", None, ("<!--", "-->")),
    "Markdown": ("a.md", None, ("<!--", "-->")), "YAML": ("a.yaml", "#", None), "TOML": ("a.toml", "#", None),
    "JSON": ("a.json", None, None), "Text": ("a.txt", None, None), "reStructuredText": ("a.rst", None, None),
    "make": ("Makefile", "#", None), "CMake": ("a.cmake", "#", ("#[[", "]]")), "Dockerfile": ("Dockerfile", "#", None),
    "R": ("a.r", "#", None), "Elixir": ("a.ex", "#", None), "Tcl": ("a.tcl", "#", None), "awk": ("a.awk", "#", None),
    "GraphQL": ("a.graphql", "#", None), "Nix": ("a.nix", "#", C), "Julia": ("a.jl", "#", ("#=", "=#")),
    "Nim": ("a.nim", "#", ("#[", "]#")), "Haskell": ("a.hs", "--", ("{-", "-}")), "OCaml": ("a.ml", None, ("(*", "*)")),
    "Erlang": ("a.erl", "%", None), "Clojure": ("a.clj", ";", None), "Lisp": ("a.lisp", ";", ("#|", "|#")),
    "Emacs Lisp": ("a.el", ";", None), "Scheme": ("a.scm", ";", ("#|", "|#")), "Fortran 90": ("a.f90", "!", None),
    "Assembly": ("a.asm", ";", C), "Pascal": ("a.pas", "//", ("{", "}")), "DOS Batch": ("a.bat", "rem", None),
    "INI": ("a.ini", ";", None), "HCL": ("a.tf", "#", C), "VHDL": ("a.vhd", "--", None),
    "Vim Script": ("a.vim", '"', None), "Bazel": ("BUILD", "#", None), "Starlark": ("a.bzl", "#", None),
    "Meson": ("meson.build", "#", None),
}
KNOWN_WRONG: dict[str, str] = {}      # language -> why its sample fails (a strict xfail)


def test_every_language_has_a_hand_written_sample():
    assert set(SYNTAX) == set(LANGS)


@pytest.mark.parametrize("lang", [pytest.param(lang, marks=pytest.mark.xfail(reason=KNOWN_WRONG[lang], strict=True))
                                  if lang in KNOWN_WRONG else lang for lang in sorted(SYNTAX)])
def test_every_language_counts_its_own_comments(lang):
    """A line comment, two code lines, a blank and a two-line block comment in each language's
    syntax, recognised by its file name: hand-counted (lines, blank, comment, code)."""
    name, line, block = SYNTAX[lang]
    text = (f"{line} a line comment\n" if line else "") + "x = 1\n\n"
    text += f"{block[0]} a block\n{block[1]}\n" if block else ""
    text += "x = 2\n"
    comments = bool(line) + 2 * bool(block)
    assert by_name(name) == lang
    assert counts(lang, text) == (3 + comments, 1, comments, 2)


def test_detection():
    assert by_name("x.py") == "Python" and by_name("Makefile") == "make" and by_name("a.H") == "C/C++ Header"
    assert by_name("CMakeLists.txt") == "CMake" and by_name(".bashrc") == "Bourne Again Shell"
    assert by_shebang(b"#!/usr/bin/env python3 -u\n") == "Python"
    assert by_shebang(b"#!/bin/bash\n") == "Bourne Again Shell"
    assert by_shebang(b"#! /usr/bin/perl -w\n") == "Perl" and by_shebang(b"hello") is None


def test_job_counts_files(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i, (lang, text, _) in enumerate(CASES):
        ext = {"Python": "py", "C": "c", "C++": "cpp", "Rust": "rs", "Haskell": "hs", "OCaml": "ml",
               "Bourne Shell": "sh", "HTML": "html", "Lua": "lua", "SQL": "sql", "Ruby": "rb",
               "JavaScript": "js", "Go": "go", "YAML": "yaml", "JSON": "json"}[lang]
        (src / f"f{i}.{ext}").write_bytes(text.encode())
    (src / "script").write_bytes(b"#!/usr/bin/env python3\n# c\nprint(1)\n")
    (src / "data.bin").write_bytes(b"\0\1\2")
    (src / "blob.c").write_bytes(b"int x;\0\n")            # binary: not counted
    out = tmp_path / "out"
    r = exoflow("run", "codestats", str(src), "--out", str(out), "--no-dashboard", "--chunk-files", "4")
    assert r.returncode == 0, r.stderr
    t = read_dataset(out / "files").to_pylist()
    by = {Path(row["path"]).name: row for row in t}
    for i, (lang, _text, (lines, blank, comment, code)) in enumerate(CASES):
        row = next(v for k, v in by.items() if k.startswith(f"f{i}."))
        assert (row["language"], row["lines"], row["blank"], row["comment"], row["code"]) == \
            (lang, lines, blank, comment, code), row
    assert by["script"]["language"] == "Python" and by["script"]["code"] == 1 and by["script"]["comment"] == 2
    assert by["data.bin"]["language"] is None and by["blob.c"]["language"] is None
    summary = json.loads((out / "summary.json").read_text())
    py = next(x for x in summary["result"]["languages"] if x["language"] == "Python")
    py_cases = [want for lang, _text, want in CASES if lang == "Python"]
    assert py["files"] == len(py_cases) + 1 and py["code"] == sum(want[3] for want in py_cases) + 1   # + script
    assert "Code by language" in r.stdout


def _cloc(path: Path) -> dict[str, dict]:
    r = subprocess.run(["cloc", "--quiet", "--json", "--skip-uniqueness", str(path)], capture_output=True,
                       text=True, check=True)
    return {k: v for k, v in json.loads(r.stdout).items() if k not in ("header", "SUM")}


def test_matches_cloc_on_real_code(tmp_path):
    """Packages of this Python's standard library, and this repository's C and shell sources
    (nothing else the machine holds), against cloc."""
    assert shutil.which("cloc"), "cloc is required (apt-get install cloc)"
    tree = tmp_path / "tree"
    tree.mkdir()
    stdlib = Path(json.__file__).parent.parent
    for pkg in ("json", "logging", "concurrent", "email"):
        shutil.copytree(stdlib / pkg, tree / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(REPO / "exoflow" / "_native.c", tree)
    for script in (".ci/install", ".ci/run", "scripts/gpu_check.sh"):          # bash scripts, as .sh files
        shutil.copy(REPO / script, tree / (script.replace("/", "-").removesuffix(".sh") + ".sh"))
    expected = _cloc(tree)
    out = tmp_path / "out"
    r = exoflow("run", "codestats", str(tree), "--out", str(out), "--no-dashboard")
    assert r.returncode == 0, r.stderr
    ours = {x["language"]: x for x in json.loads((out / "summary.json").read_text())["result"]["languages"]}
    rows = read_dataset(out / "files").to_pylist()
    assert {"Python", "C", "Bourne Shell"} <= set(expected)
    for lang in ("Python", "C", "Bourne Shell"):
        want, got = expected[lang], ours[lang]
        # cloc ignores empty files, and counts a first "#!" line as code where exoflow counts a comment
        files = [x for x in rows if x["language"] == lang and x["lines"]]
        assert len(files) == want["nFiles"], lang
        shebangs = sum(Path(x["path"]).read_bytes().startswith(b"#!") for x in files)
        assert abs(got["code"] - (want["code"] - shebangs)) <= 0.01 * want["code"], (lang, got, want, shebangs)
        assert abs(got["blank"] - want["blank"]) <= 0.01 * max(want["blank"], 1), (lang, got, want)


def _raw_counts(lang: str, b: bytes) -> tuple[int, int, int, int]:
    """The reference: the comment regex searched over the original bytes, one comment at a time."""
    starts: list[int] = []
    ends: list[int] = []
    comment_spans(lang, b, 0, len(b), starts, ends)
    r = count_lines(b, np.array([0]), np.array([len(b)]), starts, ends)
    return tuple(int(r[k][0]) for k in ("lines", "blank", "comment", "code"))


@pytest.mark.parametrize("lang", sorted(LANGS))
def test_token_text_reads_like_the_original(lang):
    """Runs of other bytes shortened to one byte: same counts as the regex over the original
    bytes, on random texts made of the language's delimiters, letters, spaces and newlines."""
    chars = token_chars(LANGS[lang])
    alphabet = list((chars or b"") + b"\"'#/*\\-=[]{}()<>!;%|`@$?~:,") + [ord(c) for c in "abrRqsu8L \t\n\n\r"]
    rng = np.random.default_rng(len(lang))
    texts = [bytes(rng.choice(alphabet, size=int(rng.integers(1, 300)))) for _ in range(150)]
    texts += [t.encode() for lang_, t, _ in CASES]
    for b in texts:
        r = _buffer_stats(b, [lang], np.array([0]), np.array([len(b)]))
        assert tuple(int(r[k][0]) for k in ("lines", "blank", "comment", "code")) == _raw_counts(lang, b), (lang, b)
    # several files in one buffer, in gaps and out of order of language, as the kernel gets them
    buf = b"".join(texts[:40])
    cuts = np.cumsum([0] + [len(t) for t in texts[:40]])
    langs = [lang if i % 3 else "Python" for i in range(40)]
    r = _buffer_stats(buf, langs, cuts[:-1], cuts[1:])
    for i, t in enumerate(texts[:40]):
        assert tuple(int(r[k][i]) for k in ("lines", "blank", "comment", "code")) == _raw_counts(langs[i], t), (lang, i)


def test_languages_by_name_column_equals_by_name():
    rng = random.Random(4)
    stems = ["", ".", "..", "a", "x.y", ".bashrc", "..py", ".foo", "é", "ÄÖ", "Makefile", "CMakeLists.txt",
             *list(FILENAMES)[:25], *PREFIXES, "Dockerfile.prod", "makefile.in", *(f"f.{e.upper() if i % 3 == 0 else e}" for i, e in enumerate(list(EXTENSIONS)[:60]))]
    tails = ["", ".py", ".PY", ".c", ".H", ".sh", ".txt", ".unknown", ".", ".tar.gz"]
    names = stems + [rng.choice(stems) + rng.choice(tails) for _ in range(3000)]
    dirs = ["a", "b.c", "x.py", ".d", "new\nline", "ends\n"]       # RE2's '.' stops at a newline
    paths = [f"/r/{rng.choice(dirs)}/{name}" for name in names]
    got = languages_by_name(pa.array(paths)).to_pylist()
    assert got == [by_name(os.path.basename(p)) for p in paths]


@pytest.mark.skipif(cs._native is None, reason="exoflow._native is not built")
def test_compiled_token_text_and_line_counts_equal_numpy():
    rng = np.random.default_rng(8)
    alphabet = np.frombuffer(b" \t\n\r#/*\"'\\ax;{}\x00\xe9", dtype=np.uint8)
    for _ in range(300):
        files = [rng.choice(alphabet, rng.integers(1, 80)).tobytes() for _ in range(rng.integers(1, 8))]
        data = bytearray(b"".join(files))
        lo = np.concatenate(([0], np.cumsum([len(f) for f in files])[:-1])).astype(np.int64)
        chars = bytes(sorted(set(rng.choice(np.frombuffer(b"#/*\"'\\", dtype=np.uint8), 3).tolist()) | {10}))
        (t1, s1), (t2, s2) = token_text(data, lo, chars, native=True), token_text(data, lo, chars, native=False)
        assert t1.tobytes() == t2.tobytes() and s1.tolist() == s2.tolist()
        # sorted, disjoint, nonempty comment spans anywhere; segments: the files, or some of them
        n = len(data)
        cuts = np.sort(rng.choice(n + 1, size=2 * int(rng.integers(0, (n + 1) // 2 + 1)), replace=False))
        starts, ends = cuts[0::2], cuts[1::2]
        hi = np.append(lo[1:], n)
        keep = rng.random(len(lo)) < 0.7
        for seg_lo, seg_hi in ((lo, hi), (lo[keep], hi[keep])):
            a = count_lines(bytes(data), seg_lo, seg_hi, starts, ends, native=True)
            b = count_lines(bytes(data), seg_lo, seg_hi, starts, ends, native=False)
            assert {k: v.tolist() for k, v in a.items()} == {k: v.tolist() for k, v in b.items()}


@pytest.mark.skipif(cs._native is None, reason="exoflow._native is not built")
def test_compiled_python_scanner_equals_the_regex():
    """The C scanner for Python's syntax against the comment regex, on random texts of its
    delimiters and on this Python's own standard library, whole and as token text."""
    rng = np.random.default_rng(21)
    alphabet = np.frombuffer(b"\"\"\"'''##\\\\\n\n ax", dtype=np.uint8)
    texts = [rng.choice(alphabet, int(rng.integers(1, 120))).tobytes() for _ in range(3000)]
    stdlib = sorted(Path(os.__file__).parent.rglob("*.py"))[:1500]
    texts += [p.read_bytes() for p in stdlib if p.stat().st_size]
    chars = cs._token_chars("Python")
    for group in (texts[:3000], texts[3000:]):
        lens = [len(t) for t in group]
        lo = np.concatenate(([0], np.cumsum(lens)[:-1])).astype(np.int64)
        buf = b"".join(group)
        tokens, tlo = token_text(bytearray(buf), lo, chars)
        for data, starts in ((buf, lo), (tokens.tobytes(), tlo)):
            hi = np.append(starts[1:], len(data))
            langs = ["Python" if i % 4 else "Cython" for i in range(len(group))]
            a = cs.all_comment_spans(data, langs, starts.tolist(), hi.tolist(), native=True)
            b = cs.all_comment_spans(data, langs, starts.tolist(), hi.tolist(), native=False)
            assert a[0].tolist() == b[0].tolist() and a[1].tolist() == b[1].tolist()
