"""The outbox: group commit of accepted submissions, and the signal that tells the working pipeline
about submissions any process accepted.

Group commit: concurrent submissions are written in one transaction per batch.

Each accepted submission must be durable before its 202, and one transaction per request costs ~2-3 ms
of SQLAlchemy + driver round trips (measured: ~330 single-row transactions/s on SQLite through
aiosqlite). The writer takes everything queued, checks which (docHash, signer) pairs already exist,
inserts the rest in one statement and one commit, then answers every waiting request. Under load a
transaction carries tens of rows, so the database stops being the bottleneck; alone, a request waits
only for its own transaction.

The signal: the API process tells its own pipeline about the submissions it accepts directly (a message
to the pipeline's process). Submissions another replica accepts, when that replica's pipeline stands by
or is off, reach the working pipeline through the database: on PostgreSQL the outbox transaction sends a
``NOTIFY`` that the pipeline ``LISTEN``s to; on SQLite the accepting process signals the pipeline's
notification socket (api/pipeline.py: ``OutboxSignal``, ``watch_outbox``).

Replicas race: two processes may look up the same (docHash, signer) before either commits, and the second
INSERT then breaks the unique constraint. PostgreSQL raises that only once the first transaction has
committed, so the batch is simply written again: its look-up now finds the winner's row, and the duplicate
answers 200 with it, like a sequential duplicate, while the rest of the batch is accepted. A row that fails
for a reason of its own (a value the database refuses) fails alone: the batch is then written one row at a
time, so unrelated requests do not share its error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from docchain.api.db import Database
from docchain.api.problems import unavailable
from docchain.api.store import OUTBOX_CHANNEL, Accepted, NewCopy, Store

log = logging.getLogger("docchain.api.outbox")
MAX_ROWS = 500
CHANNEL = OUTBOX_CHANNEL
RACE_RETRIES = 5  # writes of one batch that another process's commits may each overtake
# PostgreSQL's deadlock_detected and serialization_failure: the transaction was rolled back and may run again
_RETRY_SQLSTATES = frozenset({"40P01", "40001"})


@dataclass
class _Item:
    row: dict[str, Any]
    future: asyncio.Future[tuple[Accepted, bool]]
    copies: Sequence[NewCopy] = ()


class OutboxWriter:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.store = Store(db)
        self._queue: list[_Item] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-writer")

    async def add(self, row: dict[str, Any], copies: Sequence[NewCopy] = ()) -> tuple[Accepted, bool]:
        """Persist ``row`` (the ``submissions`` columns) unless its (docHash, signer) exists, and the storage
        ``copies`` of its document in the same transaction; returns the stored submission and whether it is
        new."""
        if self._closed:  # the process is stopping (a request that outlived the graceful stop)
            raise unavailable("the service is stopping: nothing was accepted; retry")
        future: asyncio.Future[tuple[Accepted, bool]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Item(row, future, copies))
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
                except (IntegrityError, DataError) as exc:
                    if len(items) == 1:
                        self._fail(items, exc)
                    else:  # one row the database refuses: the others must not share its error
                        log.warning("outbox batch refused; writing its rows one by one", extra={"error": str(exc.orig)})
                        for item in items:
                            await self._write_one(item)
                    continue
                except Exception as exc:
                    self._fail(items, exc)
                    continue
                for item, result in zip(items, results, strict=True):
                    if not item.future.done():
                        item.future.set_result(result)

    @staticmethod
    def _fail(items: list[_Item], exc: Exception) -> None:
        log.error("outbox write failed", exc_info=exc)
        for item in items:
            if not item.future.done():
                item.future.set_exception(exc)

    async def _write_one(self, item: _Item) -> None:
        try:
            [result] = await self._write([item])
        except Exception as exc:
            self._fail([item], exc)
        else:
            if not item.future.done():
                item.future.set_result(result)

    async def _write(self, items: list[_Item]) -> list[tuple[Accepted, bool]]:
        rows = [i.row for i in items]
        copies = [i.copies for i in items]
        attempt = 0
        while True:
            try:
                return await self.store.insert_new(rows, copies)
            except DBAPIError as exc:
                attempt += 1
                if self.db.is_sqlite or attempt > RACE_RETRIES or not _overtaken(exc):
                    raise
                # another process committed one of these pairs after this batch looked them up (see the
                # module's docstring): the next look-up finds it
                log.info("outbox batch overtaken by another process; writing it again", extra={"attempt": attempt})

    async def close(self) -> None:
        self._closed = True
        self._wake.set()
        if self._task is not None:
            await asyncio.wait([self._task], timeout=10)


def _overtaken(exc: DBAPIError) -> bool:
    """Whether the batch lost a race with another process's commit and may simply be written again: a unique
    violation (the look-up missed a pair committed since), a deadlock or a serialization failure. PostgreSQL
    only: SQLite's writers exclude each other from BEGIN on."""
    if isinstance(exc, IntegrityError):
        return True
    return getattr(exc.orig, "sqlstate", None) in _RETRY_SQLSTATES
