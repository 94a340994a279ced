"""Streaming SHA-256 equals hashlib over the whole value, whatever the chunking, and reports progress;
keccak256 is Ethereum's (not NIST SHA-3) and equals eth-hash's reference backend."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from eth_hash.backends.pycryptodome import keccak256 as reference_keccak256
from hypothesis import given, settings
from hypothesis import strategies as st

from docchain.chain.hashing import keccak256, sha256_bytes, sha256_file, sha256_stream


@settings(max_examples=80, deadline=None)
@given(data=st.binary(max_size=5000), chunk=st.integers(min_value=1, max_value=700))
def test_stream_digest_equals_one_shot_digest(data: bytes, chunk: int) -> None:
    seen: list[int] = []
    assert sha256_stream(io.BytesIO(data), seen.append, chunk=chunk) == hashlib.sha256(data).digest()
    assert sum(seen) == len(data)
    assert all(0 < n <= chunk for n in seen)


def test_file_digest_and_progress(tmp_path: Path) -> None:
    path = tmp_path / "doc.bin"
    data = bytes(range(256)) * 20_000  # ~5 MiB: several 1 MiB chunks
    path.write_bytes(data)
    seen: list[int] = []
    assert sha256_file(path, seen.append) == sha256_bytes(data)
    assert sum(seen) == len(data) and len(seen) == 5


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    assert sha256_file(path).hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_keccak256_is_ethereums() -> None:
    # keccak256("") as every Ethereum client knows it; NIST SHA3-256 pads differently and gives a7ffc6f8...
    assert keccak256(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    assert keccak256(b"") != hashlib.sha3_256(b"").digest()


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=400))
def test_keccak256_equals_reference_backend(data: bytes) -> None:
    # sizes across keccak256's 136-byte rate boundary, where padding bugs live
    assert keccak256(data) == reference_keccak256(data)
