"""One registration style for models, corpora and front ends (issue 26): each registered thing
carries its name, its package lists them in one tuple, and :func:`registry` refuses a name given twice.
Checked on toy models written here and on the project's three registries."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest
from torch import nn

from emohrnet.config.registry import registry
from emohrnet.corpora import CORPORA
from emohrnet.frontend import FRONT_ENDS, FeatureConfig, LogMel, Mfcc, MfccConfig
from emohrnet.models import MODEL_SPECS
from emohrnet.models.registry import model_registry
from emohrnet.models.spec import Choice, ModelSpec

LIBRARY = Path(__file__).resolve().parents[1] / "emohrnet"


@dataclass
class ToyConfig:
    hidden: int = 8

    def arguments(self, n_features):
        return {"n_features": n_features, "hidden": self.hidden}


class Toy(nn.Module):
    def __init__(self, num_classes, n_features=40, hidden=8):
        super().__init__()
        self.net = nn.Linear(n_features, num_classes)


def toy(name: str, order: int) -> ModelSpec:
    return ModelSpec(name, Toy, "mfcc", "a test", ToyConfig, spec_augment=False, space={"hidden": Choice((8, 16))},
                     baseline={"hidden": 8}, order=order)


def test_models_are_listed_by_order_then_name():
    specs = model_registry([toy("beta", 5), toy("zeta", 0), toy("alpha", 5)])
    assert list(specs) == ["zeta", "alpha", "beta"]
    assert specs["alpha"].settings({"hidden": "16", "lr": 1e-3}).hidden == 16
    assert specs["beta"].cls(num_classes=3, **specs["beta"].settings().arguments(20)).net.in_features == 20


def test_the_project_registries_list_what_the_packages_hold():
    assert list(MODEL_SPECS) == ["emohrnet", "cnn1d_attention"]
    assert {k: (v.config, v.module) for k, v in FRONT_ENDS.items()} == {
        "logmel": (FeatureConfig, LogMel), "mfcc": (MfccConfig, Mfcc)}
    assert all(CORPORA[name].name == name for name in CORPORA) and len(CORPORA) == 8


def test_a_name_registered_twice_is_refused():
    with pytest.raises(ValueError, match="model 'toy' is registered twice"):
        model_registry([toy("toy", 0), toy("toy", 1)])
    with pytest.raises(ValueError, match="corpus 'ravdess' is registered twice"):
        registry([CORPORA["ravdess"], CORPORA["ravdess"]], "name", "corpus")


def test_an_entry_that_is_not_a_model_spec_is_refused():
    with pytest.raises(ValueError, match="is a dict, not a ModelSpec"):
        model_registry([{"name": "toy"}])


def test_every_module_that_declares_a_spec_is_registered():
    """A model or front-end module with a ``SPEC`` that its package's tuple leaves out would be dead code
    that looks registered; every registry is built with :func:`registry` (one style)."""
    for package, registered in (("models", {s.cls.__module__ for s in MODEL_SPECS.values()}),
                                ("frontend", {f.module.__module__ for f in FRONT_ENDS.values()})):
        declaring = {f"emohrnet.{package}.{f.stem}" for f in (LIBRARY / package).glob("*.py")
                     if "SPEC" in {t.id for n in ast.parse(f.read_text()).body if isinstance(n, ast.Assign)
                                   for t in n.targets if isinstance(t, ast.Name)}}
        assert declaring == registered, package
    for f in ("models/registry.py", "corpora/__init__.py", "frontend/__init__.py"):
        assert "registry(" in (LIBRARY / f).read_text(), f
