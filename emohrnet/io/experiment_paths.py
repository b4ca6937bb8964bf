"""Paths that an experiment's own files name, read against the folder the experiment is in now.

A search's experiment folder (local or in a bucket) may be copied or moved as a whole: ``best.json``
names its checkpoints and trial folders relative to the folder it is in, and a reader resolves them
against the folder it found ``best.json`` in (:func:`in_experiment`), so a copy reads its own
checkpoints, never the original's. A ``best.json`` written before held absolute paths: a path inside
the experiment folder it recorded (``experiment_dir``), or below a folder of the experiment's name,
is mapped by its part below that folder; a path anywhere else is refused (:class:`OutsideExperiment`),
naming it.
"""

from __future__ import annotations

import posixpath

from emohrnet.io.location import Location, is_uri


class OutsideExperiment(ValueError):
    """A file of an experiment names a path outside the experiment folder."""


def _absolute(target: str) -> str:
    """An absolute path or URI as it compares: a URI without its query and trailing ``/``; a local
    path (``file://`` or not) absolute, with symbolic links resolved, as :class:`Location` has it."""
    text = str(target)
    return text.split("?", 1)[0].rstrip("/") if is_uri(text) else Location(text).path


def _is_absolute(named: str) -> bool:
    return is_uri(named) or named.startswith(("/", "file://", "~"))


def below_experiment(named: str, exp_dir: Location, recorded: str | None = None) -> str | None:
    """The part of ``named`` below the experiment folder, ``/``-separated, or ``None`` (outside it).

    Args:
        named: a path an experiment's file names: relative to the experiment folder (the current
            form), or absolute (a local path or a URI; the older form).
        exp_dir: the experiment folder now (where the naming file was found).
        recorded: the experiment folder the file recorded when it was written (``best.json``'s
            ``experiment_dir``), if any.

    Returns:
        a relative ``named`` that stays inside (``..`` never climbs out); an absolute one inside
        ``exp_dir``, inside ``recorded``, or below the last folder named like the experiment
        (``recorded``'s name, else ``exp_dir``'s): its part below that folder; else ``None``.
    """
    if not named:
        return None
    if not _is_absolute(named):
        rel = posixpath.normpath(named.replace("\\", "/"))
        return None if rel == ".." or rel.startswith("../") or rel.startswith("/") else ("" if rel == "." else rel)
    path = _absolute(named)
    for base in (_absolute(exp_dir.uri), _absolute(recorded) if recorded else None):
        if base and (path == base or path.startswith(base + "/")):
            return path[len(base) + 1:]
    name = posixpath.basename(_absolute(recorded)) if recorded else exp_dir.name
    marker = f"/{name}/"
    if name and marker in path:
        return path.rsplit(marker, 1)[1]
    return None


def in_experiment(named: str, exp_dir: Location, recorded: str | None = None, source: object = None,
                  what: str = "path") -> Location:
    """Where ``named`` is inside the experiment folder ``exp_dir`` now (:func:`below_experiment`).

    Args:
        named: the path as the file names it.
        exp_dir: the experiment folder now.
        recorded: the folder the file recorded when it was written (``best.json``'s ``experiment_dir``).
        source: the file that names it (for the error), default ``exp_dir``.
        what: what the path is (``"checkpoint"``), for the error.

    Raises:
        OutsideExperiment: ``named`` is outside the experiment folder; the one-line message names it,
            the file and the folder.
    """
    rel = below_experiment(named, exp_dir, recorded)
    if rel is None:
        raise OutsideExperiment(
            f"{source or exp_dir}: its {what} {named} is outside the experiment folder {exp_dir}, so a copy or a "
            "moved experiment would read another experiment's file; refusing. Put it inside the folder and name it "
            "relative to it, or pass that path itself")
    return exp_dir / rel if rel else Location(exp_dir)
