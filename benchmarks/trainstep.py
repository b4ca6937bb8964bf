"""Section 2, the training step: samples/s of forward + backward + Adam step of EmoHRNet on 3 s
utterances (128 mels x 301 frames), the paper's W18 baseline and a small width.

Every step is what :func:`emohrnet.training.loop.train_loop_per_worker` does per batch (cross-entropy, Adam
with the paper's settings), on one fixed random batch already on the device (no data loading). Modes:
float32 (on CUDA cuDNN may use TF32 for convolutions, PyTorch's default), channels_last, bf16
autocast, bf16 autocast + channels_last (what ``amp="auto"``/``channels_last="auto"`` pick where the
device has native bf16: CUDA capability >= 8.0, CPUs with AVX-512 BF16 or AMX), and, on CUDA,
``torch.compile`` of the last. Peak memory is the
process's peak RSS on CPU (sampled) and ``torch.cuda.max_memory_allocated`` on a GPU. FLOPs are
counted once per model with ``torch.utils.flop_counter.FlopCounterMode`` (forward + backward,
shapes only, on the meta device) and give the achieved FLOP/s, compared on a GPU with its known peak
(:data:`benchmarks.machine.GPU_PEAKS`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from emohrnet.training.config import native_bf16

from .common import Context, PeakRSS, Section
from .machine import gpu_peak_tflops

TITLE = "2. Training step: forward + backward + Adam, samples/s"

N_MELS, FRAMES, NUM_CLASSES = 128, 301, 8  # 3 s at 10 ms hop: 48000 // 160 + 1 frames; RAVDESS's 8 classes


@dataclass(frozen=True)
class ModelSpec:
    """One model measured.

    Attributes:
        name: label in the table.
        width: HRNet width C (branches C, 2C, 4C, 8C).
        stem_channels: channels of the input module.
        batch: batch size (full runs).
        quick_cpu_batch: batch size in ``--quick`` on CPU.
        blocks: residual blocks per branch (HRNet: 4).
        modules: modules per stage (HRNet-W18: 1, 1, 4, 3).
    """

    name: str
    width: int
    stem_channels: int
    batch: int = 64
    quick_cpu_batch: int = 64
    blocks: int = 4
    modules: tuple[int, ...] = (1, 1, 4, 3)

    def build(self) -> torch.nn.Module:
        """A fresh EmoHRNet (seeded) with this width, stem, blocks and modules."""
        from emohrnet.models import build_model, width_preset

        torch.manual_seed(0)
        return build_model("emohrnet", NUM_CLASSES, widths=list(width_preset(self.width)),
                           stem_channels=self.stem_channels, blocks_per_branch=self.blocks,
                           modules=list(self.modules))


MODELS = (
    ModelSpec("W18 stem 64 (paper baseline)", 18, 64, quick_cpu_batch=16),
    ModelSpec("W8 stem 16", 8, 16),
    ModelSpec("W8 stem 32, 2 blocks, modules 1,1,2,2", 8, 32, batch=16, quick_cpu_batch=16, blocks=2,
              modules=(1, 1, 2, 2)),
)

# (label, bf16 autocast, channels_last, torch.compile)
MODES = (
    ("fp32", False, False, False),
    ("channels_last", False, True, False),
    ("bf16 autocast", True, False, False),
    ("bf16 + channels_last", True, True, False),
    ("torch.compile bf16 + channels_last", True, True, True),
)


def flops_per_sample(spec: ModelSpec) -> float:
    """FLOPs of one sample's forward + backward (``FlopCounterMode``; convolutions and matmuls), counted
    on the meta device (shapes only, no compute)."""
    from torch.utils.flop_counter import FlopCounterMode

    batch = 2
    with torch.device("meta"):
        model = spec.build()
        x = torch.randn(batch, 1, N_MELS, FRAMES)
        y = torch.zeros(batch, dtype=torch.long)
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    return counter.get_total_flops() / batch


def _steps(ctx: Context) -> tuple[int, int]:
    """(warm-up steps, timed steps)."""
    if ctx.device == "cuda":
        return (3, 10) if ctx.quick else (10, 50)
    return (1, 2) if ctx.quick else (1, 5)


def measure(spec: ModelSpec, device: str, batch: int, warmup: int, steps: int, amp: bool = False,
            channels_last: bool = False, compile_: bool = False) -> dict[str, Any]:
    """Time ``steps`` training steps after ``warmup`` steps.

    Returns:
        ``{"samples_s", "step_s", "warmup_s", "peak_mib", "memory"}``: samples/s, seconds per step,
        seconds of the warm-up steps (compilation included), peak memory in MiB and what it measures.
    """
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    with PeakRSS() as rss:
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        core = spec.build().to(dev, memory_format=fmt)
        model = torch.compile(core) if compile_ else core
        opt = torch.optim.Adam(core.parameters(), lr=1e-3, betas=(0.9, 0.999), weight_decay=1e-4)
        g = torch.Generator().manual_seed(1)
        x = torch.randn(batch, 1, N_MELS, FRAMES, generator=g).to(dev, memory_format=fmt)
        y = torch.randint(0, NUM_CLASSES, (batch,), generator=g).to(dev)

        def step() -> None:
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        model.train()
        sync()
        t0 = time.perf_counter()
        for _ in range(warmup):
            step()
        sync()
        t1 = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        t2 = time.perf_counter()
    if cuda:
        peak, memory = torch.cuda.max_memory_allocated(dev) / 2**20, "torch.cuda.max_memory_allocated"
    else:
        peak, memory = rss.peak_mib, "peak RSS of the process (psutil, sampled every 50 ms)"
    return {"samples_s": batch * steps / (t2 - t1), "step_s": (t2 - t1) / steps, "warmup_s": t1 - t0,
            "peak_mib": peak, "memory": memory}


def run(ctx: Context) -> Section:
    """Measure every model in every precision mode the device supports.

    Returns:
        rows in samples/s, s/step, MiB, GFLOP/sample, TFLOP/s (GFLOP/s on CPU) and % of the GPU's peak.
    """
    sec = Section("trainstep", TITLE)
    warmup, steps = _steps(ctx)
    cuda = ctx.device == "cuda"
    gpu = torch.cuda.get_device_name() if cuda else None
    sec.settings = {"device": ctx.device, "gpu": gpu, "input": f"(batch, 1, {N_MELS}, {FRAMES}) float32",
                    "classes": NUM_CLASSES, "blocks_and_modules": "per row (HRNet-W18's: 4 blocks, 1,1,4,3)",
                    "native_bf16": native_bf16(ctx.device),
                    "optimizer": "Adam lr 1e-3, betas (0.9, 0.999), weight decay 1e-4",
                    "warmup_steps": warmup, "timed_steps": steps, "torch_threads": torch.get_num_threads()}
    if cuda:
        sec.settings.update({"cudnn.allow_tf32": torch.backends.cudnn.allow_tf32,
                             "cudnn.benchmark": torch.backends.cudnn.benchmark})
    for spec in MODELS:
        batch = spec.quick_cpu_batch if (ctx.quick and not cuda) else spec.batch
        flops = flops_per_sample(spec)
        sec.add(f"{spec.name}: FLOPs per sample (fwd+bwd)", flops / 1e9, "GFLOP", width=spec.width,
                stem_channels=spec.stem_channels)
        for label, amp, cl, comp in MODES:
            name = f"{spec.name}, {label}, batch {batch}"
            common = {"batch": batch, "width": spec.width, "stem_channels": spec.stem_channels, "mode": label,
                      "blocks": spec.blocks, "modules": list(spec.modules)}
            if comp and not cuda:
                sec.add(f"{name}: throughput", None, "samples/s", note="skipped: no GPU", **common)
                continue
            try:
                m = measure(spec, ctx.device, batch, warmup, steps, amp, cl, comp)
            except Exception as err:  # one mode failing (e.g. no compiler) must not stop the rest
                sec.add(f"{name}: throughput", None, "samples/s", note=f"error: {type(err).__name__}: {err}"[:200],
                        **common)
                continue
            sec.add(f"{name}: throughput", m["samples_s"], "samples/s", warmup_steps=warmup, timed_steps=steps,
                    **common)
            sec.add(f"{name}: time per step", m["step_s"], "s", batch=batch)
            if comp:
                sec.add(f"{name}: warm-up incl. compilation", m["warmup_s"], "s", warmup_steps=warmup)
            sec.add(f"{name}: peak memory", m["peak_mib"], "MiB", measured_by=m["memory"])
            achieved = flops * m["samples_s"]
            if cuda:
                precision = "bf16" if amp else ("tf32" if torch.backends.cudnn.allow_tf32 else "fp32")
                peak = gpu_peak_tflops(gpu or "", precision)
                note = f"{100 * achieved / 1e12 / peak:.1f}% of {peak:g} TFLOP/s {precision} peak" if peak else \
                    f"peak n/a ({gpu} not in the table)"
                sec.add(f"{name}: achieved", achieved / 1e12, "TFLOP/s", note=note, peak_precision=precision,
                        peak_tflops=peak)
            else:
                sec.add(f"{name}: achieved", achieved / 1e9, "GFLOP/s", note="CPU peak n/a")
    if ctx.quick and not cuda:
        sec.notes.append("--quick on CPU: smaller batches (recorded per row) and few steps")
    if not cuda:
        sec.notes.append("CPU: bf16 rows are fast only where the CPU has AVX-512 BF16 or AMX (native_bf16 in "
                         "settings); elsewhere oneDNN emulates bf16 and amp='auto' stays float32")
    return sec
