"""Reading back what the API stored: a revocation request's state (GET
/v1/documents/{docHash}/revocations/{signer}: pending → revoked, or failed with the chain's reason), the metadata a
signer submitted (in the document status), metadata that is not valid Unicode refused as a problem (never a 500),
and ``docchain revoke --wait`` ending in one line and exit 3 when the chain refuses the revocation."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_support import Anvil, Api, Env, new_signer, poll, random_doc
from web3 import HTTPProvider, Web3

from docchain.chain import artifacts, deploy
from docchain.chain import typed_data as td
from docchain.chain.registry import Registry, SignedRegistration
from docchain.chain.sender import TxSender

CI_BACKEND = "postgres"  # at CI size (tests/api/conftest.py); RELIABILITY_SCALE=full runs both

PROBLEM = "application/problem+json"
HASH = re.compile(r"^0x[0-9a-f]{64}$")


def _anchor(api: Api, body: dict[str, Any]) -> str:
    r = api.post("/v1/documents", json=body)
    assert r.status_code == 202, r.text
    sid = str(r.json()["id"])
    api.wait_state(sid, ("anchored", "confirmed"))
    return sid


def _requests(api: Api, doc: bytes, signer: str) -> list[dict[str, Any]]:
    r = api.get(f"/v1/documents/0x{doc.hex()}/revocations/{signer}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["docHash"] == "0x" + doc.hex() and body["signer"] == signer
    return list(body["revocations"])


def _anchored(env: Env, api: Api, signer: str, key: bytes) -> bytes:
    """A fresh document signed by ``key`` for ``signer``, submitted and anchored: its hash."""
    _, doc = random_doc()
    reg = td.Registration(doc_hash=doc, signer=signer, deadline=int(time.time()) + 3600)
    _anchor(api, {"registration": reg.to_json(), "signature": "0x" + td.sign(env.domain, reg, key).hex()})
    return doc


def _revocation(env: Env, doc: bytes, signer: str, nonce: int, key: bytes) -> dict[str, Any]:
    """The body of POST /v1/revocations for (doc, signer, nonce), signed by ``key``."""
    rev = td.Revocation(doc_hash=doc, signer=signer, nonce=nonce, deadline=int(time.time()) + 3600)
    return {"revocation": rev.to_json(), "signature": "0x" + td.sign(env.domain, rev, key).hex()}


def _until(api: Api, doc: bytes, signer: str, state: str) -> list[dict[str, Any]]:
    def reached() -> list[dict[str, Any]] | None:
        found = _requests(api, doc, signer)
        return found if found[0]["state"] == state else None

    return poll(reached, 30, what=f"the revocation to be {state}")


def _funded_sender(env: Env, key: bytes | None = None) -> TxSender:
    key = key or os.urandom(32)
    env.anvil.rpc("anvil_setBalance", [td.address_of(key), hex(10**20)])
    return TxSender(Web3(HTTPProvider(env.anvil.url)), key)


# ---------------------------------------------------------------------------------------------- revocation state


def test_a_revocation_is_visible_from_pending_to_revoked(env: Env, api: Api) -> None:
    signer = new_signer()
    _, doc = random_doc()
    sid = _anchor(api, signer.registration(env.domain, doc))
    nonce = api.get(f"/v1/nonces/{signer.address}").json()["nonce"]
    body = signer.revocation(env.domain, doc, nonce)

    before = time.time()
    r = api.post("/v1/revocations", json=body)
    assert r.status_code == 202, r.text
    [request] = _requests(api, doc, signer.address)  # readable at once, whatever the worker is doing
    assert request["nonce"] == nonce and request["error"] is None
    assert request["state"] in ("pending", "submitted", "revoked")
    assert before - 1 <= request["createdAt"] <= time.time() + 1

    [request] = _until(api, doc, signer.address, "revoked")
    assert request["error"] is None and HASH.match(request["txHash"])
    tx = api.get(f"/v1/explorer/tx/{request['txHash']}").json()
    assert tx["status"] == 1 and tx["call"]["function"] == "revokeBySig"
    poll(lambda: api.get(f"/v1/submissions/{sid}").json()["state"] == "revoked", 30, what="the index to see it")

    # the same request again is the same request; any spelling of the two values finds it
    assert api.post("/v1/revocations", json=body).status_code == 200
    upper = "0x" + doc.hex().upper()
    r = api.get(f"/v1/documents/{upper}/revocations/{signer.address.lower()}")
    assert r.status_code == 200 and r.json()["revocations"] == [request]
    assert r.json()["signer"] == signer.address  # answered checksummed


@pytest.fixture(scope="module")
def contract_wallet(env: Env) -> tuple[str, bytes]:
    """An ERC-1271 wallet (the test mock: it accepts its owner's ECDSA signatures) and its owner's key. The API
    cannot check a contract wallet's revocation itself, so it queues it and lets the chain decide."""
    owner = os.urandom(32)
    ctor = bytes(12) + bytes.fromhex(td.address_of(owner)[2:])
    created = _funded_sender(env).transact(None, artifacts.load("MockERC1271Wallet").bytecode + ctor)
    return Web3.to_checksum_address(created["contractAddress"]), owner


def test_a_revocation_the_chain_refuses_is_failed_with_its_error(
    env: Env, api: Api, contract_wallet: tuple[str, bytes]
) -> None:
    wallet, owner = contract_wallet
    doc = _anchored(env, api, wallet, owner)
    nonce = api.get(f"/v1/nonces/{wallet}").json()["nonce"]

    # signed by a key that is not the wallet's owner: accepted (the API cannot tell), refused on chain
    forged = _revocation(env, doc, wallet, nonce, os.urandom(32))
    r = api.post("/v1/revocations", json=forged)
    assert r.status_code == 202, r.text
    [request] = _until(api, doc, wallet, "failed")
    assert request["nonce"] == nonce and request["txHash"] is None
    assert request["error"] == f"InvalidSignature({doc.hex()}, {wallet})"  # the registry's custom error
    entry = api.get(f"/v1/documents/0x{doc.hex()}").json()["signers"][0]
    assert entry["revokedAt"] is None and entry["state"] in ("anchored", "confirmed")
    assert api.get(f"/v1/nonces/{wallet}").json()["nonce"] == nonce  # nothing happened on chain
    assert api.post("/v1/revocations", json=forged).status_code == 202  # a failed request may be sent again...
    [again] = _until(api, doc, wallet, "failed")
    assert again["error"] == request["error"]  # ...and fails again: the signature is still not the owner's

    # the owner's signature for the same (still current) nonce takes the failed request's place
    r = api.post("/v1/revocations", json=_revocation(env, doc, wallet, nonce, owner))
    assert r.status_code == 202 and r.json()["state"] == "pending", r.text
    [request] = _until(api, doc, wallet, "revoked")
    assert request["error"] is None and HASH.match(request["txHash"])
    poll(lambda: api.get(f"/v1/documents/0x{doc.hex()}").json()["signers"][0]["revokedAt"], 30, what="indexed")


def test_revocations_newest_first(env: Env, api: Api, contract_wallet: tuple[str, bytes]) -> None:
    """Two requests of one (docHash, signer): a failed one with an old nonce, then one for the current nonce."""
    wallet, owner = contract_wallet
    doc = _anchored(env, api, wallet, owner)
    nonce = api.get(f"/v1/nonces/{wallet}").json()["nonce"]
    forged = _revocation(env, doc, wallet, nonce, os.urandom(32))
    assert api.post("/v1/revocations", json=forged).status_code == 202
    _until(api, doc, wallet, "failed")

    # the wallet's nonce moves on (its owner revokes another of its documents), so a new request has a new nonce
    other = _anchored(env, api, wallet, owner)
    body2 = _revocation(env, other, wallet, nonce, owner)
    assert api.post("/v1/revocations", json=body2).status_code == 202
    _until(api, other, wallet, "revoked")
    poll(lambda: api.get(f"/v1/nonces/{wallet}").json()["nonce"] == nonce + 1, 30, what="the nonce to move")

    body3 = _revocation(env, doc, wallet, nonce + 1, owner)
    assert api.post("/v1/revocations", json=body3).status_code == 202
    found = _until(api, doc, wallet, "revoked")
    assert [(r["nonce"], r["state"]) for r in found] == [(nonce + 1, "revoked"), (nonce, "failed")]
    assert found[0]["createdAt"] >= found[1]["createdAt"]
    assert found[1]["error"].startswith("InvalidSignature(")


def test_revocation_status_answers_problems_for_unknown_and_malformed(env: Env, api: Api) -> None:
    signer = new_signer()
    _, doc = random_doc()
    r = api.get(f"/v1/documents/0x{doc.hex()}/revocations/{signer.address}")  # nothing at all
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    assert r.json()["type"].endswith("/not-found") and signer.address in r.json()["detail"]

    _anchor(api, signer.registration(env.domain, doc))  # a signer who never asked to revoke
    r = api.get(f"/v1/documents/0x{doc.hex()}/revocations/{signer.address}")
    assert r.status_code == 404 and r.json()["status"] == 404

    good_doc, good_signer = "0x" + doc.hex(), signer.address
    bad_checksum = "0x70997970c51812dc3A010C7d01b50e0d17dc79C8"  # anvil's account #1 with one letter's case flipped
    cases = [
        (f"{good_doc[:-2]}/revocations/{good_signer}", "docHash must be 32 bytes"),
        (f"0x{'zz' * 32}/revocations/{good_signer}", "docHash is not valid hex"),
        (f"{good_doc}/revocations/0x1234", "signer must be 20 bytes"),
        (f"{good_doc}/revocations/0x{'g' * 40}", "signer is not valid hex"),
        (f"{good_doc}/revocations/{bad_checksum}", "checksum"),
    ]
    for path, message in cases:
        r = api.get(f"/v1/documents/{path}")
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, (path, r.text)
        assert r.json()["type"].endswith("/invalid-input") and message in r.json()["detail"], (path, r.text)


# ---------------------------------------------------------------------------------------------- metadata


METADATA = {
    "title": "Contrat de travail — été 2024 ✓",
    "version": 2,
    "ratio": 0.5,
    "nested": {"tags": ["draft", "Ünïcödé"], "ok": True, "none": None},
    "😀": "astral key",
}


def test_metadata_comes_back_in_the_document_status(env: Env, api: Api) -> None:
    _, doc = random_doc()
    alice, bob = new_signer(), new_signer()
    with_meta = alice.registration(env.domain, doc, metadata_hash=td.metadata_hash(METADATA))
    r = api.post("/v1/documents", json={**with_meta, "metadata": METADATA})
    assert r.status_code == 202, r.text
    signers = {s["signer"]: s for s in api.get(f"/v1/documents/0x{doc.hex()}").json()["signers"]}
    assert signers[alice.address]["metadata"] == METADATA  # already while pending
    _anchor(api, bob.registration(env.domain, doc))  # no metadata

    # someone registers directly on chain (not through this API): only the hash is known here
    carol = os.urandom(32)
    reg = td.Registration(
        doc_hash=doc, signer=td.address_of(carol), deadline=int(time.time()) + 3600, metadata_hash=os.urandom(32)
    )
    outsider = Registry(Web3(HTTPProvider(env.anvil.url)), env.deployment.address, _funded_sender(env))
    outsider.register(SignedRegistration(reg, td.sign(env.domain, reg, carol)))

    def all_three() -> dict[str, dict[str, Any]] | None:
        found = {s["signer"]: s for s in api.get(f"/v1/documents/0x{doc.hex()}").json()["signers"]}
        return found if len(found) == 3 and found[alice.address]["state"] != "pending" else None

    signers = poll(all_three, 30, what="all three signers indexed")
    assert signers[alice.address]["metadata"] == METADATA
    assert signers[alice.address]["metadataHash"] == "0x" + td.metadata_hash(METADATA).hex()
    assert signers[bob.address]["metadata"] is None
    assert signers[td.address_of(carol)]["metadata"] is None
    assert signers[td.address_of(carol)]["metadataHash"] == "0x" + reg.metadata_hash.hex()

    # verify lists the same signer entries when asked for them
    report = api.post("/v1/verify", json={"docHash": "0x" + doc.hex(), "signers": True}).json()
    assert {s["signer"]: s["metadata"] for s in report["signers"]}[alice.address] == METADATA


def test_metadata_that_is_not_unicode_is_a_problem_not_a_500(env: Env, api: Api) -> None:
    signer = new_signer()
    _, doc = random_doc()
    body = signer.registration(env.domain, doc, metadata_hash=td.metadata_hash({"a": "x"}))
    text = json.dumps({**body, "metadata": {"a": "\ud800"}})  # a lone surrogate: no UTF-8 encoding exists
    assert "\\ud800" in text
    invalid_utf8 = json.dumps({**body, "metadata": {"a": "X"}}).encode().replace(b'"X"', b'"\xed\xa0\x80"')
    attempts = {
        "json": {"content": text, "headers": {"content-type": "application/json"}},
        "multipart": {"files": {"submission": (None, text)}},
        "surrogate key": {
            "content": json.dumps({**body, "metadata": {"\udc00": 1}}),
            "headers": {"content-type": "application/json"},
        },
        "raw bytes": {"content": invalid_utf8, "headers": {"content-type": "application/json"}},
        "raw bytes, multipart": {"files": {"submission": (None, invalid_utf8)}},
    }
    for name, request in attempts.items():
        r = api.post("/v1/documents", **request)
        assert r.status_code == 422, (name, r.status_code, r.text)
        assert r.headers["content-type"] == PROBLEM, name
        problem = r.json()
        assert problem["status"] == 422 and problem["title"] and problem["detail"], (name, problem)
    assert api.get(f"/v1/documents/0x{doc.hex()}").status_code == 404  # nothing was accepted


# ---------------------------------------------------------------------------------------------- the CLI


def test_cli_revoke_wait_reports_a_refused_revocation_in_one_line(
    session_chain: tuple[Anvil, deploy.Deployment], tmp_path: Path
) -> None:
    """`docchain revoke --wait` follows the request, not the document: when the chain refuses it the command ends
    with the reason in one line and exit 3. Here the signer spends the request's nonce meanwhile, revoking
    another of its documents by signature on chain, so the registry answers InvalidAccountNonce; the document
    itself stays unrevoked, so no Revoked event can end the request first. The request is held back by an API
    replica without a pipeline until then; a replica with a pipeline sends it (its own SQLite database: no
    other worker)."""
    anvil, deployment = session_chain
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    deploy.record(data_dir, deployment)
    env = Env(anvil, deployment, data_dir, f"sqlite+aiosqlite:///{tmp_path / 'docchain.db'}", tmp_path)
    relayer = "0x" + os.urandom(32).hex()  # not the module's relayer: two senders must not share a nonce
    anvil.rpc("anvil_setBalance", [td.address_of(bytes.fromhex(relayer[2:])), hex(10**20)])
    try:
        held = env.api(DOCCHAIN_PIPELINE="off", DOCCHAIN_RELAYER_KEY=relayer).start()

        key = os.urandom(32)
        signer = td.address_of(key)
        own = Registry(Web3(HTTPProvider(anvil.url)), deployment.address, _funded_sender(env, key))
        (_, doc), (_, other) = random_doc(), random_doc()
        for each in (doc, other):
            reg = td.Registration(doc_hash=each, signer=signer, deadline=int(time.time()) + 3600)
            own.register(SignedRegistration(reg, td.sign(env.domain, reg, key)))

        cli_env = {k: v for k, v in os.environ.items() if not k.startswith("DOCCHAIN_")}
        cli_env.update(
            DOCCHAIN_CONFIG_DIR=str(tmp_path / "config"),
            DOCCHAIN_DATA_DIR=str(data_dir),
            DOCCHAIN_PASSWORD="cli password",
            DOCCHAIN_KDF_ITERATIONS="2",
            DOCCHAIN_API=held.url,
            DOCCHAIN_TIMEOUT="10",
        )
        (tmp_path / "key.hex").write_text(key.hex())
        cli = [sys.executable, "-m", "docchain.client"]
        subprocess.run(
            [*cli, "keys", "import", "bob", "--key-file", str(tmp_path / "key.hex")],
            env=cli_env,
            check=True,
            capture_output=True,
        )
        with subprocess.Popen(
            [*cli, "revoke", "0x" + doc.hex(), "--key", "bob", "--wait", "--wait-timeout", "60"],
            env=cli_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as revoking:
            poll(
                lambda: httpx.get(f"{held.url}/v1/documents/0x{doc.hex()}/revocations/{signer}").status_code == 200,
                30,
                what="the CLI's revocation request",
            )
            # the nonce the queued request signed is spent: its revokeBySig can only fail now
            spend = td.Revocation(doc_hash=other, signer=signer, nonce=0, deadline=int(time.time()) + 3600)
            own.revoke_by_sig(spend, td.sign(env.domain, spend, key))
            env.api(DOCCHAIN_RELAYER_KEY=relayer).start()  # a replica with the pipeline: it sends the request
            out, err = revoking.communicate(timeout=90)
        assert revoking.returncode == 3, (out, err)
        assert (
            err.strip()
            == f"error: the revocation of 0x{doc.hex()} by {signer} failed: InvalidAccountNonce({signer}, 1)"
        )
        [request] = httpx.get(f"{held.url}/v1/documents/0x{doc.hex()}/revocations/{signer}").json()["revocations"]
        assert request["state"] == "failed" and request["error"].startswith("InvalidAccountNonce(")
    finally:
        for server in env.servers:
            if server.proc is not None:
                server.stop()


def test_openapi_describes_the_new_resource_and_field(api: Api) -> None:
    spec = api.get("/openapi.json").json()
    get = spec["paths"]["/v1/documents/{doc_hash}/revocations/{signer}"]["get"]
    assert get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/RevocationStatus")
    assert "404" in get["responses"]
    schemas = spec["components"]["schemas"]
    example = schemas["RevocationStatus"]["examples"][0]
    assert [r["state"] for r in example["revocations"]] == ["failed", "revoked"]
    assert set(schemas["RevocationRequest"]["properties"]) == {"nonce", "state", "error", "txHash", "createdAt"}
    assert "metadata" in schemas["SignerStatus"]["properties"]
