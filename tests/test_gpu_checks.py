"""GPU requests checked before a search starts, without a GPU: a packing of trials that cannot fit
a card's memory is refused, workers sharing a GPU are warned about, and the memory estimate agrees
with what autograd really keeps (issue: ready for the first GPU cluster)."""

from __future__ import annotations

import pytest
import ray
import torch

from emohrnet.models import build_model, width_preset
from emohrnet.training.memory import CONTEXT_BYTES, estimate_worker_bytes, trials_per_gpu
from tune import search
from tune.checks import ConfigError, check_gpu_memory, cluster_gpus, shared_gpu_warning
from tune.options import config_from_args

GIB = 2 ** 30


def _saved_tensor_bytes(model: torch.nn.Module, x: torch.Tensor) -> int:
    """What autograd keeps for the backward pass of one real forward: each distinct saved tensor's
    storage once (an independent count: PyTorch's saved-tensor hooks, not module outputs)."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor):
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x).sum()
    return sum(seen.values())


def test_the_activation_estimate_agrees_with_what_autograd_saves(one_thread):
    torch.manual_seed(0)
    model = build_model("emohrnet", 4, widths=list(width_preset(8)), stem_channels=16, blocks_per_branch=1,
                        modules=[1, 1, 2, 2]).train()
    x = torch.randn(4, 1, 64, 200)
    estimate = estimate_worker_bytes(model, tuple(x.shape), amp=False)
    saved = _saved_tensor_bytes(model, x)
    assert 0.75 * saved <= estimate["activations"] <= 1.35 * saved, (estimate["activations"] / GIB, saved / GIB)
    assert estimate["total"] == estimate["activations"] + estimate["parameters"] + CONTEXT_BYTES
    half = estimate_worker_bytes(model, tuple(x.shape), amp=True)["activations"]
    assert half * 2 == estimate["activations"]  # bf16: two bytes a value
    assert all(p.device.type == "cpu" for p in model.parameters())  # the model itself is untouched


def test_w18_at_batch_64_is_about_3_gib_of_bf16_activations():
    """The issue's figure for W18, 128 mel bands, 3 s segments, batch 64 in bf16: about 3 GiB."""
    with torch.device("meta"):
        model = build_model("emohrnet", 8, widths=list(width_preset(18)))
    estimate = estimate_worker_bytes(model, (64, 1, 128, 300), amp=True)
    assert 2.5 * GIB < estimate["activations"] < 3.6 * GIB


def _config(**overrides):
    """The settings of ``python -m tune.search`` with these options (W18, 128 mel bands, 3 s, batch 64)."""
    argv = ["--widths", "18", "--n-mels", "128", "--segment-seconds", "3", "--batch-size", "64", "--workers", "1"]
    for key, value in overrides.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    return config_from_args(search.parse_args(argv))


def test_four_w18_trials_overflow_a_t4_but_fit_an_a10g():
    """bf16 on the A10G (Ampere): 4 x ~4.2 GiB fit 90% of 22 GiB. A T4 has no native bf16, so
    ``--amp auto`` trains in float32 there: ~7.2 GiB a worker, one per card."""
    config = _config(gpus_per_trial=0.25)
    check_gpu_memory(config, [("NVIDIA A10G", 22 * GIB)])
    with pytest.raises(ConfigError, match=r"--gpus-per-worker 0.25 packs 4 workers on each Tesla T4 \(15.0 GiB\): "
                                          r"about 28.\d GiB .*allowed: at least 1 GPU per worker, 1 per GPU"):
        check_gpu_memory(config, [("Tesla T4", 15 * GIB)])
    with pytest.raises(ConfigError, match="packs 2 workers on each Tesla T4"):
        check_gpu_memory(_config(gpus_per_trial=0.5), [("Tesla T4", 15 * GIB)])
    with pytest.raises(ConfigError, match=r"allowed: at least 0.5 GPUs per worker, 2 per GPU"):
        check_gpu_memory(_config(gpus_per_trial=0.25), [("NVIDIA A10G", 12 * GIB)])
    check_gpu_memory(_config(gpus_per_trial=1), [("Tesla T4", 1 * GIB)])  # one per GPU: nothing to refuse
    assert trials_per_gpu(0.25) == 4 and trials_per_gpu(0.3) == 3 and trials_per_gpu(1) == 1


def test_a_cluster_gpu_is_known_by_rays_accelerator_type():
    total = {"CPU": 16.0, "GPU": 4.0, "accelerator_type:T4": 1.0, "accelerator_type:XYZ": 1.0}
    assert cluster_gpus(total) == [("T4", 15 * GIB)]


def test_a_refused_packing_on_this_machine_stops_before_ray(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("EMOHRNET_HOME", str(tmp_path))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr("torch.cuda.device_count", lambda: 1)
    monkeypatch.setattr("tune.search.local_gpus", lambda: [("Tesla T4", 15 * GIB)])
    assert search.main(["--widths", "18", "--n-mels", "128", "--segment-seconds", "3", "--batch-size", "64",
                        "--workers", "1", "--gpus-per-trial", "0.25"]) == 2
    err = capsys.readouterr().err
    assert "packs 4 workers on each Tesla T4" in err and "Traceback" not in err and err.count("error:") == 1
    assert not ray.is_initialized() and not any(tmp_path.iterdir())


def test_workers_sharing_a_gpu_are_warned_about():
    assert "gloo" in shared_gpu_warning(_config(workers=2, gpus_per_trial=1).resources)
    assert shared_gpu_warning(_config(workers=1, gpus_per_trial=0.5).resources) is None
    assert shared_gpu_warning(_config(workers=2, gpus_per_worker=1).resources) is None
