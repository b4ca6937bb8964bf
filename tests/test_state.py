"""The signing key and the experiment lock of :mod:`tune.state`, without Ray."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from emohrnet.io.location import Location
from tune.state import ExperimentBusy, ExperimentLock, Signatures, UntrustedState, state_key, verify_experiment


def test_the_key_is_private_and_a_shared_one_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOHRNET_HOME", str(tmp_path))
    key = state_key()
    assert len(key) == 32 and (tmp_path / "state.key").stat().st_mode & 0o777 == 0o600
    assert state_key() == key  # made once
    os.chmod(tmp_path / "state.key", 0o644)
    with pytest.raises(UntrustedState, match="readable or writable by others .*chmod 600"):
        state_key()


def test_signatures_hold_any_recent_version_and_no_other(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOHRNET_HOME", str(tmp_path / "home"))
    exp = Location(tmp_path / "exp")
    (tmp_path / "exp" / "trial_1").mkdir(parents=True)
    state = tmp_path / "exp" / "experiment_state-1.json"
    signatures = Signatures(exp)
    for version in (b"{}", b'{"v": 2}'):  # Ray rewrites its state; a kill may leave either version
        state.write_bytes(version)
        signatures.add(state.name, version)
    signatures.save()
    (tmp_path / "exp" / "best.json").write_text("{}")  # read as JSON only: needs no signature
    (tmp_path / "exp" / "trial_1" / "progress.csv").write_text("a\n")
    state.write_bytes(b"{}")
    verify_experiment(exp)
    state.write_bytes(b'{"v": 3}')
    with pytest.raises(UntrustedState, match="experiment_state-1.json is not signed"):
        verify_experiment(exp)
    state.write_bytes(b"{}")
    monkeypatch.setenv("EMOHRNET_HOME", str(tmp_path / "other-machine"))
    state_key()
    with pytest.raises(UntrustedState, match="not signed by a search on this machine"):
        verify_experiment(exp)  # another key: nothing verifies


def test_lock_is_exclusive_and_a_dead_holder_is_taken_over(tmp_path):
    exp = Location(tmp_path)
    first = ExperimentLock(exp)
    first.acquire()
    with pytest.raises(ExperimentBusy, match=f"pid {os.getpid()}"):
        ExperimentLock(exp).acquire()
    first.release()
    assert not (tmp_path / "search.lock").exists()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    held = json.loads(ExperimentLock(exp)._content())
    (tmp_path / "search.lock").write_text(json.dumps({**held, "pid": int(gone.stdout)}))
    with ExperimentLock(exp) as lock:  # its holder is gone on this host: taken over
        assert json.loads((tmp_path / "search.lock").read_text())["token"] == lock.token
    assert not (tmp_path / "search.lock").exists()


@pytest.mark.parametrize("relpath, signed", [
    ("tuner.pkl", True), ("searcher-state-2026.pkl", True), ("experiment_state-2026.json", True),
    ("search_gen_state-2026.json", True), ("config.json", True), ("search_args.json", True),
    ("anything-new.json", True),
    ("trial_ab12/params.pkl", True), ("trial_ab12/error.pkl", True),
    ("best.json", False), ("crossfold.json", False), ("state-signatures.json", False), ("optuna.db", False),
    ("trial_ab12/result.json", False), ("trial_ab12/events.out.tfevents.1", False),
    ("crossfold-2026/tuner.pkl", False), ("train_runs/ab12/checkpoint_manager_snapshot.json", False),
    ("trial_ab12/sub/x.pkl", False),
])
def test_which_files_a_resume_trusts_only_signed(relpath, signed):
    """Ray unpickles the experiment's top-level state and a trial's pickles on resume; the rest is
    data (JSON, SQL, weights-only checkpoints) or belongs to another run (tune.evaluate's)."""
    from tune.state import needs_signature

    assert needs_signature(relpath) is signed
