"""The front end: normalized log-mel spectrograms (EmoHRNet, Muppidi & Radfar 2025, sec. 3.1).

The paper gives no STFT parameters; emohrnet uses the usual speech settings: 25 ms Hann windows
(400 samples at 16 kHz) every 10 ms (160 samples), a 512-point FFT, 128 mel bands over
0-8000 Hz, natural log of the power with a 1e-6 floor, then per-utterance mean/variance
normalization over the whole spectrogram (one mean and one standard deviation per utterance, so
the spectral tilt that carries emotion survives). All of it is recorded in the shard manifest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torchaudio.transforms as T

from emohrnet.frontend.stft import FrontEnd, StftSettings


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

    kind: ClassVar[str] = "logmel"
    n_mels: int = 128
    window: str = "hann"
    log_floor: float = 1e-6
    normalization: str = "utterance"

    def __post_init__(self) -> None:
        if self.window != "hann":
            raise ValueError(f"window {self.window!r} is not supported; use 'hann'")
        if self.normalization not in ("utterance", "none"):
            raise ValueError(f"normalization {self.normalization!r}: use 'utterance' or 'none'")
        self._check_stft()

    def recipe(self) -> str:
        """How to compute these features without emohrnet, in words (an export's sidecar states it)."""
        norm = ("then subtract the mean and divide by the standard deviation (unbiased, floored at 1e-5) over "
                "the whole spectrogram of the utterance" if self.normalization == "utterance" else "no normalization")
        return (f"mono audio at {self.sample_rate} Hz; power mel spectrogram (torchaudio MelSpectrogram: "
                f"n_fft={self.n_fft}, win_length={self.win_length}, hop_length={self.hop_length}, {self.window} "
                f"window, center=True with reflect padding, {self.n_mels} mel bands {self.f_min}-{self.f_max} Hz, "
                f"slaney mel scale and slaney norm); natural log of (power + {self.log_floor}); {norm}; "
                "frames = samples // hop_length + 1")


class LogMel(torch.nn.Module):
    """Waveform to normalized log-mel spectrogram.

    Input ``(samples,)`` or ``(batch, samples)`` float32 at ``config.sample_rate``; output
    ``(n_mels, frames)`` or ``(batch, n_mels, frames)`` with ``frames = samples // hop + 1``.
    """

    def __init__(self, config: FeatureConfig | None = None) -> None:
        super().__init__()
        self.config = config or FeatureConfig()
        c = self.config
        self.mel = T.MelSpectrogram(sample_rate=c.sample_rate, **c.mel_kwargs())

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """Compute the features; see the class docstring for shapes."""
        spec = torch.log(self.mel(wave) + self.config.log_floor)
        if self.config.normalization == "utterance":
            dims = (-2, -1)
            mean = spec.mean(dim=dims, keepdim=True)
            std = spec.std(dim=dims, keepdim=True).clamp_min(1e-5)
            spec = (spec - mean) / std
        return spec


SPEC = FrontEnd(FeatureConfig.kind, FeatureConfig, LogMel)
"""This front end's registry entry (:data:`emohrnet.frontend.FRONT_ENDS`)."""
