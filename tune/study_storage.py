"""Where a search's Optuna study lives, and which study a resume continues.

A local experiment keeps its study in its own folder (``optuna.db``), and the experiment's saved state
names no database (:class:`tune.study.StudySearch`): a resume opens the ``optuna.db`` of the folder it
resumes (:func:`resume_study_url`), so a copied experiment continues its own study and leaves the
original's alone, and a moved one finds its study where it is now. Two studies stay outside the folder
by design: a ``--study-storage`` given to the search (``postgresql://``: a cluster's shared database)
and, for an experiment in a bucket (which cannot hold SQLite), the SQLite study on the machine that ran
it (``$EMOHRNET_HOME/studies/<bucket>/<prefix>/<name>/optuna.db``); a resumed copy of a bucket
experiment starts from a copy of that study in its own such folder.
"""

from __future__ import annotations

import os
import pickletools
import re
import sqlite3
from pathlib import Path, PurePosixPath

from emohrnet.io import paths
from emohrnet.io.experiment_paths import OutsideExperiment
from emohrnet.io.location import Location

from .files import STUDY_DB
from .search_config import SearchExperimentConfig

STUDIES = "studies"
"""``$EMOHRNET_HOME/studies``: the SQLite studies of experiments kept in a bucket."""
_DB_URL = re.compile(r"(sqlite|postgres\w*|mysql\w*|oracle|mssql)(\+\w+)?://")


def study_storage_url(config: SearchExperimentConfig, exp_dir: Location) -> str:
    """The Optuna study's database: ``--study-storage`` (or, for a bucket, the local SQLite file chosen
    when the search started), else SQLite in the (local) experiment folder."""
    return config.search.study_storage or f"sqlite:///{exp_dir.local_path / STUDY_DB}"


def local_study_folder(exp_dir: Location) -> Path:
    """The local folder of the SQLite study of an experiment kept in a bucket: its bucket path under
    ``$EMOHRNET_HOME/studies`` (``s3://b/emohrnet/NAME``: ``studies/b/emohrnet/NAME``), so two
    experiments of one name in two buckets or prefixes, a copy and its original, get their own."""
    parts = [p for p in PurePosixPath(exp_dir.path).parts if p not in ("/", ".", "..")]
    return paths.home().joinpath(STUDIES, *parts)


def local_study_url(exp_dir: Location) -> str:
    """SQLite study of an experiment kept in an object store (:func:`local_study_folder`, made here), on
    the machine running the search (a bucket cannot hold a SQLite database)."""
    folder = local_study_folder(exp_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / STUDY_DB}"


def _sqlite_file(url: str) -> Path | None:
    return Path(url[len("sqlite:///"):]) if url.startswith("sqlite:///") else None


def resume_study_url(config: SearchExperimentConfig, exp_dir: Location, log=print) -> str:
    """The study a resume of ``exp_dir`` continues, named in ``log``: the experiment folder's own
    ``optuna.db`` (not the one its saved state was written with); a ``--study-storage`` as given
    (outside the folder by design); for a bucket experiment, its own local SQLite study
    (:func:`local_study_folder`), which a resumed copy (or an experiment whose study an earlier emohrnet
    kept under its name alone) first fills with a copy of the study its settings name. The caller
    records a changed URL in ``config.json``.

    Raises:
        OutsideExperiment: (a ValueError) the study's SQLite file is not there (naming it), or the
            experiment's saved state was written by an earlier emohrnet with a study elsewhere
            (:func:`saved_state_studies`).
    """
    url = study_storage_url(config, exp_dir)
    saved = saved_state_studies(exp_dir)
    if exp_dir.is_local and not config.search.study_storage:
        log(f"Optuna study: {url} (in the experiment folder)")
    elif not exp_dir.is_local and url.startswith(f"sqlite:///{paths.home() / STUDIES}/") and not saved:
        own, named = local_study_url(exp_dir), _sqlite_file(url)
        if own != url and not _sqlite_file(own).is_file() and named.is_file():
            _copy_sqlite(named, _sqlite_file(own))
            log(f"Optuna study: {own}, copied from {url}, which this experiment's settings named (a copy of another "
                "experiment, or a study kept by an earlier emohrnet); that one is left as it is")
            url = own
        else:
            url = own if _sqlite_file(own).is_file() else url
            log(f"Optuna study: {url} (on this machine: a bucket cannot hold SQLite)")
    else:
        log(f"Optuna study: {url} (outside the experiment folder: --study-storage, or a bucket's, by design; a copy "
            "of this experiment continues that same study)")
    db = _sqlite_file(url)
    if db is not None and not db.is_file() and (exp_dir / "tuner.pkl").is_file():  # Ray's state: a study was made
        raise OutsideExperiment(f"{exp_dir}: its Optuna study {db} is missing, so the search cannot continue its "
                                "trials' history; put the study's optuna.db there, or start a new search")
    for entry, other in saved:
        if other != url:
            raise OutsideExperiment(
                f"{entry}: written by an earlier emohrnet, it names the Optuna study {other}, outside this experiment "
                f"folder {exp_dir} (not {url}); resume the experiment where it was made")
    return url


def _copy_sqlite(source: Path, dest: Path) -> None:
    """Copy a SQLite database consistently (SQLite's backup, even while another process writes it),
    then rename it into place (atomic)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.{os.getpid()}.partial")
    src, out = sqlite3.connect(source), sqlite3.connect(partial)
    try:
        src.backup(out)
    finally:
        src.close()
        out.close()
    os.replace(partial, dest)


def saved_study_urls(data: bytes) -> set[str]:
    """The database URLs a pickle names (its strings that start like ``sqlite:///`` or ``postgresql://``),
    read with :mod:`pickletools` (nothing in it runs)."""
    found = set()
    for _, arg, _ in pickletools.genops(data):
        if isinstance(arg, str) and _DB_URL.match(arg):
            found.add(arg)
    return found


def saved_state_studies(exp_dir: Location) -> list[tuple[Location, str]]:
    """``(file, database URL)`` for each study URL in the experiment's saved searcher (``tuner.pkl``,
    ``searcher-state-*.pkl``): only an earlier emohrnet kept one there (unpickling it opens that
    database, which may be another experiment's, or gone); now none do."""
    return [(entry, url) for entry in exp_dir.iterdir()
            if entry.name == "tuner.pkl" or (entry.name.startswith("searcher-state-") and entry.name.endswith(".pkl"))
            for url in sorted(saved_study_urls(entry.read_bytes()))]
