"""In-process wake-ups for long-poll and server-sent events: the worker and the indexer call
:meth:`Notifier.notify` with the submission ids whose state they changed. Waiters also re-read the
database on a short timeout, so a change made by another replica is seen too."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager


class Notifier:
    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)

    def notify(self, ids: Iterable[str]) -> None:
        for key in ids:
            for ev in self._waiters.get(key, ()):
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
