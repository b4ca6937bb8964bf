"""A shard folder's ``manifest.json`` as a typed :class:`Manifest`: what the build wrote (features,
classes, speaker folds, every shard with its sha256, every utterance and skipped file), reading it
back with its digest checked, verifying the shards against it, and the error a shard folder that
cannot be used raises. Writing it is the shard builder's (:mod:`emohrnet.shards.build`)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emohrnet.data.splits import Split, make_split
from emohrnet.io.location import Location

MANIFEST = "manifest.json"
"""The manifest's file name in a shard folder."""

FORMAT_VERSION = 1
"""The shard format :class:`Manifest` describes (``format_version`` in the file)."""

_REBUILD = "python -m shards.build --dataset NAME --data-root DIR --force (or delete the folder)"


class ShardError(RuntimeError):
    """Shards that cannot be used (missing manifest, checksum mismatch) or cannot be written."""


@dataclass
class Manifest:
    """The content of a shard folder's ``manifest.json``.

    Attributes:
        dataset: the corpus name (``ravdess``, ``synthetic``, ...).
        classes: the class list; a shard's ``.cls`` is an index into it.
        folds: the speaker groups of the speaker-independent folds (lists of speaker ids).
        utterances: one record per utterance: ``key``, ``speaker``, ``label``, ``session``,
            ``frames`` (feature frames) and ``shard`` (its tar file's name).
        features: the front end's settings (:class:`emohrnet.frontend.FeatureConfig` as a dict:
            sample rate in Hz, ``n_fft``/``hop_length`` in samples, ``n_mels`` or ``n_mfcc``).
        feature_kind: ``"logmel"`` or ``"mfcc"``.
        shards: one record per tar shard: ``file``, ``sha256``, ``count``, ``speakers``.
        augmented: the waveform-augmented copies (``key``, ``origin``, ``shard``); empty without.
        augmentation: the copies' settings (``copies`` and the wave-augmentation parameters) or None.
        corpus: the reader's description (its options, layout and protocol note).
        data_root: the corpus folder the build read.
        fingerprint: sha256 of the build's inputs and parameters (a build with the same one is reused).
        num_utterances: utterances written; hours: their duration in hours.
        counts: ``per_class`` and ``per_speaker`` utterance counts.
        shard_size: the most utterances a shard holds.
        skipped: the files the build skipped, each ``path`` with its ``reason`` and ``io_error``
            (``True``: the file could not be read at all, as opposed to bad audio or an unparseable
            name; a later build retries it once readable). Older builds lack ``io_error``.
        warnings: what the build warned about (:func:`data_warnings`: a class without utterances).
        format_version: :data:`FORMAT_VERSION` of the writer.
    """

    dataset: str
    classes: list[str]
    folds: list[list[str]]
    utterances: list[dict[str, Any]]
    features: dict[str, Any] = field(default_factory=dict)
    feature_kind: str = "logmel"
    shards: list[dict[str, Any]] = field(default_factory=list)
    augmented: list[dict[str, Any]] = field(default_factory=list)
    augmentation: dict[str, Any] | None = None
    corpus: dict[str, Any] = field(default_factory=dict)
    data_root: str = ""
    fingerprint: str = ""
    num_utterances: int = 0
    hours: float = 0.0
    counts: dict[str, Any] = field(default_factory=dict)
    shard_size: int = 0
    skipped: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    format_version: int = FORMAT_VERSION

    # ------------------------------------------------------------------ reading and writing
    @classmethod
    def read(cls, shard_dir: str | Path | Location) -> Manifest:
        """Load ``manifest.json`` of a shard folder (a local path or an object-store URI).

        Raises:
            ShardError: no manifest (not a shard folder, or an interrupted build), an unreadable
                one, one that does not match its own digest (edited after the build), or one that
                lacks a field; the message names the file and says to run ``python -m shards.build``.
        """
        path = Location(shard_dir) / MANIFEST
        try:
            raw = json.loads(path.read_text())
        except OSError as err:
            if not isinstance(err, FileNotFoundError):
                raise ShardError(f"{path}: cannot read the manifest ({err})") from None
            raise ShardError(
                f"{path}: no manifest; this folder holds no finished shard build. "
                "Build it with: python -m shards.build --dataset NAME --data-root DIR"
            ) from None
        except json.JSONDecodeError as err:
            raise ShardError(f"{path}: unreadable manifest ({err}); delete the folder and build again") from None
        if not isinstance(raw, dict) or raw.get("digest") != _digest(raw):
            why = ("has no digest (not written by this version of shards.build)"
                   if isinstance(raw, dict) and "digest" not in raw else
                   "does not match its digest: it was edited after the build (class list, features, folds or counts)")
            raise ShardError(f"{path}: the manifest {why}; its shards cannot be trusted. Rebuild them: {_REBUILD}")
        return cls.from_dict(raw, source=str(path))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "manifest") -> Manifest:
        """The manifest a build wrote, from its JSON object (``digest`` and unknown keys ignored).

        Raises:
            ShardError: a field every build writes is missing (naming ``source`` and the fields).
        """
        names = {f.name for f in dataclasses.fields(cls)}
        optional = {"feature_kind", "augmented", "augmentation", "warnings"}  # older builds lack them
        missing = sorted(names - optional - raw.keys())
        if missing:
            raise ShardError(f"{source}: the manifest lacks {', '.join(missing)}; rebuild the shards: {_REBUILD}")
        return cls(**{k: v for k, v in raw.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written as ``manifest.json``, with its ``digest``."""
        body = dataclasses.asdict(self)
        return {**body, "digest": _digest(body)}

    def to_json(self) -> str:
        """:meth:`to_dict` as the text of ``manifest.json``."""
        return json.dumps(self.to_dict(), indent=1)

    @property
    def digest(self) -> str:
        """sha256 of the manifest's canonical JSON (without its digest): written into the file,
        so an edited class list or feature setting is detected by :meth:`read`."""
        return _digest(dataclasses.asdict(self))

    # ------------------------------------------------------------------ using it
    def verify(self, shard_dir: str | Path | Location) -> list[str]:
        """Check every shard listed here against its sha256 (local folder or object store).

        Returns:
            messages naming each missing or damaged shard (empty when all are intact).
        """
        problems = []
        for shard in self.shards:
            path = Location(shard_dir) / shard["file"]
            if not path.is_file():
                problems.append(f"{path}: missing")
            elif path.sha256() != shard["sha256"]:
                problems.append(f"{path}: sha256 mismatch (truncated or modified on disk)")
        return problems

    def split(self, protocol: str = "speaker", fold: int = 0) -> Split:
        """The train/val/test split of ``protocol`` and ``fold`` over these utterances
        (:func:`emohrnet.data.splits.make_split`).

        Raises:
            ValueError: unknown protocol, fold out of range, too few speakers.
        """
        return make_split(self.utterances, self.folds, protocol, fold)

    def shard_sha256(self) -> dict[str, str]:
        """Each shard's file name with its sha256."""
        return {s["file"]: s["sha256"] for s in self.shards if "sha256" in s}

    def empty_classes(self) -> list[str]:
        """The classes of :attr:`classes` with no utterance in these shards (``counts["per_class"]``)."""
        per_class = self.counts.get("per_class", {})
        return [c for c in self.classes if not per_class.get(c, 0)]


def data_warnings(manifests: Iterable[Manifest]) -> list[str]:
    """What a user should know about the data before trusting a model trained on these shards: one
    line per class without utterances (the model still gets an output for it that no utterance
    trains, and UA averages over the other classes only). Lines repeated across ``manifests`` (the
    log-mel and MFCC shards of one corpus) are given once. Computed from the counts, so a manifest
    written before :attr:`Manifest.warnings` existed is covered too.
    """
    lines: list[str] = []
    for m in manifests:
        empty = m.empty_classes()
        for c in empty:
            line = (f"class '{c}' has no utterances in the {m.dataset} shards ({m.data_root}): the model still gets "
                    f"an output for it that no utterance trains, and UA averages over the other "
                    f"{len(m.classes) - len(empty)} classes only; is the corpus folder complete?")
            if line not in lines:
                lines.append(line)
    return lines


def _digest(body: dict[str, Any]) -> str:
    body = {k: v for k, v in body.items() if k != "digest"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
