"""Helpers for the browser tests: a real stack (anvil + deployed registry + ``python -m docchain.api``
serving api/web/) and headless Debian Chromium driven by Playwright.

Screenshots go to test-output/web/ (at 1280x800 and 390x844) so a person can look at the layout.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from docchain.chain.typed_data import Domain, Registration, address_of, sign
from tests.support import poll

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("DOCCHAIN_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = ROOT / "test-output" / "web"
# anvil's first dev account pays gas as the relayer (a public test key; the API has no default key)
DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
# anvil's dev account #1: unlocked in the node, the "wallet" of the injected EIP-1193 provider
WALLET = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "mobile": {"width": 390, "height": 844}}


def start_api(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    """``python -m docchain.api`` on ``port`` with ``env``, its output appended to ``log``."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "docchain.api", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def api_ready(proc: subprocess.Popen[bytes], port: int, log: Path, path: str) -> bool:
    if proc.poll() is not None:
        raise AssertionError(f"the API exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
    return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code == 200


def stop_process(*procs: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the API's graceful shutdown) to each at once, SIGKILL to any still running after 20 s."""
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Stack:
    url: str
    rpc_url: str
    domain: Domain
    tmp: Path
    api: subprocess.Popen[bytes]
    env: dict[str, str]
    down: subprocess.Popen[bytes]  # an API whose node is unreachable
    down_port: int

    @property
    def down_url(self) -> str:
        """The node-down API, once it answers /healthz."""
        log = self.tmp / "down.out"
        poll(lambda: api_ready(self.down, self.down_port, log, "/healthz"), 30, what="the API without a node")
        return f"http://127.0.0.1:{self.down_port}"

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return httpx.get(self.url + path, timeout=30, **kw)

    def rpc(self, method: str, params: list[Any] | None = None) -> Any:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}
        r = httpx.post(self.rpc_url, json=body)
        return r.json().get("result")

    def register(
        self, content: bytes, key: bytes, name: str = "doc.txt", supersedes: bytes = bytes(32)
    ) -> dict[str, Any]:
        """Sign ``content`` with ``key`` in Python (naming the document it ``supersedes``, if any), submit it through
        the API and wait until confirmed."""
        doc = hashlib.sha256(content).digest()
        reg = Registration(
            doc_hash=doc, signer=address_of(key), deadline=int(time.time()) + 3600, supersedes=supersedes
        )
        body = {
            "registration": reg.to_json(),
            "signature": "0x" + sign(self.domain, reg, key).hex(),
            "fileName": name,
            "fileSize": len(content),
        }
        r = httpx.post(self.url + "/v1/documents", json=body, timeout=30)
        assert r.status_code in (200, 202), r.text
        sid = r.json()["id"]

        def confirmed() -> dict[str, Any] | None:
            s = self.get(f"/v1/submissions/{sid}", params={"wait": 5, "until": "confirmed"}).json()
            return s if s["state"] == "confirmed" else None

        return poll(confirmed, 30, interval=0.01, what=f"submission {sid} confirmed")


class Pages:
    """Opens pages on the stack at a named viewport, collects console errors, saves screenshots."""

    def __init__(self, browser: Any, stack: Stack) -> None:
        self.browser, self.stack = browser, stack
        self.contexts: list[Any] = []
        self.errors: list[str] = []

    def open(
        self, route: str = "", viewport: str = "desktop", wallet: bool | str = False, base: str | None = None
    ) -> Any:
        """``wallet``: True injects INJECTED_WALLET; a string is another wallet's script (see wallet_script)."""
        ctx = self.browser.new_context(viewport=VIEWPORTS[viewport], accept_downloads=True)
        self.contexts.append(ctx)
        if wallet:
            # the wallet's JSON-RPC goes to the node from Python, outside the page, as an extension's does: the
            # page's Content-Security-Policy (connect-src 'self') governs the page's requests, not a wallet's
            rpc_url = self.stack.rpc_url
            ctx.expose_function(
                "__walletRpc",
                lambda text: httpx.post(rpc_url, content=text, headers={"content-type": "application/json"}).json(),
            )
            ctx.add_init_script(script=wallet_script(INJECTED_WALLET, self.stack.rpc_url) if wallet is True else wallet)
        page = ctx.new_page()
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("console", self._console)
        page.goto((base or self.stack.url) + "/" + (f"#/{route}" if route else ""))
        return page

    def _console(self, msg: Any) -> None:
        if msg.type == "error":
            self.errors.append(f"console: {msg.text}")

    @staticmethod
    def shot(page: Any, name: str) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        page.evaluate("window.scrollTo(0, 0)")  # the sticky header belongs at the top of a full-page shot
        page.screenshot(path=str(path), full_page=True)
        return path

    def close(self) -> None:
        for ctx in self.contexts:
            ctx.close()


# JSON-RPC to the stack's node, for the injected wallets below: ``send(method, params)``, through the
# context's exposed ``__walletRpc`` (Pages.open), not the page's fetch.
RPC_SEND = r"""
  let id = 0;
  async function send(method, params) {
    const body = await window.__walletRpc(JSON.stringify({jsonrpc: "2.0", id: ++id, method, params: params || []}));
    if (body.error) { const e = new Error(body.error.message); e.code = body.error.code; throw e; }
    return body.result;
  }
"""


def wallet_script(template: str, rpc_url: str) -> str:
    """An injected wallet's script with its ``send`` to the node at ``rpc_url``."""
    return template.replace("__SEND__", RPC_SEND).replace("__RPC__", rpc_url)


# An EIP-1193 provider as a wallet extension would inject it: requests go to anvil (from outside the page, see
# RPC_SEND), whose dev accounts are unlocked and implement eth_signTypedData_v4.
INJECTED_WALLET = r"""
(() => {
  const listeners = {};
  const calls = [];
  __SEND__
  window.__walletCalls = calls;
  window.ethereum = {
    isMetaMask: false,
    async request({method, params}) {
      calls.push(method);
      if (method === "eth_requestAccounts") return send("eth_accounts").then(a => [a[1]]);
      if (method === "eth_accounts") return send("eth_accounts").then(a => [a[1]]);
      return send(method, params);
    },
    on(ev, fn) { (listeners[ev] = listeners[ev] || []).push(fn); },
    removeListener(ev, fn) { listeners[ev] = (listeners[ev] || []).filter(f => f !== fn); },
  };
})();
"""


def expect_valid(page: Any, receipt: bytes, timeout: int = 20_000) -> None:
    """The verify page, given a file and its receipt, says valid. A receipt with its evidence bundle is verified in
    the page, where it waits for the block hash to hold it to (data-verdict "unanchored"): the test gives the
    bundle's own block hash, as a person would after checking it with a node they trust."""
    import json

    from playwright.sync_api import expect

    evidence = json.loads(receipt).get("evidence")
    verdict = page.locator("#verdict")
    if evidence is not None:
        expect(verdict).to_have_attribute("data-verdict", "unanchored", timeout=timeout)
        page.fill("#offline-trusted", evidence["block"]["hash"])
        page.click("#offline-check")
    expect(verdict).to_have_attribute("data-verdict", "valid", timeout=timeout)
