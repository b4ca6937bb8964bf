"""Precompute a corpus into WebDataset tar shards of log-mel spectrograms or MFCCs (the library side of
``python -m shards.build``).

Each utterance becomes one sample of a tar shard: ``<key>.npy`` (float16 features,
``(n_features, frames)``), ``<key>.cls`` (label index) and ``<key>.json`` (its record). Shards hold
one speaker each (split further past ``shard_size`` utterances), so a speaker-independent
split reads whole shards. ``manifest.json`` beside the shards (:mod:`emohrnet.shards.manifest`) records the
feature parameters, class list, counts per class and speaker, the speaker folds, each shard with its
sha256, every utterance's key/speaker/label/shard, every skipped file with its reason (``io_error``
marks a file that could not be read at all, as opposed to bad audio) and the build's warnings (a class
without utterances, also logged).

Building again with the same inputs and parameters reuses the result (after checking every
shard's sha256; damaged shards are rebuilt), unless a file it could not read is readable now. New
shards are written into a staging folder (``.building/``) and moved into place only when all are
written, with the manifest last, so an interrupted or failed build (a full disk, say) leaves nothing
a later run trusts and leaves an earlier build in the same folder intact. Feature workers end with
the build, even one killed hard (:func:`emohrnet.io.orphans.exit_with_parent`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch
import webdataset as wds
from tqdm import tqdm

from emohrnet.corpora import Corpus, Skipped, Utterance, get_corpus
from emohrnet.data.wave_augment import WaveAugmentConfig, augmented_copies
from emohrnet.frontend import FeatureConfig, FeatureSpec, feature_kind, front_end
from emohrnet.io import paths
from emohrnet.io.audio import AudioError, load_audio
from emohrnet.io.location import Location, is_uri
from emohrnet.io.orphans import exit_with_parent
from emohrnet.io.storage import sha256_file
from emohrnet.shards.folder import move_into_place, prepare_staging, publish, reusable_manifest
from emohrnet.shards.manifest import FORMAT_VERSION, Manifest, ShardError, data_warnings


@dataclass
class BuildResult:
    """Where the shards are and whether they were reused.

    Attributes:
        shard_dir: the folder holding the shards and ``manifest.json``: a local path, or an
            object-store URI string (``s3://...``) when the build was published there.
        manifest: the manifest (:class:`emohrnet.shards.manifest.Manifest`).
        reused: ``True`` when an earlier build with the same inputs was reused.
    """

    shard_dir: Path | str
    manifest: Manifest
    reused: bool


# --------------------------------------------------------------------------- feature workers
@dataclass(frozen=True)
class _Job:
    features: dict[str, Any]
    kind: str
    copies: int
    augment: dict[str, Any]
    seed: int


_EXTRACT: torch.nn.Module | None = None
_JOB: _Job | None = None


def _init_worker(job: _Job, parent_pid: int | None = None) -> None:
    global _EXTRACT, _JOB
    if parent_pid is not None:  # a pool worker: it must not outlive a build killed hard (SIGKILL)
        exit_with_parent(parent_pid)
    torch.set_num_threads(1)
    _JOB = job
    _EXTRACT = front_end(job.kind, job.features)


def _features(item: tuple[str, str]) -> tuple[np.ndarray | None, Skipped | None, list[tuple[str, np.ndarray]]]:
    """Features of one file as float16 ``(n_features, frames)`` plus its augmented copies'
    ``[(key, features)]``, or ``(None, why it was skipped, [])``."""
    assert _EXTRACT is not None and _JOB is not None
    path, key = item
    try:
        wave = load_audio(path, _JOB.features["sample_rate"])
    except AudioError as err:
        return None, Skipped(path, err.reason), []
    except OSError as err:  # unreadable file (permissions, vanished, a disk error): not bad audio
        return None, Skipped(path, f"cannot read the file ({err.strerror or err}): an I/O error, not bad audio; "
                             "the next build retries it once it is readable", io_error=True), []
    if wave.numel() <= _JOB.features["n_fft"] // 2:
        need = _JOB.features["n_fft"] // 2
        return None, Skipped(path, f"too short: {wave.numel()} samples at 16 kHz, the front end needs over {need}"), []
    with torch.inference_mode():
        feats = _EXTRACT(wave)
        if not torch.isfinite(feats).all():
            return None, Skipped(path, "features are not finite"), []
        copies = []
        if _JOB.copies:
            config = WaveAugmentConfig.from_dict(_JOB.augment)
            for akey, awave in augmented_copies([(key, wave)], _JOB.copies, config, _JOB.seed,
                                                _JOB.features["sample_rate"]):
                copies.append((akey, _EXTRACT(awave).numpy().astype(np.float16)))
    return feats.numpy().astype(np.float16), None, copies


def _map_features(items: list[tuple[str, str]], job: _Job, workers: int) -> Iterator[tuple]:
    if workers <= 1:
        threads = torch.get_num_threads()
        _init_worker(job)
        try:
            yield from map(_features, items)
        finally:
            torch.set_num_threads(threads)  # the in-process "worker" must not leave the caller on 1 thread
        return
    with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(job, os.getpid())) as pool:
        yield from pool.map(_features, items, chunksize=8)


# --------------------------------------------------------------------------- planning
def fingerprint(
    dataset: str, root: Path, utterances: list[Utterance], corpus_info: dict, features: FeatureSpec,
    shard_size: int, augmentation: dict[str, Any] | None = None,
) -> str:
    """sha256 over everything a build depends on: format version, corpus and options, front end,
    augmentation, shard size, and each audio file's path, size and modification time."""
    files = []
    for u in utterances:
        st = os.stat(u.path)
        files.append([u.path, st.st_size, st.st_mtime_ns, u.key, u.speaker, u.label])
    blob = json.dumps(
        {"format": FORMAT_VERSION, "dataset": dataset, "root": str(root), "corpus": corpus_info,
         "kind": feature_kind(features), "features": features.to_dict(), "augmentation": augmentation,
         "shard_size": shard_size, "files": files},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def plan_shards(utterances: list[Utterance], shard_size: int) -> list[list[Utterance]]:
    """Group utterances into shards: one speaker per shard, at most ``shard_size`` each."""
    by_speaker: dict[str, list[Utterance]] = {}
    for u in sorted(utterances, key=lambda u: (u.speaker, u.utterance_id)):
        by_speaker.setdefault(u.speaker, []).append(u)
    plan = []
    for group in by_speaker.values():
        plan.extend(group[i:i + shard_size] for i in range(0, len(group), shard_size))
    return plan


def _dedupe(utterances: list[Utterance]) -> tuple[list[Utterance], list[Skipped]]:
    seen: dict[str, Utterance] = {}
    skipped = []
    for u in utterances:
        if u.key in seen:
            skipped.append(Skipped(u.path, f"duplicate utterance key {u.key} (also {seen[u.key].path})"))
        else:
            seen[u.key] = u
    return list(seen.values()), skipped


# --------------------------------------------------------------------------- build
def default_out(dataset: str, kind: str, fp: str) -> Path:
    """Default shard folder: ``$EMOHRNET_HOME/shards/<dataset>-<kind>-<fingerprint[:12]>``."""
    return paths.shards_dir() / f"{dataset}-{kind}-{fp[:12]}"


def build_shards(
    dataset: str, data_root: str | Path | None = None, out: str | Path | None = None, *, workers: int = 1,
    features: FeatureSpec | None = None, corpus_options: dict[str, Any] | None = None, augment_copies: int = 0,
    wave_augment: WaveAugmentConfig | None = None, augment_seed: int = 0, shard_size: int = 256,
    force: bool = False, progress: bool = True, publish_root: str | None = None, log=print,
) -> BuildResult:
    """Build (or reuse) the shards of a corpus.

    Args:
        dataset: registry name (``synthetic``, ``ravdess``, ...).
        data_root: the corpus folder (``None``: the corpus's default or its environment variable).
        out: shard folder; default :func:`default_out`. An object-store URI (``s3://bucket/shards``)
            builds in the local default folder and publishes there (:func:`publish`), so every
            node of a cluster reads the shards from the bucket.
        workers: processes computing features.
        features: front end: :class:`FeatureConfig` (log-mel, default) or :class:`MfccConfig`.
        corpus_options: reader options (e.g. ``{"include_song": True}``).
        augment_copies: waveform-augmented copies stored per utterance (Lee & Nadeem 2025). Keys
            are ``<key>_aug<i>`` and each copy's record names its ``origin``; training loads
            only the copies whose origin is in its fold's training part (:mod:`emohrnet.data.loading`),
            so no copy of a validation or test utterance reaches training.
        wave_augment: the augmentation (default :class:`WaveAugmentConfig`).
        augment_seed: seed of the copies.
        shard_size: most utterances per shard.
        force: rebuild even when a matching build exists.
        progress: show a progress bar of files done.
        publish_root: with no ``out``, an object-store folder (``s3://bucket/emohrnet/shards``):
            the build is published to ``<publish_root>/<default folder name>``.
        log: where messages go.

    Returns:
        :class:`BuildResult`.

    Raises:
        CorpusError: the data root is not the corpus.
        ShardError: the output folder cannot be written, or no utterance could be decoded.
    """
    features, wave_augment = features or FeatureConfig(), wave_augment or WaveAugmentConfig()
    corpus = get_corpus(dataset, data_root, **(corpus_options or {}))
    scan, kind = corpus.scan(), feature_kind(features)
    utterances, dupes = _dedupe(scan.utterances)
    augmentation = ({"copies": augment_copies, "config": wave_augment.to_dict(), "seed": augment_seed}
                    if augment_copies else None)
    fp = fingerprint(dataset, corpus.root.resolve(), utterances, corpus.describe(), features, shard_size,
                     augmentation)
    reused, shard_dir, remote = _reuse_or_place(dataset, kind, fp, out, publish_root, force, log)
    if reused is not None:
        return reused

    staging = prepare_staging(shard_dir)
    skipped = list(scan.skipped) + dupes
    job = _Job(features.to_dict(), kind, augment_copies, wave_augment.to_dict(), augment_seed)
    shards, entries, copies = _write_shards(dataset, corpus, plan_shards(utterances, shard_size), job, workers,
                                            progress, staging, skipped)
    manifest = _manifest(dataset, corpus, fp, features, shard_size, shards, entries, skipped)
    manifest.augmentation, manifest.augmented = augmentation, copies
    manifest.warnings = data_warnings([manifest])
    move_into_place(staging, shard_dir, manifest)
    _log_build(manifest, shard_dir, skipped, log)
    return _finish(shard_dir, manifest, False, remote, log)


def _log_build(manifest: Manifest, shard_dir: Path, skipped: list[Skipped], log) -> None:
    """Say what a build skipped and warns of, and what it wrote where."""
    for s in skipped:
        log(f"skipped {s.path}: {s.reason}")
    for line in manifest.warnings:
        log(f"warning: {line}")
    log(f"wrote {len(manifest.utterances)} utterances in {len(manifest.shards)} shards to {shard_dir}"
        + (f" ({len(skipped)} files skipped)" if skipped else ""))


def _reuse_or_place(dataset: str, kind: str, fp: str, out: str | Path | None, publish_root: str | None, force: bool,
                    log) -> tuple[BuildResult | None, Path, Location | None]:
    """Where the build goes, and a finished build with fingerprint ``fp`` to reuse there (unless ``force``).

    Returns:
        The reused build (or ``None``), the local shard folder, and the object-store folder it is
        published to (``None`` for a local ``out``). A build for an object store is made in the local
        default folder, then published.
    """
    if out is None and publish_root:
        out = (Location(publish_root) / default_out(dataset, kind, fp).name).uri
    remote = Location(out) if out is not None and is_uri(out) else None
    shard_dir = Path(out).expanduser().resolve() if out and remote is None else default_out(dataset, kind, fp)
    if force:
        return None, shard_dir, remote
    if remote is not None:
        old = reusable_manifest(remote, fp, "publishing the shards again", log)
        if old is not None:
            return BuildResult(remote.uri, old, True), shard_dir, remote
    old = reusable_manifest(Location(shard_dir), fp, "rebuilding shards", log)
    return (None if old is None else _finish(shard_dir, old, True, remote, log)), shard_dir, remote


def _write_shards(dataset: str, corpus: Corpus, plan: list[list[Utterance]], job: _Job, workers: int,
                  progress: bool, staging: Path, skipped: list[Skipped]) -> tuple[list, list, list]:
    """Compute the features of every planned utterance (``workers`` processes) and write the shards into
    ``staging``; files that fail are added to ``skipped``.

    Returns:
        The shards (file, sha256, count, speakers), the utterance entries, the augmented copies.

    Raises:
        ShardError: no utterance could be decoded (``staging`` is removed).
    """
    order = [u for group in plan for u in group]
    results = _map_features([(u.path, u.key) for u in order], job, workers)
    bar = tqdm(total=len(order), desc=f"{dataset} features", unit="file", disable=not progress, file=sys.stderr)
    class_index = {c: i for i, c in enumerate(corpus.classes)}
    shards, entries, copies = [], [], []
    try:
        for n, group in enumerate(plan):
            name = f"{dataset}-{n:06d}.tar"
            written = _write_shard(staging / name, group, results, class_index, bar, skipped, entries, copies)
            if written:
                shards.append({"file": name, "sha256": sha256_file(staging / name), "count": written,
                               "speakers": sorted({u.speaker for u in group})})
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)  # an earlier build in shard_dir stays as it was
        raise
    finally:
        bar.close()
        results.close()
    if not entries:
        shutil.rmtree(staging, ignore_errors=True)
        raise ShardError(f"{corpus.root}: no utterance could be decoded; see the reasons: "
                         + "; ".join(f"{s.path}: {s.reason}" for s in skipped[:5]))
    return shards, entries, copies


def _finish(shard_dir: Path, manifest: Manifest, reused: bool, remote: Location | None, log) -> BuildResult:
    """The result of a build in ``shard_dir``; with an object-store ``remote``, published there first."""
    if remote is None:
        return BuildResult(shard_dir, manifest, reused)
    publish(shard_dir, remote, manifest, log)
    return BuildResult(remote.uri, manifest, False)


def _write_shard(path: Path, group, results, class_index, bar, skipped, entries, copies) -> int:
    tmp = path.with_name(path.name + ".tmp")
    written = 0
    try:
        with open(tmp, "wb") as stream:
            with wds.TarWriter(stream) as sink:
                for u in group:
                    mel, skip, augmented = next(results)
                    bar.update(1)
                    if mel is None:
                        skipped.append(skip)
                        continue
                    record = u.to_dict()
                    record["frames"] = int(mel.shape[1])
                    sink.write({"__key__": u.key, "npy": mel, "cls": class_index[u.label], "json": record})
                    entries.append({"key": u.key, "speaker": u.speaker, "label": u.label,
                                    "session": u.session, "frames": int(mel.shape[1]), "shard": path.name})
                    for akey, amel in augmented:
                        sink.write({"__key__": akey, "npy": amel, "cls": class_index[u.label],
                                    "json": {**record, "frames": int(amel.shape[1]), "origin": u.key}})
                        copies.append({"key": akey, "origin": u.key, "shard": path.name})
                    written += 1
            stream.flush()
            os.fsync(stream.fileno())
        if written:
            os.replace(tmp, path)
        else:
            tmp.unlink()
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise ShardError(f"{path}: cannot write shard ({err.strerror or err}); "
                         "free disk space or choose another --out. An earlier build there is untouched.") from None
    return written


def _manifest(dataset, corpus, fp, features, shard_size, shards, entries, skipped) -> Manifest:
    per_class = Counter(e["label"] for e in entries)
    per_speaker = Counter(e["speaker"] for e in entries)
    frames = sum(e["frames"] for e in entries)
    return Manifest(
        format_version=FORMAT_VERSION,
        dataset=dataset,
        data_root=str(corpus.root.resolve()),
        corpus=corpus.describe(),
        fingerprint=fp,
        feature_kind=feature_kind(features),
        features=features.to_dict(),
        classes=list(corpus.classes),
        folds=corpus.fold_groups(sorted(per_speaker)),
        num_utterances=len(entries),
        hours=round(frames * features.hop_length / features.sample_rate / 3600, 4),
        counts={"per_class": {c: per_class.get(c, 0) for c in corpus.classes},
                "per_speaker": dict(sorted(per_speaker.items()))},
        shard_size=shard_size,
        shards=shards,
        skipped=[{"path": s.path, "reason": s.reason, "io_error": s.io_error} for s in skipped],
        utterances=entries,
    )


# --------------------------------------------------------------------------- dry run, list
def summarize(dataset: str, data_root: str | Path | None, corpus_options: dict[str, Any] | None = None
              ) -> dict[str, Any]:
    """Corpus summary without computing features: the files a build will use (``files``, with their
    classes, speakers and hours) apart from the files it will skip (``files_skipped``, each in
    ``skipped`` with its reason: not named as the corpus names its files, a duplicate utterance, an
    unreadable audio header).

    Durations come from the audio headers (``soundfile.info``).
    """
    corpus = get_corpus(dataset, data_root, **(corpus_options or {}))
    scan = corpus.scan()
    utterances, dupes = _dedupe(scan.utterances)
    seconds, skipped = 0.0, [{"path": s.path, "reason": s.reason} for s in [*scan.skipped, *dupes]]
    usable = []
    for u in utterances:
        try:
            seconds += sf.info(u.path).duration
        except (sf.LibsndfileError, RuntimeError) as err:
            skipped.append({"path": u.path, "reason": f"cannot read audio header ({err})"})
            continue
        usable.append(u)
    return {
        "dataset": dataset,
        "data_root": str(corpus.root.resolve()),
        "files": len(usable),
        "files_skipped": len(skipped),
        "classes": {c: sum(u.label == c for u in usable) for c in corpus.classes},
        "speakers": dict(sorted(Counter(u.speaker for u in usable).items())),
        "hours": round(seconds / 3600, 3),
        "folds": corpus.fold_groups([u.speaker for u in usable]),
        "skipped": skipped,
    }
