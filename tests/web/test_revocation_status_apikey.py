"""The web UI and what the API stores beside the chain, in headless Chromium against a real stack.

A revocation the chain refuses is shown as failed, with the registry's error, on the revoke page (and still
when the page is opened again), and a new signature for the same nonce then goes through; the document page
shows the metadata each signer submitted; and on a server that requires a write API key, the sign and revoke
pages take one (kept in sessionStorage, sent as X-API-Key) and explain a 401 instead of failing blankly.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect
from web3 import HTTPProvider, Web3
from webstack import WALLET, Pages, Stack, api_ready, start_api, stop_process, wallet_script

from docchain.chain import artifacts
from docchain.chain import typed_data as td
from docchain.chain.sender import TxSender
from tests.support import free_port, poll

pytestmark = pytest.mark.browser

# anvil's dev account #1 (the injected wallet's account) and #2; public dev keys, both unlocked in the node
WALLET_KEY = bytes.fromhex("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")
SIGNER2 = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
TIMEOUT = 20_000  # ms, for anything that waits on the chain
API_KEY = "web-test-key-" + os.urandom(6).hex()


def file_payload(name: str, content: bytes) -> dict[str, Any]:
    return {"name": name, "mimeType": "application/octet-stream", "buffer": content}


def _funded_sender(stack: Stack) -> TxSender:
    key = os.urandom(32)
    stack.rpc("anvil_setBalance", [td.address_of(key), hex(10**20)])
    return TxSender(Web3(HTTPProvider(stack.rpc_url)), key)


def _confirmed(base: str, sid: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        s = httpx.get(f"{base}/v1/submissions/{sid}", params={"wait": 5, "until": "confirmed"}, timeout=30).json()
        return s if s["state"] == "confirmed" else None

    return poll(reached, 30, interval=0.01, what=f"submission {sid} confirmed")


# A wallet whose account is a contract (an ERC-1271 smart wallet) and whose typed-data signatures come from
# whichever unlocked node account ``window.__signWith`` names: its owner's, or an intruder's.
CONTRACT_WALLET = r"""
(() => {
  const account = "__ACCOUNT__";
  window.__signWith = "__SIGN_WITH__";
  __SEND__
  window.ethereum = {
    async request({method, params}) {
      if (method === "eth_requestAccounts" || method === "eth_accounts") return [account];
      if (method === "eth_signTypedData_v4") return send(method, [window.__signWith, params[1]]);
      return send(method, params);
    },
    on() {},
    removeListener() {},
  };
})();
"""


def test_a_revocation_the_chain_refuses_shows_its_error_then_a_retry_goes_through(pages: Pages, stack: Stack) -> None:
    # a smart wallet owned by the browser wallet's key (account #1), and a document it signed
    ctor = bytes(12) + bytes.fromhex(WALLET[2:])
    created = _funded_sender(stack).transact(None, artifacts.load("MockERC1271Wallet").bytecode + ctor)
    contract = Web3.to_checksum_address(created["contractAddress"])
    content = b"Signed by a smart wallet\n" + os.urandom(16)
    doc = hashlib.sha256(content).digest()
    reg = td.Registration(doc_hash=doc, signer=contract, deadline=int(time.time()) + 3600)
    body = {"registration": reg.to_json(), "signature": "0x" + td.sign(stack.domain, reg, WALLET_KEY).hex()}
    r = httpx.post(stack.url + "/v1/documents", json=body, timeout=30)
    assert r.status_code == 202, r.text
    _confirmed(stack.url, r.json()["id"])
    doc_hash = "0x" + doc.hex()

    # the wallet signs with a key that is not the owner's: the API must let the chain decide, the chain refuses
    script = wallet_script(CONTRACT_WALLET, stack.rpc_url)
    script = script.replace("__ACCOUNT__", contract.lower()).replace("__SIGN_WITH__", SIGNER2)
    page = pages.open(f"revoke/{doc_hash}", wallet=script)
    expect(page.locator(".record [data-state]")).to_have_text("confirmed", timeout=TIMEOUT)
    submit = page.locator("#revoke-submit")
    expect(submit).to_be_enabled()
    submit.click()
    card = page.locator("#revocation")
    expect(card).to_have_attribute("data-state", "failed", timeout=TIMEOUT)
    expect(card.locator("h2")).to_have_text("Revocation failed")
    error = page.locator("#revocation-error")
    expect(error).to_contain_text(f"InvalidSignature({doc.hex()}, {contract})")
    expect(error).to_contain_text("Your signature is not revoked")
    expect(page.locator(".record [data-state]")).to_have_text("confirmed")
    expect(submit).to_be_enabled()  # a new revocation may be signed
    Pages.shot(page, "revocation-failed-desktop")
    [request] = httpx.get(f"{stack.url}/v1/documents/{doc_hash}/revocations/{contract}").json()["revocations"]
    assert request["state"] == "failed" and request["error"] == f"InvalidSignature({doc.hex()}, {contract})"

    # opened again later (in this browser, which remembers what it asked), the last request failed, and why
    again = page.context.new_page()
    again.on("pageerror", lambda exc: pages.errors.append(f"pageerror: {exc}"))
    again.on("console", pages._console)
    again.goto(f"{stack.url}/#/revoke/{doc_hash}")
    expect(again.locator("#revocation")).to_have_attribute("data-state", "failed", timeout=TIMEOUT)
    expect(again.locator("#revocation")).to_contain_text("Your last revocation request of this document did not")
    expect(again.locator("#revocation-error")).to_contain_text("InvalidSignature(")

    # the owner signs this time: the same nonce, queued again, and revoked
    again.evaluate(f"window.__signWith = {json.dumps(WALLET)}")
    again.locator("#revoke-submit").click()
    card = again.locator("#revocation")
    expect(card).to_have_attribute("data-state", "revoked", timeout=TIMEOUT)
    expect(card).to_contain_text("Signature revoked")
    expect(again.locator(".record [data-state]")).to_have_text("revoked")
    expect(again.locator("#revocation-error")).to_have_count(0)
    [request] = httpx.get(f"{stack.url}/v1/documents/{doc_hash}/revocations/{contract}").json()["revocations"]
    assert request["state"] == "revoked" and request["error"] is None and request["txHash"]
    assert card.locator("a.ref-tx").get_attribute("data-full") == request["txHash"]
    assert not pages.errors


def test_the_document_page_shows_the_submitted_metadata(pages: Pages, stack: Stack) -> None:
    metadata = {"title": "Procès-verbal <b>not markup</b>", "version": 3, "tags": ["a", "ü"]}
    content = b"Minutes with metadata\n" + os.urandom(16)
    doc = hashlib.sha256(content).digest()
    key = os.urandom(32)
    reg = td.Registration(
        doc_hash=doc,
        signer=td.address_of(key),
        deadline=int(time.time()) + 3600,
        metadata_hash=td.metadata_hash(metadata),
    )
    body = {
        "registration": reg.to_json(),
        "signature": "0x" + td.sign(stack.domain, reg, key).hex(),
        "metadata": metadata,
    }
    r = httpx.post(stack.url + "/v1/documents", json=body, timeout=30)
    assert r.status_code == 202, r.text
    _confirmed(stack.url, r.json()["id"])
    assert stack.get(f"/v1/documents/0x{doc.hex()}").json()["signers"][0]["metadata"] == metadata

    page = pages.open(f"doc/0x{doc.hex()}")
    section = page.locator(f'#metadata .metadata[data-signer="{reg.signer}"]')
    expect(section).to_be_visible(timeout=TIMEOUT)
    # in the canonical order the hash is computed over (sorted keys); values as text, never as HTML
    expect(section.locator("dt")).to_have_text(["tags", "title", "version"])
    expect(section.locator("dd")).to_have_text(['["a","ü"]', metadata["title"], "3"])
    expect(section.locator(".meta-hash-cell")).to_have_attribute("data-full", "0x" + reg.metadata_hash.hex())
    assert section.locator("b").count() == 0
    Pages.shot(page, "document-metadata-values-desktop")
    assert not pages.errors


# ---------------------------------------------------------------------------------------------- API keys


@pytest.fixture(scope="module")
def keyed(stack: Stack) -> Iterator[str]:
    """A second API on the same node and registry that requires an API key for writes (its own database, and
    its own relayer so the two do not share a nonce)."""
    tmp = stack.tmp / "keyed"
    data = tmp / "data"
    data.mkdir(parents=True)
    shutil.copy(Path(stack.env["DOCCHAIN_DATA_DIR"]) / "deployments.json", data / "deployments.json")
    relayer = os.urandom(32)
    stack.rpc("anvil_setBalance", [td.address_of(relayer), hex(10**20)])
    port = free_port()
    env = {
        **stack.env,
        "DOCCHAIN_DATA_DIR": str(data),
        "DOCCHAIN_RELAYER_KEY": "0x" + relayer.hex(),
        "DOCCHAIN_API_KEYS": f"another-key,{API_KEY}",
        "DOCCHAIN_LOG_FILE": str(tmp / "api.log.jsonl"),
    }
    proc = start_api(env, port, tmp / "api.out")
    try:
        poll(lambda: api_ready(proc, port, tmp / "api.out", "/readyz"), 30, what="the API with keys")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc)


def test_sign_and_revoke_with_an_api_key(pages: Pages, keyed: str) -> None:
    content = b"Needs a key\n" + os.urandom(16)
    doc_hash = "0x" + hashlib.sha256(content).hexdigest()
    page = pages.open("sign", wallet=True, base=keyed)
    page.click("#connect")
    page.set_input_files("#sign-file", files=[file_payload("keyed.txt", content)])
    expect(page.locator(".hash-out code")).to_have_text(doc_hash)
    field = page.locator("#api-key-field")
    expect(field).not_to_have_attribute("open", "")  # out of the way until needed

    # no key: the 401 problem is shown with what to do, and the key field opens
    page.click("#sign-submit")
    box = page.locator(".status .box.error")
    expect(box).to_contain_text("Unauthorized", timeout=TIMEOUT)
    expect(box).to_contain_text("(HTTP 401)")
    expect(box).to_contain_text("a valid API key is required (X-API-Key header)")
    expect(box).to_contain_text("requires an API key to sign and revoke")
    expect(field).to_have_attribute("open", "")
    expect(page.locator("#api-key")).to_be_focused()
    Pages.shot(page, "sign-api-key-401-desktop")

    # a wrong key: refused, and said so
    page.fill("#api-key", "not-the-key")
    page.click("#sign-submit")
    expect(box).to_contain_text("refused the API key given above", timeout=TIMEOUT)

    # the right key: kept for this tab, sent, accepted
    page.fill("#api-key", API_KEY)
    assert page.evaluate("sessionStorage.getItem('docchain.apiKey')") == API_KEY
    page.click("#sign-submit")
    card = page.locator("#submission")
    expect(card).to_have_attribute("data-state", "confirmed", timeout=TIMEOUT)
    assert httpx.get(f"{keyed}/v1/documents/{doc_hash}").json()["signers"][0]["signer"] == WALLET

    # revoke in the same tab: the key is already there; without it the revocation is refused the same way
    page.goto(f"{keyed}/#/revoke/{doc_hash}")
    expect(page.locator(".record [data-state]")).to_have_text("confirmed", timeout=TIMEOUT)
    expect(page.locator("#api-key-field")).to_have_attribute("open", "")
    expect(page.locator("#api-key")).to_have_value(API_KEY)
    page.fill("#api-key", "")
    page.click("#revoke-submit")
    refused = page.locator(".status .box.error")
    expect(refused).to_contain_text("(HTTP 401)", timeout=TIMEOUT)
    expect(refused).to_contain_text("requires an API key to sign and revoke")
    r = httpx.get(f"{keyed}/v1/documents/{doc_hash}/revocations/{WALLET}")
    assert r.status_code == 404  # nothing was queued
    page.fill("#api-key", API_KEY)
    page.click("#revoke-submit")
    expect(page.locator("#revocation")).to_have_attribute("data-state", "revoked", timeout=TIMEOUT)
    assert httpx.get(f"{keyed}/v1/documents/{doc_hash}/revocations/{WALLET}").json()["revocations"][0]["state"] == (
        "revoked"
    )
    assert [e for e in pages.errors if "401" not in e] == []  # the browser logs the refused requests
