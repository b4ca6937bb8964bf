"""Corpus readers on small generated trees with each corpus's real naming.

Every reader: label parsing per code, speaker parsing, speaker-independent folds, badly named
files reported as skipped, another corpus's folder refused. Then each reader's own features
(IEMOCAP options and labels, TESS and SAVEE naming variants, alternative roots).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import soundfile as sf
from corpus_trees import (
    Written,
    write_audio,
    write_cremad_tree,
    write_emodb_tree,
    write_emovo_tree,
    write_files,
    write_iemocap_tree,
    write_ravdess_tree,
    write_savee_tree,
    write_tess_tree,
)

from emohrnet.corpora import CORPORA, Corpus, CorpusError, check_options
from emohrnet.corpora.cremad import CremaD
from emohrnet.corpora.emodb import EmoDB
from emohrnet.corpora.emovo import Emovo
from emohrnet.corpora.iemocap import Iemocap
from emohrnet.corpora.ravdess import Ravdess
from emohrnet.corpora.savee import Savee
from emohrnet.corpora.tess import Tess
from emohrnet.data.splits import make_split


@dataclass(frozen=True)
class Case:
    """A reader, a writer of its full tree (every speaker, every code) and the expected facts."""

    reader: type[Corpus]
    write: Callable[[Path], list[Written]]
    labels: dict[str, str]  # label code -> class, in class order (the spec, independent of the reader)
    n_folds: int
    bad: tuple[str, ...]  # files the reader must skip, relative to the root

    def __str__(self) -> str:
        return self.reader.name


_TESS_TOP = "TESS Toronto emotional speech set data"
CASES = [
    Case(
        Ravdess,
        lambda root: write_ravdess_tree(root, actors=range(1, 25)),
        {
            "01": "neutral",
            "02": "calm",
            "03": "happy",
            "04": "sad",
            "05": "angry",
            "06": "fearful",
            "07": "disgust",
            "08": "surprised",
        },
        6,
        ("Actor_01/03-01-09-01-01-01-01.wav", "Actor_01/readme.wav", "Actor_02/03-01-05-01-01-01-01.flac"),
    ),
    Case(
        Iemocap,
        write_iemocap_tree,
        {"neu": "neutral", "hap": "happy", "exc": "happy", "ang": "angry", "sad": "sad"},
        5,
        (
            "IEMOCAP_full_release/Session1/sentences/wav/Ses01F_impro01/._Ses01F_impro01_F000.wav",
            "IEMOCAP_full_release/Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_X000.wav",
            "IEMOCAP_full_release/Session2/sentences/wav/Ses02F_impro01/notes.flac",
        ),
    ),
    Case(
        Emovo,
        write_emovo_tree,
        {
            "dis": "disgust",
            "gio": "joy",
            "neu": "neutral",
            "pau": "fear",
            "rab": "anger",
            "sor": "surprise",
            "tri": "sadness",
        },
        6,
        ("f1/xyz-f1-b1.wav", "f1/dis-f4-b1.wav", "f2/dis-f1-b2.wav", "f1/readme.wav"),
    ),
    Case(
        EmoDB,
        write_emodb_tree,
        {"W": "anger", "L": "boredom", "E": "disgust", "A": "fear", "F": "happiness", "T": "sadness", "N": "neutral"},
        10,
        ("wav/03a01Xa.wav", "wav/07a01Fa.wav", "wav/03a01F.wav", "wav/03c01Fa.flac"),
    ),
    Case(
        CremaD,
        write_cremad_tree,
        {"ANG": "anger", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"},
        5,
        (
            "AudioWAV/1001_DFA_XYZ_XX.wav",
            "AudioWAV/0999_DFA_ANG_XX.wav",
            "AudioWAV/1001_DFA_ANG_ZZ.wav",
            "AudioWAV/1001-DFA-ANG-XX.wav",
        ),
    ),
    Case(
        Tess,
        write_tess_tree,
        {e: e for e in ("angry", "disgust", "fear", "happy", "neutral", "ps", "sad")},
        2,
        (
            f"{_TESS_TOP}/OAF_angry/OAF_back_furious.wav",
            f"{_TESS_TOP}/OAF_angry/back.wav",
            "misc/ZZZ_back_angry.wav",
        ),
    ),
    Case(
        Savee,
        write_savee_tree,
        {
            "a": "anger",
            "d": "disgust",
            "f": "fear",
            "h": "happiness",
            "n": "neutral",
            "sa": "sadness",
            "su": "surprise",
        },
        4,
        (
            "AudioData/DC/s01.wav",
            "AudioData/DC/x01.wav",
            "AudioData/JE/DC_a09.wav",
            "AudioData/other/a01.wav",
        ),
    ),
]
MINE = [c for c in CASES if c.reader is not Ravdess]


def _by_path(utterances) -> dict[Path, object]:
    return {Path(u.path): u for u in utterances}


# --------------------------------------------------------------------------------- every reader
@pytest.mark.parametrize("case", CASES, ids=str)
def test_labels_speakers_and_formats(case: Case, tmp_path: Path) -> None:
    written = case.write(tmp_path)
    result = case.reader(tmp_path).scan()
    expected = [w for w in written if w.code in case.labels]
    assert result.skipped == []
    assert len(result.utterances) == len(expected)
    assert tuple(case.reader(tmp_path).classes) == tuple(dict.fromkeys(case.labels.values()))
    by_path = _by_path(result.utterances)
    for w in expected:
        u = by_path[w.path.resolve()]
        assert (u.speaker, u.label, u.utterance_id) == (w.speaker, case.labels[w.code], w.utterance_id)
        assert u.corpus == case.reader.name
        json.dumps(u.to_dict())
    assert {u.label for u in result.utterances} == set(case.labels.values())
    assert len({u.key for u in result.utterances}) == len(result.utterances)
    # the tree mixes formats: a stereo WAV, FLACs at 22.05 kHz; all were read
    infos = [sf.info(str(w.path)) for w in expected]
    assert any(i.channels == 2 for i in infos)
    assert any(i.format == "FLAC" and i.samplerate == 22_050 for i in infos)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_folds_are_speaker_independent(case: Case, tmp_path: Path) -> None:
    """Every fold that :func:`emohrnet.data.splits.make_split` gives keeps each speaker in one part."""
    case.write(tmp_path)
    reader = case.reader(tmp_path)
    utterances = reader.scan().utterances
    entries = [{"key": u.key, "speaker": u.speaker, "label": u.label} for u in utterances]
    speakers = sorted({u.speaker for u in utterances})
    groups = reader.fold_groups(speakers)
    assert len(groups) == case.n_folds == reader.n_folds
    assert sorted(s for g in groups for s in g) == speakers  # every speaker in exactly one group
    if len(groups) < 3:
        return  # two speakers (TESS): validation comes from the training speaker, see test_splits
    speaker_of = {e["key"]: e["speaker"] for e in entries}
    for k in range(len(groups)):
        split = make_split(entries, groups, "speaker", k)
        parts = {name: {speaker_of[key] for key in getattr(split, name)} for name in ("train", "val", "test")}
        assert parts["test"] == set(groups[k]) and parts["val"] == set(groups[(k + 1) % len(groups)])
        assert not parts["train"] & parts["val"] and not parts["train"] & parts["test"]
        assert not parts["val"] & parts["test"]
        assert sorted(split.train + split.val + split.test) == sorted(speaker_of)  # every utterance once
        assert split.speakers == {name: sorted(v) for name, v in parts.items()}


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_names_are_skipped_not_raised(case: Case, tmp_path: Path) -> None:
    written = case.write(tmp_path)
    bad = {p.resolve() for p in write_files(tmp_path, case.bad)}
    result = case.reader(tmp_path).scan()
    skipped = {Path(s.path).resolve(): s.reason for s in result.skipped}
    assert set(skipped) == bad
    assert all(reason for reason in skipped.values())
    assert not bad & set(_by_path(result.utterances))
    assert len(result.utterances) == len([w for w in written if w.code in case.labels])


@pytest.mark.parametrize("case", CASES, ids=str)
def test_duplicate_in_another_format_is_skipped(case: Case, tmp_path: Path) -> None:
    written = case.write(tmp_path)
    first = next(w for w in written if w.code in case.labels)
    twin = write_audio(first.path.with_suffix(".flac" if first.path.suffix == ".wav" else ".wav"))
    result = case.reader(tmp_path).scan()
    assert [u.utterance_id for u in result.utterances].count(first.utterance_id) == 1
    assert [s.reason.startswith("duplicate of") for s in result.skipped] == [True]
    assert result.skipped[0].path in (str(first.path), str(twin))


@pytest.fixture(scope="module")
def small_trees(tmp_path_factory) -> dict[str, Path]:
    """One small tree per corpus, shared (read-only) by the cross-corpus tests."""
    trees = {}
    for case in CASES:
        root = tmp_path_factory.mktemp(case.reader.name)
        case.write(root)
        trees[case.reader.name] = root
    return trees


@pytest.mark.parametrize("case", CASES, ids=str)
def test_another_corpus_is_refused_with_the_expected_layout(case: Case, small_trees: dict[str, Path]) -> None:
    """Each reader refuses every other corpus's tree, naming the folder and the layout it expected."""
    assert case.reader(small_trees[case.reader.name]).scan().utterances  # its own tree reads
    for other, root in small_trees.items():
        if other == case.reader.name:
            continue
        with pytest.raises(CorpusError) as err:
            case.reader(root).scan()
        assert str(root) in str(err.value) and case.reader.layout in str(err.value), (other, str(err.value))


def test_empty_and_missing_folders_are_refused_with_the_expected_layout(tmp_path: Path) -> None:
    """One branch of the base class: a missing folder, a file, an empty folder (every reader)."""
    (tmp_path / "file.wav").write_bytes(b"")
    for case in CASES:
        empty = tmp_path / f"empty-{case.reader.name}"
        empty.mkdir()
        for root, says in ((tmp_path / "absent", "no such folder"), (tmp_path / "file.wav", "is a file"),
                           (empty, "")):
            with pytest.raises(CorpusError) as err:
                case.reader(root).scan()
            message = str(err.value)
            assert str(root) in message and says in message and case.reader.layout in message, message


def test_unknown_options_are_refused() -> None:
    for case in CASES:
        with pytest.raises(TypeError, match="no_such_option"):
            case.reader(Path("."), no_such_option=1)
        with pytest.raises(CorpusError, match=r"--corpus-option: .*no_such_option"):
            check_options(case.reader.name, {"no_such_option": 1})


EXPECTED_RELEASE = {"iemocap": 5531, "emovo": 588, "emodb": 535, "cremad": 7442, "tess": 2800, "savee": 480}


@pytest.mark.parametrize("case", MINE, ids=str)
def test_class_attributes_and_registry(case: Case) -> None:
    cls = case.reader
    assert CORPORA[cls.name] is cls
    assert cls.layout and cls.source and cls.default_protocol == "speaker"
    assert cls.expected_utterances == EXPECTED_RELEASE[cls.name]
    assert cls.n_folds == case.n_folds


# --------------------------------------------------------------------------------- TESS
def test_tess_naming_oddities(tmp_path: Path) -> None:
    written = write_tess_tree(tmp_path)
    names = {w.path.parent.name for w in written} | {w.path.stem for w in written}
    for odd in (
        "OAF_Pleasant_surprise",
        "YAF_pleasant_surprised",
        "oaf_disgust",
        "OA_bite_neutral",
        "YAF_back_pleasant_surprised",
        "OAF_back_ps",
        "YAF_bite_fearful",
    ):
        assert odd in names  # the fixture does hold the oddity
    by_id = {u.utterance_id: u for u in Tess(tmp_path).scan().utterances}
    odd = by_id["OAF_bite_neutral"]
    assert (odd.speaker, odd.label, Path(odd.path).name) == ("OAF", "neutral", "OA_bite_neutral.wav")
    assert {u.speaker for u in by_id.values()} == {"OAF", "YAF"}
    ps = {Path(u.path).stem for u in by_id.values() if u.label == "ps"}
    assert ps == {"OAF_back_ps", "OAF_bite_pleasant_surprise", "YAF_back_pleasant_surprised", "YAF_bite_ps"}
    assert by_id["YAF_bite_fear"].label == "fear"
    assert by_id["OAF_back_sad"].extra["folder"] == "OAF_Sad"


def test_tess_speaker_comes_from_the_folder(tmp_path: Path) -> None:
    write_files(tmp_path, ["YAF_happy/OAF_dog_happy.wav", "misc/yaf_cat_sad.flac"])
    by_id = {u.utterance_id: u for u in Tess(tmp_path).scan().utterances}
    assert set(by_id) == {"YAF_dog_happy", "YAF_cat_sad"}  # folder wins; the name when no folder says


def test_tess_protocol_note() -> None:
    assert "random" in Tess.protocol_note and "2" in Tess.protocol_note
    assert "random" in Tess.__doc__


# --------------------------------------------------------------------------------- SAVEE
@pytest.mark.parametrize("layout", ["original", "flat"])
def test_savee_layouts(layout: str, tmp_path: Path) -> None:
    written = write_savee_tree(tmp_path, numbers=(1, 15), layout=layout)
    assert all(("AudioData" in w.path.parts) == (layout == "original") for w in written)
    utterances = Savee(tmp_path).scan().utterances
    got = {(u.utterance_id, u.speaker, u.label) for u in utterances}
    assert ("DC_sa01", "DC", "sadness") in got and ("KL_su15", "KL", "surprise") in got
    assert ("JK_a15", "JK", "anger") in got and ("JE_n01", "JE", "neutral") in got
    assert len(got) == len(written) == 4 * 7 * 2


def test_savee_both_layouts_together(tmp_path: Path) -> None:
    write_savee_tree(tmp_path, speakers=("DC", "JE"), layout="original")
    write_savee_tree(tmp_path / "flat", speakers=("JK", "KL"), layout="flat")
    result = Savee(tmp_path).scan()
    assert {u.speaker for u in result.utterances} == {"DC", "JE", "JK", "KL"}
    assert result.skipped == []


# --------------------------------------------------------------------------------- alternative roots
@pytest.mark.parametrize(
    ("reader", "write", "sub"),
    [(EmoDB, write_emodb_tree, "wav"), (CremaD, write_cremad_tree, "AudioWAV")],
    ids=["emodb", "cremad"],
)
def test_root_may_be_the_audio_folder(reader, write, sub: str, tmp_path: Path) -> None:
    written = write(tmp_path)
    write_files(tmp_path / "other", ["03a02Fa.wav", "1001_ITS_ANG_XX.wav"])  # outside the audio folder
    from_top = [u.utterance_id for u in reader(tmp_path).scan().utterances]
    from_sub = [u.utterance_id for u in reader(tmp_path / sub).scan().utterances]
    assert from_top == from_sub == sorted(w.utterance_id for w in written)


def test_emovo_names_are_case_insensitive(tmp_path: Path) -> None:
    write_emovo_tree(tmp_path, speakers=("f1",), emotions=("dis",), sentences=("b1",))
    (u,) = Emovo(tmp_path).scan().utterances
    assert Path(u.path).name == "Dis-f1-b1.wav"
    assert (u.utterance_id, u.speaker, u.label) == ("dis-f1-b1", "f1", "disgust")


def test_cremad_folds_are_near_equal_consecutive_actors() -> None:
    actors = [str(a) for a in range(1001, 1092)]
    groups = CremaD("x").fold_groups(actors)
    assert [len(g) for g in groups] == [19, 18, 18, 18, 18]
    assert [s for g in groups for s in g] == actors
