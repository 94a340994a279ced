"""Reads back through :class:`~docchain.api.storage.replicas.Replicas` when copies are missing or altered: the
error a client gets names the right cause with the right status, and never a server-side path."""

from __future__ import annotations

import hashlib
import io
import logging
import os
from pathlib import Path

import pytest

from docchain.api.lifecycle import CopyState
from docchain.api.storage.base import NotStored
from docchain.api.storage.ipfs import IpfsConfig, IpfsStorage
from docchain.api.storage.local import LocalStorage
from docchain.api.storage.replicas import KeyRequired, Miss, Replicas
from docchain.api.store import CopyRecord
from docchain.chain.values import to_hex
from tests.support import free_port


def _copy(doc: bytes, backend: str, locator: str, *, sealed: bool = False, ident: int = 1) -> CopyRecord:
    return CopyRecord(
        id=ident,
        doc_hash=to_hex(doc),
        backend=backend,
        locator=locator,
        sealed=sealed,
        size=None,
        state=CopyState.STORED,
        attempts=0,
        next_attempt_at=None,
        last_error=None,
        staged=None,
    )


def _replicas(tmp_path: Path) -> tuple[Replicas, LocalStorage]:
    local = LocalStorage(tmp_path / "documents")
    # never contacted: a read without a key skips the sealed copy
    ipfs = IpfsStorage(IpfsConfig(api_url=f"http://127.0.0.1:{free_port()}", timeout=1.0))
    return Replicas([local, ipfs], tmp_path / "spool"), local


def test_altered_plain_copies_and_a_sealed_one_ask_for_the_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    replicas, local = _replicas(tmp_path)
    content = os.urandom(10_000)
    doc = hashlib.sha256(content).digest()
    placement = local.put(doc, io.BytesIO(content))
    path = local.root / doc.hex()[:2] / doc.hex()[2:4] / doc.hex()
    path.write_bytes(content[:-1] + b"\0")
    copies = [_copy(doc, "local", placement.locator), _copy(doc, "ipfs", "bafy-sealed", sealed=True, ident=2)]
    misses: list[Miss] = []
    with pytest.raises(KeyRequired) as raised:  # a good sealed copy may exist: 403, not 500
        replicas.fetch(doc, copies, None, misses)
    assert "X-Docchain-Key" in str(raised.value) and str(tmp_path) not in str(raised.value)
    assert [m.copy.backend for m in misses] == ["local"]


def test_every_copy_altered_is_logged_as_an_error(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from docchain.api.storage.base import StorageCorrupted

    replicas, local = _replicas(tmp_path)
    content = os.urandom(5_000)
    doc = hashlib.sha256(content).digest()
    placement = local.put(doc, io.BytesIO(content))
    (local.root / doc.hex()[:2] / doc.hex()[2:4] / doc.hex()).write_bytes(b"other bytes")
    with caplog.at_level(logging.WARNING, logger="docchain.api.storage"), pytest.raises(StorageCorrupted):
        replicas.fetch(doc, [_copy(doc, "local", placement.locator)], None, [])
    assert any(r.levelno == logging.ERROR and r.getMessage() == "every stored copy is altered" for r in caplog.records)


def test_not_stored_names_no_server_path(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    replicas, local = _replicas(tmp_path)
    doc = hashlib.sha256(b"gone").digest()
    with caplog.at_level(logging.WARNING, logger="docchain.api.storage"), pytest.raises(NotStored) as raised:
        replicas.fetch(doc, [_copy(doc, "local", doc.hex())], None, [])
    message = str(raised.value)
    assert str(tmp_path) not in message and "/" not in message.replace("0x", ""), message
    assert "local: local:" not in message and "still" not in message, message
    assert message == f"storage: no backend holds {to_hex(doc)} any more (local: copy missing)"
    assert any(str(tmp_path) in str(r.__dict__.get("error", "")) for r in caplog.records)  # the log keeps it
