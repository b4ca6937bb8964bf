"""Shards, checkpoints and a whole search kept in an object store (S3 API).

The store is a real S3-protocol HTTP server (moto's server mode) on a free localhost port, started
once per session before the session's Ray cluster (conftest.py ``s3_endpoint``); every read and write
goes through pyarrow's S3 file system, as on AWS, with ``AWS_ENDPOINT_URL`` pointing at it. Nothing
is mocked inside the process under test.
"""

from __future__ import annotations

import json
import os

import pytest
import torch
from corpus_trees import write_ravdess_tree
from fixtures import TINY_SEARCH, group_gone, listening_sockets
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from emohrnet.data.loading import DamagedShardError, load_examples
from emohrnet.frontend import FeatureConfig
from emohrnet.io.location import Location, is_uri
from emohrnet.models import build_model
from emohrnet.shards import Manifest, ShardError, build_shards
from emohrnet.training.checkpoint import load_model, save_checkpoint_file

BUCKET = "emohrnet-test"
FEATURES = FeatureConfig(n_mels=16)


@pytest.fixture(scope="module")
def s3(s3_endpoint):
    """An empty bucket on the session's S3 server (conftest.py ``s3_endpoint``); yields its URI."""
    import boto3

    boto3.client("s3").create_bucket(Bucket=BUCKET)
    return f"s3://{BUCKET}"


def _objects(prefix: str) -> list[str]:
    import boto3

    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def test_location_round_trip(s3, tmp_path):
    for base in (Location(f"{s3}/loc"), Location(tmp_path / "loc")):
        base.mkdir()
        (base / "a.json").write_text('{"x": 1}')
        assert json.loads((base / "a.json").read_text()) == {"x": 1}
        assert (base / "a.json").is_file() and not (base / "b.json").exists()
        assert [e.name for e in base.iterdir()] == ["a.json"]
        assert (base / "a.json").mtime() > 0
        with pytest.raises(FileNotFoundError, match="b.json"):
            (base / "b.json").read_bytes()
    remote = Location(f"{s3}/loc")
    assert not remote.is_local and is_uri(remote.uri) and remote.uri == f"{s3}/loc"
    assert (remote / "a.json").uri == f"{s3}/loc/a.json"
    with pytest.raises(ValueError, match="no local path"):
        _ = remote.local_path


def test_shards_published_to_the_bucket_read_back_and_checked(s3, tmp_path):
    root = tmp_path / "ravdess"
    write_ravdess_tree(root, actors=(1, 2, 3), emotions=(1, 3, 5), seconds=0.4)
    quiet = dict(features=FEATURES, progress=False, shard_size=3, log=lambda *a: None)
    target = f"{s3}/shards/ravdess"
    built = build_shards("ravdess", root, target, **quiet)
    assert built.shard_dir == target and not built.reused
    keys = set(_objects("shards/ravdess/"))
    assert "shards/ravdess/manifest.json" in keys
    assert {f"shards/ravdess/{s['file']}" for s in built.manifest.shards} <= keys
    assert Manifest.read(target) == built.manifest

    local = build_shards("ravdess", root, tmp_path / "local", **quiet)
    wanted = [u["key"] for u in built.manifest.utterances]
    remote_ex = load_examples(target, built.manifest, wanted)
    local_ex = load_examples(local.shard_dir, local.manifest, wanted)
    assert [e.key for e in remote_ex] == [e.key for e in local_ex] and len(remote_ex) == 9
    assert all(torch.equal(a.features, b.features) and a.label == b.label
               for a, b in zip(remote_ex, local_ex, strict=True))
    # two workers read disjoint parts of the bucket's shards that together cover the keys
    parts = [load_examples(target, built.manifest, wanted, rank, 2) for rank in (0, 1)]
    assert sorted(e.key for p in parts for e in p) == sorted(wanted)

    again = build_shards("ravdess", root, target, **quiet)
    assert again.reused

    # a shard truncated in the bucket: refused when read, republished by the next build
    shard = Location(target) / built.manifest.shards[0]["file"]
    shard.write_bytes(shard.read_bytes()[:1000])
    with pytest.raises(DamagedShardError, match=f"{shard.uri}: sha256 does not match.*shards.build --force"):
        load_examples(target, built.manifest, wanted)
    repaired = build_shards("ravdess", root, target, **quiet)
    assert not repaired.reused
    assert len(load_examples(target, repaired.manifest, wanted)) == 9


def test_shards_in_a_missing_bucket_fail_with_the_uri(s3, tmp_path):
    root = tmp_path / "ravdess"
    write_ravdess_tree(root, actors=(1,), emotions=(1, 3), seconds=0.3)
    with pytest.raises(ShardError, match="s3://no-such-bucket-here/shards: cannot publish the shards"):
        build_shards("ravdess", root, "s3://no-such-bucket-here/shards", features=FEATURES, progress=False,
                     log=lambda *a: None)
    with pytest.raises(ShardError, match="no-such-bucket-here/x/manifest.json: no manifest"):
        Manifest.read("s3://no-such-bucket-here/x")


def test_checkpoint_loads_from_the_bucket(s3, tmp_path):
    model = build_model("cnn1d_attention", 4, in_channels=8, widths=[4, 8, 8])
    state = {"model": model.state_dict(), "model_name": "cnn1d_attention", "model_config": model.config,
             "classes": ["a", "b", "c", "d"]}
    save_checkpoint_file(tmp_path / "checkpoint.pt", state)
    folder = Location(f"{s3}/runs/checkpoint_000001")
    (folder / "checkpoint.pt").upload(tmp_path / "checkpoint.pt")
    loaded, meta = load_model(folder.uri)
    assert meta["classes"] == ["a", "b", "c", "d"]
    x = torch.randn(2, 8, 30)
    assert torch.equal(loaded(x), model.eval()(x))
    (folder / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="checkpoint_000001/checkpoint.pt: not a readable emohrnet checkpoint"):
        load_model(folder.uri)


def test_crossfold_of_an_experiment_in_the_bucket(s3, tmp_path, monkeypatch):
    """``tune.evaluate --config s3://.../best.json`` (or the experiment's URI) reads the search's summary
    and options from the bucket, checks its shards there, runs the folds' Tune run in the bucket and
    writes crossfold.json and crossfold.md beside best.json (Ray Tune's grid replaced by canned fold
    results: no Ray)."""
    from fixtures import canned_tuner

    from tune import evaluate
    from tune.experiment import Experiment
    from tune.options import config_from_args
    from tune.search import parse_args

    exp = Location(f"{s3}/runs/handmade")
    options = parse_args(["--n-mels", "16", "--corpus-option", "n_speakers=8", "--corpus-option", "n_per_class=2"])
    Experiment(exp).write_config(config_from_args(options))
    shards = build_shards("synthetic", None, f"{s3}/runs/shards", features=FEATURES, progress=False,
                          corpus_options={"n_speakers": 8, "n_per_class": 2}, log=lambda *a: None)
    best = {"dataset": "synthetic", "protocol": "speaker", "fold": 0, "best_trial": "abc123",
            "shard_dirs": {"emohrnet": shards.shard_dir}, "best_config": {"model": "emohrnet", "epochs": 3, "lr": 1e-3}}
    (exp / "best.json").write_text(json.dumps(best))
    runs = canned_tuner(monkeypatch, {0: 0.5, 1: 0.9, 2: 0.6, 3: 0.7}, exp.uri)
    logs: list[str] = []
    for config in (exp.uri, (exp / "best.json").uri):
        args = evaluate.parse_args(["--dataset", "synthetic", "--config", config, "--folds", "all", "--name", "cf",
                                    "--force"])  # the second run replaces the first one's folds
        result = evaluate.run_crossfold(args, log=logs.append)
        assert result.source == (exp / "best.json").uri and result.tune_dir == (exp / "cf").uri
    assert runs[-1].storage_path == exp.uri and runs[-1].name == "cf"  # the folds' Tune run is in the bucket
    saved = json.loads((exp / "crossfold.json").read_text())
    assert [r["fold"] for r in saved["folds"]] == [0, 1, 2, 3] and saved["selection_folds"] == [1]
    assert "mean ± std over the 3 folds not used in selection" in (exp / "crossfold.md").read_text()
    assert f"reusing the search's shards in {shards.shard_dir}" in logs
    with pytest.raises(FileNotFoundError, match="runs/none/best.json: no such file"):
        evaluate.run_crossfold(evaluate.parse_args(["--dataset", "synthetic", "--config", f"{s3}/runs/none"]))


@pytest.mark.ray
def test_search_with_its_storage_in_the_bucket(s3, tmp_path, ray_address):
    """Results, checkpoints, TensorBoard logs and shards all land in the bucket; workers read the
    shards from it; a search interrupted by SIGTERM (what kill, systemd and schedulers send) stops as
    Ctrl+C does and continues from the bucket with --resume (on the session's cluster, whose workers
    reach the bucket). Its console shows one line per finished epoch (Ray's own output goes to
    search.log) and its local Ray listens on the loopback interface only. It runs the paper's random
    protocol end to end (split seed 1)."""
    import re
    import signal
    import subprocess
    import sys

    import ray

    from emohrnet.data.loading import load_examples as load
    from emohrnet.inference.predict import Predictor
    from emohrnet.io import paths
    from tune.local_ray import record_path
    from tune.search import parse_args, run_search

    storage = f"{s3}/emohrnet"
    exp = Location(storage) / "s3-tiny"
    first = subprocess.Popen(
        [sys.executable, "-m", "tune.search", *TINY_SEARCH, "--num-samples", "2", "--workers", "1",
         "--max-concurrent", "1", "--epochs", "1", "--grace-period", "1", "--protocol", "random", "--fold", "1",
         "--storage-path", storage, "--name", "s3-tiny"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines = []
    for line in first.stdout:  # the console: one line per epoch, one when a trial finishes
        lines.append(line)
        if line.rstrip().endswith(" finished"):
            break
    listeners = listening_sockets(first.pid)
    recorded = record_path("s3-tiny").is_file()  # what --stop-local would end after a hard kill
    first.send_signal(signal.SIGTERM)
    console = "".join(lines) + first.communicate(timeout=180)[0]
    assert first.returncode == 130, console[-3000:]  # interrupted like Ctrl+C, state saved: no abort (134)
    assert "Continue it with: python -m tune.search --resume --name s3-tiny" in console, console[-3000:]
    assert group_gone(first.pid), "the search left processes behind after SIGTERM"
    assert recorded and not record_path("s3-tiny").exists()  # a clean end forgets its local Ray
    finished = [line.split()[0] for line in lines if line.rstrip().endswith(" finished")]
    assert finished and not (exp / "best.json").exists()
    # the console: one line per finished epoch, no Ray tables or worker logs (those are in search.log)
    epoch_lines = [line for line in console.splitlines() if " epoch " in line]
    assert epoch_lines and all(re.fullmatch(r"[0-9a-f]{8} epoch +\d+/1  train loss [\d.]+  val UA +[\d.]+%  "
                                            r"best +[\d.]+%  +\d+ s", line) for line in epoch_lines), epoch_lines
    assert "Trial status" not in console and "RayTrainWorker" not in console and "TrainingReport" not in console
    assert len(console.splitlines()) < 30, console
    ray_log = (paths.home() / "logs" / "s3-tiny" / "search.log").read_text()  # a bucket's is kept here
    assert "RayTrainWorker" in ray_log and "Trial status" in ray_log
    # a local search's Ray listens on the loopback interface only (GCS, raylets, workers, agents, dashboard)
    names = {name for _, _, name in listeners}
    assert {"gcs_server", "raylet"} <= names and len(listeners) >= 5, listeners
    assert all(ip in ("127.0.0.1", "::ffff:127.0.0.1", "::1") for ip, _, _ in listeners), listeners

    # the resume, in this process, on the session's cluster (its workers reach the bucket)
    logs: list[str] = []
    try:
        returned = run_search(parse_args(["--resume", "--name", "s3-tiny", "--storage-path", storage,
                                          "--address", ray_address]), log=logs.append)
    finally:
        ray.shutdown()
    summary = json.loads((exp / "best.json").read_text())
    assert returned.best_trial == summary["best_trial"]
    assert f"Summary written to {exp / 'best.json'}" in logs
    assert len(summary["trials"]) == 2 and summary["protocol"] == "random" and summary["fold"] == 1
    assert summary["trials"][0]["trial_id"] == finished[0]  # kept, not run again
    assert "random stratified utterance split (seed 1" in summary["split"]
    assert summary["shard_dirs"]["emohrnet"].startswith(f"{storage}/shards/synthetic-logmel-")
    manifest = Manifest.read(summary["shard_dirs"]["emohrnet"])
    assert manifest.dataset == "synthetic"
    assert summary["checkpoint"].startswith("train_runs/")  # inside the experiment: read from where it is now
    checkpoint = (exp / summary["checkpoint"]).uri
    assert checkpoint.startswith(f"{storage}/")
    model, state = load_model(checkpoint)
    assert state["train_config"]["shard_dir"] == summary["shard_dirs"]["emohrnet"]
    # the reported test UA is what the kept checkpoint scores on the random split's test part, read from the bucket
    split = manifest.split("random", 1)
    test_part = load(summary["shard_dirs"]["emohrnet"], manifest, split.test)
    scores = Predictor(exp.uri).score_examples(test_part)  # the experiment's best.json names it
    assert scores["ua"] == pytest.approx(summary["test_ua"], abs=1e-12)

    keys = _objects("emohrnet/s3-tiny/")
    events = [k for k in keys if "/events.out.tfevents." in k]
    assert len(events) == 2, keys
    for event_key in events:
        local_events = tmp_path / event_key.rsplit("/", 1)[-1]
        local_events.write_bytes(Location(f"s3://{BUCKET}/{event_key}").read_bytes())
        acc = EventAccumulator(str(local_events))
        acc.Reload()
        assert [e.step for e in acc.Scalars("ray/tune/val_ua")] == [1]
    assert any(k.endswith("/checkpoint.pt") for k in keys)

    # python -m tune.report takes the bucket's experiment (what it reads is copied locally first)
    from tune import report

    assert report.main([exp.uri, "--out", str(tmp_path / "report")]) == 0
    md = (tmp_path / "report" / "report.md").read_text()
    assert exp.uri in md and all(t["trial_id"] in md for t in summary["trials"]), md[:2000]
    assert "No per-epoch history" not in md  # every trial's history was read from the bucket
    assert report.main([f"{storage}/no-such-experiment"]) == 2
    assert json.loads((exp / "config.json").read_text())["search"]["study_storage"].startswith("sqlite:///")

    # the experiment's lock and its signed state work in the bucket too
    import pickle

    from tune.state import ExperimentBusy, ExperimentLock, UntrustedState

    with ExperimentLock(exp):
        with pytest.raises(ExperimentBusy, match="another search is running in this experiment"):
            run_search(parse_args(["--resume", "--name", "s3-tiny", "--storage-path", storage]), log=lambda *a: None)
    assert not (exp / "search.lock").exists() and not ray.is_initialized()
    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    (exp / "tuner.pkl").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(UntrustedState, match=f"{exp / 'tuner.pkl'} is not signed by a search on this machine"):
        run_search(parse_args(["--resume", "--name", "s3-tiny", "--storage-path", storage]), log=lambda *a: None)
    assert not marker.exists() and not ray.is_initialized()
