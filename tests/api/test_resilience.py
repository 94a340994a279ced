"""Nothing accepted is lost: not when the API is killed with submissions pending or in flight, not when
the node goes down while submissions arrive; while the database is down, submissions are refused (503)
rather than half-accepted."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import (
    Anvil,
    Api,
    Env,
    _deploy,
    database_outage,
    new_signer,
    poll,
    postgres_only,
    random_doc,
    submit_many,
)

CI_BACKEND = "postgres"  # at CI size (tests/api/conftest.py); RELIABILITY_SCALE=full runs both


def _all_anchored(server: Api, ids: list[str], timeout: float = 60) -> None:
    def done() -> bool:
        return all(server.get(f"/v1/submissions/{i}").json()["state"] in ("anchored", "confirmed") for i in ids)

    poll(done, timeout, interval=0.1, what=f"{len(ids)} submissions anchored")


def test_restart_with_pending_submissions(env: Env) -> None:
    # a batch interval of an hour: accepted submissions sit in the outbox when the process is killed
    first = env.api(DOCCHAIN_BATCH_INTERVAL_MS="3600000", DOCCHAIN_BATCH_SIZE="500").start()
    accepted = submit_many(first, env, 25)
    assert {first.get(f"/v1/submissions/{i}").json()["state"] for i, _, _ in accepted} == {"pending"}
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL  # a crash, not a graceful stop

    second = env.api().start()
    try:
        _all_anchored(second, [i for i, _, _ in accepted])
        registry = env.registry()
        for _, doc, signer in accepted[:5]:
            assert registry.record(bytes.fromhex(doc[2:]), signer).exists
    finally:
        second.stop()


def test_restart_with_transactions_in_flight(env: Env) -> None:
    """The batch's transaction is recorded and sent, then the node forgets it and the API is killed:
    the restarted API re-broadcasts the recorded raw transaction."""
    env.anvil.rpc("evm_setAutomine", [False])
    try:
        first = env.api().start()
        accepted = submit_many(first, env, 10)
        poll(
            lambda: all(first.get(f"/v1/submissions/{i}").json()["state"] == "submitted" for i, _, _ in accepted),
            30,
            what="submitted (tx recorded and sent)",
        )
        tx_hashes = {first.get(f"/v1/submissions/{i}").json()["txHash"] for i, _, _ in accepted}
        first.stop(signal.SIGKILL)
        # every transaction the node holds, not only the batch's: the worker may have sent another before the kill
        # (a re-broadcast at a higher fee has another hash), and the restarted API must send what it recorded
        env.anvil.rpc("anvil_dropAllTransactions", [])
        assert tx_hashes and env.anvil.rpc("txpool_status")["pending"] in ("0x0", 0)
    finally:
        env.anvil.rpc("evm_setAutomine", [True])
    second = env.api().start()
    try:
        _all_anchored(second, [i for i, _, _ in accepted])
        states = {second.get(f"/v1/submissions/{i}").json()["txHash"] for i, _, _ in accepted}
        assert states == tx_hashes  # the same transaction, re-sent, not a new one
    finally:
        second.stop()


def test_sigterm_and_ctrl_c_stop_gracefully_with_status_0(env: Env) -> None:
    """SIGTERM with submissions accepted, then Ctrl-C of the API started again to anchor them: one API start
    serves both stops."""
    server = env.api().start()
    accepted = submit_many(server, env, 5)
    # uvicorn shuts down gracefully and re-raises the signal; the API's own handler takes it, so a
    # supervisor sees status 0 (a clean stop), not -15 (killed)
    assert server.stop(signal.SIGTERM) == 0
    log = env.tmp / "api.log.jsonl"
    assert "docchain API stopped" in log.read_text()
    again = env.api().start()
    try:
        _all_anchored(again, [i for i, _, _ in accepted])
        stops = log.read_text().count("docchain API stopped")
        assert again.stop(signal.SIGINT) == 0  # not 130 / -2: Ctrl-C is the ordinary way to stop it
        assert log.read_text().count("docchain API stopped") == stops + 1
    finally:
        again.stop()


@pytest.fixture
def own_node(tmp_path: Path) -> Iterator[Anvil]:
    node = Anvil(tmp_path / "anvil").started()
    yield node
    node.stop()


@pytest.fixture
def node_env(env: Env, own_node: Anvil, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Env]:
    """The registry on a node of the test's own, with a database of its own (the index and the relayer's
    transactions belong to one chain), on the same kind of database as ``env``."""
    data_dir = tmp_path / "data"
    if env.database_url.startswith("sqlite"):
        url = f"sqlite+aiosqlite:///{tmp_path / 'own-node.db'}"
    else:
        url = request.getfixturevalue("postgres").create_database()
    own = Env(own_node, _deploy(own_node, data_dir), data_dir, url, env.tmp)
    yield own
    own.close()


def test_node_down_and_back_while_submissions_arrive(node_env: Env, own_node: Anvil) -> None:
    server = node_env.api(DOCCHAIN_CONFIRMATIONS="1").start()
    try:
        before = submit_many(server, node_env, 10)
        _all_anchored(server, [i for i, _, _ in before])
        own_node.stop()
        during = submit_many(server, node_env, 15)  # accepted: signatures are checked locally
        assert server.get("/readyz").status_code == 503
        own_node.started()
        after = submit_many(server, node_env, 5)
        ids = [i for i, _, _ in before + during + after]
        _all_anchored(server, ids, timeout=90)
        registry = node_env.registry()
        for _, doc, signer in before + during + after:
            assert registry.record(bytes.fromhex(doc[2:]), signer).exists
        assert server.get("/readyz").status_code == 200
    finally:
        server.stop()


def test_reorg_rolls_back_and_reanchors(node_env: Env, own_node: Anvil) -> None:
    """A block holding an anchor disappears (evm_revert, then a longer chain): the indexer notices the
    broken block-hash chain, rolls the submission back, the worker re-sends its transaction, and it is
    anchored again in the new chain."""
    server = node_env.api(DOCCHAIN_RESEND_AFTER_S="0.5", DOCCHAIN_CONFIRMATIONS="3").start()
    try:
        snapshot = own_node.rpc("evm_snapshot")
        [(sid, doc, signer)] = submit_many(server, node_env, 1)
        _all_anchored(server, [sid])
        first = server.get(f"/v1/submissions/{sid}").json()
        assert own_node.rpc("evm_revert", [snapshot]) is True
        own_node.mine(4)  # the new chain is longer than the old one, without the anchor
        poll(lambda: server.get("/metrics").text.count("docchain_reorgs_total 1.0"), 30, what="reorg detected")
        _all_anchored(server, [sid], timeout=30)
        second = server.get(f"/v1/submissions/{sid}").json()
        assert second["blockNumber"] != first["blockNumber"] or second["blockHash"] != first["blockHash"]
        assert node_env.registry().record(bytes.fromhex(doc[2:]), signer).exists
        status = server.get(f"/v1/documents/{doc}").json()
        assert len(status["signers"]) == 1 and status["signers"][0]["blockHash"] == second["blockHash"]
    finally:
        server.stop()


def test_chain_clock_ahead_reverted_batch_is_retried_with_its_culprits_named(node_env: Env, own_node: Anvil) -> None:
    """The relayer does not simulate a batch its own checks passed (signatures, deadlines by our clock). On
    a chain whose clock runs an hour ahead, a deadline 30 min away has passed on chain only: the batch
    reverts once, its entries return to the outbox, and the retry is simulated first, so the expired
    entries fail with the contract's error and the others anchor."""
    own_node.rpc("evm_increaseTime", [3600])
    own_node.mine(1)
    server = node_env.api(DOCCHAIN_BATCH_INTERVAL_MS="500", DOCCHAIN_CONFIRMATIONS="1").start()
    try:
        now = int(time.time())
        ids: dict[int, list[str]] = {now + 1800: [], now + 7200: []}
        for deadline, out in ids.items():
            for _ in range(2):
                _, doc = random_doc()
                r = server.post("/v1/documents", json=new_signer().registration(node_env.domain, doc, deadline))
                assert r.status_code == 202, r.text
                out.append(r.json()["id"])
        for sid in ids[now + 1800]:
            failed = server.wait_state(sid, ("failed",))
            assert "ExpiredSignature" in failed["error"], failed
        for sid in ids[now + 7200]:
            server.wait_state(sid, ("anchored", "confirmed"))
        metrics = server.get("/metrics").text
        [reverted] = [line for line in metrics.splitlines() if line.startswith("docchain_transactions_reverted_total ")]
        assert float(reverted.split()[1]) >= 1  # the unsimulated first try did revert
    finally:
        server.stop()


@postgres_only
def test_database_outage_answers_503_then_submissions_go_through(env: Env, pg: tuple[str, str]) -> None:
    dsn, name = pg
    api = env.api().start()
    try:
        signer = new_signer()
        _, doc = random_doc()
        body = signer.registration(env.domain, doc)
        with database_outage(dsn, name):
            refused = api.post("/v1/documents", json=body)
            status = api.get(f"/v1/documents/0x{doc.hex()}")
        for r in (refused, status):
            assert r.status_code == 503, r.text
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["type"].endswith("/database-unavailable")
        # the database is back: the same submission is accepted (it was not half-stored) and anchors
        accepted = api.post("/v1/documents", json=body)
        assert accepted.status_code == 202, accepted.text
        _all_anchored(api, [accepted.json()["id"]])
    finally:
        api.stop()
