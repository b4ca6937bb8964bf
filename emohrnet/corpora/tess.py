"""TESS reader: the Toronto Emotional Speech Set.

Dupuis & Pichora-Fuller (2010), University of Toronto. Two actresses, an older (``OAF``, aged
64) and a younger (``YAF``, aged 26), say ``Say the word <word>`` for 200 words in 7 emotions:
2800 files. Layout as distributed::

    <OAF|YAF>_<emotion>/<OAF|YAF>_<word>_<emotion>.wav      (or .flac)

e.g. ``OAF_angry/OAF_back_angry.wav``. The copies in circulation disagree in details, all of
which are accepted:

* folder case: ``OAF_Fear``, ``YAF_fear``, ``oaf_disgust``; ``OAF_Pleasant_surprise`` vs
  ``YAF_pleasant_surprised``;
* the emotion spelling in names: ``pleasant_surprise``, ``pleasant_surprised`` or ``ps``;
  ``fear`` or ``fearful``;
* odd prefixes such as ``OAF_neutral/OA_bite_neutral.wav``: the speaker comes from the FOLDER
  (``OAF_...`` or ``YAF_...``; from the name's first field only when the folder is neither), the
  emotion from the name's LAST field (after the word; ``pleasant_surprise(d)`` spans two);
* an extra top folder (``TESS Toronto emotional speech set data/``): the emotion folders are
  found anywhere below the root.
"""

from __future__ import annotations

import re
from pathlib import Path

from emohrnet.corpora.base import Corpus, Named

_SPEAKER_DIR = re.compile(r"^(OAF|YAF)_", re.IGNORECASE)

EMOTIONS: dict[str, str] = {
    "angry": "angry", "disgust": "disgust", "fear": "fear", "fearful": "fear", "happy": "happy",
    "neutral": "neutral", "ps": "ps", "pleasant_surprise": "ps", "pleasant_surprised": "ps", "sad": "sad"
}
"""Emotion spelling in file names (lower case) -> class."""

SPEAKERS: dict[str, str] = {"OAF": "older adult female (64)", "YAF": "younger adult female (26)"}
"""The two speakers."""


class Tess(Corpus):
    """TESS utterances: 2 speakers x 200 words x 7 emotions = 2800 files.

    7 classes: angry, disgust, fear, happy, neutral, ps (pleasant surprise), sad. Speakers are
    ``"OAF"`` and ``"YAF"`` (upper case whatever the folder's case). No options.

    Protocol: TESS has only two speakers, so a speaker-independent protocol has only 2 folds
    (train on one actress, test on the other) and no third speaker group for validation; the
    usual protocol in the literature for TESS is a random (stratified, utterance-level) split,
    whose results are NOT speaker-independent. ``default_protocol`` stays ``"speaker"`` like the
    other corpora; see :attr:`protocol_note`.

    ``utterance_id`` is ``<speaker>_<word>_<class>`` (e.g. ``"OAF_back_ps"``), so two copies of
    a file (as in distributions that ship the set twice) are reported as duplicates.
    ``extra``: ``word`` and ``folder`` (the emotion folder's name as found).

    Raises (from :meth:`scan`):
        CorpusError: the generic cases of :meth:`Corpus.scan` (missing, empty, no TESS name).
    """

    name = "tess"
    classes = ("angry", "disgust", "fear", "happy", "neutral", "ps", "sad")
    layout = (
        "<OAF|YAF>_<emotion>/<OAF|YAF>_<word>_<emotion>.wav or .flac anywhere below the root, e.g. "
        "OAF_angry/OAF_back_angry.wav (emotion angry disgust fear happy neutral sad and "
        "pleasant_surprise(d) or ps; folder names in any case)"
    )
    n_folds = 2
    protocol_note = (
        "TESS has 2 speakers: speaker-independent folds are train on one actress, test on the "
        "other (2 folds, no third speaker group for validation). The random utterance-level split is "
        "the usual protocol for TESS in the literature; its results are not speaker-independent."
    )
    source = (
        "Dupuis & Pichora-Fuller (2010), Toronto Emotional Speech Set (TESS), University of Toronto, "
        "Psychology Department; https://tspace.library.utoronto.ca/handle/1807/24487; CC BY-NC-ND 4.0"
    )
    expected_utterances, expected_speakers = 2800, 2

    def parse_name(self, path: Path) -> Named | str:
        """``<speaker>_<word>_<emotion>``, e.g. ``OAF_back_angry``; the speaker from the folder
        (``OAF_*``/``YAF_*``) where there is one, else from the name."""
        fields = path.stem.lower().split("_")
        if len(fields) >= 4 and fields[-2] == "pleasant":
            emotion, word = "_".join(fields[-2:]), fields[1:-2]
        else:
            emotion, word = fields[-1], fields[1:-1]
        if len(fields) < 3 or not all(word) or not fields[0]:
            return "name is not <speaker>_<word>_<emotion>"
        if emotion not in EMOTIONS:
            return f"emotion {emotion!r} in the name is not a TESS emotion"
        folder = _SPEAKER_DIR.match(path.parent.name)
        if folder:
            speaker = folder.group(1).upper()
        elif fields[0].upper() in SPEAKERS:
            speaker = fields[0].upper()
        else:
            return f"neither the folder {path.parent.name!r} nor the name says OAF or YAF"
        label = EMOTIONS[emotion]
        return Named(f"{speaker}_{'_'.join(word)}_{label}", speaker, label,
                     {"word": "_".join(word), "folder": path.parent.name})
