"""The loop control every background loop of the service shares (:class:`BackgroundLoop`: the anchoring
worker, the indexer, the storage copy worker, the envelope delivery loop), the chain loops' shape on top of it
(:class:`ServiceLoop`: bind to the chain, then step), and the one head poll that tells the indexer of new blocks.

A loop runs one step, sleeps until the step's deadline, a wake-up or its stop, and keeps going whatever fails.
Idle, a loop sleeps until something wakes it: an accepted submission (the API's message over the pipe,
PostgreSQL's NOTIFY, SQLite's notification socket), a new block (:class:`HeadWatcher`), a mined transaction,
a queued webhook call or copy. A wake-up can be lost (a dropped listening connection, a full socket buffer), so
an idle loop also steps every ``idle_poll_s`` (:attr:`ServiceLoop.idle_s`): the safety poll that finds whatever
was missed, from the database.

A failed step is logged and retried after 1 s, or at the next wake-up. A chain loop's node outage backs off
instead (0.2 s doubling to 1 s: a step against a node that refuses connections costs little, and anchoring
resumes within a second of the node coming back). Either way nothing is lost: the outbox, the index, the copies
and the deliveries live in the database, and the next step resumes from there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from docchain.api import metrics
from docchain.chain.errors import ChainError, NodeError

if TYPE_CHECKING:  # annotations only: the copy and delivery loops import this module, the chain binding stays out
    from docchain.api.chainctx import Bound, ChainContext
    from docchain.api.db import Database
    from docchain.api.notify import Notifier
    from docchain.api.settings import Settings
    from docchain.chain.rpc import JsonRpc

log = logging.getLogger("docchain.api.pipeline")

ERROR_PAUSE_S = 1.0  # after a failed step (the database is down, most likely): a retry, not a spin
FIRST_BACKOFF_S = 0.2
MAX_BACKOFF_S = 1.0


class BackgroundLoop:
    """Steps until stopped: :meth:`run` takes a step, then sleeps as long as the step asked, until :meth:`wake`
    or :meth:`stop`. A subclass gives the step (:meth:`_take_step`) and may space its steps (:attr:`min_step_s`).
    """

    component: ClassVar[str]  # log name (and a chain loop's metrics label): "worker", "indexer", "copy", ...
    logger: ClassVar[logging.Logger]  # where a failed step is logged
    # the shortest interval between the starts of two steps, whatever wakes the loop (only a stop ends the wait)
    min_step_s: ClassVar[float] = 0.0

    def __init__(self) -> None:
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self.last_error: str | None = None

    async def _take_step(self) -> float | None:
        """One step; returns how long to sleep (None or 0: step again at once). Raising is the step failing."""
        raise NotImplementedError

    def wake(self) -> None:
        """End the sleep under way, or the one after the step under way."""
        self._wake.set()

    def stop(self) -> None:
        """Stop after the step in progress (a step never leaves its work half recorded)."""
        self._stopping.set()
        self._wake.set()

    def restart(self) -> None:
        """Make a stopped loop runnable again (the pipeline lost its lease and got it back)."""
        self._stopping.clear()
        self._wake.clear()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        started_at = float("-inf")
        while not self._stopping.is_set():
            spacing = started_at + self.min_step_s - loop.time()
            if spacing > 0 and await self._stops_within(spacing):
                break
            started_at = loop.time()
            # cleared before the step, not before the sleep: a wake-up that arrives during the step (a transaction
            # mined while the indexer writes the block that holds it, a copy or a delivery queued meanwhile) ends
            # the sleep that follows
            self._wake.clear()
            try:
                pause = await self._take_step()
            except Exception as exc:  # keep the loop alive: what it works on waits in the database
                pause = self._failed(exc)
            else:
                self._succeeded()
            if pause is not None and pause > 0:
                await self._sleep(pause)

    def _succeeded(self) -> None:
        self.last_error = None

    def _failed(self, exc: Exception) -> float:
        """Record and log a failed step; returns how long to sleep before the next."""
        self.last_error = repr(exc)
        self.logger.error("%s step failed", self.component, exc_info=exc)
        return ERROR_PAUSE_S

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    async def _stops_within(self, seconds: float) -> bool:
        """Whether the loop is stopping, waiting up to ``seconds`` for it; a wake-up does not end this wait."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        return self._stopping.is_set()


class ServiceLoop(BackgroundLoop):
    """A loop that works on the chain (anchoring worker, indexer): each step gets the chain bound to its registry,
    and a node that cannot be reached pauses the loop with a back-off rather than failing its steps."""

    logger = log

    def __init__(self, settings: Settings, db: Database, chain: ChainContext, notifier: Notifier) -> None:
        super().__init__()
        self.settings = settings
        self.db = db
        self.chain = chain
        self.notifier = notifier
        self._backoff = FIRST_BACKOFF_S  # the pause after the next node error; above the first: an outage is on

    async def step(self, bound: Bound) -> float | None:
        """One unit of work; returns how long to sleep (None: go again at once)."""
        raise NotImplementedError

    @property
    def idle_s(self) -> float:
        """How long an idle loop sleeps when nothing wakes it (the safety poll)."""
        return self.settings.idle_poll_s

    def node_down(self) -> None:
        """A step failed because the node could not be reached (it may come back changed)."""

    def restart(self) -> None:
        super().restart()
        self._backoff = FIRST_BACKOFF_S

    async def _take_step(self) -> float | None:
        return await self.step(await self.chain.bound())

    def _succeeded(self) -> None:
        if self._backoff > FIRST_BACKOFF_S:
            log.info("node reachable again; %s resumed", self.component)
        self._backoff = FIRST_BACKOFF_S
        super()._succeeded()

    def _failed(self, exc: Exception) -> float:
        if not isinstance(exc, NodeError):
            return super()._failed(exc)
        metrics.NODE_ERRORS.labels(self.component).inc()
        self.last_error = str(exc)
        if self._backoff == FIRST_BACKOFF_S:  # once per outage: the retries after it would log one line a second
            log.warning("node unavailable; %s paused", self.component, extra={"error": str(exc)})
        self.node_down()
        # node_down may wake this loop (the worker's does: its next step reconciles first); the back-off is slept
        # all the same, or a node refusing connections at once would have the loop spin on binding attempts
        self._wake.clear()
        pause, self._backoff = self._backoff, min(self._backoff * 2, MAX_BACKOFF_S)
        return pause


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
