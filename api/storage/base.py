"""The storage interface every backend implements, and the errors it raises.

A document's key is its SHA-256 (the ``docHash`` signed on chain). Whatever the backend, a write is
checked against that hash before the copy counts as stored (nothing is left behind when the bytes differ),
and a read is hashed on the way so that a caller never receives other bytes without an error at the end.
Backends check through the shared streams of api/storage/hashing.py.

Backends are synchronous and streaming (the API runs them in a thread): memory stays bounded by a few
chunks whatever the document's size.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from docchain.chain.errors import DocchainError, InvalidInput
from docchain.chain.values import to_hex

CHUNK = 1 << 20


class StorageError(DocchainError):
    """A backend could not do what was asked; ``backend`` names it (``local``, ``s3``, ``ipfs``)."""

    def __init__(self, backend: str, message: str) -> None:
        super().__init__(f"{backend}: {message}")
        self.backend = backend


class BackendUnavailable(StorageError):
    """The backend cannot be reached or refuses to work now (the caller may retry later)."""


class StorageMisconfigured(StorageError):
    """A backend's settings cannot work (unknown bucket, missing or refused credentials, malformed endpoint):
    retrying will not help until the operator changes ``setting`` (e.g. ``DOCCHAIN_S3_BUCKET``)."""

    def __init__(self, backend: str, setting: str, message: str) -> None:
        super().__init__(backend, f"{message} ({setting})")
        self.setting = setting


class NotStored(StorageError):
    """The backend holds no copy of the document."""


class StorageCorrupted(StorageError):
    """The bytes a backend holds (or returned) do not hash to the document's key."""

    def __init__(self, backend: str, expected: bytes, actual: bytes) -> None:
        super().__init__(backend, f"stored copy hashes to {to_hex(actual)}, not the document's {to_hex(expected)}")
        self.expected = expected
        self.actual = actual


class HashMismatch(InvalidInput):
    """Bytes offered for storage do not hash to the document's key: refused, and no copy is left behind.

    An :class:`~docchain.chain.errors.InvalidInput` (the submitter's file is not the signed document), unlike
    :class:`StorageCorrupted` (a backend altered what it was given)."""

    def __init__(self, expected: bytes, actual: bytes) -> None:
        super().__init__(f"the file hashes to {to_hex(actual)}, not the signed docHash {to_hex(expected)}")
        self.expected = expected
        self.actual = actual


@dataclass(frozen=True)
class Placement:
    """Where a backend put a copy: recorded with the document so that it can be read back.

    ``locator`` is the backend's own name for the copy (the object key on S3, the CID on IPFS, the hex
    hash on the local disk); ``sealed`` says the backend holds ciphertext (IPFS stores documents encrypted
    unless the submission asks for public storage) and ``size`` is the number of bytes it holds.
    """

    backend: str
    locator: str
    size: int
    sealed: bool = False


class Backend(Protocol):
    """One place documents are kept. Implementations: api/storage/local.py, s3.py, ipfs.py."""

    name: str

    def check(self) -> None:
        """Raise :class:`BackendUnavailable` if the backend cannot be used now, :class:`StorageMisconfigured`
        if its settings cannot work (start-up and readiness)."""
        ...

    def put(self, doc_hash: bytes, stream: BinaryIO) -> Placement:
        """Store ``stream``'s bytes (read to the end) as the document ``doc_hash``.

        Raises :class:`HashMismatch` when the bytes hash otherwise (no copy is left behind),
        :class:`BackendUnavailable` when the backend cannot take it. Storing a document already held is not an
        error: the same bytes end up under the same name, and the same placement is returned."""
        ...

    def open(self, doc_hash: bytes, placement: Placement) -> Iterator[bytes]:
        """The document's bytes in chunks, hashed on the way: when they differ, the last chunk is withheld and
        :class:`StorageCorrupted` raised in its place, so a caller never holds the whole wrong document (it
        has sent or written a prefix at most: write to a temporary file, or end the response with an error).
        :class:`NotStored` when the copy is gone (raised by the call, before any chunk),
        :class:`BackendUnavailable` when the backend cannot be read now (also midway)."""
        ...

    def exists(self, doc_hash: bytes, placement: Placement) -> bool: ...

    def remove(self, doc_hash: bytes, placement: Placement) -> None:
        """Delete the copy; removing a missing copy is not an error."""
        ...
