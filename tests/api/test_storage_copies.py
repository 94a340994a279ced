"""The replicated set and its outbox of copies (api/storage/replicas.py, api/store.py) against a real database,
SQLite and PostgreSQL alike, with two real local stores in two directories as the backends: the first holds
a document at acceptance, the copy worker makes the other copy, retries with backoff, gives up with the
reason, and a read falls back from an altered copy to an intact one."""

from __future__ import annotations

import hashlib
import io
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from docchain.api.db import Database
from docchain.api.lifecycle import COPY_TRANSITIONS, CopyOperation, CopyState, SignatureKind, copy_sources
from docchain.api.service import Lifecycle
from docchain.api.storage.base import BackendUnavailable, HashMismatch, NotStored, StorageCorrupted
from docchain.api.storage.local import LocalStorage
from docchain.api.storage.replicas import (
    FIRST_BACKOFF_S,
    MAX_BACKOFF_S,
    MAX_COPY_ATTEMPTS,
    CopyWorker,
    Miss,
    Replicas,
    backoff,
    instance_id,
)
from docchain.api.store import CopyRecord, NewCopy, Store, record_copies_in
from tests.storage import MiB, PatternStream, full_scale, peak_rss_growth

SIGNER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


@dataclass
class Rig:
    db: Database
    store: Store
    replicas: Replicas
    first: LocalStorage
    second: LocalStorage
    worker: CopyWorker


@pytest.fixture
async def rig(database_url: str, tmp_path: Path) -> AsyncIterator[Rig]:
    db = Database(database_url)
    await db.migrate()
    first, second = LocalStorage(tmp_path / "first"), LocalStorage(tmp_path / "second", name="second")
    replicas = Replicas([first, second], tmp_path / "spool")
    yield Rig(db, Store(db), replicas, first, second, CopyWorker(db, replicas, idle_s=10))
    await db.close()


def _document(size: int = 200_000) -> tuple[bytes, bytes]:
    content = os.urandom(size)
    return content, hashlib.sha256(content).digest()


async def _accept(rig: Rig, content: bytes, doc_hash: bytes) -> str:
    """Acceptance as Documents.accept does it: the first backend, then the submission and its copies in one
    transaction."""
    intake = rig.replicas.store(doc_hash, io.BytesIO(content), public=False)
    return await _accept_copies(rig, doc_hash, intake.copies, intake.size)


async def _accept_copies(rig: Rig, doc_hash: bytes, copies: list[NewCopy], size: int) -> str:
    doc = "0x" + doc_hash.hex()
    row = Lifecycle.new_submission(
        doc_hash=doc,
        signer=SIGNER,
        metadata_hash="0x" + "00" * 32,
        supersedes="0x" + "00" * 32,
        deadline=2**40,
        signature="0x" + "11" * 65,
        kind=SignatureKind.EOA,
        metadata_json=None,
        stored=True,
        file_name=None,
        file_size=size,
        client_id=None,
    )
    [(_, created)] = await rig.store.insert_new([row], [copies])
    assert created
    return doc


def _by_backend(copies: list[CopyRecord]) -> dict[str, CopyRecord]:
    return {c.backend: c for c in copies}


def test_each_copy_state_has_its_writers() -> None:
    assert copy_sources(CopyOperation.COPY, CopyState.STORED) == {CopyState.PENDING}
    assert copy_sources(CopyOperation.READ, CopyState.FAILED) == {CopyState.STORED}
    assert copy_sources(CopyOperation.ACCEPT, CopyState.PENDING) == {None, CopyState.FAILED}
    # nothing but a read takes a stored copy away, and only to failed
    assert {(op, new) for op, old, new in COPY_TRANSITIONS if old is CopyState.STORED} == {
        (CopyOperation.READ, CopyState.FAILED)
    }


def test_backoff_doubles_from_two_seconds_to_ten_minutes() -> None:
    assert [backoff(n) for n in (1, 2, 3, 4)] == [FIRST_BACKOFF_S, 4.0, 8.0, 16.0]
    assert backoff(40) == MAX_BACKOFF_S


async def test_accepted_then_copied_then_read_with_fallback(rig: Rig) -> None:
    content, doc_hash = _document()
    doc = await _accept(rig, content, doc_hash)
    copies = _by_backend(await rig.store.copies_of(doc))
    assert copies["local"].state is CopyState.STORED and copies["local"].locator == doc_hash.hex()
    assert copies["second"].state is CopyState.PENDING and copies["second"].locator == ""
    assert not rig.second.exists(doc_hash)

    assert await rig.worker.step() == 10  # nothing else due: the safety poll
    copies = _by_backend(await rig.store.copies_of(doc))
    assert copies["second"].state is CopyState.STORED and copies["second"].size == len(content)
    assert b"".join(rig.second.open(doc_hash)) == content

    # the first copy altered: the read is served by the second, and the miss says why
    path = rig.first.root / doc_hash.hex()[:2] / doc_hash.hex()[2:4] / doc_hash.hex()
    path.write_bytes(content[:-1] + bytes([content[-1] ^ 1]))
    misses: list[Miss] = []
    fetched = rig.replicas.fetch(doc_hash, await rig.store.copies_of(doc), None, misses)
    try:
        assert fetched.backend == "second" and fetched.path.read_bytes() == content
    finally:
        fetched.path.unlink()
    assert [(m.copy.backend, type(m.error)) for m in misses] == [("local", StorageCorrupted)]
    assert not list(rig.replicas.spool.iterdir())  # the altered bytes left nothing behind

    # both gone: NotStored, nothing served
    path.unlink()
    rig.second.remove(doc_hash)
    with pytest.raises(NotStored):
        rig.replicas.fetch(doc_hash, await rig.store.copies_of(doc), None, [])


async def test_a_file_that_is_not_the_document_is_refused_before_anything(rig: Rig) -> None:
    content, doc_hash = _document(1000)
    with pytest.raises(HashMismatch):
        rig.replicas.store(doc_hash, io.BytesIO(content + b"!"), public=False)
    assert not rig.first.exists(doc_hash)


async def test_a_backend_down_is_retried_with_backoff_then_given_up(rig: Rig) -> None:
    content, doc_hash = _document()
    doc = await _accept(rig, content, doc_hash)
    # the second store cannot write: a file where its directory should be
    blocker = rig.second.root / doc_hash.hex()[:2]
    blocker.write_bytes(b"")
    before = time.time()
    await rig.worker.step()
    copy = _by_backend(await rig.store.copies_of(doc))["second"]
    assert copy.state is CopyState.PENDING and copy.attempts == 1 and "second" in (copy.last_error or "")
    assert copy.next_attempt_at is not None and before + FIRST_BACKOFF_S <= copy.next_attempt_at < time.time() + 3
    assert await rig.store.due_copies(time.time(), 10) == []  # not due before its backoff
    assert 0 < await rig.worker.step() <= FIRST_BACKOFF_S  # the worker sleeps until then

    # the backend is back, the service restarted: every pending copy is due at once, and is made
    blocker.unlink()
    await rig.store.copies_due_now()
    assert [c.id for c in await rig.store.due_copies(time.time(), 10)] == [copy.id]
    assert await rig.worker.step() == 10
    assert _by_backend(await rig.store.copies_of(doc))["second"].state is CopyState.STORED

    # another document, its copy at its last attempt: failed, with the reason
    content, doc_hash = _document()
    doc = await _accept(rig, content, doc_hash)
    (rig.second.root / doc_hash.hex()[:2]).write_bytes(b"")
    [due] = await rig.store.due_copies(time.time(), 10)
    last = CopyRecord(**{**_fields(due), "attempts": MAX_COPY_ATTEMPTS - 1})
    await rig.worker.attempt(last)
    failed = _by_backend(await rig.store.copies_of(doc))["second"]
    assert failed.state is CopyState.FAILED and failed.next_attempt_at is None and failed.last_error

    # a new submission of the document queues it again, with fresh attempts
    (rig.second.root / doc_hash.hex()[:2]).unlink()
    queued = [NewCopy("second", "", False, None, CopyState.PENDING)]
    await rig.db.transaction(lambda s: record_copies_in(s, doc, queued))
    again = _by_backend(await rig.store.copies_of(doc))["second"]
    assert again.state is CopyState.PENDING and again.attempts == 0
    await rig.worker.step()
    assert _by_backend(await rig.store.copies_of(doc))["second"].state is CopyState.STORED


async def test_a_copy_without_a_source_is_given_up_at_once(rig: Rig) -> None:
    content, doc_hash = _document()
    doc = await _accept(rig, content, doc_hash)
    rig.first.remove(doc_hash)
    await rig.worker.step()
    copy = _by_backend(await rig.store.copies_of(doc))["second"]
    # the only holder lost its copy: retried (it may come back), the reason names it
    assert copy.state is CopyState.PENDING and "local" in (copy.last_error or "")

    # a backend no longer configured can never receive its copy
    only_first = Replicas([rig.first], rig.replicas.spool)
    await CopyWorker(rig.db, only_first, idle_s=10).attempt(copy)
    gone = _by_backend(await rig.store.copies_of(doc))["second"]
    assert gone.state is CopyState.FAILED and "no longer in DOCCHAIN_STORAGE" in (gone.last_error or "")


async def test_a_sealed_copy_is_made_by_the_instance_that_staged_it(rig: Rig, tmp_path: Path) -> None:
    content, doc_hash = _document(1000)
    intake = rig.replicas.store(doc_hash, io.BytesIO(content), public=False)
    elsewhere = tmp_path / "other-host" / "spool" / ".sealed-1"  # a file of another host: not on this one
    sealed = NewCopy("ipfs", "bafy-staged-elsewhere", True, 1000, CopyState.PENDING, str(elsewhere), "host-b")
    doc = await _accept_copies(rig, doc_hash, [*intake.copies, sealed], intake.size)

    # the pipeline's worker makes the plain copy and leaves the sealed one to its instance, untouched
    await rig.worker.step()
    copies = _by_backend(await rig.store.copies_of(doc))
    assert copies["second"].state is CopyState.STORED
    assert (copies["ipfs"].state, copies["ipfs"].attempts, copies["ipfs"].last_error) == (CopyState.PENDING, 0, None)
    assert await rig.store.next_copy_due() is None

    # the staging instance's queue holds it, and only it
    assert [c.backend for c in await rig.store.due_copies(time.time(), 10, "host-b")] == ["ipfs"]
    assert await rig.store.due_copies(time.time(), 10, "host-c") == []
    await CopyWorker(rig.db, rig.replicas, idle_s=10, owner="host-b").step()  # no ipfs here: impossible
    assert _by_backend(await rig.store.copies_of(doc))["ipfs"].state is CopyState.FAILED


def test_the_instance_id_is_kept_in_the_data_directory(tmp_path: Path) -> None:
    first = instance_id(tmp_path / "a")
    assert first == instance_id(tmp_path / "a") == (tmp_path / "a" / "instance-id").read_text()
    assert instance_id(tmp_path / "b") != first
    assert list((tmp_path / "a").iterdir()) == [tmp_path / "a" / "instance-id"]  # no temporary file left


async def test_the_first_backend_down_refuses_the_upload(rig: Rig, tmp_path: Path) -> None:
    content, doc_hash = _document(1000)
    first = LocalStorage(tmp_path / "lost")
    first.root.rmdir()
    first.root.write_bytes(b"")  # its directory replaced by a file: nothing can be written there
    with pytest.raises(BackendUnavailable):
        Replicas([first, rig.second], rig.replicas.spool).store(doc_hash, io.BytesIO(content), public=False)
    assert not rig.second.exists(doc_hash)


def _fields(copy: CopyRecord) -> dict[str, object]:
    return {name: getattr(copy, name) for name in CopyRecord.__slots__}


@pytest.mark.parametrize(
    "size",
    [
        64 * MiB,
        pytest.param(1 << 30, marks=pytest.mark.skipif(not full_scale(), reason="1 GiB: RELIABILITY_SCALE=full")),
    ],
    ids=["64MiB", "1GiB"],
)
def test_accept_copy_and_read_back_in_bounded_memory(tmp_path: Path, size: int) -> None:
    """The replicated set adds no buffering of its own: acceptance, a copy from one backend to another and a
    read back into the spool each grow the peak RSS by at most 32 MiB, whatever the document's size."""
    first, second = LocalStorage(tmp_path / "first"), LocalStorage(tmp_path / "second", name="second")
    replicas = Replicas([first, second], tmp_path / "spool")
    doc_hash = PatternStream(size).sha256()
    doc = "0x" + doc_hash.hex()
    with peak_rss_growth() as accepted:
        intake = replicas.store(doc_hash, PatternStream(size), public=False)  # type: ignore[arg-type]
    stored, pending = (_record(doc, i, c) for i, c in enumerate(intake.copies, 1))
    with peak_rss_growth() as copied:
        placement = replicas.copy(pending, [stored])
    assert placement.size == size and second.exists(doc_hash)
    with peak_rss_growth() as read:
        fetched = replicas.fetch(
            doc_hash, [_record(doc, 2, NewCopy("second", placement.locator, False, size, CopyState.STORED))], None, []
        )
    assert fetched.size == size and fetched.backend == "second"
    for what, growth in (("accepting", accepted), ("copying", copied), ("reading back", read)):
        assert growth.bytes <= 32 * MiB, f"{what} {size} B grew the peak RSS by {growth.bytes / MiB:.1f} MiB"


def _record(doc: str, copy_id: int, copy: NewCopy) -> CopyRecord:
    return CopyRecord(
        id=copy_id,
        doc_hash=doc,
        backend=copy.backend,
        locator=copy.locator,
        sealed=copy.sealed,
        size=copy.size,
        state=copy.state,
        attempts=0,
        next_attempt_at=None,
        last_error=None,
        staged=copy.staged,
    )
