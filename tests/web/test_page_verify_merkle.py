"""A Merkle-anchored receipt (format version 2) on the web page, in Chromium: dropped with its file it verifies
through the API and the page shows the root its transaction anchored and the leaf's place; with its root
changed it is refused at the record step, in the words the API answers. Those roots are anchored with the
registry bindings from a key of its own (the stack's relayer key belongs to the API's worker); the last test
has the API anchor one (``anchoring: merkle``) and reads its receipt and its signers."""

from __future__ import annotations

import json
import os
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect
from web3 import HTTPProvider, Web3
from webstack import Pages, Stack

from docchain.chain import merkle
from docchain.chain import typed_data as td
from docchain.chain.hashing import sha256_bytes
from docchain.chain.receipt import build_receipt
from docchain.chain.registry import Registry, SignedRegistration
from docchain.chain.sender import TxSender
from docchain.chain.values import to_hex
from tests.support import poll

pytestmark = pytest.mark.browser

ANCHORER = bytes.fromhex("7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6")  # anvil's account #3
SIGNER = bytes.fromhex("47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a")  # account #4
TIMEOUT = 20_000


@pytest.fixture(scope="module")
def anchored(stack: Stack) -> dict[str, Any]:
    """A document signed by SIGNER, its leaf anchored with three others; its version 2 receipt."""
    w3 = Web3(HTTPProvider(stack.rpc_url))
    registry = Registry(w3, stack.domain.verifying_contract, TxSender(w3, ANCHORER))
    content = b"Board minutes, anchored in a tree\n" + os.urandom(16)
    items = []
    for doc in (content, *(os.urandom(32) for _ in range(3))):
        reg = td.Registration(doc_hash=sha256_bytes(doc), signer=td.address_of(SIGNER), deadline=2**40)
        items.append(SignedRegistration(reg, td.sign(stack.domain, reg, SIGNER)))
    tree = merkle.MerkleTree.of([merkle.leaf(i.registration, i.signature) for i in items])
    tx = registry.anchor_root(tree.root, len(items))
    block = w3.eth.get_block(tx["blockNumber"])
    receipt = build_receipt(
        domain=stack.domain,
        registration=items[0].registration,
        signature=items[0].signature,
        tx_hash=bytes(tx["transactionHash"]),
        block_number=int(tx["blockNumber"]),
        block_hash=bytes(block["hash"]),
        timestamp=int(block["timestamp"]),
        file_name="minutes.txt",
        file_size=len(content),
        merkle=tree.proof(0),
    )
    return {"content": content, "receipt": receipt.to_json(), "root": to_hex(tree.root), "proof": tree.proof(0)}


def _drop(pages: Pages, content: bytes, receipt_text: str) -> Any:
    page = pages.open("verify")
    page.set_input_files(
        "#verify-receipt",
        files=[{"name": "minutes.txt.docchain.json", "mimeType": "application/json", "buffer": receipt_text.encode()}],
    )
    page.set_input_files("#verify-file", files=[{"name": "minutes.txt", "mimeType": "text/plain", "buffer": content}])
    return page


def _api(stack: Stack, receipt: dict[str, Any]) -> dict[str, Any]:
    body = {"docHash": receipt["document"]["sha256"], "receipt": json.dumps(receipt)}
    answer: dict[str, Any] = httpx.post(f"{stack.url}/v1/verify", json=body, timeout=30).json()
    return answer


def test_a_merkle_receipt_verifies_and_the_page_shows_its_root(
    pages: Pages, stack: Stack, anchored: dict[str, Any]
) -> None:
    receipt = anchored["receipt"]
    assert receipt["docchainReceipt"] == 2
    api = _api(stack, receipt)
    assert api["outcome"] == "valid", api["summary"]
    assert api["anchor"]["merkleRoot"] == anchored["root"]

    page = _drop(pages, anchored["content"], json.dumps(receipt, indent=2))
    verdict = page.locator("#verdict")
    expect(verdict).to_have_attribute("data-verdict", "valid", timeout=TIMEOUT)
    expect(verdict.locator("p.summary")).to_have_text(api["summary"])
    merkle_row = page.locator("#verify-merkle")
    expect(merkle_row.locator("code.merkle-root")).to_have_text(anchored["root"])
    proof = anchored["proof"]
    expect(merkle_row).to_contain_text(
        f"leafIndex {proof.index} of {proof.count} leaves, {len(proof.proof)} proof hashes"
    )
    expect(page.locator('.checks li.ok[data-check="record"]')).to_contain_text(f"under root {anchored['root']}")
    pages.shot(page, "verify-merkle-valid-desktop")
    assert not pages.errors


def test_a_merkle_receipt_with_another_root_is_refused_at_the_record_step(
    pages: Pages, stack: Stack, anchored: dict[str, Any]
) -> None:
    receipt = json.loads(json.dumps(anchored["receipt"]))
    root = bytearray(bytes.fromhex(receipt["anchor"]["merkle"]["root"][2:]))
    root[0] ^= 1
    receipt["anchor"]["merkle"]["root"] = to_hex(bytes(root))
    api = _api(stack, receipt)
    assert (api["outcome"], api["failedStep"]) == ("invalid", "record"), api["summary"]

    page = _drop(pages, anchored["content"], json.dumps(receipt))
    verdict = page.locator("#verdict")
    expect(verdict).to_have_attribute("data-verdict", "invalid", timeout=TIMEOUT)
    expect(page.locator('.checks li.bad[data-check="record"]')).to_contain_text("is not in the tree of root")
    expect(verdict.locator("p.summary")).to_have_text(api["summary"])
    expect(page.locator("#verify-merkle")).to_have_count(0)  # no anchor is shown for a refused one
    assert not pages.errors


def test_a_signature_the_api_anchored_in_a_tree_shows_its_root_among_the_signers(pages: Pages, stack: Stack) -> None:
    """Submitted with ``anchoring: merkle``: the API's own version 2 receipt verifies on the page, and the
    signers table names the root its transaction anchored."""
    content = b"Merkle-anchored through the API\n" + os.urandom(16)
    reg = td.Registration(doc_hash=sha256_bytes(content), signer=td.address_of(SIGNER), deadline=2**40)
    body = {
        "registration": reg.to_json(),
        "signature": to_hex(td.sign(stack.domain, reg, SIGNER)),
        "fileName": "merkle.txt",
        "fileSize": len(content),
        "anchoring": "merkle",
    }
    r = httpx.post(f"{stack.url}/v1/documents", json=body, timeout=30)
    assert r.status_code == 202, r.text
    sid = r.json()["id"]

    def confirmed() -> dict[str, Any] | None:
        s: dict[str, Any] = stack.get(f"/v1/submissions/{sid}", params={"wait": 5, "until": "confirmed"}).json()
        return s if s["state"] == "confirmed" else None

    status = poll(confirmed, 30, interval=0.01, what=f"submission {sid} confirmed")
    receipt = stack.get(f"/v1/documents/{to_hex(reg.doc_hash)}/receipts/{reg.signer}").json()
    assert receipt["docchainReceipt"] == 2 and receipt["anchor"]["merkle"]["root"] == status["merkleRoot"]
    receipt.pop("evidence", None)  # the API's verdict, with its signers, is the one under test

    page = _drop(pages, content, json.dumps(receipt))
    expect(page.locator("#verdict")).to_have_attribute("data-verdict", "valid", timeout=TIMEOUT)
    expect(page.locator("#verify-merkle code.merkle-root")).to_have_text(status["merkleRoot"])
    cell = page.locator("table.signers .merkle-root")
    expect(cell).to_have_attribute("title", f"Merkle root {status['merkleRoot']}")
    assert not pages.errors
