"""Checks of the search's options, made before anything starts.

Each refusal is one line naming the option and the allowed values. :func:`check_args` runs when the
command line is parsed (argparse error, exit 2); :func:`check_fold` runs once the shards are built
(the corpus's folds are known) and :func:`check_gpus` once the cluster is joined (its GPUs are
known), both before any trial starts: they raise :class:`ConfigError`, which the command line
turns into exit status 2.
"""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import replace

from emohrnet.config.experiment import ExperimentConfig, ResourcesConfig
from emohrnet.corpora import check_options, corpus_class
from emohrnet.data.loading import check_global_batch
from emohrnet.shards import Manifest, check_feature_args, parse_corpus_options

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class ConfigError(ValueError):
    """An option that does not fit the corpus or the cluster (found after parsing, before any trial)."""


def experiment_name(text: str) -> str:
    """``--name``: letters, digits, ``.``, ``_`` and ``-``, starting with a letter or digit (it is a
    folder name and an Optuna study name).

    Raises:
        argparse.ArgumentTypeError: anything else (a ``/``, ``..``, spaces).
    """
    if not _NAME.match(text) or ".." in text:
        raise argparse.ArgumentTypeError(
            f"{text!r} (allowed: letters, digits, '.', '_', '-', starting with a letter or digit, no '..')")
    return text


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse options that do not fit together, through ``parser.error`` (exit 2).

    Checks the front-end flags, the corpus options (unknown keys, strict booleans), the fold against
    the corpus's number of speaker folds, GPUs per worker (at most one: a worker trains on one
    device), the global batch against the workers, and the ASHA grace period against the epochs.
    It sets ``args.gpus_per_worker`` from ``--gpus-per-trial``.
    """
    check_feature_args(parser, args)
    try:
        check_options(args.dataset, parse_corpus_options(args.corpus_option))
    except ValueError as err:
        parser.error(str(err))
    n_folds = corpus_class(args.dataset).n_folds
    if args.protocol == "speaker" and args.fold >= n_folds:
        parser.error(f"argument --fold: {args.fold} (allowed: 0 to {n_folds - 1}, the {n_folds} speaker folds "
                     f"of {args.dataset})")
    if args.gpus_per_trial is not None:
        if args.gpus_per_trial > 1 and not float(args.gpus_per_trial).is_integer():
            parser.error(f"argument --gpus-per-trial: {args.gpus_per_trial:g} (allowed: a fraction up to 1, "
                         "or a whole number of GPUs)")
        args.gpus_per_worker = args.gpus_per_trial / args.workers
    if args.gpus_per_worker > 1:
        per_trial = args.gpus_per_worker * args.workers
        parser.error(f"argument --gpus-per-worker: {args.gpus_per_worker:g} GPUs per worker (allowed: up to 1; "
                     f"a worker trains on one GPU: for {per_trial:g} GPUs per trial use --workers "
                     f"{math.ceil(per_trial)} --gpus-per-worker 1)")
    try:
        check_global_batch(args.batch_size, args.workers)
    except ValueError as err:
        parser.error(str(err))
    if args.grace_period is not None and args.grace_period > args.epochs:
        parser.error(f"argument --grace-period: {args.grace_period} (allowed: 1 to --epochs {args.epochs})")
    if args.space == "recipe" and args.model in ("emohrnet", "any") and not args.speed_copies:
        parser.error("argument --speed-copies: 0 with --space recipe (allowed: 1 or more: the recipe space searches "
                     "aug_prob, how often EmoHRNet trains on a speed-perturbed copy, so the log-mel shards need them)")
    if args.model == "any" and args.shard_dir:
        parser.error("argument --shard-dir: names one shard folder; --model any needs two (log-mel and MFCC): "
                     "leave it out")


def check_fold(config: ExperimentConfig, manifest: Manifest) -> None:
    """Refuse what only the built corpus can show: a ``--fold`` it does not have (fewer speakers than
    the corpus's folds), a fold whose training, validation or test part is empty, a training segment
    shorter than one frame.

    Raises:
        ConfigError: naming the option and what is allowed.
    """
    n = len(manifest.folds)
    protocol, fold, segment = config.protocol.protocol, config.protocol.fold, config.augmentation.segment_seconds
    if protocol == "speaker" and fold >= n:
        raise ConfigError(f"--fold {fold}: {manifest.dataset} has {n} speaker folds here "
                          f"(allowed: 0 to {n - 1})")
    try:
        split = manifest.split(protocol, fold)
    except ValueError as err:
        raise ConfigError(f"--fold {fold}: {err}") from None
    for part in ("train", "val", "test"):
        if not getattr(split, part):
            raise ConfigError(f"--fold {fold}: the {part} part of {split.describe()} is empty; "
                              f"{manifest.dataset} needs at least 3 speakers for speaker folds (or use "
                              "--protocol random)")
    features = manifest.features
    frames = round(segment * features["sample_rate"] / features["hop_length"])
    if frames < 1:
        least = features["hop_length"] / features["sample_rate"]
        raise ConfigError(f"--segment-seconds {segment:g}: shorter than one frame "
                          f"(allowed: at least {least:g} s)")


def check_gpus(resources: ResourcesConfig, total: dict[str, float]) -> None:
    """Refuse GPUs the cluster does not have (a trial would wait for them forever).

    Raises:
        ConfigError: naming the GPUs asked for and the cluster's.
    """
    per_worker, workers = resources.gpus_per_worker, resources.workers
    need = per_worker * workers
    have = total.get("GPU", 0)
    if need and need > have:
        raise ConfigError(f"--gpus-per-worker {per_worker:g} x --workers {workers}: a trial needs "
                          f"{need:g} GPUs and the cluster has {have:g} (allowed: at most {have:g} per trial; "
                          "leave the GPU options out to train on CPUs)")


PRE_AMPERE = ("T4", "V100", "P100", "P4", "K80")
"""Cards without native bf16 (compute capability below 8.0): ``--amp auto`` trains them in float32."""


def shared_gpu_warning(resources: ResourcesConfig) -> str | None:
    """A warning when the workers of one trial share a GPU (``0 < --gpus-per-worker < 1`` with several
    workers): NCCL refuses two ranks on one device, so they synchronise gradients with gloo through
    host memory, usually slower than one worker on that GPU."""
    per_worker, workers = resources.gpus_per_worker, resources.workers
    if 0 < per_worker < 1 and workers > 1:
        return (f"--workers {workers} --gpus-per-worker {per_worker:g}: the workers of a trial share "
                "GPUs, so their gradients go through gloo and host memory (NCCL refuses two ranks on one GPU); "
                "one worker per GPU is usually faster: --workers 1 --gpus-per-trial <the same GPUs per trial>")
    return None


def check_gpu_memory(config: ExperimentConfig, gpus: list[tuple[str, float]]) -> None:
    """Refuse a packing of workers on a GPU (``--gpus-per-worker`` below 1) whose estimated peak memory
    (:func:`emohrnet.training.memory.estimate_worker_bytes`, the largest searched width) does not fit the GPU.

    Args:
        config: the search's settings.
        gpus: ``(name, bytes)`` of each kind of GPU the trials may land on (the local GPUs, or the
            cluster's by Ray's ``accelerator_type``); none: nothing is checked.

    Raises:
        ConfigError: naming ``--gpus-per-worker``, the estimate and what fits.
    """
    resources = config.resources
    if not (0 < resources.gpus_per_worker < 1) or not gpus:
        return
    import torch

    from emohrnet.models import build_model
    from emohrnet.training.memory import check_packing, estimate_worker_bytes

    data, features = config.data, config.data.features("logmel")
    frames = max(1, round(config.augmentation.segment_seconds * features.sample_rate / features.hop_length))
    per_worker = max(1, config.optimizer.batch_size // resources.workers)
    models = []
    if config.model.name in ("emohrnet", "any"):
        widest = replace(config.model.settings["emohrnet"], width=max(config.search.widths))
        with torch.device("meta"):
            models.append((build_model("emohrnet", 8, **widest.arguments(data.n_mels)),
                           (per_worker, 1, data.n_mels, frames)))
    for name, total in gpus:
        amp = resources.amp
        bf16 = amp == "bf16" or (amp == "auto" and not any(card in name.upper() for card in PRE_AMPERE))
        for model, shape in models:
            problem = check_packing(estimate_worker_bytes(model, shape, amp=bf16), resources.gpus_per_worker,
                                    total, name)
            if problem:
                raise ConfigError(problem)


def cluster_gpus(total: dict[str, float]) -> list[tuple[str, float]]:
    """``(name, bytes)`` of the GPU kinds in Ray's cluster resources (``accelerator_type:<name>``) whose
    memory :data:`emohrnet.training.memory.GPU_MEMORY_GIB` knows."""
    from emohrnet.training.memory import GPU_MEMORY_GIB

    kinds = [key.split(":", 1)[1] for key in total if key.startswith("accelerator_type:")]
    found = []
    for kind in kinds:
        known = next((gib for card, gib in GPU_MEMORY_GIB.items() if card.upper() == kind.upper()), None)
        if known:
            found.append((kind, known * 2 ** 30))
    return found


def local_gpus() -> list[tuple[str, float]]:
    """``(name, bytes)`` of this machine's CUDA devices."""
    import torch

    if not torch.cuda.is_available():
        return []
    return [(torch.cuda.get_device_name(i), float(torch.cuda.get_device_properties(i).total_memory))
            for i in range(torch.cuda.device_count())]
