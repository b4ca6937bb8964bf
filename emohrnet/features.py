"""The front end: normalized log-mel spectrograms (EmoHRNet, Muppidi & Radfar 2025, sec. 3.1).

The paper gives no STFT parameters; emohrnet uses the usual speech settings: 25 ms Hann windows
(400 samples at 16 kHz) every 10 ms (160 samples), a 512-point FFT, 128 mel bands over
0-8000 Hz, natural log of the power with a 1e-6 floor, then per-utterance mean/variance
normalization over the whole spectrogram (one mean and one standard deviation per utterance, so
the spectral tilt that carries emotion survives). All of it is recorded in the shard manifest.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torchaudio.transforms as T

from .audio import SAMPLE_RATE


class StftSettings:
    """What the log-mel and MFCC front ends share: a centered STFT over ``sample_rate``-Hz audio with
    ``win_length``-sample windows, an ``n_fft``-point FFT and a ``hop_length``-sample hop, mel bands
    from ``f_min`` to ``f_max`` Hz, and a dict form stored in manifests and checkpoints.

    Subclasses are frozen dataclasses with those fields (:class:`FeatureConfig`,
    :class:`emohrnet.mfcc.MfccConfig`).
    """

    sample_rate: int
    n_fft: int
    win_length: int
    hop_length: int
    f_min: float
    f_max: float

    def _check_stft(self, prefix: str = "") -> None:
        """Raises:
            ValueError: ``win_length > n_fft`` or not ``0 <= f_min < f_max <= sample_rate / 2``
                (the message starts with ``prefix``).
        """
        if self.win_length > self.n_fft:
            raise ValueError(f"{prefix}win_length {self.win_length} exceeds n_fft {self.n_fft}")
        if not 0 <= self.f_min < self.f_max <= self.sample_rate / 2:
            raise ValueError(f"{prefix}need 0 <= f_min < f_max <= sample_rate/2 Hz, got {self.f_min}, {self.f_max}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of the parameters (manifests and checkpoints store this)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        """Inverse of :meth:`to_dict`.

        Raises:
            TypeError: an unknown key. ValueError: an invalid value (see the class docstring).
        """
        return cls(**data)

    def frames(self, samples: int) -> int:
        """Number of frames a waveform of ``samples`` samples gives (centered STFT)."""
        return samples // self.hop_length + 1


@dataclass(frozen=True)
class FeatureConfig(StftSettings):
    """Parameters of the log-mel front end.

    Attributes:
        sample_rate: input rate in Hz.
        n_fft: FFT size in samples.
        win_length: window length in samples (400 = 25 ms at 16 kHz).
        hop_length: hop in samples (160 = 10 ms at 16 kHz, so 100 frames per second).
        n_mels: number of mel bands.
        f_min: lowest mel band edge in Hz.
        f_max: highest mel band edge in Hz.
        window: window function (``"hann"``).
        log_floor: added to the mel power before the natural log.
        normalization: ``"utterance"`` (zero mean, unit variance per utterance) or ``"none"``.
    """

    sample_rate: int = SAMPLE_RATE
    n_fft: int = 512
    win_length: int = 400
    hop_length: int = 160
    n_mels: int = 128
    f_min: float = 0.0
    f_max: float = 8000.0
    window: str = "hann"
    log_floor: float = 1e-6
    normalization: str = "utterance"

    def __post_init__(self) -> None:
        if self.window != "hann":
            raise ValueError(f"window {self.window!r} is not supported; use 'hann'")
        if self.normalization not in ("utterance", "none"):
            raise ValueError(f"normalization {self.normalization!r}: use 'utterance' or 'none'")
        self._check_stft()


class LogMel(torch.nn.Module):
    """Waveform to normalized log-mel spectrogram.

    Input ``(samples,)`` or ``(batch, samples)`` float32 at ``config.sample_rate``; output
    ``(n_mels, frames)`` or ``(batch, n_mels, frames)`` with ``frames = samples // hop + 1``.
    """

    def __init__(self, config: FeatureConfig | None = None) -> None:
        super().__init__()
        self.config = config or FeatureConfig()
        c = self.config
        self.mel = T.MelSpectrogram(
            sample_rate=c.sample_rate,
            n_fft=c.n_fft,
            win_length=c.win_length,
            hop_length=c.hop_length,
            f_min=c.f_min,
            f_max=c.f_max,
            n_mels=c.n_mels,
            window_fn=torch.hann_window,
            power=2.0,
            center=True,
            norm="slaney",
            mel_scale="slaney",
        )

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """Compute the features; see the class docstring for shapes."""
        spec = torch.log(self.mel(wave) + self.config.log_floor)
        if self.config.normalization == "utterance":
            dims = (-2, -1)
            mean = spec.mean(dim=dims, keepdim=True)
            std = spec.std(dim=dims, keepdim=True).clamp_min(1e-5)
            spec = (spec - mean) / std
        return spec
