"""Languages for codestats: how a file is recognised and how its comments look.

Names follow cloc's so that the two tables compare line by line. Each language
compiles to ONE regex that skips code and strings and stops at the next comment
(see ``comment_regex``), so comment markers inside strings are not comments.
``token_chars`` names the bytes a language's comment and string syntax is written
with, so that the kernel can run that regex over a much shorter text (see
``exoflow.kernels.codestats``).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

# string literals (single line unless the language allows otherwise)
DQ = r'"(?:[^"\\\n]|\\[\s\S])*+"'
SQ = r"'(?:[^'\\\n]|\\[\s\S])*+'"
CHAR = r"'(?:[^'\\\n]|\\[^\n]{1,10}?)'"          # one-character literal (Rust/Java: 'a' but not 'a lifetimes)
SH_SQ = r"'[^'\n]*+'"
BACKTICK = r"`(?:[^`\\]|\\[\s\S])*+`"             # JS template / Go raw string: may span lines
# a docstring is a comment (as in cloc); one left open runs to the end, even past a last backslash
PY_DOC = (r'"""(?:[^"\\]|\\[\s\S]?|"(?!""))*+(?:"""|\Z)', r"'''(?:[^'\\]|\\[\s\S]?|'(?!''))*+(?:'''|\Z)")
TEXT_BLOCK = r'"""(?:[^"\\]|\\[\s\S]|"(?!""))*+(?:"""|\Z)'   # Java/Kotlin/Swift/Scala multi-line strings
C_BLOCK = (r"/\*", r"\*/")


@dataclass(frozen=True)
class Lang:
    name: str
    line: tuple[str, ...] = ()                    # line comment openers (regexes)
    block: tuple[tuple[str, str], ...] = ()       # (open, close) regexes
    nested: bool = False                          # block comments nest (Rust, Haskell, OCaml …)
    strings: tuple[str, ...] = ()                 # string literal regexes (skipped, counted as code)
    doc: tuple[str, ...] = ()                     # strings counted as comments (Python docstrings, as cloc)


def _c(name: str, *extra_strings: str, nested: bool = False, line: tuple[str, ...] = ("//",)) -> Lang:
    return Lang(name, line, (C_BLOCK,), nested, (DQ, SQ) + extra_strings)


def _hash(name: str, strings: tuple[str, ...] = (DQ, SQ)) -> Lang:
    return Lang(name, ("#",), (), False, strings)


SH_STRINGS = (DQ, SH_SQ)
LANGS: dict[str, Lang] = {l.name: l for l in [
    Lang("Python", ("#",), (), False, (DQ, SQ), PY_DOC),
    Lang("Cython", ("#",), (), False, (DQ, SQ), PY_DOC),
    _c("C"), _c("C/C++ Header"), _c("C++"), _c("C#"), _c("Objective-C"), _c("Objective-C++"),
    Lang("Java", ("//",), (C_BLOCK,), False, (TEXT_BLOCK, DQ, CHAR)),
    _c("JavaScript", BACKTICK), _c("TypeScript", BACKTICK), _c("JSX", BACKTICK),
    Lang("Go", ("//",), (C_BLOCK,), False, (DQ, CHAR, BACKTICK)),
    Lang("Rust", ("//",), (C_BLOCK,), True, (DQ, CHAR)),
    Lang("Kotlin", ("//",), (C_BLOCK,), True, (TEXT_BLOCK, DQ, CHAR)),
    Lang("Swift", ("//",), (C_BLOCK,), True, (TEXT_BLOCK, DQ)),
    Lang("Scala", ("//",), (C_BLOCK,), True, (TEXT_BLOCK, DQ, CHAR)),
    Lang("Dart", ("//",), (C_BLOCK,), True, (DQ, SQ)),
    Lang("Groovy", ("//",), (C_BLOCK,), False, (DQ, SQ)),
    Lang("D", ("//",), (C_BLOCK, (r"/\+", r"\+/")), True, (DQ, CHAR)),
    _c("Protocol Buffers"), _c("CSS"), _c("SCSS"), _c("Less"), _c("Zig", line=("//",)),
    Lang("PHP", ("//", "#"), (C_BLOCK,), False, (DQ, SQ)),
    Lang("Ruby", ("#",), ((r"^=begin\b", r"^=end\b[^\n]*"),), False, (DQ, SQ)),
    Lang("Perl", ("#",), ((r"^=[a-zA-Z]", r"^=cut\b[^\n]*"),), False, (DQ, SQ)),
    _hash("Bourne Shell", SH_STRINGS), _hash("Bourne Again Shell", SH_STRINGS), _hash("zsh", SH_STRINGS),
    _hash("Korn Shell", SH_STRINGS), _hash("C Shell", SH_STRINGS), _hash("Fish Shell", SH_STRINGS),
    Lang("PowerShell", ("#",), ((r"<#", r"#>"),), False, (DQ, SQ)),
    Lang("Lua", ("--(?!\\[=*\\[)",), ((r"--\[=*\[", r"\]=*\]"),), False, (DQ, SQ)),
    Lang("SQL", ("--",), (C_BLOCK,), False, (SQ, DQ)),
    Lang("HTML", (), ((r"<!--", r"-->"),)), Lang("XML", (), ((r"<!--", r"-->"),)),
    Lang("Markdown", (), ((r"<!--", r"-->"),)),
    _hash("YAML"), _hash("TOML"), Lang("JSON"), Lang("Text"), Lang("reStructuredText"),
    _hash("make", ()), Lang("CMake", ("#(?!\\[\\[)",), ((r"#\[\[", r"\]\]"),), False, (DQ,)),
    _hash("Dockerfile", ()), _hash("R"), _hash("Elixir"), _hash("Tcl", (DQ,)), _hash("awk", (DQ,)),
    _hash("GraphQL", (DQ,)), _hash("Nix", (DQ,)),
    Lang("Julia", ("#(?!=)",), ((r"#=", r"=#"),), True, (DQ,)),
    Lang("Nim", ("#(?!\\[)",), ((r"#\[", r"\]#"),), True, (DQ,)),
    Lang("Haskell", ("--",), ((r"\{-", r"-\}"),), True, (DQ,)),
    Lang("OCaml", (), ((r"\(\*", r"\*\)"),), True, (DQ,)),
    Lang("Erlang", ("%",), (), False, (DQ,)),
    Lang("Clojure", (";",), (), False, (DQ,)),
    Lang("Lisp", (";",), ((r"#\|", r"\|#"),), True, (DQ,)),
    Lang("Emacs Lisp", (";",), (), False, (DQ,)),
    Lang("Scheme", (";",), ((r"#\|", r"\|#"),), True, (DQ,)),
    Lang("Fortran 90", ("!",), (), False, (DQ, SQ)),
    Lang("Assembly", (";", "#", "//"), (C_BLOCK,), False, (DQ,)),
    Lang("Pascal", ("//",), ((r"\{", r"\}"), (r"\(\*", r"\*\)")), False, (SQ,)),
    Lang("DOS Batch", ("(?i:rem)\\b", "::"), (), False, ()),
    Lang("INI", (";", "#"), (), False, ()),
    Lang("HCL", ("#", "//"), (C_BLOCK,), False, (DQ,)),
    Lang("VHDL", ("--",), (), False, (DQ,)),
    Lang("Vim Script", ('"',), (), False, ()),
]}

EXTENSIONS = {
    "py": "Python", "pyw": "Python", "pyi": "Python", "pyx": "Cython", "pxd": "Cython",
    "c": "C", "h": "C/C++ Header", "hh": "C/C++ Header", "hpp": "C/C++ Header", "hxx": "C/C++ Header",
    "cc": "C++", "cpp": "C++", "cxx": "C++", "c++": "C++", "ipp": "C++", "tcc": "C++", "cs": "C#",
    "m": "Objective-C", "mm": "Objective-C++", "java": "Java", "js": "JavaScript", "mjs": "JavaScript",
    "cjs": "JavaScript", "jsx": "JSX", "ts": "TypeScript", "tsx": "TypeScript", "mts": "TypeScript",
    "cts": "TypeScript", "go": "Go", "rs": "Rust", "kt": "Kotlin", "kts": "Kotlin", "swift": "Swift",
    "scala": "Scala", "sc": "Scala", "dart": "Dart", "groovy": "Groovy", "gradle": "Groovy", "d": "D",
    "proto": "Protocol Buffers", "css": "CSS", "scss": "SCSS", "less": "Less", "zig": "Zig", "php": "PHP",
    "rb": "Ruby", "rake": "Ruby", "gemspec": "Ruby", "pl": "Perl", "pm": "Perl",
    "sh": "Bourne Shell", "bash": "Bourne Again Shell", "zsh": "zsh", "ksh": "Korn Shell", "csh": "C Shell",
    "tcsh": "C Shell", "fish": "Fish Shell", "ps1": "PowerShell", "psm1": "PowerShell", "psd1": "PowerShell",
    "lua": "Lua", "sql": "SQL", "html": "HTML", "htm": "HTML", "xhtml": "HTML", "xml": "XML", "xsd": "XML",
    "xsl": "XML", "xslt": "XML", "md": "Markdown", "markdown": "Markdown", "yml": "YAML", "yaml": "YAML",
    "toml": "TOML", "json": "JSON", "txt": "Text", "rst": "reStructuredText", "mk": "make", "mak": "make",
    "cmake": "CMake", "dockerfile": "Dockerfile", "r": "R", "ex": "Elixir", "exs": "Elixir", "tcl": "Tcl",
    "awk": "awk", "graphql": "GraphQL", "gql": "GraphQL", "nix": "Nix", "jl": "Julia", "nim": "Nim",
    "hs": "Haskell", "ml": "OCaml", "mli": "OCaml", "erl": "Erlang", "hrl": "Erlang", "clj": "Clojure",
    "cljs": "Clojure", "cljc": "Clojure", "edn": "Clojure", "lisp": "Lisp", "lsp": "Lisp", "el": "Emacs Lisp",
    "scm": "Scheme", "ss": "Scheme", "f90": "Fortran 90", "f95": "Fortran 90", "f03": "Fortran 90",
    "s": "Assembly", "asm": "Assembly", "pas": "Pascal", "pp": "Pascal", "bat": "DOS Batch", "cmd": "DOS Batch",
    "ini": "INI", "cfg": "INI", "tf": "HCL", "hcl": "HCL", "vhd": "VHDL", "vhdl": "VHDL", "vim": "Vim Script",
}
FILENAMES = {
    "makefile": "make", "gnumakefile": "make", "cmakelists.txt": "CMake", "dockerfile": "Dockerfile",
    "containerfile": "Dockerfile", "rakefile": "Ruby", "gemfile": "Ruby", "vagrantfile": "Ruby",
    "sconstruct": "Python", "sconscript": "Python", "build": "Python", "workspace": "Python",
    ".bashrc": "Bourne Again Shell", ".bash_profile": "Bourne Again Shell", ".zshrc": "zsh", ".vimrc": "Vim Script",
}
INTERPRETERS = {   # shebang program -> language
    "python": "Python", "python2": "Python", "python3": "Python", "pypy": "Python", "pypy3": "Python",
    "sh": "Bourne Shell", "dash": "Bourne Shell", "bash": "Bourne Again Shell", "zsh": "zsh",
    "ksh": "Korn Shell", "csh": "C Shell", "tcsh": "C Shell", "fish": "Fish Shell", "perl": "Perl",
    "ruby": "Ruby", "node": "JavaScript", "nodejs": "JavaScript", "deno": "TypeScript", "lua": "Lua",
    "tclsh": "Tcl", "wish": "Tcl", "awk": "awk", "gawk": "awk", "Rscript": "R", "julia": "Julia",
    "pwsh": "PowerShell", "make": "make", "elixir": "Elixir", "php": "PHP",
}
_SHEBANG = re.compile(rb"#![ \t]*(\S+)(?:[ \t]+(\S+))?")


def by_name(name: str) -> str | None:
    """Language from a file name: special names first, then the extension (as ``os.path.splitext``
    finds it: leading dots never start one, so '.bashrc' and '..py' have none)."""
    low = name.lower()
    if low in FILENAMES:
        return FILENAMES[low]
    ext = os.path.splitext(low)[1]
    return EXTENSIONS.get(ext[1:]) if ext else None


def by_shebang(head: bytes) -> str | None:
    """Language from a ``#!`` line (``#!/usr/bin/env python3 -u`` -> Python)."""
    m = _SHEBANG.match(head)
    if not m:
        return None
    prog = m.group(1).rsplit(b"/", 1)[-1]
    if prog == b"env" and m.group(2):
        prog = m.group(2)
    prog_s = prog.decode("ascii", "replace")
    base = re.sub(r"[0-9.]+$", "", prog_s)
    return INTERPRETERS.get(prog_s) or INTERPRETERS.get(base)


def comment_regex(lang: Lang) -> re.Pattern[bytes] | None:
    """One regex that, searched from a position, consumes code and strings and stops at
    the next comment: group ``k`` is the code and strings before it, group ``c`` a whole
    comment, group ``n`` the opener of a nested block (its end is found by counting).
    Matches empty at the end when none is left. Each match starts where the last ended,
    so ``findall`` walks a whole file."""
    comments = [f"{o}[^\\n]*" for o in lang.line]
    openers = list(lang.line) + [o for o, _ in lang.block]
    if lang.nested:
        nested_open = "|".join(o for o, _ in lang.block)
    else:
        nested_open = ""
        for o, c in lang.block:
            comments.append(f"{o}(?:(?!{c})[\\s\\S])*+(?:{c}|\\Z)")
    comments += list(lang.doc)
    openers += [re.escape(d[:3]) for d in lang.doc]
    if not comments and not nested_open:
        return None
    firsts = _first_chars(openers + list(lang.strings))
    guard = "|".join(openers) or "(?!)"
    item = f"[^{firsts}]++"
    if lang.strings:
        item += f"|(?!{guard})(?:{'|'.join(lang.strings)})"
    item += f"|(?!{guard})[{firsts}]"
    tail = f"(?P<c>{'|'.join(comments)})" if comments else "(?P<c>(?!))"
    if nested_open:
        tail += f"|(?P<n>{nested_open})"
    flags = "(?m)" if any(o.startswith("^") for o in openers) else ""
    return re.compile(f"{flags}(?P<k>(?:{item})*+)(?:{tail}|\\Z)".encode())


def _first_chars(regexes: list[str]) -> str:
    """The characters a token can start with, as a character-class body."""
    out: set[str] = set()
    for r in regexes:
        r = r.lstrip("^")
        if r.startswith("(?i:"):
            out.update("rRmM")   # rem / REM; a word opener: its letters start tokens
            continue
        if r.startswith("\\"):
            out.add(r[1])
        else:
            out.add(r[0])
    if any(r.startswith("^") for r in regexes):
        out.add("\n")   # a line-start opener: stop at each newline to test it
    return "".join(re.escape(ch) if ch in "]\\^-" else ch for ch in sorted(out))


# the bytes each shared string regex is written with
_STRING_CHARS = {DQ: '"\\', SQ: "'\\", SH_SQ: "'", BACKTICK: "`\\", TEXT_BLOCK: '"\\',
                 PY_DOC[0]: '"\\', PY_DOC[1]: "'\\"}


def token_chars(lang: Lang) -> bytes | None:
    """Every byte the language's comment and string syntax is written with (quotes,
    backslash, each character of each comment delimiter), or None when the syntax also
    depends on letters, digits, word boundaries or counted repeats (Ruby ``=begin``,
    Perl POD, ``rem``, Java/Go/Rust character literals).

    Where it is not None, the comment regex reads a text the same way when every run of
    other bytes in it is shortened to one byte: that is what the kernel exploits."""
    chars: set[str] = set()
    for s in lang.strings + lang.doc:
        if s not in _STRING_CHARS:
            return None
        chars.update(_STRING_CHARS[s])
    for r in list(lang.line) + [x for pair in lang.block for x in pair]:
        lit = _literal_chars(r)
        if lit is None:
            return None
        chars.update(lit)
    assert not any(c.isalnum() or c.isspace() for c in chars), chars   # the kernel's stand-ins
    return "".join(sorted(chars)).encode()


def _literal_chars(regex: str) -> set[str] | None:
    """The characters a delimiter regex matches literally (a superset is fine: lookahead
    contents count too); None if it matches letters or digits or uses escapes like ``\\b``."""
    body = re.sub(r"\(\?[:!=]", "", regex)
    out: set[str] = set()
    for esc, ch in re.findall(r"\\(.)|(.)", body, flags=re.S):
        if esc:
            if esc.isalnum():
                return None
            out.add(esc)
        elif ch.isalnum():
            return None
        elif ch not in "()[]|*+?^$.{}":
            out.add(ch)
    return out
