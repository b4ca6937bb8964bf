"""The library's tree (issue 26): a few subpackages by concern, each saying what it owns, and the
modules' names before that layout still importable (older experiments' pickles name them)."""

from __future__ import annotations

import ast
import importlib
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from emohrnet._moved import MOVED
from emohrnet.io.location import Location

LIBRARY = Path(__file__).resolve().parents[1] / "emohrnet"


def test_the_top_of_the_library_is_a_few_subpackages_each_listing_its_modules():
    top = sorted(p.name for p in LIBRARY.iterdir() if p.name != "__pycache__")
    packages = [p for p in top if (LIBRARY / p).is_dir()]
    assert packages == ["config", "corpora", "data", "frontend", "inference", "io", "models", "shards", "training"]
    assert [p for p in top if p not in packages] == ["__init__.py", "_moved.py"]
    package_doc = ast.get_docstring(ast.parse((LIBRARY / "__init__.py").read_text()))
    for package in packages:
        assert f":mod:`emohrnet.{package}`" in package_doc, package
        doc = ast.get_docstring(ast.parse((LIBRARY / package / "__init__.py").read_text())) or ""
        modules = [f.stem for f in (LIBRARY / package).glob("*.py") if f.stem != "__init__"]
        missing = [m for m in modules if m not in doc]
        assert not missing, f"emohrnet/{package}/__init__.py does not say what {missing} hold"


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_module_name_imports_the_module_that_holds_it_now(old):
    new = MOVED[old]
    assert not (LIBRARY.parent / (old.replace(".", "/") + ".py")).exists()
    if old == "emohrnet.data":  # a package now; its old module is emohrnet.data.loading
        return
    assert importlib.import_module(old) is importlib.import_module(new)
    assert sys.modules[new].__spec__.name == new  # the module keeps its own spec (its path, reloads)


def test_a_pickle_naming_an_old_module_loads_the_class_in_use():
    """Ray Tune's ``tuner.pkl`` of a search started before the layout names ``emohrnet.location``."""
    old = pickle.dumps(Location("/tmp/x"), protocol=0).replace(b"emohrnet.io.location", b"emohrnet.location")
    assert b"cemohrnet.location\nLocation" in old
    loaded = pickle.loads(old)
    assert type(loaded) is Location and str(loaded) == "/tmp/x"


@pytest.mark.parametrize("command", ["emohrnet.predict", "emohrnet.export"])
def test_the_commands_keep_their_short_names(command):
    out = subprocess.run([sys.executable, "-m", command, "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"usage: python -m {command}")


def test_no_function_runs_past_60_lines():
    """Drivers are short steps (issue 26): no function or method over 60 lines (docstring included) in the
    code a user runs, but the synthetic corpus's speech synthesizer."""
    root = LIBRARY.parent
    long = []
    for package in ("emohrnet", "tune", "shards", "benchmarks"):
        for f in sorted((root / package).rglob("*.py")):
            for node in ast.walk(ast.parse(f.read_text(), str(f))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    lines = node.end_lineno - node.lineno + 1
                    if lines > 60 and (f.name, node.name) != ("speech_synthesis.py", "synthesize"):
                        long.append(f"{f.relative_to(root)}:{node.lineno} {node.name} ({lines} lines)")
    assert long == []
