"""Wake-ups for long-poll and server-sent events: the worker and the indexer call :meth:`Notifier.notify`
with the submission ids whose state they changed.

On PostgreSQL, replicas share the database but only one pipeline works it: the pipeline also publishes
its changes (``NOTIFY docchain_changes``) and every API process relays them to its own waiters
(:func:`relay`), so a long-poll on any replica answers when the state changes, not at its next re-read.
Waiters still re-read the database every 2 s, in case a notification is lost (a listening connection
that dropped)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from docchain.api.db import Database

CHANNEL = "docchain_changes"
MAX_IDS = 200  # 32-character ids, comma-separated: NOTIFY payloads stop at 8,000 bytes
EVERYTHING = "*"  # the payload for more changes than that: every waiter re-reads


class Notifier:
    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)

    def notify(self, ids: Iterable[str]) -> None:
        for key in ids:
            for ev in self._waiters.get(key, ()):
                ev.set()

    def notify_all(self) -> None:
        for waiters in self._waiters.values():
            for ev in waiters:
                ev.set()

    @asynccontextmanager
    async def watch(self, key: str) -> AsyncIterator[asyncio.Event]:
        ev = asyncio.Event()
        self._waiters[key].add(ev)
        try:
            yield ev
        finally:
            waiters = self._waiters.get(key)
            if waiters is not None:
                waiters.discard(ev)
                if not waiters:
                    del self._waiters[key]

    @property
    def watching(self) -> int:
        return sum(len(v) for v in self._waiters.values())


class Publishing(Notifier):
    """The pipeline's notifier on PostgreSQL: ``local`` (this process's waiters, or the API process's over
    the pipe), then every replica through the database. Called after the change is committed."""

    def __init__(self, local: Notifier, db: Database) -> None:
        super().__init__()
        self.local, self.db = local, db
        self._sending: set[asyncio.Task[Any]] = set()  # strong references until sent

    def notify(self, ids: Iterable[str]) -> None:
        ids = list(ids)
        if not ids:
            return
        self.local.notify(ids)
        payload = ",".join(ids) if len(ids) <= MAX_IDS else EVERYTHING
        task = asyncio.get_running_loop().create_task(self._publish(payload))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _publish(self, payload: str) -> None:
        with contextlib.suppress(Exception):  # the database is down: other waiters fall back to their re-reads
            await self.db.notify(CHANNEL, payload)


async def relay(db: Database, notifier: Notifier) -> None:
    """Until cancelled (PostgreSQL): wake this process's waiters for the changes any pipeline publishes."""

    def wake(payload: str) -> None:
        if payload == EVERYTHING:
            notifier.notify_all()
        else:
            notifier.notify(payload.split(","))

    await db.listen(CHANNEL, wake)
