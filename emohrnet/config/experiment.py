"""One experiment's settings as a tree of dataclasses (:class:`ExperimentConfig`): data and features,
model, optimizer, augmentation, protocol and fold, resources. The search's own settings (trials, ASHA's grace
period, the study's storage) live with the search (:mod:`tune.search_config`), which adds them as a section.

``python -m tune.search`` builds it from its command line (the one place options become settings),
saves it as ``config.json`` in the experiment folder and reads it back on ``--resume``;
``tune.evaluate`` and ``tune.report`` read it too. A trial is the base config with the trial's
parameters applied (:meth:`ExperimentConfig.with_params`, flat keys as Optuna takes them), and
:meth:`emohrnet.training.config.TrainConfig.from_experiment` flattens it into the settings one training
run gets: :class:`~emohrnet.training.config.TrainConfig` holds the sections a run needs
(:class:`ProtocolConfig`, :class:`OptimizerConfig`, :class:`AugmentationConfig`, :class:`SpeedConfig`),
so each setting and its default is declared once, here. Flat keys map to their sections through one
table, :data:`PARAMS`. The defaults are EmoHRNet's published recipe
(:data:`emohrnet.models.EMOHRNET_PAPER`, Muppidi & Radfar 2025, sec. 4.2), and
:meth:`ExperimentConfig.paper_deviations` names every fixed setting that differs from it.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from emohrnet.data.wave_augment import WaveAugmentConfig
from emohrnet.frontend import FeatureConfig, FeatureSpec, MfccConfig
from emohrnet.models import EMOHRNET_PAPER as PAPER
from emohrnet.models import MODEL_SPECS

CONFIG_VERSION = 1
"""Written into ``config.json``; a file of a newer version is refused (:meth:`ExperimentConfig.from_dict`)."""


@dataclass
class DataConfig:
    """The corpus, its front end and its shards.

    Attributes:
        dataset: corpus name (:func:`emohrnet.corpora.list_corpora`).
        data_root: corpus folder (``None``: ``$EMOHRNET_<DATASET>_ROOT``, or built in for synthetic).
        corpus_options: reader options as ``KEY=VALUE`` strings (e.g. ``classes=five``).
        shard_dir: shard folder (a path or a bucket URI); ``None``: the shard cache.
        build_workers: processes that build shards.
        n_mels: log-mel bands (EmoHRNet's front end).
        n_mfcc: MFCCs (the 1D CNN's front end).
        n_fft, win_length, hop_length: STFT settings in samples (shared by both front ends).
        augment_copies: waveform-augmented copies per utterance in the MFCC shards.
        speed_copies: speed-perturbed copies per utterance in the log-mel shards (:data:`SPEED_PERTURB`:
            Kaldi-style speed perturbation by a factor drawn from 0.9-1.1; Ko et al. 2015), each keyed to its
            origin, so only a fold's training utterances' copies reach training; 0: none (the paper's).
    """

    dataset: str = "synthetic"
    data_root: str | None = None
    corpus_options: list[str] = field(default_factory=list)
    shard_dir: str | None = None
    build_workers: int = 1
    n_mels: int = FeatureConfig().n_mels
    n_mfcc: int = MfccConfig().n_mfcc
    n_fft: int = FeatureConfig().n_fft
    win_length: int = FeatureConfig().win_length
    hop_length: int = FeatureConfig().hop_length
    augment_copies: int = 2
    speed_copies: int = 0

    def features(self, kind: str) -> FeatureSpec:
        """The front end of ``kind`` (``"logmel"`` or ``"mfcc"``) with these settings."""
        if kind == "mfcc":
            return MfccConfig(n_mfcc=self.n_mfcc, n_fft=self.n_fft, win_length=self.win_length,
                              hop_length=self.hop_length)
        return FeatureConfig(n_mels=self.n_mels, n_fft=self.n_fft, win_length=self.win_length,
                             hop_length=self.hop_length)

    def build_arguments(self, kind: str, data_root: str | None = None) -> dict[str, Any]:
        """The arguments of :func:`emohrnet.shards.build_shards` for the shards of front end ``kind``
        (all but ``out`` and ``log``): this corpus (at ``data_root``, default :attr:`data_root`), its
        options parsed, the front end, and the waveform-augmented copies: the MFCC shards' noise, pitch
        and speed copies (the 1D CNN's recipe), the log-mel shards' speed-perturbed copies
        (:attr:`speed_copies`, none by default: the paper's).

        Raises:
            ValueError: a corpus option that is not ``key=value``.
        """
        from emohrnet.shards.options import parse_corpus_options

        copies = {"augment_copies": self.augment_copies} if kind == "mfcc" else \
            {"augment_copies": self.speed_copies, "wave_augment": SPEED_PERTURB}
        return {"dataset": self.dataset, "data_root": data_root or self.data_root, "workers": self.build_workers,
                "features": self.features(kind), "corpus_options": parse_corpus_options(self.corpus_options),
                **copies}


@dataclass
class ModelConfig:
    """Which model trains, and every registered model's own settings.

    Attributes:
        name: a registered model (:data:`emohrnet.models.MODEL_SPECS`), or ``"any"`` (the search
            chooses between them).
        settings: ``{model: its settings}``, one instance of each registry entry's settings class
            (:class:`emohrnet.models.EmoHRNetConfig`, :class:`emohrnet.models.CNN1DAttentionConfig`).
    """

    name: str = "emohrnet"
    settings: dict[str, Any] = field(default_factory=lambda: {n: s.settings() for n, s in MODEL_SPECS.items()})

    def flat(self) -> dict[str, Any]:
        """Every model's settings as flat keys (their field names do not overlap)."""
        out: dict[str, Any] = {}
        for value in self.settings.values():
            out.update(asdict(value))
        return out


@dataclass(kw_only=True)
class OptimizerConfig:
    """Adam and its schedule (Muppidi & Radfar 2025, sec. 4.2).

    Attributes:
        lr, beta1, beta2, weight_decay: Adam's settings.
        lr_schedule: ``"constant"`` (the paper's) or ``"cosine"``.
        warmup_epochs: epochs of linear learning-rate warm-up before the schedule (0: none, the paper's).
        epochs: training epochs.
        batch_size: global batch (utterances per optimizer step over all workers).
    """

    lr: float = PAPER["lr"]
    beta1: float = PAPER["beta1"]
    beta2: float = PAPER["beta2"]
    weight_decay: float = PAPER["weight_decay"]
    lr_schedule: str = PAPER["lr_schedule"]
    warmup_epochs: int = PAPER["warmup_epochs"]
    epochs: int = PAPER["epochs"]
    batch_size: int = PAPER["batch_size"]


@dataclass(kw_only=True)
class AugmentationConfig:
    """What a training example is: a segment of an utterance, augmented.

    Attributes:
        segment_seconds: training segment length in seconds (evaluation uses whole utterances).
        time_shift: random placement of utterances in their training segments.
        freq_mask, time_mask: SpecAugment's F (mel bands) and T (frames) (EmoHRNet only).
        aug_prob: probability of training on a waveform-augmented copy (the copies are built into the
            shards: :attr:`DataConfig.augment_copies` for the 1D CNN, :attr:`DataConfig.speed_copies` for
            EmoHRNet).
        mixup_alpha: mixup's Beta(alpha, alpha) (Zhang et al. 2018): each batch is mixed with a permutation
            of itself, labels too; 0 is no mixup (the paper's).
        label_smoothing: the share of each target spread evenly over the classes (Szegedy et al. 2016);
            0 is hard labels (the paper's).
    """

    segment_seconds: float = 3.0
    time_shift: bool = True
    freq_mask: int = PAPER["freq_mask"]
    time_mask: int = PAPER["time_mask"]
    aug_prob: float = 0.0
    mixup_alpha: float = PAPER["mixup_alpha"]
    label_smoothing: float = PAPER["label_smoothing"]


@dataclass(kw_only=True)
class ProtocolConfig:
    """How the corpus is split, and the seed.

    Attributes:
        protocol: ``"speaker"`` (speaker-independent folds) or ``"random"`` (the paper's likely split,
            speakers shared between train and test).
        fold: fold index (for ``"random"``, the split's seed).
        seed: seed of the search, of model initialisation, batch order and masks.
    """

    protocol: str = "speaker"
    fold: int = 0
    seed: int = 0


@dataclass(kw_only=True)
class SpeedConfig:
    """How fast a run computes (its results do not depend on these beyond rounding).

    Attributes:
        amp: mixed precision: ``"auto"`` (bf16 autocast where the device has native bf16), ``"bf16"``
            or ``"off"`` (:meth:`emohrnet.training.config.TrainConfig.resolve_speed`).
        channels_last: ``"auto"`` (CPUs and capability-8.0+ GPUs), ``True`` or ``False``: model and
            batches in ``torch.channels_last`` memory format.
        compile: run the training forward/backward through ``torch.compile``.
        eval_batch: most equal-length utterances per evaluation batch.
    """

    amp: str = "auto"
    channels_last: Any = "auto"
    compile: bool = False
    eval_batch: int = 32


@dataclass(kw_only=True)
class ResourcesConfig(SpeedConfig):
    """What each trial runs on (and, from :class:`SpeedConfig`, how fast).

    Attributes:
        workers: DDP workers per trial.
        cpus_per_worker: CPUs each worker reserves.
        gpus_per_worker: GPUs each worker reserves (0: CPUs and gloo).
        max_concurrent: trials at once (``None``: as the cluster's resources allow).
    """

    workers: int = 2
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    max_concurrent: int | None = None


SPEED_PERTURB = WaveAugmentConfig(noise_snr_db=None, noise_prob=0.0, pitch_shift_semitones=0.0, pitch_prob=0.0,
                                  speed=(0.9, 1.1), speed_prob=1.0)
"""The log-mel shards' speed perturbation (:attr:`DataConfig.speed_copies`): every copy resampled by a speed
factor drawn uniformly from 0.9-1.1 (Kaldi-style, duration and pitch change together; Ko et al. 2015), no
noise or pitch shift."""

SECTIONS = ("data", "model", "optimizer", "augmentation", "protocol", "resources")
"""The sections of :class:`ExperimentConfig`, in the order ``config.json`` lists them (a search adds its own,
``search``: :class:`tune.search_config.SearchExperimentConfig`)."""


@dataclass(frozen=True)
class ParamSlot:
    """Where a flat key (a trial's parameter, a key of a training run's flat dict) lives in an
    :class:`ExperimentConfig`.

    Attributes:
        section: the section holding it (``"optimizer"``, ...; ``"model"`` for the model's name).
        model: for a model's own setting (``width``, ``cnn_width``, ...), the model it belongs to; else ``None``.
        kind: the field's declared type as written (``"int"``, ``"float"``, ``"str"``, ...): a number Tune or
            JSON hands over is cast to it (:func:`cast_param`).
    """

    section: str
    model: str | None = None
    kind: str = "Any"


def _param_table() -> dict[str, ParamSlot]:
    """Every field of the sections and of the models' settings, by name; a name held twice would be filed into
    one place only, so it is refused (a model's setting must not share a section's or another model's name)."""
    slots = [("model", ParamSlot("model", kind="str"))]
    for name, cls in ((n, _SECTION_CLASSES[n]) for n in SECTIONS if n != "model"):
        slots += [(f.name, ParamSlot(name, kind=str(f.type))) for f in fields(cls)]
    for model, spec in MODEL_SPECS.items():
        slots += [(f.name, ParamSlot("model", model=model, kind=str(f.type))) for f in fields(spec.config_cls)]
    table: dict[str, ParamSlot] = {}
    for key, slot in slots:
        if key in table:
            raise TypeError(f"setting {key!r} is declared twice ({table[key]} and {slot}); rename one")
        table[key] = slot
    return table


def cast_param(key: str, value: Any) -> Any:
    """``value`` of flat key ``key`` as its field's type (:data:`PARAMS`): an ``int`` field's ``3.0`` or
    ``numpy.int64(3)`` becomes ``3``, a ``float`` field's ``1`` becomes ``1.0``; other keys and ``None`` are
    returned as they are.

    Raises:
        ValueError: a value that does not cast (naming the key).
    """
    kind = PARAMS[key].kind if key in PARAMS else None
    if value is None or kind not in ("int", "float"):
        return value
    try:
        return int(value) if kind == "int" else float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key}={value!r}: expected {'an integer' if kind == 'int' else 'a number'}") from None


_SECTION_CLASSES: dict[str, type] = {"data": DataConfig, "model": ModelConfig, "optimizer": OptimizerConfig,
                                     "augmentation": AugmentationConfig, "protocol": ProtocolConfig,
                                     "resources": ResourcesConfig}
PARAMS: dict[str, ParamSlot] = _param_table()
"""The one table of flat keys: each field of an experiment's sections and of every model's settings, and where
it lives (:class:`ParamSlot`). :meth:`ExperimentConfig.with_params` applies a trial's parameters through it,
:meth:`emohrnet.training.config.TrainConfig.from_dict` files a flat dict into its sections through it, and the
search space (``tune.space``) refuses a searched parameter it does not hold. No two sections or models may
declare a field of the same name (refused at import)."""


@dataclass
class ExperimentConfig:
    """Every setting of an experiment, in sections (see the module's docstring).

    Flat keys (a trial's parameters, a :class:`~emohrnet.training.config.TrainConfig` dict) map to the
    section that holds a field of that name (:data:`PARAMS`); ``model`` names :attr:`ModelConfig.name` and a
    model's own setting (``width``, ``cnn_width``, ...) goes to that model's settings.
    """

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    augmentation: AugmentationConfig = field(default_factory=AugmentationConfig)
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)

    # ------------------------------------------------------------------ flat keys
    def with_params(self, params: dict[str, Any]) -> ExperimentConfig:
        """A copy with flat ``params`` applied (a trial's parameters, or a whole trial config).

        Keys that no section holds (``shard_dirs``, Tune's own) are ignored, and so is ``shard_dir``
        (a run's shard folder, not the experiment's :attr:`DataConfig.shard_dir`).

        Raises:
            ValueError: a model setting that does not cast to its type, or an unknown model.
        """
        out = copy.deepcopy(self)
        mine: dict[str, dict[str, Any]] = {}  # a model's own settings given, per model
        for key, value in params.items():
            slot = PARAMS.get(key)
            if slot is None or key == "shard_dir":
                continue
            if key == "model":
                out.model.name = str(value)
            elif slot.model is not None:
                mine.setdefault(slot.model, {})[key] = value
            else:
                setattr(getattr(out, slot.section), key, cast_param(key, value))
        for name, given in mine.items():
            out.model.settings[name] = MODEL_SPECS[name].settings({**asdict(out.model.settings[name]), **given})
        return out

    def paper_deviations(self, searched: set[str]) -> list[str]:
        """How the fixed settings of an EmoHRNet run differ from the paper's
        (:data:`emohrnet.models.EMOHRNET_PAPER`), e.g. ``"EmoHRNet epochs 5 instead of 100"``; the
        ``searched`` parameters are left out (the baseline trial takes the paper's values for them).
        Empty for a search of the 1D CNN alone (its paper's recipe is not EmoHRNet's)."""
        if self.model.name not in ("emohrnet", "any"):
            return []
        mine = {**asdict(self.optimizer), **asdict(self.augmentation), **asdict(self.model.settings["emohrnet"])}
        return [f"EmoHRNet {key} {mine[key]} instead of {paper}" for key, paper in PAPER.items()
                if key not in searched and mine[key] != paper]

    # ------------------------------------------------------------------ JSON
    @classmethod
    def sections(cls) -> tuple[str, ...]:
        """This class's sections in ``config.json``'s order (:data:`SECTIONS`, then a subclass's own)."""
        return tuple(f.name for f in fields(cls))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: one entry per section, and ``version``."""
        out: dict[str, Any] = {"version": CONFIG_VERSION}
        for name in self.sections():
            out[name] = asdict(getattr(self, name))
        return out

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON (what ``config.json`` holds)."""
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExperimentConfig:
        """Read back :meth:`to_dict`'s form. Missing sections and fields take their defaults (a file of
        an older version lacks newer fields).

        Raises:
            ValueError: a newer ``version``, an unknown section or field (naming it), an unknown model.
        """
        version = int(data.get("version", CONFIG_VERSION))
        if version > CONFIG_VERSION:
            raise ValueError(f"config version {version} is newer than this emohrnet reads ({CONFIG_VERSION}); "
                             "upgrade emohrnet")
        sections = cls.sections()
        unknown = set(data) - set(sections) - {"version"}
        if unknown:
            raise ValueError(f"unknown config section(s) {', '.join(sorted(unknown))} "
                             f"(allowed: {', '.join(sections)})")
        kinds = {f.name: f.default_factory for f in fields(cls)}
        out = {}
        for name in sections:
            section = dict(data.get(name) or {})
            default = kinds[name]()
            allowed = {f.name for f in fields(default)}
            extra = set(section) - allowed
            if extra:
                raise ValueError(f"config section {name!r}: unknown field(s) {', '.join(sorted(extra))} "
                                 f"(allowed: {', '.join(sorted(allowed))})")
            if name == "model":
                settings = section.pop("settings", None) or {}
                bad = set(settings) - set(MODEL_SPECS)
                if bad:
                    raise ValueError(f"config section 'model': unknown model(s) {', '.join(sorted(bad))} "
                                     f"(allowed: {', '.join(MODEL_SPECS)})")
                section["settings"] = {n: s.settings(settings.get(n)) for n, s in MODEL_SPECS.items()}
            out[name] = replace(default, **section)
        return cls(**out)

    @classmethod
    def from_json(cls, text: str) -> ExperimentConfig:
        """Parse ``config.json``'s text (see :meth:`from_dict`).

        Raises:
            ValueError: not JSON, or as :meth:`from_dict`.
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"not a JSON experiment config: {err}") from None
        if not isinstance(data, dict):
            raise ValueError("not a JSON experiment config: expected an object")
        return cls.from_dict(data)
