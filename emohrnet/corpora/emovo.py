"""EMOVO reader: the Italian emotional speech corpus.

Costantini, Iaderola, Paoloni & Todisco (2014), LREC 2014, pp. 3501-3504. Layout as
distributed::

    <speaker>/<emotion>-<speaker>-<sentence>.wav      (or .flac)

with speaker ``f1 f2 f3 m1 m2 m3``, emotion ``dis gio neu pau rab sor tri`` and sentence
``b1 b2 b3 l1 ... d2`` (14 sentences), e.g. ``f1/dis-f1-b1.wav``. Some copies differ in case
(``Dis-f1-b1.wav``): names are read case-insensitively. The recordings are stereo; mixing to
mono happens when they are decoded, not here.
"""

from __future__ import annotations

import re
from pathlib import Path

from emohrnet.corpora.base import Corpus, Named

_NAME = re.compile(r"^([a-z]{3})-([fm][1-3])-([a-z]+\d+)$", re.IGNORECASE)
_SPEAKER_DIR = re.compile(r"^[fm][1-3]$", re.IGNORECASE)

CODES: dict[str, str] = {
    "dis": "disgust", "gio": "joy", "neu": "neutral", "pau": "fear", "rab": "anger", "sor": "surprise",
    "tri": "sadness"
}
"""Emotion code (Italian: disgusto, gioia, neutro, paura, rabbia, sorpresa, tristezza) -> class."""


class Emovo(Corpus):
    """EMOVO utterances: 6 actors (3 female, 3 male) x 7 emotions x 14 sentences = 588 files.

    7 classes: disgust, joy, neutral, fear, anger, surprise, sadness (codes dis gio neu pau
    rab sor tri, in that order). Speakers are ``"f1" "f2" "f3" "m1" "m2" "m3"`` (lower case
    whatever the file name's case). Speaker-independent protocol: leave-one-speaker-out,
    6 folds. Files may lie anywhere below the root; a file inside a speaker folder whose name
    names another speaker is skipped. No options.

    ``extra``: ``sentence`` (e.g. ``"b1"``) and ``sex``.

    Raises (from :meth:`scan`):
        CorpusError: the generic cases of :meth:`Corpus.scan` (missing, empty, no EMOVO name).
    """

    name = "emovo"
    classes = tuple(CODES.values())
    layout = (
        "<speaker>/<emotion>-<speaker>-<sentence>.wav or .flac with speaker f1 f2 f3 m1 m2 m3, emotion "
        "dis gio neu pau rab sor tri and sentence b1-b3, l1-l4, n1-n5, d1-d2 (e.g. f1/dis-f1-b1.wav; "
        "any letter case)"
    )
    n_folds = 6
    source = (
        "Costantini, Iaderola, Paoloni & Todisco (2014), EMOVO Corpus: an Italian Emotional Speech "
        "Database, LREC 2014, pp. 3501-3504; distributed by Fondazione Ugo Bordoni "
        "(http://voice.fub.it/activities/corpora/emovo/); research use, see the distributor's terms"
    )
    expected_utterances, expected_speakers = 588, 6

    def parse_name(self, path: Path) -> Named | str:
        """``<emotion>-<speaker>-<sentence>``, e.g. ``dis-f1-b1``, in the speaker's folder if any."""
        m = _NAME.match(path.stem)
        if not m:
            return "name is not <emotion>-<speaker>-<sentence>"
        emotion, speaker, sentence = (g.lower() for g in m.groups())
        if emotion not in CODES:
            return f"emotion code {emotion!r} is not one of {' '.join(CODES)}"
        folder = path.parent.name
        if _SPEAKER_DIR.match(folder) and folder.lower() != speaker:
            return f"speaker {speaker} in the name but the folder is {folder}"
        return Named(f"{emotion}-{speaker}-{sentence}", speaker, CODES[emotion],
                     {"sentence": sentence, "sex": "female" if speaker[0] == "f" else "male"})
