"""Offline verification of an evidence bundle: a file, its receipt with an ``evidence`` section, and at most one
block hash the verifier trusts. No node, no socket: every fact comes from the bundle and is proven down from the
block hash (docs/protocol.md, "Verifying a bundle offline").

The steps, in order, each ending verification at its name when it fails (chain/verify.py's :class:`Step` and
:class:`Checks`, so the verdict reads as an online one does):

- ``file``: the file's SHA-256 is the receipt's document hash;
- ``commitment`` (a private receipt): keccak256 of that SHA-256 and the receipt's salt is the signed docHash, the
  key the chain holds the record under;
- ``signature``: the EIP-712 digest of the receipt's registration recovers its signer (ECDSA). A contract wallet
  (ERC-1271) signs with code that only a node can run: its signature cannot be checked offline, and the verdict
  says so rather than passing it;
- ``anchor``: the header's RLP hashes (keccak256) to the bundle's block hash, and is that block's;
- ``registry``: the bundle's code is released docchain registry code built for the receipt's EIP-712 domain,
  and the account proof under the header's state root shows the receipt's registry with that code's keccak256;
- ``record``: the storage proof under the account's storage root shows the record of (document, signer) — or,
  for a Merkle anchor, the anchor of the receipt's root, whose inclusion proof holds the registration's leaf —
  with the block and time the receipt says it was anchored in;
- ``confirmations``: how many blocks the proven block is after the anchoring one (said, not judged);
- ``chain``: the proven block's hash is the one the verifier trusts, given as such or as the nodes the verifier asked
  for that block all answer it (nodes that disagree, or do not hold the block, fail here, each answer named).
  Without one, nothing ties the bundle to the chain (anyone can make a self-consistent bundle on a node of their
  own): verification fails here, naming the block hash to check;
- ``revocation``: the record's revocation, as of the proven block; a valid verdict says "valid as of block N" too.

A Merkle receipt's ``leafIndex`` and ``leafCount`` are not proven: the registry stores a root's time and block
only, and the inclusion proof needs neither (online verification checks the count against the RootAnchored event).

Where a registry is pinned (an address the verifier got from somewhere other than the receipt), the receipt's
registry must be that one, as online.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from docchain.chain import merkle
from docchain.chain.bundle import Evidence
from docchain.chain.errors import InvalidInput
from docchain.chain.evidence import (
    EvidenceError,
    Header,
    anchor_slot,
    decode_anchor,
    decode_header,
    decode_record,
    record_slot,
    verify_account_proof,
    verify_storage_proof,
)
from docchain.chain.hashing import keccak256
from docchain.chain.receipt import Receipt
from docchain.chain.registry import Record
from docchain.chain.trust import Pin, release_of
from docchain.chain.typed_data import recover
from docchain.chain.values import to_hex, utc_text
from docchain.chain.verify import Anchor, Checks, Outcome, Revoked, Step, Stop, Trust, Verdict, check_commitment

__all__ = ["NodeAnswer", "proven_slots", "slots_of", "verify_offline"]


@dataclass(frozen=True)
class NodeAnswer:
    """One node's answer for the bundle's block, as a verifier asked it (one ``eth_getBlockByNumber``): the hash
    of block :attr:`number` there (``None``: the node has no such block)."""

    url: str
    number: int
    block_hash: bytes | None

    @property
    def said(self) -> str:
        return f"{self.url} says {'no such block' if self.block_hash is None else to_hex(self.block_hash)}"

    def to_json(self) -> dict[str, Any]:
        shown = None if self.block_hash is None else to_hex(self.block_hash)
        return {"rpc": self.url, "blockNumber": self.number, "blockHash": shown}


def slots_of(doc_hash: bytes, signer: str, merkle_root: bytes | None) -> tuple[bytes, ...]:
    """The registry slots the evidence of a record proves, in order: a direct anchor's record; a Merkle anchor's
    root anchor, then its leaf's record (which holds the leaf's revocation, if any)."""
    record = record_slot(doc_hash, signer)
    return (record,) if merkle_root is None else (anchor_slot(merkle_root), record)


def proven_slots(receipt: Receipt) -> tuple[bytes, ...]:
    """The registry slots ``receipt``'s evidence proves (:func:`slots_of`): those of its signed docHash, a private
    registration's commitment rather than the document's SHA-256."""
    return slots_of(receipt.doc_hash, receipt.signer, None if receipt.merkle is None else receipt.merkle.root)


@dataclass
class _Run(Checks):
    receipt: Receipt
    pin: Pin | None
    nodes: tuple[NodeAnswer, ...]


def verify_offline(
    file_hash: bytes | None,
    receipt: Receipt,
    trusted_block_hash: bytes | None,
    pin: Pin | None = None,
    *,
    nodes: Sequence[NodeAnswer] = (),
) -> Verdict:
    """Verify ``receipt``'s evidence bundle with no I/O: ``file_hash`` is the file's SHA-256 (``None``: the
    receipt's document is taken as the file), ``trusted_block_hash`` the hash of a block the verifier knows to be
    on the canonical chain (``None``: verification fails at ``chain``, naming the block hash to check), ``pin`` the
    registry the verifier trusts on the receipt's chain, if any. ``nodes``: instead of a trusted hash, what the
    nodes the verifier asked answer for the bundle's block; the hash they all give is the trusted one."""
    if nodes and trusted_block_hash is not None:
        raise ValueError("a trusted block hash or the nodes' answers, not both")
    run = _Run(receipt, pin, tuple(nodes), doc_hash=receipt.sha256, signer=receipt.signer)
    try:
        _steps(run, file_hash, trusted_block_hash)
    except Stop as stop:
        return run.verdict(stop)
    return run.verdict()


def _steps(run: _Run, file_hash: bytes | None, trusted: bytes | None) -> None:
    receipt = run.receipt
    doc = to_hex(receipt.sha256)
    if file_hash is not None and file_hash != receipt.sha256:
        raise run.fail(
            Step.FILE, f"the file's SHA-256 is {to_hex(file_hash)}, the receipt is for {doc}", Outcome.FILE_MISMATCH
        )
    run.ok(Step.FILE, f"the file matches the receipt (SHA-256 {doc})" if file_hash else f"document SHA-256 is {doc}")
    if receipt.private is not None:
        check_commitment(run, receipt)
    evidence = receipt.evidence
    if evidence is None:
        raise run.fail(
            Step.RECEIPT,
            "the receipt carries no evidence bundle yet: the service adds one once the record has its confirmations "
            "(docchain receipt FILE --force fetches it), docchain receipt upgrade adds one from a node; or verify "
            "online",
        )
    _signature(run)
    header = _header(run, evidence)
    storage_root = _registry(run, evidence, header)
    record = _record(run, evidence, header, storage_root)
    depth = header.number - record.block_number + 1
    run.ok(
        Step.CONFIRMATIONS,
        f"block {header.number} is {depth} block{'' if depth == 1 else 's'} deep from block {record.block_number} "
        "(counting both)",
    )
    _chain(run, header, trusted)  # before revocation: a revocation is said only of a block the verifier trusts
    # the bundle says nothing of the blocks after its own: a revocation there is unseen, and the verdict says so
    run.as_of_block = header.number
    if record.revoked:
        run.revocation = Revoked(receipt.signer, None, record.revoked_at)
        raise run.fail(
            Step.REVOCATION,
            f"revoked by {receipt.signer} at {utc_text(record.revoked_at)}, as of block {header.number}",
            Outcome.REVOKED,
        )
    run.ok(Step.REVOCATION, f"not revoked as of block {header.number}")


def _signature(run: _Run) -> None:
    receipt = run.receipt
    try:
        recovered = recover(receipt.domain, receipt.registration, receipt.signature)
    except InvalidInput as exc:
        raise run.fail(Step.SIGNATURE, f"not an ECDSA signature of {receipt.signer}: {exc}{_WALLET}") from None
    if recovered != receipt.signer:
        raise run.fail(Step.SIGNATURE, f"the signature recovers {recovered}, not the signer {receipt.signer}{_WALLET}")
    run.ok(Step.SIGNATURE, f"EIP-712 signature recovers {receipt.signer} (ECDSA, low s)")


_WALLET = " (a contract wallet's ERC-1271 signature is checked by its code, which needs a node: verify online)"


def _header(run: _Run, evidence: Evidence) -> Header:
    block = evidence.block
    actual = keccak256(block.header)
    if actual != block.hash:
        raise run.fail(
            Step.ANCHOR, f"keccak256 of the header is {to_hex(actual)}, not the block hash {to_hex(block.hash)}"
        )
    try:
        header = decode_header(block.header)
    except EvidenceError as exc:
        raise run.fail(Step.ANCHOR, f"the header: {exc.detail}") from None
    if header.number != block.number:
        raise run.fail(Step.ANCHOR, f"the header is block {header.number}'s, not block {block.number}'s")
    run.ok(Step.ANCHOR, f"the {header.fork} header hashes to block {header.number}'s hash {to_hex(block.hash)}")
    return header


def _registry(run: _Run, evidence: Evidence, header: Header) -> bytes:
    """The registry's storage root, once its account and code are proven."""
    receipt, registry = run.receipt, run.receipt.domain.verifying_contract
    pin = run.pin
    if pin is not None and pin.address != registry:
        on = f" on chain {pin.chain_id}" if pin.chain_id is not None else ""
        raise run.fail(
            Step.REGISTRY,
            f"the receipt names registry {registry}, but the trusted registry{on} is {pin.address} ({pin.source})",
        )
    if evidence.registry != registry:
        raise run.fail(Step.REGISTRY, f"the account proof is of {evidence.registry}, not the registry {registry}")
    release = release_of(evidence.code)
    if release is None:
        raise run.fail(Step.REGISTRY, "the bundle's code is not a released docchain registry's")
    if receipt.merkle is not None and not release.anchors_roots:
        raise run.fail(Step.REGISTRY, f"{release.name} anchors no Merkle roots")
    # The immutables of a registry hold its own EIP-712 domain separator (OpenZeppelin's EIP712 caches it at
    # deployment): released code built for another chain or address is not this receipt's registry.
    separator = receipt.domain.separator
    if not any(evidence.code[start : start + length] == separator for start, length in release.immutables):
        raise run.fail(Step.REGISTRY, f"the code's cached EIP-712 domain is not the receipt's ({registry})")
    try:
        account = verify_account_proof(header.state_root, registry, evidence.account_proof.nodes)
    except EvidenceError as exc:
        raise run.fail(Step.REGISTRY, f"the account proof: {exc.detail}") from None
    if account is None:
        raise run.fail(Step.REGISTRY, f"the account proof shows no account at {registry} in block {header.number}")
    if account.code_hash != keccak256(evidence.code):
        raise run.fail(
            Step.REGISTRY,
            f"the account's codeHash is {to_hex(account.code_hash)}, not keccak256 of the bundle's code "
            f"{to_hex(keccak256(evidence.code))}",
        )
    pinned = f", pinned by {run.pin.source}" if run.pin is not None else ""
    run.trust = Trust(
        registry,
        ("released code",) + (("pin",) if run.pin is not None else ()),
        f"{release.name}, proven at {registry} in block {header.number} by its account proof{pinned}",
    )
    run.ok(Step.REGISTRY, f"{registry} runs {release.name} (account proof under block {header.number}'s stateRoot)")
    return account.storage_root


def _record(run: _Run, evidence: Evidence, header: Header, storage_root: bytes) -> Record:
    receipt = run.receipt
    inclusion = receipt.merkle
    slots = proven_slots(receipt)
    if tuple(s.slot for s in evidence.storage) != slots:
        wanted = "the record's slot" if inclusion is None else "the root's anchor slot, then the leaf's record slot"
        given = ", ".join(to_hex(s.slot) for s in evidence.storage)
        raise run.fail(
            Step.RECORD, f"the storage proofs are of {given}, not of {wanted} ({', '.join(map(to_hex, slots))})"
        )
    try:
        words = [verify_storage_proof(storage_root, s.slot, s.proof.nodes) for s in evidence.storage]
        record = decode_record(words[-1])
        if inclusion is not None:
            anchor = decode_anchor(words[0])
            # a leaf's record slot holds its revocation only; its time and block are its root's
            record = Record(anchor.anchored_at, anchor.block_number, record.revoked_at)
    except EvidenceError as exc:
        raise run.fail(Step.RECORD, f"the storage proof: {exc.detail}") from None
    if not record.exists:
        what = f"record of {receipt.signer}" if inclusion is None else f"anchor of root {to_hex(inclusion.root)}"
        raise run.fail(
            Step.RECORD, f"the storage proof shows no {what} in block {header.number}", Outcome.NOT_REGISTERED
        )
    if inclusion is not None and not inclusion.verifies(merkle.leaf(receipt.registration, receipt.signature)):
        raise run.fail(Step.RECORD, f"the registration's leaf is not under root {to_hex(inclusion.root)}")
    if (record.block_number, record.registered_at) != (receipt.block_number, receipt.timestamp):
        raise run.fail(
            Step.RECORD,
            f"the chain holds block {record.block_number} at {record.registered_at}, the receipt says block "
            f"{receipt.block_number} at {receipt.timestamp}",
        )
    if record.block_number > header.number:
        raise run.fail(Step.RECORD, f"block {header.number} is before its own record's block {record.block_number}")
    run.anchor = Anchor(
        chain_id=receipt.domain.chain_id,
        registry=receipt.domain.verifying_contract,
        block_number=record.block_number,
        block_hash=None,  # the bundle proves the record's block number and time, not that block's hash
        tx_hash=None,  # nor which transaction wrote it
        timestamp=record.registered_at,
        confirmations=header.number - record.block_number + 1,
        merkle_root=None if inclusion is None else inclusion.root,
    )
    # the chain stores a root's time and block only: the leaf count is the receipt's word (the RootAnchored
    # event, which online verification reads, is not in a bundle); the leaf's index is not needed by the proof
    place = (
        ""
        if inclusion is None
        else f" (its leaf is under that root; leafIndex {inclusion.index} and leafCount {inclusion.count} are the "
        "receipt's, not proven offline)"
    )
    run.ok(Step.RECORD, f"recorded in block {record.block_number} at {utc_text(record.registered_at)}{place}")
    return record


def _chain(run: _Run, header: Header, trusted: bytes | None) -> None:
    block_hash = header.hash
    base = run.trust
    assert base is not None
    said = ""
    if run.nodes:
        trusted = _agreed(run, header)
        said = f" ({'; '.join(answer.said for answer in run.nodes)})"
    if trusted is None:
        # a bundle proves itself only down to its own header: anyone can make a consistent one on a node of their
        # own (any chain id, any clock), so without a block hash known from elsewhere nothing is proven on chain
        raise run.fail(
            Step.CHAIN,
            f"no trusted block hash: the bundle holds only if block {header.number} of chain "
            f"{run.receipt.domain.chain_id} has hash {to_hex(block_hash)}; check that hash with a source you trust "
            "(a node, a block explorer) and give it",
        )
    if trusted != block_hash:
        raise run.fail(
            Step.CHAIN,
            f"the bundle proves block {header.number} {to_hex(block_hash)}, not the trusted {to_hex(trusted)}{said}",
        )
    run.trust = Trust(base.registry, (*base.sources, "trusted block hash"), f"{base.detail}, the block you trust")
    run.ok(Step.CHAIN, f"block {header.number}'s hash {to_hex(block_hash)} is the one you trust")


def _agreed(run: _Run, header: Header) -> bytes:
    """The block hash every node asked gives for the bundle's block; nodes that disagree or lack the block leave
    nothing to trust, and verification fails at ``chain`` naming each answer."""
    nodes = run.nodes
    hashes = {answer.block_hash for answer in nodes}
    if len(hashes) > 1 or None in hashes:
        said = "; ".join(answer.said for answer in nodes)
        if len(hashes) > 1:
            what = "the nodes disagree on"
        else:
            what = "the nodes do not hold" if len(nodes) > 1 else "the node does not hold"
        raise run.fail(Step.CHAIN, f"{what} block {header.number}, which the bundle proves: {said}")
    [agreed] = hashes
    assert agreed is not None
    return agreed
