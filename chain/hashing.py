"""The two hashes of the protocol: SHA-256 of documents (streamed: constant memory whatever the size, with an
optional progress callback) and Ethereum's keccak256 (EIP-712 digests, signer addresses, ABI selectors), and the
salted commitment a private registration signs in place of the document's SHA-256."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from sha3 import keccak_256

# 256 KiB: small enough that the buffer stays in a core's L2 cache between the read that fills it and the
# hash that reads it (larger buffers spill and send every byte through main memory twice), large enough that
# the per-chunk Python work and a progress callback per chunk are negligible.
CHUNK = 256 * 1024

Progress = Callable[[int], None]
"""Called with the number of bytes just hashed."""


def sha256_stream(stream: BinaryIO, progress: Progress | None = None, chunk: int = CHUNK) -> bytes:
    """SHA-256 of everything left in ``stream``, read into one reused buffer."""
    digest = hashlib.sha256()
    buffer = bytearray(chunk)
    view = memoryview(buffer)
    while n := stream.readinto(view):  # type: ignore[attr-defined]
        digest.update(view[:n])
        if progress is not None:
            progress(n)
    return digest.digest()


def sha256_file(path: str | Path, progress: Progress | None = None) -> bytes:
    """SHA-256 of the file at ``path``."""
    with open(path, "rb", buffering=0) as stream:
        return sha256_stream(stream, progress)


def sha256_bytes(data: bytes) -> bytes:
    """SHA-256 of an in-memory value."""
    return hashlib.sha256(data).digest()


def keccak256(data: bytes) -> bytes:
    """Ethereum's keccak256 (the pre-standard SHA-3 padding, not hashlib's ``sha3_256``).

    safe-pysha3's C call, ~0.9 us, rather than eth-hash's auto backend (pycryptodome through two wrappers,
    ~6.7 us): every submit and verify computes three of these.
    """
    return keccak_256(data).digest()


SALT_BYTES = 32  # a private registration's salt: as many bytes as the hash it hides, so guessing it is no shortcut


def commitment(sha256: bytes, salt: bytes) -> bytes:
    """The docHash of a private registration: keccak256(sha256(file) || salt).

    The chain then holds a value that no one can compute from a known file without the salt, which travels
    only in the receipt (docs/protocol.md, "Private mode"); keccak256 rather than SHA-256 so that a contract
    could check an opening cheaply, should one ever need to.
    """
    if len(sha256) != 32 or len(salt) != SALT_BYTES:
        raise ValueError(f"a commitment takes a 32-byte SHA-256 and a {SALT_BYTES}-byte salt")
    return keccak256(sha256 + salt)
