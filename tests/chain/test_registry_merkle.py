"""The registry's Merkle anchoring on real nodes (anvil and ganache): a root anchored once, a signed registration
confirmed by one eth_call (inclusion under the root AND the signer's signature, ECDSA or ERC-1271), each way of
getting it wrong refused by name, and revocation of an anchored registration seen by the same view. Trees come
from chain/merkle.py, so these tests also prove the Python tree and the contract agree."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from web3 import Web3

from docchain.chain import artifacts, merkle
from docchain.chain import typed_data as td
from docchain.chain.errors import ContractRevert, InvalidInput
from docchain.chain.hashing import keccak256
from docchain.chain.node import LocalNode
from docchain.chain.registry import (
    ROOT_ANCHORED_TOPIC,
    Record,
    Registry,
    RegistryReader,
    SignedRegistration,
    decode_rpc_root_anchored,
)
from docchain.chain.rpc import JsonRpc
from docchain.chain.sender import TxSender
from docchain.chain.values import to_hex

HOUR = 3600


@pytest.fixture(scope="module")
def wallet_owner() -> bytes:
    return os.urandom(32)


@pytest.fixture(scope="module")
def wallet(relayer: TxSender, wallet_owner: bytes) -> str:
    """An ERC-1271 contract wallet that accepts its owner's signatures, as a multisig would."""
    ctor_arg = bytes(12) + bytes.fromhex(td.address_of(wallet_owner)[2:])
    address = relayer.transact(None, artifacts.load("MockERC1271Wallet").bytecode + ctor_arg)["contractAddress"]
    return Web3.to_checksum_address(str(address))


def signed(registry: Registry, key: bytes, signer: str | None = None, **fields: object) -> SignedRegistration:
    reg = td.Registration(
        doc_hash=os.urandom(32),
        signer=signer or td.address_of(key),
        deadline=int(time.time()) + HOUR,
        metadata_hash=os.urandom(32),
        supersedes=os.urandom(32),
    )
    reg = dataclasses.replace(reg, **fields)  # type: ignore[arg-type]
    return SignedRegistration(reg, td.sign(registry.domain, reg, key))


def anchored(registry: Registry, items: Sequence[SignedRegistration]) -> merkle.MerkleTree:
    tree = merkle.MerkleTree.of([merkle.leaf(i.registration, i.signature) for i in items])
    registry.anchor_root(tree.root, len(items))
    return tree


def reverts(name: str, *args: object) -> pytest.RaisesExc[ContractRevert]:
    return pytest.raises(ContractRevert, check=lambda e: e.name == name and (not args or e.args_ == args))


def test_the_contracts_leaf_is_the_python_leaf(registry: Registry) -> None:
    item = signed(registry, os.urandom(32))
    assert registry.leaf_hash(item) == merkle.leaf(item.registration, item.signature)


def test_an_anchored_root_confirms_every_leaf_with_the_anchoring_time(registry: Registry, w3: Web3) -> None:
    items = [signed(registry, os.urandom(32)) for _ in range(5)]
    tree = merkle.MerkleTree.of([merkle.leaf(i.registration, i.signature) for i in items])
    receipt = registry.anchor_root(tree.root, 5)
    block = w3.eth.get_block(receipt["blockNumber"])

    (event,) = registry.roots_in(receipt)
    assert (event.root, event.leaf_count, event.sender) == (tree.root, 5, registry.sender.address)  # type: ignore[union-attr]
    assert registry.root_events(receipt["blockNumber"], receipt["blockNumber"], root=tree.root) == [event]
    assert registry.events_in(receipt) == []  # no Registered event: the registry never sees the leaves
    anchor = registry.anchor(tree.root)
    assert (anchor.anchored_at, anchor.block_number) == (block["timestamp"], receipt["blockNumber"])
    for i, item in enumerate(items):
        record = registry.verify_merkle_registration(item, tree.proof(i))
        assert record == Record(block["timestamp"], receipt["blockNumber"], 0)
        # no direct record is written: a Merkle registration lives in its root only
        assert not registry.record(item.registration.doc_hash, item.registration.signer).exists


def test_a_root_is_anchored_once_and_never_empty(registry: Registry) -> None:
    tree = anchored(registry, [signed(registry, os.urandom(32))])
    first = registry.anchor(tree.root)
    with reverts("RootAlreadyAnchored", tree.root):
        registry.anchor_root(tree.root, 1)
    assert registry.anchor(tree.root) == first
    root = os.urandom(32)
    with reverts("EmptyTree", root):
        registry.anchor_root(root, 0)
    assert not registry.anchor(root).exists


def test_a_single_leaf_tree_has_an_empty_proof(registry: Registry) -> None:
    item = signed(registry, os.urandom(32))
    tree = anchored(registry, [item])
    assert tree.proof(0).proof == () and tree.root == merkle.leaf(item.registration, item.signature)
    assert registry.verify_merkle_registration(item, tree.proof(0)).registered_at != 0


def test_a_contract_wallet_signs_a_leaf_through_erc1271(registry: Registry, wallet: str, wallet_owner: bytes) -> None:
    by_wallet = signed(registry, wallet_owner, signer=wallet)  # the owner's key approves on the wallet's behalf
    by_stranger = signed(registry, os.urandom(32), signer=wallet)
    tree = anchored(registry, [by_wallet, by_stranger, signed(registry, os.urandom(32))])
    assert registry.verify_merkle_registration(by_wallet, tree.proof(0)).registered_at != 0
    # anchoring is open to anyone, so a leaf with a signature the wallet refuses can be anchored: the view says so
    with reverts("InvalidSignature", by_stranger.registration.doc_hash, wallet):
        registry.verify_merkle_registration(by_stranger, tree.proof(1))


def _altered(item: SignedRegistration, field: str) -> SignedRegistration:
    if field == "signature":
        sig = bytearray(item.signature)
        sig[10] ^= 1
        return SignedRegistration(item.registration, bytes(sig))
    if field == "signer":
        return SignedRegistration(
            dataclasses.replace(item.registration, signer=td.address_of(os.urandom(32))), item.signature
        )
    if field == "deadline":
        return SignedRegistration(
            dataclasses.replace(item.registration, deadline=item.registration.deadline + 1), item.signature
        )
    value = bytearray(getattr(item.registration, field))
    value[0] ^= 1
    altered = dataclasses.replace(item.registration, **{field: bytes(value)})  # type: ignore[arg-type]
    return SignedRegistration(altered, item.signature)


@pytest.mark.parametrize(
    ("field", "error"),
    [
        # fields in the leaf: the altered registration is not in the tree
        ("doc_hash", "NotInTree"),
        ("signer", "NotInTree"),
        ("metadata_hash", "NotInTree"),
        ("signature", "NotInTree"),
        # fields only the signature covers: the leaf is found, the signature no longer matches
        ("supersedes", "InvalidSignature"),
        ("deadline", "InvalidSignature"),
    ],
)
def test_an_altered_registration_is_refused_by_name(registry: Registry, field: str, error: str) -> None:
    items = [signed(registry, os.urandom(32)) for _ in range(4)]
    tree = anchored(registry, items)
    bad = _altered(items[2], field)
    if error == "NotInTree":
        expected: tuple[object, ...] = (merkle.leaf(bad.registration, bad.signature), tree.root)
    else:
        expected = (bad.registration.doc_hash, bad.registration.signer)
    with reverts(error, *expected):
        registry.verify_merkle_registration(bad, tree.proof(2))


def test_wrong_proofs_roots_and_signatures_are_refused_by_name(registry: Registry) -> None:
    key = os.urandom(32)
    items = [signed(registry, key) for _ in range(7)]  # with the forgery, 8: every proof holds 3 hashes
    forged = signed(registry, os.urandom(32), signer=td.address_of(key))  # another key signs for `key`'s address
    tree = anchored(registry, [*items, forged])
    leaf0 = merkle.leaf(items[0].registration, items[0].signature)

    with reverts("NotInTree", leaf0, tree.root):
        registry.verify_merkle_registration(items[0], tree.proof(1))  # a sibling's proof
    short = dataclasses.replace(tree.proof(0), proof=tree.proof(0).proof[:-1], count=4, index=0)
    with reverts("NotInTree", leaf0, tree.root):
        registry.verify_merkle_registration(items[0], short)
    unanchored = merkle.MerkleTree.of([leaf0, os.urandom(32)])
    with reverts("RootNotAnchored", unanchored.root):
        registry.verify_merkle_registration(items[0], unanchored.proof(0))
    with reverts("InvalidSignature", forged.registration.doc_hash, forged.registration.signer):
        registry.verify_merkle_registration(forged, tree.proof(7))
    other_domain = td.Domain(chain_id=registry.chain_id + 1, verifying_contract=registry.address)
    replayed = SignedRegistration(items[3].registration, td.sign(other_domain, items[3].registration, key))
    tree2 = anchored(registry, [replayed])
    with reverts("InvalidSignature"):
        registry.verify_merkle_registration(replayed, tree2.proof(0))


def test_a_registration_past_its_deadline_when_anchored_is_expired(registry: Registry, w3: Web3) -> None:
    now = int(w3.eth.get_block("latest")["timestamp"])
    late = signed(registry, os.urandom(32), deadline=now - 1)
    tree = anchored(registry, [late, signed(registry, os.urandom(32))])
    with reverts("ExpiredSignature", now - 1):
        registry.verify_merkle_registration(late, tree.proof(0))


def _revocation(registry: Registry, item: SignedRegistration, key: bytes) -> tuple[td.Revocation, bytes]:
    reg = item.registration
    revocation = td.Revocation(reg.doc_hash, reg.signer, nonce=registry.nonce(reg.signer), deadline=reg.deadline)
    return revocation, td.sign(registry.domain, revocation, key)


def test_a_signed_revocation_revokes_an_anchored_registration(registry: Registry, w3: Web3) -> None:
    key = os.urandom(32)
    items = [signed(registry, key) for _ in range(3)]
    tree = anchored(registry, items)
    item, inclusion = items[1], tree.proof(1)
    reg = item.registration
    revocation, signature = _revocation(registry, item, key)

    receipt = registry.revoke_merkle_by_sig(item, inclusion, revocation, signature)
    block = w3.eth.get_block(receipt["blockNumber"])
    (event,) = registry.events_in(receipt)
    assert (event.kind, event.doc_hash, event.signer) == ("Revoked", reg.doc_hash, reg.signer)
    record = registry.verify_merkle_registration(item, inclusion)
    assert record.revoked and record.revoked_at == block["timestamp"]
    assert registry.nonce(reg.signer) == 1  # consumed: the signed revocation cannot be replayed
    assert not registry.verify_merkle_registration(items[0], tree.proof(0)).revoked  # the other leaves stand

    again, again_sig = _revocation(registry, item, key)
    with reverts("AlreadyRevoked", reg.doc_hash, reg.signer):
        registry.revoke_merkle_by_sig(item, inclusion, again, again_sig)
    # the revocation is kept per (docHash, signer): registering the same signature directly cannot revive it
    registry.register(item)
    assert registry.record(reg.doc_hash, reg.signer).revoked_at == block["timestamp"]


def test_a_revocation_needs_the_signers_signature_and_an_anchored_leaf(registry: Registry) -> None:
    key = os.urandom(32)
    items = [signed(registry, key) for _ in range(2)]
    tree = anchored(registry, items)
    item, reg = items[0], items[0].registration
    revocation, signature = _revocation(registry, item, key)
    stranger_sig = td.sign(registry.domain, revocation, os.urandom(32))
    with reverts("InvalidSignature", reg.doc_hash, reg.signer):
        registry.revoke_merkle_by_sig(item, tree.proof(0), revocation, stranger_sig)
    with reverts("InvalidSignature", reg.doc_hash, reg.signer):
        registry.revoke_merkle_by_sig(item, tree.proof(0), revocation, item.signature)  # a registration's signature
    never = signed(registry, key)
    with reverts("NotInTree", merkle.leaf(never.registration, never.signature), tree.root):
        registry.revoke_merkle_by_sig(
            never, tree.proof(0), dataclasses.replace(revocation, doc_hash=never.registration.doc_hash), signature
        )
    lone = merkle.MerkleTree.of([merkle.leaf(reg, item.signature), os.urandom(32)])
    with reverts("RootNotAnchored", lone.root):
        registry.revoke_merkle_by_sig(item, lone.proof(0), revocation, signature)
    with pytest.raises(InvalidInput):
        registry.revoke_merkle_by_sig(items[1], tree.proof(1), revocation, signature)  # names another document
    assert registry.nonce(reg.signer) == 0
    assert not registry.verify_merkle_registration(item, tree.proof(0)).revoked


def test_a_direct_revocation_is_seen_by_the_merkle_view(registry: Registry) -> None:
    """One signature of (docHash, signer) may be both registered and anchored; withdrawing it withdraws both."""
    key = os.urandom(32)
    item = signed(registry, key)
    tree = anchored(registry, [item, signed(registry, key)])
    registry.register(item)
    revocation, signature = _revocation(registry, item, key)
    registry.revoke_by_sig(revocation, signature)
    assert registry.verify_merkle_registration(item, tree.proof(0)).revoked


def test_the_async_reader_confirms_as_the_blocking_binding_does(node: LocalNode, registry: Registry) -> None:
    items = [signed(registry, os.urandom(32)) for _ in range(3)]
    tree = merkle.MerkleTree.of([merkle.leaf(i.registration, i.signature) for i in items])
    receipt = registry.anchor_root(tree.root, 3)
    unanchored = merkle.MerkleTree.of([os.urandom(32), os.urandom(32)])

    async def go() -> tuple[object, ...]:
        async with JsonRpc(node.rpc_url) as rpc:
            reader = RegistryReader(rpc, registry.address, registry.chain_id)
            record = await reader.verify_merkle_registration(items[2], tree.proof(2))
            anchor = await reader.anchor(tree.root)
            with reverts("RootNotAnchored", unanchored.root):
                await reader.verify_merkle_registration(
                    items[0], dataclasses.replace(tree.proof(0), root=unanchored.root)
                )
            block = hex(receipt["blockNumber"])
            logs = await rpc.call(
                "eth_getLogs",
                [
                    {
                        "address": registry.address,
                        "fromBlock": block,
                        "toBlock": block,
                        "topics": [to_hex(ROOT_ANCHORED_TOPIC)],
                    }
                ],
            )
            return record, anchor, [decode_rpc_root_anchored(log) for log in logs]

    record, anchor, events = asyncio.run(go())
    assert record == registry.verify_merkle_registration(items[2], tree.proof(2))
    assert anchor == registry.anchor(tree.root)
    assert events == registry.roots_in(receipt)


@settings(max_examples=12, deadline=None)
@given(size=st.integers(1, 40), data=st.data())
def test_every_proof_of_a_random_tree_verifies_and_no_altered_one_does(
    node: LocalNode, registry: Registry, size: int, data: st.DataObject
) -> None:
    if node.config.kind == "ganache":
        pytest.skip("the property runs on anvil; the tests above show ganache answers the same")
    key = os.urandom(32)
    items = [signed(registry, key) for _ in range(size)]
    tree = anchored(registry, items)
    i = data.draw(st.integers(0, size - 1), label="leaf")
    inclusion = tree.proof(i)
    assert inclusion.verifies(merkle.leaf(items[i].registration, items[i].signature))
    assert registry.verify_merkle_registration(items[i], inclusion).registered_at != 0
    # drawn whatever the proof's length, which depends on the random keys: hypothesis replays draws, not keys
    which, bit = data.draw(st.integers(0, 63), label="hash"), data.draw(st.integers(0, 255), label="bit")
    if inclusion.proof:
        j = which % len(inclusion.proof)
        hashes = list(inclusion.proof)
        hashes[j] = (int.from_bytes(hashes[j], "big") ^ (1 << bit)).to_bytes(32, "big")
        bad = dataclasses.replace(inclusion, proof=tuple(hashes))
        assert not bad.verifies(merkle.leaf(items[i].registration, items[i].signature))
        with reverts("NotInTree"):
            registry.verify_merkle_registration(items[i], bad)
    other = data.draw(
        st.sampled_from(["doc_hash", "signer", "metadata_hash", "signature", "supersedes"]), label="field"
    )
    with pytest.raises(ContractRevert):
        registry.verify_merkle_registration(_altered(items[i], other), inclusion)
    wrong_root = keccak256(tree.root)
    with reverts("RootNotAnchored", wrong_root):
        registry.verify_merkle_registration(items[i], dataclasses.replace(inclusion, root=wrong_root))
