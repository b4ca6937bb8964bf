"""Small corpus trees for tests: the real folder and file naming, generated audio.

Each ``write_<corpus>_tree`` helper writes a tree under ``root`` laid out as the corpus's
distributor ships it and returns one :class:`Written` record per audio file, saying which
speaker and label code the file stands for, so that tests can check a reader against it.

The audio is short (``seconds``, default 0.05 s) tones and noise bursts, never silent (peak
0.3 of full scale). To exercise the "any rate, any channel count, .wav or .flac" promise, the
files of a tree cycle through formats by their index ``i`` within the tree (see
:func:`audio_format`): file 0 is a stereo 16 kHz WAV, every 4th file from ``i = 3`` on is a mono
22.05 kHz FLAC, the rest are mono 16 kHz WAVs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

RAVDESS_EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
"""RAVDESS emotion names, code ``01`` first."""
IEMOCAP_CODES = ("neu", "hap", "exc", "ang", "sad", "fru", "sur", "fea", "dis", "oth", "xxx")
"""Every IEMOCAP EmoEvaluation label code."""
EMOVO_SPEAKERS = ("f1", "f2", "f3", "m1", "m2", "m3")
EMOVO_EMOTIONS = ("dis", "gio", "neu", "pau", "rab", "sor", "tri")
EMODB_SPEAKERS = ("03", "08", "09", "10", "11", "12", "13", "14", "15", "16")
EMODB_EMOTIONS = ("W", "L", "E", "A", "F", "T", "N")
CREMAD_EMOTIONS = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")
TESS_SPEAKERS = ("OAF", "YAF")
TESS_EMOTIONS = ("angry", "disgust", "fear", "happy", "neutral", "ps", "sad")
"""TESS emotions as the reader names its classes (``ps`` = pleasant surprise)."""
SAVEE_SPEAKERS = ("DC", "JE", "JK", "KL")
SAVEE_CODES = ("a", "d", "f", "h", "n", "sa", "su")


@dataclass(frozen=True)
class Written:
    """One audio file a helper wrote.

    Attributes:
        path: the file (as written, not resolved).
        speaker: the speaker id the reader should give it.
        code: the label code the file stands for (as the corpus writes it: RAVDESS ``"05"``,
            IEMOCAP ``"exc"``, EMO-DB ``"F"``, TESS the canonical emotion, e.g. ``"ps"``), or
            ``None`` when the file has no label (IEMOCAP's ``unlabeled``).
        utterance_id: the id the reader should give it.
        extra: helper-specific facts (IEMOCAP: ``dialog``, ``start``, ``end``, ``vad``).
    """

    path: Path
    speaker: str
    code: str | None
    utterance_id: str
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


def audio_format(i: int) -> tuple[str, int, int]:
    """The format of a tree's ``i``-th file: ``(suffix, sample_rate_hz, channels)``.

    ``i == 0``: ``(".wav", 16000, 2)`` (stereo); ``i % 4 == 3``: ``(".flac", 22050, 1)``;
    else ``(".wav", 16000, 1)``.
    """
    if i == 0:
        return ".wav", 16_000, 2
    if i % 4 == 3:
        return ".flac", 22_050, 1
    return ".wav", 16_000, 1


def write_audio(
    path: str | Path, seconds: float = 0.05, sample_rate: int = 16_000, channels: int = 1, seed: int = 0
) -> Path:
    """Write a short non-silent test signal; the format (WAV or FLAC, 16-bit) follows the suffix.

    Even seeds give a tone (220-880 Hz, peak 0.3), odd seeds white noise (peak 0.3); with 2+
    channels each channel gets a slightly different frequency or noise draw.

    Args:
        path: the file to write (parent folders are made).
        seconds: duration in seconds.
        sample_rate: rate in Hz.
        channels: channel count.
        seed: picks the signal.

    Returns:
        the path, as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = max(1, round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    rng = np.random.default_rng(seed)
    cols = []
    for c in range(channels):
        if seed % 2 == 0:
            freq = 220.0 * (1 + (seed // 2) % 4) * (1 + 0.05 * c)
            x = np.sin(2 * np.pi * freq * t)
        else:
            x = rng.uniform(-1.0, 1.0, n)
        cols.append(0.3 * x / max(np.abs(x).max(), 1e-9))
    data = np.stack(cols, axis=1).astype(np.float32)
    sf.write(str(path), data if channels > 1 else data[:, 0], sample_rate, subtype="PCM_16")
    return path


def _write(stem_path: Path, i: int, seconds: float) -> Path:
    """Write ``stem_path`` + the suffix of :func:`audio_format(i) <audio_format>`."""
    suffix, rate, channels = audio_format(i)
    return write_audio(stem_path.with_name(stem_path.name + suffix), seconds, rate, channels, seed=i)


def write_files(root: str | Path, names: Iterable[str], seconds: float = 0.05) -> list[Path]:
    """Write audio at the given paths relative to ``root`` (e.g. badly named files).

    The suffix of each name is kept (``.wav`` or ``.flac``); mono 16 kHz.

    Returns:
        the written paths.
    """
    return [write_audio(Path(root) / name, seconds, seed=i) for i, name in enumerate(names)]


# --------------------------------------------------------------------------------- RAVDESS
def write_ravdess_tree(root: str | Path, actors: Iterable[int | str] = (1, 2),
                       emotions: Iterable[int | str] = range(1, 9), intensities: Iterable[int] = (1,),
                       statements: Iterable[int] = (1,), repetitions: Iterable[int] = (1,),
                       vocal_channels: Iterable[int] = (1,), seconds: float = 0.05) -> list[Written]:
    """A RAVDESS tree: ``root/Actor_NN/03-VV-EE-II-SS-RR-NN.wav`` (some ``.flac``).

    Args:
        root: folder to write into (made if missing).
        actors: actor numbers 1-24 (ints or strings like ``"07"``).
        emotions: emotion codes 1-8 (ints, strings like ``"05"``) or names from
            :data:`RAVDESS_EMOTIONS` (``"angry"``).
        intensities, statements, repetitions: codes 1-2.
        vocal_channels: 1 speech, 2 song.
        seconds: duration of each file.

    Returns:
        one :class:`Written` per file; ``speaker`` is ``"NN"``, ``code`` the emotion ``"EE"``.
    """
    root = Path(root)
    codes = [
        RAVDESS_EMOTIONS.index(e) + 1 if isinstance(e, str) and not e.isdigit() else int(e) for e in emotions
    ]
    out: list[Written] = []
    for actor in (int(a) for a in actors):
        for vv in vocal_channels:
            for ee in codes:
                for ii in intensities:
                    for ss in statements:
                        for rr in repetitions:
                            stem = f"03-{vv:02d}-{ee:02d}-{ii:02d}-{ss:02d}-{rr:02d}-{actor:02d}"
                            path = _write(root / f"Actor_{actor:02d}" / stem, len(out), seconds)
                            out.append(Written(path, f"{actor:02d}", f"{ee:02d}", stem))
    return out


# --------------------------------------------------------------------------------- IEMOCAP
def write_iemocap_tree(root: str | Path, sessions: Iterable[int] = (1, 2, 3, 4, 5),
                       codes: Sequence[str] = IEMOCAP_CODES, scripted: bool = True, unlabeled: Iterable[str] = (),
                       release_folder: str | None = "IEMOCAP_full_release", seconds: float = 0.05) -> list[Written]:
    """An IEMOCAP tree: sentences, EmoEvaluation label files and whole-dialog recordings.

    For each session ``N`` it writes the dialog ``SesNNF_impro01`` and, with ``scripted``,
    ``SesNNM_script01_1``; in each dialog one utterance per code in ``codes`` and sex
    (``<dialog>_F000``, ``<dialog>_M001``, ...) at
    ``SessionN/sentences/wav/<dialog>/<utt>.wav`` (some ``.flac``), and the label file
    ``SessionN/dialog/EmoEvaluation/<dialog>.txt`` with the release's header, label lines
    (``[start - end]<TAB>utt<TAB>code<TAB>[V, A, D]``) and evaluator lines. It also writes the
    things a reader must ignore: the whole-dialog recording ``SessionN/dialog/wav/<dialog>.wav``
    and a ``Categorical`` sub-folder file.

    Args:
        root: folder to write into.
        sessions: session numbers.
        codes: label codes to write, one utterance per code and sex in each dialog.
        scripted: also write a scripted dialog per session.
        unlabeled: utterance ids whose audio is written but whose label line is not.
        release_folder: the top folder name, or ``None`` to put ``SessionN`` in ``root``.
        seconds: duration of each file.

    Returns:
        one :class:`Written` per sentence file; ``speaker`` is e.g. ``"Ses01M"``, ``code``
        the label code (``None`` for ``unlabeled``), ``extra`` holds ``dialog``, ``start``,
        ``end`` (s) and ``vad`` (valence, arousal, dominance).
    """
    root = Path(root)
    top = root / release_folder if release_folder else root
    unlabeled = set(unlabeled)
    out: list[Written] = []
    for n in sessions:
        session = top / f"Session{n}"
        dialogs = [f"Ses{n:02d}F_impro01"] + ([f"Ses{n:02d}M_script01_1"] if scripted else [])
        for dialog in dialogs:
            lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
            turn = 0
            for code in codes:
                for sex in "FM":
                    uid = f"{dialog}_{sex}{turn:03d}"
                    start, end = round(1.5 + 3.25 * turn, 4), round(4.0 + 3.25 * turn, 4)
                    vad = (1.5 + turn % 4, 2.0 + turn % 3, 3.5)
                    path = _write(session / "sentences" / "wav" / dialog / uid, len(out), seconds)
                    labelled = uid not in unlabeled
                    out.append(
                        Written(
                            path,
                            f"Ses{n:02d}{sex}",
                            code if labelled else None,
                            uid,
                            {"dialog": dialog, "start": start, "end": end, "vad": vad},
                        )
                    )
                    if labelled:
                        v, a, d = (f"{x:.4f}" for x in vad)
                        lines += [
                            f"[{start:.4f} - {end:.4f}]\t{uid}\t{code}\t[{v}, {a}, {d}]",
                            f"C-E1:\t{code.capitalize()};\t()",
                            f"A-E2:\tval {vad[0]:.0f}; act {vad[1]:.0f}; dom  {vad[2]:.0f};\t()",
                            "",
                        ]
                    turn += 1
            evaluation = session / "dialog" / "EmoEvaluation"
            evaluation.mkdir(parents=True, exist_ok=True)
            (evaluation / f"{dialog}.txt").write_text("\n".join(lines) + "\n")
            (evaluation / "Categorical").mkdir(exist_ok=True)
            (evaluation / "Categorical" / f"{dialog}_e1_cat.txt").write_text(
                f"{dialog}_F000 :Neutral state; ()\n"
            )
            write_audio(session / "dialog" / "wav" / f"{dialog}.wav", seconds)
    return out


# --------------------------------------------------------------------------------- EMOVO
def write_emovo_tree(root: str | Path, speakers: Iterable[str] = EMOVO_SPEAKERS,
                     emotions: Iterable[str] = EMOVO_EMOTIONS, sentences: Sequence[str] = ("b1", "n1"),
                     case_variants: bool = True, seconds: float = 0.05) -> list[Written]:
    """An EMOVO tree: ``root/<speaker>/<emotion>-<speaker>-<sentence>.wav`` (some ``.flac``).

    Args:
        root: folder to write into.
        speakers, emotions, sentences: what to write (all combinations).
        case_variants: capitalize the emotion of speakers ``f1`` and ``m3``'s first sentence
            (``Dis-f1-b1.wav``), as some copies of the corpus do.
        seconds: duration of each file.

    Returns:
        one :class:`Written` per file; ``code`` is the lower-case emotion code.
    """
    root = Path(root)
    out: list[Written] = []
    for speaker in speakers:
        for emotion in emotions:
            for sentence in sentences:
                shown = (
                    emotion.capitalize()
                    if case_variants and speaker in ("f1", "m3") and sentence == sentences[0]
                    else emotion
                )
                path = _write(root / speaker / f"{shown}-{speaker}-{sentence}", len(out), seconds)
                out.append(Written(path, speaker, emotion, f"{emotion}-{speaker}-{sentence}"))
    return out


# --------------------------------------------------------------------------------- EMO-DB
def write_emodb_tree(root: str | Path, speakers: Iterable[str] = EMODB_SPEAKERS,
                     emotions: Iterable[str] = EMODB_EMOTIONS, texts: Iterable[str] = ("a01",),
                     versions: Iterable[str] = ("a",), wav_folder: bool = True, seconds: float = 0.05) -> list[Written]:
    """An EMO-DB tree: ``root/wav/<speaker><text><emotion><version>.wav`` (some ``.flac``).

    Args:
        root: folder to write into.
        speakers: two-digit speaker numbers; emotions: letters W L E A F T N; texts: e.g.
            ``"a01"``; versions: letters.
        wav_folder: write into ``root/wav`` (the release) rather than ``root``.
        seconds: duration of each file.

    Returns:
        one :class:`Written` per file; ``code`` is the emotion letter.
    """
    folder = Path(root) / "wav" if wav_folder else Path(root)
    out: list[Written] = []
    for speaker in speakers:
        for emotion in emotions:
            for text in texts:
                for version in versions:
                    stem = f"{speaker}{text}{emotion}{version}"
                    out.append(Written(_write(folder / stem, len(out), seconds), speaker, emotion, stem))
    return out


# --------------------------------------------------------------------------------- CREMA-D
def write_cremad_tree(root: str | Path, actors: Iterable[int] = range(1001, 1011),
                      emotions: Iterable[str] = CREMAD_EMOTIONS, sentences: Iterable[str] = ("DFA", "IEO"),
                      audio_folder: bool = True, seconds: float = 0.05) -> list[Written]:
    """A CREMA-D tree: ``root/AudioWAV/<actor>_<sentence>_<emotion>_<level>.wav`` (some ``.flac``).

    The level is ``XX`` for neutral and otherwise cycles through ``LO MD HI XX``.

    Args:
        root: folder to write into.
        actors: actor numbers 1001-1091; emotions: codes ANG DIS FEA HAP NEU SAD; sentences:
            three-letter sentence codes.
        audio_folder: write into ``root/AudioWAV`` rather than ``root``.
        seconds: duration of each file.

    Returns:
        one :class:`Written` per file; ``speaker`` is the actor number as a string, ``code`` the
        emotion code.
    """
    folder = Path(root) / "AudioWAV" if audio_folder else Path(root)
    levels = ("LO", "MD", "HI", "XX")
    out: list[Written] = []
    for actor in actors:
        for emotion in emotions:
            for sentence in sentences:
                level = "XX" if emotion == "NEU" else levels[len(out) % 4]
                stem = f"{actor}_{sentence}_{emotion}_{level}"
                out.append(Written(_write(folder / stem, len(out), seconds), str(actor), emotion, stem))
    return out


# --------------------------------------------------------------------------------- TESS
_TESS_ODD_FOLDERS = {
    ("OAF", "disgust"): "oaf_disgust",
    ("OAF", "fear"): "OAF_Fear",
    ("OAF", "ps"): "OAF_Pleasant_surprise",
    ("OAF", "sad"): "OAF_Sad",
    ("YAF", "ps"): "YAF_pleasant_surprised",
    ("YAF", "sad"): "yaf_sad",
}
_TESS_ODD_NAMES = {  # (speaker, emotion, word index) -> (prefix, emotion as written)
    ("OAF", "ps", 1): ("OAF", "pleasant_surprise"),
    ("YAF", "ps", 0): ("YAF", "pleasant_surprised"),
    ("YAF", "fear", 1): ("YAF", "fearful"),
    ("OAF", "neutral", 1): ("OA", "neutral"),
}


def write_tess_tree(root: str | Path, speakers: Iterable[str] = TESS_SPEAKERS,
                    emotions: Iterable[str] = TESS_EMOTIONS, words: Sequence[str] = ("back", "bite"),
                    top: str | None = "TESS Toronto emotional speech set data", oddities: bool = True,
                    seconds: float = 0.05) -> list[Written]:
    """A TESS tree: ``root/<top>/<OAF|YAF>_<emotion>/<OAF|YAF>_<word>_<emotion>.wav``.

    Without ``oddities`` folders and names are ``<speaker>_<emotion>`` and
    ``<speaker>_<word>_<emotion>`` with the emotions of :data:`TESS_EMOTIONS` (``ps``). With
    ``oddities`` (default) they vary as the copies in circulation do: folders ``oaf_disgust``,
    ``OAF_Fear``, ``OAF_Pleasant_surprise``, ``OAF_Sad``, ``YAF_pleasant_surprised``,
    ``yaf_sad``; names ``OAF_<word 2>_pleasant_surprise``, ``YAF_<word 1>_pleasant_surprised``,
    ``YAF_<word 2>_fearful`` and ``OA_<word 2>_neutral`` (as ``OAF_neutral/OA_bite_neutral.wav``).

    Args:
        root: folder to write into.
        speakers: ``OAF`` and/or ``YAF``; emotions: from :data:`TESS_EMOTIONS`; words: at least
            two for all oddities to appear.
        top: an extra top folder, or ``None``.
        oddities: vary folder case and emotion spelling as described.
        seconds: duration of each file.

    Returns:
        one :class:`Written` per file; ``code`` is the canonical emotion (``"ps"``, ``"fear"``),
        ``utterance_id`` is ``<speaker>_<word>_<code>``.
    """
    base = Path(root) / top if top else Path(root)
    out: list[Written] = []
    for speaker in speakers:
        for emotion in emotions:
            folder = _TESS_ODD_FOLDERS.get((speaker, emotion)) if oddities else None
            folder = folder or f"{speaker}_{emotion}"
            for w, word in enumerate(words):
                prefix, written = (
                    _TESS_ODD_NAMES.get((speaker, emotion, w), (speaker, emotion))
                    if oddities
                    else (speaker, emotion)
                )
                path = _write(base / folder / f"{prefix}_{word}_{written}", len(out), seconds)
                out.append(Written(path, speaker, emotion, f"{speaker}_{word}_{emotion}"))
    return out


# --------------------------------------------------------------------------------- SAVEE
def write_savee_tree(root: str | Path, speakers: Iterable[str] = SAVEE_SPEAKERS, codes: Iterable[str] = SAVEE_CODES,
                     numbers: Iterable[int] = (1,), layout: str = "original", seconds: float = 0.05) -> list[Written]:
    """A SAVEE tree in the original or the flat layout (some ``.flac``).

    Args:
        root: folder to write into.
        speakers: from ``DC JE JK KL``; codes: from ``a d f h n sa su``; numbers: utterance
            numbers within an emotion (written as two digits).
        layout: ``"original"`` (``root/AudioData/<speaker>/<code><nn>.wav``) or ``"flat"``
            (``root/<speaker>_<code><nn>.wav``).
        seconds: duration of each file.

    Returns:
        one :class:`Written` per file; ``code`` is the emotion code, ``utterance_id``
        ``<speaker>_<code><nn>``.

    Raises:
        ValueError: unknown layout.
    """
    if layout not in ("original", "flat"):
        raise ValueError(f"layout must be 'original' or 'flat', not {layout!r}")
    root = Path(root)
    out: list[Written] = []
    for speaker in speakers:
        for code in codes:
            for nn in numbers:
                uid = f"{speaker}_{code}{nn:02d}"
                stem = (
                    root / "AudioData" / speaker / f"{code}{nn:02d}" if layout == "original" else root / uid
                )
                out.append(Written(_write(stem, len(out), seconds), speaker, code, uid))
    return out


