"""Streaming SHA-256: equals hashlib over the whole value, whatever the chunking; reports progress."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from docchain.chain.hashing import sha256_bytes, sha256_file, sha256_stream


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
