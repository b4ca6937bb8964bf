"""The typed shard manifest (:class:`emohrnet.shards.manifest.Manifest`): written and read back equal, its
digest guarding every field, the fields a build writes required, shards verified against it."""

from __future__ import annotations

import hashlib
import json

import pytest

from emohrnet.data.splits import speaker_split
from emohrnet.shards.manifest import MANIFEST, Manifest, ShardError


def _manifest(tmp_path) -> Manifest:
    """A manifest of two shards that exist in ``tmp_path`` (3 speakers, 2 utterances each)."""
    shards = []
    for name in ("x-000000.tar", "x-000001.tar"):
        data = name.encode() * 10
        (tmp_path / name).write_bytes(data)
        shards.append({"file": name, "sha256": hashlib.sha256(data).hexdigest(), "count": 3, "speakers": []})
    utterances = [{"key": f"{s}_{i}", "speaker": s, "label": "neutral" if i else "angry", "session": None,
                   "frames": 50, "shard": shards[int(s == "c")]["file"]} for s in "abc" for i in range(2)]
    return Manifest(dataset="x", classes=["neutral", "angry"], folds=[["a"], ["b"], ["c"]], utterances=utterances,
                    features={"sample_rate": 16000, "hop_length": 160, "n_mels": 32}, shards=shards,
                    corpus={"name": "x"}, data_root="/data/x", fingerprint="f" * 64, num_utterances=6,
                    hours=0.001, counts={"per_class": {"neutral": 3, "angry": 3}}, shard_size=500)


def test_written_manifest_reads_back_equal(tmp_path):
    m = _manifest(tmp_path)
    (tmp_path / MANIFEST).write_text(m.to_json())
    back = Manifest.read(tmp_path)
    assert back == m and back.digest == json.loads(m.to_json())["digest"]
    assert back.feature_kind == "logmel" and back.augmented == [] and back.verify(tmp_path) == []


@pytest.mark.parametrize("field,value", [("classes", ["angry", "neutral"]), ("features", {"n_mels": 64}),
                                         ("num_utterances", 7)])
def test_an_edited_field_breaks_the_digest(tmp_path, field, value):
    raw = _manifest(tmp_path).to_dict()
    raw[field] = value
    (tmp_path / MANIFEST).write_text(json.dumps(raw))
    with pytest.raises(ShardError, match=r"manifest\.json: the manifest does not match its digest.*--force"):
        Manifest.read(tmp_path)


def test_a_manifest_without_a_field_every_build_writes_is_refused(tmp_path):
    raw = _manifest(tmp_path).to_dict()
    del raw["folds"], raw["digest"]
    raw["digest"] = hashlib.sha256(json.dumps(raw, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    (tmp_path / MANIFEST).write_text(json.dumps(raw))
    with pytest.raises(ShardError, match=r"manifest\.json: the manifest lacks folds; rebuild the shards"):
        Manifest.read(tmp_path)


def test_verify_names_missing_and_damaged_shards(tmp_path):
    m = _manifest(tmp_path)
    (tmp_path / "x-000000.tar").write_bytes(b"truncated")
    (tmp_path / "x-000001.tar").unlink()
    problems = m.verify(tmp_path)
    assert len(problems) == 2
    assert "x-000000.tar: sha256 mismatch" in problems[0] and "x-000001.tar: missing" in problems[1]


def test_split_is_the_speaker_split_of_its_folds(tmp_path):
    m = _manifest(tmp_path)
    for fold in range(3):
        assert m.split("speaker", fold) == speaker_split(m.utterances, m.folds, fold)
    with pytest.raises(ValueError, match="protocol"):
        m.split("loso", 0)
