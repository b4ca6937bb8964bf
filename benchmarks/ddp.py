"""Section 4, DDP: training samples/s with 1 and 2 Ray Train workers on one machine.

Each run is a ``TorchTrainer`` running :func:`emohrnet.training.loop.train_loop_per_worker` (through
:func:`timed_train_loop`) on the small synthetic corpus with a small EmoHRNet (gloo; Ray sets
``OMP_NUM_THREADS`` to the worker's CPUs, so a worker's torch uses that many threads). Three runs:
1 worker with 1 CPU, 2 workers with 1 CPU each (DDP), and 1 worker with 2 CPUs (two threads, no
DDP): the last two use the same two cores, and the faster of them is what a local search on a
2-core machine should run. With ``--device cuda`` and at least 2 GPUs each worker gets a GPU (NCCL)
instead.

Throughput counts only the training part of each epoch (batches, forward, backward, all-reduce,
Adam), timed inside the workers: Ray start-up, worker-group start, shard loading, validation, test
and checkpoints are excluded. Epoch 0 is the warm-up; the later epochs are timed. The whole
``fit()`` time is reported too. Scaling efficiency = samples/s(2 workers) / (2 x samples/s(1 worker)).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tune.ray_start import start_local_ray

from .common import Context, Section, Timer, small_corpus

TITLE = "4. DDP: training samples/s with 1 and 2 Ray Train workers"

TIMES_KEY = "benchmark_times_dir"
"""Config key naming the folder where :func:`timed_train_loop` writes each rank's epoch times
(``TrainConfig.from_dict`` ignores keys that are not its fields)."""


def timed_train_loop(config: dict[str, Any]) -> None:
    """Ray Train worker function: :func:`emohrnet.training.loop.train_loop_per_worker` with the training part
    of each epoch timed.

    ``emohrnet.training.loop.DeviceBatches`` is replaced, in this worker process only and for the duration of
    the call, by a subclass whose ``epoch`` records the wall seconds from the request of the first
    batch to the end of the epoch's last step. Each rank writes ``rank<R>.json`` into
    ``config[TIMES_KEY]``: ``{"epochs": [{"epoch", "train_s", "steps", "batch"}], "torch_threads"}``.
    """
    import ray.train
    import torch

    import emohrnet.training.loop as train

    times: list[dict[str, Any]] = []
    original = train.DeviceBatches

    class TimedBatches(original):  # type: ignore[misc, valid-type]
        def epoch(self, epoch: int):
            start = time.perf_counter()
            yield from super().epoch(epoch)
            if torch.cuda.is_initialized():
                torch.cuda.synchronize()  # the last step's kernels have finished, not only been queued
            times.append({"epoch": epoch, "train_s": time.perf_counter() - start, "steps": self.steps,
                          "batch": self.batch_size})

    train.DeviceBatches = TimedBatches
    try:
        train.train_loop_per_worker(config)
    finally:
        train.DeviceBatches = original
        rank = ray.train.get_context().get_world_rank()
        out = Path(config[TIMES_KEY]) / f"rank{rank}.json"
        out.write_text(json.dumps({"epochs": times, "torch_threads": torch.get_num_threads()}))


def model_config(quick: bool) -> dict[str, Any]:
    """The small model and training settings of the DDP runs (global batch 16)."""
    return {"width": 8, "stem_channels": 16, "blocks_per_branch": 1, "modules": [1, 1, 2, 2],
            "segment_seconds": 2.0, "batch_size": 16, "seed": 0, "epochs": 2 if quick else 3}


def fit(shard_dir: Path, storage: Path, workers: int, config: dict[str, Any], use_gpu: bool,
        cpus: int = 1) -> dict[str, Any]:
    """One ``TorchTrainer.fit()`` with ``workers`` workers of ``cpus`` CPUs each.

    Returns:
        ``{"fit_s", "epochs": [{"epoch", "train_s", "samples"}], "torch_threads"}``; ``train_s`` is the
        slowest rank's, ``samples`` the global samples of the epoch.

    Raises:
        RuntimeError: the run failed (its error is in the message).
    """
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from emohrnet.training.loop import checkpoint_config

    times_dir = storage / f"times-{workers}x{cpus}"
    times_dir.mkdir(parents=True, exist_ok=True)
    resources = {"CPU": cpus, "GPU": 1} if use_gpu else {"CPU": cpus}
    trainer = TorchTrainer(
        timed_train_loop,
        train_loop_config={"shard_dir": str(shard_dir), **config, TIMES_KEY: str(times_dir)},
        scaling_config=ScalingConfig(num_workers=workers, use_gpu=use_gpu, resources_per_worker=resources),
        run_config=RunConfig(name=f"ddp-{workers}x{cpus}", storage_path=str(storage),
                             checkpoint_config=checkpoint_config()),
    )
    with Timer() as t:
        result = trainer.fit()
    if result.error is not None:
        raise RuntimeError(f"{workers}-worker run failed: {result.error}")
    ranks = [json.loads((times_dir / f"rank{r}.json").read_text()) for r in range(workers)]
    epochs = []
    for i, e in enumerate(ranks[0]["epochs"]):
        slowest = max(rk["epochs"][i]["train_s"] for rk in ranks)
        epochs.append({"epoch": e["epoch"], "train_s": slowest, "samples": e["steps"] * e["batch"] * workers})
    return {"fit_s": t.s, "epochs": epochs, "torch_threads": ranks[0]["torch_threads"]}


def run(ctx: Context) -> Section:
    """Train with 1 and then 2 workers and compare.

    Returns:
        rows in samples/s (per worker count), s (fit time) and x (scaling efficiency).
    """
    import ray
    import torch

    sec = Section("ddp", TITLE)
    small = small_corpus(ctx)
    config = model_config(ctx.quick)
    use_gpu = ctx.device == "cuda" and torch.cuda.device_count() >= 2
    sec.settings = {"corpus": f"synthetic, {small['files']} files, options {small['options']}",
                    "n_mels": small["n_mels"], "model": {k: config[k] for k in ("width", "stem_channels",
                                                                                   "blocks_per_branch", "modules")},
                    "segment_seconds": config["segment_seconds"], "global_batch": config["batch_size"],
                    "epochs": config["epochs"], "timed_epochs": "all but epoch 0 (warm-up)",
                    "worker_resources": "1 CPU + 1 GPU (NCCL)" if use_gpu else "1 CPU (gloo)",
                    "timing": "training part of each epoch inside the workers (slowest rank); startup, "
                              "shard loading, validation and checkpoints excluded"}
    if ctx.device == "cuda" and not use_gpu:
        sec.notes.append("fewer than 2 GPUs: the DDP runs use CPU workers (gloo)")
    storage = ctx.work / "ddp"
    runs = [(1, 1), (2, 1)] + ([] if use_gpu else [(1, 2)])  # (workers, CPUs per worker)
    results: dict[tuple[int, int], dict[str, Any]] = {}
    start_local_ray(max(ctx.cores, 3))
    try:
        for workers, cpus in runs:
            results[workers, cpus] = fit(small["shard_dir"], storage, workers, config, use_gpu, cpus)
    finally:
        ray.shutdown()

    rate = {}
    for (workers, cpus), r in results.items():
        timed = r["epochs"][1:] or r["epochs"]
        samples, seconds = sum(e["samples"] for e in timed), sum(e["train_s"] for e in timed)
        rate[workers, cpus] = samples / seconds
        name = f"{workers} worker{'s' if workers > 1 else ''}" + (f" x {cpus} CPUs" if cpus > 1 else "")
        sec.add(f"{name}: training throughput", rate[workers, cpus], "samples/s",
                workers=workers, cpus_per_worker=cpus, per_worker_batch=config["batch_size"] // workers,
                timed_epochs=len(timed), samples=samples, train_s=round(seconds, 3),
                torch_threads_per_worker=r["torch_threads"])
        sec.add(f"{name}: epoch 0 training part (warm-up)", r["epochs"][0]["train_s"], "s")
        sec.add(f"{name}: whole fit() incl. startup", r["fit_s"], "s", epochs=config["epochs"])
    efficiency = rate[2, 1] / (2 * rate[1, 1])
    sec.add("scaling efficiency samples/s(2) / (2 x samples/s(1))", efficiency, "x",
            note=f"speed-up {rate[2, 1] / rate[1, 1]:.2f}x with 2 workers")
    if (1, 2) in rate:
        ratio = rate[2, 1] / rate[1, 2]
        sec.add("2 workers x 1 CPU (DDP) / 1 worker x 2 CPUs (threads)", ratio, "x",
                note=f"{'DDP' if ratio > 1 else 'one worker with two threads'} is faster on these two cores")
    if ctx.cores < 3:
        sec.notes.append(f"{ctx.cores} usable cores: 2 workers leave no core for the Ray driver and controller")
    return sec
