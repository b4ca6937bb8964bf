"""An experiment folder copied or moved as a whole works where it is now: ``best.json`` names its
checkpoints relative to the folder, so predict and export on a copy use the copy's checkpoint and a
moved experiment predicts; a resumed copy continues its own Optuna study (``optuna.db`` in its folder)
and leaves the original's alone; a path that points outside the folder is refused, naming it."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import optuna
import pytest
from corpus_trees import write_audio
from fixtures import TINY_SEARCH

from emohrnet.io.experiment_paths import OutsideExperiment, below_experiment
from emohrnet.io.location import Location
from emohrnet.training.checkpoint import resolve_checkpoint, save_checkpoint_file

CHECKPOINT = "train_runs/abc123/checkpoint_000002"


def _save_model(folder: Path, seed: int) -> None:
    from fixtures import tiny_emohrnet

    from emohrnet.frontend import FeatureConfig

    model = tiny_emohrnet(4, seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    save_checkpoint_file(folder / "checkpoint.pt", {
        "model": model.state_dict(), "model_name": "emohrnet", "model_config": {**model.config, "num_classes": 4},
        "classes": ["angry", "happy", "neutral", "sad"], "features": FeatureConfig(n_mels=32).to_dict(),
        "seed": seed})


def _experiment(exp: Path, seed: int = 0, **summary) -> Path:
    """A finished experiment written by hand: one checkpoint (of a model seeded ``seed``) and best.json."""
    _save_model(exp / CHECKPOINT, seed)
    best = {"checkpoint": CHECKPOINT, "experiment_dir": str(exp), **summary}
    (exp / "best.json").write_text(json.dumps(best))
    return exp


def _seed(target) -> int:
    from emohrnet.training.checkpoint import load_checkpoint_file

    return load_checkpoint_file(target)["seed"]


@pytest.mark.parametrize("named, expected", [
    ("train_runs/t/checkpoint_000001", "train_runs/t/checkpoint_000001"),
    ("./train_runs/../train_runs/t", "train_runs/t"),
    ("../other/train_runs/t", None),
    ("/old/place/exp/train_runs/t", "train_runs/t"),       # the recorded folder
    ("/elsewhere/exp/train_runs/t", "train_runs/t"),       # below a folder of the recorded experiment's name
    ("/elsewhere/other/train_runs/t", None),
    ("s3://bucket/runs/exp/train_runs/t", "train_runs/t"),
])
def test_below_experiment(tmp_path, named, expected):
    assert below_experiment(named, Location(tmp_path / "copy"), recorded="/old/place/exp") == expected


def test_predict_and_export_on_a_copy_use_the_copys_checkpoint(tmp_path, capsys):
    """A copy whose original is then changed (or deleted) still predicts with its own weights; a moved
    experiment predicts too."""
    from emohrnet.inference import export, predict

    original = _experiment(tmp_path / "runs" / "exp", seed=0)
    copy = tmp_path / "copies" / "exp-copy"
    shutil.copytree(original, copy)
    _save_model(original / CHECKPOINT, seed=1)  # the original is retrained afterwards
    for target in (copy, copy / "best.json"):
        assert resolve_checkpoint(target) == Location(copy / CHECKPOINT / "checkpoint.pt")
        assert _seed(target) == 0
    shutil.rmtree(original)
    wav = write_audio(tmp_path / "a.wav", 0.5)
    assert predict.main(["--checkpoint", str(copy), "--format", "jsonl", str(wav)]) == 0
    moved = tmp_path / "moved" / "exp-moved"
    shutil.move(copy, moved)
    assert predict.main(["--checkpoint", str(moved / "best.json"), "--format", "jsonl", str(wav)]) == 0
    assert export.main(["--checkpoint", str(moved), "--format", "torchscript", "--out", str(tmp_path / "m.pt"),
                        "--no-verify"]) == 0
    assert json.loads((tmp_path / "m.pt.json").read_text())["classes"] == ["angry", "happy", "neutral", "sad"]
    capsys.readouterr()


def test_an_old_best_json_with_absolute_paths_reads_the_copys_checkpoint(tmp_path):
    """best.json files written before held absolute paths: one inside the experiment folder it recorded
    (or below a folder of the experiment's name) is read in the folder the best.json is in now."""
    from tune.experiment import Experiment

    gone = tmp_path / "gone" / "exp"
    copy = _experiment(tmp_path / "copy" / "exp-2", seed=3)
    (copy / "best.json").write_text(json.dumps({"checkpoint": str(gone / CHECKPOINT), "experiment_dir": str(gone),
                                                "trials": [{"trial_id": "abc123",
                                                            "checkpoint": str(gone / CHECKPOINT)}]}))
    assert resolve_checkpoint(copy) == Location(copy / CHECKPOINT / "checkpoint.pt") and _seed(copy) == 3
    assert Experiment(copy).checkpoint("abc123") == Location(copy / CHECKPOINT)
    same_name = _experiment(tmp_path / "other" / "exp", seed=4)
    (same_name / "best.json").write_text(json.dumps({"checkpoint": str(gone / CHECKPOINT)}))  # nothing recorded
    assert _seed(same_name) == 4


@pytest.mark.parametrize("named", ["outside", "../exp-b/" + CHECKPOINT])
def test_a_checkpoint_outside_the_experiment_is_refused_in_one_line(tmp_path, capsys, named):
    from emohrnet.inference import export, predict

    other = _experiment(tmp_path / "exp-b")
    exp = _experiment(tmp_path / "exp-a")
    if named == "outside":
        named = str(other / CHECKPOINT)
    (exp / "best.json").write_text(json.dumps({"checkpoint": named, "experiment_dir": str(exp)}))
    with pytest.raises(OutsideExperiment):
        resolve_checkpoint(exp)
    wav = write_audio(tmp_path / "a.wav", 0.5)
    assert predict.main(["--checkpoint", str(exp), str(wav)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and named in err and "outside the experiment folder" in err, err
    assert export.main(["--checkpoint", str(exp / "best.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{exp / 'best.json'}: its checkpoint {named} is outside" in err, err


# ---------------------------------------------------------------------------------- the study
def _searcher(url: str, name: str = "exp"):
    from ray import tune

    from tune.study import StudySearch

    searcher = StudySearch(metric="best_val_ua", mode="max", seed=0, study_name=name,
                           storage=optuna.storages.RDBStorage(url), epochs=2)
    return searcher, {"lr": tune.loguniform(1e-4, 1e-2)}


def _finish(searcher, trial_id: str, value: float) -> None:
    searcher.on_trial_result(trial_id, {"best_val_ua": value, "training_iteration": 1, "epoch": 1})
    searcher.on_trial_complete(trial_id, {"best_val_ua": value, "training_iteration": 2, "epoch": 2})  # from 1


def _trials(db: Path, name: str = "exp") -> list[tuple[int, str]]:
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{db}")
    return [(t.number, t.state.name) for t in study.trials]


def test_a_restored_search_continues_the_study_it_is_pointed_at(tmp_path):
    """What Ray pickles of the search names no database (unpickling OptunaSearch's opened the one it was
    made with); a resume points it at the experiment folder's own study before Ray restores its state."""
    from tune.study_storage import saved_study_urls

    original_db, copy_db = tmp_path / "a" / "optuna.db", tmp_path / "b" / "optuna.db"
    original_db.parent.mkdir()
    searcher, space = _searcher(f"sqlite:///{original_db}")
    tuner_pkl = pickle.dumps(searcher)  # as Tuner() writes tuner.pkl, before the search starts
    searcher.set_search_properties("best_val_ua", "max", space)
    searcher.suggest("t1")
    _finish(searcher, "t1", 0.5)
    searcher.suggest("t2")  # running when the search stopped
    searcher.save(str(tmp_path / "searcher-state.pkl"))
    assert saved_study_urls(tuner_pkl) == set() == saved_study_urls((tmp_path / "searcher-state.pkl").read_bytes())
    shutil.copytree(original_db.parent, copy_db.parent)
    before = _trials(original_db)
    assert before == [(0, "COMPLETE"), (1, "RUNNING")]

    restored = pickle.loads(tuner_pkl)
    restored.use_storage(f"sqlite:///{copy_db}")
    restored.restore(str(tmp_path / "searcher-state.pkl"))
    _finish(restored, "t2", 0.6)  # the running trial, finished after the resume
    restored.suggest("t3")
    _finish(restored, "t3", 0.7)
    assert _trials(copy_db) == [(0, "COMPLETE"), (1, "COMPLETE"), (2, "COMPLETE")]
    assert _trials(original_db) == before  # untouched

    unpointed = pickle.loads(tuner_pkl)
    with pytest.raises(RuntimeError, match="call use_storage"):
        unpointed.restore(str(tmp_path / "searcher-state.pkl"))


def test_a_search_saved_with_its_database_inside_is_refused_elsewhere(tmp_path):
    """An earlier emohrnet pickled the study's database into the searcher's state: a resume of a copy
    or a moved experiment refuses it, naming the database, before Ray unpickles anything."""
    from ray.tune.search.optuna import OptunaSearch

    from tune.search_config import SearchExperimentConfig
    from tune.study_storage import resume_study_url, saved_study_urls

    original = tmp_path / "a" / "exp"
    original.mkdir(parents=True)
    url = f"sqlite:///{original / 'optuna.db'}"
    old = OptunaSearch(metric="best_val_ua", mode="max", study_name="exp", storage=optuna.storages.RDBStorage(url))
    (original / "tuner.pkl").write_bytes(pickle.dumps(old))
    assert saved_study_urls((original / "tuner.pkl").read_bytes()) == {url}
    config = SearchExperimentConfig()
    assert resume_study_url(config, Location(original), log=lambda *a: None) == url  # where it was made
    copy = tmp_path / "b" / "exp"
    shutil.copytree(original, copy)
    with pytest.raises(OutsideExperiment, match=f"tuner.pkl: written by an earlier emohrnet, it names the Optuna "
                                                f"study {url}, outside this experiment folder {copy}"):
        resume_study_url(config, Location(copy), log=lambda *a: None)
    (copy / "optuna.db").unlink()
    with pytest.raises(OutsideExperiment, match=f"its Optuna study {copy / 'optuna.db'} is missing"):
        resume_study_url(config, Location(copy), log=lambda *a: None)


def test_a_copy_of_a_bucket_experiment_reads_its_own_checkpoint_and_study(s3_endpoint, tmp_path, monkeypatch):
    """In a bucket too: best.json's checkpoint is read in the folder it is in now; the SQLite study (on the
    machine that ran the search: a bucket cannot hold one) of a resumed copy is a copy of the original's,
    in a folder of its own, and the original's is left as it is."""
    import boto3

    from emohrnet.io import paths
    from tune.experiment import Experiment
    from tune.search_config import SearchExperimentConfig
    from tune.study_storage import local_study_url, resume_study_url

    boto3.client("s3").create_bucket(Bucket="relocate-test")
    monkeypatch.setenv("EMOHRNET_HOME", str(tmp_path / "home"))
    original, copy = Location("s3://relocate-test/runs/exp"), Location("s3://relocate-test/copies/exp")
    local = _experiment(tmp_path / "exp", seed=5)
    for exp in (original, copy):
        for f in sorted(p for p in local.rglob("*") if p.is_file()):
            (exp / str(f.relative_to(local))).write_bytes(f.read_bytes())
    assert resolve_checkpoint(copy) == copy / CHECKPOINT / "checkpoint.pt" and _seed(copy.uri) == 5

    config = SearchExperimentConfig()
    config.search.study_storage = url = local_study_url(original)  # what the search chose for the original
    assert url == f"sqlite:///{paths.home()}/studies/relocate-test/runs/exp/optuna.db"
    study = optuna.create_study(study_name="exp", storage=url)
    study.tell(study.ask(), 0.5)
    Experiment(copy).write_config(config)
    logs: list[str] = []
    assert resume_study_url(config, original, log=logs.append) == url
    own = resume_study_url(config, copy, log=logs.append)
    assert own == f"sqlite:///{paths.home()}/studies/relocate-test/copies/exp/optuna.db"
    assert f"Optuna study: {own}, copied from {url}" in logs[-1]
    optuna.load_study(study_name="exp", storage=own).tell(optuna.load_study(study_name="exp", storage=own).ask(), 0.7)
    assert len(optuna.load_study(study_name="exp", storage=own).trials) == 2
    assert len(optuna.load_study(study_name="exp", storage=url).trials) == 1


# ---------------------------------------------------------------------------------- real searches
@pytest.mark.ray
def test_a_copied_and_a_moved_search_predict_from_their_own_checkpoints(tiny_search, tmp_path):
    """The session's tiny search (conftest.py), copied twice: the second copy predicts after the first is
    deleted, with the scores the search reported, and after it is moved."""
    from emohrnet.data.loading import load_examples
    from emohrnet.inference.predict import Predictor
    from emohrnet.shards import Manifest
    from tune.experiment import Experiment

    summary, exp_dir = tiny_search
    saved = json.loads((exp_dir / "best.json").read_text())
    assert saved["checkpoint"].startswith("train_runs/") and all(
        t["path"] == f"trial_{t['trial_id']}" for t in saved["trials"])
    first = tmp_path / "first" / "tiny"
    shutil.copytree(exp_dir, first)
    second = tmp_path / "second" / "tiny-copy"
    shutil.copytree(first, second)
    shutil.rmtree(first)
    predictor = Predictor(second)
    assert resolve_checkpoint(second) == Experiment(second).checkpoint() / "checkpoint.pt"
    shard_dir = saved["shard_dirs"]["emohrnet"]
    manifest = Manifest.read(shard_dir)
    scores = predictor.score_examples(load_examples(shard_dir, manifest, manifest.split("speaker", 0).test))
    assert scores["ua"] == saved["test_ua"]
    moved = tmp_path / "moved" / "tiny-moved"
    shutil.move(second, moved)
    found = resolve_checkpoint(moved / "best.json")
    assert found.relative_to(Location(moved)) == f"{saved['checkpoint']}/checkpoint.pt"
    assert Predictor(moved).classes == summary["classes"]


@pytest.mark.ray
def test_a_resumed_copy_or_moved_search_writes_its_own_study(tmp_path, monkeypatch, ray_address):
    """A search interrupted in its second trial (SIGTERM, as kill or a scheduler sends it) is copied under
    another name and resumed: the interrupted trial's result and the copy's trials go to the copy's
    optuna.db; the original's study is unchanged. Then the original is moved and resumed: its study is
    found where it is now, and nothing is written where it was. The trials report one canned epoch (no
    training): what is checked is where the study lives."""
    import os
    import signal

    import ray

    from tune import trial
    from tune.search import SearchInterrupted, parse_args, run_search

    driver, interrupt = os.getpid(), {"now": True}

    # pickled by value with ``interrupt`` as it is then
    def planted_trial(params, resources, base, shard_dirs, score_test=False):
        import time

        from ray import tune

        if params["lr"] != 1e-3 and interrupt["now"]:  # the second trial (the first is the paper's baseline)
            os.kill(driver, signal.SIGTERM)
            time.sleep(30)  # the search stops the trial meanwhile
        ua = 0.3 + params["lr"]
        tune.report({"epoch": 1, "epochs": 1, "best_epoch": 1, "val_ua": ua, "best_val_ua": ua, "val_loss": 1.0,
                     "val_wa": ua})

    common = [*TINY_SEARCH, "--num-samples", "2", "--workers", "1", "--epochs", "1", "--grace-period", "1",
              "--max-concurrent", "1"]
    monkeypatch.setattr(trial, "run_trial", planted_trial)  # what tune.trial.trainable binds
    import torch

    from tune import summary as summary_module

    # the planted trials keep no checkpoint: the chosen one's single test scoring is canned
    canned = {"ua": 0.25, "wa": 0.25, "loss": 1.0, "n": 2, "confusion": torch.eye(2, dtype=torch.long)}
    monkeypatch.setattr(summary_module, "score_on_trial_resources", lambda *a, **k: canned)
    sigterm = signal.getsignal(signal.SIGTERM)
    original = tmp_path / "runs" / "relo"
    interrupted = [(0, "COMPLETE"), (1, "RUNNING")]
    try:
        with pytest.raises(SearchInterrupted):
            run_search(parse_args([*common, "--storage-path", str(original.parent), "--name", "relo",
                                   "--address", ray_address]), log=lambda *a: None)
        ray.shutdown()  # a search that joined a cluster leaves the connection to its caller
        assert _trials(original / "optuna.db", "relo") == interrupted
        interrupt["now"] = False
        copy = tmp_path / "copies" / "relo-copy"
        shutil.copytree(original, copy)
        logs: list[str] = []
        run_search(parse_args(["--resume", "--name", "relo-copy", "--storage-path", str(copy.parent),
                               "--address", ray_address]), log=logs.append)
        ray.shutdown()
        assert f"Optuna study: sqlite:///{copy / 'optuna.db'} (in the experiment folder)" in logs
        assert _trials(copy / "optuna.db", "relo") == [(0, "COMPLETE"), (1, "COMPLETE")]
        assert _trials(original / "optuna.db", "relo") == interrupted  # the original's study is left alone

        moved = tmp_path / "elsewhere" / "runs" / "relo"
        moved.parent.parent.mkdir()
        shutil.move(original.parent, moved.parent)
        run_search(parse_args(["--resume", "--name", "relo", "--storage-path", str(moved.parent),
                               "--address", ray_address]), log=lambda *a: None)
    finally:
        ray.shutdown()
        signal.signal(signal.SIGTERM, sigterm)
    assert _trials(moved / "optuna.db", "relo") == [(0, "COMPLETE"), (1, "COMPLETE")]
    assert not original.parent.exists()  # nothing written where it was
    best = json.loads((moved / "best.json").read_text())
    assert best["experiment_dir"] == str(moved) and all(t["path"].startswith("trial_") for t in best["trials"])
