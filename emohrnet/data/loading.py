"""Reading shards into training and evaluation batches.

Training follows the semantics of PyTorch's ``DistributedSampler``: every worker holds the whole
training part in memory (read once from the shards, every shard checked against its sha256), and
each epoch one seeded permutation of it, the same on every rank, is cut into global batches of
``batch_size * world`` utterances; rank ``r`` takes positions ``r, r + world, ...`` of it
(:func:`rank_order`). So every rank's batches mix all training speakers and classes, every
training utterance is used once per epoch, and the last global batch is *padded* with the first
utterances of the same permutation (at most ``batch_size * world - 1`` repeats; nothing is
dropped). The order changes with the epoch and is reproducible for a seed; it does not depend on
how the utterances are laid out in shards (per speaker) or how many shards there are.

Memory: each worker keeps its training part as float16, 2 bytes per band per frame (RAVDESS at
128 log-mel bands about 140 MB, IEMOCAP about 0.6 GB, plus waveform-augmented copies). A corpus
larger than one worker's memory is outside what this loader does; the sampler works on utterance
indices only, so such a corpus needs a store that reads features by index (e.g. one memory-mapped
array per shard) behind the same :func:`rank_order`.

Evaluation parts (validation, test) are split between workers (worker ``rank`` of ``world`` reads
shards ``rank, rank + world, ...``, or every ``world``-th utterance when there are fewer shards);
the workers' confusion matrices are summed. Shard members are decoded in memory (``.npy``
without pickle); member names are never used as file paths.

Training batches are fixed-length segments placed by the random time shift (the semantics of
:func:`emohrnet.data.augment.random_segment`), cut for the whole batch at once from a cache of the
worker's whole training part on the training device (:class:`DeviceBatches`, on any device; the
tests compare it with a per-example oracle). Evaluation batches: :mod:`emohrnet.inference.evaluation`.
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

from emohrnet.io.location import Location
from emohrnet.shards.manifest import Manifest


@dataclass
class Example:
    """One utterance in memory.

    Attributes:
        key: the WebDataset sample key.
        features: ``(n_features, frames)`` float16 features (normalized log-mel or MFCC).
        label: class index.
        variants: features of the utterance's waveform-augmented copies (training only).
    """

    key: str
    features: torch.Tensor
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


def _plain_members(members: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """WebDataset stage: refuse a shard with a member whose name is not a plain file name
    (``../../x.npy``, ``/etc/x.npy``, ``a/b.npy``); shards.build writes only ``<key>.<ext>``. Members
    are decoded in memory either way; this makes a crafted shard an error, not a silent skip.

    Raises:
        DamagedShardError: naming the shard and the member.
    """
    for member in members:
        name = member.get("fname", "")  # the expander ends each shard with an empty member
        if "/" in name or "\\" in name or name.startswith("."):
            raise DamagedShardError(f"{member.get('__url__', 'a shard')}: member {name!r} is not a plain file name; "
                                    "this shard was not written by shards.build. Rebuild the shards with --force")
        yield member


def load_examples(
    shard_dir: str | Path | Location, manifest: Manifest, keys: Iterable[str], rank: int = 0,
    world: int = 1, with_copies: bool = False,
) -> list[Example]:
    """Read the utterances ``keys`` from the shards, or worker ``rank``'s part of them.

    Training reads its whole part on every worker (``world=1``; :func:`rank_order` then splits each
    epoch between the ranks). Evaluation parts may be split: with ``world > 1`` and at least
    ``world`` shards holding the keys, worker ``rank`` reads only its shards; with fewer, every
    worker reads them all and keeps every ``world``-th utterance. Either way the workers' parts are
    disjoint and together cover ``keys``. The shards may sit on local
    disk (NFS included) or in an object store (``s3://...``, see :mod:`emohrnet.io.location`);
    each is checked against the manifest's sha256 as it is read.

    Args:
        shard_dir: folder of the shards and ``manifest.json`` (a path or a storage URI).
        manifest: its manifest (:meth:`emohrnet.shards.manifest.Manifest.read`).
        keys: utterance keys to load (a split's train, val or test part).
        rank, world: this worker's rank and the number of workers.
        with_copies: also load the waveform-augmented copies of exactly these utterances
            (training); they come back as each example's ``variants``, never as examples.

    Returns:
        Examples sorted by key.

    Raises:
        KeyError: a key is not in the manifest.
        DamagedShardError: a shard does not match its checksum, or holds a member whose name is a
            path (``../../x.npy``).
        FileNotFoundError: a shard is missing.
    """
    wanted = set(keys)
    shard_of = {e["key"]: e["shard"] for e in manifest.utterances}
    missing = wanted - shard_of.keys()
    if missing:
        raise KeyError(f"{len(missing)} keys are not in the manifest of {shard_dir}, e.g. {sorted(missing)[:3]}")
    copies = {c["key"]: c["origin"] for c in manifest.augmented if c["origin"] in wanted} \
        if with_copies else {}
    urls = sorted({shard_of[k] for k in wanted})
    if not urls:
        return []
    split_shards = len(urls) >= world
    pipeline = _shard_pipeline(shard_dir, manifest, urls, rank if split_shards else None, world,
                               lambda key: key in wanted or key in copies)
    examples: dict[str, Example] = {}
    variants: dict[str, list[tuple[str, torch.Tensor]]] = {}
    for sample in pipeline:
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


def _shard_pipeline(shard_dir: str | Path | Location, manifest: Manifest, urls: list[str], rank: int | None,
                    world: int, keep) -> wds.DataPipeline:
    """The samples of shards ``urls`` (of ``rank``'s share of them, unless ``rank`` is ``None``) whose key
    ``keep`` accepts, decoded; each shard checked against the manifest's sha256 as it is read."""
    stages = [wds.SimpleShardList(urls)]
    if rank is not None:
        stages.append(partial(_rank_part, rank=rank, world=world))
    stages += [partial(_open_verified, folder=Location(shard_dir), sha256=manifest.shard_sha256()),
               wds.tariterators.tar_file_expander, _plain_members, wds.tariterators.group_by_keys,
               wds.select(lambda sample: keep(sample["__key__"])), wds.decode()]
    return wds.DataPipeline(*stages)


def steps_per_epoch(num_utterances: int, batch_size: int) -> int:
    """Optimizer steps in one epoch: ``ceil(num_utterances / batch_size)`` (global batch), at least 1."""
    return max(1, math.ceil(num_utterances / batch_size))


def check_global_batch(batch_size: int, world: int) -> int:
    """The per-worker batch of a global batch of ``batch_size`` utterances over ``world`` workers.

    Raises:
        ValueError: ``batch_size`` or ``world`` below 1, or ``batch_size`` not a multiple of ``world``
            (the message names the nearest global batches that divide).
    """
    if world < 1 or batch_size < 1:
        raise ValueError(f"batch size {batch_size} and workers {world} must both be at least 1")
    if batch_size % world:
        lower, upper = batch_size // world * world, (batch_size // world + 1) * world
        options = " or ".join(str(b) for b in (lower, upper) if b > 0)
        raise ValueError(f"--batch-size {batch_size} (the global batch) does not divide by --workers {world}: "
                         f"use --batch-size {options}, or a number of workers that divides {batch_size}")
    return batch_size // world


def rank_order(num_examples: int, batch_size: int, steps: int, seed: int, epoch: int, rank: int = 0,
               world: int = 1) -> torch.Tensor:
    """The example indices rank ``rank`` trains on in epoch ``epoch``, in order (``DistributedSampler``
    semantics, PyTorch ``torch.utils.data.distributed``).

    One permutation of ``range(num_examples)``, seeded by ``(seed, epoch)`` alone and so the same on
    every rank, is laid out as ``steps`` global batches of ``batch_size * world``; when that is more
    than ``num_examples``, the permutation is continued from its start (padding: the first
    utterances of the epoch are used twice), when it is less, the epoch ends early. Rank ``rank``
    takes positions ``rank, rank + world, ...``, so step ``s`` of every rank together is global
    batch ``s``.

    Args:
        num_examples: size of the whole training part (>= 1).
        batch_size: examples per batch on each worker.
        steps: batches per epoch (:func:`steps_per_epoch` of the global batch covers every example).
        seed, epoch: the permutation's seed and epoch.
        rank, world: this worker and the number of workers.

    Returns:
        ``(steps * batch_size,)`` int64 indices.

    Raises:
        ValueError: no examples, or ``rank`` outside ``[0, world)``.
    """
    if num_examples < 1:
        raise ValueError("this worker has no training examples; the training part is empty")
    if not 0 <= rank < world:
        raise ValueError(f"rank {rank} outside 0..{world - 1}")
    g = torch.Generator().manual_seed(epoch_seed(seed, epoch))
    perm = torch.randperm(num_examples, generator=g)
    total = steps * batch_size * world
    order = perm.repeat(math.ceil(total / num_examples))[:total]
    return order[rank::world]


def epoch_seed(seed: int, epoch: int) -> int:
    """Seed of the permutation of epoch ``epoch`` (the same on every rank)."""
    return seed * 1_000_003 + epoch * 1009


def draw_seed(seed: int, epoch: int, rank: int) -> int:
    """Seed of rank ``rank``'s own draws in epoch ``epoch`` (time-shift offsets, variant choices)."""
    return (seed * 1_000_003 + epoch * 1009) * 131 + rank + 1


@dataclass
class EpochPlan:
    """What :class:`DeviceBatches` serves in one epoch, position by position (``steps * batch_size``).

    Attributes:
        example: ``(N,)`` int64, index of the example in the list given.
        variant: ``(N,)`` int64, ``-1`` for the example's own features, else the index into its
            ``variants``.
        offset: ``(N,)`` int64, frames: the first frame kept of a longer utterance, or where a shorter
            one starts in its zero-padded segment (as in :func:`emohrnet.data.augment.place_segment`).
        window: ``(N,)`` int64, the segment's first column in the packed cache (internal).
    """

    example: torch.Tensor
    variant: torch.Tensor
    offset: torch.Tensor
    window: torch.Tensor


class DeviceBatches:
    """Training batches cut from a cache of the whole training part on the training device.

    Once (per worker), every example and its ``variants`` are packed, as float16 (``dtype``), into one
    zero-padded tensor ``(n_features, total_frames)`` on ``device``: utterances side by side with zero gaps
    of ``max(0, segment_frames - frames)`` columns around each shorter utterance. A training segment
    is then always a window of ``segment_frames`` consecutive columns: inside the utterance for a
    longer one (a crop at a random offset), or the utterance with zeros on both sides for a shorter
    one (zero-padding at a random offset): the semantics of :func:`emohrnet.data.augment.random_segment`
    (EmoHRNet's random time shift, Muppidi & Radfar 2025, sec. 3.4). A batch is one ``index_select``
    of ``batch_size`` windows from a strided view of the cache, so an epoch does no I/O, no Python work
    per example and, on a GPU, no host-to-device copy besides one small tensor of window starts per epoch.

    The order of examples is :func:`rank_order`'s for ``(seed, epoch, rank, world)`` (:meth:`order`):
    ``DistributedSampler`` semantics. Offsets and variant choices are drawn per epoch from rank
    ``rank``'s own CPU generator (seeded by :func:`draw_seed`), all at once (:meth:`plan`): offsets
    uniform on ``{0..|frames - segment_frames|}`` (0 with ``time_shift=False``), a variant chosen
    uniformly with probability ``variant_prob`` when there are any. Results do not depend on the device.

    Memory: 2 bytes per feature row per frame (float16) of the examples and their variants, plus the gaps.

    Args:
        examples: the whole training part (non-empty), ``features`` ``(n_features, frames)``.
        batch_size: examples per batch on this worker.
        steps: batches per epoch.
        segment_frames: frames per training segment.
        seed: base seed; the order of epoch ``e`` depends on ``(seed, e)``, the offsets and variant
            choices of rank ``r`` on ``(seed, e, r)``.
        rank: this worker's rank, ``0 <= rank < world``.
        time_shift: random placement of each utterance in its segment (else from its start).
        variant_prob: probability of using one of an example's ``variants`` instead of the example.
        device: where the cache lives and the batches are returned.
        dtype: storage dtype of the cache (float16: half the memory of float32; batches are float32).
        world: the number of workers (:func:`rank_order`).

    Raises:
        ValueError: no examples, ``rank`` outside ``[0, world)``, ``segment_frames < 1``, or features
            that are not 2-D or differ in their number of rows.

    Yields (from :meth:`epoch`):
        ``(x, y)`` on ``device``: ``x`` ``(batch_size, 1, n_features, segment_frames)`` float32, ``y``
        ``(batch_size,)`` int64.
    """

    def __init__(self, examples: list[Example], batch_size: int, steps: int, segment_frames: int,
                 seed: int = 0, rank: int = 0, time_shift: bool = True, variant_prob: float = 0.0,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float16, world: int = 1) -> None:
        if not examples:
            raise ValueError("this worker has no training examples; the training part is empty")
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} outside 0..{world - 1}")
        if segment_frames < 1:
            raise ValueError(f"segment_frames must be at least 1, got {segment_frames}")
        self.batch_size, self.steps, self.segment_frames = batch_size, steps, segment_frames
        self.seed, self.rank, self.time_shift, self.variant_prob = seed, rank, time_shift, variant_prob
        self.world = world
        self.device = torch.device(device)
        self.num_examples = len(examples)
        self.keys = [e.key for e in examples]  # what the indices of order() and plan() stand for

        rows = [e.features for e in examples]  # rows 0..n-1: the examples; then every example's variants
        first_variant, num_variants = [], []
        for e in examples:
            first_variant.append(len(rows))
            num_variants.append(len(e.variants))
            rows.extend(e.variants)
        n_features = rows[0].shape[0]
        for r in rows:
            if r.dim() != 2 or r.shape[0] != n_features:
                raise ValueError(f"features must all be (n_features={n_features}, frames), got {tuple(r.shape)}")
        lengths = torch.tensor([r.shape[-1] for r in rows], dtype=torch.long)
        need_pad = (segment_frames - lengths).clamp(min=0)  # zeros a shorter utterance needs on each side
        gaps = torch.maximum(torch.cat([need_pad, torch.zeros(1, dtype=torch.long)]),
                             torch.cat([torch.zeros(1, dtype=torch.long), need_pad]))  # gap before row i
        starts = torch.cumsum(gaps[:-1], 0) + torch.cumsum(torch.cat([torch.zeros(1, dtype=torch.long),
                                                                      lengths[:-1]]), 0)
        total = int(starts[-1] + lengths[-1] + gaps[-1])
        cache = torch.zeros(n_features, total, dtype=dtype)
        for r, s, n in zip(rows, starts.tolist(), lengths.tolist(), strict=True):
            cache[:, s:s + n] = r
        self.cache = cache.to(self.device)
        self.n_features = n_features
        # every window of segment_frames columns, as a (num_windows, n_features, segment_frames) view
        self._windows = self.cache.as_strided((total - segment_frames + 1, n_features, segment_frames),
                                              (1, total, 1))
        self._row_start, self._row_len = starts, lengths
        self._first_variant = torch.tensor(first_variant, dtype=torch.long)
        self._num_variants = torch.tensor(num_variants, dtype=torch.long)
        self._labels = torch.tensor([e.label for e in examples], dtype=torch.long)

    def order(self, epoch: int) -> torch.Tensor:
        """This rank's example indices in epoch ``epoch``, ``(steps * batch_size,)`` (:func:`rank_order`)."""
        return rank_order(self.num_examples, self.batch_size, self.steps, self.seed, epoch, self.rank, self.world)

    def plan(self, epoch: int) -> EpochPlan:
        """The examples, variants and offsets of epoch ``epoch`` (CPU tensors; see :class:`EpochPlan`)."""
        example = self.order(epoch)
        g = torch.Generator().manual_seed(draw_seed(self.seed, epoch, self.rank))
        need = self.steps * self.batch_size
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


