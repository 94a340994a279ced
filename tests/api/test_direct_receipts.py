"""Receipts of records registered on chain without the API (register / registerBatch called directly): the
signature is read back from the transaction's calldata, and the receipt verifies like any other."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import pytest
from api_support import Api, Env, poll, random_doc
from web3 import HTTPProvider, Web3

from docchain.chain import artifacts
from docchain.chain import typed_data as td
from docchain.chain.receipt import Receipt, parse_receipt
from docchain.chain.registry import Registry, SignedRegistration, encode_call
from docchain.chain.rpc import ChainReader, JsonRpc
from docchain.chain.sender import TxSender
from docchain.chain.verify import Question, Verdict, verify
from tests.forwarder import deploy_forwarder, forward

CI_BACKEND = "sqlite"  # at CI size (tests/api/conftest.py); RELIABILITY_SCALE=full runs both


@pytest.fixture(scope="module")
def outsider(env: Env) -> Registry:
    """The registry as someone else sees it: their own funded key, no docchain API in the way (and no nonce
    shared with the API's relayer)."""
    key = os.urandom(32)
    env.anvil.rpc("anvil_setBalance", [td.address_of(key), hex(10**20)])
    w3 = Web3(HTTPProvider(env.anvil.url))
    return Registry(w3, env.deployment.address, TxSender(w3, key))


def _signed(env: Env, key: bytes | None = None, signer: str | None = None) -> SignedRegistration:
    key = key or os.urandom(32)
    _, doc = random_doc()
    reg = td.Registration(
        doc_hash=doc,
        signer=signer or td.address_of(key),
        deadline=int(time.time()) + 3600,
        metadata_hash=os.urandom(32),
        supersedes=os.urandom(32),
    )
    return SignedRegistration(reg, td.sign(env.domain, reg, key))


def _indexed(api: Api, item: SignedRegistration) -> None:
    reg = item.registration

    def seen() -> bool:
        r = api.get(f"/v1/documents/0x{reg.doc_hash.hex()}")
        return r.status_code == 200 and any(s["signer"] == reg.signer for s in r.json()["signers"])

    poll(seen, 30, what="the indexer to see the direct registration")


def _receipt(api: Api, item: SignedRegistration) -> dict[str, Any]:
    reg = item.registration
    _indexed(api, item)
    r = api.get(f"/v1/documents/0x{reg.doc_hash.hex()}/receipts/{reg.signer}")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _verify_with_node(env: Env, question: Question) -> Verdict:
    async with JsonRpc(env.anvil.url) as rpc:
        return await verify(ChainReader(rpc), question)


def _check_valid(env: Env, api: Api, item: SignedRegistration, body: dict[str, Any], tx: dict[str, Any]) -> None:
    receipt: Receipt = parse_receipt(body)  # the strict parser
    assert receipt.registration == item.registration and receipt.signature == item.signature
    assert receipt.domain == env.domain and receipt.file_name is None
    block = env.registry().w3.eth.get_block(tx["blockNumber"])
    assert (receipt.tx_hash, receipt.block_number) == (bytes(tx["transactionHash"]), tx["blockNumber"])
    assert (receipt.block_hash, receipt.timestamp) == (bytes(block["hash"]), block["timestamp"])

    env.anvil.mine(2)  # the service requires 2 confirmations
    r = api.post("/v1/verify", json={"docHash": "0x" + receipt.doc_hash.hex(), "receipt": body})
    assert r.status_code == 200, r.text
    assert r.json()["outcome"] == "valid", r.json()
    # and with no docchain in the way: the receipt and a node
    report = asyncio.run(_verify_with_node(env, Question(receipt.doc_hash, receipt=receipt, confirmations=2)))
    assert report.ok, report.summary
    assert report.anchor is not None and report.anchor.tx_hash == receipt.tx_hash


def test_receipt_of_a_direct_register_call(env: Env, api: Api, outsider: Registry) -> None:
    item = _signed(env)
    tx = outsider.register(item)
    _check_valid(env, api, item, _receipt(api, item), dict(tx))


def test_receipts_of_a_direct_register_batch_call(env: Env, api: Api, outsider: Registry) -> None:
    items = [_signed(env) for _ in range(3)]
    tx = outsider.register_batch(items)
    for item in items:  # each entry: its EIP-2098 compact signature comes back as 65 bytes
        _check_valid(env, api, item, _receipt(api, item), dict(tx))


def test_receipt_of_a_contract_wallet_registered_directly(env: Env, api: Api, outsider: Registry) -> None:
    assert outsider.sender is not None
    owner = os.urandom(32)
    ctor = bytes(12) + bytes.fromhex(td.address_of(owner)[2:])
    created = outsider.sender.transact(None, artifacts.load("MockERC1271Wallet").bytecode + ctor)
    item = _signed(env, key=owner, signer=Web3.to_checksum_address(created["contractAddress"]))
    tx = outsider.register(item)
    _check_valid(env, api, item, _receipt(api, item), dict(tx))  # the signature is checked by ERC-1271


def test_a_record_written_through_another_contract_is_a_clear_404(env: Env, api: Api, outsider: Registry) -> None:
    assert outsider.sender is not None
    forwarder = deploy_forwarder(outsider.sender, outsider.address)
    item = _signed(env)
    reg = item.registration
    forward(outsider.sender, forwarder, encode_call("register", reg.as_tuple(), item.signature))
    _indexed(api, item)
    r = api.get(f"/v1/documents/0x{reg.doc_hash.hex()}/receipts/{reg.signer}")
    assert r.status_code == 404, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["type"].endswith("/not-found")
    assert "is on chain, but its signature cannot be read back" in problem["detail"]
    assert f"sent to {forwarder}, not to the registry" in problem["detail"]


def test_an_unknown_record_is_still_a_404(env: Env, api: Api) -> None:
    _, doc = random_doc()
    r = api.get(f"/v1/documents/0x{doc.hex()}/receipts/{td.address_of(os.urandom(32))}")
    assert r.status_code == 404 and "nor an indexed record" in r.json()["detail"]


def test_a_submission_of_a_record_registered_otherwise_gets_the_recorded_receipt(
    env: Env, api: Api, outsider: Registry
) -> None:
    """The signer registered the document directly, then submitted another registration of it (other
    metadata) to the API: the registry keeps the first, so the receipt must carry that one."""
    key = os.urandom(32)
    recorded = _signed(env, key)
    tx = outsider.register(recorded)
    _indexed(api, recorded)
    other = td.Registration(
        doc_hash=recorded.registration.doc_hash,
        signer=recorded.registration.signer,
        deadline=int(time.time()) + 3600,
        metadata_hash=os.urandom(32),
    )
    r = api.post(
        "/v1/documents",
        json={"registration": other.to_json(), "signature": "0x" + td.sign(env.domain, other, key).hex()},
    )
    assert r.status_code == 202, r.text
    state = api.get(f"/v1/submissions/{r.json()['id']}", params={"wait": 20}).json()["state"]
    assert state in ("anchored", "confirmed"), state
    _check_valid(env, api, recorded, _receipt(api, recorded), dict(tx))
