"""Atomic writes and checksums (a reader never sees a half-written file), the refusal to write an
output over an input or over an existing file (:func:`output_problem`), and the one-line account of a
write that failed for want of space or permission (:func:`storage_error`, :func:`storage_failure`)."""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, fsync, rename.

    Raises:
        OSError: the folder is not writable or the disk is full; ``path`` is then unchanged.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()
"""The process's umask, read once at import (reading it means setting it, which is not thread-safe)."""


def atomic_write_text(path: str | Path, text: str) -> None:
    """UTF-8 text version of :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"))


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's content."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def output_problem(out: str | Path, inputs: Iterable[tuple[str | Path, str]], force: bool = False,
                   option: str = "--out") -> str | None:
    """Why ``out`` must not be written, or ``None``: it is one of ``inputs`` (refused even with
    ``force``: the input would be lost), or it exists and ``force`` is false.

    Args:
        out: the output file.
        inputs: ``(path, what it is)`` of every file the command reads, e.g.
            ``(clip.wav, "a recording being scored")``; the same file under another name (a link) counts.
        force: whether an existing file that is not an input may be replaced.
        option: the command-line option that named ``out``.

    Returns:
        a one-line message naming ``option``, the file and the way out.
    """
    out = Path(out)
    for path, what in inputs:
        if _same(out, Path(path)):
            return (f"argument {option}: {out} is {what}; writing there would replace it "
                    "(allowed: a file that is not an input)")
    if out.exists() and not force:
        return f"argument {option}: {out} exists; choose another file, or pass --force to replace it"
    return None


STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR,
                            errno.EEXIST, errno.EISDIR, errno.EIO})
"""``errno`` values that mean a write failed for the storage's sake (space, quota, permission, a file
where a folder should be), not because of a bug."""
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def storage_error(err: BaseException) -> OSError | None:
    """The :class:`OSError` with an errno of :data:`STORAGE_ERRNOS` in ``err``'s chain (``err``, its
    cause and its context, as a traceback would show them), a full disk before the others; ``None``
    when there is none (a bug, a lost connection: not a storage problem)."""
    found: list[OSError] = []
    seen: set[int] = set()
    todo: list[BaseException | None] = [err]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in STORAGE_ERRNOS:
            found.append(e)
        todo.append(e.__cause__)
        if not e.__suppress_context__:
            todo.append(e.__context__)
    full = [e for e in found if e.errno in _FULL]
    return (full or found or [None])[0]


def storage_failure(err: OSError, folder: str | Path, then: str) -> str:
    """One line for a write that failed (:func:`storage_error`): the folder (``folder``, or the failed
    file's when that lies elsewhere), the reason and the file, and the fix followed by ``then`` (what to
    run once it is fixed).

    E.g. ``"/data/runs/exp: no space left on device; free space there, then continue with:
    python -m tune.search --resume --name exp"``.
    """
    where = Path(folder)
    writing = ""
    if err.filename:
        name = Path(os.fsdecode(err.filename))
        writing = f" (writing {name})"
        if not name.is_relative_to(where):
            where = name.parent
    if err.errno in _FULL:
        return f"{where}: no space left on device{writing}; free space there, then {then}"
    reason = (err.strerror or str(err)).rstrip(".")
    return f"{where}: cannot write there: {reason}{writing}; make it a writable folder, then {then}"
