"""MFCC front end for :class:`emohrnet.models.CNN1DAttention` (Lee & Nadeem 2025, arXiv 2507.03251).

The paper feeds MFCCs of the (augmented) audio to its 1D CNN. The parts of the paper consulted for
emohrnet (abstract and overview) give no STFT or MFCC parameters, so these are emohrnet's choices,
kept consistent with the log-mel front end (:mod:`emohrnet.frontend.logmel`) so that both models see the
same frames:

- 16 kHz audio, 25 ms Hann windows (400 samples) every 10 ms (160 samples), 512-point FFT, i.e.
  100 frames per second and ``frames = samples // 160 + 1`` (centered STFT);
- 64 mel bands over 0-8000 Hz, Slaney mel scale and Slaney area normalization (librosa's defaults;
  librosa's ``mfcc`` is what most of this SER literature uses); power spectrogram in dB with an 80 dB
  dynamic-range floor (librosa's ``power_to_db(top_db=80)``), taken *per utterance*;
- 40 coefficients of an orthonormal DCT-II (40 is the usual SER choice; 13 is the ASR one);
- per-utterance, per-coefficient mean/variance normalization over time (cepstral mean and variance
  normalization, CMVN), which removes the channel's constant spectral colouring from each coefficient.

Note on batches: ``torchaudio.transforms.MFCC`` applies its 80 dB floor relative to the maximum of
the *whole* 3-D input, so a quiet utterance batched with a loud one gets different coefficients than
alone. :class:`Mfcc` gives every utterance its own floor (a batch equals the stacked single results).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import ClassVar

import torch
import torchaudio.transforms as T

from emohrnet.frontend.stft import FrontEnd, StftSettings

MFCC_NORMALIZATIONS = ("utterance", "none")
"""Normalizations of :class:`Mfcc`: per-utterance per-coefficient CMVN, or none."""


def _positive_int(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Integral) and value > 0  # type: ignore[operator]


@dataclass(frozen=True)
class MfccConfig(StftSettings):
    """Parameters of the MFCC front end (see the module docstring for why these values).

    Attributes:
        sample_rate: input rate in Hz.
        n_mfcc: number of cepstral coefficients kept (DCT-II outputs 0..n_mfcc-1, c0 included).
        n_fft: FFT size in samples.
        win_length: Hann window length in samples (400 = 25 ms at 16 kHz); ``<= n_fft``.
        hop_length: hop in samples (160 = 10 ms at 16 kHz, so 100 frames per second).
        n_mels: number of mel bands; ``>= n_mfcc`` (the DCT cannot give more coefficients than bands).
        f_min: lowest mel band edge in Hz.
        f_max: highest mel band edge in Hz, ``<= sample_rate / 2``.
        top_db: dynamic range in dB kept below each utterance's loudest mel cell (``None``: no floor).
        normalization: ``"utterance"`` (each coefficient zero mean, unit variance over the utterance's
            frames) or ``"none"``.

    Raises:
        ValueError: (on construction) a non-positive or non-int size, ``win_length > n_fft``,
            ``n_mels < n_mfcc``, ``not 0 <= f_min < f_max <= sample_rate / 2``, a non-positive
            ``top_db`` or an unknown ``normalization``.
    """

    kind: ClassVar[str] = "mfcc"
    n_mfcc: int = 40
    n_mels: int = 64
    top_db: float | None = 80.0
    normalization: str = "utterance"

    def __post_init__(self) -> None:
        for name in ("sample_rate", "n_mfcc", "n_fft", "win_length", "hop_length", "n_mels"):
            if not _positive_int(getattr(self, name)):
                raise ValueError(f"MfccConfig: {name} must be a positive int, got {getattr(self, name)!r}")
        self._check_stft("MfccConfig: ")
        if self.n_mels < self.n_mfcc:
            raise ValueError(f"MfccConfig: n_mels ({self.n_mels}) must be >= n_mfcc ({self.n_mfcc})")
        if self.top_db is not None and not (isinstance(self.top_db, numbers.Real) and self.top_db > 0):
            raise ValueError(f"MfccConfig: top_db must be a positive number of dB or None, got {self.top_db!r}")
        if self.normalization not in MFCC_NORMALIZATIONS:
            raise ValueError(f"MfccConfig: normalization {self.normalization!r}: use 'utterance' or 'none'")

    @property
    def n_features(self) -> int:
        """Feature rows per frame: ``n_mfcc``."""
        return self.n_mfcc

    def recipe(self) -> str:
        """How to compute these features, in words (an export's sidecar states it)."""
        return (f"mono audio at {self.sample_rate} Hz; emohrnet.frontend.Mfcc with the parameters in 'features' "
                f"({self.n_mfcc} MFCCs from {self.n_mels} mel bands, hop {self.hop_length}); "
                "frames = samples // hop_length + 1")


class Mfcc(torch.nn.Module):
    """Waveform to (normalized) MFCCs, wrapping ``torchaudio.transforms.MFCC``.

    Input ``(samples,)`` or ``(batch, samples)`` float32 at ``config.sample_rate``; output
    ``(n_mfcc, frames)`` or ``(batch, n_mfcc, frames)`` with ``frames = samples // hop_length + 1``.
    Each utterance is processed independently (own ``top_db`` floor, own normalization), so a batch
    gives the same result as its items one by one. Feed ``output.unsqueeze(-3)`` where a
    ``(batch, 1, n_mfcc, frames)`` layout is wanted (:class:`emohrnet.models.CNN1DAttention` takes
    both layouts).

    Pipeline: Hann-windowed power STFT -> Slaney mel filterbank -> ``10 log10`` (dB, floor
    ``max - top_db`` per utterance) -> orthonormal DCT-II -> first ``n_mfcc`` coefficients ->
    optional per-coefficient normalization over time (population std, clamped at 1e-5, so a 1-frame
    utterance gives zeros rather than NaN).

    Args:
        config: the parameters; ``None`` means ``MfccConfig()``.

    Raises:
        ValueError: (in ``forward``) an input that is not 1-D or 2-D, or has fewer samples than
            ``n_fft // 2 + 1`` (the centered STFT reflect-pads by ``n_fft // 2``).

    Source: Lee & Nadeem 2025, arXiv 2507.03251 (MFCC input); Davis & Mermelstein 1980 (MFCCs).
    """

    def __init__(self, config: MfccConfig | None = None) -> None:
        super().__init__()
        self.config = config or MfccConfig()
        c = self.config
        self.mfcc = T.MFCC(
            sample_rate=c.sample_rate,
            n_mfcc=c.n_mfcc,
            dct_type=2,
            norm="ortho",
            log_mels=False,
            melkwargs=c.mel_kwargs(),
        )
        # torchaudio's MFCC keeps top_db on its AmplitudeToDB; None disables the floor.
        self.mfcc.amplitude_to_DB.top_db = None if c.top_db is None else float(c.top_db)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """Compute the MFCCs; see the class docstring for shapes."""
        if wave.dim() not in (1, 2):
            raise ValueError(f"Mfcc expects (samples,) or (batch, samples), got shape {tuple(wave.shape)}")
        if wave.shape[-1] <= self.config.n_fft // 2:
            raise ValueError(
                f"Mfcc: {wave.shape[-1]} samples are too few for n_fft {self.config.n_fft} "
                f"(need at least {self.config.n_fft // 2 + 1})"
            )
        # (..., 1, samples) -> mel (..., 1, n_mels, frames): AmplitudeToDB then takes its top_db
        # maximum over each utterance's own (1, n_mels, frames) block instead of over the whole batch.
        coeffs = self.mfcc(wave.unsqueeze(-2)).squeeze(-3)
        if self.config.normalization == "utterance":
            mean = coeffs.mean(dim=-1, keepdim=True)
            std = coeffs.std(dim=-1, keepdim=True, correction=0).clamp_min(1e-5)
            coeffs = (coeffs - mean) / std
        return coeffs


SPEC = FrontEnd(MfccConfig.kind, MfccConfig, Mfcc)
"""This front end's registry entry (:data:`emohrnet.frontend.FRONT_ENDS`)."""
