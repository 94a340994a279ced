"""Group commit for the outbox: concurrent submissions are written in one transaction per batch.

Each accepted submission must be durable before its 202, and one transaction per request costs ~2-3 ms
of SQLAlchemy + driver round trips (measured: ~330 single-row transactions/s on SQLite through
aiosqlite). The writer takes everything queued, checks which (docHash, signer) pairs already exist,
inserts the rest in one statement and one commit, then answers every waiting request. Under load a
transaction carries tens of rows, so the database stops being the bottleneck; alone, a request waits
only for its own transaction.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from docchain.api.db import Database, Submission

log = logging.getLogger("docchain.api.outbox")
MAX_ROWS = 500


@dataclass
class _Item:
    row: dict[str, Any]
    future: asyncio.Future[tuple[dict[str, Any], bool]]


_TABLE = Submission.__table__
_EXISTING = (_TABLE.c.id, _TABLE.c.doc_hash, _TABLE.c.signer, _TABLE.c.state, _TABLE.c.stored)


class OutboxWriter:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._queue: list[_Item] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-writer")

    async def add(self, row: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Persist ``row`` (the ``submissions`` columns) unless its (docHash, signer) exists; returns the
        stored row (id, doc_hash, signer, state, stored) and whether it is new."""
        if self._closed:
            raise RuntimeError("the outbox is closed")
        future: asyncio.Future[tuple[dict[str, Any], bool]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Item(row, future))
        self._wake.set()
        return await future

    async def _run(self) -> None:
        while not (self._closed and not self._queue):
            await self._wake.wait()
            await asyncio.sleep(0)  # let requests already being handled in this turn of the loop join
            self._wake.clear()
            while self._queue:
                items, self._queue = self._queue[:MAX_ROWS], self._queue[MAX_ROWS:]
                try:
                    results = await self._write(items)
                except Exception as exc:
                    log.exception("outbox write failed")
                    for item in items:
                        if not item.future.done():
                            item.future.set_exception(exc)
                    continue
                for item, result in zip(items, results, strict=True):
                    if not item.future.done():
                        item.future.set_result(result)

    async def _write(self, items: list[_Item]) -> list[tuple[dict[str, Any], bool]]:
        rows = [i.row for i in items]
        return await self.db.transaction(lambda s: _insert_new(s, rows))

    async def close(self) -> None:
        self._closed = True
        self._wake.set()
        if self._task is not None:
            await asyncio.wait([self._task], timeout=10)


def _insert_new(s: Session, rows: list[dict[str, Any]]) -> list[tuple[dict[str, Any], bool]]:
    """Which (docHash, signer) pairs exist (indexed IN queries), then one multi-row INSERT of the rest
    (Core: no ORM unit of work on this path)."""
    docs = list({r["doc_hash"] for r in rows})
    existing: dict[tuple[str, str], dict[str, Any]] = {}
    for start in range(0, len(docs), 500):  # bound the number of SQL parameters
        query = select(*_EXISTING).where(_TABLE.c.doc_hash.in_(docs[start : start + 500]))
        existing.update({(r["doc_hash"], r["signer"]): dict(r) for r in s.execute(query).mappings()})
    fresh: list[dict[str, Any]] = []
    results: list[tuple[dict[str, Any], bool]] = []
    for row in rows:
        key = (row["doc_hash"], row["signer"])
        if key in existing:
            results.append((existing[key], False))
        else:
            existing[key] = row
            fresh.append(row)
            results.append((row, True))
    if fresh:
        s.execute(insert(_TABLE), fresh)
    return results
