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

from emohrnet.corpora.base import Corpus, Named

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
    "03": "male", "08": "female", "09": "female", "10": "male", "11": "male", "12": "male", "13": "female",
    "14": "female", "15": "male", "16": "female"
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
    audio_subfolder = "wav"
    n_folds = 10
    source = (
        "Burkhardt, Paeschke, Rolfes, Sendlmeier & Weiss (2005), A database of German emotional "
        "speech, Interspeech 2005, pp. 1517-1520; free download from http://emodb.bilderbar.info/"
    )
    expected_utterances, expected_speakers = 535, 10

    def parse_name(self, path: Path) -> Named | str:
        """``<speaker><text><emotion><version>``, e.g. ``03a01Fa``."""
        m = _NAME.match(path.stem)
        if not m:
            return "name is not <speaker NN><text a01-b10><emotion><version>"
        speaker, text, emotion, version = m.groups()
        text, emotion, version = text.lower(), emotion.upper(), version.lower()
        if emotion not in CODES:
            return f"emotion letter {emotion} is not one of {' '.join(CODES)}"
        if speaker not in SPEAKERS:
            return f"speaker {speaker} is not one of {' '.join(SPEAKERS)}"
        return Named(f"{speaker}{text}{emotion}{version}", speaker, CODES[emotion],
                     {"text": text, "version": version, "sex": SPEAKERS[speaker]})
