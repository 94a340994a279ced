"""The local backend: documents as files under ``root/ab/cd/<hex hash>`` on this machine's disk.

A write goes to a temporary file in the target's directory, is fsynced and renamed into place (and the
directory fsynced), so a crash or a client that disconnects mid-upload never leaves a partial file under a
document's name, and an accepted document survives a power loss. The file's place follows from the hash
alone, so the placement argument of the :class:`~docchain.api.storage.base.Backend` methods is optional here.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from docchain.api.storage.base import CHUNK, BackendUnavailable, NotStored, Placement
from docchain.api.storage.hashing import VerifyingReader, verified

__all__ = ["LocalStorage"]


class LocalStorage:
    """Implements :class:`~docchain.api.storage.base.Backend`. ``name`` defaults to ``local``; a second local
    store (another disk, a network mount) takes another name so that its copies are told apart."""

    def __init__(self, root: Path, *, name: str = "local") -> None:
        self.name = name
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, doc_hash: bytes) -> Path:
        name = doc_hash.hex()
        return self.root / name[:2] / name[2:4] / name

    def _unavailable(self, doing: str, path: Path, exc: OSError) -> BackendUnavailable:
        return BackendUnavailable(self.name, f"cannot {doing} {path}: {exc.strerror or exc}")

    def check(self) -> None:
        """The root is a directory this process can create files in."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._unavailable("create", self.root, exc) from exc
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise BackendUnavailable(self.name, f"cannot write to {self.root}: permission denied")

    def put(self, doc_hash: bytes, stream: BinaryIO) -> Placement:
        target = self._path(doc_hash)
        reader = VerifyingReader(stream, doc_hash)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        except OSError as exc:
            raise self._unavailable("write to", target.parent, exc) from exc
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := reader.read(CHUNK):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)  # same content under the same name: replacing is idempotent
            _fsync_dir(target.parent)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise self._unavailable("write", target, exc) from exc
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return Placement(self.name, doc_hash.hex(), reader.size)

    def open(self, doc_hash: bytes, placement: Placement | None = None) -> Iterator[bytes]:
        path = self._path(doc_hash)
        try:
            # opened here, closed by _chunks: a missing copy is NotStored at the call, not at the first read
            stream = open(path, "rb")  # noqa: SIM115
        except FileNotFoundError:
            raise NotStored(self.name, f"no copy of {doc_hash.hex()} under {self.root}") from None
        except OSError as exc:
            raise self._unavailable("read", path, exc) from exc
        return verified(self.name, doc_hash, _chunks(stream))

    def exists(self, doc_hash: bytes, placement: Placement | None = None) -> bool:
        return self._path(doc_hash).is_file()

    def remove(self, doc_hash: bytes, placement: Placement | None = None) -> None:
        self._path(doc_hash).unlink(missing_ok=True)


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    with stream:
        while chunk := stream.read(CHUNK):
            yield chunk


def _fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable: the new directory entry survives a power loss with the file."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
