"""Decoding audio files into 16 kHz mono waveforms.

Files are decoded with ``soundfile`` (libsndfile: WAV, FLAC, OGG, ...), mixed to mono by
averaging channels and resampled with ``torchaudio.functional.resample`` (windowed sinc).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

SAMPLE_RATE = 16_000
"""Sample rate (Hz) of every waveform emohrnet works on."""

SILENCE_PEAK = 1e-4
"""A file whose peak absolute amplitude (full scale 1.0) is below this (-80 dBFS) is silent."""


class AudioError(ValueError):
    """An audio file that cannot be used: unreadable, empty, silent or not finite.

    Attributes:
        path: the file.
        reason: what is wrong with it, short (kept in shard manifests).
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """Decode an audio file into a mono waveform at ``sample_rate``.

    Args:
        path: a file soundfile can read (``.wav`` or ``.flac`` at any rate and channel count).
        sample_rate: output rate in Hz.

    Returns:
        float32 tensor of shape ``(samples,)``, full scale 1.0.

    Raises:
        OSError: the file cannot be read at all (permissions, vanished, a disk error): an I/O error,
            not bad audio (its ``strerror`` says which); the same file may load once it is readable.
        AudioError: the file cannot be decoded (corrupt, not audio), has no samples, is silent
            (peak below :data:`SILENCE_PEAK`) or holds non-finite values.
    """
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        check_readable(path)  # libsndfile reports an unreadable file as "System error": say which
        raise AudioError(path, f"cannot decode audio ({err}); is it a real WAV/FLAC file?") from None
    if data.shape[0] == 0:
        raise AudioError(path, "empty: no samples")
    mono = data.mean(axis=1)
    if not np.isfinite(mono).all():
        raise AudioError(path, "holds NaN or infinite samples")
    if float(np.abs(mono).max()) < SILENCE_PEAK:
        raise AudioError(path, "silent: peak below -80 dBFS")
    wave = torch.from_numpy(np.ascontiguousarray(mono))
    if rate != sample_rate:
        wave = AF.resample(wave, orig_freq=int(rate), new_freq=sample_rate)
    return wave


def check_readable(path: str | Path) -> None:
    """Open ``path`` and read its first byte, without decoding.

    Raises:
        OSError: what opening or reading it raised (permissions, no such file, a disk error).
    """
    with open(path, "rb") as stream:
        stream.read(1)
