"""A shard folder's life: is a finished build there to reuse (every shard checked against its
sha256), the staging folder a build writes into, the check that a folder holds nothing of the
user's, moving a finished build into place with its manifest last, and publishing it to an object
store, manifest last. An interrupted build or upload leaves no manifest that a later run trusts.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from emohrnet.io import audio
from emohrnet.io.location import Location
from emohrnet.io.storage import atomic_write_text
from emohrnet.shards.manifest import MANIFEST, Manifest, ShardError, data_warnings

STAGING = ".building"


# --------------------------------------------------------------------------- reuse
def reusable_manifest(folder: Location, fp: str, redo: str, log) -> Manifest | None:
    """The manifest of a finished build in ``folder`` (local or object store) with fingerprint
    ``fp`` and intact shards, else ``None``; ``redo`` says in the log what happens to damaged ones.

    A build that skipped files for I/O errors (``io_error`` in its manifest's ``skipped``) is not
    reused once any of them is readable (the fingerprint does not see a permission change), so the
    file is not left out for good; while they stay unreadable the reuse names them in the log."""
    try:
        if not (folder / MANIFEST).is_file():
            return None
        old = Manifest.read(folder)
    except (ShardError, OSError) as err:
        log(f"rebuilding: {err}")
        return None
    if old.fingerprint != fp:
        return None
    problems = old.verify(folder)
    if problems:
        log(f"{redo}, damaged ones found:\n  " + "\n  ".join(problems))
        return None
    unread = [s["path"] for s in old.skipped if s.get("io_error")]
    readable = [path for path in unread if _readable(path)]
    if readable:
        log(f"{redo}: {len(readable)} of the files the last build could not read (I/O errors) are readable now: "
            + ", ".join(readable[:3]) + (", ..." if len(readable) > 3 else ""))
        return None
    log(f"reusing shards in {folder} (same inputs and parameters)")
    for line in data_warnings([old]):
        log(f"warning: {line}")
    if unread:
        log(f"warning: {len(unread)} files are still left out because they cannot be read (I/O errors; the next "
            "build retries them once readable): " + ", ".join(unread[:3]) + (", ..." if len(unread) > 3 else ""))
    return old


def _readable(path: str) -> bool:
    """Whether ``path`` can be opened and read now (:func:`emohrnet.io.audio.check_readable`)."""
    try:
        audio.check_readable(path)
    except OSError:
        return False
    return True


def publish(local_dir: Path, target: Location, manifest: Manifest, log=print) -> None:
    """Copy a finished local build to ``target`` (an object-store folder), manifest last.

    The old manifest is removed first, so readers stop trusting the old build before any of its
    shards is replaced, and the new one is written only after every shard is in place: an
    interrupted upload leaves no manifest, which :meth:`Manifest.read` refuses and the next
    build repairs.

    Raises:
        ShardError: the upload failed (no credentials, no bucket, unreachable store).
    """
    try:
        (target / MANIFEST).delete_file()
        for shard in manifest.shards:
            (target / shard["file"]).upload(local_dir / shard["file"])
        (target / MANIFEST).write_text(manifest.to_json())
    except OSError as err:
        raise ShardError(f"{target}: cannot publish the shards ({err}); check the bucket, the credentials "
                         "(AWS_PROFILE, AWS_ENDPOINT_URL) and the URI, then build again") from None
    log(f"published {len(manifest.shards)} shards to {target}")


def prepare_staging(shard_dir: Path) -> Path:
    """Make ``shard_dir`` and an empty staging folder inside it; return the staging folder.

    New shards are written to the staging folder and moved into place only once all are
    written (:func:`move_into_place`), so a failed build leaves an earlier one intact.
    """
    try:
        if shard_dir.exists() and not shard_dir.is_dir():
            raise ShardError(f"{shard_dir}: exists and is not a folder; choose another --out")
        check_own_folder(shard_dir)
        shard_dir.mkdir(parents=True, exist_ok=True)
        staging = shard_dir / STAGING
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        probe = staging / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ShardError(f"{shard_dir}: cannot write shards here ({err.strerror or err}); "
                         "choose a writable --out") from None
    return staging


_OWN_FILE = re.compile(r"^[a-z0-9_]+-\d{6}\.tar(\.tmp)?$")


def check_own_folder(shard_dir: Path) -> None:
    """Refuse to build into a folder that holds anything but an emohrnet build (its manifest,
    its ``<dataset>-NNNNNN.tar`` shards, its staging folder): nothing of the user's is overwritten.

    Raises:
        ShardError: naming the folder, one foreign file and the fix.
    """
    if not shard_dir.is_dir():
        return
    manifest = shard_dir / MANIFEST
    if manifest.is_file():
        try:
            ours = {"format_version", "fingerprint", "shards"} <= set(json.loads(manifest.read_text()))
        except (OSError, ValueError, TypeError):
            ours = False
        if not ours:
            raise ShardError(f"{shard_dir}: its {MANIFEST} was not written by shards.build; choose an empty or "
                             "new --out (nothing was written)")
    foreign = sorted(p.name for p in shard_dir.iterdir()
                     if p.name not in (MANIFEST, STAGING) and not _OWN_FILE.match(p.name))
    if foreign:
        raise ShardError(f"{shard_dir}: holds files that are not an emohrnet shard build ({', '.join(foreign[:3])}"
                         f"{', ...' if len(foreign) > 3 else ''}); choose an empty or new --out (nothing was written)")


def move_into_place(staging: Path, shard_dir: Path, manifest: Manifest) -> None:
    """Move the staged shards into ``shard_dir`` and write the manifest last."""
    try:
        (shard_dir / MANIFEST).unlink(missing_ok=True)  # the old build stops being trusted here
        for shard in manifest.shards:
            os.replace(staging / shard["file"], shard_dir / shard["file"])
        atomic_write_text(shard_dir / MANIFEST, manifest.to_json())
    except OSError as err:
        raise ShardError(f"{shard_dir}: cannot finish the build ({err.strerror or err}); "
                         "free disk space or choose another --out, then build again") from None
    keep = {s["file"] for s in manifest.shards}
    for p in shard_dir.glob("*.tar*"):
        if p.name not in keep:
            p.unlink()
    shutil.rmtree(staging, ignore_errors=True)
