"""One trial of the search: a Ray Train ``TorchTrainer`` run inside a Tune function trainable.

Ray 2.60 runs Ray Train V2, where ``Tuner(trainer)`` is refused: the Tune trial is a small
driver function that starts a ``TorchTrainer`` with the trial's config and forwards each epoch's
metrics (and checkpoint path) to Tune with ``TuneReportCallback``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from emohrnet.config.experiment import ExperimentConfig

DRIVER_CPUS = 0.05
"""Logical CPUs a trial's driver (the Tune function trainable that starts and waits on its Ray Train run)
reserves. It computes nothing; its DDP workers reserve their own CPUs in the run's placement group. A
whole CPU per driver would make a 2-core machine run one 1-worker trial at a time, with a core reserved
for a process that sleeps (issue 23: two concurrent 1-worker trials)."""

DRIVER_RESOURCES = {"CPU": DRIVER_CPUS, "node:__internal_head__": 0.001}
"""What a trial's driver reserves: :data:`DRIVER_CPUS`, on the head node (Ray's ``node:__internal_head__``
resource). The driver, and the Ray Train controller that Ray 2.60 places beside it, then outlive any worker
node: a worker host lost mid-search costs the trial a restart of its DDP workers from the last checkpoint,
not the trial (issue 25). On one machine the head is the only node."""

RELEASE_WAIT_S = 20.0
"""Longest a trial waits, after its Ray Train run returns, for that run's placement groups to be
removed (:func:`_wait_until_released`)."""


@dataclass(frozen=True)
class TrialResources:
    """How each trial trains.

    Attributes:
        num_workers: DDP workers per trial.
        cpus_per_worker: CPUs each worker reserves (and torch threads it uses).
        gpus_per_worker: GPUs each worker reserves (0: CPU training with gloo; else NCCL).
        storage_path: where each trial's Ray Train run keeps its checkpoints (shared storage on
            a multi-node cluster).
        max_failures: worker-group restarts from the last checkpoint before a trial fails.
    """

    num_workers: int = 2
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    storage_path: str = ""
    max_failures: int = 2

    @property
    def backend(self) -> str:
        """The DDP backend: NCCL for whole GPUs; gloo on CPUs, and when a trial's workers share a GPU
        (``0 < gpus_per_worker < 1``: NCCL refuses two ranks on one device)."""
        gpus = self.gpus_per_worker
        return "nccl" if gpus >= 1 or (gpus > 0 and self.num_workers == 1) else "gloo"


def trial_train_config(params: dict[str, Any], base: ExperimentConfig, shard_dirs: dict[str, str],
                       score_test: bool = False) -> dict[str, Any]:
    """The training config of a trial: the experiment's settings with the trial's parameters applied,
    reading the shards of the trial's model (so no model trains on features built for another).
    ``score_test``: the run scores its best epoch on test (a cross-fold fold); a search's trial does not."""
    from emohrnet.training.config import TrainConfig

    trial = base.with_params(params)
    config = TrainConfig.from_experiment(trial, shard_dirs[trial.model.name]).to_dict()
    config["score_test"] = bool(score_test)
    return config


def run_trial(params: dict[str, Any], resources: TrialResources, base: ExperimentConfig,
              shard_dirs: dict[str, str], score_test: bool = False) -> None:
    """Tune function trainable: train one configuration with Ray Train (DDP).

    Args:
        params: the trial's parameters as Tune hands them (the searched ones, or a cross-fold run's
            ``fold``), flat keys of :meth:`ExperimentConfig.with_params`.
        resources: scaling of the trial's Ray Train run.
        base: the settings every trial shares (the experiment's config).
        shard_dirs: each model's shards (log-mel or MFCC).
        score_test: score the best epoch on the test part after the last epoch (cross-fold folds only:
            a search's trials are chosen on validation, and only the chosen one is scored on test).
    """
    from ray import tune
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    from emohrnet.training.loop import checkpoint_config, train_loop_per_worker

    from .rendezvous import BoundTorchConfig

    worker = {"CPU": resources.cpus_per_worker}
    if resources.gpus_per_worker:
        worker["GPU"] = resources.gpus_per_worker
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config=trial_train_config(params, base, shard_dirs, score_test),
        torch_config=BoundTorchConfig(backend=resources.backend),  # rendezvous on the node's address only
        scaling_config=ScalingConfig(num_workers=resources.num_workers, use_gpu=resources.gpus_per_worker > 0,
                                     resources_per_worker=worker),
        run_config=RunConfig(
            name=tune.get_context().get_trial_id(),
            storage_path=resources.storage_path,
            callbacks=[TuneReportCallback()],
            checkpoint_config=checkpoint_config(),
            failure_config=FailureConfig(max_failures=resources.max_failures),
        ),
    )
    before = _live_placement_groups()
    try:
        trainer.fit()
    finally:
        _wait_until_released(before, RELEASE_WAIT_S)


def trainable(resources: TrialResources, base: ExperimentConfig, shard_dirs: dict[str, str],
              score_test: bool = False):
    """The Tune trainable of a search's trials and of a cross-fold run's folds: :func:`run_trial` with
    ``resources``, ``base`` and ``shard_dirs`` bound, its driver reserving :data:`DRIVER_CPUS` (its workers
    reserve theirs in their own placement group) on the head node (:data:`DRIVER_RESOURCES`). ``score_test``: as
    :func:`run_trial` (cross-fold runs)."""
    from ray import tune

    bound = tune.with_parameters(run_trial, resources=resources, base=base, shard_dirs=shard_dirs,
                                 score_test=score_test)
    return tune.with_resources(bound, dict(DRIVER_RESOURCES))


def launch_tuner(trial, param_space: dict[str, Any], *, name: str, storage: str, dirname, max_concurrent: int,
                 num_samples: int = 1, search_alg=None, scheduler=None, metric: str | None = None,
                 mode: str | None = None, callbacks: list | None = None, fail_fast: bool = False):
    """The one place a Ray Tune ``Tuner`` is made, for a search (Optuna, ASHA, ``num_samples`` trials,
    stopping at the first failed trial) and for a cross-fold run (a grid over the folds).

    Args:
        trial: the trainable (:func:`trainable`).
        param_space: what Tune varies (a search space, or ``{"fold": tune.grid_search(folds)}``).
        name, storage: the Tune run's name and its storage path (a folder or a bucket URI): the run's
            folder is ``<storage>/<name>``.
        dirname: ``trial -> folder name`` of each trial inside it.
        max_concurrent: trials at once.
        num_samples, search_alg, scheduler, metric, mode: as ``tune.TuneConfig`` takes them.
        callbacks: Tune callbacks (the search's state signer, its console).
        fail_fast: stop the run when a trial fails (the search: a configuration error is not retried).
    """
    from ray import tune

    return tune.Tuner(
        trial,
        param_space=param_space,
        tune_config=tune.TuneConfig(search_alg=search_alg, scheduler=scheduler, num_samples=num_samples,
                                    metric=metric, mode=mode, max_concurrent_trials=max_concurrent,
                                    trial_dirname_creator=dirname),
        run_config=tune.RunConfig(name=name, storage_path=storage, callbacks=callbacks,
                                  failure_config=tune.FailureConfig(fail_fast=fail_fast)),
    )


def _live_placement_groups() -> set[str]:
    """Ids of the cluster's placement groups that are not removed."""
    import ray.util

    return {pg for pg, info in ray.util.placement_group_table().items() if info.get("state") != "REMOVED"}


def _wait_until_released(before: set[str], timeout_s: float) -> None:
    """Keep the trial alive until the placement groups created during its Ray Train run are removed.

    ``TrainController.run`` returns before the controller has finished shutting its worker group
    down; Tune then ends the trial's actor, which owns the controller, and the controller can die
    mid-shutdown, leaving the worker group's placement group (its CPUs) reserved, so the next trial's
    workers wait for resources that never come (seen on a 2-core machine: "The worker group
    startup timed out after 60.0 seconds"). Waiting here lets the controller finish. Placement groups
    of trials running at the same time can also be counted, so the wait is bounded by ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _live_placement_groups() - before:
        time.sleep(0.1)
