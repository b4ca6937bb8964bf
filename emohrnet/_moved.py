"""The modules' names before the subpackages (issue 26), still importable.

Experiments written by an earlier emohrnet hold pickles that name classes by their old module (Ray
Tune's ``tuner.pkl`` names ``emohrnet.location.Location``), and scripts import the old names. An
old name imports the module that now holds it (the same module object, so pickled classes are the
classes in use), and ``python -m emohrnet.predict`` / ``python -m emohrnet.export`` run the moved
module as the program.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys

MOVED: dict[str, str] = {
    "emohrnet." + old: "emohrnet." + new for old, new in {
        "location": "io.location", "storage": "io.storage", "paths": "io.paths", "audio": "io.audio",
        "experiment_paths": "io.experiment_paths", "orphans": "io.orphans",
        "data": "data.loading", "splits": "data.splits", "augment": "data.augment",
        "wave_augment": "data.wave_augment", "manifest": "shards.manifest",
        "train": "training.loop", "train_config": "training.config", "distributed": "training.distributed",
        "checkpoint": "training.checkpoint", "memory": "training.memory", "mixup": "training.mixup",
        "evaluation": "inference.evaluation", "metrics": "inference.metrics", "predict": "inference.predict",
        "prediction_output": "inference.prediction_output", "export": "inference.export",
        "experiment_config": "config.experiment", "argtypes": "config.argtypes",
    }.items()
}
"""Old module name -> the module that holds it now. ``emohrnet.data`` is the name of a package now, so
it is the one old name not aliased: its old module's names import from ``emohrnet.data.loading``."""


class _Alias(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec):  # noqa: D102 -- the moved module itself, not a copy
        module = importlib.import_module(self.target)
        self.own_spec = module.__spec__
        return module

    def exec_module(self, module) -> None:  # noqa: D102 -- already executed; import set the old name's
        module.__spec__ = self.own_spec  # spec on it: give it back its own

    def get_code(self, fullname: str):
        """The moved module's code, for ``python -m OLD_NAME`` (runpy runs it as ``__main__``)."""
        return importlib.util.find_spec(self.target).loader.get_code(self.target)


class _MovedFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):  # noqa: D102
        new = MOVED.get(fullname)
        if new is None or fullname == "emohrnet.data":
            return None
        return importlib.machinery.ModuleSpec(fullname, _Alias(new))


def install() -> None:
    """Put the finder last on ``sys.meta_path`` (files that exist are always found first); idempotent."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedFinder())
