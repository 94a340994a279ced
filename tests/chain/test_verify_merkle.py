"""chain/verify.py's Merkle branch on anvil, without the API's pipeline: roots anchored with the registry
bindings, version 2 receipts built from chain/merkle.py's proofs, and every field of an honest receipt changed
in turn, each change ending verification at its named step (the chain-level tamper matrix). Beside it: an
ERC-1271 wallet's leaf verifies, a revoked leaf is REVOKED, a root never anchored is NOT_REGISTERED, a deadline
past at anchoring is refused with the registry's reason, and a registry of release 1 cannot hold a Merkle
anchor."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from docchain.chain import artifacts, deploy, merkle
from docchain.chain import typed_data as td
from docchain.chain.errors import InvalidInput
from docchain.chain.node import LocalNode
from docchain.chain.receipt import Receipt, build_receipt, parse_receipt
from docchain.chain.registry import Registry, SignedRegistration
from docchain.chain.rpc import ChainReader, JsonRpc
from docchain.chain.sender import TxSender
from docchain.chain.trust import Pin, release_of
from docchain.chain.values import to_hex, utc_text
from docchain.chain.verify import Outcome, Question, Step, Verdict, verify

# anvil's account #5: a sender of its own, whose nonces no session fixture's sender also counts
RELAYER = bytes.fromhex("8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba")
SIGNER = bytes.fromhex("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")
OTHER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
RELEASE_1 = Path(__file__).with_name("data") / "registry-release-1.bytecode.hex"  # its creation code, as released
HOUR = 3600


@dataclass(frozen=True)
class Chain:
    url: str
    w3: Web3
    relayer: TxSender
    registry: Registry
    release_1: str
    lookalike: str
    wallet: str
    wallet_owner: bytes


def _deploy(sender: TxSender, code: bytes) -> str:
    return Web3.to_checksum_address(str(sender.transact(None, code)["contractAddress"]))


@pytest.fixture(scope="module")
def chain(anvil: LocalNode) -> Iterator[Chain]:
    w3 = Web3(Web3.HTTPProvider(anvil.rpc_url, request_kwargs={"timeout": 30}))
    relayer = TxSender(w3, RELAYER)
    registry = Registry(w3, deploy.deploy(relayer).address, relayer)
    owner = os.urandom(32)
    wallet_code = artifacts.load("MockERC1271Wallet").bytecode + bytes(12) + bytes.fromhex(td.address_of(owner)[2:])
    yield Chain(
        url=anvil.rpc_url,
        w3=w3,
        relayer=relayer,
        registry=registry,
        release_1=_deploy(relayer, bytes.fromhex(RELEASE_1.read_text().strip()[2:])),
        lookalike=_deploy(relayer, artifacts.load("LookAlikeRegistry").bytecode),
        wallet=_deploy(relayer, wallet_code),
        wallet_owner=owner,
    )


def _signed(chain: Chain, key: bytes, signer: str | None = None, **fields: Any) -> SignedRegistration:
    reg = td.Registration(
        doc_hash=os.urandom(32),
        signer=signer or td.address_of(key),
        deadline=int(time.time()) + HOUR,
        metadata_hash=os.urandom(32),
        supersedes=os.urandom(32),
    )
    reg = dataclasses.replace(reg, **fields)
    return SignedRegistration(reg, td.sign(chain.registry.domain, reg, key))


@dataclass(frozen=True)
class Anchored:
    items: tuple[SignedRegistration, ...]
    tree: merkle.MerkleTree
    receipts: tuple[Receipt, ...]  # one per item, in the order given


def _anchor(chain: Chain, items: list[SignedRegistration], *, anchor: bool = True) -> Anchored:
    """Anchor the tree of ``items`` (or, with ``anchor=False``, only pretend to, in the next block's stead) and
    write each item's version 2 receipt as the service would."""
    tree = merkle.MerkleTree.of([merkle.leaf(i.registration, i.signature) for i in items])
    tx = chain.registry.anchor_root(tree.root, len(items)) if anchor else chain.registry.anchor_root(os.urandom(32), 1)
    block = chain.w3.eth.get_block(tx["blockNumber"])
    receipts = tuple(
        build_receipt(
            domain=chain.registry.domain,
            registration=item.registration,
            signature=item.signature,
            tx_hash=bytes(tx["transactionHash"]),
            block_number=int(tx["blockNumber"]),
            block_hash=bytes(block["hash"]),
            timestamp=int(block["timestamp"]),
            file_name="contract.pdf",
            merkle=tree.proof(i),
        )
        for i, item in enumerate(items)
    )
    return Anchored(tuple(items), tree, receipts)


def _verify(chain: Chain, receipt: Receipt | dict[str, Any], *, pin: Pin | None = None, depth: int = 1) -> Verdict:
    parsed = receipt if isinstance(receipt, Receipt) else parse_receipt(receipt)

    async def go() -> Verdict:
        async with JsonRpc(chain.url) as rpc:
            return await verify(
                ChainReader(rpc), Question(parsed.doc_hash, receipt=parsed, confirmations=depth), pin=pin
            )

    return asyncio.run(go())


# ---------------------------------------------------------------------------- honest receipts


@pytest.fixture(scope="module")
def honest(chain: Chain) -> Anchored:
    """Five signed registrations in one tree; item 0 is the one the matrix tampers with."""
    return _anchor(chain, [_signed(chain, SIGNER) for _ in range(5)])


def test_every_leaf_of_an_anchored_tree_verifies_and_says_its_root(chain: Chain, honest: Anchored) -> None:
    for receipt in honest.receipts:
        verdict = _verify(chain, receipt)
        assert verdict.outcome is Outcome.VALID, verdict.summary
        assert [c.name for c in verdict.steps] == [
            Step.FILE,
            Step.CHAIN,
            Step.REGISTRY,
            Step.SIGNATURE,
            Step.RECORD,
            Step.ANCHOR,
            Step.CONFIRMATIONS,
            Step.REVOCATION,
        ]
        a = verdict.anchor
        assert a is not None and receipt.merkle is not None
        assert (a.tx_hash, a.block_number, a.block_hash, a.timestamp, a.merkle_root) == (
            receipt.tx_hash,
            receipt.block_number,
            receipt.block_hash,
            receipt.timestamp,
            receipt.merkle.root,
        )
        assert verdict.to_json()["anchor"]["merkleRoot"] == to_hex(honest.tree.root)
        assert verdict.summary == (
            f"Signed by {receipt.signer} on {utc_text(receipt.timestamp)} (block {receipt.block_number}, "
            f"transaction {to_hex(receipt.tx_hash)}, chain {chain.registry.chain_id}, registry "
            f"{chain.registry.address})."
        )
    record = next(c for c in _verify(chain, honest.receipts[0]).steps if c.name is Step.RECORD)
    assert f"under root {to_hex(honest.tree.root)}" in record.detail
    assert "ECDSA" in next(c for c in _verify(chain, honest.receipts[0]).steps if c.name is Step.SIGNATURE).detail


def test_a_receipt_written_and_read_back_verifies_with_the_pinned_registry(chain: Chain, honest: Anchored) -> None:
    text = honest.receipts[1].dumps()
    assert '"docchainReceipt": 2' in text
    pin = Pin(chain.registry.chain_id, chain.registry.address, "the test's deployment")
    verdict = _verify(chain, parse_receipt(text), pin=pin)
    assert verdict.outcome is Outcome.VALID and verdict.trust is not None
    assert verdict.trust.sources == ("code", "pin")


def test_a_contract_wallets_leaf_verifies_through_erc1271(chain: Chain) -> None:
    by_wallet = _signed(chain, chain.wallet_owner, signer=chain.wallet)
    by_stranger = _signed(chain, os.urandom(32), signer=chain.wallet)  # anchoring is open: anyone can anchor
    anchored = _anchor(chain, [by_wallet, by_stranger, _signed(chain, SIGNER)])
    verdict = _verify(chain, anchored.receipts[0])
    assert verdict.outcome is Outcome.VALID, verdict.summary
    assert "ERC-1271" in next(c for c in verdict.steps if c.name is Step.SIGNATURE).detail
    refused = _verify(chain, anchored.receipts[1])
    assert (refused.outcome, refused.failed_step) == (Outcome.INVALID, Step.SIGNATURE)
    assert refused.reason == f"the contract wallet {chain.wallet} rejects the signature (ERC-1271)"


def test_confirmations_are_counted_from_the_anchoring_block(chain: Chain, honest: Anchored) -> None:
    verdict = _verify(chain, honest.receipts[2], depth=10_000)
    assert (verdict.outcome, verdict.failed_step) == (Outcome.INVALID, Step.CONFIRMATIONS)
    head = chain.w3.eth.block_number
    assert verdict.anchor is not None and verdict.anchor.confirmations == head - honest.receipts[2].block_number + 1


def test_both_nodes_answer_a_merkle_receipt_alike(node: LocalNode, registry: Registry, w3: Web3) -> None:
    """Valid on anvil and ganache, and the registry's revert (a root never anchored) read from either node's
    error shape."""
    chain = Chain(node.rpc_url, w3, registry.sender, registry, "", "", "", b"")  # type: ignore[arg-type]
    anchored = _anchor(chain, [_signed(chain, SIGNER) for _ in range(3)])
    assert _verify(chain, anchored.receipts[2]).ok
    never = _anchor(chain, [_signed(chain, SIGNER) for _ in range(2)], anchor=False)
    verdict = _verify(chain, never.receipts[0])
    assert (verdict.outcome, verdict.failed_step) == (Outcome.NOT_REGISTERED, Step.RECORD), verdict.summary


# ---------------------------------------------------------------------------- verdicts beside VALID


def test_a_leaf_revoked_with_its_proof_is_revoked(chain: Chain) -> None:
    anchored = _anchor(chain, [_signed(chain, SIGNER) for _ in range(3)])
    item, receipt = anchored.items[1], anchored.receipts[1]
    reg = item.registration
    revocation = td.Revocation(reg.doc_hash, reg.signer, nonce=chain.registry.nonce(reg.signer), deadline=2**40)
    tx = chain.registry.revoke_merkle_by_sig(
        item, anchored.tree.proof(1), revocation, td.sign(chain.registry.domain, revocation, SIGNER)
    )
    verdict = _verify(chain, receipt)
    assert (verdict.outcome, verdict.failed_step) == (Outcome.REVOKED, Step.REVOCATION)
    assert verdict.revocation is not None
    assert (verdict.revocation.by, verdict.revocation.block_number) == (reg.signer, tx["blockNumber"])
    assert verdict.revocation.timestamp == chain.w3.eth.get_block(tx["blockNumber"])["timestamp"]
    assert _verify(chain, anchored.receipts[0]).ok  # the tree's other leaves stand


def test_a_root_never_anchored_is_not_registered(chain: Chain) -> None:
    """A receipt whose tree is complete and signed but whose root the registry never anchored: its transaction
    anchored another root."""
    anchored = _anchor(chain, [_signed(chain, SIGNER) for _ in range(2)], anchor=False)
    verdict = _verify(chain, anchored.receipts[0])
    assert (verdict.outcome, verdict.failed_step) == (Outcome.NOT_REGISTERED, Step.RECORD)
    assert verdict.reason == f"root {to_hex(anchored.tree.root)} is not anchored in registry {chain.registry.address}"


def test_a_deadline_past_when_the_root_was_anchored_is_refused_with_the_registrys_reason(chain: Chain) -> None:
    now = int(chain.w3.eth.get_block("latest")["timestamp"])
    late = _signed(chain, SIGNER, deadline=now - 1)
    anchored = _anchor(chain, [late, _signed(chain, SIGNER)])
    verdict = _verify(chain, anchored.receipts[0])
    assert (verdict.outcome, verdict.failed_step) == (Outcome.INVALID, Step.RECORD)
    assert verdict.reason == (
        f"the signature's deadline {now - 1} had passed when root {to_hex(anchored.tree.root)} was anchored"
    )


def test_a_merkle_registration_is_not_found_without_its_receipt(chain: Chain, honest: Anchored) -> None:
    receipt = honest.receipts[3]
    pin = Pin(chain.registry.chain_id, chain.registry.address, "the test's deployment")

    async def go(signer: str | None) -> Verdict:
        async with JsonRpc(chain.url) as rpc:
            return await verify(ChainReader(rpc), Question(receipt.doc_hash, signer=signer), pin=pin)

    for signer in (receipt.signer, None):
        verdict = asyncio.run(go(signer))
        assert (verdict.outcome, verdict.failed_step) == (Outcome.NOT_REGISTERED, Step.RECORD)
        assert verdict.reason is not None and "Merkle-anchored signature is verified with its receipt" in verdict.reason


def test_the_release_1_registry_is_release_1(chain: Chain) -> None:
    """The matrix's release-1 registry runs release 1's code as contracts/releases.json lists it."""
    code = chain.w3.eth.get_code(Web3.to_checksum_address(chain.release_1))
    release = release_of(bytes(code))
    assert release is not None and release.number == 1 and not release.anchors_roots


# ---------------------------------------------------------------------------- the tamper matrix


Mutation = Callable[[dict[str, Any], "Context"], None]


@dataclass(frozen=True)
class Context:
    chain: Chain
    other_anchor: Receipt  # a receipt of another tree, anchored by another anchorRoot transaction
    plain_tx: str  # a transaction that never called the registry


@pytest.fixture(scope="module")
def target(honest: Anchored) -> tuple[Receipt, SignedRegistration]:
    """The honest receipt the matrix tampers with: the leaf at sorted place 0, three levels deep in five."""
    (i,) = [i for i, r in enumerate(honest.receipts) if r.merkle is not None and r.merkle.index == 0]
    inclusion = honest.receipts[i].merkle
    assert inclusion is not None and len(inclusion.proof) == 3
    return honest.receipts[i], honest.items[i]


@pytest.fixture(scope="module")
def context(chain: Chain) -> Context:
    other = _anchor(chain, [_signed(chain, SIGNER) for _ in range(2)]).receipts[0]
    plain = chain.relayer.transact(OTHER, b"", value=1)
    return Context(chain, other, to_hex(bytes(plain["transactionHash"])))


def _set(*paths: str, value: Callable[[Any, Context], Any]) -> Mutation:
    def mutate(r: dict[str, Any], ctx: Context) -> None:
        for path in paths:
            *parents, last = path.split(".")
            target: Any = r
            for p in parents:
                target = target[int(p)] if isinstance(target, list) else target[p]
            key: Any = int(last) if isinstance(target, list) else last
            target[key] = value(target[key], ctx)

    return mutate


def _flip(text: str, _: Context) -> str:
    raw = bytearray(bytes.fromhex(text[2:]))
    raw[-1] ^= 1
    return to_hex(bytes(raw))


def _same_depth_count(count: int, ctx: Context) -> int:
    return count + 1  # 5 -> 6 leaves: the tampered leaf (sorted place 0) stays 3 levels deep


@dataclass(frozen=True)
class Case:
    name: str
    mutate: Mutation | None
    step: str  # the failed step, "valid", or "receipt" for the strict reader's refusal
    outcome: Outcome = Outcome.INVALID


M = "anchor.merkle"
CASES = [
    Case("honest receipt", None, "valid", Outcome.VALID),
    Case(f"{M}.root", _set(f"{M}.root", value=_flip), "record"),
    Case(
        f"{M}.root → another anchored root",
        _set(f"{M}.root", value=lambda v, c: c.other_anchor.to_json()["anchor"]["merkle"]["root"]),
        "record",
    ),
    Case(f"{M}.proof[0]", _set(f"{M}.proof.0", value=_flip), "record"),
    Case(f"{M}.proof (last hash)", _set(f"{M}.proof.2", value=_flip), "record"),
    Case(f"{M}.proof (a hash dropped)", _set(f"{M}.proof", value=lambda v, c: v[:-1]), "receipt"),
    Case(f"{M}.leafIndex (a place of another depth)", _set(f"{M}.leafIndex", value=lambda v, c: 4), "receipt"),
    # the hashing is order-free: leafIndex fixes the proof's length (the leaf's depth), not which place at it
    Case(
        f"{M}.leafIndex (another place of the same depth: informative)",
        _set(f"{M}.leafIndex", value=lambda v, c: 1),
        "valid",
        Outcome.VALID,
    ),
    Case(f"{M}.leafIndex (past leafCount)", _set(f"{M}.leafIndex", value=lambda v, c: 5), "receipt"),
    Case(
        f"{M}.leafCount (a tree of another size, same depth)", _set(f"{M}.leafCount", value=_same_depth_count), "anchor"
    ),
    Case(f"{M}.leafCount (one leaf)", _set(f"{M}.leafCount", value=lambda v, c: 1), "receipt"),
    Case(f"{M} → null", _set(M, value=lambda v, c: None), "receipt"),
    Case("docchainReceipt → 1", _set("docchainReceipt", value=lambda v, c: 1), "receipt"),
    Case(
        "document.sha256 + eip712.message.docHash",
        _set("document.sha256", "eip712.message.docHash", value=_flip),
        "file",
        Outcome.FILE_MISMATCH,
    ),
    Case(
        "signer + eip712.message.signer", _set("signer", "eip712.message.signer", value=lambda v, c: OTHER), "signature"
    ),
    Case("eip712.message.metadataHash", _set("eip712.message.metadataHash", value=_flip), "signature"),
    Case("eip712.message.supersedes", _set("eip712.message.supersedes", value=_flip), "signature"),
    Case("eip712.message.deadline", _set("eip712.message.deadline", value=lambda v, c: v + 1), "signature"),
    Case("signature (one bit)", _set("signature", value=_flip), "signature"),
    Case("chainId + eip712.domain.chainId", _set("chainId", "eip712.domain.chainId", value=lambda v, c: 1), "chain"),
    Case(
        "contract → a look-alike registry",
        _set("contract", "eip712.domain.verifyingContract", value=lambda v, c: c.chain.lookalike),
        "registry",
    ),
    Case(
        "contract → a registry of release 1",
        _set("contract", "eip712.domain.verifyingContract", value=lambda v, c: c.chain.release_1),
        "registry",
    ),
    Case(
        "anchor.transactionHash (random)", _set("anchor.transactionHash", value=lambda v, c: "0x" + "ab" * 32), "anchor"
    ),
    Case(
        "anchor.transactionHash (another anchorRoot transaction)",
        _set("anchor.transactionHash", value=lambda v, c: to_hex(c.other_anchor.tx_hash)),
        "anchor",
    ),
    Case(
        "anchor.transactionHash + block (another anchorRoot transaction)",
        _set(
            "anchor",
            value=lambda v, c: {
                **v,
                **{k: c.other_anchor.to_json()["anchor"][k] for k in ("transactionHash", "blockNumber", "blockHash")},
                "timestamp": c.other_anchor.timestamp,
            },
        ),
        "anchor",
    ),
    Case(
        "anchor.transactionHash (a transaction to another address)",
        _set("anchor.transactionHash", value=lambda v, c: c.plain_tx),
        "anchor",
    ),
    Case("anchor.blockNumber", _set("anchor.blockNumber", value=lambda v, c: v + 1), "anchor"),
    Case("anchor.blockHash", _set("anchor.blockHash", value=_flip), "anchor"),
    Case("anchor.timestamp (an hour earlier)", _set("anchor.timestamp", value=lambda v, c: v - 3600), "anchor"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_tampered_field_fails_at_its_step(
    context: Context, target: tuple[Receipt, SignedRegistration], case: Case
) -> None:
    honest = target[0]
    data = copy.deepcopy(honest.to_json())
    if case.mutate is not None:
        case.mutate(data, context)
    try:
        receipt = parse_receipt(data)
    except InvalidInput:
        assert case.step == "receipt"
        return
    assert case.step != "receipt", "the strict reader let it through"
    # the file is the honest one: a receipt for another document is a file mismatch
    verdict = _verify_file(context.chain, honest.doc_hash, receipt)
    step = "valid" if verdict.ok else str(verdict.failed_step)
    assert (step, verdict.outcome) == (case.step, case.outcome), verdict.summary
    if not verdict.ok:
        assert verdict.reason and (verdict.steps[-1].name, verdict.steps[-1].ok) == (verdict.failed_step, False)


def _verify_file(chain: Chain, doc_hash: bytes, receipt: Receipt) -> Verdict:
    async def go() -> Verdict:
        async with JsonRpc(chain.url) as rpc:
            return await verify(ChainReader(rpc), Question(doc_hash, receipt=receipt))

    return asyncio.run(go())


def test_the_reasons_name_what_is_wrong(context: Context, target: tuple[Receipt, SignedRegistration]) -> None:
    """The record and anchor failures of the matrix, word for word: a verifier's user reads these."""
    honest, item = target
    honest_json = honest.to_json()
    root = honest_json["anchor"]["merkle"]["root"]
    tx = honest_json["anchor"]["transactionHash"]
    leaf = to_hex(merkle.leaf(item.registration, item.signature))

    def reason(case_name: str) -> str:
        case = next(c for c in CASES if c.name == case_name)
        data = copy.deepcopy(honest_json)
        assert case.mutate is not None
        case.mutate(data, context)
        verdict = _verify_file(context.chain, honest.doc_hash, parse_receipt(data))
        assert verdict.reason is not None
        return verdict.reason

    flipped = _flip(root, context)
    assert reason(f"{M}.root").startswith(
        f"the receipt's registration (leaf {leaf}) is not in the tree of root {flipped}: its proof leads to {root}"
    )
    assert reason(f"{M}.leafCount (a tree of another size, same depth)") == (
        f"transaction {tx} anchored root {root} as a tree of 5 leaves, the receipt says 6"
    )
    other_tx = to_hex(context.other_anchor.tx_hash)
    assert reason("anchor.transactionHash + block (another anchorRoot transaction)") == (
        f"transaction {other_tx} did not anchor root {root}"
    )
    assert reason("anchor.transactionHash (a transaction to another address)") == (
        f"transaction {context.plain_tx} was sent to {OTHER}, not to the registry {context.chain.registry.address}"
    )
    assert reason("contract → a registry of release 1").startswith(
        f"the receipt is Merkle-anchored, but the registry at {context.chain.release_1} is DocumentRegistry 1"
    )


# ---------------------------------------------------------------------------- without the receipt


def _verify_by_hash(chain: Chain, doc_hash: bytes, signer: str | None) -> Verdict:
    pin = Pin(chain.registry.chain_id, chain.registry.address, "the test's deployment")

    async def go() -> Verdict:
        async with JsonRpc(chain.url) as rpc:
            return await verify(ChainReader(rpc), Question(doc_hash, signer=signer), pin=pin)

    return asyncio.run(go())


def test_a_revoked_leaf_is_revoked_without_its_receipt(chain: Chain) -> None:
    """The chain keeps the leaf's revocation (and its Revoked event) though it holds no registration of it: the
    file alone, with or without the expected signer, is revoked by its signer, in that block, at that time."""
    anchored = _anchor(chain, [_signed(chain, SIGNER) for _ in range(2)])
    item = anchored.items[0]
    reg = item.registration
    revocation = td.Revocation(reg.doc_hash, reg.signer, nonce=chain.registry.nonce(reg.signer), deadline=2**40)
    tx = chain.registry.revoke_merkle_by_sig(
        item, anchored.tree.proof(0), revocation, td.sign(chain.registry.domain, revocation, SIGNER)
    )
    when = int(chain.w3.eth.get_block(tx["blockNumber"])["timestamp"])
    for signer in (None, reg.signer):
        verdict = _verify_by_hash(chain, reg.doc_hash, signer)
        assert (verdict.outcome, verdict.failed_step) == (Outcome.REVOKED, Step.REVOCATION)
        assert verdict.revocation is not None
        assert (verdict.revocation.by, verdict.revocation.block_number) == (reg.signer, tx["blockNumber"])
        assert verdict.revocation.timestamp == when
        block = tx["blockNumber"]
        assert verdict.summary == f"{reg.signer} revoked this signature in block {block} on {utc_text(when)}."
    other = anchored.items[1].registration  # its tree's other leaf stands, unseen without its receipt
    assert _verify_by_hash(chain, other.doc_hash, None).outcome is Outcome.NOT_REGISTERED


def test_not_registered_without_a_receipt_says_only_what_the_chain_shows(chain: Chain, honest: Anchored) -> None:
    reg = honest.items[2].registration
    registry = chain.registry.address
    by_hash = _verify_by_hash(chain, reg.doc_hash, None)
    assert by_hash.summary == (
        f"No signature of this file is recorded on chain in {registry}; "
        "a Merkle-anchored or private signature is verified with its receipt."
    )
    by_signer = _verify_by_hash(chain, reg.doc_hash, reg.signer)
    assert by_signer.summary == (
        f"No signature of this file by {reg.signer} is recorded on chain in {registry}; "
        "a Merkle-anchored or private signature is verified with its receipt."
    )
    never = _anchor(chain, [_signed(chain, SIGNER)], anchor=False)  # with its receipt, only what the chain shows
    assert _verify(chain, never.receipts[0]).summary == (
        f"No signature of this file by {never.items[0].registration.signer} is recorded on chain in {registry}."
    )
