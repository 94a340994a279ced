"""Sends transactions from one local key: nonces kept locally, EIP-1559 fees where the node has them,
retries on transient RPC errors, receipts awaited with a timeout.

:class:`TxSender` is blocking (web3: deployment, the CLI's direct submission); :class:`AsyncTxSender` is its
twin over the asynchronous transport (chain/rpc.py), for the API's anchoring worker. Both price, number and
broadcast by the same rules (:func:`fee_fields`, :func:`refusal`).

Sending is split in two (:meth:`TxSender.prepare` then :meth:`TxSender.broadcast`) so a caller that must
never lose track of a transaction (the API's anchoring worker) can record its hash before it leaves.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import requests
from hexbytes import HexBytes

from docchain.chain.errors import ChainError, NodeError, TransactionTimeout
from docchain.chain.rpc import JsonRpc, RpcError
from docchain.chain.typed_data import address_of

if TYPE_CHECKING:
    # web3 only for TxSender, imported where it calls: AsyncTxSender's process (the API) reads and sends over
    # chain/rpc.py, and web3's import brings eth_account's (see LocalKey)
    from eth_account.signers.local import LocalAccount
    from eth_typing import ChecksumAddress
    from web3 import Web3
    from web3.types import TxParams, TxReceipt

log = logging.getLogger(__name__)

T = TypeVar("T")

TRANSIENT = (requests.ConnectionError, requests.Timeout, ConnectionError, TimeoutError)
GAS_MARGIN = 1.2  # estimates can fall short when the state changes between estimate and inclusion


@dataclass(frozen=True)
class PreparedTx:
    """A signed transaction not yet (or not known to be) on the node."""

    tx_hash: bytes
    raw: bytes
    nonce: int
    gas: int


class LocalKey:
    """The key both senders sign with: its address at once, eth_account's signing from the first transaction.
    eth_account is imported then and not with this module because it imports py_ecc's BLS pairing (through
    eth_keyfile, about half a second of CPU), which a process that never signs does not need: the API's HTTP
    side, an anchoring process with nothing to send."""

    def __init__(self, account: LocalAccount | bytes) -> None:
        self._account = account
        self.address: str = address_of(account) if isinstance(account, bytes) else str(account.address)

    def sign(self, tx: dict[str, Any], *, nonce: int, gas: int) -> PreparedTx:
        account = self._account
        if isinstance(account, bytes):
            from eth_account import Account

            account = self._account = Account.from_key(account)
        signed = account.sign_transaction({**tx, "gas": gas, "nonce": nonce})
        return PreparedTx(tx_hash=bytes(signed.hash), raw=bytes(signed.raw_transaction), nonce=nonce, gas=gas)


def fee_fields(base_fee: int | None, gas_price: int | None, tip: int, cap: int | None) -> dict[str, int]:
    """The fee fields of a transaction: EIP-1559 from the latest block's base fee, else (a pre-London node)
    legacy ``gasPrice``; never above ``cap`` wei per gas."""
    if base_fee is None:
        price = int(gas_price or 0)
        return {"gasPrice": price if cap is None else min(price, cap)}
    # Twice the base fee survives six consecutive full blocks of base-fee growth.
    max_fee = 2 * base_fee + tip
    if cap is not None:
        max_fee = min(max_fee, cap)
        tip = min(tip, max_fee)
    return {"maxFeePerGas": max_fee, "maxPriorityFeePerGas": tip}


def refusal(message: str) -> Literal["known", "nonce too low", "nonce", "other"]:
    """What a node's refusal of ``eth_sendRawTransaction`` means: it has the transaction already (sending
    twice is harmless); the nonce is used (by this very transaction, if it is mined); another nonce problem
    (the local count is off); or anything else."""
    message = message.lower()
    if "already known" in message or "already imported" in message:
        return "known"
    if "nonce too low" in message:
        return "nonce too low"
    return "nonce" if "nonce" in message else "other"


def with_retries(call: Callable[[], T], what: str, attempts: int = 5, backoff: float = 0.2) -> T:
    """Run ``call``, retrying transient connection errors with exponential backoff."""
    for attempt in range(attempts):
        try:
            return call()
        except TRANSIENT as exc:
            if attempt == attempts - 1:
                raise NodeError(f"{what}: the node is unreachable ({exc.__class__.__name__})") from exc
            delay = backoff * 2**attempt
            log.warning("%s failed (%s); retrying in %.1fs", what, exc.__class__.__name__, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


class TxSender:
    """Signs and sends transactions for ``account``; thread-safe."""

    def __init__(
        self,
        w3: Web3,
        account: LocalAccount | bytes,
        *,
        receipt_timeout: float = 120.0,
        max_fee_cap_wei: int | None = None,
        priority_fee_wei: int = 1_000_000_000,
    ) -> None:
        self.w3 = w3
        self.key = LocalKey(account)
        self.receipt_timeout = receipt_timeout
        self.max_fee_cap_wei = max_fee_cap_wei
        self.priority_fee_wei = priority_fee_wei
        self._lock = threading.Lock()
        self._next_nonce: int | None = None
        self._chain_id: int | None = None

    @property
    def address(self) -> str:
        return self.key.address

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = with_retries(lambda: self.w3.eth.chain_id, "eth_chainId")
        return self._chain_id

    def resync_nonce(self) -> None:
        """Forget the local nonce; the next transaction reads the node's pending count again."""
        with self._lock:
            self._next_nonce = None

    def _fees(self) -> dict[str, int]:
        block = with_retries(lambda: self.w3.eth.get_block("latest"), "eth_getBlockByNumber")
        base = block.get("baseFeePerGas")
        price = None if base is not None else int(with_retries(lambda: self.w3.eth.gas_price, "eth_gasPrice"))
        return fee_fields(None if base is None else int(base), price, self.priority_fee_wei, self.max_fee_cap_wei)

    def prepare(self, to: str | None, data: bytes, *, gas: int | None = None, value: int = 0) -> PreparedTx:
        """Estimate (which surfaces reverts before anything is sent), price and sign a transaction.

        ``to=None`` creates a contract.
        """
        tx: dict[str, Any] = {"from": self.address, "data": data, "value": value}
        if to is not None:
            tx["to"] = to
        if gas is None:
            estimate = with_retries(lambda: self.w3.eth.estimate_gas(cast("TxParams", tx)), "eth_estimateGas")
            gas = int(estimate * GAS_MARGIN)
        fees = self._fees()
        with self._lock:
            if self._next_nonce is None:
                self._next_nonce = with_retries(
                    lambda: self.w3.eth.get_transaction_count(cast("ChecksumAddress", self.address), "pending"),
                    "eth_getTransactionCount",
                )
            nonce = self._next_nonce
            self._next_nonce += 1
        return self.key.sign({**tx, **fees, "chainId": self.chain_id}, nonce=nonce, gas=gas)

    def broadcast(self, prepared: PreparedTx) -> bytes:
        """Hand a prepared transaction to the node; sending the same one twice is harmless."""

        from web3.exceptions import Web3RPCError

        def send() -> bytes:
            try:
                return bytes(self.w3.eth.send_raw_transaction(prepared.raw))
            except (Web3RPCError, ValueError) as exc:  # the node's JSON-RPC error object
                meaning = refusal(str(exc))
                if meaning == "known":
                    return prepared.tx_hash
                if meaning == "nonce too low" and self._receipt_or_none(prepared.tx_hash) is not None:
                    return prepared.tx_hash
                if meaning != "other":
                    self.resync_nonce()
                raise ChainError(f"the node refused the transaction: {exc}") from exc

        return with_retries(send, "eth_sendRawTransaction")

    def _receipt_or_none(self, tx_hash: bytes) -> TxReceipt | None:
        from web3.exceptions import TransactionNotFound

        try:
            return self.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
        except TransactionNotFound:
            return None

    def receipt(self, tx_hash: bytes) -> TxReceipt | None:
        """The receipt if the transaction is mined, else None."""
        return with_retries(lambda: self._receipt_or_none(tx_hash), "eth_getTransactionReceipt")

    def wait(self, tx_hash: bytes, timeout: float | None = None) -> TxReceipt:
        """Wait for the receipt; :class:`TransactionTimeout` after ``timeout`` seconds."""
        from web3.exceptions import TimeExhausted

        limit = self.receipt_timeout if timeout is None else timeout
        try:
            return with_retries(
                lambda: self.w3.eth.wait_for_transaction_receipt(HexBytes(tx_hash), timeout=limit, poll_latency=0.05),
                "waiting for a receipt",
            )
        except TimeExhausted as exc:
            raise TransactionTimeout(f"transaction 0x{tx_hash.hex()} not mined within {limit:.0f}s") from exc

    def transact(self, to: str | None, data: bytes, *, gas: int | None = None, value: int = 0) -> TxReceipt:
        """Prepare, broadcast and wait; raises :class:`ChainError` if the transaction reverted."""
        prepared = self.prepare(to, data, gas=gas, value=value)
        self.broadcast(prepared)
        receipt = self.wait(prepared.tx_hash)
        if receipt["status"] != 1:
            raise ChainError(f"transaction 0x{prepared.tx_hash.hex()} reverted")
        return receipt


class AsyncTxSender:
    """:class:`TxSender`'s asynchronous twin, over :class:`~docchain.chain.rpc.JsonRpc`: the API's anchoring
    worker prices, signs, sends and follows its transactions on the event loop, through the transport that
    the indexer and verification use. ``decode_revert`` turns a revert's data into the contract's own error
    (``eth_estimateGas`` and ``eth_call``); the chain id is the one the caller bound to."""

    def __init__(
        self,
        rpc: JsonRpc,
        account: LocalAccount | bytes,
        chain_id: int,
        *,
        max_fee_cap_wei: int | None = None,
        priority_fee_wei: int = 1_000_000_000,
        decode_revert: Callable[[bytes], ChainError | None] = lambda _data: None,
    ) -> None:
        self.rpc = rpc
        self.key = LocalKey(account)
        self.chain_id = chain_id
        self.max_fee_cap_wei = max_fee_cap_wei
        self.priority_fee_wei = priority_fee_wei
        self.decode_revert = decode_revert
        self._next_nonce: int | None = None

    @property
    def address(self) -> str:
        return self.key.address

    def resync_nonce(self) -> None:
        """Forget the local nonce; the next transaction reads the node's pending count again."""
        self._next_nonce = None

    def _reverted(self, exc: RpcError) -> ChainError:
        data = exc.revert_data
        decoded = None if data is None else self.decode_revert(data)
        return decoded if decoded is not None else exc

    async def _fees(self) -> dict[str, int]:
        block = await self.rpc.call("eth_getBlockByNumber", ["latest", False])
        base = block.get("baseFeePerGas")
        price = None if base is not None else int(await self.rpc.call("eth_gasPrice", []), 16)
        return fee_fields(None if base is None else int(base, 16), price, self.priority_fee_wei, self.max_fee_cap_wei)

    async def call(self, to: str, data: bytes) -> bytes:
        """``eth_call`` at the latest block; a revert raises the contract's error when ``decode_revert`` knows
        it, else :class:`RpcError`."""
        try:
            result = await self.rpc.call("eth_call", [{"to": to, "data": "0x" + data.hex()}, "latest"])
        except RpcError as exc:
            raise self._reverted(exc) from exc
        if result in (None, "0x"):
            raise ChainError(f"no contract answered at {to}")
        return bytes.fromhex(result[2:])

    async def prepare(self, to: str | None, data: bytes, *, gas: int | None = None, value: int = 0) -> PreparedTx:
        """As :meth:`TxSender.prepare`: estimate unless ``gas`` is given (surfacing a revert before anything
        is sent), price, number and sign."""
        tx: dict[str, Any] = {"from": self.address, "data": data, "value": value}
        if to is not None:
            tx["to"] = to
        if gas is None:
            query = {**tx, "data": "0x" + data.hex(), "value": hex(value)}
            try:
                gas = int(int(await self.rpc.call("eth_estimateGas", [query]), 16) * GAS_MARGIN)
            except RpcError as exc:
                raise self._reverted(exc) from exc
        fees = await self._fees()
        if self._next_nonce is None:
            pending = int(await self.rpc.call("eth_getTransactionCount", [self.address, "pending"]), 16)
            if self._next_nonce is None:  # no other prepare counted it meanwhile
                self._next_nonce = pending
        nonce = self._next_nonce
        self._next_nonce += 1
        return self.key.sign({**tx, **fees, "chainId": self.chain_id}, nonce=nonce, gas=gas)

    async def broadcast(self, prepared: PreparedTx) -> bytes:
        """Hand a prepared transaction to the node; sending the same one twice is harmless."""
        try:
            await self.rpc.call("eth_sendRawTransaction", ["0x" + prepared.raw.hex()])
        except RpcError as exc:
            meaning = refusal(exc.message)
            if meaning == "known":
                return prepared.tx_hash
            if meaning == "nonce too low" and await self.receipt(prepared.tx_hash) is not None:
                return prepared.tx_hash
            if meaning != "other":
                self.resync_nonce()
            raise ChainError(f"the node refused the transaction: {exc.message}") from exc
        return prepared.tx_hash

    async def receipt(self, tx_hash: bytes) -> dict[str, Any] | None:
        """The node's receipt (raw JSON-RPC fields) if the transaction is mined, else None."""
        raw = await self.rpc.call("eth_getTransactionReceipt", ["0x" + tx_hash.hex()])
        return None if raw is None or raw.get("blockNumber") is None else dict(raw)
