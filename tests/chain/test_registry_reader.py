"""chain/registry.py's RegistryReader, the registry's reads over the one asynchronous transport, on both nodes:
it answers what the blocking Registry answers (records, nonces, signature checks, a contract wallet's ERC-1271
verdict, signed registrations read back from their transactions), and fails in the same typed ways."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
from web3 import Web3

from docchain.chain import artifacts
from docchain.chain import typed_data as td
from docchain.chain.errors import ChainError, NodeError, RegistrationNotFound
from docchain.chain.node import LocalNode
from docchain.chain.registry import Registry, RegistryReader, SignedRegistration, decode_rpc_log, encode_call
from docchain.chain.rpc import JsonRpc
from docchain.chain.sender import TxSender
from tests.forwarder import deploy_forwarder, forward

T = TypeVar("T")
HOUR = 3600


def read(node: LocalNode, registry: Registry, body: Callable[[RegistryReader], Awaitable[T]]) -> T:
    async def go() -> T:
        async with JsonRpc(node.rpc_url) as rpc:
            return await body(RegistryReader(rpc, registry.address, registry.chain_id))

    return asyncio.run(go())


def signed(registry: Registry, key: bytes, signer: str | None = None) -> SignedRegistration:
    reg = td.Registration(
        os.urandom(32), signer or td.address_of(key), int(time.time()) + HOUR, metadata_hash=os.urandom(32)
    )
    return SignedRegistration(reg, td.sign(registry.domain, reg, key))


def test_records_and_nonces_read_as_the_blocking_registry_reads_them(node: LocalNode, registry: Registry) -> None:
    key = os.urandom(32)
    item = signed(registry, key)
    reg = item.registration
    registry.register(item)

    async def before(reader: RegistryReader) -> tuple[object, ...]:
        assert reader.domain == registry.domain
        return await reader.record(reg.doc_hash, reg.signer), await reader.nonce(reg.signer)

    record, nonce = read(node, registry, before)
    assert record == registry.record(reg.doc_hash, reg.signer) and record.exists and not record.revoked  # type: ignore[attr-defined]
    assert nonce == 0

    revocation = td.Revocation(reg.doc_hash, reg.signer, nonce=0, deadline=reg.deadline)
    registry.revoke_by_sig(revocation, td.sign(registry.domain, revocation, key))
    record, nonce = read(node, registry, before)
    assert record == registry.record(reg.doc_hash, reg.signer) and record.revoked  # type: ignore[attr-defined]
    assert nonce == 1

    unknown = read(node, registry, lambda reader: reader.record(os.urandom(32), reg.signer))
    assert not unknown.exists


def test_signatures_are_checked_by_the_registry_ecdsa_and_erc1271(
    node: LocalNode, registry: Registry, relayer: TxSender
) -> None:
    owner = os.urandom(32)
    wallet_artifact = artifacts.load("MockERC1271Wallet")
    ctor = bytes(12) + bytes.fromhex(td.address_of(owner)[2:])
    wallet = Web3.to_checksum_address(relayer.transact(None, wallet_artifact.bytecode + ctor)["contractAddress"])
    by_key = signed(registry, owner)
    by_wallet = signed(registry, owner, signer=wallet)  # the owner's key approves on the wallet's behalf
    by_stranger = signed(registry, os.urandom(32), signer=wallet)
    forged = SignedRegistration(by_key.registration, by_stranger.signature)

    async def checks(reader: RegistryReader) -> list[bool]:
        verdicts = [
            await reader.is_valid_registration(s.registration, s.signature)
            for s in (by_key, by_wallet, by_stranger, forged)
        ]
        return [*verdicts, await reader.has_code(wallet), await reader.has_code(by_key.registration.signer)]

    assert read(node, registry, checks) == [True, True, False, False, True, False]
    assert registry.is_valid_registration(by_wallet.registration, by_wallet.signature)


def test_signed_registrations_read_back_from_their_transactions(
    node: LocalNode, registry: Registry, relayer: TxSender
) -> None:
    direct = signed(registry, os.urandom(32))
    batch = [signed(registry, os.urandom(32)) for _ in range(2)]
    events = registry.events_in(registry.register(direct)) + registry.events_in(registry.register_batch(batch))
    forwarder = deploy_forwarder(relayer, registry.address)
    relayed = signed(registry, os.urandom(32))
    tx_hash = forward(relayer, forwarder, encode_call("register", relayed.registration.as_tuple(), relayed.signature))
    (through,) = registry.events_in(registry.w3.eth.get_transaction_receipt(tx_hash))  # type: ignore[arg-type]

    async def back(reader: RegistryReader) -> list[SignedRegistration]:
        found = [await reader.signed_registration_of(e) for e in events]
        with pytest.raises(RegistrationNotFound, match=f"sent to {forwarder}, not to the registry"):
            await reader.signed_registration_of(through)
        unknown = type(through)(**{**through.__dict__, "tx_hash": os.urandom(32)})
        with pytest.raises(RegistrationNotFound, match="is not known to the node"):
            await reader.signed_registration_of(unknown)
        return found

    assert read(node, registry, back) == [direct, *batch]
    assert [registry.signed_registration_of(e) for e in events] == [direct, *batch]


def test_a_log_as_the_node_answers_it_decodes_as_web3s(node: LocalNode, registry: Registry) -> None:
    receipt = registry.register(signed(registry, os.urandom(32)))
    raw = registry.w3.provider.make_request(  # type: ignore[arg-type]
        "eth_getTransactionReceipt", [Web3.to_hex(receipt["transactionHash"])]
    )["result"]
    assert [decode_rpc_log(log) for log in raw["logs"]] == registry.events_in(receipt)


def test_no_registry_and_no_node_are_typed_errors(node: LocalNode, registry: Registry) -> None:
    nobody = td.address_of(os.urandom(32))

    async def empty() -> None:
        async with JsonRpc(node.rpc_url) as rpc:
            await RegistryReader(rpc, nobody, registry.chain_id).nonce(nobody)

    with pytest.raises(ChainError, match=f"no registry at {nobody}"):
        asyncio.run(empty())

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"

    async def down() -> None:
        async with JsonRpc(closed) as rpc:
            await RegistryReader(rpc, registry.address, registry.chain_id).record(os.urandom(32), nobody)

    with pytest.raises(NodeError, match="connection refused"):
        asyncio.run(down())
