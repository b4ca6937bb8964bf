"""What a search trusts in its experiment folder: signed state files and a lock.

Ray Tune keeps a search's state as pickles (``tuner.pkl``, ``searcher-state-*.pkl``, each trial's
``params.pkl``) and as JSON files that embed pickles (``experiment_state-*.json``,
``search_gen_state-*.json``), and unpickles them on ``--resume``: a file planted in an experiment
folder (a shared bucket, say) would run its code. So every state file the search writes is
signed with HMAC-SHA256 under a key that never leaves this machine (``$EMOHRNET_HOME/state.key``,
mode 0600), and ``--resume`` refuses, before Ray reads anything, a folder where any such file is
unsigned or altered (:func:`verify_experiment`). The signatures are in
``state-signatures.json`` in the experiment folder; they mean nothing without the key.

Trusted without a signature, because nothing in them is code or a resume does not read them:
``best.json``, ``crossfold.json`` and ``asha_stops.json`` are read as JSON only (``config.json`` is too, and is
signed all the same: it names the shards and settings a resume trains with), ``optuna.db`` is an SQL database,
the Ray Train checkpoints load with ``torch.load(weights_only=True)`` and their
``checkpoint_manager_snapshot.json`` is plain JSON, TensorBoard event files are protocol buffers,
and the folders of ``tune.evaluate`` runs are not read by a resume of the search.

A second search on the same experiment is refused while one runs (:class:`ExperimentLock`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import socket
import time
from pathlib import Path
from typing import Any

from emohrnet.io import paths
from emohrnet.io.location import Location

from .files import ASHA_STOPS, CONFIG, CROSSFOLD_JSON, SUMMARY

KEY_FILE = "state.key"
SIGNATURES = "state-signatures.json"
LOCK = "search.lock"
UNSIGNED_JSON = (SUMMARY, CROSSFOLD_JSON, SIGNATURES, ASHA_STOPS)
"""Top-level JSON files of an experiment that no search step unpickles (written by the search,
``tune.evaluate``, the signing itself and ASHA's record of the trials it stopped, read as
``{trial_id: epoch}`` only)."""
WRITTEN_BY_US = (*UNSIGNED_JSON, CONFIG)
"""Top-level JSON files that emohrnet writes into the experiment folder itself while Ray runs. A resume's
staging folder starts as Ray's download of every ``.json`` there; Ray would upload those stale copies
over the current files (ASHA's stops recorded after the resume, a ``config.json`` rewritten by it)."""
_KEEP = 16  # signatures kept per file name: every version Ray may have uploaded since the last sweep


class UntrustedState(ValueError):
    """An experiment folder holds a state file this machine's searches did not write."""


class ExperimentBusy(ValueError):
    """Another search holds the experiment's lock."""


def state_key(create: bool = True) -> bytes:
    """The signing key, ``$EMOHRNET_HOME/state.key`` (32 random bytes, mode 0600), made on first use.

    Raises:
        UntrustedState: the key file can be read or written by others (its mode is not 0600), or is
            missing when ``create`` is false.
    """
    path = paths.home() / KEY_FILE
    if not path.exists():
        if not create:
            raise UntrustedState(f"{path}: no signing key on this machine; a resume must run where the search "
                                 "ran, or with that machine's key copied here (mode 0600)")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return state_key(create=False)  # another search made it a moment ago
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_bytes(32))
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise UntrustedState(f"{path}: the signing key is readable or writable by others (mode {mode:o}); "
                             f"run: chmod 600 {path}")
    return path.read_bytes()


def needs_signature(relpath: str) -> bool:
    """Whether a file of an experiment (path relative to its folder, ``/``-separated) is one Ray may
    unpickle when the search resumes: every top-level ``.pkl`` and ``.json`` but
    :data:`UNSIGNED_JSON`, and each trial folder's ``.pkl`` (``params.pkl``, a failed trial's
    ``error.pkl``). Other folders (a ``tune.evaluate`` run's, the Ray Train runs) are not read on resume."""
    folder, _, name = relpath.rpartition("/")
    if not folder:
        return name.endswith(".pkl") or (name.endswith(".json") and name not in UNSIGNED_JSON)
    return "/" not in folder and folder.startswith("trial_") and name.endswith(".pkl")


def _mac(key: bytes, relpath: str, data: bytes) -> str:
    return hmac.new(key, relpath.encode() + b"\0" + data, hashlib.sha256).hexdigest()


def _state_files(folder: Location) -> list[tuple[str, Location, tuple]]:
    """``(relative path, location, (mtime, size))`` of every file in ``folder`` and its trial folders
    that :func:`needs_signature`; nothing deeper is listed (checkpoints, TensorBoard events)."""
    import pyarrow.fs as pafs

    def listing(path: str) -> list[pafs.FileInfo]:
        return folder.fs.get_file_info(pafs.FileSelector(path, allow_not_found=True, recursive=False))

    entries = listing(folder.path)
    entries += [info for d in entries if d.type == pafs.FileType.Directory and d.base_name.startswith("trial_")
                for info in listing(d.path)]
    found = []
    for info in entries:
        rel = info.path[len(folder.path):].lstrip("/")
        if info.type == pafs.FileType.File and needs_signature(rel):
            found.append((rel, folder.with_path(info.path), (info.mtime_ns, info.size)))
    return sorted(found, key=lambda f: f[0])


class Signatures:
    """The signatures of an experiment's state files (``state-signatures.json``), under this machine's key.

    Args:
        exp_dir: the experiment folder (local or bucket).
        key: the signing key (default :func:`state_key`).
    """

    def __init__(self, exp_dir: Location, key: bytes | None = None) -> None:
        self.exp_dir = exp_dir
        self.key = key if key is not None else state_key()
        self.files: dict[str, list[str]] = {}
        try:
            self.files = json.loads((exp_dir / SIGNATURES).read_text())["files"]
        except (OSError, ValueError, KeyError, TypeError):
            self.files = {}

    def add(self, relpath: str, data: bytes) -> bool:
        """Sign one version of a file; returns whether it was new."""
        mac = _mac(self.key, relpath, data)
        known = self.files.setdefault(relpath, [])
        if mac in known:
            return False
        known.append(mac)
        del known[:-_KEEP]
        return True

    def save(self) -> None:
        """Write ``state-signatures.json`` (atomically)."""
        (self.exp_dir / SIGNATURES).write_text(json.dumps({"version": 1, "files": self.files}, indent=1))

    def sign_file(self, relpath: str) -> None:
        """Sign one file of the experiment folder as it is now, and save: ``tuner.pkl``, which Ray
        writes there directly, right after it was written."""
        self.add(relpath, (self.exp_dir / relpath).read_bytes())
        self.save()

    def sign_folder(self, folder: Location) -> bool:
        """Sign the state files in ``folder`` (a copy of the experiment folder: Ray's staging folder);
        returns whether a new version was signed (not saved)."""
        changed = False
        for rel, loc, _ in _state_files(folder):
            changed |= self.add(rel, loc.read_bytes())
        return changed

    def unsigned(self, folder: Location | None = None) -> list[str]:
        """The state files in ``folder`` (default: the experiment folder; else a copy of it) that match
        none of their signatures, as paths relative to it."""
        return [rel for rel, loc, _ in _state_files(folder or self.exp_dir)
                if _mac(self.key, rel, loc.read_bytes()) not in self.files.get(rel, ())]

    def verify(self) -> None:
        """Check every state file in the experiment folder against its signatures.

        Raises:
            UntrustedState: a file is unsigned or altered; the message names it and says that
                nothing was read.
        """
        bad = self.unsigned()
        if bad:
            names = ", ".join(str(self.exp_dir / rel) for rel in bad[:3]) + (" ..." if len(bad) > 3 else "")
            raise UntrustedState(
                f"refusing to resume: {names} {'is' if len(bad) == 1 else 'are'} not signed by a search on this "
                f"machine (altered, planted, or from another machine's key in {paths.home() / KEY_FILE}); Ray "
                "would unpickle it, so nothing was read. Start a new search, or resume where it was started")


def verify_experiment(exp_dir: Location) -> Signatures:
    """Verify an experiment's state files before a resume (:meth:`Signatures.verify`).

    Raises:
        UntrustedState: see :meth:`Signatures.verify`; also when this machine has no key.
    """
    signatures = Signatures(exp_dir, state_key(create=False))
    signatures.verify()
    return signatures


def staging_folders(exp_name: str) -> list[Location]:
    """Ray's local staging folders for an experiment in this driver's Ray session
    (``<session>/artifacts/<timestamp>/<exp_name>/driver_artifacts``, one per Tuner run): where Ray
    writes its state before copying it to the experiment folder."""
    import ray

    if not ray.is_initialized():
        return []
    from ray.train.constants import _get_ray_train_session_dir

    return [Location(str(p)) for p in sorted(Path(_get_ray_train_session_dir()).glob(f"*/{exp_name}/driver_artifacts"))]


def make_signer(signatures: Signatures, staging=None):
    """A Ray Tune callback that signs the experiment state Ray writes, before Ray copies it to the
    experiment folder, so a search killed at any moment (SIGKILL, a lost machine) can be resumed.

    Ray saves its state into a local staging folder (the trials' state, the searcher's, then each
    callback's :meth:`get_state`) and only then copies the folder to the experiment folder. This
    callback's ``get_state`` signs every state file in the staging folder and saves the signatures
    in the experiment folder, so no version of a state file reaches the experiment folder unsigned.
    A resume's staging folder starts as a download of the experiment folder's JSON files, ours included;
    those copies (:data:`WRITTEN_BY_US`) are deleted, so Ray never uploads stale signatures, ASHA stops or
    settings over the current ones. Nothing is signed from the
    experiment folder itself: a file planted there while the search runs stays unsigned.

    Args:
        signatures: the experiment's signatures.
        staging: returns the staging folders to sign (default: :func:`staging_folders` of the experiment).
    """
    from ray.tune import Callback

    find = staging or (lambda: staging_folders(signatures.exp_dir.name))

    class StateSigner(Callback):
        def __reduce__(self):
            # Ray pickles the run config, callbacks included, into tuner.pkl: store a no-op
            # callback there, never this one's state (the signing key, the console)
            return (Callback, ())

        def get_state(self) -> None:
            # called by Ray after it wrote its state to the staging folder and before the upload
            folders = find()
            for folder in folders:
                # a resume's staging folder starts with copies of our own files (the signatures, ASHA's
                # stops, config.json), which Ray would upload over the current ones: they live in the
                # experiment folder only
                for name in WRITTEN_BY_US:
                    stale = folder / name
                    if stale.exists():
                        stale.delete_file()
            if any([signatures.sign_folder(folder) for folder in folders]):
                signatures.save()
            return None  # nothing of this callback's own is saved

    return StateSigner()


class ExperimentLock:
    """A lock file (``search.lock``) in the experiment folder, held while a search runs in it.

    Locally it is made with ``O_CREAT | O_EXCL`` (atomic); in a bucket it is written if absent and read
    back (object stores reached through pyarrow have no exclusive create, so two searches started
    within the same second could both pass). A lock left by a search on this host whose process is
    gone is taken over.

    Raises:
        ExperimentBusy: (from :meth:`acquire`) another search holds it; the message names its host
            and process and how to clear a stale lock.
    """

    def __init__(self, exp_dir: Location) -> None:
        self.loc = exp_dir / LOCK
        self.token = secrets.token_hex(8)
        self.held = False

    def _content(self) -> str:
        return json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "token": self.token,
                           "since": time.strftime("%Y-%m-%d %H:%M:%S")})

    def _holder(self) -> dict[str, Any]:
        try:
            return json.loads(self.loc.read_text())
        except (OSError, ValueError):
            return {}

    def acquire(self) -> None:
        if self._try():
            return
        holder = self._holder()
        if holder.get("host") == socket.gethostname() and not _alive(holder.get("pid")):
            self.loc.delete_file()  # left by a search on this machine that is gone
            if self._try():
                return
            holder = self._holder()
        raise ExperimentBusy(
            f"{self.loc}: another search is running in this experiment (host {holder.get('host', '?')}, "
            f"pid {holder.get('pid', '?')}, since {holder.get('since', '?')}); wait for it, or choose another "
            f"--name. If no search runs there, delete {self.loc}")

    def _try(self) -> bool:
        if self.loc.is_local:
            Path(self.loc.path).parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(self.loc.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "w") as out:
                out.write(self._content())
        else:
            if self.loc.exists():
                return False
            self.loc.write_text(self._content())
            time.sleep(0.5)
            if self._holder().get("token") != self.token:
                return False
        self.held = True
        return True

    def release(self) -> None:
        """Remove the lock if this search holds it."""
        if self.held and self._holder().get("token") == self.token:
            self.loc.delete_file()
        self.held = False

    def __enter__(self) -> ExperimentLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (TypeError, ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True
