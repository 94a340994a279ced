"""The explorer when the node behind a running API goes down, in headless Chromium: the page says the chain is
unreachable where blocks and transactions would be, still lists what docchain has indexed, and is whole again
once the node is back. (test_web.py's node-down API never reached its node; this one loses it.)"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect
from web3 import HTTPProvider, Web3
from webstack import DEV_KEY, Pages, api_ready, start_api, stop_process

from docchain.chain import deploy
from docchain.chain.sender import TxSender
from docchain.chain.typed_data import Domain, Registration, address_of, sign
from tests.support import DevNode, free_port, poll

pytestmark = pytest.mark.browser

TIMEOUT = 20_000  # ms
KEY = bytes.fromhex("5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a")  # anvil dev account #2


@dataclass
class Losable:
    """An API bound to a node of its own, which the test stops and starts again."""

    node: DevNode
    url: str
    domain: Domain


@pytest.fixture
def losable(tmp_path: Path) -> Iterator[Losable]:
    node = DevNode(tmp_path / "node").started()
    api = None
    try:
        data_dir = tmp_path / "data"
        data_dir.mkdir()
        w3 = Web3(HTTPProvider(node.rpc_url))
        deployment, _ = deploy.ensure_deployed(TxSender(w3, bytes.fromhex(DEV_KEY[2:])), data_dir)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCCHAIN_")}
        env |= {
            "DOCCHAIN_RPC_URL": node.rpc_url,
            "DOCCHAIN_DATA_DIR": str(data_dir),
            "DOCCHAIN_RELAYER_KEY": DEV_KEY,
            "DOCCHAIN_CONFIRMATIONS": "1",
            "DOCCHAIN_BATCH_INTERVAL_MS": "30",
            "DOCCHAIN_POLL_INTERVAL_MS": "50",
        }
        port = free_port()
        api = start_api(env, port, tmp_path / "api.out")
        poll(lambda: api_ready(api, port, tmp_path / "api.out", "/readyz"), 30, what="the API to be ready")
        yield Losable(node, f"http://127.0.0.1:{port}", Domain(chain_id=31337, verifying_contract=deployment.address))
    finally:
        if api is not None:
            stop_process(api)
        node.stop()


def _register(stack: Losable) -> dict[str, Any]:
    doc = hashlib.sha256(b"minutes of the board meeting\n" + os.urandom(16)).digest()
    reg = Registration(doc_hash=doc, signer=address_of(KEY), deadline=int(time.time()) + 3600)
    body = {"registration": reg.to_json(), "signature": "0x" + sign(stack.domain, reg, KEY).hex()}
    r = httpx.post(stack.url + "/v1/documents", json=body, timeout=30)
    assert r.status_code == 202, r.text

    def confirmed() -> dict[str, Any] | None:
        s = httpx.get(stack.url + r.json()["statusUrl"], params={"wait": 5, "until": "confirmed"}, timeout=30).json()
        return s if s["state"] == "confirmed" else None

    return poll(confirmed, 30, interval=0.01, what="the document confirmed")  # type: ignore[no-any-return]


def test_explorer_says_the_chain_is_unreachable_and_recovers(pages: Pages, losable: Losable) -> None:
    anchored = _register(losable)
    doc, tx = anchored["docHash"], anchored["txHash"]
    losable.node.stop()

    page = pages.open("explorer", base=losable.url)
    notice = page.locator("main #chain-unreachable")
    expect(notice).to_contain_text("The chain is unreachable", timeout=TIMEOUT)
    expect(notice).to_contain_text("HTTP 503")
    expect(page.locator("main h1")).to_have_text("Explorer")
    expect(page.locator("main .chain-card")).to_have_count(0)
    # what docchain indexed still shows, with its links
    expect(page.locator(f'#recent-documents a[href="#/doc/{doc}"]')).to_have_count(1)
    expect(page.locator("#node-status")).to_have_text("node down", timeout=TIMEOUT)
    pages.shot(page, "explorer-chain-unreachable-desktop")

    for route, title in ((f"tx/{tx}", "Transaction"), (f"block/{anchored['blockNumber']}", "Block")):
        page = pages.open(route, "mobile", base=losable.url)
        expect(page.locator("main #chain-unreachable")).to_contain_text("The chain is unreachable", timeout=TIMEOUT)
        expect(page.locator("main h1")).to_contain_text(title)
    pages.shot(page, "block-chain-unreachable-mobile")

    page = pages.open(f"doc/{doc}", base=losable.url)  # the document's page needs only the index
    expect(page.locator("main h1")).to_have_text("Document", timeout=TIMEOUT)
    expect(page.locator(f'main a[href="#/signer/{address_of(KEY)}"]').first).to_be_visible()
    expect(page.locator("main #chain-unreachable")).to_have_count(0)

    losable.node.started()
    page = pages.open("explorer", base=losable.url)
    expect(page.locator("main .chain-card")).to_be_visible(timeout=TIMEOUT)
    expect(page.locator("main #chain-unreachable")).to_have_count(0)
    expect(page.locator(f'#registry-txs a[href="#/tx/{tx}"]').first).to_be_visible()
