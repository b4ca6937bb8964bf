"""Splits: speaker-independent folds keep every speaker in one part; the random split is stratified."""

from __future__ import annotations

from collections import Counter

import pytest
from corpus_trees import write_ravdess_tree
from realdata import RAVDESS, needs_ravdess

from emohrnet.corpora import get_corpus
from emohrnet.data.splits import make_split, random_split, speaker_split


def _entries(utterances):
    return [{"key": u.key, "speaker": u.speaker, "label": u.label} for u in utterances]


def _check_speaker_folds(corpus, entries, n_folds):
    groups = corpus.fold_groups([e["speaker"] for e in entries])
    assert len(groups) == n_folds
    all_test = []
    for fold in range(n_folds):
        split = speaker_split(entries, groups, fold)
        parts = {name: {e["speaker"] for e in entries if e["key"] in set(getattr(split, name))}
                 for name in ("train", "val", "test")}
        assert parts["train"] and parts["val"] and parts["test"]
        assert not parts["train"] & parts["val"]
        assert not parts["train"] & parts["test"]
        assert not parts["val"] & parts["test"]
        assert len(split.train) + len(split.val) + len(split.test) == len(entries)
        assert "speaker-independent" in split.describe()
        all_test += split.test
    assert sorted(all_test) == sorted(e["key"] for e in entries)  # every utterance tested once


@needs_ravdess
def test_ravdess_folds_on_real_records():
    corpus = get_corpus("ravdess", RAVDESS)
    entries = _entries(corpus.scan().utterances)
    assert len(entries) == 1440
    _check_speaker_folds(corpus, entries, 6)
    split = make_split(entries, corpus.fold_groups([e["speaker"] for e in entries]), "speaker", 0)
    assert split.speakers["test"] == ["01", "02", "03", "04"]
    assert len(split.speakers["train"]) == 16 and len(split.test) == 240


def test_ravdess_folds_on_fixture_tree(tmp_path):
    write_ravdess_tree(tmp_path, actors=range(1, 25), emotions=range(1, 9))
    corpus = get_corpus("ravdess", tmp_path)
    _check_speaker_folds(corpus, _entries(corpus.scan().utterances), 6)


def test_random_split_is_stratified_and_labelled(tmp_path):
    write_ravdess_tree(tmp_path, actors=range(1, 9), emotions=range(1, 9), statements=(1, 2), repetitions=(1, 2))
    entries = _entries(get_corpus("ravdess", tmp_path).scan().utterances)
    split = random_split(entries, seed=3)
    assert sorted(split.train + split.val + split.test) == sorted(e["key"] for e in entries)
    assert not set(split.train) & set(split.test)
    label = {e["key"]: e["label"] for e in entries}
    test_counts = Counter(label[k] for k in split.test)
    assert set(test_counts) == set(label.values())  # every class in test
    assert max(test_counts.values()) - min(test_counts.values()) <= 1
    assert "NOT speaker-independent" in split.describe()
    assert random_split(entries, seed=3).test == split.test != random_split(entries, seed=4).test
    # the paper's likely protocol: 80/10/10 of the utterances (256 here: 204/26/26 after stratified rounding)
    assert (len(split.train), len(split.val), len(split.test)) == (204, 26, 26)
    assert not set(split.val) & (set(split.train) | set(split.test))


def test_bad_fold_and_protocol():
    entries = [{"key": f"k{i}", "speaker": str(i % 4), "label": "a"} for i in range(8)]
    groups = [["0"], ["1"], ["2", "3"]]
    with pytest.raises(ValueError, match="out of range"):
        speaker_split(entries, groups, 3)
    with pytest.raises(ValueError, match="unknown protocol"):
        make_split(entries, groups, "loso", 0)


def test_two_speaker_corpus_keeps_test_speaker_independent():
    entries = [{"key": f"k{i}", "speaker": "OAF" if i < 40 else "YAF", "label": "abcd"[i % 4]} for i in range(80)]
    for fold in (0, 1):
        split = speaker_split(entries, [["OAF"], ["YAF"]], fold)
        test_speaker = ["OAF", "YAF"][fold]
        assert split.speakers["test"] == [test_speaker]
        assert test_speaker not in split.speakers["train"] + split.speakers["val"]
        assert len(split.val) == 4 and not set(split.val) & set(split.train)
        assert "validation is 10% of the training speakers" in split.describe()
    with pytest.raises(ValueError, match="at least 2"):
        speaker_split(entries, [["OAF", "YAF"]], 0)
