"""The model registry finds every model module's ``SPEC`` (a new model is one new module): checked on
a package written here with a third model, a duplicate and a malformed spec."""

from __future__ import annotations

import sys
import textwrap

import pytest

from emohrnet.models.registry import discover

TOY = '''
from dataclasses import dataclass
from torch import nn
from emohrnet.models.spec import Choice, ModelSpec

@dataclass
class ToyConfig:
    hidden: int = 8
    def arguments(self, n_features):
        return {{"n_features": n_features, "hidden": self.hidden}}

class Toy(nn.Module):
    def __init__(self, num_classes, n_features=40, hidden=8):
        super().__init__()
        self.net = nn.Linear(n_features, num_classes)

SPEC = ModelSpec({name!r}, Toy, "mfcc", "a test", ToyConfig, spec_augment=False,
                 space={{"hidden": Choice((8, 16))}}, baseline={{"hidden": 8}}, order={order})
'''


def _package(tmp_path, monkeypatch, name: str, modules: dict[str, str]) -> str:
    root = tmp_path / name
    root.mkdir()
    (root / "__init__.py").write_text("")
    for module, text in modules.items():
        (root / f"{module}.py").write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    return name


def test_each_module_spec_is_registered_in_order(tmp_path, monkeypatch):
    pkg = _package(tmp_path, monkeypatch, "zoo_a", {
        "a_mod": TOY.format(name="beta", order=5), "b_mod": TOY.format(name="zeta", order=0),
        "c_mod": TOY.format(name="alpha", order=5), "helpers": "X = 1\n"})
    specs = discover(pkg)
    assert list(specs) == ["zeta", "alpha", "beta"]  # by order, then name; a module without SPEC is no model
    assert specs["alpha"].settings({"hidden": "16", "lr": 1e-3}).hidden == 16
    assert specs["beta"].cls(num_classes=3, **specs["beta"].settings().arguments(20)).net.in_features == 20


def test_the_project_registry_lists_its_two_models_first_emohrnet():
    assert list(discover()) == ["emohrnet", "cnn1d_attention"]


def test_a_name_declared_twice_is_refused(tmp_path, monkeypatch):
    pkg = _package(tmp_path, monkeypatch, "zoo_b", {"one": TOY.format(name="toy", order=0),
                                                    "two": TOY.format(name="toy", order=1)})
    with pytest.raises(ValueError, match="model 'toy' is declared twice"):
        discover(pkg)


def test_a_spec_that_is_not_a_model_spec_is_refused(tmp_path, monkeypatch):
    pkg = _package(tmp_path, monkeypatch, "zoo_c", {"bad": "SPEC = {'name': 'toy'}\n"})
    with pytest.raises(ValueError, match=r"zoo_c\.bad\.SPEC is a dict, not a ModelSpec"):
        discover(pkg)
