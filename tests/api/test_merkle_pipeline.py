"""The pipeline's Merkle mode (issue 22): submissions in ``merkle`` anchoring are leaves of trees whose roots the
worker anchors with ``anchorRoot``, a tree closed at ``DOCCHAIN_MERKLE_MAX_LEAVES`` leaves or after
``DOCCHAIN_MERKLE_MAX_WAIT_MS``; the indexer anchors them by their root's ``RootAnchored`` event; their receipts
(version 2) carry the inclusion proof, which verifies in Python and on chain; they are revoked with
``revokeMerkleBySig``; and a root's transaction that reverts gives its submissions back to the outbox.

Real processes throughout (``python -m docchain.api``, anvil, SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_support import Api, Env, Signer, new_signer, poll, random_doc
from sqlalchemy import text
from web3 import HTTPProvider, Web3

from docchain.api import store
from docchain.api.db import Database
from docchain.api.lifecycle import Anchoring, SignatureKind, State, TxState
from docchain.api.service import Lifecycle
from docchain.api.store import Pending
from docchain.api.worker import _grow_tree
from docchain.chain import merkle
from docchain.chain.receipt import parse_receipt
from docchain.chain.registry import Registry, RootAnchored, SignedRegistration
from docchain.chain.sender import TxSender
from docchain.chain.typed_data import Domain, Registration, address_of, sign

CI_BACKEND = "postgres"  # at CI size (tests/api/conftest.py); RELIABILITY_SCALE=full runs both

Accepted = tuple[str, str, str]  # (submission id, docHash, signer)


signers: dict[str, Signer] = {}  # address -> its key, for the revocations


def submit(server: Api, env: Env, n: int, anchoring: str | None = "merkle") -> list[Accepted]:
    out = []
    for _ in range(n):
        signer = new_signer()
        signers[signer.address] = signer
        _, doc = random_doc()
        body = signer.registration(env.domain, doc)
        if anchoring is not None:
            body["anchoring"] = anchoring
        r = server.post("/v1/documents", json=body)
        assert r.status_code == 202, r.text
        out.append((r.json()["id"], "0x" + doc.hex(), signer.address))
    return out


def status(server: Api, sid: str) -> dict[str, Any]:
    r = server.get(f"/v1/submissions/{sid}")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def anchored(server: Api, accepted: list[Accepted], timeout: float = 30) -> dict[str, dict[str, Any]]:
    """Every submission anchored (or confirmed); their statuses."""

    def done() -> dict[str, dict[str, Any]] | None:
        now = {sid: status(server, sid) for sid, _, _ in accepted}
        failed = {sid: s["error"] for sid, s in now.items() if s["state"] == "failed"}
        assert not failed, f"failed submissions: {failed}"
        return now if all(s["state"] in ("anchored", "confirmed") for s in now.values()) else None

    return poll(done, timeout, interval=0.05, what=f"{len(accepted)} submissions anchored")  # type: ignore[no-any-return]


def roots_since(env: Env, block: int) -> list[RootAnchored]:
    return env.registry().root_events(block)


def next_block(env: Env) -> int:
    """The first block after the node's latest: where a test's own events start."""
    return int(env.anvil.rpc("eth_blockNumber"), 16) + 1


@pytest.fixture(scope="module")
def outsider(env: Env) -> Registry:
    """The registry as someone else sees it: a funded key of its own (no nonce shared with the relayer)."""
    key = os.urandom(32)
    env.anvil.rpc("anvil_setBalance", [address_of(key), hex(10**20)])
    w3 = Web3(HTTPProvider(env.anvil.url))
    return Registry(w3, env.deployment.address, TxSender(w3, key))


# A tree closes at 4 leaves, or 2 s after its first: the tests send fewer to see the wait close it. The count is
# seen closing trees on a deployment whose wait is longer than any test (COUNT_ONLY_WAIT_MS), so no clock is read.
LEAVES = 4
WAIT_MS = 2000
COUNT_ONLY_WAIT_MS = 600_000


@pytest.fixture(scope="module")
def server(env: Env) -> Iterator[Api]:
    """A deployment whose default anchoring is direct: the submissions name merkle, unless a test sends none."""
    api = env.api(DOCCHAIN_MERKLE_MAX_LEAVES=str(LEAVES), DOCCHAIN_MERKLE_MAX_WAIT_MS=str(WAIT_MS)).start()
    yield api
    api.stop()


@pytest.fixture
def count_server(env: Env) -> Iterator[Api]:
    """A deployment whose trees close by their count alone: anchored at all, a tree was closed by it. It runs
    alone on the module's database (the first test of the file, before ``server`` starts), and stops with its
    test, so its pipeline never holds another test's leaves for its wait."""
    api = env.api(DOCCHAIN_MERKLE_MAX_LEAVES=str(LEAVES), DOCCHAIN_MERKLE_MAX_WAIT_MS=str(COUNT_ONLY_WAIT_MS)).start()
    yield api
    api.stop()


def test_a_full_tree_is_closed_at_once_its_receipts_prove_each_leaf_and_one_is_revoked(
    env: Env, count_server: Api
) -> None:
    server = count_server
    since = next_block(env)
    accepted = submit(server, env, LEAVES)
    statuses = anchored(server, accepted)
    assert {s["anchoring"] for s in statuses.values()} == {"merkle"}
    [root] = {s["merkleRoot"] for s in statuses.values()}
    [event] = roots_since(env, since)
    assert ("0x" + event.root.hex(), event.leaf_count) == (root, LEAVES)
    assert {s["txHash"] for s in statuses.values()} == {"0x" + event.tx_hash.hex()}
    registry = env.registry()
    for sid, doc, signer in accepted:
        r = server.get(f"/v1/documents/{doc}/receipts/{signer}")
        assert r.status_code == 200, r.text
        assert r.json()["docchainReceipt"] == 2
        receipt = parse_receipt(r.json())
        proof = receipt.merkle
        assert proof is not None and proof.count == LEAVES and "0x" + proof.root.hex() == root
        # the proof verifies in Python (the leaf rebuilt from the signed registration) and on chain
        assert proof.verifies(merkle.leaf(receipt.registration, receipt.signature))
        record = registry.verify_merkle_registration(SignedRegistration(receipt.registration, receipt.signature), proof)
        assert (record.registered_at, record.block_number) == (receipt.timestamp, receipt.block_number)
        assert not record.revoked
        # the chain holds no record of the pair: the root alone is written
        assert not registry.record(receipt.registration.doc_hash, signer).exists
        assert statuses[sid]["blockNumber"] == receipt.block_number
    # the document's view shows the signer's anchoring and root
    sid, doc, signer = accepted[0]
    [view] = server.get(f"/v1/documents/{doc}").json()["signers"]
    assert (view["signer"], view["anchoring"], view["merkleRoot"]) == (signer, "merkle", root)

    # revoked on chain with the leaf's proof (revokeMerkleBySig): the same view of the chain says so
    key = signers[signer]
    r = server.post("/v1/revocations", json=key.revocation(env.domain, bytes.fromhex(doc[2:]), 0))
    assert r.status_code == 202, r.text
    server.wait_state(sid, ("revoked",))
    receipt = parse_receipt(server.get(f"/v1/documents/{doc}/receipts/{signer}").json())
    assert receipt.merkle is not None
    assert registry.verify_merkle_registration(
        SignedRegistration(receipt.registration, receipt.signature), receipt.merkle
    ).revoked


def test_the_wait_closes_a_small_tree_and_verify_by_hash_uses_the_services_receipt(env: Env, server: Api) -> None:
    since = next_block(env)
    started = time.monotonic()
    accepted = submit(server, env, 2)
    statuses = anchored(server, accepted)
    assert time.monotonic() - started >= WAIT_MS / 1000  # not before the tree's wait
    [event] = roots_since(env, since)
    assert event.leaf_count == 2
    assert {s["merkleRoot"] for s in statuses.values()} == {"0x" + event.root.hex()}
    env.anvil.rpc("anvil_mine", ["0x1"])  # the confirmations a valid verdict needs
    _, doc, signer = accepted[0]
    for question in ({"docHash": doc}, {"docHash": doc, "signer": signer}):
        r = server.post("/v1/verify", json=question)
        assert r.status_code == 200, r.text
        assert r.json()["outcome"] == "valid", r.json()


def test_a_mixed_load_anchors_each_submission_once_the_merkle_ones_sharing_roots(env: Env, server: Api) -> None:
    since = next_block(env)
    direct, tree = [], []
    for _ in range(4):
        direct += submit(server, env, 2, anchoring="direct")
        tree += submit(server, env, LEAVES)
    statuses = anchored(server, direct + tree)
    registry = env.registry()
    registered = Counter(("0x" + e.doc_hash.hex(), e.signer) for e in registry.events(since) if e.kind == "Registered")
    # direct: one Registered event each, and no root; Merkle: no Registered event, one leaf of one root
    for sid, doc, signer in direct:
        assert registered[doc, signer] == 1
        assert (statuses[sid]["anchoring"], statuses[sid]["merkleRoot"]) == ("direct", None)
    for _, doc, signer in tree:
        assert registered[doc, signer] == 0
    leaves_per_root = Counter(statuses[sid]["merkleRoot"] for sid, _, _ in tree)
    roots = roots_since(env, since)
    anchored_roots = {"0x" + e.root.hex(): e.leaf_count for e in roots}
    assert len(anchored_roots) == len(roots)  # each root anchored once
    assert anchored_roots == dict(leaves_per_root)  # each leaf in one root, each root's count its leaves
    assert len(roots) < len(tree)  # they share roots


def test_a_reverted_root_gives_its_submissions_back_and_a_root_anchored_by_another_anchors_them(
    env: Env, server: Api, outsider: Registry
) -> None:
    """Someone else anchors the tree of four registrations first (as one copying it from the mempool would): the
    worker's anchorRoot reverts (RootAlreadyAnchored), its submissions go back to the outbox out of their tree,
    and the next try, estimated first, finds the root on chain: they join it, anchored once, by that root."""
    bodies, leaves = [], []
    for _ in range(LEAVES):
        signer = new_signer()
        _, doc = random_doc()
        reg = Registration(doc_hash=doc, signer=signer.address, deadline=int(time.time()) + 3600)
        signature = sign(env.domain, reg, signer.key)
        bodies.append({"registration": reg.to_json(), "signature": "0x" + signature.hex(), "anchoring": "merkle"})
        leaves.append(merkle.leaf(reg, signature))
    root = merkle.MerkleTree.of(leaves).root
    theirs = outsider.anchor_root(root, LEAVES)
    started = time.time()
    ids = [server.post("/v1/documents", json=body).json()["id"] for body in bodies]
    accepted = [
        (sid, body["registration"]["docHash"], body["registration"]["signer"])
        for sid, body in zip(ids, bodies, strict=True)
    ]
    statuses = anchored(server, accepted)
    assert {(s["merkleRoot"], s["txHash"]) for s in statuses.values()} == {
        ("0x" + root.hex(), "0x" + bytes(theirs["transactionHash"]).hex())
    }
    # one root sent, reverted on chain; the second try sent nothing
    sent = asyncio.run(_transactions_since(env.database_url, started))
    assert sent == [("anchor_root", "reverted")], sent
    attempts = asyncio.run(_attempts(env.database_url, ids))
    assert attempts == [1] * LEAVES, attempts
    # their receipts prove their leaves under that root, on chain
    sid, doc, signer = accepted[0]
    receipt = parse_receipt(server.get(f"/v1/documents/{doc}/receipts/{signer}").json())
    assert receipt.merkle is not None and receipt.merkle.root == root
    record = env.registry().verify_merkle_registration(
        SignedRegistration(receipt.registration, receipt.signature), receipt.merkle
    )
    assert record.registered_at == receipt.timestamp


async def _attempts(url: str, ids: list[str]) -> list[int]:
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            rows = await conn.execute(text("SELECT id, attempts FROM submissions"))
            by_id = {sid: n for sid, n in rows}
            return [int(by_id[sid]) for sid in ids]
    finally:
        await db.close()


async def _transactions_since(url: str, since: float) -> list[tuple[str, str]]:
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT kind, state FROM transactions WHERE created_at >= :since ORDER BY id"), {"since": since}
            )
            return [(kind, state) for kind, state in rows]
    finally:
        await db.close()


# ---------------------------------------------------------------------------------------------- the store alone


@pytest.fixture
def own_database(env: Env, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A database of the test's own, of the module's kind: the module's pipeline must not see its rows."""
    if env.database_url.startswith("sqlite"):
        return f"sqlite+aiosqlite:///{tmp_path / 'own.db'}"
    return str(request.getfixturevalue("postgres").create_database())


def test_a_tree_is_written_with_its_transaction_and_cleared_by_a_requeue(env: Env, own_database: str) -> None:
    asyncio.run(_tree_round_trip(env, own_database))


async def _tree_round_trip(env: Env, url: str) -> None:
    db = Database(url)
    try:
        await db.migrate()
        lifecycle = Lifecycle(db, 2)
        signer = new_signer()
        rows = []
        for _ in range(3):
            _, doc = random_doc()
            reg = Registration(doc_hash=doc, signer=signer.address, deadline=int(time.time()) + 3600)
            rows.append(
                Lifecycle.new_submission(
                    doc_hash="0x" + doc.hex(),
                    signer=signer.address,
                    metadata_hash="0x" + reg.metadata_hash.hex(),
                    supersedes="0x" + reg.supersedes.hex(),
                    deadline=reg.deadline,
                    signature="0x" + sign(env.domain, reg, signer.key).hex(),
                    kind=SignatureKind.EOA,
                    metadata_json=None,
                    stored=False,
                    file_name=None,
                    file_size=None,
                    client_id=None,
                    anchoring=Anchoring.MERKLE,
                )
            )
        accepted = [a for a, _ in await lifecycle.store.insert_new(rows)]
        ids = [a.id for a in accepted]
        leaves = [os.urandom(32) for _ in ids]
        tree = merkle.MerkleTree.of(leaves)
        proofs = {sid: tree.proof(i) for i, sid in enumerate(ids)}
        tx = "0x" + os.urandom(32).hex()
        tx_id = await lifecycle.record_sent(tx, "anchor_root", b"raw", 1, ids, proofs)
        for sid in ids:
            sub, _ = await lifecycle.submission(sid)
            assert sub is not None and sub.state is State.SUBMITTED
            assert sub.merkle_root == "0x" + tree.root.hex()
            assert merkle.InclusionProof.from_json(json.loads(sub.merkle_proof or "")) == proofs[sid]
        assert set(await lifecycle.requeue(tx_id, TxState.REVERTED, "reverted")) == set(ids)
        for sid in ids:
            sub, _ = await lifecycle.submission(sid)
            assert sub is not None and sub.state is State.PENDING
            assert (sub.merkle_root, sub.merkle_proof, sub.attempts) == (None, None, 1)
        # they wait in the Merkle queue, not the direct one
        queued = {p.id for p in await lifecycle.store.pending_merkle(10_000)}
        assert set(ids) <= queued
        assert not set(ids) & {p.id for p in await lifecycle.store.pending(10_000)}
    finally:
        await db.close()


def test_one_leaf_submitted_twice_is_one_leaf_with_its_proof_for_both() -> None:
    signer = new_signer()
    reg = Registration(doc_hash=os.urandom(32), signer=signer.address, deadline=int(time.time()) + 3600)
    other = Registration(doc_hash=os.urandom(32), signer=signer.address, deadline=int(time.time()) + 3600)
    domain = Domain(chain_id=31337, verifying_contract="0x" + "11" * 20)

    def row(sid: str, r: Registration) -> Pending:
        return Pending(
            sid,
            "0x" + r.doc_hash.hex(),
            r.signer,
            "0x" + r.metadata_hash.hex(),
            "0x" + r.supersedes.hex(),
            str(r.deadline),
            "0x" + sign(domain, r, signer.key).hex(),
            "eoa",
            0,
        )

    expired = Registration(doc_hash=os.urandom(32), signer=signer.address, deadline=int(time.time()) + 5)
    tree, proofs, failed = _grow_tree([row("a", reg), row("b", reg), row("c", other), row("d", expired)])
    assert tree is not None and len(tree) == 2
    assert proofs["a"] == proofs["b"] != proofs["c"]
    assert set(failed) == {"d"} and "deadline" in failed["d"]


# ---------------------------------------------------------------------------------------------- the edges


def test_the_mode_comes_from_json_or_form_a_repeat_keeps_the_first_and_anything_else_is_refused(
    env: Env, server: Api
) -> None:
    signer = new_signer()
    content, doc = random_doc()
    body = signer.registration(env.domain, doc)
    # multipart: the form field names the mode when the JSON does not
    r = server.post(
        "/v1/documents",
        data={"submission": json.dumps(body), "anchoring": "merkle"},
        files={"file": ("a.bin", content)},
    )
    assert r.status_code == 202, r.text
    sid = r.json()["id"]
    assert status(server, sid)["anchoring"] == "merkle"
    # the same (docHash, signer) asking for direct: the first submission, in its mode
    r = server.post("/v1/documents", json={**body, "anchoring": "direct"})
    assert (r.status_code, r.json()["id"]) == (200, sid)
    assert status(server, sid)["anchoring"] == "merkle"
    other = new_signer().registration(env.domain, doc)
    for bad in ("Merkle", "tree", 1):
        r = server.post("/v1/documents", json={**other, "anchoring": bad})
        assert r.status_code == 422, r.text
    r = server.post(
        "/v1/documents",
        data={"submission": json.dumps(other), "anchoring": "tree"},
        files={"file": ("a.bin", content)},
    )
    assert r.status_code == 422 and "anchoring" in r.text, r.text
    anchored(server, [(sid, "0x" + doc.hex(), signer.address)])  # (the module's outbox ends empty)


def test_the_cli_asks_for_merkle_and_writes_its_version_2_receipt(env: Env, server: Api, tmp_path: Path) -> None:
    cli_env = {k: v for k, v in os.environ.items() if not k.startswith("DOCCHAIN_")}
    cli_env.update(
        DOCCHAIN_CONFIG_DIR=str(tmp_path / "config"),
        DOCCHAIN_DATA_DIR=str(tmp_path / "data"),
        DOCCHAIN_PASSWORD="merkle test",
        DOCCHAIN_KDF_ITERATIONS="2",
        DOCCHAIN_API=server.url,
        DOCCHAIN_RPC=env.anvil.url,
    )

    def cli(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "docchain.client", *args],
            env={**cli_env, **extra},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert cli("keys", "new", "alice").returncode == 0
    document = tmp_path / "invoice.pdf"
    document.write_bytes(os.urandom(256))
    # the direct path sends its own record: no tree there, refused before anything is signed or sent
    refused = cli("submit", str(document), "--direct", "--anchoring", "merkle")
    assert refused.returncode == 2, refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and "--anchoring merkle" in refused.stderr
    done = cli("submit", str(document), "--anchoring", "merkle", "--wait", "--json")
    assert done.returncode == 0, done.stderr
    [row] = json.loads(done.stdout)
    assert row["state"] in ("anchored", "confirmed")
    saved = json.loads((tmp_path / "invoice.pdf.docchain.json").read_text())
    assert saved["docchainReceipt"] == 2
    assert status(server, row["id"])["merkleRoot"] == saved["anchor"]["merkle"]["root"]


@pytest.mark.parametrize("query", ["_PENDING_ROWS", "_MERKLE_ROWS", "_PENDING_COUNT"])
def test_both_queues_are_read_from_the_pending_index(own_database: str, query: str) -> None:
    """The worker's reads of the direct and the Merkle queue, and their counts, use ix_submissions_pending
    (led by anchoring since migration 0007): a predicate spelled apart from the index's is a full scan."""
    assert "ix_submissions_pending" in asyncio.run(_plan(own_database, getattr(store, query)))


async def _plan(url: str, sql: str) -> str:
    db = Database(url)
    try:
        await db.migrate()
        async with db.engine.connect() as conn:
            if db.is_sqlite:
                explain = "EXPLAIN QUERY PLAN "
            else:
                await conn.execute(text("SET enable_seqscan = off"))  # an empty table is cheaper to scan whole
                explain = "EXPLAIN "
            rows = (await conn.execute(text(explain + sql), {"n": 10})).all()
            return " | ".join(str(part) for row in rows for part in row)
    finally:
        await db.close()
