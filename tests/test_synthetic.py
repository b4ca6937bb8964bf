"""The synthetic corpus: generation, caching, the file-name reader, determinism and learnability."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio

from emohrnet.corpora import CorpusError, get_corpus
from emohrnet.corpora import synthetic as synthetic_module
from emohrnet.corpora.speech_synthesis import PROSODY, speaker_voice, synthesize
from emohrnet.corpora.synthetic import MARKER, Synthetic
from emohrnet.io import paths
from emohrnet.io.audio import SAMPLE_RATE, load_audio

SMALL = {"n_speakers": 4, "n_per_class": 3}
N_SMALL = 4 * 4 * 3


def _digests(root):
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic") / "corpus"
    corpus = Synthetic(root, **SMALL)
    return corpus, corpus.scan()


# ----------------------------------------------------------------------------- generation + reader
def test_generates_the_expected_files(small):
    corpus, _ = small
    root = corpus.root
    wavs = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.wav"))
    assert wavs == corpus.expected_files()
    assert len(wavs) == N_SMALL
    assert sorted(p.name for p in root.iterdir()) == [MARKER, "spk01", "spk02", "spk03", "spk04"]
    marker = json.loads((root / MARKER).read_text())
    assert marker == corpus.marker()
    assert marker["params"]["n_speakers"] == 4 and marker["params"]["n_per_class"] == 3
    # nothing left beside it
    assert sorted(p.name for p in root.parent.iterdir()) == ["corpus"]


def test_scan_labels_and_speakers_follow_the_names(small):
    corpus, result = small
    assert len(result.utterances) == N_SMALL and result.skipped == []
    assert {u.label for u in result.utterances} == set(Synthetic.classes)
    assert sorted({u.speaker for u in result.utterances}) == ["spk01", "spk02", "spk03", "spk04"]
    for u in result.utterances:
        speaker, label, index = u.utterance_id.split("_")
        assert (u.speaker, u.label) == (speaker, label)
        assert os.path.basename(os.path.dirname(u.path)) == speaker
        assert u.corpus == "synthetic" and u.extra["index"] == int(index)
        assert u.extra["sex"] == ("male" if int(speaker[3:]) % 2 else "female")
        assert u.key == f"synthetic_{u.utterance_id}"
    per_cell = {}
    for u in result.utterances:
        per_cell[(u.speaker, u.label)] = per_cell.get((u.speaker, u.label), 0) + 1
    assert set(per_cell.values()) == {3} and len(per_cell) == 16
    assert [u.utterance_id for u in result.utterances] == sorted(u.utterance_id for u in result.utterances)


def test_audio_decodes_to_non_silent_16k_of_the_expected_length(small):
    _, result = small
    lengths = []
    for u in result.utterances:
        assert os.path.isfile(u.path)
        info = sf.info(u.path)
        assert (info.samplerate, info.channels, info.subtype) == (SAMPLE_RATE, 1, "PCM_16")
        wave = load_audio(u.path)
        assert wave.dtype == torch.float32 and wave.ndim == 1
        seconds = wave.shape[0] / SAMPLE_RATE
        assert 1.5 - 1e-3 <= seconds <= 2.5 + 1e-3
        lengths.append(seconds)
        assert torch.isfinite(wave).all()
        peak = float(wave.abs().max())
        assert 1e-2 < peak < 1.0
        # the pauses hold the background noise floor, not digital silence
        assert float(wave[:400].abs().max()) > 0
    assert max(lengths) - min(lengths) > 0.3  # lengths vary


def test_classes_differ_in_level_as_designed():
    voice = speaker_voice(0, 2)
    rms = {}
    for label in Synthetic.classes:
        waves = [
            synthesize(voice, label, np.random.default_rng([7, i]), 1.5, variation=0.0) for i in range(3)
        ]
        rms[label] = np.mean([20 * np.log10(np.sqrt(np.mean(w**2))) for w in waves])
    assert rms["angry"] > rms["happy"] > rms["neutral"] > rms["sad"]
    assert PROSODY["happy"].f0_shift > PROSODY["neutral"].f0_shift > PROSODY["sad"].f0_shift


# ----------------------------------------------------------------------------- caching
def test_same_parameters_give_identical_bytes(small, tmp_path):
    corpus, _ = small
    other = Synthetic(tmp_path / "again", **SMALL)
    other.scan()
    assert _digests(other.root) == _digests(corpus.root)


def test_second_scan_reuses_the_files(small):
    corpus, first = small
    before = {p: p.stat().st_mtime_ns for p in corpus.root.rglob("*")}
    again = Synthetic(corpus.root, **SMALL)
    assert again.ensure_generated() is False
    result = again.scan()
    assert [u.to_dict() for u in result.utterances] == [u.to_dict() for u in first.utterances]
    assert {p: p.stat().st_mtime_ns for p in corpus.root.rglob("*")} == before


def test_changed_parameters_regenerate(tmp_path):
    root = tmp_path / "corpus"
    Synthetic(root, n_speakers=2, n_per_class=1).scan()
    first = _digests(root)
    result = Synthetic(root, n_speakers=2, n_per_class=1, seed=1).scan()
    second = _digests(root)
    assert len(result.utterances) == 8
    assert set(first) == set(second)
    assert all(first[k] != second[k] for k in first)  # every file (and the marker) changed
    assert json.loads((root / MARKER).read_text())["params"]["seed"] == 1
    result = Synthetic(root, n_speakers=3, n_per_class=2, seed=1).scan()
    assert len(result.utterances) == 3 * 4 * 2
    # the outdated corpus and the temporary folder are gone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus"]


def test_missing_file_regenerates(tmp_path):
    root = tmp_path / "corpus"
    Synthetic(root, n_speakers=2, n_per_class=1).scan()
    (root / "spk02" / "spk02_sad_001.wav").unlink()
    corpus = Synthetic(root, n_speakers=2, n_per_class=1)
    assert corpus.is_generated() is False
    assert len(corpus.scan().utterances) == 8


def test_interrupted_generation_leaves_nothing_trusted(tmp_path, monkeypatch):
    root = tmp_path / "corpus"
    real = synthetic_module.synthesize
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) > 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(synthetic_module, "synthesize", failing)
    with pytest.raises(KeyboardInterrupt):
        Synthetic(root, n_speakers=2, n_per_class=2).scan()
    assert list(tmp_path.iterdir()) == []  # no root, no half-written folder
    # a stale half-written folder from a killed process is cleaned up by the next generation
    stale = tmp_path / ".corpus.partial-dead"
    (stale / "spk01").mkdir(parents=True)
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    monkeypatch.setattr(synthetic_module, "synthesize", real)
    assert len(Synthetic(root, n_speakers=2, n_per_class=2).scan().utterances) == 16
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus"]


# ----------------------------------------------------------------------------- bad input
def test_bad_file_names_are_skipped_not_fatal(small, tmp_path):
    corpus, _ = small
    root = tmp_path / "corpus"
    shutil.copytree(corpus.root, root)
    good = root / "spk01" / "spk01_happy_001.wav"
    shutil.copy(good, root / "spk01" / "notes.wav")
    shutil.copy(good, root / "spk01" / "spk01_bored_001.wav")
    shutil.copy(good, root / "spk02" / "spk01_happy_009.wav")
    shutil.copy(good, root / "stray_happy_001.wav")
    result = Synthetic(root, **SMALL).scan()
    assert len(result.utterances) == N_SMALL
    reasons = {os.path.basename(s.path): s.reason for s in result.skipped}
    assert set(reasons) == {"notes.wav", "spk01_bored_001.wav", "spk01_happy_009.wav", "stray_happy_001.wav"}
    assert "spkNN_<class>_NNN" in reasons["notes.wav"]
    assert "bored" in reasons["spk01_bored_001.wav"]
    assert "spk02" in reasons["spk01_happy_009.wav"]
    assert (root / "spk01" / "notes.wav").exists()  # the corpus was reused, not regenerated


def test_foreign_folder_is_refused_and_left_untouched(tmp_path):
    root = tmp_path / "my_recordings"
    root.mkdir()
    (root / "take1.wav").write_bytes(b"RIFF not really")
    (root / "notes.txt").write_text("keep me")
    before = _digests(root)
    with pytest.raises(CorpusError, match=re.escape(str(root))):
        Synthetic(root, **SMALL).scan()
    assert _digests(root) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my_recordings"]

    (root / MARKER).write_text(json.dumps({"generator": "someone.else"}))
    with pytest.raises(CorpusError, match=re.escape(str(root))):
        Synthetic(root, **SMALL).scan()
    (root / MARKER).write_text("{ truncated")
    with pytest.raises(CorpusError, match=MARKER):
        Synthetic(root, **SMALL).scan()
    assert (root / "notes.txt").read_text() == "keep me"

    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    with pytest.raises(CorpusError, match=re.escape(str(a_file))):
        Synthetic(a_file, **SMALL).scan()
    assert a_file.read_text() == "x"


def test_empty_folder_is_used(tmp_path):
    root = tmp_path / "empty"
    root.mkdir()
    assert len(Synthetic(root, n_speakers=1, n_per_class=1).scan().utterances) == 4


def test_options_are_checked():
    with pytest.raises(TypeError, match="unknown options"):
        Synthetic("x", speakers=3)
    for bad in (
        {"n_speakers": 0},
        {"n_speakers": 100},
        {"n_per_class": 0},
        {"seed": -1},
        {"duration": (2.0, 1.0)},
        {"duration": 0.1},
        {"duration": "long"},
        {"variation": -1.0},
    ):
        with pytest.raises(ValueError):
            Synthetic("x", **bad)
    corpus = Synthetic("x", duration="1.0,1.5", variation=0)
    assert corpus.options["duration"] == [1.0, 1.5] and corpus.options["variation"] == 0.0
    assert json.loads(json.dumps(corpus.describe()))["options"]["n_speakers"] == 8


def test_registry_default_root_and_folds(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOHRNET_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("EMOHRNET_SYNTHETIC_ROOT", raising=False)
    assert Synthetic.default_root() == paths.corpora_dir() / "synthetic"
    corpus = get_corpus("synthetic", n_speakers=2, n_per_class=1)
    assert isinstance(corpus, Synthetic) and corpus.root == tmp_path / "home" / "corpora" / "synthetic"
    assert len(corpus.scan().utterances) == 8
    assert (corpus.root / MARKER).is_file()
    groups = Synthetic("x").fold_groups([f"spk{i:02d}" for i in range(1, 9)])
    assert groups == [["spk01", "spk02"], ["spk03", "spk04"], ["spk05", "spk06"], ["spk07", "spk08"]]


# ----------------------------------------------------------------------------- learnability
def test_learnable_across_speakers_but_not_trivially(tmp_path):
    """Logistic regression on utterance-level log-mel statistics, trained on speakers 1-4 and
    tested on speakers 5-8 of a corpus of the default difficulty, is clearly above chance (0.25)
    but not perfect."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    result = Synthetic(tmp_path / "corpus", n_per_class=6).scan()
    mel = torchaudio.transforms.MelSpectrogram(SAMPLE_RATE, n_fft=400, hop_length=160, n_mels=64)
    features, labels, train = [], [], []
    for u in result.utterances:
        spec = torch.log(mel(load_audio(u.path)) + 1e-6)
        features.append(torch.cat([spec.mean(dim=1), spec.std(dim=1)]).numpy())
        labels.append(Synthetic.classes.index(u.label))
        train.append(u.speaker in ("spk01", "spk02", "spk03", "spk04"))
    x, y, train = np.stack(features), np.array(labels), np.array(train)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x[train], y[train])
    ua = balanced_accuracy_score(y[~train], model.predict(x[~train]))
    assert 0.45 < ua < 1.0, ua
