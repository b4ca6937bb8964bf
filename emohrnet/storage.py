"""Atomic writes and checksums (a reader never sees a half-written file), and the refusal to write an
output over an input or over an existing file (:func:`output_problem`)."""

from __future__ import annotations

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
