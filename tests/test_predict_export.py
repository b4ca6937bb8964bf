"""Prediction (files, folders, windows, output formats, exit codes) and export (parity to the model).

One tiny EmoHRNet checkpoint (n_mels 32, 4 classes) is written per module in the layout train.py
writes, with ``best_model`` different from ``model`` so that using the wrong weights shows.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import soundfile as sf
import torch
from corpus_trees import write_audio

from emohrnet.frontend import FeatureConfig, LogMel
from emohrnet.inference.export import export_checkpoint, export_torchscript, max_difference
from emohrnet.inference.export import main as export_main
from emohrnet.inference.predict import Predictor, find_audio, window_spans
from emohrnet.inference.predict import main as predict_main
from emohrnet.io.audio import load_audio
from emohrnet.models import build_model, width_preset
from emohrnet.training.checkpoint import CHECKPOINT_FILE, save_checkpoint_file

CLASSES = ["angry", "happy", "neutral", "sad"]
FEATURES = FeatureConfig(n_mels=32)
MODEL_KWARGS = {"widths": list(width_preset(4)), "stem_channels": 8, "blocks_per_branch": 1, "modules": [1, 1, 1, 1]}
# name -> (seconds, sample_rate, channels, seed)
AUDIO = {
    "a_short_8k.wav": (0.5, 8_000, 1, 0),
    "b_mid_16k_stereo.wav": (2.0, 16_000, 2, 1),
    "c_long_44k.wav": (10.0, 44_100, 1, 2),
    "sub/d_short_48k_stereo.flac": (0.5, 48_000, 2, 3),
}

pytestmark = pytest.mark.usefixtures("one_thread")


def _model(seed: int) -> torch.nn.Module:
    """A tiny EmoHRNet with realistic BatchNorm statistics and logits of order 1 (not saturated)."""
    torch.manual_seed(seed)
    model = build_model("emohrnet", len(CLASSES), **MODEL_KWARGS)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in norms:
        m.momentum = None  # running statistics = plain average over the calibration batches
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(4, 1, FEATURES.n_mels, 120))
        model.classifier.weight.mul_(2.0)
    for m in norms:
        m.momentum = 0.1
    return model.eval()


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """(checkpoint folder, the best model, the last-epoch model)."""
    last, best = _model(1), _model(0)
    folder = tmp_path_factory.mktemp("ckpt")
    state = {
        "model": last.state_dict(), "best_model": best.state_dict(), "optimizer": {}, "epoch": 3,
        "best_val_ua": 0.5, "best_epoch": 1, "val_ua": 0.4, "val_wa": 0.4, "model_name": "emohrnet",
        "model_config": best.config, "classes": CLASSES, "features": FEATURES.to_dict(), "train_config": {},
        "split": "test", "dataset": "synthetic",
    }
    save_checkpoint_file(folder / CHECKPOINT_FILE, state)
    return folder, best, last


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory):
    """Good files of several rates, channel counts and lengths, a broken .wav and a text file."""
    root = tmp_path_factory.mktemp("audio")
    for name, (seconds, rate, channels, seed) in AUDIO.items():
        write_audio(root / name, seconds, rate, channels, seed)
    # the long file changes over time (a rising tone, then louder noise), so its windows differ
    seconds, rate, _, _ = AUDIO["c_long_44k.wav"]
    t = np.arange(round(seconds * rate)) / rate
    wave = 0.3 * np.sin(2 * np.pi * (200 * t + 150 * t**2))
    noise = np.random.default_rng(0).uniform(-0.6, 0.6, len(t))
    wave[t > 6] = noise[t > 6]
    sf.write(str(root / "c_long_44k.wav"), wave.astype(np.float32), rate, subtype="PCM_16")
    (root / "broken.wav").write_bytes(b"this is not a RIFF file\n" * 50)
    (root / "notes.txt").write_text("not audio, not a .wav: ignored in folders\n")
    return root


@pytest.fixture(scope="module")
def predictor(ckpt):
    return Predictor(ckpt[0])


def _direct(model: torch.nn.Module, wave: torch.Tensor) -> np.ndarray:
    """Probabilities of ``model`` on the whole waveform, computed without emohrnet.inference.predict."""
    with torch.no_grad():
        spec = LogMel(FEATURES)(wave)[None, None]
        return model(spec).softmax(-1)[0].double().numpy()


def _probs(d: dict[str, float]) -> np.ndarray:
    return np.array([d[c] for c in CLASSES])


# ------------------------------------------------------------------------- windows
def test_window_spans():
    assert window_spans(100, 300, 150) == [(0, 100)]
    assert window_spans(300, 300, 150) == [(0, 300)]
    assert window_spans(301, 300, 150) == [(0, 300), (1, 301)]
    assert window_spans(600, 300, 150) == [(0, 300), (150, 450), (300, 600)]
    assert window_spans(1000, 300, 300) == [(0, 300), (300, 600), (600, 900), (700, 1000)]
    for bad in [(0, 300, 150), (10, 0, 1), (10, 5, 6), (10, 5, 0)]:
        with pytest.raises(ValueError):
            window_spans(*bad)


# ------------------------------------------------------------------------- API
def test_short_file_equals_model_on_logmel(ckpt, audio_dir, predictor):
    _, best, last = ckpt
    path = audio_dir / "a_short_8k.wav"
    pred = predictor.predict_file(path)
    expected = _direct(best, load_audio(path))
    np.testing.assert_allclose(np.log(_probs(pred.probabilities)), np.log(expected), atol=1e-5)
    assert pred.label == CLASSES[int(expected.argmax())]
    assert pred.path == str(path) and pred.duration == pytest.approx(0.5)
    assert len(pred.windows) == 1
    w = pred.windows[0]
    assert (w.index, w.start, w.end) == (0, 0.0, pytest.approx(0.5))
    np.testing.assert_allclose(_probs(w.probabilities), expected, atol=1e-5)
    # the best epoch's weights, not the checkpoint's last ones
    assert np.abs(_direct(last, load_audio(path)) - expected).max() > 1e-3


@pytest.mark.parametrize("name", sorted(AUDIO))
def test_rates_channels_lengths(predictor, audio_dir, name):
    seconds, rate, channels, _ = AUDIO[name]
    pred = predictor.predict_file(audio_dir / name)
    assert pred.duration == pytest.approx(seconds, abs=1 / rate + 1 / 16_000)
    assert list(pred.probabilities) == CLASSES
    p = _probs(pred.probabilities)
    assert p.sum() == pytest.approx(1.0, abs=1e-9) and (p >= 0).all()
    assert pred.label == CLASSES[int(p.argmax())]
    assert len(pred.windows) == (1 if seconds <= 3.0 else 6)
    for w in pred.windows:
        assert _probs(w.probabilities).sum() == pytest.approx(1.0, abs=1e-9)
        assert w.label == max(w.probabilities, key=w.probabilities.get)


def test_long_file_windows(ckpt, audio_dir, predictor):
    path = audio_dir / "c_long_44k.wav"
    pred = predictor.predict_file(path)
    # 3 s windows every 1.5 s while they fit, then one aligned to the end (10 - 3 = 7 s)
    assert [w.start for w in pred.windows] == pytest.approx([0.0, 1.5, 3.0, 4.5, 6.0, 7.0])
    assert [w.end for w in pred.windows] == pytest.approx([3.0, 4.5, 6.0, 7.5, 9.0, 10.0])
    assert [w.index for w in pred.windows] == list(range(6))
    mean = np.mean([_probs(w.probabilities) for w in pred.windows], axis=0)
    np.testing.assert_allclose(_probs(pred.probabilities), mean, atol=1e-12)
    # each window is scored as an utterance of its own
    wave = load_audio(path)
    np.testing.assert_allclose(_probs(pred.windows[1].probabilities), _direct(ckpt[1], wave[24_000:72_000]),
                               atol=1e-5)
    np.testing.assert_allclose(_probs(pred.windows[-1].probabilities), _direct(ckpt[1], wave[-48_000:]),
                               atol=1e-5)
    # the windows do not all agree (the mean is not a copy of one of them)
    assert np.ptp([_probs(w.probabilities) for w in pred.windows], axis=0).max() > 1e-2


def test_window_settings(ckpt, audio_dir):
    pred = Predictor(ckpt[0], window_seconds=4.0, hop_seconds=4.0).predict_file(audio_dir / "c_long_44k.wav")
    assert [w.start for w in pred.windows] == pytest.approx([0.0, 4.0, 6.0])
    one = Predictor(ckpt[0], window_seconds=12.0).predict_file(audio_dir / "c_long_44k.wav")
    assert len(one.windows) == 1 and one.windows[0].end == pytest.approx(10.0)
    for window, hop in [(0.0, 1.0), (3.0, 0.0), (3.0, 4.0), (0.01, 0.01)]:
        with pytest.raises(ValueError):
            Predictor(ckpt[0], window_seconds=window, hop_seconds=hop)


def test_predict_wave(predictor, audio_dir):
    path = audio_dir / "b_mid_16k_stereo.wav"
    from_file = predictor.predict_file(path)
    wave = load_audio(path)
    from_wave = predictor.predict_wave(wave.numpy())
    assert from_wave.path is None
    np.testing.assert_allclose(_probs(from_wave.probabilities), _probs(from_file.probabilities), atol=1e-6)
    at_8k = load_audio(path, sample_rate=8_000)
    resampled = predictor.predict_wave(at_8k, sample_rate=8_000, path="x")
    assert resampled.path == "x" and resampled.duration == pytest.approx(2.0)
    for bad in [torch.zeros(0), torch.zeros(2, 100), torch.tensor([0.1, float("nan")]), torch.ones(256)]:
        with pytest.raises(ValueError):
            predictor.predict_wave(bad)


def test_checkpoint_must_carry_metadata(ckpt, tmp_path):
    state = torch.load(ckpt[0] / CHECKPOINT_FILE, weights_only=True)
    for key in ("features", "classes", "model_name"):
        broken = dict(state)
        del broken[key]
        (tmp_path / key).mkdir()
        save_checkpoint_file(tmp_path / key / CHECKPOINT_FILE, broken)
        with pytest.raises(ValueError, match=key):
            Predictor(tmp_path / key)
    with pytest.raises(FileNotFoundError):
        Predictor(tmp_path / "nowhere")


def test_find_audio(audio_dir, tmp_path):
    errors = io.StringIO()
    files = find_audio([audio_dir, audio_dir / "a_short_8k.wav", tmp_path / "missing.wav", tmp_path], errors)
    names = [p.relative_to(audio_dir).as_posix() for p in files]
    assert names == ["a_short_8k.wav", "b_mid_16k_stereo.wav", "broken.wav", "c_long_44k.wav",
                     "sub/d_short_48k_stereo.flac"]
    report = errors.getvalue()
    assert "missing.wav: skipped: no such file" in report
    assert f"{tmp_path}: skipped: no .wav or .flac files" in report


# ------------------------------------------------------------------------- command line
def _run_cli(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = predict_main(args, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_cli_jsonl(ckpt, audio_dir):
    code, out, err = _run_cli(["--checkpoint", str(ckpt[0]), "--format", "jsonl", str(audio_dir)])
    assert code == 0
    assert f"{audio_dir / 'broken.wav'}: skipped: cannot decode audio" in err
    records = [json.loads(line) for line in out.splitlines()]
    files = [r for r in records if r["window"] is None]
    assert [Path(r["path"]).name for r in files] == ["a_short_8k.wav", "b_mid_16k_stereo.wav", "c_long_44k.wav",
                                                      "d_short_48k_stereo.flac"]
    for r in records:
        assert sum(r["probabilities"].values()) == pytest.approx(1.0, abs=1e-9)
        assert r["label"] == max(r["probabilities"], key=r["probabilities"].get)
    windows = [r for r in records if r["window"] is not None and r["path"].endswith("c_long_44k.wav")]
    assert [r["start"] for r in windows] == pytest.approx([0.0, 1.5, 3.0, 4.5, 6.0, 7.0])
    assert [r["window"] for r in windows] == list(range(6))
    assert len(records) == 4 + 1 + 1 + 6 + 1


def test_cli_csv_and_out_file(ckpt, audio_dir, tmp_path):
    target = tmp_path / "results.csv"
    code, out, _ = _run_cli(["--checkpoint", str(ckpt[0] / CHECKPOINT_FILE), "--format", "csv",
                             "--window-seconds", "4", "--hop-seconds", "2", "--out", str(target),
                             str(audio_dir / "c_long_44k.wav"), str(audio_dir / "a_short_8k.wav")])
    assert code == 0 and out == ""
    rows = list(csv.DictReader(target.read_text().splitlines()))
    assert list(rows[0]) == ["path", "window", "start", "end", "label"] + [f"prob_{c}" for c in CLASSES]
    long_rows = [r for r in rows if r["path"].endswith("c_long_44k.wav")]
    assert long_rows[0]["window"] == "" and float(long_rows[0]["end"]) == pytest.approx(10.0)
    assert [float(r["start"]) for r in long_rows[1:]] == pytest.approx([0.0, 2.0, 4.0, 6.0])
    assert [r["window"] for r in long_rows[1:]] == ["0", "1", "2", "3"]
    for r in rows:
        p = np.array([float(r[f"prob_{c}"]) for c in CLASSES])
        assert p.sum() == pytest.approx(1.0, abs=1e-9)
        assert r["label"] == CLASSES[int(p.argmax())]
    assert len(rows) == 5 + 2


def test_cli_table(ckpt, audio_dir, predictor):
    code, out, err = _run_cli(["--checkpoint", str(ckpt[0]), str(audio_dir)])
    assert code == 0 and "broken.wav" in err and "broken.wav" not in out
    header, *lines = out.splitlines()
    assert header.split() == ["file", "seconds", "windows", "label", *CLASSES]
    assert len(lines) == 4
    label_at = header.index("label")
    for line, name in zip(lines, ["a_short_8k.wav", "b_mid_16k_stereo.wav", "c_long_44k.wav",
                                  "sub/d_short_48k_stereo.flac"], strict=True):
        pred = predictor.predict_file(audio_dir / name)
        assert line.startswith(str(audio_dir / name))
        assert line[label_at:].split()[0] == pred.label  # aligned under the header
        assert len(line) == len(header)  # right-aligned probability columns end together
        assert line.split()[-4:] == [f"{pred.probabilities[c]:.3f}" for c in CLASSES]
        assert line.split()[2] == str(len(pred.windows))


def test_cli_exit_codes(ckpt, audio_dir, tmp_path):
    code, out, err = _run_cli(["--checkpoint", str(ckpt[0]), str(audio_dir / "broken.wav")])
    assert code == 1 and out == "" and "broken.wav: skipped" in err and "no file scored" in err
    silent = tmp_path / "quiet.wav"
    sf.write(str(silent), np.zeros(8000, dtype=np.float32), 16_000)
    code, _, err = _run_cli(["--checkpoint", str(ckpt[0]), str(silent), str(tmp_path / "nothing.wav")])
    assert code == 1 and "silent" in err and "nothing.wav: skipped: no such file" in err
    tiny = write_audio(tmp_path / "tiny.wav", 0.01, 16_000)  # 160 samples: below the STFT's 257
    code, _, err = _run_cli(["--checkpoint", str(ckpt[0]), str(tiny)])
    assert code == 1 and "tiny.wav: skipped: too short: 10.0 ms" in err
    just = write_audio(tmp_path / "just.wav", 257 / 16_000, 16_000)
    code, out, _ = _run_cli(["--checkpoint", str(ckpt[0]), "--format", "jsonl", str(just)])
    assert code == 0 and len(out.splitlines()) == 2
    target = tmp_path / "none.jsonl"
    code, _, _ = _run_cli(["--checkpoint", str(ckpt[0]), "--out", str(target), str(silent)])
    assert code == 1 and not target.exists()
    code, _, err = _run_cli(["--checkpoint", str(tmp_path / "no_ckpt"), str(audio_dir)])
    assert code == 2 and "no checkpoint" in err
    with pytest.raises(SystemExit) as exc:
        _run_cli(["--checkpoint", str(ckpt[0]), "--hop-seconds", "5", str(audio_dir)])
    assert exc.value.code == 2


def test_module_entry_point(ckpt, audio_dir):
    result = subprocess.run(
        [sys.executable, "-m", "emohrnet.inference.predict", "--checkpoint", str(ckpt[0]), "--format", "jsonl",
         str(audio_dir / "a_short_8k.wav"), str(audio_dir / "broken.wav")],
        capture_output=True, text=True, timeout=60, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2 and "broken.wav: skipped" in result.stderr


# ------------------------------------------------------------------------- export
def _real_inputs(audio_dir) -> dict[tuple[int, int], torch.Tensor]:
    """Log-mels of real audio: (1, 1, 32, 137) and (2, 1, 32, 301)."""
    logmel = LogMel(FEATURES)
    long = load_audio(audio_dir / "c_long_44k.wav")
    mid = load_audio(audio_dir / "b_mid_16k_stereo.wav")
    x137 = logmel(mid[: 136 * 160])[None, None]
    x301 = torch.stack([logmel(long[16_000 : 16_000 + 300 * 160]), logmel(long[-300 * 160 :])])[:, None]
    assert x137.shape == (1, 1, 32, 137) and x301.shape == (2, 1, 32, 301)
    return {(1, 137): x137, (2, 301): x301}


@pytest.fixture(scope="module")
def onnx_export(ckpt, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx") / "emo.onnx"
    assert export_main(["--checkpoint", str(ckpt[0]), "--format", "onnx", "--out", str(out)]) == 0
    return out


def test_onnx_parity(ckpt, audio_dir, onnx_export):
    best = ckpt[1]
    session = ort.InferenceSession(str(onnx_export), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert inp.name == "log_mel" and inp.shape[1:3] == [1, 32]
    assert isinstance(inp.shape[0], str) and isinstance(inp.shape[3], str)  # dynamic batch and frames
    for x in _real_inputs(audio_dir).values():
        with torch.no_grad():
            expected = best(x).numpy()
        got = session.run(["logits"], {"log_mel": x.numpy()})[0]
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
    onnx.checker.check_model(onnx.load(str(onnx_export)))


def test_onnx_sidecar_and_atomic(ckpt, onnx_export):
    side = json.loads(Path(str(onnx_export) + ".json").read_text())
    assert side["classes"] == CLASSES
    assert side["features"] == FEATURES.to_dict()
    assert side["input"] == {"name": "log_mel", "shape": ["batch", 1, 32, "frames"], "dtype": "float32"}
    assert side["output"]["name"] == "logits" and side["output"]["shape"] == ["batch", 4]
    assert side["format"] == "onnx" and side["model_file"] == "emo.onnx" and side["frames_per_second"] == 100
    assert "32 mel bands 0.0-8000.0 Hz" in side["front_end"] and "3 s windows every 1.5 s" in side["front_end"]
    assert sorted(p.name for p in onnx_export.parent.iterdir()) == ["emo.onnx", "emo.onnx.json"]


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_torchscript_parity(ckpt, audio_dir, tmp_path):
    best = ckpt[1]
    model_file, side = export_checkpoint(ckpt[0], "torchscript")  # default: next to the checkpoint
    assert model_file == ckpt[0] / "model.torchscript.pt" and side.name == "model.torchscript.pt.json"
    assert json.loads(side.read_text())["classes"] == CLASSES
    loaded = torch.jit.load(str(model_file))
    for x in _real_inputs(audio_dir).values():
        with torch.no_grad():
            np.testing.assert_allclose(loaded(x).numpy(), best(x).numpy(), atol=1e-4, rtol=0)
    assert max_difference(best, model_file, "torchscript", 32) <= 1e-4


def test_export_functions_keep_training_flag_and_detect_mismatch(ckpt, tmp_path):
    model = _model(5).train()
    path = export_torchscript(model, tmp_path / "m.pt", 32)
    assert model.training and path.is_file()
    # a different model's export does not pass the parity check
    assert max_difference(ckpt[1], path, "torchscript", 32) > 1e-3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]
    with pytest.raises(ValueError):
        export_checkpoint(ckpt[0], "tflite")


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_cnn1d_attention_checkpoint_exports(tmp_path):
    from emohrnet.frontend import MfccConfig
    from emohrnet.models import build_model

    torch.manual_seed(0)
    model = build_model("cnn1d_attention", len(CLASSES), in_channels=20, widths=[8, 16, 16]).eval()
    mfcc = MfccConfig(n_mfcc=20, n_mels=40)
    save_checkpoint_file(tmp_path / CHECKPOINT_FILE, {
        "model": model.state_dict(), "model_name": "cnn1d_attention", "model_config": model.config,
        "classes": CLASSES, "feature_kind": "mfcc", "features": mfcc.to_dict()})
    model_file, side = export_checkpoint(tmp_path, "torchscript")
    sidecar = json.loads(side.read_text())
    assert sidecar["classes"] == CLASSES and sidecar["feature_kind"] == "mfcc"
    # the front end's own recipe, and predict's windowing (the same for either front end)
    assert sidecar["front_end"].startswith("mono audio at 16000 Hz; emohrnet.frontend.Mfcc")
    assert "20 MFCCs from 40 mel bands" in sidecar["front_end"] and "3 s windows every 1.5 s" in sidecar["front_end"]
    x = torch.randn(3, 1, 20, 123)
    with torch.no_grad():
        np.testing.assert_allclose(torch.jit.load(str(model_file))(x).numpy(), model(x).numpy(), atol=1e-5, rtol=0)


# ------------------------------------------------------------------------- nothing given is replaced
def test_predict_out_never_replaces_an_input_or_an_existing_file(ckpt, audio_dir, tmp_path, capsys):
    """``--out`` naming a recording being scored used to replace it by the CSV (exit 0); now it is refused
    before anything is scored, as is the checkpoint and, without ``--force``, any existing file."""
    clip = tmp_path / "clip.wav"
    clip.write_bytes((audio_dir / "a_short_8k.wav").read_bytes())
    link = tmp_path / "link.wav"
    link.symlink_to(clip)
    kept = tmp_path / "kept.csv"
    kept.write_text("mine\n")
    ckpt_file = ckpt[0] / CHECKPOINT_FILE
    before = {p: p.read_bytes() for p in (clip, kept, ckpt_file)}
    probes = [
        ([str(clip)], clip, f"argument --out: {clip} is a recording being scored"),
        ([str(tmp_path)], clip, f"argument --out: {clip} is a recording being scored"),  # found in a folder
        ([str(clip)], link, f"argument --out: {link} is a recording being scored"),  # the same file by another name
        ([str(clip)], ckpt_file, f"argument --out: {ckpt_file} is the checkpoint"),
        ([str(clip)], kept, f"argument --out: {kept} exists; choose another file, or pass --force to replace it"),
    ]
    for audio, out, message in probes:
        with pytest.raises(SystemExit) as exit_:
            predict_main(["--checkpoint", str(ckpt[0]), "--format", "csv", "--out", str(out), *audio])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and message in err and err.count("error:") == 1, err
    with pytest.raises(SystemExit):  # --force replaces an earlier output, never an input
        predict_main(["--checkpoint", str(ckpt[0]), "--out", str(clip), "--force", str(clip)])
    assert {p: p.read_bytes() for p in before} == before
    code, _, _ = _run_cli(["--checkpoint", str(ckpt[0]), "--format", "csv", "--out", str(kept), "--force", str(clip)])
    assert code == 0 and kept.read_text().startswith("path,window,start,end,label")


def test_export_never_replaces_the_checkpoint_or_an_existing_export(ckpt, tmp_path, capsys):
    """``--out`` at the checkpoint used to overwrite the trained checkpoint, and then verification failed."""
    ckpt_file = ckpt[0] / CHECKPOINT_FILE
    summary = tmp_path / "best.json"
    summary.write_text(json.dumps({"checkpoint": str(ckpt[0])}))
    earlier = tmp_path / "model.pt"
    earlier.write_bytes(b"an earlier export")
    before = {p: p.read_bytes() for p in (ckpt_file, summary, earlier)}
    probes = [
        (["--checkpoint", str(ckpt[0]), "--out", str(ckpt_file)], f"argument --out: {ckpt_file} is the checkpoint"),
        (["--checkpoint", str(ckpt_file), "--out", str(ckpt_file)], f"argument --out: {ckpt_file} is the --checkpoint"),
        # the sidecar of --out X is X.json: here the search summary that names the checkpoint
        (["--checkpoint", str(summary), "--out", str(tmp_path / "best")], f"argument --out: {summary} is the "
         "--checkpoint"),
        (["--checkpoint", str(ckpt[0]), "--format", "torchscript", "--out", str(earlier)],
         f"argument --out: {earlier} exists; choose another file, or pass --force to replace it"),
    ]
    for argv, message in probes:
        assert export_main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert {p: p.read_bytes() for p in before} == before
    assert export_main(["--checkpoint", str(ckpt[0]), "--format", "torchscript", "--out", str(earlier), "--force",
                        "--no-verify"]) == 0
    assert earlier.read_bytes() != before[earlier] and ckpt_file.read_bytes() == before[ckpt_file]


def _edited(state: dict, what: str) -> dict:
    """A checkpoint edited by hand, or put together from two: its config no longer fits its weights."""
    state = {**state, "model_config": dict(state["model_config"])}
    if what == "widths":
        state["model_config"]["widths"] = [8, 16, 32, 64]
    elif what == "model name":
        state["model_name"] = "cnn1d_attention"
    elif what == "weights":
        state["best_model"] = build_model("emohrnet", len(CLASSES), **{**MODEL_KWARGS, "widths": [6, 12, 24, 48]}
                                          ).state_dict()
    elif what == "classes":
        state["classes"] = [*CLASSES, "calm"]
        del state["model_config"]["num_classes"]
    elif what == "classes, outputs kept":
        state["classes"] = [*CLASSES, "calm"]
    return state


EDITS = {
    "widths": "the checkpoint's config and its weights disagree (emohrnet, 4 classes: ",
    "model name": "the checkpoint's config and its weights disagree (cnn1d_attention, 4 classes: ",
    "weights": "the checkpoint's config and its weights disagree (emohrnet, 4 classes: ",
    "classes": "the checkpoint's config and its weights disagree (emohrnet, 5 classes: classifier.weight is [4, ",
    "classes, outputs kept": "the model has 4 outputs but the checkpoint names 5 classes",
}


@pytest.mark.parametrize("what", sorted(EDITS))
def test_a_checkpoint_whose_config_and_weights_disagree_is_refused_in_one_line(ckpt, audio_dir, tmp_path, capsys,
                                                                              what):
    """It used to end predict and export in a 22-256-line load_state_dict traceback."""
    state = torch.load(ckpt[0] / CHECKPOINT_FILE, weights_only=True)
    save_checkpoint_file(tmp_path / CHECKPOINT_FILE, _edited(state, what))
    code, out, err = _run_cli(["--checkpoint", str(tmp_path), str(audio_dir / "a_short_8k.wav")])
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert err.startswith(f"error: {tmp_path}: ") and EDITS[what] in err, err
    assert export_main(["--checkpoint", str(tmp_path), "--out", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and EDITS[what] in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_FILE]  # nothing exported
