"""Tests for emohrnet.frontend.mfcc (the MFCC front end) and emohrnet.data.wave_augment (training-time waveform
augmentation: speed, pitch, noise), the inputs of CNN1DAttention (Lee & Nadeem 2025, arXiv 2507.03251)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torchaudio.functional as AF
from scipy.fft import dct

from emohrnet.data.wave_augment import (
    PITCH_N_FFT,
    WaveAugmentConfig,
    add_white_noise,
    augment_wave,
    augmented_copies,
    augmented_key,
    change_speed,
    origin_key,
    shift_pitch,
)
from emohrnet.frontend import Mfcc, MfccConfig

SR = 16_000

pytestmark = pytest.mark.usefixtures("one_thread")


def tone(freq: float, seconds: float = 2.0, amp: float = 0.5) -> torch.Tensor:
    t = torch.arange(int(seconds * SR), dtype=torch.float64) / SR
    return (amp * torch.sin(2 * math.pi * freq * t)).float()


def speechlike(seconds: float = 1.5, seed: int = 0) -> torch.Tensor:
    """Harmonics of a 150 Hz voice under a syllable-rate (4 Hz) envelope, plus a little noise."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * SR)) / SR
    voice = sum(torch.sin(2 * math.pi * 150 * k * t) / k for k in range(1, 12))
    env = 0.5 + 0.5 * torch.sin(2 * math.pi * 4 * t) ** 2
    return (0.2 * env * voice + 0.005 * torch.randn(t.shape, generator=g)).float()


def peak_hz(wave: torch.Tensor, trim: int = 2000) -> float:
    """Frequency (Hz) of the largest FFT peak, Hann window, 8x zero padding, parabolic interpolation."""
    w = wave[trim:-trim].double()
    w = w * torch.hann_window(len(w), dtype=torch.float64)
    n = 8 * len(w)
    mag = torch.fft.rfft(w, n=n).abs()
    k = int(mag.argmax())
    a, b, c = (float(v) for v in mag[k - 1 : k + 2].log())
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * SR / n


def snr_db(clean: torch.Tensor, noisy: torch.Tensor) -> float:
    return 10 * math.log10(float((clean.double() ** 2).sum() / ((noisy - clean).double() ** 2).sum()))


# ---------------------------------------------------------------- MFCC


def test_mfcc_shapes_single_and_batch() -> None:
    mfcc = Mfcc()
    cfg = mfcc.config
    for samples in (SR, 2 * SR + 37, 300):
        one = mfcc(torch.randn(samples))
        assert one.shape == (40, cfg.frames(samples)) == (40, samples // 160 + 1)
    batch = mfcc(torch.randn(3, SR))
    assert batch.shape == (3, 40, 101)
    small = Mfcc(MfccConfig(n_mfcc=13, n_mels=26))
    assert small(torch.randn(2, 8000)).shape == (2, 13, 51)


def test_mfcc_matches_independent_computation() -> None:
    """Power STFT -> Slaney mel -> dB with an 80 dB floor -> orthonormal DCT-II (scipy), first 40."""
    cfg = MfccConfig(normalization="none")
    wave = speechlike(1.0)
    spec = torch.stft(
        wave, cfg.n_fft, cfg.hop_length, cfg.win_length, torch.hann_window(cfg.win_length), return_complex=True
    ).abs() ** 2
    fb = AF.melscale_fbanks(cfg.n_fft // 2 + 1, cfg.f_min, cfg.f_max, cfg.n_mels, cfg.sample_rate, "slaney", "slaney")
    mel_db = 10 * torch.log10((fb.T @ spec).clamp_min(1e-10))
    mel_db = torch.maximum(mel_db, mel_db.max() - 80.0)
    expected = dct(mel_db.double().numpy(), type=2, norm="ortho", axis=0)[:40]
    got = Mfcc(cfg)(wave).double().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=2e-3)


def test_mfcc_gain_moves_only_c0() -> None:
    """x10 amplitude = +20 dB in every mel band: c0 (orthonormal DCT) rises by 20 * sqrt(n_mels), the
    other coefficients stay; after per-utterance normalization the gain is gone entirely."""
    wave = speechlike()
    raw = Mfcc(MfccConfig(normalization="none"))
    diff = raw(10 * wave) - raw(wave)
    torch.testing.assert_close(diff[0], torch.full_like(diff[0], 20 * math.sqrt(64)), rtol=0, atol=1e-2)
    assert diff[1:].abs().max() < 1e-2
    norm = Mfcc()
    torch.testing.assert_close(norm(10 * wave), norm(wave), rtol=0, atol=1e-3)


def test_mfcc_utterance_normalization() -> None:
    out = Mfcc()(speechlike())
    torch.testing.assert_close(out.mean(-1), torch.zeros(40), rtol=0, atol=1e-4)
    torch.testing.assert_close(out.std(-1, correction=0), torch.ones(40), rtol=0, atol=1e-3)
    raw = Mfcc(MfccConfig(normalization="none"))(speechlike())
    assert raw[0].mean().abs() > 10  # unnormalized c0 carries the level
    two_frames = Mfcc()(torch.randn(300))
    assert two_frames.shape == (40, 2)
    assert torch.isfinite(two_frames).all()


def test_mfcc_batch_items_independent() -> None:
    """A quiet utterance batched with a loud one gives the same MFCCs as alone (own 80 dB floor);
    torchaudio's MFCC on the 2-D batch would not."""
    quiet, loud = speechlike(seed=1) * 1e-3, torch.randn(24_000)
    for norm in ("utterance", "none"):
        mfcc = Mfcc(MfccConfig(normalization=norm))
        both = mfcc(torch.stack([quiet, loud]))
        torch.testing.assert_close(both[0], mfcc(quiet), rtol=1e-5, atol=1e-4)
        torch.testing.assert_close(both[1], mfcc(loud), rtol=1e-5, atol=1e-4)
    shared = Mfcc(MfccConfig(normalization="none")).mfcc(torch.stack([quiet, loud]))
    assert (shared[0] - Mfcc(MfccConfig(normalization="none"))(quiet)).abs().max() > 1.0


def test_mfcc_bad_inputs() -> None:
    mfcc = Mfcc()
    for bad in (torch.randn(2, 1, SR), torch.tensor(1.0), torch.randn(256)):
        with pytest.raises(ValueError, match="Mfcc"):
            mfcc(bad)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_mfcc": 65}, "n_mels"),
        ({"n_mfcc": 0}, "n_mfcc"),
        ({"n_mfcc": 40.0}, "n_mfcc"),
        ({"n_mels": True}, "n_mels"),
        ({"win_length": 600}, "win_length"),
        ({"hop_length": 0}, "hop_length"),
        ({"f_max": 9000.0}, "f_max"),
        ({"f_min": 8000.0}, "f_min"),
        ({"f_min": -1.0}, "f_min"),
        ({"top_db": 0.0}, "top_db"),
        ({"normalization": "global"}, "normalization"),
    ],
)
def test_mfcc_config_validation(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MfccConfig(**kwargs)


def test_mfcc_config_round_trip() -> None:
    cfg = MfccConfig(n_mfcc=20, n_mels=40, top_db=None, normalization="none")
    data = json.loads(json.dumps(cfg.to_dict()))
    assert MfccConfig.from_dict(data) == cfg
    assert MfccConfig().to_dict()["n_mfcc"] == 40
    assert MfccConfig().to_dict()["n_mels"] == 64
    no_floor = Mfcc(cfg)(torch.randn(4000))
    assert torch.isfinite(no_floor).all()
    with pytest.raises(TypeError):
        MfccConfig.from_dict({**data, "n_ceps": 3})


# ---------------------------------------------------------------- waveform augmentation


@pytest.mark.parametrize("target", [0.0, 10.0, 17.3, 30.0])
def test_noise_at_requested_snr(target: float) -> None:
    clean = speechlike()
    noisy = add_white_noise(clean, target, torch.Generator().manual_seed(0))
    assert noisy.shape == clean.shape
    assert abs(snr_db(clean, noisy) - target) < 0.5
    # The noise is white: flat spectrum, no tone of its own (compare the halves' energies).
    spec = torch.fft.rfft(noisy - clean).abs() ** 2
    lo, hi = spec[: len(spec) // 2].mean(), spec[len(spec) // 2 :].mean()
    assert 0.8 < float(lo / hi) < 1.25


def test_noise_leaves_silence_silent() -> None:
    zeros = torch.zeros(8000)
    assert torch.equal(add_white_noise(zeros, 10.0, torch.Generator().manual_seed(0)), zeros)


@pytest.mark.parametrize("factor", [0.9, 0.95, 1.07, 1.1])
def test_speed_changes_length_and_frequency_by_factor(factor: float) -> None:
    wave = tone(440.0)
    out, applied = change_speed(wave, factor)
    assert abs(applied - factor) < 5e-4 * factor
    assert abs(len(out) - len(wave) / applied) <= 1
    assert abs(peak_hz(out) / 440.0 - applied) < 0.01 * applied  # resampling: pitch moves with the speed


@pytest.mark.parametrize("semitones", [2.0, -2.0, 1.5, -0.5])
def test_pitch_shift_keeps_length_and_moves_tone(semitones: float) -> None:
    wave = tone(440.0)
    out, applied = shift_pitch(wave, semitones)
    assert out.shape == wave.shape
    assert abs(applied - semitones) < 0.01
    expected = 440.0 * 2 ** (semitones / 12)
    assert abs(peak_hz(out) / expected - 1) < 0.02, (peak_hz(out), expected)
    # Duration kept: the tone fills the whole wave at a steady level (first and last 0.2 s vs. the
    # middle). The plain phase vocoder loses up to ~4.5 dB on an upward-shifted pure tone (phase
    # incoherence between bins; torchaudio's pitch_shift does the same), so the level is only bounded.
    n = SR // 5
    middle = float(out[SR - n // 2 : SR + n // 2].pow(2).mean())
    assert middle > 0.25 * float(wave.pow(2).mean())
    for part in (out[:n], out[-n:]):
        assert 0.7 < float(part.pow(2).mean()) / middle < 1.4


def test_pitch_shift_short_wave_unchanged() -> None:
    short = torch.randn(PITCH_N_FFT - 1)
    out, applied = shift_pitch(short, 2.0)
    assert applied == 0.0
    assert torch.equal(out, short)


def test_augment_wave_deterministic_per_generator() -> None:
    wave = speechlike()
    cfg = WaveAugmentConfig(noise_prob=1.0, pitch_prob=1.0, speed_prob=1.0)
    a, pa = augment_wave(wave, SR, cfg, torch.Generator().manual_seed(7), return_params=True)
    b, pb = augment_wave(wave, SR, cfg, torch.Generator().manual_seed(7), return_params=True)
    assert pa == pb
    assert torch.equal(a, b)
    c = augment_wave(wave, SR, cfg, torch.Generator().manual_seed(8))
    assert c.shape != a.shape or not torch.equal(a, c)
    # One generator used twice gives two different augmentations.
    g = torch.Generator().manual_seed(7)
    first, second = augment_wave(wave, SR, cfg, g), augment_wave(wave, SR, cfg, g)
    assert torch.equal(first, a)
    assert first.shape != second.shape or not torch.equal(first, second)


def test_augment_wave_applies_all_in_range() -> None:
    wave = speechlike()
    cfg = WaveAugmentConfig(noise_snr_db=(12.0, 20.0), pitch_shift_semitones=1.0, speed=(0.95, 1.05),
                            noise_prob=1.0, pitch_prob=1.0, speed_prob=1.0)
    for seed in range(3):
        out, p = augment_wave(wave, SR, cfg, torch.Generator().manual_seed(seed), return_params=True)
        assert 0.95 - 1e-3 <= p["speed"] <= 1.05 + 1e-3
        assert -1.01 <= p["pitch_semitones"] <= 1.01
        assert 12.0 <= p["snr_db"] <= 20.0
        assert abs(len(out) - len(wave) / p["speed"]) <= 1
        # Noise is added last, so it is at the drawn SNR relative to the sped-up, shifted signal.
        g = torch.Generator().manual_seed(seed)
        clean = augment_wave(wave, SR, WaveAugmentConfig(**{**cfg.to_dict(), "noise_snr_db": None}), g)
        assert abs(snr_db(clean, out) - p["snr_db"]) < 0.5


def test_augment_wave_probabilities() -> None:
    wave = speechlike(0.5)
    off = WaveAugmentConfig(noise_prob=0.0, pitch_prob=0.0, speed_prob=0.0)
    assert not off.enabled
    out, p = augment_wave(wave, SR, off, torch.Generator().manual_seed(0), return_params=True)
    assert p == {"speed": None, "pitch_semitones": None, "snr_db": None}
    assert torch.equal(out, wave) and out is not wave
    assert not WaveAugmentConfig(noise_snr_db=None, pitch_shift_semitones=0.0, speed=None).enabled
    # With probability 0.5 each, about half the draws apply each augmentation.
    counts = {"speed": 0, "pitch_semitones": 0, "snr_db": 0}
    g = torch.Generator().manual_seed(0)
    short = torch.randn(1024)
    for _ in range(200):
        _, p = augment_wave(short, SR, WaveAugmentConfig(), g, return_params=True)
        for k in counts:
            counts[k] += p[k] is not None
    assert all(70 <= c <= 130 for c in counts.values()), counts


def test_augment_wave_bad_inputs() -> None:
    cfg = WaveAugmentConfig()
    g = torch.Generator().manual_seed(0)
    for bad in (torch.randn(2, 100), torch.zeros(0), torch.ones(100, dtype=torch.int16)):
        with pytest.raises(ValueError, match="augment_wave"):
            augment_wave(bad, SR, cfg, g)
    with pytest.raises(ValueError, match="sample_rate"):
        augment_wave(torch.randn(100), 16000.0, cfg, g)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"noise_snr_db": (30.0, 10.0)}, "noise_snr_db"),
        ({"noise_snr_db": (10.0,)}, "noise_snr_db"),
        ({"noise_snr_db": (10.0, float("inf"))}, "noise_snr_db"),
        ({"speed": (0.0, 1.1)}, "speed"),
        ({"speed": (1.2, 1.1)}, "speed"),
        ({"speed": "fast"}, "speed"),
        ({"pitch_shift_semitones": -1.0}, "pitch_shift_semitones"),
        ({"pitch_shift_semitones": 13.0}, "pitch_shift_semitones"),
        ({"noise_prob": 1.5}, "noise_prob"),
        ({"pitch_prob": -0.1}, "pitch_prob"),
        ({"speed_prob": True}, "speed_prob"),
    ],
)
def test_wave_augment_config_validation(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        WaveAugmentConfig(**kwargs)


def test_wave_augment_config_round_trip() -> None:
    for cfg in (WaveAugmentConfig(), WaveAugmentConfig(noise_snr_db=None, speed=[0.8, 1.25], pitch_prob=1)):
        data = json.loads(json.dumps(cfg.to_dict()))
        again = WaveAugmentConfig.from_dict(data)
        assert again == cfg
    assert WaveAugmentConfig(speed=[0.8, 1.25]).speed == (0.8, 1.25)


def test_augmented_copies_keys_trace_origin() -> None:
    examples = [("ravdess_03-01-05-02-01-01-12", speechlike(0.5, 1)), ("savee_DC_a01", speechlike(0.5, 2))]
    cfg = WaveAugmentConfig(noise_prob=1.0)
    copies = augmented_copies(examples, 3, cfg, seed=11)
    assert [k for k, _ in copies] == [augmented_key(k, i) for k, _ in examples for i in range(3)]
    assert copies[0][0] == "ravdess_03-01-05-02-01-01-12_aug0"
    for key, wave in copies:
        assert "." not in key
        assert origin_key(key) in dict(examples)
        assert not torch.equal(wave, dict(examples)[origin_key(key)][: len(wave)])
    assert origin_key("savee_DC_a01") == "savee_DC_a01"
    assert origin_key("x_aug1_aug12") == "x_aug1"
    # A copy depends only on (seed, key, index): not on the other examples or their order.
    alone = augmented_copies(examples[1:], 3, cfg, seed=11)
    for (k1, w1), (k2, w2) in zip(copies[3:], alone, strict=True):
        assert k1 == k2 and torch.equal(w1, w2)
    assert torch.equal(augmented_copies(examples, 3, cfg, seed=11)[4][1], copies[4][1])
    assert not torch.equal(augmented_copies(examples, 3, cfg, seed=12)[4][1], copies[4][1])
    assert not torch.equal(copies[3][1], copies[4][1])  # copies of one utterance differ
    assert augmented_copies(examples, 0, cfg, seed=11) == []


@pytest.mark.parametrize(
    "examples",
    [
        [("ravdess_03.01", torch.randn(100))],
        [("", torch.randn(100))],
        [("a/b", torch.randn(100))],
        [("same", torch.randn(100)), ("same", torch.randn(100))],
    ],
)
def test_augmented_copies_bad_keys(examples: list) -> None:
    with pytest.raises(ValueError, match="key"):
        augmented_copies(examples, 1, WaveAugmentConfig(), seed=0)


def test_augmented_copies_bad_count() -> None:
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="n_copies"):
            augmented_copies([("a", torch.randn(100))], bad, WaveAugmentConfig(), seed=0)
