"""CREMA-D reader: the Crowd-sourced Emotional Multimodal Actors Dataset.

Cao, Cooper, Keutmann, Gur, Nenkova & Verma (2014), IEEE Transactions on Affective Computing
5(4): 377-390. Layout as distributed (the repository's ``AudioWAV`` folder)::

    AudioWAV/<actor>_<sentence>_<emotion>_<level>.wav      (or .flac)

e.g. ``AudioWAV/1001_DFA_ANG_XX.wav``: actor ``1001`` (1001-1091), sentence ``DFA`` (one of 12
three-letter codes), emotion ``ANG`` and level ``XX`` (``LO`` low, ``MD`` medium, ``HI`` high,
``XX`` unspecified). The labels are the acted (intended) emotions, not the crowd ratings.
"""

from __future__ import annotations

import re
from pathlib import Path

from emohrnet.corpora.base import Corpus, Named

_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$", re.IGNORECASE)

CODES: dict[str, str] = {
    "ANG": "anger", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"
}
"""Emotion code -> class."""

LEVELS: dict[str, str] = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}
"""Emotion level code -> name."""

FIRST_ACTOR, LAST_ACTOR = 1001, 1091


class CremaD(Corpus):
    """CREMA-D utterances: 91 actors (1001-1091) x 12 sentences, 7442 files.

    6 classes: anger, disgust, fear, happy, neutral, sad (codes ANG DIS FEA HAP NEU SAD, in
    that order). Speakers are the actor numbers ``"1001"`` ... ``"1091"``; a name with an actor
    outside that range, an unknown emotion or an unknown level is skipped. Speaker-independent
    protocol: 5 folds of near-equal numbers of actors, each fold consecutive actor numbers
    (the base :meth:`Corpus.fold_groups`: 19, 18, 18, 18, 18 actors). No options.

    The root is the folder holding ``AudioWAV/`` (then only ``AudioWAV/`` is read) or the
    ``AudioWAV`` folder itself (or any folder of such files).

    ``extra``: ``sentence`` (e.g. ``"DFA"``) and ``level`` (low, medium, high, unspecified).

    Raises (from :meth:`scan`):
        CorpusError: the generic cases of :meth:`Corpus.scan` (missing, empty, no CREMA-D name).
    """

    name = "cremad"
    classes = tuple(CODES.values())
    layout = (
        "AudioWAV/<actor>_<sentence>_<emotion>_<level>.wav or .flac, e.g. AudioWAV/1001_DFA_ANG_XX.wav "
        "(actor 1001-1091, sentence a 3-letter code, emotion ANG DIS FEA HAP NEU SAD, level LO MD HI XX); "
        "the root is the folder holding AudioWAV/ or the AudioWAV folder itself"
    )
    audio_subfolder = "AudioWAV"
    n_folds = 5
    source = (
        "Cao, Cooper, Keutmann, Gur, Nenkova & Verma (2014), CREMA-D: Crowd-sourced Emotional "
        "Multimodal Actors Dataset, IEEE Transactions on Affective Computing 5(4): 377-390; "
        "https://github.com/CheyneyComputerScience/CREMA-D (Git LFS); Open Database License (ODbL) "
        "v1.0, contents under the Database Contents License (DbCL) v1.0"
    )
    expected_utterances, expected_speakers = 7442, 91

    def parse_name(self, path: Path) -> Named | str:
        """``<actor>_<sentence>_<emotion>_<level>``, e.g. ``1001_DFA_ANG_XX``."""
        m = _NAME.match(path.stem)
        if not m:
            return "name is not <actor>_<sentence>_<emotion>_<level>"
        actor, sentence, emotion, level = (g.upper() for g in m.groups())
        if not FIRST_ACTOR <= int(actor) <= LAST_ACTOR:
            return f"actor {actor} is not 1001-1091"
        if emotion not in CODES:
            return f"emotion code {emotion} is not one of {' '.join(CODES)}"
        if level not in LEVELS:
            return f"emotion level {level} is not one of {' '.join(LEVELS)}"
        return Named(f"{actor}_{sentence}_{emotion}_{level}", actor, CODES[emotion],
                     {"sentence": sentence, "level": LEVELS[level]})
