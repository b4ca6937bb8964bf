"""Corpus readers and the registry that maps ``--dataset`` names to them.

Use :func:`get_corpus` to build a reader by name and :func:`list_corpora` for the names.

- :mod:`emohrnet.corpora.base` -- :class:`Corpus` (walks a folder, skips and de-duplicates files,
  builds :class:`Utterance` records), :class:`Named` (a reader that parses file names).
- One module per corpus: ``ravdess``, ``iemocap`` (sessions), ``emovo``, ``emodb``, ``cremad``,
  ``tess``, ``savee``, and ``synthetic`` (the built-in corpus, whose audio ``speech_synthesis`` makes).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from emohrnet.config.registry import registry
from emohrnet.corpora.base import AUDIO_SUFFIXES, Corpus, CorpusError, Named, ScanResult, Skipped, Utterance
from emohrnet.corpora.cremad import CremaD
from emohrnet.corpora.emodb import EmoDB
from emohrnet.corpora.emovo import Emovo
from emohrnet.corpora.iemocap import Iemocap
from emohrnet.corpora.ravdess import Ravdess
from emohrnet.corpora.savee import Savee
from emohrnet.corpora.synthetic import Synthetic
from emohrnet.corpora.tess import Tess

CORPORA: dict[str, type[Corpus]] = registry((Synthetic, Ravdess, Iemocap, Emovo, EmoDB, CremaD, Tess, Savee),
                                             "name", "corpus")
"""Every corpus reader by its ``--dataset`` name (:func:`emohrnet.config.registry.registry`)."""


def list_corpora() -> list[str]:
    """Registered corpus names, sorted."""
    return sorted(CORPORA)


def corpus_class(name: str) -> type[Corpus]:
    """The reader class registered under ``name``.

    Raises:
        KeyError: unknown name; the message lists the known ones.
    """
    try:
        return CORPORA[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(list_corpora())}") from None


def get_corpus(name: str, root: str | Path | None = None, **options: Any) -> Corpus:
    """Build the reader registered under ``name`` for the folder ``root``.

    Args:
        name: registry name, e.g. ``"ravdess"``.
        root: the corpus folder; when ``None``, the environment variable
            :func:`root_env_var` names it, else the corpus's own default (``synthetic`` only).
        **options: reader options.

    Raises:
        KeyError: unknown name.
        CorpusError: no folder given for a corpus that needs one; the message says where to
            get the corpus and how to name its folder.
    """
    cls = corpus_class(name)
    if root is None:
        root = os.environ.get(root_env_var(name)) or None
    if root is None:
        default = getattr(cls, "default_root", None)
        if default is None:
            raise CorpusError(
                f"dataset {name!r} needs its audio: pass --data-root DIR or set {root_env_var(name)}=DIR. "
                f"Expected layout: {cls.layout}. Where to get it: {cls.source}"
            )
        root = default()
    return _construct(cls, root, options)


def check_options(name: str, options: dict[str, Any]) -> None:
    """Check reader options without touching any folder (before a build or a search starts).

    Raises:
        KeyError: unknown corpus name.
        CorpusError: an unknown option, or a value out of range or of the wrong type (``include_song=maybe``);
            the message names the option and the allowed ones.
    """
    _construct(corpus_class(name), Path("."), options)


def _construct(cls: type[Corpus], root: str | Path, options: dict[str, Any]) -> Corpus:
    try:
        return cls(root, **options)
    except (TypeError, ValueError) as err:
        raise CorpusError(f"--corpus-option: {err}") from None


def root_env_var(name: str) -> str:
    """The environment variable that names a corpus's folder when ``--data-root`` is not given,
    e.g. ``EMOHRNET_RAVDESS_ROOT``."""
    return f"EMOHRNET_{name.upper()}_ROOT"


__all__ = [
    "AUDIO_SUFFIXES",
    "CORPORA",
    "Corpus",
    "CorpusError",
    "Named",
    "check_options",
    "ScanResult",
    "Skipped",
    "Utterance",
    "corpus_class",
    "get_corpus",
    "list_corpora",
    "root_env_var",
]
