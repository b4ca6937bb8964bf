"""RAVDESS reader: the Ryerson Audio-Visual Database of Emotional Speech and Song.

Livingstone & Russo (2018), PLoS ONE 13(5): e0196391. Layout as distributed
(Audio_Speech_Actors_01-24 and, optionally, Audio_Song_Actors_01-24)::

    Actor_NN/MM-VV-EE-II-SS-RR-NN.wav      (or .flac)

with modality MM (03 audio-only), vocal channel VV (01 speech, 02 song), emotion EE (01-08),
intensity II (01 normal, 02 strong), statement SS (01, 02), repetition RR (01, 02) and actor NN
(01-24; odd male, even female).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from emohrnet.config.argtypes import strict_bool
from emohrnet.corpora.base import Corpus, Named

_NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
_ACTOR_DIR = re.compile(r"^Actor_(\d\d)$")


class Ravdess(Corpus):
    """RAVDESS speech (and, with ``include_song=True``, song) utterances.

    8 classes: neutral, calm, happy, sad, angry, fearful, disgust, surprised (emotion codes
    01-08). Speakers are the actors ``"01"``-``"24"``. Speaker-independent protocol: 6 folds of
    4 consecutive actors (2 male, 2 female each).

    Options:
        include_song: also read vocal-channel 02 (song) files. Default ``False``.
    """

    name = "ravdess"
    classes = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
    layout = (
        "Actor_NN/03-VV-EE-II-SS-RR-NN.wav or .flac (Audio_Speech_Actors_01-24 unpacked: "
        "folders Actor_01 ... Actor_24, file names of 7 two-digit fields)"
    )
    n_folds = 6
    source = (
        "Livingstone & Russo (2018), PLoS ONE 13(5): e0196391; https://zenodo.org/record/1188976; "
        "CC BY-NC-SA 4.0"
    )

    def __init__(self, root, include_song: bool = False, **options: Any) -> None:
        if options:
            raise TypeError(f"ravdess: unknown options {sorted(options)}; known: include_song")
        super().__init__(root, include_song=strict_bool(include_song, "ravdess: include_song"))

    def parse_name(self, path: Path) -> Named | str | None:
        """``MM-VV-EE-II-SS-RR-NN`` (inside ``Actor_NN`` when in an actor folder); song (``VV`` 02)
        is left out silently unless ``include_song``."""
        m = _NAME.match(path.stem)
        if not m:
            return "name is not MM-VV-EE-II-SS-RR-NN"
        modality, channel, emotion, intensity, statement, repetition, actor = m.groups()
        if modality != "03":
            return f"modality {modality} is not 03 (audio-only)"
        if channel not in ("01", "02"):
            return f"vocal channel {channel} is neither 01 nor 02"
        if channel == "02" and not self.options["include_song"]:
            return None  # song, not asked for: left out silently, as documented
        if not 1 <= int(emotion) <= len(self.classes):
            return f"emotion code {emotion} is not 01-08"
        folder = _ACTOR_DIR.match(path.parent.name)
        if folder and folder.group(1) != actor:
            return f"actor {actor} in the name but the folder is {path.parent.name}"
        return Named(path.stem, actor, self.classes[int(emotion) - 1], {
            "vocal_channel": "speech" if channel == "01" else "song",
            "intensity": "normal" if intensity == "01" else "strong",
            "statement": int(statement),
            "repetition": int(repetition),
            "sex": "male" if int(actor) % 2 else "female",
        })
