"""Private registrations (chain/hashing.py's commitment, chain/receipt.py's ``private`` section) on both nodes: the
chain holds keccak256(sha256 || salt) and nothing from which the file's SHA-256 could be read or searched; the
receipt with its salt verifies online (chain/verify.py) and offline from its evidence (chain/offline.py), with the
``commitment`` step between the file and the rest; a wrong salt or another file ends verification at its step;
the file alone finds nothing and says that a private signature needs its receipt; a private Merkle leaf (whose
leaf is of the commitment) verifies online and from its bundle."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from web3 import Web3

from docchain.chain import merkle
from docchain.chain.capture import capture_evidence
from docchain.chain.errors import InvalidInput
from docchain.chain.evidence import record_slot
from docchain.chain.hashing import SALT_BYTES, commitment, keccak256, sha256_bytes
from docchain.chain.offline import proven_slots, verify_offline
from docchain.chain.receipt import Private, Receipt, build_receipt, parse_receipt
from docchain.chain.registry import Registry, SignedRegistration, encode_call
from docchain.chain.rpc import ChainReader, JsonRpc
from docchain.chain.trust import Pin
from docchain.chain.typed_data import Registration, address_of, sign
from docchain.chain.values import to_hex
from docchain.chain.verify import Outcome, Question, Step, Verdict, verify

SCHEMA = jsonschema.Draft202012Validator(
    json.loads((Path(__file__).parents[2] / "docs" / "receipt.schema.json").read_text())
)
ALICE = bytes.fromhex("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")


def _url(w3: Web3) -> str:
    return str(w3.provider.endpoint_uri)  # type: ignore[attr-defined]


@dataclasses.dataclass(frozen=True)
class PrivateBundle:
    doc: bytes
    receipt: Receipt  # with its salt and its evidence

    @property
    def sha256(self) -> bytes:
        return sha256_bytes(self.doc)


@pytest.fixture(scope="module")
def private(registry: Registry, w3: Web3) -> PrivateBundle:
    doc = b"private " + os.urandom(16)
    salt = os.urandom(SALT_BYTES)
    reg = Registration(
        doc_hash=commitment(sha256_bytes(doc), salt), signer=address_of(ALICE), deadline=int(time.time()) + 3600
    )
    signed = SignedRegistration(reg, sign(registry.domain, reg, ALICE))
    receipt = dataclasses.replace(
        registry.receipt_for(signed, registry.register(signed)), private=Private(sha256_bytes(doc), salt)
    )

    async def capture() -> Receipt:
        async with JsonRpc(_url(w3)) as rpc:
            [evidence] = await capture_evidence(rpc, registry.address, [proven_slots(receipt)])
        return dataclasses.replace(receipt, evidence=evidence)

    return PrivateBundle(doc, asyncio.run(capture()))


def _online(w3: Web3, question: Question, **kwargs: Any) -> Verdict:
    async def go() -> Verdict:
        async with JsonRpc(_url(w3)) as rpc:
            return await verify(ChainReader(rpc), question, **kwargs)

    return asyncio.run(go())


def _offline(p: PrivateBundle, receipt: Receipt | None = None, doc: bytes | None = None) -> Verdict:
    r = receipt or p.receipt
    assert r.evidence is not None
    return verify_offline(sha256_bytes(p.doc if doc is None else doc), r, r.evidence.block.hash)


def _with_salt(receipt: Receipt, salt: bytes) -> Receipt:
    assert receipt.private is not None
    return dataclasses.replace(receipt, private=Private(receipt.private.sha256, salt))


def test_the_commitment_is_keccak256_of_the_sha256_and_the_salt() -> None:
    sha, salt = sha256_bytes(b"a file"), bytes(range(32))
    assert commitment(sha, salt) == keccak256(sha + salt)
    assert commitment(sha, salt) != commitment(sha, bytes(32))
    with pytest.raises(ValueError, match="32-byte salt"):
        commitment(sha, salt[:16])


def test_the_receipt_keeps_the_files_sha256_and_the_salt_and_reads_back(private: PrivateBundle) -> None:
    r = private.receipt
    text = r.dumps()
    body = json.loads(text)
    assert [e.message for e in SCHEMA.iter_errors(body)] == []
    assert body["document"]["sha256"] == to_hex(private.sha256)
    assert body["eip712"]["message"]["docHash"] == to_hex(commitment(private.sha256, r.private.salt))  # type: ignore[union-attr]
    assert body["private"] == {"salt": to_hex(r.private.salt)}  # type: ignore[union-attr]
    assert parse_receipt(text) == r
    assert (r.sha256, to_hex(r.doc_hash)) == (private.sha256, body["eip712"]["message"]["docHash"])


def test_a_private_receipt_whose_dochash_is_the_files_sha256_is_refused(private: PrivateBundle) -> None:
    body = json.loads(private.receipt.dumps())
    body["eip712"]["message"]["docHash"] = body["document"]["sha256"]
    with pytest.raises(InvalidInput, match="a private receipt's eip712.message.docHash is the commitment"):
        parse_receipt(json.dumps(body))


def test_the_chain_holds_the_commitment_and_nothing_of_the_files_sha256(private: PrivateBundle, w3: Web3) -> None:
    r, sha = private.receipt, private.sha256
    tx = w3.eth.get_transaction(to_hex(r.tx_hash))
    assert sha not in bytes(tx["input"]) and r.doc_hash in bytes(tx["input"])
    registry = Web3.to_checksum_address(r.domain.verifying_contract)
    logs = w3.eth.get_logs({"fromBlock": r.block_number, "toBlock": r.block_number, "address": registry})
    assert logs and any(bytes(log["topics"][1]) == r.doc_hash for log in logs)
    for log in logs:
        assert all(bytes(t) != sha for t in log["topics"]) and sha not in bytes(log["data"])
    # searched by the file's hash, the registry's events find nothing
    found = w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest", "topics": [None, to_hex(sha)]})
    assert found == []

    # its record is kept under the commitment's slot: none under the file's
    def word(slot: bytes) -> int:
        return int.from_bytes(bytes(w3.eth.get_storage_at(registry, int.from_bytes(slot, "big"))), "big")

    assert word(record_slot(sha, r.signer)) == 0
    assert word(record_slot(r.doc_hash, r.signer)) != 0
    assert proven_slots(r) == (record_slot(r.doc_hash, r.signer),)
    raw = w3.eth.call({"to": registry, "data": to_hex(encode_call("recordOf", sha, r.signer))})
    assert bytes(raw) == bytes(96)


def test_the_receipt_verifies_online_with_the_commitment_step(private: PrivateBundle, w3: Web3) -> None:
    verdict = _online(w3, Question(private.sha256, receipt=private.receipt))
    assert verdict.outcome is Outcome.VALID, verdict.summary
    assert [c.name for c in verdict.steps][:3] == [Step.FILE, Step.COMMITMENT, Step.CHAIN]
    assert verdict.doc_hash == private.sha256
    assert verdict.anchor is not None and verdict.anchor.tx_hash == private.receipt.tx_hash
    assert to_hex(private.receipt.doc_hash) in verdict.steps[1].detail


def test_the_bundle_verifies_offline_with_the_commitment_step(private: PrivateBundle) -> None:
    verdict = _offline(private)
    assert verdict.outcome is Outcome.VALID, verdict.summary
    names = [c.name for c in verdict.steps]
    # the commitment step comes right after the file's; the rest are a public bundle's, in chain/offline.py's order
    assert names[:3] == [Step.FILE, Step.COMMITMENT, Step.SIGNATURE]
    assert sorted(names[3:]) == sorted(
        [Step.ANCHOR, Step.REGISTRY, Step.RECORD, Step.CONFIRMATIONS, Step.REVOCATION, Step.CHAIN]
    )
    receipt = private.receipt
    assert receipt.evidence is not None
    assert verify_offline(None, receipt, receipt.evidence.block.hash).ok  # the receipt's own document


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_a_wrong_salt_fails_at_the_commitment_step(private: PrivateBundle, w3: Web3, mode: str) -> None:
    wrong = _with_salt(private.receipt, os.urandom(SALT_BYTES))
    verdict = _online(w3, Question(private.sha256, receipt=wrong)) if mode == "online" else _offline(private, wrong)
    assert (verdict.outcome, verdict.failed_step) == (Outcome.INVALID, Step.COMMITMENT)
    assert verdict.reason == (
        f"keccak256(sha256 || salt) is {to_hex(commitment(private.sha256, wrong.private.salt))}, not the signed "  # type: ignore[union-attr]
        f"docHash {to_hex(private.receipt.doc_hash)}: the receipt's salt does not open this registration's commitment"
    )


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_another_file_under_the_receipt_is_a_file_mismatch(private: PrivateBundle, w3: Web3, mode: str) -> None:
    other = b"another file"
    if mode == "online":
        verdict = _online(w3, Question(sha256_bytes(other), receipt=private.receipt))
    else:
        verdict = _offline(private, doc=other)
    assert (verdict.outcome, verdict.failed_step) == (Outcome.FILE_MISMATCH, Step.FILE)


def test_a_receipt_claiming_another_file_fails_at_the_commitment_step(private: PrivateBundle, w3: Web3) -> None:
    # someone rewrites document.sha256 for a file of theirs: the salt no longer opens the signed commitment
    other = b"a file the signer never saw"
    assert private.receipt.private is not None
    claimed = dataclasses.replace(private.receipt, private=Private(sha256_bytes(other), private.receipt.private.salt))
    verdict = _online(w3, Question(sha256_bytes(other), receipt=claimed))
    assert verdict.failed_step is Step.COMMITMENT
    assert _offline(private, claimed, other).failed_step is Step.COMMITMENT


def test_the_file_alone_is_not_registered_and_says_a_private_record_needs_its_receipt(
    private: PrivateBundle, registry: Registry, w3: Web3
) -> None:
    pin = Pin(registry.chain_id, registry.address, "the test's deployment")
    for signer in (None, private.receipt.signer):
        verdict = _online(w3, Question(private.sha256, signer=signer), pin=pin)
        assert verdict.outcome is Outcome.NOT_REGISTERED, verdict.summary
        assert verdict.reason is not None and "a private signature is verified with its receipt" in verdict.reason
        assert verdict.summary.endswith("; a Merkle-anchored or private signature is verified with its receipt.")


def test_a_private_merkle_leaf_verifies_online_and_offline(registry: Registry, w3: Web3) -> None:
    # the leaf is of the signed registration, so of the commitment: the tree, too, holds nothing of the file
    docs = [b"private leaf " + os.urandom(16) for _ in range(3)]
    openings = [Private(sha256_bytes(d), os.urandom(SALT_BYTES)) for d in docs]
    items = []
    for opening in openings:
        reg = Registration(doc_hash=opening.commitment, signer=address_of(ALICE), deadline=int(time.time()) + 3600)
        items.append(SignedRegistration(reg, sign(registry.domain, reg, ALICE)))
    tree = merkle.MerkleTree.of([merkle.leaf(i.registration, i.signature) for i in items])
    tx = registry.anchor_root(tree.root, len(items))
    block = w3.eth.get_block(tx["blockNumber"])
    receipt = build_receipt(
        domain=registry.domain,
        registration=items[1].registration,
        signature=items[1].signature,
        tx_hash=bytes(tx["transactionHash"]),
        block_number=int(tx["blockNumber"]),
        block_hash=bytes(block["hash"]),
        timestamp=int(block["timestamp"]),
        merkle=tree.proof(tree.index_of(merkle.leaf(items[1].registration, items[1].signature))),
    )
    receipt = dataclasses.replace(receipt, private=openings[1])
    online = _online(w3, Question(sha256_bytes(docs[1]), receipt=receipt))
    assert online.outcome is Outcome.VALID, online.summary
    assert [c.name for c in online.steps][:2] == [Step.FILE, Step.COMMITMENT]

    async def capture() -> Receipt:
        async with JsonRpc(_url(w3)) as rpc:
            [evidence] = await capture_evidence(rpc, registry.address, [proven_slots(receipt)])
        return dataclasses.replace(receipt, evidence=evidence)

    bundle = asyncio.run(capture())
    assert bundle.merkle is not None and proven_slots(bundle)[1] == record_slot(openings[1].commitment, bundle.signer)
    assert bundle.evidence is not None
    offline = verify_offline(sha256_bytes(docs[1]), bundle, bundle.evidence.block.hash)
    assert offline.outcome is Outcome.VALID, offline.summary
    assert offline.anchor is not None and offline.anchor.merkle_root == tree.root
    wrong = verify_offline(sha256_bytes(docs[1]), dataclasses.replace(bundle, private=openings[0]), None)
    assert wrong.failed_step is Step.FILE  # another opening names another file: the file step sees it first
