"""The web UI's Keccak-256, metadata hash, EIP-55 addresses and revocation, in headless Chromium against a
real stack.

The browser computes what Python computes: keccak256 against published vectors and eth-hash, the metadata
hash against chain/typed_data.py::metadata_hash (the function the API checks submissions with), and
checksummed addresses against chain/values.py. Then two user stories: sign with metadata and find its hash
on the document page; revoke a signature from the document page and see verification say "revoked".
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import pytest
from eth_hash.auto import keccak
from playwright.sync_api import expect
from webstack import WALLET, Pages, Stack

from docchain.chain.typed_data import metadata_hash
from docchain.chain.values import to_checksum_address

pytestmark = pytest.mark.browser

# anvil's dev account #1: the injected wallet's account (its key is public, like every anvil dev key)
WALLET_KEY = bytes.fromhex("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")
# anvil's dev account #2, a signer that is not the wallet
KEY2 = bytes.fromhex("5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a")
SIGNER2 = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
ZERO32 = "0x" + "00" * 32
TIMEOUT = 20_000  # ms, for anything that waits on the chain


def file_payload(name: str, content: bytes) -> dict[str, Any]:
    return {"name": name, "mimeType": "application/octet-stream", "buffer": content}


def py_metadata_hash(metadata: dict[str, Any]) -> str:
    return "0x" + metadata_hash(metadata).hex()


# Metadata the page must hash exactly as Python does: non-ASCII and astral text (in keys too: Python sorts
# keys by code point, JS by UTF-16 unit, and they disagree on "～" U+FF5E vs "😀" U+1F600), the characters
# JSON escapes, nesting, and numbers whose Python repr differs from JavaScript's (1e-07 vs 1e-7).
METADATA = [
    {"title": "Employment contract"},
    {"title": "Contrat de travail — été 2024 ✓", "note": "signé à Zürich; 日本語のメモ"},
    {"😀": "emoji key", "～": "fullwidth tilde", "a": "ascii", "é": "e acute", "Z": "upper"},
    {"escapes": 'quote " backslash \\ newline \n tab \t bell \u0007 del \u007f nbsp \u00a0 ls \u2028'},
    {"nested": {"z": [1, 2, {"y": None, "x": True}], "a": False}, "list": ["b", "a"], "empty": {}},
    {"int": 42, "neg": -7, "big": 9007199254740991, "float": 1.5, "tiny": 1e-7, "small": 0.00001},
    {"edge": 0.0001, "huge": 1e21, "whole": 2.0, "frac": 1e15 + 0.5, "exp": 1.5e300, "negf": -2.5e-10},
]


def test_keccak_checksum_and_metadata_hash_equal_python(pages: Pages) -> None:
    page = pages.open("verify")
    # keccak256 over lengths that straddle the 136-byte rate (padding in the same or in an extra block)
    lengths = [0, 1, 3, 55, 135, 136, 137, 271, 272, 273, 1000]
    got = page.evaluate(
        """async lengths => {
          const k = await import('/js/keccak.js');
          const vectors = [k.keccak256Hex(""), k.keccak256Hex("abc")];
          const lens = lengths.map(n => {
            const data = new Uint8Array(n);
            for (let i = 0; i < n; i++) data[i] = (i * 131 + 17) & 0xff;
            return k.keccak256Hex(data);
          });
          return {vectors, lens};
        }""",
        lengths,
    )
    assert got["vectors"] == [
        "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470",
        "0x4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45",
    ]
    for n, digest in zip(lengths, got["lens"], strict=True):
        assert digest == "0x" + keccak(bytes((i * 131 + 17) & 0xFF for i in range(n))).hex(), n

    # EIP-55 against Python's to_checksum_address, from lower- and upper-case input
    addresses = ["0x" + os.urandom(20).hex() for _ in range(20)] + [WALLET.lower(), SIGNER2.upper().replace("0X", "0x")]
    checksummed = page.evaluate(
        """async addrs => {
          const k = await import('/js/keccak.js');
          return addrs.map(a => k.toChecksumAddress(a));
        }""",
        addresses,
    )
    assert checksummed == [to_checksum_address(bytes.fromhex(a[2:])) for a in addresses]
    assert checksummed[-2:] == [WALLET, SIGNER2]

    # metadata: the hash of what the page would send, as the API computes it from the JSON it receives
    results = page.evaluate(
        """async objects => {
          const m = await import('/js/metadata.js');
          return objects.map(o => ({sent: JSON.stringify(o), canonical: m.canonicalJson(o), hash: m.metadataHash(o)}));
        }""",
        [*METADATA, {}],
    )
    for original, r in zip(METADATA, results[:-1], strict=True):
        received = json.loads(r["sent"])
        assert r["canonical"] == json.dumps(received, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert r["hash"] == py_metadata_hash(received), original
        if "whole" not in original:  # 2.0 reaches the page as the number 2: the one value that changes type
            assert r["hash"] == py_metadata_hash(original), original
    assert results[-1]["hash"] == ZERO32  # no metadata: a zero metadataHash, as in Python
    assert len({r["hash"] for r in results}) == len(results)
    assert not pages.errors


def test_sign_with_metadata_until_anchored_and_document_shows_its_hash(pages: Pages, stack: Stack) -> None:
    content = b"Board minutes, March\n" + os.urandom(32)
    doc_hash = "0x" + hashlib.sha256(content).hexdigest()
    extra = '{"version": 2, "ratio": 0.00001, "tags": ["draft", "Ünïcödé"], "nested": {"z": 1, "ä": null}}'
    expected = {"title": "Procès-verbal — mars ✓", "note": "signé à Zürich 😀", **json.loads(extra)}
    want = py_metadata_hash(expected)

    page = pages.open("sign", wallet=True)
    page.click("#connect")
    page.set_input_files("#sign-file", files=[file_payload("minutes.txt", content)])
    expect(page.locator(".hash-out code")).to_have_text(doc_hash)
    preview = page.locator("#sign-metadata-hash")
    expect(preview).to_contain_text("No metadata")
    rows = page.locator(".meta-row")
    expect(rows.nth(0).locator(".meta-key")).to_have_value("title")
    rows.nth(0).locator(".meta-value").fill(expected["title"])
    rows.nth(1).locator(".meta-value").fill(expected["note"])
    page.locator(".meta summary").click()
    # a duplicate field is refused before anything is signed
    page.fill("#sign-metadata-json", '{"title": "again"}')
    expect(preview).to_contain_text("given twice")
    page.click("#sign-submit")
    expect(page.locator(".status .box.error")).to_contain_text("Metadata cannot be signed")
    page.fill("#sign-metadata-json", extra)
    expect(page.locator(".status .box.error")).to_have_count(0)  # the stale complaint goes with the fix
    expect(preview.locator("code")).to_have_text(want)  # the hash the wallet will sign, before signing
    pages.shot(page, "sign-metadata-desktop")

    page.click("#sign-submit")
    card = page.locator("#submission")
    expect(card).to_have_attribute("data-state", "confirmed", timeout=TIMEOUT)
    expect(card.locator(".meta-hash-cell")).to_have_attribute("data-full", want)

    # the API accepted the metadata (it checks the hash) and records the signed metadataHash
    status = stack.get(f"/v1/documents/{doc_hash}").json()
    assert [(s["signer"], s["state"], s["metadataHash"]) for s in status["signers"]] == [(WALLET, "confirmed", want)]
    receipt = stack.get(f"/v1/documents/{doc_hash}/receipts/{WALLET}").json()
    assert receipt["eip712"]["message"]["metadataHash"] == want

    # the document page shows it
    card.locator(f'a.ref-doc[href="#/doc/{doc_hash}"]').click()
    expect(page.locator("h1")).to_have_text("Document")
    cell = page.locator("table.signers .meta-hash-cell")
    expect(cell).to_have_attribute("data-full", want, timeout=TIMEOUT)
    expect(cell).to_have_text(want[:6] + "…" + want[-4:])
    pages.shot(page, "document-metadata-desktop")
    assert not pages.errors


def test_revoke_from_the_document_page_then_verify_says_revoked(pages: Pages, stack: Stack) -> None:
    content = b"Offer letter\n" + os.urandom(32)
    signed = stack.register(content, WALLET_KEY, "offer.txt")  # signed by the wallet's account, from Python
    doc_hash = signed["docHash"]
    nonce_before = stack.get(f"/v1/nonces/{WALLET}").json()["nonce"]

    # the document page offers "Revoke" because the wallet's account (lower case from anvil) is a signer
    page = pages.open(f"doc/{doc_hash}", wallet=True)
    action = page.locator("#revoke-action")
    expect(action.locator("#revoke-link")).to_be_visible(timeout=TIMEOUT)
    expect(action.locator("a.ref-address")).to_have_attribute("data-full", WALLET)
    pages.shot(page, "document-revoke-offer-desktop")
    action.locator("#revoke-link").click()

    expect(page.locator("h1")).to_have_text("Revoke a signature")
    expect(page.locator(".wallet a.ref-address").first).to_have_text(WALLET, timeout=TIMEOUT)  # adopted, checksummed
    expect(page.locator(".record [data-state]")).to_have_text("confirmed")
    submit = page.locator("#revoke-submit")
    expect(submit).to_be_enabled()
    submit.click()
    card = page.locator("#revocation")
    expect(card).to_have_attribute("data-state", "revoked", timeout=TIMEOUT)
    expect(card).to_contain_text("Signature revoked")
    expect(card.locator(f'a.ref-doc[href="#/doc/{doc_hash}"]')).to_be_visible()
    expect(submit).to_be_disabled()
    expect(page.locator(".record [data-state]")).to_have_text("revoked")
    pages.shot(page, "revoked-desktop")
    calls = page.evaluate("window.__walletCalls")
    assert "eth_signTypedData_v4" in calls
    assert "eth_requestAccounts" not in calls  # the account the wallet already shared was used, no prompt

    # on chain: revoked, and the signer's nonce consumed
    status = stack.get(f"/v1/documents/{doc_hash}").json()
    (mine,) = status["signers"]
    assert (mine["signer"], mine["state"]) == (WALLET, "revoked")
    assert mine["revokedAt"] >= signed["timestamp"]
    assert stack.get(f"/v1/nonces/{WALLET}").json()["nonce"] == nonce_before + 1

    # verifying the file now says revoked
    page = pages.open("verify", wallet=True)
    page.set_input_files("#verify-file", files=[file_payload("offer.txt", content)])
    verdict = page.locator("#verdict")
    expect(verdict).to_have_attribute("data-verdict", "revoked", timeout=TIMEOUT)
    expect(verdict.locator("h2")).to_have_text("Revoked")
    expect(verdict).to_contain_text(f"{WALLET} revoked this signature")
    expect(page.locator('.checks li.bad[data-check="revocation"]')).to_be_visible()
    expect(page.locator(f'#verify-revocation a.ref-address[data-full="{WALLET}"]')).to_be_visible()
    expect(page.locator("table.signers [data-state]")).to_have_text("revoked")
    pages.shot(page, "verify-revoked-desktop")

    # and the document page no longer offers to revoke, it says it was revoked
    page = pages.open(f"doc/{doc_hash}", wallet=True)
    expect(page.locator("#revoked-note")).to_contain_text("revoked its signature", timeout=TIMEOUT)
    expect(page.locator("#revoke-link")).to_have_count(0)
    assert not pages.errors


def test_revoke_page_refuses_an_account_that_did_not_sign(pages: Pages, stack: Stack) -> None:
    signed = stack.register(b"Not the wallet's\n" + os.urandom(16), KEY2, "other.txt")
    page = pages.open(f"revoke/{signed['docHash']}", wallet=True)
    expect(page.locator("#not-signer")).to_contain_text("has not signed this document", timeout=TIMEOUT)
    expect(page.locator("#not-signer a.ref-address")).to_have_text(WALLET)
    expect(page.locator("#revoke-submit")).to_be_disabled()
    assert not pages.errors


def test_addresses_are_shown_checksummed(pages: Pages, stack: Stack) -> None:
    # the wallet answers in lower case; the page shows EIP-55
    page = pages.open("sign", wallet=True)
    assert page.evaluate("window.ethereum.request({method: 'eth_accounts'})") == [WALLET.lower()]
    page.click("#connect")
    expect(page.locator(".wallet a.ref-address").first).to_have_text(WALLET)
    registry = to_checksum_address(bytes.fromhex(stack.domain.verifying_contract[2:]))
    expect(page.locator(".wallet a.ref-address").nth(1)).to_have_attribute("data-full", registry)

    # a signer page reached by a lower-case address shows the checksummed one, and its links use it
    page = pages.open(f"signer/{SIGNER2.lower()}")
    expect(page.locator("main .hash code")).to_have_text(SIGNER2, timeout=TIMEOUT)

    # every address link on the explorer home page is checksummed
    page = pages.open("explorer")
    expect(page.locator("#latest-blocks table")).to_be_visible(timeout=TIMEOUT)
    refs = page.locator("a.ref-address")
    expect(refs.first).to_be_visible()
    shown = refs.evaluate_all("els => els.map(e => [e.dataset.full, e.getAttribute('href'), e.textContent])")
    assert len(shown) >= 2
    for full, href, text in shown:
        assert full == to_checksum_address(bytes.fromhex(full[2:])), full
        assert href == f"#/signer/{full}"
        assert text in (full, full[:8] + "…" + full[-6:])
    assert registry in {full for full, _, _ in shown}
    assert not pages.errors
