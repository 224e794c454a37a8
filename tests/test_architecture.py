"""The layout's rules, read from the source with `ast` (docs/architecture.md): every import of the package,
at module level and inside functions, as an arrow module -> module.

- no import cycle between modules;
- core/ (the numerics) imports nothing above it: no record/, run/, publish/, studies/;
- record/ never imports run/ or publish/ (it records; it does not orchestrate or publish);
- MLflow is imported only in record/tracking.py, Dask only in run/engine.py;
- no package function is longer than 60 lines.
"""
import ast
import itertools
from pathlib import Path

import pytest

pytestmark = pytest.mark.fast

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "initstudy"
MAX_LINES = 60
# Longer than MAX_LINES today, being shortened (issue 22): delete a line when its function shrinks. The
# test fails on any function not listed here that grows past the limit, and on a listed one that no longer
# exists or is short now (so the list only shrinks).
LONG_TODAY = set()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
TREES = {name: ast.parse(path.read_text(), str(path)) for name, path in MODULES.items()}


def imported(name: str, tree: ast.Module) -> set:
    """Every dotted name `name` imports, anywhere in the file; `from a import b` is a.b when b is a module.
    A package's __init__ run implicitly by importing its submodule is not an arrow here (the registry,
    studies/__init__.py, may import its own studies)."""
    package = name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x, from ..core import y
                up = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            out |= {f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names}
    return out


IMPORTS = {name: imported(name, tree) for name, tree in TREES.items()}
GRAPH = {name: {m for m in deps if m in MODULES and m != name} for name, deps in IMPORTS.items()}


def cycles(graph: dict) -> list:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], itertools.count()

    def visit(v):
        index[v] = low[v] = next(counter)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while not comp or comp[-1] != v:
                comp.append(stack.pop())
                on.discard(comp[-1])
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def arrows(src_prefix: str, dst_prefixes: tuple) -> list:
    return sorted(f"{a} -> {b}" for a, deps in GRAPH.items() if a.startswith(src_prefix) for b in deps
                  if b.startswith(dst_prefixes))


def importers(top: str) -> set:
    return {name for name, deps in IMPORTS.items() if any(d == top or d.startswith(top + ".") for d in deps)}


def long_functions() -> dict:
    """{module.function (methods Class.method, nested outer.inner): lines} for those over MAX_LINES."""
    out = {}

    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}.{child.name}"
                if not isinstance(child, ast.ClassDef) and child.end_lineno - child.lineno + 1 > MAX_LINES:
                    out[name] = child.end_lineno - child.lineno + 1
                walk(child, name)

    for module, tree in TREES.items():
        walk(tree, module)
    return out


def test_the_walk_sees_the_package():  # the checks below would pass vacuously on an empty graph
    assert {"initstudy.core.nn", "initstudy.record.tracking", "initstudy.run.engine", "initstudy.studies"} <= set(GRAPH)
    assert "initstudy.core.inits" in GRAPH["initstudy.core.nn"]  # from initstudy.core import inits
    assert "initstudy.run.runs" in GRAPH["initstudy.run.cli"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle():
    assert cycles(GRAPH) == []


def test_core_imports_nothing_above_it():
    assert arrows("initstudy.core", ("initstudy.record", "initstudy.run", "initstudy.publish",
                                     "initstudy.studies")) == []


def test_record_does_not_orchestrate_or_publish():
    assert arrows("initstudy.record", ("initstudy.run", "initstudy.publish")) == []


def test_mlflow_only_in_tracking_and_dask_only_in_engine():
    assert importers("mlflow") == {"initstudy.record.tracking"}
    assert importers("dask") | importers("distributed") == {"initstudy.run.engine"}


def test_no_new_long_function():
    long = long_functions()
    assert sorted(set(long) - LONG_TODAY) == [], f"over {MAX_LINES} lines: {long}"
    assert sorted(LONG_TODAY - set(long)) == [], "shortened or gone: delete it from LONG_TODAY"
