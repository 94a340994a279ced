"""Helpers every test folder shares: free ports, polling (never a fixed sleep), a dev node to drive."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from docchain.chain.node import LocalNode, NodeConfig


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def poll(condition: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05, what: str = "condition") -> Any:
    """Wait until ``condition()`` is truthy and return it; fail after ``timeout``. Never a fixed sleep."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except (httpx.TransportError, ConnectionError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class DevNode(LocalNode):
    """The product's own node manager (anvil, configured as the embedded stack runs it), on a fixed port so
    it can be stopped and started again at the same address, plus the dev calls tests drive."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        super().__init__(NodeConfig(data_dir=data_dir, port=port or free_port()))

    def started(self) -> DevNode:
        self.start()
        return self

    @property
    def url(self) -> str:
        return self.rpc_url

    def rpc(self, method: str, params: list[Any] | None = None) -> Any:
        r = httpx.post(self.url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
        return r.json().get("result")

    def mine(self, blocks: int = 1) -> None:
        self.rpc("anvil_mine", [hex(blocks)])
