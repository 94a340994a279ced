"""The shape shared by the pipeline's background loops (anchoring worker, indexer): bind to the chain, run
one step, sleep until the step's deadline or a wake-up, and keep going whatever fails; and the one head
poll that tells the indexer of new blocks.

Idle, a loop sleeps until something wakes it: an accepted submission (the API's message over the pipe,
PostgreSQL's NOTIFY, SQLite's notification socket), a new block (:class:`HeadWatcher`) or a mined
transaction. A wake-up can be lost (a dropped listening connection, a full socket buffer), so an idle loop
also steps every ``idle_poll_s`` (:attr:`ServiceLoop.idle_s`): the safety poll that finds whatever was
missed, from the database.

A node outage backs off (0.2 s doubling to 1 s: a step against a node that refuses connections costs
little, and anchoring resumes within a second of the node coming back); any other error is logged and
retried after 1 s. Either way nothing is lost: the outbox and the index live in the database, and the next
step resumes from there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import ClassVar

from docchain.api import metrics
from docchain.api.chainctx import Bound, ChainContext
from docchain.api.db import Database
from docchain.api.notify import Notifier
from docchain.api.settings import Settings
from docchain.chain.errors import ChainError, NodeError
from docchain.chain.rpc import JsonRpc

log = logging.getLogger("docchain.api.pipeline")

MAX_BACKOFF_S = 1.0


class ServiceLoop:
    component: ClassVar[str]  # metrics label and log name: "worker", "indexer"

    def __init__(self, settings: Settings, db: Database, chain: ChainContext, notifier: Notifier) -> None:
        self.settings = settings
        self.db = db
        self.chain = chain
        self.notifier = notifier
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self.last_error: str | None = None

    async def step(self, bound: Bound) -> float | None:
        """One unit of work; returns how long to sleep (None: go again at once)."""
        raise NotImplementedError

    @property
    def idle_s(self) -> float:
        """How long an idle loop sleeps when nothing wakes it (the safety poll)."""
        return self.settings.idle_poll_s

    def wake(self) -> None:
        self._wake.set()

    def restart(self) -> None:
        """Make a stopped loop runnable again (the pipeline lost its lease and got it back)."""
        self._stopping.clear()
        self._wake.clear()

    def node_down(self) -> None:
        """A step failed because the node could not be reached (it may come back changed)."""

    def stop(self) -> None:
        """Stop after the step in progress (a step never leaves a transaction signed but unrecorded)."""
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        backoff = 0.2
        while not self._stopping.is_set():
            # cleared before the step, not before the sleep: a wake-up that arrives during the step (a
            # transaction mined while the indexer writes the block that holds it) ends the sleep that follows
            self._wake.clear()
            try:
                pause = await self.step(await self.chain.bound())
                if backoff > 0.2:
                    log.info("node reachable again; %s resumed", self.component)
                backoff = 0.2
                self.last_error = None
            except NodeError as exc:
                metrics.NODE_ERRORS.labels(self.component).inc()
                self.last_error = str(exc)
                if backoff == 0.2:  # once per outage: the retries below would log one line a second
                    log.warning("node unavailable; %s paused", self.component, extra={"error": str(exc)})
                self.node_down()
                await self._sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            except Exception as exc:  # keep the loop alive; the database is intact
                self.last_error = repr(exc)
                log.exception("%s step failed", self.component)
                await self._sleep(1.0)
                continue
            if pause is not None:
                await self._sleep(pause)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)


# After a new block, more tend to follow (a transaction's confirmations, a burst of anchors): the head is read
# every poll interval for this long, then every head poll interval.
BUSY_S = 5.0


class HeadWatcher:
    """One ``eth_getBlockByNumber("latest")`` per interval; ``on_new()`` when the node's head changes, by
    number or by hash (a reorg that keeps the height) or when the node is back from an outage. The chain
    offers no push over HTTP, and a node's WebSocket endpoint is not part of the configuration, so this
    poll is the new-block signal: one small read, on the event loop, no database access."""

    def __init__(self, rpc: JsonRpc, on_new: Callable[[], None], *, idle_s: float, busy_s: float) -> None:
        self.rpc = rpc
        self.on_new = on_new
        self.idle_s = idle_s
        self.busy_s = min(busy_s, idle_s)
        self.head: tuple[str, str] | None = None  # (number, hash) as the node wrote them

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        busy_until = 0.0
        while True:
            try:
                block = await self.rpc.call("eth_getBlockByNumber", ["latest", False], timeout=max(self.idle_s, 2.0))
                head = None if block is None else (str(block["number"]), str(block["hash"]))
            except (NodeError, ChainError, KeyError, TypeError):
                head = None  # the loops see the outage themselves; once back, any head counts as new
            if head is not None and head != self.head:
                busy_until = loop.time() + BUSY_S
                self.on_new()
            self.head = head
            await asyncio.sleep(self.busy_s if loop.time() < busy_until else self.idle_s)
