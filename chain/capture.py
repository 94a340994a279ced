"""Capture of evidence from a node: the head block's header and ``eth_getProof`` of registry slots at that block.

Nodes keep recent state only (anvil as docchain runs it proves the head block alone; geth its last 128 blocks),
so evidence is captured at the head, whatever block a record is in: the record carries its own block and time
(chain/evidence.py), so a proof at any later block shows when it was anchored. One capture proves many slots
in one ``eth_getProof`` call (the service captures a block's worth of records at once).

:func:`capture_evidence_at` proves the same slots at a given block instead, for what the registry held then
(``docchain status --as-of-block``): only a node that still keeps that block's state can answer.

Every answer is proven before it is returned (header hash, account proof, code hash, each storage proof): a
node that answers for another state than the header's, or garbles a proof, fails here rather than in a
verifier's hands.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from docchain.chain.bundle import Evidence, evidence_from_rpc
from docchain.chain.errors import ChainError, InvalidInput
from docchain.chain.evidence import (
    EvidenceError,
    decode_anchor,
    decode_header,
    decode_record,
    verify_account_proof,
    verify_storage_proof,
)
from docchain.chain.hashing import keccak256
from docchain.chain.registry import Record
from docchain.chain.rpc import Transport, state_unavailable
from docchain.chain.values import parse_hex, to_hex

__all__ = [
    "ATTEMPTS",
    "EvidenceUnavailable",
    "StateUnavailable",
    "capture_evidence",
    "capture_evidence_at",
    "proven_record",
]

# A block mined between reading the head and asking its proof makes a node that keeps no past state refuse the
# proof; the next head is asked then, a few times over, since blocks can follow each other back to back.
ATTEMPTS = 4


class EvidenceUnavailable(ChainError):
    """The node does not serve the state a proof needs (pruned, or moved on every time it was asked), or its
    answers do not prove what they should."""


class StateUnavailable(EvidenceUnavailable):
    """The node no longer keeps the state of block :attr:`number` (it prunes past states): only an archive node,
    or one that keeps more history, can prove what the registry held then."""

    def __init__(self, number: int, said: str) -> None:
        self.number = number
        super().__init__(
            f"the node no longer serves the state of block {number} (it keeps recent states only; ask an archive "
            f"node): {said}"
        )


async def capture_evidence(
    rpc: Transport, registry: str, subjects: Sequence[tuple[bytes, ...]], code: bytes | None = None
) -> list[Evidence]:
    """The evidence of each subject (the slots one receipt's evidence proves: chain/bundle.py) of ``registry``,
    in order, all at one head block. ``code``: the registry's runtime code when the caller holds it already (it
    never changes), else read at that block."""
    if not subjects:
        return []
    last: ChainError | None = None
    for _ in range(ATTEMPTS):
        block = await rpc.call("eth_getBlockByNumber", ["latest", False])
        if not isinstance(block, dict) or not isinstance(block.get("number"), str):
            raise EvidenceUnavailable(f"the node answered no latest block: {block!r:.80}")
        try:
            return await _capture(rpc, registry, subjects, code, block)
        except ChainError as exc:
            if isinstance(exc, EvidenceUnavailable) or not state_unavailable(exc):
                raise
            last = exc
    raise EvidenceUnavailable(f"the node does not serve the state of its head block (asked {ATTEMPTS} times): {last}")


async def capture_evidence_at(
    rpc: Transport, registry: str, subjects: Sequence[tuple[bytes, ...]], number: int
) -> list[Evidence]:
    """As :func:`capture_evidence`, at block ``number``: what the registry held as of that block. A node that no
    longer keeps that block's state (a pruned or full node past its window) is :class:`StateUnavailable`, and a
    block it has not mined yet :class:`EvidenceUnavailable`."""
    if not subjects:
        return []
    block = await rpc.call("eth_getBlockByNumber", [hex(number), False])
    if block is None:
        raise EvidenceUnavailable(f"the node has no block {number} yet")
    if not isinstance(block, dict) or not isinstance(block.get("number"), str):
        raise EvidenceUnavailable(f"the node answered no block {number}: {block!r:.80}")
    try:
        return await _capture(rpc, registry, subjects, None, block)
    except ChainError as exc:
        if isinstance(exc, EvidenceUnavailable) or not state_unavailable(exc):
            raise
        raise StateUnavailable(number, str(exc)) from exc


async def _capture(
    rpc: Transport,
    registry: str,
    subjects: Sequence[tuple[bytes, ...]],
    code: bytes | None,
    block: dict[str, Any],
) -> list[Evidence]:
    """The proofs of ``subjects`` at ``block`` (the node's answer for it), checked; a node that refuses the
    block's state raises its own :class:`ChainError`, for the caller to judge."""
    keys = list(dict.fromkeys(to_hex(slot) for slots in subjects for slot in slots))
    at = block["number"]
    try:
        proof = await rpc.call("eth_getProof", [registry, keys, at])
        held = code if code is not None else parse_hex(await rpc.call("eth_getCode", [registry, at]), what="code")
    except ChainError as exc:
        if not state_unavailable(exc):
            raise EvidenceUnavailable(f"the node does not prove the state of block {int(at, 16)}: {exc}") from exc
        raise
    if not isinstance(proof, dict):
        raise EvidenceUnavailable(f"eth_getProof answered {proof!r:.80}")
    try:
        found = [evidence_from_rpc(block, proof, held, slots) for slots in subjects]
        _prove(found[0], found)
    except (InvalidInput, EvidenceError) as exc:
        raise EvidenceUnavailable(f"the node's evidence at block {int(at, 16)} does not hold: {exc}") from None
    return found


def proven_record(evidence: Evidence) -> Record:
    """The record ``evidence`` proves under its header (chain/offline.py's slots, in its order): a direct anchor's
    record; for a Merkle leaf, its root's anchoring time and block with the leaf's own revocation. A record absent
    as of that block has all zeros (:attr:`Record.exists` false)."""
    header = decode_header(evidence.block.header)
    account = verify_account_proof(header.state_root, evidence.registry, evidence.account_proof.nodes)
    if account is None:
        raise EvidenceError("account", f"the proof shows no account at {evidence.registry}")
    words = [verify_storage_proof(account.storage_root, s.slot, s.proof.nodes) for s in evidence.storage]
    record = decode_record(words[-1])
    if len(words) == 1:
        return record
    anchor = decode_anchor(words[0])
    return Record(anchor.anchored_at, anchor.block_number, record.revoked_at)


def _prove(first: Evidence, found: Sequence[Evidence]) -> None:
    """The checks a verifier makes of the proofs themselves (chain/offline.py), once for the account."""
    header = decode_header(first.block.header)
    account = verify_account_proof(header.state_root, first.registry, first.account_proof.nodes)
    if account is None:
        raise EvidenceError("account", f"the proof shows no account at {first.registry}")
    if account.code_hash != keccak256(first.code):
        raise EvidenceError("account", "the account's codeHash is not keccak256 of the registry's code")
    for evidence in found:
        for entry in evidence.storage:
            verify_storage_proof(account.storage_root, entry.slot, entry.proof.nodes)
