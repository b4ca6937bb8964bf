"""The recipe levers of issue 23 (mixup, label smoothing, warm-up, head dropout, the number of epochs), the
named search spaces, their command-line checks, and the study's record of a failed trial run again."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
import torch
import torch.nn.functional as F

from emohrnet.config.experiment import ExperimentConfig
from emohrnet.training.config import TrainConfig
from emohrnet.training.mixup import mixup_batch, soft_targets, training_loss
from tune.options import parse_args
from tune.space import baseline_points, epoch_choices, search_space_keys
from tune.trial import trial_train_config

LEVERS = ("mixup_alpha", "label_smoothing", "warmup_epochs", "head_dropout", "aug_prob", "epochs")


def test_mixup_targets_sum_to_one_and_mix_the_two_labels():
    rng = np.random.default_rng(0)
    x, y = torch.randn(16, 1, 8, 10), torch.randint(0, 4, (16,))
    mixed, targets, lam = mixup_batch(x, y, 4, alpha=0.4, label_smoothing=0.1, rng=rng)
    assert torch.allclose(targets.sum(1), torch.ones(16))
    assert 0.0 <= lam <= 1.0 and mixed.shape == x.shape
    again = np.random.default_rng(0)  # the same draws: the permutation can be recovered from them
    lam2 = again.beta(0.4, 0.4)
    perm = torch.from_numpy(again.permutation(16))
    assert lam == pytest.approx(lam2)
    assert torch.allclose(mixed, lam * x + (1 - lam) * x[perm])
    hard = F.one_hot(y, 4).float() * 0.9 + 0.1 / 4
    assert torch.allclose(targets, lam * hard + (1 - lam) * hard[perm])


def test_without_levers_the_loss_is_exactly_plain_cross_entropy():
    logits, y = torch.randn(8, 5), torch.randint(0, 5, (8,))
    assert torch.equal(training_loss(logits, y), F.cross_entropy(logits, y))
    # label smoothing is torch's (Szegedy et al.): the same as soft targets built by hand
    smoothed = training_loss(logits, y, label_smoothing=0.2)
    by_hand = -(soft_targets(y, 5, 0.2) * logits.log_softmax(1)).sum(1).mean()
    assert smoothed == pytest.approx(float(by_hand), rel=1e-6)
    with pytest.raises(ValueError, match="above 0"):
        mixup_batch(torch.zeros(2, 3), y[:2], 5, alpha=0.0)


def test_warmup_then_cosine_learning_rate():
    cfg = TrainConfig.from_dict({"shard_dir": "x", "lr": 1e-3, "epochs": 10, "warmup_epochs": 2,
                                 "lr_schedule": "cosine"})
    lrs = [cfg.epoch_lr(e) for e in range(10)]
    assert lrs[:2] == pytest.approx([1e-3 / 3, 2e-3 / 3])  # linear rise, below the peak
    assert lrs[2] == pytest.approx(1e-3)  # the schedule starts at the peak after the warm-up
    assert lrs[2:] == pytest.approx([1e-3 * 0.5 * (1 + math.cos(math.pi * k / 8)) for k in range(8)])
    plain = TrainConfig.from_dict({"shard_dir": "x", "lr": 1e-3, "epochs": 10, "lr_schedule": "cosine"})
    assert [plain.epoch_lr(e) for e in range(10)] == [1e-3 * 0.5 * (1 + math.cos(math.pi * e / 10)) for e in range(10)]


@pytest.mark.parametrize("bad", [{"mixup_alpha": -0.1}, {"label_smoothing": 1.0}, {"warmup_epochs": -1},
                                 {"aug_prob": 1.5}])
def test_train_config_refuses_levers_out_of_range(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        TrainConfig.from_dict({"shard_dir": "x", **bad})


def test_recipe_space_adds_the_levers_and_its_baseline_switches_them_off():
    assert set(search_space_keys("emohrnet", "paper")) == {"lr", "freq_mask", "time_mask", "width"}
    recipe = search_space_keys("emohrnet", "recipe", 40)
    assert set(recipe) == {"lr", "freq_mask", "time_mask", "width", *LEVERS}
    (point,), _ = baseline_points("emohrnet", (8, 12), "recipe", 40)
    assert {k: point[k] for k in LEVERS} == {"mixup_alpha": 0.0, "label_smoothing": 0.0, "warmup_epochs": 0,
                                             "head_dropout": 0.0, "aug_prob": 0.0, "epochs": 40}
    assert epoch_choices(40) == (20, 30, 40)
    assert {"mixup_alpha", "label_smoothing", "warmup_epochs", "epochs"} <= set(
        search_space_keys("cnn1d_attention", "recipe", 40))


def test_every_lever_reaches_the_trials_training_run():
    params = {"mixup_alpha": 0.3, "label_smoothing": 0.05, "warmup_epochs": 3, "head_dropout": 0.25,
              "aug_prob": 0.5, "epochs": 7}
    train = trial_train_config(params, ExperimentConfig(), {"emohrnet": "shards"})
    assert {k: train[k] for k in params} == params and train["score_test"] is False
    cfg = TrainConfig.from_dict(train)
    assert cfg.model_kwargs(64)["dropout"] == 0.25
    assert trial_train_config({}, ExperimentConfig(), {"emohrnet": "s"}, score_test=True)["score_test"] is True


def test_the_spaces_are_listed_by_help(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--space {paper,recipe}" in text and "paper: the mission's space" in text and "recipe: the paper" in text


@pytest.mark.parametrize("argv, option", [
    (["--mixup-alpha", "-0.1"], "--mixup-alpha"), (["--label-smoothing", "1"], "--label-smoothing"),
    (["--warmup-epochs", "-1"], "--warmup-epochs"), (["--head-dropout", "1.0"], "--head-dropout"),
    (["--speed-copies", "-1"], "--speed-copies"), (["--space", "huge"], "--space"),
    (["--space", "recipe", "--speed-copies", "0"], "--speed-copies"),
])
def test_new_options_out_of_range_exit_2_with_one_line(argv, option, capsys):
    with pytest.raises(SystemExit) as err:
        parse_args(argv)
    assert err.value.code == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert option in message and ("allowed" in message or "choose from" in message), message


def test_recipe_space_defaults_and_fixed_levers():
    args = parse_args(["--space", "recipe"])
    assert args.speed_copies == 2 and args.workers == 1  # a CPU-only search: 1-worker trials side by side
    from tune.options import config_from_args

    config = config_from_args(parse_args(["--mixup-alpha", "0.2", "--label-smoothing", "0.1", "--warmup-epochs",
                                          "2", "--head-dropout", "0.3", "--speed-copies", "1"]))
    assert config.search.space == "paper"
    train = trial_train_config({}, config, {"emohrnet": "s"})
    assert (train["mixup_alpha"], train["label_smoothing"], train["warmup_epochs"], train["head_dropout"]) == \
        (0.2, 0.1, 2, 0.3)
    assert config.data.build_arguments("logmel")["augment_copies"] == 1
    assert "EmoHRNet mixup_alpha 0.2 instead of 0.0" in config.paper_deviations(set())


def test_a_failed_trial_run_again_ends_in_the_study_as_tune_ends_it():
    from ray import tune

    from tune.study import StudySearch

    storage = optuna.storages.InMemoryStorage()
    searcher = StudySearch(space={"lr": tune.uniform(0.0, 1.0)}, metric="m", mode="max", epochs=2,
                           study_name="s", storage=storage, seed=0)
    params = searcher.suggest("t1")
    searcher.on_trial_result("t1", {"m": 0.2, "training_iteration": 1, "epoch": 1, "epochs": 2})
    searcher.on_trial_complete("t1", None, error=True)
    study = optuna.load_study(study_name="s", storage=storage)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.FAIL]
    # --resume runs it again: its results now count, with the same parameters
    searcher.on_trial_result("t1", {"m": 0.3, "training_iteration": 1, "epoch": 1, "epochs": 2})
    searcher.on_trial_complete("t1", {"m": 0.5, "training_iteration": 2, "epoch": 2, "epochs": 2})
    trials = optuna.load_study(study_name="s", storage=storage).trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.COMPLETE]
    assert trials[1].params == trials[0].params == params and trials[1].value == 0.5
    assert trials[1].user_attrs["retry_of"] == trials[0].number
    assert trials[1].intermediate_values == {1: 0.3, 2: 0.5}
