"""A shard folder's ``manifest.json``: its name, its digest, reading it back, and the error a
shard folder that cannot be used raises. The library reads manifests here; writing them is the
shard builder's (``python -m shards.build``)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from .location import Location

MANIFEST = "manifest.json"
"""The manifest's file name in a shard folder."""


class ShardError(RuntimeError):
    """Shards that cannot be used (missing manifest, checksum mismatch) or cannot be written."""


def read_manifest(shard_dir: str | Path | Location) -> dict[str, Any]:
    """Load ``manifest.json`` of a shard folder (a local path or an object-store URI).

    Raises:
        ShardError: no manifest (not a shard folder, or an interrupted build), or a manifest that
            does not match its own digest (:func:`manifest_digest`: edited after the build); the
            message says to run ``python -m shards.build``.
    """
    path = Location(shard_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except OSError as err:
        if not isinstance(err, FileNotFoundError):
            raise ShardError(f"{path}: cannot read the manifest ({err})") from None
        raise ShardError(
            f"{path}: no manifest; this folder holds no finished shard build. "
            "Build it with: python -m shards.build --dataset NAME --data-root DIR"
        ) from None
    except json.JSONDecodeError as err:
        raise ShardError(f"{path}: unreadable manifest ({err}); delete the folder and build again") from None
    if not isinstance(manifest, dict) or manifest.get("digest") != manifest_digest(manifest):
        why = ("has no digest (not written by this version of shards.build)"
               if isinstance(manifest, dict) and "digest" not in manifest else
               "does not match its digest: it was edited after the build (class list, features, folds or counts)")
        raise ShardError(f"{path}: the manifest {why}; its shards cannot be trusted. Rebuild them: "
                         "python -m shards.build --dataset NAME --data-root DIR --force (or delete the folder)")
    return manifest


def manifest_digest(manifest: dict[str, Any]) -> str:
    """sha256 of the manifest's canonical JSON without its ``digest`` field: written into the
    manifest by the build, so an edited class list or feature setting is detected when read."""
    body = {k: v for k, v in manifest.items() if k != "digest"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
