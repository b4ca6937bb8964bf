"""Tests for emohrnet.models: EmoHRNet (Muppidi & Radfar 2025, sections 3.2-3.3) and the registry."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from emohrnet.models import (
    MODELS,
    EmoHRNet,
    HighResolutionModule,
    build_model,
    count_parameters,
    width_preset,
)

torch.set_num_threads(2)

# Small configurations (fast on 2 CPU cores): 4-stage W4 and W8, and a 3-stage one.
SMALL = {
    "w4": {
        "widths": width_preset(4),
        "modules": (1, 1, 1, 1),
        "blocks_per_branch": 1,
        "stem_channels": 8,
        "stage1_blocks": 1,
    },
    "w8": {
        "widths": width_preset(8),
        "modules": (1, 1, 2, 1),
        "blocks_per_branch": 1,
        "stem_channels": 8,
        "stage1_blocks": 1,
    },
    "3stage": {
        "widths": (8, 16, 32),
        "modules": (1, 1, 1),
        "blocks_per_branch": 2,
        "stem_channels": 8,
        "stage1_blocks": 2,
    },
}


def small_model(name: str = "w4", num_classes: int = 4, **overrides) -> EmoHRNet:
    torch.manual_seed(0)
    return EmoHRNet(num_classes, **{**SMALL[name], **overrides})


def ceil_half(n: int, times: int) -> int:
    for _ in range(times):
        n = math.ceil(n / 2)
    return n


@pytest.mark.parametrize("config", sorted(SMALL))
@pytest.mark.parametrize(("n_mels", "frames"), [(64, 1), (64, 37), (32, 101), (128, 7)])
def test_output_shape(config: str, n_mels: int, frames: int) -> None:
    model = small_model(config, num_classes=5)
    x = torch.randn(2, 1, n_mels, frames)
    for train in (True, False):
        model.train(train)
        out = model(x)
        assert out.shape == (2, 5)
        assert out.dtype == torch.float32
        assert torch.isfinite(out).all()


def test_default_w18_shape_and_parameter_count() -> None:
    model = EmoHRNet(num_classes=4).eval()
    assert model.config["widths"] == [18, 36, 72, 144]
    assert model.config["fuse_channels"] == 18 + 36 + 72 + 144
    with torch.no_grad():
        out = model(torch.randn(1, 1, 64, 50))
    assert out.shape == (1, 4)
    assert torch.isfinite(out).all()
    # Measured 9,635,632 parameters with 4 classes: HRNetV2-W18's backbone is ~9.6M (Wang et al. 2020);
    # timm's hrnet_w18 (21.3M) is larger only because of its 2048-channel ImageNet classification head.
    n = count_parameters(model)
    assert 9_000_000 < n < 10_500_000, n


@pytest.mark.parametrize("config", sorted(SMALL))
@pytest.mark.parametrize(("n_mels", "frames"), [(64, 333), (33, 101), (8, 1), (127, 37)])
def test_fusion_keeps_each_branch_resolution(config: str, n_mels: int, frames: int) -> None:
    model = small_model(config).eval()
    widths = SMALL[config]["widths"]
    h0, w0 = ceil_half(n_mels, 2), ceil_half(frames, 2)  # the stem's two stride-2 convs
    x = torch.randn(3, 1, n_mels, frames)
    with torch.no_grad():
        fused, branches = model.forward_features(x, return_branches=True)
    assert len(branches) == len(widths)
    for b, (branch, width) in enumerate(zip(branches, widths, strict=True)):
        assert branch.shape == (3, width, ceil_half(h0, b), ceil_half(w0, b)), b
    assert fused.shape == (3, model.config["fuse_channels"], h0, w0)
    assert model.branch_shapes(x) == [tuple(br.shape) for br in branches]


def test_high_resolution_module_odd_sizes_and_mismatch() -> None:
    torch.manual_seed(0)
    module = HighResolutionModule((4, 8, 16), num_blocks=1).eval()
    xs = [torch.randn(2, 4, 7, 9), torch.randn(2, 8, 4, 5), torch.randn(2, 16, 2, 3)]
    with torch.no_grad():
        ys = module(xs)
    assert [y.shape for y in ys] == [x.shape for x in xs]
    assert all((y >= 0).all() for y in ys)  # ReLU after the fusion sum
    # Floor-halved sizes (7 -> 3) are not what the stride-2 convs produce (7 -> 4): refused loudly.
    bad = [torch.randn(2, 4, 7, 9), torch.randn(2, 8, 3, 4), torch.randn(2, 16, 2, 2)]
    with pytest.raises(RuntimeError, match="does not match"):
        module(bad)


def test_gradients_reach_stem_and_classifier() -> None:
    model = small_model("w8").train()
    x = torch.randn(4, 1, 32, 41)
    loss = nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    stem_grad = model.stem[0][0].weight.grad
    for grad in (stem_grad, model.classifier.weight.grad, model.classifier.bias.grad):
        assert grad is not None
        assert torch.isfinite(grad).all()
        assert grad.abs().sum() > 0
    # Every parameter takes part in the forward pass (no dead branch or fusion path).
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, missing


def test_eval_deterministic_and_batch_independent() -> None:
    model = small_model("3stage")
    torch.manual_seed(1)
    x = torch.randn(3, 1, 32, 57)
    # A few training steps' worth of forward passes so that BN running stats are not the identity.
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(4, 1, 32, 57) * 2 + 1)
    model.eval()
    with torch.no_grad():
        batched = model(x)
        again = model(x)
        alone = torch.cat([model(x[i : i + 1]) for i in range(3)])
        other = model(torch.cat([x[:1], torch.randn(2, 1, 32, 57) * 5]))
    torch.testing.assert_close(batched, again, rtol=0, atol=0)
    torch.testing.assert_close(batched, alone, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(other[0], batched[0], rtol=1e-5, atol=1e-5)
    # Sanity of the check itself: different inputs give different logits; a different length too.
    assert not torch.allclose(batched[0], batched[1])
    with torch.no_grad():
        shorter = model(x[:1, :, :, :31])
    assert not torch.allclose(shorter[0], batched[0])
    # In training mode BatchNorm uses batch statistics, so items do depend on each other.
    model.train()
    with torch.no_grad():
        assert not torch.allclose(model(x)[0], model(x[:1])[0], atol=1e-4)


@pytest.mark.parametrize("config", sorted(SMALL))
def test_config_rebuilds_same_architecture(config: str) -> None:
    model = small_model(config, num_classes=6, dropout=0.25, fuse_channels=24)
    restored_config = json.loads(json.dumps(model.config))  # checkpoints store it as JSON
    assert restored_config == model.config
    rebuilt = EmoHRNet(**restored_config)
    assert rebuilt.config == model.config
    a, b = model.state_dict(), rebuilt.state_dict()
    assert list(a) == list(b)
    assert all(a[k].shape == b[k].shape for k in a)
    rebuilt.load_state_dict(a)
    model.eval()
    rebuilt.eval()
    x = torch.randn(2, 1, 32, 45)
    with torch.no_grad():
        torch.testing.assert_close(model(x), rebuilt(x))
    # And the config does determine the architecture: a different one has other shapes.
    other = EmoHRNet(**{**restored_config, "fuse_channels": 16})
    assert any(a[k].shape != v.shape for k, v in other.state_dict().items())


def test_config_defaults() -> None:
    model = EmoHRNet(3, widths=(8, 16), modules=(1, 1), blocks_per_branch=1, stem_channels=4, stage1_blocks=1)
    assert model.config == {
        "num_classes": 3,
        "widths": [8, 16],
        "blocks_per_branch": 1,
        "modules": [1, 1],
        "stem_channels": 4,
        "stage1_blocks": 1,
        "fuse_channels": 24,
        "dropout": 0.0,
        "in_channels": 1,
    }
    assert model(torch.randn(2, 1, 16, 9)).shape == (2, 3)


def test_init() -> None:
    model = small_model("w4")
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert torch.equal(m.weight, torch.ones_like(m.weight))
            assert torch.equal(m.bias, torch.zeros_like(m.bias))
    # Kaiming normal, fan_out mode: std = sqrt(2 / (out_channels * 3 * 3)) = 0.059 for a 64->64 3x3 conv
    # (PyTorch's default init would give std 0.024).
    big = EmoHRNet(2, widths=(64, 128), modules=(1, 1), blocks_per_branch=1, stem_channels=8, stage1_blocks=1)
    w = big.stages[0][0].branches[0][0].conv1.weight
    assert w.shape == (64, 64, 3, 3)
    expected = math.sqrt(2 / (64 * 9))
    assert abs(w.std().item() - expected) < 0.1 * expected
    assert abs(w.mean().item()) < 0.1 * expected


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"widths": (8, 16, 32), "modules": (1, 1)}, "len\\(modules\\)"),
        ({"widths": (8, 0, 32, 64)}, "widths"),
        ({"widths": (8, -16, 32, 64)}, "widths"),
        ({"widths": (8.0, 16, 32, 64)}, "widths"),
        ({"widths": (8,), "modules": (1,)}, "at least 2"),
        ({"widths": ()}, "widths"),
        ({"modules": (1, 0, 1, 1)}, "modules"),
        ({"blocks_per_branch": 0}, "blocks_per_branch"),
        ({"stem_channels": -1}, "stem_channels"),
        ({"stage1_blocks": 0}, "stage1_blocks"),
        ({"fuse_channels": 0}, "fuse_channels"),
        ({"dropout": 1.0}, "dropout"),
        ({"dropout": -0.1}, "dropout"),
        ({"in_channels": 0}, "in_channels"),
        ({"num_classes": 0}, "num_classes"),
        ({"num_classes": True}, "num_classes"),
    ],
)
def test_bad_arguments(kwargs: dict, match: str) -> None:
    kwargs = {"num_classes": 4, **kwargs}
    with pytest.raises(ValueError, match=match):
        EmoHRNet(**kwargs)


def test_bad_inputs() -> None:
    model = small_model("w4").eval()
    for shape in [(2, 64, 50), (2, 2, 64, 50), (1, 1, 64, 50, 1), (1, 1, 64, 0)]:
        with pytest.raises(ValueError):
            model(torch.randn(*shape))


def test_width_preset() -> None:
    assert width_preset(18) == (18, 36, 72, 144)
    assert width_preset(32) == (32, 64, 128, 256)
    for bad in (0, -4, 2.5):
        with pytest.raises(ValueError, match="positive int"):
            width_preset(bad)


def test_build_model_registry() -> None:
    assert MODELS["emohrnet"] is EmoHRNet
    model = build_model("emohrnet", 7, **SMALL["3stage"])
    assert isinstance(model, EmoHRNet)
    assert model.config["num_classes"] == 7
    assert model(torch.randn(2, 1, 32, 20)).shape == (2, 7)
    # A checkpoint's config round-trips through the registry.
    cfg = dict(model.config)
    again = build_model("emohrnet", cfg.pop("num_classes"), **cfg)
    assert again.config == model.config
    with pytest.raises(KeyError, match="emohrnet") as err:
        build_model("resnet9000", 4)
    assert "resnet9000" in str(err.value)


def test_count_parameters() -> None:
    model = small_model("w4")
    total = count_parameters(model)
    assert total == sum(p.numel() for p in model.parameters())
    assert total > 0
    model.classifier.weight.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == total - model.classifier.weight.numel()
    assert count_parameters(model) == total


def test_pooling_covers_only_each_items_valid_frames():
    """With ``lengths`` (a zero-padded evaluation batch) the global average pooling averages the fused
    map's first ceil(length / 4) columns of each item, nothing after; full lengths change nothing."""
    from fixtures import tiny_emohrnet

    model = tiny_emohrnet().eval()
    x = torch.randn(3, 1, 32, 48)
    lengths = torch.tensor([48, 37, 21])
    for n in lengths[1:]:
        x[lengths.tolist().index(int(n)), :, :, n:] = 0
    with torch.no_grad():
        fused = model.forward_features(x)
        expected = torch.stack([fused[i, :, :, : math.ceil(int(n) / 4)].mean(dim=(1, 2))
                                for i, n in enumerate(lengths)])
        torch.testing.assert_close(model(x, lengths), model.classifier(expected))
        torch.testing.assert_close(model(x, torch.full((3,), 48)), model(x))
        assert not torch.allclose(model(x, lengths)[2], model(x)[2], atol=1e-4)  # the padding was left out


def test_the_registry_gives_each_model_its_class_and_a_known_front_end():
    """One entry per model: the classes build_model uses, the front end the training loop checks the
    shards against, and the search's list of models, all read from MODEL_SPECS."""
    from emohrnet.frontend import FEATURE_KINDS
    from emohrnet.models import MODEL_SPECS, MODELS
    from emohrnet.training.loop import MODEL_FEATURES
    from tune.space import MODELS as SEARCHED

    assert list(MODEL_SPECS) == ["emohrnet", "cnn1d_attention"] == list(SEARCHED)  # the baselines' order
    assert {name: spec.cls for name, spec in MODEL_SPECS.items()} == MODELS
    assert MODEL_FEATURES == {"emohrnet": "logmel", "cnn1d_attention": "mfcc"}
    assert all(spec.features in FEATURE_KINDS and spec.source for spec in MODEL_SPECS.values())
    from emohrnet.training.config import TrainConfig

    for name, spec in MODEL_SPECS.items():  # the spec's arguments build its class; its masks as the spec says
        cfg = TrainConfig.from_dict({"shard_dir": "shards", "model": name, "width": 4, "stem_channels": 8,
                                     "blocks_per_branch": 1, "modules": [1, 1, 1, 1], "cnn_width": 8})
        assert type(cfg.architecture) is spec.config_cls  # each model reads only its own settings
        assert type(build_model(name, 3, **cfg.model_kwargs(20))) is spec.cls
        assert (cfg.augment().freq_mask > 0) == spec.spec_augment == (name == "emohrnet")
    assert cfg.model_kwargs(20)["in_channels"] == 20 and cfg.model_kwargs(20)["widths"] == [8, 16, 32]
    assert not hasattr(cfg, "width") and not hasattr(cfg, "cnn_width")  # no model's settings in the shared config
    # the search's space and baseline are the spec's: every searched parameter is a setting a trial's
    # training run gets, with a declared range, and the baseline point gives each of them a value in its range
    from emohrnet.config.experiment import ExperimentConfig
    from emohrnet.models import Choice
    from tune.space import baseline_points, search_space

    for name, spec in MODEL_SPECS.items():
        run = TrainConfig.from_experiment(ExperimentConfig().with_params({"model": name, **spec.baseline}),
                                          "shards").to_dict()
        assert {k: run[k] for k in spec.space} == spec.baseline
        assert set(spec.baseline) == set(spec.space)
        assert set(spec.shown) == set(spec.space) | set(spec.levers) | {"epochs"}  # both spaces' parameters
        assert set(spec.levers_off) == set(spec.levers)  # every lever has its off value for the baseline
        assert list(search_space(name)) == list(spec.space)
        for key, param in spec.space.items():
            value = spec.baseline[key]
            assert value in param.values if isinstance(param, Choice) else param.low <= value <= param.high
        assert baseline_points(name)[0] == [spec.baseline]
