"""The building blocks of :class:`emohrnet.models.hrnet.EmoHRNet`: residual blocks, the
high-resolution module (parallel branches and multi-resolution fusion) and the transition layers
between stages.

Source: Wang et al. 2020, "Deep High-Resolution Representation Learning for Visual Recognition",
TPAMI (BasicBlock and Bottleneck as in ResNet, He et al. 2016; the HRNet module and transitions),
as used by Muppidi & Radfar 2025 (EmoHRNet, arXiv 2510.06072, sec. 3.2).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

BOTTLENECK_EXPANSION = 4
"""Channel expansion of the stage-1 Bottleneck blocks (HRNet / ResNet)."""


def _conv3x3(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    """3x3 conv, padding 1, no bias (a BatchNorm follows): maps ``n -> ceil(n / stride)``."""
    return nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_ch: int, out_ch: int) -> nn.Conv2d:
    """1x1 conv, no bias (a BatchNorm follows)."""
    return nn.Conv2d(in_ch, out_ch, kernel_size=1, bias=False)


def conv_bn_relu(in_ch: int, out_ch: int, stride: int = 1) -> nn.Sequential:
    """3x3 conv + BatchNorm + ReLU."""
    return nn.Sequential(_conv3x3(in_ch, out_ch, stride), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))


class BasicBlock(nn.Module):
    """Residual block of two 3x3 convs (He et al. 2016), used by the branches of stages 2..4.

    Shapes: ``(batch, channels, H, W) -> (batch, channels, H, W)``.

    Source: Wang et al. 2020 (HRNet), TPAMI, section 3 ("four residual units ... each unit
    contains two 3x3 convolutions"); Muppidi & Radfar 2025, section 3.2.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = _conv3x3(channels, channels)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = _conv3x3(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        """``(batch, channels, H, W) -> (batch, channels, H, W)``."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + x)


class Bottleneck(nn.Module):
    """Bottleneck residual block (1x1 -> 3x3 -> 1x1, expansion 4), used by stage 1.

    Shapes: ``(batch, in_channels, H, W) -> (batch, 4 * planes, H, W)``; the shortcut is a 1x1 conv +
    BN when ``in_channels != 4 * planes``, the identity otherwise.

    Source: Wang et al. 2020 (HRNet), TPAMI, section 3 (stage 1 is built from bottleneck units as in
    ResNet-50); Muppidi & Radfar 2025, section 3.2.
    """

    def __init__(self, in_channels: int, planes: int) -> None:
        super().__init__()
        out_channels = planes * BOTTLENECK_EXPANSION
        self.conv1 = conv1x1(in_channels, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, out_channels)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module
        if in_channels != out_channels:
            self.shortcut = nn.Sequential(conv1x1(in_channels, out_channels), nn.BatchNorm2d(out_channels))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        """``(batch, in_channels, H, W) -> (batch, 4 * planes, H, W)``."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.shortcut(x))


def _check_same_size(y: Tensor, target: Tensor, what: str) -> None:
    """Raise RuntimeError when two maps' spatial sizes differ (a fusion path that missed)."""
    if y.shape[-2:] != target.shape[-2:]:
        raise RuntimeError(
            f"{what}: spatial size {tuple(y.shape[-2:])} does not match {tuple(target.shape[-2:])}"
        )


class HighResolutionModule(nn.Module):
    """One HRNet high-resolution module: parallel branches of BasicBlocks, then multi-resolution fusion.

    Input and output: a list of ``len(widths)`` maps, map ``b`` of shape
    ``(batch, widths[b], H_b, W_b)`` with ``H_{b+1} = ceil(H_b / 2)`` and ``W_{b+1} = ceil(W_b / 2)``.
    Every branch keeps its own resolution and width.

    Fusion: output ``i = ReLU(sum_j f_ij(x_j))`` with

    - ``j == i``: identity;
    - ``j > i`` (lower resolution): 1x1 conv + BN to ``widths[i]``, then nearest upsampling to exactly
      ``(H_i, W_i)`` (``F.interpolate(size=...)``; 2x factors are inexact for odd sizes);
    - ``j < i`` (higher resolution): ``i - j`` stride-2 3x3 convs; BN + ReLU after each but the last,
      which goes to ``widths[i]`` with BN and no ReLU. Each maps ``n -> ceil(n/2)``, landing exactly on
      ``(H_i, W_i)``.

    Raises:
        RuntimeError: (in ``forward``) a fusion path does not land on the target size, i.e. the
            inputs are not ceil-halved from branch to branch.

    Source: Wang et al. 2020 (HRNet), TPAMI, section 3 ("parallel multi-resolution convolutions",
    "repeated multi-resolution fusions"); Muppidi & Radfar 2025, section 3.2.
    """

    def __init__(self, widths: Sequence[int], num_blocks: int) -> None:
        super().__init__()
        self.widths = tuple(int(w) for w in widths)
        n = len(self.widths)
        self.branches = nn.ModuleList(
            nn.Sequential(*(BasicBlock(w) for _ in range(num_blocks))) for w in self.widths
        )
        fuse_layers = []
        for i in range(n):
            row = nn.ModuleList()
            for j in range(n):
                if j == i:
                    row.append(nn.Identity())
                elif j > i:
                    row.append(
                        nn.Sequential(
                            conv1x1(self.widths[j], self.widths[i]), nn.BatchNorm2d(self.widths[i])
                        )
                    )
                else:
                    steps: list[nn.Module] = []
                    for k in range(i - j):
                        if k == i - j - 1:
                            steps += [
                                _conv3x3(self.widths[j], self.widths[i], stride=2),
                                nn.BatchNorm2d(self.widths[i]),
                            ]
                        else:
                            steps.append(conv_bn_relu(self.widths[j], self.widths[j], stride=2))
                    row.append(nn.Sequential(*steps))
            fuse_layers.append(row)
        self.fuse_layers = nn.ModuleList(fuse_layers)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        """List of ``(batch, widths[b], H_b, W_b)`` -> list of the same shapes (branches, then fusion)."""
        if len(xs) != len(self.widths):
            raise ValueError(f"HighResolutionModule expects {len(self.widths)} branches, got {len(xs)}")
        ys = [branch(x) for branch, x in zip(self.branches, xs, strict=True)]
        out = []
        for i, row in enumerate(self.fuse_layers):
            target = ys[i]
            total = target
            for j, layer in enumerate(row):
                if j == i:
                    continue
                z = layer(ys[j])
                if j > i:
                    z = F.interpolate(z, size=target.shape[-2:], mode="nearest")
                else:
                    _check_same_size(z, target, f"fusion {j}->{i}")
                total = total + z
            out.append(self.relu(total))
        return out


def make_transition(prev: Sequence[int], cur: Sequence[int]) -> nn.ModuleList:
    """Transition layer between stages (Wang et al. 2020, TPAMI, section 3).

    For each of the ``len(cur)`` next-stage branches: an existing branch ``i`` (``i < len(prev)``)
    gets a 3x3 conv + BN + ReLU when ``prev[i] != cur[i]``, the identity otherwise; the new branch
    ``len(prev)`` is a 3x3 stride-2 conv + BN + ReLU applied to the previous lowest-resolution branch
    ``(batch, prev[-1], H, W) -> (batch, cur[-1], ceil(H/2), ceil(W/2))``.
    """
    if len(cur) != len(prev) + 1:
        raise ValueError(f"a transition adds exactly one branch: {len(prev)} -> {len(cur)} branches")
    layers = nn.ModuleList()
    for i, c in enumerate(cur):
        if i < len(prev):
            layers.append(conv_bn_relu(prev[i], c) if prev[i] != c else nn.Identity())
        else:
            layers.append(conv_bn_relu(prev[-1], c, stride=2))
    return layers
