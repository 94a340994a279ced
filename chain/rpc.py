"""Asynchronous JSON-RPC reads of an Ethereum node, typed for verification.

:class:`JsonRpc` is the transport (httpx, keep-alive); :class:`ChainReader` turns the handful of calls
verification needs into dataclasses. Anything with an ``async call(method, params)`` serves as the
transport, so the API can put its per-head cache in front of the same reads (api/chainview.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from docchain.chain.errors import ChainError, NodeError
from docchain.chain.values import to_checksum_address, to_hex

FALLBACK_TAGS = ("latest", "pending")  # where a state read goes, in turn, when the node refused its block


class Transport(Protocol):
    async def call(self, method: str, params: list[Any]) -> Any: ...


class JsonRpc:
    """One node, one keep-alive HTTP client; a refused or silent node is :class:`NodeError`, an error the
    node answers is :class:`ChainError`."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url
        self._client = httpx.AsyncClient(timeout=timeout)
        self._id = 0

    async def call(self, method: str, params: list[Any]) -> Any:
        self._id += 1
        body = {"jsonrpc": "2.0", "id": self._id, "method": method, "params": params}
        try:
            response = await self._client.post(self.url, json=body)
        except httpx.TimeoutException as exc:
            raise NodeError(f"the Ethereum node at {self.url} did not answer {method} in time") from exc
        except httpx.ConnectError as exc:
            reason = "connection refused" if "refused" in str(exc).lower() else f"cannot connect ({exc})"
            raise NodeError(f"cannot reach the Ethereum node at {self.url}: {reason}") from exc
        except httpx.HTTPError as exc:
            raise NodeError(f"cannot reach the Ethereum node at {self.url} ({exc.__class__.__name__})") from exc
        if response.status_code != 200:
            raise NodeError(f"the Ethereum node at {self.url} answered HTTP {response.status_code} to {method}")
        try:
            reply = response.json()
        except json.JSONDecodeError as exc:
            raise NodeError(f"{self.url} does not answer as an Ethereum JSON-RPC node") from exc
        if not isinstance(reply, dict):
            raise NodeError(f"{self.url} does not answer as an Ethereum JSON-RPC node")
        if "error" in reply:
            error = reply["error"]
            message = error.get("message", error) if isinstance(error, dict) else error
            raise ChainError(f"{method}: {message}")
        return reply.get("result")

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> JsonRpc:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()


@dataclass(frozen=True)
class Block:
    number: int
    hash: bytes
    timestamp: int


@dataclass(frozen=True)
class Log:
    address: str
    topics: tuple[bytes, ...]
    data: bytes
    block_number: int
    block_hash: bytes
    tx_hash: bytes
    log_index: int


@dataclass(frozen=True)
class TxReceipt:
    tx_hash: bytes
    status: int
    to: str | None
    block_number: int
    block_hash: bytes


def _bytes(value: str) -> bytes:
    return bytes.fromhex(value[2:])


def _int(value: str | int) -> int:
    return value if isinstance(value, int) else int(value, 16)


def _log(raw: dict[str, Any]) -> Log:
    return Log(
        address=to_checksum_address(_bytes(raw["address"])),
        topics=tuple(_bytes(t) for t in raw["topics"]),
        data=_bytes(raw["data"]),
        block_number=_int(raw["blockNumber"]),
        block_hash=_bytes(raw["blockHash"]),
        tx_hash=_bytes(raw["transactionHash"]),
        log_index=_int(raw["logIndex"]),
    )


def _block(raw: dict[str, Any]) -> Block:
    return Block(_int(raw["number"]), _bytes(raw["hash"]), _int(raw["timestamp"]))


class ChainReader:
    """The reads verification makes, each at an explicit block so that one verification sees one state.

    A node that keeps no past states (anvil with ``--prune-history``, a full node past its window) refuses
    state reads at older blocks; those fall back to the latest state (else the pending one, which the node
    builds on it), which for the facts verification reads (code, records, signature checks of a registry
    that only adds) is at least as informative.
    """

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    async def chain_id(self) -> int:
        return _int(await self.transport.call("eth_chainId", []))

    async def head(self) -> Block:
        return _block(await self.transport.call("eth_getBlockByNumber", ["latest", False]))

    async def block(self, number: int) -> Block | None:
        raw = await self.transport.call("eth_getBlockByNumber", [hex(number), False])
        return None if raw is None else _block(raw)

    async def _state(self, method: str, params: list[Any], block: int) -> Any:
        try:
            return await self.transport.call(method, [*params, hex(block)])
        except ChainError as exc:
            refused = exc
        # The node resolves "latest" to a number itself, and a block mined in between makes it refuse that one
        # too (anvil --prune-history while blocks are mined back to back, measured: 9% of eth_calls, in runs of
        # up to 8 that short pauses do not outwait). "pending", the state it is building on its latest one, it
        # never refused (0 of 10,000): the last resort. A refusal at every state (a revert) is raised.
        for tag in FALLBACK_TAGS:
            try:
                return await self.transport.call(method, [*params, tag])
            except ChainError as exc:
                refused = exc
        raise refused

    async def code(self, address: str, block: int) -> bytes:
        return _bytes(await self._state("eth_getCode", [address], block))

    async def call(self, to: str, data: bytes, block: int) -> bytes:
        """``eth_call``; a revert is :class:`ChainError`."""
        return _bytes(await self._state("eth_call", [{"to": to, "data": to_hex(data)}], block))

    async def receipt(self, tx_hash: bytes) -> TxReceipt | None:
        """Where and how a transaction ended; its logs are asked for by topic with :meth:`logs` (the receipt
        of a large batch holds hundreds, and one is wanted)."""
        raw = await self.transport.call("eth_getTransactionReceipt", [to_hex(tx_hash)])
        if raw is None:
            return None
        to = raw.get("to")
        return TxReceipt(
            tx_hash=tx_hash,
            status=_int(raw.get("status") or "0x0"),
            to=None if not to else to_checksum_address(_bytes(to)),
            block_number=_int(raw["blockNumber"]),
            block_hash=_bytes(raw["blockHash"]),
        )

    async def logs(
        self,
        address: str,
        topics: list[bytes | None],
        from_block: int = 0,
        to_block: int = 0,
        *,
        block_hash: bytes | None = None,
    ) -> list[Log]:
        """``eth_getLogs`` of ``address`` by topic, in a block range or in the one block ``block_hash``."""
        params: dict[str, Any] = {"address": address, "topics": [None if t is None else to_hex(t) for t in topics]}
        if block_hash is not None:
            params["blockHash"] = to_hex(block_hash)
        else:
            params.update(fromBlock=hex(from_block), toBlock=hex(to_block))
        return [_log(x) for x in await self.transport.call("eth_getLogs", [params])]
