"""Reading shards into training and evaluation batches.

Each training worker reads its own part of the shards (WebDataset with a node splitter over the
shard list: worker ``rank`` of ``world`` reads shards ``rank, rank + world, ...``), keeps the
utterances of the split it needs, and holds them in memory: every corpus of this project fits,
so epochs after loading do no I/O. Shard members are decoded in memory (``.npy`` without
pickle); member names are never used as file paths.

Training batches are fixed-length segments placed by the random time shift
(:func:`emohrnet.augment.random_segment`); evaluation covers each whole utterance, batching only
utterances of equal length so no padding changes the result.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
import webdataset as wds

from .augment import random_segment


@dataclass
class Example:
    """One utterance in memory.

    Attributes:
        key: the WebDataset sample key.
        mel: ``(n_features, frames)`` float16 features (normalized log-mel or MFCC).
        label: class index.
        variants: features of the utterance's waveform-augmented copies (training only).
    """

    key: str
    mel: torch.Tensor
    label: int
    variants: list[torch.Tensor] = field(default_factory=list)


def _rank_part(urls: Iterable[str], rank: int, world: int) -> Iterator[str]:
    """WebDataset node splitter: every ``world``-th url starting at ``rank``."""
    for i, url in enumerate(urls):
        if i % world == rank:
            yield url


def _all_urls(urls: Iterable[str]) -> Iterator[str]:
    yield from urls


def load_examples(
    shard_dir: str | Path, manifest: dict[str, Any], keys: Iterable[str], rank: int = 0, world: int = 1,
    with_copies: bool = False,
) -> list[Example]:
    """Read this worker's part of the utterances ``keys`` from the shards.

    With at least ``world`` shards holding the keys, worker ``rank`` reads only its shards;
    with fewer, every worker reads them all and keeps every ``world``-th utterance. Either way
    the workers' parts are disjoint and together cover ``keys``.

    Args:
        shard_dir: folder of the shards and ``manifest.json``.
        manifest: its content (:func:`shards.build.read_manifest`).
        keys: utterance keys to load (a split's train, val or test part).
        rank, world: this worker's rank and the number of workers.
        with_copies: also load the waveform-augmented copies of exactly these utterances
            (training); they come back as each example's ``variants``, never as examples.

    Returns:
        Examples sorted by key.

    Raises:
        KeyError: a key is not in the manifest.
    """
    wanted = set(keys)
    shard_of = {e["key"]: e["shard"] for e in manifest["utterances"]}
    missing = wanted - shard_of.keys()
    if missing:
        raise KeyError(f"{len(missing)} keys are not in the manifest of {shard_dir}, e.g. {sorted(missing)[:3]}")
    copies = {c["key"]: c["origin"] for c in manifest.get("augmented", ()) if c["origin"] in wanted} \
        if with_copies else {}
    urls = sorted({shard_of[k] for k in wanted})
    if not urls:
        return []
    split_shards = len(urls) >= world
    splitter = partial(_rank_part, rank=rank, world=world) if split_shards else _all_urls
    dataset = wds.WebDataset(
        [str(Path(shard_dir) / u) for u in urls], shardshuffle=False, nodesplitter=splitter,
        workersplitter=None, empty_check=False,
    ).decode()
    examples: dict[str, Example] = {}
    variants: dict[str, list[tuple[str, torch.Tensor]]] = {}
    for sample in dataset:
        key = sample["__key__"]
        if key in wanted:
            examples[key] = Example(key, torch.from_numpy(sample["npy"]), int(sample["cls"]))
        elif key in copies:
            variants.setdefault(copies[key], []).append((key, torch.from_numpy(sample["npy"])))
    for origin, found in variants.items():
        if origin in examples:
            examples[origin].variants = [mel for _, mel in sorted(found, key=lambda kv: kv[0])]
    ordered = [examples[k] for k in sorted(examples)]
    return ordered if split_shards else ordered[rank::world]


def steps_per_epoch(num_utterances: int, batch_size: int) -> int:
    """Optimizer steps in one epoch: ``ceil(num_utterances / batch_size)`` (global batch), at least 1."""
    return max(1, math.ceil(num_utterances / batch_size))


class TrainBatches:
    """Random training batches of fixed-length segments from in-memory examples.

    Every worker yields the same number of batches per epoch (``steps``, computed from the size
    of the whole training set), drawing from its own examples in a fresh random order each
    epoch and starting over when it runs out, so DDP workers stay in step even when their
    parts differ in size.

    Args:
        examples: this worker's training examples (non-empty).
        batch_size: examples per batch on this worker.
        steps: batches per epoch.
        segment_frames: frames per training segment.
        seed: base seed; the order of epoch ``e`` on rank ``r`` depends on ``(seed, e, r)``.
        rank: this worker's rank.
        time_shift: random placement of each utterance in its segment (else from its start).
        variant_prob: probability of using one of an example's augmented copies (its
            ``variants``, chosen uniformly) instead of the example itself.

    Yields (from :meth:`epoch`):
        ``(x, y)``: ``x`` ``(batch, 1, n_mels, segment_frames)`` float32, ``y`` ``(batch,)`` int64.
    """

    def __init__(self, examples: list[Example], batch_size: int, steps: int, segment_frames: int,
                 seed: int = 0, rank: int = 0, time_shift: bool = True, variant_prob: float = 0.0) -> None:
        if not examples:
            raise ValueError("this worker has no training examples; use fewer workers")
        self.examples, self.batch_size, self.steps = examples, batch_size, steps
        self.segment_frames, self.seed, self.rank, self.time_shift = segment_frames, seed, rank, time_shift
        self.variant_prob = variant_prob

    def _features(self, example: Example, g: torch.Generator) -> torch.Tensor:
        if example.variants and self.variant_prob > 0 and float(torch.rand((), generator=g)) < self.variant_prob:
            return example.variants[int(torch.randint(len(example.variants), (), generator=g))]
        return example.mel

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of epoch ``epoch``."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch * 1009 + self.rank)
        need = self.steps * self.batch_size
        n = len(self.examples)
        order = torch.cat([torch.randperm(n, generator=g) for _ in range(math.ceil(need / n))])[:need]
        for step in range(self.steps):
            idx = order[step * self.batch_size:(step + 1) * self.batch_size].tolist()
            x = torch.stack([random_segment(self._features(self.examples[i], g), self.segment_frames, g,
                                            self.time_shift) for i in idx]).unsqueeze(1).float()
            y = torch.tensor([self.examples[i].label for i in idx], dtype=torch.long)
            yield x, y


def eval_batches(examples: list[Example], max_batch: int = 32
                 ) -> Iterator[tuple[torch.Tensor, torch.Tensor, list[str]]]:
    """Whole-utterance evaluation batches: only utterances of equal length share a batch.

    Yields:
        ``(x, y, keys)``: ``x`` ``(batch, 1, n_mels, frames)`` float32, ``y`` ``(batch,)`` int64.
    """
    by_len: dict[int, list[Example]] = {}
    for e in examples:
        by_len.setdefault(e.mel.shape[-1], []).append(e)
    for _, group in sorted(by_len.items()):
        for i in range(0, len(group), max_batch):
            part = group[i:i + max_batch]
            x = torch.stack([e.mel for e in part]).unsqueeze(1).float()
            yield x, torch.tensor([e.label for e in part], dtype=torch.long), [e.key for e in part]
