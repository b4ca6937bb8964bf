"""Waveform augmentation for TRAINING utterances: speed perturbation, pitch shift, additive noise.

Lee & Nadeem 2025 (arXiv 2507.03251) extract their MFCCs "from the augmented data": copies of the
training utterances altered by the usual waveform augmentations of that SER line of work (additive
noise, pitch shifting, speed / time changes). The parts of the paper consulted give no values,
so the defaults are conservative choices common in SER and ASR:

- white Gaussian noise at an SNR drawn uniformly from 10-30 dB (``torchaudio.functional.add_noise``);
- a pitch shift of up to +-2 semitones, duration kept (phase-vocoder time stretch followed by
  resampling, the method of ``torchaudio.functional.pitch_shift``);
- Kaldi-style speed perturbation by a factor in 0.9-1.1 (Ko et al. 2015, "Audio Augmentation for
  Speech Recognition", Interspeech): resampling, which changes duration *and* pitch together, as
  ``torchaudio.functional.speed`` does;
- each applied with probability 0.5, in the order speed -> pitch -> noise (noise last, so its SNR is
  measured against the finished signal).

Only ever augment training utterances (never validation or test ones): augmented copies of one
utterance are near-duplicates, and must stay on the same side of every split as their origin.

Why not call ``torchaudio.functional.pitch_shift`` / ``speed`` directly (torchaudio 2.11 still has
both, plus ``phase_vocoder``, ``resample`` and ``add_noise``): both resample between
``int(sample_rate * ratio)`` and ``sample_rate`` Hz, and for a ratio such as ``2 ** (2/12)`` or a
speed factor drawn from a continuous range those two rates often have a gcd of 1, so the
windowed-sinc kernel has ~16,000 phases. Measured on one CPU core with torchaudio 2.11:
``pitch_shift`` by 2 semitones took ~35 s for 1 s of audio, ``speed(..., 1.0731)`` ~38 s for 3 s
(``speed(..., 0.9)`` is fast: 14400/16000 reduces to 9/10). Here every ratio is first
replaced by the nearest fraction ``p/q`` with ``q <= MAX_DENOMINATOR`` (1000), and resampling is done
between ``p`` and ``q`` Hz: a 3 s utterance takes ~10-20 ms per operation, the applied pitch shift
is within 0.01 semitone and the applied speed within 0.05 % of the drawn value, and the values
actually applied are reported by :func:`augment_wave` (``return_params=True``).

Randomness: every draw comes from the ``torch.Generator`` passed in, in a fixed order, so a result
depends only on the wave, the config and the generator state. :func:`augmented_copies` seeds one
generator per (seed, key, copy), so a copy does not depend on which other utterances are augmented
or in which order (each distributed worker can augment its own part).
"""

from __future__ import annotations

import hashlib
import math
import numbers
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any

import torch
import torchaudio.functional as AF

MAX_DENOMINATOR = 1000
"""Largest denominator of the rational resampling ratios (see the module docstring)."""

PITCH_N_FFT = 512
"""STFT size (samples) of the phase-vocoder time stretch inside the pitch shift (hop ``n_fft // 4``)."""

AUG_SUFFIX = "_aug"
"""Key suffix of augmented copies: ``f"{key}{AUG_SUFFIX}{i}"``."""

_KEY_OK = re.compile(r"^[A-Za-z0-9_-]+$")
_AUG_KEY = re.compile(rf"^(?P<origin>.+){AUG_SUFFIX}(?P<index>\d+)$")


def _prob(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value <= 1.0:
        raise ValueError(f"WaveAugmentConfig: {name} must be a probability in [0, 1], got {value!r}")
    return float(value)


def _range(name: str, value: object, lo: float, hi: float) -> tuple[float, float] | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise ValueError(f"WaveAugmentConfig: {name} must be a (low, high) pair or None, got {value!r}")
    a, b = value
    for v in (a, b):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
            raise ValueError(f"WaveAugmentConfig: {name} must hold finite numbers, got {value!r}")
    if not lo <= a <= b <= hi:
        raise ValueError(f"WaveAugmentConfig: {name} needs {lo} <= low <= high <= {hi}, got {value!r}")
    return (float(a), float(b))


@dataclass(frozen=True)
class WaveAugmentConfig:
    """Settings of :func:`augment_wave` (defaults: see the module docstring).

    Attributes:
        noise_snr_db: ``(low, high)`` SNR range in dB of the added white Gaussian noise, drawn
            uniformly; ``None`` disables noise. Allowed: ``-20 <= low <= high <= 100``.
        noise_prob: probability of adding noise.
        pitch_shift_semitones: largest pitch shift in semitones; the shift is drawn uniformly from
            ``[-max, +max]``; 0 disables it. Allowed: ``0 <= max <= 12``.
        pitch_prob: probability of shifting the pitch.
        speed: ``(low, high)`` range of the speed factor, drawn uniformly (``> 1``: faster, shorter,
            higher); ``None`` disables it. Allowed: ``0.5 <= low <= high <= 2``.
        speed_prob: probability of changing the speed.

    Raises:
        ValueError: (on construction) a value outside the ranges above, or a probability outside [0, 1].
    """

    noise_snr_db: tuple[float, float] | None = (10.0, 30.0)
    noise_prob: float = 0.5
    pitch_shift_semitones: float = 2.0
    pitch_prob: float = 0.5
    speed: tuple[float, float] | None = (0.9, 1.1)
    speed_prob: float = 0.5

    def __post_init__(self) -> None:
        object.__setattr__(self, "noise_snr_db", _range("noise_snr_db", self.noise_snr_db, -20.0, 100.0))
        object.__setattr__(self, "speed", _range("speed", self.speed, 0.5, 2.0))
        st = self.pitch_shift_semitones
        if isinstance(st, bool) or not isinstance(st, numbers.Real) or not 0.0 <= st <= 12.0:
            raise ValueError(f"WaveAugmentConfig: pitch_shift_semitones must be in [0, 12], got {st!r}")
        object.__setattr__(self, "pitch_shift_semitones", float(st))
        for name in ("noise_prob", "pitch_prob", "speed_prob"):
            object.__setattr__(self, name, _prob(name, getattr(self, name)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of the settings (ranges as lists)."""
        d = asdict(self)
        for name in ("noise_snr_db", "speed"):
            if d[name] is not None:
                d[name] = list(d[name])
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WaveAugmentConfig:
        """Inverse of :meth:`to_dict` (lists become tuples).

        Raises:
            TypeError: an unknown key. ValueError: an invalid value.
        """
        data = dict(data)
        for name in ("noise_snr_db", "speed"):
            if data.get(name) is not None:
                data[name] = tuple(data[name])
        return cls(**data)

    @property
    def enabled(self) -> bool:
        """Whether any augmentation can be applied at all."""
        return (
            (self.noise_snr_db is not None and self.noise_prob > 0)
            or (self.pitch_shift_semitones > 0 and self.pitch_prob > 0)
            or (self.speed is not None and self.speed_prob > 0)
        )


def _ratio(x: float) -> Fraction:
    """The fraction nearest to ``x`` with denominator ``<= MAX_DENOMINATOR``."""
    return Fraction(x).limit_denominator(MAX_DENOMINATOR)


def change_speed(wave: torch.Tensor, factor: float) -> tuple[torch.Tensor, float]:
    """Speed perturbation by resampling (Ko et al. 2015): duration / ``factor``, frequencies * ``factor``.

    Same operation as ``torchaudio.functional.speed(wave, sample_rate, factor)``, but ``factor`` is
    first rounded to the nearest ``p/q`` with ``q <= MAX_DENOMINATOR`` so the resampling kernel is small.

    Args:
        wave: ``(samples,)`` float waveform (any sample rate; it is kept).
        factor: speed factor, ``> 0`` (``1.1``: 10 % faster, ~``samples / 1.1`` samples long).

    Returns:
        ``(new_wave, applied_factor)``: ``new_wave`` is ``(ceil(samples * q / p),)``;
        ``applied_factor = p / q``.

    Raises:
        ValueError: ``factor <= 0`` or not finite.
    """
    if not (math.isfinite(factor) and factor > 0):
        raise ValueError(f"change_speed: factor must be a positive number, got {factor!r}")
    r = _ratio(factor)
    if r == 1:
        return wave.clone(), 1.0
    # Read the wave as sampled at p Hz and resample it to q Hz: q/p as many samples at the same rate.
    return AF.resample(wave, r.numerator, r.denominator), float(r)


def shift_pitch(wave: torch.Tensor, semitones: float) -> tuple[torch.Tensor, float]:
    """Pitch shift by ``semitones``, duration kept: phase-vocoder stretch, then resampling.

    The wave is time-stretched by ``ratio = p/q ~ 2 ** (semitones / 12)`` (STFT of
    :data:`PITCH_N_FFT` samples, hop ``n_fft // 4``, Hann window; ``torchaudio.functional.phase_vocoder``;
    pitch kept), then resampled from ``p`` to ``q`` Hz (``torchaudio.functional.resample``), which
    restores the duration and multiplies every frequency by ``ratio``; the result is cut or
    zero-padded to exactly ``samples``. Same method as ``torchaudio.functional.pitch_shift``, with the
    ratio rounded so that resampling stays cheap (see the module docstring). Like it (and librosa's),
    the phase vocoder has no phase locking: bins lose their phase coherence, which on an upward-shifted
    pure tone costs up to ~4.5 dB of level (measured, +1.5..+2 semitones); per-utterance MFCC
    normalization removes such a level change.

    Args:
        wave: ``(samples,)`` float waveform.
        semitones: shift in semitones (12 per octave; negative lowers the pitch), ``|semitones| <= 24``.

    Returns:
        ``(new_wave, applied_semitones)``; ``new_wave`` is ``(samples,)``. A wave shorter than
        :data:`PITCH_N_FFT` samples is returned unchanged with ``applied_semitones = 0.0``.

    Raises:
        ValueError: ``|semitones| > 24`` or not finite.
    """
    if not (math.isfinite(semitones) and abs(semitones) <= 24):
        raise ValueError(f"shift_pitch: semitones must be in [-24, 24], got {semitones!r}")
    r = _ratio(2.0 ** (semitones / 12.0))
    n = wave.shape[-1]
    if r == 1 or n < PITCH_N_FFT:
        return wave.clone(), 0.0
    ratio = float(r)
    hop = PITCH_N_FFT // 4
    window = torch.hann_window(PITCH_N_FFT, device=wave.device, dtype=wave.dtype)
    spec = torch.stft(wave, PITCH_N_FFT, hop, window=window, center=True, return_complex=True)
    phase_advance = torch.linspace(0, math.pi * hop, spec.shape[-2], device=wave.device, dtype=wave.dtype)[..., None]
    stretched_spec = AF.phase_vocoder(spec, 1.0 / ratio, phase_advance)  # rate < 1: longer
    stretched = torch.istft(stretched_spec, PITCH_N_FFT, hop, window=window, length=round(n * ratio))
    shifted = AF.resample(stretched, r.numerator, r.denominator)
    if shifted.shape[-1] >= n:
        shifted = shifted[..., :n]
    else:
        shifted = torch.nn.functional.pad(shifted, (0, n - shifted.shape[-1]))
    return shifted, 12.0 * math.log2(ratio)


def add_white_noise(wave: torch.Tensor, snr_db: float, generator: torch.Generator | None) -> torch.Tensor:
    """Add white Gaussian noise at ``snr_db`` dB SNR (``torchaudio.functional.add_noise``).

    SNR is ``10 log10(sum(wave**2) / sum(noise**2))`` over the whole wave, exactly ``snr_db`` for the
    scaled noise actually added. A silent wave (all zeros) stays silent (there is no signal power
    to set the noise level from).

    Args:
        wave: ``(samples,)`` float waveform.
        snr_db: signal-to-noise ratio in dB.
        generator: source of the noise samples.

    Returns:
        ``(samples,)``: ``wave + noise``.
    """
    if not bool(wave.any()):
        return wave.clone()
    noise = torch.randn(wave.shape, generator=generator, dtype=wave.dtype).to(wave.device)
    return AF.add_noise(wave, noise, torch.tensor(float(snr_db), dtype=wave.dtype, device=wave.device))


def augment_wave(
    wave: torch.Tensor,
    sample_rate: int,
    config: WaveAugmentConfig,
    generator: torch.Generator | None,
    return_params: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, dict[str, float | None]]:
    """Randomly augment one training waveform: speed, then pitch, then noise (each with its probability).

    Draws, in this order, from ``generator`` (CPU): 6 uniforms (for each of speed, pitch, noise: a
    coin against its probability and a value in its range), then the noise samples if noise is
    added. The same wave, config and generator state always give the same result.

    Args:
        wave: ``(samples,)`` float waveform at ``sample_rate`` (e.g. from :func:`emohrnet.io.audio.load_audio`).
        sample_rate: rate in Hz (a positive int). The operations are rate-independent (speed and
            pitch act on ratios, noise is white); the rate is checked and kept.
        config: what to apply and how strongly.
        generator: a ``torch.Generator`` (``None``: torch's global generator, not reproducible).
        return_params: also return what was applied.

    Returns:
        the augmented ``(samples',)`` wave (``samples' ~ samples / speed`` when the speed changed,
        ``samples`` otherwise); with ``return_params``, ``(wave, params)`` where ``params`` is
        ``{"speed": factor | None, "pitch_semitones": semitones | None, "snr_db": dB | None}`` (the
        applied, rounded values; ``None`` where not applied).

    Raises:
        ValueError: ``wave`` is not a non-empty 1-D floating tensor, or ``sample_rate`` is not a positive int.
    """
    if wave.dim() != 1 or wave.shape[0] == 0 or not wave.is_floating_point():
        raise ValueError(
            f"augment_wave expects a non-empty float (samples,) wave, got {tuple(wave.shape)} {wave.dtype}"
        )
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, numbers.Integral) or sample_rate <= 0:
        raise ValueError(f"augment_wave: sample_rate must be a positive int (Hz), got {sample_rate!r}")
    u = torch.rand(6, generator=generator, dtype=torch.float64).tolist()
    params: dict[str, float | None] = {"speed": None, "pitch_semitones": None, "snr_db": None}
    out = wave
    if config.speed is not None and u[0] < config.speed_prob:
        lo, hi = config.speed
        out, params["speed"] = change_speed(out, lo + (hi - lo) * u[1])
    if config.pitch_shift_semitones > 0 and u[2] < config.pitch_prob:
        m = config.pitch_shift_semitones
        out, params["pitch_semitones"] = shift_pitch(out, -m + 2 * m * u[3])
    if config.noise_snr_db is not None and u[4] < config.noise_prob:
        lo, hi = config.noise_snr_db
        params["snr_db"] = lo + (hi - lo) * u[5]
        out = add_white_noise(out, params["snr_db"], generator)
    if out is wave:
        out = wave.clone()
    return (out, params) if return_params else out


def copy_seed(seed: int, key: str, index: int) -> int:
    """The generator seed of augmented copy ``index`` of utterance ``key`` (63-bit, from BLAKE2b)."""
    digest = hashlib.blake2b(f"{int(seed)}\x00{key}\x00{int(index)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def augmented_key(key: str, index: int) -> str:
    """Key of augmented copy ``index`` of ``key``: ``f"{key}_aug{index}"`` (see :func:`origin_key`)."""
    return f"{key}{AUG_SUFFIX}{int(index)}"


def origin_key(key: str) -> str:
    """The utterance an augmented copy was made from (``"ravdess_03-01_aug2" -> "ravdess_03-01"``).

    Returns ``key`` itself when it is not an augmented key (no ``_aug<digits>`` ending).
    """
    m = _AUG_KEY.match(key)
    return m.group("origin") if m else key


def augmented_copies(
    examples: Sequence[tuple[str, torch.Tensor]],
    n_copies: int,
    config: WaveAugmentConfig,
    seed: int,
    sample_rate: int = 16_000,
) -> list[tuple[str, torch.Tensor]]:
    """``n_copies`` augmented copies of each training utterance, keyed back to their origin.

    Copy ``i`` (``0 <= i < n_copies``) of ``(key, wave)`` is ``(f"{key}_aug{i}", augment_wave(wave,
    sample_rate, config, generator))`` with a generator seeded by :func:`copy_seed` ``(seed, key, i)``:
    a copy does not depend on the other examples or their order. :func:`origin_key` maps a copy's key
    back to ``key``. The originals are not included in the result (add them yourself).

    Args:
        examples: ``(key, wave)`` pairs of TRAINING utterances; keys are WebDataset keys (letters,
            digits, ``_`` and ``-``; no dots) and unique; waves ``(samples,)`` at ``sample_rate``.
        n_copies: copies per utterance, ``>= 0``.
        config: the augmentation settings.
        seed: base seed (an int).
        sample_rate: rate of the waves in Hz.

    Returns:
        ``len(examples) * n_copies`` pairs, grouped by example in input order, copies in index order.

    Raises:
        ValueError: a key is empty, holds a dot or another character outside ``[A-Za-z0-9_-]``, or
            repeats; ``n_copies`` is negative or not an int; a wave is not a non-empty 1-D float tensor.
    """
    if isinstance(n_copies, bool) or not isinstance(n_copies, numbers.Integral) or n_copies < 0:
        raise ValueError(f"augmented_copies: n_copies must be an int >= 0, got {n_copies!r}")
    seen: set[str] = set()
    for key, _ in examples:
        if not isinstance(key, str) or not _KEY_OK.match(key):
            raise ValueError(
                f"augmented_copies: key {key!r} must be non-empty and hold only letters, digits, '_' and '-' "
                "(WebDataset keys hold no dots)"
            )
        if key in seen:
            raise ValueError(f"augmented_copies: duplicate key {key!r}")
        seen.add(key)
    out: list[tuple[str, torch.Tensor]] = []
    gen = torch.Generator()
    for key, wave in examples:
        for i in range(int(n_copies)):
            gen.manual_seed(copy_seed(seed, key, i))
            out.append((augmented_key(key, i), augment_wave(wave, sample_rate, config, gen)))  # type: ignore[misc]
    return out
