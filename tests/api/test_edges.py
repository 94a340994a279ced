"""Every bad input answers RFC 9457 problem+json with a clear status — never a 500."""

from __future__ import annotations

import time
from typing import Any

import pytest
from api_support import Api, Env, new_signer, random_doc

from docchain.chain.typed_data import Registration, sign

CI_BACKEND = "sqlite"  # at CI size (tests/api/conftest.py); RELIABILITY_SCALE=full runs both

PROBLEM = "application/problem+json"


def _problem(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM), r.headers
    body = r.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"].startswith("https://")
    return body


def _valid(env: Env) -> dict[str, Any]:
    _, doc = random_doc()
    return new_signer().registration(env.domain, doc)


def _with(body: dict[str, Any], **reg: Any) -> dict[str, Any]:
    return {**body, "registration": {**body["registration"], **reg}}


BAD_SUBMISSIONS = [
    ("malformed hex docHash", lambda b: _with(b, docHash="0xzz" + "00" * 31), 422, "docHash"),
    ("short docHash", lambda b: _with(b, docHash="0x" + "ab" * 31), 422, "32 bytes"),
    ("long docHash", lambda b: _with(b, docHash="0x" + "ab" * 33), 422, "32 bytes"),
    ("bad address", lambda b: _with(b, signer="0x1234"), 422, "signer"),
    (
        "bad checksum",
        lambda b: _with(
            b, signer=b["registration"]["signer"][:-1] + ("a" if b["registration"]["signer"][-1] != "a" else "b")
        ),
        422,
        "checksum",
    ),
    ("signature not hex", lambda b: {**b, "signature": "0xnothex"}, 422, "signature"),
    ("signature empty", lambda b: {**b, "signature": "0x"}, 422, "signature"),
    ("garbage 65-byte signature", lambda b: {**b, "signature": "0x" + "00" * 65}, 422, ""),
    ("deadline negative", lambda b: _with(b, deadline=-1), 422, "deadline"),
    ("deadline passed", lambda b: _with(b, deadline=int(time.time()) - 10), 422, "deadline"),
    ("missing signature", lambda b: {"registration": b["registration"]}, 422, "signature"),
    ("unknown field", lambda b: {**b, "surprise": 1}, 422, "surprise"),
    ("metadata hash mismatch", lambda b: {**b, "metadata": {"title": "x"}}, 422, "metadataHash"),
]


@pytest.mark.parametrize("name,mutate,status,needle", BAD_SUBMISSIONS, ids=[c[0] for c in BAD_SUBMISSIONS])
def test_bad_submissions(env: Env, api: Api, name: str, mutate: Any, status: int, needle: str) -> None:
    body = _problem(api.post("/v1/documents", json=mutate(_valid(env))), status)
    assert needle in body["detail"] or needle in str(body.get("errors")), body


def test_signer_mismatch_and_wrong_domain(env: Env, api: Api) -> None:
    _, doc = random_doc()
    alice, bob = new_signer(), new_signer()
    body = alice.registration(env.domain, doc)
    forged = _with(body, signer=bob.address)  # alice's signature claiming to be bob
    problem = _problem(api.post("/v1/documents", json=forged), 422)
    assert problem["type"].endswith("signer-mismatch") and bob.address in problem["detail"]

    other_chain = type(env.domain)(chain_id=1, verifying_contract=env.domain.verifying_contract)
    reg = Registration(doc_hash=doc, signer=alice.address, deadline=int(time.time()) + 600)
    body = {"registration": reg.to_json(), "signature": "0x" + sign(other_chain, reg, alice.key).hex()}
    assert _problem(api.post("/v1/documents", json=body), 422)["type"].endswith("signer-mismatch")


def test_transport_level_errors(env: Env, api: Api) -> None:
    _problem(api.post("/v1/documents", content=b"{not json", headers={"content-type": "application/json"}), 422)
    _problem(api.post("/v1/documents", content=b"x", headers={"content-type": "text/plain"}), 415)
    _problem(api.get("/v1/nowhere"), 404)
    _problem(api.client.delete("/v1/documents"), 405)
    _problem(api.post("/v1/documents", files={"file": ("a", b"x")}), 422)  # multipart without 'submission'
    _problem(api.get("/v1/submissions/nope"), 404)
    _problem(api.get("/v1/documents/0x" + "00" * 32), 404)
    _problem(api.get("/v1/documents/0x1234"), 422)
    _problem(api.get("/v1/documents/0x" + "00" * 32 + "/file"), 404)
    _problem(api.get("/v1/documents/0x" + "00" * 32 + "/receipts/0x" + "11" * 20), 404)
    _problem(api.get("/v1/documents", params={"since": "yesterday"}), 422)
    _problem(api.get("/v1/documents", params={"cursor": "!!"}), 422)
    _problem(api.get("/v1/documents", params={"limit": 0}), 422)
    _problem(api.get("/v1/explorer/tx/0x" + "00" * 32), 404)
    _problem(api.get("/v1/explorer/tx/0x12"), 422)
    _problem(api.get("/v1/explorer/blocks/99999999"), 404)
    _problem(api.get("/v1/explorer/signers/0xnope"), 422)
    _problem(api.post("/v1/verify", json={"docHash": "0x12"}), 422)
    # a receipt the strict reader refuses is evidence that fails: the verdict of the receipt step, not a 4xx
    refused = api.post("/v1/verify", json={"docHash": "0x" + "00" * 32, "receipt": {"docchainReceipt": 99}})
    assert refused.status_code == 200 and (refused.json()["outcome"], refused.json()["failedStep"]) == (
        "invalid",
        "receipt",
    )
    _problem(api.post("/v1/revocations", json={"revocation": {}, "signature": "0x"}), 422)
    _problem(api.get("/v1/submissions/x", params={"wait": 1000}), 422)


def test_oversized_upload_is_413(env: Env, api: Api) -> None:
    content = b"x" * (1024 * 1024 + 10)  # the fixture's limit is 1 MiB
    problem = _problem(api.post("/v1/documents", files={"submission": (None, "{}"), "file": ("big", content)}), 413)
    assert "exceeds" in problem["detail"]

    def chunks():  # no Content-Length: the limit is enforced while streaming
        for _ in range(20):
            yield b"y" * 65536

    _problem(api.post("/v1/verify", content=chunks(), headers={"content-type": "application/json"}), 413)


def test_not_anchored_receipt_is_409_and_api_keys(env: Env) -> None:
    server = env.api(DOCCHAIN_API_KEYS="k1,k2", DOCCHAIN_BATCH_INTERVAL_MS="60000", DOCCHAIN_BATCH_SIZE="500").start()
    try:
        signer = new_signer()
        _, doc = random_doc()
        body = signer.registration(env.domain, doc)
        assert _problem(server.post("/v1/documents", json=body), 401)["type"].endswith("unauthorized")
        _problem(server.post("/v1/documents", json=body, headers={"X-API-Key": "wrong"}), 401)
        r = server.post("/v1/documents", json=body, headers={"X-API-Key": "k2"})
        assert r.status_code == 202
        # reads stay open; the batch waits 60 s, so the submission is still pending: no receipt yet
        assert server.get(f"/v1/submissions/{r.json()['id']}").json()["state"] == "pending"
        _problem(server.get(f"/v1/documents/0x{doc.hex()}/receipts/{signer.address}"), 409)
    finally:
        server.stop()


def test_disconnect_mid_upload_leaves_nothing(env: Env, api: Api) -> None:
    import socket

    signer = new_signer()
    content, doc = random_doc()
    submission = signer.registration(env.domain, doc)
    import json as _json

    boundary = "b0undary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="submission"\r\n\r\n'
        f'{_json.dumps(submission)}\r\n--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="f"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    total = len(head) + 500_000
    with socket.create_connection(("127.0.0.1", api.port)) as sock:
        sock.sendall(
            f"POST /v1/documents HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
            f"boundary={boundary}\r\nContent-Length: {total}\r\n\r\n".encode()
            + head
            + b"z" * 100_000
        )
    # the server saw the disconnect: nothing stored, nothing submitted
    from api_support import poll

    poll(lambda: "client disconnected" in (env.tmp / "api.log.jsonl").read_text(), 10, what="disconnect log")
    assert api.get(f"/v1/documents/0x{doc.hex()}").status_code == 404
    storage = env.data_dir / "documents"
    leftovers = [p for p in storage.rglob("*") if p.is_file()] if storage.exists() else []
    assert leftovers == []
