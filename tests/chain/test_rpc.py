"""chain/rpc.py, the one JSON-RPC transport, and what the API builds on it (the asynchronous sender, the
indexer), on both nodes: batches answer in order, failures are typed (an unreachable node is NodeError, the
node's error object is RpcError with its code, a revert is the registry's own error), and the blocking twin
fails the same way."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from docchain.chain.errors import ContractRevert, NodeError
from docchain.chain.hashing import sha256_bytes
from docchain.chain.indexer import Indexer
from docchain.chain.node import LocalNode
from docchain.chain.registry import Registry, decode_revert, encode_call
from docchain.chain.rpc import JsonRpc, RpcError, SyncJsonRpc
from docchain.chain.sender import AsyncTxSender, TxSender
from docchain.chain.typed_data import Registration, address_of, sign

T = TypeVar("T")
ALICE = bytes.fromhex("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")


def run(url: str, body: Callable[[JsonRpc], Awaitable[T]]) -> T:
    async def go() -> T:
        async with JsonRpc(url) as rpc:
            return await body(rpc)

    return asyncio.run(go())


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_a_batch_answers_in_order_and_the_twins_agree(node: LocalNode) -> None:
    calls = [("eth_chainId", []), ("eth_blockNumber", []), ("eth_getBlockByNumber", ["0x0", False])]
    chain_id, number, genesis = run(node.rpc_url, lambda rpc: rpc.batch(calls))
    assert int(chain_id, 16) == 31337
    assert int(number, 16) >= 0
    assert genesis["number"] == "0x0"
    with SyncJsonRpc(node.rpc_url) as rpc:
        assert rpc.batch(calls)[0] == chain_id
        assert rpc.call("eth_chainId", []) == chain_id
        assert rpc.batch([]) == []


def test_the_nodes_error_object_is_an_rpc_error_with_its_code(node: LocalNode) -> None:
    async def unknown(rpc: JsonRpc) -> None:
        await rpc.call("docchain_noSuchMethod", [])

    with pytest.raises(RpcError) as async_error:
        run(node.rpc_url, unknown)
    with SyncJsonRpc(node.rpc_url) as rpc, pytest.raises(RpcError) as sync_error:
        rpc.call("docchain_noSuchMethod", [])
    assert async_error.value.method == sync_error.value.method == "docchain_noSuchMethod"
    assert async_error.value.code == sync_error.value.code
    assert async_error.value.code is not None


def test_an_unreachable_node_is_a_node_error_that_may_keep_its_url_to_itself() -> None:
    url = closed_port_url()
    with pytest.raises(NodeError, match="connection refused") as shown:
        run(url, lambda rpc: rpc.call("eth_chainId", []))
    assert url in str(shown.value)

    async def hidden() -> None:
        async with JsonRpc(url, show_url=False) as rpc:
            await rpc.call("eth_chainId", [])

    with pytest.raises(NodeError) as kept:
        asyncio.run(hidden())
    assert url not in str(kept.value)  # a provider's URL may carry its API key
    with SyncJsonRpc(url) as rpc, pytest.raises(NodeError, match="connection refused"):
        rpc.call("eth_chainId", [])


def test_the_async_sender_signs_sends_and_names_a_revert(
    node: LocalNode, registry: Registry, relayer: TxSender
) -> None:
    key = os.urandom(32)
    relayer.transact(address_of(key), b"", gas=21_000, value=10**18)  # a relayer of its own: its own nonces
    reg = Registration(doc_hash=sha256_bytes(os.urandom(16)), signer=address_of(ALICE), deadline=2**40)
    good = encode_call("register", reg.as_tuple(), sign(registry.domain, reg, ALICE))
    forged = encode_call("register", reg.as_tuple(), sign(registry.domain, reg, os.urandom(32)))

    async def scenario(rpc: JsonRpc) -> tuple[ContractRevert, dict[str, object] | None, int]:
        sender = AsyncTxSender(rpc, key, registry.chain_id, decode_revert=decode_revert)
        with pytest.raises(ContractRevert) as reverted:
            await sender.call(registry.address, forged)
        with pytest.raises(ContractRevert):
            await sender.prepare(registry.address, forged)  # estimated: the revert surfaces before sending
        prepared = await sender.prepare(registry.address, good)
        assert await sender.broadcast(prepared) == prepared.tx_hash
        assert await sender.broadcast(prepared) == prepared.tx_hash  # twice is harmless
        for _ in range(200):
            receipt = await sender.receipt(prepared.tx_hash)
            if receipt is not None:
                break
            await asyncio.sleep(0.05)
        return reverted.value, receipt, prepared.nonce

    revert, receipt, nonce = run(node.rpc_url, scenario)
    assert revert.name == "InvalidSignature"
    assert receipt is not None and int(str(receipt["status"]), 16) == 1
    assert nonce == 0
    assert registry.record(reg.doc_hash, reg.signer).exists


def test_the_indexer_reads_events_and_sees_a_chain_it_does_not_know(registry: Registry, relayer: TxSender) -> None:
    reg = Registration(doc_hash=sha256_bytes(os.urandom(16)), signer=address_of(ALICE), deadline=2**40)
    receipt = relayer.transact(
        registry.address, encode_call("register", reg.as_tuple(), sign(registry.domain, reg, ALICE))
    )
    block = int(receipt["blockNumber"])
    url = str(registry.w3.provider.endpoint_uri)  # type: ignore[attr-defined]

    async def scenario(rpc: JsonRpc) -> None:
        indexer = Indexer(rpc, registry.address, block, max_range=1)
        step = await indexer.poll(None)
        assert step.tip is not None and step.tip.number == block
        assert [(e.kind, e.doc_hash) for e in step.events] == [("Registered", reg.doc_hash)]
        assert step.blocks[block].hash == step.events[0].block_hash
        again = await indexer.poll(step.tip)
        assert not again.reorg and not again.events
        # a cursor whose hash the chain does not hold: a reorg, and the known block below it is the ancestor
        stranger = type(step.tip)(step.tip.number, b"\x01" * 32, step.tip.parent_hash, step.tip.timestamp)
        assert (await indexer.poll(stranger)).reorg
        known = [(block, b"\x01" * 32), (block - 1, step.tip.parent_hash)]
        assert await indexer.common_ancestor(known) == block - 1

    run(url, scenario)
