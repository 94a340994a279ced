"""The service's link to the chain: the one asynchronous JSON-RPC transport, the relayer's sender and the
registry's reads and writes.

The routes, the anchoring worker, the indexer and verification all talk to the node through
:attr:`ChainContext.rpc` (chain/rpc.py's :class:`JsonRpc`, keep-alive, on the event loop): no call blocks a
thread, and an unreachable node is one typed error (:class:`NodeError`, a 503 for a route, a backoff for a
loop). The context connects lazily: when the node is down at start-up the API still starts, answers 503 on
chain-bound routes and keeps trying.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode

from docchain.api.chainview import HeadCache
from docchain.api.db import ChainMismatch
from docchain.api.settings import Settings
from docchain.chain import deploy
from docchain.chain.errors import NodeError
from docchain.chain.indexer import Indexer
from docchain.chain.registry import RegistryReader, decode_revert
from docchain.chain.rpc import JsonRpc
from docchain.chain.sender import AsyncTxSender, PreparedTx
from docchain.chain.typed_data import Domain
from docchain.chain.values import parse_address

log = logging.getLogger("docchain.api.chain")

PROBE_TIMEOUT_S = 2.0


class RegistryWrites:
    """The registry's transactions for the anchoring worker, over the one asynchronous transport: simulated
    (``eth_call``) and signed by the relayer's :class:`AsyncTxSender`; a revert is the registry's own error."""

    def __init__(self, sender: AsyncTxSender, address: str) -> None:
        self.sender = sender
        self.address = address

    async def simulate(self, data: bytes, out_types: list[str]) -> tuple[Any, ...]:
        """Execute a call once and decode its result; a revert raises :class:`ContractRevert`. Surfaces a
        batch's culprit as estimating gas would, without eth_estimateGas's repeated executions."""
        return tuple(abi_decode(out_types, await self.sender.call(self.address, data)))

    async def prepare(self, data: bytes, gas: int | None = None) -> PreparedTx:
        """Sign a registry transaction without sending it; the gas is estimated unless given."""
        return await self.sender.prepare(self.address, data, gas=gas)


@dataclass(frozen=True)
class Bound:
    registry: RegistryReader  # the acceptance and revocation checks, nonces
    sender: AsyncTxSender
    writes: RegistryWrites
    domain: Domain
    deployment_block: int
    indexer: Indexer
    heads: HeadCache  # verification's per-head reads
    # the DocumentEnvelopes beside the registry (DOCCHAIN_ENVELOPES_ADDRESS, or the deployment's); None: none
    # recorded (a deployment from before envelopes), and the envelope routes answer that they are unavailable
    envelopes: str | None = None


class ChainContext:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.rpc = JsonRpc(settings.rpc_url, show_url=False)  # every read and write of the service
        self._key = settings.relayer_private_key()  # fails fast on a missing key, before any network call
        self._bound: Bound | None = None
        # called once bound, with (chain id, registry address); raises to refuse the binding
        self.claim: Callable[[int, str], Awaitable[None]] | None = None
        self._binding: asyncio.Future[Bound] | None = None  # the bind attempt in flight, shared

    async def _bind(self) -> Bound:
        chain_id = int(await self.rpc.call("eth_chainId", [], timeout=PROBE_TIMEOUT_S), 16)
        expected = self.settings.chain_id
        if expected is not None and chain_id != expected:
            # Checked before any deployment lookup or database claim. The message never names the RPC URL: it
            # may carry a provider's key, and chain-bound routes answer 503 with this text.
            raise ChainMismatch(
                f"the node (DOCCHAIN_RPC_URL) is on chain {chain_id}, but DOCCHAIN_CHAIN_ID is {expected}; "
                "point DOCCHAIN_RPC_URL at a node of that chain or change DOCCHAIN_CHAIN_ID"
            )
        envelopes: str | None = None
        if self.settings.registry_address:
            address = parse_address(self.settings.registry_address, "DOCCHAIN_REGISTRY_ADDRESS")
            block = self.settings.deployment_block or 0
            if self.settings.envelopes_address:
                envelopes = parse_address(self.settings.envelopes_address, "DOCCHAIN_ENVELOPES_ADDRESS")
        else:
            deployment = deploy.lookup(self.settings.data_dir, chain_id)
            address, block = deployment.address, deployment.block_number
            envelopes = None if deployment.envelopes is None else deployment.envelopes.address
        if await self.rpc.call("eth_getCode", [address, "latest"]) in (None, "0x"):
            raise NodeError(f"no contract at {address} on chain {chain_id}")
        fee_cap = self.settings.max_fee_cap_gwei
        sender = AsyncTxSender(
            self.rpc,
            self._key,
            chain_id,
            max_fee_cap_wei=None if fee_cap is None else int(fee_cap * 10**9),
            decode_revert=decode_revert,
        )
        registry = RegistryReader(self.rpc, address, chain_id)
        return Bound(
            registry,
            sender,
            RegistryWrites(sender, registry.address),
            registry.domain,
            block,
            Indexer(self.rpc, address, block, envelopes=envelopes),
            HeadCache(self.rpc),
            envelopes,
        )

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
        # Every read of the binding is asynchronous with a short first timeout: a node that refuses connections
        # fails the attempt at once, and requests (and /readyz, and shutdown) are not held by it.
        bound = await self._bind()
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

    async def close(self) -> None:
        await self.rpc.aclose()
