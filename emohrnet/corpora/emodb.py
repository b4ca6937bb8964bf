"""EMO-DB reader: the Berlin Database of Emotional Speech.

Burkhardt, Paeschke, Rolfes, Sendlmeier & Weiss (2005), Interspeech 2005, pp. 1517-1520.
Layout as distributed (``download.zip`` unpacked)::

    wav/<speaker><text><emotion><version>.wav      (or .flac)

e.g. ``wav/03a01Fa.wav``: speaker ``03``, text ``a01``, emotion ``F`` (happiness), version
``a``. The other folders of the release (``lablaut``, ``labsilb``, ``silb``) hold no audio.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .base import Corpus, ScanResult, Skipped, Utterance

_NAME = re.compile(r"^(\d\d)([ab]\d\d)([A-Za-z])([a-z])$", re.IGNORECASE)

CODES: dict[str, str] = {
    "W": "anger",  # Wut
    "L": "boredom",  # Langeweile
    "E": "disgust",  # Ekel
    "A": "fear",  # Angst
    "F": "happiness",  # Freude
    "T": "sadness",  # Trauer
    "N": "neutral",
}
"""Emotion letter (German initial) -> class."""

SPEAKERS: dict[str, str] = {
    "03": "male",
    "08": "female",
    "09": "female",
    "10": "male",
    "11": "male",
    "12": "male",
    "13": "female",
    "14": "female",
    "15": "male",
    "16": "female",
}
"""The 10 speakers and their sex."""


class EmoDB(Corpus):
    """EMO-DB utterances: 10 speakers (5 female, 5 male), 10 texts, 535 files.

    7 classes: anger, boredom, disgust, fear, happiness, sadness, neutral (letters W L E A F T
    N, in that order). Speakers are ``"03" "08" "09" "10" "11" "12" "13" "14" "15" "16"``; a
    name with another speaker number is skipped. Speaker-independent protocol:
    leave-one-speaker-out, 10 folds. No options.

    The root is the folder that holds ``wav/`` (then only ``wav/`` is read) or the ``wav``
    folder itself.

    ``extra``: ``text`` (e.g. ``"a01"``), ``version`` (e.g. ``"a"``) and ``sex``.

    Raises (from :meth:`scan`):
        CorpusError: the generic cases of :meth:`Corpus.scan` (missing, empty, no EMO-DB name).
    """

    name = "emodb"
    classes = tuple(CODES.values())
    layout = (
        "wav/<speaker><text><emotion><version>.wav or .flac, e.g. wav/03a01Fa.wav (speaker 03 08 09 "
        "10 11 12 13 14 15 16, text a01-b10, emotion letter W L E A F T N, version letter); the root "
        "is the folder holding wav/ or the wav folder itself"
    )
    n_folds = 10
    default_protocol = "speaker"
    source = (
        "Burkhardt, Paeschke, Rolfes, Sendlmeier & Weiss (2005), A database of German emotional "
        "speech, Interspeech 2005, pp. 1517-1520; free download from http://emodb.bilderbar.info/"
    )
    expected_utterances = 535
    """Files in the release (documentation only)."""
    expected_speakers = 10

    def __init__(self, root, **options: Any) -> None:
        """Args:
            root: the folder holding ``wav/``, or the ``wav`` folder.

        Raises:
            TypeError: any option (EMO-DB has none).
        """
        if options:
            raise TypeError(f"emodb: unknown options {sorted(options)}; it takes none")
        super().__init__(root)

    def audio_folder(self) -> Path:
        """``root/wav`` when it is a folder, else the root."""
        wav = self.root / "wav"
        return wav if wav.is_dir() else self.root

    def _scan(self) -> ScanResult:
        utterances: list[Utterance] = []
        skipped: list[Skipped] = []
        seen: dict[str, str] = {}
        for path in self.audio_files(self.audio_folder()):
            m = _NAME.match(path.stem)
            if not m:
                skipped.append(Skipped(str(path), "name is not <speaker NN><text a01-b10><emotion><version>"))
                continue
            speaker, text, emotion, version = m.groups()
            text, emotion, version = text.lower(), emotion.upper(), version.lower()
            if emotion not in CODES:
                skipped.append(
                    Skipped(str(path), f"emotion letter {emotion} is not one of {' '.join(CODES)}")
                )
                continue
            if speaker not in SPEAKERS:
                skipped.append(Skipped(str(path), f"speaker {speaker} is not one of {' '.join(SPEAKERS)}"))
                continue
            uid = f"{speaker}{text}{emotion}{version}"
            if uid in seen:
                skipped.append(Skipped(str(path), f"duplicate of {seen[uid]}"))
                continue
            seen[uid] = str(path)
            utterances.append(
                Utterance(
                    path=str(path.resolve()),
                    corpus=self.name,
                    utterance_id=uid,
                    speaker=speaker,
                    label=CODES[emotion],
                    extra={"text": text, "version": version, "sex": SPEAKERS[speaker]},
                )
            )
        return ScanResult(utterances, skipped)
