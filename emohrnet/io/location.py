"""Folders on local disk or in an object store, behind one small interface.

A search on a multi-node cluster keeps its shards, checkpoints and results where every node can
reach them: a shared file system (NFS) or an object-store bucket (``s3://bucket/prefix``,
``gs://bucket/prefix``, any URI ``pyarrow.fs.FileSystem.from_uri`` understands -- the same file
systems Ray Train and Ray Tune use for ``storage_path``). :class:`Location` names such a folder
and reads, writes and lists it; local folders keep atomic writes (:mod:`emohrnet.io.storage`), and
an object store's single-object PUT is atomic by itself (a reader sees the old object or the new
one, never half of one).

Credentials and endpoints come from the usual environment (``AWS_PROFILE``, instance roles,
``AWS_ENDPOINT_URL`` for an S3-compatible store such as MinIO), or from the URI's query
(``s3://bucket/prefix?endpoint_override=host:9000&scheme=http``), which is kept on every path
derived from it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow.fs as pafs

from emohrnet.io.storage import atomic_write_bytes


def is_uri(target: str | Path) -> bool:
    """Whether ``target`` names an object-store (or other non-local) URI, e.g. ``s3://b/p``."""
    text = str(target)
    return "://" in text and not text.startswith("file://")


class Location:
    """A folder or file on local disk or in an object store.

    Args:
        target: a local path (made absolute), a ``file://`` URI, or an object-store URI.

    Raises:
        ValueError: the URI's scheme has no file system here (pyarrow's message says which).
    """

    def __init__(self, target: str | Path | Location) -> None:
        if isinstance(target, Location):
            self.fs, self.path, self._scheme, self._query = target.fs, target.path, target._scheme, target._query
            return
        text = str(target)
        if text.startswith("file://"):
            text = text[len("file://"):]
        if is_uri(text):
            self._scheme, rest = text.split("://", 1)
            self._query = rest.split("?", 1)[1] if "?" in rest else ""
            try:
                self.fs, self.path = pafs.FileSystem.from_uri(text)
            except (ValueError, OSError) as err:  # pyarrow.ArrowInvalid is a ValueError
                raise ValueError(f"{text}: cannot open this storage URI ({err})") from None
            self.path = self.path.rstrip("/")
        else:
            self._scheme, self._query = "", ""
            self.fs, self.path = pafs.LocalFileSystem(), str(Path(text).expanduser().resolve())

    # ------------------------------------------------------------------ naming
    @property
    def is_local(self) -> bool:
        """True for a folder on this machine's file system (including NFS mounts)."""
        return not self._scheme

    @property
    def local_path(self) -> Path:
        """The local path.

        Raises:
            ValueError: this location is in an object store.
        """
        if not self.is_local:
            raise ValueError(f"{self}: an object-store location has no local path")
        return Path(self.path)

    @property
    def uri(self) -> str:
        """The location as given to Ray's ``storage_path`` or back to :class:`Location`."""
        if self.is_local:
            return self.path
        return f"{self._scheme}://{self.path}" + (f"?{self._query}" if self._query else "")

    @property
    def name(self) -> str:
        """The last path component."""
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    @property
    def parent(self) -> Location:
        """The folder holding this location (a bucket, or the file system's root, is its own parent)."""
        if self.is_local:
            return self.with_path(str(Path(self.path).parent))
        head = self.path.rstrip("/").rsplit("/", 1)[0]
        return self.with_path(head) if "/" in self.path.rstrip("/") else Location(self)

    def __truediv__(self, name: str) -> Location:
        child = Location(self)
        child.path = f"{self.path.rstrip('/')}/{name}"
        return child

    def __str__(self) -> str:
        return self.uri

    def __repr__(self) -> str:
        return f"Location({self.uri!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Location) and other.uri == self.uri

    def __hash__(self) -> int:
        return hash(self.uri)

    def relative_to(self, folder: Location) -> str | None:
        """This location's path below ``folder`` (``/``-separated; ``""`` for the folder itself), or
        ``None`` when it is not inside it (elsewhere, on another file system or in another bucket)."""
        if (self._scheme, self._query) != (folder._scheme, folder._query):
            return None
        base = folder.path.rstrip("/")
        if self.path == base:
            return ""
        return self.path[len(base) + 1:] if self.path.startswith(base + "/") else None

    def with_path(self, path: str) -> Location:
        """The location ``path`` on the same file system (``path`` as pyarrow names it, e.g. a
        Ray checkpoint's ``path``, which carries no scheme)."""
        other = Location(self)
        other.path = path.rstrip("/")
        return other

    # ------------------------------------------------------------------ queries
    def _info(self) -> pafs.FileInfo:
        return self.fs.get_file_info(self.path)

    def exists(self) -> bool:
        """Whether a file or folder is here."""
        return self._info().type != pafs.FileType.NotFound

    def is_file(self) -> bool:
        """Whether a file is here."""
        return self._info().type == pafs.FileType.File

    def is_dir(self) -> bool:
        """Whether a folder is here (in an object store: whether any object has this prefix)."""
        return self._info().type == pafs.FileType.Directory

    def mtime(self) -> float:
        """Modification time, seconds since the epoch (0 where the store gives none)."""
        mtime = self._info().mtime
        return mtime.timestamp() if mtime is not None else 0.0

    def iterdir(self) -> list[Location]:
        """The entries directly inside this folder (empty if it does not exist)."""
        selector = pafs.FileSelector(self.path, allow_not_found=True, recursive=False)
        return sorted((self.with_path(info.path) for info in self.fs.get_file_info(selector)),
                      key=lambda loc: loc.path)

    # ------------------------------------------------------------------ reading
    def read_bytes(self) -> bytes:
        """The file's content.

        Raises:
            FileNotFoundError: no file here.
            OSError: it cannot be read.
        """
        if not self.is_file():
            raise FileNotFoundError(f"{self}: no such file")
        with self.fs.open_input_stream(self.path) as stream:
            return stream.read()

    def read_text(self) -> str:
        """UTF-8 text version of :meth:`read_bytes`."""
        return self.read_bytes().decode("utf-8")

    def sha256(self, chunk: int = 1 << 20) -> str:
        """Hex sha256 of the file's content, read in ``chunk``-byte blocks.

        Raises:
            FileNotFoundError: no file here.
        """
        if not self.is_file():
            raise FileNotFoundError(f"{self}: no such file")
        h = hashlib.sha256()
        with self.fs.open_input_stream(self.path) as stream:
            while block := stream.read(chunk):
                h.update(block)
        return h.hexdigest()

    # ------------------------------------------------------------------ writing
    def mkdir(self) -> None:
        """Create this folder and its parents (an object store needs none: a no-op there).

        Raises:
            OSError: it cannot be created (not writable, a file in the way).
        """
        if self.is_local:
            Path(self.path).mkdir(parents=True, exist_ok=True)

    def write_bytes(self, data: bytes) -> None:
        """Write the file atomically (locally: temp file + rename; object store: one PUT).

        Raises:
            OSError: not writable, disk full, store unreachable; the old content is then kept.
        """
        if self.is_local:
            atomic_write_bytes(self.path, data)
            return
        with self.fs.open_output_stream(self.path) as stream:
            stream.write(data)

    def write_text(self, text: str) -> None:
        """UTF-8 text version of :meth:`write_bytes`."""
        self.write_bytes(text.encode("utf-8"))

    def upload(self, source: str | Path) -> None:
        """Copy the local file ``source`` here.

        Raises:
            OSError: the copy failed; on an object store the object is then absent or old.
        """
        pafs.copy_files(str(Path(source).resolve()), self.path, source_filesystem=pafs.LocalFileSystem(),
                        destination_filesystem=self.fs)

    def delete_file(self) -> None:
        """Remove the file if it exists."""
        if self.is_file():
            self.fs.delete_file(self.path)
