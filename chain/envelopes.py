"""Multi-party signing envelopes (contracts/DocumentEnvelopes.sol), I/O-free: the EIP-712 types a requester and
signers sign (``EnvelopeRequest``, ``Decline``, ``Void``), the envelope id, local checks of a request, and the
encoding of calls and decoding of views, events and reverts. chain/envelopes_contract.py makes the calls.
Digests, signatures and the JSON a wallet signs are chain/typed_data.py's (``digest``, ``sign`` and
``typed_data`` take these types as they take the registry's), re-exported here.

An envelope's id is the EIP-712 digest of its request, so it is known before the request is mined and never
changes with a reorg. A signer signs an envelope with an ordinary registry ``Registration`` (chain/typed_data.py),
which the envelope contract relays to the registry after checking the envelope's rules.

The envelopes' domain is its own (name ``docchain envelopes``, the envelope contract's address): a request,
decline or void signature is bound to that contract and chain, and is never a registry signature.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_abi.exceptions import DecodingError

from docchain.chain import artifacts
from docchain.chain.errors import ChainError, ContractRevert, InvalidInput
from docchain.chain.hashing import keccak256
from docchain.chain.typed_data import Domain, Registration, digest, sign, typed_data
from docchain.chain.values import ZERO32, parse_address, to_checksum_address, to_hex

if TYPE_CHECKING:
    from docchain.chain.registry import Record
    from docchain.chain.rpc import Log

NAME = "docchain envelopes"
VERSION = "1"
# The contract's bitmap of counted signers has 16 bits.
MAX_SIGNERS = 16
# uint48, the width the contract stores the deadline in.
MAX_DEADLINE = 2**48 - 1

T = TypeVar("T")


def domain(chain_id: int, envelopes: str) -> Domain:
    """The EIP-712 domain of the envelope contract at ``envelopes`` on chain ``chain_id``."""
    return Domain(
        chain_id=chain_id, verifying_contract=parse_address(envelopes, "envelopes"), name=NAME, version=VERSION
    )


def _encode_type(primary_type: str, members: Sequence[Mapping[str, str]]) -> str:
    return f"{primary_type}({','.join(m['type'] + ' ' + m['name'] for m in members)})"


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _addr_word(address: str) -> bytes:
    return bytes(12) + bytes.fromhex(address[2:])


# ---------------------------------------------------------------------------------------------- typed data


@dataclass(frozen=True)
class EnvelopeRequest:
    """``EnvelopeRequest(bytes32 docHash,address requester,address[] signers,bool ordered,uint48 deadline,
    bytes32 salt,uint256 requestDeadline)``: what the requester signs to create an envelope.

    ``deadline`` is the envelope's (no registration made after it counts; 0 for none); ``request_deadline``
    bounds when the request itself may be submitted, as a registration's deadline does; ``salt`` is any 32
    bytes that make the request unique (:func:`new_salt`), since an id is created only once. Not checked on
    construction, so that a malformed request can be built and sent (the contract refuses it with a custom
    error); :func:`check_request` says what the contract would refuse."""

    PRIMARY_TYPE: ClassVar[str] = "EnvelopeRequest"
    TYPE: ClassVar[list[dict[str, str]]] = [
        {"name": "docHash", "type": "bytes32"},
        {"name": "requester", "type": "address"},
        {"name": "signers", "type": "address[]"},
        {"name": "ordered", "type": "bool"},
        {"name": "deadline", "type": "uint48"},
        {"name": "salt", "type": "bytes32"},
        {"name": "requestDeadline", "type": "uint256"},
    ]
    TYPEHASH: ClassVar[bytes] = keccak256(_encode_type(PRIMARY_TYPE, TYPE).encode())

    doc_hash: bytes
    requester: str
    signers: tuple[str, ...]
    ordered: bool
    deadline: int
    salt: bytes
    request_deadline: int

    def struct_hash(self) -> bytes:
        # EIP-712 encodes an array as the keccak256 of its elements' 32-byte words.
        signers = keccak256(b"".join(_addr_word(s) for s in self.signers))
        return keccak256(
            self.TYPEHASH
            + self.doc_hash
            + _addr_word(self.requester)
            + signers
            + _word(int(self.ordered))
            + _word(self.deadline)
            + self.salt
            + _word(self.request_deadline)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "docHash": to_hex(self.doc_hash),
            "requester": self.requester,
            "signers": list(self.signers),
            "ordered": self.ordered,
            "deadline": self.deadline,
            "salt": to_hex(self.salt),
            "requestDeadline": self.request_deadline,
        }

    def as_tuple(self) -> tuple[bytes, str, list[str], bool, int, bytes, int]:
        """The ABI tuple of the contract's ``EnvelopeRequest`` struct."""
        return (
            self.doc_hash,
            self.requester,
            list(self.signers),
            self.ordered,
            self.deadline,
            self.salt,
            self.request_deadline,
        )


@dataclass(frozen=True)
class Decline:
    """``Decline(bytes32 envelopeId,address signer,bytes32 reasonHash,uint256 deadline)``: a named signer's
    refusal to sign; ``reason_hash`` commits to a reason kept off chain (zero for none)."""

    PRIMARY_TYPE: ClassVar[str] = "Decline"
    TYPE: ClassVar[list[dict[str, str]]] = [
        {"name": "envelopeId", "type": "bytes32"},
        {"name": "signer", "type": "address"},
        {"name": "reasonHash", "type": "bytes32"},
        {"name": "deadline", "type": "uint256"},
    ]
    TYPEHASH: ClassVar[bytes] = keccak256(_encode_type(PRIMARY_TYPE, TYPE).encode())

    envelope_id: bytes
    signer: str
    deadline: int
    reason_hash: bytes = ZERO32

    def struct_hash(self) -> bytes:
        return keccak256(
            self.TYPEHASH + self.envelope_id + _addr_word(self.signer) + self.reason_hash + _word(self.deadline)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "envelopeId": to_hex(self.envelope_id),
            "signer": self.signer,
            "reasonHash": to_hex(self.reason_hash),
            "deadline": self.deadline,
        }


@dataclass(frozen=True)
class Void:
    """``Void(bytes32 envelopeId,bytes32 reasonHash,uint256 deadline)``: the requester's withdrawal of an
    envelope. The contract checks it against the requester it stored, so the message does not name one."""

    PRIMARY_TYPE: ClassVar[str] = "Void"
    TYPE: ClassVar[list[dict[str, str]]] = [
        {"name": "envelopeId", "type": "bytes32"},
        {"name": "reasonHash", "type": "bytes32"},
        {"name": "deadline", "type": "uint256"},
    ]
    TYPEHASH: ClassVar[bytes] = keccak256(_encode_type(PRIMARY_TYPE, TYPE).encode())

    envelope_id: bytes
    deadline: int
    reason_hash: bytes = ZERO32

    def struct_hash(self) -> bytes:
        return keccak256(self.TYPEHASH + self.envelope_id + self.reason_hash + _word(self.deadline))

    def to_json(self) -> dict[str, Any]:
        return {
            "envelopeId": to_hex(self.envelope_id),
            "reasonHash": to_hex(self.reason_hash),
            "deadline": self.deadline,
        }


def new_salt() -> bytes:
    """A request's salt: 32 random bytes, so two requests alike in everything else still differ."""
    return os.urandom(32)


def envelope_id(envelopes_domain: Domain, request: EnvelopeRequest) -> bytes:
    """The id of the envelope ``request`` creates: the digest the requester signs."""
    return digest(envelopes_domain, request)


def check_request(request: EnvelopeRequest, now: int) -> None:
    """Raise :class:`InvalidInput` naming what the contract would refuse in ``request`` at time ``now``, so an
    edge can say it before any transaction: the signer count, a zero or repeated signer, a deadline out of
    range or past, a request deadline past, a salt not of 32 bytes. Whether the envelope exists already and the
    signature only the chain can check."""
    if not 1 <= len(request.signers) <= MAX_SIGNERS:
        raise InvalidInput(f"an envelope names 1 to {MAX_SIGNERS} signers, got {len(request.signers)}")
    seen: set[str] = set()
    for position, text in enumerate(request.signers):
        signer = parse_address(text, f"signer {position + 1}")
        if int(signer, 16) == 0:
            raise InvalidInput(f"signer {position + 1} is the zero address")
        if signer in seen:
            raise InvalidInput(f"signer {signer} is named twice")
        seen.add(signer)
    if not 0 <= request.deadline <= MAX_DEADLINE:
        raise InvalidInput(
            f"the envelope's deadline must be 0 (none) or a Unix time below 2^48, got {request.deadline}"
        )
    if request.deadline != 0 and request.deadline < now:
        raise InvalidInput(f"the envelope's deadline {request.deadline} has passed")
    if request.request_deadline < now:
        raise InvalidInput(f"the request's deadline {request.request_deadline} has passed")
    if len(request.salt) != 32:
        raise InvalidInput(f"the request's salt must be 32 bytes, got {len(request.salt)}")


# ---------------------------------------------------------------------------------------------- views


class Status(enum.IntEnum):
    """Where an envelope stands, as the contract's ``Status``; ``EXPIRED`` is an open envelope past its
    deadline (reported by the view, never stored)."""

    NONE = 0
    OPEN = 1
    COMPLETED = 2
    DECLINED = 3
    VOIDED = 4
    EXPIRED = 5


@dataclass(frozen=True)
class SignerState:
    """One required signer; once ``signed``, the registry's record of their registration (time, block and a
    later revocation)."""

    signer: str
    signed: bool
    signed_at: int
    block_number: int
    revoked_at: int


@dataclass(frozen=True)
class EnvelopeState:
    """An envelope as ``envelopeOf`` answers it; ``status`` NONE when no envelope has the id."""

    doc_hash: bytes
    requester: str
    status: Status
    ordered: bool
    deadline: int
    signers: tuple[SignerState, ...]
    next: str | None  # whose turn it is in an open ordered envelope
    declined_by: str | None

    @property
    def pending(self) -> tuple[str, ...]:
        """The signers whose registration does not count yet, in the envelope's order."""
        return tuple(s.signer for s in self.signers if not s.signed)


# the rule that refuses every count toward a closed envelope (contracts/DocumentEnvelopes.sol ``_open``)
_CLOSED_RULE = {
    Status.COMPLETED: "CompletedEnvelope",
    Status.DECLINED: "DeclinedEnvelope",
    Status.VOIDED: "VoidedEnvelope",
}

# What a signer whose record can never count is told to do: the registry keeps one record per (document, signer)
# and never moves it, so only a new envelope helps.
REMEDY = "the registry keeps one registration per signer and document, so a new envelope is the remedy"
_ORDER = "and an ordered envelope counts a registration only when made in or after the previous signer's block"


@dataclass(frozen=True)
class CountPlan:
    """What the contract's ``countRegistration`` makes of the registry records of an envelope's signers not
    counted yet: whose counts succeed, sent in this order, and whose record it refuses for good, with why in
    words (``reasons``, one clause per signer of ``never``)."""

    ready: tuple[str, ...]
    never: Mapping[str, str]  # signer -> the rule (the contract's custom error) that refuses their record
    reasons: Mapping[str, str] = field(default_factory=dict)


def plan_counts(state: EnvelopeState, records: Mapping[str, Record]) -> CountPlan:
    """The contract's rule (``_turn`` and ``_checkRecord``) applied to ``records``, the registry's records of the
    signers not counted yet (a signer absent, or whose record does not exist, has none yet).

    A record counts when it is not revoked, was made by the deadline (the count itself may come later) and, in an
    ordered envelope, in the previous signer's record's block or a later one, once every signer before it counts.
    A record refused stays refused: the registry keeps one record per (document, signer) and never moves it, so a
    signer ahead who has no record yet makes every record behind them out of order for good. The CLI's
    ``envelope status`` and the API's worker and ``sign`` all judge by this one function."""
    if state.status not in (Status.OPEN, Status.EXPIRED):
        rule = _CLOSED_RULE.get(state.status)  # None: no envelope (a reorg took its creation back)
        if rule is None:
            return CountPlan((), {})
        closed = f"the envelope is {state.status.name.lower()}"
        return CountPlan((), dict.fromkeys(state.pending, rule), dict.fromkeys(state.pending, closed))
    ready: list[str] = []
    never: dict[str, str] = {}
    reasons: dict[str, str] = {}
    previous: tuple[str, int] | None = None  # the previous signer and their record's block
    # ordered: who holds back every record behind them (no record yet, or one refused), and why, as a clause
    held: tuple[str, str | None] | None = None
    for signer in state.signers:
        if signer.signed:
            previous = (signer.signer, signer.block_number)
            continue
        record = records.get(signer.signer)
        if record is None or not record.exists:
            if state.ordered and held is None:
                held = (signer.signer, None)  # their record, when made, is in a later block than any made already
            continue
        if held is not None:
            ahead, rule_ahead = held
            never[signer.signer] = "OutOfOrder"
            reasons[signer.signer] = (
                f"{signer.signer}'s registration (block {record.block_number}) was made before {ahead} signed, {_ORDER}"
                if rule_ahead is None
                else f"{ahead}, who signs before {signer.signer}, has a registration that never counts ({rule_ahead})"
            )
            continue
        rule = reason = None
        if record.revoked:
            rule, reason = "RevokedRegistration", f"{signer.signer} revoked their registration"
        elif state.deadline and record.registered_at > state.deadline:
            rule, reason = "ExpiredEnvelope", f"{signer.signer} registered after the envelope's deadline"
        elif state.ordered and previous is not None and previous[1] > record.block_number:
            rule = "OutOfOrder"
            reason = (
                f"{signer.signer}'s registration (block {record.block_number}) was made before {previous[0]}'s "
                f"(block {previous[1]}), {_ORDER}"
            )
        if rule is not None and reason is not None:
            never[signer.signer] = rule
            reasons[signer.signer] = reason
            if state.ordered:
                held = (signer.signer, rule)
            continue
        ready.append(signer.signer)
        previous = (signer.signer, record.block_number)
    return CountPlan(tuple(ready), never, reasons)


def _address_or_none(value: str) -> str | None:
    return None if int(value, 16) == 0 else to_checksum_address(bytes.fromhex(value[2:]))


def _envelope_state(values: tuple[Any, ...]) -> EnvelopeState:
    doc_hash, requester, status, ordered, deadline, signers, next_, declined_by = values[0]
    return EnvelopeState(
        doc_hash=bytes(doc_hash),
        requester=to_checksum_address(bytes.fromhex(requester[2:])),
        status=Status(status),
        ordered=bool(ordered),
        deadline=int(deadline),
        signers=tuple(
            SignerState(to_checksum_address(bytes.fromhex(a[2:])), bool(s), int(at), int(block), int(revoked))
            for a, s, at, block, revoked in signers
        ),
        next=_address_or_none(next_),
        declined_by=_address_or_none(declined_by),
    )


def _signature_of(item: Mapping[str, Any]) -> str:
    def typ(inp: Mapping[str, Any]) -> str:
        kind = str(inp["type"])
        if kind.startswith("tuple"):
            return "(" + ",".join(typ(c) for c in inp["components"]) + ")" + kind[5:]
        return kind

    return f"{item['name']}({','.join(typ(i) for i in item['inputs'])})"


_ENVELOPES_ABI = artifacts.load("DocumentEnvelopes").abi
_FUNCTIONS = {i["name"]: i for i in _ENVELOPES_ABI if i["type"] == "function"}
_INPUTS = {
    name: [_signature_of({"name": "", "inputs": [i]})[1:-1] for i in f["inputs"]] for name, f in _FUNCTIONS.items()
}
# The envelopes' errors, and the registry's, which sign() passes through (InvalidSignature, ExpiredSignature).
_ERRORS = {
    keccak256(_signature_of(item).encode())[:4]: (str(item["name"]), [str(i["type"]) for i in item["inputs"]])
    for abi in (artifacts.load().abi, _ENVELOPES_ABI)
    for item in abi
    if item["type"] == "error"
}


def encode_call(name: str, *args: Any) -> bytes:
    """Calldata of the envelope contract's function ``name``."""
    return keccak256(_signature_of(_FUNCTIONS[name]).encode())[:4] + abi_encode(_INPUTS[name], args)


def decode_revert(data: bytes) -> ContractRevert | None:
    """The envelopes' (or the registry's) custom error in revert ``data``, if it is one."""
    known = _ERRORS.get(data[:4])
    if known is None:
        return None
    name, types = known
    try:
        values = abi_decode(types, data[4:])
    except (DecodingError, ValueError, OverflowError):  # a known selector over arguments that do not decode
        return None
    return ContractRevert(
        name,
        tuple(
            to_checksum_address(bytes.fromhex(v[2:])) if t == "address" else v
            for t, v in zip(types, values, strict=True)
        ),
    )


def encode_create(request: EnvelopeRequest, signature: bytes) -> bytes:
    return encode_call("create", request.as_tuple(), signature)


def encode_sign(envelope: bytes, registration: Registration, signature: bytes) -> bytes:
    return encode_call("sign", envelope, registration.as_tuple(), signature)


def encode_count_registration(envelope: bytes, signer: str) -> bytes:
    return encode_call("countRegistration", envelope, signer)


def encode_decline(decline: Decline, signature: bytes) -> bytes:
    return encode_call("decline", decline.envelope_id, decline.signer, decline.reason_hash, decline.deadline, signature)


def encode_void(void: Void, signature: bytes) -> bytes:
    return encode_call("void", void.envelope_id, void.reason_hash, void.deadline, signature)


@dataclass(frozen=True)
class View(Generic[T]):
    """One view call of the envelope contract: its calldata, the types of its answer and what they become."""

    data: bytes
    out_types: list[str]
    decode: Callable[[tuple[Any, ...]], T]

    def answer(self, result: bytes, where: str) -> T:
        if not result:  # an eth_call to an address without code answers nothing
            raise ChainError(f"no envelope contract at {where}")
        return self.decode(tuple(abi_decode(self.out_types, result)))


def _bytes32(values: tuple[Any, ...]) -> bytes:
    return bytes(values[0])


def envelope_view(envelope: bytes) -> View[EnvelopeState]:
    return View(
        encode_call("envelopeOf", envelope),
        ["(bytes32,address,uint8,bool,uint48,(address,bool,uint48,uint48,uint48)[],address,address)"],
        _envelope_state,
    )


def envelope_id_view(request: EnvelopeRequest) -> View[bytes]:
    return View(encode_call("envelopeId", request.as_tuple()), ["bytes32"], _bytes32)


def digest_view(message: Decline | Void) -> View[bytes]:
    """The contract's digest of a ``Decline`` or ``Void``, for off-chain code to check itself against."""
    if isinstance(message, Decline):
        data = encode_call("declineDigest", message.envelope_id, message.signer, message.reason_hash, message.deadline)
    else:
        data = encode_call("voidDigest", message.envelope_id, message.reason_hash, message.deadline)
    return View(data, ["bytes32"], _bytes32)


def bytes32_getter(name: str) -> View[bytes]:
    """A bytes32 getter without arguments: ``DOMAIN_SEPARATOR`` or one of the typehashes."""
    return View(encode_call(name), ["bytes32"], _bytes32)


def registry_view() -> View[str]:
    return View(encode_call("REGISTRY"), ["address"], lambda v: to_checksum_address(bytes.fromhex(v[0][2:])))


# ---------------------------------------------------------------------------------------------- events


@dataclass(frozen=True)
class LogPosition:
    """Where an event was emitted."""

    block_number: int
    block_hash: bytes
    tx_hash: bytes
    log_index: int


@dataclass(frozen=True)
class EnvelopeCreated:
    envelope_id: bytes
    doc_hash: bytes
    requester: str
    signers: tuple[str, ...]
    ordered: bool
    deadline: int
    at: LogPosition


@dataclass(frozen=True)
class EnvelopeSigned:
    """``signer``'s registration, made at ``signed_at``, counts toward the envelope; ``position`` is 0-based."""

    envelope_id: bytes
    signer: str
    position: int
    signed_at: int
    at: LogPosition


@dataclass(frozen=True)
class EnvelopeDeclined:
    envelope_id: bytes
    signer: str
    reason_hash: bytes
    at: LogPosition


@dataclass(frozen=True)
class EnvelopeVoided:
    envelope_id: bytes
    reason_hash: bytes
    at: LogPosition


@dataclass(frozen=True)
class EnvelopeCompleted:
    """The envelope has every signature it needs as of ``block_number`` (the block of its last count)."""

    envelope_id: bytes
    doc_hash: bytes
    block_number: int
    at: LogPosition


EnvelopeEvent = EnvelopeCreated | EnvelopeSigned | EnvelopeDeclined | EnvelopeVoided | EnvelopeCompleted

_EVENTS = {str(i["name"]): keccak256(_signature_of(i).encode()) for i in _ENVELOPES_ABI if i["type"] == "event"}
CREATED_TOPIC = _EVENTS["EnvelopeCreated"]
SIGNED_TOPIC = _EVENTS["EnvelopeSigned"]
DECLINED_TOPIC = _EVENTS["EnvelopeDeclined"]
VOIDED_TOPIC = _EVENTS["EnvelopeVoided"]
COMPLETED_TOPIC = _EVENTS["EnvelopeCompleted"]
TOPICS = (CREATED_TOPIC, SIGNED_TOPIC, DECLINED_TOPIC, VOIDED_TOPIC, COMPLETED_TOPIC)


def _topic_address(topic: bytes) -> str:
    return to_checksum_address(topic[12:])


def decode_log(log: Log) -> EnvelopeEvent | None:
    """Decode one log of the envelope contract; None for a log it does not emit (or a malformed one)."""
    topics, data = log.topics, log.data
    at = LogPosition(log.block_number, log.block_hash, log.tx_hash, log.log_index)
    kind = topics[0] if topics else None
    try:
        if kind == CREATED_TOPIC and len(topics) == 4:
            signers, ordered, deadline = abi_decode(["address[]", "bool", "uint48"], data)
            return EnvelopeCreated(
                envelope_id=topics[1],
                doc_hash=topics[2],
                requester=_topic_address(topics[3]),
                signers=tuple(to_checksum_address(bytes.fromhex(s[2:])) for s in signers),
                ordered=bool(ordered),
                deadline=int(deadline),
                at=at,
            )
        if kind == SIGNED_TOPIC and len(topics) == 3:
            position, signed_at = abi_decode(["uint256", "uint48"], data)
            return EnvelopeSigned(topics[1], _topic_address(topics[2]), int(position), int(signed_at), at)
        if kind == DECLINED_TOPIC and len(topics) == 3 and len(data) == 32:
            return EnvelopeDeclined(topics[1], _topic_address(topics[2]), data[:32], at)
        if kind == VOIDED_TOPIC and len(topics) == 2 and len(data) == 32:
            return EnvelopeVoided(topics[1], data[:32], at)
        if kind == COMPLETED_TOPIC and len(topics) == 3 and len(data) == 32:
            return EnvelopeCompleted(topics[1], topics[2], int.from_bytes(data[:32], "big"), at)
    except (DecodingError, ValueError, OverflowError):  # a log that does not decode is not the contract's
        return None
    return None


@dataclass(frozen=True)
class History:
    """An envelope's events folded into what each step was: its creation, each signer's count (by address), a
    decline, a void and its completion, each with where it happened. What ``docchain envelope status`` and the
    API's envelope both show beside the contract's view of the envelope."""

    created: EnvelopeCreated | None
    signed: Mapping[str, EnvelopeSigned]
    declined: EnvelopeDeclined | None
    voided: EnvelopeVoided | None
    completed: EnvelopeCompleted | None


def history(events: Sequence[EnvelopeEvent]) -> History:
    """Fold one envelope's events (in chain order) into its :class:`History`; the first of each step counts."""
    created = declined = voided = completed = None
    signed: dict[str, EnvelopeSigned] = {}
    for e in events:
        if isinstance(e, EnvelopeCreated):
            created = created or e
        elif isinstance(e, EnvelopeSigned):
            signed.setdefault(e.signer, e)
        elif isinstance(e, EnvelopeDeclined):
            declined = declined or e
        elif isinstance(e, EnvelopeVoided):
            voided = voided or e
        else:
            completed = completed or e
    return History(created, signed, declined, voided, completed)


def reason_hash(reason: str | None) -> bytes:
    """The ``reasonHash`` a decline or void carries for ``reason``: keccak256 of its UTF-8, zero for none."""
    return ZERO32 if not reason else keccak256(reason.encode())


__all__ = [
    "MAX_SIGNERS",
    "REMEDY",
    "CountPlan",
    "Decline",
    "EnvelopeCompleted",
    "EnvelopeCreated",
    "EnvelopeDeclined",
    "EnvelopeEvent",
    "EnvelopeRequest",
    "EnvelopeSigned",
    "EnvelopeState",
    "EnvelopeVoided",
    "History",
    "LogPosition",
    "SignerState",
    "Status",
    "View",
    "Void",
    "check_request",
    "decode_log",
    "decode_revert",
    "digest",
    "domain",
    "envelope_id",
    "history",
    "new_salt",
    "plan_counts",
    "reason_hash",
    "sign",
    "typed_data",
]
