"""Log-mel front end, SpecAugment and time shift, training and evaluation batches."""

from __future__ import annotations

import pytest
import torch

from emohrnet.data.augment import AugmentConfig, SpecAugment, place_segment, random_segment
from emohrnet.data.loading import DeviceBatches, Example, steps_per_epoch
from emohrnet.frontend import FeatureConfig, LogMel
from emohrnet.inference.evaluation import eval_batches


def test_logmel_shape_and_normalization():
    cfg = FeatureConfig(n_mels=40)
    wave = torch.randn(16000) * 0.1
    mel = LogMel(cfg)(wave)
    assert mel.shape == (40, cfg.frames(16000)) == (40, 101)
    assert abs(float(mel.mean())) < 1e-4 and float(mel.std()) == pytest.approx(1.0, abs=1e-3)
    batch = LogMel(cfg)(torch.randn(3, 8000))
    assert batch.shape == (3, 40, 51)
    raw = LogMel(FeatureConfig(n_mels=40, normalization="none"))(wave)
    assert float(raw.mean()) < -1  # log power of a quiet signal, not normalized
    with pytest.raises(ValueError):
        FeatureConfig(f_max=9000)


def test_specaugment_masks_bands_and_frames():
    torch.manual_seed(0)
    x = torch.ones(16, 1, 64, 200)
    y = SpecAugment(AugmentConfig(freq_mask=20, time_mask=50))(x)
    assert y.shape == x.shape
    zero_rows = (y == 0).all(dim=3).sum(dim=(1, 2))  # fully masked mel bands per example
    zero_cols = (y == 0).all(dim=2).sum(dim=(1, 2))  # fully masked frames per example
    assert zero_rows.max() < 20 and zero_cols.max() < 50
    assert zero_rows.sum() > 0 and zero_cols.sum() > 0
    assert len(set(zero_rows.tolist())) > 1  # masks differ between examples
    off = SpecAugment(AugmentConfig(freq_mask=0, time_mask=0))
    assert torch.equal(off(x), x)
    with pytest.raises(ValueError):
        off(x[0])


def test_time_shift_crops_and_pads():
    mel = torch.arange(10.0).repeat(3, 1)  # (3, 10)
    assert place_segment(mel, 4, 2)[0].tolist() == [2, 3, 4, 5]
    padded = place_segment(mel, 14, 3)
    assert padded.shape == (3, 14) and padded[0, :3].eq(0).all() and padded[0, 3:13].tolist() == list(range(10))
    g = torch.Generator().manual_seed(0)
    starts = {int(random_segment(mel, 4, g)[0, 0]) for _ in range(50)}
    assert len(starts) > 3  # shifted
    assert int(random_segment(mel, 4, g, shift=False)[0, 0]) == 0


def _examples(n, frames=30, n_mels=8, classes=3):
    return [Example(f"k{i}", torch.randn(n_mels, frames + i % 4).half(), i % classes) for i in range(n)]


def test_train_batches_give_every_rank_full_batches_of_one_permutation():
    steps = steps_per_epoch(30, 8)
    assert steps == 4
    examples = _examples(30)
    ranks = [DeviceBatches(examples, 4, steps, 20, seed=1, rank=r, world=2) for r in range(2)]
    a, b = list(ranks[0].epoch(0)), list(ranks[1].epoch(0))
    assert len(a) == len(b) == steps
    x, y = a[0]
    assert x.shape == (4, 1, 8, 20) and x.dtype == torch.float32 and y.dtype == torch.long
    both = torch.cat([ranks[0].order(0), ranks[1].order(0)]).tolist()
    assert set(both) == set(range(30)) and len(both) == 32  # all 30 once, 2 padded
    assert not torch.equal(a[0][0], list(ranks[0].epoch(1))[0][0])  # a fresh order every epoch
    assert torch.equal(a[0][0], list(DeviceBatches(examples, 4, steps, 20, seed=1, world=2).epoch(0))[0][0])
    with pytest.raises(ValueError, match="no training examples"):
        DeviceBatches([], 4, 1, 20)


def test_eval_batches_cover_whole_utterances_of_equal_length_when_exact():
    examples = _examples(13)
    seen = []
    for x, _, lengths, keys in eval_batches(examples, max_batch=2, bucket=1):
        assert x.shape[0] == len(keys) <= 2
        assert len({next(e for e in examples if e.key == k).features.shape[1] for k in keys}) == 1
        assert x.shape[-1] == next(e for e in examples if e.key == keys[0]).features.shape[1]  # no crop, no pad
        assert lengths.tolist() == [x.shape[-1]] * len(keys)
        seen += keys
    assert sorted(seen) == sorted(e.key for e in examples)


def test_eval_batches_pad_each_bucket_and_keep_every_frame():
    """Lengths 10..59 frames in buckets of 16: each utterance zero-padded to the next multiple of 16,
    batches of up to 8 of one bucket; every utterance once, its frames untouched; an utterance's
    padding does not depend on the others in the set (so not on how workers split it)."""
    examples = [Example(f"k{n:02d}", torch.randn(4, n), n % 3) for n in range(59, 9, -1)]
    by_key = {e.key: e for e in examples}
    seen, padded = [], {}
    for x, y, lengths, keys in eval_batches(examples, max_batch=8, bucket=16):
        assert x.shape[0] == len(keys) <= 8 and x.shape[-1] % 16 == 0
        for i, key in enumerate(keys):
            n = by_key[key].features.shape[1]
            assert lengths[i] == n and y[i] == by_key[key].label and x.shape[-1] == -(-n // 16) * 16
            assert torch.equal(x[i, 0, :, :n], by_key[key].features.float()) and not x[i, 0, :, n:].any()
            padded[key] = x[i]
        seen += keys
    assert seen == sorted(by_key)  # sorted by length
    assert len(list(eval_batches(examples, max_batch=8, bucket=16))) == 7  # 1 + 2 + 2 + 2; 50 exact-length
    half = examples[::2]  # what one of two workers holds
    for x, _, _, keys in eval_batches(half, max_batch=3, bucket=16):
        assert all(torch.equal(x[i], padded[k]) for i, k in enumerate(keys))
    with pytest.raises(ValueError, match="bucket >= 1"):
        next(eval_batches(examples, bucket=0))
