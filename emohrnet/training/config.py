"""The settings of one training run (:class:`TrainConfig`, the ``train_loop_config`` of
:func:`emohrnet.training.loop.train_loop_per_worker`) and what they resolve to on a device (bf16, channels_last).

It is the per-run view of an experiment's settings (:class:`emohrnet.config.experiment.ExperimentConfig`):
it holds the sections a run needs (protocol, optimizer, augmentation, speed), whose fields and defaults
are declared there once, plus the shard folder, the model and its own settings; it travels to the workers
as a flat dict (:meth:`TrainConfig.to_dict`, read back by :meth:`TrainConfig.from_dict` through the one table
of flat keys, :data:`emohrnet.config.experiment.PARAMS`). A search builds it with
:meth:`TrainConfig.from_experiment` from its config with a trial's parameters applied. The defaults are
EmoHRNet's published recipe (:data:`emohrnet.models.EMOHRNET_PAPER`, Muppidi & Radfar 2025, sec. 4.2:
Adam with lr 1e-3, betas (0.9, 0.999), weight decay 1e-4; 100 epochs; global batch 64; HRNet-W18;
SpecAugment widths F=27, T=100).
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch

from emohrnet.config.experiment import (
    PARAMS,
    AugmentationConfig,
    ExperimentConfig,
    OptimizerConfig,
    ProtocolConfig,
    SpeedConfig,
    cast_param,
)
from emohrnet.data.augment import AugmentConfig
from emohrnet.models import MODEL_SPECS

RUN_SECTIONS = ("protocol", "optimizer", "augmentation", "speed")
"""The sections a training run holds, named as :class:`TrainConfig`'s fields (``speed`` is the speed part of
an experiment's ``resources``: :class:`~emohrnet.config.experiment.SpeedConfig`)."""

_SPEED_FIELDS = frozenset(f.name for f in fields(SpeedConfig))


@dataclass(kw_only=True)
class TrainConfig:
    """Everything one training run needs (``train_loop_config`` of the ``TorchTrainer``, as the flat dict of
    :meth:`to_dict`), keyword arguments only; build it from flat keys with :meth:`from_dict`.

    Attributes:
        shard_dir: folder of the shards and ``manifest.json`` (required).
        model: registry name: ``"emohrnet"`` (log-mel shards) or ``"cnn1d_attention"`` (MFCC shards).
        architecture: the model's own settings, an instance of its registry entry's settings class
            (:class:`emohrnet.models.EmoHRNetConfig`: width, stem, blocks, modules;
            :class:`emohrnet.models.CNN1DAttentionConfig`: cnn_width, dropout); a dict or ``None``
            (the defaults) is turned into one.
        protocol: :class:`~emohrnet.config.experiment.ProtocolConfig` (protocol, fold, seed).
        optimizer: :class:`~emohrnet.config.experiment.OptimizerConfig` (lr, betas, weight decay, schedule,
            warm-up, epochs, global batch); the learning rate of each epoch is :meth:`epoch_lr` (set per epoch,
            so a restart from a checkpoint continues it exactly).
        augmentation: :class:`~emohrnet.config.experiment.AugmentationConfig` (segment seconds, time shift,
            SpecAugment F and T, aug_prob, mixup alpha, label smoothing).
        speed: :class:`~emohrnet.config.experiment.SpeedConfig` (amp, channels_last, compile, eval_batch).
        score_test: score the best epoch's weights on the test part after the last epoch (a cross-fold
            run's folds); a search's trials do not (they are chosen on validation only, and the chosen
            trial's checkpoint is scored once after the search, :mod:`tune.summary`).

    Raises:
        ValueError: no ``shard_dir``; an unknown ``model``, ``amp``, ``channels_last``, ``compile`` or
            ``lr_schedule`` value, an architecture setting of the wrong type, or a recipe lever out of range
            (``mixup_alpha < 0``, ``label_smoothing`` outside ``[0, 1)``, ``warmup_epochs < 0``, ``aug_prob``
            outside ``[0, 1]``).
    """

    shard_dir: str = ""
    model: str = "emohrnet"
    architecture: Any = None
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    augmentation: AugmentationConfig = field(default_factory=AugmentationConfig)
    speed: SpeedConfig = field(default_factory=SpeedConfig)
    score_test: bool = True

    def __post_init__(self) -> None:
        if not self.shard_dir:
            raise ValueError("train config needs 'shard_dir', the folder of the shards")
        if self.model not in MODEL_SPECS:
            raise ValueError(f"model={self.model!r}: use one of {', '.join(MODEL_SPECS)}")
        spec = MODEL_SPECS[self.model]
        if not isinstance(self.architecture, spec.config_cls):
            given = self.architecture
            self.architecture = spec.settings(given if isinstance(given, dict) else asdict(given) if given else {})
        speed, opt, aug = self.speed, self.optimizer, self.augmentation
        speed.amp = _choice("amp", speed.amp, {"auto": "auto", "bf16": "bf16", "off": "off", "true": "bf16",
                                               "false": "off", "none": "off"})
        speed.channels_last = _choice("channels_last", speed.channels_last,
                                      {"auto": "auto", "true": True, "on": True, "false": False, "off": False})
        flags = {"true": True, "1": True, "on": True, "false": False, "0": False, "off": False}
        speed.compile = _choice("compile", speed.compile, flags)
        opt.lr_schedule = _choice("lr_schedule", opt.lr_schedule, {s: s for s in LR_SCHEDULES})
        self.score_test = _choice("score_test", self.score_test, flags)
        for name, value, ok, allowed in (
                ("mixup_alpha", aug.mixup_alpha, aug.mixup_alpha >= 0, ">= 0"),
                ("label_smoothing", aug.label_smoothing, 0 <= aug.label_smoothing < 1, "in [0, 1)"),
                ("warmup_epochs", opt.warmup_epochs, opt.warmup_epochs >= 0, ">= 0"),
                ("aug_prob", aug.aug_prob, 0 <= aug.aug_prob <= 1, "in [0, 1]")):
            if not ok:
                raise ValueError(f"{name}={value!r}: must be {allowed}")

    def epoch_lr(self, epoch: int) -> float:
        """The learning rate of epoch ``epoch`` (counted from 0 here, an index).

        The first ``optimizer.warmup_epochs`` epochs rise linearly, ``lr * (e + 1) / (W + 1)`` (Goyal et al.
        2017, per epoch); then ``optimizer.lr_schedule`` runs over the remaining ``E - W`` epochs: ``constant``
        keeps ``lr``; ``cosine`` trains its ``k``-th epoch at ``lr * (1 + cos(pi * k / (E - W))) / 2``
        (with no warm-up, epoch ``e`` of ``E`` at ``lr * (1 + cos(pi * e / E)) / 2``).
        """
        opt = self.optimizer
        warmup = min(opt.warmup_epochs, max(0, opt.epochs - 1))
        if epoch < warmup:
            return opt.lr * (epoch + 1) / (warmup + 1)
        if opt.lr_schedule == "cosine":
            return opt.lr * 0.5 * (1.0 + math.cos(math.pi * (epoch - warmup) / max(1, opt.epochs - warmup)))
        return opt.lr

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> TrainConfig:
        """Build from a flat Tune/Train config dict (as :meth:`to_dict` writes it and a trial config holds
        it), each key filed into its section through :data:`emohrnet.config.experiment.PARAMS` and cast to
        its field's type; keys a run does not hold (``shard_dirs``, Tune's own, the data and search settings)
        are ignored. The model's own settings are read from the flat keys (``width``, ``cnn_width``, ...) or
        from an ``architecture`` dict.

        Raises:
            ValueError: ``shard_dir`` is missing, or a value that does not cast.
        """
        if "shard_dir" not in config:
            raise ValueError("train config needs 'shard_dir', the folder of the shards")
        sections: dict[str, dict[str, Any]] = {name: {} for name in RUN_SECTIONS}
        for key, value in config.items():
            slot = PARAMS.get(key)
            section = "speed" if key in _SPEED_FIELDS else slot.section if slot else None
            if section in sections:
                sections[section][key] = cast_param(key, value)
        model = config.get("model", "emohrnet")
        architecture = MODEL_SPECS[model].settings(config.get("architecture") or config) \
            if model in MODEL_SPECS else None
        own = {k: config[k] for k in ("shard_dir", "model", "score_test") if k in config}
        return cls(**own, architecture=architecture, protocol=ProtocolConfig(**sections["protocol"]),
                   optimizer=OptimizerConfig(**sections["optimizer"]),
                   augmentation=AugmentationConfig(**sections["augmentation"]), speed=SpeedConfig(**sections["speed"]))

    @classmethod
    def from_experiment(cls, config: ExperimentConfig, shard_dir: str) -> TrainConfig:
        """The run an experiment's settings describe (a trial's: the base config with its parameters
        applied), reading the shards in ``shard_dir``: its protocol, optimizer and augmentation sections, the
        speed settings of its resources, and the model's own settings.

        Raises:
            ValueError: the config's model is ``"any"`` (a run trains one model), or as the constructor.
        """
        name = config.model.name
        if name not in MODEL_SPECS:
            raise ValueError(f"model {name!r}: a training run needs one of {', '.join(MODEL_SPECS)}")
        speed = SpeedConfig(**{k: v for k, v in asdict(config.resources).items() if k in _SPEED_FIELDS})
        return cls(shard_dir=shard_dir, model=name, architecture=copy.deepcopy(config.model.settings[name]),
                   protocol=copy.deepcopy(config.protocol), optimizer=copy.deepcopy(config.optimizer),
                   augmentation=copy.deepcopy(config.augmentation), speed=speed)

    def model_kwargs(self, n_features: int) -> dict[str, Any]:
        """Constructor arguments of the model (besides ``num_classes``); ``n_features`` is the
        number of mel bands or MFCCs of the shards."""
        return self.architecture.arguments(n_features)

    def cross_entropy(self) -> dict[str, Any]:
        """The training loss's settings for :func:`emohrnet.training.mixup.training_loss`: ``{"mixup_alpha",
        "label_smoothing"}`` (both 0: the paper's plain cross-entropy)."""
        aug = self.augmentation
        return {"mixup_alpha": float(aug.mixup_alpha), "label_smoothing": float(aug.label_smoothing)}

    def augment(self) -> AugmentConfig:
        """The SpecAugment/time-shift settings. SpecAugment is EmoHRNet's; the 1D CNN trains with
        waveform augmentation (``aug_prob``) as in its paper, so its masks are off
        (:attr:`emohrnet.models.ModelSpec.spec_augment`)."""
        aug = self.augmentation
        if not MODEL_SPECS[self.model].spec_augment:
            return AugmentConfig(freq_mask=0, time_mask=0, time_shift=aug.time_shift)
        return AugmentConfig(freq_mask=aug.freq_mask, time_mask=aug.time_mask, time_shift=aug.time_shift)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe flat dict of the settings: the run's own (``shard_dir``, ``model``, ``score_test``), every
        section's fields and the model's own settings (``width``, ``cnn_width``, ...), as a trial config holds
        them; :meth:`from_dict` reads it back."""
        out: dict[str, Any] = {"shard_dir": self.shard_dir, "model": self.model, "score_test": self.score_test}
        for name in RUN_SECTIONS:
            out.update(asdict(getattr(self, name)))
        out.update(asdict(self.architecture))
        return out

    def resolve_speed(self, device: torch.device | str) -> dict[str, Any]:
        """The speed settings this run uses on ``device``, with ``"auto"`` resolved.

        Returns:
            ``{"device": str, "amp": "bf16" | "off", "channels_last": bool, "compile": bool}``.
        """
        device = torch.device(device)
        amp = self.speed.amp
        if amp == "auto":
            amp = "bf16" if native_bf16(device) else "off"
        if self.speed.channels_last == "auto":
            # CPU: faster in float32 and bf16 (benchmarks/trainstep.py). CUDA: only where the step runs on
            # tensor cores (bf16, or TF32 from Ampere on); on a T4 in float32 NHWC gains nothing
            channels_last = device.type == "cpu" or (device.type == "cuda" and native_bf16(device))
        else:
            channels_last = bool(self.speed.channels_last)
        return {"device": str(device), "amp": amp, "channels_last": channels_last, "compile": self.speed.compile}


def native_bf16(device: torch.device | str) -> bool:
    """Whether ``device`` computes bf16 natively, so bf16 autocast speeds training up.

    CUDA: compute capability 8.0 (Ampere) or newer; older cards (a T4) emulate bf16, far slower
    than float32. CPU: AVX-512 BF16 or AMX instructions (oneDNN's bf16 kernels); measured on an AMD
    EPYC with AVX-512 BF16, a small EmoHRNet step runs about 2x faster (``benchmarks/trainstep.py``).
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.get_device_capability(device)[0] >= 8
    if device.type == "cpu":
        cpu = getattr(torch, "cpu", None)
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)
    return False


LR_SCHEDULES = ("constant", "cosine")
"""Learning-rate schedules of :attr:`TrainConfig.lr_schedule`; ``constant`` is the paper's."""


def _choice(name: str, value: Any, allowed: dict[str, Any]) -> Any:
    """``value`` (a bool or a string, any case) mapped through ``allowed``.

    Raises:
        ValueError: not one of the allowed values.
    """
    key = str(value).strip().lower()
    if key not in allowed:
        raise ValueError(f"{name}={value!r}: use one of {', '.join(sorted(set(map(str, allowed.values()))))}")
    return allowed[key]
