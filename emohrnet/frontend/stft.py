"""What the two front ends share: STFT and mel settings over 16 kHz audio (:class:`StftSettings`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar, NamedTuple

import torch

from emohrnet.io.audio import SAMPLE_RATE


@dataclass(frozen=True)
class StftSettings:
    """What the log-mel and MFCC front ends share: a centered STFT over ``sample_rate``-Hz audio with
    ``win_length``-sample windows, an ``n_fft``-point FFT and a ``hop_length``-sample hop, mel bands
    from ``f_min`` to ``f_max`` Hz, and a dict form stored in manifests and checkpoints.

    The defaults are emohrnet's speech settings (the papers give none): 16 kHz, 25 ms Hann windows
    (400 samples) every 10 ms (160 samples, so 100 frames per second), a 512-point FFT, mel bands over
    0-8000 Hz. Subclasses are frozen dataclasses that add ``n_mels`` and their own fields
    (:class:`~.logmel.FeatureConfig`, :class:`~.mfcc.MfccConfig`) and name their front end's ``kind``
    (the registry key, recorded as the shards' ``feature_kind``).
    """

    kind: ClassVar[str]

    sample_rate: int = SAMPLE_RATE
    n_fft: int = 512
    win_length: int = 400
    hop_length: int = 160
    f_min: float = 0.0
    f_max: float = 8000.0

    def _check_stft(self, prefix: str = "") -> None:
        """Raises:
            ValueError: ``win_length > n_fft`` or not ``0 <= f_min < f_max <= sample_rate / 2``
                (the message starts with ``prefix``).
        """
        if self.win_length > self.n_fft:
            raise ValueError(f"{prefix}win_length {self.win_length} exceeds n_fft {self.n_fft}")
        if not 0 <= self.f_min < self.f_max <= self.sample_rate / 2:
            raise ValueError(f"{prefix}need 0 <= f_min < f_max <= sample_rate/2 Hz, got {self.f_min}, {self.f_max}")

    def mel_kwargs(self) -> dict[str, Any]:
        """The mel power spectrogram both front ends start from, as ``torchaudio.transforms.MelSpectrogram``
        arguments (all but ``sample_rate``): a centered power (``|X|^2``) STFT with a Hann window,
        Slaney-scale mel bands with Slaney area normalization."""
        return {"n_fft": self.n_fft, "win_length": self.win_length, "hop_length": self.hop_length,
                "f_min": self.f_min, "f_max": self.f_max, "n_mels": self.n_mels, "window_fn": torch.hann_window,
                "power": 2.0, "center": True, "norm": "slaney", "mel_scale": "slaney"}

    @property
    def n_features(self) -> int:
        """Feature rows per frame of the front end's output (``n_mels``; MFCC: ``n_mfcc``)."""
        return self.n_mels

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


class FrontEnd(NamedTuple):
    """A registered front end (:data:`emohrnet.frontend.FRONT_ENDS`): its ``kind`` (the registry key,
    recorded as the shards' ``feature_kind``), its parameters' class and its ``torch.nn.Module`` (waveform
    ``(samples,)`` at 16 kHz to ``(n_features, frames)``). Each front-end module declares its ``SPEC``."""

    kind: str
    config: type[StftSettings]
    module: type[torch.nn.Module]
