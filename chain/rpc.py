"""JSON-RPC to an Ethereum node: the one transport docchain uses, and the typed reads verification makes.

:class:`JsonRpc` is the asynchronous transport (aiohttp, keep-alive: the client web3's own asynchronous
provider uses) of the API's worker, indexer and verification, and of the CLI's verification;
:class:`SyncJsonRpc` is its blocking twin (httpx), for code that is not on an event loop. Both map failures
the same way: a refused, silent or garbled node is :class:`NodeError`, an error object the node answers is
:class:`RpcError` (a :class:`ChainError` carrying the node's code and revert data). :class:`ChainReader`
turns the handful of calls verification needs into dataclasses. Anything with an ``async call(method,
params)`` serves as its transport, so the API can put its per-head cache in front of the same reads
(api/chainview.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import httpx

from docchain.chain.errors import ChainError, NodeError
from docchain.chain.values import to_checksum_address, to_hex

FALLBACK_TAGS = ("latest", "pending")  # where a state read goes, in turn, when the node refused its block

# How nodes say that they do not hold the state at a block (pruned, or not known yet): anvil "BlockOutOfRangeError:
# block height is H but requested was N", geth "header not found", "missing trie node ..." and "historical state
# ... is not available", Erigon and Nethermind "... pruned ..." and "unknown block". A revert says none of these.
STATE_UNAVAILABLE = (
    "blockoutofrange",
    "header not found",
    "missing trie node",
    "historical state",
    "state not available",
    "state is not available",
    "state unavailable",
    "pruned",
    "unknown block",
)

Call = tuple[str, list[Any]]  # (method, params)


class Transport(Protocol):
    async def call(self, method: str, params: list[Any]) -> Any: ...


class RpcError(ChainError):
    """The node answered a call with a JSON-RPC error object: ``code``, and ``data`` (a revert's encoded
    custom error, for ``eth_call`` and ``eth_estimateGas``) when it gave one."""

    def __init__(self, method: str, code: int | None, message: str, data: Any = None) -> None:
        self.method, self.code, self.message, self.data = method, code, message, data
        super().__init__(f"{method}: {message}")

    @property
    def revert_data(self) -> bytes | None:
        data = self.data
        if isinstance(data, dict):  # ganache nests it: {"result": "0x...", ...}
            data = data.get("result") or data.get("data")
        if isinstance(data, str) and data.startswith("0x"):
            try:
                return bytes.fromhex(data[2:])
            except ValueError:
                return None
        return None


class _Codec:
    """Request bodies and the reading of replies, shared by the two transports so they fail alike."""

    def __init__(self, url: str, show_url: bool) -> None:
        self.url = url
        # a provider's URL may carry its API key: the API's messages (which reach clients) leave it out
        self._node = f"the Ethereum node at {url}" if show_url else "the Ethereum node"
        self._id = 0

    def body(self, calls: Sequence[Call]) -> tuple[bytes, list[int]]:
        ids = []
        items = []
        for method, params in calls:
            self._id += 1
            ids.append(self._id)
            items.append({"jsonrpc": "2.0", "id": self._id, "method": method, "params": params})
        return json.dumps(items if len(items) != 1 else items[0]).encode(), ids

    def transport_error(self, method: str, exc: Exception) -> NodeError:
        """What an httpx or aiohttp failure means, in the same words whichever transport met it."""
        if isinstance(exc, httpx.TimeoutException | TimeoutError):
            return NodeError(f"{self._node} did not answer {method} in time")
        if isinstance(exc, httpx.ConnectError | aiohttp.ClientConnectorError):
            reason = "connection refused" if _refused(exc) else "cannot connect"
            return NodeError(f"cannot reach {self._node}: {reason}")
        return NodeError(f"cannot reach {self._node} ({exc.__class__.__name__})")

    def results(self, calls: Sequence[Call], ids: list[int], status: int, content: bytes) -> list[Any]:
        method = calls[0][0] if len(calls) == 1 else "a batch"
        if status != 200:
            raise NodeError(f"{self._node} answered HTTP {status} to {method}")
        try:
            reply = json.loads(content)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise NodeError(f"{self._node} does not answer as an Ethereum JSON-RPC node") from exc
        replies = [reply] if isinstance(reply, dict) else reply
        if not isinstance(replies, list) or not all(isinstance(r, dict) for r in replies):
            raise NodeError(f"{self._node} does not answer as an Ethereum JSON-RPC node")
        by_id = {r.get("id"): r for r in replies}
        if len(calls) == 1 and len(replies) == 1:
            by_id = {ids[0]: replies[0]}  # some nodes echo the id as a string
        out = []
        for (name, _), ident in zip(calls, ids, strict=True):
            one = by_id.get(ident)
            if one is None:
                raise NodeError(f"{self._node} left {name} unanswered in a batch")
            if "error" in one:
                error = one["error"]
                if isinstance(error, dict):
                    code = error.get("code")
                    raise RpcError(
                        name,
                        code if isinstance(code, int) else None,
                        str(error.get("message", error)),
                        error.get("data"),
                    )
                raise RpcError(name, None, str(error))
            out.append(one.get("result"))
        return out


def state_unavailable(error: ChainError) -> bool:
    """Whether ``error`` is the node saying it does not hold the state at the block asked (never a revert,
    which carries revert data, nor a node out of reach)."""
    if not isinstance(error, RpcError) or error.revert_data is not None:
        return False
    message = error.message.lower()
    return any(words in message for words in STATE_UNAVAILABLE)


def _refused(exc: BaseException) -> bool:
    """Whether a connection failed because nothing listens (httpx words it "All connection attempts failed",
    aiohttp "Cannot connect to host"; both keep the operating system's error underneath)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError) or "refused" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


_HEADERS = {"Content-Type": "application/json"}


def _request(url: httpx.URL, body: bytes, timeout: float) -> httpx.Request:
    """A JSON-RPC POST as httpx's transports take it: Host and Content-Length added by httpx, the timeout
    (connect, read, write and the wait for a pooled connection) as the request's extension."""
    request = httpx.Request("POST", url, headers=_HEADERS, content=body)
    request.extensions["timeout"] = dict.fromkeys(("connect", "read", "write", "pool"), timeout)
    return request


class JsonRpc:
    """One node, one pool of keep-alive connections (asynchronous).

    aiohttp rather than httpx here: every verify, anchored batch and indexer step makes these calls, and
    aiohttp's C parser and simpler pool spend a fraction of the CPU per call that httpx's do, the more so
    with many calls in flight (bench/rpc.py). The session is made on first use, on the loop that uses it."""

    def __init__(self, url: str, *, timeout: float = 10.0, show_url: bool = True) -> None:
        self.url = url
        self._default_timeout = aiohttp.ClientTimeout(total=timeout)
        self._codec = _Codec(url, show_url)
        self._session: aiohttp.ClientSession | None = None

    async def call(self, method: str, params: list[Any], *, timeout: float | None = None) -> Any:
        [result] = await self._send([(method, params)], timeout)
        return result

    async def batch(self, calls: Sequence[Call], *, timeout: float | None = None) -> list[Any]:
        """Several calls in one request (a JSON-RPC batch); their results in order. The first call the node
        refused raises its :class:`RpcError`."""
        return await self._send(calls, timeout) if calls else []

    async def _send(self, calls: Sequence[Call], timeout: float | None) -> list[Any]:
        body, ids = self._codec.body(calls)
        if self._session is None:
            self._session = aiohttp.ClientSession(headers=_HEADERS)
        limit = self._default_timeout if timeout is None else aiohttp.ClientTimeout(total=timeout)
        try:
            async with self._session.post(self.url, data=body, timeout=limit) as response:
                status, content = response.status, await response.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise self._codec.transport_error(calls[0][0], exc) from exc
        return self._codec.results(calls, ids, status, content)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    close = aclose

    async def __aenter__(self) -> JsonRpc:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()


class SyncJsonRpc:
    """:class:`JsonRpc`'s blocking twin (same calls, same errors), for code that runs no event loop."""

    def __init__(self, url: str, *, timeout: float = 10.0, show_url: bool = True) -> None:
        self.url = url
        self._url = httpx.URL(url)
        self._timeout = timeout
        self._codec = _Codec(url, show_url)
        self._transport = httpx.HTTPTransport()

    def call(self, method: str, params: list[Any], *, timeout: float | None = None) -> Any:
        [result] = self._send([(method, params)], timeout)
        return result

    def batch(self, calls: Sequence[Call], *, timeout: float | None = None) -> list[Any]:
        return self._send(calls, timeout) if calls else []

    def _send(self, calls: Sequence[Call], timeout: float | None) -> list[Any]:
        body, ids = self._codec.body(calls)
        request = _request(self._url, body, self._timeout if timeout is None else timeout)
        try:
            response = self._transport.handle_request(request)
            try:
                response.read()
            finally:
                response.close()
        except httpx.HTTPError as exc:
            raise self._codec.transport_error(calls[0][0], exc) from exc
        return self._codec.results(calls, ids, response.status_code, response.content)

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> SyncJsonRpc:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


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
    state reads at older blocks; those, and only those (:func:`state_unavailable`), fall back to the latest
    state (else the pending one, which the node builds on it), which for the facts verification reads (code,
    records, signature checks of a registry that only adds) is at least as informative. Any other answer,
    a revert above all, is the answer at the block asked.
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

    async def _state(self, method: str, params: list[Any], block: int | None) -> Any:
        # The node resolves "latest" to a number itself, and a block mined in between makes it refuse that one
        # too (anvil --prune-history while blocks are mined back to back, measured: 9% of eth_calls, in runs of
        # up to 8 that short pauses do not outwait). "pending", the state it is building on its latest one, it
        # never refused (0 of 10,000): the last resort. A revert is the state's answer at that block: a later
        # state may answer otherwise (a root anchored since), so it is raised, never asked again elsewhere.
        tags = [*([] if block is None else [hex(block)]), *FALLBACK_TAGS]
        for i, tag in enumerate(tags):
            try:
                return await self.transport.call(method, [*params, tag])
            except ChainError as exc:
                if i == len(tags) - 1 or not state_unavailable(exc):
                    raise
        raise AssertionError("unreachable")

    async def code(self, address: str, block: int | None = None) -> bytes:
        """The code at ``address`` at ``block`` (None: the latest state)."""
        return _bytes(await self._state("eth_getCode", [address], block))

    async def call(self, to: str, data: bytes, block: int | None = None) -> bytes:
        """``eth_call`` at ``block`` (None: the latest state); a revert is :class:`ChainError`."""
        return _bytes(await self._state("eth_call", [{"to": to, "data": to_hex(data)}], block))

    async def transaction(self, tx_hash: bytes) -> dict[str, Any] | None:
        """The node's answer to ``eth_getTransactionByHash`` (None: a transaction it does not know)."""
        raw: dict[str, Any] | None = await self.transport.call("eth_getTransactionByHash", [to_hex(tx_hash)])
        return raw

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
