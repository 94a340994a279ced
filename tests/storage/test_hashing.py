"""The hash-checked streams every backend writes and reads through (api/storage/hashing.py): whatever the read
sizes, the right bytes pass unchanged, and the bytes that would complete a wrong document are never handed out.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator

import pytest

from docchain.api.storage.base import HashMismatch, StorageCorrupted
from docchain.api.storage.hashing import VerifyingReader, verified
from tests.storage import document

SIZE = 10_000
OTHER = hashlib.sha256(b"another document").digest()


@pytest.mark.parametrize("block", [1, 7, 4096, SIZE, 2 * SIZE])
@pytest.mark.parametrize("read_size", [1, 1000, SIZE - 1, SIZE, SIZE + 1, -1, None])
def test_reader_passes_the_right_bytes_whatever_the_sizes(block: int, read_size: int | None) -> None:
    data, doc_hash = document(SIZE)
    reader = VerifyingReader(io.BytesIO(data), doc_hash, block=block)
    out = bytearray()
    while chunk := reader.read(read_size):
        # short reads only at the end, like a file's
        assert read_size is None or read_size < 0 or len(chunk) == min(read_size, SIZE - len(out))
        out += chunk
    assert out == data and reader.size == SIZE
    assert reader.read(10) == b""


@pytest.mark.parametrize("block", [7, 4096, 2 * SIZE])
@pytest.mark.parametrize("read_size", [1000, SIZE, -1])
def test_reader_refuses_to_complete_a_wrong_document(block: int, read_size: int) -> None:
    data, doc_hash = document(SIZE)
    reader = VerifyingReader(io.BytesIO(data), OTHER, block=block)
    handed_out = 0
    with pytest.raises(HashMismatch) as refused:
        while chunk := reader.read(read_size):
            handed_out += len(chunk)
    assert (refused.value.expected, refused.value.actual) == (OTHER, doc_hash)
    assert handed_out < SIZE
    with pytest.raises(HashMismatch):  # and keeps refusing
        reader.read(read_size)


def test_reader_checks_an_empty_document() -> None:
    assert VerifyingReader(io.BytesIO(b""), hashlib.sha256(b"").digest()).read() == b""
    with pytest.raises(HashMismatch):
        VerifyingReader(io.BytesIO(b""), OTHER).read()


def test_reader_drain_and_chunks() -> None:
    data, doc_hash = document(SIZE)
    assert VerifyingReader(io.BytesIO(data), doc_hash, block=999).drain() == SIZE
    assert b"".join(VerifyingReader(io.BytesIO(data), doc_hash, block=999).chunks()) == data


def test_reader_is_not_seekable() -> None:
    reader = VerifyingReader(io.BytesIO(b""), OTHER)
    assert reader.readable() and not reader.seekable()


@pytest.mark.parametrize("pieces", [[SIZE], [1, SIZE - 1], [3000, 0, 3000, 4000], [1] * 50 + [SIZE - 50]])
def test_verified_passes_the_right_bytes(pieces: list[int]) -> None:
    data, doc_hash = document(SIZE)
    chunks, at = [], 0
    for n in pieces:
        chunks.append(data[at : at + n])
        at += n
    assert b"".join(verified("local", doc_hash, iter(chunks))) == data


def test_verified_withholds_the_last_chunk_of_a_wrong_document() -> None:
    data, doc_hash = document(SIZE)
    received = []
    with pytest.raises(StorageCorrupted) as corrupted:
        for chunk in verified("s3", OTHER, iter([data[:4000], data[4000:8000], data[8000:]])):
            received.append(chunk)
    assert received == [data[:4000], data[4000:8000]]
    assert (corrupted.value.backend, corrupted.value.expected, corrupted.value.actual) == ("s3", OTHER, doc_hash)


def test_verified_closes_its_source_when_closed_early() -> None:
    closed = []

    def source() -> Iterator[bytes]:
        try:
            yield b"a"
            yield b"b"
            yield b"c"
        finally:
            closed.append(True)

    stream = verified("local", OTHER, source())
    assert next(stream) == b"a"
    stream.close()
    assert closed == [True]
