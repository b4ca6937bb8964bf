"""Reading shards into training and evaluation batches.

Each training worker reads its own part of the shards (WebDataset with a node splitter over the
shard list: worker ``rank`` of ``world`` reads shards ``rank, rank + world, ...``), keeps the
utterances of the split it needs, and holds them in memory: every corpus of this project fits,
so epochs after loading do no I/O. Shard members are decoded in memory (``.npy`` without
pickle); member names are never used as file paths.

Training batches are fixed-length segments placed by the random time shift
(:func:`emohrnet.augment.random_segment`): per example in Python (:class:`TrainBatches`), or, by
default in training, for the whole batch at once from a cache of the worker's whole training part on
the training device (:class:`DeviceBatches`). Evaluation covers each whole utterance, batching only
utterances of equal length so no padding changes the result.
"""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
import webdataset as wds

from .augment import random_segment
from .location import Location


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


class DamagedShardError(ValueError):
    """A shard's content does not match the sha256 its manifest recorded (truncated or modified
    on disk or in the bucket)."""


def _open_verified(urls: Iterable[dict[str, Any]], folder: Location, sha256: dict[str, str]
                   ) -> Iterator[dict[str, Any]]:
    """WebDataset opener stage: read each shard of ``folder`` (local or object store) whole,
    check it against the manifest's sha256, and hand it on as an in-memory stream.

    Raises:
        DamagedShardError: a shard's checksum differs; the message names it and the fix.
        FileNotFoundError: a shard is missing.
    """
    for item in urls:
        name = item["url"]
        shard = folder / name
        data = shard.read_bytes()
        if name in sha256 and hashlib.sha256(data).hexdigest() != sha256[name]:
            raise DamagedShardError(
                f"{shard}: sha256 does not match the manifest (truncated or modified). Rebuild the shards: "
                "python -m shards.build --force ... (or run the search again, which rebuilds damaged shards)")
        yield {"url": str(shard), "stream": io.BytesIO(data)}


def load_examples(
    shard_dir: str | Path | Location, manifest: dict[str, Any], keys: Iterable[str], rank: int = 0,
    world: int = 1, with_copies: bool = False,
) -> list[Example]:
    """Read this worker's part of the utterances ``keys`` from the shards.

    With at least ``world`` shards holding the keys, worker ``rank`` reads only its shards;
    with fewer, every worker reads them all and keeps every ``world``-th utterance. Either way
    the workers' parts are disjoint and together cover ``keys``. The shards may sit on local
    disk (NFS included) or in an object store (``s3://...``, see :mod:`emohrnet.location`);
    each is checked against the manifest's sha256 as it is read.

    Args:
        shard_dir: folder of the shards and ``manifest.json`` (a path or a storage URI).
        manifest: its content (:func:`shards.build.read_manifest`).
        keys: utterance keys to load (a split's train, val or test part).
        rank, world: this worker's rank and the number of workers.
        with_copies: also load the waveform-augmented copies of exactly these utterances
            (training); they come back as each example's ``variants``, never as examples.

    Returns:
        Examples sorted by key.

    Raises:
        KeyError: a key is not in the manifest.
        DamagedShardError: a shard does not match its checksum.
        FileNotFoundError: a shard is missing.
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
    sha256 = {s["file"]: s["sha256"] for s in manifest.get("shards", ()) if "sha256" in s}
    stages = [wds.SimpleShardList(urls)]
    if split_shards:
        stages.append(partial(_rank_part, rank=rank, world=world))
    stages += [partial(_open_verified, folder=Location(shard_dir), sha256=sha256),
               wds.tariterators.tar_file_expander, wds.tariterators.group_by_keys,
               wds.select(lambda sample: sample["__key__"] in wanted or sample["__key__"] in copies),
               wds.decode()]
    examples: dict[str, Example] = {}
    variants: dict[str, list[tuple[str, torch.Tensor]]] = {}
    for sample in wds.DataPipeline(*stages):
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

    With ``device_cache=True`` the batches come from a :class:`DeviceBatches` built once here (the
    whole part packed into one tensor on ``device``, segments cut for the whole batch at once): the
    same order of examples and the same segment semantics, but different random offsets and variant
    choices, and the batches are already on ``device``. The examples are then not kept.

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
        device_cache: serve the batches from a :class:`DeviceBatches` cache on ``device``.
        device: where the cache and its batches live (``device_cache`` only; default CPU).

    Raises:
        ValueError: no examples (and, with ``device_cache``, see :class:`DeviceBatches`).

    Yields (from :meth:`epoch`):
        ``(x, y)``: ``x`` ``(batch, 1, n_mels, segment_frames)`` float32, ``y`` ``(batch,)`` int64
        (on CPU, or on ``device`` with ``device_cache``).
    """

    def __init__(self, examples: list[Example], batch_size: int, steps: int, segment_frames: int,
                 seed: int = 0, rank: int = 0, time_shift: bool = True, variant_prob: float = 0.0,
                 device_cache: bool = False, device: torch.device | str | None = None) -> None:
        if not examples:
            raise ValueError("this worker has no training examples; use fewer workers")
        self.batch_size, self.steps = batch_size, steps
        self.segment_frames, self.seed, self.rank, self.time_shift = segment_frames, seed, rank, time_shift
        self.variant_prob = variant_prob
        self.cache: DeviceBatches | None = None
        if device_cache:
            self.cache = DeviceBatches(examples, batch_size, steps, segment_frames, seed, rank, time_shift,
                                       variant_prob, device=device if device is not None else "cpu")
            self.examples: list[Example] = []
        else:
            self.examples = examples

    def _features(self, example: Example, g: torch.Generator) -> torch.Tensor:
        if example.variants and self.variant_prob > 0 and float(torch.rand((), generator=g)) < self.variant_prob:
            return example.variants[int(torch.randint(len(example.variants), (), generator=g))]
        return example.mel

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of epoch ``epoch``."""
        if self.cache is not None:
            return self.cache.epoch(epoch)
        return self._per_example_epoch(epoch)

    def _per_example_epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        g = torch.Generator().manual_seed(_epoch_seed(self.seed, epoch, self.rank))
        order = _epoch_order(len(self.examples), self.steps * self.batch_size, g)
        for step in range(self.steps):
            idx = order[step * self.batch_size:(step + 1) * self.batch_size].tolist()
            x = torch.stack([random_segment(self._features(self.examples[i], g), self.segment_frames, g,
                                            self.time_shift) for i in idx]).unsqueeze(1).float()
            y = torch.tensor([self.examples[i].label for i in idx], dtype=torch.long)
            yield x, y


def _epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """Seed of the order (and draws) of epoch ``epoch`` on rank ``rank``."""
    return seed * 1_000_003 + epoch * 1009 + rank


def _epoch_order(n: int, need: int, g: torch.Generator) -> torch.Tensor:
    """``need`` example indices: fresh random permutations of ``range(n)`` one after another."""
    return torch.cat([torch.randperm(n, generator=g) for _ in range(math.ceil(need / n))])[:need]


@dataclass
class EpochPlan:
    """What :class:`DeviceBatches` serves in one epoch, position by position (``steps * batch_size``).

    Attributes:
        example: ``(N,)`` int64, index of the example in the list given.
        variant: ``(N,)`` int64, ``-1`` for the example's own features, else the index into its
            ``variants``.
        offset: ``(N,)`` int64, frames: the first frame kept of a longer utterance, or where a shorter
            one starts in its zero-padded segment (as in :func:`emohrnet.augment.place_segment`).
        window: ``(N,)`` int64, the segment's first column in the packed cache (internal).
    """

    example: torch.Tensor
    variant: torch.Tensor
    offset: torch.Tensor
    window: torch.Tensor


class DeviceBatches:
    """Training batches cut from a cache of the whole training part on the training device.

    Once (per worker), every example and its ``variants`` are packed, as float16 (``dtype``), into one
    zero-padded tensor ``(n_mels, total_frames)`` on ``device``: utterances side by side with zero gaps
    of ``max(0, segment_frames - frames)`` columns around each shorter utterance. A training segment
    is then always a window of ``segment_frames`` consecutive columns: inside the utterance for a
    longer one (a crop at a random offset), or the utterance with zeros on both sides for a shorter
    one (zero-padding at a random offset): the semantics of :func:`emohrnet.augment.random_segment`
    (EmoHRNet's random time shift, Muppidi & Radfar 2025, sec. 3.4). A batch is one ``index_select``
    of ``batch_size`` windows from a strided view of the cache, so an epoch does no I/O, no Python work
    per example and, on a GPU, no host-to-device copy besides one small tensor of window starts per epoch.

    The order of examples is that of :class:`TrainBatches` for the same ``(seed, epoch, rank)``
    (so labels come in the same order); offsets and variant choices are drawn per epoch from the same
    CPU generator afterwards, all at once (:meth:`plan`), so they differ from :class:`TrainBatches`'s
    but follow the same distributions: offsets uniform on ``{0..|frames - segment_frames|}`` (0 with
    ``time_shift=False``), a variant chosen uniformly with probability ``variant_prob`` when there are
    any. Results do not depend on the device.

    Memory: 2 bytes per mel band per frame (float16) of the examples and their variants, plus the gaps.

    Args:
        examples: this worker's training examples (non-empty), ``mel`` ``(n_mels, frames)``.
        batch_size: examples per batch on this worker.
        steps: batches per epoch.
        segment_frames: frames per training segment.
        seed, rank: as in :class:`TrainBatches`.
        time_shift: random placement of each utterance in its segment (else from its start).
        variant_prob: probability of using one of an example's ``variants`` instead of the example.
        device: where the cache lives and the batches are returned.
        dtype: storage dtype of the cache (float16: half the memory of float32; batches are float32).

    Raises:
        ValueError: no examples, ``segment_frames < 1``, or features that are not 2-D or differ in
            their number of bands.

    Yields (from :meth:`epoch`):
        ``(x, y)`` on ``device``: ``x`` ``(batch_size, 1, n_mels, segment_frames)`` float32, ``y``
        ``(batch_size,)`` int64.
    """

    def __init__(self, examples: list[Example], batch_size: int, steps: int, segment_frames: int,
                 seed: int = 0, rank: int = 0, time_shift: bool = True, variant_prob: float = 0.0,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float16) -> None:
        if not examples:
            raise ValueError("this worker has no training examples; use fewer workers")
        if segment_frames < 1:
            raise ValueError(f"segment_frames must be at least 1, got {segment_frames}")
        self.batch_size, self.steps, self.segment_frames = batch_size, steps, segment_frames
        self.seed, self.rank, self.time_shift, self.variant_prob = seed, rank, time_shift, variant_prob
        self.device = torch.device(device)
        self.num_examples = len(examples)

        rows = [e.mel for e in examples]  # rows 0..n-1: the examples; then every example's variants
        first_variant, num_variants = [], []
        for e in examples:
            first_variant.append(len(rows))
            num_variants.append(len(e.variants))
            rows.extend(e.variants)
        n_mels = rows[0].shape[0]
        for r in rows:
            if r.dim() != 2 or r.shape[0] != n_mels:
                raise ValueError(f"features must all be (n_mels={n_mels}, frames), got {tuple(r.shape)}")
        lengths = torch.tensor([r.shape[-1] for r in rows], dtype=torch.long)
        need_pad = (segment_frames - lengths).clamp(min=0)  # zeros a shorter utterance needs on each side
        gaps = torch.maximum(torch.cat([need_pad, torch.zeros(1, dtype=torch.long)]),
                             torch.cat([torch.zeros(1, dtype=torch.long), need_pad]))  # gap before row i
        starts = torch.cumsum(gaps[:-1], 0) + torch.cumsum(torch.cat([torch.zeros(1, dtype=torch.long),
                                                                      lengths[:-1]]), 0)
        total = int(starts[-1] + lengths[-1] + gaps[-1])
        cache = torch.zeros(n_mels, total, dtype=dtype)
        for r, s, n in zip(rows, starts.tolist(), lengths.tolist(), strict=True):
            cache[:, s:s + n] = r
        self.cache = cache.to(self.device)
        self.n_mels = n_mels
        # every window of segment_frames columns, as a (num_windows, n_mels, segment_frames) view
        self._windows = self.cache.as_strided((total - segment_frames + 1, n_mels, segment_frames),
                                              (1, total, 1))
        self._row_start, self._row_len = starts, lengths
        self._first_variant = torch.tensor(first_variant, dtype=torch.long)
        self._num_variants = torch.tensor(num_variants, dtype=torch.long)
        self._labels = torch.tensor([e.label for e in examples], dtype=torch.long)

    def plan(self, epoch: int) -> EpochPlan:
        """The examples, variants and offsets of epoch ``epoch`` (CPU tensors; see :class:`EpochPlan`)."""
        g = torch.Generator().manual_seed(_epoch_seed(self.seed, epoch, self.rank))
        need = self.steps * self.batch_size
        example = _epoch_order(self.num_examples, need, g)
        variant = torch.full((need,), -1, dtype=torch.long)
        row = example
        count = self._num_variants[example]
        if self.variant_prob > 0 and bool((count > 0).any()):
            use, pick = torch.rand(2, need, generator=g)
            chosen = (pick * count).long().clamp(max=(count - 1).clamp(min=0))
            use = (count > 0) & (use < self.variant_prob)
            variant = torch.where(use, chosen, variant)
            row = torch.where(use, self._first_variant[example] + chosen, example)
        length = self._row_len[row]
        crop = length >= self.segment_frames
        slack = (length - self.segment_frames).abs()
        if self.time_shift:
            offset = torch.minimum((torch.rand(need, generator=g) * (slack + 1)).long(), slack)
        else:
            offset = torch.zeros(need, dtype=torch.long)
        window = self._row_start[row] + torch.where(crop, offset, -offset)
        return EpochPlan(example=example, variant=variant, offset=offset, window=window)

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of epoch ``epoch`` (see the class docstring)."""
        plan = self.plan(epoch)
        window = plan.window.to(self.device, non_blocking=True)
        labels = self._labels[plan.example].to(self.device, non_blocking=True)
        for step in range(self.steps):
            part = slice(step * self.batch_size, (step + 1) * self.batch_size)
            x = self._windows.index_select(0, window[part]).unsqueeze(1).float()
            yield x, labels[part]


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
