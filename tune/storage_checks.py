"""Checks of where a search writes and what a resume reads, made before the experiment folder is made
and before Ray starts (each refusal is one line naming the folder or file and the fix; the command line
turns :class:`tune.checks.ConfigError` into exit status 2):

- :func:`check_writable`: ``$EMOHRNET_HOME`` and a local ``--storage-path`` can be written;
- :func:`check_study_storage`: a ``--study-storage`` database is one SQLAlchemy knows, its driver is
  installed, and it answers (one connection); a SQLite file's folder exists;
- :func:`check_study_database`: on ``--resume``, the study database holds the search's study and
  reads (a truncated, overwritten or emptied ``optuna.db`` fails here instead of after Ray has
  started trials);
- :func:`check_trial_folders`: on ``--resume``, the folder of every finished trial that Ray Tune's
  state records is there.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from contextlib import closing
from pathlib import Path

from emohrnet.io.location import Location

from .checks import ConfigError

CONNECT_TIMEOUT_S = 10
"""How long the check waits for a database server (PostgreSQL, MySQL) to answer."""


def check_writable(folder: str | Path, name: str, fix: str) -> None:
    """Refuse a folder that cannot be made or written, without making it: its nearest existing
    ancestor must be a folder in which a file can be created (a probe file, removed at once).

    Args:
        folder: the folder a search will write into.
        name: how the message names it, e.g. ``"EMOHRNET_HOME"``, ``"--storage-path"``.
        fix: what to do instead, e.g. ``"set EMOHRNET_HOME to a writable folder"``.

    Raises:
        ConfigError: a file where a folder should be, or no permission to write there.
    """
    folder = Path(folder).expanduser().absolute()
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise ConfigError(f"{name} {folder}: cannot write there: {existing} is a file; {fix}")
    try:
        with tempfile.TemporaryFile(dir=existing, prefix=".emohrnet-write-check-"):
            pass
    except OSError as err:
        raise ConfigError(f"{name} {folder}: cannot write there ({err.strerror or err}); {fix}") from None


def _sqlite_file(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL (``None``: not SQLite, or an in-memory database)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database).expanduser()


def _sqlite_problem(path: Path, study: str | None) -> str | None:
    """What is wrong with a SQLite study file (read-only look), or ``None``."""
    if path.stat().st_size == 0:
        return "the file is empty"
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            checked = [row[0] for row in db.execute("PRAGMA quick_check")]
            if checked != ["ok"]:
                return f"SQLite's check fails: {checked[0]}"
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "studies" not in tables:
                return "it holds no Optuna study (not an Optuna database)"
            if study is not None and not db.execute("SELECT 1 FROM studies WHERE study_name = ?", (study,)).fetchone():
                return f"it holds no study named {study!r}"
    except sqlite3.Error as err:
        return f"SQLite: {err}"
    return None


def check_study_storage(url: str) -> None:
    """Refuse a ``--study-storage`` the search could not use, by connecting to it once.

    A SQLite file need not exist yet (the search makes it) but its folder must; an existing one must read
    as a database. Any other URL must name a dialect SQLAlchemy knows, with its driver installed, and the
    server must answer within :data:`CONNECT_TIMEOUT_S` seconds.

    Raises:
        ConfigError: one line naming ``--study-storage``, what failed and what is allowed.
    """
    from sqlalchemy import create_engine
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    allowed = ("(allowed: a database URL SQLAlchemy reaches, e.g. sqlite:////abs/path/optuna.db or "
               "postgresql+psycopg2://user@host/db)")
    try:
        sqlite_file = _sqlite_file(url)
    except ArgumentError:
        raise ConfigError(f"--study-storage {url!r}: not a database URL {allowed}") from None
    if sqlite_file is not None:
        if not sqlite_file.parent.is_dir():
            raise ConfigError(f"--study-storage {url}: the folder {sqlite_file.parent} does not exist; make it "
                              f"first {allowed}")
        if sqlite_file.exists():
            problem = _sqlite_problem(sqlite_file, None)
            if problem:
                raise ConfigError(f"--study-storage {url}: {sqlite_file} is not a usable study database ({problem})")
        return
    scheme = url.split(":", 1)[0].split("+", 1)[0]
    connect_args = {"connect_timeout": CONNECT_TIMEOUT_S} if scheme in ("postgresql", "mysql") else {}
    engine = None
    try:
        engine = create_engine(url, connect_args=connect_args)
        with engine.connect():
            pass
    except NoSuchModuleError:
        raise ConfigError(f"--study-storage {url}: SQLAlchemy knows no database kind {scheme!r} {allowed}") from None
    except ImportError as err:
        raise ConfigError(f"--study-storage {url}: its database driver is not installed ({err}); install it, or "
                          "name an installed one (emohrnet installs psycopg2: postgresql+psycopg2://...)") from None
    except (SQLAlchemyError, ValueError) as err:
        reason = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
        raise ConfigError(f"--study-storage {url}: cannot connect ({reason}); check the URL and that the "
                          "database server runs and is reachable from this machine") from None
    finally:
        if engine is not None:
            engine.dispose()


def check_study_database(url: str, study: str | None, exp_dir: Location) -> None:
    """``--resume``: the study database must hold the search's study and read, before Ray starts.

    Args:
        url: the study's database (``optuna.db`` in the experiment folder, or ``--study-storage``).
        study: the study's name (the experiment's), or ``None``: any Optuna study (the experiment folder's
            own ``optuna.db``, whose study keeps the name of the folder the search started in).
        exp_dir: the experiment (named in the fix).

    Raises:
        ConfigError: the file is gone, empty, truncated or overwritten, or holds no such study; the
            server does not answer.
    """
    fix = (f"--resume needs it: put back a good copy of it (from a backup), or start a new search with another "
           f"--name ({exp_dir} stays as it is)")
    sqlite_file = _sqlite_file(url)
    if sqlite_file is None:
        check_study_storage(url)
        from sqlalchemy import create_engine, text

        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                found = conn.execute(text("SELECT 1 FROM studies WHERE study_name = :n"), {"n": study}).fetchone()
        except Exception as err:  # noqa: BLE001 - any database error: the study cannot be read
            found, problem = None, str(getattr(err, "orig", None) or err).strip().splitlines()[0]
        else:
            problem = f"it holds no study named {study!r}"
        finally:
            engine.dispose()
        if not found:
            raise ConfigError(f"{url}: the Optuna study of this search cannot be read ({problem}); {fix}")
        return
    if not sqlite_file.is_file():
        raise ConfigError(f"{sqlite_file}: the Optuna study of this search is gone; {fix}")
    problem = _sqlite_problem(sqlite_file, study)
    if problem:
        raise ConfigError(f"{sqlite_file}: the Optuna study of this search is damaged ({problem}); {fix}")


def check_trial_folders(exp_dir: Location) -> None:
    """``--resume``: the folder of every finished trial that Ray Tune's newest state
    (``experiment_state-*.json``, read as JSON) records must be in the experiment folder: its results
    are there, and without them the resumed search would report that trial as failed. (Trials that had
    not finished are run again, so their folders may be missing.)

    Raises:
        ConfigError: naming the first missing folder, the state file and the fix.
    """
    states = sorted((e for e in exp_dir.iterdir() if e.name.startswith("experiment_state-")
                     and e.name.endswith(".json")), key=lambda e: e.name)
    if not states:
        return
    try:
        folders = []
        for entry in json.loads(states[-1].read_text()).get("trial_data") or []:
            trial = entry[0] if isinstance(entry, list) else entry
            trial = json.loads(trial) if isinstance(trial, str) else trial
            if trial.get("status") == "TERMINATED":
                folders.append(trial.get("relative_logdir") or trial.get("custom_dirname"))
    except (ValueError, AttributeError, TypeError, IndexError):
        return  # a state Ray cannot read either; Ray's restore reports it
    missing = [f for f in folders if f and not (exp_dir / f).is_dir()]
    if missing:
        raise ConfigError(f"{exp_dir / missing[0]}: the folder of a finished trial recorded in {states[-1].name} is "
                          f"gone ({len(missing)} of {len(folders)} finished trials' folders missing); --resume needs "
                          f"them: put them back (from a copy of {exp_dir}), or start a new search with another --name")
