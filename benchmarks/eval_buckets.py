"""Evaluation in length buckets against exact-length batches, on real RAVDESS with a trained checkpoint.

Usage::

    python -m benchmarks.eval_buckets --data-root ../shared/data/ravdess            # trains one first
    python -m benchmarks.eval_buckets --data-root ../shared/data/ravdess --checkpoint EXPERIMENT_OR_FILE

Without ``--checkpoint`` a short search trains one (``python -m tune.search --dataset ravdess``:
one trial of a small EmoHRNet on 64 log-mel bands, speaker-independent fold 0, ``--epochs``
epochs: 12 by default, about 3 minutes on 2 cores). Then every utterance of the corpus is scored twice by
:func:`emohrnet.inference.evaluation.evaluate`: exact-length batches (``bucket=1``: only utterances of
equal length share a batch, as before length buckets) and length buckets of 8 (the default,
:data:`emohrnet.inference.evaluation.EVAL_BUCKET`), 16 and 32 frames. It reports, for the
whole corpus, for the fold's test part and for the corpus cut to random lengths (continuous
lengths, as in IEMOCAP; :func:`cropped`): UA each way, the utterances whose predicted class
differs, the batches and distinct shapes per pass, and the utterances/s of a scoring pass
(batches already built, best of ``--repeats``).

Writes ``benchmarks/results/eval-buckets-cpu.json`` (``--out``) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from emohrnet.training.checkpoint import SUMMARY_FILE
from tune.experiment import Experiment

from .common import DEFAULT_DATA_ROOT

RESULTS = Path(__file__).resolve().parent / "results"
SEARCH = ["--dataset", "ravdess", "--num-samples", "1", "--workers", "1", "--widths", "8", "--stem-channels", "32",
          "--blocks", "2", "--modules", "1,1,2,2", "--n-mels", "64", "--segment-seconds", "2.0", "--batch-size", "32",
          "--fold", "0"]
"""The short search that trains a checkpoint when none is given (a small EmoHRNet, as the accuracy
benchmark's recipe)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.eval_buckets", description=__doc__.split("\n")[0])
    p.add_argument("--data-root", default=str(DEFAULT_DATA_ROOT), help="RAVDESS folder")
    p.add_argument("--checkpoint",
                   help="a checkpoint, its folder, or a search's experiment folder (default: train one)")
    p.add_argument("--epochs", type=int, default=12, help="epochs of the training search (default 12)")
    p.add_argument("--max-batch", type=int, default=32, help="utterances per batch (default 32)")
    p.add_argument("--repeats", type=int, default=3, help="timed scoring passes per way (default 3)")
    p.add_argument("--out", default=str(RESULTS / "eval-buckets-cpu.json"), help="JSON file to write")
    p.add_argument("--keep", help="keep the trained experiment in this folder (default: a temporary one)")
    return p.parse_args(argv)


def train_checkpoint(data_root: str, epochs: int, work: Path) -> Path:
    """Run the short search (:data:`SEARCH`) and return its experiment folder."""
    import ray

    from tune.search import parse_args as search_args
    from tune.search import run_search

    args = search_args([*SEARCH, "--data-root", data_root, "--epochs", str(epochs), "--cpus-per-worker", "2",
                        "--storage-path", str(work), "--name", "eval-buckets"])
    try:
        run_search(args, log=print)
    finally:
        ray.shutdown()
    return work / "eval-buckets"


def predictions(model: torch.nn.Module, examples, bucket: int, max_batch: int) -> dict[str, int]:
    """Predicted class per utterance key, scored through :func:`emohrnet.inference.evaluation.eval_batches`."""
    from emohrnet.inference.evaluation import eval_batches

    out = {}
    with torch.inference_mode():
        for x, _, lengths, keys in eval_batches(examples, max_batch, bucket):
            out.update(zip(keys, model(x, lengths).argmax(dim=1).tolist(), strict=True))
    return out


def ways() -> dict[str, int]:
    """``name: bucket`` (frames): exact-length batches, and buckets of 8 (the default), 16 and 32 frames."""
    from emohrnet.inference.evaluation import EVAL_BUCKET

    return {"exact": 1, **{f"buckets of {b}" + (" (default)" if b == EVAL_BUCKET else ""): b for b in (8, 16, 32)}}


def compare(model, examples, num_classes: int, max_batch: int, repeats: int) -> dict[str, Any]:
    """UA, predictions and speed of each way (:func:`ways`) on ``examples``."""
    from emohrnet.inference.evaluation import EvalSet, evaluate

    cpu = torch.device("cpu")
    out: dict[str, Any] = {"utterances": len(examples)}
    exact = predictions(model, examples, 1, max_batch)
    for name, bucket in ways().items():
        data = EvalSet(examples, cpu, max_batch, bucket)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            result = evaluate(model, data, num_classes, cpu, reduce=False)
            times.append(time.perf_counter() - start)
        out[name] = {"ua": result["ua"], "wa": result["wa"], "loss": result["loss"], "batches": len(data.batches),
                     "shapes": len({tuple(x.shape) for x, _, _ in data.batches}),
                     "utterances_per_s": len(examples) / min(times), "bucket": bucket}
        got = predictions(model, examples, bucket, max_batch)
        out[name]["predictions_differ"] = sum(exact[k] != got[k] for k in exact)
        out[name]["speedup"] = out[name]["utterances_per_s"] / out["exact"]["utterances_per_s"]
    return out


def cropped(examples, seed: int = 0):
    """Every utterance cut to a random length between 1.5 s and its own (seeded): continuous lengths,
    as in IEMOCAP (RAVDESS's recordings come in few distinct lengths)."""
    from emohrnet.data.loading import Example

    g = torch.Generator().manual_seed(seed)
    out = []
    for e in examples:
        full = e.features.shape[-1]
        low = min(150, full)
        n = low + int(torch.randint(0, full - low + 1, (1,), generator=g))
        out.append(Example(e.key, e.features[:, :n], e.label))
    return out


def markdown(report: dict[str, Any]) -> str:
    lines = ["| utterances | way | UA | batches | shapes | utterances/s | speed-up | "
             "predictions that differ |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for part in ("corpus", "test", "cropped"):
        r = report[part]
        for way in ways():
            w = r[way]
            lines.append(f"| {part} ({r['utterances']}) | {way} | {100 * w['ua']:.2f}% | "
                         f"{w['batches']} | {w['shapes']} | {w['utterances_per_s']:.1f} | {w['speedup']:.2f}x | "
                         f"{w['predictions_differ']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from emohrnet.data.loading import load_examples
    from emohrnet.shards import Manifest
    from emohrnet.training.checkpoint import load_usable_model, resolve_checkpoint

    args = parse_args(argv)
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        source = args.checkpoint or train_checkpoint(args.data_root, args.epochs, Path(args.keep or tmp))
        checkpoint = resolve_checkpoint(source)
        model, state = load_usable_model(checkpoint.path, "the evaluation benchmark")
        model.eval()
        searched = (Path(source) / SUMMARY_FILE).is_file()
        shard_dirs = Experiment(source).summary().shard_dirs if searched else {}
        shard_dir = next(iter(shard_dirs.values()), None) or state.get("shard_dir")
        if not shard_dir:
            raise SystemExit("the checkpoint names no shard folder: pass a search's experiment folder")
        manifest = Manifest.read(shard_dir)
        keys = [u["key"] for u in manifest.utterances]
        examples = load_examples(shard_dir, manifest, keys)
        split = manifest.split("speaker", 0)
        test = set(split.test)
        torch.set_num_threads(max(1, torch.get_num_threads()))
        n = len(manifest.classes)
        report = {"checkpoint": str(source if args.checkpoint else "trained by this run: " + " ".join(SEARCH)),
                  "epochs": None if args.checkpoint else args.epochs,
                  "corpus": compare(model, examples, n, args.max_batch, args.repeats),
                  "test": compare(model, [e for e in examples if e.key in test], n, args.max_batch, args.repeats),
                  "cropped": compare(model, cropped(examples), n, args.max_batch, args.repeats),
                  "distinct_lengths": len({e.features.shape[-1] for e in examples}),
                  "distinct_lengths_cropped": len({e.features.shape[-1] for e in cropped(examples)}),
                  "command": "python -m benchmarks.eval_buckets "
                             + " ".join(argv if argv is not None else sys.argv[1:]),
                  "machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                              "torch": torch.__version__},
                  "wall_s": round(time.time() - start, 1)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_suffix(".tmp")
    tmp_out.write_text(json.dumps(report, indent=1))
    tmp_out.replace(out)
    print(markdown(report))
    print(f"distinct lengths: {report['distinct_lengths']} in the corpus, {report['distinct_lengths_cropped']} "
          f"cropped; written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
