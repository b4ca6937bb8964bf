"""Emotion prediction for audio files with a trained checkpoint.

``python -m emohrnet.predict --checkpoint PATH AUDIO... [--format table|jsonl|csv]
[--window-seconds 3.0] [--hop-seconds 1.5] [--out FILE [--force]]``

``AUDIO`` are files (any format ``soundfile`` reads, any rate and channel count) or folders
(every ``.wav``/``.flac`` below them, sorted). The checkpoint carries everything needed: the
model's weights (the best validation epoch's), its architecture, the class names and the
log-mel parameters, so no shard manifest or other file is read.

Windowing: a file of at most ``window_seconds`` is scored as one window, the whole utterance,
unpadded (exactly what evaluation during training does). A longer file is cut into windows of
``window_seconds`` every ``hop_seconds``, plus one final window aligned to the end of the file when
the hops do not reach it, so every sample is scored; each window is scored as an utterance of its
own (its log-mel is normalized over the window, as training normalizes over each utterance), and
the whole-file probabilities are the mean of the windows' probabilities.

Output: ``table`` (default) prints one aligned row per file; ``jsonl`` and ``csv`` write one row
per file (``window`` null/empty, start 0, end = duration) followed by one row per window
(``window`` = 0, 1, ..., with its start and end in seconds). Unreadable files are reported on
stderr with their reason and skipped. ``--out`` never names an input (a recording being scored, the
checkpoint) and replaces an existing file only with ``--force``. Exit code 0 when at least one file
was scored, 1 when none was, 2 for bad arguments or an unusable checkpoint.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch
import torchaudio.functional as AF

from emohrnet.frontend import feature_config, front_end
from emohrnet.inference.prediction_output import FORMATS, FilePrediction, PredictionWriter, WindowPrediction
from emohrnet.io.audio import AudioError, load_audio
from emohrnet.io.storage import atomic_write_text, output_problem
from emohrnet.training.checkpoint import CHECKPOINT_HELP, checkpoint_files, load_usable_model

WINDOW_SECONDS, HOP_SECONDS = 3.0, 1.5
"""A long file is scored in windows of 3 s (the training segment of the paper's recipe,
:attr:`emohrnet.config.experiment.AugmentationConfig.segment_seconds`) every 1.5 s, unless told otherwise."""

AUDIO_SUFFIXES = (".wav", ".flac")
"""Suffixes (case-insensitive) of the files taken from a folder given as input."""


def window_spans(num_samples: int, window_samples: int, hop_samples: int) -> list[tuple[int, int]]:
    """Where the windows of a waveform lie, as ``(start, end)`` sample indices (end exclusive).

    A waveform of at most ``window_samples`` samples is one window ``(0, num_samples)``. A longer
    one gets windows of exactly ``window_samples`` starting at ``0, hop, 2 * hop, ...`` as long as
    they fit, plus a final window ``(num_samples - window_samples, num_samples)`` when the last of
    those ends before the waveform does.

    Args:
        num_samples: length of the waveform (>= 1).
        window_samples: window length in samples (>= 1).
        hop_samples: step between window starts in samples, ``1 <= hop <= window``.

    Returns:
        the spans, in time order.

    Raises:
        ValueError: a length out of range.
    """
    if num_samples < 1:
        raise ValueError(f"window_spans: need at least one sample, got {num_samples}")
    if window_samples < 1 or not 1 <= hop_samples <= window_samples:
        raise ValueError(f"window_spans: need 1 <= hop ({hop_samples}) <= window ({window_samples})")
    if num_samples <= window_samples:
        return [(0, num_samples)]
    spans = [(s, s + window_samples) for s in range(0, num_samples - window_samples + 1, hop_samples)]
    if spans[-1][1] < num_samples:
        spans.append((num_samples - window_samples, num_samples))
    return spans


class Predictor:
    """Scores audio with a trained checkpoint.

    The model is rebuilt from the checkpoint alone (best validation weights, eval mode); the
    log-mel front end uses the checkpoint's :class:`~emohrnet.frontend.FeatureConfig`. The model
    sees ``(batch, 1, n_mels, frames)`` log-mels at 100 frames per second (10 ms hop at 16 kHz).

    Args:
        checkpoint: a checkpoint folder or its ``checkpoint.pt``.
        window_seconds: longest audio (seconds) scored as a single window; longer audio is cut
            into windows of this length.
        hop_seconds: step between window starts (seconds), ``0 < hop_seconds <= window_seconds``.
        batch_size: windows run through the model at once.
        device: torch device for the model (``"cpu"``, ``"cuda"``).

    Attributes:
        model: the network, ``(batch, 1, n_mels, frames) -> (batch, num_classes)`` logits.
        classes: the class names, in logit order.
        features: the front-end parameters.
        state: the checkpoint's metadata (``dataset``, ``best_val_ua``, ``split``, ...).

    Raises:
        FileNotFoundError: no checkpoint at ``checkpoint``.
        ValueError: the file is not an emohrnet checkpoint, lacks the model name, class list or
            feature config, its config and weights disagree, its class count disagrees with the model,
            or the window settings are out of range (a window shorter than :attr:`min_samples`).
    """

    def __init__(
        self,
        checkpoint: str | Path,
        window_seconds: float = WINDOW_SECONDS,
        hop_seconds: float = HOP_SECONDS,
        batch_size: int = 16,
        device: str | torch.device = "cpu",
    ) -> None:
        if not window_seconds > 0 or not 0 < hop_seconds <= window_seconds:
            raise ValueError(
                f"need window_seconds > 0 and 0 < hop_seconds <= window_seconds, got {window_seconds}, {hop_seconds}"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        model, state = load_usable_model(checkpoint, "prediction")
        self.classes: list[str] = [str(c) for c in state["classes"]]
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.state = state
        kind = state.get("feature_kind", "logmel")
        self.features = feature_config(kind, state["features"])
        self.logmel = front_end(kind, state["features"]).to(self.device)
        self.window_seconds = float(window_seconds)
        self.hop_seconds = float(hop_seconds)
        self.batch_size = int(batch_size)
        rate = self.features.sample_rate
        self.window_samples = max(1, round(self.window_seconds * rate))
        self.hop_samples = min(self.window_samples, max(1, round(self.hop_seconds * rate)))
        if self.window_samples < self.min_samples:
            raise ValueError(
                f"window_seconds {window_seconds} is shorter than the front end's minimum of "
                f"{self.min_samples / rate:.4f} s"
            )

    @property
    def sample_rate(self) -> int:
        """Rate (Hz) of the waveforms the model works on (the checkpoint's feature rate)."""
        return self.features.sample_rate

    @property
    def min_samples(self) -> int:
        """Fewest samples the front end can take: ``n_fft // 2 + 1`` (257, about 16 ms at 16 kHz).

        The centered STFT pads ``n_fft // 2`` samples on each side by reflection, which needs more
        samples than that.
        """
        return self.features.n_fft // 2 + 1

    def predict_file(self, path: str | Path) -> FilePrediction:
        """Score an audio file.

        Args:
            path: any file ``soundfile`` decodes (WAV, FLAC, ...), any rate and channel count;
                it is mixed to mono and resampled to :attr:`sample_rate`.

        Returns:
            the whole-file prediction with its windows; ``path`` is kept as given (a string).

        Raises:
            AudioError: the file cannot be decoded, is empty, silent, not finite, or shorter than
                :attr:`min_samples` after resampling.
        """
        wave = load_audio(path, self.sample_rate)
        if wave.numel() < self.min_samples:
            raise AudioError(
                path, f"too short: {wave.numel() / self.sample_rate * 1000:.1f} ms, need at least "
                f"{self.min_samples / self.sample_rate * 1000:.1f} ms"
            )
        return self.predict_wave(wave, path=str(path))

    def predict_wave(
        self, wave: torch.Tensor | np.ndarray, sample_rate: int | None = None, path: str | None = None
    ) -> FilePrediction:
        """Score a mono waveform.

        Args:
            wave: ``(samples,)`` float waveform, full scale 1.0.
            sample_rate: its rate in Hz; ``None`` means :attr:`sample_rate` (16 kHz by default),
                another rate is resampled.
            path: what to put in :attr:`FilePrediction.path`.

        Returns:
            the prediction: one window for audio of at most ``window_seconds``, else overlapping
            windows (see :func:`window_spans`) and their mean probabilities.

        Raises:
            ValueError: ``wave`` is not 1-D, holds non-finite values, or has fewer than
                :attr:`min_samples` samples (after resampling).
        """
        wave = torch.as_tensor(wave, dtype=torch.float32)
        if wave.ndim != 1 or wave.numel() == 0:
            raise ValueError(f"predict_wave expects a non-empty (samples,) waveform, got shape {tuple(wave.shape)}")
        if not torch.isfinite(wave).all():
            raise ValueError("predict_wave: the waveform holds NaN or infinite samples")
        if sample_rate is not None and sample_rate != self.sample_rate:
            wave = AF.resample(wave, orig_freq=int(sample_rate), new_freq=self.sample_rate)
        if wave.numel() < self.min_samples:
            raise ValueError(f"predict_wave: {wave.numel()} samples; the front end needs at least {self.min_samples}")
        rate = self.sample_rate
        spans = window_spans(wave.numel(), self.window_samples, self.hop_samples)
        probs = self._window_probabilities(wave, spans)
        duration = wave.numel() / rate
        windows = []
        for i, ((start, end), p) in enumerate(zip(spans, probs, strict=True)):
            windows.append(
                WindowPrediction(i, round(start / rate, 6), round(end / rate, 6), self._label(p), self._named(p))
            )
        mean = probs.mean(axis=0)
        return FilePrediction(path, self._label(mean), self._named(mean), windows, round(duration, 6))

    def _window_probabilities(self, wave: torch.Tensor, spans: Sequence[tuple[int, int]]) -> np.ndarray:
        """Softmax probabilities ``(windows, num_classes)`` (float64) of equal-length spans."""
        out = []
        with torch.inference_mode():
            for i in range(0, len(spans), self.batch_size):
                chunk = torch.stack([wave[s:e] for s, e in spans[i : i + self.batch_size]]).to(self.device)
                spec = self.logmel(chunk).unsqueeze(1)  # (batch, 1, n_mels, frames)
                logits = self.model(spec).double()
                out.append(logits.softmax(dim=-1).cpu().numpy())
        return np.concatenate(out)

    def score_examples(self, examples: Sequence[Any]) -> dict[str, Any]:
        """Score utterances whose features are already computed (shard examples, e.g. a test part):
        whole utterances, the way training evaluated them, with the checkpoint's recorded precision
        and memory layout (``speed``) when this predictor runs on the same kind of device.

        This is how a checkpoint is re-scored to check the figure its run reported: the test UA a
        trial reports equals this method's ``ua`` on the same test utterances.

        Args:
            examples: :class:`emohrnet.data.loading.Example` items (``mel`` ``(n_features, frames)``, ``label``).

        Returns:
            ``{"loss", "ua", "wa", "n", "confusion"}`` as :func:`emohrnet.inference.evaluation.evaluate` returns.
        """
        from emohrnet.inference.evaluation import evaluate

        speed = self.state.get("speed") or {}
        same_kind = torch.device(speed.get("device", "cpu")).type == self.device.type
        amp = same_kind and speed.get("amp") == "bf16"
        channels_last = same_kind and bool(speed.get("channels_last"))
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        max_batch = int((self.state.get("train_config") or {}).get("eval_batch", 32))
        return evaluate(self.model, list(examples), len(self.classes), self.device, max_batch=max_batch,
                        reduce=False, amp=amp, channels_last=channels_last)

    def _label(self, p: np.ndarray) -> str:
        return self.classes[int(np.argmax(p))]

    def _named(self, p: np.ndarray) -> dict[str, float]:
        return {c: float(v) for c, v in zip(self.classes, p, strict=True)}


# --------------------------------------------------------------------------- input files
def find_audio(inputs: Iterable[str | Path], errors: TextIO | None = None) -> list[Path]:
    """The files to score: files as given, folders expanded to their ``.wav``/``.flac`` files.

    Folders are searched recursively; their files are sorted by path. A path listed twice is
    scored once. Inputs that do not exist, and folders without audio, are reported on ``errors``
    (one line each) and skipped.

    Args:
        inputs: files and folders.
        errors: where to report skipped inputs (``None``: nowhere).

    Returns:
        the files, in input order.
    """
    files: list[Path] = []
    seen: set[Path] = set()
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
            if not found and errors is not None:
                print(f"{path}: skipped: no .wav or .flac files below this folder", file=errors)
        elif path.exists():
            found = [path]
        else:
            if errors is not None:
                print(f"{path}: skipped: no such file or folder", file=errors)
            found = []
        for p in found:
            key = p.resolve()
            if key not in seen:
                seen.add(key)
                files.append(p)
    return files


# --------------------------------------------------------------------------- command line
def build_parser() -> argparse.ArgumentParser:
    """The command-line parser of ``python -m emohrnet.predict``."""
    p = argparse.ArgumentParser(prog="python -m emohrnet.predict",
                                description="Predict the emotion of audio files with a trained emohrnet checkpoint.")
    p.add_argument("--checkpoint", required=True, help=CHECKPOINT_HELP)
    p.add_argument("audio", nargs="+", metavar="AUDIO", help="audio files, or folders (every .wav/.flac below)")
    p.add_argument("--format", choices=FORMATS, default="table",
                   help="table: one row per file; jsonl/csv: a row per file and per window (default table)")
    p.add_argument("--window-seconds", type=float, default=WINDOW_SECONDS,
                   help=f"files longer than this are scored in windows of this length (default {WINDOW_SECONDS})")
    p.add_argument("--hop-seconds", type=float, default=HOP_SECONDS,
                   help=f"step between windows (default {HOP_SECONDS})")
    p.add_argument("--batch-size", type=int, default=16, help="windows per model call (default 16)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--out", type=Path, help="write the results to this file (atomically) instead of stdout; "
                   "never one of the inputs")
    p.add_argument("--force", action="store_true", help="let --out replace an existing file")
    return p


def check_device(parser: argparse.ArgumentParser, device: str) -> None:
    """Refuse a ``--device`` torch does not know or this machine does not have (argparse error, exit 2)."""
    try:
        dev = torch.device(device)
    except RuntimeError:
        parser.error(f"argument --device: {device!r} (allowed: cpu, cuda, cuda:N, mps)")
    if dev.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"argument --device: {device} but this machine has no CUDA GPU (allowed: cpu)")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        parser.error(f"argument --device: {device} (allowed: cuda:0 to cuda:{torch.cuda.device_count() - 1})")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        parser.error(f"argument --device: {device} but MPS is not available here (allowed: cpu)")


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run the command line; returns the exit code (0: some file scored, 1: none, 2: bad checkpoint).

    With ``--out`` the file is written (atomically) only when at least one file was scored.

    Raises:
        SystemExit: (code 2) bad arguments, from argparse.
    """
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.window_seconds > 0 or not 0 < args.hop_seconds <= args.window_seconds:
        parser.error("need --window-seconds > 0 and 0 < --hop-seconds <= --window-seconds")
    if args.batch_size < 1:
        parser.error("--batch-size must be >= 1")
    check_device(parser, args.device)
    if args.out is not None:
        if args.out.is_dir():
            parser.error(f"argument --out: {args.out} is a folder (allowed: a file path in an existing folder)")
        if not args.out.parent.is_dir():
            parser.error(f"argument --out: {args.out.parent} does not exist (allowed: a file path in an existing "
                         "folder)")
        inputs = [(path, "a recording being scored") for path in find_audio(args.audio)]
        problem = output_problem(args.out, inputs + checkpoint_files(args.checkpoint), args.force)
        if problem:
            parser.error(problem)
    try:
        predictor = Predictor(args.checkpoint, args.window_seconds, args.hop_seconds, args.batch_size, args.device)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=stderr)
        return 2

    files = find_audio(args.audio, stderr)
    writer = PredictionWriter(args.format, predictor.classes, None if args.out else stdout)
    scored = 0
    for path in files:
        try:
            pred = predictor.predict_file(path)
        except AudioError as err:
            print(f"{path}: skipped: {err.reason}", file=stderr)
            continue
        except OSError as err:
            print(f"{path}: skipped: {err}", file=stderr)
            continue
        writer.add(pred)
        scored += 1
    text = writer.text()
    if args.out and scored:
        atomic_write_text(args.out, text)
    elif text and scored:
        stdout.write(text)
        stdout.flush()
    skipped = len(files) - scored
    if scored == 0:
        print(f"no file scored ({skipped} unreadable)" if files else "no audio files found", file=stderr)
        return 1
    if skipped:
        print(f"{scored} file(s) scored, {skipped} skipped", file=stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
