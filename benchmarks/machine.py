"""What the benchmarks ran on: CPU, cores, memory, GPU, library versions, load, and known GPU peaks."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from typing import Any

import psutil

from .common import usable_cores

PACKAGES = ("torch", "torchaudio", "ray", "webdataset", "optuna", "numpy", "soundfile", "emohrnet")

# Dense (no sparsity) peak tensor throughput in TFLOP/s from NVIDIA's data sheets, by precision:
# "bf16" (BF16 tensor cores), "tf32" (TF32 tensor cores: what float32 convolutions use when
# torch.backends.cudnn.allow_tf32 is on, PyTorch's default), "fp16" (FP16 tensor cores, listed
# only for cards without BF16 ones) and "fp32" (no tensor cores). A precision a card lacks is
# absent (reported n/a). Matched in order against torch.cuda.get_device_name(); first match wins,
# so a variant ("H200 NVL") comes before its family ("H200", the SXM part).
# A10G: AWS's variant of the A10 (G5 instances); AWS publishes no data sheet, the figures are those
# reported for the card (FP32 35, TF32 35, BF16 70), not the A10's (31.2 / 62.5 / 125).
# T4 (Turing, compute capability 7.5): no BF16 or TF32 tensor cores; 65 FP16 tensor TFLOP/s.
GPU_PEAKS: tuple[tuple[tuple[str, ...], dict[str, float]], ...] = (
    (("H200", "NVL"), {"bf16": 835.5, "tf32": 417.5, "fp32": 60.0}),
    (("H200",), {"bf16": 989.4, "tf32": 494.7, "fp32": 66.9}),  # SXM
    (("H100", "NVL"), {"bf16": 835.0, "tf32": 417.5, "fp32": 60.0}),
    (("H100", "PCIE"), {"bf16": 756.5, "tf32": 378.0, "fp32": 51.2}),
    (("H100",), {"bf16": 989.4, "tf32": 494.7, "fp32": 66.9}),  # SXM, e.g. "NVIDIA H100 80GB HBM3"
    (("A100",), {"bf16": 312.0, "tf32": 156.0, "fp32": 19.5}),
    (("L40S",), {"bf16": 362.05, "tf32": 183.0, "fp32": 91.6}),
    (("L40",), {"bf16": 181.0, "tf32": 90.5, "fp32": 90.5}),
    (("L4",), {"bf16": 121.0, "tf32": 60.0, "fp32": 30.3}),
    (("A10G",), {"bf16": 70.0, "tf32": 35.0, "fp32": 35.0}),
    (("A10",), {"bf16": 125.0, "tf32": 62.5, "fp32": 31.2}),
    (("T4",), {"fp16": 65.0, "fp32": 8.1}),
)


def gpu_peak_tflops(name: str, precision: str) -> float | None:
    """Known dense peak TFLOP/s of a GPU at ``precision`` (``"bf16"``, ``"tf32"``, ``"fp32"``).

    Args:
        name: ``torch.cuda.get_device_name()``, e.g. ``"NVIDIA H100 80GB HBM3"``.
        precision: which peak.

    Returns:
        TFLOP/s, or ``None`` for a GPU not in :data:`GPU_PEAKS` (reported as ``n/a``).
    """
    upper = name.upper()
    for needles, peaks in GPU_PEAKS:
        if all(n in upper for n in needles):
            return peaks.get(precision)
    return None


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; ``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def versions() -> dict[str, str]:
    """Python and library versions (``"not installed"`` where missing)."""
    found = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def describe() -> dict[str, Any]:
    """The machine: CPU model, cores (logical, physical, usable), RAM in GiB, load average, GPUs
    (name, memory in GiB, CUDA/cuDNN versions) and the library versions."""
    import torch

    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores_logical": os.cpu_count(),
        "cores_physical": psutil.cpu_count(logical=False),
        "cores_usable": usable_cores(),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "load_average_1_5_15min": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "gpus": [],
        "versions": versions(),
    }
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            info["gpus"].append({"name": p.name, "memory_gib": round(p.total_memory / 2**30, 1),
                                 "capability": f"{p.major}.{p.minor}"})
        info["cuda"] = torch.version.cuda
        info["cudnn"] = torch.backends.cudnn.version()
    return info
