"""Evidence that outlives the service: block headers, and EIP-1186 account and storage proofs of the registry.

The chain of trust, from one block hash the verifier trusts down to a registry record::

    block hash = keccak256(RLP(header))        -> header.state_root
    state trie [keccak256(registry address)]   -> the registry's account -> account.storage_root
    storage trie [keccak256(slot)]             -> the word packing a Record (or an Anchor)

Exact and I/O-free: callers fetch ``eth_getBlockByNumber`` and ``eth_getProof`` answers; this module turns them
into typed values and proves them. RLP comes from ``rlp`` and the Merkle-Patricia proofs are walked by ``trie``'s
``HexaryTrie``, so the only rules written here are Ethereum's header field order per fork and the registry's
storage layout. Every failure is an :class:`EvidenceError` naming its step (header, account, storage) and, for
a proof, which of its nodes does not fit. The rules are written for third parties in docs/protocol.md
("Evidence: headers, account and storage proofs").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import rlp
from rlp.sedes import BigEndianInt, Binary, List, big_endian_int, binary
from trie.exceptions import BadTrieProof, InvalidNode, MissingTrieNode
from trie.exceptions import ValidationError as TrieValidationError
from trie.hexary import HexaryTrie
from trie.validation import validate_is_node

from docchain.chain.errors import InvalidInput, VerificationError
from docchain.chain.hashing import keccak256
from docchain.chain.registry import Anchor, Record
from docchain.chain.values import parse_hex, to_hex

__all__ = [
    "ANCHORS_SLOT",
    "EMPTY_CODE_HASH",
    "EMPTY_TRIE_ROOT",
    "RECORDS_SLOT",
    "Account",
    "EvidenceError",
    "EvidenceStep",
    "Fork",
    "Header",
    "anchor_slot",
    "decode_anchor",
    "decode_header",
    "decode_record",
    "header_from_rpc",
    "prove_anchor",
    "prove_record",
    "record_slot",
    "verify_account_proof",
    "verify_header",
    "verify_storage_proof",
]

EvidenceStep = Literal["header", "account", "storage"]
Fork = Literal["frontier", "london", "shanghai", "cancun", "prague"]

# Slots of DocumentRegistry's mappings in solc's storage layout: OpenZeppelin's EIP712 keeps its two fallback
# strings in slots 0 and 1 and Nonces its mapping in slot 2, then the registry's own declarations follow.
# tests/chain/test_evidence.py compares them with the layout solc reports for the committed source.
RECORDS_SLOT = 3  # mapping(bytes32 docHash => mapping(address signer => Record)) _records
ANCHORS_SLOT = 4  # mapping(bytes32 root => Anchor) _anchors

EMPTY_TRIE_ROOT = keccak256(rlp.encode(b""))  # the storage root of an account without storage
EMPTY_CODE_HASH = keccak256(b"")  # the code hash of an account without code

_UINT48 = (1 << 48) - 1


class EvidenceError(VerificationError):
    """A header, account proof or storage proof does not prove what it should. ``step`` says which of the three
    failed and ``detail`` why, in one line."""

    step: EvidenceStep

    def __init__(self, step: EvidenceStep, reason: str) -> None:
        super().__init__(step, reason)


# ------------------------------------------------------------------------------------------------ headers

_VARIABLE = -1  # byte length of a data field of any length (extraData)


@dataclass(frozen=True)
class _Field:
    """One header field: its :class:`Header` attribute, its name in ``eth_getBlockByNumber``'s answer, and its
    byte length (``None`` for a quantity, an RLP big-endian integer without leading zeros)."""

    attr: str
    key: str
    size: int | None

    @property
    def sedes(self) -> BigEndianInt | Binary:
        if self.size is None:
            return big_endian_int
        return binary if self.size == _VARIABLE else Binary.fixed_length(self.size, allow_empty=False)


# The fifteen fields every header has, in RLP order (the yellow paper's H).
_BASE_FIELDS = (
    _Field("parent_hash", "parentHash", 32),
    _Field("uncles_hash", "sha3Uncles", 32),
    _Field("coinbase", "miner", 20),
    _Field("state_root", "stateRoot", 32),
    _Field("transactions_root", "transactionsRoot", 32),
    _Field("receipts_root", "receiptsRoot", 32),
    _Field("logs_bloom", "logsBloom", 256),
    _Field("difficulty", "difficulty", None),
    _Field("number", "number", None),
    _Field("gas_limit", "gasLimit", None),
    _Field("gas_used", "gasUsed", None),
    _Field("timestamp", "timestamp", None),
    _Field("extra_data", "extraData", _VARIABLE),
    _Field("mix_hash", "mixHash", 32),
    _Field("nonce", "nonce", 8),
)
# What each fork appends to the header, in order: a header holds the base fields and the additions of every fork
# up to its own, so which fields are present says its fork (the merge and the forks between these add none).
_FORK_FIELDS: tuple[tuple[Fork, tuple[_Field, ...]], ...] = (
    ("frontier", ()),
    ("london", (_Field("base_fee_per_gas", "baseFeePerGas", None),)),  # EIP-1559
    ("shanghai", (_Field("withdrawals_root", "withdrawalsRoot", 32),)),  # EIP-4895
    (
        "cancun",
        (
            _Field("blob_gas_used", "blobGasUsed", None),  # EIP-4844
            _Field("excess_blob_gas", "excessBlobGas", None),  # EIP-4844
            _Field("parent_beacon_block_root", "parentBeaconBlockRoot", 32),  # EIP-4788
        ),
    ),
    ("prague", (_Field("requests_hash", "requestsHash", 32),)),  # EIP-7685
)


def _layouts() -> dict[Fork, tuple[_Field, ...]]:
    """Each fork's header fields, in RLP order."""
    layouts: dict[Fork, tuple[_Field, ...]] = {}
    fields_so_far: tuple[_Field, ...] = _BASE_FIELDS
    for fork, added in _FORK_FIELDS:
        fields_so_far += added
        layouts[fork] = fields_so_far
    return layouts


_LAYOUTS = _layouts()
_FORK_OF_LENGTH: dict[int, Fork] = {len(layout): fork for fork, layout in _LAYOUTS.items()}  # all lengths differ
_OPTIONAL_FIELDS = tuple(f for _, added in _FORK_FIELDS for f in added)
_FORK_OF_FIELD: dict[str, Fork] = {f.attr: fork for fork, added in _FORK_FIELDS for f in added}


def _fork_of(present: set[str]) -> Fork:
    """The fork whose header has the base fields and exactly the optional fields (attributes) in ``present``: the
    fork that added the last of them, provided every field of the forks before it is there too."""
    last = next((f for f in reversed(_OPTIONAL_FIELDS) if f.attr in present), None)
    if last is None:
        return "frontier"
    fork = _FORK_OF_FIELD[last.attr]
    missing = [f.key for f in _LAYOUTS[fork][len(_BASE_FIELDS) :] if f.attr not in present]
    if missing:
        raise EvidenceError("header", f"no fork's header has {last.key} without {', '.join(missing)}")
    return fork


@dataclass(frozen=True)
class Header:
    """A block header, field by field in RLP order. The fields a fork added are ``None`` in the header of a block
    before that fork; the ones present must be exactly those of one fork (checked on construction, as is each
    field's type and length)."""

    parent_hash: bytes
    uncles_hash: bytes
    coinbase: bytes
    state_root: bytes
    transactions_root: bytes
    receipts_root: bytes
    logs_bloom: bytes
    difficulty: int
    number: int
    gas_limit: int
    gas_used: int
    timestamp: int
    extra_data: bytes
    mix_hash: bytes
    nonce: bytes
    base_fee_per_gas: int | None = None
    withdrawals_root: bytes | None = None
    blob_gas_used: int | None = None
    excess_blob_gas: int | None = None
    parent_beacon_block_root: bytes | None = None
    requests_hash: bytes | None = None

    def __post_init__(self) -> None:
        for field in self._fields:
            _check_field(field, getattr(self, field.attr))

    @property
    def fork(self) -> Fork:
        """The earliest fork whose headers have exactly this header's fields (london stands for london and paris,
        which added none)."""
        return _fork_of({f.attr for f in _OPTIONAL_FIELDS if getattr(self, f.attr) is not None})

    @property
    def _fields(self) -> tuple[_Field, ...]:
        return _LAYOUTS[self.fork]

    @cached_property
    def rlp(self) -> bytes:
        """The header's RLP encoding: the list of its fields in order."""
        layout = self._fields
        return rlp.encode([getattr(self, f.attr) for f in layout], sedes=List([f.sedes for f in layout]))

    @cached_property
    def hash(self) -> bytes:
        """The block hash: keccak256 of :attr:`rlp`."""
        return keccak256(self.rlp)


def _check_field(field: _Field, value: object) -> None:
    if field.size is None:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise EvidenceError("header", f"{field.key} must be an integer >= 0, got {value!r:.80}")
    elif not isinstance(value, bytes):
        raise EvidenceError("header", f"{field.key} must be bytes, got {type(value).__name__}")
    elif field.size != _VARIABLE and len(value) != field.size:
        raise EvidenceError("header", f"{field.key} must be {field.size} bytes, got {len(value)}")


def header_from_rpc(block: Mapping[str, object]) -> Header:
    """The header of a block as ``eth_getBlockByNumber`` answers it (the optional fields present decide the fork;
    other members such as ``transactions`` or ``size`` are not part of it), checked against the block's ``hash``:
    keccak256 of the encoded header must be that hash, which also catches a field of a fork this module does not
    know (its hash would differ)."""
    present = {f.attr for f in _OPTIONAL_FIELDS if block.get(f.key) is not None}  # null counts as absent
    values = {f.attr: _rpc_value(block, f) for f in _LAYOUTS[_fork_of(present)]}
    header = Header(**values)
    claimed = _rpc_data(block, "hash", 32)
    if header.hash != claimed:
        raise EvidenceError(
            "header",
            f"block {header.number}: keccak256 of the encoded {header.fork} header is {to_hex(header.hash)}, "
            f"not the block hash {to_hex(claimed)}",
        )
    return header


_QUANTITY = re.compile(r"0x[0-9a-fA-F]+")  # int(text, 16) alone would also take signs, blanks and underscores


def _rpc_value(block: Mapping[str, object], field: _Field) -> Any:
    if field.size is None:
        text = block.get(field.key)
        if not isinstance(text, str) or not _QUANTITY.fullmatch(text):
            raise EvidenceError("header", f"{field.key} is not a hex quantity: {text!r:.80}")
        return int(text, 16)
    return _rpc_data(block, field.key, None if field.size == _VARIABLE else field.size)


def _rpc_data(block: Mapping[str, object], key: str, size: int | None) -> bytes:
    text = block.get(key)
    if not isinstance(text, str):
        raise EvidenceError("header", f"{key} is missing or not a hex string: {text!r:.80}")
    try:
        return parse_hex(text, length=size, what=key)
    except InvalidInput as exc:
        raise EvidenceError("header", str(exc)) from None


def decode_header(data: bytes) -> Header:
    """The header that ``data`` (its RLP encoding) holds: a list of 15, 16, 17, 20 or 21 byte strings, each of its
    field's length, integers without leading zeros, nothing after the list."""
    try:
        items = rlp.decode(data)
    except rlp.DecodingError as exc:
        raise EvidenceError("header", f"not an RLP encoding: {exc}") from None
    if not isinstance(items, list) or not all(isinstance(item, bytes) for item in items):
        raise EvidenceError("header", "not an RLP list of byte strings")
    fork = _FORK_OF_LENGTH.get(len(items))
    if fork is None:
        lengths = ", ".join(f"{len(layout)} ({name})" for name, layout in _LAYOUTS.items())
        raise EvidenceError("header", f"a header has {lengths} fields, not {len(items)}")
    values: dict[str, Any] = {}
    for field, item in zip(_LAYOUTS[fork], items, strict=True):
        try:
            values[field.attr] = field.sedes.deserialize(item)
        except rlp.DeserializationError as exc:
            raise EvidenceError("header", f"{field.key}: {exc}") from None
    return Header(**values)


def verify_header(data: bytes, block_hash: bytes) -> Header:
    """The header ``data`` encodes, provided it is the header of the block ``block_hash`` (keccak256 of ``data``)."""
    actual = keccak256(data)
    if actual != block_hash:
        raise EvidenceError(
            "header", f"keccak256 of the header is {to_hex(actual)}, not the block hash {to_hex(block_hash)}"
        )
    return decode_header(data)


# ------------------------------------------------------------------------------------------------ proofs


@dataclass(frozen=True)
class Account:
    """An account as the state trie holds it: RLP([nonce, balance, storageRoot, codeHash])."""

    nonce: int
    balance: int
    storage_root: bytes
    code_hash: bytes


_ACCOUNT_SEDES = List([big_endian_int, big_endian_int, Binary.fixed_length(32), Binary.fixed_length(32)])

# trie's proof reader carries no annotations; this is its signature (root, key, RLP-decoded nodes) -> value, b"" for
# a key the proof shows absent.
_get_from_proof: Callable[[bytes, bytes, Sequence[object]], bytes] = HexaryTrie.get_from_proof
# and its check of one decoded node's shape, which the proof reader runs on every node given, reachable or not.
_validate_node: Callable[[object], None] = validate_is_node


def verify_account_proof(state_root: bytes, address: str, proof: Sequence[str]) -> Account | None:
    """The account at ``address`` in the state whose root is ``state_root``, as ``proof`` (``eth_getProof``'s
    ``accountProof``: hex RLP nodes from the root down) proves it; ``None`` when the proof shows no account there.
    The trie's key is keccak256 of the 20-byte address."""
    key = keccak256(parse_hex(address, length=20, what="address"))
    value = _proven_value("account", state_root, key, proof)
    if not value:
        return None
    try:
        nonce, balance, storage_root, code_hash = rlp.decode(value, sedes=_ACCOUNT_SEDES)
    except rlp.RLPException as exc:
        raise EvidenceError(
            "account", f"the proven value is not RLP([nonce, balance, storageRoot, codeHash]): {exc}"
        ) from None
    return Account(nonce=nonce, balance=balance, storage_root=storage_root, code_hash=code_hash)


def verify_storage_proof(storage_root: bytes, slot: bytes, proof: Sequence[str]) -> bytes:
    """The 32-byte word in storage slot ``slot`` of the account whose storage root is ``storage_root``, as
    ``proof`` (one ``storageProof[i].proof`` of ``eth_getProof``) proves it; an absent slot holds zero. The trie's
    key is keccak256 of the 32-byte slot, its value the RLP of the word without leading zero bytes."""
    if len(slot) != 32:
        raise EvidenceError("storage", f"a slot is 32 bytes, got {len(slot)}")
    value = _proven_value("storage", storage_root, keccak256(slot), proof)
    if not value:
        return bytes(32)
    try:
        word = rlp.decode(value, sedes=big_endian_int)
    except rlp.RLPException as exc:
        raise EvidenceError("storage", f"the proven value is not an RLP integer: {exc}") from None
    if word.bit_length() > 256:
        raise EvidenceError("storage", f"the proven value {to_hex(value)} is longer than a word")
    return int(word).to_bytes(32, "big")


def _proven_value(step: EvidenceStep, root: bytes, key: bytes, proof: Sequence[str]) -> bytes:
    if len(root) != 32:
        raise EvidenceError(step, f"a trie root is 32 bytes, got {len(root)}")
    encoded: list[bytes] = []
    nodes: list[object] = []  # trie takes the nodes decoded, and hashes their re-encoding
    for index, node in enumerate(proof):
        try:
            encoded.append(parse_hex(node, what=f"proof node {index}"))
            nodes.append(rlp.decode(encoded[-1]))
        except InvalidInput as exc:
            raise EvidenceError(step, str(exc)) from None
        except rlp.DecodingError as exc:
            raise EvidenceError(step, f"proof node {index} is not RLP: {exc}") from None
        try:
            _validate_node(nodes[-1])
        except TrieValidationError:
            raise EvidenceError(step, f"proof node {index} is not a trie node (branch, extension or leaf)") from None
    try:
        return _get_from_proof(root, key, nodes)
    except BadTrieProof as exc:
        cause = exc.__cause__
        missing = cause.missing_node_hash if isinstance(cause, MissingTrieNode) else root
        raise EvidenceError(step, _missing_node(root, bytes(missing), encoded)) from None
    except (InvalidNode, TrieValidationError, rlp.RLPException) as exc:
        raise EvidenceError(step, f"the proof is not a trie path: {exc}") from None


def _missing_node(root: bytes, missing: bytes, encoded: Sequence[bytes]) -> str:
    """Which node of a proof (root first, as eth_getProof orders them) breaks the chain of hashes to ``missing``."""
    if missing == root:
        if not encoded:
            return f"the proof is empty, but the root {to_hex(root)} is not the empty trie's"
        return f"proof node 0 hashes to {to_hex(keccak256(encoded[0]))}, not to the root {to_hex(root)}"
    parent = next((i for i, node in enumerate(encoded) if missing in node), None)
    if parent is None or parent + 1 >= len(encoded):
        return f"the proof ends before node {to_hex(missing)} on the key's path"
    child = parent + 1
    return (
        f"proof node {child} hashes to {to_hex(keccak256(encoded[child]))}, "
        f"not to {to_hex(missing)} which node {parent} names on the key's path"
    )


# ------------------------------------------------------------------------------------------------ the registry


def record_slot(doc_hash: bytes, signer: str) -> bytes:
    """The storage slot of ``_records[docHash][signer]``: solc puts ``m[k]`` of a mapping at slot ``p`` in
    keccak256(k padded to 32 bytes || p as uint256), and a nested mapping's inner slot is the outer entry's."""
    if len(doc_hash) != 32:
        raise InvalidInput(f"docHash must be 32 bytes, got {len(doc_hash)}")
    inner = keccak256(doc_hash + RECORDS_SLOT.to_bytes(32, "big"))
    return keccak256(parse_hex(signer, length=20, what="signer").rjust(32, b"\0") + inner)


def anchor_slot(root: bytes) -> bytes:
    """The storage slot of ``_anchors[root]``."""
    if len(root) != 32:
        raise InvalidInput(f"root must be 32 bytes, got {len(root)}")
    return keccak256(root + ANCHORS_SLOT.to_bytes(32, "big"))


def decode_record(word: bytes) -> Record:
    """The Record packed in a storage word: registeredAt in its lowest 48 bits, then blockNumber, then revokedAt
    (solc packs a struct's members from the low-order end); the 112 high bits are zero."""
    registered_at, block_number, revoked_at = _uint48s(word, 3, "Record")
    return Record(registered_at=registered_at, block_number=block_number, revoked_at=revoked_at)


def decode_anchor(word: bytes) -> Anchor:
    """The Anchor packed in a storage word: anchoredAt in its lowest 48 bits, then blockNumber; the 160 high bits
    are zero."""
    anchored_at, block_number = _uint48s(word, 2, "Anchor")
    return Anchor(anchored_at=anchored_at, block_number=block_number)


def _uint48s(word: bytes, count: int, what: str) -> list[int]:
    if len(word) != 32:
        raise EvidenceError("storage", f"a storage word is 32 bytes, got {len(word)}")
    value = int.from_bytes(word, "big")
    if value >> (48 * count):
        raise EvidenceError("storage", f"{to_hex(word)} is not a packed {what}: bits above {48 * count} are set")
    return [(value >> (48 * i)) & _UINT48 for i in range(count)]


def prove_record(storage_root: bytes, doc_hash: bytes, signer: str, proof: Sequence[str]) -> Record:
    """The registry's record of (``doc_hash``, ``signer``) as a storage proof against the registry's storage root
    proves it; a record that does not exist reads as all zeros (``Record.exists`` is false)."""
    return decode_record(verify_storage_proof(storage_root, record_slot(doc_hash, signer), proof))


def prove_anchor(storage_root: bytes, root: bytes, proof: Sequence[str]) -> Anchor:
    """The registry's anchor of the Merkle root ``root`` as a storage proof against the registry's storage root
    proves it; a root never anchored reads as all zeros (``Anchor.exists`` is false)."""
    return decode_anchor(verify_storage_proof(storage_root, anchor_slot(root), proof))
