"""The shape shared by the pipeline's background loops (anchoring worker, indexer): bind to the chain, run
one step, sleep until the step's deadline or a wake-up, and keep going whatever fails.

A node outage backs off (0.2 s doubling to 1 s: a step against a node that refuses connections costs
little, and anchoring resumes within a second of the node coming back); any other error is logged and
retried after 1 s. Either way nothing is lost: the outbox and the index live in the database, and the next
step resumes from there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import ClassVar

from docchain.api import metrics
from docchain.api.chainctx import Bound, ChainContext
from docchain.api.db import Database
from docchain.api.notify import Notifier
from docchain.api.settings import Settings
from docchain.chain.errors import NodeError

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
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
