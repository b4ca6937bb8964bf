"""Shared pieces of the benchmarks: result rows, sections, the run context, peak-RSS sampling and the
corpora the sections measure on.

Every figure is a :func:`row`: a name, a value, its unit and the settings it was taken with, so the
JSON file says exactly what was measured. A section (:class:`Section`) groups rows with its settings
and notes; a section that fails records its error and the other sections still run.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
"""The repository root (``benchmarks/`` lives directly under it)."""

DEFAULT_DATA_ROOT = REPO.parent / "shared" / "data" / "ravdess"
"""Where RAVDESS is looked for when ``--data-root`` is not given (``../shared/data/ravdess``)."""


def quiet(*_args: Any, **_kwargs: Any) -> None:
    """A ``log`` callable that drops messages (for ``build_shards``/``run_search``)."""


def row(name: str, value: float | int | str | None, unit: str, note: str = "", **settings: Any) -> dict[str, Any]:
    """One figure of the results.

    Args:
        name: what was measured, e.g. ``"on the fly: load_audio + LogMel + random_segment, num_workers=0"``.
        value: the figure (``None`` when skipped; ``note`` then says why).
        unit: its unit (``utterances/s``, ``samples/s``, ``s``, ``MiB``, ``x``, ...).
        note: a short remark printed next to the figure (``"skipped: no GPU"``, ``"goal met"``).
        **settings: the settings this figure was taken with (batch size, workers, steps, ...).

    Returns:
        ``{"name", "value", "unit", "note", "settings"}``.
    """
    if isinstance(value, float):
        value = float(f"{value:.6g}")
    return {"name": name, "value": value, "unit": unit, "note": note, "settings": settings}


@dataclass
class Section:
    """The results of one comparison.

    Attributes:
        key: short id (``datapath``, ``trainstep``, ...), the key in the JSON file.
        title: heading of the printed table.
        settings: what applies to every row (corpus, sizes, threads).
        rows: the figures (:func:`row`).
        notes: remarks printed under the table.
        status: ``"ok"``, ``"error"`` or ``"skipped"``.
        error: the exception text when ``status == "error"``.
        wall_s: seconds the section took, setup included.
    """

    key: str
    title: str
    settings: dict[str, Any] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    status: str = "ok"
    error: str = ""
    wall_s: float = 0.0

    def add(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Append ``row(*args, **kwargs)`` and return it."""
        r = row(*args, **kwargs)
        self.rows.append(r)
        return r

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of the section."""
        return {"title": self.title, "status": self.status, "error": self.error, "wall_s": round(self.wall_s, 2),
                "settings": self.settings, "rows": self.rows, "notes": self.notes}


@dataclass
class CorpusSpec:
    """A corpus prepared for the benchmarks.

    Attributes:
        dataset: registry name (``ravdess`` or ``synthetic``).
        data_root: its folder (a temporary folder of symlinks for a RAVDESS subset).
        options: reader options (``corpus_options`` of ``build_shards``).
        files: number of audio files.
        audio_seconds: their total duration in seconds (from the audio headers).
        description: one line saying what it is (real RAVDESS or the synthetic corpus, how many files).
    """

    dataset: str
    data_root: Path
    options: dict[str, Any]
    files: int
    audio_seconds: float
    description: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {"dataset": self.dataset, "data_root": str(self.data_root), "options": self.options,
                "files": self.files, "audio_seconds": round(self.audio_seconds, 2), "description": self.description}


@dataclass
class Context:
    """What every section needs: device, mode, scratch folder and the shared corpora.

    Attributes:
        device: ``"cpu"`` or ``"cuda"``.
        quick: small sizes (the whole run in minutes on a 2-core CPU).
        work: scratch folder (removed at the end unless ``--keep-work``).
        cores: CPU cores this process may use (``os.sched_getaffinity``).
        data_root: the RAVDESS folder to use if it exists.
        corpus: the audio corpus of sections 1 and 3 (made on first use by :func:`main_corpus`).
        small: the small synthetic corpus and its shards for sections 4 and 5 (:func:`small_corpus`).
        shard_dir: shards of ``corpus`` once a section built them (reused by the data-path section).
    """

    device: str
    quick: bool
    work: Path
    cores: int
    data_root: Path
    corpus: CorpusSpec | None = None
    small: dict[str, Any] | None = None
    shard_dir: Path | None = None


def usable_cores() -> int:
    """CPU cores this process may run on (affinity mask; ``os.cpu_count()`` where unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _audio_seconds(paths: list[str]) -> float:
    import soundfile as sf

    return float(sum(sf.info(p).duration for p in paths))


RAVDESS_QUICK_PER_ACTOR = 10
"""Files per actor in the ``--quick`` RAVDESS subset (24 actors: 240 files)."""


def main_corpus(ctx: Context) -> CorpusSpec:
    """The audio corpus of the data-path and shard-build sections (made once per run).

    Real RAVDESS when ``ctx.data_root`` holds it: all 1440 speech files, or in ``--quick`` the first
    :data:`RAVDESS_QUICK_PER_ACTOR` files of each actor through a temporary folder of symlinks. Else
    the synthetic corpus generated into the scratch folder with RAVDESS-like lengths (2.5-4 s).
    """
    if ctx.corpus is not None:
        return ctx.corpus
    from emohrnet.corpora import get_corpus

    actors = sorted(ctx.data_root.glob("Actor_[0-9][0-9]")) if ctx.data_root.is_dir() else []
    if actors:
        if ctx.quick:
            root = ctx.work / "ravdess-subset"
            for actor in actors:
                files = sorted(p for p in actor.iterdir() if p.suffix.lower() in (".wav", ".flac"))
                (root / actor.name).mkdir(parents=True, exist_ok=True)
                for p in files[:RAVDESS_QUICK_PER_ACTOR]:
                    link = root / actor.name / p.name
                    if not link.exists():
                        link.symlink_to(p.resolve())
            how = f"real RAVDESS, subset of {RAVDESS_QUICK_PER_ACTOR} files per actor (symlinks to {ctx.data_root})"
        else:
            root = ctx.data_root
            how = f"real RAVDESS ({ctx.data_root})"
        scan = get_corpus("ravdess", root).scan()
        paths = [u.path for u in scan.utterances]
        ctx.corpus = CorpusSpec("ravdess", root, {}, len(paths), _audio_seconds(paths), f"{how}: {len(paths)} files")
    else:
        options = {"n_speakers": 6 if ctx.quick else 8, "n_per_class": 10 if ctx.quick else 45,
                   "duration": [2.5, 4.0]}
        root = ctx.work / "synthetic-main"
        scan = get_corpus("synthetic", root, **options).scan()  # generates the files
        paths = [u.path for u in scan.utterances]
        ctx.corpus = CorpusSpec("synthetic", root, options, len(paths), _audio_seconds(paths),
                                f"synthetic corpus (no RAVDESS at {ctx.data_root}): {len(paths)} files of 2.5-4 s")
    return ctx.corpus


SMALL_N_MELS = 64
"""Mel bands of the small corpus's shards (DDP and search sections)."""


def small_corpus(ctx: Context) -> dict[str, Any]:
    """The small synthetic corpus and its shards for the DDP and search sections (made once per run).

    8 speakers (4 speaker folds of 2: 4 train, 2 val, 2 test speakers) x 4 classes x 6 (quick) or 12
    utterances of 1.5-2.5 s, shards with :data:`SMALL_N_MELS` mel bands in the scratch folder.

    Returns:
        ``{"root", "options", "shard_dir", "n_mels", "files"}``.
    """
    if ctx.small is not None:
        return ctx.small
    from emohrnet.frontend import FeatureConfig
    from emohrnet.shards import build_shards

    options = {"n_speakers": 8, "n_per_class": 6 if ctx.quick else 12, "duration": [1.5, 2.5]}
    root = ctx.work / "synthetic-small"
    with torch_threads():
        result = build_shards("synthetic", root, ctx.work / "synthetic-small-shards", workers=min(2, ctx.cores),
                              features=FeatureConfig(n_mels=SMALL_N_MELS), corpus_options=options,
                              progress=False, log=quiet)
    ctx.small = {"root": root, "options": options, "shard_dir": result.shard_dir, "n_mels": SMALL_N_MELS,
                 "files": result.manifest.num_utterances}
    return ctx.small


class PeakRSS:
    """Context manager sampling the resident set size (RSS) of this process every ``interval`` s.

    Args:
        interval: seconds between samples.
        children: add the RSS of child processes (e.g. DataLoader workers) to each sample.

    Attributes:
        peak_mib: the largest sample in MiB (after the ``with`` block).
        start_mib: RSS when the block began, in MiB.
    """

    def __init__(self, interval: float = 0.05, children: bool = False) -> None:
        self.interval, self.children = interval, children
        self.peak_mib = self.start_mib = 0.0
        self._proc = psutil.Process()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> float:
        rss = self._proc.memory_info().rss
        if self.children:
            for child in self._proc.children(recursive=True):
                try:
                    rss += child.memory_info().rss
                except psutil.Error:
                    pass
        return rss / 2**20

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak_mib = max(self.peak_mib, self._sample())

    def __enter__(self) -> PeakRSS:
        self.start_mib = self.peak_mib = self._sample()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak_mib = max(self.peak_mib, self._sample())


@contextlib.contextmanager
def torch_threads(n: int | None = None) -> Iterator[None]:
    """Run a block with ``n`` torch threads (``None``: keep the number) and restore the number after it.

    Restoring matters: ``build_shards(workers=1)`` computes features in this process and sets its
    torch threads to 1 for good.
    """
    import torch

    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class Timer:
    """``with Timer() as t: ...`` then ``t.s``: wall seconds (``time.perf_counter``)."""

    def __enter__(self) -> Timer:
        self.s = 0.0
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.s = time.perf_counter() - self._t0
