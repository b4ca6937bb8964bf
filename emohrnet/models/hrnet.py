"""EmoHRNet: a High-Resolution Network (HRNet) over a normalized log-mel spectrogram.

Sources:

- Muppidi & Radfar 2025, "EmoHRNet: High-Resolution Neural Network Based Speech Emotion
  Recognition", arXiv 2510.06072, sections 3.2 (input module, HRNet stages, fuse layer) and 3.3
  (pooling and classifier).
- Wang et al. 2020, "Deep High-Resolution Representation Learning for Visual Recognition", TPAMI
  (the HRNet backbone: stem, stages of parallel multi-resolution branches, transition layers,
  repeated multi-resolution fusion, and the HRNetV2 "upsample and concatenate" representation head).

Written from the papers in plain PyTorch. Layout of the network for an input
``(batch, in_channels, n_mels, frames)``:

1. ``stem``: two 3x3 stride-2 convs (``in_channels -> stem_channels -> stem_channels``), each with
   BatchNorm + ReLU. The map is now ``(H0, W0) = (ceil(ceil(n_mels/2)/2), ceil(ceil(frames/2)/2))``,
   the "stage-1 resolution".
2. ``stage1``: one branch of Bottleneck residual blocks (planes ``stem_channels``, expansion 4),
   ``modules[0] * stage1_blocks`` of them.
3. Stages 2..S (``S = len(widths)``): stage ``s`` has ``s`` parallel branches; branch ``b`` has
   ``widths[b]`` channels at ``ceil``-halved-``b``-times the stage-1 resolution. Each stage is
   ``modules[s-1]`` high-resolution modules (BasicBlocks per branch, then multi-resolution fusion),
   preceded by a transition layer that adapts existing branches and adds the new lowest-resolution one.
4. ``fuse`` (the paper's "Fuse Layer", HRNetV2 style): every last-stage branch is upsampled (nearest)
   to branch 0's exact size, the maps are concatenated (``sum(widths)`` channels) and merged by a
   1x1 conv + BN + ReLU into ``fuse_channels`` channels at the highest resolution.
5. Global average pooling over (freq, time), dropout, a linear classifier giving logits.

Odd sizes: every stride-2 3x3 conv has padding 1, so it maps ``n -> ceil(n/2)``; downsampling paths
therefore land exactly on the lower branch's size, and upsampling uses
``F.interpolate(size=...)`` so it lands exactly on the higher branch's size. Any ``n_mels >= 1`` and
``frames >= 1`` work (the paper uses 128 mels; tests use 32-128 mels and 1-333 frames).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from emohrnet.data.augment import LB_FREQ_MASK, LB_TIME_MASK
from emohrnet.models.hrnet_blocks import (
    BOTTLENECK_EXPANSION,
    Bottleneck,
    HighResolutionModule,
    conv1x1,
    conv_bn_relu,
    make_transition,
)
from emohrnet.models.pooling import masked_mean
from emohrnet.models.spec import LR_RANGE, RECIPE_LEVERS, RECIPE_LEVERS_OFF, Choice, IntRange, ModelSpec, Uniform


def width_preset(base: int) -> tuple[int, int, int, int]:
    """Branch widths of HRNet-W``base``: ``(base, 2*base, 4*base, 8*base)``.

    ``width_preset(18)`` gives HRNet-W18's ``(18, 36, 72, 144)``, the EmoHRNet baseline
    (Wang et al. 2020, TPAMI, section 3; Muppidi & Radfar 2025, section 3.2).

    Args:
        base: width of the highest-resolution branch.

    Returns:
        the four branch widths, doubling from branch to branch.

    Raises:
        ValueError: ``base`` is not a positive int.
    """
    if isinstance(base, bool) or not isinstance(base, numbers.Integral) or base <= 0:
        raise ValueError(f"width_preset: base must be a positive int, got {base!r}")
    base = int(base)
    return (base, 2 * base, 4 * base, 8 * base)


@dataclass
class EmoHRNetConfig:
    """EmoHRNet's own settings in a training config; the defaults are HRNet-W18, the paper's backbone
    (Muppidi & Radfar 2025, sec. 3.2; Wang et al. 2020, TPAMI, sec. 3), the one place they are written.

    Attributes:
        width: HRNet width ``C``; the branch widths are ``(C, 2C, 4C, 8C)`` (:func:`width_preset`).
        stem_channels: channels of the 3x3-conv input module.
        blocks_per_branch: residual blocks per branch in each high-resolution module.
        modules: high-resolution modules per stage (four stages).
        head_dropout: dropout probability between global average pooling and the classifier, in
            ``[0, 1)``; 0 (none) is the paper's (a recipe lever of issue 23, searched by ``--space recipe``).
    """

    width: int = 18
    stem_channels: int = 64
    blocks_per_branch: int = 4
    modules: list[int] = field(default_factory=lambda: [1, 1, 4, 3])
    head_dropout: float = 0.0

    def arguments(self, n_features: int) -> dict[str, Any]:
        """:class:`EmoHRNet`'s constructor arguments besides ``num_classes`` (the number of mel bands
        ``n_features`` needs none: the network pools over frequency)."""
        return {"widths": list(width_preset(self.width)), "stem_channels": self.stem_channels,
                "blocks_per_branch": self.blocks_per_branch, "modules": list(self.modules),
                "dropout": float(self.head_dropout)}


_W18 = EmoHRNetConfig()


def _checked_config(num_classes, widths, blocks_per_branch, modules, stem_channels, stage1_blocks, fuse_channels,
                    dropout, in_channels) -> dict[str, Any]:
    """:class:`EmoHRNet`'s arguments checked and as plain values (its ``config``; ``fuse_channels``
    ``None``: the sum of the widths).

    Raises:
        ValueError: a count that is not a positive integer, fewer than 2 branches, not one module count
            per stage, a dropout outside [0, 1).
    """
    _check_positive_int("num_classes", num_classes)
    widths = _check_int_list("widths", widths)
    modules = _check_int_list("modules", modules)
    if len(widths) < 2:
        raise ValueError(f"EmoHRNet: widths needs at least 2 branches (2 stages), got {widths}")
    if len(modules) != len(widths):
        raise ValueError(
            f"EmoHRNet: len(modules) ({len(modules)}) must equal len(widths) ({len(widths)}): "
            "one module count per stage"
        )
    for name, value in (("blocks_per_branch", blocks_per_branch), ("stem_channels", stem_channels),
                        ("stage1_blocks", stage1_blocks), ("in_channels", in_channels)):
        _check_positive_int(name, value)
    if fuse_channels is None:
        fuse_channels = sum(widths)
    _check_positive_int("fuse_channels", fuse_channels)
    if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not 0.0 <= dropout < 1.0:
        raise ValueError(f"EmoHRNet: dropout must be a float in [0, 1), got {dropout!r}")
    return {"num_classes": int(num_classes), "widths": list(widths), "blocks_per_branch": int(blocks_per_branch),
            "modules": list(modules), "stem_channels": int(stem_channels), "stage1_blocks": int(stage1_blocks),
            "fuse_channels": int(fuse_channels), "dropout": float(dropout), "in_channels": int(in_channels)}


class EmoHRNet(nn.Module):
    """EmoHRNet: an HRNet over a normalized log-mel spectrogram, giving emotion-class logits.

    Input ``(batch, in_channels, n_mels, frames)`` float32 (``in_channels`` is 1 for a log-mel
    spectrogram) with any ``n_mels >= 1`` and ``frames >= 1`` (odd sizes included). Output: logits
    ``(batch, num_classes)``; no softmax is applied here -- it belongs to the loss
    (``nn.CrossEntropyLoss``) or to inference (``logits.softmax(-1)``).

    Architecture (see the module docstring): stem of two 3x3 stride-2 convs; stage 1 of Bottleneck
    blocks; stages 2..``len(widths)`` with ``s`` parallel branches (branch ``b``: ``widths[b]``
    channels at the stage-1 resolution ceil-halved ``b`` times) made of high-resolution modules
    (``blocks_per_branch`` BasicBlocks per branch, then multi-resolution fusion), with transition
    layers between stages; HRNetV2-style fuse layer (upsample every branch to the highest resolution,
    concatenate, 1x1 conv + BN + ReLU to ``fuse_channels``); global average pooling over
    (freq, time); dropout; linear classifier.

    Args:
        num_classes: number of emotion classes (logits per item).
        widths: channels of the branches, highest resolution first; ``len(widths)`` (>= 2) is the
            number of stages. Default HRNet-W18's ``(18, 36, 72, 144)``, see :func:`width_preset`.
        blocks_per_branch: BasicBlocks per branch in each high-resolution module (HRNet: 4).
        modules: high-resolution modules per stage, ``len(modules) == len(widths)``; ``modules[0]``
            repeats stage 1's ``stage1_blocks`` Bottlenecks (HRNet-W18: ``(1, 1, 4, 3)``).
        stem_channels: channels of the stem; stage 1 uses Bottlenecks with this many planes, so it
            outputs ``4 * stem_channels`` channels.

        The defaults of ``widths``, ``blocks_per_branch``, ``modules`` and ``stem_channels`` are
        :class:`EmoHRNetConfig`'s (HRNet-W18), where they are written.
        stage1_blocks: Bottleneck blocks in (each module of) stage 1.
        fuse_channels: channels of the fused high-resolution map; ``None`` means ``sum(widths)``.
        dropout: dropout probability before the classifier, in ``[0, 1)``.
        in_channels: input channels (1 for a log-mel spectrogram).

    Attributes:
        config: the constructor arguments, JSON-safe (lists, ints, float; ``fuse_channels`` resolved);
            ``EmoHRNet(**model.config)`` rebuilds the same architecture.

    Raises:
        ValueError: an argument is out of range (non-positive or non-int counts/widths,
            ``len(widths) < 2``, ``len(modules) != len(widths)``, ``dropout`` outside ``[0, 1)``);
            in ``forward``, an input that is not ``(batch, in_channels, n_mels, frames)`` with
            non-empty sizes.

    Source: Muppidi & Radfar 2025, "EmoHRNet: High-Resolution Neural Network Based Speech Emotion
    Recognition", arXiv 2510.06072, sections 3.2-3.3; Wang et al. 2020, "Deep High-Resolution
    Representation Learning for Visual Recognition", TPAMI.
    """

    def __init__(
        self,
        num_classes: int,
        widths: Sequence[int] = width_preset(_W18.width),
        blocks_per_branch: int = _W18.blocks_per_branch,
        modules: Sequence[int] = tuple(_W18.modules),
        stem_channels: int = _W18.stem_channels,
        stage1_blocks: int = 4,
        fuse_channels: int | None = None,
        dropout: float = 0.0,
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        self.config: dict[str, Any] = _checked_config(num_classes, widths, blocks_per_branch, modules, stem_channels,
                                                      stage1_blocks, fuse_channels, dropout, in_channels)
        c = self.config
        widths, modules, num_classes = c["widths"], c["modules"], c["num_classes"]
        blocks_per_branch, stem_channels, stage1_blocks = c["blocks_per_branch"], c["stem_channels"], c["stage1_blocks"]
        fuse_channels, in_channels, dropout = c["fuse_channels"], c["in_channels"], c["dropout"]
        self.widths = tuple(widths)
        self.in_channels = in_channels

        # Input module (HRNet stem): resolution / 4.
        self.stem = nn.Sequential(
            conv_bn_relu(in_channels, stem_channels, stride=2),
            conv_bn_relu(stem_channels, stem_channels, stride=2),
        )

        # Stage 1: one branch of Bottlenecks.
        stage1_out = stem_channels * BOTTLENECK_EXPANSION
        blocks: list[nn.Module] = []
        for k in range(modules[0] * stage1_blocks):
            blocks.append(Bottleneck(stem_channels if k == 0 else stage1_out, stem_channels))
        self.stage1 = nn.Sequential(*blocks)

        # Stages 2..S, each preceded by a transition layer.
        self.transitions = nn.ModuleList()
        self.stages = nn.ModuleList()
        prev = [stage1_out]
        for s in range(2, len(widths) + 1):
            cur = widths[:s]
            self.transitions.append(make_transition(prev, cur))
            self.stages.append(
                nn.Sequential(*(HighResolutionModule(cur, blocks_per_branch) for _ in range(modules[s - 1])))
            )
            prev = cur

        # Fuse layer (HRNetV2 head): upsample all branches to branch 0, concatenate, 1x1 conv.
        self.fuse = nn.Sequential(
            conv1x1(sum(widths), fuse_channels), nn.BatchNorm2d(fuse_channels), nn.ReLU(inplace=True)
        )
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(fuse_channels, num_classes)

        self._init_weights()

    def _init_weights(self) -> None:
        """Kaiming-normal (fan_out, ReLU) convs; BatchNorm weight 1, bias 0; PyTorch default Linear."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _check_input(self, x: Tensor) -> None:
        if x.ndim != 4:
            raise ValueError(
                f"EmoHRNet expects (batch, {self.in_channels}, n_mels, frames), got shape {tuple(x.shape)}"
            )
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"EmoHRNet expects {self.in_channels} input channel(s) (batch, {self.in_channels}, n_mels, "
                f"frames), got shape {tuple(x.shape)}"
            )
        if x.shape[0] < 1 or x.shape[2] < 1 or x.shape[3] < 1:
            raise ValueError(f"EmoHRNet: empty input of shape {tuple(x.shape)}")

    def forward_branches(self, x: Tensor) -> list[Tensor]:
        """Run stem and all stages; return the last stage's branches (before the fuse layer).

        Args:
            x: ``(batch, in_channels, n_mels, frames)``.

        Returns:
            ``len(widths)`` maps; map ``b`` is ``(batch, widths[b], H_b, W_b)`` with
            ``H_0 = ceil(ceil(n_mels/2)/2)``, ``W_0 = ceil(ceil(frames/2)/2)`` (the stage-1 size) and
            ``H_b = ceil(H_{b-1}/2)``, ``W_b = ceil(W_{b-1}/2)``.

        Raises:
            ValueError: ``x`` is not ``(batch, in_channels, n_mels, frames)`` with non-empty sizes.
        """
        self._check_input(x)
        xs = [self.stage1(self.stem(x))]
        for transition, stage in zip(self.transitions, self.stages, strict=True):
            new = []
            for i, t in enumerate(transition):
                # Existing branch i adapts its own map; the new (last) branch comes from the previous
                # lowest-resolution branch.
                new.append(t(xs[i] if i < len(xs) else xs[-1]))
            xs = stage(new)
        return xs

    def forward_features(
        self, x: Tensor, return_branches: bool = False
    ) -> Tensor | tuple[Tensor, list[Tensor]]:
        """The fused high-resolution feature map (the paper's "Fuse Layer" output).

        Args:
            x: ``(batch, in_channels, n_mels, frames)``.
            return_branches: also return the last stage's branches (see :meth:`forward_branches`).

        Returns:
            ``(batch, fuse_channels, H_0, W_0)`` with ``(H_0, W_0)`` the stage-1 size, or
            ``(fused, branches)`` when ``return_branches``.

        Raises:
            ValueError: ``x`` is not ``(batch, in_channels, n_mels, frames)`` with non-empty sizes.
        """
        branches = self.forward_branches(x)
        size = branches[0].shape[-2:]
        maps = [branches[0]] + [F.interpolate(b, size=size, mode="nearest") for b in branches[1:]]
        fused = self.fuse(torch.cat(maps, dim=1))
        if return_branches:
            return fused, branches
        return fused

    def branch_shapes(self, x: Tensor) -> list[tuple[int, int, int, int]]:
        """Shapes ``(batch, widths[b], H_b, W_b)`` of the last stage's branches for input ``x``.

        Runs under ``torch.no_grad()``; see :meth:`forward_branches`.

        Raises:
            ValueError: ``x`` is not ``(batch, in_channels, n_mels, frames)`` with non-empty sizes.
        """
        with torch.no_grad():
            return [tuple(b.shape) for b in self.forward_branches(x)]  # type: ignore[misc]

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Logits for a batch of spectrograms.

        Args:
            x: ``(batch, in_channels, n_mels, frames)`` float32, any ``n_mels, frames >= 1``.
            lengths: ``(batch,)`` valid frames of each item of a zero-padded batch
                (:func:`emohrnet.inference.evaluation.eval_batches`): the global average pooling then covers only the
                fused map's columns of those frames (``ceil(length / 4)`` after the stem). ``None``:
                every frame is valid.

        Returns:
            logits ``(batch, num_classes)`` (no softmax).

        Raises:
            ValueError: ``x`` is not ``(batch, in_channels, n_mels, frames)`` with non-empty sizes.

        Note:
            In training mode BatchNorm needs more than one value per channel, so a batch of one item
            whose lowest-resolution branch is 1x1 (e.g. 1-4 frames) fails in PyTorch's BatchNorm.
        """
        fused = self.forward_features(x)
        if lengths is None:
            pooled = fused.mean(dim=(2, 3))
        else:
            pooled = masked_mean(fused, -(-lengths // 4))  # each stem conv: n -> ceil(n / 2)
        return self.classifier(self.dropout(pooled))


def _check_positive_int(name: str, value: object) -> None:
    """Raise ValueError unless ``value`` is a positive int (bools rejected)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"EmoHRNet: {name} must be a positive int, got {value!r}")


def _check_int_list(name: str, values: object) -> list[int]:
    """A non-empty sequence of positive ints as a list; ValueError otherwise."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
        raise ValueError(f"EmoHRNet: {name} must be a non-empty sequence of positive ints, got {values!r}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v <= 0:
            raise ValueError(f"EmoHRNet: {name} must hold positive ints, got {list(values)!r}")
    return [int(v) for v in values]


EMOHRNET_PAPER: dict[str, Any] = {
    "lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "weight_decay": 1e-4, "batch_size": 64, "epochs": 100,
    **asdict(EmoHRNetConfig()), "lr_schedule": "constant", "freq_mask": LB_FREQ_MASK, "time_mask": LB_TIME_MASK,
    **RECIPE_LEVERS_OFF,
}
"""EmoHRNet's published recipe (Muppidi & Radfar 2025, sec. 4.2): Adam with lr 1e-3, betas (0.9, 0.999),
weight decay 1e-4 and a constant learning rate; batch 64; 100 epochs; HRNet-W18 (width 18, stem 64, 4
blocks per branch, modules 1, 1, 4, 3); SpecAugment F = 27 and T = 100 (LibriSpeech-basic: the paper
gives no F and T); none of the recipe levers (mixup, label smoothing, warm-up, dropout before the
classifier: :data:`emohrnet.models.spec.RECIPE_LEVERS_OFF`); the HRNet-W18 structure is
:class:`emohrnet.models.hrnet.EmoHRNetConfig`'s defaults.
:class:`emohrnet.config.experiment.ExperimentConfig`'s defaults, the search's baseline trial and the
notes on how a run differs from the paper are taken from it."""


SPEC = ModelSpec(
    "emohrnet", EmoHRNet, "logmel", "Muppidi & Radfar 2025, EmoHRNet (arXiv 2510.06072)", EmoHRNetConfig,
    spec_augment=True,
    space={"lr": LR_RANGE, "freq_mask": IntRange(0, 40), "time_mask": IntRange(0, 120),
           "width": Choice((12, 18, 24, 32))},
    baseline={k: EMOHRNET_PAPER[k] for k in ("lr", "freq_mask", "time_mask", "width")},
    levers={**RECIPE_LEVERS, "head_dropout": Uniform(0.0, 0.5), "aug_prob": Uniform(0.0, 1.0)},
    levers_off={**RECIPE_LEVERS_OFF, "head_dropout": 0.0, "aug_prob": 0.0},
    order=0)
"""EmoHRNet in the registry (:mod:`emohrnet.models.registry`): the project's model, listed first; its
baseline trial is the paper's recipe."""
