"""Streaming SHA-256 equals hashlib over the whole value, whatever the chunking, and reports progress; the
CLI's hashing draws its bar only on a terminal and holds memory flat whatever the file's size; keccak256 is
Ethereum's (not NIST SHA-3) and equals eth-hash's reference backend."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest
from eth_hash.backends.pycryptodome import keccak256 as reference_keccak256
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from docchain.chain.hashing import CHUNK, keccak256, sha256_bytes, sha256_file, sha256_stream
from docchain.client.documents import PROGRESS_FROM, hash_files, hash_or_file
from tests.storage import full_scale, peak_rss_growth

MiB = 1 << 20


@settings(max_examples=80, deadline=None)
@given(data=st.binary(max_size=5000), chunk=st.integers(min_value=1, max_value=700))
def test_stream_digest_equals_one_shot_digest(data: bytes, chunk: int) -> None:
    seen: list[int] = []
    assert sha256_stream(io.BytesIO(data), seen.append, chunk=chunk) == hashlib.sha256(data).digest()
    assert sum(seen) == len(data)
    assert all(0 < n <= chunk for n in seen)


@pytest.mark.parametrize(
    "size",
    [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * MiB + 7],
    ids=["empty", "1B", "chunk-1", "chunk", "chunk+1", "3MiB+7"],
)
def test_file_digest_and_progress(tmp_path: Path, size: int) -> None:
    path = tmp_path / "doc.bin"
    data = os.urandom(size)
    path.write_bytes(data)
    seen: list[int] = []
    assert sha256_file(path, seen.append) == hashlib.sha256(data).digest() == sha256_bytes(data)
    assert sum(seen) == size
    assert len(seen) == -(-size // CHUNK), "one callback per chunk read, none for the end of the file"


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    assert sha256_file(path).hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def _console(terminal: bool) -> tuple[Console, io.StringIO]:
    sink = io.StringIO()
    return Console(file=sink, force_terminal=terminal, width=100), sink


def test_cli_draws_a_bar_on_a_terminal_only(tmp_path: Path) -> None:
    big, small = tmp_path / "big.bin", tmp_path / "small.bin"
    big.write_bytes(os.urandom(PROGRESS_FROM))
    small.write_bytes(b"x")
    terminal, drawn = _console(terminal=True)
    pipe, piped = _console(terminal=False)

    hashed = hash_files([big, small], progress=terminal)
    assert [h.doc_hash for h in hashed] == [hashlib.sha256(p.read_bytes()).digest() for p in (big, small)]
    assert [h.size for h in hashed] == [PROGRESS_FROM, 1]
    assert "hashing big.bin" in drawn.getvalue()

    assert hash_or_file(str(big), progress=pipe) == (hashed[0].doc_hash, big)
    assert hash_or_file(str(big), progress=None) == (hashed[0].doc_hash, big)
    assert piped.getvalue() == "", "a pipe or a log file gets no bar"

    quick, quiet = _console(terminal=True)
    hash_files([small], progress=quick)
    assert quiet.getvalue() == "", "a file hashed before a bar could be read gets none"


@pytest.mark.parametrize(
    "size",
    [
        64 * MiB,
        pytest.param(1 << 30, marks=pytest.mark.skipif(not full_scale(), reason="1 GiB: RELIABILITY_SCALE=full")),
    ],
    ids=["64MiB", "1GiB"],
)
def test_cli_hashes_in_bounded_memory(tmp_path: Path, size: int) -> None:
    """The CLI's path (bar drawn) grows the peak RSS by at most 16 MiB, whatever the file's size."""
    path = tmp_path / "big.bin"
    expected = hashlib.sha256()
    with open(path, "wb") as out:
        block = os.urandom(MiB)
        for _ in range(size // MiB):
            out.write(block)
            expected.update(block)
    console, drawn = _console(terminal=True)
    with peak_rss_growth() as growth:
        [hashed] = hash_files([path], progress=console)
    assert hashed.doc_hash == expected.digest()
    assert "hashing big.bin" in drawn.getvalue()
    assert growth.bytes <= 16 * MiB, f"hashing {size} B grew the peak RSS by {growth.bytes / MiB:.1f} MiB"


def test_keccak256_is_ethereums() -> None:
    # keccak256("") as every Ethereum client knows it; NIST SHA3-256 pads differently and gives a7ffc6f8...
    assert keccak256(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    assert keccak256(b"") != hashlib.sha3_256(b"").digest()


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=400))
def test_keccak256_equals_reference_backend(data: bytes) -> None:
    # sizes across keccak256's 136-byte rate boundary, where padding bugs live
    assert keccak256(data) == reference_keccak256(data)
