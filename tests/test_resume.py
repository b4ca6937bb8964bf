"""An interrupted search (Ctrl+C on the driver) continues with ``--resume``: finished trials are
not run again and the Optuna study keeps its history."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest

TINY = ["--epochs", "1", "--workers", "1", "--widths", "4,6", "--stem-channels", "8", "--blocks", "1",
        "--modules", "1,1,1,1", "--n-mels", "32", "--segment-seconds", "1.0", "--max-concurrent", "1",
        "--corpus-option", "n_speakers=6", "--corpus-option", "n_per_class=4"]


def _search(args, env, log):
    return subprocess.Popen([sys.executable, "-m", "tune.search", *args], env=env, stdout=log,
                            stderr=subprocess.STDOUT)


def _finished_trials(exp_dir):
    done = []
    for result in exp_dir.glob("trial_*/result.json"):
        lines = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
        if lines and lines[-1].get("done"):
            done.append((result.parent.name, len(lines)))
    return done


@pytest.mark.ray
def test_interrupted_search_resumes(tmp_path):
    env = {**os.environ, "EMOHRNET_HOME": str(tmp_path / "home"), "PYTHONUNBUFFERED": "1"}
    exp_dir = tmp_path / "exp" / "resumable"
    common = ["--storage-path", str(tmp_path / "exp"), "--name", "resumable"]
    with open(tmp_path / "first.log", "w") as log:
        first = _search(["--num-samples", "3", *TINY, *common], env, log)
        deadline = time.time() + 420
        while time.time() < deadline and not _finished_trials(exp_dir) and first.poll() is None:
            time.sleep(0.5)
        finished_before = _finished_trials(exp_dir)
        first.send_signal(signal.SIGINT)
        first.wait(timeout=180)
    assert finished_before, (tmp_path / "first.log").read_text()[-3000:]
    assert first.returncode != 0  # interrupted, not a finished search
    assert not (exp_dir / "best.json").exists()

    with open(tmp_path / "second.log", "w") as log:
        second = _search(["--resume", *common], env, log)
        assert second.wait(timeout=600) == 0, (tmp_path / "second.log").read_text()[-3000:]
    summary = json.loads((exp_dir / "best.json").read_text())
    assert len(summary["trials"]) == 3
    after = dict(_finished_trials(exp_dir))
    for name, iterations in finished_before:
        assert after[name] == iterations == 1  # not run again
    study = optuna.load_study(study_name="resumable", storage=f"sqlite:///{exp_dir / 'optuna.db'}")
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 3
    assert complete[0].params["lr"] == pytest.approx(1e-3)  # the baseline trial, kept from the first run
