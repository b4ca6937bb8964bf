"""Training-time augmentation: SpecAugment masks and random time shifts (training batches only).

EmoHRNet (Muppidi & Radfar 2025, sec. 3.4) augments with SpecAugment frequency masks of width
``f ~ U(0, F)`` and time masks of width ``t ~ U(0, T)`` (Park et al. 2019, "SpecAugment",
Interspeech) plus random time shifts. The paper gives no values of F and T, so the defaults are
SpecAugment's LibriSpeech-basic (LB) policy: one frequency mask with F = 27 and one time mask
with T = 100 frames (time warping is not used).

The time shift is the random placement of each training utterance in its fixed-length training
segment: a longer utterance is cropped at a random offset, a shorter one is zero-padded at a
random offset (zero is the utterance mean after normalization).

Both run on whole batches on the batch's device: :class:`SpecAugment` draws every example's masks
at once and applies them with a multiply, and :class:`emohrnet.data.loading.DeviceBatches` cuts every
example's shifted segment with one gather. :func:`random_segment` is the per-example reference.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

LB_FREQ_MASK = 27
"""SpecAugment LibriSpeech-basic frequency-mask parameter F (mel bands)."""
LB_TIME_MASK = 100
"""SpecAugment LibriSpeech-basic time-mask parameter T (frames)."""


@dataclass(frozen=True)
class AugmentConfig:
    """SpecAugment and time-shift settings.

    Attributes:
        freq_mask: F, the largest frequency-mask width in mel bands (0 disables).
        time_mask: T, the largest time-mask width in frames (0 disables).
        n_freq_masks: frequency masks per example.
        n_time_masks: time masks per example.
        time_shift: place each training utterance at a random offset in its segment.
    """

    freq_mask: int = LB_FREQ_MASK
    time_mask: int = LB_TIME_MASK
    n_freq_masks: int = 1
    n_time_masks: int = 1
    time_shift: bool = True

    def to_dict(self) -> dict:
        """JSON-safe dict of the settings."""
        return asdict(self)


def band_keep_mask(batch: int, size: int, max_width: int, n_masks: int, device: torch.device | str | None = None,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Keep-mask of ``n_masks`` random bands per example along one axis, drawn for the whole batch at once.

    Each band has width ``f`` uniform on ``{0, ..., max_width - 1}`` (SpecAugment's ``f ~ U(0, F)``
    rounded down, as in ``torchaudio.transforms.FrequencyMasking``), clipped to ``size``, and starts at
    ``f0`` uniform on ``{0, ..., size - f}`` (Park et al. 2019, sec. 2). Built from broadcast comparisons of
    ``arange(size)`` with the start and end of every band: no Python loop over examples.

    Args:
        batch: number of examples ``B``.
        size: length of the axis (``n_mels`` or frames).
        max_width: ``F`` (or ``T``); 0 or ``n_masks == 0`` masks nothing.
        n_masks: bands per example (they may overlap).
        device: where the mask is returned.
        generator: draws from this generator (on its own device, then moved) instead of the default
            generator of ``device``.

    Returns:
        ``(B, size)`` bool, ``True`` where the cell is kept.
    """
    device = torch.device(device) if device is not None else torch.device("cpu")
    if max_width <= 0 or n_masks <= 0 or size <= 0:
        return torch.ones(batch, size, dtype=torch.bool, device=device)
    draw_device = generator.device if generator is not None else device
    u = torch.rand(2, batch, n_masks, generator=generator, device=draw_device).to(device)
    # widths in {0..F-1}; min() guards float rounding of u * F up to F, and clips to the axis
    width = (u[0] * max_width).long().clamp_(max=min(max_width - 1, size))
    start = torch.minimum((u[1] * (size - width + 1)).long(), size - width)
    pos = torch.arange(size, device=device)
    inside = (pos >= start.unsqueeze(-1)) & (pos < (start + width).unsqueeze(-1))  # (B, n_masks, size)
    return ~inside.any(dim=1)


class SpecAugment(torch.nn.Module):
    """Frequency and time masking with independent masks per example, drawn for the batch at once.

    Input and output ``(batch, channels, n_mels, frames)`` (``channels`` is 1 here); masked cells are
    set to 0 (the mean of normalized features) by multiplying with two broadcast keep-masks,
    ``(B, 1, n_mels, 1)`` and ``(B, 1, 1, frames)``, in the input's dtype and on its device (float32,
    float16, bfloat16; CPU or GPU). Per example: ``n_freq_masks`` frequency bands of width
    ``f ~ U{0..F-1}`` and ``n_time_masks`` time bands of width ``t ~ U{0..T-1}`` (:func:`band_keep_mask`;
    Park et al. 2019, "SpecAugment", sec. 2; EmoHRNet, Muppidi & Radfar 2025, sec. 3.4). Widths above
    the axis length are clipped to it. All channels of an example share its masks. Cells holding NaN
    stay NaN (they are multiplied by 0).

    Args:
        config: F, T and the numbers of masks (:class:`AugmentConfig`).
        generator: random generator of the masks (for reproducible masks); by default the global
            generator of the batch's device (``torch.manual_seed`` seeds it).
        inplace: mask the input tensor itself (saves a batch-sized allocation and a pass over it;
            for batches nothing else reads, as in training) instead of returning a new tensor.

    Raises:
        ValueError: (in ``forward``) the input is not 4-D.
    """

    def __init__(self, config: AugmentConfig, generator: torch.Generator | None = None,
                 inplace: bool = False) -> None:
        super().__init__()
        self.config = config
        self.generator = generator
        self.inplace = inplace

    def forward(self, batch: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Mask a batch (a new tensor, or the input itself with ``inplace``); see the class docstring.

        Args:
            batch: ``(B, C, n_mels, frames)``.
            generator: overrides the module's generator for this call.

        Raises:
            ValueError: ``batch`` is not 4-D.
        """
        if batch.dim() != 4:
            raise ValueError(f"SpecAugment expects (batch, 1, n_mels, frames), got {tuple(batch.shape)}")
        cfg = self.config
        use_f = cfg.freq_mask > 0 and cfg.n_freq_masks > 0
        use_t = cfg.time_mask > 0 and cfg.n_time_masks > 0
        if not (use_f or use_t):
            return batch
        g = generator if generator is not None else self.generator
        b, _, n_mels, frames = batch.shape
        # two thin masks, (B, 1, n_mels, 1) and (B, 1, 1, frames), multiplied in turn (the second in
        # place): cheaper on CPU than materializing their (B, 1, n_mels, frames) product first
        out = batch
        if use_f:
            keep = band_keep_mask(b, n_mels, cfg.freq_mask, cfg.n_freq_masks, batch.device, g)
            keep = keep.to(batch.dtype)[:, None, :, None]
            out = out.mul_(keep) if self.inplace else out * keep
        if use_t:
            keep = band_keep_mask(b, frames, cfg.time_mask, cfg.n_time_masks, batch.device, g)
            keep = keep.to(batch.dtype)[:, None, None, :]
            out = out.mul_(keep) if (self.inplace or out is not batch) else out * keep
        return out


def place_segment(mel: torch.Tensor, frames: int, offset: int) -> torch.Tensor:
    """Cut or pad a spectrogram to ``frames`` frames.

    Args:
        mel: ``(n_mels, n)``.
        frames: segment length.
        offset: for ``n >= frames``, the first frame kept (``0 <= offset <= n - frames``); for
            ``n < frames``, where the utterance starts in the zero-padded segment
            (``0 <= offset <= frames - n``).

    Returns:
        ``(n_mels, frames)``.
    """
    n = mel.shape[-1]
    if n >= frames:
        return mel[:, offset:offset + frames]
    out = mel.new_zeros(mel.shape[0], frames)
    out[:, offset:offset + n] = mel
    return out


def random_segment(mel: torch.Tensor, frames: int, generator: torch.Generator | None, shift: bool = True
                   ) -> torch.Tensor:
    """The random time shift: :func:`place_segment` at a uniformly random offset
    (``shift=False``: offset 0, i.e. the start of the utterance)."""
    slack = abs(mel.shape[-1] - frames)
    offset = int(torch.randint(0, slack + 1, (1,), generator=generator)) if shift and slack else 0
    return place_segment(mel, frames, offset)
