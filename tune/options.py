"""The search's command line (:func:`parse_args`) and the one place its options become an experiment's
settings (:func:`config_from_args`, a :class:`tune.search_config.SearchExperimentConfig`: the library's
experiment config and the search's own section).

Unset options take the dataset's profile (:data:`PROFILES`: the built-in synthetic corpus trains in
minutes on a laptop CPU), else the paper's settings (:data:`DEFAULT_PROFILE`).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from emohrnet.config.argtypes import float_above, float_in, int_at_least, int_list
from emohrnet.config.experiment import (
    AugmentationConfig,
    DataConfig,
    ModelConfig,
    OptimizerConfig,
    ProtocolConfig,
    ResourcesConfig,
)
from emohrnet.corpora import corpus_class, list_corpora
from emohrnet.models import SPACES, EmoHRNetConfig
from emohrnet.shards import add_feature_args

from .checks import check_args, experiment_name
from .search_config import SearchConfig, SearchExperimentConfig
from .space import DEFAULT_WIDTHS, MODELS, PAPER_FIXED

DESCRIPTION = "The search: Ray Tune + Optuna (TPE) over EmoHRNet trained with Ray Train DDP."

PROFILES: dict[str, dict[str, Any]] = {
    # The embedded default: minutes on a laptop CPU. Shorter segments and 64 mel bands keep
    # the paper's W18 baseline affordable; the searched settings are the paper's.
    "synthetic": {"epochs": 5, "num_samples": 3, "widths": (8, 12, 18), "n_mels": 64, "segment_seconds": 2.0,
                  "batch_size": 16},
}
CPU_WORKERS, GPU_WORKERS = 1, 2
"""DDP workers per trial by default: on CPUs only, one (trials run side by side, one per core, and each
trial's fixed start-up cost overlaps another's training: 163.1 against 115.7 trials per hour for
``--workers 2`` on a 2-core machine, ``benchmarks/search.py`` ``cpu_layouts``); with GPUs, two."""

RECIPE_SPEED_COPIES = 2
"""Speed-perturbed copies per utterance in the log-mel shards of a ``--space recipe`` search (its ``aug_prob``
lever chooses how often training uses one), unless ``--speed-copies`` says otherwise."""

DEFAULT_PROFILE: dict[str, Any] = {"epochs": PAPER_FIXED["epochs"], "num_samples": SearchConfig().num_samples,
                                   "widths": DEFAULT_WIDTHS, "n_mels": DataConfig().n_mels,
                                   "segment_seconds": AugmentationConfig().segment_seconds,
                                   "batch_size": PAPER_FIXED["batch_size"]}
"""A search's defaults where its corpus's profile says nothing, each taken from where it is written once."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line; unset options take the dataset's profile defaults.

    A bad value, or a combination the search cannot run, exits 2 with the option and what it allows.
    """
    p = argparse.ArgumentParser(prog="python -m tune.search", description=DESCRIPTION)
    for add in (_data_options, _training_options, _model_options, _space_options, _lever_options, _run_options):
        add(p)
    add_feature_args(p)
    p.set_defaults(n_mels=None, augment_copies=None)
    args = p.parse_args(argv)
    if args.stop_local and not args.name:
        p.error("argument --stop-local: needs --name NAME, the search whose local Ray to stop")
    if args.dataset not in list_corpora():
        p.error(f"argument --dataset: {args.dataset!r} (allowed: {', '.join(list_corpora())})")
    _fill_defaults(args)
    check_args(p, args)
    return args


def _fill_defaults(args: argparse.Namespace) -> None:
    """Options left unset take the dataset's profile (:data:`PROFILES`) or the CPU/GPU default."""
    profile = PROFILES.get(args.dataset, DEFAULT_PROFILE)
    for key in ("epochs", "num_samples", "n_mels", "segment_seconds", "batch_size"):
        if getattr(args, key) is None:
            setattr(args, key, profile[key])
    args.widths = tuple(args.widths or profile["widths"])
    if args.augment_copies is None:
        args.augment_copies = 2  # waveform-augmented copies in the MFCC shards of cnn1d_attention
    if args.speed_copies is None:
        args.speed_copies = RECIPE_SPEED_COPIES if args.space == "recipe" else 0
    if args.workers is None:
        args.workers = CPU_WORKERS if not (args.gpus_per_worker or args.gpus_per_trial) else GPU_WORKERS
    if args.protocol is None:
        args.protocol = getattr(corpus_class(args.dataset), "default_protocol", "speaker")


def _data_options(p: argparse.ArgumentParser) -> None:
    """The corpus, the model and the corpus reader's options."""
    p.add_argument("--dataset", default="synthetic", help=f"corpus: {', '.join(list_corpora())} (default synthetic)")
    p.add_argument("--data-root", help="corpus folder (default: $EMOHRNET_<DATASET>_ROOT)")
    p.add_argument("--model", choices=(*MODELS, "any"), default="emohrnet",
                   help="EmoHRNet (log-mel), cnn1d_attention (MFCC, Lee & Nadeem 2025), or any: one search "
                   "chooses between them (default emohrnet)")
    p.add_argument("--corpus-option", action="append", default=[], metavar="KEY=VALUE",
                   help="corpus reader option, e.g. classes=five for iemocap (repeatable)")


def _training_options(p: argparse.ArgumentParser) -> None:
    """Trials, epochs, resources and precision of each trial's training run."""
    p.add_argument("--num-samples", type=int_at_least(1), help="trials (default 20; synthetic 3)")
    p.add_argument("--epochs", type=int_at_least(1), help="epochs per trial (default 100, the paper's; synthetic 5)")
    p.add_argument("--workers", type=int_at_least(1),
                   help=f"DDP workers per trial (default {GPU_WORKERS} with GPUs; on CPUs only {CPU_WORKERS}: "
                   "trials run side by side instead, one per core)")
    p.add_argument("--cpus-per-worker", type=float_above(0), default=1.0, help="CPUs per worker (default 1)")
    gpus = p.add_mutually_exclusive_group()
    gpus.add_argument("--gpus-per-worker", type=float_above(0, inclusive=True), default=0.0,
                      help="GPUs per worker: 0 (CPU, gloo), a fraction, or 1 (default 0)")
    gpus.add_argument("--gpus-per-trial", type=float_above(0),
                      help="GPUs per trial, shared by its workers; a fraction packs several trials on one GPU "
                      "(0.25: four trials per GPU). Sets --gpus-per-worker to this / --workers")
    p.add_argument("--amp", choices=("auto", "bf16", "off"), default="auto",
                   help="mixed precision: auto (bf16 autocast where the device has native bf16: CUDA capability "
                   ">= 8.0, CPUs with AVX-512 BF16 or AMX), bf16, or off (float32) (default auto)")
    p.add_argument("--compile", action="store_true",
                   help="run each training step through torch.compile: fewer kernel launches for a launch-bound "
                   "GPU step (W18), at the cost of a slow first epoch while it compiles (default off)")
    p.add_argument("--lr-schedule", choices=("constant", "cosine"), default="constant",
                   help="learning rate over the epochs: constant (the paper's) or cosine decay to 0 (default constant)")
    p.add_argument("--fold", type=int_at_least(0), default=0,
                   help="fold, 0 to the corpus's folds - 1 (random protocol: the split seed)")
    p.add_argument("--protocol", choices=("speaker", "random"),
                   help="speaker-independent folds (default) or the paper's likely random split")


def _model_options(p: argparse.ArgumentParser) -> None:
    """EmoHRNet's size: searched widths, stem, blocks, modules; batch and segment."""
    synthetic = ",".join(map(str, PROFILES["synthetic"]["widths"]))
    p.add_argument("--widths", type=int_list(), help="comma-separated HRNet widths to search "
                   f"(default {','.join(map(str, DEFAULT_WIDTHS))}; synthetic {synthetic})")
    p.add_argument("--stem-channels", type=int_at_least(1), default=PAPER_FIXED["stem_channels"],
                   help="channels of the input module (default 64, HRNet's)")
    p.add_argument("--blocks", type=int_at_least(1), default=PAPER_FIXED["blocks_per_branch"],
                   help="residual blocks per branch (default 4, HRNet's)")
    p.add_argument("--modules", type=int_list(4), default=list(PAPER_FIXED["modules"]),
                   help="modules per stage, 4 integers >= 1 (default 1,1,4,3, HRNet-W18's)")
    p.add_argument("--batch-size", type=int_at_least(1), help="global batch (default 64, the paper's; synthetic 16)")
    p.add_argument("--segment-seconds", type=float_above(0),
                   help="training segment length in s (default 3; synthetic 2)")


def _space_options(p: argparse.ArgumentParser) -> None:
    """The seed and the named search space."""
    p.add_argument("--seed", type=int_at_least(0), default=0, help="seed of the search and of training")
    p.add_argument("--space", choices=tuple(SPACES), default="paper",
                   help="the search space: " + "; ".join(f"{k}: {v}" for k, v in SPACES.items()) + " (default paper)")


def _lever_options(p: argparse.ArgumentParser) -> None:
    """The recipe levers (issue 23): fixed with --space paper, searched with --space recipe."""
    levers = p.add_argument_group("recipe levers", "fixed values (every trial) when --space paper; searched, from "
                                  "these off in the baseline trial, when --space recipe")
    levers.add_argument("--mixup-alpha", type=float_above(0, inclusive=True),
                        help="mixup's Beta(alpha, alpha); 0 is no mixup (default 0, the paper's)")
    levers.add_argument("--label-smoothing", type=float_in(0, 1),
                        help="share of each target spread over the classes, 0 to below 1 (default 0, the paper's)")
    levers.add_argument("--warmup-epochs", type=int_at_least(0),
                        help="epochs of linear learning-rate warm-up (default 0, the paper's)")
    levers.add_argument("--head-dropout", type=float_in(0, 1),
                        help="EmoHRNet's dropout before the classifier, 0 to below 1 (default 0, the paper's)")
    levers.add_argument("--speed-copies", type=int_at_least(0),
                        help="speed-perturbed copies (factor 0.9-1.1) of every utterance in the log-mel shards, used "
                        "by training utterances only with probability aug_prob (default 0; --space recipe: 2)")


def _run_options(p: argparse.ArgumentParser) -> None:
    """How the search runs: concurrency, ASHA, storage, name, Ray, resume, output, shards."""
    p.add_argument("--max-concurrent", type=int_at_least(1), help="trials at once (default: as resources allow)")
    p.add_argument("--grace-period", type=int_at_least(1), help="ASHA: epochs before a trial may be stopped")
    p.add_argument("--storage-path", help="experiments folder (default $EMOHRNET_HOME/experiments): on a "
                   "cluster, shared storage: an NFS folder or a bucket, e.g. s3://bucket/emohrnet (shards are then "
                   "published to <storage-path>/shards and read from there by every worker)")
    p.add_argument("--name", type=experiment_name, help="experiment name, letters, digits, '.', '_', '-' "
                   "(default <dataset>-<protocol>-fold<K>-<time>); a new search refuses an existing name")
    p.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS, else a local Ray)")
    p.add_argument("--study-storage", help="Optuna study database, any SQLAlchemy URL, e.g. "
                   "postgresql+psycopg2://user@host/db (default: SQLite optuna.db in the experiment folder)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted search (--name NAME, default the newest of this dataset): "
                   "finished trials are not run again and the Optuna study keeps its history")
    p.add_argument("--stop-local", action="store_true",
                   help="stop what the local Ray of the search --name NAME left running after the search was killed "
                   "hard (SIGKILL), and nothing else: other searches' Rays keep running (unlike `ray stop`)")
    p.add_argument("--verbose", action="store_true",
                   help="show Ray's own output (trial tables, worker logs); by default it goes to search.log in "
                   "the experiment folder and the console shows one line per finished epoch")
    p.add_argument("--shard-dir", help="use or build the shards in this folder (a path or a bucket URI)")
    p.add_argument("--build-workers", type=int_at_least(1), default=os.cpu_count() or 1,
                   help="processes building shards")


def config_from_args(args: argparse.Namespace) -> SearchExperimentConfig:
    """The experiment's settings from the parsed command line (:func:`parse_args`); the one place
    options become settings. Invocation-only options (``--address``, ``--resume``, ``--verbose``,
    ``--name``, ``--storage-path``) are not settings of the experiment and are left out.

    Also reads the ``search_args.json`` of experiments started before ``config.json`` existed (its
    options as a namespace), so options missing there take their defaults.
    """
    def given(cls, **values: Any) -> Any:
        """``cls`` with the options that were given (``None``: the field's default stays)."""
        return cls(**{k: v for k, v in values.items() if v is not None})

    def opt(name: str) -> Any:
        return getattr(args, name, None)

    settings = ModelConfig().settings
    settings["emohrnet"] = given(EmoHRNetConfig, stem_channels=opt("stem_channels"),
                                 blocks_per_branch=opt("blocks"), modules=opt("modules"),
                                 head_dropout=opt("head_dropout"))
    copies = opt("augment_copies") or 0  # an experiment saved before augment copies existed built none
    return SearchExperimentConfig(
        data=given(DataConfig, dataset=args.dataset, data_root=opt("data_root"), corpus_options=opt("corpus_option"),
                   shard_dir=opt("shard_dir"), build_workers=opt("build_workers"), n_mels=opt("n_mels"),
                   n_mfcc=opt("n_mfcc"), n_fft=opt("n_fft"), win_length=opt("win_length"),
                   hop_length=opt("hop_length"), augment_copies=copies, speed_copies=opt("speed_copies")),
        model=given(ModelConfig, name=opt("model"), settings=settings),
        optimizer=given(OptimizerConfig, lr_schedule=opt("lr_schedule"), epochs=args.epochs,
                        batch_size=opt("batch_size"), warmup_epochs=opt("warmup_epochs")),
        augmentation=given(AugmentationConfig, segment_seconds=opt("segment_seconds"),
                           mixup_alpha=opt("mixup_alpha"), label_smoothing=opt("label_smoothing")),
        protocol=given(ProtocolConfig, protocol=opt("protocol"), fold=opt("fold"), seed=opt("seed")),
        resources=given(ResourcesConfig, workers=opt("workers"), cpus_per_worker=opt("cpus_per_worker"),
                        gpus_per_worker=opt("gpus_per_worker"), amp=opt("amp"), compile=opt("compile"),
                        max_concurrent=opt("max_concurrent")),
        search=given(SearchConfig, num_samples=args.num_samples, widths=list(args.widths),
                     grace_period=opt("grace_period"), study_storage=opt("study_storage"), space=opt("space")),
    )
