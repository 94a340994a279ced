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

from docchain.chain import merkle
from docchain.chain.errors import ContractRevert, NodeError
from docchain.chain.hashing import sha256_bytes
from docchain.chain.indexer import Indexer
from docchain.chain.node import LocalNode
from docchain.chain.registry import Registry, decode_revert, encode_call
from docchain.chain.rpc import ChainReader, JsonRpc, RpcError, SyncJsonRpc, state_unavailable
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


class _Counting:
    """The real transport, with the block tag of each state read it passed on."""

    def __init__(self, rpc: JsonRpc) -> None:
        self.rpc = rpc
        self.tags: list[object] = []

    async def call(self, method: str, params: list[object]) -> object:
        self.tags.append(params[-1])
        return await self.rpc.call(method, params)


def _merkle_call(registry: Registry, relayer: TxSender) -> tuple[bytes, int]:
    """A registration anchored under a root: the call that checks it, and the block that anchored the root."""
    reg = Registration(doc_hash=sha256_bytes(os.urandom(16)), signer=address_of(ALICE), deadline=2**40)
    signature = sign(registry.domain, reg, ALICE)
    tree = merkle.MerkleTree.of([merkle.leaf(reg, signature), sha256_bytes(os.urandom(8))])
    anchored = Registry(registry.w3, registry.address, relayer).anchor_root(tree.root, 2)
    proof = tree.proof(0)
    call = encode_call("verifyMerkleRegistration", tree.root, reg.as_tuple(), signature, list(proof.proof))
    return call, int(anchored["blockNumber"])


def test_a_revert_is_the_answer_at_its_block_never_asked_again_at_latest(
    node: LocalNode, registry: Registry, relayer: TxSender
) -> None:
    """The root is not anchored yet the block before its anchoring: the registry reverts there, and that is
    the answer at that block, though the latest state would accept it. Only a node that does not hold the
    block's state (anvil --prune-history: BlockOutOfRangeError) has the read fall back to the latest state."""
    call, anchored_in = _merkle_call(registry, relayer)

    async def scenario(rpc: JsonRpc) -> tuple[_Counting, RpcError | bytes]:
        counting = _Counting(rpc)
        reader = ChainReader(counting)
        assert await reader.call(registry.address, call, anchored_in)  # the root's own block: accepted
        counting.tags.clear()
        try:
            return counting, await reader.call(registry.address, call, anchored_in - 1)
        except RpcError as exc:
            return counting, exc

    counting, answer = run(node.rpc_url, scenario)
    if node.config.kind == "ganache":  # keeps every state: the block's own answer, a revert, asked once
        assert isinstance(answer, RpcError) and answer.revert_data is not None, answer
        revert = decode_revert(answer.revert_data)
        assert revert is not None and revert.name == "RootNotAnchored"
        assert counting.tags == [hex(anchored_in - 1)]
    else:  # anvil --prune-history refuses the past block's state: the latest state answers
        assert isinstance(answer, bytes) and answer, answer
        assert counting.tags == [hex(anchored_in - 1), "latest"]


def test_a_revert_at_a_served_block_is_raised_after_one_read(node: LocalNode, registry: Registry) -> None:
    reg = Registration(doc_hash=sha256_bytes(os.urandom(16)), signer=address_of(ALICE), deadline=2**40)
    forged = encode_call("register", reg.as_tuple(), sign(registry.domain, reg, os.urandom(32)))

    async def scenario(rpc: JsonRpc) -> tuple[list[object], RpcError]:
        counting = _Counting(rpc)
        reader = ChainReader(counting)
        head = await reader.head()
        counting.tags.clear()
        with pytest.raises(RpcError) as reverted:
            await reader.call(registry.address, forged, head.number)
        return counting.tags, reverted.value

    tags, error = run(node.rpc_url, scenario)
    assert not state_unavailable(error)
    revert = None if error.revert_data is None else decode_revert(error.revert_data)
    assert revert is not None and revert.name == "InvalidSignature"
    assert len(tags) == 1  # not asked again at "latest" and "pending"


@pytest.mark.parametrize(
    "message,unavailable",
    [
        ("BlockOutOfRangeError: block height is 300 but requested was 5", True),  # anvil --prune-history
        ("header not found", True),  # geth, a block it does not know
        ("missing trie node 5d4f (path ) state 0x5d4f is not available", True),  # geth past its window
        ("execution reverted", False),
        ("VM Exception while processing transaction: revert", False),  # ganache
    ],
)
def test_which_node_answers_mean_the_state_is_not_held(message: str, unavailable: bool) -> None:
    assert state_unavailable(RpcError("eth_call", -32000, message)) is unavailable
    assert not state_unavailable(RpcError("eth_call", 3, message, "0x08c379a0"))  # with revert data: a revert
