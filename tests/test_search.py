"""A tiny real search on the synthetic corpus: Ray Tune + Optuna + Ray Train DDP (2 workers), with
its TensorBoard event files and Optuna study read back: ASHA (grace period 1) stops some of its 4
trials, and the study must say so; the reported test UA must be what the kept checkpoint scores."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pandas as pd
import pytest
from fixtures import SEARCH_EPOCHS, SEARCH_TRIALS, TINY_SEARCH
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from emohrnet.data.loading import load_examples
from emohrnet.inference.metrics import is_better
from emohrnet.inference.predict import Predictor
from emohrnet.io.location import Location
from emohrnet.shards import Manifest

TRIALS, EPOCHS = SEARCH_TRIALS, SEARCH_EPOCHS

TAGS = {"ray/tune/train_loss", "ray/tune/val_loss", "ray/tune/val_ua", "ray/tune/val_wa", "ray/tune/lr"}


@pytest.fixture
def search(tiny_search):
    """The session's tiny search (conftest.py): ``(summary, experiment folder)``."""
    return tiny_search


@pytest.mark.ray
def test_first_trial_is_the_papers_settings(search):
    summary, _ = search
    assert len(summary["trials"]) == TRIALS
    first = summary["trials"][0]
    assert first["baseline"] and first["params"] == {"lr": 1e-3, "freq_mask": 27, "time_mask": 100, "width": 6}
    assert "width 6 instead of 18 (W18 not in --widths)" in summary["baseline"]["deviations_from_paper"]
    assert not any(t["baseline"] for t in summary["trials"][1:])
    assert all(t["epochs_run"] == (EPOCHS if t["status"] == "completed" else 1) for t in summary["trials"])


@pytest.mark.ray
def test_summary_has_val_and_test_ua_with_protocol(search):
    summary, exp_dir = search
    saved = json.loads((exp_dir / "best.json").read_text())
    assert saved["best_trial"] == summary["best_trial"]
    assert saved["protocol"] == "speaker" and "speaker-independent fold 0" in saved["split"]
    assert max(t["best_val_ua"] for t in summary["trials"]) == saved["best_val_ua"]  # chosen on validation
    assert (exp_dir / saved["checkpoint"]).is_dir()  # named inside the experiment folder
    assert "lowest validation loss" in saved["selection_rule"]
    assert saved["tensorboard"] == f"tensorboard --logdir {exp_dir}"
    # the typed form reads the real file and writes it back unchanged, every trial's row included
    from tune.results import Summary

    typed = Summary.from_dict(saved)
    assert typed.to_dict() == saved and not typed.extra and not any(t.extra for t in typed.trials)
    assert typed.trial(typed.best_trial).test_ua == saved["test_ua"]


def _progress(exp_dir: Path, trial_id: str) -> pd.DataFrame:
    return pd.read_csv(exp_dir / f"trial_{trial_id}" / "progress.csv")


@pytest.mark.ray
def test_each_trial_keeps_the_epoch_the_selection_rule_picks(search):
    summary, exp_dir = search
    for t in summary["trials"]:
        df = _progress(exp_dir, t["trial_id"])
        best = None
        for row in df.itertuples():  # the rule, replayed independently of the training loop
            if best is None or is_better(row.val_ua, row.val_loss, best.val_ua, best.val_loss):
                best = row
        assert t["best_epoch"] == best.epoch and t["best_val_ua"] == best.val_ua == df["val_ua"].max()
        assert list(df["best_val_ua"]) == list(df["val_ua"].cummax())  # what Optuna and ASHA are told


@pytest.mark.ray
def test_only_the_chosen_trial_is_scored_on_test_and_its_checkpoint_reproduces_it(search):
    summary, exp_dir = search
    shard_dir = summary["shard_dirs"]["emohrnet"]
    manifest = Manifest.read(shard_dir)
    split = manifest.split("speaker", 0)
    test = load_examples(shard_dir, manifest, split.test)
    best = next(t for t in summary["trials"] if t["trial_id"] == summary["best_trial"])
    assert [t["trial_id"] for t in summary["trials"] if t["test_ua"] is not None] == [best["trial_id"]]
    for t in summary["trials"]:  # no trial scored its test part while the search ran
        df = _progress(exp_dir, t["trial_id"])
        assert list(df["epoch"]) == list(range(1, len(df) + 1))  # epochs from 1
        # every report the trial made (result.json: progress.csv keeps only its first report's columns)
        reports = [json.loads(line) for line in (exp_dir / f"trial_{t['trial_id']}" / "result.json").read_text()
                   .splitlines() if line.strip()]
        assert reports and not any("test_ua" in r or "test_confusion" in r for r in reports)
    predictor = Predictor(exp_dir / best["checkpoint"])  # one process here, through predict's code path
    assert predictor.state["best_epoch"] == best["best_epoch"] == summary["best_epoch"]
    scores = predictor.score_examples(test)
    assert scores["ua"] == summary["test_ua"] == best["test_ua"] and scores["wa"] == summary["test_wa"]
    assert scores["confusion"].tolist() == summary["test_confusion"]


@pytest.mark.ray
def test_study_holds_pruned_trials_and_best_so_far_values(search):
    summary, exp_dir = search
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{exp_dir / 'optuna.db'}")
    stopped = {t["trial_id"] for t in summary["trials"] if t["status"] != "completed"}
    assert stopped, "ASHA stopped no trial; the test cannot check PRUNED"
    # the summary's "stopped early" is ASHA's own record, not a guess from the number of epochs
    assert stopped == set(json.loads((exp_dir / "asha_stops.json").read_text()))
    assert all(t["status"] == "stopped early (ASHA)" for t in summary["trials"] if t["trial_id"] in stopped)
    assert len(study.trials) == TRIALS
    by_lr = {round(t["params"]["lr"], 12): t for t in summary["trials"]}
    for ot in study.trials:
        t = by_lr[round(ot.params["lr"], 12)]
        df = _progress(exp_dir, t["trial_id"])
        assert ot.intermediate_values == {i + 1: v for i, v in enumerate(df["val_ua"].cummax())}
        if t["trial_id"] in stopped:
            # Optuna keeps a pruned trial's last intermediate value as its value
            assert ot.state == optuna.trial.TrialState.PRUNED and ot.value == df["val_ua"].max()
            assert len(df) < EPOCHS
        else:
            assert ot.state == optuna.trial.TrialState.COMPLETE and ot.value == df["val_ua"].max()


@pytest.mark.ray
def test_every_trial_logs_to_tensorboard(search):
    summary, exp_dir = search
    event_files = sorted(exp_dir.glob("trial_*/events.out.tfevents.*"))
    assert len(event_files) == TRIALS
    for f in event_files:
        acc = EventAccumulator(str(f))
        acc.Reload()
        tags = set(acc.Tags()["scalars"])
        assert TAGS <= tags, TAGS - tags
        ua = acc.Scalars("ray/tune/val_ua")
        assert [e.step for e in ua] in ([1], [1, 2, 3])  # stopped at the first rung, or all epochs
        assert all(0.0 <= e.value <= 1.0 for e in ua)
        assert acc.Scalars("ray/tune/lr")[0].value > 0


@pytest.mark.ray
def test_optuna_study_is_stored(search):
    _, exp_dir = search
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{exp_dir / 'optuna.db'}")
    assert len(study.trials) == TRIALS
    assert study.trials[0].params["lr"] == pytest.approx(1e-3)


def _copy(exp_dir: Path, tmp_path: Path) -> Path:
    import shutil

    copy = tmp_path / "experiments" / exp_dir.name
    shutil.copytree(exp_dir, copy)
    return copy


def _planted(marker: Path) -> bytes:
    import pickle

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    return pickle.dumps(Payload())


@pytest.mark.ray
@pytest.mark.parametrize("target", ["tuner.pkl", "searcher-state", "params.pkl", "experiment_state-2099-01-01.json"])
def test_resume_refuses_a_planted_state_file_and_runs_nothing(search, tmp_path, capsys, target):
    """Ray unpickles an experiment's state on --resume: a file the search did not write is refused
    before Ray reads anything, and its payload never runs."""
    from tune.search import main
    from tune.state import verify_experiment

    copy = _copy(search[1], tmp_path)
    verify_experiment(Location(copy))  # what the search wrote verifies
    marker = tmp_path / "payload-ran"
    if target == "searcher-state":
        path = next(copy.glob("searcher-state-*.pkl"))
    elif target == "params.pkl":
        path = next(copy.glob("trial_*/params.pkl"))
    else:
        path = copy / target
    path.write_bytes(_planted(marker) if path.suffix == ".pkl" else json.dumps({"planted": True}).encode())
    assert main(["--resume", "--name", "tiny", "--storage-path", str(copy.parent)]) == 2
    err = capsys.readouterr().err
    assert f"refusing to resume: {path} is not signed by a search on this machine" in err
    assert not marker.exists() and not (copy / "search.lock").exists()


@pytest.mark.ray
def test_a_new_search_refuses_an_existing_name(search, capsys):
    """Running again without --resume used to merge into the same folder and study and overwrite best.json."""
    from tune.search import main

    exp_dir = search[1]
    before = (exp_dir / "best.json").read_bytes()
    assert main([*TINY_SEARCH, "--storage-path", str(exp_dir.parent), "--name", "tiny"]) == 2
    err = capsys.readouterr().err
    assert f"--name tiny: {exp_dir} already holds an experiment; continue it with --resume --name tiny" in err
    assert (exp_dir / "best.json").read_bytes() == before


@pytest.mark.ray
def test_a_second_search_on_a_running_experiment_is_refused(search, tmp_path, capsys):
    """A running search holds search.lock; a resume of the same experiment meanwhile is refused."""
    import ray

    from tune.search import main
    from tune.state import ExperimentLock

    copy = _copy(search[1], tmp_path)
    with ExperimentLock(Location(copy)):  # held by this (live) process, as by a running search
        assert main(["--resume", "--name", "tiny", "--storage-path", str(copy.parent)]) == 2
        err = capsys.readouterr().err
        assert "another search is running in this experiment" in err and f"delete {copy / 'search.lock'}" in err
        assert not ray.is_initialized()
    assert not (copy / "search.lock").exists()
