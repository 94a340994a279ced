"""The relayer pays the gas of every relayed write, so it limits, accounts and watches it (issue 19, defect 13).

- A client (its API key, or its address where keys are off) and a signer each have a token bucket of writes
  per minute: over it, 429 problem+json with Retry-After, and the write goes through once that has passed.
- Each has a daily quota of new writes, kept in the database: it survives a restart (SQLite and
  PostgreSQL), and a duplicate (answered 200 with the existing submission) does not count.
- The gas spent for each client is what the receipts say (gas used x effective gas price, a batch split
  evenly over its entries), in /metrics under the client's id (never the key itself), across restarts.
- Below the relayer's balance floor every relayed write is refused with 503 before anything is accepted,
  /readyz says why, and writes are accepted again once the relayer is funded.

Real API processes, a real anvil and a relayer of each test's own (funded with anvil_setBalance).
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from typing import Any

import httpx
import pytest
from api_support import Api, Env, new_signer, poll, random_doc

from docchain.chain import typed_data as td

CI_BACKEND = "postgres"  # at CI size (tests/api/conftest.py); RELIABILITY_SCALE=full runs both

PROBLEM = "application/problem+json"
ETHER = 10**18
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _relayer(env: Env, balance_wei: int) -> tuple[str, str]:
    """A relayer key of the test's own, funded: (hex key, address)."""
    key = os.urandom(32)
    env.anvil.rpc("anvil_setBalance", [td.address_of(key), hex(balance_wei)])
    return "0x" + key.hex(), td.address_of(key)


def _problem(r: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = r.json()
    assert body["type"].endswith("/" + slug) and body["status"] == status
    return body


def _client_id(key: str) -> str:
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:12]


def _doc_status(api: Api, doc: bytes) -> int:
    return api.get(f"/v1/documents/0x{doc.hex()}").status_code


def _spent(api: Api) -> dict[str, int]:
    text = api.get("/metrics").text
    return {
        key: int(float(value))
        for key, value in re.findall(r'^docchain_relayer_spent_wei_total\{key="([^"]+)"\} (\S+)$', text, re.M)
    }


def _fee(env: Env, tx_hash: str) -> int:
    receipt = env.anvil.rpc("eth_getTransactionReceipt", [tx_hash])
    return int(receipt["gasUsed"], 16) * int(receipt["effectiveGasPrice"], 16)


# ---------------------------------------------------------------------------------------------- rate limits


@sqlite_only
def test_a_signer_over_its_rate_gets_429_and_succeeds_after_retry_after(env: Env) -> None:
    api = env.api(DOCCHAIN_SIGNER_RATE_PER_MINUTE="60", DOCCHAIN_SIGNER_BURST="3").start()
    try:
        signer = new_signer()
        docs = [random_doc()[1] for _ in range(4)]
        bodies = [signer.registration(env.domain, doc) for doc in docs]
        for body in bodies[:3]:
            assert api.post("/v1/documents", json=body).status_code == 202

        r = api.post("/v1/documents", json=bodies[3])
        problem = _problem(r, 429, "rate-limited")
        assert problem["limit"] == "signer-rate" and signer.address in problem["detail"]
        retry_after = int(r.headers["Retry-After"])
        assert retry_after == problem["retryAfter"] == 1  # 60 a minute: a token a second
        assert _doc_status(api, docs[3]) == 404  # nothing accepted

        # a duplicate costs the relayer nothing: answered, not limited (a replayed signature cannot use up
        # the signer's allowance); another signer is not held back
        assert api.post("/v1/documents", json=bodies[0]).status_code == 200
        assert api.post("/v1/documents", json=new_signer().registration(env.domain, random_doc()[1])).status_code == 202

        poll(
            lambda: api.post("/v1/documents", json=bodies[3]).status_code == 202,
            retry_after + 10,
            interval=0.2,
            what="the write to be accepted once Retry-After has passed",
        )
    finally:
        api.stop()


@sqlite_only
def test_an_api_key_over_its_rate_gets_429_on_both_relayed_writes(env: Env) -> None:
    key_a, key_b = os.urandom(12).hex(), os.urandom(12).hex()
    api = env.api(
        DOCCHAIN_API_KEYS=f"{key_a},{key_b}", DOCCHAIN_KEY_RATE_PER_MINUTE="60", DOCCHAIN_KEY_BURST="2"
    ).start()
    try:

        def submit(key: str | None) -> httpx.Response:
            headers = {"X-API-Key": key} if key else {}
            body = new_signer().registration(env.domain, random_doc()[1])
            return api.post("/v1/documents", json=body, headers=headers)

        assert submit(key_a).status_code == 202
        assert submit(key_a).status_code == 202
        r = submit(key_a)
        problem = _problem(r, 429, "rate-limited")
        assert problem["limit"] == "key-rate" and "API key" in problem["detail"]
        assert int(r.headers["Retry-After"]) == 1
        assert key_a not in r.text

        # the revocation endpoint draws on the same bucket, before reading its body
        signer = new_signer()
        revocation = signer.revocation(env.domain, random_doc()[1], 0)
        r = api.post("/v1/revocations", json=revocation, headers={"X-API-Key": key_a})
        assert _problem(r, 429, "rate-limited")["limit"] == "key-rate"

        assert submit(key_b).status_code == 202  # each key its own bucket
        _problem(submit(None), 401, "unauthorized")  # no key: refused before any limit
    finally:
        api.stop()


# ---------------------------------------------------------------------------------------------- daily quotas


def test_daily_quotas_survive_a_restart_and_duplicates_do_not_count(env: Env) -> None:
    key = os.urandom(12).hex()
    settings = {"DOCCHAIN_API_KEYS": key, "DOCCHAIN_KEY_DAILY_QUOTA": "4", "DOCCHAIN_SIGNER_DAILY_QUOTA": "2"}
    headers = {"X-API-Key": key}
    signer = new_signer()
    first, second, third = (signer.registration(env.domain, random_doc()[1]) for _ in range(3))

    def post(api: Api, body: dict[str, Any]) -> httpx.Response:
        return api.post("/v1/documents", json=body, headers=headers)

    def other() -> dict[str, Any]:
        return new_signer().registration(env.domain, random_doc()[1])

    def until_midnight() -> int:
        return 86_400 - int(time.time()) % 86_400

    api = env.api(**settings).start()
    assert post(api, first).status_code == 202
    assert post(api, first).status_code == 200  # a duplicate: the relayer pays nothing for it
    assert post(api, second).status_code == 202  # the signer's 2nd of 2 (the duplicate was not counted)
    r = post(api, third)
    problem = _problem(r, 429, "quota-exceeded")
    assert problem["limit"] == "signer-quota" and signer.address in problem["detail"]
    assert abs(int(r.headers["Retry-After"]) - until_midnight()) <= 5  # the next UTC day
    assert post(api, other()).status_code == 202  # the key's 3rd of 4
    api.stop()

    api = env.api(**settings).start()  # the counts are in the database
    try:
        assert post(api, first).status_code == 200  # duplicates are still answered
        assert _problem(post(api, third), 429, "quota-exceeded")["limit"] == "signer-quota"
        assert post(api, other()).status_code == 202  # the key's 4th of 4
        r = post(api, other())
        problem = _problem(r, 429, "quota-exceeded")
        assert problem["limit"] == "key-quota" and "API key" in problem["detail"] and key not in r.text
        assert abs(int(r.headers["Retry-After"]) - until_midnight()) <= 5
    finally:
        api.stop()


# ---------------------------------------------------------------------------------------------- spending


def test_spending_per_key_is_the_receipts_gas_times_price_and_survives_a_restart(
    env: Env, request: pytest.FixtureRequest
) -> None:
    relayer, _ = _relayer(env, 100 * ETHER)
    key_a, key_b = os.urandom(12).hex(), os.urandom(12).hex()
    a, b = _client_id(key_a), _client_id(key_b)
    # a database of its own: a write another test left pending would share a batch (and its fee) with these
    if env.database_url.startswith("sqlite"):
        database = f"sqlite+aiosqlite:///{env.tmp / ('spending-' + os.urandom(4).hex() + '.db')}"
    else:
        database = request.getfixturevalue("postgres").create_database()
    settings = {"DOCCHAIN_RELAYER_KEY": relayer, "DOCCHAIN_API_KEYS": f"{key_a},{key_b}"}
    settings["DOCCHAIN_DATABASE_URL"] = database
    # a batch waits a second for company: three writes sent together share one transaction
    api = env.api(**settings, DOCCHAIN_BATCH_INTERVAL_MS="1000").start()
    try:

        def submit(keys: list[str]) -> list[tuple[str, str, bytes, Any]]:
            sent = []
            for key in keys:
                signer, (_, doc) = new_signer(), random_doc()
                r = api.post("/v1/documents", json=signer.registration(env.domain, doc), headers={"X-API-Key": key})
                assert r.status_code == 202, r.text
                sent.append((key, r.json()["id"], doc, signer))
            return sent

        def anchored(sent: list[tuple[str, str, bytes, Any]]) -> dict[str, list[str]]:
            """txHash -> the keys of its entries."""
            txs: dict[str, list[str]] = {}
            for key, sid, _, _ in sent:
                txs.setdefault(api.wait_state(sid, ("anchored", "confirmed"))["txHash"], []).append(key)
            return txs

        expected = {a: 0, b: 0}
        only_a = anchored(submit([key_a, key_a]))  # A's alone, then B's alone
        only_b = anchored(submit([key_b]))
        for txs in (only_a, only_b):
            for tx, keys in txs.items():
                expected[_client_id(keys[0])] += _fee(env, tx)
        mixed_sent = submit([key_a, key_b, key_a])
        (mixed, keys), *more = anchored(mixed_sent).items()
        assert not more, "the three writes sent together share one batch"
        fee = _fee(env, mixed)

        def settled() -> dict[str, int] | None:
            spent = _spent(api)
            return spent if spent.get(a, 0) + spent.get(b, 0) == expected[a] + expected[b] + fee else None

        spent = poll(settled, 30, what="the worker to charge the receipts' fees")
        # the mixed batch split evenly over its three entries: two for A, one for B (a wei apart at most)
        assert abs(spent[a] - expected[a] - 2 * fee / 3) <= 1 and abs(spent[b] - expected[b] - fee / 3) <= 1

        # a revocation is charged to the key that asked for it
        _, _, doc, signer = mixed_sent[0]
        r = api.post("/v1/revocations", json=signer.revocation(env.domain, doc, 0), headers={"X-API-Key": key_b})
        assert r.status_code == 202, r.text

        def revoked() -> str | None:
            rows = api.get(f"/v1/documents/0x{doc.hex()}/revocations/{signer.address}").json()["revocations"]
            return str(rows[0]["txHash"]) if rows[0]["state"] == "revoked" else None

        revocation_fee = _fee(env, poll(revoked, 30, what="the revocation to be mined"))
        spent_b = spent[b] + revocation_fee
        poll(lambda: _spent(api).get(b) == spent_b, 30, what="the revocation's fee charged to B")
        text = api.get("/metrics").text
        assert key_a not in text and key_b not in text  # the keys themselves never appear
        api.stop()

        api = env.api(**settings).start()
        after = _spent(api)  # from the database: a restart forgets nothing
        assert (after[a], after[b]) == (spent[a], spent_b)
    finally:
        api.stop()


# ---------------------------------------------------------------------------------------------- balance floor


@sqlite_only
def test_below_the_balance_floor_relayed_writes_get_503_until_the_relayer_is_funded(env: Env) -> None:
    relayer, address = _relayer(env, 1 * ETHER)
    api = env.api(DOCCHAIN_RELAYER_KEY=relayer, DOCCHAIN_RELAYER_MIN_BALANCE_WEI=str(2 * ETHER)).start()
    try:
        signer, (_, doc) = new_signer(), random_doc()
        body = signer.registration(env.domain, doc)
        r = api.post("/v1/documents", json=body)
        problem = _problem(r, 503, "relayer-underfunded")
        assert int(r.headers["Retry-After"]) > 0
        assert problem["balanceWei"] == str(ETHER) and problem["minBalanceWei"] == str(2 * ETHER)
        assert address in problem["detail"]
        assert _doc_status(api, doc) == 404  # refused before anything was accepted
        revocation = signer.revocation(env.domain, doc, 0)
        _problem(api.post("/v1/revocations", json=revocation), 503, "relayer-underfunded")

        ready = _problem(api.get("/readyz"), 503, "not-ready")
        assert "below the floor" in ready["checks"]["relayer"] and "relayer:" in ready["detail"]
        assert ready["checks"]["relayerBalanceWei"] == str(ETHER)
        assert ready["checks"]["relayerMinBalanceWei"] == str(2 * ETHER)

        env.anvil.rpc("anvil_setBalance", [address, hex(5 * ETHER)])  # topped up
        poll(lambda: api.get("/readyz").status_code == 200, 15, what="/readyz to see the new balance")
        assert api.get("/readyz").json()["relayer"] == "ok"
        r = api.post("/v1/documents", json=body)
        assert r.status_code == 202, r.text
        api.wait_state(r.json()["id"], ("anchored", "confirmed"))
        # keys off: the client is its address, hashed in the metrics
        ip = "ip-" + hashlib.sha256(b"127.0.0.1").hexdigest()[:12]
        poll(lambda: _spent(api).get(ip, 0) > 0, 30, what="the spending of this client")
        assert "127.0.0.1" not in api.get("/metrics").text

        env.anvil.rpc("anvil_setBalance", [address, hex(ETHER // 10)])  # drained
        another = new_signer().registration(env.domain, random_doc()[1])
        poll(
            lambda: api.post("/v1/documents", json=another).status_code == 503,
            15,
            what="writes refused again below the floor",
        )
        assert api.get("/readyz").status_code == 503
    finally:
        api.stop()
