"""A search killed outright (SIGKILL: no chance to save anything) continues with ``--resume``:
finished trials are not run again and the Optuna study keeps its history; and the state files are
signed before Ray copies them into the experiment folder. (SIGTERM, which stops a search as Ctrl+C
does, and a resume from a bucket: test_object_store.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest

TRIALS = 2
TINY = ["--epochs", "1", "--workers", "1", "--widths", "4,6", "--stem-channels", "8", "--blocks", "1",
        "--modules", "1,1,1,1", "--n-mels", "32", "--segment-seconds", "1.0", "--max-concurrent", "1",
        "--corpus-option", "n_speakers=6", "--corpus-option", "n_per_class=4", "--fold", "1"]


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


def _stop_after(proc, exp_dir, n_finished, sig, deadline_s=420):
    """Wait until ``n_finished`` trials are done, then signal. Before a SIGKILL (no last save) also
    wait until Tune has saved its experiment state since they finished."""
    deadline = time.time() + deadline_s
    while time.time() < deadline and proc.poll() is None:
        done = _finished_trials(exp_dir)
        if len(done) >= n_finished and (sig != signal.SIGKILL or _state_saved_after(exp_dir, done)):
            break
        time.sleep(0.5)
    finished = _finished_trials(exp_dir)
    proc.send_signal(sig)
    proc.wait(timeout=180)
    return finished


def _state_saved_after(exp_dir, done):
    """The experiment state in the experiment folder already records the finished trials as
    terminated: a kill right after it is the hard case (the search signs each version inside Ray's
    save, before Ray copies it here). Read from the state itself: Ray copies the state and the
    trials' result files in one sync, in no fixed order, so their modification times say nothing."""
    terminated = set()
    for state in exp_dir.glob("experiment_state-*.json"):
        try:  # a sync may be writing it right now
            trials = [json.loads(row[0]) for row in json.loads(state.read_text())["trial_data"]]
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            return False
        terminated |= {t.get("trial_id") for t in trials if t.get("status") == "TERMINATED"}
    return {name.removeprefix("trial_") for name, _ in done} <= terminated


@pytest.mark.ray
def test_killed_search_resumes(tmp_path, monkeypatch, ray_address):
    """A search on a cluster (the session's, conftest.py) killed outright right after Tune saved its
    state following a finished trial (the hard case: the state was signed inside that save); the
    cluster ends the dead driver's trials. A resume, in this process, finishes the search on the
    same cluster (``--resume --address``)."""
    import ray

    from tune.search import parse_args, run_search

    # Tune saves its experiment state every second here (default: adaptive, tens of seconds), so
    # the hard kill can come soon after a trial finishes
    env = {**os.environ, "EMOHRNET_HOME": str(tmp_path / "home"), "PYTHONUNBUFFERED": "1",
           "TUNE_GLOBAL_CHECKPOINT_S": "1"}
    exp_dir = tmp_path / "exp" / "resumable"
    common = ["--storage-path", str(tmp_path / "exp"), "--name", "resumable"]
    with open(tmp_path / "first.log", "w") as log:
        first = _search(["--num-samples", str(TRIALS), *TINY, *common, "--address", ray_address], env, log)
        finished_first = _stop_after(first, exp_dir, 1, signal.SIGKILL)
    assert first.returncode == -signal.SIGKILL
    assert finished_first, (tmp_path / "first.log").read_text()[-3000:]
    assert not (exp_dir / "best.json").exists()

    monkeypatch.setenv("EMOHRNET_HOME", env["EMOHRNET_HOME"])  # where the first run's signing key is
    try:
        returned = run_search(parse_args(["--resume", *common, "--address", ray_address]), log=lambda *a: None)
    finally:
        ray.shutdown()
    summary = json.loads((exp_dir / "best.json").read_text())
    assert summary["best_trial"] == returned.best_trial
    assert len(summary["trials"]) == TRIALS
    assert summary["fold"] == 1
    assert summary["split"].startswith("speaker-independent fold 1: test speakers spk03,spk04;")
    after = dict(_finished_trials(exp_dir))
    for name, iterations in finished_first:
        assert after[name] == iterations == 1  # not run again
    study = optuna.load_study(study_name="resumable", storage=f"sqlite:///{exp_dir / 'optuna.db'}")
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == TRIALS
    assert complete[0].params["lr"] == pytest.approx(1e-3)  # the baseline trial, kept from the first run


@pytest.mark.ray
def test_state_is_signed_before_ray_copies_it_into_the_experiment(tmp_path, monkeypatch, ray_address):
    """Ray writes its state into a local staging folder, then copies it into the experiment folder.
    A kill can come right after the copy, so each version must be signed before it (the signer runs
    inside Ray's save), not some time after: checked at every save, just before the copy. A resume's
    staging folder starts with copies of our own files: ASHA's stops recorded after the resume survive."""
    import ray
    from ray import tune

    from emohrnet.io.location import Location
    from tune.files import ASHA_STOPS
    from tune.state import Signatures, make_signer, staging_folders, verify_experiment

    monkeypatch.setenv("EMOHRNET_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TUNE_GLOBAL_CHECKPOINT_S", "0")  # save at every step
    exp = Location(tmp_path / "exp" / "signed")
    signatures = Signatures(exp)
    checks = tmp_path / "checks.jsonl"

    class BeforeCopy(tune.Callback):  # Ray calls it after the signer, inside the same save
        def get_state(self):  # (a resumed Tuner runs a copy of it: it reports through a file)
            signed = Signatures(exp)  # the signatures saved so far
            with open(checks, "a") as out:
                for folder in staging_folders("signed"):
                    out.write(json.dumps(signed.unsigned(folder)) + "\n")
            if (tmp_path / "fixed").exists():  # the resumed run: ASHA records a stop in the experiment folder
                (exp / ASHA_STOPS).write_text(json.dumps({"before": 2, "after": 3}))

    def trainable(config):
        for step in range(3):
            tune.report({"score": config["x"] * step})
        if config["x"] == 2 and not (tmp_path / "fixed").exists():
            raise RuntimeError("fails until resumed")

    ray.init(address=ray_address)  # the session's cluster (conftest.py)
    try:
        tuner = tune.Tuner(trainable, param_space={"x": tune.grid_search([1, 2])},
                           tune_config=tune.TuneConfig(trial_dirname_creator=lambda trial: f"trial_{trial.trial_id}"),
                           run_config=tune.RunConfig(name="signed", storage_path=str(tmp_path / "exp"),
                                                     callbacks=[make_signer(signatures), BeforeCopy()]))
        signatures.sign_file("tuner.pkl")
        tuner.fit()
        first = len(checks.read_text().splitlines())
        (exp / ASHA_STOPS).write_text(json.dumps({"before": 2}))  # a stop recorded before the interruption
        (tmp_path / "fixed").touch()
        time.sleep(1.0)  # a new session's state files are named by the second
        # a resume: Ray starts its staging folder as a copy of the experiment folder, signatures included
        signatures = verify_experiment(exp)
        restored = tune.Tuner.restore(exp.uri, trainable=trainable, resume_errored=True)
        restored._local_tuner.get_run_config().callbacks = [make_signer(signatures), BeforeCopy()]
        restored.fit()
    finally:
        ray.shutdown()
    # Ray's staging folder started with a copy of the record; uploading it would have dropped the new stop
    assert json.loads((exp / ASHA_STOPS).read_text()) == {"before": 2, "after": 3}
    checked = [json.loads(line) for line in checks.read_text().splitlines()]
    assert first >= 5 and len(checked) > first and all(files == [] for files in checked), checked
    signatures = verify_experiment(exp)
    assert len([name for name in signatures.files if name.startswith("experiment_state-")]) == 2
    assert any(name.startswith("trial_") and name.endswith("params.pkl") for name in signatures.files)


def test_a_trial_that_ran_its_epochs_before_the_interruption_counts_as_finished():
    """Ray's saved state of a trial that ended on its own before a search was interrupted has no ``done``
    (RAVDESS search-gain run, issue 23: a resumed search with all 16 trials ended raised SearchInterrupted,
    "1 of 16 trials unfinished"); one stopped mid-way is unfinished."""
    from tune.search import trial_finished

    assert trial_finished({"done": False, "epoch": 15, "epochs": 15, "training_iteration": 15})
    assert trial_finished({"done": True, "epoch": 10, "epochs": 30})  # ASHA's stop
    assert not trial_finished({"done": False, "epoch": 10, "epochs": 15})
    assert not trial_finished({})  # no result at all
