"""SAVEE reader: the Surrey Audio-Visual Expressed Emotion database.

Haq & Jackson (2009, 2010), University of Surrey. Four male speakers (DC, JE, JK, KL) x 120
utterances = 480 files. Two layouts are read, alone or together:

* the original release: ``AudioData/<speaker>/<code><nn>.wav``, e.g. ``AudioData/DC/sa01.wav``;
* the flat copy in circulation: ``<speaker>_<code><nn>.wav``, e.g. ``DC_sa01.wav``, ``JK_n15.wav``.

Emotion codes: ``a`` anger, ``d`` disgust, ``f`` fear, ``h`` happiness, ``n`` neutral,
``sa`` sadness, ``su`` surprise (``sa``/``su`` are two letters; ``s`` alone is no code).
"""

from __future__ import annotations

import re
from pathlib import Path

from emohrnet.corpora.base import Corpus, Named

# Anchored, so ``sa01`` parses only as sa + 01; the two-letter codes come first all the same.
_CODE = r"(sa|su|a|d|f|h|n)(\d\d)"
_FLAT = re.compile(rf"^(DC|JE|JK|KL)_{_CODE}$", re.IGNORECASE)
_NESTED = re.compile(rf"^{_CODE}$", re.IGNORECASE)
_SPEAKER_DIR = re.compile(r"^(DC|JE|JK|KL)$", re.IGNORECASE)

CODES: dict[str, str] = {
    "a": "anger", "d": "disgust", "f": "fear", "h": "happiness", "n": "neutral", "sa": "sadness", "su": "surprise"
}
"""Emotion code -> class."""


class Savee(Corpus):
    """SAVEE utterances: 4 male speakers x 120 = 480 files (30 neutral, 15 of each other class).

    7 classes: anger, disgust, fear, happiness, neutral, sadness, surprise (codes a d f h n sa
    su, in that order). Speakers are ``"DC" "JE" "JK" "KL"`` (upper case whatever the name's
    case). Speaker-independent protocol: leave-one-speaker-out, 4 folds. No options.

    A file is read when its name is ``<speaker>_<code><nn>`` (flat layout, anywhere below the
    root) or ``<code><nn>`` inside a folder named after a speaker (original layout). A flat
    file inside a speaker folder of another speaker is skipped; a file present in both layouts
    is reported as a duplicate the second time.

    ``extra``: ``number`` (the utterance number within its emotion, e.g. 1 for ``sa01``).

    Raises (from :meth:`scan`):
        CorpusError: the generic cases of :meth:`Corpus.scan` (missing, empty, no SAVEE name).
    """

    name = "savee"
    classes = tuple(CODES.values())
    layout = (
        "AudioData/<speaker>/<code><nn>.wav (original, e.g. AudioData/DC/sa01.wav) or "
        "<speaker>_<code><nn>.wav (flat, e.g. DC_sa01.wav), .wav or .flac, with speaker DC JE JK KL "
        "and emotion code a d f h n sa su"
    )
    n_folds = 4
    source = (
        "Haq & Jackson (2009), Speaker-dependent audio-visual emotion recognition, AVSP 2009, "
        "pp. 53-58; Haq & Jackson (2010), Multimodal emotion recognition, in Machine Audition, "
        "IGI Global, pp. 398-423; University of Surrey, http://kahlan.eps.surrey.ac.uk/savee/ "
        "(registration); free for research use"
    )
    expected_utterances, expected_speakers = 480, 4

    def parse_name(self, path: Path) -> Named | str:
        """``<speaker>_<code><nn>`` (flat), or ``<code><nn>`` in the speaker's folder, e.g.
        ``DC_a01`` or ``DC/a01``."""
        folder = _SPEAKER_DIR.match(path.parent.name)
        flat = _FLAT.match(path.stem)
        nested = _NESTED.match(path.stem)
        if flat:
            speaker, code, number = flat.groups()
            if folder and folder.group(1).upper() != speaker.upper():
                return f"speaker {speaker} in the name but the folder is {path.parent.name}"
        elif nested and folder:
            speaker, (code, number) = folder.group(1), nested.groups()
        elif nested:
            return f"name <code><nn> but the folder {path.parent.name!r} is no speaker"
        else:
            return "name is neither <speaker>_<code><nn> nor <code><nn>"
        speaker, code = speaker.upper(), code.lower()
        return Named(f"{speaker}_{code}{number}", speaker, CODES[code], {"number": int(number)})
