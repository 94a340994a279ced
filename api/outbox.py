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

from docchain.api.db import Database, Submission
from sqlalchemy import and_, or_, select

log = logging.getLogger("docchain.api.outbox")
MAX_ROWS = 500


@dataclass
class _Item:
    row: Submission
    future: asyncio.Future[tuple[Submission, bool]]


class OutboxWriter:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._queue: list[_Item] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-writer")

    async def add(self, row: Submission) -> tuple[Submission, bool]:
        """Persist ``row`` unless its (docHash, signer) exists; returns the stored row and whether it is new."""
        if self._closed:
            raise RuntimeError("the outbox is closed")
        future: asyncio.Future[tuple[Submission, bool]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Item(row, future))
        self._wake.set()
        return await future

    async def _run(self) -> None:
        while not (self._closed and not self._queue):
            await self._wake.wait()
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

    async def _write(self, items: list[_Item]) -> list[tuple[Submission, bool]]:
        keys = {(i.row.doc_hash, i.row.signer) for i in items}
        async with self.db.write() as s:
            existing = {
                (r.doc_hash, r.signer): r
                for r in (
                    await s.scalars(
                        select(Submission).where(or_(*(and_(Submission.doc_hash == d, Submission.signer == w)
                                                       for d, w in keys)))
                    )
                ).all()
            }
            fresh: list[Submission] = []
            results: list[tuple[Submission, bool]] = []
            for item in items:
                key = (item.row.doc_hash, item.row.signer)
                if key in existing:
                    results.append((existing[key], False))
                else:
                    existing[key] = item.row
                    fresh.append(item.row)
                    results.append((item.row, True))
            s.add_all(fresh)
        return results

    async def close(self) -> None:
        self._closed = True
        self._wake.set()
        if self._task is not None:
            await asyncio.wait([self._task], timeout=10)
