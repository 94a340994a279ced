"""The web UI in headless Chromium against a real stack (anvil, the registry, the API serving api/web/).

Each test reads as a user story: verify a signed file (green), a tampered one (red), an unknown one; sign
with a wallet and follow the submission to confirmed; explore the transaction, event, document, signer and
block; and see clear states for empty results, errors and a node that is down. Screenshots of each page at
1280x800 and 390x844 land in test-output/web/.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from webstack import VIEWPORTS, WALLET, Pages, Stack, expect_valid

from docchain.chain.values import utc_text

pytestmark = pytest.mark.browser

# anvil dev account #2 signs the documents the tests register from Python (the wallet is account #1)
KEY2 = bytes.fromhex("5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a")
SIGNER2 = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
TIMEOUT = 20_000  # ms, for anything that waits on the chain


def file_payload(name: str, content: bytes, mime: str = "application/octet-stream") -> dict[str, Any]:
    return {"name": name, "mimeType": mime, "buffer": content}


def receipt_payload(name: str, content: bytes) -> dict[str, Any]:
    return file_payload(name, content, "application/json")


@pytest.fixture(scope="module")
def signed(stack: Stack) -> dict[str, Any]:
    """A contract registered (and confirmed) by account #2 before the browser looks at it."""
    content = b"Employment contract\nbetween A and B\n" + os.urandom(16)
    status = stack.register(content, KEY2, "contract.txt")
    receipt = stack.get(f"/v1/documents/{status['docHash']}/receipts/{SIGNER2}").json()
    # the API's verdict is the one under test here: a receipt with its evidence bundle is verified in the page
    # instead (tests/web/test_page_offline.py)
    receipt.pop("evidence", None)
    return {"content": content, "status": status, "receipt": receipt}


def test_verify_signed_tampered_and_unknown_files(pages: Pages, stack: Stack, signed: dict[str, Any]) -> None:
    doc_hash = signed["status"]["docHash"]
    for viewport in ("desktop", "mobile"):
        page = pages.open("verify", viewport)
        # the signed file: green, with its signer, block, transaction and confirmations
        page.set_input_files("#verify-file", files=[file_payload("contract.txt", signed["content"])])
        verdict = page.locator("#verdict")
        expect(verdict).to_have_attribute("data-verdict", "valid", timeout=TIMEOUT)
        expect(verdict).to_contain_text("Valid")
        expect(page.locator(".hash-out code")).to_have_text(doc_hash)
        row = page.locator("table.signers tbody tr").first
        expect(row.locator(f'a[href="#/signer/{SIGNER2}"]')).to_be_visible()
        expect(row.locator("[data-state]")).to_have_text("confirmed")
        expect(row.locator("a.ref-tx")).to_have_attribute("href", f"#/tx/{signed['status']['txHash']}")
        block = signed["status"]["blockNumber"]
        expect(row.locator("a.ref-block")).to_have_attribute("href", f"#/block/{block}")
        expect(page.locator(".checks li.bad")).to_have_count(0)
        pages.shot(page, f"verify-valid-{viewport}")

        expect(page.locator("#verify-record a.ref-tx")).to_have_attribute("href", f"#/tx/{signed['status']['txHash']}")

        # one byte changed: no record of that hash -> red
        tampered = bytearray(signed["content"])
        tampered[0] ^= 1
        page.set_input_files("#verify-file", files=[file_payload("contract.txt", bytes(tampered))])
        expect(verdict).to_have_attribute("data-verdict", "not_registered", timeout=TIMEOUT)
        expect(verdict.locator("h2")).to_have_text("Not registered")
        expect(verdict).to_contain_text("No signature of this file")
        expect(verdict).to_have_class("verdict verdict-not_registered")
        pages.shot(page, f"verify-tampered-{viewport}")

    # the tampered file against the original's receipt: a file mismatch, and the file step says why
    page = pages.open("verify")
    receipt = json.dumps(signed["receipt"]).encode()
    page.set_input_files("#verify-receipt", files=[receipt_payload("contract.txt.docchain.json", receipt)])
    page.set_input_files("#verify-file", files=[file_payload("contract.txt", bytes(tampered))])
    verdict = page.locator("#verdict")
    expect(verdict).to_have_attribute("data-verdict", "file_mismatch", timeout=TIMEOUT)
    expect(page.locator('.checks li.bad[data-check="file"]')).to_be_visible()
    pages.shot(page, "verify-tampered-with-receipt-desktop")
    # ... and the original file against it: valid, the receipt's signature checked too
    page.set_input_files("#verify-file", files=[file_payload("contract.txt", signed["content"])])
    expect(verdict).to_have_attribute("data-verdict", "valid", timeout=TIMEOUT)
    expect(page.locator('.checks li.ok[data-check="signature"]')).to_be_visible()
    expect(verdict).to_contain_text("Checked against receipt")

    # a file no one signed
    page = pages.open("verify", "mobile")
    page.set_input_files("#verify-file", files=[file_payload("holiday.jpg", os.urandom(3000))])
    expect(page.locator("#verdict")).to_have_attribute("data-verdict", "not_registered", timeout=TIMEOUT)
    expect(page.locator("table.signers")).to_have_count(0)
    pages.shot(page, "verify-unknown-mobile")
    assert not pages.errors


def test_verify_refuses_a_malformed_receipt_in_the_page(pages: Pages, signed: dict[str, Any]) -> None:
    """A receipt the strict reader refuses is refused in the page, before any request, with the reader's
    one-line message naming the field (the same words as the CLI's)."""
    page = pages.open("verify")
    broken = {**signed["receipt"], "surprise": 1}
    broken_file = receipt_payload("r.docchain.json", json.dumps(broken).encode())
    page.set_input_files("#verify-receipt", files=[broken_file])
    error = page.locator(".result .box.error")
    expect(error).to_contain_text("Not a receipt", timeout=TIMEOUT)
    expect(error).to_contain_text("receipt: unknown field surprise")
    # a float where the format wants an integer, which JSON.parse alone would not see
    text = json.dumps(signed["receipt"]).replace('"docchainReceipt": 1', '"docchainReceipt": 1.0').encode()
    page.set_input_files("#verify-receipt", files=[receipt_payload("r.docchain.json", text)])
    expect(error).to_contain_text("receipt: docchainReceipt must be 1")
    # not JSON at all
    page.set_input_files("#verify-receipt", files=[receipt_payload("notes.json", b"{nope")])
    expect(error).to_contain_text("receipt is not valid JSON")
    # the refused receipt stays the question: the file fails at the receipt step, as on the CLI and the API
    page.set_input_files("#verify-file", files=[file_payload("contract.txt", signed["content"])])
    expect(page.locator("#verdict")).to_have_attribute("data-verdict", "invalid", timeout=TIMEOUT)
    expect(page.locator('.checks li.bad[data-check="receipt"]')).to_contain_text("receipt is not valid JSON")
    assert not pages.errors


def test_verify_with_another_expected_signer_shows_who_signed(pages: Pages, signed: dict[str, Any]) -> None:
    """Registered, but not by the signer expected: the page says so and shows who did sign, and when
    (not that the file is unknown or changed)."""
    page = pages.open("verify")
    page.fill("#verify-signer", WALLET)
    page.locator("#verify-signer").dispatch_event("change")
    page.set_input_files("#verify-file", files=[file_payload("contract.txt", signed["content"])])
    verdict = page.locator("#verdict")
    expect(verdict).to_have_attribute("data-verdict", "other_signers", timeout=TIMEOUT)
    expect(verdict.locator("h2")).to_have_text("Signed by others")
    expect(verdict).to_contain_text(f"{WALLET} has not signed this file; it was signed by {SIGNER2}")
    row = page.locator("#verify-other-signers table.other-signers tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator(f'a[href="#/signer/{SIGNER2}"]')).to_be_visible()
    expect(row).to_contain_text(utc_text(signed["status"]["timestamp"]))
    expect(row.locator("a.ref-block")).to_have_attribute("href", f"#/block/{signed['status']['blockNumber']}")
    expect(page.locator('.checks li.bad[data-check="record"]')).to_be_visible()
    pages.shot(page, "verify-other-signers-desktop")
    assert not pages.errors


def test_verify_says_which_newer_version_supersedes_it(pages: Pages, stack: Stack, signed: dict[str, Any]) -> None:
    """A newer version signed by the contract's own signer, naming it: the verdict stays Valid, and the page says
    which document supersedes it, signed by whom."""
    newer = b"Employment contract, version 2\n" + os.urandom(16)
    old = bytes.fromhex(signed["status"]["docHash"][2:])
    new_hash = stack.register(newer, KEY2, "contract-v2.txt", supersedes=old)["docHash"]
    page = pages.open("verify")
    page.set_input_files("#verify-file", files=[file_payload("contract.txt", signed["content"])])
    expect(page.locator("#verdict")).to_have_attribute("data-verdict", "valid", timeout=TIMEOUT)
    item = page.locator(f'#verify-superseded li[data-superseder="{new_hash}"]')
    expect(item).to_contain_text(f"Superseded by {new_hash} (signed by {SIGNER2})")
    expect(item.locator(f'a[href="#/doc/{new_hash}"]')).to_be_visible()
    expect(item.locator(f'a[href="#/signer/{SIGNER2}"]')).to_be_visible()
    pages.shot(page, "verify-superseded-desktop")
    assert not pages.errors


def test_sign_with_wallet_until_confirmed_and_download_receipt(pages: Pages, stack: Stack, tmp_path: Path) -> None:
    content = b"Release notes 1.0\n" + os.urandom(32)
    doc_hash = "0x" + hashlib.sha256(content).hexdigest()
    for viewport in ("desktop", "mobile"):
        page = pages.open("sign", viewport, wallet=True)
        expect(page.locator("#sign-submit")).to_be_disabled()
        if viewport == "mobile":
            pages.shot(page, "sign-start-mobile")
            break
        page.click("#connect")
        expect(page.locator(".wallet")).to_contain_text(WALLET, ignore_case=True)
        page.set_input_files("#sign-file", files=[file_payload("release.txt", content)])
        expect(page.locator(".hash-out code")).to_have_text(doc_hash)
        page.check("#sign-store")
        expect(page.locator("#sign-submit")).to_be_enabled()
        page.click("#sign-submit")
        card = page.locator("#submission")
        expect(card).to_have_attribute("data-state", "confirmed", timeout=TIMEOUT)
        expect(card).to_contain_text(doc_hash)
        pages.shot(page, "sign-confirmed-desktop")
        with page.expect_download() as info:
            page.click("#receipt-download")
        download = info.value
        assert download.suggested_filename == "release.txt.docchain.json"
        path = tmp_path / "receipt.json"
        download.save_as(path)
        receipt = json.loads(path.read_text())
        assert receipt["signer"] == WALLET
        assert receipt["document"]["sha256"] == doc_hash
        assert receipt["eip712"]["message"]["docHash"] == doc_hash
        calls = page.evaluate("window.__walletCalls")
        assert "eth_signTypedData_v4" in calls and "eth_requestAccounts" in calls

    # the chain holds it, the file was stored, and verifying with the downloaded receipt is green
    status = stack.get(f"/v1/documents/{doc_hash}").json()
    assert status["stored"] is True
    assert [(s["signer"], s["state"]) for s in status["signers"]] == [(WALLET, "confirmed")]
    assert stack.get(f"/v1/documents/{doc_hash}/content").content == content
    # the explorer's document page offers the stored copy through the content route
    page = pages.open(f"doc/{doc_hash}")
    expect(page.locator("#stored-file")).to_have_attribute("href", f"/v1/documents/{doc_hash}/content", timeout=TIMEOUT)
    page = pages.open("verify")
    downloaded = receipt_payload("release.txt.docchain.json", path.read_bytes())
    page.set_input_files("#verify-receipt", files=[downloaded])
    page.set_input_files("#verify-file", files=[file_payload("release.txt", content)])
    expect_valid(page, path.read_bytes(), TIMEOUT)
    assert not pages.errors


def test_sign_without_wallet_says_so(pages: Pages) -> None:
    page = pages.open("sign", "desktop")
    expect(page.locator(".wallet")).to_contain_text("No wallet found")
    expect(page.locator("#sign-submit")).to_be_disabled()


def test_explorer_shows_transaction_event_document_signer_block(
    pages: Pages, stack: Stack, signed: dict[str, Any]
) -> None:
    status = signed["status"]
    doc_hash, tx_hash, block = status["docHash"], status["txHash"], status["blockNumber"]
    for viewport in ("desktop", "mobile"):
        page = pages.open("explorer", viewport)
        expect(page.locator("#latest-blocks table")).to_be_visible(timeout=TIMEOUT)
        recent = page.locator("#recent-documents")
        expect(recent.locator(f'a[href="#/doc/{doc_hash}"]')).to_be_visible()
        pages.shot(page, f"explorer-{viewport}")

    # from the home page's registry transactions to the transaction page
    page = pages.open("explorer", "desktop")
    page.locator(f'#registry-txs a[href="#/tx/{tx_hash}"]').first.click()
    expect(page.locator("#tx-function")).to_have_text("registerBatch()", timeout=TIMEOUT)
    events = page.locator("table.events-table tbody tr")
    expect(events.filter(has=page.locator(f'a[href="#/doc/{doc_hash}"]'))).to_have_count(1)
    expect(events.first.locator("[data-kind]")).to_have_text("Registered")
    expect(events.filter(has=page.locator(f'a[href="#/signer/{SIGNER2}"]'))).to_have_count(1)
    expect(page.locator(".facts")).to_contain_text("success")
    pages.shot(page, "tx-desktop")

    # every hash is a link: on to the document page
    page.locator(f'table.events-table a[href="#/doc/{doc_hash}"]').click()
    expect(page.locator("h1")).to_have_text("Document")
    expect(page.locator(f'table.signers a[href="#/signer/{SIGNER2}"]')).to_be_visible()
    expect(page.locator(".timeline")).to_contain_text("signed")
    receipt_link = page.locator("a.receipt-link")
    expect(receipt_link).to_have_attribute("href", f"/v1/documents/{doc_hash}/receipts/{SIGNER2}")
    pages.shot(page, "document-desktop")

    # the signer page lists the document
    page.locator(f'table.signers a[href="#/signer/{SIGNER2}"]').click()
    expect(page.locator("h1")).to_have_text("Signer")
    expect(page.locator(f'table a[href="#/doc/{doc_hash}"]')).to_be_visible(timeout=TIMEOUT)
    pages.shot(page, "signer-desktop")

    # the block page holds the transaction with its decoded event
    page.locator(f'a[href="#/block/{block}"]').first.click()
    expect(page.locator("h1")).to_have_text(f"Block #{block}")
    expect(page.locator(f'.tx-card a[href="#/tx/{tx_hash}"]')).to_be_visible(timeout=TIMEOUT)
    expect(page.locator(".tx-card .event").first).to_contain_text("Registered")
    pages.shot(page, "block-desktop")

    for route, name in ((f"tx/{tx_hash}", "tx"), (f"doc/{doc_hash}", "document")):
        mobile = pages.open(route, "mobile")
        expect(mobile.locator("h1")).to_be_visible()
        expect(mobile.locator(".loading")).to_have_count(0, timeout=TIMEOUT)
        pages.shot(mobile, f"{name}-mobile")

    # the search box: a document hash, an address, a block number
    page = pages.open("explorer")
    page.fill("#explorer-search", doc_hash)
    page.press("#explorer-search", "Enter")
    expect(page).to_have_url(f"{stack.url}/#/doc/{doc_hash}", timeout=TIMEOUT)
    assert not pages.errors


def test_empty_states(pages: Pages) -> None:
    unknown = "0x" + os.urandom(32).hex()
    page = pages.open(f"doc/{unknown}")
    expect(page.locator(".box.empty")).to_contain_text("Unknown document", timeout=TIMEOUT)
    page = pages.open(f"signer/0x{os.urandom(20).hex()}")
    expect(page.locator(".box.empty")).to_contain_text("No signed documents", timeout=TIMEOUT)
    page = pages.open(f"tx/{unknown}", "mobile")
    expect(page.locator(".box.empty")).to_contain_text("Unknown transaction", timeout=TIMEOUT)
    pages.shot(page, "tx-unknown-mobile")
    page = pages.open("doc/0x1234")
    expect(page.locator(".box.error")).to_contain_text("Not a document hash")
    page = pages.open("nowhere")
    expect(page.locator(".box.empty")).to_contain_text("Page not found")


def test_node_down(pages: Pages, stack: Stack) -> None:
    """An API whose node is unreachable: the header says so, a banner explains, and verifying shows the
    API's problem detail instead of hanging."""
    page = pages.open("verify", base=stack.down_url)
    expect(page.locator("#node-status")).to_have_text("node down", timeout=TIMEOUT)
    expect(page.locator("#banner")).to_contain_text("The Ethereum node is not reachable")
    page.set_input_files("#verify-file", files=[file_payload("a.txt", b"anything")])
    error = page.locator(".result .box.error")
    expect(error).to_be_visible(timeout=TIMEOUT)
    expect(error).to_contain_text("HTTP 503")
    pages.shot(page, "node-down-desktop")
    page.set_viewport_size(VIEWPORTS["mobile"])
    pages.shot(page, "node-down-mobile")
    page = pages.open("explorer", "mobile", base=stack.down_url)
    expect(page.locator("main .box.error")).to_contain_text("HTTP 503", timeout=TIMEOUT)
    expect(page.locator("#node-status")).to_have_text("node down", timeout=TIMEOUT)
    expect(page.locator("main h1")).to_have_text("Explorer")
    pages.shot(page, "explorer-node-down-mobile")
