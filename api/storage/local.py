"""Content-addressed document storage: a document's key is its SHA-256, checked on write and on read.

:class:`Storage` is the interface (an S3-compatible store can implement it later); :class:`LocalStorage`
keeps files under ``root/ab/cd/<hex>``, written to a temporary file in the same directory, fsynced and
renamed into place, so a crash or a client that disconnects mid-upload never leaves a half-written file
under a document's name.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from docchain.chain.errors import DocchainError, InvalidInput
from docchain.chain.values import to_hex

CHUNK = 1 << 20


class StorageCorrupted(DocchainError):
    """A stored file no longer hashes to its key."""


class Storage(Protocol):
    def put(self, doc_hash: bytes, stream: BinaryIO) -> int:
        """Store ``stream``'s bytes under ``doc_hash``; :class:`InvalidInput` if they hash differently."""
        ...

    def exists(self, doc_hash: bytes) -> bool: ...

    def size(self, doc_hash: bytes) -> int: ...

    def open(self, doc_hash: bytes) -> Iterator[bytes]:
        """The stored bytes in chunks, hash-checked: raises :class:`StorageCorrupted` at the end if altered."""
        ...


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, doc_hash: bytes) -> Path:
        name = doc_hash.hex()
        return self.root / name[:2] / name[2:4] / name

    def exists(self, doc_hash: bytes) -> bool:
        return self._path(doc_hash).is_file()

    def size(self, doc_hash: bytes) -> int:
        return self._path(doc_hash).stat().st_size

    def put(self, doc_hash: bytes, stream: BinaryIO) -> int:
        target = self._path(doc_hash)
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            if digest.digest() != doc_hash:
                raise InvalidInput(
                    f"the uploaded file hashes to {to_hex(digest.digest())}, not the signed docHash {to_hex(doc_hash)}"
                )
            os.replace(tmp, target)  # same content under the same name: replacing is idempotent
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return size

    def open(self, doc_hash: bytes) -> Iterator[bytes]:
        path = self._path(doc_hash)
        digest = hashlib.sha256()
        with open(path, "rb") as stream:
            while chunk := stream.read(CHUNK):
                digest.update(chunk)
                yield chunk
        if digest.digest() != doc_hash:
            raise StorageCorrupted(f"stored document {to_hex(doc_hash)} is corrupted (hash mismatch)")

    def verify(self, doc_hash: bytes) -> bool:
        digest = hashlib.sha256()
        with open(self._path(doc_hash), "rb") as stream:
            while chunk := stream.read(CHUNK):
                digest.update(chunk)
        return digest.digest() == doc_hash
