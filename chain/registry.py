"""Typed binding of the DocumentRegistry contract: :class:`Registry` over web3.py (blocking, reads and writes,
for the CLI and tests) and :class:`RegistryReader`, its asynchronous read twin over the one JSON-RPC transport
(chain/rpc.py), for the API.

Both anchoring modes are bound: direct records (``register``, ``registerBatch``, ``recordOf``) and Merkle roots
(``anchorRoot``, ``verifyMerkleRegistration``, ``revokeMerkleBySig``), whose leaf is a
:class:`SignedRegistration` (its values and the hash of its signature).

Calldata is encoded (and read back, to recover a record's signature from its transaction) and events are
decoded here with eth-abi against the committed ABI; revert data becomes :class:`ContractRevert` (the
contract's custom error by name and arguments) in one place. Each view call is defined once (:class:`_View`:
its calldata and the decoding of its answer) and made by either binding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_abi.exceptions import DecodingError
from eth_utils.address import to_checksum_address

from docchain.chain import artifacts
from docchain.chain.errors import ChainError, ContractRevert, InvalidInput, RegistrationNotFound
from docchain.chain.hashing import keccak256
from docchain.chain.merkle import InclusionProof
from docchain.chain.receipt import Receipt, build_receipt
from docchain.chain.rpc import ChainReader, RpcError, Transport
from docchain.chain.typed_data import Domain, Registration, Revocation, recover
from docchain.chain.values import to_checksum_address as checksum_address
from docchain.chain.values import to_hex

if TYPE_CHECKING:
    # web3 (and the sender, built on it) only for the web3 binding below: the ABI, events and records above serve
    # verification, offline verification among it, which must not import web3 (its import opens a socket)
    from web3 import Web3
    from web3.exceptions import ContractLogicError
    from web3.types import FilterParams, LogReceipt, TxData, TxReceipt

    from docchain.chain.sender import PreparedTx, TxSender

EventKind = Literal["Registered", "Revoked"]
T = TypeVar("T")


@dataclass(frozen=True)
class SignedRegistration:
    registration: Registration
    signature: bytes


@dataclass(frozen=True)
class Record:
    """One (docHash, signer) record as the chain stores it; ``registered_at == 0`` means none."""

    registered_at: int
    block_number: int
    revoked_at: int

    @property
    def exists(self) -> bool:
        return self.registered_at != 0

    @property
    def revoked(self) -> bool:
        return self.revoked_at != 0


@dataclass(frozen=True)
class Anchor:
    """When a Merkle root was anchored, as the chain stores it; ``anchored_at == 0`` means never."""

    anchored_at: int
    block_number: int

    @property
    def exists(self) -> bool:
        return self.anchored_at != 0


@dataclass(frozen=True)
class RootAnchored:
    """A ``RootAnchored`` event: ``sender`` anchored ``root``, the root of ``leaf_count`` signed registrations."""

    root: bytes
    leaf_count: int
    sender: str
    block_number: int
    block_hash: bytes
    tx_hash: bytes
    log_index: int


@dataclass(frozen=True)
class RegistryEvent:
    kind: EventKind
    doc_hash: bytes
    signer: str
    block_number: int
    block_hash: bytes
    tx_hash: bytes
    log_index: int
    metadata_hash: bytes | None = None  # Registered only
    supersedes: bytes | None = None  # Registered only

    def to_json(self) -> dict[str, Any]:
        """The event as the API and the CLI's ``--json`` show it."""
        return {
            "kind": self.kind,
            "docHash": to_hex(self.doc_hash),
            "signer": self.signer,
            "blockNumber": self.block_number,
            "blockHash": to_hex(self.block_hash),
            "txHash": to_hex(self.tx_hash),
            "logIndex": self.log_index,
            "metadataHash": None if self.metadata_hash is None else to_hex(self.metadata_hash),
            "supersedes": None if self.supersedes is None else to_hex(self.supersedes),
        }


def _signature_of(item: dict[str, Any]) -> str:
    def typ(inp: dict[str, Any]) -> str:
        kind = str(inp["type"])
        if kind.startswith("tuple"):
            return "(" + ",".join(typ(c) for c in inp["components"]) + ")" + kind[5:]
        return kind

    return f"{item['name']}({','.join(typ(i) for i in item['inputs'])})"


class _Abi:
    """Selectors, topics and types derived once from the artifact."""

    def __init__(self, abi: list[dict[str, Any]]) -> None:
        self.functions = {i["name"]: i for i in abi if i["type"] == "function"}
        self.by_selector = {keccak256(_signature_of(f).encode())[:4]: name for name, f in self.functions.items()}
        self.errors: dict[bytes, tuple[str, list[str]]] = {}
        for item in abi:
            if item["type"] == "error":
                sig = _signature_of(item)
                self.errors[keccak256(sig.encode())[:4]] = (item["name"], [i["type"] for i in item["inputs"]])
        self.registered_topic = keccak256(b"Registered(bytes32,address,bytes32,bytes32)")
        self.revoked_topic = keccak256(b"Revoked(bytes32,address)")
        self.root_anchored_topic = keccak256(b"RootAnchored(bytes32,uint256,address)")

        self._selectors = {name: selector for selector, name in self.by_selector.items()}
        self._inputs = {
            name: [_signature_of({"name": "", "inputs": [i]})[1:-1] for i in f["inputs"]]
            for name, f in self.functions.items()
        }

    def selector(self, name: str) -> bytes:
        return self._selectors[name]

    def input_types(self, name: str) -> list[str]:
        return self._inputs[name]


_ABI = _Abi(artifacts.load().abi)
REGISTERED_TOPIC = _ABI.registered_topic
REVOKED_TOPIC = _ABI.revoked_topic
ROOT_ANCHORED_TOPIC = _ABI.root_anchored_topic


def decode_call(calldata: bytes) -> tuple[str, dict[str, Any] | None] | None:
    """The registry function ``calldata`` calls and its arguments by name (None when they do not decode), or
    None when it calls no function of the registry."""
    name = _ABI.by_selector.get(calldata[:4])
    if name is None:
        return None
    try:
        values = abi_decode(_ABI.input_types(name), calldata[4:])
    except Exception:
        return name, None
    return name, {i["name"]: v for i, v in zip(_ABI.functions[name]["inputs"], values, strict=True)}


def decode_revert(data: bytes) -> ContractRevert | None:
    """The registry's custom error encoded in revert ``data``, if it is one."""
    known = _ABI.errors.get(data[:4])
    if known is None:
        return None
    name, types = known
    args = tuple(abi_decode(types, data[4:]))
    return ContractRevert(name, tuple(to_checksum_address(a) if isinstance(a, str) else a for a in args))


def _revert_from(exc: ContractLogicError) -> ChainError:
    data = exc.data
    if isinstance(data, dict):  # ganache nests the revert bytes as {"result": "0x..."}
        data = data.get("result") or data.get("data")
    if isinstance(data, str) and data.startswith("0x"):
        decoded = decode_revert(bytes.fromhex(data[2:]))
        if decoded is not None:
            return decoded
    return ChainError(f"the registry reverted: {exc}")


def _retrying(call: Callable[[], T], what: str) -> T:
    """The sender's retries of a node call (chain/sender.py), imported with web3 when the binding first calls."""
    from docchain.chain.sender import with_retries

    return with_retries(call, what)


def encode_call(name: str, *args: Any) -> bytes:
    """Calldata for the registry function ``name``."""
    return _ABI.selector(name) + abi_encode(_ABI.input_types(name), args)


def compact_signature(signature: bytes) -> tuple[bytes, bytes]:
    """EIP-2098: a 65-byte ``r ‖ s ‖ v`` signature as ``(r, vs)``, the parity of v in the top bit of s."""
    if len(signature) != 65 or signature[64] not in (27, 28):
        raise InvalidInput("a batch entry needs a 65-byte ECDSA signature with v = 27 or 28")
    vs = int.from_bytes(signature[32:64], "big") | ((signature[64] - 27) << 255)
    return signature[:32], vs.to_bytes(32, "big")


def encode_register_batch(items: Sequence[SignedRegistration]) -> bytes:
    """Calldata of ``registerBatch``; every entry must carry an ECDSA signature (contract wallets use register).

    Every field of an entry is static, so the ABI encoding is the array's offset and length, then seven
    words per entry. Written directly: eth_abi's generic encoder took ~50 µs an entry, the largest share
    of the pipeline's CPU per document."""
    parts = [_ABI.selector("registerBatch"), (32).to_bytes(32, "big"), len(items).to_bytes(32, "big")]
    for s in items:
        parts += (s.registration.encode_data(), *compact_signature(s.signature))
    return b"".join(parts)


def expand_signature(r: bytes, vs: bytes) -> bytes:
    """EIP-2098 back to 65 bytes: ``(r, vs)`` as ``r ‖ s ‖ v`` with v = 27 + the top bit of vs."""
    word = int.from_bytes(vs, "big")
    s = word & ((1 << 255) - 1)
    return bytes(r) + s.to_bytes(32, "big") + bytes([27 + (word >> 255)])


def _registration(fields: tuple[Any, ...]) -> Registration:
    doc_hash, signer, metadata, supersedes, deadline = fields
    return Registration(
        doc_hash=bytes(doc_hash),
        signer=checksum_address(bytes.fromhex(signer[2:])),
        deadline=int(deadline),
        metadata_hash=bytes(metadata),
        supersedes=bytes(supersedes),
    )


def _signed_registrations(calldata: bytes) -> tuple[str, list[SignedRegistration]]:
    """The function called by ``calldata`` (register or registerBatch) and the signed registrations it carries,
    in calldata order; :class:`RegistrationNotFound` for any other calldata."""
    selector = calldata[:4]
    name = _ABI.by_selector.get(selector)
    if name not in ("register", "registerBatch"):
        raise RegistrationNotFound(
            f"the transaction's calldata calls function 0x{selector.hex()}, neither register nor registerBatch of "
            "the registry"
        )
    try:
        # not strict, as Solidity's own calldata decoding is not (padding and trailing bytes are not checked)
        args = abi_decode(_ABI.input_types(name), calldata[4:], strict=False)
    except (DecodingError, ValueError, OverflowError) as exc:
        raise RegistrationNotFound(f"the transaction's {name} calldata does not decode: {exc}") from exc
    if name == "register":
        reg, signature = args
        return name, [SignedRegistration(_registration(reg), bytes(signature))]
    return name, [SignedRegistration(_registration(reg), expand_signature(r, vs)) for reg, r, vs in args[0]]


def signed_registration_in_calldata(calldata: bytes, event: RegistryEvent, domain: Domain) -> SignedRegistration:
    """The signed registration that produced ``event`` (a Registered event), read from the calldata of the
    transaction that emitted it: a direct call of ``register`` or ``registerBatch`` on the registry.

    The registration returned is exactly the one recorded: its docHash, signer, metadataHash and supersedes are
    the event's (in a batch the first entry for the (docHash, signer) is the recorded one: later ones are
    skipped). A batch signature (EIP-2098 ``r, vs``) is returned expanded to 65 bytes and must recover the signer
    under ``domain``; a ``register`` signature is returned as given, since one that does not recover is a
    contract wallet's (ERC-1271), which only the chain can check.
    Anything else — another function, as when a multisig or a forwarder called the registry, calldata without
    this registration, a signature of another domain — raises :class:`RegistrationNotFound`.
    """
    if event.kind != "Registered":
        raise InvalidInput(f"a {event.kind} event records no signed registration")
    name, items = _signed_registrations(bytes(calldata))
    return _recorded(name, items, event, domain, must_recover=name == "registerBatch")


@cache
def _envelopes_abi() -> _Abi:
    """DocumentEnvelopes' ABI, whose ``sign(bytes32 id, Registration reg, bytes signature)`` calls the registry's
    register with (reg, signature) as given: its calldata holds the recorded registration as a register call's
    does. Loaded on first use, since only a transaction sent to another contract than the registry needs it."""
    return _Abi(artifacts.load("DocumentEnvelopes").abi)


def _calls_envelopes_sign(calldata: bytes) -> bool:
    return _envelopes_abi().by_selector.get(bytes(calldata[:4])) == "sign"


def signed_registration_in_envelope_call(
    calldata: bytes, event: RegistryEvent, domain: Domain, *, trusted: bool = False
) -> SignedRegistration:
    """The signed registration behind ``event`` (a Registered event) read from the calldata of a transaction sent
    to an envelopes contract: ``sign(id, reg, signature)`` (contracts/DocumentEnvelopes.sol), as
    :func:`signed_registration_in_calldata` reads ``register``.

    Any contract may have a function of that selector, and which contract the transaction was sent to is not
    checked here (that would need its code): so the signature must recover the signer under ``domain``, which
    makes the pair a proof of itself whatever calldata it came from. A contract wallet's signature (ERC-1271)
    through an envelope is therefore :class:`RegistrationNotFound`, as is any other calldata, unless the caller
    knows the transaction was sent to an envelopes contract it trusts (``trusted``: the API's own, deployed
    beside its registry), whose ``sign`` hands the registry the pair as given, for the registry to check."""
    if event.kind != "Registered":
        raise InvalidInput(f"a {event.kind} event records no signed registration")
    if not _calls_envelopes_sign(calldata):
        raise RegistrationNotFound(
            f"the transaction's calldata calls function 0x{bytes(calldata[:4]).hex()}, not sign of the envelopes "
            "contract"
        )
    try:
        # not strict, as Solidity's own calldata decoding is not
        _, reg, signature = abi_decode(_envelopes_abi().input_types("sign"), bytes(calldata[4:]), strict=False)
    except (DecodingError, ValueError, OverflowError) as exc:
        raise RegistrationNotFound(f"the transaction's sign calldata does not decode: {exc}") from exc
    items = [SignedRegistration(_registration(reg), bytes(signature))]
    return _recorded("envelope sign", items, event, domain, must_recover=not trusted)


def _recorded(
    name: str, items: list[SignedRegistration], event: RegistryEvent, domain: Domain, *, must_recover: bool
) -> SignedRegistration:
    """The first of ``items`` that is ``event``'s registration, checked against the event (and its signature
    against ``domain`` when ``must_recover``)."""
    found = next(
        (i for i in items if i.registration.doc_hash == event.doc_hash and i.registration.signer == event.signer),
        None,
    )
    what = f"{to_hex(event.doc_hash)} by {event.signer}"
    if found is None:
        raise RegistrationNotFound(f"the transaction's {name} call carries no registration of {what}")
    reg = found.registration
    if (reg.metadata_hash, reg.supersedes) != (event.metadata_hash, event.supersedes):
        raise RegistrationNotFound(
            f"the transaction's registration of {what} differs from the recorded event (metadataHash or supersedes)"
        )
    if must_recover:
        try:
            recovered: str | None = recover(domain, reg, found.signature)
        except InvalidInput:
            recovered = None
        if recovered != reg.signer:
            kind = "batch signature" if name == "registerBatch" else f"{name} signature"
            raise RegistrationNotFound(
                f"the {kind} of {what} does not recover the signer under the EIP-712 domain of "
                f"chain {domain.chain_id} / {domain.verifying_contract}"
            )
    return found


def decode_log(log: LogReceipt) -> RegistryEvent | None:
    """Decode one registry log; None for a log the registry does not emit."""
    topics = [bytes(t) for t in log["topics"]]
    if not topics or topics[0] not in (_ABI.registered_topic, _ABI.revoked_topic):
        return None
    data = bytes(log["data"])
    registered = topics[0] == _ABI.registered_topic
    return RegistryEvent(
        kind="Registered" if registered else "Revoked",
        doc_hash=topics[1],
        signer=checksum_address(topics[2][12:]),  # memoised: the indexer decodes hundreds per batch
        block_number=int(log["blockNumber"]),
        block_hash=bytes(log["blockHash"]),
        tx_hash=bytes(log["transactionHash"]),
        log_index=int(log["logIndex"]),
        metadata_hash=data[:32] if registered else None,
        supersedes=data[32:64] if registered else None,
    )


def decode_root_anchored(log: LogReceipt) -> RootAnchored | None:
    """Decode one ``RootAnchored`` log; None for any other log."""
    topics = [bytes(t) for t in log["topics"]]
    if len(topics) != 3 or topics[0] != _ABI.root_anchored_topic:
        return None
    return RootAnchored(
        root=topics[1],
        leaf_count=int.from_bytes(bytes(log["data"])[:32], "big"),
        sender=checksum_address(topics[2][12:]),
        block_number=int(log["blockNumber"]),
        block_hash=bytes(log["blockHash"]),
        tx_hash=bytes(log["transactionHash"]),
        log_index=int(log["logIndex"]),
    )


def _log_receipt(raw: dict[str, Any]) -> LogReceipt:
    """A log as a node answers it over JSON-RPC (hex strings) in web3's formatted shape."""
    return {  # type: ignore[typeddict-item]
        "topics": [bytes.fromhex(t[2:]) for t in raw["topics"]],
        "data": bytes.fromhex(raw["data"][2:]),
        "blockNumber": int(raw["blockNumber"], 16),
        "blockHash": bytes.fromhex(raw["blockHash"][2:]),
        "transactionHash": bytes.fromhex(raw["transactionHash"][2:]),
        "logIndex": int(raw["logIndex"], 16),
    }


def decode_rpc_log(raw: dict[str, Any]) -> RegistryEvent | None:
    """:func:`decode_log` of a log as a node answers it over JSON-RPC (hex strings, not web3's formatted
    values)."""
    return decode_log(_log_receipt(raw))


def decode_rpc_root_anchored(raw: dict[str, Any]) -> RootAnchored | None:
    """:func:`decode_root_anchored` of a log as a node answers it over JSON-RPC."""
    return decode_root_anchored(_log_receipt(raw))


@dataclass(frozen=True)
class _View(Generic[T]):
    """One view call of the registry: its calldata, the types of its answer and what they become."""

    data: bytes
    out_types: list[str]
    decode: Callable[[tuple[Any, ...]], T]

    def answer(self, result: bytes, where: str) -> T:
        if not result:  # an eth_call to an address without code answers nothing
            raise ChainError(f"no registry at {where}")
        return self.decode(tuple(abi_decode(self.out_types, result)))


def _record_view(doc_hash: bytes, signer: str) -> _View[Record]:
    return _View(encode_call("recordOf", doc_hash, signer), ["(uint48,uint48,uint48)"], lambda v: Record(*v[0]))


def _is_valid_registration_view(reg: Registration, signature: bytes) -> _View[bool]:
    return _View(encode_call("isValidRegistration", reg.as_tuple(), signature), ["bool"], lambda v: bool(v[0]))


def _nonce_view(signer: str) -> _View[int]:
    return _View(encode_call("nonces", signer), ["uint256"], lambda v: int(v[0]))


def _anchor_view(root: bytes) -> _View[Anchor]:
    return _View(encode_call("anchorOf", root), ["(uint48,uint48)"], lambda v: Anchor(*v[0]))


def merkle_leaf_values(signed: SignedRegistration) -> tuple[bytes, str, bytes, bytes]:
    """The values a Merkle leaf commits to, as the contract's ``MerkleLeaf`` tuple: docHash, signer,
    metadataHash and keccak256 of the signature."""
    reg = signed.registration
    return (reg.doc_hash, reg.signer, reg.metadata_hash, keccak256(signed.signature))


def _leaf_hash_view(signed: SignedRegistration) -> _View[bytes]:
    return _View(encode_call("leafHash", merkle_leaf_values(signed)), ["bytes32"], lambda v: bytes(v[0]))


def _verify_merkle_view(signed: SignedRegistration, inclusion: InclusionProof) -> _View[Record]:
    data = encode_call(
        "verifyMerkleRegistration",
        inclusion.root,
        signed.registration.as_tuple(),
        signed.signature,
        list(inclusion.proof),
    )
    return _View(data, ["(uint48,uint48,uint48)"], lambda v: Record(*v[0]))


def _registration_sent_to(
    registry: str, domain: Domain, event: RegistryEvent, to: str | None, calldata: bytes, envelopes: str | None = None
) -> SignedRegistration:
    """The signed registration behind ``event`` in its transaction (sent to ``to`` with ``calldata``): the
    registry's own ``register`` / ``registerBatch``, or an envelopes contract's ``sign``, whose arguments carry
    it (``envelopes``: the envelopes contract the caller trusts, whose ``sign`` may carry a contract wallet's
    signature). A transaction sent to any other contract (a multisig, a forwarder) carries that contract's
    calldata."""
    to = None if not to else to_checksum_address(to)  # a node answers lower case, web3 checksummed
    if to == registry:
        return signed_registration_in_calldata(calldata, event, domain)
    if _calls_envelopes_sign(calldata):
        trusted = envelopes is not None and to == to_checksum_address(envelopes)
        return signed_registration_in_envelope_call(calldata, event, domain, trusted=trusted)
    raise RegistrationNotFound(
        f"transaction {to_hex(event.tx_hash)} was sent to {to or 'no address'}, not to the registry {registry}: "
        "it called the registry through another contract (a multisig, a forwarder), whose calldata does not "
        "hold the signed registration in a form docchain reads"
    )


class Registry:
    """A deployed DocumentRegistry. Reads need only ``w3``; writes need a :class:`TxSender`."""

    def __init__(self, w3: Web3, address: str, sender: TxSender | None = None) -> None:
        self.w3 = w3
        self.address = to_checksum_address(address)
        self.sender = sender

    @cached_property
    def chain_id(self) -> int:
        return int(_retrying(lambda: self.w3.eth.chain_id, "eth_chainId"))

    @cached_property
    def domain(self) -> Domain:
        return Domain(chain_id=self.chain_id, verifying_contract=self.address)

    # ------------------------------------------------------------------ reads

    def _call(self, data: bytes, out_types: list[str]) -> tuple[Any, ...]:
        return self._view(_View(data, out_types, lambda values: values))

    def _view(self, view: _View[T]) -> T:
        from web3.exceptions import ContractLogicError

        def call() -> bytes:
            try:
                return bytes(self.w3.eth.call({"to": self.address, "data": view.data}))
            except ContractLogicError as exc:
                raise _revert_from(exc) from exc

        return view.answer(_retrying(call, "eth_call"), f"{self.address} on chain {self.chain_id}")

    def record(self, doc_hash: bytes, signer: str) -> Record:
        return self._view(_record_view(doc_hash, signer))

    def is_valid_registration(self, reg: Registration, signature: bytes) -> bool:
        return self._view(_is_valid_registration_view(reg, signature))

    def registration_digest(self, reg: Registration) -> bytes:
        (value,) = self._call(encode_call("registrationDigest", reg.as_tuple()), ["bytes32"])
        return bytes(value)

    def domain_separator(self) -> bytes:
        (value,) = self._call(encode_call("DOMAIN_SEPARATOR"), ["bytes32"])
        return bytes(value)

    def nonce(self, signer: str) -> int:
        return self._view(_nonce_view(signer))

    def anchor(self, root: bytes) -> Anchor:
        return self._view(_anchor_view(root))

    def leaf_hash(self, signed: SignedRegistration) -> bytes:
        """The contract's leaf hash of ``signed``, for tree builders to check themselves against."""
        return self._view(_leaf_hash_view(signed))

    def verify_merkle_registration(self, signed: SignedRegistration, inclusion: InclusionProof) -> Record:
        """One ``eth_call`` confirming a Merkle-anchored registration: the record's time and block are the
        root's anchoring, ``revoked_at`` its revocation. Raises :class:`ContractRevert` (``RootNotAnchored``,
        ``NotInTree``, ``ExpiredSignature``, ``InvalidSignature``) when it is not confirmed."""
        return self._view(_verify_merkle_view(signed, inclusion))

    def root_events(
        self, from_block: int, to_block: int | Literal["latest"] = "latest", *, root: bytes | None = None
    ) -> list[RootAnchored]:
        """RootAnchored events in a block range, filtered by the indexed root."""
        topics: list[Any] = [to_hex(_ABI.root_anchored_topic), to_hex(root) if root else None]
        params: FilterParams = {"address": self.address, "fromBlock": from_block, "toBlock": to_block, "topics": topics}
        logs = _retrying(lambda: self.w3.eth.get_logs(params), "eth_getLogs")
        return [e for e in map(decode_root_anchored, logs) if e is not None]

    def roots_in(self, receipt: TxReceipt) -> list[RootAnchored]:
        return [
            e
            for log in receipt["logs"]
            if log["address"] == self.address
            if (e := decode_root_anchored(log)) is not None
        ]

    def events(
        self,
        from_block: int,
        to_block: int | Literal["latest"] = "latest",
        *,
        doc_hash: bytes | None = None,
        signer: str | None = None,
    ) -> list[RegistryEvent]:
        """Registered and Revoked events in a block range, filtered by the indexed docHash / signer."""
        topics: list[Any] = [[to_hex(_ABI.registered_topic), to_hex(_ABI.revoked_topic)]]
        topics.append(to_hex(doc_hash) if doc_hash else None)
        topics.append(to_hex(bytes(12) + bytes.fromhex(signer[2:])) if signer else None)
        params: FilterParams = {
            "address": self.address,
            "fromBlock": from_block,
            "toBlock": to_block,
            "topics": topics,
        }
        logs = _retrying(lambda: self.w3.eth.get_logs(params), "eth_getLogs")
        return [e for e in map(decode_log, logs) if e is not None]

    def events_in(self, receipt: TxReceipt) -> list[RegistryEvent]:
        return [e for log in receipt["logs"] if log["address"] == self.address if (e := decode_log(log)) is not None]

    def signed_registration_of(self, event: RegistryEvent) -> SignedRegistration:
        """The signed registration behind a Registered ``event``, read from its transaction's calldata (see
        :func:`signed_registration_in_calldata`), or from an envelopes contract's ``sign`` call
        (:func:`signed_registration_in_envelope_call`). A transaction sent to another contract (a multisig, a
        forwarder) carries that contract's calldata, so it raises :class:`RegistrationNotFound` rather than guess."""
        from web3.exceptions import TransactionNotFound

        tx_hash = to_hex(event.tx_hash)

        def fetch() -> TxData:
            try:
                return self.w3.eth.get_transaction(tx_hash)
            except TransactionNotFound as exc:
                raise RegistrationNotFound(f"transaction {tx_hash} is not known to the node") from exc

        tx = _retrying(fetch, "eth_getTransactionByHash")
        return _registration_sent_to(self.address, self.domain, event, tx.get("to"), bytes(tx["input"]))

    # ------------------------------------------------------------------ writes

    def _sender(self) -> TxSender:
        if self.sender is None:
            raise ChainError("this registry binding is read-only: no sender configured")
        return self.sender

    def _transact(self, data: bytes) -> TxReceipt:
        from web3.exceptions import ContractLogicError

        try:
            return self._sender().transact(self.address, data)
        except ContractLogicError as exc:
            raise _revert_from(exc) from exc

    def simulate(self, data: bytes, out_types: list[str]) -> tuple[Any, ...]:
        """Execute a call once (``eth_call``) and decode its result; a revert raises :class:`ContractRevert`.
        Surfaces a batch's culprit as estimating gas would, without eth_estimateGas's repeated executions."""
        return self._call(data, out_types)

    def prepare(self, data: bytes, gas: int | None = None) -> PreparedTx:
        """Sign a registry transaction without sending it (see :meth:`TxSender.prepare`); the gas is
        estimated unless given."""
        from web3.exceptions import ContractLogicError

        try:
            return self._sender().prepare(self.address, data, gas=gas)
        except ContractLogicError as exc:
            raise _revert_from(exc) from exc

    def receipt_for(
        self, signed: SignedRegistration, tx: TxReceipt, *, file_name: str | None = None, file_size: int | None = None
    ) -> Receipt:
        """The receipt of ``signed``, recorded by the mined transaction ``tx``."""
        block = _retrying(lambda: self.w3.eth.get_block(tx["blockNumber"]), "eth_getBlockByNumber")
        return build_receipt(
            domain=self.domain,
            registration=signed.registration,
            signature=signed.signature,
            tx_hash=bytes(tx["transactionHash"]),
            block_number=int(tx["blockNumber"]),
            block_hash=bytes(block["hash"]),
            timestamp=int(block["timestamp"]),
            file_name=file_name,
            file_size=file_size,
        )

    def register(self, signed: SignedRegistration) -> TxReceipt:
        return self._transact(encode_call("register", signed.registration.as_tuple(), signed.signature))

    def register_batch(self, items: Iterable[SignedRegistration]) -> TxReceipt:
        return self._transact(encode_register_batch(list(items)))

    def revoke(self, doc_hash: bytes) -> TxReceipt:
        """Revoke the sender's own record (the sender's key is the signer)."""
        return self._transact(encode_call("revoke", doc_hash))

    def anchor_root(self, root: bytes, leaf_count: int) -> TxReceipt:
        return self._transact(encode_call("anchorRoot", root, leaf_count))

    def revoke_merkle_by_sig(
        self, signed: SignedRegistration, inclusion: InclusionProof, revocation: Revocation, signature: bytes
    ) -> TxReceipt:
        """Revoke the Merkle-anchored ``signed`` with a ``Revocation`` of the same (docHash, signer) signed by its
        signer (``signature``)."""
        reg = signed.registration
        if (revocation.doc_hash, revocation.signer) != (reg.doc_hash, reg.signer):
            raise InvalidInput("the revocation names another document or signer than the anchored registration")
        return self._transact(
            encode_call(
                "revokeMerkleBySig",
                inclusion.root,
                merkle_leaf_values(signed),
                list(inclusion.proof),
                revocation.nonce,
                revocation.deadline,
                signature,
            )
        )

    def revoke_by_sig(self, revocation: Revocation, signature: bytes) -> TxReceipt:
        return self._transact(
            encode_call(
                "revokeBySig",
                revocation.doc_hash,
                revocation.signer,
                revocation.nonce,
                revocation.deadline,
                signature,
            )
        )


class RegistryReader:
    """:class:`Registry`'s reads over the asynchronous JSON-RPC transport (chain/rpc.py), at the node's latest
    state: the API's acceptance and revocation checks and its nonces, on the event loop. A node that is down
    is :class:`NodeError`; a revert is the registry's own :class:`ContractRevert` when it is one."""

    def __init__(self, rpc: Transport, address: str, chain_id: int) -> None:
        self.chain = ChainReader(rpc)
        self.address = checksum_address(bytes.fromhex(address[2:]))
        self.domain = Domain(chain_id=chain_id, verifying_contract=self.address)

    async def _view(self, view: _View[T]) -> T:
        try:
            result = await self.chain.call(self.address, view.data)
        except RpcError as exc:
            data = exc.revert_data
            revert = None if data is None else decode_revert(data)
            if revert is not None:
                raise revert from exc
            raise
        return view.answer(result, f"{self.address} on chain {self.domain.chain_id}")

    async def record(self, doc_hash: bytes, signer: str) -> Record:
        return await self._view(_record_view(doc_hash, signer))

    async def nonce(self, signer: str) -> int:
        return await self._view(_nonce_view(signer))

    async def anchor(self, root: bytes) -> Anchor:
        return await self._view(_anchor_view(root))

    async def verify_merkle_registration(self, signed: SignedRegistration, inclusion: InclusionProof) -> Record:
        """As :meth:`Registry.verify_merkle_registration`, at the node's latest state."""
        return await self._view(_verify_merkle_view(signed, inclusion))

    async def is_valid_registration(self, reg: Registration, signature: bytes) -> bool:
        """Whether the registry accepts ``signature`` for ``reg`` (ECDSA, or the signer's ERC-1271 answer)."""
        return await self._view(_is_valid_registration_view(reg, signature))

    async def has_code(self, address: str) -> bool:
        """Whether ``address`` is a contract (a wallet that checks signatures itself), not a key's account."""
        return bool(await self.chain.code(address))

    async def signed_registration_of(self, event: RegistryEvent, envelopes: str | None = None) -> SignedRegistration:
        """As :meth:`Registry.signed_registration_of`: the signed registration behind a Registered ``event``,
        read from the calldata of its transaction to the registry or an envelopes contract (``envelopes``: the
        one the caller trusts, through which a contract wallet's signature is read back too)."""
        tx = await self.chain.transaction(event.tx_hash)
        if tx is None:
            raise RegistrationNotFound(f"transaction {to_hex(event.tx_hash)} is not known to the node")
        return _registration_sent_to(
            self.address, self.domain, event, tx.get("to"), bytes.fromhex(tx["input"][2:]), envelopes
        )
