"""Training-time augmentation: SpecAugment masks and random time shifts (training batches only).

EmoHRNet (Muppidi & Radfar 2025, sec. 3.4) augments with SpecAugment frequency masks of width
``f ~ U(0, F)`` and time masks of width ``t ~ U(0, T)`` (Park et al. 2019, "SpecAugment",
Interspeech) plus random time shifts. The paper gives no values of F and T, so the defaults are
SpecAugment's LibriSpeech-basic (LB) policy: one frequency mask with F = 27 and one time mask
with T = 100 frames (time warping is not used).

The time shift is the random placement of each training utterance in its fixed-length training
segment: a longer utterance is cropped at a random offset, a shorter one is zero-padded at a
random offset (zero is the utterance mean after normalization).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torchaudio.transforms as T

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


class SpecAugment(torch.nn.Module):
    """Frequency and time masking with independent masks per example.

    Input and output ``(batch, 1, n_mels, frames)``; masked cells are set to 0. Uses
    ``torchaudio.transforms.FrequencyMasking``/``TimeMasking`` (widths drawn uniformly from
    ``[0, F)`` / ``[0, T)``), so it draws from torch's global random generator.
    """

    def __init__(self, config: AugmentConfig) -> None:
        super().__init__()
        self.config = config
        masks: list[torch.nn.Module] = []
        if config.freq_mask > 0:
            masks += [T.FrequencyMasking(config.freq_mask, iid_masks=True) for _ in range(config.n_freq_masks)]
        if config.time_mask > 0:
            masks += [T.TimeMasking(config.time_mask, iid_masks=True) for _ in range(config.n_time_masks)]
        self.masks = torch.nn.Sequential(*masks)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """Mask a batch; see the class docstring for shapes."""
        if batch.dim() != 4:
            raise ValueError(f"SpecAugment expects (batch, 1, n_mels, frames), got {tuple(batch.shape)}")
        return self.masks(batch) if len(self.masks) else batch


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
