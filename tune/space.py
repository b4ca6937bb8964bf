"""The search spaces and the baseline trials (each paper's settings).

Searched parameters are flat keys of the trial config, so ``points_to_evaluate`` takes them as
they are.

EmoHRNet (``--model emohrnet``):

- ``lr``: Adam learning rate, log-uniform in [1e-4, 3e-3].
- ``freq_mask``: SpecAugment F in mel bands, integer in [0, 40].
- ``time_mask``: SpecAugment T in frames, integer in [0, 120].
- ``width``: HRNet width C, branch widths (C, 2C, 4C, 8C), a choice from ``--widths``.

Its baseline trial, evaluated first, is EmoHRNet's published recipe (Muppidi & Radfar 2025):
lr 1e-3 with Adam betas (0.9, 0.999) and weight decay 1e-4, batch 64, HRNet-W18 widths, and
SpecAugment's LibriSpeech-basic F = 27, T = 100 (the paper gives no F and T).

The 1D CNN with channel and spatial attention (``--model cnn1d_attention``, Lee & Nadeem 2025):

- ``lr``: as above.
- ``cnn_width``: C, the conv blocks' widths (C, 2C, 4C), a choice of 32, 64, 128.
- ``dropout``: uniform in [0, 0.5].
- ``aug_prob``: the augmentation strength, the probability of training on a waveform-augmented
  copy (noise, pitch, speed) instead of the utterance, uniform in [0, 1].

Its baseline is lr 1e-3 (Adam), C = 64, dropout 0.3, aug_prob 0.5: the values this project
reads as the paper's setup; the paper's exact hyperparameters were not available to us, which
the summary says.

``--model any`` searches both: a categorical ``model`` plus both models' parameters (each model
ignores the other's), with both baselines first.
"""

from __future__ import annotations

from typing import Any

from emohrnet.models import MODEL_SPECS

MODELS = tuple(MODEL_SPECS)
"""The models the search chooses between (the registry's, in its order)."""

PAPER_SETTINGS: dict[str, Any] = {"lr": 1e-3, "freq_mask": 27, "time_mask": 100, "width": 18}
"""EmoHRNet's searched parameters at the paper's values (its baseline trial)."""

CNN_BASELINE: dict[str, Any] = {"lr": 1e-3, "cnn_width": 64, "dropout": 0.3, "aug_prob": 0.5}
"""The 1D CNN's searched parameters at its baseline values."""

CNN_BASELINE_NOTE = "cnn1d_attention baseline: lr 1e-3, widths 64/128/256, dropout 0.3, aug_prob 0.5 (the paper's " \
    "exact hyperparameters were not available)"

PAPER_FIXED: dict[str, Any] = {"beta1": 0.9, "beta2": 0.999, "weight_decay": 1e-4, "batch_size": 64,
                               "epochs": 100, "stem_channels": 64, "blocks_per_branch": 4,
                               "modules": [1, 1, 4, 3], "lr_schedule": "constant"}
"""EmoHRNet's settings that are not searched (HRNet-W18's structure, Adam and its constant learning
rate, batch, epochs)."""

DEFAULT_WIDTHS = (12, 18, 24, 32)
CNN_WIDTHS = (32, 64, 128)
LR_RANGE = (1e-4, 3e-3)
FREQ_MASK_RANGE = (0, 40)
TIME_MASK_RANGE = (0, 120)


def _emohrnet_space(widths: tuple[int, ...]) -> dict[str, Any]:
    from ray import tune

    if not widths or min(widths) < 1:
        raise ValueError(f"--widths needs positive integers, got {widths}")
    return {
        "lr": tune.loguniform(*LR_RANGE),
        "freq_mask": tune.randint(FREQ_MASK_RANGE[0], FREQ_MASK_RANGE[1] + 1),
        "time_mask": tune.randint(TIME_MASK_RANGE[0], TIME_MASK_RANGE[1] + 1),
        "width": tune.choice(sorted(set(widths))),
    }


def _cnn_space() -> dict[str, Any]:
    from ray import tune

    return {
        "lr": tune.loguniform(*LR_RANGE),
        "cnn_width": tune.choice(list(CNN_WIDTHS)),
        "dropout": tune.uniform(0.0, 0.5),
        "aug_prob": tune.uniform(0.0, 1.0),
    }


def search_space(model: str = "emohrnet", widths: tuple[int, ...] = DEFAULT_WIDTHS) -> dict[str, Any]:
    """Ray Tune search space of ``model`` (``emohrnet``, ``cnn1d_attention`` or ``any``).

    Raises:
        ValueError: unknown model, or ``widths`` empty or non-positive.
    """
    from ray import tune

    if model == "emohrnet":
        return _emohrnet_space(widths)
    if model == "cnn1d_attention":
        return _cnn_space()
    if model == "any":
        return {"model": tune.choice(list(MODELS)), **_cnn_space(), **_emohrnet_space(widths)}
    raise ValueError(f"unknown model {model!r}; use one of {', '.join(MODELS)} or any")


def _emohrnet_point(widths: tuple[int, ...]) -> tuple[dict[str, Any], list[str]]:
    point = dict(PAPER_SETTINGS)
    deviations = []
    if PAPER_SETTINGS["width"] not in widths:
        point["width"] = min(widths, key=lambda w: (abs(w - 18), w))
        deviations.append(f"width {point['width']} instead of 18 (W18 not in --widths)")
    return point, deviations


def baseline_points(model: str = "emohrnet", widths: tuple[int, ...] = DEFAULT_WIDTHS
                    ) -> tuple[list[dict[str, Any]], list[str]]:
    """The first trials: each searched model's baseline.

    Returns:
        ``(points, notes)``: the points for ``OptunaSearch(points_to_evaluate=points)`` and notes
        naming every way a baseline differs from its paper (EmoHRNet: a width outside
        ``--widths`` is replaced by the closest one).
    """
    hr, notes = _emohrnet_point(widths)
    if model == "emohrnet":
        return [hr], notes
    if model == "cnn1d_attention":
        return [dict(CNN_BASELINE)], [CNN_BASELINE_NOTE]
    if model == "any":
        both = [{"model": "emohrnet", **CNN_BASELINE, **hr}, {"model": "cnn1d_attention", **hr, **CNN_BASELINE}]
        return both, notes + [CNN_BASELINE_NOTE]
    raise ValueError(f"unknown model {model!r}; use one of {', '.join(MODELS)} or any")


def baseline_point(widths: tuple[int, ...] = DEFAULT_WIDTHS) -> tuple[dict[str, Any], list[str]]:
    """EmoHRNet's baseline point and its deviations from the paper (see :func:`baseline_points`)."""
    return _emohrnet_point(widths)
