"""The settings of one training run (:class:`TrainConfig`, the ``train_loop_config`` of
:func:`emohrnet.train.train_loop_per_worker`) and what they resolve to on a device (bf16, channels_last).

The defaults are EmoHRNet's published recipe (:data:`emohrnet.models.EMOHRNET_PAPER`, Muppidi & Radfar
2025, sec. 4.2: Adam with lr 1e-3, betas (0.9, 0.999), weight decay 1e-4; 100 epochs; global batch 64;
HRNet-W18; SpecAugment widths F=27, T=100) and, for the 1D CNN's own fields, its baseline point.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch

from .augment import AugmentConfig
from .models import EMOHRNET_PAPER as PAPER
from .models import MODEL_SPECS

CNN_BASELINE = MODEL_SPECS["cnn1d_attention"].baseline


@dataclass
class TrainConfig:
    """Everything one training run needs (``train_loop_config`` of the ``TorchTrainer``).

    Attributes:
        shard_dir: folder of the shards and ``manifest.json``.
        protocol: ``"speaker"`` (speaker-independent folds) or ``"random"``.
        fold: fold index (for ``"random"``, the split's seed).
        model: registry name: ``"emohrnet"`` (log-mel shards) or ``"cnn1d_attention"`` (MFCC shards).
        width: HRNet width ``C``; branch widths are ``(C, 2C, 4C, 8C)`` (18 = HRNet-W18).
        stem_channels: channels of the 3x3-conv input module (HRNet: 64).
        blocks_per_branch: residual blocks per branch in each module (HRNet: 4).
        modules: high-resolution modules per stage (HRNet-W18: 1, 1, 4, 3).
        lr, beta1, beta2, weight_decay: Adam settings.
        lr_schedule: ``"constant"`` (the paper's: ``lr`` throughout) or ``"cosine"`` (epoch ``e`` of
            ``E`` trains at ``lr * (1 + cos(pi * e / E)) / 2``, from ``lr`` towards 0; set per epoch,
            so a restart from a checkpoint continues it exactly).
        epochs: training epochs.
        batch_size: global batch (utterances per optimizer step over all workers).
        freq_mask, time_mask: SpecAugment F (mel bands) and T (frames).
        time_shift: random placement of utterances in their training segments.
        segment_seconds: length of training segments in seconds (evaluation uses whole utterances).
        seed: seed of model initialisation, batch order and masks.
        eval_batch: most equal-length utterances per evaluation batch.
        cnn_width: ``cnn1d_attention`` only: widths of its three conv blocks are (C, 2C, 4C).
        dropout: ``cnn1d_attention`` only: dropout after each block and before the classifier.
        aug_prob: probability of training on one of an utterance's waveform-augmented copies
            (built with ``--augment-copies``) instead of the utterance itself.
        amp: mixed precision: ``"auto"`` (bf16 autocast where the device has native bf16, see
            :func:`native_bf16`; off elsewhere), ``"bf16"`` (bf16 autocast on any device) or ``"off"``.
        channels_last: ``"auto"`` (on for CPUs and capability-8.0+ GPUs), ``True`` or ``False``: model and batches in
            ``torch.channels_last`` memory format.
        compile: run the training forward/backward through ``torch.compile`` (evaluation and
            checkpoints use the uncompiled model).

    Raises:
        ValueError: an unknown ``amp``, ``channels_last`` or ``compile`` value.
    """

    shard_dir: str
    protocol: str = "speaker"
    fold: int = 0
    model: str = "emohrnet"
    width: int = PAPER["width"]
    stem_channels: int = PAPER["stem_channels"]
    blocks_per_branch: int = PAPER["blocks_per_branch"]
    modules: list[int] = field(default_factory=lambda: list(PAPER["modules"]))
    lr: float = PAPER["lr"]
    beta1: float = PAPER["beta1"]
    beta2: float = PAPER["beta2"]
    weight_decay: float = PAPER["weight_decay"]
    lr_schedule: str = PAPER["lr_schedule"]
    epochs: int = PAPER["epochs"]
    batch_size: int = PAPER["batch_size"]
    freq_mask: int = PAPER["freq_mask"]
    time_mask: int = PAPER["time_mask"]
    time_shift: bool = True
    segment_seconds: float = 3.0
    seed: int = 0
    eval_batch: int = 32
    cnn_width: int = CNN_BASELINE["cnn_width"]
    dropout: float = CNN_BASELINE["dropout"]
    aug_prob: float = 0.0
    amp: str = "auto"
    channels_last: str | bool = "auto"
    compile: bool = False

    def __post_init__(self) -> None:
        self.amp = _choice("amp", self.amp, {"auto": "auto", "bf16": "bf16", "off": "off", "true": "bf16",
                                             "false": "off", "none": "off"})
        self.channels_last = _choice("channels_last", self.channels_last,
                                     {"auto": "auto", "true": True, "on": True, "false": False, "off": False})
        flags = {"true": True, "1": True, "on": True, "false": False, "0": False, "off": False}
        self.compile = _choice("compile", self.compile, flags)
        self.lr_schedule = _choice("lr_schedule", self.lr_schedule, {s: s for s in LR_SCHEDULES})

    def epoch_lr(self, epoch: int) -> float:
        """The learning rate of epoch ``epoch`` (counted from 0) under :attr:`lr_schedule`."""
        if self.lr_schedule == "cosine":
            return self.lr * 0.5 * (1.0 + math.cos(math.pi * epoch / max(1, self.epochs)))
        return self.lr

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> TrainConfig:
        """Build from a Tune/Train config dict, ignoring keys that are not fields.

        Raises:
            ValueError: ``shard_dir`` is missing.
        """
        if "shard_dir" not in config:
            raise ValueError("train config needs 'shard_dir', the folder of the shards")
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in config.items() if k in names}
        for key in ("width", "stem_channels", "blocks_per_branch", "epochs", "batch_size", "freq_mask",
                    "time_mask", "fold", "seed", "cnn_width"):
            if key in values:
                values[key] = int(values[key])
        if "modules" in values:
            values["modules"] = [int(m) for m in values["modules"]]
        return cls(**values)

    def model_kwargs(self, n_features: int) -> dict[str, Any]:
        """Constructor arguments of the model (besides ``num_classes``); ``n_features`` is the
        number of mel bands or MFCCs of the shards."""
        return MODEL_SPECS[self.model].arguments(self, n_features)

    def augment(self) -> AugmentConfig:
        """The SpecAugment/time-shift settings. SpecAugment is EmoHRNet's; the 1D CNN trains with
        waveform augmentation (``aug_prob``) as in its paper, so its masks are off
        (:attr:`emohrnet.models.ModelSpec.spec_augment`)."""
        if not MODEL_SPECS[self.model].spec_augment:
            return AugmentConfig(freq_mask=0, time_mask=0, time_shift=self.time_shift)
        return AugmentConfig(freq_mask=self.freq_mask, time_mask=self.time_mask, time_shift=self.time_shift)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of the settings."""
        return asdict(self)

    def resolve_speed(self, device: torch.device | str) -> dict[str, Any]:
        """The speed settings this run uses on ``device``, with ``"auto"`` resolved.

        Returns:
            ``{"device": str, "amp": "bf16" | "off", "channels_last": bool, "compile": bool}``.
        """
        device = torch.device(device)
        amp = self.amp
        if amp == "auto":
            amp = "bf16" if native_bf16(device) else "off"
        if self.channels_last == "auto":
            # CPU: faster in float32 and bf16 (benchmarks/trainstep.py). CUDA: only where the step runs on
            # tensor cores (bf16, or TF32 from Ampere on); on a T4 in float32 NHWC gains nothing
            channels_last = device.type == "cpu" or (device.type == "cuda" and native_bf16(device))
        else:
            channels_last = bool(self.channels_last)
        return {"device": str(device), "amp": amp, "channels_last": channels_last, "compile": self.compile}


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
