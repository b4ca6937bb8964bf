"""How much GPU memory a training worker needs: an estimate from the model and the batch, made
before anything runs (so a search can refuse a packing of trials that cannot fit a GPU).

The estimate runs the model once on PyTorch's ``meta`` device (shapes only, no memory, no
arithmetic) and adds up the outputs of every leaf module (convolutions, BatchNorms, ReLUs, the
fuse layer's upsampling): what autograd keeps for the backward pass. To that it adds the
parameters four times over (float32 weights, gradients and Adam's two moments) and a fixed
allowance for the CUDA context, cuDNN workspaces and the caching allocator's slack
(:data:`CONTEXT_BYTES`). It is an estimate, not a measurement: the allocator's fragmentation and
cuDNN's algorithm choice move the real peak by some tens of percent either way, so the search
keeps :data:`HEADROOM` of each GPU free.
"""

from __future__ import annotations

from typing import Any

import torch

CONTEXT_BYTES = 1 << 30
"""CUDA context, cuDNN/cuBLAS workspaces and allocator slack per process (about 1 GiB)."""
HEADROOM = 0.9
"""Fraction of a GPU's memory the trials packed on it may fill."""
GPU_MEMORY_GIB = {"T4": 15.0, "A10G": 22.0, "A10": 22.0, "L4": 22.0, "L40S": 44.0, "L40": 44.0,
                  "A100-80G": 79.0, "A100": 39.0, "H100": 79.0, "H200": 139.0}
"""Usable memory (GiB) of the cards Ray names in its ``accelerator_type:<name>`` resource (what
``torch.cuda.get_device_properties().total_memory`` reports, not the marketing figure); for a
cluster whose GPUs the search's machine cannot see."""


def estimate_worker_bytes(model: torch.nn.Module, input_shape: tuple[int, ...], amp: bool) -> dict[str, int]:
    """Peak GPU memory of one training worker, estimated on the ``meta`` device.

    Args:
        model: the model (built normally; it is copied to ``meta``, the original is untouched).
        input_shape: one training batch, ``(batch, 1, n_mels, frames)`` (or the 1D CNN's shape).
        amp: activations in bf16 (2 bytes) rather than float32 (4 bytes).

    Returns:
        ``{"activations", "parameters", "context", "total"}`` in bytes.
    """
    import copy

    meta = copy.deepcopy(model).to("meta").train()
    per_value = 2 if amp else 4
    total = 0

    def count(_module, _inputs, output) -> None:
        nonlocal total
        outputs = output if isinstance(output, (tuple, list)) else (output,)
        total += sum(o.numel() for o in outputs if isinstance(o, torch.Tensor)) * per_value

    # an in-place ReLU's output is its input's storage: counted once, at the BatchNorm before it
    hooks = [m.register_forward_hook(count) for m in meta.modules()
             if not list(m.children()) and not getattr(m, "inplace", False)]
    try:
        meta(torch.empty(input_shape, device="meta"))
    finally:
        for hook in hooks:
            hook.remove()
    parameters = sum(p.numel() for p in model.parameters()) * 4 * 4
    return {"activations": total, "parameters": parameters, "context": CONTEXT_BYTES,
            "total": total + parameters + CONTEXT_BYTES}


def trials_per_gpu(gpus_per_worker: float) -> int:
    """How many workers Ray places on one GPU at ``gpus_per_worker`` (a fraction packs several)."""
    return max(1, int(1 / gpus_per_worker + 1e-9)) if 0 < gpus_per_worker < 1 else 1


def check_packing(worker: dict[str, Any], gpus_per_worker: float, gpu_bytes: float, gpu_name: str) -> str | None:
    """Why ``gpus_per_worker`` packs more workers on a GPU than its memory holds, or ``None``.

    Args:
        worker: :func:`estimate_worker_bytes` of one worker.
        gpus_per_worker: the GPU share of each worker.
        gpu_bytes: the GPU's memory.
        gpu_name: for the message.
    """
    n = trials_per_gpu(gpus_per_worker)
    need = n * worker["total"]
    if need <= HEADROOM * gpu_bytes:
        return None
    fits = max(1, int(HEADROOM * gpu_bytes // worker["total"]))
    gib = 2 ** 30
    return (f"--gpus-per-worker {gpus_per_worker:g} packs {n} workers on each {gpu_name} "
            f"({gpu_bytes / gib:.1f} GiB): about {need / gib:.1f} GiB (each {worker['total'] / gib:.1f} GiB: "
            f"{worker['activations'] / gib:.1f} activations, {worker['parameters'] / gib:.2f} weights and Adam, "
            f"{worker['context'] / gib:.1f} CUDA context), more than {HEADROOM:.0%} of it "
            f"(allowed: at least {1 / fits:g} GPU{'' if fits == 1 else 's'} per worker, {fits} per GPU; or a smaller "
            "--batch-size)")
