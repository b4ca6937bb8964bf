"""The search spaces and the baseline trials (each paper's settings), as Ray Tune takes them, from the
model registry (:data:`emohrnet.models.MODEL_SPECS`: each model's declared ranges and baseline point).

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

``--space recipe`` (:data:`emohrnet.models.SPACES`) adds each model's recipe levers (issue 23), each off
in the baseline trial: ``mixup_alpha`` uniform in [0, 0.5], ``label_smoothing`` uniform in [0, 0.2],
``warmup_epochs`` integer in [0, 5]; EmoHRNet's ``head_dropout`` uniform in [0, 0.5] and ``aug_prob`` (the
share of speed-perturbed copies, ``--speed-copies``) uniform in [0, 1]; and the number of epochs, a choice
of half, three quarters or all of ``--epochs`` (the baseline trains all of them).

``--model any`` searches both: a categorical ``model`` plus both models' parameters (each model
ignores the other's), with both baselines first.
"""

from __future__ import annotations

from typing import Any

from emohrnet.config.experiment import PARAMS
from emohrnet.models import EMOHRNET_PAPER, MODEL_SPECS, Choice, IntRange, Param, Uniform

MODELS = tuple(MODEL_SPECS)
"""The models the search chooses between (the registry's, in its order)."""

PAPER_SETTINGS: dict[str, Any] = MODEL_SPECS["emohrnet"].baseline
"""EmoHRNet's searched parameters at the paper's values (its baseline trial)."""

PAPER_FIXED: dict[str, Any] = {k: v for k, v in EMOHRNET_PAPER.items() if k not in PAPER_SETTINGS}
"""EmoHRNet's settings that are not searched (HRNet-W18's structure, Adam and its constant learning
rate, batch, epochs); a search that runs with others says so ("differs from the paper")."""

DEFAULT_WIDTHS: tuple[int, ...] = MODEL_SPECS["emohrnet"].space["width"].values
"""The HRNet widths searched unless ``--widths`` says otherwise."""


def _distribution(param: Param):
    """Ray Tune's distribution for a declared range."""
    from ray import tune

    if isinstance(param, Uniform):
        return (tune.loguniform if param.log else tune.uniform)(param.low, param.high)
    if isinstance(param, IntRange):
        return tune.randint(param.low, param.high + 1)  # randint excludes its upper bound
    return tune.choice(list(param.values))


def epoch_choices(epochs: int) -> tuple[int, ...]:
    """The numbers of epochs ``--space recipe`` chooses from: half, three quarters and all of ``--epochs``
    (ASHA stops weak trials on top of this; a shorter run also completes its learning-rate schedule)."""
    return tuple(sorted({max(1, round(epochs / 2)), max(1, round(3 * epochs / 4)), int(epochs)}))


def _params(model: str, widths: tuple[int, ...], space: str, epochs: int | None) -> dict[str, Param]:
    params = MODEL_SPECS[model].searched(space)
    if "width" in params:
        if not widths or min(widths) < 1:
            raise ValueError(f"--widths needs positive integers, got {widths}")
        params["width"] = Choice(tuple(sorted(set(widths))))
    if space == "recipe" and epochs:
        params["epochs"] = Choice(epoch_choices(epochs))
    check_params(params)
    return params


def check_params(params: dict[str, Param]) -> None:
    """Refuse a searched parameter the experiment config does not hold, or an integer field drawn from a
    continuous range: a trial's parameters reach its training run through the one table of flat keys
    (:data:`emohrnet.config.experiment.PARAMS`), so a key missing there would be silently ignored.

    Raises:
        ValueError: naming the parameter.
    """
    for key, param in params.items():
        slot = PARAMS.get(key)
        if slot is None:
            raise ValueError(f"searched parameter {key!r} is no setting of the experiment config "
                             "(emohrnet.config.experiment.PARAMS); declare it in a section or a model's settings")
        if slot.kind == "int" and isinstance(param, Uniform):
            raise ValueError(f"searched parameter {key!r} is an integer setting: declare an IntRange or a Choice")


def _space(model: str, widths: tuple[int, ...], space: str = "paper", epochs: int | None = None) -> dict[str, Any]:
    return {k: _distribution(p) for k, p in _params(model, widths, space, epochs).items()}


def search_space(model: str = "emohrnet", widths: tuple[int, ...] = DEFAULT_WIDTHS, space: str = "paper",
                 epochs: int | None = None) -> dict[str, Any]:
    """Ray Tune search space of ``model`` (a registered model, or ``any``: a categorical ``model`` plus
    every model's parameters, each model ignoring the others') in the named ``space``
    (:data:`emohrnet.models.SPACES`): ``"paper"``, or ``"recipe"``, which adds the model's recipe levers
    and, with ``epochs`` (``--epochs``, the most a trial trains), the number of epochs (:func:`epoch_choices`).

    Raises:
        ValueError: unknown model or space, or ``widths`` empty or non-positive.
    """
    from ray import tune

    if model in MODEL_SPECS:
        return _space(model, widths, space, epochs)
    if model == "any":
        out: dict[str, Any] = {"model": tune.choice(list(MODELS))}
        for name in reversed(MODELS):  # the first model's parameters last: its distributions win
            out.update(_space(name, widths, space, epochs))
        return out
    raise ValueError(f"unknown model {model!r}; use one of {', '.join(MODELS)} or any")


def search_space_keys(model: str = "emohrnet", space: str = "paper", epochs: int | None = None) -> tuple[str, ...]:
    """The searched parameters of ``model`` (a registered model, or ``any``: ``model`` and every
    model's) in ``space``, as flat keys of a trial's parameters.

    Raises:
        ValueError: unknown model or space.
    """
    if model in MODEL_SPECS:
        return tuple(_params(model, (1,), space, epochs))
    if model != "any":
        raise ValueError(f"unknown model {model!r}; use one of {', '.join(MODELS)} or any")
    return ("model", *dict.fromkeys(k for name in MODELS for k in _params(name, (1,), space, epochs)))


def _baseline(model: str, widths: tuple[int, ...], space: str = "paper", epochs: int | None = None
              ) -> tuple[dict[str, Any], list[str]]:
    """A model's baseline point and its notes; EmoHRNet's width outside ``--widths`` is replaced by the
    closest one. In the recipe space every lever is off and the epochs are all of ``epochs``."""
    spec = MODEL_SPECS[model]
    point = dict(spec.baseline)
    if space == "recipe":
        point.update({k: v for k, v in spec.levers_off.items() if k not in point})
        if epochs:
            point["epochs"] = int(epochs)
    notes = [spec.baseline_note] if spec.baseline_note else []
    if "width" in point and point["width"] not in widths:
        paper = point["width"]
        point["width"] = min(widths, key=lambda w: (abs(w - paper), w))
        notes.append(f"width {point['width']} instead of {paper} (W{paper} not in --widths)")
    return point, notes


def baseline_points(model: str = "emohrnet", widths: tuple[int, ...] = DEFAULT_WIDTHS, space: str = "paper",
                    epochs: int | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """The first trials: each searched model's baseline.

    Returns:
        ``(points, notes)``: the points for ``OptunaSearch(points_to_evaluate=points)`` and notes
        naming every way a baseline differs from its paper (EmoHRNet: a width outside
        ``--widths`` is replaced by the closest one). With ``any``, each model's point also holds
        the other models' baseline values (flat keys: every point has every parameter). In the recipe
        space every lever is off (:attr:`emohrnet.models.ModelSpec.levers_off`) and the epochs are
        ``epochs``.

    Raises:
        ValueError: unknown model or space.
    """
    if model in MODEL_SPECS:
        point, notes = _baseline(model, widths, space, epochs)
        return [point], notes
    if model != "any":
        raise ValueError(f"unknown model {model!r}; use one of {', '.join(MODELS)} or any")
    own = {name: _baseline(name, widths, space, epochs) for name in MODELS}
    points = []
    for name in MODELS:
        point: dict[str, Any] = {"model": name}
        for other in MODELS:
            if other != name:
                point.update(own[other][0])
        point.update(own[name][0])
        points.append(point)
    return points, [note for name in MODELS for note in own[name][1]]


def baseline_point(widths: tuple[int, ...] = DEFAULT_WIDTHS) -> tuple[dict[str, Any], list[str]]:
    """EmoHRNet's baseline point and its deviations from the paper (see :func:`baseline_points`)."""
    return _baseline("emohrnet", widths)
