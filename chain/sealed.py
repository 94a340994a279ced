"""The sealed form of a document kept on IPFS: AES-256-GCM under a key only the submitter holds.

Anyone who learns a CID can fetch its bytes from the IPFS network, so docchain publishes ciphertext unless the
submitter asks for public storage. The format (docs/protocol.md, "Documents on IPFS") is one GCM message::

    header     "DCSEAL" (6 bytes) | version 0x01 (1 byte) | nonce (12 bytes)
    ciphertext as long as the document
    tag        16 bytes

The whole 19-byte header is the GCM associated data, so the version and nonce cannot be swapped without the tag
failing. A key seals exactly one document (a fresh one per submission), which makes a random nonce safe by
construction rather than by chance. Both directions stream with memory bounded by one chunk: decryption holds
back the last 16 bytes it has seen, which become the tag when the stream ends.

The key's text form (receipts, the API's responses and headers) is base64url without padding: 43 characters.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import secrets
from collections.abc import Iterable, Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher
from cryptography.hazmat.primitives.ciphers.algorithms import AES
from cryptography.hazmat.primitives.ciphers.modes import GCM

from docchain.chain.errors import InvalidInput

MAGIC = b"DCSEAL"
VERSION = 1
KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
HEADER_SIZE = len(MAGIC) + 1 + NONCE_SIZE
OVERHEAD = HEADER_SIZE + TAG_SIZE
"""Bytes a sealed document has beyond the document itself."""


class UnsealError(InvalidInput):
    """Sealed bytes that do not open: not in the sealed format, truncated, altered, or another key.

    GCM cannot tell a wrong key from altered bytes; callers that can check the ciphertext otherwise (its CID)
    say which it was."""


def new_key() -> bytes:
    """A fresh random 256-bit key, for one document."""
    return secrets.token_bytes(KEY_SIZE)


def key_to_text(key: bytes) -> str:
    _check_key(key)
    return base64.urlsafe_b64encode(key).rstrip(b"=").decode("ascii")


def key_from_text(text: str) -> bytes:
    """The key whose text form is ``text``; :class:`InvalidInput` unless it is 43 base64url characters."""
    if len(text) != 43 or not text.isascii():
        raise InvalidInput("a document key is 43 base64url characters (32 bytes, no padding)")
    try:
        key = base64.urlsafe_b64decode(text + "=")
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput("a document key is 43 base64url characters (32 bytes, no padding)") from exc
    if key_to_text(key) != text:  # refuses the non-canonical spellings of the last character
        raise InvalidInput("a document key is 43 base64url characters (32 bytes, no padding)")
    return key


def sealed_size(size: int) -> int:
    """The length of a sealed document of ``size`` bytes."""
    return size + OVERHEAD


def _check_key(key: bytes) -> None:
    if len(key) != KEY_SIZE:
        raise InvalidInput(f"a document key is {KEY_SIZE} bytes, not {len(key)}")


def seal(chunks: Iterable[bytes], key: bytes, *, nonce: bytes | None = None) -> Iterator[bytes]:
    """The sealed form of the document whose bytes ``chunks`` yields, in chunks.

    ``nonce`` exists for test vectors; every real seal draws a random one."""
    _check_key(key)
    if nonce is None:
        nonce = secrets.token_bytes(NONCE_SIZE)
    if len(nonce) != NONCE_SIZE:
        raise ValueError(f"the nonce is {NONCE_SIZE} bytes")
    header = MAGIC + bytes([VERSION]) + nonce
    encryptor = Cipher(AES(key), GCM(nonce)).encryptor()
    encryptor.authenticate_additional_data(header)
    yield header
    for chunk in chunks:
        if out := encryptor.update(chunk):
            yield out
    yield encryptor.finalize() + encryptor.tag


def unseal(chunks: Iterable[bytes], key: bytes) -> Iterator[bytes]:
    """The document sealed in ``chunks``, in chunks.

    Bytes come out before the tag is checked (that is what streaming means): :class:`UnsealError` at the end
    says they are not the document, so a caller keeps what it received apart (a temporary file) until this
    iterator has ended."""
    _check_key(key)
    source = iter(chunks)
    header = bytearray()
    for chunk in source:
        header += chunk
        if len(header) >= HEADER_SIZE:
            source = itertools.chain((bytes(header[HEADER_SIZE:]),), source)
            del header[HEADER_SIZE:]
            break
    else:
        raise UnsealError("sealed document truncated: its header is incomplete")
    if header[: len(MAGIC)] != MAGIC:
        raise UnsealError("not a docchain sealed document (bad magic)")
    if header[len(MAGIC)] != VERSION:
        raise UnsealError(f"sealed format version {header[len(MAGIC)]} is not supported (this reads {VERSION})")
    decryptor = Cipher(AES(key), GCM(bytes(header[len(MAGIC) + 1 :]))).decryptor()
    decryptor.authenticate_additional_data(bytes(header))
    pending = bytearray()
    for chunk in source:
        pending += chunk
        if len(pending) > TAG_SIZE:
            cut = len(pending) - TAG_SIZE
            out = decryptor.update(pending[:cut])
            del pending[:cut]
            if out:
                yield out
    if len(pending) < TAG_SIZE:
        raise UnsealError("sealed document truncated: its tag is incomplete")
    try:
        last = decryptor.finalize_with_tag(bytes(pending))
    except InvalidTag:
        raise UnsealError("the sealed document does not open with this key (another key, or altered bytes)") from None
    if last:
        yield last
