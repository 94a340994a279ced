"""Fixtures for the browser tests: a real stack (anvil + deployed registry + ``python -m docchain.api``
serving api/web/) and headless Debian Chromium driven by Playwright (helpers in webstack.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from web3 import HTTPProvider, Web3
from webstack import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DEV_KEY,
    Pages,
    Stack,
    api_ready,
    start_api,
    stop_process,
)

from docchain.chain import deploy
from docchain.chain.sender import TxSender
from docchain.chain.typed_data import Domain
from tests.support import DevNode, free_port, poll


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("webstack")
    node = DevNode(tmp / "node").started()
    try:
        w3 = Web3(HTTPProvider(node.rpc_url))
        data_dir = tmp / "data"
        data_dir.mkdir()
        deployment, _ = deploy.ensure_deployed(TxSender(w3, bytes.fromhex(DEV_KEY[2:])), data_dir)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCCHAIN_")}
        env.update(
            {
                "DOCCHAIN_RPC_URL": node.rpc_url,
                "DOCCHAIN_DATA_DIR": str(data_dir),
                "DOCCHAIN_RELAYER_KEY": DEV_KEY,
                "DOCCHAIN_CONFIRMATIONS": "1",
                "DOCCHAIN_BATCH_INTERVAL_MS": "30",
                "DOCCHAIN_POLL_INTERVAL_MS": "50",
                "DOCCHAIN_LOG_FILE": str(tmp / "api.log.jsonl"),
            }
        )
        api = start_api(env, port, tmp / "api.out")
        # A second API whose node is unreachable, for the node-down state. It starts (and later stops) in
        # parallel with everything else: without a node both take several seconds.
        (tmp / "down").mkdir()
        down_port = free_port()
        down_env = {
            **env,
            "DOCCHAIN_RPC_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens there
            "DOCCHAIN_DATA_DIR": str(tmp / "down"),
            "DOCCHAIN_LOG_FILE": str(tmp / "down.log.jsonl"),
        }
        down = start_api(down_env, down_port, tmp / "down.out")
        try:
            poll(lambda: api_ready(api, port, tmp / "api.out", "/readyz"), 30, what="the API to be ready")
            domain = Domain(chain_id=int(w3.eth.chain_id), verifying_contract=deployment.address)
            yield Stack(f"http://127.0.0.1:{port}", node.rpc_url, domain, tmp, api, env, down, down_port)
        finally:
            stop_process(api, down)
    finally:
        node.stop()


@pytest.fixture(scope="module")  # Playwright's sync API runs an event loop in this thread while it lives:
# it must be gone before the async tests of another file run on the same pytest-xdist worker
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def pages(browser: Any, stack: Stack) -> Iterator[Pages]:
    p = Pages(browser, stack)
    yield p
    p.close()
