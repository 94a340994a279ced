"""The database remembers the chain and registry it indexes, and verification reads the chain per head."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import httpx
from api_support import Api, Env, _deploy, new_signer, poll, random_doc

from tests.support import free_port

CI_BACKEND = "sqlite"  # at CI size (tests/api/conftest.py); RELIABILITY_SCALE=full runs both


def test_refuses_a_database_of_another_registry(env: Env, api: Api) -> None:
    assert api.get("/v1/chain").status_code == 200  # the module's API has bound: the database is claimed
    other = _deploy(env.anvil, env.tmp / "other-registry")
    assert other.address != env.deployment.address
    overrides = {"DOCCHAIN_REGISTRY_ADDRESS": other.address, "DOCCHAIN_DEPLOYMENT_BLOCK": str(other.block_number)}
    proc = subprocess.run(
        [sys.executable, "-m", "docchain.api", "--port", "1"],  # fails before binding any port
        env=env.api_env(**overrides),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "belongs to chain 31337 / registry " + env.deployment.address in lines[0]
    assert other.address in lines[0]


def test_refuses_a_node_of_another_chain_than_configured(env: Env) -> None:
    """DOCCHAIN_CHAIN_ID guards against a mistyped RPC URL: the node's chain id must be the configured one."""
    proc = subprocess.run(
        [sys.executable, "-m", "docchain.api", "--port", "1"],  # fails before binding any port
        env=env.api_env(DOCCHAIN_CHAIN_ID="11155111"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("docchain-api: ")
    assert "is on chain 31337, but DOCCHAIN_CHAIN_ID is 11155111" in lines[0]
    assert env.anvil.url not in lines[0]  # an RPC URL may carry a provider's key: never in a message

    matching = env.api(DOCCHAIN_CHAIN_ID="31337").start()
    try:
        chain = matching.get("/v1/chain")
        assert chain.status_code == 200, chain.text
        assert chain.json()["chainId"] == 31337
    finally:
        assert matching.stop() == 0


def test_verify_sees_a_new_head_at_once(env: Env, api: Api) -> None:
    """Verify caches chain reads per head: a revocation mined in a new block shows on the next verify."""
    signer = new_signer()
    _, doc = random_doc()
    sid = api.post("/v1/documents", json=signer.registration(env.domain, doc)).json()["id"]
    api.wait_state(sid, ("anchored", "confirmed"))
    query = {"docHash": "0x" + doc.hex(), "signer": signer.address}
    env.anvil.mine(1)  # the service requires 2 confirmations
    first = api.post("/v1/verify", json=query).json()
    assert first["outcome"] == "valid" and first["revocation"] is None, first["summary"]
    # confirmations grow with every block, without waiting for the indexer
    before = first["anchor"]["confirmations"]
    env.anvil.mine(3)
    assert api.post("/v1/verify", json=query).json()["anchor"]["confirmations"] == before + 3

    r = api.post("/v1/revocations", json=signer.revocation(env.domain, doc, 0))
    assert r.status_code == 202, r.text
    registry = env.registry()
    poll(lambda: registry.record(doc, signer.address).revoked, 30, what="the revocation to be mined")
    report = api.post("/v1/verify", json=query).json()  # immediately: no poll interval, no stale cache
    assert (report["outcome"], report["failedStep"]) == ("revoked", "revocation")
    assert report["revocation"]["by"] == signer.address and report["revocation"]["timestamp"] > 0


def test_node_unreachable_answers_a_crowd_at_once_and_stops_promptly(env: Env) -> None:
    """With nothing listening at the RPC URL, chain-bound routes and /readyz answer 503 in milliseconds, 40
    concurrent requests together (they share one bind attempt, not one each in turn), and SIGTERM stops
    the API in seconds. Each used to wait out web3's 3 s of retries, one attempt at a time."""
    down = env.api(DOCCHAIN_RPC_URL=f"http://127.0.0.1:{free_port()}").start()
    stopped = False
    try:
        for path in ("/v1/chain", "/readyz"):
            started = time.perf_counter()
            r = down.get(path)
            assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json", r.text
            assert time.perf_counter() - started < 1.0, path

        async def crowd() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=down.url, timeout=30) as client:
                return await asyncio.gather(*(client.get("/v1/chain") for _ in range(40)))

        started = time.perf_counter()
        answers = asyncio.run(crowd())
        assert [r.status_code for r in answers] == [503] * 40
        assert all(r.json()["type"].endswith("/node-unavailable") for r in answers)
        assert time.perf_counter() - started < 2.0

        started = time.perf_counter()
        assert down.stop() == 0
        stopped = True
        assert time.perf_counter() - started < 5.0
    finally:
        if not stopped:
            down.stop()
