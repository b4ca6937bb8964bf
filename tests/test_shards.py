"""Shards: round trip, bad files, reuse, damage, interrupted builds, the worker split."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import soundfile as sf
import torch

from emohrnet.corpora import CorpusError, Utterance
from emohrnet.data.loading import load_examples
from emohrnet.frontend import FeatureConfig, LogMel
from emohrnet.io.audio import load_audio
from emohrnet.io.storage import sha256_file
from emohrnet.shards import Manifest, ShardError, build_shards
from shards.build import main

FEATURES = FeatureConfig(n_mels=32)


def _build(root, out, **kw):
    return build_shards("ravdess", root, out, features=FEATURES, progress=False, log=lambda *a: None, **kw)


def test_round_trip_same_mel_and_label(tree, tmp_path):
    result = _build(tree, tmp_path / "shards")
    m = result.manifest
    assert m.num_utterances == 9 and len(m.shards) == 3  # one shard per actor
    assert m.features == FEATURES.to_dict() and m.classes[4] == "angry"
    assert m.counts["per_speaker"] == {"01": 3, "02": 3, "03": 3}
    for shard in m.shards:
        assert sha256_file(result.shard_dir / shard["file"]) == shard["sha256"]
    examples = {e.key: e for e in load_examples(result.shard_dir, m, [u["key"] for u in m.utterances])}
    assert len(examples) == 9
    logmel = LogMel(FEATURES)
    for entry in m.utterances:
        assert "." not in entry["key"]
        path = next(tree.rglob(entry["key"].removeprefix("ravdess_") + ".*"))
        expected = logmel(load_audio(path)).numpy().astype(np.float16)
        ex = examples[entry["key"]]
        assert ex.features.dtype == torch.float16
        np.testing.assert_array_equal(ex.features.numpy(), expected)
        assert m.classes[ex.label] == entry["label"]


def test_bad_files_are_reported_and_skipped(tree, tmp_path):
    actor = tree / "Actor_01"
    (actor / "03-01-02-01-01-01-01.wav").write_bytes(b"RIFF not really a wave file")
    (actor / "03-01-02-01-02-01-01.wav").write_bytes(b"")
    sf.write(actor / "03-01-02-02-01-01-01.wav", np.zeros(8000, np.float32), 16000)
    (actor / "notes.wav").write_bytes(b"x")  # unparseable name
    result = _build(tree, tmp_path / "shards", workers=2)
    reasons = {os.path.basename(s["path"]): s["reason"] for s in result.manifest.skipped}
    assert result.manifest.num_utterances == 9
    assert "cannot decode" in reasons["03-01-02-01-01-01-01.wav"]
    assert "cannot decode" in reasons["03-01-02-01-02-01-01.wav"] or "empty" in reasons["03-01-02-01-02-01-01.wav"]
    assert "silent" in reasons["03-01-02-02-01-01-01.wav"]
    assert "name" in reasons["notes.wav"]


def test_reuse_then_rebuild_after_damage(tree, tmp_path):
    first = _build(tree, tmp_path / "shards")
    shard = first.shard_dir / first.manifest.shards[0]["file"]
    mtime = shard.stat().st_mtime_ns
    again = _build(tree, tmp_path / "shards")
    assert again.reused and shard.stat().st_mtime_ns == mtime
    with open(shard, "r+b") as f:  # truncate the shard on disk
        f.truncate(shard.stat().st_size // 2)
    repaired = _build(tree, tmp_path / "shards")
    assert not repaired.reused
    assert sha256_file(shard) == repaired.manifest.shards[0]["sha256"]
    assert repaired.manifest.num_utterances == 9
    changed = build_shards("ravdess", tree, tmp_path / "shards", features=FeatureConfig(n_mels=16),
                           progress=False, log=lambda *a: None)
    assert not changed.reused and changed.manifest.features["n_mels"] == 16


def test_interrupted_build_is_not_trusted(tree, tmp_path, monkeypatch):
    import emohrnet.shards.build as sb

    calls = {"n": 0}
    real = sb._write_shard

    def crash_on_second(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(sb, "_write_shard", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        _build(tree, tmp_path / "shards")
    with pytest.raises(ShardError, match="no manifest"):
        Manifest.read(tmp_path / "shards")
    monkeypatch.setattr(sb, "_write_shard", real)
    result = _build(tree, tmp_path / "shards")
    assert not result.reused and result.manifest.num_utterances == 9
    on_disk = sorted(p.name for p in result.shard_dir.glob("*.tar*"))
    assert on_disk == sorted(s["file"] for s in result.manifest.shards)


def test_workers_read_disjoint_parts(tree, tmp_path):
    m = _build(tree, tmp_path / "shards").manifest
    keys = [u["key"] for u in m.utterances]
    for world in (2, 3, 5):  # 3 shards: more, as many, and fewer shards than workers
        parts = [load_examples(tmp_path / "shards", m, keys, rank, world) for rank in range(world)]
        got = [e.key for part in parts for e in part]
        assert sorted(got) == sorted(keys)
        assert all(part for part in parts[:min(world, 9)])


def test_keys_have_no_dots_and_errors_name_paths(tmp_path):
    u = Utterance(path="/x/a.b.wav", corpus="c", utterance_id="a.b c", speaker="1", label="x")
    assert u.key == "c_a_b_c"
    with pytest.raises(CorpusError, match=str(tmp_path / "missing")):
        _build(tmp_path / "missing", tmp_path / "s")
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(CorpusError, match="is a file"):
        _build(a_file, tmp_path / "s")


def test_out_folder_that_is_a_file(tree, tmp_path):
    out = tmp_path / "out"
    out.write_text("occupied")
    with pytest.raises(ShardError, match="not a folder"):
        _build(tree, out)
    assert out.read_text() == "occupied"


def test_cli_list_and_dry_run(tree, capsys):
    assert main(["--list"]) == 0
    listing = capsys.readouterr().out
    assert "ravdess" in listing and "surprised" in listing and "synthetic" in listing
    assert main(["--dataset", "ravdess", "--data-root", str(tree), "--dry-run"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["files"] == 9 and summary["speakers"] == {"01": 3, "02": 3, "03": 3}
    assert summary["hours"] == pytest.approx(9 * 0.4 / 3600, rel=0.01)
    assert main(["--dataset", "ravdess", "--data-root", str(tree / "nope")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_full_disk_leaves_the_earlier_build_intact(tree, tmp_path, monkeypatch):
    import errno

    import emohrnet.shards.build as sb

    first = _build(tree, tmp_path / "shards")

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sb.os, "fsync", no_space)
    with pytest.raises(ShardError, match="No space left on device.*free disk space"):
        build_shards("ravdess", tree, tmp_path / "shards", features=FeatureConfig(n_mels=16), progress=False,
                     log=lambda *a: None)
    monkeypatch.undo()
    assert Manifest.read(tmp_path / "shards") == first.manifest
    assert not (tmp_path / "shards" / ".building").exists()
    assert _build(tree, tmp_path / "shards").reused  # the earlier build is still whole


def test_unwritable_output_folder(tree, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(ShardError, match="cannot write shards here"):
        _build(tree, blocker / "shards")


def test_ten_minute_file_and_too_short_file(tree, tmp_path):
    actor = tree / "Actor_02"
    rng = np.random.default_rng(0)
    sf.write(actor / "03-01-08-01-01-01-02.wav", (0.1 * rng.standard_normal(600 * 16000)).astype(np.float32), 16000)
    sf.write(actor / "03-01-08-01-02-01-02.wav", (0.1 * rng.standard_normal(100)).astype(np.float32), 16000)
    result = _build(tree, tmp_path / "shards")
    frames = {e["key"]: e["frames"] for e in result.manifest.utterances}
    assert frames["ravdess_03-01-08-01-01-01-02"] == 600 * 100 + 1
    reasons = {os.path.basename(s["path"]): s["reason"] for s in result.manifest.skipped}
    assert "too short" in reasons["03-01-08-01-02-01-02.wav"]


@pytest.mark.parametrize("edit", ["renamed", "reordered", "shortened", "features"])
def test_an_edited_manifest_is_refused_then_rebuilt(tree, tmp_path, edit):
    """The class list and the feature parameters used to be covered by no checksum: an edited list
    was reused silently (wrong labels in predict) or crashed inside the trials."""
    out = tmp_path / "shards"
    manifest = _build(tree, out).manifest
    edited = json.loads((out / "manifest.json").read_text())
    if edit == "renamed":
        edited["classes"][0] = "bored"
    elif edit == "reordered":
        edited["classes"] = edited["classes"][::-1]
    elif edit == "shortened":
        edited["classes"] = edited["classes"][:-1]
    else:
        edited["features"]["n_mels"] = 64
    (out / "manifest.json").write_text(json.dumps(edited, indent=1))
    with pytest.raises(ShardError, match="does not match its digest: it was edited after the build .*--force"):
        Manifest.read(out)
    rebuilt = _build(tree, out)  # the next build does not trust it either
    assert not rebuilt.reused and rebuilt.manifest.classes == manifest.classes
    assert Manifest.read(out).features == manifest.features


def test_a_folder_holding_other_files_is_not_built_into(tree, tmp_path):
    """--out over a folder of other files used to overwrite a manifest.json and tars it had not written."""
    out = tmp_path / "mine"
    out.mkdir()
    (out / "manifest.json").write_text('{"my": "own file"}')
    (out / "ravdess-000000.tar").write_bytes(b"my own tar")
    with pytest.raises(ShardError, match="manifest.json was not written by shards.build; choose an empty or new"):
        _build(tree, out)
    (out / "manifest.json").unlink()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ShardError, match=r"holds files that are not an emohrnet shard build \(notes.txt\)"):
        _build(tree, out)
    assert (out / "ravdess-000000.tar").read_bytes() == b"my own tar" and sorted(os.listdir(out)) == [
        "notes.txt", "ravdess-000000.tar"]
    (out / "notes.txt").unlink()
    (out / "ravdess-000000.tar").unlink()
    first = _build(tree, out)
    again = _build(tree, out, force=True)  # its own build is rebuilt in place
    assert not again.reused and [s["file"] for s in again.manifest.shards] == [
        s["file"] for s in first.manifest.shards]


def test_dry_run_counts_skipped_files_apart(tree, capsys):
    (tree / "Actor_01" / "03-01-02-01-01-01-01.wav").write_bytes(b"RIFF not really a wave file")
    (tree / "Actor_01" / "notes.wav").write_bytes(b"x")
    assert main(["--dataset", "ravdess", "--data-root", str(tree), "--dry-run"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["files"] == 9 and summary["files_skipped"] == 2 == len(summary["skipped"])
    assert sum(summary["classes"].values()) == 9 == sum(summary["speakers"].values())


def test_a_shard_member_named_as_a_path_is_refused(tree, tmp_path):
    """A crafted shard (checksums and manifest digest updated, as anyone who can write the folder
    could) whose members are named ``../../x.npy`` is refused, and nothing is written outside it."""
    import io
    import tarfile

    from emohrnet.data.loading import DamagedShardError

    out = tmp_path / "deep" / "er" / "shards"
    manifest = _build(tree, out).manifest
    shard = manifest.shards[0]
    payload = io.BytesIO()
    np.save(payload, np.zeros((32, 10), np.float16))
    with tarfile.open(out / shard["file"], "w") as tar:
        for name, data in (("../../x.npy", payload.getvalue()), ("../../x.cls", b"0"),
                           ("../../x.json", b"{}")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    shard["sha256"] = sha256_file(out / shard["file"])
    manifest.utterances.append({"key": "../../x", "speaker": "01", "label": "neutral", "session": None,
                                   "frames": 10, "shard": shard["file"]})
    (out / "manifest.json").write_text(manifest.to_json())  # with its digest recomputed
    with pytest.raises(DamagedShardError, match=r"member '\.\./\.\./x\.npy' is not a plain file name"):
        load_examples(out, Manifest.read(out), ["../../x"])
    assert not list(tmp_path.rglob("x.npy")) and not list(tmp_path.rglob("x.cls"))


def test_cli_flags_reach_the_build(tree, tmp_path, capsys):
    """--features mfcc, --n-mfcc, --augment-copies, --corpus-option and --force, through the command line."""
    out = tmp_path / "cli"
    argv = ["--dataset", "ravdess", "--data-root", str(tree), "--out", str(out), "--workers", "1",
            "--features", "mfcc", "--n-mfcc", "13", "--augment-copies", "1", "--corpus-option", "include_song=false"]
    assert main(argv) == 0
    assert capsys.readouterr().out.strip().endswith(str(out))
    manifest = Manifest.read(out)
    assert manifest.feature_kind == "mfcc" and manifest.features["n_mfcc"] == 13
    assert manifest.augmentation["copies"] == 1 and len(manifest.augmented) == manifest.num_utterances == 9
    assert manifest.corpus["options"] == {"include_song": False}
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.tar")}
    assert main(argv) == 0  # the same flags: reused
    assert "reusing shards" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.tar")} == stamps
    assert main([*argv, "--force"]) == 0  # rebuilt
    assert all(p.stat().st_mtime_ns != stamps[p.name] for p in out.glob("*.tar"))
    capsys.readouterr()
    assert main([*argv[:-1], "include_song=true", "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["files"] == 9  # the fixture holds no song files
