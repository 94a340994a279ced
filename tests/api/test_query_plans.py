"""The store's raw queries of the pending queue are answered from the partial index ix_submissions_pending,
on SQLite and PostgreSQL: a planner uses a partial index only when the query's predicate implies the
index's, so this fails if the two spellings drift apart (a full scan of every submission ever made)."""

from __future__ import annotations

import asyncio
import re

import pytest
from sqlalchemy import text

from docchain.api import store
from docchain.api.db import Database, EventRow, RootRow, Submission


async def _plans(
    url: str, queries: list[str], params: dict[str, object] | None = None, *, seeded: bool = False
) -> list[str]:
    db = Database(url)
    try:
        await db.migrate()
        if seeded:
            await _seed(db)
        async with db.engine.connect() as conn:
            if db.is_sqlite:
                explain = "EXPLAIN QUERY PLAN "
            else:
                # an empty table is cheaper to scan whole; forbid that, so only index choice is left
                await conn.execute(text("SET enable_seqscan = off"))
                explain = "EXPLAIN "
            plans = []
            for sql in queries:
                rows = (await conn.execute(text(explain + sql), {"n": 10, **(params or {})})).all()
                plans.append(" | ".join(str(part) for row in rows for part in row))
            return plans
    finally:
        await db.close()


@pytest.mark.parametrize("query", ["_PENDING_ROWS", "_PENDING_COUNT"])
def test_pending_queue_reads_use_the_partial_index(database_url: str, query: str) -> None:
    (plan,) = asyncio.run(_plans(database_url, [getattr(store, query)]))
    assert "ix_submissions_pending" in plan, plan


SEED_SIGNERS = 40
SEED_BLOCKS = 200


async def _seed(db: Database) -> None:
    """Enough rows, and their statistics, that a planner weighs the lists' reads as it would in service: 40
    signers' direct records (one a block revoked) and Merkle leaves under one root per block, over 200 blocks. Seeded
    once per database (the module's databases are shared)."""
    async with db.engine.begin() as conn:
        if (await conn.execute(text("SELECT count(*) FROM roots"))).scalar():
            return
        signers = [f"0x{i:040x}" for i in range(SEED_SIGNERS)]
        events, roots, leaves = [], [], []
        for block in range(1, SEED_BLOCKS + 1):
            tx, root = f"0x{block:064x}", f"0x{block + 10**6:064x}"
            roots.append(
                {
                    "root": root,
                    "leaf_count": 20,
                    "sender": signers[0],
                    "block_number": block,
                    "block_hash": tx,
                    "tx_hash": tx,
                    "log_index": 99,
                    "timestamp": 1000 + block,
                }
            )
            for i in range(20):
                doc, who = f"0x{block * 100 + i:064x}", signers[(block + i) % SEED_SIGNERS]
                # each block's first record is revoked in the same block (its Revoked event logged last)
                for kind, log in (("Registered", i), *((("Revoked", 20),) if i == 0 else ())):
                    events.append(
                        {
                            "kind": kind,
                            "doc_hash": doc,
                            "signer": who,
                            "block_number": block,
                            "block_hash": tx,
                            "tx_hash": tx,
                            "log_index": log,
                            "metadata_hash": doc,
                            "supersedes": doc,
                            "timestamp": 1000 + block,
                        }
                    )
                leaves.append(
                    {
                        "id": f"{block * 100 + i:032x}",
                        "doc_hash": f"0x{block * 100 + i + 10**7:064x}",
                        "signer": who,
                        "metadata_hash": doc,
                        "supersedes": doc,
                        "deadline": "0",
                        "signature": "0x",
                        "stored": False,
                        "state": "confirmed",
                        "attempts": 1,
                        "tx_hash": tx,
                        "block_number": block,
                        "block_hash": tx,
                        "timestamp": 1000 + block,
                        "created_at": 0.0,
                        "updated_at": 0.0,
                        "anchoring": "merkle",
                        "merkle_root": root,
                    }
                )
        await conn.execute(EventRow.__table__.insert(), events)
        await conn.execute(RootRow.__table__.insert(), roots)
        await conn.execute(Submission.__table__.insert(), leaves)
        await conn.execute(text("ANALYZE"))


# The lists' two reads (api/store.py) with every filter a request can combine: the shapes a page can take.
_SHAPES = [
    store._PageShape(signer=signer, since=since, until=until, after=after)
    for signer in (False, True)
    for since, until in ((False, False), (True, True))
    for after in (False, True)
]
_PAGE_PARAMS = {
    "signer": f"0x{7:040x}",
    "since": 1100,
    "until": 1150,
    "c_ts": 1120,
    "c_block": 120,
    "c_log": 99,
    "c_leaf": f"{120 * 100 + 7:032x}",
}


def _shape_id(shape: store._PageShape) -> str:
    return "-".join(name for name in ("signer", "since", "until", "after") if getattr(shape, name)) or "all"


@pytest.mark.parametrize("shape", _SHAPES, ids=_shape_id)
def test_list_pages_read_each_side_by_its_index_in_list_order(database_url: str, shape: store._PageShape) -> None:
    """A page of GET /v1/documents or of a signer's explorer view reads Registered events and Merkle leaves each
    by the partial index of its order: by signer when one is asked for, else by time. The roots a leaf joins are
    found by their root."""
    direct, leaves = asyncio.run(
        _plans(database_url, [store.direct_page_sql(shape), store.merkle_page_sql(shape)], _PAGE_PARAMS, seeded=True)
    )
    events_index = "ix_events_registered_signer" if shape.signer else "ix_events_registered "
    assert events_index in direct + " ", direct
    leaves_index = "ix_submissions_merkle_signer" if shape.signer else "ix_submissions_merkle_time"
    assert leaves_index in leaves, leaves
    assert "ix_roots_root" in leaves or "uq_roots_tx_log" in leaves, leaves
    for plan in (direct, leaves):
        # no table read whole: each side is a range of its index. SQLite walks it in the list's order, so LIMIT
        # ends the read (it may sort within one block: "RIGHT PART OF ORDER BY"); PostgreSQL may instead sort
        # the range a bitmap scan found, when its statistics say the range is small
        assert re.search(r"SCAN (events|submissions|s|roots|r)( |$)(?!USING)", plan + " ") is None, plan
        assert "TEMP B-TREE FOR ORDER BY" not in plan and "Seq Scan" not in plan, plan


def test_a_page_of_5000_records_finds_their_revocations(database_url: str) -> None:
    """The explorer's signer view takes up to 5,000 records a page: their revocations are read by document in one
    statement (an OR of 5,000 (docHash, signer) pairs is past SQLite's expression depth)."""

    async def read() -> store.RecordPage:
        db = Database(database_url)
        try:
            await db.migrate()
            await _seed(db)
            return await store.Store(db).records_page(None, None, None, None, 5000)
        finally:
            await db.close()

    page = asyncio.run(read())
    assert len(page.records) == 5000 and page.more
    # the seed revokes the first document of each block; a leaf's document is revoked by no one
    revoked = {r.doc_hash for r in page.records if r.revoked_at is not None}
    expected = {f"0x{block * 100:064x}" for block in range(1, SEED_BLOCKS + 1)} & {r.doc_hash for r in page.records}
    assert revoked == expected and len(expected) > 100


def test_superseding_registrations_are_read_by_signer_from_the_registered_index(database_url: str) -> None:
    """A verify and a document status read the registrations naming the document by each of its signers: a range
    of ix_events_registered_signer (``supersedes`` is in no index), each one's revocation by ix_events_doc_signer."""
    params = {"signer": f"0x{7:040x}", "doc": f"0x{120 * 100 + 7:064x}"}
    (plan,) = asyncio.run(_plans(database_url, [store._SUPERSEDING], params, seeded=True))
    assert "ix_events_registered_signer" in plan, plan
    assert "ix_events_doc_signer" in plan, plan
    assert re.search(r"SCAN (events|e|r)( |$)(?!USING)", plan + " ") is None, plan
    assert "Seq Scan" not in plan, plan
