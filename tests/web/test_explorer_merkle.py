"""Merkle-anchored records in the explorer, in headless Chromium: a signer's page lists its Merkle leaf beside its
direct record, newest first, naming the leaf's root; the root's anchorRoot transaction shows the root, its leaf
count and the document under it (the chain holds the root alone: the document comes from this service)."""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect
from webstack import Pages, Stack

from docchain.chain import typed_data as td
from docchain.chain.values import to_hex
from tests.support import poll

pytestmark = pytest.mark.browser

TIMEOUT = 20_000  # ms


def _signed(stack: Stack, key: bytes, anchoring: str) -> dict[str, Any]:
    """A random document signed with ``key``, submitted in ``anchoring`` mode; its status once confirmed."""
    reg = td.Registration(doc_hash=os.urandom(32), signer=td.address_of(key), deadline=2**40)
    body = {"registration": reg.to_json(), "signature": to_hex(td.sign(stack.domain, reg, key)), "anchoring": anchoring}
    r = httpx.post(f"{stack.url}/v1/documents", json=body, timeout=30)
    assert r.status_code == 202, r.text
    sid = r.json()["id"]

    def confirmed() -> dict[str, Any] | None:
        s: dict[str, Any] = stack.get(f"/v1/submissions/{sid}", params={"wait": 5, "until": "confirmed"}).json()
        return s if s["state"] == "confirmed" else None

    return {"docHash": to_hex(reg.doc_hash), **poll(confirmed, 30, interval=0.01, what=f"{sid} confirmed")}


def test_a_signers_page_lists_its_merkle_leaf_and_the_root_transaction_shows_the_document(
    pages: Pages, stack: Stack
) -> None:
    key = os.urandom(32)
    direct = _signed(stack, key, "direct")
    leaf = _signed(stack, key, "merkle")  # anchored after the direct record: listed first
    root = leaf["merkleRoot"]
    assert root is not None

    page = pages.open(f"signer/{td.address_of(key)}")
    rows = page.locator("table.signer-documents tbody tr")
    expect(rows).to_have_count(2, timeout=TIMEOUT)
    expect(rows.nth(0).locator(f'a[href="#/doc/{leaf["docHash"]}"]')).to_be_visible()
    expect(rows.nth(0).locator('[data-anchoring="merkle"]')).to_have_attribute("title", f"Merkle root {root}")
    expect(rows.nth(0).locator(f'a[href="#/tx/{leaf["txHash"]}"]')).to_be_visible()
    expect(rows.nth(1).locator(f'a[href="#/doc/{direct["docHash"]}"]')).to_be_visible()
    expect(rows.nth(1).locator('[data-anchoring="direct"]')).to_be_visible()
    pages.shot(page, "signer-merkle-desktop")

    # the leaf's transaction: its root, how many leaves, and the document this service put under it
    rows.nth(0).locator(f'a[href="#/tx/{leaf["txHash"]}"]').click()
    section = page.locator(f'section.merkle-root-section[data-root="{root}"]')
    expect(section.locator("code.merkle-root")).to_have_text(root, timeout=TIMEOUT)
    tree = stack.get(f"/v1/explorer/tx/{leaf['txHash']}").json()["roots"][0]
    expect(section.locator(".leaf-count")).to_have_text(f"{tree['leafCount']:,}")
    expect(section.locator(f'table.tree-documents a[href="#/doc/{leaf["docHash"]}"]')).to_be_visible()
    expect(page.locator("#tx-function")).to_have_text("anchorRoot()")
    assert not pages.errors
