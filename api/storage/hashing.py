"""Hash-checked streams shared by every backend, for both directions.

Writing: :class:`VerifyingReader` wraps the stream a backend stores and hashes what it hands out. It reads one
block ahead, so it knows which bytes end the stream, and it hands those out only once the whole stream has
hashed to the document's key; otherwise it raises :class:`HashMismatch` instead. A consumer therefore never
holds the complete wrong document: an S3 multipart upload reading from it is aborted before its completion,
an IPFS add request body ends in an error instead of its last chunk, a temporary file is never complete.

Reading: :func:`verified` hashes a backend's chunks on their way to the caller and holds the last chunk back
until the stream has ended and matched, raising :class:`StorageCorrupted` (naming the backend and both
hashes) otherwise. A caller streaming to an HTTP client or a file thus never sends the whole wrong document,
only a truncated prefix followed by the error.

Memory stays bounded: the reader buffers at most the request plus one block, the reading side one chunk.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from docchain.api.storage.base import CHUNK, HashMismatch, StorageCorrupted

__all__ = ["VerifyingReader", "verified"]


class VerifyingReader:
    """A read-only, non-seekable file object over ``stream`` that refuses to end unless the bytes read
    hash (SHA-256) to ``expected``.

    ``size`` counts the bytes read so far (all of them once the stream has ended). ``read(n)`` may return
    fewer than ``n`` bytes only at the end of the stream, like a regular file's. The source is read in
    ``block``-sized pieces, so a ``read(n)`` holds at most ``n`` plus two blocks besides the bytes it returns.
    Non-seekable on purpose: the digest counts each byte once, as it is read, so a consumer that resends
    (a retried request) must keep its own copy of what it sent rather than rewind the stream.
    """

    def __init__(self, stream: BinaryIO, expected: bytes, *, block: int = CHUNK) -> None:
        self._stream = stream
        self._expected = expected
        self._block = block
        self._digest = hashlib.sha256()
        self._ahead: deque[bytes] = deque()  # hashed, not yet handed out
        self._held = 0  # bytes in _ahead
        self._ended = False  # the source is exhausted and matched
        self.size = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def fits(self, size: int) -> bool:
        """Whether what is left of the stream is at most ``size`` bytes: reads ahead (hashing) up to ``size``
        bytes and one more, and says True only when the stream ended within them and matched (so a backend can
        send a small document in one request). The bytes stay here for the next reads."""
        self._fill(size)
        return self._ended

    def read(self, size: int | None = -1) -> bytes:
        want = -1 if size is None or size < 0 else size  # -1: the rest
        if want == 0:
            return b""
        self._fill(want)
        return self._take(self._held if want < 0 else min(want, self._held))

    def _fill(self, want: int) -> None:
        """Hold more than ``want`` bytes (all, for -1), or the rest once the stream has ended and matched: a read
        then knows whether it ends the stream."""
        while not self._ended and (want < 0 or self._held <= want):
            chunk = self._stream.read(self._block)
            if not chunk:
                self._finish()
                break
            self._digest.update(chunk)
            self.size += len(chunk)
            self._ahead.append(chunk)
            self._held += len(chunk)

    def _take(self, n: int) -> bytes:
        parts: list[bytes] = []
        left = n
        while left:
            head = self._ahead[0]
            if len(head) <= left:
                parts.append(self._ahead.popleft())
                left -= len(head)
            else:
                parts.append(head[:left])
                self._ahead[0] = head[left:]
                left = 0
        self._held -= n
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def chunks(self) -> Iterator[bytes]:
        """The verified bytes in blocks (an HTTP request body, say); raises :class:`HashMismatch` instead of
        the last block when they differ."""
        while chunk := self.read(self._block):
            yield chunk

    def drain(self) -> int:
        """Read to the end, verifying, and return the size (the bytes are already held elsewhere)."""
        while self.read(self._block):
            pass
        return self.size

    def _finish(self) -> None:
        actual = self._digest.digest()
        if actual != self._expected:
            self._ahead.clear()
            self._held = 0
            raise HashMismatch(self._expected, actual)
        self._ended = True


def verified(backend: str, doc_hash: bytes, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """``chunks`` as read from ``backend``, checked against ``doc_hash``: the last chunk is yielded only after
    the whole has matched; :class:`StorageCorrupted` is raised in its place when it has not.

    Closing the returned iterator early closes ``chunks`` too (a backend's response body, an open file)."""
    digest = hashlib.sha256()
    held: bytes | None = None
    try:
        for chunk in chunks:
            if not chunk:
                continue
            digest.update(chunk)
            if held is not None:
                yield held
            held = chunk
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    actual = digest.digest()
    if actual != doc_hash:
        raise StorageCorrupted(backend, doc_hash, actual)
    if held is not None:
        yield held
