"""Speech-like audio for the synthetic corpus (:mod:`emohrnet.corpora.synthetic`): a
source-filter synthesizer of one utterance from a speaker's voice and an emotion's prosody.

What the generator models. Each utterance follows the source-filter model of speech production (Fant 1960, *Acoustic
Theory of Speech Production*):

- **Source**: a glottal flow-derivative pulse train (Rosenberg 1971 pulse shape, open quotient
  controlling the source's spectral tilt) following an F0 contour, with per-period jitter
  (period perturbation) and shimmer (amplitude perturbation), plus aspiration noise that is
  louder in the open phase (breathiness).
- **Filter**: a cascade of five second-order formant resonators (Klatt 1980): F1-F3 move
  between vowel targets (Peterson & Barney 1952 averages, scaled by the speaker's vocal tract
  length), one vowel per syllable; F4 and F5 are fixed. Then a spectral-tilt filter (dB/octave). The
  time-varying filter is applied frame by frame in the frequency domain (windowed overlap-add
  convolution, 32 ms Hann frames every 16 ms), using the resonators' exact frequency response.
- **Prosody**: syllables at a speaking rate (syllables/s) under an amplitude envelope with a
  consonant-like onset (frication noise burst) and a voiced nucleus; F0 declines over the
  utterance with a pitch accent on each syllable; a slow random F0 wander.
- **Recording**: lead/trail pauses, a per-utterance level, and a pink background noise floor
  (-70 to -62 dBFS, per speaker) so that no file is silent.

The four classes differ in the prosodic and voice-quality correlates of emotion reported by
Banse & Scherer (1996, J. Pers. Soc. Psychol. 70(3):614-636), Scherer (2003, Speech
Communication 40:227-256) and Juslin & Laukka (2003, Psychol. Bull. 129(5):770-814): hot
anger and happiness raise mean F0, F0 range, intensity and speaking rate and flatten the
spectral slope (more high-frequency energy, tenser voice); sadness lowers F0, narrows its
range, slows the rate, lowers intensity, steepens the spectral slope (darker, breathier voice)
and centralises the vowels. See :data:`PROSODY`.

Speakers (default 8; odd numbers "male", even "female") each have their own voice
(:class:`SpeakerVoice`): base F0, vocal-tract (formant) scale, tilt, breathiness, speaking
rate, recording gain and how strongly they express emotion. Every utterance draws its own
random variation (seeded), so classes overlap and speaker differences in pitch are as large as
the class differences: the task is speaker-independent, not a lookup of speaker F0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 16_000
"""Sample rate (Hz) of the generated files."""

# Vowel formant targets F1-F3 (Hz) of adult male speakers, Peterson & Barney (1952):
# i, ɪ, ɛ, æ, ɑ, ɔ, ʊ, u, ʌ, ɝ.
_VOWELS = np.array([[270, 2290, 3010], [390, 1990, 2550], [530, 1840, 2480], [660, 1720, 2410], [730, 1090, 2440],
                    [570, 840, 2410], [440, 1020, 2240], [300, 870, 2240], [640, 1190, 2390], [490, 1350, 1690]],
                   dtype=np.float64)
_SCHWA = np.array([500.0, 1500.0, 2500.0])  # centre of the vowel space (male), Hz
_HIGHER = np.array([3500.0, 4500.0])  # fourth and fifth formants (male), Hz
_BANDWIDTHS = np.array([70.0, 100.0, 150.0, 220.0, 300.0])  # formant bandwidths, Hz

# Analysis/synthesis frames of the time-varying filter (samples at 16 kHz).
_WIN = 512
_HOP = 256
_NFFT = 1024
_CTRL = 16  # samples per control point of the envelopes and F0 (1 kHz control rate)


# --------------------------------------------------------------------------------- profiles
@dataclass(frozen=True)
class Prosody:
    """The prosodic and voice-quality profile of one emotion class (class means; every
    utterance adds its own random variation).

    Attributes:
        f0_shift: mean F0 relative to the speaker's base F0, semitones.
        f0_range: size of the pitch accents (peak F0 rise on a stressed syllable), semitones.
        declination: F0 fall from the first to the last syllable, semitones.
        rate: speaking rate, syllables per second.
        level_db: utterance RMS level, dBFS (before the speaker's recording gain).
        tilt_db: spectral tilt added to the source's, dB per octave (positive = brighter).
        open_quotient: glottal open quotient (fraction of the period the glottis is open);
            lower = tenser, brighter voice.
        breathiness: aspiration-noise amplitude relative to the voiced source RMS.
        jitter: standard deviation of the relative period-to-period F0 perturbation.
        shimmer: standard deviation of the relative period-to-period amplitude perturbation.
        articulation: vowel-space expansion (1 = normal, < 1 centralised vowels).
        f1_scale: F1 multiplier (wider mouth opening raises F1).
        accent_sharpness: exponent of the pitch-accent shape (higher = more peaked accents).
    """

    f0_shift: float
    f0_range: float
    declination: float
    rate: float
    level_db: float
    tilt_db: float
    open_quotient: float
    breathiness: float
    jitter: float
    shimmer: float
    articulation: float
    f1_scale: float
    accent_sharpness: float


# fmt: off
PROSODY: dict[str, Prosody] = {
    # Baseline: modal voice, moderate pitch movement and rate.
    "neutral": Prosody(
        f0_shift=0.0, f0_range=2.0, declination=2.0, rate=4.2, level_db=-27.0, tilt_db=0.0,
        open_quotient=0.60, breathiness=0.06, jitter=0.008, shimmer=0.05, articulation=1.0,
        f1_scale=1.0, accent_sharpness=1.0,
    ),
    # Elation/happiness: high F0, the widest F0 range, faster, louder, slightly brighter.
    "happy": Prosody(
        f0_shift=5.0, f0_range=6.0, declination=1.0, rate=4.8, level_db=-24.0, tilt_db=1.5,
        open_quotient=0.55, breathiness=0.05, jitter=0.008, shimmer=0.05, articulation=1.05,
        f1_scale=1.04, accent_sharpness=0.8,
    ),
    # Hot anger: high F0, large and abrupt accents, fast, loudest, tense and bright voice.
    "angry": Prosody(
        f0_shift=3.0, f0_range=4.0, declination=2.5, rate=5.3, level_db=-19.0, tilt_db=5.0,
        open_quotient=0.40, breathiness=0.03, jitter=0.012, shimmer=0.07, articulation=1.12,
        f1_scale=1.10, accent_sharpness=2.0,
    ),
    # Sadness: low F0, narrow range, slow, quiet, dark and breathy voice, centralised vowels.
    "sad": Prosody(
        f0_shift=-2.0, f0_range=1.0, declination=2.5, rate=3.1, level_db=-33.0, tilt_db=-4.0,
        open_quotient=0.70, breathiness=0.12, jitter=0.015, shimmer=0.06, articulation=0.7,
        f1_scale=0.97, accent_sharpness=1.0,
    ),
}
# fmt: on
"""Per-class prosody (:class:`Prosody`), following the emotion profiles of Banse & Scherer
(1996) and Scherer (2003)."""


@dataclass(frozen=True)
class SpeakerVoice:
    """One synthetic speaker's voice.

    Attributes:
        speaker: speaker id, ``"spkNN"``.
        sex: ``"male"`` (odd NN) or ``"female"`` (even NN).
        f0: base F0, Hz (male about 115, female about 210; 1.5 semitones standard deviation).
        formant_scale: formant-frequency multiplier (vocal-tract length; male about 1.0,
            female about 1.17).
        tilt_db: the speaker's spectral-tilt offset, dB per octave.
        oq_offset: offset added to the class open quotient.
        breathiness: multiplier of the class breathiness.
        rate: multiplier of the class speaking rate.
        gain_db: recording gain, dB.
        expressiveness: multiplier of the class F0 shift and range (how strongly the speaker
            expresses emotion).
        floor_db: background-noise level, dBFS.
    """

    speaker: str
    sex: str
    f0: float
    formant_scale: float
    tilt_db: float
    oq_offset: float
    breathiness: float
    rate: float
    gain_db: float
    expressiveness: float
    floor_db: float


def speaker_voice(seed: int, number: int) -> SpeakerVoice:
    """The voice of speaker ``number`` of the corpus generated with ``seed``.

    The voice depends only on ``(seed, number)``, not on how many speakers or utterances the
    corpus has.

    Args:
        seed: the corpus seed (non-negative integer).
        number: speaker number, 1-99; odd numbers are male, even female.

    Returns:
        The :class:`SpeakerVoice` of speaker ``"spk{number:02d}"``.
    """
    rng = np.random.default_rng([seed, 1, number])
    male = number % 2 == 1
    return SpeakerVoice(
        speaker=f"spk{number:02d}",
        sex="male" if male else "female",
        f0=(115.0 if male else 210.0) * 2.0 ** (rng.normal(0.0, 1.5) / 12.0),
        formant_scale=(1.0 if male else 1.17) * math.exp(rng.normal(0.0, 0.04)),
        tilt_db=float(rng.normal(0.0, 1.0)),
        oq_offset=float(rng.normal(0.0, 0.04)),
        breathiness=math.exp(rng.normal(0.0, 0.35)),
        rate=math.exp(rng.normal(0.0, 0.10)),
        gain_db=float(rng.normal(0.0, 2.0)),
        expressiveness=float(rng.uniform(0.8, 1.2)),
        floor_db=float(rng.uniform(-70.0, -62.0)),
    )


# --------------------------------------------------------------------------------- synthesis
def _ola_filter(x: np.ndarray, response: np.ndarray) -> np.ndarray:
    """Filter ``x`` with a frame-wise frequency response by windowed overlap-add convolution.

    Args:
        x: signal, shape ``(n,)``.
        response: complex frequency response, shape ``(n_frames, _NFFT // 2 + 1)`` or
            ``(_NFFT // 2 + 1,)`` (time-invariant); frame ``k`` is centred on sample
            ``k * _HOP - _WIN // 2``.

    Returns:
        The filtered signal, shape ``(n,)``.
    """
    n = x.shape[0]
    n_frames = _frame_count(n)
    padded = np.zeros(n_frames * _HOP + _NFFT, dtype=np.float64)
    padded[_WIN : _WIN + n] = x
    starts = np.arange(n_frames) * _HOP
    frames = padded[starts[:, None] + np.arange(_WIN)[None, :]] * np.hanning(_WIN + 1)[:_WIN]
    spec = np.fft.rfft(frames, _NFFT) * response
    blocks = np.fft.irfft(spec, _NFFT).reshape(n_frames, _NFFT // _HOP, _HOP)
    out = np.zeros((n_frames + _NFFT // _HOP, _HOP))
    for j in range(_NFFT // _HOP):
        out[j : j + n_frames] += blocks[:, j]
    # periodic Hann windows at hop _WIN / 2 sum to 1
    return out.reshape(-1)[_WIN : _WIN + n]


def _fft_filter(x: np.ndarray, gain) -> np.ndarray:
    """Filter ``x`` (shape ``(n,)``) with the zero-phase, time-invariant magnitude response
    ``gain(freqs_hz) -> gains`` by one zero-padded FFT; returns shape ``(n,)``."""
    n = x.shape[0]
    size = _fast_length(n + _NFFT)
    freqs = np.fft.rfftfreq(size, 1.0 / SAMPLE_RATE)
    return np.fft.irfft(np.fft.rfft(x, size) * gain(freqs), size)[:n]


def _pink_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """Gaussian noise, shape ``(n,)``, white below 100 Hz and falling 3 dB/octave above
    (made in the frequency domain: one inverse FFT)."""
    size = _fast_length(n)
    freqs = np.fft.rfftfreq(size, 1.0 / SAMPLE_RATE)
    spec = rng.standard_normal(freqs.shape[0]) + 1j * rng.standard_normal(freqs.shape[0])
    return np.fft.irfft(spec * np.minimum(1.0, np.sqrt(100.0 / np.maximum(freqs, 1.0))), size)[:n]


def _fast_length(n: int) -> int:
    """The smallest even 2^a 3^b 5^c >= ``n`` (a fast FFT length)."""
    best = 1 << max(1, (n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            size = p35 * 2
            while size < n:
                size *= 2
            best = min(best, size)
            p35 *= 3
        p5 *= 5
    return best


def _frame_count(n: int) -> int:
    return (n + _WIN) // _HOP + 1


def _resonator_response(freqs: np.ndarray, bandwidths: np.ndarray) -> np.ndarray:
    """Frequency response of a cascade of second-order resonators (unit gain at 0 Hz).

    Args:
        freqs: resonance frequencies in Hz, shape ``(n_frames, n_formants)``.
        bandwidths: bandwidths in Hz, shape ``(n_formants,)`` or like ``freqs``.

    Returns:
        Complex response, shape ``(n_frames, _NFFT // 2 + 1)``.
    """
    omega = 2.0 * np.pi * np.arange(_NFFT // 2 + 1) / _NFFT
    z1 = np.exp(-1j * omega)[None, :]
    z2 = z1 * z1
    r = np.exp(-np.pi * np.broadcast_to(bandwidths, freqs.shape) / SAMPLE_RATE)
    c = 2.0 * r * np.cos(2.0 * np.pi * freqs / SAMPLE_RATE)
    r2 = r * r
    # H_k(z) = (1 - c_k + r_k^2) / (1 - c_k z^-1 + r_k^2 z^-2); multiply the denominators first
    denom = 1.0 - c[:, :1] * z1 + r2[:, :1] * z2
    for k in range(1, freqs.shape[1]):
        denom = denom * (1.0 - c[:, k : k + 1] * z1 + r2[:, k : k + 1] * z2)
    return np.prod(1.0 - c + r2, axis=1)[:, None] / denom


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Moving average (Hann-weighted) of ``width`` samples along axis 0, edges held."""
    if width < 2:
        return x
    kernel = np.hanning(width + 2)[1:-1]
    kernel /= kernel.sum()
    pad = width // 2
    if x.ndim == 1:
        padded = np.concatenate([np.full(pad, x[0]), x, np.full(width - 1 - pad, x[-1])])
        return np.convolve(padded, kernel, mode="valid")
    return np.stack([_smooth(x[:, i], width) for i in range(x.shape[1])], axis=1)


def synthesize(
    voice: SpeakerVoice,
    emotion: str,
    rng: np.random.Generator,
    duration: float,
    variation: float = 1.0,
) -> np.ndarray:
    """Synthesize one utterance of ``voice`` speaking with ``emotion``.

    Args:
        voice: the speaker (:func:`speaker_voice`).
        emotion: a key of :data:`PROSODY`.
        rng: the utterance's random generator (all per-utterance variation is drawn from it).
        duration: length in seconds (at least 0.5).
        variation: scale of the per-utterance random variation of prosody and voice quality
            (0 = every utterance of a class and speaker has the class's mean prosody; larger =
            more overlap between classes, a harder task).

    Returns:
        float64 waveform at :data:`SAMPLE_RATE` Hz, shape ``(round(duration * 16000),)``, peak
        below 0.98 (full scale 1.0).

    Raises:
        KeyError: unknown emotion.
    """
    p = PROSODY[emotion]
    v = float(variation)
    sr = SAMPLE_RATE
    n = round(duration * sr)

    # ---- utterance-level draws
    expr = voice.expressiveness
    f0_shift = expr * p.f0_shift + v * rng.normal(0.0, 1.2)
    f0_range = max(0.3, expr * p.f0_range * math.exp(v * rng.normal(0.0, 0.3)))
    rate = p.rate * voice.rate * math.exp(v * rng.normal(0.0, 0.12))
    level_db = p.level_db + voice.gain_db + v * rng.normal(0.0, 2.5)
    tilt_db = p.tilt_db + voice.tilt_db + v * rng.normal(0.0, 1.2)
    oq = float(np.clip(p.open_quotient + voice.oq_offset + v * rng.normal(0.0, 0.05), 0.3, 0.85))
    breath = p.breathiness * voice.breathiness * math.exp(v * rng.normal(0.0, 0.35))
    jitter = p.jitter * math.exp(v * rng.normal(0.0, 0.3))
    shimmer = p.shimmer * math.exp(v * rng.normal(0.0, 0.3))
    articulation = p.articulation * math.exp(v * rng.normal(0.0, 0.1))
    declination = p.declination + v * rng.normal(0.0, 0.8)
    formant_jit = math.exp(v * rng.normal(0.0, 0.03))

    # ---- syllables
    lead = rng.uniform(0.05, 0.2) * sr
    trail = rng.uniform(0.05, 0.2) * sr
    speech = max(n - lead - trail, 0.2 * sr)
    n_syl = max(2, round(speech / sr * rate))
    weights = rng.uniform(0.6, 1.4, n_syl)
    bounds = lead + np.concatenate([[0.0], np.cumsum(weights) / weights.sum()]) * speech
    stress = rng.uniform(0.0, 1.0, n_syl) ** 1.5  # 0 unstressed .. 1 strongly stressed
    syl_gain = 10.0 ** ((8.0 * stress - 4.0 + rng.normal(0.0, 1.5, n_syl)) / 20.0)
    onset = rng.uniform(0.12, 0.35, n_syl)  # consonant fraction of each syllable
    fricated = rng.uniform(size=n_syl) < 0.6
    vowel = rng.integers(0, len(_VOWELS), n_syl)

    # envelopes and F0 at a 1 kHz control rate, interpolated to the sample rate
    ctrl = np.arange(n // _CTRL + 2, dtype=np.float64) * _CTRL  # sample positions
    s = np.clip(np.searchsorted(bounds, ctrl, side="right") - 1, 0, n_syl - 1)
    inside = (ctrl >= bounds[0]) & (ctrl < bounds[-1])
    x = np.clip((ctrl - bounds[s]) / (bounds[s + 1] - bounds[s]), 0.0, 1.0)  # position in syllable
    c = onset[s]
    y = np.clip((x - c) / (1.0 - c), 0.0, 1.0)  # position in the voiced nucleus
    voiced_env = np.where(inside & (x > c), np.sin(np.pi * y) ** 0.6 * (1.0 - 0.4 * y), 0.0)
    voiced_env = _smooth(voiced_env * syl_gain[s], 5)
    fric_env = np.where(inside & (x <= c) & fricated[s], np.sin(np.pi * x / c), 0.0)
    fric_env = _smooth(fric_env * np.sqrt(syl_gain[s]), 3)

    # ---- F0 contour (semitones relative to the speaker's base F0)
    accent = f0_range * stress[s] * np.sin(np.pi * y) ** p.accent_sharpness
    progress = np.clip((ctrl - bounds[0]) / (bounds[-1] - bounds[0]), 0.0, 1.0)
    t = ctrl / sr
    wander = sum(
        v * rng.normal(0.0, 0.3) * np.sin(2 * np.pi * rng.uniform(0.3, 2.0) * t + rng.uniform(0, 2 * np.pi))
        for _ in range(2)
    )
    semitones = f0_shift + accent + declination * (0.5 - progress) + wander
    f0_ctrl = np.clip(voice.f0 * 2.0 ** (semitones / 12.0), 55.0, 600.0)
    samples = np.arange(n, dtype=np.float64)
    f0 = np.interp(samples, ctrl, f0_ctrl)
    voiced_env = np.interp(samples, ctrl, voiced_env)
    fric_env = np.interp(samples, ctrl, fric_env)

    # ---- glottal source: Rosenberg flow with jitter and shimmer; differentiated (radiation)
    phase = np.cumsum(f0) / sr
    period = phase.astype(np.int64)
    f0 *= (1.0 + jitter * rng.standard_normal(period[-1] + 2))[period]
    phase = np.cumsum(f0) / sr
    period = phase.astype(np.int64)
    q = phase - period  # position in the glottal period, [0, 1)
    grid = np.linspace(0.0, 1.0, 4097)
    rise, fall = 0.7 * oq, 0.3 * oq
    pulse = np.where(
        grid < rise,
        0.5 * (1.0 - np.cos(np.pi * grid / rise)),
        np.where(grid < oq, np.cos(0.5 * np.pi * (grid - rise) / fall), 0.0),
    )
    flow = np.interp(q, grid, pulse)
    flow *= (1.0 + shimmer * rng.standard_normal(period[-1] + 2))[period]
    source = np.diff(flow, prepend=0.0)
    voiced = source * voiced_env
    ref = np.sqrt(np.mean(voiced**2)) / max(np.sqrt(np.mean(voiced_env**2)), 1e-9) + 1e-12
    aspiration = rng.standard_normal(n) * ((ref * breath) * np.where(q < oq, 1.0, 0.4) * voiced_env)
    excitation = voiced + aspiration

    # ---- vocal tract: formant tracks per frame, cascade resonators and spectral tilt
    n_frames = _frame_count(n)
    centres = np.arange(n_frames) * _HOP - _WIN // 2
    in_syllable = np.clip(np.searchsorted(bounds, centres, side="right") - 1, 0, n_syl - 1)
    targets = _SCHWA + articulation * (_VOWELS[vowel[in_syllable]] - _SCHWA)
    targets[:, 0] *= p.f1_scale
    targets = _smooth(targets, 3)
    scale = voice.formant_scale * formant_jit
    formants = np.concatenate([targets, np.broadcast_to(_HIGHER, (n_frames, 2))], axis=1) * scale
    formants = np.minimum(formants, 0.45 * sr)
    bw = _BANDWIDTHS * (1.0 + 2.0 * breath)
    freqs = np.arange(_NFFT // 2 + 1) * sr / _NFFT
    tilt = 10.0 ** (tilt_db * np.log2(np.maximum(freqs, 100.0) / 500.0) / 20.0)
    vocal = _ola_filter(excitation, _resonator_response(formants, bw) * tilt[None, :])

    # ---- frication (consonant onsets): noise through a band-pass centred at 3-6 kHz
    fc = rng.uniform(3000.0, 6000.0) * math.sqrt(voice.formant_scale)
    fric = _fft_filter(
        rng.standard_normal(n) * fric_env,
        lambda f: np.exp(-0.5 * (np.log2(np.maximum(f, 1.0) / fc) / 0.4) ** 2),
    )
    vocal_rms = np.sqrt(np.mean(vocal**2)) + 1e-12
    fric *= 0.12 * vocal_rms / (np.sqrt(np.mean(fric**2)) + 1e-12)
    utterance = vocal + fric

    # ---- level, background noise floor, peak protection
    active = slice(int(bounds[0]), int(bounds[-1]))
    utterance *= 10.0 ** (level_db / 20.0) / (np.sqrt(np.mean(utterance[active] ** 2)) + 1e-12)
    floor = _pink_noise(rng, n)
    floor *= 10.0 ** ((voice.floor_db + rng.normal(0.0, 2.0)) / 20.0) / (np.sqrt(np.mean(floor**2)) + 1e-12)
    out = utterance + floor
    peak = float(np.abs(out).max())
    if peak > 0.98:
        out *= 0.98 / peak
    return out
