"""Batched SpecAugment, the device-resident training cache (DeviceBatches) and the training step's
speed settings (device cache, bf16 autocast, channels_last)."""

from __future__ import annotations

import math

import pytest
import torch
from fixtures import tiny_emohrnet

from benchmarks.per_example_batches import PerExampleBatches
from emohrnet.data.augment import AugmentConfig, SpecAugment, band_keep_mask, place_segment
from emohrnet.data.loading import DeviceBatches, Example
from emohrnet.inference.evaluation import EvalSet, eval_batches, evaluate
from emohrnet.training.config import TrainConfig
from emohrnet.training.loop import _cpu_state, train_epoch


# --------------------------------------------------------------------------- batched SpecAugment
def _masked_rows(y: torch.Tensor) -> list[list[int]]:
    """Per example, the mel bands that are zero in every frame."""
    return [torch.nonzero((y[i, 0] == 0).all(dim=1)).flatten().tolist() for i in range(len(y))]


def test_band_widths_are_uniform_below_f_and_bands_fit_the_axis():
    g = torch.Generator().manual_seed(0)
    keep = band_keep_mask(20000, 128, 27, 1, generator=g)
    assert keep.shape == (20000, 128) and keep.dtype == torch.bool
    widths = (~keep).sum(dim=1).float()
    assert widths.min() == 0 and widths.max() == 26  # f ~ U{0..F-1}
    assert float(widths.mean()) == pytest.approx(13.0, abs=0.25)  # (F - 1) / 2
    counts = torch.bincount(widths.long(), minlength=27).float() / len(widths)
    assert float((counts - 1 / 27).abs().max()) < 0.01  # every width about equally likely
    # start positions of non-empty bands: uniform over {0..size - f}, so both ends of the axis are reached
    masked = ~keep
    first = masked.float().argmax(dim=1)[widths > 0]
    assert int(first.min()) == 0 and int((first + widths[widths > 0].long()).max()) == 128
    size = 40
    wide = band_keep_mask(5000, size, 27, 1, generator=g)
    start = (~wide).float().argmax(dim=1)[(~wide).any(dim=1)]
    assert float(start.float().mean()) == pytest.approx((size - 13) / 2, abs=1.0)


def test_specaugment_masks_contiguous_bands_per_example_and_widths_match_f_and_t():
    torch.manual_seed(0)
    x = torch.ones(4000, 1, 64, 200)
    y = SpecAugment(AugmentConfig(freq_mask=20, time_mask=50))(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert torch.equal(x, torch.ones_like(x))  # input left as it is
    assert set(y.unique().tolist()) <= {0.0, 1.0}
    rows = _masked_rows(y)
    cols = [torch.nonzero((y[i, 0] == 0).all(dim=0)).flatten().tolist() for i in range(len(y))]
    for bands in rows + cols:
        assert not bands or bands[-1] - bands[0] + 1 == len(bands)  # one contiguous band
    row_w = torch.tensor([len(r) for r in rows], dtype=torch.float)
    col_w = torch.tensor([len(c) for c in cols], dtype=torch.float)
    assert row_w.max() <= 19 and col_w.max() <= 49
    assert float(row_w.mean()) == pytest.approx(9.5, abs=0.4)
    assert float(col_w.mean()) == pytest.approx(24.5, abs=1.0)
    # a masked cell is exactly one in a masked band or a masked frame
    band = torch.zeros(4000, 64, dtype=torch.bool)
    frame = torch.zeros(4000, 200, dtype=torch.bool)
    for i in range(4000):
        band[i, rows[i]] = True
        frame[i, cols[i]] = True
    assert torch.equal(y[:, 0] == 0, band[:, :, None] | frame[:, None, :])
    # each example its own masks
    assert len({(tuple(r), tuple(c)) for r, c in zip(rows[:64], cols[:64], strict=True)}) > 50


def test_specaugment_several_masks_zero_or_nothing_and_errors():
    torch.manual_seed(1)
    x = torch.randn(2000, 1, 32, 100)
    one = SpecAugment(AugmentConfig(freq_mask=10, time_mask=0))(x)
    three = SpecAugment(AugmentConfig(freq_mask=10, time_mask=0, n_freq_masks=3))(x)
    one_w = torch.tensor([len(r) for r in _masked_rows(one)], dtype=torch.float)
    three_w = torch.tensor([len(r) for r in _masked_rows(three)], dtype=torch.float)
    assert three_w.max() > 9  # bands of up to 9 each, several per example
    assert float(three_w.mean()) > 2 * float(one_w.mean())
    assert not (one == 0).all(dim=2).any()  # T = 0: no frame masked
    for cfg in (AugmentConfig(freq_mask=0, time_mask=0), AugmentConfig(n_freq_masks=0, n_time_masks=0)):
        assert torch.equal(SpecAugment(cfg)(x), x)
    with pytest.raises(ValueError, match="batch, 1, n_mels, frames"):
        SpecAugment(AugmentConfig())(x[0])


def test_specaugment_clips_masks_wider_than_the_axis():
    torch.manual_seed(2)
    x = torch.ones(500, 1, 16, 30)
    y = SpecAugment(AugmentConfig(freq_mask=50, time_mask=80))(x)
    rows = (y[:, 0] == 0).all(dim=2).sum(dim=1)
    cols = (y[:, 0] == 0).all(dim=1).sum(dim=1)
    assert rows.max() == 16 and cols.max() == 30  # whole axis at most, no error
    assert (rows < 16).any() and (cols < 30).any()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_specaugment_keeps_low_precision_dtypes(dtype):
    torch.manual_seed(3)
    x = torch.randn(8, 1, 32, 60).to(dtype)
    y = SpecAugment(AugmentConfig(freq_mask=10, time_mask=20))(x)
    assert y.dtype == dtype
    zero = y == 0
    assert zero.any()
    assert torch.equal(y[~zero], x[~zero])  # kept cells unchanged, bit for bit


def test_specaugment_generator_makes_masks_reproducible():
    x = torch.ones(16, 1, 32, 80)
    aug = AugmentConfig(freq_mask=10, time_mask=30)
    a = SpecAugment(aug, generator=torch.Generator().manual_seed(7))(x)
    b = SpecAugment(aug, generator=torch.Generator().manual_seed(7))(x)
    c = SpecAugment(aug, generator=torch.Generator().manual_seed(8))(x)
    assert torch.equal(a, b) and not torch.equal(a, c)
    d = SpecAugment(aug)(x, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, d)
    z = x.clone()
    e = SpecAugment(aug, generator=torch.Generator().manual_seed(7), inplace=True)(z)
    assert e is z and torch.equal(e, a)  # in place: the same masks, written into the input


# --------------------------------------------------------------------------- DeviceBatches
def _ramp(n_mels: int, frames: int, start: int = 1) -> torch.Tensor:
    """Features whose value is the frame number (from ``start``): windows are recognizable."""
    return (torch.arange(frames, dtype=torch.float32) + start).repeat(n_mels, 1).half()


def _examples(n=12, n_mels=8, variants=0):
    """Utterances of 10..43 frames (segment 20: some cropped, some padded), distinct values per row."""
    out = []
    for i in range(n):
        frames = 10 + 3 * i
        mel = torch.randn(n_mels, frames).half()
        var = [torch.randn(n_mels, 12 + i + k).half() for k in range(i % (variants + 1))] if variants else []
        out.append(Example(f"k{i:02d}", mel, i % 3, var))
    return out


def _features(ex: list[Example], plan, i: int) -> torch.Tensor:
    e = ex[int(plan.example[i])]
    v = int(plan.variant[i])
    return e.features if v < 0 else e.variants[v]


def test_device_batches_are_the_planned_segments_in_the_per_example_order():
    ex = _examples(variants=2)
    d = DeviceBatches(ex, 4, 7, 20, seed=1, rank=0, variant_prob=0.5)
    t = PerExampleBatches(ex, 4, 7, 20, seed=1, rank=0, variant_prob=0.5)
    plan = d.plan(0)
    ours, theirs = list(d.epoch(0)), list(t.epoch(0))
    assert len(ours) == len(theirs) == 7  # same steps (7 * 4 > 12 examples: starts over)
    assert sorted(plan.example[:12].tolist()) == list(range(12))  # a permutation first
    for step, ((x, y), (_, ty)) in enumerate(zip(ours, theirs, strict=True)):
        assert x.shape == (4, 1, 8, 20) and x.dtype == torch.float32 and y.dtype == torch.long
        assert torch.equal(y, ty)  # same examples, same order as the per-example oracle
        for j in range(4):
            i = step * 4 + j
            assert int(y[j]) == ex[int(plan.example[i])].label
            expected = place_segment(_features(ex, plan, i), 20, int(plan.offset[i])).float()
            assert torch.equal(x[j, 0], expected)
    assert (plan.variant >= 0).any() and (plan.variant < 0).any()


def test_device_batch_crops_are_windows_and_pads_are_zeros():
    n_mels, seg = 4, 25
    lengths = [7, 24, 25, 26, 60, 300, 1]
    ex = [Example(f"k{i}", _ramp(n_mels, n), 0) for i, n in enumerate(lengths)]
    d = DeviceBatches(ex, 7, 40, seg, seed=3)
    plan = d.plan(0)
    seen_offsets: dict[int, set[int]] = {n: set() for n in lengths}
    for step, (x, _) in enumerate(d.epoch(0)):
        for j in range(7):
            i = step * 7 + j
            n = lengths[int(plan.example[i])]
            row = x[j, 0]
            assert torch.equal(row, row[:1].expand_as(row))  # every band the same frame
            vals = row[0]
            off = int(plan.offset[i])
            seen_offsets[n].add(off)
            if n >= seg:  # a crop: consecutive frames of the utterance
                assert 0 <= off <= n - seg
                assert vals.tolist() == list(range(off + 1, off + seg + 1))
            else:  # a pad: the whole utterance at off, zeros elsewhere
                assert 0 <= off <= seg - n
                assert vals[off:off + n].tolist() == list(range(1, n + 1))
                assert (vals[:off] == 0).all() and (vals[off + n:] == 0).all()
    assert seen_offsets[25] == {0}
    assert len(seen_offsets[300]) > 20 and len(seen_offsets[7]) > 10  # shifted


def test_device_batch_offsets_are_uniform_and_zero_without_shift():
    ex = [Example("long", torch.randn(2, 120).half(), 1), Example("short", torch.randn(2, 20).half(), 0)]
    d = DeviceBatches(ex, 2, 4000, 41, seed=0)
    plan = d.plan(0)
    for key, slack in ((0, 120 - 41), (1, 41 - 20)):
        off = plan.offset[plan.example == key].float()
        assert off.min() == 0 and off.max() == slack
        assert float(off.mean()) == pytest.approx(slack / 2, abs=0.08 * slack)
    still = DeviceBatches(ex, 2, 5, 41, seed=0, time_shift=False)
    assert (still.plan(0).offset == 0).all()
    per_example = PerExampleBatches(ex, 2, 5, 41, seed=0, time_shift=False)
    for (x, y), (tx, ty) in zip(still.epoch(0), per_example.epoch(0), strict=True):
        assert torch.equal(x, tx) and torch.equal(y, ty)  # no randomness left: identical batches


def test_device_batch_variants_are_used_with_variant_prob():
    ex = [Example(f"k{i}", torch.randn(2, 30).half(), i % 2, [torch.randn(2, 30).half() for _ in range(i % 4)])
          for i in range(40)]
    d = DeviceBatches(ex, 40, 500, 16, seed=5, variant_prob=0.3)
    plan = d.plan(0)
    n_var = torch.tensor([len(e.variants) for e in ex])[plan.example]
    has = n_var > 0
    assert (plan.variant[~has] == -1).all()  # no copies: always the utterance itself
    used = plan.variant[has] >= 0
    assert float(used.float().mean()) == pytest.approx(0.3, abs=0.02)
    assert (plan.variant[has][used] < n_var[has][used]).all()
    three = (n_var == 3) & (plan.variant >= 0)
    assert torch.bincount(plan.variant[three], minlength=3).min() > 0.25 * int(three.sum())  # uniform choice
    none = DeviceBatches(ex, 40, 5, 16, seed=5, variant_prob=0.0)
    assert (none.plan(0).variant == -1).all()


def test_device_batches_reproducible_per_seed_epoch_rank_and_errors():
    ex = _examples()
    a = [x for x, _ in DeviceBatches(ex, 4, 3, 20, seed=1, rank=0).epoch(2)]
    b = [x for x, _ in DeviceBatches(ex, 4, 3, 20, seed=1, rank=0).epoch(2)]
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
    base = DeviceBatches(ex, 4, 3, 20, seed=1, rank=0)
    assert not torch.equal(base.plan(2).example, base.plan(3).example)
    assert not torch.equal(base.plan(2).example, DeviceBatches(ex, 4, 3, 20, seed=1, rank=1, world=2).plan(2).example)
    assert not torch.equal(base.plan(2).example, DeviceBatches(ex, 4, 3, 20, seed=2, rank=0).plan(2).example)
    with pytest.raises(ValueError, match="no training examples"):
        DeviceBatches([], 4, 1, 20)
    with pytest.raises(ValueError, match="n_features=8"):
        DeviceBatches(ex + [Example("odd", torch.zeros(6, 30).half(), 0)], 4, 1, 20)
    with pytest.raises(ValueError, match="segment_frames"):
        DeviceBatches(ex, 4, 1, 0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_device_batches_on_cuda_match_cpu():
    ex = _examples(variants=2)
    cpu = DeviceBatches(ex, 4, 5, 20, seed=1, variant_prob=0.5)
    gpu = DeviceBatches(ex, 4, 5, 20, seed=1, variant_prob=0.5, device="cuda")
    assert gpu.cache.is_cuda and gpu.cache.dtype == torch.float16
    for (x, y), (gx, gy) in zip(cpu.epoch(0), gpu.epoch(0), strict=True):
        assert gx.is_cuda and gy.is_cuda
        assert torch.equal(x, gx.cpu()) and torch.equal(y, gy.cpu())
    masked = SpecAugment(AugmentConfig())(torch.ones(8, 1, 128, 301, device="cuda", dtype=torch.bfloat16))
    assert masked.is_cuda and masked.dtype == torch.bfloat16 and (masked == 0).any()


# --------------------------------------------------------------------------- training speed settings
def _mock_devices(monkeypatch, cpu_bf16: bool, amx: bool = False, cuda_major: int | None = None):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: cpu_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda_major is not None)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (cuda_major or 0, 5))


def test_train_config_speed_defaults_and_resolution(monkeypatch):
    cfg = TrainConfig(shard_dir="shards")
    assert (cfg.speed.amp, cfg.speed.channels_last, cfg.speed.compile) == ("auto", "auto", False)
    _mock_devices(monkeypatch, cpu_bf16=True, cuda_major=8)  # AVX-512 BF16 CPU, an Ampere GPU
    assert cfg.resolve_speed("cpu") == {"device": "cpu", "amp": "bf16", "channels_last": True, "compile": False}
    assert cfg.resolve_speed("cuda")["amp"] == "bf16" and cfg.resolve_speed("cuda")["channels_last"] is True
    _mock_devices(monkeypatch, cpu_bf16=False, amx=True, cuda_major=7)  # AMX CPU; a T4 emulates bf16
    assert cfg.resolve_speed("cpu")["amp"] == "bf16"
    assert cfg.resolve_speed("cuda")["amp"] == "off" and cfg.resolve_speed("cuda")["channels_last"] is False
    _mock_devices(monkeypatch, cpu_bf16=False)  # an older CPU, no GPU
    assert cfg.resolve_speed("cpu")["amp"] == "off" and cfg.resolve_speed("cpu")["channels_last"] is True
    forced = TrainConfig.from_dict({"shard_dir": "s", "amp": True, "channels_last": "false", "compile": "1",
                                    "device_cache": "off"})  # a key of older checkpoints, ignored
    assert (forced.speed.amp, forced.speed.channels_last, forced.speed.compile) == ("bf16", False, True)
    assert forced.resolve_speed("cuda")["channels_last"] is False
    assert TrainConfig.from_dict({"shard_dir": "s", "amp": "off"}).resolve_speed("cuda")["amp"] == "off"
    for bad in ({"amp": "fp8"}, {"channels_last": "maybe"}, {"compile": "sometimes"}):
        with pytest.raises(ValueError):
            TrainConfig.from_dict({"shard_dir": "s", **bad})


@pytest.mark.parametrize("amp,channels_last", [(False, False), (True, True)])
def test_train_epoch_on_cached_batches_trains(amp, channels_last, two_threads):
    """Three epochs on an easy problem (class-dependent offsets) lower the loss on the training
    utterances, measured by the same evaluation before and after (not the noisy, augmented
    per-epoch training losses)."""
    torch.manual_seed(0)
    ex = [Example(f"k{i}", (torch.randn(16, 40) + 2.0 * (i % 3)).half(), i % 3) for i in range(24)]
    batches = DeviceBatches(ex, 8, 3, 32, seed=0)
    model = tiny_emohrnet()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    exact = EvalSet(ex, "cpu", bucket=1)  # the offsets are the signal: no zero padding
    start = evaluate(model, exact, 3, torch.device("cpu"), reduce=False)["loss"]
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    specaug = SpecAugment(AugmentConfig(freq_mask=4, time_mask=8))
    for epoch in range(3):
        total, count = train_epoch(model, batches.epoch(epoch), specaug, opt, torch.device("cpu"), amp=amp,
                                   channels_last=channels_last)
        assert count == 3 * 8 and torch.isfinite(torch.tensor(total))
    end = evaluate(model, exact, 3, torch.device("cpu"), reduce=False)["loss"]
    assert end < 0.8 * start, (start, end)
    after = model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if before[k].is_floating_point())
    state = _cpu_state(model)
    assert all(v.is_contiguous() for v in state.values())  # checkpoints in the default memory format


@pytest.mark.parametrize("amp", [False, True])
def test_a_training_step_runs_its_convolutions_in_bf16_only_with_amp(amp, one_thread):
    """``amp`` puts the training step's forward under bf16 autocast (the convolutions compute in bf16)
    and leaves the parameters and the loss in float32."""
    ex = [Example(f"k{i}", torch.randn(16, 40).half(), i % 3) for i in range(8)]
    batches = DeviceBatches(ex, 4, 1, 32, seed=0)
    model = tiny_emohrnet()
    seen = []
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    conv.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    total, count = train_epoch(model, batches.epoch(0), SpecAugment(AugmentConfig(freq_mask=2, time_mask=4)), opt,
                               torch.device("cpu"), amp=amp)
    assert seen and set(seen) == {torch.bfloat16 if amp else torch.float32}
    assert all(p.dtype == torch.float32 for p in model.parameters()) and math.isfinite(total) and count == 4


def test_evaluate_with_bf16_autocast_reports_float32_metrics(two_threads):
    ex = [Example(f"k{i}", torch.randn(16, 30 + 5 * (i % 2)).half(), i % 3) for i in range(12)]
    model = tiny_emohrnet()
    plain = evaluate(model, ex, 3, torch.device("cpu"), max_batch=4, reduce=False)
    mixed = evaluate(model, ex, 3, torch.device("cpu"), max_batch=4, reduce=False, amp=True)
    cl = evaluate(model.to(memory_format=torch.channels_last), ex, 3, torch.device("cpu"), max_batch=4,
                  reduce=False, channels_last=True)
    assert mixed["n"] == plain["n"] == 12 == sum(len(k) for *_, k in eval_batches(ex, 4))
    assert isinstance(mixed["loss"], float) and mixed["confusion"].dtype == torch.long
    assert mixed["loss"] == pytest.approx(plain["loss"], rel=0.05)  # bf16 forward, float32 loss
    assert mixed["loss"] != plain["loss"]  # the forward really ran in bf16 (off, the figures are identical)
    assert cl["loss"] == pytest.approx(plain["loss"], rel=1e-4)
