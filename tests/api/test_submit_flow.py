"""Submit → anchored → confirmed → receipt → verify, end to end over HTTP on a real node and database."""

from __future__ import annotations

import json

from api_support import Api, Env, new_signer, poll, random_doc

from docchain.chain.receipt import parse_receipt

CI_BACKEND = "sqlite"  # at CI size (tests/api/conftest.py); RELIABILITY_SCALE=full runs both


def test_submit_anchor_confirm_receipt_verify(env: Env, api: Api) -> None:
    signer = new_signer()
    content, doc = random_doc()
    body = signer.registration(env.domain, doc)

    r = api.post("/v1/documents", json={**body, "fileName": "contract.pdf", "fileSize": len(content)})
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert accepted["state"] == "pending" and accepted["signer"] == signer.address
    assert accepted["statusUrl"] == f"/v1/submissions/{accepted['id']}"

    anchored = api.wait_state(accepted["id"], ("anchored", "confirmed"))
    assert anchored["txHash"] and anchored["blockNumber"] and anchored["timestamp"]

    # confirmations need N=2 blocks: mine one more and the indexer promotes it
    env.anvil.mine(2)
    confirmed = poll(
        lambda: (b := api.get(f"/v1/submissions/{accepted['id']}").json())["state"] == "confirmed" and b,
        20,
        what="confirmed",
    )
    assert confirmed["confirmations"] >= 2

    status = api.get(f"/v1/documents/0x{doc.hex()}").json()
    assert status["docHash"] == "0x" + doc.hex() and not status["stored"]
    [entry] = status["signers"]
    assert entry["signer"] == signer.address and entry["state"] == "confirmed"
    assert entry["txHash"] == anchored["txHash"] and entry["submissionId"] == accepted["id"]

    r = api.get(f"/v1/documents/0x{doc.hex()}/receipts/{signer.address}")
    assert r.status_code == 200, r.text
    receipt = parse_receipt(r.json())
    assert receipt.doc_hash == doc and receipt.signer == signer.address
    assert receipt.block_number == anchored["blockNumber"] and receipt.file_name == "contract.pdf"

    # verify by hash with the receipt, and by uploaded file without a signer
    receipt_json = r.json()
    r = api.post("/v1/verify", json={"docHash": "0x" + doc.hex(), "receipt": receipt_json})
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["outcome"] == "valid", report
    assert report["signers"] is None  # answers the receipt asked about; other signers only on request
    asked = api.post("/v1/verify", json={"docHash": "0x" + doc.hex(), "receipt": receipt_json, "signers": True})
    assert [s["signer"] for s in asked.json()["signers"]] == [signer.address]
    assert [c["name"] for c in report["steps"] if c["ok"]] == [
        "file",
        "chain",
        "registry",
        "signature",
        "record",
        "anchor",
        "confirmations",
        "revocation",
    ]

    r = api.post("/v1/verify", files={"file": ("contract.pdf", content)})
    assert r.status_code == 200 and r.json()["outcome"] == "valid" and r.json()["signer"] == signer.address
    assert [s["signer"] for s in r.json()["signers"]] == [signer.address]  # "who signed this?" lists them

    r = api.post("/v1/verify", files={"file": ("contract.pdf", content + b"tampered")})
    assert r.json()["outcome"] == "not_registered"

    r = api.post(
        "/v1/verify",
        files={"file": ("x", content), "receipt": (None, json.dumps(receipt.to_json()))},
    )
    assert r.json()["outcome"] == "valid"
    tampered = api.post(
        "/v1/verify", files={"file": ("x", content + b"!"), "receipt": (None, json.dumps(receipt.to_json()))}
    )
    assert (tampered.json()["outcome"], tampered.json()["failedStep"]) == ("file_mismatch", "file")


def test_duplicate_submission_returns_the_existing_one(env: Env, api: Api) -> None:
    signer = new_signer()
    _, doc = random_doc()
    body = signer.registration(env.domain, doc)
    first = api.post("/v1/documents", json=body)
    second = api.post("/v1/documents", json=body)
    assert first.status_code == 202 and second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    # a fresh signature over the same (docHash, signer) is still the same submission
    third = api.post(
        "/v1/documents", json=signer.registration(env.domain, doc, deadline=body["registration"]["deadline"] + 1)
    )
    assert third.status_code == 200 and third.json()["id"] == first.json()["id"]
    api.wait_state(first.json()["id"], ("anchored", "confirmed"))
    status = api.get(f"/v1/documents/0x{doc.hex()}").json()
    assert len(status["signers"]) == 1
