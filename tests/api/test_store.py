"""The store and the lifecycle's operations (api/store.py, api/service.py) against a real database, SQLite and
PostgreSQL alike: acceptance with its signature kind, a duplicate, anchoring a batch, a transaction that did
not land, the chain's events (anchored, confirmed, revoked), records linked from an earlier registration, and
a reorg's rollback."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator

import pytest

from docchain.api.db import Database
from docchain.api.lifecycle import SignatureKind, State, TxState
from docchain.api.service import MAX_ATTEMPTS, Lifecycle
from docchain.api.store import LINK, insert_new_in

DEPTH = 3
SIGNER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def _hash() -> str:
    return "0x" + os.urandom(32).hex()


def _row(doc: str, signer: str = SIGNER, kind: SignatureKind = SignatureKind.EOA) -> dict[str, object]:
    return Lifecycle.new_submission(
        doc_hash=doc,
        signer=signer,
        metadata_hash="0x" + "00" * 32,
        supersedes="0x" + "00" * 32,
        deadline=2**40,
        signature="0x" + "11" * 65,
        kind=kind,
        metadata_json=None,
        stored=False,
        file_name=None,
        file_size=None,
        client_id="key-test",
    )


def _event(kind: str, doc: str, block: int, tx: str, signer: str = SIGNER, log_index: int = 0) -> dict[str, object]:
    return {
        "kind": kind,
        "doc_hash": doc,
        "signer": signer,
        "block_number": block,
        "block_hash": _block_hash(block),
        "tx_hash": tx,
        "log_index": log_index,
        "metadata_hash": "0x" + "00" * 32 if kind == "Registered" else None,
        "supersedes": "0x" + "00" * 32 if kind == "Registered" else None,
        "timestamp": 1_700_000_000 + block,
    }


def _block_hash(number: int) -> str:
    return "0x" + f"{number:064x}"


@pytest.fixture
async def lifecycle(database_url: str) -> AsyncIterator[Lifecycle]:
    db = Database(database_url)
    await db.migrate()
    yield Lifecycle(db, DEPTH)
    await db.close()


async def _step(lc: Lifecycle, events: list[dict[str, object]], block: int, head: int) -> set[str]:
    applied = await lc.apply_events(
        events,
        [(block, _block_hash(block), 1_700_000_000 + block)],
        (block, _block_hash(block)),
        None,
        json.dumps({"number": block}),
        head,
    )
    return applied.changed


async def _state(lc: Lifecycle, sid: str) -> State:
    row, _ = await lc.submission(sid)
    assert row is not None
    return row.state


async def test_accept_records_the_kind_and_answers_a_duplicate_with_the_first(lifecycle: Lifecycle) -> None:
    doc = _hash()
    [(first, created)] = await lifecycle.store.insert_new([_row(doc, kind=SignatureKind.ERC1271)])
    assert created and first.state is State.PENDING
    duplicate = _row(doc)
    results = await lifecycle.db.transaction(lambda s: insert_new_in(s, [duplicate, _row(_hash())]))
    assert [(r.id, new) for r, new in results][0] == (first.id, False)
    assert results[1][1] is True
    row, _ = await lifecycle.submission(first.id)
    assert row is not None and row.signature_kind is SignatureKind.ERC1271
    [pending] = [p for p in await lifecycle.store.pending(10_000) if p.id == first.id]
    assert pending.signature_kind == "erc1271"


async def test_a_batch_is_sent_anchored_by_its_events_then_confirmed(lifecycle: Lifecycle) -> None:
    docs = [_hash(), _hash()]
    accepted = [a for a, _ in await lifecycle.store.insert_new([_row(d) for d in docs])]
    ids = [a.id for a in accepted]
    tx = _hash()
    tx_id = await lifecycle.record_sent(tx, "register_batch", b"raw", 7, ids)
    assert [await _state(lifecycle, i) for i in ids] == [State.SUBMITTED] * 2
    assert (await lifecycle.store.transaction(tx_id)).nonce == 7
    assert tx_id in [t.id for t in await lifecycle.store.in_flight()]
    await lifecycle.store.mark_sent(tx_id)
    assert await lifecycle.mined(tx_id, {"blockNumber": 10, "gasUsed": 1, "fee": 0, "events": 2}, True) is False

    changed = await _step(lifecycle, [_event("Registered", d, 10, tx, log_index=i) for i, d in enumerate(docs)], 10, 10)
    assert set(ids) <= changed
    row, head = await lifecycle.submission(ids[0])
    assert row is not None and (row.state, row.block_number, row.tx_hash, head) == (State.ANCHORED, 10, tx, 10)
    assert lifecycle.seen(row, head) == (State.ANCHORED, 1)
    assert lifecycle.seen(row, 12) == (State.CONFIRMED, 3)  # deep enough before the indexer writes it

    await lifecycle.apply_events([], [], None, None, None, 12)  # two blocks later: confirmed, written
    assert [await _state(lifecycle, i) for i in ids] == [State.CONFIRMED] * 2
    views = await lifecycle.signers(docs[0])
    assert [(v.signer, v.status, v.confirmations, v.submission_id) for v in views] == [
        (SIGNER, State.CONFIRMED, 3, ids[0])
    ]


async def test_a_transaction_that_did_not_land_gives_its_submissions_back_then_fails_them(
    lifecycle: Lifecycle,
) -> None:
    [(accepted, _)] = await lifecycle.store.insert_new([_row(_hash())])
    for attempt in range(1, MAX_ATTEMPTS + 1):
        tx_id = await lifecycle.record_sent(_hash(), "register_batch", b"raw", attempt, [accepted.id])
        assert await lifecycle.requeue(tx_id, TxState.REVERTED, "reverted") == [accepted.id]
        expected = State.FAILED if attempt == MAX_ATTEMPTS else State.PENDING
        assert await _state(lifecycle, accepted.id) is expected
    [(other, _)] = await lifecycle.store.insert_new([_row(_hash())])
    await lifecycle.fail({accepted.id: "not again", other.id: "expired"})  # failed already: stays so
    row, _ = await lifecycle.submission(accepted.id)
    assert row is not None and (row.state, row.attempts, row.tx_id) == (State.FAILED, MAX_ATTEMPTS, None)
    row, _ = await lifecycle.submission(other.id)
    assert row is not None and (row.state, row.error) == (State.FAILED, "expired")


async def test_a_record_already_on_chain_is_linked_by_the_indexer(lifecycle: Lifecycle) -> None:
    doc = _hash()
    earlier = _hash()
    await _step(lifecycle, [_event("Registered", doc, 20, earlier)], 20, 20)  # registered without this API
    [(accepted, _)] = await lifecycle.store.insert_new([_row(doc)])
    tx_id = await lifecycle.record_sent(_hash(), "register_batch", b"raw", 1, [accepted.id])
    # the batch skipped the pair: no event in its receipt; the worker writes no anchor
    assert await lifecycle.mined(tx_id, {"blockNumber": 21, "gasUsed": 1, "fee": 0, "events": 0}, True) is True
    assert await _state(lifecycle, accepted.id) is State.SUBMITTED
    changed = (await lifecycle.apply_events([], [], None, None, None, 21)).changed
    row, _ = await lifecycle.submission(accepted.id)
    assert accepted.id in changed
    assert row is not None and (row.state, row.tx_hash, row.block_number) == (State.ANCHORED, earlier, 20)
    async with lifecycle.db.read() as s:
        from sqlalchemy import text

        assert (await s.execute(text("SELECT count(*) FROM meta WHERE key = :k"), {"k": LINK})).scalar() == 0


async def test_revoked_then_a_reorg_rolls_back_to_what_the_chain_keeps(lifecycle: Lifecycle) -> None:
    doc = _hash()
    [(accepted, _)] = await lifecycle.store.insert_new([_row(doc)])
    tx = _hash()
    await lifecycle.record_sent(tx, "register_batch", b"raw", 1, [accepted.id])
    await _step(lifecycle, [_event("Registered", doc, 30, tx)], 30, 30)
    await _step(lifecycle, [_event("Revoked", doc, 31, _hash())], 31, 31)
    assert await _state(lifecycle, accepted.id) is State.REVOKED
    assert (await lifecycle.signers(doc))[0].status is State.REVOKED

    # block 31 (the revocation) goes away: anchored again, by the record that remains
    assert accepted.id in await lifecycle.roll_back(30, json.dumps({"number": 30}))
    row, _ = await lifecycle.submission(accepted.id)
    assert row is not None and (row.state, row.block_number) == (State.ANCHORED, 30)
    # block 30 too: in flight again, its anchor forgotten
    assert accepted.id in await lifecycle.roll_back(29, None)
    row, _ = await lifecycle.submission(accepted.id)
    assert row is not None and (row.state, row.block_number) == (State.SUBMITTED, None)
    assert await lifecycle.store.cursor_value() is None


async def test_reads_for_the_api(lifecycle: Lifecycle) -> None:
    doc = _hash()
    other = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
    [(accepted, _)] = await lifecycle.store.insert_new([_row(doc)])
    tx = _hash()
    await lifecycle.record_sent(tx, "register_batch", b"raw", 1, [accepted.id])
    await _step(lifecycle, [_event("Registered", doc, 40, tx), _event("Registered", doc, 40, tx, other, 1)], 40, 40)
    assert await lifecycle.store.registered_signers(doc) == [SIGNER, other]
    page = await lifecycle.store.records_page(other, None, None, None, 10)
    assert [(r.doc_hash, r.signer, r.revoked_at) for r in page.records] == [(doc, other, None)] and page.head == 40
    assert (await lifecycle.store.last_registered(doc, SIGNER)) is not None
    sub = await lifecycle.store.submission_of(doc, SIGNER)
    assert sub is not None and sub.id == accepted.id
    assert (await lifecycle.store.registry_txs_per_block([40, 41])) == {40: 1}
    assert await lifecycle.store.unanchored_of(other) == []
    statuses = {v.signer: v for v in await lifecycle.signers(doc)}
    assert statuses[other].submission_id is None and statuses[other].status is State.ANCHORED
