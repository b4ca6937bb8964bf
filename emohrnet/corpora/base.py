"""The corpus interface: utterance records, skipped files and the :class:`Corpus` base class.

A corpus reader turns a folder laid out as the corpus's distributor ships it into a list of
:class:`Utterance` records. It never decodes audio: files whose *names* cannot be parsed are
reported as :class:`Skipped`; files whose *audio* is bad are caught later, when the shards are
built (:mod:`shards.build`).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

AUDIO_SUFFIXES = (".wav", ".flac")
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]")


class CorpusError(ValueError):
    """A data root that is not the corpus asked for (missing, empty, a file, another layout).

    The message names the path and the layout the reader expected.
    """


@dataclass
class Utterance:
    """One utterance of a corpus.

    Attributes:
        path: absolute path of the audio file (``.wav`` or ``.flac``, any rate and channels).
        corpus: registry name of the corpus, e.g. ``"ravdess"``.
        utterance_id: identifier unique within the corpus, e.g. ``"03-01-05-02-01-01-12"``.
        speaker: speaker identifier, unique within the corpus, e.g. ``"12"``.
        label: class name, one of the corpus's ``classes``.
        session: recording session where the corpus has them (IEMOCAP), else ``None``.
        extra: corpus-specific fields (RAVDESS ``intensity``, ``statement``, ...); JSON-safe.
    """

    path: str
    corpus: str
    utterance_id: str
    speaker: str
    label: str
    session: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """WebDataset sample key: ``<corpus>_<utterance_id>`` with every character other than
        letters, digits, ``_`` and ``-`` replaced by ``_`` (WebDataset keys must hold no dots)."""
        return _KEY_UNSAFE.sub("_", f"{self.corpus}_{self.utterance_id}")

    def to_dict(self) -> dict[str, Any]:
        """The record as a JSON-safe dict (what a shard's ``.json`` member holds)."""
        return asdict(self)


@dataclass
class Skipped:
    """A file left out of a corpus build, with the reason (shown to the user and kept in the
    shard manifest).

    Attributes:
        path: the file.
        reason: why, short.
        io_error: the file could not be read at all (permissions, a disk error), as opposed to bad
            audio or an unparseable name: a later build retries it once it is readable.
    """

    path: str
    reason: str
    io_error: bool = False


@dataclass
class Named:
    """What a corpus's naming rule reads from one file's name and folder (:meth:`Corpus.parse_name`).

    Attributes:
        utterance_id: identifier unique within the corpus; a second file with the same one is
            skipped as a duplicate of the first.
        speaker: speaker identifier.
        label: class name, one of the corpus's ``classes``.
        extra: corpus-specific fields; JSON-safe.
        session: recording session, where the corpus has them.
    """

    utterance_id: str
    speaker: str
    label: str
    extra: dict[str, Any] = field(default_factory=dict)
    session: str | None = None


@dataclass
class ScanResult:
    """What :meth:`Corpus.scan` found: the utterances and the files it skipped."""

    utterances: list[Utterance]
    skipped: list[Skipped]


class Corpus:
    """Base class of corpus readers.

    Subclasses set the class attributes and give their naming rule, :meth:`parse_name` (and
    :meth:`audio_folder` where the audio sits in a subfolder); the base class walks the files, skips
    the unparsable ones with the rule's reason and the duplicates, and builds the records. A reader
    whose corpus is more than file names (IEMOCAP's transcripts and labels) overrides :meth:`_scan`
    instead. The public :meth:`scan` checks the data root first and raises :class:`CorpusError` with
    the expected layout when the folder is missing, a file, empty or holds no utterance of this
    corpus. A reader that takes options checks them in its own ``__init__``; the others take none.

    Class attributes:
        name: registry name (``--dataset``).
        classes: the class names in label-index order.
        layout: a one-paragraph description of the expected folder layout, used in errors.
        n_folds: number of speaker-independent folds (see :meth:`fold_groups`).
        source: where the corpus is described (citation) and obtained, and its license.
        default_protocol: the protocol a search uses unless told otherwise (``"speaker"``).
        protocol_note: what users of this corpus should know about its protocols (TESS: two
            speakers only), printed with results.
        expected_utterances, expected_speakers: utterances and speakers in the complete release
            (documentation; the tests check the readers' figures against the distributors').
        audio_subfolder: the folder below the root that holds the audio as distributed (CREMA-D
            ``AudioWAV``); when the root has none, the root itself is read (see :meth:`audio_folder`).
    """

    name: ClassVar[str]
    classes: ClassVar[tuple[str, ...]]
    layout: ClassVar[str]
    n_folds: ClassVar[int] = 5
    source: ClassVar[str] = ""
    default_protocol: ClassVar[str] = "speaker"
    protocol_note: ClassVar[str] = ""
    expected_utterances: ClassVar[int | None] = None
    expected_speakers: ClassVar[int | None] = None
    audio_subfolder: ClassVar[str | None] = None

    def __init__(self, root: str | Path, **options: Any) -> None:
        """Args:
            root: the corpus folder, as the distributor ships it.
            **options: reader options (e.g. RAVDESS ``include_song``), checked by the reader's own
                ``__init__``.

        Raises:
            TypeError: options given to a reader that takes none (one without its own ``__init__``).
        """
        if options and type(self).__init__ is Corpus.__init__:
            raise TypeError(f"{self.name}: unknown options {sorted(options)}; it takes none")
        self.root = Path(root).expanduser()
        self.options: dict[str, Any] = dict(options)

    # ----------------------------------------------------------------------------- scanning
    def scan(self) -> ScanResult:
        """List the corpus's utterances.

        Returns:
            :class:`ScanResult`, utterances sorted by ``utterance_id``.

        Raises:
            CorpusError: the root is missing, is a file, holds no audio, or holds no file named
                as this corpus names its files (probably another corpus).
        """
        root = self.root
        if not root.exists():
            raise CorpusError(f"{root}: no such folder. Expected the {self.name} corpus: {self.layout}")
        if not root.is_dir():
            raise CorpusError(f"{root}: is a file, not a folder. Expected the {self.name} corpus: {self.layout}")
        result = self._scan()
        if not result.utterances:
            audio = self.audio_files(root)
            what = (
                f"none of its {len(audio)} audio files is named as {self.name} names its files"
                if audio
                else "it holds no .wav or .flac file"
            )
            raise CorpusError(
                f"{root}: not the {self.name} corpus: {what}. Expected layout: {self.layout}"
            )
        result.utterances.sort(key=lambda u: u.utterance_id)
        return result

    def _scan(self) -> ScanResult:
        """Walk :meth:`audio_folder` (the root is known to be a folder): each audio file through
        :meth:`parse_name`; a file whose name does not parse is skipped with the rule's reason, one
        the rule leaves out (``None``) is passed over silently, one whose utterance id came before is
        skipped as a duplicate of the first."""
        utterances: list[Utterance] = []
        skipped: list[Skipped] = []
        seen: dict[str, str] = {}
        for path in self.audio_files(self.audio_folder()):
            named = self.parse_name(path)
            if named is None:
                continue
            if isinstance(named, str):
                skipped.append(Skipped(str(path), named))
                continue
            if named.utterance_id in seen:
                skipped.append(Skipped(str(path), f"duplicate of {seen[named.utterance_id]}"))
                continue
            seen[named.utterance_id] = str(path)
            utterances.append(Utterance(path=str(path.resolve()), corpus=self.name, utterance_id=named.utterance_id,
                                        speaker=named.speaker, label=named.label, session=named.session,
                                        extra=named.extra))
        return ScanResult(utterances, skipped)

    def parse_name(self, path: Path) -> Named | str | None:
        """The corpus's naming rule: what ``path``'s name (and folder) says, or why the file is not
        one of the corpus's utterances (the reason shown and kept in the manifest), or ``None`` for
        a file of the corpus that the reader's options leave out (RAVDESS song without
        ``include_song``: not reported).

        Raises:
            NotImplementedError: a reader that neither gives a naming rule nor overrides :meth:`_scan`.
        """
        raise NotImplementedError(f"{type(self).__name__} gives no naming rule (parse_name) and no _scan")

    def audio_folder(self) -> Path:
        """The folder whose audio files :meth:`_scan` reads: ``root / audio_subfolder`` when the
        reader names one and it is a folder, else the root."""
        sub = self.root / self.audio_subfolder if self.audio_subfolder else None
        return sub if sub is not None and sub.is_dir() else self.root

    # ----------------------------------------------------------------------------- folds
    def fold_groups(self, speakers: list[str]) -> list[list[str]]:
        """Split the corpus's speakers into the test groups of its speaker-independent folds.

        The default sorts the speakers and cuts them into ``n_folds`` consecutive groups of
        near-equal size (RAVDESS: 6 groups of 4 actors). Fold ``k`` tests on group ``k`` and
        validates on group ``(k + 1) % n_folds``; the rest train (:mod:`emohrnet.data.splits`).

        Args:
            speakers: the speaker ids present in the corpus.

        Returns:
            ``n_folds`` lists of speaker ids (fewer if there are fewer speakers).
        """
        ordered = sorted(set(speakers))
        n = min(self.n_folds, len(ordered))
        size, rest = divmod(len(ordered), n)
        groups, start = [], 0
        for k in range(n):
            end = start + size + (1 if k < rest else 0)
            groups.append(ordered[start:end])
            start = end
        return groups

    # ----------------------------------------------------------------------------- helpers
    @staticmethod
    def audio_files(root: Path) -> list[Path]:
        """Every ``.wav``/``.flac`` file below ``root`` (any case of suffix), sorted."""
        return sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())

    def describe(self) -> dict[str, Any]:
        """Name, classes, folds, options and source, as recorded in the shard manifest."""
        return {
            "name": self.name,
            "classes": list(self.classes),
            "n_folds": self.n_folds,
            "options": dict(self.options),
            "source": self.source,
            "default_protocol": self.default_protocol,
            "protocol_note": self.protocol_note,
        }
