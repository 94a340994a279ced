"""The service captures evidence bundles (issue 23): once a record has its confirmations, the indexer proves it at
the head block of the moment, and ``GET`` of the receipt returns the bundle, which then verifies with no node at
all against the block hash the node gives for that block. Direct records and Merkle leaves; a rollback drops
the evidence of the blocks it removes and the next block captures it again; a revocation drops the record's
evidence and, once confirmed, has it captured again, proving the record revoked.

``docchain verify FILE --receipt R --offline`` then checks such a bundle with every socket refused.

Real processes throughout (``python -m docchain.api``, anvil, SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_support import Api, Env, Signer, new_signer, poll, random_doc
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from docchain.api.db import Database, Meta
from docchain.api.store import EVIDENCE_CURSOR, REVOKED_CURSOR, roll_back_evidence_in
from docchain.chain.offline import verify_offline
from docchain.chain.receipt import Receipt, parse_receipt
from docchain.chain.values import parse_hash32, to_hex
from docchain.chain.verify import Outcome, Step
from docchain.client.cli import app
from docchain.client.errors import ExitCode

CI_BACKEND = "postgres"  # at CI size (tests/api/conftest.py); RELIABILITY_SCALE=full runs both


@pytest.fixture(scope="module")
def server(env: Env) -> Iterator[Api]:
    """Trees of two leaves, closed quickly when a test sends one alone."""
    api = env.api(DOCCHAIN_MERKLE_MAX_LEAVES="2", DOCCHAIN_MERKLE_MAX_WAIT_MS="200").start()
    yield api
    api.stop()


def _submit(
    server: Api, env: Env, anchoring: str = "direct", content: list[bytes] | None = None, signer: Signer | None = None
) -> tuple[str, str, str]:
    """Submit a new document (its bytes appended to ``content``) signed by ``signer`` (a new one by default);
    (submission id, docHash, signer)."""
    signer = signer or new_signer()
    data, doc = random_doc()
    if content is not None:
        content.append(data)
    r = server.post("/v1/documents", json={**signer.registration(env.domain, doc), "anchoring": anchoring})
    assert r.status_code == 202, r.text
    return r.json()["id"], "0x" + doc.hex(), signer.address


def _bundle(server: Api, env: Env, doc: str, signer: str, *, after: int = -1) -> dict[str, Any]:
    """The receipt once it carries evidence of a block after ``after``; blocks are mined meanwhile so that the
    record reaches its confirmations (2) without waiting for other traffic."""

    def ready() -> dict[str, Any] | None:
        r = server.get(f"/v1/documents/{doc}/receipts/{signer}")
        if r.status_code == 200 and r.json().get("evidence", {}).get("block", {}).get("number", -1) > after:
            return r.json()  # type: ignore[no-any-return]
        env.anvil.mine(1)
        return None

    return poll(ready, 30, interval=0.1, what=f"evidence of {doc}")  # type: ignore[no-any-return]


def _verified(env: Env, doc: str, receipt: Receipt) -> None:
    assert receipt.evidence is not None
    block = env.anvil.rpc("eth_getBlockByNumber", [hex(receipt.evidence.block.number), False])
    verdict = verify_offline(parse_hash32(doc), receipt, parse_hash32(block["hash"]))
    assert verdict.outcome is Outcome.VALID, verdict.summary
    assert [c.name for c in verdict.steps if c.ok][-2:] == [Step.CHAIN, Step.REVOCATION]
    assert verdict.anchor is not None and (verdict.anchor.block_number, verdict.anchor.timestamp) == (
        receipt.block_number,
        receipt.timestamp,
    )


def test_a_confirmed_direct_records_receipt_carries_evidence_that_verifies_offline(env: Env, server: Api) -> None:
    sid, doc, signer = _submit(server, env)
    server.wait_state(sid, ("anchored", "confirmed"))
    early = server.get(f"/v1/documents/{doc}/receipts/{signer}")
    assert early.status_code == 200, early.text
    if server.get(f"/v1/submissions/{sid}").json()["state"] == "anchored":  # read after: anchored then too
        assert "evidence" not in early.json()
    receipt = parse_receipt(_bundle(server, env, doc, signer))
    assert server.get(f"/v1/submissions/{sid}").json()["state"] == "confirmed"
    assert receipt.evidence is not None and [len(receipt.evidence.storage)] == [1]
    assert receipt.evidence.block.number >= receipt.block_number + 1  # captured once it had 2 confirmations
    _verified(env, doc, receipt)


def test_a_merkle_leafs_receipt_proves_its_roots_anchor_and_its_record(env: Env, server: Api) -> None:
    leaves = [_submit(server, env, "merkle") for _ in range(2)]
    for sid, _, _ in leaves:
        server.wait_state(sid, ("anchored", "confirmed"))
    for _, doc, signer in leaves:
        receipt = parse_receipt(_bundle(server, env, doc, signer))
        assert receipt.merkle is not None and receipt.evidence is not None
        assert len(receipt.evidence.storage) == 2
        _verified(env, doc, receipt)


def test_a_rollback_drops_the_evidence_it_removes_and_the_next_block_captures_it_again(env: Env, server: Api) -> None:
    sid, doc, signer = _submit(server, env)
    server.wait_state(sid, ("anchored", "confirmed"))
    first = parse_receipt(_bundle(server, env, doc, signer))
    assert first.evidence is not None

    floor = first.block_number - 1
    keys = (EVIDENCE_CURSOR, REVOKED_CURSOR)

    def cursors(s: Session) -> list[int]:
        return [int(s.execute(select(Meta.value).where(Meta.key == key)).scalar_one()) for key in keys]

    def rolled_back(s: Session) -> list[int]:
        roll_back_evidence_in(s, floor)
        return cursors(s)

    async def roll_back() -> list[int]:
        # The rollback is written from here, beside the indexer, whereas a reorg's is written by the indexer
        # itself between two of its steps. A capture step that read the cursors before this transaction would
        # write them forward again after it, over the rollback (the record's evidence gone, the cursor past it:
        # never captured again). So the rollback waits until the indexer has moved both cursors to the head's
        # confirmed block: no block is mined meanwhile, so every later step finds nothing to capture.
        confirmed = int(env.anvil.rpc("eth_blockNumber"), 16) - int(server.env["DOCCHAIN_CONFIRMATIONS"]) + 1
        db = Database(env.database_url)
        try:
            deadline = time.monotonic() + 30
            while min(await db.transaction(cursors)) < confirmed:
                assert time.monotonic() < deadline, f"the indexer did not capture through block {confirmed}"
                await asyncio.sleep(0.02)
            return await db.transaction(rolled_back)
        finally:
            await db.close()

    # both cursors go back: the records from the floor up are proven again, and revocations there looked at
    assert all(cursor <= floor for cursor in asyncio.run(roll_back()))
    assert "evidence" not in server.get(f"/v1/documents/{doc}/receipts/{signer}").json()
    again = parse_receipt(_bundle(server, env, doc, signer, after=first.evidence.block.number))
    assert again.evidence is not None and again.evidence.block.number > first.evidence.block.number
    _verified(env, doc, again)


@pytest.mark.parametrize("anchoring", ["direct", "merkle"])
def test_a_revocation_drops_the_records_bundle_and_its_confirmation_captures_it_again_revoked(
    env: Env, server: Api, anchoring: str
) -> None:
    """revokeBySig, or revokeMerkleBySig of a leaf: the transaction that applies the Revoked event drops the
    record's bundle, so that no receipt is served one saying "not revoked" of a revoked record; once the
    revocation has its confirmations, the record is proven again at a block at or after the revocation's, and
    the bundle verifies offline as revoked, at the revocation block's time, as of its own block."""
    key = new_signer()
    sid, doc, signer = _submit(server, env, anchoring, signer=key)
    server.wait_state(sid, ("anchored", "confirmed"))
    before = parse_receipt(_bundle(server, env, doc, signer))
    assert before.evidence is not None
    r = server.post("/v1/revocations", json=key.revocation(env.domain, parse_hash32(doc), 0))
    assert r.status_code == 202, r.text
    server.wait_state(sid, ("revoked",))
    events = env.registry().events(before.evidence.block.number, doc_hash=parse_hash32(doc), signer=signer)
    [revoked] = [e for e in events if e.kind == "Revoked"]
    # applied with the event: no evidence now, or evidence proven since the revocation (never the one before)
    served = server.get(f"/v1/documents/{doc}/receipts/{signer}").json()
    assert served.get("evidence", {}).get("block", {}).get("number", revoked.block_number) >= revoked.block_number

    again = parse_receipt(_bundle(server, env, doc, signer, after=revoked.block_number - 1))
    assert again.evidence is not None and again.evidence.block.number >= revoked.block_number
    assert len(again.evidence.storage) == len(before.evidence.storage)
    block = env.anvil.rpc("eth_getBlockByNumber", [hex(again.evidence.block.number), False])
    verdict = verify_offline(parse_hash32(doc), again, parse_hash32(block["hash"]))
    assert (verdict.outcome, verdict.failed_step) == (Outcome.REVOKED, Step.REVOCATION), verdict.summary
    assert verdict.reason is not None and verdict.reason.endswith(f"as of block {again.evidence.block.number}")
    revoked_in = env.anvil.rpc("eth_getBlockByNumber", [hex(revoked.block_number), False])
    assert verdict.revocation is not None and verdict.revocation.timestamp == int(revoked_in["timestamp"], 16)


def test_the_cli_verifies_a_bundle_offline_with_every_socket_refused(
    env: Env, server: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    content: list[bytes] = []
    sid, doc, signer = _submit(server, env, content=content)
    server.wait_state(sid, ("anchored", "confirmed"))
    bundle = _bundle(server, env, doc, signer)
    document, receipt = tmp_path / "contract.pdf", tmp_path / "contract.pdf.docchain.json"
    document.write_bytes(content[0])
    receipt.write_text(json.dumps({k: v for k, v in bundle.items() if k != "evidence"}))
    for name in [n for n in os.environ if n.startswith("DOCCHAIN_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DOCCHAIN_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("DOCCHAIN_API", "http://127.0.0.1:9")  # never asked: a request would fail loudly
    runner = CliRunner()

    # the receipt as it was before its capture, upgraded by the CLI from the node
    upgrade = runner.invoke(app, ["--json", "receipt", "upgrade", str(receipt), "--rpc", env.anvil.url])
    assert upgrade.exit_code == ExitCode.OK, upgrade.output
    added = json.loads(upgrade.stdout)
    assert (added["outcome"], added["replaced"]) == ("valid", False)
    upgraded = parse_receipt(receipt.read_text())
    assert upgraded.evidence is not None and upgraded.evidence.block.number >= bundle["evidence"]["block"]["number"]
    trusted = env.anvil.rpc("eth_getBlockByNumber", [hex(upgraded.evidence.block.number), False])["hash"]
    assert to_hex(upgraded.evidence.block.hash) == trusted

    def refuse(*args: object) -> None:
        raise AssertionError(f"offline verification opened a connection to {args[-1]}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)

    def verify(*extra: str) -> Any:
        return runner.invoke(app, ["--json", "verify", str(document), "--offline", *extra])

    valid = verify("--trusted-block-hash", trusted)
    assert valid.exit_code == ExitCode.OK, valid.output
    answer = json.loads(valid.stdout)
    assert (answer["outcome"], answer["mode"]) == ("valid", "offline")
    assert [step["name"] for step in answer["steps"]][-2:] == ["chain", "revocation"]
    untrusted = verify("--trusted-block-hash", "0x" + "00" * 32)
    assert untrusted.exit_code == ExitCode.VERIFICATION_FAILED
    assert json.loads(untrusted.stdout)["failedStep"] == "chain"
    # with no hash given, the verdict names the one to check (its exit status is test_evidence_cli's subject)
    assert trusted in verify().stdout
    receipt.unlink()
    alone = verify()
    assert alone.exit_code == ExitCode.USAGE and "--receipt" in alone.stderr
