"""Export a checkpoint's model to ONNX or TorchScript, for use without emohrnet.

``python -m emohrnet.export --checkpoint PATH --format onnx|torchscript [--out FILE] [--force]``

The exported model is the checkpoint's best validation weights in eval mode. Input: a float32
log-mel batch ``(batch, 1, n_mels, frames)`` named ``log_mel``, with dynamic ``batch`` and
``frames`` axes (``n_mels`` is fixed by the checkpoint); output: logits ``(batch, num_classes)``
named ``logits`` (apply a softmax for probabilities). Next to the model file a JSON sidecar
``<out>.json`` records the class names (in logit order), the feature parameters and a plain
description of the log-mel front end, so the model can be run with onnxruntime or
``torch.jit.load`` alone. Neither file is ever the checkpoint (or the ``best.json`` naming it), and an
existing one is replaced only with ``--force``.

Exporters (torch 2.11):

- ONNX: by default the TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``,
  opset 17). It is deprecated in torch 2.11 but still present, needs only the ``onnx`` package,
  takes seconds, and traces the ``F.interpolate(size=...)`` calls of the fusion layers with
  dynamic sizes. ``--dynamo`` uses the ``torch.export``-based exporter instead (needs
  ``onnxscript``); it gives the same results (max |diff| ~4e-6 on random weights) but takes tens of
  seconds even for a tiny model.
- TorchScript: ``torch.jit.trace`` (``torch.jit.script`` cannot compile EmoHRNet: it iterates
  over module lists zipped with Python lists). Tracing records tensor sizes as graph operations,
  so the frames and batch axes stay dynamic. Also deprecated in torch 2.11, still working.

In both exports the model's input-shape checks are evaluated once, at export time: an input of
the wrong shape fails inside the runtime instead of with emohrnet's message.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emohrnet.frontend import feature_config, n_features
from emohrnet.io.storage import atomic_write_bytes, atomic_write_text, output_problem
from emohrnet.training.checkpoint import CHECKPOINT_FILE, CHECKPOINT_HELP, checkpoint_files, load_usable_model

FORMATS = ("onnx", "torchscript")
"""Export formats."""

DEFAULT_NAMES = {"onnx": "model.onnx", "torchscript": "model.torchscript.pt"}
"""File name of an export, next to the checkpoint, when ``--out`` is not given."""

INPUT_NAME = "log_mel"
OUTPUT_NAME = "logits"
ONNX_OPSET = 17
EXAMPLE_FRAMES = 301
"""Frames of the example input used to trace the model (3 s at 100 frames per second)."""


@contextmanager
def _eval_mode(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Put ``model`` in eval mode for the block, restoring its training flag afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


@contextmanager
def _quiet_export() -> Iterator[None]:
    """Silence the tracer's and the deprecation warnings of torch's export paths."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


def _example(model: torch.nn.Module, n_mels: int, frames: int = EXAMPLE_FRAMES) -> torch.Tensor:
    """A random ``(2, 1, n_mels, frames)`` input on the model's device (both models take this layout;
    for ``cnn1d_attention`` ``n_mels`` is its number of MFCCs)."""
    device = next(model.parameters()).device
    return torch.randn(2, 1, int(n_mels), frames, generator=torch.Generator().manual_seed(0)).to(device)


def export_onnx(
    model: torch.nn.Module, path: str | Path, n_mels: int, opset: int = ONNX_OPSET, dynamo: bool = False
) -> Path:
    """Write ``model`` as an ONNX file, atomically.

    The graph takes ``log_mel`` ``(batch, 1, n_mels, frames)`` float32 with dynamic ``batch`` and
    ``frames`` axes and returns ``logits`` ``(batch, num_classes)``. The model is exported in eval
    mode (its training flag is restored afterwards).

    Args:
        model: e.g. :class:`~emohrnet.models.EmoHRNet`, ``(batch, 1, n_mels, frames) -> (batch, classes)``.
        path: the ``.onnx`` file to write; its folder must exist.
        n_mels: mel bands of the input (fixed in the graph).
        opset: ONNX opset of the TorchScript-based exporter (ignored with ``dynamo``, which picks its own).
        dynamo: use the ``torch.export``-based exporter (needs ``onnxscript``; much slower) instead of the
            TorchScript-based one.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ImportError: ``onnx`` (or, with ``dynamo``, ``onnxscript``) is not installed.
        OSError: the file cannot be written; an existing file is then unchanged.
        RuntimeError: torch cannot export the model.
    """
    path = Path(path)
    with _eval_mode(model), _quiet_export(), torch.no_grad():
        x = _example(model, n_mels)
        if dynamo:
            batch, frames = torch.export.Dim("batch"), torch.export.Dim("frames")
            program = torch.onnx.export(
                model, (x,), None, dynamo=True, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_shapes=({0: batch, 3: frames},), external_data=False, verbose=False,
            )
            data = program.model_proto.SerializeToString()
        else:
            buffer = io.BytesIO()
            torch.onnx.export(
                model, (x,), buffer, dynamo=False, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch", 3: "frames"}, OUTPUT_NAME: {0: "batch"}},
                opset_version=opset, do_constant_folding=True,
            )
            data = buffer.getvalue()
    atomic_write_bytes(path, data)
    return path


def export_torchscript(model: torch.nn.Module, path: str | Path, n_mels: int) -> Path:
    """Write ``model`` as a traced TorchScript file (``torch.jit.load`` reads it), atomically.

    The traced module maps ``(batch, 1, n_mels, frames)`` float32 to logits ``(batch, num_classes)``
    for any batch and frames (sizes are traced as graph operations). Traced in eval mode (the
    model's training flag is restored afterwards), on the model's device.

    Args:
        model: e.g. :class:`~emohrnet.models.EmoHRNet`.
        path: the file to write (``.pt``); its folder must exist.
        n_mels: mel bands of the example input used for tracing.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OSError: the file cannot be written; an existing file is then unchanged.
        RuntimeError: the model cannot be traced.
    """
    path = Path(path)
    with _eval_mode(model), _quiet_export(), torch.no_grad():
        traced = torch.jit.trace(model, (_example(model, n_mels),), check_trace=False)
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def sidecar(state: dict[str, Any], fmt: str, model_file: str | Path, exporter: str) -> dict[str, Any]:
    """The JSON sidecar of an export: what a user needs to run it without emohrnet.

    Args:
        state: the checkpoint (``classes``, ``features``, ``model_name``, ``model_config``, ...).
        fmt: ``"onnx"`` or ``"torchscript"``.
        model_file: the exported file (its name is recorded).
        exporter: how it was exported (free text).

    Returns:
        a JSON-safe dict.
    """
    kind = state.get("feature_kind", "logmel")
    features = feature_config(kind, state["features"])
    f = features
    front = (features.recipe() + ". emohrnet.inference.predict scores audio longer than 3 s in 3 s windows every 1.5 s "
             "(each normalized on its own) and averages the window probabilities.")
    return {
        "format": fmt,
        "model_file": Path(model_file).name,
        "exporter": exporter,
        "torch_version": torch.__version__,
        "input": {"name": INPUT_NAME, "shape": ["batch", 1, n_features(kind, state["features"]), "frames"],
                  "dtype": "float32"},
        "output": {"name": OUTPUT_NAME, "shape": ["batch", len(state["classes"])], "dtype": "float32",
                   "meaning": "logits in the order of 'classes'; softmax gives probabilities"},
        "classes": list(state["classes"]),
        "features": features.to_dict(),
        "frames_per_second": f.sample_rate / f.hop_length,
        "feature_kind": kind,
        "front_end": front,
        "model_name": state.get("model_name"),
        "model_config": state.get("model_config"),
        "dataset": state.get("dataset"),
        "best_val_ua": state.get("best_val_ua"),
        "best_epoch": state.get("best_epoch"),
    }


def export_checkpoint(
    checkpoint: str | Path, fmt: str, out: str | Path | None = None, dynamo: bool = False, force: bool = False
) -> tuple[Path, Path]:
    """Export a checkpoint's best model and write its sidecar ``<out>.json``.

    Args:
        checkpoint: checkpoint folder or ``checkpoint.pt``.
        fmt: ``"onnx"`` or ``"torchscript"``.
        out: the model file; default ``model.onnx`` / ``model.torchscript.pt`` in the checkpoint's folder.
        dynamo: ONNX only: use the ``torch.export``-based exporter.
        force: replace an existing model file or sidecar (never the checkpoint itself).

    Returns:
        ``(model_file, sidecar_file)``.

    Raises:
        FileNotFoundError: no checkpoint there.
        ValueError: not an emohrnet checkpoint, no ``features``/``classes`` in it, its config and weights
            disagree, an unknown format, or ``out`` or its sidecar is the checkpoint (or exists, without
            ``force``); checked before anything is written.
        OSError: a file cannot be written.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    if out is None:
        ckpt = Path(checkpoint)
        folder = ckpt if ckpt.is_dir() else ckpt.parent
        out = folder / DEFAULT_NAMES[fmt]
    out = Path(out)
    for target in (out, out.with_name(out.name + ".json")):
        problem = output_problem(target, checkpoint_files(checkpoint), force)
        if problem:
            raise ValueError(problem)
    model, state = load_usable_model(checkpoint, "export")
    n_mels = n_features(state.get("feature_kind", "logmel"), state["features"])
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "onnx":
        export_onnx(model, out, n_mels, dynamo=dynamo)
        exporter = (
            "torch.onnx.export(dynamo=True) (torch.export-based)" if dynamo
            else f"torch.onnx.export(dynamo=False) (TorchScript-based), opset {ONNX_OPSET}"
        )
    else:
        export_torchscript(model, out, n_mels)
        exporter = "torch.jit.trace"
    side = out.with_name(out.name + ".json")
    atomic_write_text(side, json.dumps(sidecar(state, fmt, out, exporter), indent=2) + "\n")
    return out, side


def max_difference(model: torch.nn.Module, path: str | Path, fmt: str, n_mels: int,
                   shapes: Sequence[tuple[int, int]] = ((1, 137), (2, 301))) -> float:
    """Largest |exported - PyTorch| logit difference over random inputs of the given (batch, frames).

    Args:
        model: the PyTorch model (run in eval mode).
        path: the exported file.
        fmt: ``"onnx"`` (run with onnxruntime) or ``"torchscript"``.
        n_mels: mel bands of the inputs.
        shapes: ``(batch, frames)`` pairs to try.

    Returns:
        the largest absolute logit difference.

    Raises:
        ImportError: ``onnxruntime`` is missing (ONNX).
    """
    gen = torch.Generator().manual_seed(1)
    worst = 0.0
    with _eval_mode(model), _quiet_export(), torch.no_grad():
        if fmt == "onnx":
            import onnxruntime as ort

            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            run = lambda x: session.run(None, {INPUT_NAME: x.numpy()})[0]  # noqa: E731
        else:
            loaded = torch.jit.load(str(path), map_location="cpu")
            run = lambda x: loaded(x).numpy()  # noqa: E731
        device = next(model.parameters()).device
        for batch, frames in shapes:
            x = torch.randn(batch, 1, n_mels, frames, generator=gen)
            worst = max(worst, float(np.abs(run(x) - model(x.to(device)).cpu().numpy()).max()))
    return worst


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser of ``python -m emohrnet.export``."""
    p = argparse.ArgumentParser(prog="python -m emohrnet.export",
                                description="Export a checkpoint's best model to ONNX or TorchScript, with a JSON "
                                "sidecar.")
    p.add_argument("--checkpoint", required=True, help=CHECKPOINT_HELP)
    p.add_argument("--format", choices=FORMATS, default="onnx", help="default onnx")
    p.add_argument("--out", type=Path,
                   help=f"model file (default {' / '.join(DEFAULT_NAMES.values())} next to {CHECKPOINT_FILE})")
    p.add_argument("--dynamo", action="store_true",
                   help="ONNX: use the torch.export-based exporter (needs onnxscript; slow)")
    p.add_argument("--no-verify", action="store_true",
                   help="skip comparing the export's outputs with PyTorch's on two input lengths")
    p.add_argument("--force", action="store_true", help="replace an existing model file or sidecar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 done, 1 verification failed, 2 bad checkpoint)."""
    args = build_parser().parse_args(argv)
    try:
        out, side = export_checkpoint(args.checkpoint, args.format, args.out, dynamo=args.dynamo, force=args.force)
    except (FileNotFoundError, ValueError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"error: {err.filename or args.out}: cannot write the export ({err.strerror or err})", file=sys.stderr)
        return 2
    print(f"wrote {out} and {side}")
    if args.no_verify:
        return 0
    model, state = load_usable_model(args.checkpoint, "export")
    n_mels = n_features(state.get("feature_kind", "logmel"), state["features"])
    try:
        diff = max_difference(model, out, args.format, n_mels)
    except ImportError as err:
        print(f"not verified: {err}", file=sys.stderr)
        return 0
    print(f"max |exported - pytorch| logit difference at 137 and 301 frames: {diff:.2e}")
    if not diff <= 1e-4:
        print("error: the export does not reproduce the PyTorch model", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
