"""Every registered model, tested the same way (as timm tests every model it lists): built from its registry
entry's default settings, a forward pass on the input layout its shards give it, a backward pass that reaches
every parameter, a TorchScript and an ONNX export that give the model's own logits, and a rebuild from the
model's ``config`` (what a checkpoint stores) that loads its weights and gives the same logits.

A model added to ``emohrnet/models`` is tested here without editing this file."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from emohrnet.inference.export import export_onnx, export_torchscript
from emohrnet.models import MODEL_SPECS, build_model

N_FEATURES = {"logmel": 64, "mfcc": 40}
"""Feature rows per frame a model gets in these tests, by front end (mel bands or MFCCs)."""
CLASSES, FRAMES = 5, 96


@pytest.fixture(params=sorted(MODEL_SPECS))
def built(request):
    """(name, model, input) for each registered model, with its settings class's defaults."""
    torch.manual_seed(0)
    spec = MODEL_SPECS[request.param]
    n = N_FEATURES[spec.features]
    model = build_model(spec.name, CLASSES, **spec.config_cls().arguments(n))
    x = torch.randn(3, 1, n, FRAMES, generator=torch.Generator().manual_seed(1))
    return spec.name, model, x, n


def test_forward_and_backward_reach_every_parameter(built):
    name, model, x, _ = built
    model.train()
    logits = model(x)
    assert logits.shape == (3, CLASSES) and torch.isfinite(logits).all(), name
    F.cross_entropy(logits, torch.tensor([0, 1, 2])).backward()
    missing = [p for p, w in model.named_parameters() if w.requires_grad and (w.grad is None or not w.grad.abs().sum())]
    assert not missing, f"{name}: no gradient reaches {missing[:5]}"


def test_exports_give_the_models_own_logits(built, tmp_path):
    name, model, x, n = built
    model.eval()
    with torch.no_grad():
        expected = model(x)
    traced = torch.jit.load(str(export_torchscript(model, tmp_path / f"{name}.pt", n)))
    with torch.no_grad():
        torch.testing.assert_close(traced(x), expected, rtol=1e-4, atol=1e-4)
    import onnxruntime as ort

    session = ort.InferenceSession(str(export_onnx(model, tmp_path / f"{name}.onnx", n)),
                                   providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    torch.testing.assert_close(torch.from_numpy(got), expected, rtol=1e-3, atol=1e-3)


def test_a_rebuild_from_its_config_loads_its_weights(built):
    name, model, x, _ = built
    model.eval()
    config = {k: v for k, v in model.config.items() if k != "num_classes"}
    again = build_model(name, model.config.get("num_classes", CLASSES), **config)
    again.load_state_dict(model.state_dict())
    again.eval()
    with torch.no_grad():
        torch.testing.assert_close(again(x), model(x))
