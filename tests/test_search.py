"""A tiny real search on the synthetic corpus: Ray Tune + Optuna + Ray Train DDP (2 workers), with
its TensorBoard event files and Optuna study read back."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from fixtures import TINY_SEARCH
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tune.search import parse_args, run_search

TAGS = {"ray/tune/train_loss", "ray/tune/val_loss", "ray/tune/val_ua", "ray/tune/val_wa", "ray/tune/lr"}


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    import ray

    out = tmp_path_factory.mktemp("search")
    args = parse_args([*TINY_SEARCH, "--num-samples", "2", "--storage-path", str(out), "--name", "tiny"])
    try:
        summary = run_search(args, log=lambda *a: None)
    finally:
        ray.shutdown()
    return summary, out / "tiny"


@pytest.mark.ray
def test_first_trial_is_the_papers_settings(search):
    summary, _ = search
    assert len(summary["trials"]) == 2
    first = summary["trials"][0]
    assert first["baseline"] and first["params"] == {"lr": 1e-3, "freq_mask": 27, "time_mask": 100, "width": 6}
    assert "width 6 instead of 18 (W18 not in --widths)" in summary["baseline"]["deviations_from_paper"]
    assert not summary["trials"][1]["baseline"]
    assert all(t["epochs_run"] == 2 for t in summary["trials"])


@pytest.mark.ray
def test_summary_has_val_and_test_ua_with_protocol(search):
    summary, exp_dir = search
    saved = json.loads((exp_dir / "best.json").read_text())
    assert saved["best_trial"] == summary["best_trial"]
    assert saved["protocol"] == "speaker" and "speaker-independent fold 0" in saved["split"]
    assert 0.0 <= saved["best_val_ua"] <= 1.0 and 0.0 <= saved["test_ua"] <= 1.0
    best = max(summary["trials"], key=lambda t: t["best_val_ua"])
    assert saved["best_val_ua"] == best["best_val_ua"]  # chosen on validation UA
    assert Path(saved["checkpoint"]).is_dir()
    assert saved["tensorboard"] == f"tensorboard --logdir {exp_dir}"


@pytest.mark.ray
def test_every_trial_logs_to_tensorboard(search):
    summary, exp_dir = search
    event_files = sorted(exp_dir.glob("trial_*/events.out.tfevents.*"))
    assert len(event_files) == 2
    for f in event_files:
        acc = EventAccumulator(str(f))
        acc.Reload()
        tags = set(acc.Tags()["scalars"])
        assert TAGS <= tags, TAGS - tags
        ua = acc.Scalars("ray/tune/val_ua")
        assert [e.step for e in ua] == [1, 2]
        assert all(0.0 <= e.value <= 1.0 for e in ua)
        assert acc.Scalars("ray/tune/lr")[0].value > 0


@pytest.mark.ray
def test_optuna_study_is_stored(search):
    _, exp_dir = search
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{exp_dir / 'optuna.db'}")
    assert len(study.trials) == 2
    assert study.trials[0].params["lr"] == pytest.approx(1e-3)
