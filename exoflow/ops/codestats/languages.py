"""Languages for codestats: how a file is recognised and how its comments look.

Names follow cloc's so that the two tables compare line by line. Each language
compiles to ONE regex that skips code and strings and stops at the next comment
(see ``comment_regex``), so comment markers inside strings are not comments. The
strings are each language's own: strings that span lines where the language lets
them, raw and verbatim strings (C++ ``R"x(...)x"``, C# ``@"..."`` and raw triple quotes,
Rust ``r#"..."#``, Swift ``#"..."#``, Go and D backticks, Lua and CMake long brackets,
Kotlin/Scala/TOML/Nim triple quotes, heredocs, YAML block scalars, ...), and regex
literals. Where ``/`` both divides and starts a regex literal (JavaScript, Ruby, Perl, awk,
Groovy), lookbehinds read what precedes it: after a word, ``)`` or ``]`` it divides.
``token_chars`` names the bytes a language's comment and string syntax is written
with, so that the kernel can run that regex over a much shorter text (see
``exoflow.ops.codestats.kernel``).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

# ---- string syntaxes --------------------------------------------------------------------
# Regexes that read only their own delimiter bytes, newline and "any other byte" alike read
# the token text as they read the file; _TOKEN_SAFE maps each to those bytes (token_chars).
_TOKEN_SAFE: dict[str, str] = {}


def _safe(regex: str, chars: str) -> str:
    _TOKEN_SAFE[regex] = chars
    return regex


def _quoted(q: str, escapes: bool = True, lines: bool = False) -> str:
    """A string between two ``q``: with backslash escapes or without (a doubled quote then
    reads as two strings side by side, on the same lines); on one line, or spanning lines."""
    stop = q + ("\\\\" if escapes else "") + ("" if lines else "\\n")
    body = f"(?:[^{stop}]|\\\\[\\s\\S])*+" if escapes else f"[^{stop}]*+"
    return _safe(f"{q}{body}{q}", q + ("\\" if escapes else ""))


def _triple(q: str, escapes: bool = True) -> str:
    """A string between three ``q``, spanning lines; one left open runs to the end. Without
    escapes, quotes right before the closing three are the string's (Kotlin ``\"\"\"a\"\"\"\"``)."""
    if escapes:
        return _safe(f"{q * 3}(?:[^{q}\\\\]|\\\\[\\s\\S]?|{q}(?!{q * 2}))*+(?:{q * 3}|\\Z)", q + "\\")
    return _safe(f"{q * 3}(?:[^{q}]|{q}(?!{q * 2}))*+(?:{q * 3}{q}*|\\Z)", q)


def _prefixed(words: str, regex: str) -> str:
    """``regex`` (a string starting with a literal character) where that character follows
    one of ``words`` (a regex alternation of fixed-width words) standing alone: ``R"`` but
    not ``FOOR"`` (raw-string prefixes)."""
    first = regex[0]
    looks = "|".join(f"(?<=\\b{w}{re.escape(first)})" for w in words.split("|"))
    return f"{first}(?:{looks}){regex[1:]}"


def _nested(o: str, c: str) -> str:
    """Text between brackets ``o`` and ``c`` (backslash escapes; one level of nested pairs)."""
    o, c = re.escape(o), re.escape(c)
    inner = f"(?:[^{o}{c}\\\\]|\\\\[\\s\\S])*+"
    return f"{o}(?:[^{o}{c}\\\\]|\\\\[\\s\\S]|{o}{inner}{c})*+{c}"


def _delimited(name: str) -> str:
    """A body between a delimiter the text chooses (Ruby ``%w[...]``, Perl ``q{...}``,
    ``m|...|``): a bracket pair, or the same character twice (group ``name``)."""
    same = f"(?P<{name}>[^\\w\\s\\\\)\\]}}>])(?:(?!(?P={name}))[^\\\\]|\\\\[\\s\\S])*+(?P={name})"
    return "(?:" + "|".join([*(_nested(o, c) for o, c in ("()", "[]", "{}", "<>")), same]) + ")"


def _heredoc(start: str, tag: str, end: str = r"[ \t\r]*$") -> str:
    """A heredoc: ``start`` (ending in the named group ``tag``, its delimiting word), the rest
    of that line (code), then every line up to one holding only the word (indented or not)."""
    return f"{start}[^\\n]*\\n[\\s\\S]*?^[ \\t]*(?P={tag}){end}"


DQ, SQ = _quoted('"'), _quoted("'")                                # one line, backslash escapes
DQ_ML, SQ_ML = _quoted('"', lines=True), _quoted("'", lines=True)  # spanning lines
DQ_RAW, SQ_RAW = _quoted('"', escapes=False), _quoted("'", escapes=False)   # no escapes ('' is a quote)
SQ_RAW_ML = _quoted("'", escapes=False, lines=True)                # shell '...', PowerShell '...'
BACKTICK = _quoted("`", lines=True)                                 # JS template, shell `cmd`
BACKTICK_RAW = _quoted("`", escapes=False, lines=True)             # Go raw string, D wysiwyg string
CHAR = r"'(?:[^'\\\n]|\\[^\n]{1,10}?)'"          # one-character literal (Rust/Java: 'a' but not 'a lifetimes)
TRIPLE_DQ, TRIPLE_SQ = _triple('"'), _triple("'")                  # Java text block, Swift, Groovy, Dart ...
TRIPLE_DQ_RAW, TRIPLE_SQ_RAW = _triple('"', False), _triple("'", False)   # Kotlin, Scala, Nim; TOML '''
# a docstring is a comment (as in cloc); one left open runs to the end, even past a last backslash
PY_DOC = (TRIPLE_DQ, TRIPLE_SQ)
C_BLOCK = (r"/\*", r"\*/")

CPP_RAW = _prefixed("R|[uUL]R|u8R", r'"(?P<cppraw>[^()\\\s"]{0,16})\([\s\S]*?\)(?P=cppraw)"')   # R"x(...)x"
CS_RAW = _safe(r'"(?P<csraw>""+)[\s\S]*?"(?P=csraw)', '"')         # C# 11: """...""" (3 quotes or more)
CS_VERBATIM = _safe(r'@\$?"(?:[^"]|"")*+"', '@$"')                 # @"C:\dir\", $@"..", @$"..": "" is a quote
RUST_RAW = (_prefixed("r|[bc]r", r'"[^"]*+"'), _prefixed("r|[bc]r", r'#(?P<rsraw>#*)"[\s\S]*?"#(?P=rsraw)'))
SWIFT_RAW = _safe(r'#(?P<swraw>#*)(?:"""[\s\S]*?"""|"[^\n]*?"|/[\s\S]*?/)#(?P=swraw)', '#"/')   # #"..."#, #/re/#
D_RAW = (_prefixed("r", r'"[^"]*+"'),                               # r"wysiwyg", q"(delimited)", q"EOS ... EOS"
         _prefixed("q", r'"(?:\([\s\S]*?\)|\[[\s\S]*?\]|\{[\s\S]*?\}|<[\s\S]*?>'
                        r'|(?P<dqid>[A-Za-z_]\w*)\n[\s\S]*?\n(?P=dqid)|(?P<dqch>[^\w\s])[\s\S]*?(?P=dqch))"'))
DART_RAW = tuple(_prefixed("r", s) for s in (TRIPLE_SQ_RAW, TRIPLE_DQ_RAW, r"'[^'\n]*+'", r'"[^"\n]*+"'))
R_RAW = tuple(_prefixed("[rR]", f'{q}(?P<{g}>-*)(?:' + "|".join(f"{re.escape(o)}[\\s\\S]*?{re.escape(c)}(?P={g}){q}"
                                                             for o, c in ("()", "[]", "{}")) + ")")
              for q, g in (('"', "rrawd"), ("'", "rraws")))
NIM_RAW = r'"(?<=\w")(?:[^"\n]|"")*+"'             # ident"..." (r"..." and call syntax): no escapes
ZIG_LINE = _safe(r"\\\\[^\n]*", "\\")                # \\ multiline string line
LONG_BRACKET = _safe(r"\[(?P<lbr>=*)\[[\s\S]*?\](?P=lbr)\]", "[=]")   # Lua [==[ ]==], CMake [=[ ]=]
PS_STRINGS = (_safe(r'@"[^\n]*\n[\s\S]*?\n"@', '@"'), _safe(r"@'[^\n]*\n[\s\S]*?\n'@", "@'"),   # here-strings
              _safe(r'"(?:[^"`]|`[\s\S])*+"', '"`'), SQ_RAW_ML)
NIX_INDENTED = _safe(r"''(?:[^']|'(?!')|'''|''\$|''\\[\s\S])*+''", "'$\\")
XML_CDATA = _safe(r"<!\[[^\[\]>]*\[[\s\S]*?\]\]>", "<![]>")    # <![CDATA[ ... ]]> (and DTD's <![IGNORE[ ]]>)
MD_CODE = _safe(r"`(?P<mdt>`*)[\s\S]*?(?<!`)`(?P=mdt)(?!`)", "`")     # `code`, ``co`de``, ``` fences ```
ELIXIR = (_safe(r"\?(?:\\[\s\S]|[^\s\\])", "?\\"),                   # ?# ?" character literals
          r"~(?:[a-z]|[A-Z][A-Z0-9]*)(?:" + TRIPLE_DQ + "|" + TRIPLE_SQ + "|"
          + "|".join(f"{re.escape(d)}(?:[^{re.escape(e)}\\\\]|\\\\[\\s\\S])*+{re.escape(e)}"
                     for d, e in ('//', '||', '""', "''", "()", "[]", "{}", "<>")) + ")")   # sigils ~r/../
def _heredoc_word(q: str, tag: str, bare: str) -> str:
    """A heredoc's word: quoted (any characters but quotes, "END OF TEXT") or ``bare`` (after an
    optional backslash); group ``tag`` holds it without its quotes."""
    return f"(?P<{q}>[\"'`])?(?({q})|\\\\?)(?P<{tag}>(?({q})[^\"'`\\n]+|{bare}))(?({q})(?P={q}))"


HEREDOC_SH = _heredoc(r"<(?<!<<)<(?!<)-?[ \t]*" + _heredoc_word("shq", "sht", r"[A-Za-z_][\w-]*"), "sht")
HEREDOC_PERL = _heredoc(r"<(?<!<<)<~?(?:[ \t]+(?=[\"'`]))?" + _heredoc_word("plq", "plt", r"[A-Za-z_]\w*"), "plt")
HEREDOC_RUBY = (_heredoc(r"<(?<!<<)<[~-]" + _heredoc_word("rbq", "rbt", r"[A-Za-z_]\w*"), "rbt"),
                _heredoc(r"<(?<!<<)<(?P<rbq2>[\"'`])(?P<rbt2>[^\"'`\n]+)(?P=rbq2)", "rbt2"),
                _heredoc(r"<(?<!<<)<(?P<rbt3>[A-Z_][A-Z0-9_]*)\b", "rbt3"))   # bare: upper case (a << b)
HEREDOC_PHP = _heredoc(r"<<<[ \t]*(?P<phq>[\"']?)(?P<pht>[A-Za-z_]\w*)(?P=phq)", "pht", r"\b")
HEREDOC_HCL = _heredoc(r"<<-?(?P<hct>[A-Za-z_]\w*)", "hct")
# YAML: quotes open a string only where a scalar starts; block scalars (| and >) run while indented
YAML_STRINGS = (r"(?<![^\s\[{,])[|>][-+1-9]*[ \t]*(?:#[^\n]*)?\n(?:[ \t]*\n)*(?P<ybi>[ \t]+)[^\n]*"
                r"(?:\n(?:[ \t]*(?=\n)|(?P=ybi)[^\n]*))*",
                r"(?<![^\s\[{,])" + DQ_ML, r"(?<![^\s\[{,])" + SQ_RAW_ML)

# regex literals: where "/" also divides, the bytes before it tell (lookbehinds, placed after it)
_OPERAND_END = r"[\w$\x80-\xff)\]]"     # a word, ) or ]: what a division follows


def _not_after_operand(ch: str, keywords: str = "") -> str:
    """Lookbehinds, placed after ``ch``: it does not follow an operand (up to two blanks
    between), unless that operand is one of ``keywords`` (``return /x/``: a literal starts)."""
    c = re.escape(ch)
    alts = ["".join(f"(?<!{_OPERAND_END}{sp}{c})" for sp in ("", r"\s", r"\s\s"))]
    by_len: dict[int, list[str]] = {}
    for k in filter(None, keywords.split("|")):
        by_len.setdefault(len(k), []).append(k)
    alts += [f"(?<=\\b(?:{'|'.join(ws)}){sp}{c})" for ws in by_len.values() for sp in ("", r"\s", r"\s\s")]
    return f"(?:{'|'.join(alts)})"


def _spaced_literal(ch: str, operand: str) -> str:
    """Lookbehinds, placed after ``ch`` (Ruby, Perl): after an operand, ``ch`` is an operator
    when attached (``a/b``) or spaced on both sides (``a / b``, ``a /= b``, Perl's ``a // b``);
    with a blank before only (``puts /x/``, ``split /,/``) it starts a literal, as elsewhere."""
    c = re.escape(ch)
    return f"(?<!{operand}{c})(?<!/{c})(?:(?<!{operand}\\s{c})(?<!{operand}\\s\\s{c})|(?![\\s=/]))"


_REGEX_BODY = r"(?<!</)(?![/*>])(?:[^/\\\[\n]|\\[^\n]|\[(?:[^\]\\\n]|\\[^\n])*+\])++/"   # one line; not </a> or />
_JS_KEYWORDS = "return|typeof|instanceof|in|of|new|delete|void|throw|case|do|else|yield|await"
JS_REGEX = "/" + _not_after_operand("/", _JS_KEYWORDS) + _REGEX_BODY
DOLLAR_SLASHY = r"\$/(?:[^/$]|\$[$/]|\$(?![$/])|/(?!\$))*+/\$"      # Groovy $/ ... /$
_RUBY_OPERAND = r"[\w@$\x80-\xff)\]}?!]"
RUBY_STRINGS = (*HEREDOC_RUBY, "%" + _spaced_literal("%", _RUBY_OPERAND) + "[qQwWiIrsx]?" + _delimited("rbpct"),
                r"\?(?<![\w)\]]\?)(?:\\[\s\S]|[^\s\\])", DQ_ML, SQ_ML, BACKTICK,   # ?# ?" characters
                "/" + _spaced_literal("/", _RUBY_OPERAND) + _REGEX_BODY)
# Perl: q qq qw qr m s tr y quote with a delimiter they choose, where an operand starts (after a
# blank or one of ( = ~ { [ ; , . & ? : -- not a sigil, ->, \s or the flags of /a/s); not "s => 1"; "q #..#"
# with a blank is a comment. $# (last index), $" and the other punctuation variables are not syntax.
_PERL_DELIM = r"\b(?:\s*+(?=[^\w\s#)\]}>\\])(?!=>)|(?=#))"
_PERL_TWO = ("(?:(?:" + "|".join(_nested(o, c) for o, c in ("()", "[]", "{}", "<>")) + r")\s*+" + _delimited("plq2")
             + r"|(?P<plq3>[^\w\s\\])(?:(?!(?P=plq3))[^\\]|\\[\s\S])*+(?P=plq3)(?:(?!(?P=plq3))[^\\]|\\[\s\S])*+(?P=plq3))")
PERL_STRINGS = (HEREDOC_PERL, r"\$[^\w\s{]", DQ_ML, SQ_ML, BACKTICK,
                *(f"{w[0]}(?<![^\\s(=~{{\\[;,.&?:]{w[0]}){w[1:]}{_PERL_DELIM}{body}"
                  for w, body in (("q[qwr]?", _delimited("plq1")), ("m", _delimited("plqm")), ("s", _PERL_TWO),
                                  ("tr", _PERL_TWO.replace("plq", "plqt")), ("y", _PERL_TWO.replace("plq", "plqy")))),
                "/" + _spaced_literal("/", r"[\w$@%\x80-\xff)\]}]") + _REGEX_BODY)


@dataclass(frozen=True)
class Lang:
    name: str
    line: tuple[str, ...] = ()                    # line comment openers (regexes)
    block: tuple[tuple[str, str], ...] = ()       # (open, close) regexes
    nested: bool = False                          # block comments nest (Rust, Haskell, OCaml …)
    strings: tuple[str, ...] = ()                 # string literal regexes (skipped, counted as code)
    doc: tuple[str, ...] = ()                     # strings counted as comments (Python docstrings, as cloc)


def _c(name: str, *extra_strings: str, line: tuple[str, ...] = ("//",)) -> Lang:
    return Lang(name, line, (C_BLOCK,), False, extra_strings + (DQ, SQ))


def _hash(name: str, strings: tuple[str, ...] = (DQ, SQ)) -> Lang:
    return Lang(name, ("#",), (), False, strings)


# shell: '#' starts a comment only at the start of a word (a#b, $#, ${#x} are not comments)
SHELL = ((r"(?<![^\s;&|()<>])#",), (), False, (HEREDOC_SH, _safe(r"\$'(?:[^'\\]|\\[\s\S])*+'", "$'\\"), DQ_ML,
                                              SQ_RAW_ML, BACKTICK, _safe(r"\\[\s\S]", "\\")))
PYTHON = (("#",), (), False, (DQ, SQ), PY_DOC)
LANGS: dict[str, Lang] = {l.name: l for l in [
    Lang("Python", *PYTHON), Lang("Cython", *PYTHON), Lang("Bazel", *PYTHON), Lang("Starlark", *PYTHON),
    _c("C"), _c("C/C++ Header", CPP_RAW), _c("C++", CPP_RAW), _c("C#", CS_RAW, CS_VERBATIM),
    _c("Objective-C"), _c("Objective-C++", CPP_RAW),
    Lang("Java", ("//",), (C_BLOCK,), False, (TRIPLE_DQ, DQ, CHAR)),
    _c("JavaScript", BACKTICK, JS_REGEX), _c("TypeScript", BACKTICK, JS_REGEX), _c("JSX", BACKTICK, JS_REGEX),
    Lang("Go", ("//",), (C_BLOCK,), False, (DQ, CHAR, BACKTICK_RAW)),
    Lang("Rust", ("//",), (C_BLOCK,), True, (*RUST_RAW, DQ_ML, CHAR)),
    Lang("Kotlin", ("//",), (C_BLOCK,), True, (TRIPLE_DQ_RAW, DQ, CHAR)),
    Lang("Swift", ("//",), (C_BLOCK,), True, (TRIPLE_DQ, SWIFT_RAW, DQ)),
    Lang("Scala", ("//",), (C_BLOCK,), True, (TRIPLE_DQ_RAW, DQ, CHAR)),
    Lang("Dart", ("//",), (C_BLOCK,), True, (*DART_RAW, TRIPLE_DQ, TRIPLE_SQ, DQ, SQ)),
    _c("Groovy", DOLLAR_SLASHY, TRIPLE_DQ, TRIPLE_SQ, JS_REGEX),
    Lang("D", ("//",), (C_BLOCK, (r"/\+", r"\+/")), True, (*D_RAW, DQ_ML, CHAR, BACKTICK_RAW)),
    _c("Protocol Buffers"), _c("CSS", line=()), _c("SCSS"), _c("Less"), _c("Zig", ZIG_LINE),
    Lang("PHP", ("//", r"#(?!\[)"), (C_BLOCK,), False, (HEREDOC_PHP, DQ_ML, SQ_ML)),
    Lang("Ruby", ("#",), ((r"^=begin\b", r"^=end\b[^\n]*"),), False, RUBY_STRINGS),
    Lang("Perl", ("#",), ((r"^=[a-zA-Z]", r"^=cut\b[^\n]*"),), False, PERL_STRINGS),
    Lang("Bourne Shell", *SHELL), Lang("Bourne Again Shell", *SHELL), Lang("zsh", *SHELL),
    Lang("Korn Shell", *SHELL), Lang("C Shell", *SHELL), Lang("Fish Shell", *SHELL),
    Lang("PowerShell", ("#",), ((r"<#", r"#>"),), False, PS_STRINGS),
    Lang("Lua", (r"--(?!\[=*\[)",), ((r"--\[(?P<luac>=*)\[", r"\](?P=luac)\]"),), False, (DQ, SQ, LONG_BRACKET)),
    Lang("SQL", ("--",), (C_BLOCK,), False, (SQ_ML, DQ_ML)),
    Lang("HTML", (), ((r"<!--", r"-->"),)), Lang("XML", (), ((r"<!--", r"-->"),), False, (XML_CDATA,)),
    Lang("Markdown", (), ((r"<!--", r"-->"),), False, (MD_CODE,)),
    Lang("YAML", (r"(?<![^\s])#",), (), False, YAML_STRINGS),
    _hash("TOML", (TRIPLE_DQ, TRIPLE_SQ_RAW, DQ, SQ_RAW)), Lang("JSON"), Lang("Text"), Lang("reStructuredText"),
    _hash("make", ()), Lang("CMake", (r"#(?!\[=*\[)",), ((r"#\[(?P<cmc>=*)\[", r"\](?P=cmc)\]"),), False,
                            (DQ_ML, LONG_BRACKET)),
    _hash("Dockerfile", ()), _hash("Meson", (TRIPLE_SQ, SQ)),
    Lang("R", ("#",), (), False, (*R_RAW, DQ_ML, SQ_ML, BACKTICK)),
    _hash("Elixir", (TRIPLE_DQ, TRIPLE_SQ, *ELIXIR, DQ_ML, SQ_ML)), _hash("Tcl", (DQ_ML,)),
    Lang("awk", ("#",), (), False, (DQ, JS_REGEX)),
    _hash("GraphQL", (TRIPLE_DQ, DQ)), Lang("Nix", ("#",), (C_BLOCK,), False, (NIX_INDENTED, DQ_ML)),
    Lang("Julia", ("#(?!=)",), ((r"#=", r"=#"),), True, (TRIPLE_DQ, DQ_ML, CHAR, BACKTICK)),
    Lang("Nim", ("#(?!\\[)",), ((r"#\[", r"\]#"),), True, (TRIPLE_DQ_RAW, NIM_RAW, DQ, CHAR)),
    Lang("Haskell", ("--",), ((r"\{-", r"-\}"),), True, (DQ_ML, CHAR)),
    Lang("OCaml", (), ((r"\(\*", r"\*\)"),), True, (r"\{(?P<mlq>[a-z_]*)\|[\s\S]*?\|(?P=mlq)\}", DQ_ML, CHAR)),
    Lang("Erlang", ("%",), (), False, (TRIPLE_DQ_RAW, DQ_ML, SQ, _safe(r"\$(?:\\[\s\S]|[\s\S])", "$\\"))),
    Lang("Clojure", (";",), (), False, (DQ_ML, _safe(r"\\[\s\S]", "\\"))),
    Lang("Lisp", (";",), ((r"#\|", r"\|#"),), True, (DQ_ML, _safe(r"#\\[\s\S]", "#\\"))),
    Lang("Emacs Lisp", (";",), (), False, (DQ_ML, _safe(r"\?(?:\\[\s\S]|[\s\S])", "?\\"), _safe(r"\\[\s\S]", "\\"))),
    Lang("Scheme", (";",), ((r"#\|", r"\|#"),), True, (DQ_ML, _safe(r"#\\[\s\S]", "#\\"))),
    Lang("Fortran 90", ("!",), (), False, (DQ_RAW, SQ_RAW)),
    Lang("Assembly", (";", "#", "//"), (C_BLOCK,), False, (DQ,)),
    Lang("Pascal", ("//",), ((r"\{", r"\}"), (r"\(\*", r"\*\)")), False, (SQ_RAW,)),
    Lang("DOS Batch", ("(?i:rem)\\b", "::"), (), False, ()),
    Lang("INI", (";", "#"), (), False, ()),
    Lang("HCL", ("#", "//"), (C_BLOCK,), False, (HEREDOC_HCL, DQ)),
    Lang("VHDL", ("--",), (), False, (DQ_RAW,)),
    Lang("Vim Script", ('"',), (), False, ()),
]}

EXTENSIONS = {
    "py": "Python", "pyw": "Python", "pyi": "Python", "pyx": "Cython", "pxd": "Cython",
    "c": "C", "h": "C/C++ Header", "hh": "C/C++ Header", "hpp": "C/C++ Header", "hxx": "C/C++ Header",
    "cc": "C++", "cpp": "C++", "cxx": "C++", "c++": "C++", "ipp": "C++", "tcc": "C++", "cs": "C#",
    "m": "Objective-C", "mm": "Objective-C++", "java": "Java", "js": "JavaScript", "mjs": "JavaScript",
    "cjs": "JavaScript", "jsx": "JSX", "ts": "TypeScript", "tsx": "TypeScript", "mts": "TypeScript",
    "cts": "TypeScript", "go": "Go", "rs": "Rust", "kt": "Kotlin", "kts": "Kotlin", "swift": "Swift",
    "scala": "Scala", "sc": "Scala", "sbt": "Scala", "dart": "Dart", "groovy": "Groovy", "gradle": "Groovy",
    "jenkinsfile": "Groovy", "d": "D",
    "proto": "Protocol Buffers", "css": "CSS", "scss": "SCSS", "less": "Less", "zig": "Zig", "php": "PHP",
    "rb": "Ruby", "rake": "Ruby", "gemspec": "Ruby", "podspec": "Ruby", "pl": "Perl", "pm": "Perl",
    "sh": "Bourne Shell", "bash": "Bourne Again Shell", "ebuild": "Bourne Again Shell",
    "eclass": "Bourne Again Shell", "zsh": "zsh", "ksh": "Korn Shell", "csh": "C Shell",
    "tcsh": "C Shell", "fish": "Fish Shell", "ps1": "PowerShell", "psm1": "PowerShell", "psd1": "PowerShell",
    "lua": "Lua", "sql": "SQL", "html": "HTML", "htm": "HTML", "xhtml": "HTML", "xml": "XML", "xsd": "XML",
    "xsl": "XML", "xslt": "XML", "md": "Markdown", "markdown": "Markdown", "yml": "YAML", "yaml": "YAML",
    "toml": "TOML", "json": "JSON", "txt": "Text", "rst": "reStructuredText", "mk": "make", "mak": "make",
    "make": "make", "am": "make", "cmake": "CMake", "dockerfile": "Dockerfile", "containerfile": "Dockerfile",
    "bzl": "Starlark", "bazel": "Starlark", "smk": "Python", "r": "R", "ex": "Elixir", "exs": "Elixir",
    "tcl": "Tcl",
    "awk": "awk", "graphql": "GraphQL", "gql": "GraphQL", "nix": "Nix", "jl": "Julia", "nim": "Nim",
    "hs": "Haskell", "ml": "OCaml", "mli": "OCaml", "erl": "Erlang", "hrl": "Erlang", "clj": "Clojure",
    "cljs": "Clojure", "cljc": "Clojure", "edn": "Clojure", "lisp": "Lisp", "lsp": "Lisp", "el": "Emacs Lisp",
    "scm": "Scheme", "ss": "Scheme", "f90": "Fortran 90", "f95": "Fortran 90", "f03": "Fortran 90",
    "s": "Assembly", "asm": "Assembly", "pas": "Pascal", "pp": "Pascal", "bat": "DOS Batch", "cmd": "DOS Batch",
    "ini": "INI", "cfg": "INI", "tf": "HCL", "hcl": "HCL", "vhd": "VHDL", "vhdl": "VHDL", "vim": "Vim Script",
}
# whole names (case-insensitive): build and configuration files as cloc, tokei and scc know them
FILENAMES = {
    "makefile": "make", "gnumakefile": "make", "bsdmakefile": "make", "cmakelists.txt": "CMake",
    "dockerfile": "Dockerfile", "containerfile": "Dockerfile", "meson.build": "Meson", "meson_options.txt": "Meson",
    "rakefile": "Ruby", "gemfile": "Ruby", "vagrantfile": "Ruby", "podfile": "Ruby", "fastfile": "Ruby",
    "appfile": "Ruby", "brewfile": "Ruby", "guardfile": "Ruby", "capfile": "Ruby", "berksfile": "Ruby",
    "thorfile": "Ruby", "dangerfile": "Ruby", "jenkinsfile": "Groovy", "sconstruct": "Python",
    "sconscript": "Python", "snakefile": "Python", "build": "Bazel", "workspace": "Bazel",
    "pkgbuild": "Bourne Again Shell", ".bashrc": "Bourne Again Shell", ".bash_profile": "Bourne Again Shell",
    ".bash_login": "Bourne Again Shell", ".bash_logout": "Bourne Again Shell", ".profile": "Bourne Shell",
    ".zshrc": "zsh", ".zshenv": "zsh", ".zprofile": "zsh", ".zlogin": "zsh", ".zlogout": "zsh",
    ".kshrc": "Korn Shell", ".cshrc": "C Shell", ".tcshrc": "C Shell", ".vimrc": "Vim Script",
    "_vimrc": "Vim Script", ".gvimrc": "Vim Script", "vimrc": "Vim Script", "gvimrc": "Vim Script",
}
# a name's part before its first dot, when the extension is not known (Dockerfile.prod, Makefile.linux)
PREFIXES = {"dockerfile": "Dockerfile", "containerfile": "Dockerfile", "makefile": "make", "gnumakefile": "make",
            "jenkinsfile": "Groovy"}
INTERPRETERS = {   # shebang program -> language
    "python": "Python", "pypy": "Python", "sh": "Bourne Shell", "dash": "Bourne Shell", "ash": "Bourne Shell",
    "bash": "Bourne Again Shell", "zsh": "zsh", "ksh": "Korn Shell", "mksh": "Korn Shell", "pdksh": "Korn Shell",
    "csh": "C Shell", "tcsh": "C Shell", "fish": "Fish Shell", "perl": "Perl", "ruby": "Ruby", "jruby": "Ruby",
    "node": "JavaScript", "nodejs": "JavaScript", "bun": "JavaScript", "deno": "TypeScript",
    "ts-node": "TypeScript", "lua": "Lua", "luajit": "Lua", "tclsh": "Tcl", "wish": "Tcl", "awk": "awk",
    "gawk": "awk", "mawk": "awk", "nawk": "awk", "Rscript": "R", "julia": "Julia", "pwsh": "PowerShell",
    "powershell": "PowerShell", "make": "make", "gmake": "make", "elixir": "Elixir", "escript": "Erlang",
    "php": "PHP", "groovy": "Groovy", "scala": "Scala", "kotlin": "Kotlin", "swift": "Swift", "dart": "Dart",
    "runghc": "Haskell", "runhaskell": "Haskell", "ocaml": "OCaml", "guile": "Scheme", "sbcl": "Lisp",
    "clisp": "Lisp", "emacs": "Emacs Lisp",
}
UTF8_BOM = b"\xef\xbb\xbf"
_ENV_ARG_OPTIONS = frozenset(b"uCPa")     # env's short options that take an argument (GNU and BSD)


def by_name(name: str) -> str | None:
    """Language from a file name: special names first, then the extension (as ``os.path.splitext``
    finds it: leading dots never start one, so '.bashrc' and '..py' have none), then the name's
    part before its first dot (``Dockerfile.prod``)."""
    low = name.lower()
    if low in FILENAMES:
        return FILENAMES[low]
    ext = os.path.splitext(low)[1][1:]
    if not ext:       # none, or a name ending in a dot
        return None
    return EXTENSIONS.get(ext) or PREFIXES.get(low.partition(".")[0])


def by_shebang(head: bytes) -> str | None:
    """Language from a ``#!`` line: its program (``#!/usr/bin/perl -w`` -> Perl, ``python3.11``
    -> Python), or the program ``env`` runs, past env's options and assignments
    (``#!/usr/bin/env -S python3 -u``, ``#!/usr/bin/env -i PATH=/bin bash``). A UTF-8
    byte-order mark before the ``#!`` is skipped. None when there is no ``#!`` or the program
    is not known."""
    head = head.removeprefix(UTF8_BOM)
    if not head.startswith(b"#!"):
        return None
    words = head[2:].split(b"\n", 1)[0].split()
    if not words:
        return None
    prog = words[0].rsplit(b"/", 1)[-1]
    if prog == b"env":
        prog = _env_program(words[1:])
    prog_s = prog.strip(b"\"'").rsplit(b"/", 1)[-1].decode("ascii", "replace")
    return INTERPRETERS.get(prog_s) or INTERPRETERS.get(re.sub(r"[0-9.]+$", "", prog_s))


def _env_program(args: list[bytes]) -> bytes:
    """The program ``env ARGS`` runs: options (``-i``, ``-u NAME``, ``-C DIR``, ``-S`` and
    what its string holds, long ones), ``NAME=value`` and ``--`` skipped."""
    args = list(args)
    while args:
        arg = args.pop(0)
        if arg == b"--":
            return args[0] if args else b""
        if arg.startswith(b"--"):     # --split-string=STR, --unset NAME, --chdir=DIR, --ignore-environment
            name, eq, value = arg.partition(b"=")
            if name == b"--split-string" and eq:
                args.insert(0, value)
            elif name in (b"--unset", b"--chdir") and not eq and args:
                args.pop(0)
        elif arg.startswith(b"-") and len(arg) > 1:
            for i, c in enumerate(arg[1:], 1):
                if c == ord("S"):              # -S: the rest is split into more arguments
                    if arg[i + 1:]:
                        args.insert(0, arg[i + 1:])
                    break
                if c in _ENV_ARG_OPTIONS:      # -u NAME or -uNAME
                    if not arg[i + 1:] and args:
                        args.pop(0)
                    break
        elif b"=" not in arg:
            return arg
    return b""


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
    guard = re.sub(r"\(\?P<\w+>", "(?:", "|".join(openers)) or "(?!)"   # openers' groups are defined once
    item = f"[^{firsts}]++"
    if lang.strings:
        item += f"|(?!{guard})(?:{'|'.join(lang.strings)})"
    item += f"|(?!{guard})[{firsts}]"
    tail = f"(?P<c>{'|'.join(comments)})" if comments else "(?P<c>(?!))"
    if nested_open:
        tail += f"|(?P<n>{nested_open})"
    # an atomic group, not a possessive *+: Python 3.11's re fails ("The span of capturing group is
    # wrong") when a string's own group is inside a possessive repeat
    return re.compile(f"(?m)(?P<k>(?>(?:{item})*))(?:{tail}|\\Z)".encode())


_LOOKBEHIND = re.compile(r"\(\?<[=!](?:\\.|\[(?:\\.|[^\]\\])*\]|[^)\\\[])*\)")


def _first_chars(regexes: list[str]) -> str:
    """The characters a token can start with, as a character-class body. Each regex starts
    (after lookbehinds and a ``^``) with a character, an escaped one or a class of them."""
    out: set[str] = set()
    for r in regexes:
        while m := _LOOKBEHIND.match(r):
            r = r[m.end():]
        if r.startswith("^"):
            out.add("\n")   # a line-start token: stop at each newline to test it
            r = r[1:]
        if r.startswith("(?i:"):
            out.update("rRmM")   # rem / REM; a word opener: its letters start tokens
        elif r.startswith("["):        # a class of characters, without ranges
            out.update(a or b for a, b in re.findall(r"\\(.)|([^\\])", r[1:r.index("]", 2)]))
        else:
            out.add(r[1] if r.startswith("\\") else r[0])
    return "".join(re.escape(ch) if ch in "]\\^-" else ch for ch in sorted(out))


def token_chars(lang: Lang) -> bytes | None:
    """Every byte the language's comment and string syntax is written with (quotes,
    backslash, each character of each comment delimiter), or None when the syntax also
    depends on letters, digits, word boundaries, counted repeats or context (Ruby ``=begin``,
    Perl POD, ``rem``, character literals, raw-string prefixes, heredocs, regex literals).

    Where it is not None, the comment regex reads a text the same way when every run of
    other bytes in it is shortened to one byte: that is what the kernel exploits."""
    chars: set[str] = set()
    for s in lang.strings + lang.doc:
        if s not in _TOKEN_SAFE:
            return None
        chars.update(_TOKEN_SAFE[s])
    for r in list(lang.line) + [x for pair in lang.block for x in pair]:
        lit = _literal_chars(r)
        if lit is None:
            return None
        chars.update(lit)
    assert not any(c.isalnum() or c.isspace() for c in chars), chars   # the kernel's stand-ins
    return "".join(sorted(chars)).encode()


def _literal_chars(regex: str) -> set[str] | None:
    """The characters a delimiter regex matches literally (a superset is fine: lookahead
    contents count too); None if it matches letters or digits or uses escapes like ``\\b``.
    Group syntax, backreferences and counted repeats are not characters."""
    body = re.sub(r"\(\?(?:P<\w+>|P=\w+\)|<?[:!=])|\{\d*,?\d*\}", "", regex)
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
