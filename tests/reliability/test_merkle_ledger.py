"""The Merkle ledger (tests/reliability/anchoring.py) finds each way a pipeline can get Merkle anchoring wrong:
a leaf under two roots, a root anchored for no submission, a proof that leads elsewhere, a root the chain never
anchored, a direct receipt, a status naming another root. Each case leaves on a real anvil and in a database of
submission rows what such a pipeline would, with the receipts its API would give, and the ledger must name it
(and find nothing in the honest case): the crash and reorg cases' Merkle verdicts are only as good as this."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from web3 import HTTPProvider, Web3

from docchain.chain import merkle
from docchain.chain.receipt import Receipt, build_receipt
from docchain.chain.registry import Registry
from docchain.chain.sender import TxSender
from docchain.chain.typed_data import Registration, address_of, sign
from docchain.chain.values import to_hex
from tests.api.api_support import DEV_KEY
from tests.reliability.anchoring import Answered, merkle_ledger
from tests.reliability.harness import Chain, DbProbe, Key, Tally, key_of


@dataclass(frozen=True)
class Signed:
    """One submission: its signed registration and the id the API gave it."""

    sid: str
    registration: Registration
    signature: bytes

    @property
    def key(self) -> Key:
        return key_of(to_hex(self.registration.doc_hash), self.registration.signer)

    @property
    def leaf(self) -> bytes:
        return merkle.leaf(self.registration, self.signature)


@dataclass(frozen=True)
class Anchored:
    """A tree whose root an anchorRoot transaction put on chain."""

    tree: merkle.MerkleTree
    tx_hash: bytes
    block_number: int
    block_hash: bytes
    timestamp: int


@dataclass
class World:
    """The module's chain and registry (anchoring as the relayer), and a folder for the tests' databases."""

    chain: Chain
    registry: Registry
    w3: Web3
    tmp: Path

    def signed(self, n: int) -> list[Signed]:
        out = []
        for _ in range(n):
            key = os.urandom(32)
            reg = Registration(doc_hash=os.urandom(32), signer=address_of(key), deadline=int(time.time()) + 3600)
            out.append(Signed(os.urandom(16).hex(), reg, sign(self.registry.domain, reg, key)))
        return out

    def anchor(self, items: Sequence[Signed]) -> Anchored:
        tree = merkle.MerkleTree.of([s.leaf for s in items])
        receipt = self.registry.anchor_root(tree.root, len(items))
        block = self.w3.eth.get_block(receipt["blockNumber"])
        return Anchored(
            tree,
            bytes(receipt["transactionHash"]),
            int(receipt["blockNumber"]),
            bytes(block.get("hash", b"")),
            int(block.get("timestamp", 0)),
        )

    def receipt(self, item: Signed, at: Anchored, proof: merkle.InclusionProof | None = None) -> Receipt:
        """The receipt the API gives of ``item`` anchored under ``at`` (with ``proof``, its own by default)."""
        return build_receipt(
            domain=self.registry.domain,
            registration=item.registration,
            signature=item.signature,
            tx_hash=at.tx_hash,
            block_number=at.block_number,
            block_hash=at.block_hash,
            timestamp=at.timestamp,
            merkle=at.tree.proof_for(item.leaf) if proof is None else proof,
        )

    def ledger(self, rows: Sequence[tuple[Signed, Anchored]], answers: dict[Key, Answered], since: int) -> Tally:
        """The ledger of ``rows`` (each submission anchored at that tree's block, as the pipeline recorded it)."""
        path = self.tmp / f"{os.urandom(4).hex()}.db"
        with contextlib.closing(sqlite3.connect(path)) as db, db:
            db.execute(
                "CREATE TABLE submissions (id TEXT, doc_hash TEXT, signer TEXT, state TEXT, block_number INTEGER, "
                "block_hash TEXT)"
            )
            db.executemany(
                "INSERT INTO submissions VALUES (?, ?, ?, 'confirmed', ?, ?)",
                [
                    (
                        s.sid,
                        to_hex(s.registration.doc_hash),
                        s.registration.signer,
                        a.block_number,
                        to_hex(a.block_hash),
                    )
                    for s, a in rows
                ],
            )
        accepted = {s.key: s.sid for s, _ in rows}
        return merkle_ledger(self.chain, DbProbe(f"sqlite+aiosqlite:///{path}"), accepted, answers, since)


def answer(receipt: Receipt, root: bytes | None = None) -> Answered:
    """The API's answers for a submission: its receipt, and a status naming ``root`` (the receipt's by default)."""
    if root is None:
        assert receipt.merkle is not None, "name the root a direct receipt's status gives"
        root = receipt.merkle.root
    return Answered(receipt, "merkle", to_hex(root))


@pytest.fixture
def world(chain: Chain, tmp_path: Path) -> World:
    w3 = Web3(HTTPProvider(chain.node.url))
    return World(chain, Registry(w3, chain.deployment.address, TxSender(w3, bytes.fromhex(DEV_KEY[2:]))), w3, tmp_path)


def findings(tally: Tally) -> dict[str, list[str]]:
    return {
        name: list(value)
        for name in ("lost", "failed", "duplicated", "stale_block", "unproven")
        if (value := getattr(tally, name))
    }


def test_an_honest_run_has_no_findings(world: World) -> None:
    since = world.chain.head() + 1
    items = world.signed(3)
    first, second = world.anchor(items[:2]), world.anchor(items[2:])
    rows = [(items[0], first), (items[1], first), (items[2], second)]
    tally = world.ledger(rows, {s.key: answer(world.receipt(s, a)) for s, a in rows}, since)
    assert findings(tally) == {}
    assert (tally.anchored, tally.roots, tally.leaves) == (3, 2, 3)


def test_a_leaf_under_two_roots_is_a_duplicate(world: World) -> None:
    """A tree sent again with a leaf of a root that did land (a dropped transaction that was mined after all)."""
    since = world.chain.head() + 1
    x, y, z = world.signed(3)
    old, new = world.anchor([x, y]), world.anchor([x, z])
    rows = [(x, new), (y, old), (z, new)]
    tally = world.ledger(rows, {s.key: answer(world.receipt(s, a)) for s, a in rows}, since)
    assert findings(tally) == {
        "duplicated": [
            "4 leaves under the 2 roots anchored during the run, for 3 submissions anchored: a leaf is under two roots"
        ]
    }


def test_a_root_no_submission_names_is_a_duplicate(world: World) -> None:
    """Its leaves were put in a new tree, and the old root landed as well."""
    since = world.chain.head() + 1
    x, y, w = world.signed(3)
    old, new = world.anchor([x, y]), world.anchor([x, y, w])
    rows = [(x, new), (y, new), (w, new)]
    tally = world.ledger(rows, {s.key: answer(world.receipt(s, a)) for s, a in rows}, since)
    assert findings(tally) == {
        "duplicated": [
            f"root {to_hex(old.tree.root)} of 2 leaves, anchored at block {old.block_number}, is no submission's root",
            "5 leaves under the 2 roots anchored during the run, for 3 submissions anchored: a leaf is under two roots",
        ]
    }


def test_a_proof_that_leads_elsewhere_is_unproven(world: World) -> None:
    since = world.chain.head() + 1
    x, y = world.signed(2)
    tree = world.anchor([x, y])
    answers = {
        x.key: answer(world.receipt(x, tree, tree.tree.proof_for(y.leaf))),
        y.key: answer(world.receipt(y, tree)),
    }
    tally = world.ledger([(x, tree), (y, tree)], answers, since)
    assert findings(tally) == {
        "unproven": [f"{x.key}: its proof does not lead from its leaf to {to_hex(tree.tree.root)}"],
    }


def test_a_root_the_chain_never_anchored_is_not_on_chain(world: World) -> None:
    since = world.chain.head() + 1
    x, z = world.signed(2)
    landed = world.anchor([z])
    never = dataclasses.replace(landed, tree=merkle.MerkleTree.of([x.leaf]))  # its transaction named, its root not
    answers = {x.key: answer(world.receipt(x, never)), z.key: answer(world.receipt(z, landed))}
    tally = world.ledger([(x, landed), (z, landed)], answers, since)
    assert findings(tally) == {"stale_block": [f"{x.key}: its root has 0 RootAnchored events in the canonical chain"]}


def test_a_direct_receipt_or_another_root_in_the_status_is_unproven(world: World) -> None:
    since = world.chain.head() + 1
    x, y, z = world.signed(3)
    tree = world.anchor([x, y, z])
    other = os.urandom(32)
    answers = {
        x.key: answer(dataclasses.replace(world.receipt(x, tree), merkle=None), tree.tree.root),
        y.key: answer(world.receipt(y, tree), other),
        z.key: answer(world.receipt(z, tree)),
    }
    tally = world.ledger([(x, tree), (y, tree), (z, tree)], answers, since)
    root = to_hex(tree.tree.root)
    assert findings(tally) == {
        "unproven": [
            f"{x.key}: a version-1 receipt, anchored directly",
            f"{y.key}: its status says merkle under {to_hex(other)}, its receipt merkle under {root}",
        ]
    }


def test_a_leaf_whose_signature_the_contract_refuses_is_unproven(world: World) -> None:
    """Python's check of the proof passes (the leaf is in the tree); only the contract sees the signature is not
    the signer's."""
    since = world.chain.head() + 1
    x, y = world.signed(2)
    forged = dataclasses.replace(x, signature=sign(world.registry.domain, x.registration, os.urandom(32)))
    tree = world.anchor([forged, y])
    rows = [(forged, tree), (y, tree)]
    tally = world.ledger(rows, {s.key: answer(world.receipt(s, a)) for s, a in rows}, since)
    assert findings(tally) == {"unproven": [f"{x.key}: verifyMerkleRegistration answered InvalidSignature"]}
