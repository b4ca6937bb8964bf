"""The experiment's settings as one typed tree (emohrnet.config.experiment): built from the search's
command line in one place, saved as config.json and read back unchanged, a trial as the base with its
parameters applied, the differences from the paper derived from the paper's settings (issue 14)."""

from __future__ import annotations

import json

import pytest

from emohrnet.config.experiment import ExperimentConfig
from emohrnet.models import EMOHRNET_PAPER, CNN1DAttentionConfig, EmoHRNetConfig
from emohrnet.training.config import TrainConfig
from tune.experiment import Experiment
from tune.options import config_from_args, parse_args

OPTIONS = ["--dataset", "synthetic", "--model", "any", "--epochs", "7", "--workers", "1", "--widths", "4,6",
           "--stem-channels", "8", "--blocks", "2", "--modules", "1,1,2,1", "--n-mels", "32", "--seed", "5",
           "--corpus-option", "n_speakers=8", "--lr-schedule", "cosine", "--fold", "2", "--num-samples", "4"]


def test_the_command_line_becomes_sections_and_config_json_reads_back_the_same(tmp_path):
    config = config_from_args(parse_args(OPTIONS))
    assert (config.data.dataset, config.data.n_mels, config.data.corpus_options) == ("synthetic", 32, ["n_speakers=8"])
    assert config.model.name == "any"
    assert config.model.settings["emohrnet"] == EmoHRNetConfig(width=18, stem_channels=8, blocks_per_branch=2,
                                                               modules=[1, 1, 2, 1])
    assert config.model.settings["cnn1d_attention"] == CNN1DAttentionConfig()
    assert (config.optimizer.epochs, config.optimizer.lr_schedule, config.optimizer.lr) == (7, "cosine", 1e-3)
    assert (config.protocol.fold, config.protocol.seed, config.resources.workers) == (2, 5, 1)
    assert (config.search.widths, config.search.num_samples) == ([4, 6], 4)
    Experiment(tmp_path).write_config(config)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert list(saved) == ["version", "data", "model", "optimizer", "augmentation", "protocol", "resources", "search"]
    assert saved["model"]["settings"]["emohrnet"]["modules"] == [1, 1, 2, 1]
    assert Experiment(tmp_path).config() == config  # every section and field, typed as it was


def test_an_experiment_from_before_config_json_is_read_from_its_search_args(tmp_path):
    args = parse_args(OPTIONS)
    (tmp_path / "search_args.json").write_text(json.dumps(vars(args)))
    assert Experiment(tmp_path).config() == config_from_args(args)
    assert Experiment(tmp_path / "none").config() is None


def test_a_trial_is_the_base_with_its_parameters_applied():
    base = config_from_args(parse_args(OPTIONS))
    before = base.to_dict()
    trial = base.with_params({"model": "cnn1d_attention", "lr": 5e-4, "cnn_width": 32, "dropout": 0.1,
                              "aug_prob": 0.25, "width": 6, "fold": 3, "shard_dir": "elsewhere", "shard_dirs": {}})
    assert base.to_dict() == before  # the base is not changed
    assert trial.model.name == "cnn1d_attention" and trial.optimizer.lr == 5e-4 and trial.protocol.fold == 3
    assert trial.model.settings["cnn1d_attention"] == CNN1DAttentionConfig(cnn_width=32, dropout=0.1)
    assert trial.model.settings["emohrnet"].width == 6 and trial.augmentation.aug_prob == 0.25
    assert trial.data.shard_dir is None  # a run's shard folder is not the experiment's
    run = TrainConfig.from_experiment(trial, "shards/mfcc")
    assert TrainConfig.from_dict(run.to_dict()) == run  # the flat dict a Ray Train run gets reads back the same
    assert run.architecture == CNN1DAttentionConfig(cnn_width=32, dropout=0.1)
    assert (run.shard_dir, run.model, run.protocol.fold, run.optimizer.epochs, run.optimizer.lr_schedule,
            run.protocol.seed, run.augmentation.aug_prob) == ("shards/mfcc", "cnn1d_attention", 3, 7, "cosine", 5, 0.25)
    assert run.optimizer is not trial.optimizer  # the run holds its own sections, the trial's stay as they are
    with pytest.raises(ValueError, match="a training run needs one of emohrnet, cnn1d_attention"):
        TrainConfig.from_experiment(base, "shards")  # "any" is not a model a run can train


def test_the_defaults_are_the_papers_recipe_in_both_forms():
    """The tree's defaults and a training run's defaults agree, and both are EMOHRNET_PAPER."""
    run = TrainConfig.from_experiment(ExperimentConfig(), "shards")
    assert run == TrainConfig(shard_dir="shards")
    flat = run.to_dict()
    assert {k: flat[k] for k in EMOHRNET_PAPER} == EMOHRNET_PAPER


def test_the_differences_from_the_paper_are_derived_from_it():
    paper = ExperimentConfig()
    assert paper.paper_deviations(set()) == []
    config = config_from_args(parse_args(OPTIONS))
    searched = {"lr", "freq_mask", "time_mask", "width"}
    assert config.paper_deviations(searched) == [  # the synthetic profile's batch 16, and the options given
        "EmoHRNet batch_size 16 instead of 64", "EmoHRNet epochs 7 instead of 100",
        "EmoHRNet stem_channels 8 instead of 64", "EmoHRNet blocks_per_branch 2 instead of 4",
        "EmoHRNet modules [1, 1, 2, 1] instead of [1, 1, 4, 3]", "EmoHRNet lr_schedule cosine instead of constant",
    ]
    assert paper.with_params({"lr": 3e-4}).paper_deviations(searched) == []  # a searched value is the trial's
    assert paper.with_params({"lr": 3e-4}).paper_deviations(set()) == ["EmoHRNet lr 0.0003 instead of 0.001"]
    assert paper.with_params({"epochs": 5}).paper_deviations(set()) == ["EmoHRNet epochs 5 instead of 100"]
    cnn = config_from_args(parse_args([*OPTIONS[:2], "--model", "cnn1d_attention", "--epochs", "7"]))
    assert cnn.paper_deviations(set()) == []  # EmoHRNet's recipe says nothing of the 1D CNN's run


@pytest.mark.parametrize("bad, message", [
    ({"version": 99}, "config version 99 is newer"),
    ({"trainer": {}}, r"unknown config section\(s\) trainer \(allowed: data, model"),
    ({"optimizer": {"learning_rate": 1}}, r"section 'optimizer': unknown field\(s\) learning_rate \(allowed: "),
    ({"model": {"settings": {"resnet": {}}}}, r"unknown model\(s\) resnet \(allowed: emohrnet, cnn1d_attention\)"),
    ({"model": {"settings": {"emohrnet": {"width": "wide"}}}}, r"EmoHRNetConfig.width='wide': expected int"),
])
def test_a_config_that_does_not_read_is_refused_by_name(bad, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        ExperimentConfig.from_dict(bad)
    (tmp_path / "config.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match=f"{tmp_path / 'config.json'}: "):
        Experiment(tmp_path).config()
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="config.json: not a JSON experiment config"):
        Experiment(tmp_path).config()


def test_every_searched_parameter_reaches_the_trials_training_run():
    """A trial trains with the values drawn for it, not the baseline's: a searched key that the config
    dropped would train every trial at the default while the summary shows the drawn parameters."""
    from emohrnet.models import MODEL_SPECS, Choice, IntRange
    from tune.trial import trial_train_config

    for name, spec in MODEL_SPECS.items():
        point = {}
        for key, param in spec.space.items():
            if isinstance(param, Choice):
                point[key] = next(v for v in param.values if v != spec.baseline[key])
            else:
                value = param.low + (param.high - param.low) * 0.3
                point[key] = int(value) if isinstance(param, IntRange) else value
            assert point[key] != spec.baseline[key]
        run = trial_train_config({"model": name, **point}, ExperimentConfig(), {name: f"shards-{name}"})
        assert {k: run[k] for k in point} == point
        assert (run["model"], run["shard_dir"]) == (name, f"shards-{name}")


def test_one_table_files_flat_keys_into_the_sections_of_a_run():
    """A trial's flat parameters reach the training run through PARAMS: each in its section, cast to its
    field's type (Tune hands over numpy numbers), and the run's flat dict reads back to the same run."""
    import numpy as np

    from emohrnet.config.experiment import PARAMS

    run = TrainConfig.from_dict({"shard_dir": "s", "epochs": np.int64(7), "lr": np.float64(5e-4), "fold": 2.0,
                                 "mixup_alpha": 0, "amp": "off", "width": 6, "num_samples": 9, "shard_dirs": {}})
    assert (run.optimizer.epochs, run.optimizer.lr, run.protocol.fold) == (7, 5e-4, 2)
    assert type(run.optimizer.epochs) is int and type(run.protocol.fold) is int and type(run.optimizer.lr) is float
    assert type(run.augmentation.mixup_alpha) is float and run.speed.amp == "off" and run.architecture.width == 6
    assert TrainConfig.from_dict(run.to_dict()) == run
    slots = (PARAMS["lr"].section, PARAMS["fold"].section, PARAMS["width"].model)
    assert slots == ("optimizer", "protocol", "emohrnet")
    assert "num_samples" not in PARAMS  # the search's own settings are not the library's
    with pytest.raises(ValueError, match="epochs='many': expected an integer"):
        TrainConfig.from_dict({"shard_dir": "s", "epochs": "many"})


def test_the_search_space_refuses_a_parameter_no_section_holds(monkeypatch):
    """A searched key the config does not hold would be drawn by Optuna and silently ignored by every trial."""
    from emohrnet.models import MODEL_SPECS, Uniform
    from tune.space import search_space_keys

    spec = MODEL_SPECS["emohrnet"]
    monkeypatch.setitem(spec.space, "momentum", Uniform(0.8, 0.99))
    with pytest.raises(ValueError, match="'momentum' is no setting of the experiment config"):
        search_space_keys("emohrnet")
    monkeypatch.delitem(spec.space, "momentum")
    monkeypatch.setitem(spec.space, "freq_mask", Uniform(0.0, 40.0))
    with pytest.raises(ValueError, match="'freq_mask' is an integer setting"):
        search_space_keys("emohrnet")


def test_the_search_settings_live_with_the_search():
    from tune.search_config import SearchExperimentConfig

    assert "search" not in ExperimentConfig.sections()
    assert SearchExperimentConfig.sections()[-1] == "search"
    with pytest.raises(ValueError, match="unknown config section"):
        ExperimentConfig.from_dict({"search": {"num_samples": 3}})  # the library does not read a search's section
    assert SearchExperimentConfig.from_dict({"search": {"num_samples": 3}}).search.num_samples == 3


def test_a_setting_declared_twice_is_refused(monkeypatch):
    """A model setting named like a section's field (or another model's) would be filed into one place only."""
    from dataclasses import dataclass
    from types import SimpleNamespace

    from emohrnet.config import experiment

    @dataclass
    class Clashing:
        lr: float = 0.1

    monkeypatch.setitem(experiment.MODEL_SPECS, "clash", SimpleNamespace(config_cls=Clashing))
    with pytest.raises(TypeError, match="setting 'lr' is declared twice"):
        experiment._param_table()
