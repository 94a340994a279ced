"""Binding of a deployed DocumentEnvelopes contract: :class:`Envelopes` over web3.py (blocking, reads and writes,
for the CLI and tests), :class:`EnvelopesReader`, its asynchronous read twin over the one JSON-RPC transport
(chain/rpc.py), for the API, and :func:`deploy`.

What is sent and read is defined once in chain/envelopes.py (calldata, views, events, reverts); this module only
makes the calls. A revert becomes the contract's custom error (:class:`ContractRevert`) by name and arguments,
the registry's errors included, which ``sign`` passes through.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from eth_abi.abi import encode as abi_encode

from docchain.chain import artifacts
from docchain.chain import envelopes as env
from docchain.chain.errors import ChainError
from docchain.chain.registry import SignedRegistration
from docchain.chain.rpc import ChainReader, Log, RpcError, Transport
from docchain.chain.sender import TxSender, with_retries
from docchain.chain.typed_data import Domain
from docchain.chain.values import parse_address, to_checksum_address, to_hex

if TYPE_CHECKING:
    # web3 only for the blocking binding, imported where it calls: EnvelopesReader serves the API, which reads
    # over chain/rpc.py and does not import web3 (nor eth_account, which web3 imports)
    from web3 import Web3
    from web3.exceptions import ContractLogicError
    from web3.types import FilterParams, LogReceipt, TxReceipt

T = TypeVar("T")
Getter = Literal["DOMAIN_SEPARATOR", "ENVELOPE_REQUEST_TYPEHASH", "DECLINE_TYPEHASH", "VOID_TYPEHASH"]


def _revert_from(exc: ContractLogicError) -> ChainError:
    data = exc.data
    if isinstance(data, dict):  # ganache nests the revert bytes as {"result": "0x..."}
        data = data.get("result") or data.get("data")
    if isinstance(data, str) and data.startswith("0x"):
        decoded = env.decode_revert(bytes.fromhex(data[2:]))
        if decoded is not None:
            return decoded
    return ChainError(f"the envelope contract reverted: {exc}")


def _log(log: LogReceipt) -> Log:
    return Log(
        address=to_checksum_address(bytes.fromhex(str(log["address"])[2:])),
        topics=tuple(bytes(t) for t in log["topics"]),
        data=bytes(log["data"]),
        block_number=int(log["blockNumber"]),
        block_hash=bytes(log["blockHash"]),
        tx_hash=bytes(log["transactionHash"]),
        log_index=int(log["logIndex"]),
    )


def deploy_tx(sender: TxSender, registry: str) -> TxReceipt:
    """Deploy a DocumentEnvelopes counting the registrations of ``registry``; returns the mined receipt, whose
    ``contractAddress`` is set."""
    artifact = artifacts.load("DocumentEnvelopes")
    constructor = abi_encode(["address"], [parse_address(registry, "registry")])
    from web3.exceptions import ContractLogicError

    try:
        receipt = sender.transact(None, artifact.bytecode + constructor)
    except ContractLogicError as exc:
        raise _revert_from(exc) from exc
    if not receipt.get("contractAddress"):
        raise ChainError("the envelope contract's deployment produced no contract")
    return receipt


def deploy(sender: TxSender, registry: str) -> str:
    """Deploy a DocumentEnvelopes counting the registrations of ``registry``; returns its address."""
    return parse_address(str(deploy_tx(sender, registry)["contractAddress"]))


class Envelopes:
    """A deployed DocumentEnvelopes. Reads need only ``w3``; writes need a :class:`TxSender`."""

    def __init__(self, w3: Web3, address: str, sender: TxSender | None = None) -> None:
        self.w3 = w3
        self.address = parse_address(address, "envelopes")
        self.sender = sender

    @cached_property
    def chain_id(self) -> int:
        return int(with_retries(lambda: self.w3.eth.chain_id, "eth_chainId"))

    @cached_property
    def domain(self) -> Domain:
        """The EIP-712 domain requests, declines and voids are signed under."""
        return env.domain(self.chain_id, self.address)

    # ------------------------------------------------------------------ reads

    def view(self, view: env.View[T]) -> T:
        """Make one view call (chain/envelopes.py defines each); a revert is the contract's custom error."""

        from web3.exceptions import ContractLogicError

        def call() -> bytes:
            try:
                return bytes(self.w3.eth.call({"to": self.address, "data": view.data}))
            except ContractLogicError as exc:
                raise _revert_from(exc) from exc

        return view.answer(with_retries(call, "eth_call"), f"{self.address} on chain {self.chain_id}")

    def state(self, envelope: bytes) -> env.EnvelopeState:
        """The envelope's state; ``status`` NONE when no envelope has this id."""
        return self.view(env.envelope_view(envelope))

    def envelope_id(self, request: env.EnvelopeRequest) -> bytes:
        """The contract's id of ``request`` (equal to :func:`envelopes.envelope_id`)."""
        return self.view(env.envelope_id_view(request))

    def digest(self, message: env.Decline | env.Void) -> bytes:
        """The contract's EIP-712 digest of a decline or a void (equal to :func:`envelopes.digest`)."""
        return self.view(env.digest_view(message))

    def getter(self, name: Getter) -> bytes:
        """A bytes32 getter of the contract: the domain separator or a typehash."""
        return self.view(env.bytes32_getter(name))

    def registry(self) -> str:
        """The registry whose registrations the envelopes count."""
        return self.view(env.registry_view())

    def events(
        self, from_block: int, to_block: int | Literal["latest"] = "latest", *, envelope: bytes | None = None
    ) -> list[env.EnvelopeEvent]:
        """Every envelope event in a block range, in chain order; only envelope ``envelope``'s when given."""
        topics: list[Any] = [[to_hex(t) for t in env.TOPICS], to_hex(envelope) if envelope else None]
        params: FilterParams = {"address": self.address, "fromBlock": from_block, "toBlock": to_block, "topics": topics}
        logs = with_retries(lambda: self.w3.eth.get_logs(params), "eth_getLogs")
        return [e for e in (env.decode_log(_log(x)) for x in logs) if e is not None]

    def created_for(
        self, doc_hash: bytes, from_block: int, to_block: int | Literal["latest"] = "latest"
    ) -> list[env.EnvelopeCreated]:
        """The envelopes created for ``doc_hash`` in a block range, oldest first (the document's hash is the
        ``EnvelopeCreated`` event's second indexed topic, so the node filters them)."""
        topics: list[Any] = [to_hex(env.CREATED_TOPIC), None, to_hex(doc_hash)]
        params: FilterParams = {"address": self.address, "fromBlock": from_block, "toBlock": to_block, "topics": topics}
        logs = with_retries(lambda: self.w3.eth.get_logs(params), "eth_getLogs")
        return [e for e in (env.decode_log(_log(x)) for x in logs) if isinstance(e, env.EnvelopeCreated)]

    def events_in(self, receipt: TxReceipt) -> list[env.EnvelopeEvent]:
        """The envelope events a mined transaction emitted."""
        return [
            e for x in receipt["logs"] if x["address"] == self.address if (e := env.decode_log(_log(x))) is not None
        ]

    # ------------------------------------------------------------------ writes

    def _transact(self, data: bytes) -> TxReceipt:
        if self.sender is None:
            raise ChainError("this envelopes binding is read-only: no sender configured")
        from web3.exceptions import ContractLogicError

        try:
            return self.sender.transact(self.address, data)
        except ContractLogicError as exc:
            raise _revert_from(exc) from exc

    def create(self, request: env.EnvelopeRequest, signature: bytes) -> TxReceipt:
        """Create the envelope ``request`` describes, signed by its requester."""
        return self._transact(env.encode_create(request, signature))

    def sign(self, envelope: bytes, signed: SignedRegistration) -> TxReceipt:
        """Register ``signed`` (a :class:`SignedRegistration` of the envelope's document) through the envelope,
        which counts it."""
        return self._transact(env.encode_sign(envelope, signed.registration, signed.signature))

    def count_registration(self, envelope: bytes, signer: str) -> TxReceipt:
        """Count ``signer``'s direct registration of the envelope's document."""
        return self._transact(env.encode_count_registration(envelope, signer))

    def decline(self, decline: env.Decline, signature: bytes) -> TxReceipt:
        return self._transact(env.encode_decline(decline, signature))

    def void(self, void: env.Void, signature: bytes) -> TxReceipt:
        return self._transact(env.encode_void(void, signature))


class EnvelopesReader:
    """:class:`Envelopes`' reads over the asynchronous JSON-RPC transport, at the node's latest state. A node that
    is down is :class:`NodeError`; a revert is the contract's own :class:`ContractRevert` when it is one."""

    def __init__(self, rpc: Transport, address: str, chain_id: int) -> None:
        self.chain = ChainReader(rpc)
        self.address = parse_address(address, "envelopes")
        self.domain = env.domain(chain_id, self.address)

    async def view(self, view: env.View[T]) -> T:
        """As :meth:`Envelopes.view`, at the node's latest state."""
        try:
            result = await self.chain.call(self.address, view.data)
        except RpcError as exc:
            data = exc.revert_data
            revert = None if data is None else env.decode_revert(data)
            if revert is not None:
                raise revert from exc
            raise
        return view.answer(result, f"{self.address} on chain {self.domain.chain_id}")

    async def state(self, envelope: bytes) -> env.EnvelopeState:
        return await self.view(env.envelope_view(envelope))

    async def events(self, envelope: bytes, from_block: int = 0) -> list[env.EnvelopeEvent]:
        """Envelope ``envelope``'s events from ``from_block`` to the latest block, in chain order (every event of
        the contract has the envelope's id as its first indexed topic, so the node filters them)."""
        head = await self.chain.head()
        logs = await self.chain.logs(self.address, [None, envelope], from_block, head.number)
        return [e for e in (env.decode_log(x) for x in logs) if e is not None]

    async def history(self, envelope: bytes, from_block: int = 0) -> env.History:
        """Envelope ``envelope``'s :class:`~docchain.chain.envelopes.History` from its events."""
        return env.history(await self.events(envelope, from_block))
