"""The front end against independent references: the log-mel spectrogram against a NumPy
implementation written here from its definition (centered STFT with a periodic Hann window, power
spectrum, Slaney mel filters with Slaney area normalisation, natural log with a floor, per-utterance
standardisation), and the decoder's downmix and resampling against the signals written to disk."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from emohrnet.frontend import FeatureConfig, LogMel
from emohrnet.io.audio import load_audio

RATE = 16_000


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (Auditory Toolbox): linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    linear = 3.0 * f / 200.0
    return np.where(f < 1000.0, linear, 15.0 + 27.0 * np.log(np.maximum(f, 1e-9) / 1000.0) / np.log(6.4))


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    return np.where(m < 15.0, 200.0 * m / 3.0, 1000.0 * np.exp(np.log(6.4) * (m - 15.0) / 27.0))


def _slaney_filters(c: FeatureConfig) -> np.ndarray:
    """``(n_mels, n_fft // 2 + 1)`` triangles on the FFT bins, each scaled to unit area in Hz (x2)."""
    bins = np.linspace(0.0, c.sample_rate / 2, c.n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(c.f_min), _hz_to_mel(c.f_max), c.n_mels + 2))
    filters = np.zeros((c.n_mels, bins.size))
    for m in range(c.n_mels):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        rising, falling = (bins - lo) / (mid - lo), (hi - bins) / (hi - mid)
        filters[m] = np.maximum(0.0, np.minimum(rising, falling)) * 2.0 / (hi - lo)
    return filters


def reference_logmel(wave: np.ndarray, c: FeatureConfig) -> np.ndarray:
    """The normalised log-mel of ``wave`` (float64), from the definitions above."""
    pad = c.n_fft // 2
    padded = np.pad(wave.astype(np.float64), pad, mode="reflect")
    n = np.arange(c.win_length)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * n / c.win_length)  # periodic Hann
    window = np.zeros(c.n_fft)
    start = (c.n_fft - c.win_length) // 2
    window[start:start + c.win_length] = hann  # centred in the FFT frame
    frames = 1 + (padded.size - c.n_fft) // c.hop_length
    power = np.stack([np.abs(np.fft.rfft(padded[i * c.hop_length:i * c.hop_length + c.n_fft] * window)) ** 2
                      for i in range(frames)], axis=1)
    spec = np.log(_slaney_filters(c) @ power + c.log_floor)
    return (spec - spec.mean()) / spec.std(ddof=1)


@pytest.mark.parametrize("config", [FeatureConfig(), FeatureConfig(n_mels=64, f_min=50.0, f_max=7600.0)],
                         ids=["default", "64-bands"])
def test_logmel_matches_an_independent_numpy_implementation(config):
    rng = np.random.default_rng(0)
    t = np.arange(RATE) / RATE
    wave = (0.4 * np.sin(2 * np.pi * (200 * t + 1500 * t ** 2)) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    ours = LogMel(config)(torch.from_numpy(wave)).double().numpy()
    ref = reference_logmel(wave, config)
    assert ours.shape == ref.shape == (config.n_mels, config.frames(wave.size))
    # float32 STFT against float64: the standardised features agree to about 1e-4
    assert np.abs(ours - ref).max() < 2e-3, np.abs(ours - ref).max()


def test_stereo_is_averaged_to_mono(tmp_path):
    t = np.arange(RATE // 2) / RATE
    left, right = 0.5 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 1250 * t)
    sf.write(tmp_path / "stereo.wav", np.stack([left, right], axis=1), RATE, subtype="FLOAT")
    wave = load_audio(tmp_path / "stereo.wav").numpy()
    assert wave.shape == (t.size,)
    assert np.abs(wave - (left + right) / 2).max() < 1e-6  # not one channel, not their sum


@pytest.mark.parametrize("rate", [8_000, 22_050, 44_100, 48_000])
def test_resampling_keeps_a_tone_at_its_frequency(tmp_path, rate):
    seconds, tone = 1.0, 1000.0
    t = np.arange(int(rate * seconds)) / rate
    sf.write(tmp_path / "tone.wav", 0.5 * np.sin(2 * np.pi * tone * t), rate, subtype="PCM_16")
    wave = load_audio(tmp_path / "tone.wav", RATE).numpy()
    assert abs(wave.size - seconds * RATE) <= 1
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(wave.size)))
    peak = np.fft.rfftfreq(wave.size, 1 / RATE)[spectrum.argmax()]
    assert abs(peak - tone) <= 2.0, peak  # 1 Hz bins: a wrong rate would move it by hundreds of Hz
    assert np.abs(wave).max() == pytest.approx(0.5, abs=0.02)
