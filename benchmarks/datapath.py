"""Section 1, the data path: utterances/s delivered to the training loop from shards against decoding
the original audio and computing the log-mel on the fly.

- Shards, cached and batched (what :func:`emohrnet.training.loop.train_loop_per_worker` does by default):
  :func:`emohrnet.data.loading.load_examples` (once, timed apart), the examples packed once into a
  :class:`emohrnet.data.loading.DeviceBatches` cache (timed apart), then per step one gather of 64 shifted
  segments and the batched :class:`emohrnet.data.augment.SpecAugment`. On the CPU, and with ``--device cuda``
  also with the cache, the gather and the masks on the GPU.
- Shards, per example (the path before the cache, kept to show the gain): the per-example batcher that the
  tests compare the cache against (``benchmarks/per_example_batches.py``: a Python loop of
  :func:`emohrnet.data.augment.random_segment` per example) and SpecAugment drawn per example
  with ``torchaudio``'s ``FrequencyMasking``/``TimeMasking`` (``iid_masks=True``), the previous implementation.
- On the fly: the loader a user would write without shards, a ``torch.utils.data.Dataset`` whose items
  are :func:`emohrnet.io.audio.load_audio` + :class:`emohrnet.frontend.LogMel` +
  :func:`emohrnet.data.augment.random_segment`, a ``DataLoader`` of batch 64 (``num_workers`` 0 and the
  machine's cores), then the batched SpecAugment on each batch.

Timing starts after a warm-up: one batch for the shards and ``num_workers=0``; with ``N`` DataLoader
workers the first ``N`` batches (one per worker, built side by side during the workers' start-up,
which is reported separately), and whole rounds of ``N`` batches are timed after them. The cached path
times a whole epoch of :data:`CACHED_STEPS` batches, its per-epoch plan (order, offsets) included. All
with one torch thread in the measuring process (:data:`THREADS`): what a Ray Train worker with one CPU
has, and it keeps a loaded machine's OpenMP stalls out of the figures. GPU timings end with
``torch.cuda.synchronize``.

The goal: shards (cached and batched, on the CPU) at least :data:`GOAL_RATIO` times faster than the
faster on-the-fly loader.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from .common import Context, PeakRSS, Section, Timer, main_corpus, quiet, torch_threads

TITLE = "1. Data path: utterances/s delivered to the training loop"

BATCH = 64
GOAL_RATIO = 20.0
SEGMENT_SECONDS = 3.0
THREADS = 1
"""Torch threads of the measuring process: what a training worker with one CPU gets from Ray."""
CACHED_STEPS = {True: 200, False: 1000}
"""Batches timed on the cached path (``--quick``: 200, full: 1000): it is fast, so more than the others."""


class PerExampleSpecAugment(torch.nn.Module):
    """The SpecAugment the batched one replaced: ``torchaudio`` masks drawn example by example.

    Input and output ``(batch, 1, n_mels, frames)``; one ``FrequencyMasking(F, iid_masks=True)`` and one
    ``TimeMasking(T, iid_masks=True)`` (widths uniform on ``[0, F)`` / ``[0, T)``, Park et al. 2019).
    Kept only as the reference row of this benchmark.
    """

    def __init__(self, freq_mask: int, time_mask: int) -> None:
        super().__init__()
        import torchaudio.transforms as T

        self.masks = torch.nn.Sequential(T.FrequencyMasking(freq_mask, iid_masks=True),
                                         T.TimeMasking(time_mask, iid_masks=True))

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """Mask a batch; see the class docstring for shapes."""
        return self.masks(batch)


class AudioMelDataset(torch.utils.data.Dataset):
    """Decode-on-the-fly training items: ``load_audio`` + ``LogMel`` + ``random_segment``.

    Args:
        items: ``(audio path, class index)`` pairs.
        features: the front end (the shards' :class:`~emohrnet.frontend.FeatureConfig`).
        segment_frames: frames per training segment.

    Items are ``(x, y)``: ``x`` ``(1, n_mels, segment_frames)`` float32, ``y`` an int.
    """

    def __init__(self, items: list[tuple[str, int]], features: Any, segment_frames: int) -> None:
        from emohrnet.frontend import LogMel

        self.items, self.segment_frames = items, segment_frames
        self.logmel = LogMel(features)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from emohrnet.data.augment import random_segment
        from emohrnet.io.audio import load_audio

        path, label = self.items[i]
        with torch.no_grad():
            mel = self.logmel(load_audio(path, self.logmel.config.sample_rate))
        return random_segment(mel, self.segment_frames, None).unsqueeze(0).contiguous(), label


def _cached_path(examples: list, device: str, steps: int, segment: int) -> dict[str, float]:
    """Cached + batched: build a :class:`DeviceBatches` on ``device`` (timed), warm up on epoch 0, then time
    epoch 1 (``steps`` batches, plan included) with and without the batched SpecAugment."""
    from emohrnet.data.augment import AugmentConfig, SpecAugment
    from emohrnet.data.loading import DeviceBatches

    cuda = device == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    specaug = SpecAugment(AugmentConfig(), inplace=True)  # as in train_loop_per_worker
    if cuda:
        torch.zeros(1, device=device)  # CUDA's context starts here, outside the timed build
        sync()
    with Timer() as build:
        batches = DeviceBatches(examples, BATCH, steps, segment, seed=0, device=device)
        sync()
    cache_mib = batches.cache.numel() * batches.cache.element_size() / 2**20
    warm = batches.epoch(0)
    specaug(next(warm)[0])  # warm-up batch (kernels, allocator)
    sync()
    n = 0
    with Timer() as run:  # what the training loop gets: batch + masks, one epoch
        for x, _ in batches.epoch(1):
            specaug(x)
            n += len(x)
        sync()
    with Timer() as alone:  # the gather alone
        for _batch in batches.epoch(2):
            pass
        sync()
    epoch3 = batches.epoch(3)
    xs = [next(epoch3)[0] for _ in range(min(steps, 20))]  # 20 batches of 10 MiB, reused
    repeats = max(1, steps // len(xs))
    sync()
    with Timer() as aug:  # the masks alone, on batches already made
        for _ in range(repeats):
            for x in xs:
                specaug(x)
        sync()
    return {"utt_s": n / run.s, "batches_utt_s": n / alone.s, "aug_ms": 1000 * aug.s / (repeats * len(xs)),
            "build_s": build.s, "cache_mib": cache_mib, "n": n, "timed_s": run.s}


def _per_example_path(examples: list, steps: int, segment: int) -> dict[str, float]:
    """The previous path: per-example batches (the tests' oracle) + :class:`PerExampleSpecAugment`."""
    from emohrnet.data.augment import LB_FREQ_MASK, LB_TIME_MASK

    from .per_example_batches import PerExampleBatches

    specaug = PerExampleSpecAugment(LB_FREQ_MASK, LB_TIME_MASK)
    batches = PerExampleBatches(examples, BATCH, steps + 1, segment, seed=0).epoch(0)
    specaug(next(batches)[0])  # warm-up batch
    n, t_batches, t_aug = 0, 0.0, 0.0
    with Timer() as run:
        while True:
            t0 = time.perf_counter()
            x = next(batches, None)
            t1 = time.perf_counter()
            if x is None:
                break
            specaug(x[0])
            t_batches += t1 - t0
            t_aug += time.perf_counter() - t1
            n += len(x[0])
    return {"utt_s": n / run.s, "batches_utt_s": n / t_batches, "aug_ms": 1000 * t_aug / steps, "n": n,
            "timed_s": run.s}


def _audio_path(dataset: AudioMelDataset, workers: int, rounds: int) -> dict[str, float]:
    """On-the-fly loader: ``max(1, workers)`` warm-up batches, then ``rounds`` rounds of ``max(1, workers)``
    batches timed. Worker ``k`` builds batches ``k, k + workers, ...``, so whole rounds are timed."""
    from emohrnet.data.augment import AugmentConfig, SpecAugment

    specaug = SpecAugment(AugmentConfig(), inplace=True)  # the same as the shards' path
    per_round = max(1, workers)
    sampler = torch.utils.data.RandomSampler(dataset, replacement=True, num_samples=BATCH * per_round * (rounds + 1),
                                             generator=torch.Generator().manual_seed(0))
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, sampler=sampler, num_workers=workers)
    with PeakRSS(children=True) as mem:
        t0 = time.perf_counter()
        it = iter(loader)
        specaug(next(it)[0])  # first batch (includes worker start-up)
        first = time.perf_counter() - t0
        for _ in range(per_round - 1):  # the rest of the first round, built alongside the first batch
            specaug(next(it)[0])
        with Timer() as run:
            n = 0
            for x, _ in it:
                specaug(x)
                n += len(x)
    return {"utt_s": n / run.s, "first_s": first, "n": n, "timed_s": run.s, "peak_rss_mib": mem.peak_mib}


def run(ctx: Context) -> Section:
    """Measure the shard paths and the on-the-fly loader, and their ratios.

    Returns:
        rows in utterances/s (every path), ms (SpecAugment per batch), s (shard loading, cache build,
        first batch), MiB (peak RSS, cache size) and x (ratios).
    """
    from emohrnet.corpora import get_corpus
    from emohrnet.data.loading import load_examples
    from emohrnet.frontend import FeatureConfig
    from emohrnet.shards import Manifest, build_shards

    sec = Section("datapath", TITLE)
    corpus = main_corpus(ctx)
    if ctx.shard_dir is None:  # the shard-build section did not run: build them here, untimed
        with torch_threads():
            ctx.shard_dir = build_shards(corpus.dataset, corpus.data_root, ctx.work / "datapath-shards",
                                         workers=ctx.cores, corpus_options=corpus.options, progress=False,
                                         log=quiet).shard_dir
    manifest = Manifest.read(ctx.shard_dir)
    features = FeatureConfig.from_dict(manifest.features)
    segment = int(round(SEGMENT_SECONDS * features.sample_rate / features.hop_length))
    steps = 30 if ctx.quick else 200
    cached_steps = CACHED_STEPS[ctx.quick]
    rounds = 2 if ctx.quick else 10
    cuda = ctx.device == "cuda"
    sec.settings = {"corpus": corpus.to_dict(), "batch": BATCH, "segment_frames": segment,
                    "n_mels": features.n_mels, "specaugment": "LB policy (F=27, T=100), as in training",
                    "torch_threads": f"{THREADS} in the measuring process (a Ray Train worker with 1 CPU has 1); "
                                     "1 in each DataLoader worker",
                    "timing": "after a warm-up of max(1, num_workers) batches, whole rounds of max(1, num_workers) "
                              "batches; the first batch (worker start-up) is reported apart; the cached path "
                              "times one whole epoch, its plan included",
                    "gpu": torch.cuda.get_device_name() if cuda else None}

    keys = [e["key"] for e in manifest.utterances]
    with torch_threads(THREADS), PeakRSS() as mem:
        with Timer() as load:
            examples = load_examples(ctx.shard_dir, manifest, keys)
        c = _cached_path(examples, "cpu", cached_steps, segment)
        o = _per_example_path(examples, steps, segment)
        g = _cached_path(examples, "cuda", cached_steps, segment) if cuda else None
    paths = _shard_rows(sec, c, o, g, cached_steps, steps, load.s, mem.peak_mib, len(examples))
    scan = get_corpus(corpus.dataset, corpus.data_root, **corpus.options).scan()
    index = {c: i for i, c in enumerate(manifest.classes)}
    dataset = AudioMelDataset([(u.path, index[u.label]) for u in scan.utterances], features, segment)
    audio = _audio_rows(sec, dataset, ctx.cores, rounds)
    _ratio_rows(sec, paths, audio)
    return sec


def _shard_rows(sec: Section, c: dict, o: dict, g: dict | None, cached_steps: int, steps: int, load_s: float,
                peak_mib: float, n_examples: int) -> dict[str, dict]:
    """The shard paths' rows: cached + batched on the CPU (``c``) and GPU (``g``), per example (``o``);
    returns the paths by label for the ratios."""
    paths = {"cached (cpu)": c, "per example (before)": o}
    name = "shards, cached + batched on the CPU"
    sec.add(f"{name}: DeviceBatches + SpecAugment (training's default)", c["utt_s"], "utterances/s",
            batches=cached_steps, utterances=c["n"], timed_s=round(c["timed_s"], 3), device="cpu")
    sec.add(f"{name}: DeviceBatches alone (SpecAugment left out)", c["batches_utt_s"], "utterances/s",
            batches=cached_steps)
    sec.add(f"{name}: batched SpecAugment, per batch of 64", c["aug_ms"], "ms", batches=cached_steps)
    sec.add(f"{name}: cache build (once per worker)", c["build_s"], "s", utterances=n_examples,
            cache_mib=round(c["cache_mib"], 1))
    if g is not None:
        paths["cached (cuda)"] = g
        name = "shards, cached + batched on the GPU"
        sec.add(f"{name}: DeviceBatches + SpecAugment", g["utt_s"], "utterances/s", batches=cached_steps,
                utterances=g["n"], timed_s=round(g["timed_s"], 3), device="cuda")
        sec.add(f"{name}: DeviceBatches alone (SpecAugment left out)", g["batches_utt_s"], "utterances/s",
                batches=cached_steps)
        sec.add(f"{name}: batched SpecAugment, per batch of 64", g["aug_ms"], "ms", batches=cached_steps)
        sec.add(f"{name}: cache build incl. copy to the GPU (once per worker)", g["build_s"], "s")
        sec.add(f"{name}: cache size on the GPU (float16)", g["cache_mib"], "MiB")
    else:
        sec.add("shards, cached + batched on the GPU: DeviceBatches + SpecAugment", None, "utterances/s",
                note="skipped: --device cpu")
    name = "shards, per example (before)"
    sec.add(f"{name}: per-example batches + per-example SpecAugment (torchaudio)", o["utt_s"], "utterances/s",
            batches=steps, utterances=o["n"], timed_s=round(o["timed_s"], 3))
    sec.add(f"{name}: per-example batches alone (SpecAugment left out)", o["batches_utt_s"], "utterances/s",
            batches=steps)
    sec.add(f"{name}: per-example SpecAugment, per batch of 64", o["aug_ms"], "ms", batches=steps)
    sec.add("shards: load_examples (once per run, all utterances)", load_s, "s", utterances=n_examples)
    sec.add("shards: peak RSS (all shard paths)", peak_mib, "MiB")
    return paths


def _audio_rows(sec: Section, dataset: AudioMelDataset, cores: int, rounds: int) -> dict[int, dict[str, float]]:
    """The on-the-fly loader's rows with 0 and ``cores`` DataLoader workers; its figures by workers."""
    audio: dict[int, dict[str, float]] = {}
    for workers in sorted({0, cores}):
        batches = rounds * max(1, workers)
        with torch_threads(THREADS):
            a = audio[workers] = _audio_path(dataset, workers, rounds)
        sec.add(f"on the fly: load_audio + LogMel + random_segment, num_workers={workers}", a["utt_s"],
                "utterances/s", batches=batches, utterances=a["n"], timed_s=round(a["timed_s"], 3),
                num_workers=workers)
        sec.add(f"on the fly: first batch incl. worker start-up, num_workers={workers}", a["first_s"], "s")
        sec.add(f"on the fly: peak RSS incl. workers, num_workers={workers}", a["peak_rss_mib"], "MiB")
    return audio


def _ratio_rows(sec: Section, paths: dict[str, dict], audio: dict[int, dict[str, float]]) -> None:
    """Each shard path against the on-the-fly loader, the goal checked against its faster setting."""
    best_workers = max(audio, key=lambda w: audio[w]["utt_s"])
    for label, p in paths.items():
        for workers, a in sorted(audio.items()):
            ratio = p["utt_s"] / a["utt_s"]
            note = ""
            if label == "cached (cpu)" and workers == best_workers:
                note = f"goal >= {GOAL_RATIO:g}x: {'met' if ratio >= GOAL_RATIO else 'NOT met'}"
            sec.add(f"ratio shards {label} / on the fly (num_workers={workers})", ratio, "x", note=note)
    c, o = paths["cached (cpu)"], paths["per example (before)"]
    sec.add("gain cached + batched (cpu) / per example (before)", c["utt_s"] / o["utt_s"], "x")
    sec.notes.append(f"The goal is checked for the cached CPU path against the faster on-the-fly loader "
                     f"(num_workers={best_workers}). Every path delivers SpecAugment-ed batches (what a training "
                     "loop needs); the on-the-fly loader uses the batched SpecAugment too. Shards also pay "
                     "load_examples and the cache build once per run; the on-the-fly loader decodes every epoch.")
