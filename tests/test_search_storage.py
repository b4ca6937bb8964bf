"""Where a search writes and what a resume reads, checked before the experiment folder is made and
before Ray starts (one line, exit 2), and a write that fails for want of space later on (one line,
exit 1, nothing removed). No Ray: a probe that gets past the checks fails the test at once (the shard
build, the first step after them, is replaced).

Before: a bad --study-storage failed after Ray had started (17-29 s) with a traceback, leaving an
experiment folder that blocked the name; a resume with a damaged optuna.db trained for a while and then
failed with SQLite tracebacks that never named the file; with a trial folder deleted it went on and lost
that trial's results; an unwritable EMOHRNET_HOME or a full disk ended in OSError, LibsndfileError
("System error.") or three chained ENOSPC tracebacks."""

from __future__ import annotations

import errno
import json
import pathlib
from pathlib import Path

import optuna
import pytest
import ray
from fixtures import TINY_SEARCH

from emohrnet.corpora.synthetic import write_wav
from emohrnet.io.location import Location
from emohrnet.shards import build_shards
from tune import search


class PastTheChecks(Exception):
    """Raised by the stand-in shard build: the search got past its checks."""


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An ``EMOHRNET_HOME`` that does not exist yet; the shard build (the first step after the checks)
    raises :class:`PastTheChecks`."""
    folder = tmp_path / "home"
    monkeypatch.setenv("EMOHRNET_HOME", str(folder))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)

    def past(*args, **kwargs):
        raise PastTheChecks

    monkeypatch.setattr(search, "build_shards", past)
    return folder


def _refused(argv: list[str], capsys) -> str:
    """Run the search command line; assert it is refused with one line, exit 2, before Ray; return the line."""
    assert search.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err
    assert not ray.is_initialized()
    return err


def test_a_study_storage_the_search_cannot_use_is_refused_before_the_experiment_folder(home, tmp_path, capsys):
    junk = tmp_path / "junk.db"
    junk.write_text("not a database\n")
    probes = [
        ("foo://bar", "--study-storage foo://bar: SQLAlchemy knows no database kind 'foo'"),
        ("not a url", "--study-storage 'not a url': not a database URL"),
        (f"sqlite:///{tmp_path}/nowhere/optuna.db", f"--study-storage sqlite:///{tmp_path}/nowhere/optuna.db: the "
         f"folder {tmp_path}/nowhere does not exist; make it first"),
        (f"sqlite:///{junk}", f"{junk} is not a usable study database (SQLite: file is not a database)"),
        ("postgresql+psycopg2://nobody@127.0.0.1:1/optuna", "--study-storage postgresql+psycopg2://nobody@127.0.0.1:1/"
         "optuna: cannot connect (connection to server at \"127.0.0.1\", port 1 failed: Connection refused"),
    ]
    for url, message in probes:
        assert message in _refused([*TINY_SEARCH, "--study-storage", url, "--name", "s"], capsys)
    assert not home.exists()  # no experiment folder, nothing built
    # a SQLite file that does not exist yet in an existing folder is fine: the search makes it
    with pytest.raises(PastTheChecks):
        search.run_search(search.parse_args([*TINY_SEARCH, "--study-storage", f"sqlite:///{tmp_path}/new.db"]))
    assert not (tmp_path / "new.db").exists()


def test_an_unwritable_home_or_storage_path_is_refused(home, tmp_path, capsys, monkeypatch):
    """Tests run as root, where a folder's mode does not stop writes: a file stands where the folder goes."""
    blocker = tmp_path / "a_file"
    blocker.write_text("mine\n")
    for argv, env, message in [
        ([], str(blocker), f"EMOHRNET_HOME {blocker}: cannot write there: {blocker} is a file; set EMOHRNET_HOME "
         "to a writable folder"),
        ([], str(blocker / "runs"), f"EMOHRNET_HOME {blocker / 'runs'}: cannot write there: {blocker} is a file"),
        (["--storage-path", str(blocker / "exp")], str(home), f"--storage-path {blocker / 'exp'}: cannot write "
         f"there: {blocker} is a file; choose a writable --storage-path"),
    ]:
        monkeypatch.setenv("EMOHRNET_HOME", env)
        assert message in _refused([*TINY_SEARCH, *argv], capsys)
    assert blocker.read_text() == "mine\n"


# --------------------------------------------------------------------------- --resume
def _resumable(storage: Path, name: str = "r") -> Path:
    """An experiment as a search leaves it for --resume, without Ray: signed config.json and Ray Tune
    state (experiment_state-*.json naming two finished trials and one not started), the finished trials'
    folders, and a real Optuna study in optuna.db."""
    from tune.experiment import Experiment
    from tune.options import config_from_args
    from tune.state import Signatures

    exp = storage / name
    exp.mkdir(parents=True)
    signatures = Signatures(Location(exp))
    config = config_from_args(search.parse_args(list(TINY_SEARCH)))
    signatures.add("config.json", Experiment(exp).write_config(config).encode())
    study = optuna.create_study(study_name=name, storage=f"sqlite:///{exp / 'optuna.db'}", direction="maximize")
    study.optimize(lambda t: t.suggest_float("lr", 1e-4, 3e-3) + t.suggest_int("width", 4, 6), n_trials=8)
    trials = []
    for trial_id, status in (("aaaa0001", "TERMINATED"), ("aaaa0002", "TERMINATED"), ("aaaa0003", "PENDING")):
        if status == "TERMINATED":  # a trial that had not started has no folder yet
            (exp / f"trial_{trial_id}").mkdir()
        trial = {"trial_id": trial_id, "relative_logdir": f"trial_{trial_id}", "status": status}
        trials.append([json.dumps(trial), json.dumps({"last_result": {}})])
    state = "experiment_state-2026-01-01_00-00-00.json"
    (exp / state).write_text(json.dumps({"trial_data": trials, "runner_data": {}, "stats": {}}))
    signatures.sign_file(state)
    signatures.save()
    return exp


def test_a_resume_with_a_damaged_study_or_a_lost_trial_folder_is_refused_before_ray(home, tmp_path, capsys):
    storage = tmp_path / "exps"
    exp = _resumable(storage)
    resume = ["--resume", "--name", "r", "--storage-path", str(storage)]
    with pytest.raises(PastTheChecks):  # intact: the checks let it through
        search.run_search(search.parse_args(resume))
    db = exp / "optuna.db"
    good = db.read_bytes()
    fix = ("--resume needs it: put back a good copy of it (from a backup), or start a new search with another --name "
           f"({exp} stays as it is)")
    damage = {
        "truncated": (lambda: db.write_bytes(good[: len(good) // 2]),
                      "damaged (SQLite: database disk image is malformed)"),
        "emptied": (lambda: db.write_bytes(b""), "damaged (the file is empty)"),
        "overwritten": (lambda: db.write_text("notes\n" * 100), "damaged (SQLite: file is not a database)"),
        "another study's": (lambda: db.write_bytes(_other_study(tmp_path)), "damaged (it holds no study named 'r')"),
        "deleted": (db.unlink, "gone"),
    }
    for what, (spoil, reason) in damage.items():
        spoil()
        err = _refused(resume, capsys)
        assert err == f"error: {db}: the Optuna study of this search is {reason}; {fix}\n", (what, err)
        db.write_bytes(good)
    (exp / "trial_aaaa0002").rmdir()
    err = _refused(resume, capsys)
    assert err == (f"error: {exp / 'trial_aaaa0002'}: the folder of a finished trial recorded in "
                   "experiment_state-2026-01-01_00-00-00.json is gone (1 of 2 finished trials' folders missing); "
                   f"--resume needs them: put them back (from a copy of {exp}), or start a new search with another "
                   "--name\n")
    assert db.read_bytes() == good


def _other_study(folder: Path) -> bytes:
    path = folder / "other.db"
    optuna.create_study(study_name="someone-else", storage=f"sqlite:///{path}")
    return path.read_bytes()


# --------------------------------------------------------------------------- a full disk
def test_a_wav_that_cannot_be_written_raises_an_os_error_naming_it(tmp_path):
    """libsndfile writing the file itself raised LibsndfileError('System error.'), naming no reason."""
    (tmp_path / "spk01").write_text("a file where the speaker's folder goes\n")
    target = tmp_path / "spk01" / "spk01_happy_001.wav"
    with pytest.raises(NotADirectoryError) as err:
        write_wav(target, [0.0] * 1600)
    assert err.value.filename == str(target)


def test_a_full_disk_while_the_corpus_is_written_is_one_line(home, tmp_path, capsys, monkeypatch):
    home.mkdir()
    (home / "notes.txt").write_text("mine\n")

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")  # what a failed write() raises: no file name

    monkeypatch.setattr(pathlib.Path, "write_bytes", full)
    monkeypatch.setattr(search, "build_shards", build_shards)  # the real one
    assert search.main([*TINY_SEARCH, "--name", "full", "--build-workers", "1"]) == 1
    err = capsys.readouterr().err
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"error: {home}: no space left on device (writing {home}/corpora/.synthetic.partial-")
    assert line.endswith(".wav); free space there, then run the search again"), line
    assert "Traceback" not in err and not ray.is_initialized()
    assert (home / "notes.txt").read_text() == "mine\n" and not any((home / "corpora").iterdir())


def test_a_full_disk_once_ray_tune_saved_its_state_says_resume(home, tmp_path, capsys, monkeypatch):
    """What a search on a full disk ended with: Ray's output to search.log failed with ENOSPC, and so did
    everything while it handled that (three chained tracebacks). Ray is replaced by a stand-in that
    writes Ray Tune's state file, as Tuner() does, and then fails so."""
    monkeypatch.setattr(search, "build_shards", build_shards)  # the real one
    opts = ["--corpus-option", "n_speakers=4", "--corpus-option", "n_per_class=3", "--n-mels", "16",
            "--build-workers", "1"]

    def ray_on_a_full_disk(run, log, quiet):
        (run.exp_dir / search.TUNER_STATE).write_bytes(b"ray tune's state")
        try:
            try:
                raise OSError(errno.ENOSPC, "No space left on device")
            except OSError:
                raise OSError(errno.ENOSPC, "No space left on device") from None
        except OSError as err:
            raise RuntimeError("Tune run failed") from err

    monkeypatch.setattr(search, "_run", ray_on_a_full_disk)
    storage = tmp_path / "exps"
    assert search.main([*TINY_SEARCH, *opts, "--name", "full", "--storage-path", str(storage)]) == 1
    err = capsys.readouterr().err
    exp = storage / "full"
    assert err.strip().splitlines()[-1] == (
        f"error: {exp}: no space left on device; free space there, then continue with: python -m tune.search "
        f"--resume --name full --storage-path {storage}")
    assert "Traceback" not in err
    assert sorted(p.name for p in exp.iterdir()) == ["config.json", "search.log", "state-signatures.json",
                                                      "tuner.pkl"]
