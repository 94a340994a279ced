"""The local node manager, against real anvil and ganache processes."""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from docchain.chain.errors import NodeBinaryMissing, NodeError, PortInUse
from docchain.chain.node import DEV_MNEMONIC, LocalNode, NodeConfig, NodeKind

DEV_KEY_0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
RECIPIENT = "0x000000000000000000000000000000000000dEaD"
CHAIN_ID = 31337


def rpc(url: str, method: str, *params: Any) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        reply = json.loads(response.read())
    assert "error" not in reply, reply
    return reply["result"]


def send_transfer(url: str, value: int) -> str:
    """Dev account 0 pays ``value`` wei to RECIPIENT; returns the transaction hash once mined."""
    account = Account.from_key(DEV_KEY_0)
    nonce = int(rpc(url, "eth_getTransactionCount", account.address, "latest"), 16)
    tx = {
        "type": 2, "chainId": CHAIN_ID, "nonce": nonce, "to": RECIPIENT, "value": value, "gas": 21_000,
        "maxFeePerGas": 10 * 10**9, "maxPriorityFeePerGas": 1,
    }  # fmt: skip
    tx_hash = rpc(url, "eth_sendRawTransaction", "0x" + bytes(account.sign_transaction(tx).raw_transaction).hex())
    deadline = time.monotonic() + 10
    while rpc(url, "eth_getTransactionReceipt", tx_hash) is None:
        assert time.monotonic() < deadline, "transaction not mined"
    return str(tx_hash)


def balance(url: str, address: str = RECIPIENT) -> int:
    return int(rpc(url, "eth_getBalance", address, "latest"), 16)


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"


@pytest.fixture
def listening_socket() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock
    sock.close()


def test_anvil_starts_on_a_free_port_answers_and_stops(tmp_path: Path) -> None:
    node = LocalNode(NodeConfig(data_dir=tmp_path))
    node.start()
    try:
        assert node.is_running() and node.pid is not None
        assert node.rpc_url == f"http://127.0.0.1:{node.port}"
        assert int(rpc(node.rpc_url, "eth_chainId"), 16) == CHAIN_ID
        # Same funded dev accounts as ganache: derived from the standard test mnemonic.
        assert balance(node.rpc_url, Account.from_key(DEV_KEY_0).address) == 10_000 * 10**18
        assert (tmp_path / "anvil.log").exists()
    finally:
        pid = node.pid
        node.stop()
    assert not node.is_running() and node.pid is None
    assert pid is not None and process_gone(pid)
    assert not (tmp_path / "node.json").exists()
    assert (tmp_path / "anvil-state.json").exists()  # written on SIGTERM


def test_context_manager_starts_and_stops(tmp_path: Path) -> None:
    with LocalNode(NodeConfig(data_dir=tmp_path)) as node:
        pid = node.pid
        assert int(rpc(node.rpc_url, "eth_chainId"), 16) == CHAIN_ID
    assert pid is not None and process_gone(pid)


def test_port_in_use_is_refused_before_spawning(tmp_path: Path, listening_socket: socket.socket) -> None:
    port = listening_socket.getsockname()[1]
    node = LocalNode(NodeConfig(data_dir=tmp_path, port=port))
    with pytest.raises(PortInUse, match=rf"^port {port} on 127\.0\.0\.1 is already in use$"):
        node.start()
    assert not node.is_running()
    assert not (tmp_path / "anvil.log").exists()  # nothing was spawned


@pytest.mark.parametrize("kind", ["anvil", "ganache"])
def test_missing_binary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: NodeKind) -> None:
    monkeypatch.setenv(f"DOCCHAIN_{kind.upper()}", str(tmp_path / "no-such-binary"))
    with pytest.raises(NodeBinaryMissing, match=rf"^{kind} not found: DOCCHAIN_{kind.upper()}="):
        LocalNode(NodeConfig(data_dir=tmp_path, kind=kind)).start()


def test_missing_explicit_binary(tmp_path: Path) -> None:
    config = NodeConfig(data_dir=tmp_path, binary=tmp_path / "anvil")
    with pytest.raises(NodeBinaryMissing, match="^anvil not found"):
        LocalNode(config).start()


def test_failed_start_reports_the_end_of_the_node_log(tmp_path: Path) -> None:
    node = LocalNode(NodeConfig(data_dir=tmp_path, hardfork="no-such-fork"))
    with pytest.raises(NodeError, match=r"exited with code \d+ during start-up(.|\n)*no-such-fork"):
        node.start()
    assert not node.is_running()


def test_anvil_keeps_its_chain_across_a_restart(tmp_path: Path) -> None:
    with LocalNode(NodeConfig(data_dir=tmp_path)) as node:
        tx_hash = send_transfer(node.rpc_url, 12_345)
        height = int(rpc(node.rpc_url, "eth_blockNumber"), 16)
    with LocalNode(NodeConfig(data_dir=tmp_path)) as node:
        assert balance(node.rpc_url) == 12_345
        assert int(rpc(node.rpc_url, "eth_blockNumber"), 16) == height
        receipt = rpc(node.rpc_url, "eth_getTransactionReceipt", tx_hash)
        assert receipt is not None and receipt["status"] == "0x1"
        sender = Account.from_key(DEV_KEY_0).address
        assert int(rpc(node.rpc_url, "eth_getTransactionCount", sender, "latest"), 16) == 1


def test_truncated_state_falls_back_to_the_previous_start(tmp_path: Path) -> None:
    with LocalNode(NodeConfig(data_dir=tmp_path)) as node:
        send_transfer(node.rpc_url, 7)
    with LocalNode(NodeConfig(data_dir=tmp_path)) as node:  # this start keeps a copy of the good state
        send_transfer(node.rpc_url, 8)
    state = tmp_path / "anvil-state.json"
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])  # a crash during a dump
    with LocalNode(NodeConfig(data_dir=tmp_path)) as node:
        assert balance(node.rpc_url) == 7
    assert list(tmp_path.glob("anvil-state.json.corrupt-*"))


def test_truncated_state_without_backup_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "anvil-state.json").write_text('{"block": {"number": ')
    with pytest.raises(NodeError, match="truncated"):
        LocalNode(NodeConfig(data_dir=tmp_path)).start()


def test_detached_node_is_found_and_stopped_by_data_dir(tmp_path: Path) -> None:
    node = LocalNode(NodeConfig(data_dir=tmp_path))
    node.start(detach=True)
    try:
        found = LocalNode.find_running(tmp_path)
        assert found is not None
        assert (found.pid, found.kind, found.rpc_url, found.port) == (node.pid, "anvil", node.rpc_url, node.port)
        assert json.loads((tmp_path / "node.json").read_text())["rpc_url"] == node.rpc_url
        # A second node on the same data dir would overwrite the first one's state.
        with pytest.raises(NodeError, match="already runs on"):
            LocalNode(NodeConfig(data_dir=tmp_path)).start()
        assert LocalNode.stop_detached(tmp_path) is True
    finally:
        node.stop()
    assert process_gone(found.pid)
    assert LocalNode.find_running(tmp_path) is None
    assert LocalNode.stop_detached(tmp_path) is False


def test_stale_pidfile_is_ignored(tmp_path: Path) -> None:
    dead = {"pid": 2**22 + 12345, "kind": "anvil", "rpc_url": "http://127.0.0.1:1", "port": 1, "chain_id": 1}
    (tmp_path / "node.json").write_text(json.dumps(dead))
    assert LocalNode.find_running(tmp_path) is None
    with LocalNode(NodeConfig(data_dir=tmp_path)) as node:
        assert int(rpc(node.rpc_url, "eth_chainId"), 16) == CHAIN_ID


@pytest.mark.ganache
def test_ganache_answers_with_the_shared_chain_id_and_keeps_its_chain(tmp_path: Path) -> None:
    config = NodeConfig(data_dir=tmp_path, kind="ganache", mnemonic=DEV_MNEMONIC)
    with LocalNode(config) as node:
        assert int(rpc(node.rpc_url, "eth_chainId"), 16) == CHAIN_ID
        assert balance(node.rpc_url, Account.from_key(DEV_KEY_0).address) == 10_000 * 10**18
        tx_hash = send_transfer(node.rpc_url, 4_242)
    assert (tmp_path / "ganache.log").exists()
    with LocalNode(config) as node:
        assert balance(node.rpc_url) == 4_242
        assert rpc(node.rpc_url, "eth_getTransactionReceipt", tx_hash)["status"] == "0x1"
