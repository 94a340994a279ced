"""Stored files, listing, revocation, long-poll and server-sent events, chain info, explorer, metrics."""

from __future__ import annotations

import hashlib
import json
import os
import time

import httpx
from api_support import Api, Env, new_signer, poll, random_doc

CI_BACKEND = "sqlite"  # at CI size (tests/api/conftest.py); RELIABILITY_SCALE=full runs both


def _anchored(api: Api, env: Env, n: int = 1, **kw) -> list[tuple[str, bytes, object]]:
    out = []
    for _ in range(n):
        signer = new_signer()
        _, doc = random_doc()
        r = api.post("/v1/documents", json=signer.registration(env.domain, doc, **kw))
        assert r.status_code == 202
        out.append((r.json()["id"], doc, signer))
    for sid, _, _ in out:
        api.wait_state(sid, ("anchored", "confirmed"))
    return out


def test_store_and_download_file(env: Env, api: Api) -> None:
    signer = new_signer()
    content = os.urandom(300_000)
    doc = hashlib.sha256(content).digest()
    submission = json.dumps({**signer.registration(env.domain, doc), "fileName": "report.pdf"})
    # a file that does not hash to docHash is refused, and nothing is stored
    r = api.post("/v1/documents", files={"submission": (None, submission), "file": ("report.pdf", content + b"x")})
    assert r.status_code == 422 and "hashes to" in r.json()["detail"]
    assert api.get(f"/v1/documents/0x{doc.hex()}/file").status_code == 404

    r = api.post("/v1/documents", files={"submission": (None, submission), "file": ("report.pdf", content)})
    assert r.status_code == 202, r.text
    status = api.get(f"/v1/documents/0x{doc.hex()}").json()
    assert status["stored"] is True
    r = api.get(f"/v1/documents/0x{doc.hex()}/file")
    assert r.status_code == 200 and r.content == content
    assert r.headers["x-docchain-sha256"] == "0x" + doc.hex() and "report.pdf" in r.headers["content-disposition"]

    # tampering with the stored copy is caught on read
    stored = next(p for p in (env.data_dir / "documents").rglob(doc.hex()))
    stored.write_bytes(b"evil")
    r = api.get(f"/v1/documents/0x{doc.hex()}/file")
    assert r.status_code == 500 and r.json()["type"].endswith("storage-corrupted")
    stored.write_bytes(content)


def test_list_by_signer_and_time_paginated(env: Env, api: Api) -> None:
    signer = new_signer()
    ids = []
    for _ in range(5):
        _, doc = random_doc()
        ids.append(api.post("/v1/documents", json=signer.registration(env.domain, doc)).json()["id"])
    for sid in ids:
        api.wait_state(sid, ("anchored", "confirmed"))
    seen, cursor = [], None
    while True:
        params = {"signer": signer.address, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = api.get("/v1/documents", params=params).json()
        seen += page["items"]
        cursor = page["nextCursor"]
        if not cursor:
            break
    assert len(seen) == 5 and len({i["docHash"] for i in seen}) == 5
    assert all(i["signer"] == signer.address for i in seen)
    t = seen[0]["timestamp"]
    assert api.get("/v1/documents", params={"signer": signer.address, "since": t + 10_000}).json()["items"] == []
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t - 5))
    assert len(api.get("/v1/documents", params={"signer": signer.address, "since": iso}).json()["items"]) == 5


def test_revocation(env: Env, api: Api) -> None:
    [(sid, doc, signer)] = _anchored(api, env)
    nonce = api.get(f"/v1/nonces/{signer.address}").json()["nonce"]
    # signed by someone else: refused
    intruder = new_signer()
    forged = intruder.revocation(env.domain, doc, nonce)
    forged["revocation"]["signer"] = signer.address
    assert api.post("/v1/revocations", json=forged).status_code == 422
    # stale nonce: refused
    assert api.post("/v1/revocations", json=signer.revocation(env.domain, doc, nonce + 1)).status_code == 422
    body = signer.revocation(env.domain, doc, nonce)
    r = api.post("/v1/revocations", json=body)
    assert r.status_code == 202 and r.json()["state"] == "pending"
    assert api.post("/v1/revocations", json=body).status_code == 200  # the same one again
    poll(lambda: api.get(f"/v1/submissions/{sid}").json()["state"] == "revoked", 30, what="revoked")
    entry = api.get(f"/v1/documents/0x{doc.hex()}").json()["signers"][0]
    assert entry["state"] == "revoked" and entry["revokedAt"]
    report = api.post("/v1/verify", json={"docHash": "0x" + doc.hex(), "signer": signer.address}).json()
    assert (report["outcome"], report["failedStep"]) == ("revoked", "revocation")
    assert api.get(f"/v1/nonces/{signer.address}").json()["nonce"] == nonce + 1
    # revoking again: already revoked on chain
    assert api.post("/v1/revocations", json=signer.revocation(env.domain, doc, nonce + 1)).status_code == 409


def test_long_poll_and_server_sent_events(env: Env, api: Api) -> None:
    signer = new_signer()
    _, doc = random_doc()
    sid = api.post("/v1/documents", json=signer.registration(env.domain, doc)).json()["id"]
    states = []
    with httpx.Client(base_url=api.url, timeout=60) as http, http.stream("GET", f"/v1/submissions/{sid}/events") as s:
        assert s.headers["content-type"].startswith("text/event-stream")
        mined = False
        for line in s.iter_lines():
            if line.startswith("data: "):
                data = json.loads(line[6:])
                states.append(data["state"])
                if data["state"] == "anchored" and not mined:
                    env.anvil.mine(2)  # confirmations: the stream ends at confirmed
                    mined = True
    assert states[-1] == "confirmed"
    assert "anchored" in states or "confirmed" in states
    assert states == sorted(states, key=["pending", "submitted", "anchored", "confirmed"].index)

    # long-poll: answers as soon as the state is reached
    _, doc2 = random_doc()
    sid2 = api.post("/v1/documents", json=signer.registration(env.domain, doc2)).json()["id"]
    started = time.monotonic()
    body = api.get(f"/v1/submissions/{sid2}", params={"wait": 30}).json()
    assert body["state"] in ("anchored", "confirmed") and time.monotonic() - started < 25


def test_chain_info_and_explorer(env: Env, api: Api) -> None:
    [(sid, doc, signer)] = _anchored(api, env)
    info = api.get("/v1/chain").json()
    assert info["chainId"] == 31337 and info["contract"] == env.deployment.address
    assert info["eip712"]["domain"]["verifyingContract"] == env.deployment.address
    assert int(info["relayerBalanceWei"]) > 0 and info["latestBlock"] >= 1
    # what each action signs is tests/api/test_chain_types.py's subject
    assert set(info["eip712"]["actions"]) == {"registration", "revocation", "envelopeRequest", "decline", "void"}

    tx_hash = api.get(f"/v1/submissions/{sid}").json()["txHash"]
    tx = api.get(f"/v1/explorer/tx/{tx_hash}").json()
    assert tx["status"] == 1 and tx["call"]["function"] == "registerBatch" and tx["gasUsed"] > 0
    assert any(e["docHash"] == "0x" + doc.hex() and e["signer"] == signer.address for e in tx["events"])

    block = api.get(f"/v1/explorer/blocks/{tx['blockNumber']}").json()
    assert any(t["hash"] == tx_hash for t in block["transactions"])
    env.anvil.mine(5)  # the listing is bounded by its limit, whatever ran before this test
    blocks = api.get("/v1/explorer/blocks", params={"limit": 5}).json()
    assert len(blocks) == 5 and blocks[0]["number"] > blocks[-1]["number"]
    signed = api.get(f"/v1/explorer/signers/{signer.address}").json()
    assert [d["docHash"] for d in signed["documents"]] == ["0x" + doc.hex()]


def test_health_readiness_metrics_openapi_logs(env: Env, api: Api) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    ready = api.get("/readyz")
    assert ready.status_code == 200 and ready.json()["database"] == "ok" and ready.json()["node"] == "ok"
    for method in ("PROPFIND", "MKCOL"):  # methods no route knows (WebDAV's): one "other" label
        assert api.client.request(method, "/healthz").status_code == 405
    text = api.get("/metrics").text
    assert "docchain_submissions_total" in text and "docchain_http_requests_total" in text
    assert 'docchain_http_requests_total{method="other",route="unmatched",status="405"} 2.0' in text, text
    assert "PROPFIND" not in text
    spec = api.get("/openapi.json").json()
    for path in ("/v1/documents", "/v1/submissions/{submission_id}", "/v1/verify", "/v1/revocations", "/v1/chain"):
        assert path in spec["paths"]
    lines = [json.loads(line) for line in (env.tmp / "api.log.jsonl").read_text().splitlines()]
    messages = {line["msg"] for line in lines}
    assert {"request", "submission accepted", "anchoring", "anchored"} <= messages
