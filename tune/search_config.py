"""The search's own settings (:class:`SearchConfig`: trials, the HRNet widths it draws from, ASHA's grace
period, the named space, the Optuna study's storage and name) and the experiment config a search saves as
``config.json`` (:class:`SearchExperimentConfig`: the library's
:class:`emohrnet.config.experiment.ExperimentConfig` with a ``search`` section).

They live here, with the search, because nothing in the library reads them: a training run, a cross-fold run or
a prediction needs the experiment's sections, never how many trials found its settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from emohrnet.config.experiment import ExperimentConfig
from emohrnet.models import MODEL_SPECS


@dataclass
class SearchConfig:
    """The search itself.

    Attributes:
        num_samples: trials, the baselines included.
        widths: HRNet widths the search chooses from (default: those EmoHRNet's registry entry declares).
        grace_period: ASHA's epochs before a trial may be stopped (``None``: a quarter of the epochs).
        study_storage: the Optuna study's SQLAlchemy URL (``None``: SQLite in the experiment folder).
        space: the named search space (:data:`emohrnet.models.SPACES`): ``"paper"`` (learning rate,
            SpecAugment F and T, HRNet width) or ``"recipe"`` (those plus the recipe levers and the epochs).
        study_name: the Optuna study's name: the experiment folder's name when the search started (a copied or
            moved experiment keeps it); ``None`` before the search starts, or in an older experiment's config.
    """

    num_samples: int = 20
    widths: list[int] = field(default_factory=lambda: list(MODEL_SPECS["emohrnet"].space["width"].values))
    grace_period: int | None = None
    study_storage: str | None = None
    space: str = "paper"
    study_name: str | None = None


@dataclass
class SearchExperimentConfig(ExperimentConfig):
    """A search's experiment: every section of :class:`~emohrnet.config.experiment.ExperimentConfig`, then
    ``search`` (:class:`SearchConfig`), in ``config.json``'s order. It reads and writes ``config.json`` as its
    base class does (:meth:`~emohrnet.config.experiment.ExperimentConfig.from_dict`, ``to_json``)."""

    search: SearchConfig = field(default_factory=SearchConfig)
