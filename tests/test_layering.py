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
