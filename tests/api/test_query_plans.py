"""The store's raw queries of the pending queue are answered from the partial index ix_submissions_pending,
on SQLite and PostgreSQL: a planner uses a partial index only when the query's predicate implies the
index's, so this fails if the two spellings drift apart (a full scan of every submission ever made)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from docchain.api import store
from docchain.api.db import Database


async def _plans(url: str, queries: list[str]) -> list[str]:
    db = Database(url)
    try:
        await db.migrate()
        async with db.engine.connect() as conn:
            if db.is_sqlite:
                explain = "EXPLAIN QUERY PLAN "
            else:
                # an empty table is cheaper to scan whole; forbid that, so only index choice is left
                await conn.execute(text("SET enable_seqscan = off"))
                explain = "EXPLAIN "
            plans = []
            for sql in queries:
                rows = (await conn.execute(text(explain + sql), {"n": 10})).all()
                plans.append(" | ".join(str(part) for row in rows for part in row))
            return plans
    finally:
        await db.close()


@pytest.mark.parametrize("query", ["_PENDING_ROWS", "_PENDING_COUNT"])
def test_pending_queue_reads_use_the_partial_index(database_url: str, query: str) -> None:
    (plan,) = asyncio.run(_plans(database_url, [getattr(store, query)]))
    assert "ix_submissions_pending" in plan, plan
