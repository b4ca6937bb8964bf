"""The library stands alone: nothing under ``emohrnet/`` imports the command-line packages
``shards`` or ``tune`` (they import the library, never the other way round)."""

from __future__ import annotations

import ast
from pathlib import Path

LIBRARY = Path(__file__).resolve().parents[1] / "emohrnet"


def _imported_packages(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_library_imports_neither_shards_nor_tune():
    files = sorted(LIBRARY.rglob("*.py"))
    assert len(files) > 20
    offending = {str(f.relative_to(LIBRARY.parent)): sorted(_imported_packages(f) & {"shards", "tune"})
                 for f in files if _imported_packages(f) & {"shards", "tune"}}
    assert offending == {}


def test_shards_build_is_the_command_line_only():
    """Building shards is library code (:mod:`emohrnet.shards`); ``shards/build.py`` holds the command
    line and re-exports, and ``tune`` takes the library's functions from the library."""
    cli = LIBRARY.parent / "shards" / "build.py"
    functions = [n.name for n in ast.parse(cli.read_text()).body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    assert functions == ["main"]
    tune_files = sorted((LIBRARY.parent / "tune").glob("*.py"))
    assert not {str(f.name) for f in tune_files if "shards" in _imported_packages(f)}


def test_neither_the_library_nor_the_benchmarks_import_the_tests():
    """The tests are no library: code a user runs (``emohrnet/``, ``tune/``, ``shards/``, ``benchmarks/``)
    never imports ``tests`` (issue 26)."""
    root = LIBRARY.parent
    files = [f for package in ("emohrnet", "tune", "shards", "benchmarks")
             for f in sorted((root / package).rglob("*.py"))]
    assert len(files) > 40
    offending = sorted(str(f.relative_to(root)) for f in files if "tests" in _imported_packages(f))
    assert offending == []


def _module_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports, anywhere in it (top level, inside functions, under
    ``TYPE_CHECKING``), over ``emohrnet``, ``tune``, ``shards`` and ``benchmarks``."""
    root = LIBRARY.parent
    files = {}
    for package in ("emohrnet", "tune", "shards", "benchmarks"):
        for f in (root / package).rglob("*.py"):
            parts = f.relative_to(root).with_suffix("").parts
            files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f

    def known(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in files}
    for module, f in files.items():
        package = module.split(".") if f.name == "__init__.py" else module.split(".")[:-1]
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else [])) \
                    if node.level else node.module
                names = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            graph[module] |= {t for t in map(known, names) if t and t != module}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle():
    """No two modules import each other, directly or through others, not even inside a function or for
    type checking only (issue 26: ``predict`` and ``prediction_output`` did)."""
    graph = _module_graph()
    assert len(graph) > 60 and "emohrnet.inference.prediction_output" in graph["emohrnet.inference.predict"]
    assert _cycles(graph) == []
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]  # the finder finds one
