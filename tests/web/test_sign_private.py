"""The sign page's private mode in headless Chromium against a real stack: with "Private" checked the wallet signs
keccak256(sha256(file) || salt), with a salt from crypto.getRandomValues; the server is told nothing of the file
(no upload, no name), marks the submission private, and the downloaded receipt holds the salt and the file's
SHA-256, name and size, and verifies in the page."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from webstack import WALLET, Pages, Stack, expect_valid

from docchain.chain.hashing import commitment
from docchain.chain.receipt import parse_receipt
from docchain.chain.values import parse_hex

pytestmark = pytest.mark.browser

TIMEOUT = 20_000  # ms, for anything that waits on the chain


def _file(name: str, content: bytes, mime: str = "application/octet-stream") -> dict[str, Any]:
    return {"name": name, "mimeType": mime, "buffer": content}


def test_sign_privately_and_verify_with_the_downloaded_receipt(pages: Pages, stack: Stack, tmp_path: Path) -> None:
    content = b"A private offer\n" + os.urandom(32)
    sha = hashlib.sha256(content).digest()
    page = pages.open("sign", "desktop", wallet=True)
    page.click("#connect")
    expect(page.locator(".wallet")).to_contain_text(WALLET, ignore_case=True)
    page.set_input_files("#sign-file", files=[_file("offer.txt", content)])
    expect(page.locator(".hash-out code")).to_have_text("0x" + sha.hex())
    page.check("#sign-store")
    page.check("#sign-private")
    expect(page.locator("#sign-store")).to_be_disabled()
    expect(page.locator("#sign-store")).not_to_be_checked()
    page.click("#sign-submit")
    card = page.locator("#submission")
    expect(card).to_have_attribute("data-state", "confirmed", timeout=TIMEOUT)
    expect(card).to_contain_text("Commitment (private)")
    with page.expect_download() as info:
        page.click("#receipt-download")
    download = info.value
    assert download.suggested_filename == "offer.txt.docchain.json"
    path = tmp_path / "offer.txt.docchain.json"
    download.save_as(path)

    body = json.loads(path.read_text())
    salt = parse_hex(body["private"]["salt"])
    signed = commitment(sha, salt)
    assert body["document"] == {"sha256": "0x" + sha.hex(), "name": "offer.txt", "size": len(content)}
    assert body["eip712"]["message"]["docHash"] == "0x" + signed.hex()
    receipt = parse_receipt(path.read_bytes())  # what the CLI reads, strictly
    assert (receipt.sha256, receipt.doc_hash) == (sha, signed)

    # the server knows the commitment, as private, and nothing of the file
    assert stack.get(f"/v1/documents/0x{sha.hex()}").status_code == 404
    status = stack.get(f"/v1/documents/0x{signed.hex()}").json()
    assert status["stored"] is False
    assert [(s["signer"], s["private"]) for s in status["signers"]] == [(WALLET, True)]
    served = stack.get(f"/v1/documents/0x{signed.hex()}/receipts/{WALLET}").json()
    assert served["document"]["name"] is None and "private" not in served

    page = pages.open("verify")
    page.set_input_files("#verify-receipt", files=[_file(path.name, path.read_bytes(), "application/json")])
    page.set_input_files("#verify-file", files=[_file("offer.txt", content)])
    expect_valid(page, path.read_bytes(), TIMEOUT)
    assert not pages.errors
