"""What every storage backend promises (api/storage/base.py), checked on each one against its real server:
local disk, S3 (moto's server), IPFS (kubo) — ``backend_case`` in conftest.py runs each test once per backend.
"""

from __future__ import annotations

import hashlib
import io
from concurrent.futures import ThreadPoolExecutor

import pytest

from docchain.api.storage.base import HashMismatch, NotStored, StorageCorrupted
from tests.storage import BackendCase, MiB, document

SIZES = [0, 1, MiB + 1, 10 * MiB]


@pytest.mark.parametrize("size", SIZES, ids=lambda n: f"{n}B")
def test_round_trip(backend_case: BackendCase, size: int) -> None:
    backend = backend_case.backend
    data, doc_hash = document(size, seed=size)
    placement = backend.put(doc_hash, io.BytesIO(data))
    assert (placement.backend, placement.size) == (backend.name, size)
    assert backend.exists(doc_hash, placement)
    assert b"".join(backend.open(doc_hash, placement)) == data


@pytest.mark.parametrize("size", [1, 10 * MiB], ids=lambda n: f"{n}B")
def test_wrong_hash_is_refused_and_leaves_nothing(backend_case: BackendCase, size: int) -> None:
    backend = backend_case.backend
    data, doc_hash = document(size)
    claimed = hashlib.sha256(b"the document that was signed").digest()
    with pytest.raises(HashMismatch) as refused:
        backend.put(claimed, io.BytesIO(data))
    assert (refused.value.expected, refused.value.actual) == (claimed, doc_hash)
    assert claimed.hex() in str(refused.value) and doc_hash.hex() in str(refused.value)
    assert backend_case.leftovers() == []


@pytest.mark.parametrize("size", [1, 3 * MiB], ids=lambda n: f"{n}B")
def test_corrupted_copy_is_detected_and_never_served_whole(backend_case: BackendCase, size: int) -> None:
    backend = backend_case.backend
    data, doc_hash = document(size)
    placement = backend_case.corrupt(doc_hash, backend.put(doc_hash, io.BytesIO(data)))
    received = bytearray()
    with pytest.raises(StorageCorrupted) as corrupted:
        for chunk in backend.open(doc_hash, placement):
            received += chunk
    error = corrupted.value
    assert (error.backend, error.expected) == (backend.name, doc_hash)
    assert error.actual != doc_hash
    assert backend.name in str(error) and doc_hash.hex() in str(error) and error.actual.hex() in str(error)
    assert len(received) < size  # the bytes that would complete the copy are withheld


def test_exists_and_remove(backend_case: BackendCase) -> None:
    backend = backend_case.backend
    data, doc_hash = document(1000)
    placement = backend.put(doc_hash, io.BytesIO(data))
    assert backend.exists(doc_hash, placement)
    backend.remove(doc_hash, placement)
    assert not backend.exists(doc_hash, placement)
    backend.remove(doc_hash, placement)  # removing a missing copy is not an error
    with pytest.raises(NotStored) as missing:
        b"".join(backend.open(doc_hash, placement))
    assert missing.value.backend == backend.name


def test_put_is_idempotent(backend_case: BackendCase) -> None:
    backend = backend_case.backend
    data, doc_hash = document(MiB + 1)
    first = backend.put(doc_hash, io.BytesIO(data))
    again = backend.put(doc_hash, io.BytesIO(data))
    assert again == first
    assert b"".join(backend.open(doc_hash, again)) == data
    assert len(backend_case.leftovers()) == 1, backend_case.leftovers()  # one copy, no temporary files or uploads


def test_check_passes_on_a_working_backend(backend_case: BackendCase) -> None:
    backend_case.backend.check()


def test_concurrent_puts_of_one_document_leave_one_good_copy(backend_case: BackendCase) -> None:
    backend = backend_case.backend  # a duplicate submission racing its twin, or a copy job racing the acceptance
    data, doc_hash = document(12 * MiB + 3)
    with ThreadPoolExecutor(3) as pool:
        placements = list(pool.map(lambda _: backend.put(doc_hash, io.BytesIO(data)), range(3)))
    assert placements[0] == placements[1] == placements[2]
    assert b"".join(backend.open(doc_hash, placements[0])) == data
    assert len(backend_case.leftovers()) == 1, backend_case.leftovers()
