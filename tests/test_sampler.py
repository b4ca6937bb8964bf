"""Every DDP rank trains on the whole training distribution (``DistributedSampler`` semantics).

The shards are laid out one speaker per shard; before, rank r read shards r, r + world, ... and so
trained on every other speaker only (on RAVDESS: rank 0 the male, rank 1 the female actors). These
tests drive the function the training loop uses (:func:`emohrnet.training.loop.training_batches`) on a
fixture corpus with 2 and 3 workers.
"""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from corpus_trees import write_ravdess_tree

from emohrnet.data.loading import DeviceBatches, Example, check_global_batch, rank_order
from emohrnet.frontend import FeatureConfig
from emohrnet.shards import build_shards
from emohrnet.training.config import TrainConfig
from emohrnet.training.loop import training_batches


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("sampler")
    write_ravdess_tree(root / "ravdess", actors=range(1, 13), emotions=(2, 3, 4, 5), statements=(1, 2),
                      repetitions=(1, 2), seconds=0.3)  # 16 utterances per actor
    built = build_shards("ravdess", root / "ravdess", root / "shards", features=FeatureConfig(n_mels=16),
                         progress=False, log=lambda *a: None)
    m = built.manifest
    split = m.split("speaker", 0)
    speaker_of = {u["key"]: u["speaker"] for u in m.utterances}
    return built, split, speaker_of


def _epoch_keys(built, split, world, epoch, seed=0, batch=6):
    cfg = TrainConfig.from_dict({"shard_dir": str(built.shard_dir), "batch_size": batch, "seed": seed,
                                 "segment_seconds": 0.2})
    out = []
    for rank in range(world):
        b = training_batches(cfg, built.manifest, split.train, rank, world)
        order = b.order(epoch)
        assert torch.equal(b.plan(epoch).example, order)  # the batches serve the examples in this order
        assert len(order) == b.steps * b.batch_size == b.steps * batch // world
        out.append([b.keys[i] for i in order.tolist()])
    return out


@pytest.mark.parametrize("world", [2, 3])
def test_every_rank_sees_every_training_speaker(corpus, world):
    built, split, speaker_of = corpus
    train_speakers = set(split.speakers["train"])
    assert len(train_speakers) >= 4 and len(built.manifest.shards) >= len(train_speakers)
    for rank_keys in _epoch_keys(built, split, world, epoch=0):
        assert {speaker_of[k] for k in rank_keys} == train_speakers


@pytest.mark.parametrize("world", [2, 3])
def test_one_epoch_over_all_ranks_is_the_training_part_once(corpus, world):
    built, split, _ = corpus
    batch = 6
    parts = _epoch_keys(built, split, world, epoch=0, batch=batch)
    assert len({len(p) for p in parts}) == 1  # the same number of steps on every rank
    # step s of every rank together is global batch s: interleave the ranks back into global order
    global_order = [parts[r][i] for i in range(len(parts[0])) for r in range(world)]
    n = len(split.train)
    assert sorted(global_order[:n]) == sorted(split.train)  # each training utterance once
    padding = global_order[n:]
    assert len(padding) < batch and padding == global_order[:len(padding)]  # padded from the epoch's start
    counts = Counter(k for p in parts for k in p)
    assert set(counts) == set(split.train) and all(c == 1 + (k in padding) for k, c in counts.items())
    assert not set(split.val) & set(counts) and not set(split.test) & set(counts)


@pytest.mark.parametrize("world", [2, 3])
def test_order_changes_every_epoch_and_repeats_for_a_seed(corpus, world):
    built, split, _ = corpus
    e0 = _epoch_keys(built, split, world, epoch=0, seed=3)
    assert e0 == _epoch_keys(built, split, world, epoch=0, seed=3)
    assert e0 != _epoch_keys(built, split, world, epoch=1, seed=3)
    assert e0 != _epoch_keys(built, split, world, epoch=0, seed=4)


def test_rank_order_with_fewer_examples_than_a_global_batch_and_variants():
    # 5 utterances, 3 workers of 2: one step, padded to 6; every rank still gets full batches
    orders = [rank_order(5, 2, 1, seed=0, epoch=0, rank=r, world=3) for r in range(3)]
    flat = torch.stack(orders, 1).reshape(-1).tolist()
    assert sorted(flat[:5]) == [0, 1, 2, 3, 4] and flat[5] == flat[0]
    examples = [Example(f"k{i}", torch.randn(4, 10).half(), i % 2, variants=[torch.randn(4, 10).half()])
                for i in range(5)]
    for r in range(3):  # the device cache, with waveform-augmented copies, follows the same order
        cache = DeviceBatches(examples, 2, 1, 8, seed=0, rank=r, variant_prob=0.5, world=3)
        assert torch.equal(cache.plan(0).example, orders[r])
    with pytest.raises(ValueError, match="rank 3 outside"):
        rank_order(5, 2, 1, 0, 0, rank=3, world=3)


def test_a_global_batch_that_does_not_divide_is_refused():
    assert check_global_batch(64, 2) == 32
    with pytest.raises(ValueError, match=r"64 .* does not divide by --workers 3: use --batch-size 63 or 66"):
        check_global_batch(64, 3)
