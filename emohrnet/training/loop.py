"""Training EmoHRNet with Ray Train: :func:`train_loop_per_worker` for ``TorchTrainer``.

Distributed data parallel over N workers (gloo on CPU, NCCL on GPU, set up by Ray Train). The
paper's settings are the defaults (Muppidi & Radfar 2025, sec. 4.2): Adam with lr 1e-3, betas
(0.9, 0.999) and weight decay 1e-4; 100 epochs; batch 64; cross-entropy; SpecAugment and random
time shifts on training batches only (:mod:`emohrnet.data.augment`). ``batch_size`` is the global
batch: each of N workers takes ``batch_size // N`` per step.

Data parallelism follows ``DistributedSampler`` semantics (:func:`emohrnet.data.loading.rank_order`):
every worker holds the whole training part and trains on its share of one seeded permutation per
epoch, so every rank sees every training speaker and class. The global batch must divide by the
number of workers. BatchNorm statistics are one set for all ranks (:mod:`emohrnet.training.distributed`):
SyncBatchNorm on CUDA, running statistics averaged over the ranks before every evaluation and
checkpoint on CPU.

Every epoch reports ``train_loss``, ``val_loss``, ``val_ua``, ``val_wa`` and ``lr`` (plus
``epoch`` and ``best_epoch``, counted from 1, ``epochs``, the run's planned epochs, ``best_val_ua``,
``best_val_loss`` and ``start_epoch``, the epochs done before this run of the worker group started:
above 0 after a restart from a checkpoint) with a checkpoint. A run restored from the checkpoint of
its last epoch (killed before Tune recorded it as finished) reports that epoch's stored result again
and ends. The best epoch follows :data:`emohrnet.inference.metrics.SELECTION_RULE` (highest validation
UA, ties broken by the lower validation loss); every checkpoint holds the best epoch's weights so
far (``best_model``, or ``model`` when it is the best) beside the current ones, so the run keeps
only the latest checkpoint (:func:`checkpoint_config`), which serves restarts and model selection
alike. With ``score_test`` (a cross-fold run's folds), after the last epoch the best epoch's weights
are scored on the test set once; that report also carries ``test_ua``, ``test_wa`` and ``test_loss``.
A search's trials do not score test at all: the chosen trial's checkpoint is scored once after the
search (:mod:`tune.summary`). Model selection never looks at the test set.

Speed (:meth:`TrainConfig.resolve_speed`): each worker caches its decoded training part once on its
device (:class:`emohrnet.data.loading.DeviceBatches`) and cuts segments and applies SpecAugment there for
the whole batch, so epochs do no I/O and no per-example Python work. ``amp="auto"`` uses
bf16 autocast (training and evaluation; losses and metrics in float32) where the device computes
bf16 natively: CUDA compute capability 8.0 or newer, and CPUs with AVX-512 BF16 or AMX;
``channels_last="auto"`` is on for CPUs and for GPUs with native bf16 (capability 8.0+; not a T4 in
float32, where NHWC gains nothing). ``compile=True`` runs the model through
``torch.compile``. What was used is recorded in every checkpoint (``speed``).
"""

from __future__ import annotations

import math
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emohrnet.data.augment import SpecAugment
from emohrnet.data.loading import DeviceBatches, check_global_batch, draw_seed, load_examples, steps_per_epoch
from emohrnet.frontend import n_features
from emohrnet.inference.evaluation import EvalSet, evaluate
from emohrnet.inference.metrics import is_better
from emohrnet.models import MODEL_SPECS, build_model
from emohrnet.shards.manifest import Manifest
from emohrnet.training.checkpoint import CHECKPOINT_FILE, load_checkpoint_file, save_checkpoint_file
from emohrnet.training.config import TrainConfig
from emohrnet.training.distributed import (
    average_batchnorm_stats,
    check_replicas_agree,
    mean_over_workers,
)
from emohrnet.training.mixup import mixup_batch, training_loss


def checkpoint_config():
    """Keep only the latest checkpoint: it serves restarts and holds the best epoch's weights so far
    (``best_model``), chosen by :data:`emohrnet.inference.metrics.SELECTION_RULE`."""
    from ray.train import CheckpointConfig

    return CheckpointConfig(num_to_keep=1)


MODEL_FEATURES = {name: spec.features for name, spec in MODEL_SPECS.items()}
"""The front end each model trains on (from the registry, :data:`emohrnet.models.MODEL_SPECS`)."""


def check_features(model: str, manifest: Manifest, shard_dir: str) -> None:
    """Refuse to train ``model`` on shards built for another front end.

    Raises:
        ValueError: unknown model, or the shards' ``feature_kind`` is not the model's.
    """
    if model not in MODEL_FEATURES:
        raise ValueError(f"unknown model {model!r}; known: {', '.join(sorted(MODEL_FEATURES))}")
    kind = manifest.feature_kind
    if kind != MODEL_FEATURES[model]:
        raise ValueError(
            f"{shard_dir}: shards hold {kind} features but {model} trains on {MODEL_FEATURES[model]}; "
            f"build them with: python -m shards.build --features {MODEL_FEATURES[model]} ..."
        )


def train_epoch(model: torch.nn.Module, batches: Any, specaug: torch.nn.Module,
                optimizer: torch.optim.Optimizer, device: torch.device, amp: bool = False,
                channels_last: bool = False, num_classes: int = 0, mixup_alpha: float = 0.0,
                label_smoothing: float = 0.0, rng: np.random.Generator | None = None) -> tuple[float, int]:
    """One epoch of training steps (what :func:`train_loop_per_worker` runs each epoch).

    Per batch: move to ``device`` (a no-op for :class:`emohrnet.data.loading.DeviceBatches`), SpecAugment on
    the device for the whole batch, mixup when ``mixup_alpha > 0`` (:func:`emohrnet.training.mixup.mixup_batch`),
    forward under bf16 autocast when ``amp``, cross-entropy in float32 (towards mixup's soft targets, or
    the labels with ``label_smoothing``; :func:`emohrnet.training.mixup.training_loss`), backward, optimizer step.
    With both levers at 0 this is the paper's plain cross-entropy and draws nothing from ``rng``. The
    loss is summed on the device and read once at the end, so a GPU is not synchronized every step.

    Args:
        model: the model to train (possibly DDP-wrapped or compiled); put in train mode here.
        batches: iterable of ``(x, y)``, ``x`` ``(B, 1, n_mels, frames)`` float32, ``y`` ``(B,)`` int64.
        specaug: applied to every ``x`` on the device (:class:`emohrnet.data.augment.SpecAugment`).
        optimizer: stepped once per batch.
        device: the training device.
        amp: bf16 autocast of the forward pass.
        channels_last: batches in ``torch.channels_last`` memory format (the model should be too).
        num_classes: C (needed with mixup).
        mixup_alpha, label_smoothing: the loss's recipe levers (0: off).
        rng: mixup's draws (seeded per epoch and rank by the caller).

    Returns:
        ``(loss_sum, count)``: the sum over examples of the cross-entropy and the number of examples.
    """
    model.train()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    total = torch.zeros((), dtype=torch.float64, device=device)
    count = 0
    for x, y in batches:
        x = specaug(x.to(device, non_blocking=True))
        y = y.to(device, non_blocking=True)
        targets = None
        if mixup_alpha > 0:
            x, targets, _ = mixup_batch(x, y, num_classes, mixup_alpha, label_smoothing, rng)
        x = x.contiguous(memory_format=fmt)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            logits = model(x)
        loss = training_loss(logits, y, targets, label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.detach().double() * len(y)
        count += len(y)
    return float(total), count


# --------------------------------------------------------------------------- the loop
def training_batches(cfg: TrainConfig, manifest: Manifest, train_keys: list[str], rank: int, world: int,
                     device: torch.device | str = "cpu") -> DeviceBatches:
    """Rank ``rank``'s training batches: the whole training part read on this worker and cached on
    ``device``, each epoch its share of one permutation (:func:`emohrnet.data.loading.rank_order`,
    ``DistributedSampler`` semantics).

    Args:
        cfg: the run's settings (``batch_size`` is the global batch; segments of ``segment_seconds``).
        manifest: the shard manifest of ``cfg.shard_dir``.
        train_keys: the split's training utterances.
        rank, world: this worker and the number of workers.
        device: the training device (where the cache lives and the batches are returned).

    Returns:
        :class:`emohrnet.data.loading.DeviceBatches` of ``batch_size // world`` examples per step and
        ``ceil(len(train_keys) / batch_size)`` steps per epoch (the last global batch padded).

    Raises:
        ValueError: the global batch does not divide by ``world``, or no training utterances.
    """
    per_worker = check_global_batch(cfg.optimizer.batch_size, world)
    examples = load_examples(cfg.shard_dir, manifest, train_keys, with_copies=cfg.augmentation.aug_prob > 0)
    features = manifest.features
    segment = int(round(cfg.augmentation.segment_seconds * features["sample_rate"] / features["hop_length"]))
    steps = steps_per_epoch(len(train_keys), cfg.optimizer.batch_size)
    aug = cfg.augmentation
    return DeviceBatches(examples, per_worker, steps, segment, cfg.protocol.seed, rank, aug.time_shift, aug.aug_prob,
                         device=device, world=world)


@dataclass
class _Best:
    """The best epoch so far under the selection rule: its validation UA and loss, its number (from 1;
    0 before any) and a CPU copy of its weights."""

    val_ua: float = -math.inf
    val_loss: float = math.inf
    epoch: int = 0
    state: dict[str, torch.Tensor] | None = None


@dataclass
class _Run:
    """One worker's training run as :func:`_build` sets it up: the settings, the rank, the data, the
    model (``core``, and ``model``: the DDP-wrapped, maybe compiled one that trains), the optimizer."""

    cfg: TrainConfig
    rank: int
    world: int
    device: torch.device
    speed: dict[str, Any]
    manifest: Manifest
    split: Any
    batches: DeviceBatches
    val_set: EvalSet
    core: torch.nn.Module
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    specaug: SpecAugment
    meta: dict[str, Any]
    """What every checkpoint carries besides weights (:func:`_checkpoint_meta`), built once."""

    @property
    def amp(self) -> bool:
        return self.speed["amp"] == "bf16"

    @property
    def sync_bn(self) -> bool:
        return self.speed["batchnorm"] == "SyncBatchNorm"

    @property
    def num_classes(self) -> int:
        return len(self.manifest.classes)

    def evaluate(self, examples: Any) -> dict[str, Any]:
        """Score ``examples`` (an :class:`EvalSet` or a list of examples) with the current weights."""
        return evaluate(self.core, examples, self.num_classes, self.device, self.cfg.speed.eval_batch, amp=self.amp,
                        channels_last=self.speed["channels_last"])


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """Ray Train worker function: train, validate each epoch, test the best epoch once.

    Args:
        config: :class:`TrainConfig` fields as a dict.

    Raises:
        ValueError: bad settings (unknown protocol, fold out of range, no shard folder, an empty part).
        ShardError: the shard folder holds no finished build.
    """
    import ray.train

    run = _build(TrainConfig.from_dict(config))
    cfg = run.cfg
    start, best, last_report = _resume(run)
    if start >= cfg.optimizer.epochs:  # restored from its last epoch's checkpoint: report that epoch again, end
        ray.train.report(_restored_report(run, start, best, last_report), checkpoint=None)
        return
    # which host runs each rank, and where it starts (a restarted worker group resumes at its checkpoint)
    print(f"rank {run.rank} of {run.world} on host {socket.gethostname()} ({ray.util.get_node_ip_address()}), "
          f"{'resuming after' if start else 'starting at'} epoch {start if start else 1} of {cfg.optimizer.epochs}",
          flush=True)
    torch.manual_seed(cfg.protocol.seed * 7919 + run.rank)  # masks differ between workers
    for epoch in range(start + 1, cfg.optimizer.epochs + 1):  # counted from 1, as everywhere a person reads them
        train_loss = _train_one_epoch(run, epoch)
        val = run.evaluate(run.val_set)
        improved = is_better(val["ua"], val["loss"], best.val_ua, best.val_loss)
        if improved:
            best = _Best(val["ua"], val["loss"], epoch, _cpu_state(run.core))
        metrics = {"epoch": epoch, "epochs": cfg.optimizer.epochs,
                   "train_loss": train_loss, "val_loss": val["loss"],
                   "val_ua": val["ua"], "val_wa": val["wa"], "lr": run.optimizer.param_groups[0]["lr"],
                   "best_val_ua": best.val_ua, "best_val_loss": best.val_loss, "best_epoch": best.epoch,
                   "start_epoch": start, "global_batch": cfg.optimizer.batch_size, "workers": run.world}
        if epoch == cfg.optimizer.epochs and cfg.score_test:
            metrics.update(_test_best(run, best))
        _checkpoint_and_report(run, epoch, metrics, val, best, improved)


def _build(cfg: TrainConfig) -> _Run:
    """Read the shards of this worker's run and build its model and optimizer (step 1 of the loop).

    Raises:
        ValueError: the global batch does not divide by the workers, the features do not fit the
            model, or a part of the split is empty.
    """
    import ray.train
    import ray.train.torch

    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    device = ray.train.torch.get_device()
    check_global_batch(cfg.optimizer.batch_size, world)  # refuse before reading anything
    speed = cfg.resolve_speed(device)

    manifest = Manifest.read(cfg.shard_dir)
    check_features(cfg.model, manifest, cfg.shard_dir)
    split = manifest.split(cfg.protocol.protocol, cfg.protocol.fold)
    for part in ("train", "val", "test"):
        if not getattr(split, part):
            raise ValueError(f"{cfg.shard_dir}: the {part} part of {split.describe()} is empty")
    batches = training_batches(cfg, manifest, split.train, rank, world, device)
    # built once and kept on the device
    val_set = EvalSet(load_examples(cfg.shard_dir, manifest, split.val, rank, world), device, cfg.speed.eval_batch)

    torch.manual_seed(cfg.protocol.seed)
    n_in = n_features(manifest.feature_kind, manifest.features)
    core = build_model(cfg.model, len(manifest.classes), **cfg.model_kwargs(n_in))
    sync_bn = device.type == "cuda" and world > 1
    if sync_bn:
        core = torch.nn.SyncBatchNorm.convert_sync_batchnorm(core)
    speed["batchnorm"] = ("SyncBatchNorm" if sync_bn else
                          "running statistics averaged over ranks before evaluation" if world > 1 else "BatchNorm")
    if speed["channels_last"]:
        core = core.to(memory_format=torch.channels_last)
    # each rank keeps its own running statistics (no broadcast of rank 0's); averaged before use
    model = ray.train.torch.prepare_model(core, parallel_strategy_kwargs={"broadcast_buffers": False})
    core = core.to(device)
    if speed["compile"]:
        model = torch.compile(model)
    adam = cfg.optimizer
    optimizer = torch.optim.Adam(model.parameters(), lr=adam.lr, betas=(adam.beta1, adam.beta2),
                                 weight_decay=adam.weight_decay)
    specaug = SpecAugment(cfg.augment(), inplace=True)  # every batch is a fresh tensor
    meta = _checkpoint_meta(cfg, manifest, split, core, speed, world)
    return _Run(cfg, rank, world, device, speed, manifest, split, batches, val_set, core, model, optimizer, specaug,
                meta)


def _resume(run: _Run) -> tuple[int, _Best, dict[str, Any] | None]:
    """Restore the weights and optimizer from Ray Train's checkpoint, if the run restarted (step 2).

    Returns:
        The epochs done (0 on a fresh start), the best epoch so far, and the last epoch's stored report.
    """
    import ray.train

    resumed = ray.train.get_checkpoint()
    if not resumed:
        return 0, _Best(), None
    with resumed.as_directory() as d:
        state = load_checkpoint_file(Path(d) / CHECKPOINT_FILE)
    run.core.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    best = _Best(state["best_val_ua"], state.get("best_val_loss", math.inf), checkpoint_epoch(state, "best_epoch"),
                 state.get("best_model") or state["model"])
    return checkpoint_epoch(state), best, state.get("report")


def _restored_report(run: _Run, start: int, best: _Best, last_report: dict[str, Any] | None) -> dict[str, Any]:
    """The report of a run restored from the checkpoint of its last epoch (killed before Tune recorded it
    as finished): that epoch's stored result again, so the trial ends with its metrics."""
    metrics = dict(last_report or {"epoch": start, "best_val_ua": best.val_ua, "best_val_loss": best.val_loss,
                                   "best_epoch": best.epoch})
    metrics.update(start_epoch=start, restored_finished=True)
    if run.cfg.score_test and "test_ua" not in metrics:
        metrics.update(_test_best(run, best))
    return metrics


def _train_one_epoch(run: _Run, epoch: int) -> float:
    """Train epoch ``epoch`` (from 1) at its scheduled learning rate; the training loss averaged over the
    workers. Afterwards every rank holds the same weights and BatchNorm statistics (step 3)."""
    cfg = run.cfg
    for group in run.optimizer.param_groups:
        group["lr"] = cfg.epoch_lr(epoch - 1)
    rng = np.random.default_rng(draw_seed(cfg.protocol.seed, epoch, run.rank))  # mixup's draws (none when it is off)
    total, count = train_epoch(run.model, run.batches.epoch(epoch - 1), run.specaug, run.optimizer, run.device,
                               run.amp, run.speed["channels_last"], run.num_classes, rng=rng, **cfg.cross_entropy())
    train_loss = mean_over_workers(total, count, run.device)
    check_replicas_agree(run.core)  # gradient synchronisation kept every rank's weights equal
    if not run.sync_bn:
        average_batchnorm_stats(run.core)  # one set of statistics for evaluation and the checkpoint
    return train_loss


def _checkpoint_and_report(run: _Run, epoch: int, metrics: dict[str, Any], val: dict[str, Any], best: _Best,
                           improved: bool) -> None:
    """Report the epoch's metrics to Ray Train with rank 0's checkpoint: the current weights, the
    optimizer, the best epoch's weights (``best_model`` unless they are the current ones) and what is
    needed to use the model without any other file (step 4)."""
    import ray.train
    from ray.train import Checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = None
        if run.rank == 0:
            weights = best.state if improved else _cpu_state(run.core)  # improved: already copied
            state = {"model": weights, "optimizer": run.optimizer.state_dict(), "epoch": epoch,
                     "epoch_base": 1, "best_val_ua": best.val_ua, "best_val_loss": best.val_loss,
                     "best_epoch": best.epoch, "val_ua": val["ua"], "val_wa": val["wa"],
                     "report": _plain(metrics), **run.meta}
            if not improved:
                state["best_model"] = best.state
            save_checkpoint_file(Path(tmp) / CHECKPOINT_FILE, state)
            checkpoint = Checkpoint.from_directory(tmp)
        ray.train.report(metrics, checkpoint=checkpoint)


def _checkpoint_meta(cfg: TrainConfig, manifest: Manifest, split: Any, core: torch.nn.Module,
                     speed: dict[str, Any], world: int) -> dict[str, Any]:
    """What a checkpoint carries besides weights: the model, classes, front end, settings, split, speed."""
    return {"model_name": cfg.model, "model_config": core.config, "classes": manifest.classes,
            "feature_kind": manifest.feature_kind, "features": manifest.features, "train_config": cfg.to_dict(),
            "split": split.describe(), "dataset": manifest.dataset, "speed": speed, "workers": world}


def checkpoint_epoch(state: dict[str, Any], key: str = "epoch") -> int:
    """A checkpoint's ``epoch`` (the epochs its run had finished) or ``best_epoch``, counted from 1. It
    counts from 1 where ``epoch_base`` is 1; checkpoints written before epochs were counted from 1 hold
    the index (from 0)."""
    return int(state[key]) + (0 if state.get("epoch_base") == 1 else 1)


def _plain(metrics: dict[str, Any]) -> dict[str, Any]:
    """The metrics as plain Python numbers and lists (what a checkpoint stores and a restore reports)."""
    return {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in metrics.items()}


def _cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of the weights in the default (contiguous) memory format, whatever the model's."""
    return {k: v.detach().to("cpu", memory_format=torch.contiguous_format, copy=True)
            for k, v in model.state_dict().items()}


def _test_best(run: _Run, best: _Best) -> dict[str, Any]:
    """Score the best epoch's weights on the test part (once, after the last epoch); the current weights
    are put back afterwards."""
    test_ex = load_examples(run.cfg.shard_dir, run.manifest, run.split.test, run.rank, run.world)
    current = _cpu_state(run.core)
    run.core.load_state_dict(best.state)
    result = run.evaluate(test_ex)
    run.core.load_state_dict(current)
    return {"test_ua": result["ua"], "test_wa": result["wa"], "test_loss": result["loss"],
            "test_epoch": best.epoch, "test_confusion": result["confusion"].tolist()}
