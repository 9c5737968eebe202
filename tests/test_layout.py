"""The package's layout, checked from its source: the engine imports no job package, the leaf
modules import nothing of exoflow, and no two modules import each other (directly or round a
loop), counting imports inside functions too. The oracle is Python's own parser (ast)."""
from __future__ import annotations

import ast
import pathlib

import exoflow

ROOT = pathlib.Path(exoflow.__file__).parent
LEAVES = {"exoflow.errors", "exoflow.fileio", "exoflow.longpath", "exoflow.paths", "exoflow.tables",
          "exoflow.options", "exoflow.forkserver", "exoflow.metrics", "exoflow.telemetry", "exoflow.summary"}
COMPILED = {"exoflow._native"}


def _modules() -> dict[str, pathlib.Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _type_checking_only(node: ast.AST, parents: dict) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def _imports(name: str, path: pathlib.Path, modules: dict) -> set[str]:
    """exoflow modules ``name`` imports at run time (any depth, TYPE_CHECKING blocks left out),
    without its own parent packages (Python imports those first whatever the code says)."""
    tree = ast.parse(path.read_text(), str(path))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if _type_checking_only(node, parents):
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules | dict.fromkeys(COMPILED)}
    ancestors = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
    return {m for m in found if (m in modules or m in COMPILED) and m != name and m not in ancestors}


GRAPH = {name: _imports(name, path, _modules()) for name, path in _modules().items()}


def test_engine_imports_no_job_package():
    def job_side(m: str) -> bool:
        return m in ("exoflow.ops", "exoflow.jobs") or m.startswith(("exoflow.ops.", "exoflow.jobs."))
    bad = {n: sorted(filter(job_side, GRAPH[n])) for n in GRAPH if not job_side(n)}
    assert not {n: m for n, m in bad.items() if m}


def test_job_packages_import_no_other_job_package():
    for name, deps in GRAPH.items():
        if name.startswith("exoflow.ops."):
            own = ".".join(name.split(".")[:3])
            assert not [m for m in deps if m.startswith("exoflow.ops.") and not m.startswith(own)], name


def test_leaves_import_nothing_of_exoflow():
    assert {n: sorted(GRAPH[n] - COMPILED) for n in LEAVES if GRAPH[n] - COMPILED} == {}


def test_no_import_cycles():
    """Tarjan's strongly connected components: every one is a single module."""
    index, low, stack, on, cycles = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in GRAPH.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in GRAPH:
        if v not in index:
            visit(v)
    assert cycles == []


def test_the_graph_is_read():
    """The checks above see real edges (a parser that found none would pass them all)."""
    assert "exoflow.job" in GRAPH["exoflow.runner"]
    assert "exoflow.ops.scan.rules" in GRAPH["exoflow.ops.scan.kernel"]
    assert "exoflow._native" in GRAPH["exoflow.fileio"]
