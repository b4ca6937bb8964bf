"""IEMOCAP reader: the Interactive Emotional Dyadic Motion Capture database.

Busso et al. (2008), Language Resources and Evaluation 42(4): 335-359. Layout as released
(``IEMOCAP_full_release``)::

    SessionN/sentences/wav/<dialog>/<utterance>.wav          (or .flac)
    SessionN/dialog/EmoEvaluation/<dialog>.txt               (the labels)

Five sessions, each a male and a female actor. An utterance id such as
``Ses01F_impro01_M003`` names the session (``01``), the actor who wore the motion-capture
markers in that dialog (``F``), the dialog (``impro01``; scripted dialogs are ``script01_1``
and so on) and, in its LAST field, the speaking actor's sex and the turn number (``M003``).
The label file holds one line per utterance::

    [6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5000, 2.5000, 2.5000]

with the start and end times in seconds, the consensus label code and the mean
[valence, arousal, dominance] ratings (scale 1-5). Other lines (the header, the individual
evaluators' ``C-E1:`` / ``A-E2:`` lines) are ignored, as are the whole-dialog recordings
under ``SessionN/dialog/wav`` and the ``Categorical``/``Attribute``/``Self-evaluation``
sub-folders of ``EmoEvaluation``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

from emohrnet.config.argtypes import strict_bool
from emohrnet.corpora.base import Corpus, CorpusError, ScanResult, Skipped, Utterance

_SESSION_DIR = re.compile(r"^Session(\d+)$")
_UTTERANCE = re.compile(r"^Ses(\d\d)([FM])_(.+)_([FM])(\d+)$")
_LABEL_LINE = re.compile(
    r"^\[\s*(\d+(?:\.\d*)?)\s*-\s*(\d+(?:\.\d*)?)\s*\]\s+(\S+)\s+(\S+)\s+"
    r"\[\s*(-?\d+(?:\.\d*)?)\s*,\s*(-?\d+(?:\.\d*)?)\s*,\s*(-?\d+(?:\.\d*)?)\s*\]"
)

CODES: dict[str, str] = {
    "neu": "neutral", "hap": "happiness", "exc": "excited", "ang": "anger", "sad": "sadness", "fru": "frustration",
    "sur": "surprise", "fea": "fear", "dis": "disgust", "oth": "other", "xxx": "no agreement"
}
"""Every label code of the EmoEvaluation files, with what it stands for."""

CLASS_SETS: dict[str, dict[str, str]] = {
    "four": {"neu": "neutral", "hap": "happy", "exc": "happy", "ang": "angry", "sad": "sad"},
    "four_no_excited": {"neu": "neutral", "hap": "happy", "ang": "angry", "sad": "sad"},
    "five": {
        "neu": "neutral",
        "hap": "happy",
        "exc": "happy",
        "ang": "angry",
        "sad": "sad",
        "fru": "frustrated",
    },
}
"""For each ``classes`` option, the label codes kept and the class each becomes."""

_CLASS_ORDER = ("neutral", "happy", "angry", "sad", "frustrated")


class Iemocap(Corpus):
    """IEMOCAP utterances with their consensus categorical labels.

    Speakers are ``"Ses01F"``, ``"Ses01M"``, ... ``"Ses05M"``: the session plus the sex letter
    of the utterance id's last field (``Ses01F_impro01_M003`` is spoken by ``"Ses01M"``, the
    male actor of session 1, even though the female actor wore the markers). ``session`` is
    ``"Ses01"`` ... ``"Ses05"``. The speaker-independent protocol is leave-one-session-out:
    5 folds, fold ``k`` tests on both actors of the ``k``-th session (:meth:`fold_groups`).

    Options:
        classes: which class set (``self.classes`` is set from it, in this order):

            * ``"four"`` (default): neutral, happy, angry, sad, with ``exc`` (excited) merged
              into happy -- the standard four-class IEMOCAP set (5531 utterances).
            * ``"four_no_excited"``: the same four classes, happy from ``hap`` only; ``exc``
              utterances are left out (4490 utterances).
            * ``"five"``: the EmoHRNet paper's five (happiness, anger, sadness, frustration,
              neutral) as neutral, happy, angry, sad, frustrated. Excited IS merged into
              happy here too, so that ``five`` is ``four`` plus frustration (7380 utterances).

        improvised_only: keep only the improvised dialogs (``impro`` in the dialog name).
            Default ``False`` (improvised and scripted).

    Utterances whose label code is outside the chosen set (e.g. ``fru`` under ``four``,
    ``xxx``, ``oth``) and, with ``improvised_only``, scripted utterances are left out
    silently: they are not errors. :attr:`left_out` counts them after :meth:`scan`.
    Utterances with audio but no label line are reported as :class:`Skipped` with reason
    ``"no label in EmoEvaluation"``; so are names that do not parse and unknown label codes.

    ``extra``: ``dialog`` (e.g. ``"Ses01F_impro01"``), ``improvised`` (bool), ``start`` and
    ``end`` (seconds within the dialog recording), ``valence``, ``arousal``, ``dominance``
    (the mean dimensional ratings, 1-5), ``code`` (the original label code) and ``sex``.

    Raises (from :meth:`scan`):
        CorpusError: no ``SessionN`` folder in the root nor in a folder inside it (e.g.
            ``IEMOCAP_full_release``), no ``EmoEvaluation/*.txt`` label file, or the generic
            cases of :meth:`Corpus.scan`.
    """

    name = "iemocap"
    classes = ("neutral", "happy", "angry", "sad")
    layout = (
        "IEMOCAP_full_release/SessionN/sentences/wav/<dialog>/<utterance>.wav or .flac (N = 1-5, "
        "e.g. Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav) with the labels in "
        "SessionN/dialog/EmoEvaluation/<dialog>.txt; the root is the IEMOCAP_full_release folder "
        "or the folder that holds it"
    )
    n_folds = 5
    source = (
        "Busso, Bulut, Lee, Kazemzadeh, Mower, Kim, Chang, Lee & Narayanan (2008), IEMOCAP: "
        "Interactive emotional dyadic motion capture database, Language Resources and Evaluation "
        "42(4): 335-359; obtained by request from USC SAIL (https://sail.usc.edu/iemocap/) under "
        "its license agreement (research use, no redistribution)"
    )
    expected_utterances = 5531
    """Utterances in the release under the default options (``classes="four"``)."""
    expected_counts: ClassVar[dict[str, int]] = {
        "four": 5531,
        "four_no_excited": 4490,
        "five": 7380,
        "all_sentences": 10039,
    }
    """Utterances in the release per ``classes`` option (``improvised_only=False``), and the
    number of sentence recordings in all; documentation only."""
    expected_speakers = 10

    def __init__(self, root, classes: str = "four", improvised_only: bool = False, **options: Any) -> None:
        """Args:
            root: the ``IEMOCAP_full_release`` folder, or a folder that holds it.
            classes: ``"four"`` (default), ``"four_no_excited"`` or ``"five"``.
            improvised_only: keep only improvised dialogs.

        Raises:
            TypeError: unknown option.
            ValueError: unknown ``classes`` value.
        """
        if options:
            raise TypeError(f"iemocap: unknown options {sorted(options)}; known: classes, improvised_only")
        if classes not in CLASS_SETS:
            raise ValueError(f"iemocap: classes={classes!r}; known: {', '.join(CLASS_SETS)}")
        super().__init__(root, classes=classes,
                         improvised_only=strict_bool(improvised_only, "iemocap: improvised_only"))
        kept = set(CLASS_SETS[classes].values())
        self.classes = tuple(c for c in _CLASS_ORDER if c in kept)
        self.left_out: dict[str, int] = {}
        """After :meth:`scan`: utterances left out silently, by reason (``"code fru"``,
        ``"scripted"``)."""

    # ----------------------------------------------------------------------------- layout
    def release_folder(self) -> Path:
        """The folder that holds the ``SessionN`` folders.

        The root itself if it holds one, else ``root/IEMOCAP_full_release``, else the only
        folder directly inside the root that holds one.

        Raises:
            CorpusError: none found (the message names the root and the expected layout).
        """
        root = self.root
        if _session_dirs(root):
            return root
        release = root / "IEMOCAP_full_release"
        if release.is_dir() and _session_dirs(release):
            return release
        candidates = [d for d in sorted(root.iterdir()) if d.is_dir() and _session_dirs(d)]
        if len(candidates) == 1:
            return candidates[0]
        what = (
            f"{len(candidates)} folders in it hold SessionN folders ({', '.join(d.name for d in candidates)})"
            if candidates
            else "no Session1 ... Session5 folder in it nor in IEMOCAP_full_release inside it"
        )
        raise CorpusError(f"{root}: not the iemocap corpus: {what}. Expected layout: {self.layout}")

    def _read_labels(self, sessions: list[Path]) -> dict[str, tuple[str, float, float, float, float, float]]:
        labels: dict[str, tuple[str, float, float, float, float, float]] = {}
        for session in sessions:
            for txt in sorted((session / "dialog" / "EmoEvaluation").glob("*.txt")):
                with open(txt, encoding="utf-8", errors="replace") as f:
                    for line in f:
                        m = _LABEL_LINE.match(line.strip())
                        if m:
                            start, end, uid, code, v, a, d = m.groups()
                            labels.setdefault(
                                uid, (code.lower(), float(start), float(end), float(v), float(a), float(d))
                            )
        return labels

    # ----------------------------------------------------------------------------- scanning
    def _scan(self) -> ScanResult:
        release = self.release_folder()
        sessions = _session_dirs(release)
        labels = self._read_labels(sessions)
        if not labels:
            raise CorpusError(
                f"{self.root}: no label line in any SessionN/dialog/EmoEvaluation/*.txt below {release}; "
                f"the iemocap reader needs the labels. Expected layout: {self.layout}"
            )
        keep = CLASS_SETS[self.options["classes"]]
        improvised_only = self.options["improvised_only"]
        utterances: list[Utterance] = []
        skipped: list[Skipped] = []
        seen: dict[str, str] = {}
        left_out: dict[str, int] = {}
        for session in sessions:
            wav_dir = session / "sentences" / "wav"
            if not wav_dir.is_dir():
                continue
            for path in self.audio_files(wav_dir):
                m = _UTTERANCE.match(path.stem)
                if not m:
                    skipped.append(Skipped(str(path), "name is not SesNN[FM]_<dialog>_[FM]NNN"))
                    continue
                uid = path.stem
                sess, _, _, sex, _ = m.groups()
                dialog = uid.rsplit("_", 1)[0]
                improvised = "impro" in dialog
                label = labels.get(uid)
                if label is None:
                    skipped.append(Skipped(str(path), "no label in EmoEvaluation"))
                    continue
                code, start, end, valence, arousal, dominance = label
                if code not in CODES:
                    skipped.append(Skipped(str(path), f"label code {code!r} is not an IEMOCAP code"))
                    continue
                if improvised_only and not improvised:
                    left_out["scripted"] = left_out.get("scripted", 0) + 1
                    continue
                if code not in keep:
                    left_out[f"code {code}"] = left_out.get(f"code {code}", 0) + 1
                    continue
                if uid in seen:
                    skipped.append(Skipped(str(path), f"duplicate of {seen[uid]}"))
                    continue
                seen[uid] = str(path)
                utterances.append(self._utterance(path, sess, sex, dialog, improvised, keep[code], label))
        self.left_out = left_out
        return ScanResult(utterances, skipped)

    def _utterance(self, path: Path, sess: str, sex: str, dialog: str, improvised: bool, label: str,
                   evaluation: tuple) -> Utterance:
        """One kept utterance's record: speaker ``Ses<NN><F|M>``, session ``Ses<NN>``, and in ``extra`` its
        dialog, improvised or scripted, its times in the dialog (seconds), its dimensional labels
        (valence, arousal, dominance), its label code and the speaker's sex."""
        code, start, end, valence, arousal, dominance = evaluation
        return Utterance(
            path=str(path.resolve()), corpus=self.name, utterance_id=path.stem, speaker=f"Ses{sess}{sex}",
            label=label, session=f"Ses{sess}",
            extra={"dialog": dialog, "improvised": improvised, "start": start, "end": end, "valence": valence,
                   "arousal": arousal, "dominance": dominance, "code": code,
                   "sex": "male" if sex == "M" else "female"},
        )

    # ----------------------------------------------------------------------------- folds
    def fold_groups(self, speakers: list[str]) -> list[list[str]]:
        """Leave-one-session-out: one group per session, holding both of its actors.

        Args:
            speakers: speaker ids such as ``"Ses01F"`` (the first 5 characters are the session).

        Returns:
            One sorted list of speakers per session present, sessions in order (5 for the
            full release): fold ``k`` tests on session ``k`` and validates on session
            ``(k + 1) % 5``.
        """
        by_session: dict[str, list[str]] = {}
        for speaker in sorted(set(speakers)):
            by_session.setdefault(speaker[:5], []).append(speaker)
        return [by_session[s] for s in sorted(by_session)]


def _session_dirs(folder: Path) -> list[Path]:
    """The ``SessionN`` folders directly inside ``folder``, in session order."""
    if not folder.is_dir():
        return []
    found = [
        (int(m.group(1)), d) for d in folder.iterdir() if d.is_dir() and (m := _SESSION_DIR.match(d.name))
    ]
    return [d for _, d in sorted(found)]
