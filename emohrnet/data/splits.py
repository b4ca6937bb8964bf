"""Train / validation / test splits.

Two protocols:

- ``"speaker"`` (default): speaker-independent folds. The corpus cuts its speakers into groups
  (:meth:`emohrnet.corpora.Corpus.fold_groups`, recorded in the shard manifest); fold ``k``
  tests on group ``k``, validates on group ``(k + 1) % n`` and trains on the rest, so no speaker
  is in two of train/val/test. RAVDESS: 6 folds of 4 test actors, 4 validation actors and 16
  training actors.
- ``"random"``: a stratified random utterance split (80/10/10), the protocol the EmoHRNet paper's
  numbers most likely come from. Speakers are shared between train and test, so its figures are
  not speaker-independent; every result labels which protocol produced it.

Splits work on manifest entries: dicts with at least ``key``, ``speaker`` and ``label``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

PROTOCOLS = ("speaker", "random")


@dataclass
class Split:
    """Utterance keys of one fold.

    Attributes:
        protocol: ``"speaker"`` or ``"random"``.
        fold: fold index (for ``"random"``, the seed of the split).
        train, val, test: utterance keys (WebDataset sample keys).
        speakers: speaker ids in each part, ``{"train": [...], "val": [...], "test": [...]}``.
    """

    protocol: str
    fold: int
    train: list[str]
    val: list[str]
    test: list[str]
    speakers: dict[str, list[str]] = field(default_factory=dict)

    def describe(self) -> str:
        """One line naming the protocol, e.g. for result tables and TensorBoard."""
        n = f"{len(self.train)}/{len(self.val)}/{len(self.test)} utterances train/val/test"
        if self.protocol == "speaker" and set(self.speakers["val"]) <= set(self.speakers["train"]):
            return (
                f"speaker-independent test, fold {self.fold}: test speakers {','.join(self.speakers['test'])}; "
                f"validation is 10% of the training speakers' utterances (only two speaker groups); {n}"
            )
        if self.protocol == "speaker":
            return (
                f"speaker-independent fold {self.fold}: test speakers {','.join(self.speakers['test'])}; "
                f"val speakers {','.join(self.speakers['val'])}; {len(self.speakers['train'])} train "
                f"speakers; {n}"
            )
        return (
            f"random stratified utterance split (seed {self.fold}; speakers shared between train and "
            f"test, NOT speaker-independent; the protocol the paper's numbers most likely come from); {n}"
        )


def speaker_split(entries: Sequence[dict[str, Any]], groups: Sequence[Sequence[str]], fold: int) -> Split:
    """Speaker-independent split of fold ``fold``.

    With three or more groups, fold ``k`` tests on group ``k``, validates on group
    ``(k + 1) % n`` and trains on the rest. With exactly two groups (TESS's two speakers), it
    tests on group ``k`` and holds out a stratified 10% of the other group's utterances for
    validation: the test stays speaker-independent, validation does not (said in
    :meth:`Split.describe`).

    Args:
        entries: manifest entries with ``key``, ``speaker`` and ``label``.
        groups: the corpus's speaker groups (at least 2).
        fold: ``0 <= fold < len(groups)``.

    Raises:
        ValueError: fewer than 2 groups, or ``fold`` out of range.
    """
    n = len(groups)
    if n < 2:
        raise ValueError(
            f"speaker-independent splits need at least 2 speaker groups, the corpus has {n}; "
            "use --protocol random"
        )
    if not 0 <= fold < n:
        raise ValueError(f"fold {fold} is out of range: this corpus has folds 0..{n - 1}")
    test_s = set(groups[fold])
    val_s = set(groups[(fold + 1) % n]) if n >= 3 else set()
    parts: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for e in entries:
        part = "test" if e["speaker"] in test_s else "val" if e["speaker"] in val_s else "train"
        parts[part].append(e["key"])
    if n == 2:
        pool = [e for e in entries if e["speaker"] not in test_s]
        train, val = _train_test_split([e["key"] for e in pool], test_size=0.1, random_state=fold,
                                      stratify=[e["label"] for e in pool])
        parts["train"], parts["val"] = sorted(train), sorted(val)
    speaker_of = {e["key"]: e["speaker"] for e in entries}
    speakers = {name: sorted({speaker_of[k] for k in keys}) for name, keys in parts.items()}
    return Split("speaker", fold, parts["train"], parts["val"], parts["test"], speakers)


def _train_test_split(*arrays, **options):
    """``sklearn.model_selection.train_test_split``, imported on first use: importing scikit-learn
    costs about 0.65 s of CPU, paid otherwise by every Ray Train worker and trial process, while only
    the random and two-speaker protocols split with it."""
    from sklearn.model_selection import train_test_split

    return train_test_split(*arrays, **options)


def random_split(
    entries: Sequence[dict[str, Any]], seed: int = 0, val_fraction: float = 0.1, test_fraction: float = 0.1
) -> Split:
    """Stratified random utterance split (labelled as not speaker-independent).

    Args:
        entries: manifest entries with ``key``, ``speaker`` and ``label``.
        seed: random seed (the ``--fold`` of the random protocol).
        val_fraction, test_fraction: shares of all utterances.

    Raises:
        ValueError: a class has too few utterances to stratify.
    """
    keys = [e["key"] for e in entries]
    labels = [e["label"] for e in entries]
    rest, test, rest_y, _ = _train_test_split(keys, labels, test_size=test_fraction, stratify=labels,
                                             random_state=seed)
    train, val = _train_test_split(rest, test_size=val_fraction / (1 - test_fraction), stratify=rest_y,
                                  random_state=seed)
    speaker_of = {e["key"]: e["speaker"] for e in entries}
    speakers = {name: sorted({speaker_of[k] for k in part}) for name, part in
                (("train", train), ("val", val), ("test", test))}
    return Split("random", seed, sorted(train), sorted(val), sorted(test), speakers)


def make_split(
    entries: Sequence[dict[str, Any]], groups: Sequence[Sequence[str]], protocol: str = "speaker", fold: int = 0
) -> Split:
    """The split of ``protocol`` (``"speaker"`` or ``"random"``) and ``fold``.

    Raises:
        ValueError: unknown protocol, or the protocol's own errors.
    """
    if protocol == "speaker":
        return speaker_split(entries, groups, fold)
    if protocol == "random":
        return random_split(entries, seed=fold)
    raise ValueError(f"unknown protocol {protocol!r}; use one of {PROTOCOLS}")
