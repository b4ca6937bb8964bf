"""Ray Train on real clusters: DDP across two nodes, and a worker killed mid-epoch.

These run on the session's real Ray cluster (``ray.cluster_utils.Cluster`` on this machine,
conftest.py; a second node is added for the two-node run) and train a tiny EmoHRNet on a small
synthetic corpus.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psutil
import pytest

from emohrnet.frontend import FeatureConfig
from emohrnet.shards import build_shards
from emohrnet.training.loop import checkpoint_config, train_loop_per_worker

TINY = {"width": 4, "stem_channels": 8, "blocks_per_branch": 1, "modules": [1, 1, 1, 1], "segment_seconds": 1.0,
        "batch_size": 16, "seed": 0}

# After one epoch, a 2-worker DDP run (each worker its own half of the data, 8 per step) and a
# 1-worker run (16 per step) of the same seed see different mini-batches, so their metrics agree
# only approximately: both start from the same initial weights and take the same number of
# steps at the same global batch.
TRAIN_LOSS_TOLERANCE = 0.15
VAL_LOSS_TOLERANCE = 0.5


@pytest.fixture(scope="module")
def shard_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    result = build_shards("synthetic", root / "corpus", root / "shards", features=FeatureConfig(n_mels=32),
                          corpus_options={"n_speakers": 6, "n_per_class": 6, "duration": [1.0, 1.5]},
                          progress=False, log=lambda *a: None)
    return str(result.shard_dir)


def _fit(shard_dir, storage, name, workers, epochs, strategy="PACK", max_failures=0, callbacks=None):
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"shard_dir": shard_dir, "epochs": epochs, **TINY},
        scaling_config=ScalingConfig(num_workers=workers, resources_per_worker={"CPU": 1},
                                     placement_strategy=strategy),
        run_config=RunConfig(name=name, storage_path=str(storage), checkpoint_config=checkpoint_config(),
                             failure_config=FailureConfig(max_failures=max_failures), callbacks=callbacks),
    )
    return trainer.fit()


@pytest.mark.ray
def test_two_node_ddp_matches_one_worker(shard_dir, tmp_path, ray_cluster):
    """The session's cluster with a second node added for this test (removed after it)."""
    import ray
    from ray.util.state import list_actors

    node = ray_cluster.add_node(num_cpus=1)
    try:
        ray.init(address=ray_cluster.address, runtime_env={"env_vars": {"RAY_ADDRESS": ray_cluster.address}})
        ray_cluster.wait_for_nodes()
        assert len([n for n in ray.nodes() if n["Alive"]]) == 2
        two = _fit(shard_dir, tmp_path, "two-nodes", workers=2, epochs=1, strategy="STRICT_SPREAD")
        workers = list_actors(filters=[("class_name", "=", "RayTrainWorker")], detail=True, limit=100)
        assert len({a.node_id for a in workers}) == 2  # one worker on each node
        one = _fit(shard_dir, tmp_path, "one-worker", workers=1, epochs=1)
    finally:
        ray.shutdown()
        ray_cluster.remove_node(node)
    assert two.error is None and one.error is None
    assert abs(two.metrics["train_loss"] - one.metrics["train_loss"]) < TRAIN_LOSS_TOLERANCE
    assert abs(two.metrics["val_loss"] - one.metrics["val_loss"]) < VAL_LOSS_TOLERANCE
    assert Path(two.checkpoint.path).is_dir()


@pytest.mark.ray
def test_killed_worker_restarts_from_last_checkpoint(tmp_path, ray_address):
    """A search's trial (its own run_trial, its FailureConfig) whose DDP worker is killed mid-run
    restarts the worker group from the last checkpoint and still trains every epoch. The worker
    killed is the trial's own: its PID from Ray's actor table (the session's cluster runs nothing
    else meanwhile), nothing else on the machine."""
    import ray
    from fixtures import TINY_SEARCH
    from ray.util.state import list_actors

    from tune.search import parse_args, run_search

    epochs = 3
    args = parse_args([*TINY_SEARCH, "--num-samples", "1", "--epochs", str(epochs), "--grace-period", str(epochs),
                       "--storage-path", str(tmp_path), "--name", "faulty", "--address", ray_address])
    killed: dict[str, int] = {}

    def kill_a_worker_after_the_first_checkpoint():
        deadline = time.time() + 300
        while time.time() < deadline and not list((tmp_path / "faulty" / "train_runs").glob(
                "*/checkpoint_manager_snapshot.json")):  # written once a checkpoint counts
            time.sleep(0.1)
        workers = list_actors(filters=[("class_name", "=", "RayTrainWorker"), ("state", "=", "ALIVE")],
                              detail=True, limit=100)
        if workers:
            killed["pid"] = workers[-1].pid
            psutil.Process(killed["pid"]).kill()  # mid-epoch 1: the epoch-0 checkpoint has just been registered

    killer = threading.Thread(target=kill_a_worker_after_the_first_checkpoint, daemon=True)
    try:
        start = time.time()
        killer.start()
        summary = run_search(args, log=lambda *a: None).to_dict()
    finally:
        killer.join(timeout=60)
        ray.shutdown()
    assert killed.get("pid"), "no worker of the trial was found to kill"
    assert not psutil.pid_exists(killed["pid"]) or psutil.Process(killed["pid"]).status() == psutil.STATUS_ZOMBIE
    (trial,) = summary["trials"]
    assert trial["status"] == "completed" and trial["epochs_run"] == epochs, trial  # every epoch, once each
    progress = (tmp_path / "faulty" / f"trial_{trial['trial_id']}" / "progress.csv").read_text().splitlines()
    header = progress[0].split(",")
    last = dict(zip(header, progress[-1].split(","), strict=False))
    assert int(last["epoch"]) == epochs  # epochs count from 1
    assert int(last["start_epoch"]) >= 1  # the restarted worker group resumed from a checkpoint
    assert summary["test_ua"] is not None and time.time() - start < 600


class _RecordReports:
    """A Ray Train callback (it runs in the run's controller) that appends rank 0's metrics of every report
    to a JSON Lines file: what Tune receives through ``TuneReportCallback`` in a search."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def make(self):
        from ray.train import UserCallback

        path = self.path

        class Record(UserCallback):
            def after_report(self, run_context, metrics, checkpoint):
                import json

                with open(path, "a") as f:
                    f.write(json.dumps({k: v for k, v in metrics[0].items() if isinstance(v, (int, float, bool))})
                            + "\n")

        return Record()


@pytest.mark.ray
def test_a_run_restored_at_its_last_epoch_reports_its_stored_result(shard_dir, tmp_path, ray_address):
    """A search killed after a trial's last epoch was checkpointed but before Tune recorded the trial as
    finished restarts that trial's Ray Train run, which restores the last epoch's checkpoint from its run
    folder: no epoch is left to train. It used to report nothing (Tune: "did not include the specified
    metric(s) best_val_ua", on every resume); now it reports the stored result of its last epoch again."""
    import json

    import ray

    first_log, again_log = tmp_path / "first.jsonl", tmp_path / "again.jsonl"
    ray.init(address=ray_address)
    try:
        first = _fit(shard_dir, tmp_path, "last-epoch", workers=1, epochs=2,
                     callbacks=[_RecordReports(first_log).make()])
        # the same run started again, as a resumed search restarts its trial's run
        again = _fit(shard_dir, tmp_path, "last-epoch", workers=1, epochs=2,
                     callbacks=[_RecordReports(again_log).make()])
    finally:
        ray.shutdown()
    assert first.error is None and again.error is None
    reported = [json.loads(line) for line in first_log.read_text().splitlines()]
    (restored,) = [json.loads(line) for line in again_log.read_text().splitlines()]  # one report, no training
    assert [r["epoch"] for r in reported] == [1, 2]  # epochs count from 1
    assert restored["restored_finished"] is True and restored["start_epoch"] == 2
    for key in ("epoch", "best_val_ua", "best_val_loss", "best_epoch", "val_ua", "train_loss"):
        assert restored[key] == reported[-1][key], key
