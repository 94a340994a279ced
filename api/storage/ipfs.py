"""The IPFS backend: documents kept by a kubo node, through its HTTP RPC API (``/api/v0/...``).

A copy is added under :data:`docchain.chain.cid.ADD_OPTIONS` while docchain computes the same CID itself; a node
that answers another CID is refused (its import settings would make the recorded CID unverifiable elsewhere).
The add pins the copy, and it completes only for the right bytes: a request body that does not hash to the
document (or, for a sealed copy, does not have its CID) ends in an error before its last chunk, so the node's add
fails and a refused upload pins nothing (its stray blocks go at the node's next garbage collection).

Two kinds of copies:

* public (:meth:`IpfsStorage.put`): the document's own bytes, readable by anyone who has the CID;
* sealed (:meth:`IpfsStorage.add_sealed`): the document sealed with a per-document key (chain/sealed.py). The
  acceptance seals it into a staging file with :func:`stage_sealed` (the key never reaches this module's storage
  or logs); the copy is added from that file, and reading it back needs the key.

Reads use ``cat`` with ``offline=true``: a node that no longer holds a block answers "not found" at once instead
of searching the network for it until the timeout.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import secrets
import tempfile
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlencode, urlsplit

import httpx

from docchain.api.storage.base import (
    CHUNK,
    BackendUnavailable,
    HashMismatch,
    NotStored,
    Placement,
    StorageCorrupted,
    StorageError,
    StorageMisconfigured,
)
from docchain.api.storage.hashing import VerifyingReader, verified
from docchain.chain.cid import ADD_OPTIONS, CidBuilder
from docchain.chain.sealed import UnsealError, seal, sealed_size, unseal
from docchain.chain.values import to_hex

NAME = "ipfs"


@dataclass(frozen=True)
class IpfsConfig:
    """Where the kubo node is (settings ``DOCCHAIN_IPFS_*``).

    ``api_url``: its RPC API (``Addresses.API``; never expose it beyond the API's own network: it administers
    the node). ``gateway_url``: an HTTP gateway serving the same content, for links given to users (optional).
    ``timeout``: seconds a request may wait for the node between two transfers of bytes."""

    api_url: str = "http://127.0.0.1:5001"
    gateway_url: str | None = None
    timeout: float = 30.0


@dataclass(frozen=True)
class StagedSeal:
    """A sealed document waiting in the spool for its IPFS copy (:func:`stage_sealed`)."""

    path: Path
    cid: str  # of the sealed bytes: the CID the IPFS copy will have
    doc_hash: bytes  # SHA-256 of the document (the plaintext)
    size: int  # of the document
    sealed_size: int  # of the staging file


class SealedCopyNeedsKey(StorageError):
    """A sealed copy was asked for without the document's key."""

    def __init__(self, backend: str, cid: str) -> None:
        super().__init__(backend, f"copy {cid} is sealed: reading it needs the document's key")


class CidMismatch(StorageError):
    """The node pinned a copy under another CID than docchain's for those bytes: a node that imports otherwise,
    or (sealed copies, whose CID is computed when staged) a staging file changed since. The pin is removed."""

    def __init__(self, backend: str, expected: str, actual: str, what: str) -> None:
        super().__init__(backend, f"{what}: CID {actual}, expected {expected}")
        self.expected = expected
        self.actual = actual


class NodeRefused(StorageError):
    """The node answered an RPC call with an error: ``message`` is kubo's own."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(NAME, f"the node refused ({status}): {message}")
        self.status = status
        self.message = message


class IpfsStorage:
    """The :class:`~docchain.api.storage.base.Backend` over a kubo node's RPC API."""

    name = NAME

    def __init__(self, config: IpfsConfig, *, client: httpx.Client | None = None) -> None:
        self.config = config
        self._url = config.api_url.rstrip("/")
        self._client = client or httpx.Client(
            timeout=httpx.Timeout(config.timeout, connect=min(5.0, config.timeout)),
            # The RPC API is an administrative endpoint on a private network: no proxy from the environment.
            trust_env=False,
        )

    def close(self) -> None:
        self._client.close()

    # --- the Backend protocol -------------------------------------------------------------------------------

    def check(self) -> None:
        try:
            self._call("version")
        except NodeRefused as exc:  # something answers there, but not kubo's RPC API (a gateway, a proxy)
            said = " ".join(exc.message.split())[:120]
            raise StorageMisconfigured(
                NAME,
                "DOCCHAIN_IPFS_API_URL",
                f"{self._url} answers {exc.status} ({said}) to RPC calls: not kubo's RPC API (Addresses.API)",
            ) from exc

    def put(self, doc_hash: bytes, stream: BinaryIO) -> Placement:
        """A public copy: the document's own bytes. :class:`HashMismatch` if they are not ``doc_hash``'s (the
        request is cut short before its last block, and nothing is pinned)."""
        reader = VerifyingReader(stream, doc_hash)
        cid, size = self._add(reader.chunks(), doc_hash)
        return Placement(NAME, cid, size, sealed=False)

    def add_sealed(self, doc_hash: bytes, staged: BinaryIO, expected_cid: str) -> Placement:
        """The sealed copy of ``doc_hash`` from its staging file (:func:`stage_sealed`), whose CID was computed
        when it was sealed: a staging file altered since is refused with :class:`CidMismatch`."""
        cid, size = self._add(_chunks(staged), doc_hash, expected_cid=expected_cid)
        return Placement(NAME, cid, size, sealed=True)

    def open(self, doc_hash: bytes, placement: Placement, key: bytes | None = None) -> Iterator[bytes]:
        """The document's bytes, hash-checked on the way (see the protocol). A sealed copy needs ``key``
        (:class:`SealedCopyNeedsKey` otherwise) and is opened on the way: :class:`UnsealError` means the key is
        not this copy's (the bytes served did have the copy's CID), :class:`StorageCorrupted` that the node
        served other bytes."""
        if placement.sealed and key is None:
            raise SealedCopyNeedsKey(NAME, placement.locator)
        chunks = self._cat(placement.locator)
        if not placement.sealed:
            return verified(NAME, doc_hash, chunks)
        assert key is not None
        return self._open_sealed(doc_hash, placement.locator, chunks, key)

    def exists(self, doc_hash: bytes, placement: Placement) -> bool:
        """The copy is pinned on the node (an unpinned block may still be there, but only until the node's
        garbage collection)."""
        try:
            self._call("pin/ls", arg=placement.locator, type="recursive", offline="true")
        except NodeRefused as exc:
            if "not pinned" in exc.message:
                return False
            raise
        return True

    def remove(self, doc_hash: bytes, placement: Placement) -> None:
        """Unpins the copy and deletes its root block, so that the node stops serving it at once; the rest of
        its blocks go at the node's next garbage collection. kubo keeps a block that another pin still needs
        (the same bytes inside another document): that refusal is not an error."""
        try:
            self._call("pin/rm", arg=placement.locator)
        except NodeRefused as exc:
            if "not pinned" not in exc.message:
                raise
        with contextlib.suppress(NodeRefused):
            self._call("block/rm", arg=placement.locator, quiet="true")

    # --- requests ---------------------------------------------------------------------------------------------

    def _add(self, chunks: Iterable[bytes], doc_hash: bytes, *, expected_cid: str | None = None) -> tuple[str, int]:
        """Adds and pins ``chunks``; the node's CID must be docchain's: computed here on the way, or for a sealed
        copy ``expected_cid``, computed when it was staged. A public body whose SHA-256 is wrong ends in an
        error before its last chunk (``put``'s VerifyingReader): the node never sees the whole file, so its add
        fails and pins nothing (and can never unpin a copy already there)."""
        builder = CidBuilder() if expected_cid is None else None
        size = 0

        def body() -> Iterator[bytes]:
            nonlocal size
            for chunk in chunks:
                if builder is not None:
                    builder.update(chunk)
                size += len(chunk)
                yield chunk

        boundary = secrets.token_hex(16)
        try:
            with self._client.stream(
                "POST",
                f"{self._url}/api/v0/add",
                params=dict(ADD_OPTIONS) | {"pin": "true", "progress": "false"},
                headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
                content=_multipart(boundary, doc_hash.hex(), body()),
            ) as response:
                if refused := _refusal(response):
                    raise refused
                answer = response.read()
        except httpx.TransportError as exc:
            raise BackendUnavailable(NAME, f"cannot add to the node at {self._url}: {_reason(exc)}") from exc
        ours = builder.cid() if builder is not None else expected_cid
        assert ours is not None
        theirs = _added_cid(answer)
        if theirs != ours:
            # What the node pinned is no copy docchain can name: a staging file changed since it was sealed, or
            # a node that builds CIDs its own way.
            with contextlib.suppress(StorageError):
                self._call("pin/rm", arg=theirs)
            raise CidMismatch(NAME, ours, theirs, f"the node's copy of {to_hex(doc_hash)}")
        return theirs, size

    def _cat(self, cid: str) -> Generator[bytes, None, None]:
        """The bytes of ``cid`` as the node serves them. The request is made before the first chunk is asked
        for, so that a missing copy or a node that is down raises at once.

        It is an HTTP/1.0 request: to HTTP/1.1 clients kubo streams ``cat`` in 4 KiB chunks of chunked transfer
        encoding, whose decoding in Python costs three quarters of the throughput, while an HTTP/1.0 response
        is the bare body up to the connection's end, read in :data:`CHUNK` pieces. A body cut short is told from
        the end by kubo's ``X-Content-Length``."""
        url = urlsplit(self._url)
        connection_type = _Http10Connection if url.scheme == "http" else _Https10Connection
        connection = connection_type(url.hostname or "", url.port, timeout=self.config.timeout)
        path = f"{url.path}/api/v0/cat?{urlencode({'arg': cid, 'offline': 'true'})}"
        try:
            connection.request("POST", path, headers={"Content-Length": "0"})
            response = connection.getresponse()
            if response.status >= 400:
                refused = NodeRefused(response.status, _message(response.read()))
                connection.close()
                if "not found" in refused.message:
                    raise NotStored(NAME, f"the node does not hold {cid}") from refused
                raise refused
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise BackendUnavailable(NAME, f"cannot read {cid} from the node at {self._url}: {exc}") from exc
        return _body(connection, response, cid)

    def _open_sealed(
        self, doc_hash: bytes, cid: str, chunks: Generator[bytes, None, None], key: bytes
    ) -> Iterator[bytes]:
        """Unseals ``chunks`` while hashing the plaintext; the last chunk is held back until both the GCM tag
        and the hash have matched. A tag that fails is either another key or other bytes: the copy is read
        again, and its CID says which."""
        digest = hashlib.sha256()
        held: bytes | None = None
        try:
            for plain in unseal(chunks, key):
                digest.update(plain)
                if held is not None:
                    yield held
                held = plain
        except UnsealError:
            if self._served_cid(cid) != cid:  # the node's fault, not the key's
                raise StorageCorrupted(NAME, doc_hash, digest.digest()) from None
            raise
        finally:
            chunks.close()
        if digest.digest() != doc_hash:
            raise StorageCorrupted(NAME, doc_hash, digest.digest())
        if held is not None:
            yield held

    def _served_cid(self, cid: str) -> str:
        """The CID of the bytes the node serves as ``cid``."""
        builder = CidBuilder()
        for chunk in self._cat(cid):
            builder.update(chunk)
        return builder.cid()

    def _call(self, command: str, **params: str) -> bytes:
        try:
            response = self._client.post(f"{self._url}/api/v0/{command}", params=params)
        except httpx.TransportError as exc:
            raise BackendUnavailable(NAME, f"cannot reach the node at {self._url}: {_reason(exc)}") from exc
        if response.status_code >= 400:
            raise NodeRefused(response.status_code, _message(response.content))
        return response.content


def _refusal(response: httpx.Response) -> NodeRefused | None:
    """The node's error, when ``response`` (streamed) is one: kubo answers RPC errors with a JSON message."""
    if response.status_code < 400:
        return None
    response.read()
    return NodeRefused(response.status_code, _message(response.content))


def _message(body: bytes) -> str:
    try:
        message = json.loads(body).get("Message")
    except (ValueError, AttributeError):
        message = None
    return str(message) if message else body.decode("utf-8", "replace")[:200]


def _added_cid(body: bytes) -> str:
    """The root CID in ``add``'s answer (one JSON object per line; the file's is the last with a hash)."""
    for line in reversed(body.splitlines()):
        if line.strip():
            cid = json.loads(line).get("Hash")
            if cid:
                return str(cid)
    raise StorageError(NAME, f"the node's answer to add names no CID: {body[:200]!r}")


def _reason(exc: httpx.TransportError) -> str:
    return str(exc) or type(exc).__name__


def _multipart(boundary: str, filename: str, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """A ``multipart/form-data`` body with one file part, streamed: kubo's ``add`` reads the part as it arrives."""
    yield (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    yield from chunks
    yield f"\r\n--{boundary}--\r\n".encode()


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    while chunk := stream.read(CHUNK):
        yield chunk


class _Http10Connection(http.client.HTTPConnection):
    """An HTTP/1.0 client connection (see :meth:`IpfsStorage._cat`)."""

    _http_vsn = 10
    _http_vsn_str = "HTTP/1.0"


class _Https10Connection(http.client.HTTPSConnection):
    _http_vsn = 10
    _http_vsn_str = "HTTP/1.0"


def _body(
    connection: http.client.HTTPConnection, response: http.client.HTTPResponse, cid: str
) -> Generator[bytes, None, None]:
    declared = response.getheader("X-Content-Length")
    received = 0
    try:
        while chunk := response.read(CHUNK):
            received += len(chunk)
            yield chunk
    except (OSError, http.client.HTTPException) as exc:
        raise BackendUnavailable(NAME, f"reading {cid} from the node broke off: {exc}") from exc
    finally:
        connection.close()
    if declared is not None and declared.isdigit() and received != int(declared):
        raise BackendUnavailable(NAME, f"reading {cid} from the node broke off after {received} of {declared} bytes")


def stage_sealed(stream: BinaryIO, key: bytes, spool_dir: Path, *, expected_hash: bytes | None = None) -> StagedSeal:
    """Seals ``stream``'s document with ``key`` into ``spool_dir``, computing the sealed bytes' CID on the way.

    The file is written under a temporary name, fsynced and renamed to ``<cid>.sealed`` (the directory fsynced
    too), so a staged copy that the outbox finds after a crash is always complete. With ``expected_hash``, bytes
    that hash otherwise raise :class:`HashMismatch` and nothing is left in the spool."""
    spool_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    builder = CidBuilder()
    size = 0

    def plain() -> Iterator[bytes]:
        nonlocal size
        for chunk in _chunks(stream):
            digest.update(chunk)
            size += len(chunk)
            yield chunk

    fd, tmp = tempfile.mkstemp(dir=spool_dir, prefix=".staging-")
    try:
        with os.fdopen(fd, "wb") as out:
            for sealed in seal(plain(), key):
                builder.update(sealed)
                out.write(sealed)
            out.flush()
            os.fsync(out.fileno())
        if expected_hash is not None and digest.digest() != expected_hash:
            raise HashMismatch(expected_hash, digest.digest())
        cid = builder.cid()
        target = spool_dir / f"{cid}.sealed"
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(spool_dir)
    return StagedSeal(target, cid, digest.digest(), size, sealed_size(size))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
