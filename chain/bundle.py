"""The evidence section of a receipt: what makes it an evidence bundle that verifies with no node at all.

A receipt's optional top-level ``evidence`` key (docs/protocol.md, "The bundle") holds one block's header and the
two EIP-1186 proofs that tie the registry's record (a direct anchor) or the anchor of its Merkle root (a Merkle
anchor, whose leaf the receipt's inclusion proof already ties to the root) to that header::

    "evidence": {
      "block":   {"number": N, "hash": "0x<32 bytes>", "header": "0x<RLP of the header>"},
      "account": {"address": "0x<registry>", "proof": ["0x<node>", ...], "code": "0x<runtime code>"},
      "storage": [{"slot": "0x<32 bytes>", "proof": ["0x<node>", ...]}, ...]
    }

The proofs are ``eth_getProof``'s ``accountProof`` and ``storageProof`` entries at that block: a direct anchor's
one, of its record's slot; a Merkle anchor's two, of its root's anchor slot and then of its leaf's record slot
(where a revocation of the leaf is kept, so that revocation is proven as of the block too). ``code`` is the
registry's runtime code, so that the verifier can see it is released docchain code (chain/trust.py) and that its
keccak256 is the account's ``codeHash``. Everything here is checked for form only (keys, hex, sizes); what it
proves is chain/offline.py's to decide.

Read as strictly as the rest of a receipt, with its reader's own field readers (chain/receipt.py, which calls
:func:`parse_evidence`): unknown or missing keys refused, every value of its exact form, sizes bounded so that a
hostile file costs little. api/web/js/receipt.js refuses the same texts with the same messages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from docchain.chain.errors import InvalidInput

# The receipt's own field readers, so that the evidence is refused in the same words as the rest of a receipt (and
# as api/web/js/receipt.js refuses it). chain/receipt.py imports this module only when it meets the key.
from docchain.chain.receipt import _address, _fail, _hash32, _object, _uint, got
from docchain.chain.values import to_hex

__all__ = [
    "MAX_CODE",
    "MAX_HEADER",
    "MAX_NODE",
    "MAX_NODES",
    "MAX_SLOTS",
    "BlockEvidence",
    "Evidence",
    "Proof",
    "StorageProof",
    "evidence_from_rpc",
    "parse_evidence",
]

# Bounds well above what a real chain produces, so that only a hostile file meets them: a prague header is ~600
# bytes (extraData is at most 32 on mainnet); a trie node is at most a full branch, 17 references of 33 bytes; a
# state trie of billions of accounts is under 16 levels deep; EIP-170 caps runtime code at 24,576 bytes.
MAX_HEADER = 2048
MAX_NODE = 1024
MAX_NODES = 64
MAX_CODE = 24576
MAX_SLOTS = 2  # a Merkle anchor's anchor and record slots

_EVIDENCE = ("block", "account", "storage")
_BLOCK = ("number", "hash", "header")
_ACCOUNT = ("address", "proof", "code")
_STORAGE = ("slot", "proof")
_HEX = re.compile(r"0x(?:[0-9a-fA-F]{2})+")


@dataclass(frozen=True)
class BlockEvidence:
    """The block the proofs are against: its number, its hash (what the verifier must trust) and its header's RLP
    (whose keccak256 must be that hash)."""

    number: int
    hash: bytes
    header: bytes


@dataclass(frozen=True)
class Proof:
    """One Merkle-Patricia proof as ``eth_getProof`` answers it: RLP nodes, hex, root first."""

    nodes: tuple[str, ...]


@dataclass(frozen=True)
class StorageProof:
    """The proof of one storage slot of the registry."""

    slot: bytes
    proof: Proof


@dataclass(frozen=True)
class Evidence:
    """A receipt's ``evidence`` section: one block, the registry's account proof and code, its storage proofs."""

    block: BlockEvidence
    registry: str
    account_proof: Proof
    code: bytes
    storage: tuple[StorageProof, ...]

    def proof_of(self, slot: bytes) -> Proof | None:
        return next((s.proof for s in self.storage if s.slot == slot), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "block": {
                "number": self.block.number,
                "hash": to_hex(self.block.hash),
                "header": to_hex(self.block.header),
            },
            "account": {"address": self.registry, "proof": list(self.account_proof.nodes), "code": to_hex(self.code)},
            "storage": [{"slot": to_hex(s.slot), "proof": list(s.proof.nodes)} for s in self.storage],
        }


def _bytes(value: Any, path: str, limit: int) -> bytes:
    if not isinstance(value, str) or len(value) > 2 + 2 * limit or not _HEX.fullmatch(value):
        _fail(f"receipt: {path} must be 0x followed by hex digits, two per byte, 1 to {limit} bytes, got {got(value)}")
    return bytes.fromhex(value[2:])


def _proof(value: Any, path: str) -> Proof:
    if not isinstance(value, list) or len(value) > MAX_NODES:
        _fail(f"receipt: {path} must be a list of at most {MAX_NODES} trie nodes, got {got(value)}")
    return Proof(tuple(to_hex(_bytes(node, f"{path}[{i}]", MAX_NODE)) for i, node in enumerate(value)))


def parse_evidence(value: Any) -> Evidence:
    """A receipt's ``evidence`` section (chain/receipt.py has already refused duplicate keys and deep nesting
    in the whole receipt), checked for form in the order it is written: :class:`InvalidInput` names the first
    field that is not as the schema says, in the words of the rest of the receipt's reader."""
    section = _object(value, "evidence", _EVIDENCE)
    block_json = _object(section["block"], "evidence.block", _BLOCK)
    block = BlockEvidence(
        number=_uint(block_json["number"], "evidence.block.number"),
        hash=_hash32(block_json["hash"], "evidence.block.hash"),
        header=_bytes(block_json["header"], "evidence.block.header", MAX_HEADER),
    )
    account = _object(section["account"], "evidence.account", _ACCOUNT)
    registry = _address(account["address"], "evidence.account.address")
    account_proof = _proof(account["proof"], "evidence.account.proof")
    code = _bytes(account["code"], "evidence.account.code", MAX_CODE)
    storage = section["storage"]
    if not isinstance(storage, list) or not 1 <= len(storage) <= MAX_SLOTS:
        _fail(f"receipt: evidence.storage must be a list of 1 to {MAX_SLOTS} slot proofs, got {got(storage)}")
    slots = tuple(_storage(entry, f"evidence.storage[{i}]") for i, entry in enumerate(storage))
    if len({s.slot for s in slots}) != len(slots):
        _fail("receipt: evidence.storage proves a slot twice")
    return Evidence(block=block, registry=registry, account_proof=account_proof, code=code, storage=slots)


def _storage(value: Any, path: str) -> StorageProof:
    entry = _object(value, path, _STORAGE)
    return StorageProof(_hash32(entry["slot"], f"{path}.slot"), _proof(entry["proof"], f"{path}.proof"))


def evidence_from_rpc(
    block: Mapping[str, object], proof: Mapping[str, object], code: bytes, slots: Sequence[bytes]
) -> Evidence:
    """The evidence of storage ``slots`` (in that order) from a node's answers: ``eth_getBlockByNumber``
    (``block``, whose header is re-encoded and checked against its hash), ``eth_getProof(registry, [slot, ...],
    block)`` (``proof``; its ``storageProof`` entries for ``slots`` are taken) and the registry's runtime
    ``code``. The result is read back through :func:`parse_evidence`, so that the service never keeps a section a
    reader would refuse."""
    # imported here: chain/evidence.py brings rlp and trie, which a receipt's reader does not need
    from docchain.chain.evidence import header_from_rpc

    header = header_from_rpc(block)
    entries = proof.get("storageProof")
    if not isinstance(entries, Sequence):
        raise InvalidInput("eth_getProof answered no storageProof list")
    by_slot = {_slot_number(e.get("key")): e.get("proof") for e in entries if isinstance(e, Mapping)}
    storage = []
    for slot in slots:
        nodes = by_slot.get(int.from_bytes(slot, "big"))
        if nodes is None:
            raise InvalidInput(f"eth_getProof answered no proof of slot {to_hex(slot)}")
        storage.append({"slot": to_hex(slot), "proof": nodes})
    return parse_evidence(
        {
            "block": {"number": header.number, "hash": to_hex(header.hash), "header": to_hex(header.rlp)},
            "account": {"address": proof.get("address"), "proof": proof.get("accountProof"), "code": to_hex(code)},
            "storage": storage,
        }
    )


def _slot_number(key: object) -> int | None:
    """A ``storageProof`` entry's key as a number: nodes write it as given (32 bytes) or as a quantity (``0x1``)."""
    if not isinstance(key, str) or not re.fullmatch(r"0x[0-9a-fA-F]{1,64}", key):
        return None
    return int(key, 16)
