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
from dataclasses import dataclass
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
        mel: ``(n_mels, frames)`` float16 normalized log-mel.
        label: class index.
    """

    key: str
    mel: torch.Tensor
    label: int


def _rank_part(urls: Iterable[str], rank: int, world: int) -> Iterator[str]:
    """WebDataset node splitter: every ``world``-th url starting at ``rank``."""
    for i, url in enumerate(urls):
        if i % world == rank:
            yield url


def _all_urls(urls: Iterable[str]) -> Iterator[str]:
    yield from urls


def load_examples(
    shard_dir: str | Path, manifest: dict[str, Any], keys: Iterable[str], rank: int = 0, world: int = 1
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
    urls = sorted({shard_of[k] for k in wanted})
    if not urls:
        return []
    split_shards = len(urls) >= world
    splitter = partial(_rank_part, rank=rank, world=world) if split_shards else _all_urls
    dataset = wds.WebDataset(
        [str(Path(shard_dir) / u) for u in urls], shardshuffle=False, nodesplitter=splitter,
        workersplitter=None, empty_check=False,
    ).decode()
    examples = []
    for sample in dataset:
        if sample["__key__"] in wanted:
            examples.append(Example(sample["__key__"], torch.from_numpy(sample["npy"]), int(sample["cls"])))
    examples.sort(key=lambda e: e.key)
    if not split_shards:
        examples = examples[rank::world]
    return examples


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

    Yields (from :meth:`epoch`):
        ``(x, y)``: ``x`` ``(batch, 1, n_mels, segment_frames)`` float32, ``y`` ``(batch,)`` int64.
    """

    def __init__(self, examples: list[Example], batch_size: int, steps: int, segment_frames: int,
                 seed: int = 0, rank: int = 0, time_shift: bool = True) -> None:
        if not examples:
            raise ValueError("this worker has no training examples; use fewer workers")
        self.examples, self.batch_size, self.steps = examples, batch_size, steps
        self.segment_frames, self.seed, self.rank, self.time_shift = segment_frames, seed, rank, time_shift

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of epoch ``epoch``."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch * 1009 + self.rank)
        need = self.steps * self.batch_size
        n = len(self.examples)
        order = torch.cat([torch.randperm(n, generator=g) for _ in range(math.ceil(need / n))])[:need]
        for step in range(self.steps):
            idx = order[step * self.batch_size:(step + 1) * self.batch_size].tolist()
            x = torch.stack([random_segment(self.examples[i].mel, self.segment_frames, g, self.time_shift)
                             for i in idx]).unsqueeze(1).float()
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
