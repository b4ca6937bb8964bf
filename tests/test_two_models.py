"""The second architecture in the pipeline: MFCC shards with augmented copies, no leak of augmented
validation/test utterances into training, and a search choosing between the two models, its Optuna
study in a real PostgreSQL server (``--study-storage URL``)."""

from __future__ import annotations

import contextlib
import json

import optuna
import pytest
import torch
from corpus_trees import write_ravdess_tree
from postgres import Unavailable, postgres_server

from emohrnet.data.loading import load_examples
from emohrnet.data.wave_augment import origin_key
from emohrnet.frontend import MfccConfig
from emohrnet.shards import build_shards
from emohrnet.training.loop import check_features
from tune.search import parse_args, run_search


@pytest.fixture(scope="module")
def mfcc_shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("two_models")
    write_ravdess_tree(root / "ravdess", actors=range(1, 7), emotions=(1, 3, 5, 6), seconds=0.5)
    return build_shards("ravdess", root / "ravdess", root / "mfcc", features=MfccConfig(n_mfcc=20),
                        augment_copies=2, progress=False, log=lambda *a: None)


def test_mfcc_shards_hold_copies_traced_to_their_origin(mfcc_shards):
    m = mfcc_shards.manifest
    assert m.feature_kind == "mfcc" and m.features["n_mfcc"] == 20
    assert m.augmentation["copies"] == 2 and len(m.augmented) == 2 * m.num_utterances
    keys = {u["key"] for u in m.utterances}
    assert all(c["origin"] in keys and origin_key(c["key"]) == c["origin"] and "." not in c["key"]
               for c in m.augmented)
    assert not keys & {c["key"] for c in m.augmented}  # copies are never utterances of a split


@pytest.fixture(scope="module")
def logmel_speed_shards(tmp_path_factory):
    """Log-mel shards with speed-perturbed copies, built as a --space recipe search builds them."""
    from emohrnet.config.experiment import DataConfig

    root = tmp_path_factory.mktemp("speed_copies")
    write_ravdess_tree(root / "ravdess", actors=range(1, 7), emotions=(1, 3, 5, 6), seconds=0.5)
    data = DataConfig(dataset="ravdess", data_root=str(root / "ravdess"), n_mels=32, speed_copies=2)
    return build_shards(**data.build_arguments("logmel"), out=root / "logmel", progress=False, log=lambda *a: None)


@pytest.mark.parametrize("shards", ["mfcc_shards", "logmel_speed_shards"])
def test_augmented_copies_of_val_and_test_never_reach_training(shards, request):
    built = request.getfixturevalue(shards)
    m, shard_dir = built.manifest, built.shard_dir
    assert len(m.augmented) == 2 * m.num_utterances
    everything = load_examples(shard_dir, m, [u["key"] for u in m.utterances], with_copies=True)
    own_copies = {e.key: e.variants for e in everything}
    for fold in range(len(m.folds)):
        split = m.split("speaker", fold)
        held_out = set(split.val) | set(split.test)
        for world in (1, 2):
            train = [e for rank in range(world)
                     for e in load_examples(shard_dir, m, split.train, rank, world, with_copies=True)]
            assert {e.key for e in train} == set(split.train)
            assert all(len(e.variants) == 2 for e in train)
            # each training example carries exactly its own copies (so none of a held-out utterance)
            assert not {e.key for e in train} & held_out
            assert all(len(e.variants) == len(own_copies[e.key])
                       and all(torch.equal(v, c) for v, c in zip(e.variants, own_copies[e.key], strict=True))
                       for e in train)
            changed = [not torch.equal(v, e.features) for e in train for v in e.variants]
            assert sum(changed) > 0.5 * len(changed)  # each augmentation applies with probability 0.5
        val = load_examples(shard_dir, m, split.val)
        assert val and all(not e.variants for e in val)


def test_a_model_never_trains_on_another_models_features(mfcc_shards):
    check_features("cnn1d_attention", mfcc_shards.manifest, "x")
    with pytest.raises(ValueError, match="hold mfcc features but emohrnet trains on logmel"):
        check_features("emohrnet", mfcc_shards.manifest, "x")
    with pytest.raises(ValueError, match="unknown model"):
        check_features("resnet", mfcc_shards.manifest, "x")


@pytest.fixture
def study_storage():
    """The URL of a real PostgreSQL server for the test, or ``None`` (the default SQLite file) where
    none can start here; CI requires the server (``EMOHRNET_REQUIRE_POSTGRES=1``)."""
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(postgres_server())
        except Unavailable as err:
            print(f"no PostgreSQL here, the study stays in SQLite: {err}")
            url = None
        yield url


@pytest.mark.ray
def test_search_between_the_two_models(tmp_path, ray_address, study_storage):
    """Both models' baselines first, on the session's cluster (the two 1-worker trials at once);
    the study in PostgreSQL where a server can start (always in CI)."""
    import ray
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    args = parse_args([
        "--model", "any", "--num-samples", "2", "--epochs", "1", "--workers", "1", "--widths", "4",
        "--stem-channels", "8", "--blocks", "1", "--modules", "1,1,1,1", "--n-mels", "32", "--n-mfcc", "20",
        "--segment-seconds", "1.0", "--augment-copies", "1", "--storage-path", str(tmp_path), "--name", "both",
        "--corpus-option", "n_speakers=6", "--corpus-option", "n_per_class=4", "--address", ray_address,
        *(["--study-storage", study_storage] if study_storage else []),
    ])
    try:
        summary = run_search(args, log=lambda *a: None).to_dict()
    finally:
        ray.shutdown()
    storage = study_storage or f"sqlite:///{tmp_path / 'both' / 'optuna.db'}"
    assert (tmp_path / "both" / "optuna.db").exists() == (study_storage is None)  # PostgreSQL: not in SQLite
    if study_storage:
        assert json.loads((tmp_path / "both" / "config.json").read_text())["search"]["study_storage"] == study_storage
    study = optuna.load_study(study_name="both", storage=storage)
    by_model = {t["model"]: t for t in summary["trials"]}
    assert sorted(t.params["model"] for t in study.trials) == ["cnn1d_attention", "emohrnet"]
    for ot in study.trials:  # each trial's value is its best validation UA, whichever model
        assert ot.value == pytest.approx(by_model[ot.params["model"]]["best_val_ua"])
    assert study.trials[0].params["lr"] == pytest.approx(1e-3)
    models = [t["model"] for t in summary["trials"]]
    assert models == ["emohrnet", "cnn1d_attention"]  # both baselines first
    assert all(t["baseline"] for t in summary["trials"])
    # only the chosen trial, whichever model it is, was scored on test
    assert [t["trial_id"] for t in summary["trials"] if t["test_ua"] is not None] == [summary["best_trial"]]
    cnn = summary["trials"][1]
    assert cnn["params"]["cnn_width"] == 64 and cnn["params"]["aug_prob"] == pytest.approx(0.5)
    assert set(summary["shard_dirs"]) == {"emohrnet", "cnn1d_attention"}
    kinds = {m: json.loads((tmp_path.parent / d / "manifest.json").read_text())["feature_kind"]
             for m, d in summary["shard_dirs"].items()}
    assert kinds == {"emohrnet": "logmel", "cnn1d_attention": "mfcc"}
    for f in sorted((tmp_path / "both").glob("trial_*/events.out.tfevents.*")):
        acc = EventAccumulator(str(f))
        acc.Reload()
        assert "ray/tune/val_ua" in acc.Tags()["scalars"]
    # predict and export on the checkpoints this real training wrote, for both models
    from emohrnet.inference.export import export_checkpoint, max_difference
    from emohrnet.inference.predict import Predictor
    from emohrnet.inference.predict import main as predict_main
    from emohrnet.io import paths
    from emohrnet.shards import Manifest
    from emohrnet.training.checkpoint import load_model

    wav = sorted((paths.corpora_dir() / "synthetic").rglob("*.wav"))[0]  # the corpus the search trained on
    for trial in summary["trials"]:
        checkpoint = str(tmp_path / "both" / trial["checkpoint"])  # best.json names it inside the experiment
        shard_dir = summary["shard_dirs"][trial["model"]]
        manifest = Manifest.read(shard_dir)
        split = manifest.split("speaker", 0)
        scores = Predictor(checkpoint).score_examples(load_examples(shard_dir, manifest, split.test))
        if trial["test_ua"] is not None:  # the chosen trial: what the search scored once
            assert scores["ua"] == pytest.approx(trial["test_ua"], abs=1e-12)
        model, state = load_model(checkpoint)
        assert state["model_name"] == trial["model"]
        n_features = manifest.features.get("n_mels") if trial["model"] == "emohrnet" else \
            manifest.features["n_mfcc"]
        for fmt in ("onnx", "torchscript"):
            model_file, _ = export_checkpoint(checkpoint, fmt, tmp_path / trial["model"] / f"m.{fmt}")
            assert max_difference(model, model_file, fmt, n_features) <= 1e-4, (trial["model"], fmt)
        out = tmp_path / f"{trial['model']}.csv"
        assert predict_main(["--checkpoint", checkpoint, "--format", "csv", "--out", str(out), str(wav)]) == 0
        assert any(f",{c}," in out.read_text() for c in manifest.classes)
