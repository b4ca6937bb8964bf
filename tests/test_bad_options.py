"""Every bad option is refused before anything starts: one line naming the option and the allowed
values, exit status 2, no Ray started, nothing written (issue: every bad setting refused up front)."""

from __future__ import annotations

import json
import shutil

import pytest
import ray
from corpus_trees import write_ravdess_tree

from emohrnet.corpora import CorpusError, check_options, get_corpus
from emohrnet.inference import predict
from shards import build
from tune import search

# (argv, the text the one-line error must hold); each ran Ray, crashed or was accepted before
SEARCH_PROBES = [
    (["--fold", "99"], "argument --fold: 99 (allowed: 0 to 3, the 4 speaker folds of synthetic)"),
    (["--workers", "0"], "argument --workers: 0 is out of range (allowed: an integer >= 1)"),
    (["--modules", "1,1"], "argument --modules: '1,1' (allowed: 4 comma-separated integers >= 1)"),
    (["--segment-seconds", "0"], "argument --segment-seconds: 0 is out of range (allowed: a number > 0)"),
    (["--widths", "abc"], "argument --widths: 'abc' (allowed: comma-separated integers >= 1)"),
    (["--epochs", "0"], "argument --epochs: 0 is out of range"),
    (["--workers", "0", "--gpus-per-trial", "0.5"], "argument --workers: 0 is out of range"),
    (["--corpus-option", "foo=1"], "unknown options ['foo']"),
    (["--corpus-option", "novalue"], "--corpus-option 'novalue': use KEY=VALUE"),
    (["--num-samples", "-1"], "argument --num-samples: -1 is out of range"),
    (["--gpus-per-worker", "2"], "allowed: up to 1; a worker trains on one GPU"),
    (["--gpus-per-trial", "2.5"], "argument --gpus-per-trial: 2.5 (allowed: a fraction up to 1, or a whole"),
    (["--gpus-per-trial", "0"], "argument --gpus-per-trial: 0 is out of range (allowed: a number > 0)"),
    (["--gpus-per-trial", "1", "--gpus-per-worker", "1"], "not allowed with argument"),
    (["--batch-size", "0"], "argument --batch-size: 0 is out of range"),
    (["--batch-size", "15", "--workers", "2"], "does not divide by --workers 2"),
    (["--grace-period", "9", "--epochs", "2"], "argument --grace-period: 9 (allowed: 1 to --epochs 2)"),
    (["--name", "../elsewhere"], "argument --name: '../elsewhere' (allowed: letters"),
    (["--hop-length", "0"], "argument --hop-length: 0 is out of range"),
    (["--n-mels", "0"], "argument --n-mels: 0 is out of range"),
    (["--win-length", "1024", "--n-fft", "512"], "argument --win-length: 1024 is longer than --n-fft 512"),
    (["--cpus-per-worker", "nan"], "argument --cpus-per-worker: nan is out of range"),
    (["--dataset", "ravdess", "--corpus-option", "include_song=maybe"], "include_song='maybe' is not a boolean"),
    (["--amp", "fp8"], "argument --amp: invalid choice: 'fp8'"),
]


@pytest.mark.parametrize("argv, message", SEARCH_PROBES, ids=[" ".join(a) for a, _ in SEARCH_PROBES])
def test_search_refuses_a_bad_option_before_anything_starts(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("EMOHRNET_HOME", str(tmp_path))
    with pytest.raises(SystemExit) as exit_:
        search.main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert message in err, err
    assert err.count("error:") == 1 and "Traceback" not in err
    assert not ray.is_initialized() and not any(tmp_path.iterdir())  # nothing built, nothing started


def test_gpus_the_machine_lacks_are_refused_before_ray(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("EMOHRNET_HOME", str(tmp_path))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr("torch.cuda.device_count", lambda: 0)
    assert search.main(["--gpus-per-worker", "1"]) == 2
    err = capsys.readouterr().err
    assert "--gpus-per-worker 1 x --workers 2: a trial needs 2 GPUs and the cluster has 0" in err
    assert not ray.is_initialized() and not any(tmp_path.iterdir())


def test_a_fold_the_built_corpus_lacks_is_refused_before_ray(capsys, tmp_path, monkeypatch):
    """Two speakers make two folds, and fold 0 of them cannot be split (its validation share of 8
    utterances is smaller than the 4 classes): found once the corpus is scanned, before Ray starts."""
    monkeypatch.setenv("EMOHRNET_HOME", str(tmp_path))
    opts = ["--corpus-option", "n_speakers=2", "--corpus-option", "n_per_class=2", "--build-workers", "1"]
    assert search.main(["--fold", "3", *opts]) == 2
    assert "--fold 3: synthetic has 2 speaker folds here (allowed: 0 to 1)" in capsys.readouterr().err
    assert search.main(["--fold", "0", *opts]) == 2
    assert "error: --fold 0: The test_size = 1 should be greater or equal to the number of classes = 4" in \
        capsys.readouterr().err
    assert not ray.is_initialized() and not (tmp_path / "experiments").exists()


BUILD_PROBES = [
    (["--hop-length", "0"], "argument --hop-length: 0 is out of range"),
    (["--n-mels", "0"], "argument --n-mels: 0 is out of range"),
    (["--n-fft", "1"], "argument --n-fft: 1 is out of range"),
    (["--n-mels", "300", "--n-fft", "512"], "argument --n-mels: 300 is more than the 257 FFT bins"),
    (["--corpus-option", "foo=1"], "synthetic: unknown options ['foo']"),
    (["--shard-size", "0"], "argument --shard-size: 0 is out of range"),
    (["--augment-copies", "-1"], "argument --augment-copies: -1 is out of range"),
    (["--workers", "0"], "argument --workers: 0 is out of range"),
]


@pytest.mark.parametrize("argv, message", BUILD_PROBES, ids=[" ".join(a) for a, _ in BUILD_PROBES])
def test_shard_build_refuses_a_bad_option(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("EMOHRNET_HOME", str(tmp_path))
    with pytest.raises(SystemExit) as exit_:
        build.main(["--dataset", "synthetic", "--out", str(tmp_path / "out"), *argv])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message in err, err
    assert not any(tmp_path.iterdir())


def test_corpus_booleans_are_strict(tmp_path):
    """``include_song=no`` used to be read as true (any non-empty string)."""
    write_ravdess_tree(tmp_path, actors=(1,), emotions=(1, 5), vocal_channels=(1, 2))
    songs = {value: sum("-02-" in u.path for u in get_corpus("ravdess", tmp_path, include_song=value).scan().utterances)
             for value in ("no", "false", False, "yes", "true", True)}
    assert songs == {"no": 0, "false": 0, False: 0, "yes": 2, "true": 2, True: 2}
    with pytest.raises(CorpusError, match=r"include_song='maybe' is not a boolean \(allowed: true or false\)"):
        check_options("ravdess", {"include_song": "maybe"})
    with pytest.raises(CorpusError, match=r"improvised_only=2 is not a boolean"):
        check_options("iemocap", {"improvised_only": 2})


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A real (untrained) checkpoint written by the training code's own writer."""

    from fixtures import tiny_emohrnet

    from emohrnet.frontend import FeatureConfig
    from emohrnet.training.checkpoint import save_checkpoint_file

    folder = tmp_path_factory.mktemp("ckpt")
    model = tiny_emohrnet(4)
    save_checkpoint_file(folder / "checkpoint.pt", {
        "model": model.state_dict(), "model_name": "emohrnet", "model_config": {**model.config, "num_classes": 4},
        "classes": ["angry", "happy", "neutral", "sad"], "features": FeatureConfig(n_mels=32).to_dict()})
    return folder


def test_predict_refuses_a_bad_out_or_device_before_scoring(checkpoint, tmp_path, capsys, monkeypatch):
    wav = write_ravdess_tree(tmp_path / "audio", actors=(1,), emotions=(1,))[0].path
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    scored = []
    monkeypatch.setattr(predict.Predictor, "predict_file", lambda self, path: scored.append(path))
    probes = [
        (["--out", str(tmp_path)], f"argument --out: {tmp_path} is a folder"),
        (["--out", str(tmp_path / "missing" / "x.csv")], f"argument --out: {tmp_path / 'missing'} does not exist"),
        (["--device", "cuda"], "argument --device: cuda but this machine has no CUDA GPU (allowed: cpu)"),
        (["--device", "gpu9"], "argument --device: 'gpu9' (allowed: cpu, cuda, cuda:N, mps)"),
    ]
    for argv, message in probes:
        with pytest.raises(SystemExit) as exit_:
            predict.main(["--checkpoint", str(checkpoint), *argv, str(wav)])
        assert exit_.value.code == 2 and message in capsys.readouterr().err
    assert scored == []  # refused before any file was scored


def test_predict_takes_a_search_summary_or_experiment_folder(checkpoint, tmp_path):
    """``--checkpoint`` accepts the experiment folder or its best.json, which names the best checkpoint
    relative to the experiment folder (test_relocate: copied and moved experiments)."""
    wav = write_ravdess_tree(tmp_path / "audio", actors=(1,), emotions=(1,))[0].path
    exp = tmp_path / "exp"
    shutil.copytree(checkpoint, exp / "train_runs" / "t1" / "checkpoint_000001")
    (exp / "best.json").write_text(json.dumps({"checkpoint": "train_runs/t1/checkpoint_000001"}))
    direct = predict.Predictor(checkpoint).predict_file(wav)
    for target in (exp, exp / "best.json"):
        via = predict.Predictor(target).predict_file(wav)
        assert via.label == direct.label and via.probabilities == pytest.approx(direct.probabilities)
    (exp / "best.json").write_text(json.dumps({"checkpoint": None}))
    with pytest.raises(FileNotFoundError, match="names no checkpoint"):
        predict.Predictor(exp)


@pytest.mark.ray
def test_a_trial_that_fails_ends_the_search_with_its_error(tmp_path, capsys, monkeypatch, ray_address):
    """A trial's configuration error used to be retried and end as "interrupted ... continue with
    --resume" (exit 130), and resuming repeated it; now the search stops with the error (exit 1).
    On the session's cluster (conftest.py), one trial at a time."""
    from fixtures import TINY_SEARCH

    from tune import trial

    def failing_trial(params, resources, base, shard_dirs, score_test=False):
        raise ValueError("planted configuration error")

    monkeypatch.setenv("EMOHRNET_HOME", str(tmp_path))
    monkeypatch.setattr(trial, "run_trial", failing_trial)  # what tune.trial.trainable binds
    try:
        code = search.main([*TINY_SEARCH, "--num-samples", "3", "--workers", "1", "--max-concurrent", "1",
                            "--name", "fails", "--verbose", "--address", ray_address])
    finally:
        ray.shutdown()  # a search that joined a cluster leaves the connection to its caller
    err = capsys.readouterr().err
    assert code == 1, err[-3000:]
    assert "error: trial " in err and "failed, so the search stopped: ValueError: planted configuration error" in err
    assert "interrupted" not in err
    trials = list((tmp_path / "experiments" / "fails").glob("trial_*"))
    assert len(trials) == 1  # fail fast: no other trial was started after it
