"""The two models side by side: parameters, MACs and CPU inference time for a 3 s utterance.

Usage::

    python -m benchmarks.model_cost [--threads 1] [--repeats 20] [--out FILE.json]

MACs are counted with ``torch.utils.flop_counter.FlopCounterMode`` (forward pass, FLOPs / 2;
convolutions and linear layers, not normalization or activations). Time is the median wall time
(seconds) of ``--repeats`` forward passes at batch 1 in eval mode after two warm-up passes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from emohrnet.frontend import FeatureConfig, MfccConfig
from emohrnet.io.storage import atomic_write_text
from emohrnet.models import build_model, count_parameters, width_preset

SECONDS = 3.0


def measure(name: str, model: torch.nn.Module, x: torch.Tensor, repeats: int) -> dict:
    """Parameters, forward MACs and median CPU seconds per utterance of ``model`` on ``x``
    (``(1, 1, n_features, frames)``)."""
    model.eval()
    with torch.inference_mode():
        with FlopCounterMode(display=False) as counter:
            model(x)
        for _ in range(2):
            model(x)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    return {"model": name, "input": list(x.shape), "parameters": count_parameters(model),
            "macs": counter.get_total_flops() // 2, "cpu_seconds_per_utterance": statistics.median(times)}


def main(argv: list[str] | None = None) -> int:
    """Print the table (and save JSON with ``--out``)."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.model_cost", description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--classes", type=int, default=8)
    p.add_argument("--out")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    logmel, mfcc = FeatureConfig(), MfccConfig()
    frames = logmel.frames(int(SECONDS * logmel.sample_rate))
    rows = [
        measure("emohrnet (HRNet-W18, 128 log-mels)",
                build_model("emohrnet", args.classes, widths=list(width_preset(18))),
                torch.randn(1, 1, logmel.n_mels, frames), args.repeats),
        measure("cnn1d_attention (64/128/256, 40 MFCCs)", build_model("cnn1d_attention", args.classes,
                                                                      in_channels=mfcc.n_mfcc),
                torch.randn(1, 1, mfcc.n_mfcc, frames), args.repeats),
    ]
    print(f"{'model':42s} {'parameters':>11s} {'MACs (3 s)':>12s} {'CPU ms/utt':>11s}")
    for r in rows:
        ms = r["cpu_seconds_per_utterance"] * 1e3
        print(f"{r['model']:42s} {r['parameters']:11,d} {r['macs'] / 1e9:10.3f} G {ms:11.1f}")
    print(f"({args.threads} CPU thread(s), batch 1, median of {args.repeats}; torch {torch.__version__})")
    if args.out:
        atomic_write_text(args.out, json.dumps({"threads": args.threads, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
