"""Section 1, the data path: utterances/s delivered to the training loop from shards against decoding
the original audio and computing the log-mel on the fly.

- Shards: :func:`emohrnet.data.load_examples` (once, timed separately) then
  :class:`emohrnet.data.TrainBatches` batches of 64 segments through :class:`emohrnet.augment.SpecAugment`,
  exactly what :func:`emohrnet.train.train_loop_per_worker` does each step.
- On the fly: the loader a user would write without shards, a ``torch.utils.data.Dataset`` whose items
  are :func:`emohrnet.audio.load_audio` + :class:`emohrnet.features.LogMel` +
  :func:`emohrnet.augment.random_segment`, a ``DataLoader`` of batch 64 (``num_workers`` 0 and the
  machine's cores), then the same SpecAugment on each batch.

Timing starts after a warm-up: one batch for the shards and ``num_workers=0``; with ``N`` DataLoader
workers the first ``N`` batches (one per worker, built side by side during the workers' start-up,
which is reported separately), and whole rounds of ``N`` batches are timed after them. All with one
torch thread in the measuring process (:data:`THREADS`): what a Ray Train worker with one CPU has, and
it keeps a loaded machine's OpenMP stalls out of the figures.

The goal: shards at least :data:`GOAL_RATIO` times faster than the faster on-the-fly loader.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from .common import Context, PeakRSS, Section, Timer, main_corpus, quiet, torch_threads

TITLE = "1. Data path: utterances/s delivered to the training loop"

BATCH = 64
GOAL_RATIO = 20.0
SEGMENT_SECONDS = 3.0
THREADS = 1
"""Torch threads of the measuring process: what a training worker with one CPU gets from Ray."""


class AudioMelDataset(torch.utils.data.Dataset):
    """Decode-on-the-fly training items: ``load_audio`` + ``LogMel`` + ``random_segment``.

    Args:
        items: ``(audio path, class index)`` pairs.
        features: the front end (the shards' :class:`~emohrnet.features.FeatureConfig`).
        segment_frames: frames per training segment.

    Items are ``(x, y)``: ``x`` ``(1, n_mels, segment_frames)`` float32, ``y`` an int.
    """

    def __init__(self, items: list[tuple[str, int]], features: Any, segment_frames: int) -> None:
        from emohrnet.features import LogMel

        self.items, self.segment_frames = items, segment_frames
        self.logmel = LogMel(features)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from emohrnet.audio import load_audio
        from emohrnet.augment import random_segment

        path, label = self.items[i]
        with torch.no_grad():
            mel = self.logmel(load_audio(path, self.logmel.config.sample_rate))
        return random_segment(mel, self.segment_frames, None).unsqueeze(0).contiguous(), label


def _shard_path(shard_dir: Path, manifest: dict, steps: int, segment: int) -> dict[str, float]:
    from emohrnet.augment import AugmentConfig, SpecAugment
    from emohrnet.data import TrainBatches, load_examples

    specaug = SpecAugment(AugmentConfig())
    keys = [e["key"] for e in manifest["utterances"]]
    with PeakRSS() as mem:
        with Timer() as load:
            examples = load_examples(shard_dir, manifest, keys)
        batches = TrainBatches(examples, BATCH, steps + 1, segment, seed=0).epoch(0)
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
    return {"utt_s": n / run.s, "batches_utt_s": n / t_batches, "aug_ms": 1000 * t_aug / steps, "load_s": load.s,
            "n": n, "timed_s": run.s, "examples": len(examples), "peak_rss_mib": mem.peak_mib}


def _audio_path(dataset: AudioMelDataset, workers: int, rounds: int) -> dict[str, float]:
    """On-the-fly loader: ``max(1, workers)`` warm-up batches, then ``rounds`` rounds of ``max(1, workers)``
    batches timed. Worker ``k`` builds batches ``k, k + workers, ...``, so whole rounds are timed."""
    from emohrnet.augment import AugmentConfig, SpecAugment

    specaug = SpecAugment(AugmentConfig())
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
    """Measure both data paths and their ratio.

    Returns:
        rows in utterances/s (both paths), s (shard loading, first batch), MiB (peak RSS) and x (ratio).
    """
    from emohrnet.corpora import get_corpus
    from emohrnet.features import FeatureConfig
    from shards.build import build_shards, read_manifest

    sec = Section("datapath", TITLE)
    corpus = main_corpus(ctx)
    if ctx.shard_dir is None:  # the shard-build section did not run: build them here, untimed
        with torch_threads():
            ctx.shard_dir = build_shards(corpus.dataset, corpus.data_root, ctx.work / "datapath-shards",
                                         workers=ctx.cores, corpus_options=corpus.options, progress=False,
                                         log=quiet).shard_dir
    manifest = read_manifest(ctx.shard_dir)
    features = FeatureConfig.from_dict(manifest["features"])
    segment = int(round(SEGMENT_SECONDS * features.sample_rate / features.hop_length))
    steps = 30 if ctx.quick else 200
    rounds = 2 if ctx.quick else 10
    sec.settings = {"corpus": corpus.to_dict(), "batch": BATCH, "segment_frames": segment,
                    "n_mels": features.n_mels, "specaugment": "LB policy (F=27, T=100), as in training",
                    "torch_threads": f"{THREADS} in the measuring process (a Ray Train worker with 1 CPU has 1); "
                                     "1 in each DataLoader worker",
                    "timing": "after a warm-up of max(1, num_workers) batches, whole rounds of max(1, num_workers) "
                              "batches; the first batch (worker start-up) is reported apart"}

    with torch_threads(THREADS):
        s = _shard_path(ctx.shard_dir, manifest, steps, segment)
    sec.add("shards: load_examples + TrainBatches + SpecAugment", s["utt_s"], "utterances/s",
            batches=steps, utterances=s["n"], timed_s=round(s["timed_s"], 3))
    sec.add("shards: TrainBatches alone (SpecAugment left out)", s["batches_utt_s"], "utterances/s", batches=steps)
    sec.add("shards: SpecAugment alone, per batch of 64", s["aug_ms"], "ms", batches=steps)
    sec.add("shards: load_examples (once per run, all utterances)", s["load_s"], "s", utterances=s["examples"])
    sec.add("shards: peak RSS", s["peak_rss_mib"], "MiB")

    scan = get_corpus(corpus.dataset, corpus.data_root, **corpus.options).scan()
    index = {c: i for i, c in enumerate(manifest["classes"])}
    dataset = AudioMelDataset([(u.path, index[u.label]) for u in scan.utterances], features, segment)
    audio: dict[int, dict[str, float]] = {}
    for workers in sorted({0, ctx.cores}):
        batches = rounds * max(1, workers)
        with torch_threads(THREADS):
            a = audio[workers] = _audio_path(dataset, workers, rounds)
        sec.add(f"on the fly: load_audio + LogMel + random_segment, num_workers={workers}", a["utt_s"],
                "utterances/s", batches=batches, utterances=a["n"], timed_s=round(a["timed_s"], 3),
                num_workers=workers)
        sec.add(f"on the fly: first batch incl. worker start-up, num_workers={workers}", a["first_s"], "s")
        sec.add(f"on the fly: peak RSS incl. workers, num_workers={workers}", a["peak_rss_mib"], "MiB")

    best_workers = max(audio, key=lambda w: audio[w]["utt_s"])
    for workers, a in sorted(audio.items()):
        ratio = s["utt_s"] / a["utt_s"]
        note = ""
        if workers == best_workers:
            note = f"goal >= {GOAL_RATIO:g}x: {'met' if ratio >= GOAL_RATIO else 'NOT met'}"
        sec.add(f"ratio shards / on the fly (num_workers={workers})", ratio, "x", note=note)
    sec.notes.append(f"The goal is checked against the faster on-the-fly loader (num_workers={best_workers}). "
                     "SpecAugment runs on the batches of both paths (what a training loop needs). Shards also pay "
                     "load_examples once per run; the on-the-fly loader decodes every epoch.")
    return sec
