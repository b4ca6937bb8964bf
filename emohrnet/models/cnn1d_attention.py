"""CNN1DAttention: a 1D CNN over MFCC frames with channel and spatial (temporal) attention.

Sources:

- Lee & Nadeem 2025, "Toward Efficient Speech Emotion Recognition via Spectral Learning and
  Attention", arXiv 2507.03251: MFCCs of (augmented) audio, a 1D CNN over time whose features are
  refined by a channel-attention and a spatial-attention module, then a classifier. The paper's
  abstract and overview are followed; the exact layer sizes here are emohrnet's choices (defaults
  below), not values copied from the paper.
- Hu et al. 2018, "Squeeze-and-Excitation Networks", CVPR (channel attention: squeeze by global
  average pooling, excite by a bottleneck MLP with reduction ratio ``r`` and a sigmoid).
- Woo et al. 2018, "CBAM: Convolutional Block Attention Module", ECCV, sections 3.1-3.2 (channel
  attention from average- *and* max-pooled descriptors through one shared MLP; spatial attention from
  the channel-wise average and max maps through a ``k``-wide convolution and a sigmoid; channel
  attention first, then spatial attention).

Written from the papers in plain PyTorch. Layout for an input ``(batch, n_mfcc, frames)``
(``n_mfcc == in_channels``; the MFCC coefficients are the 1D convolution's input channels and the
convolution slides over time):

1. ``blocks``: ``len(widths)`` blocks ``Conv1d(k, padding k//2) -> BatchNorm1d -> ReLU ->
   MaxPool1d(pool, ceil_mode=True) -> Dropout``. Each block maps ``frames -> ceil(frames / pool)``
   (``ceil_mode`` makes a window that runs past the end still produce an output, so 1 frame stays 1
   frame and no input is too short; ``pool=1`` disables pooling).
2. ``channel_attention``: per-channel weights in (0, 1) from the time-pooled features (CBAM's
   average+max descriptors by default, ``channel_pooling="avg"`` gives exactly SE), features scaled
   per channel.
3. ``spatial_attention``: per-frame weights in (0, 1) from the channel-wise average and max maps
   (``Conv1d(2 -> 1, spatial_kernel)`` + sigmoid), features scaled per frame. "Spatial" is CBAM's
   word; over MFCC frames it is attention along time.
4. Global average pooling over time, dropout, a linear classifier giving logits.

Why CBAM's average+max channel descriptor by default: the paper pairs channel with spatial attention,
which is CBAM's design, and CBAM (section 4.1, Table 1) reports the max-pooled descriptor adds to
the average-pooled one at no parameter cost (the MLP is shared).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from emohrnet.models.pooling import masked_mean
from emohrnet.models.spec import LR_RANGE, RECIPE_LEVERS, RECIPE_LEVERS_OFF, Choice, ModelSpec, Uniform

CHANNEL_POOLINGS = ("avg_max", "avg")
"""Channel-attention descriptors: ``"avg_max"`` (CBAM, Woo et al. 2018) or ``"avg"`` (SE, Hu et al. 2018)."""


def _err(msg: str) -> ValueError:
    return ValueError(f"CNN1DAttention: {msg}")


def _is_int(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Integral)


def _check_positive_int(name: str, value: object) -> int:
    if not _is_int(value) or value <= 0:  # type: ignore[operator]
        raise _err(f"{name} must be a positive int, got {value!r}")
    return int(value)  # type: ignore[arg-type]


def _check_odd_int(name: str, value: object) -> int:
    value = _check_positive_int(name, value)
    if value % 2 == 0:
        raise _err(f"{name} must be odd (symmetric 'same' padding), got {value}")
    return value


def _check_int_list(name: str, values: object, odd: bool = False) -> list[int]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
        raise _err(f"{name} must be a non-empty sequence of positive ints, got {values!r}")
    check = _check_odd_int if odd else _check_positive_int
    return [check(f"{name}[{i}]", v) for i, v in enumerate(values)]


class ChannelAttention(nn.Module):
    """Channel attention over a 1D feature map: SE (Hu et al. 2018) or CBAM's variant (Woo et al. 2018).

    Weights ``w = sigmoid(MLP(avg_t x) [+ MLP(max_t x)])`` of shape ``(batch, channels, 1)``, each in
    (0, 1); ``forward`` returns ``x * w``. The MLP is ``Linear(channels, hidden) -> ReLU ->
    Linear(hidden, channels)`` with ``hidden = max(1, channels // reduction)``, shared by the two
    descriptors.

    Shapes: ``(batch, channels, frames) -> (batch, channels, frames)``.

    Args:
        channels: feature channels.
        reduction: MLP reduction ratio ``r`` (SE and CBAM use 16; emohrnet's default 8 suits the
            narrower 1D maps).
        pooling: ``"avg_max"`` (CBAM section 3.1) or ``"avg"`` (SE: average pooling only).

    Raises:
        ValueError: a non-positive ``channels``/``reduction`` or an unknown ``pooling``.
    """

    def __init__(self, channels: int, reduction: int = 8, pooling: str = "avg_max") -> None:
        super().__init__()
        channels = _check_positive_int("channels", channels)
        reduction = _check_positive_int("reduction", reduction)
        if pooling not in CHANNEL_POOLINGS:
            raise _err(f"channel_pooling must be one of {CHANNEL_POOLINGS}, got {pooling!r}")
        self.pooling = pooling
        hidden = max(1, channels // reduction)
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels))

    def attention(self, x: Tensor) -> Tensor:
        """Channel weights in (0, 1): ``(batch, channels, frames) -> (batch, channels, 1)``."""
        logits = self.mlp(x.mean(dim=-1))
        if self.pooling == "avg_max":
            logits = logits + self.mlp(x.amax(dim=-1))
        return torch.sigmoid(logits).unsqueeze(-1)

    def forward(self, x: Tensor) -> Tensor:
        """``x * attention(x)``: ``(batch, channels, frames) -> (batch, channels, frames)``."""
        return x * self.attention(x)


class SpatialAttention(nn.Module):
    """CBAM spatial attention (Woo et al. 2018, section 3.2) along the time axis of a 1D feature map.

    Weights ``w = sigmoid(Conv1d([mean_c x; max_c x]))``: the channel-wise mean and max maps
    ``(batch, 2, frames)`` go through ``Conv1d(2, 1, kernel_size, padding=kernel_size // 2)``, giving
    one weight in (0, 1) per frame, ``(batch, 1, frames)``; ``forward`` returns ``x * w``.

    Shapes: ``(batch, channels, frames) -> (batch, channels, frames)``.

    Args:
        kernel_size: odd width of the convolution in frames (CBAM uses 7).

    Raises:
        ValueError: ``kernel_size`` is not a positive odd int.
    """

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        kernel_size = _check_odd_int("spatial_kernel", kernel_size)
        self.conv = nn.Conv1d(2, 1, kernel_size, padding=kernel_size // 2)

    def attention(self, x: Tensor) -> Tensor:
        """Frame weights in (0, 1): ``(batch, channels, frames) -> (batch, 1, frames)``."""
        desc = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.conv(desc))

    def forward(self, x: Tensor) -> Tensor:
        """``x * attention(x)``: ``(batch, channels, frames) -> (batch, channels, frames)``."""
        return x * self.attention(x)


@dataclass
class CNN1DAttentionConfig:
    """The 1D CNN's own settings in a training config; the defaults are the search's baseline for it
    (this project's reading of Lee & Nadeem 2025's setup: their exact values were not available).

    Attributes:
        cnn_width: ``C``: the three conv blocks are ``(C, 2C, 4C)`` channels wide.
        dropout: dropout after each block and before the classifier, in [0, 1).
    """

    cnn_width: int = 64
    dropout: float = 0.3

    def arguments(self, n_features: int) -> dict[str, Any]:
        """:class:`CNN1DAttention`'s constructor arguments besides ``num_classes``: ``n_features`` MFCCs
        as input channels, block widths ``(C, 2C, 4C)``, dropout."""
        w = self.cnn_width
        return {"in_channels": n_features, "widths": [w, 2 * w, 4 * w], "dropout": float(self.dropout)}


_BASELINE = CNN1DAttentionConfig()


class CNN1DAttention(nn.Module):
    """1D CNN over MFCC frames with channel and spatial attention, giving emotion-class logits.

    Input ``(batch, n_mfcc, frames)`` float32 with ``n_mfcc == in_channels`` and any ``frames >= 1``,
    or ``(batch, 1, n_mfcc, frames)`` (the layout of emohrnet's spectrogram batches; the singleton
    channel axis is squeezed, so the training loop can feed both models the same 4-D batches; note
    that ``in_channels`` must then equal the feature's height, e.g. ``n_mfcc`` of
    :class:`emohrnet.frontend.Mfcc` or ``n_mels`` when fed log-mels). Output: logits
    ``(batch, num_classes)``; no softmax.

    Architecture (see the module docstring): ``len(widths)`` blocks of ``Conv1d -> BatchNorm1d ->
    ReLU -> MaxPool1d(pool, ceil_mode=True) -> Dropout`` (time ``frames -> ceil(frames / pool)`` per
    block), :class:`ChannelAttention`, :class:`SpatialAttention`, global average pooling over time,
    dropout, linear classifier.

    Args:
        num_classes: number of emotion classes (logits per item).
        in_channels: input channels, i.e. MFCC coefficients ``n_mfcc`` (40 by default).
        widths: output channels of the conv blocks; ``len(widths)`` is the depth (default
            :class:`CNN1DAttentionConfig`'s, ``(64, 128, 256)``, like ``dropout``'s 0.3).
        kernel_sizes: odd conv kernel widths in frames, one per block (``len == len(widths)``).
        pool: max-pooling window and stride in frames after every block (1: no pooling).
        dropout: dropout probability after every block and before the classifier, in ``[0, 1)``.
        reduction: channel-attention MLP reduction ratio (hidden ``max(1, widths[-1] // reduction)``).
        spatial_kernel: odd kernel width in frames of the spatial-attention convolution.
        channel_pooling: ``"avg_max"`` (CBAM, default) or ``"avg"`` (SE) channel descriptors.

    Attributes:
        config: the constructor arguments, JSON-safe (lists, ints, float, str);
            ``CNN1DAttention(**model.config)`` rebuilds the same architecture.

    Raises:
        ValueError: an argument is out of range (non-positive or non-int counts/widths, even kernel
            sizes, ``len(kernel_sizes) != len(widths)``, ``dropout`` outside ``[0, 1)``, unknown
            ``channel_pooling``); in ``forward``, an input that is neither ``(batch, in_channels,
            frames)`` nor ``(batch, 1, in_channels, frames)`` with non-empty sizes.

    Source: Lee & Nadeem 2025, arXiv 2507.03251 (MFCC 1D CNN with channel and spatial attention);
    Hu et al. 2018, "Squeeze-and-Excitation Networks", CVPR; Woo et al. 2018, "CBAM", ECCV.
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 40,
        widths: Sequence[int] = tuple(_BASELINE.arguments(0)["widths"]),
        kernel_sizes: Sequence[int] = (5, 5, 3),
        pool: int = 2,
        dropout: float = _BASELINE.dropout,
        reduction: int = 8,
        spatial_kernel: int = 7,
        channel_pooling: str = "avg_max",
    ) -> None:
        super().__init__()
        num_classes = _check_positive_int("num_classes", num_classes)
        in_channels = _check_positive_int("in_channels", in_channels)
        widths = _check_int_list("widths", widths)
        kernel_sizes = _check_int_list("kernel_sizes", kernel_sizes, odd=True)
        if len(kernel_sizes) != len(widths):
            raise _err(f"len(kernel_sizes) ({len(kernel_sizes)}) must equal len(widths) ({len(widths)})")
        pool = _check_positive_int("pool", pool)
        reduction = _check_positive_int("reduction", reduction)
        spatial_kernel = _check_odd_int("spatial_kernel", spatial_kernel)
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not 0.0 <= dropout < 1.0:
            raise _err(f"dropout must be a float in [0, 1), got {dropout!r}")
        if channel_pooling not in CHANNEL_POOLINGS:
            raise _err(f"channel_pooling must be one of {CHANNEL_POOLINGS}, got {channel_pooling!r}")

        self.config: dict[str, Any] = {
            "num_classes": num_classes,
            "in_channels": in_channels,
            "widths": list(widths),
            "kernel_sizes": list(kernel_sizes),
            "pool": pool,
            "dropout": float(dropout),
            "reduction": reduction,
            "spatial_kernel": spatial_kernel,
            "channel_pooling": channel_pooling,
        }
        self.in_channels = in_channels
        self.pool = pool

        blocks: list[nn.Module] = []
        prev = in_channels
        for width, k in zip(widths, kernel_sizes, strict=True):
            layers: list[nn.Module] = [
                nn.Conv1d(prev, width, k, padding=k // 2, bias=False),
                nn.BatchNorm1d(width),
                nn.ReLU(inplace=True),
            ]
            if pool > 1:
                layers.append(nn.MaxPool1d(pool, ceil_mode=True))
            layers.append(nn.Dropout(float(dropout)))
            blocks.append(nn.Sequential(*layers))
            prev = width
        self.blocks = nn.Sequential(*blocks)
        self.channel_attention = ChannelAttention(prev, reduction, channel_pooling)
        self.spatial_attention = SpatialAttention(spatial_kernel)
        self.dropout = nn.Dropout(float(dropout))
        self.classifier = nn.Linear(prev, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        """Kaiming-normal (fan_out, ReLU) block convs; BatchNorm weight 1, bias 0; PyTorch defaults elsewhere."""
        for m in self.blocks.modules():
            if isinstance(m, nn.Conv1d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm1d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def output_frames(self, frames: int) -> int:
        """Frames left after the conv blocks: ``frames`` ceil-divided by ``pool`` once per block."""
        for _ in self.blocks:
            frames = -(-frames // self.pool)
        return frames

    def _to_3d(self, x: Tensor) -> Tensor:
        """Check the input and return it as ``(batch, in_channels, frames)``."""
        if x.ndim == 4:
            if x.shape[1] != 1:
                raise _err(
                    f"a 4-D input must be (batch, 1, {self.in_channels}, frames), got shape {tuple(x.shape)}"
                )
            x = x.squeeze(1)
        if x.ndim != 3 or x.shape[1] != self.in_channels:
            raise _err(
                f"expects (batch, {self.in_channels}, frames) or (batch, 1, {self.in_channels}, frames), "
                f"got shape {tuple(x.shape)}"
            )
        if x.shape[0] < 1 or x.shape[2] < 1:
            raise _err(f"empty input of shape {tuple(x.shape)}")
        return x

    def forward_features(self, x: Tensor) -> Tensor:
        """Attention-refined feature map before pooling.

        Args:
            x: ``(batch, in_channels, frames)`` or ``(batch, 1, in_channels, frames)``.

        Returns:
            ``(batch, widths[-1], output_frames(frames))``.

        Raises:
            ValueError: ``x`` has another shape or an empty axis.
        """
        h = self.blocks(self._to_3d(x))
        return self.spatial_attention(self.channel_attention(h))

    def attention_maps(self, x: Tensor) -> dict[str, Tensor]:
        """The two attention weightings for ``x`` (for inspection; runs under ``torch.no_grad()``).

        Args:
            x: ``(batch, in_channels, frames)`` or ``(batch, 1, in_channels, frames)``.

        Returns:
            ``{"channel": (batch, widths[-1]), "spatial": (batch, output_frames(frames))}``, all in (0, 1).

        Raises:
            ValueError: ``x`` has another shape or an empty axis.
        """
        with torch.no_grad():
            h = self.blocks(self._to_3d(x))
            w_c = self.channel_attention.attention(h)
            w_s = self.spatial_attention.attention(h * w_c)
        return {"channel": w_c.squeeze(-1), "spatial": w_s.squeeze(1)}

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Logits for a batch of MFCC sequences.

        Args:
            x: ``(batch, in_channels, frames)`` or ``(batch, 1, in_channels, frames)`` float32, any
                ``frames >= 1``.
            lengths: ``(batch,)`` valid frames of each item of a zero-padded batch
                (:func:`emohrnet.inference.evaluation.eval_batches`): the global average pooling then covers only
                :meth:`output_frames` of them. ``None``: every frame is valid.

        Returns:
            logits ``(batch, num_classes)`` (no softmax).

        Raises:
            ValueError: ``x`` has another shape or an empty axis.

        Note:
            In training mode BatchNorm needs more than one value per channel, so a batch of one
            1-frame item fails in PyTorch's BatchNorm (``batch * frames >= 2`` is needed in every block).
        """
        features = self.forward_features(x)
        pooled = features.mean(dim=-1) if lengths is None else masked_mean(features, self.output_frames(lengths))
        return self.classifier(self.dropout(pooled))


SPEC = ModelSpec(
    "cnn1d_attention", CNN1DAttention, "mfcc", "Lee & Nadeem 2025, 1D CNN with channel and spatial attention",
    CNN1DAttentionConfig, spec_augment=False,
    space={"lr": LR_RANGE, "cnn_width": Choice((32, 64, 128)), "dropout": Uniform(0.0, 0.5),
           "aug_prob": Uniform(0.0, 1.0)},
    baseline={"lr": 1e-3, **asdict(CNN1DAttentionConfig()), "aug_prob": 0.5},
    baseline_note="cnn1d_attention baseline: lr 1e-3, widths 64/128/256, dropout 0.3, aug_prob 0.5 (the "
                  "paper's exact hyperparameters were not available)",
    levers=dict(RECIPE_LEVERS), levers_off=dict(RECIPE_LEVERS_OFF),
    order=1)
"""The 1D CNN in the registry (:mod:`emohrnet.models.registry`)."""
