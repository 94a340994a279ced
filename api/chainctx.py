"""The service's link to the chain: web3, the relayer's sender, the registry binding and a thread pool.

web3.py is blocking, so every chain call goes through :meth:`ChainContext.run` (a bounded pool of
worker threads) and the event loop never waits on the node. The context connects lazily: when the node
is down at start-up the API still starts, answers 503 on chain-bound routes and keeps trying.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

import requests
from web3 import HTTPProvider, Web3

from docchain.api.chainview import HeadCache
from docchain.api.db import ChainMismatch
from docchain.api.settings import Settings
from docchain.chain import deploy
from docchain.chain.errors import NodeError
from docchain.chain.indexer import Indexer
from docchain.chain.registry import Registry
from docchain.chain.rpc import JsonRpc
from docchain.chain.sender import TxSender
from docchain.chain.typed_data import Domain
from docchain.chain.values import parse_address

log = logging.getLogger("docchain.api.chain")

PROBE_TIMEOUT_S = 2.0
UNREACHABLE = (requests.RequestException, ConnectionError, TimeoutError)

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class Bound:
    registry: Registry
    sender: TxSender
    domain: Domain
    deployment_block: int
    indexer: Indexer
    heads: HeadCache  # verification's per-head reads


class ChainContext:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.w3 = Web3(HTTPProvider(settings.rpc_url, request_kwargs={"timeout": 10}))
        self.executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="docchain-chain")
        self.rpc = JsonRpc(settings.rpc_url, show_url=False)  # the worker's, the indexer's and verification's
        self._key = settings.relayer_private_key()  # fails fast on a missing key, before any network call
        self._bound: Bound | None = None
        # called once bound, with (chain id, registry address); raises to refuse the binding
        self.claim: Callable[[int, str], Awaitable[None]] | None = None
        self._binding: asyncio.Future[Bound] | None = None  # the bind attempt in flight, shared

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.executor, lambda: fn(*args, **kwargs))
        except UNREACHABLE as exc:
            # web3's blocking calls raise the HTTP library's own errors when the node is down, restarting or
            # silent: that is the node's unavailability (503 for a route, a backoff for a loop), not a bug.
            # The message never names the RPC URL: it may carry a provider's key.
            raise NodeError(f"the Ethereum node is unreachable ({exc.__class__.__name__})") from exc

    def _bind(self) -> Bound:
        fee_cap = self.settings.max_fee_cap_gwei
        sender = TxSender(self.w3, self._key, max_fee_cap_wei=None if fee_cap is None else int(fee_cap * 10**9))
        chain_id = sender.chain_id
        expected = self.settings.chain_id
        if expected is not None and chain_id != expected:
            # Checked before any deployment lookup or database claim. The message never names the RPC URL: it
            # may carry a provider's key, and chain-bound routes answer 503 with this text.
            raise ChainMismatch(
                f"the node (DOCCHAIN_RPC_URL) is on chain {chain_id}, but DOCCHAIN_CHAIN_ID is {expected}; "
                "point DOCCHAIN_RPC_URL at a node of that chain or change DOCCHAIN_CHAIN_ID"
            )
        if self.settings.registry_address:
            address = parse_address(self.settings.registry_address, "DOCCHAIN_REGISTRY_ADDRESS")
            block = self.settings.deployment_block or 0
        else:
            deployment = deploy.lookup(self.settings.data_dir, chain_id)
            address, block = deployment.address, deployment.block_number
        registry = Registry(self.w3, address, sender)
        domain = registry.domain
        code = self.w3.eth.get_code(address)
        if not code:
            raise NodeError(f"no contract at {address} on chain {chain_id}")
        return Bound(registry, sender, domain, block, Indexer(self.rpc, address, block), HeadCache(self.rpc))

    async def bound(self) -> Bound:
        """The bound registry; :class:`NodeError` while the node cannot be reached.

        Concurrent callers share one attempt, its failure included: with the node down, a crowd of requests
        answers 503 together instead of queueing for an attempt each. A caller that goes away (a client
        disconnecting) does not cancel the attempt the others wait on.
        """
        if self._bound is not None:
            return self._bound
        if self._binding is None:
            self._binding = attempt = asyncio.ensure_future(self._try_bind())
            attempt.add_done_callback(self._bind_done)
        return await asyncio.shield(self._binding)

    def _bind_done(self, attempt: asyncio.Future[Bound]) -> None:
        self._binding = None
        if not attempt.cancelled():
            attempt.exception()  # retrieved: every waiter may have gone

    async def _try_bind(self) -> Bound:
        # One async probe first, failing at once when nothing listens: web3's calls in _bind retry a refused
        # connection for 3 s in a worker thread, which held every request (and /readyz, and shutdown) that long.
        await self.rpc.call("eth_chainId", [], timeout=PROBE_TIMEOUT_S)
        bound = await self.run(self._bind)
        if self.claim is not None:  # the database must belong to this chain and registry
            await self.claim(bound.domain.chain_id, bound.registry.address)
        self._bound = bound
        log.info("bound to registry", extra={"chain_id": bound.domain.chain_id, "contract": bound.registry.address})
        return bound

    @property
    def relayer_key(self) -> bytes:
        return self._key

    @property
    def ready(self) -> Bound | None:
        return self._bound

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
