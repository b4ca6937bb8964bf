"""The IEMOCAP reader: its class options (four, four without excited, five, all sentences), the
improvised-only option, skipped sentences without a label, speakers and sessions, leave-one-session-out
folds, the roots it accepts and the folders it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest
from corpus_trees import write_files, write_iemocap_tree

from emohrnet.corpora import CorpusError
from emohrnet.corpora.iemocap import Iemocap

# --------------------------------------------------------------------------------- IEMOCAP
FOUR = {"neu": "neutral", "hap": "happy", "exc": "happy", "ang": "angry", "sad": "sad"}


@pytest.mark.parametrize(
    ("option", "labels", "classes"),
    [
        ("four", FOUR, ("neutral", "happy", "angry", "sad")),
        (
            "four_no_excited",
            {k: v for k, v in FOUR.items() if k != "exc"},
            ("neutral", "happy", "angry", "sad"),
        ),
        ("five", {**FOUR, "fru": "frustrated"}, ("neutral", "happy", "angry", "sad", "frustrated")),
    ],
)
def test_iemocap_class_options(option, labels, classes, tmp_path: Path) -> None:
    written = write_iemocap_tree(tmp_path, sessions=(1, 2))
    reader = Iemocap(tmp_path, classes=option)
    result = reader.scan()
    assert reader.classes == classes
    assert result.skipped == []
    by_path = {Path(u.path): u for u in result.utterances}
    kept = [w for w in written if w.code in labels]
    assert len(result.utterances) == len(kept)
    for w in kept:
        assert by_path[w.path.resolve()].label == labels[w.code]
    left_out = sum(1 for w in written if w.code not in labels)
    assert sum(reader.left_out.values()) == left_out > 0


def test_iemocap_improvised_only(tmp_path: Path) -> None:
    write_iemocap_tree(tmp_path, sessions=(1, 2))
    both = Iemocap(tmp_path).scan().utterances
    impro = Iemocap(tmp_path, improvised_only=True).scan().utterances
    assert {u.extra["improvised"] for u in both} == {True, False}
    assert impro and all(u.extra["improvised"] and "impro" in u.extra["dialog"] for u in impro)
    assert len(impro) == sum(u.extra["improvised"] for u in both) == len(both) // 2


def test_iemocap_missing_label_is_skipped(tmp_path: Path) -> None:
    written = write_iemocap_tree(tmp_path, sessions=(1,), unlabeled=("Ses01F_impro01_M003",))
    (missing,) = [w for w in written if w.code is None]
    result = Iemocap(tmp_path).scan()
    assert [(Path(s.path), s.reason) for s in result.skipped] == [(missing.path, "no label in EmoEvaluation")]
    assert "Ses01F_impro01_M003" not in {u.utterance_id for u in result.utterances}


def test_iemocap_speaker_session_and_extra(tmp_path: Path) -> None:
    written = write_iemocap_tree(tmp_path, sessions=(1, 3), codes=("neu", "ang"))
    by_id = {u.utterance_id: u for u in Iemocap(tmp_path).scan().utterances}
    u = by_id["Ses01F_impro01_M003"]  # the male actor of session 1, in a dialog led by the female
    assert (u.speaker, u.session, u.label) == ("Ses01M", "Ses01", "angry")
    assert by_id["Ses03M_script01_1_F000"].speaker == "Ses03F"
    for w in written:
        extra = by_id[w.utterance_id].extra
        assert extra["dialog"] == w.extra["dialog"]
        assert extra["improvised"] == ("impro" in w.extra["dialog"])
        assert (extra["start"], extra["end"]) == pytest.approx((w.extra["start"], w.extra["end"]))
        assert (extra["valence"], extra["arousal"], extra["dominance"]) == pytest.approx(w.extra["vad"])
    # whole-dialog recordings (SessionN/dialog/wav) are neither utterances nor skipped
    assert not any("dialog/wav" in u.path for u in by_id.values())


def test_iemocap_folds_leave_one_session_out(tmp_path: Path) -> None:
    write_iemocap_tree(tmp_path, codes=("neu",), scripted=False)
    reader = Iemocap(tmp_path)
    speakers = sorted({u.speaker for u in reader.scan().utterances})
    assert reader.fold_groups(speakers) == [[f"Ses0{n}F", f"Ses0{n}M"] for n in range(1, 6)]
    # grouped by session, not cut into pairs: a session with one speaker is still one group
    partial = [s for s in speakers if s != "Ses02M"]
    assert reader.fold_groups(partial) == [["Ses01F", "Ses01M"], ["Ses02F"]] + [
        [f"Ses0{n}F", f"Ses0{n}M"] for n in range(3, 6)
    ]


@pytest.mark.parametrize("layout", ["parent", "release", "renamed"])
def test_iemocap_roots(layout: str, tmp_path: Path) -> None:
    folder = {"parent": "IEMOCAP_full_release", "release": "IEMOCAP_full_release", "renamed": "iemocap_v1"}
    written = write_iemocap_tree(tmp_path, sessions=(1,), codes=("sad",), release_folder=folder[layout])
    root = tmp_path / folder[layout] if layout == "release" else tmp_path
    ids = [u.utterance_id for u in Iemocap(root).scan().utterances]
    assert ids == sorted(w.utterance_id for w in written)


def test_iemocap_refuses_folders_without_sessions_or_labels(tmp_path: Path) -> None:
    write_files(tmp_path / "IEMOCAP_full_release", ["dialog/Ses01F_impro01_F000.wav"])
    with pytest.raises(CorpusError, match=r"Session1 \.\.\. Session5") as err:
        Iemocap(tmp_path).scan()
    assert str(tmp_path) in str(err.value)
    labelled = tmp_path / "labelled"
    write_iemocap_tree(labelled, sessions=(1,), codes=("neu",))
    for txt in labelled.rglob("EmoEvaluation/*.txt"):
        txt.unlink()
    with pytest.raises(CorpusError, match="EmoEvaluation") as err:
        Iemocap(labelled).scan()
    assert str(labelled) in str(err.value)


def test_iemocap_bad_options() -> None:
    with pytest.raises(ValueError, match="six"):
        Iemocap("x", classes="six")
