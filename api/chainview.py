"""Chain reads for verification, asynchronous and shared per chain head.

Verify must double-check the chain on every request, yet most requests between two blocks ask the node the
same questions. Here:

* every verification first reads the node's **current head** (number and hash). The read is
  single-flight: concurrent requests share one ``eth_getBlockByNumber("latest")``, but a request only
  joins a read that *started after it arrived*, so no answer is older than the request;
* everything else verification needs (a record, a block's hash) is cached **per head hash**. The state
  at a given block hash is immutable — a record can only change in a new block, and a reorg changes the
  head hash — so a cached value is exactly what the node would answer at that head. When the head hash
  changes, the whole cache is dropped;
* calls go over the service's one asynchronous transport (chain/rpc.py's :class:`JsonRpc`, keep-alive, on
  the event loop).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from docchain.chain.errors import ChainError
from docchain.chain.rpc import FALLBACK_TAGS, ChainReader, JsonRpc

log = logging.getLogger("docchain.api.chainview")

MAX_CACHED = 100_000


@dataclass(frozen=True)
class Head:
    number: int
    hash: bytes
    block: dict[str, Any] = field(compare=False, repr=False)  # the node's answer, served as "latest"


class HeadCache:
    """Fresh head per request (single-flight) and, per head hash, a cache of every read made at it."""

    def __init__(self, rpc: JsonRpc) -> None:
        self.rpc = rpc
        self._current: asyncio.Future[Head] | None = None  # the head read in flight
        self._queued: asyncio.Future[Head] | None = None  # the read that starts when it ends
        self._head: Head | None = None
        self._values: dict[tuple[Any, ...], asyncio.Future[Any]] = {}
        self.reads = 0  # node round trips, for tests and metrics

    async def head(self) -> Head:
        """A head read that started after this call."""
        loop = asyncio.get_running_loop()
        if self._current is None:
            self._current = fut = loop.create_future()
            loop.create_task(self._read_head(fut))
        else:
            if self._queued is None:
                self._queued = loop.create_future()
            fut = self._queued
        return await asyncio.shield(fut)

    async def reader(self) -> ChainReader:
        """A :class:`ChainReader` at a head read after this call: "latest" is that head, and every other
        read is cached for as long as the head is unchanged."""
        return ChainReader(_AtHead(self, await self.head()))

    async def _read_head(self, fut: asyncio.Future[Head]) -> None:
        while True:
            try:
                self.reads += 1
                block = await self.rpc.call("eth_getBlockByNumber", ["latest", False])
                head = Head(int(block["number"], 16), bytes.fromhex(block["hash"][2:]), block)
                if head != self._head:
                    self._head = head
                    self._values = {}
                fut.set_result(head)
            except Exception as exc:  # delivered to every waiter
                fut.set_exception(exc)
                fut.exception()  # mark retrieved: waiters may all have gone
            if self._queued is None:
                self._current = None
                return
            self._current = fut = self._queued
            self._queued = None

    async def _cached(self, head: Head, key: tuple[Any, ...], fetch: Callable[[], Awaitable[Any]]) -> Any:
        if head != self._head:  # a newer head was read meanwhile: read at it, uncached
            return await fetch()
        fut = self._values.get(key)
        if fut is None:
            if len(self._values) >= MAX_CACHED:
                self._values = {}
            values = self._values
            fut = values[key] = asyncio.get_running_loop().create_future()
            try:
                fut.set_result(await fetch())
            except BaseException as exc:
                values.pop(key, None)
                fut.set_exception(exc)
                fut.exception()
                raise
        return await asyncio.shield(fut) if not fut.done() else fut.result()


class _AtHead:
    """The transport of one verification: "latest" is its head; other reads go through the head's cache.
    Everything verification reads names a block or a transaction, so for a given head hash the answer is
    what the node would give — a record or a receipt can only change in a new block or a reorg, and
    either changes the head hash."""

    def __init__(self, cache: HeadCache, head: Head) -> None:
        self.cache, self.head = cache, head

    async def call(self, method: str, params: list[Any]) -> Any:
        if method == "eth_getBlockByNumber" and params and params[0] == "latest":
            return self.head.block
        if params and params[-1] in FALLBACK_TAGS:
            # ChainReader's read at the latest state, when the node refused the head's (chain/rpc.py). The node
            # resolves "latest" itself and refuses it when a block lands meanwhile: that refusal is not this
            # head's answer, so it is not kept (an exception is not cached), and the reader reads on.
            async def latest() -> Any:
                self.cache.reads += 1
                return await self.cache.rpc.call(method, params)

            return await self.cache._cached(self.head, (method, json.dumps(params, sort_keys=True)), latest)

        async def fetch() -> Any:
            self.cache.reads += 1
            try:
                return await self.cache.rpc.call(method, params)
            except ChainError as exc:
                # The node's own answer, as stable at this head as a result: a node without past state
                # refuses every read at the anchoring block the same way, so the refusal is kept too.
                return _Refused(exc)

        answer = await self.cache._cached(self.head, (method, json.dumps(params, sort_keys=True)), fetch)
        if isinstance(answer, _Refused):
            raise answer.error
        return answer


@dataclass(frozen=True)
class _Refused:
    error: ChainError
