"""What a shard build does not hide: a file it could not read (an I/O error, apart from bad audio)
is named with its error and retried by the next build once readable; a class without utterances is
warned about in the build's log, its manifest and the search's summary; and its feature workers do
not outlive a build killed hard."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import psutil
import pytest
import soundfile as sf

import emohrnet.io.audio
from emohrnet.frontend import FeatureConfig
from emohrnet.io.location import Location
from emohrnet.shards import build_shards
from emohrnet.shards.manifest import data_warnings

FEATURES = FeatureConfig(n_mels=32)


def _build(root, out, logs=None, **kw):
    return build_shards("ravdess", root, out, features=FEATURES, progress=False,
                        log=(logs.append if logs is not None else lambda *a: None), **kw)


@pytest.fixture
def unreadable(monkeypatch):
    """Paths that behave as files the build may not read (as root, chmod 000 does not stop reads):
    libsndfile fails on them with its "System error" and opening them raises EACCES, as for a file
    without read permission. Add a path to make it unreadable, remove it to make it readable."""
    paths: set[str] = set()
    real_read, real_check = sf.read, emohrnet.io.audio.check_readable

    def read(file, *args, **kwargs):
        if str(file) in paths:
            raise sf.LibsndfileError(2, prefix=f"Error opening {str(file)!r}: ")
        return real_read(file, *args, **kwargs)

    def check(path):
        if str(path) in paths:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_check(path)

    monkeypatch.setattr(emohrnet.io.audio.sf, "read", read)
    monkeypatch.setattr(emohrnet.io.audio, "check_readable", check)
    return paths


def test_an_unreadable_file_is_named_with_its_error_and_retried_once_readable(tree, tmp_path, unreadable):
    locked = str((tree / "Actor_01" / "03-01-03-01-01-01-01.wav").resolve())
    corrupt = tree / "Actor_02" / "03-01-05-01-01-01-02.wav"
    corrupt.write_bytes(b"RIFF not really a wave file")
    unreadable.add(locked)
    with pytest.raises(PermissionError, match="Permission denied"):
        emohrnet.io.audio.load_audio(locked)  # not "is it a real WAV/FLAC file?"

    logs: list[str] = []
    first = _build(tree, tmp_path / "shards", logs)
    skipped = {Path(s["path"]).name: s for s in first.manifest.skipped}
    assert skipped[Path(locked).name]["io_error"] is True
    assert "cannot read the file (Permission denied): an I/O error" in skipped[Path(locked).name]["reason"]
    assert skipped[corrupt.name]["io_error"] is False and "cannot decode" in skipped[corrupt.name]["reason"]
    assert any(line.startswith(f"skipped {locked}: cannot read the file (Permission denied)") for line in logs)
    assert first.manifest.num_utterances == 7

    logs.clear()  # still unreadable: reused, and the log says what stays out
    again = _build(tree, tmp_path / "shards", logs)
    assert again.reused
    assert any("1 files are still left out because they cannot be read" in line and locked in line for line in logs)

    unreadable.clear()  # made readable (chmod): the same inputs and parameters, but not reused
    logs.clear()
    fixed = _build(tree, tmp_path / "shards", logs)
    assert not fixed.reused
    assert any("could not read (I/O errors) are readable now" in line for line in logs), logs
    assert fixed.manifest.num_utterances == 8
    assert [s["path"] for s in fixed.manifest.skipped] == [str(corrupt.resolve())]  # bad audio stays out
    assert _build(tree, tmp_path / "shards").reused  # and the next one reuses it again


def test_a_class_without_utterances_is_warned_about(tree, tmp_path):
    logs: list[str] = []
    manifest = _build(tree, tmp_path / "shards", logs).manifest
    empty = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
    empty = [c for c in empty if c not in ("neutral", "happy", "angry")]
    assert manifest.empty_classes() == empty
    assert len(manifest.warnings) == 5 and manifest.warnings == data_warnings([manifest, manifest])
    assert "class 'calm' has no utterances in the ravdess shards" in manifest.warnings[0]
    assert "UA averages over the other 3 classes only" in manifest.warnings[0]
    assert [line for line in logs if line.startswith("warning: ")] == [f"warning: {w}" for w in manifest.warnings]
    logs.clear()
    assert _build(tree, tmp_path / "shards", logs).reused and f"warning: {manifest.warnings[0]}" in logs


def test_the_search_summary_warns_about_a_class_without_utterances(tree, tmp_path, monkeypatch):
    """:func:`tune.summary.summarize` (best.json) and :func:`tune.summary.format_summary` (the printed
    text), on one finished trial of a search on these shards."""
    import torch

    from tune import summary as summary_module
    from tune.options import config_from_args, parse_args
    from tune.summary import format_summary, summarize

    # the chosen trial's test scoring (a Ray task on a checkpoint) is not what this test is about
    canned = {"ua": 0.4, "wa": 0.4, "loss": 1.0, "n": 8, "confusion": torch.eye(2, dtype=torch.long)}
    monkeypatch.setattr(summary_module, "score_on_trial_resources", lambda *a, **k: canned)

    built = _build(tree, tmp_path / "shards")
    config = config_from_args(parse_args(["--dataset", "ravdess", "--data-root", str(tree), "--epochs", "1"]))
    metrics = {"trial_id": "t1", "epoch": 1, "best_epoch": 1, "val_ua": 0.5, "val_loss": 1.0, "val_wa": 0.5,
               "training_iteration": 1, "done": True}
    result = SimpleNamespace(metrics_dataframe=pd.DataFrame([metrics]), config={"lr": 1e-3}, error=None,
                             metrics={**metrics, "test_ua": 0.4, "test_wa": 0.4}, path=str(tmp_path / "t1"))
    shard_dirs, manifests = {"emohrnet": str(built.shard_dir)}, {"emohrnet": built.manifest}
    summary = summarize([result], config, Location(tmp_path / "exp"), [], [], shard_dirs, manifests)
    assert summary.warnings == built.manifest.warnings
    text = format_summary(summary)
    assert f"warning: {built.manifest.warnings[0]}" in text.splitlines()


BUILD = textwrap.dedent("""
    import sys, time
    import emohrnet.io.orphans
    import emohrnet.shards.build as build
    from emohrnet.frontend import FeatureConfig

    if sys.argv[3] == "watchdog":  # no PR_SET_PDEATHSIG (prctl option 0 is refused): the fallback alone
        emohrnet.io.orphans._PR_SET_PDEATHSIG = 0

    real = build._features

    def slow(item):  # a build that takes a while, so that it is killed while its pool works
        time.sleep(0.5)
        return real(item)

    build._features = slow
    build.build_shards("ravdess", sys.argv[1], sys.argv[2], workers=2, features=FeatureConfig(n_mels=32),
                       progress=False)
""")


@pytest.mark.parametrize("guard", ["prctl", "watchdog"])
def test_build_workers_exit_when_the_build_is_killed_hard(tree, tmp_path, guard):
    repo = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")])}
    build = subprocess.Popen([sys.executable, "-c", BUILD, str(tree), str(tmp_path / "shards"), guard], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    workers: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 60
        while len(workers) < 2 and time.monotonic() < deadline and build.poll() is None:
            time.sleep(0.1)
            workers = psutil.Process(build.pid).children()
        assert len(workers) == 2, build.stderr.read().decode() if build.poll() is not None else workers
        time.sleep(1.0)  # the pool is computing features
        assert all(w.is_running() for w in workers) and build.poll() is None
        os.kill(build.pid, signal.SIGKILL)
        build.wait()
        left = _running(workers, 5.0)
        assert not left, f"feature workers outlived the killed build: {left}"
    finally:
        for w in workers:  # a failed test leaves no process behind
            try:
                w.kill()
            except psutil.Error:
                pass
        if build.poll() is None:
            build.kill()


def _running(procs: list[psutil.Process], wait_s: float) -> list[int]:
    """The pids of ``procs`` still running after up to ``wait_s`` seconds (an unreaped zombie has ended)."""
    from emohrnet.io.orphans import still_running

    return [p.pid for p in still_running(procs, wait_s)]
