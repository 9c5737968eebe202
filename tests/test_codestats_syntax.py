"""codestats on inputs modelled on cloc, tokei and scc bug reports (issue 11): a byte-order mark
before a first-line comment, strings spanning lines, regex literals, raw and verbatim strings,
heredocs, UTF-16, shebangs against file names, build files known by name. Each value is hand-counted
(and cloc's where cloc is right: the tests that run cloc say which)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sysconfig
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from conftest import exoflow, read_dataset
from exoflow.ops.codestats import kernel as cs
from exoflow.ops.codestats.kernel import _buffer_stats, languages_by_name
from exoflow.ops.codestats.languages import LANGS, PREFIXES, by_name, by_shebang
from exoflow.kernels.text import decode_utf16
from test_codestats import CASES, counts

KEYS = ("lines", "blank", "comment", "code")
BOM = "\ufeff"


# (language, text, hand-counted (lines, blank, comment, code))
SYNTAX_CASES = [
    # 7: strings spanning lines
    ("OCaml", '(* a comment *)\nlet s = "first line\n  (* not a comment\n  still the string"\nlet x = 1\nlet y = 2\n'
              'let z = 3\nlet w = 4\nlet v = 5\n', (9, 0, 1, 8)),
    ("OCaml", "let s = {|\n(* raw\n|}\nlet x = 1 (* c *)\n(* c *)\n", (5, 0, 1, 4)),
    ("Rust", 'let s = "a\n/* b\n c";\nlet x = 1; // c\n', (4, 0, 0, 4)),
    ("Bourne Shell", 'echo "a\n# not a comment\nb"\n# c\nx=\'\n# no\n\'\n', (7, 0, 1, 6)),
    ("Bourne Again Shell", 'echo ${#x} $# a#b "a\n# in the string\n"\n  # c\n', (4, 0, 1, 3)),
    ("Perl", 'my $s = "a\n# no\n";\n# c\n', (4, 0, 1, 3)),
    ("Ruby", 'x = "a\n# no\n"\n# c\n', (4, 0, 1, 3)),
    ("SQL", "SELECT 'a\n-- no\n' FROM t; -- c\n-- c\n", (4, 0, 1, 3)),
    ("PHP", "$s = 'a\n// no\n';\n# c\n#[Attr]\n", (5, 0, 1, 4)),
    ("Erlang", 'X = $", Y = "a\n% in\n".\n% c\n', (4, 0, 1, 3)),
    ("Lisp", '(list #\\" "a\n; in\n")\n; c\n', (4, 0, 1, 3)),
    ("Emacs Lisp", '(list ?\\" ?; "a\n; in\n")\n; c\n', (4, 0, 1, 3)),
    ("Clojure", '(str \\" "a\n; in\n")\n; c\n', (4, 0, 1, 3)),
    ("Elixir", 's = ~s(#) <> "a\n# in\n"\n# c\nc = ?#\n', (5, 0, 1, 4)),
    ("R", 'x <- "a\n# in\n"\n# c\n', (4, 0, 1, 3)),
    ("Haskell", 'main = putStrLn "a\\\n  \\-- gap" -- c\n-- c\n', (3, 0, 1, 2)),
    ("YAML", "run: |\n  # install\n\n  pip install x\n# c\nkey: v # c\nurl: http://x/#a\nit: it's\n# c\nq: 'a\n  # in'\n",
     (11, 1, 2, 8)),
    ("Nix", "x = ''\n  # not a comment\n'';\n# c\n", (4, 0, 1, 3)),
    ("Nix", "/* c\n */\ny = 1;\n", (3, 0, 2, 1)),
    ("CMake", "set(x \"a\n# no\")\nset(y [=[ # no ]] ]=])\n#[[ c\n]]\nset(z 1) # c\n", (6, 0, 2, 4)),
    ("PowerShell", '$s = @"\n# not a comment\n"@\n$t = "a`" # no"\n# c\n<# c #>\n', (6, 0, 2, 4)),
    ("TOML", "s = '''\n# no\n'''\n# c\nk = 'C:\\'\n", (5, 0, 1, 4)),
    # 8: regex literals
    ("JavaScript", "const re = /[/*]/;\n\nlet a = 1;\nlet b = 2;\nlet c = 3;\n", (5, 1, 0, 4)),
    ("JavaScript", "let r = a / b / c;\n/* real\ncomment */\nreturn /\\/*x/.test(s);\nx = y /2/ z; // c\n", (5, 0, 2, 3)),
    ("TypeScript", "const re = /`/; /* c\n still */\nconst t = `x`;\n", (3, 0, 1, 2)),
    ("JSX", "<div>\n  <br/>{/* c */}\n</div>\n{/* a\n comment */}\n", (5, 0, 0, 5)),
    ("Ruby", 'x = /#/; s = "a\n# in a string\n"\ny = a / b # c\nz = %r{/*#} + %w[a#b] # c\n', (5, 0, 0, 5)),
    ("Perl", 'my $re = qr{#}; my $s = "a\n# in\n";\n$x =~ s/#/x/g; my $t = "b\n# in\n";\n'
             'print $#a; my $u = "c\n# in\n";\nmy $y = $a / $b; # c\n# d\n', (11, 0, 1, 10)),
    ("Groovy", "def r = /a\\/*b/\nint x = 1\ndef p = $/C:\\dir\\/*/$\nint y = 2 // c\n", (4, 0, 0, 4)),
    # 9: raw and verbatim strings
    ("C#", '// header\nusing System;\n/// <summary>doc</summary>\nclass A {\n    // a comment\n'
           '    string p = @"C:\\logs\\" + "/*.txt";\n    int x = 1;\n    /* block */\n    int y = 2;\n'
           '    void F() {}\n}\n', (11, 0, 4, 7)),
    ("C#", 'var s = """\n  /* not a comment\n  """;\nvar t = $@"{x}\\" // no";\nint x; // c\n', (5, 0, 0, 5)),
    ("C++", '// print it\nconst char *s = R"(printf("/* %s", name);)";\nint a = 1;\nint b = 2;\nint c = 3;\n'
            'int d = 4;\n', (6, 0, 1, 5)),
    ("C++", 'auto s = R"xy(a)" /* no )xy";\nauto t = u8R"(\n// no\n)";\nauto u = FOOR"(x)" /* c */;\n', (5, 0, 0, 5)),
    ("C/C++ Header", 'auto s = LR"x(")/*")x";\nint y;\n// c\n', (3, 0, 1, 2)),
    ("Rust", 'let s = r#"a " /* b"#;\nlet p = r"C:\\"; // c\n/* x */\nlet b = br"\\"; // c\n', (4, 0, 1, 3)),
    ("Go", 'a := `C:\\` + `/*` + `x` // c\nb := 1\n', (2, 0, 0, 2)),
    ("Swift", 'let s = #"a " /* b"#\nlet r = #/\\d+/*/#\nlet x = 1 // c\n', (3, 0, 0, 3)),
    ("Kotlin", 'val s = """C:\\"""\n/* c */\nval x = 1\n', (3, 0, 1, 2)),
    ("Scala", 'val s = """a""""\nval p = """C:\\"""\n// c\n', (3, 0, 1, 2)),
    ("D", 'string s = `C:\\` ~ "/*"; // c\nstring t = q"(\n/* x)";\nstring u = r"C:\\"; // c\n/* c */\n', (5, 0, 1, 4)),
    ("D", 'string s = "a\n/* b\n";\nint x;\n', (4, 0, 0, 4)),
    ("Dart", "var p = r'C:\\'; // c\n/* x */\nvar y = r'''\n/*\n''';\n", (5, 0, 1, 4)),
    ("R", 'x <- r"(C:\\ "#")"\n# c\ny <- r"[\n# not a comment\n]"\n', (5, 0, 1, 4)),
    ("Lua", "s = [==[ ]] -- no ]==]\n-- c\n--[==[ a ]] still\n]==]\nx = 1\n", (5, 0, 3, 2)),
    ("Zig", "const s =\n    \\\\ // not a comment\n;\n// c\n", (4, 0, 1, 3)),
    ("Nim", 'let p = r"C:\\"  # c\n# d\nlet q = """a\\"""\nlet r = """\n# not a comment\n"""\n', (6, 0, 1, 5)),
    ("XML", "<a><![CDATA[\n<!--\n]]></a>\n<b/>\n<!-- c -->\n", (5, 0, 1, 4)),
    ("Markdown", "```\n<!-- not a comment\n```\ntext `<!--`\n<!-- c -->\n", (5, 0, 1, 4)),
    ("Java", 'String s = """\n  /* no\n  """; // c\nchar c = \'"\'; /* c */\n', (4, 0, 0, 4)),
    ("Python", 'x = r"\\"# not a comment"\n# c\ny = rb\'\\\'#\'\n', (3, 0, 1, 2)),
    ("TypeScript", "const half = total / 2; // c\nconst re = /\\/\\*/;\n/* c */\n", (3, 0, 1, 2)),
    # heredocs
    ("Bourne Shell", "cat <<'EOF'\n# not a comment\nEOF\n# c\ncat <<-X\n\t# no\n\tX\ncat <<< '# x'\n", (8, 0, 1, 7)),
    ("Perl", 'print <<"EOF";\n# not a comment\nEOF\n# c\n', (4, 0, 1, 3)),
    # Perl as /usr/share/perl has it: punctuation variables, quotes after ".", words with blanks,
    # "//=", "m,...,", the flags of s/.../.../s
    ("Perl", "local $\" = '|';\n# c\nmy $s = 'x';\n", (3, 0, 1, 2)),
    ("Perl", "$self->_error(q[Could not extract ']. $x .q['] );\n# c\n", (2, 0, 1, 1)),
    ("Perl", "my $p = <<'----END OF TEXT----';\n# in\n----END OF TEXT----\n$x .= << \"EOT\";\n# in\nEOT\n# c\n",
     (7, 0, 1, 6)),
    ("Perl", "$o{c} //= $o{f} ne 'a/b';\n# c\nmy $x = 'y';\n", (3, 0, 1, 2)),
    ("Perl", "if ($ct =~ m,^\\s*message/,i) {\n# c\n}\n", (3, 0, 1, 2)),
    ("Perl", "$t =~ s/^(.*?)\\s*\\b(\\w+)/$1/s;\n# c\nmy $y = 's;';\n", (3, 0, 1, 2)),
    ("Bourne Shell", 'cat << "_end_" | cc -xc -\n#include <x.h>\n_end_\n# c\n', (4, 0, 1, 3)),
    ("Ruby", "s = <<~SQL\n  # not a comment\nSQL\n# c\na << b # c\n", (5, 0, 1, 4)),
    ("PHP", "$s = <<<EOT\n// not\nEOT;\n// c\n", (4, 0, 1, 3)),
    ("HCL", "x = <<EOF\n# not\nEOF\n# c\n", (4, 0, 1, 3)),
]


@pytest.mark.parametrize("lang,text,expected", SYNTAX_CASES)
def test_syntax_hand_counted(lang, text, expected):
    assert counts(lang, text) == expected


CSHARP_BOM = BOM + "// header\nusing System;\n\nclass A {\n  int x;\n  void f() {}\n}\n"


def test_bom_before_a_first_line_comment_in_every_language():
    """The issue's C# file (cloc: 1 blank, 1 comment, 5 code); then, in every language, a UTF-8
    byte-order mark changes no count of any test text (each on its own and side by side)."""
    assert counts("C#", CSHARP_BOM) == (7, 1, 1, 5)
    texts = [t.encode() for _, t, _ in CASES + SYNTAX_CASES]
    marked = [BOM.encode() + t for t in texts]
    for lang in LANGS:
        got = []
        for group in (texts, marked):
            cuts = np.cumsum([0] + [len(t) for t in group])
            r = _buffer_stats(b"".join(group), [lang] * len(group), cuts[:-1], cuts[1:])
            got.append([tuple(int(r[k][i]) for k in KEYS) for i in range(len(group))])
        assert got[0] == got[1], lang


def test_issue_examples_where_cloc_is_right(tmp_path):
    """cloc agrees on these: the BOM before a C# comment, a JavaScript regex holding /*, a C++
    raw string holding /*, and (with --strip-str-comments) an OCaml string spanning lines."""
    assert shutil.which("cloc"), "cloc is required (apt-get install cloc)"
    def case(start: str) -> tuple[str, str]:
        return next((lang, text) for lang, text, _ in SYNTAX_CASES if text.startswith(start))

    files = {"bom.cs": ("C#", CSHARP_BOM), "re.js": case("const re = /[/*]/"), "raw.cpp": case("// print it"),
             "str.ml": case("(* a comment *)")}
    for name, (_, text) in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    r = subprocess.run(["cloc", "--by-file", "--json", "--quiet", "--skip-uniqueness", "--strip-str-comments",
                        str(tmp_path)], capture_output=True, text=True, check=True)
    theirs = {Path(k).name: v for k, v in json.loads(r.stdout).items() if k not in ("header", "SUM")}
    for name, (lang, text) in files.items():
        lines, blank, comment, code = counts(lang, text)
        assert (blank, comment, code) == tuple(theirs[name][k] for k in ("blank", "comment", "code")), name


@pytest.mark.skipif(cs._native is None, reason="exoflow._native is not built")
def test_compiled_c_scanner_equals_the_regex():
    """The C scanner of C-like syntax (regex literals, template strings, C++ raw strings) against
    the comment regex, on random texts of their delimiters, the test texts and this Python's headers."""
    words = [b"/", b"/", b"/", b"*", b"*", b'"', b"'", b"`", b"\\", b"\n", b"\n", b"[", b"]", b"(", b")", b"<",
             b">", b"R", b"u8", b"L", b"x", b"=", b" ", b"  ", b"\t", b"return", b"in", b"typeof", b"$", b"\xe9",
             b"_", b"0", b"R\"", b"R\"x(", b")x\"", b"\r\n"]
    rng = np.random.default_rng(12)
    texts = [b"".join(rng.choice(words, int(rng.integers(1, 80)))) for _ in range(2500)]
    texts += [t.encode() for _, t, _ in CASES + SYNTAX_CASES]
    include = Path(sysconfig.get_paths()["include"])
    texts += [p.read_bytes() for p in sorted(include.glob("*.h"))[:80]]
    by_flags = {cs._c_flags(name): name for name in LANGS if cs._c_flags(name) is not None}
    assert len(by_flags) >= 3     # plain C, C++ raw strings, JavaScript templates and regex literals
    for lang in by_flags.values():
        cuts = np.cumsum([0] + [len(t) for t in texts])
        buf = b"".join(texts)
        a = cs.all_comment_spans(buf, [lang] * len(texts), cuts[:-1].tolist(), cuts[1:].tolist(), native=True)
        b = cs.all_comment_spans(buf, [lang] * len(texts), cuts[:-1].tolist(), cuts[1:].tolist(), native=False)
        assert a[0].tolist() == b[0].tolist() and a[1].tolist() == b[1].tolist(), lang


def test_shebang_names_the_program_env_runs():
    cases = {
        b"#!/usr/bin/env -S python3 -u\n": "Python", b"#!/usr/bin/env -i PATH=/bin bash\n": "Bourne Again Shell",
        b"#!/usr/bin/env -u HOME perl -w\n": "Perl", b"#!/usr/bin/env --split-string=ruby -w\n": "Ruby",
        b"#!/usr/bin/env -S deno run --allow-net\n": "TypeScript", b"#!/usr/bin/env -- node\n": "JavaScript",
        b"#!/usr/bin/env -iS python3\n": "Python", b"#!/usr/bin/env -C /tmp -S FOO=1 lua\n": "Lua",
        b"#!/usr/bin/env --unset PATH -Sawk -f\n": "awk", b"\xef\xbb\xbf#!/bin/sh\n": "Bourne Shell",
        b"#!/usr/bin/python3.11\r\n": "Python", b"#! /bin/zsh -f\n": "zsh", b"#!/usr/bin/env\n": None,
        b"#!/usr/bin/env -i\n": None, b"#!/opt/unknown\n": None, b"# not a shebang\n": None,
    }
    assert {head: by_shebang(head) for head in cases} == cases


NAMES = {   # tokei's, scc's and cloc's build and configuration files (cloc's own: test below)
    "Dockerfile.prod": "Dockerfile", "prod.Dockerfile": "Dockerfile", "Containerfile.dev": "Dockerfile",
    "Dockerfile.sh": "Bourne Shell", "Makefile.am": "make", "Makefile.linux": "make", "GNUmakefile": "make",
    "BSDmakefile": "make", "x.mk": "make", "CMakeLists.txt": "CMake", "Jenkinsfile": "Groovy",
    "Jenkinsfile.release": "Groovy", "Vagrantfile": "Ruby", "Gemfile": "Ruby", "Podfile": "Ruby", "x.podspec": "Ruby",
    "BUILD": "Bazel", "BUILD.bazel": "Starlark", "WORKSPACE": "Bazel", "defs.bzl": "Starlark", "meson.build": "Meson",
    "PKGBUILD": "Bourne Again Shell", "Snakefile": "Python", "build.sbt": "Scala", ".zshenv": "zsh",
    "Makefile.": None, "Dockerfile": "Dockerfile", "notes.prod": None,
}


def test_build_files_known_by_name():
    assert {name: by_name(name) for name in NAMES} == NAMES
    paths = [f"/r/d.x/{name}" for name in [*NAMES, *(f"{p.upper()}.x" for p in PREFIXES)]]
    assert languages_by_name(pa.array(paths)).to_pylist() == [by_name(os.path.basename(p)) for p in paths]


def test_build_file_names_as_cloc_knows_them(tmp_path):
    assert shutil.which("cloc"), "cloc is required (apt-get install cloc)"
    names = ["Dockerfile.prod", "Makefile.am", "CMakeLists.txt", "meson.build", "x.bzl", "BUILD", "foo.mk",
             "GNUmakefile", "x.podspec"]
    for i, name in enumerate(names):
        (tmp_path / name).write_text(f"# comment\nx{i}\n")
    r = subprocess.run(["cloc", "--by-file", "--json", "--quiet", "--skip-uniqueness", str(tmp_path)],
                       capture_output=True, text=True, check=True)
    theirs = {Path(k).name: v["language"] for k, v in json.loads(r.stdout).items() if k not in ("header", "SUM")}
    assert {name: by_name(name) for name in names} == theirs


def test_decode_utf16():
    text = "# é\r\nx = '😀'\n"
    assert decode_utf16(b"\xff\xfe" + text.encode("utf-16-le")) == text.encode()
    assert decode_utf16(b"\xfe\xff" + text.encode("utf-16-be")) == text.encode()
    assert decode_utf16(b"\xff\xfe" + b"a\x00\x00\xd8b\x00") == "a\ufffdb".encode()   # an unpaired surrogate
    assert decode_utf16(b"\xff\xfea\x00b") == "a\ufffd".encode()                      # an odd last byte
    assert decode_utf16(text.encode()) is None and decode_utf16(b"\xff") is None


def test_job_reads_shebangs_names_and_utf16(tmp_path):
    """Hand-counted files as the job finds them: a shebang beats a special name for a name
    without an extension (not for one with an extension), env's options, build-file names,
    UTF-16 (LE and BE, by BOM) decoded, a UTF-8 BOM before a comment."""
    src = tmp_path / "src"
    (src / "bazel").mkdir(parents=True)
    files = {   # name: (contents, language, (lines, blank, comment, code))
        "build": (b"#!/bin/sh\n# c\necho hi\n", "Bourne Shell", (3, 0, 2, 1)),
        "bazel/BUILD": (b'load("x")\n# c\n', "Bazel", (2, 0, 1, 1)),
        "Rakefile": (b"#!/usr/bin/env python3\nx = 1\n", "Python", (2, 0, 1, 1)),
        "run": (b"#!/usr/bin/env -S python3 -u\nprint(1)\n", "Python", (2, 0, 1, 1)),
        "tool.py": (b"#!/bin/sh\nx = 1\n", "Python", (2, 0, 1, 1)),
        "Dockerfile.prod": (b"FROM x\n# c\nRUN y\n", "Dockerfile", (3, 0, 1, 2)),
        "Makefile.linux": (b"# c\nall:\n\ttrue\n", "make", (3, 0, 1, 2)),
        "Jenkinsfile": (b"pipeline {\n// c\n}\n", "Groovy", (3, 0, 1, 2)),
        "deploy.py": (b"\xff\xfe" + "# c\nx = \"é\"\n\n".encode("utf-16-le"), "Python", (3, 1, 1, 1)),
        "be.sh": (b"\xfe\xff" + "# c\r\necho hi\r\n".encode("utf-16-be"), "Bourne Shell", (2, 0, 1, 1)),
        "script16": (b"\xff\xfe" + "#!/bin/bash\necho\n".encode("utf-16-le"), "Bourne Again Shell", (2, 0, 1, 1)),
        "bom.cs": (CSHARP_BOM.encode(), "C#", (7, 1, 1, 5)),
    }
    for name, (data, _, _) in files.items():
        (src / name).write_bytes(data)
    (src / "utf32.py").write_bytes(b"\xff\xfe\x00\x00" + "x = 1\n".encode("utf-32-le"))   # NULs: binary
    (src / "bom16.py").write_bytes(b"\xff\xfe")                                             # no text: no line
    out = tmp_path / "out"
    r = exoflow("run", "codestats", str(src), "--out", str(out), "--no-dashboard")
    assert r.returncode == 0, r.stderr
    rows = {str(Path(row["path"]).relative_to(src)): row for row in read_dataset(out / "files").to_pylist()}
    for name, (_, lang, want) in files.items():
        row = rows[name]
        assert (row["language"], *(row[k] for k in KEYS)) == (lang, *want), name
    assert rows["utf32.py"]["language"] is None and rows["utf32.py"]["code"] is None
    assert (rows["bom16.py"]["language"], *(rows["bom16.py"][k] for k in KEYS)) == ("Python", 0, 0, 0, 0)
