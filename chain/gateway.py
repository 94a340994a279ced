"""Fetching a document from any IPFS HTTP gateway, with no docchain service involved.

A receipt's storage section names the document's CID (and, for a sealed copy, its key); with them anyone can get
the document back from any gateway (``https://<gateway>/ipfs/<cid>``) and check it: the bytes served must have
that CID (computed here, chain/cid.py), open with the key when sealed (chain/sealed.py), and hash to the receipt's
docHash. The file is written under a temporary name and renamed into place only when all of that holds, so a
gateway that serves other bytes leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from docchain.chain.cid import CidBuilder, parse_cid
from docchain.chain.errors import DocchainError, InvalidInput, VerificationError
from docchain.chain.sealed import MAGIC, VERSION, UnsealError, unseal
from docchain.chain.values import to_hex

CHUNK = 1 << 20


class GatewayError(DocchainError):
    """The gateway could not be reached or would not serve the CID."""


@dataclass(frozen=True)
class GatewayFetch:
    path: Path
    size: int  # of the document
    cid: str
    sealed: bool


def fetch_from_gateway(
    gateway_url: str,
    cid: str,
    doc_hash: bytes,
    key: bytes | None,
    out_path: Path,
    *,
    overwrite: bool = False,
    timeout: float = 60.0,
) -> GatewayFetch:
    """Writes the document ``doc_hash`` kept on IPFS as ``cid`` to ``out_path``, from the gateway at
    ``gateway_url`` (``https://ipfs.io``, ``http://127.0.0.1:8080``); ``key`` opens a sealed copy.

    Raises :class:`VerificationError` (step ``hash``) when the gateway serves bytes with another CID or the
    document hashes otherwise, :class:`~docchain.chain.sealed.UnsealError` when the bytes are the CID's but the
    key does not open them, :class:`GatewayError` when the gateway fails, :class:`InvalidInput` when ``out_path``
    exists (unless ``overwrite``)."""
    cid = parse_cid(cid)
    out_path = Path(out_path)
    if out_path.exists() and not overwrite:
        raise InvalidInput(f"{out_path} exists: not overwritten")
    url = f"{gateway_url.rstrip('/')}/ipfs/{cid}"
    builder = CidBuilder()
    digest = hashlib.sha256()
    size = 0
    fd, tmp = tempfile.mkstemp(dir=out_path.parent, prefix=f".{out_path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, _served(url, timeout) as served:

            def counted() -> Iterator[bytes]:
                for chunk in served:
                    builder.update(chunk)
                    yield chunk

            try:
                for chunk in counted() if key is None else unseal(counted(), key):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
            except UnsealError:
                for _ in counted():  # the rest, to tell altered bytes from another key
                    pass
                if builder.cid() != cid:
                    raise _other_cid(url, cid, builder.cid()) from None
                raise
            if builder.cid() != cid:
                raise _other_cid(url, cid, builder.cid())
            if digest.digest() != doc_hash:
                if key is None and _looks_sealed(tmp):
                    raise UnsealError(f"{url} is a sealed copy: opening it needs the document's key")
                raise VerificationError(
                    "hash", f"the document from {url} hashes to {to_hex(digest.digest())}, not {to_hex(doc_hash)}"
                )
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, out_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return GatewayFetch(out_path, size, cid, sealed=key is not None)


def _looks_sealed(path: str) -> bool:
    """The file begins with the sealed format's header (magic and version)."""
    header = MAGIC + bytes([VERSION])
    with open(path, "rb") as stream:
        return stream.read(len(header)) == header


def _other_cid(url: str, cid: str, actual: str) -> VerificationError:
    return VerificationError("hash", f"{url} served bytes whose CID is {actual}, not {cid}")


@contextlib.contextmanager
def _served(url: str, timeout: float) -> Iterator[Iterator[bytes]]:
    """The body of ``url`` in chunks; transport failures and error statuses become :class:`GatewayError`."""
    try:
        with (
            httpx.Client(timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)), follow_redirects=True) as client,
            client.stream("GET", url, headers={"Accept": "application/octet-stream"}) as response,
        ):
            if response.status_code != 200:
                raise GatewayError(f"{url}: the gateway answered {response.status_code} {response.reason_phrase}")
            yield _guarded(response.iter_bytes(CHUNK), url)
    except httpx.TransportError as exc:
        gateway = url.rsplit("/ipfs/", 1)[0]
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise GatewayError(f"IPFS gateway {gateway} unreachable ({reason})") from exc


def _guarded(chunks: Iterator[bytes], url: str) -> Iterator[bytes]:
    try:
        yield from chunks
    except httpx.TransportError as exc:
        raise GatewayError(f"{url}: the transfer broke off ({exc or type(exc).__name__})") from exc
