"""The tamper matrix's rows that matter most, through the web page in Chromium: a receipt naming a look-alike
registry or an address without code, another transaction, another time, another signer. Each is refused at
its named step, and the page says the very sentence the API answers for it (the same words everywhere)."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect
from web3 import HTTPProvider, Web3
from webstack import DEV_KEY, Pages, Stack

from docchain.chain import artifacts
from docchain.chain.sender import TxSender

pytestmark = pytest.mark.browser

KEY2 = bytes.fromhex("5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a")
SIGNER2 = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
NO_CODE = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
TIMEOUT = 20_000


@pytest.fixture(scope="module")
def signed(stack: Stack) -> dict[str, Any]:
    content = b"Lease agreement\n" + os.urandom(16)
    status = stack.register(content, KEY2, "lease.txt")
    receipt = stack.get(f"/v1/documents/{status['docHash']}/receipts/{SIGNER2}").json()
    # the API's verdict is the one under test: a receipt with its evidence bundle is verified in the page instead
    # (tests/web/test_page_offline.py)
    receipt.pop("evidence", None)
    return {"content": content, "receipt": receipt}


@pytest.fixture(scope="module")
def lookalike(stack: Stack) -> str:
    sender = TxSender(Web3(HTTPProvider(stack.rpc_url)), bytes.fromhex(DEV_KEY[2:]))
    return str(sender.transact(None, artifacts.load("LookAlikeRegistry").bytecode)["contractAddress"])


def _contract(address: Callable[[str], str]) -> Callable[[dict[str, Any], str], None]:
    def mutate(r: dict[str, Any], lookalike: str) -> None:
        r["contract"] = r["eip712"]["domain"]["verifyingContract"] = address(lookalike)

    return mutate


def _signer(r: dict[str, Any], _: str) -> None:
    r["signer"] = r["eip712"]["message"]["signer"] = NO_CODE


def _tx(r: dict[str, Any], _: str) -> None:
    r["anchor"]["transactionHash"] = "0x" + "ab" * 32


def _time(r: dict[str, Any], _: str) -> None:
    r["anchor"]["timestamp"] -= 3600


ROWS = [
    ("registry: a look-alike", _contract(lambda lookalike: Web3.to_checksum_address(lookalike)), "registry"),
    ("registry: no code", _contract(lambda _: NO_CODE), "registry"),
    ("transaction", _tx, "anchor"),
    ("timestamp", _time, "anchor"),
    ("signer", _signer, "signature"),
]


@pytest.mark.parametrize(("row", "mutate", "step"), ROWS, ids=[r[0] for r in ROWS])
def test_the_page_refuses_a_tampered_receipt_at_its_step(
    pages: Pages,
    stack: Stack,
    signed: dict[str, Any],
    lookalike: str,
    row: str,
    mutate: Callable[[dict[str, Any], str], None],
    step: str,
) -> None:
    receipt = copy.deepcopy(signed["receipt"])
    mutate(receipt, lookalike)
    text = json.dumps(receipt)
    api = httpx.post(
        f"{stack.url}/v1/verify", json={"docHash": receipt["document"]["sha256"], "receipt": text}, timeout=30
    ).json()
    assert (api["outcome"], api["failedStep"]) == ("invalid", step), api["summary"]

    page = pages.open("verify")
    page.set_input_files(
        "#verify-receipt", files=[{"name": "r.docchain.json", "mimeType": "application/json", "buffer": text.encode()}]
    )
    page.set_input_files(
        "#verify-file", files=[{"name": "lease.txt", "mimeType": "text/plain", "buffer": signed["content"]}]
    )
    verdict = page.locator("#verdict")
    expect(verdict).to_have_attribute("data-verdict", "invalid", timeout=TIMEOUT)
    expect(page.locator(f'.checks li.bad[data-check="{step}"]')).to_be_visible()
    expect(verdict.locator("p.summary")).to_have_text(api["summary"])
    assert not pages.errors


def test_a_refused_receipt_stays_the_question_and_fails_at_the_receipt_step(
    pages: Pages, stack: Stack, signed: dict[str, Any]
) -> None:
    """A receipt the strict reader refuses, dropped before its file, is not forgotten: the file is judged
    against it and fails at the receipt step with the reader's message, the verdict the API answers for the
    same pair (the page once reset the receipt field and then said Valid for the file alone)."""
    receipt = copy.deepcopy(signed["receipt"])
    receipt["docchainReceipt"] = True
    text = json.dumps(receipt)
    api = httpx.post(
        f"{stack.url}/v1/verify", json={"docHash": receipt["document"]["sha256"], "receipt": text}, timeout=30
    ).json()
    assert (api["outcome"], api["failedStep"]) == ("invalid", "receipt"), api["summary"]
    assert api["reason"].endswith("docchainReceipt must be 1 or 2 (the format versions this docchain reads), got true")

    page = pages.open("verify")
    page.set_input_files(
        "#verify-receipt", files=[{"name": "r.docchain.json", "mimeType": "application/json", "buffer": text.encode()}]
    )
    expect(page.locator(".result")).to_contain_text("got true", timeout=TIMEOUT)
    page.set_input_files(
        "#verify-file", files=[{"name": "lease.txt", "mimeType": "text/plain", "buffer": signed["content"]}]
    )
    verdict = page.locator("#verdict")
    expect(verdict).to_have_attribute("data-verdict", "invalid", timeout=TIMEOUT)
    expect(verdict.locator("h2")).to_have_text(api["title"])
    expect(page.locator('.checks li.bad[data-check="receipt"]')).to_contain_text(api["reason"])
    expect(verdict.locator("p.summary")).to_have_text(api["summary"])
    assert not pages.errors
