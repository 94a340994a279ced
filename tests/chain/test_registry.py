"""The registry contract on real nodes (anvil and ganache): the specification of what it accepts and refuses."""

from __future__ import annotations

import json
import os
import time

import pytest
from eth_account import Account
from web3 import Web3

from docchain.chain import typed_data as td
from docchain.chain.errors import ContractRevert
from docchain.chain.node import LocalNode
from docchain.chain.registry import Registry, SignedRegistration
from docchain.chain.sender import TxSender
from tests.conftest import DEV_KEYS

HOUR = 3600


def new_key() -> bytes:
    return os.urandom(32)


def signed(registry: Registry, key: bytes, doc_hash: bytes | None = None, **fields: object) -> SignedRegistration:
    reg = td.Registration(
        doc_hash=doc_hash or os.urandom(32),
        signer=td.address_of(key),
        deadline=int(fields.pop("deadline", int(time.time()) + HOUR)),  # type: ignore[call-overload]
        metadata_hash=fields.pop("metadata_hash", os.urandom(32)),  # type: ignore[arg-type]
        supersedes=fields.pop("supersedes", bytes(32)),  # type: ignore[arg-type]
    )
    domain = fields.pop("domain", registry.domain)
    return SignedRegistration(reg, td.sign(domain, reg, key))  # type: ignore[arg-type]


def reverts(name: str, *args: object) -> pytest.RaisesExc[ContractRevert]:
    return pytest.raises(ContractRevert, check=lambda e: e.name == name and (not args or e.args_ == args))


def test_contract_agrees_with_python_typed_data(registry: Registry) -> None:
    item = signed(registry, new_key())
    assert registry.domain_separator() == registry.domain.separator
    assert registry.registration_digest(item.registration) == td.digest(registry.domain, item.registration)
    assert registry.is_valid_registration(item.registration, item.signature)


def test_registration_is_recorded_with_signer_time_and_block(registry: Registry, w3: Web3) -> None:
    key = new_key()
    item = signed(registry, key, supersedes=os.urandom(32))
    receipt = registry.register(item)
    block = w3.eth.get_block(receipt["blockNumber"])

    record = registry.record(item.registration.doc_hash, td.address_of(key))
    assert record.registered_at == block["timestamp"]
    assert record.block_number == receipt["blockNumber"]
    assert record.revoked_at == 0

    (event,) = registry.events_in(receipt)
    assert event.kind == "Registered"
    assert event.doc_hash == item.registration.doc_hash
    assert event.signer == td.address_of(key)
    assert event.metadata_hash == item.registration.metadata_hash
    assert event.supersedes == item.registration.supersedes
    assert event.block_hash == bytes(block["hash"])
    # The same event is found by eth_getLogs filtered on the indexed signer, as an explorer would.
    found = registry.events(receipt["blockNumber"], receipt["blockNumber"], signer=td.address_of(key))
    assert found == [event]


def test_forged_signature_is_rejected(registry: Registry) -> None:
    victim, forger = new_key(), new_key()
    reg = signed(registry, victim).registration
    forged = SignedRegistration(reg, td.sign(registry.domain, reg, forger))
    with reverts("InvalidSignature", reg.doc_hash, reg.signer):
        registry.register(forged)


def test_signature_for_another_chain_is_rejected(registry: Registry) -> None:
    other_chain = td.Domain(registry.chain_id + 1, registry.address)
    item = signed(registry, new_key(), domain=other_chain)
    with reverts("InvalidSignature", item.registration.doc_hash, item.registration.signer):
        registry.register(item)


def test_signature_for_another_contract_is_rejected(registry: Registry) -> None:
    other_contract = td.Domain(registry.chain_id, "0x" + "42" * 20)
    item = signed(registry, new_key(), domain=other_contract)
    with reverts("InvalidSignature"):
        registry.register(item)
    with reverts("InvalidSignature"):
        registry.register_batch([item])


def test_expired_signature_is_rejected(registry: Registry) -> None:
    item = signed(registry, new_key(), deadline=1)
    with reverts("ExpiredSignature", 1):
        registry.register(item)


def test_registration_signature_cannot_serve_as_revocation(registry: Registry) -> None:
    key = new_key()
    item = signed(registry, key)
    registry.register(item)
    reg = item.registration
    revocation = td.Revocation(reg.doc_hash, reg.signer, nonce=registry.nonce(reg.signer), deadline=reg.deadline)
    with reverts("InvalidSignature", reg.doc_hash, reg.signer):
        registry.revoke_by_sig(revocation, item.signature)


def test_signed_revocation_is_relayed_once_and_not_replayed(registry: Registry) -> None:
    key = new_key()
    item = signed(registry, key)
    registry.register(item)
    reg = item.registration
    revocation = td.Revocation(reg.doc_hash, reg.signer, nonce=0, deadline=int(time.time()) + HOUR)
    signature = td.sign(registry.domain, revocation, key)

    receipt = registry.revoke_by_sig(revocation, signature)
    (event,) = registry.events_in(receipt)
    assert (event.kind, event.doc_hash, event.signer) == ("Revoked", reg.doc_hash, reg.signer)
    assert registry.record(reg.doc_hash, reg.signer).revoked
    assert registry.nonce(reg.signer) == 1
    with reverts("InvalidAccountNonce", reg.signer, 1):
        registry.revoke_by_sig(revocation, signature)


def test_direct_revocation_by_the_signer(registry: Registry, w3: Web3) -> None:
    own = TxSender(w3, DEV_KEYS[2])
    mine = Registry(w3, registry.address, own)
    item = signed(registry, DEV_KEYS[2])
    registry.register(item)  # relayed by account 0
    mine.revoke(item.registration.doc_hash)
    assert mine.record(item.registration.doc_hash, own.address).revoked
    with reverts("AlreadyRevoked", item.registration.doc_hash, own.address):
        mine.revoke(item.registration.doc_hash)
    with reverts("NotRegistered"):
        mine.revoke(os.urandom(32))


def test_revoked_record_cannot_be_revived_by_replaying_its_registration(registry: Registry) -> None:
    key = new_key()
    item = signed(registry, key)
    registry.register(item)
    reg = item.registration
    revocation = td.Revocation(reg.doc_hash, reg.signer, nonce=0, deadline=int(time.time()) + HOUR)
    registry.revoke_by_sig(revocation, td.sign(registry.domain, revocation, key))
    before = registry.record(reg.doc_hash, reg.signer)
    assert registry.events_in(registry.register(item)) == []
    assert registry.record(reg.doc_hash, reg.signer) == before


def test_several_signers_on_one_document(registry: Registry) -> None:
    doc = os.urandom(32)
    keys = [new_key() for _ in range(3)]
    registry.register_batch([signed(registry, k, doc) for k in keys])
    for key in keys:
        assert registry.record(doc, td.address_of(key)).exists
    assert {e.signer for e in registry.events(0, doc_hash=doc)} == {td.address_of(k) for k in keys}


def test_reregistration_is_a_no_op(registry: Registry) -> None:
    item = signed(registry, new_key())
    first = registry.register(item)
    record = registry.record(item.registration.doc_hash, item.registration.signer)
    again = registry.register(item)
    assert registry.events_in(again) == []
    assert registry.record(item.registration.doc_hash, item.registration.signer) == record
    assert first["gasUsed"] - again["gasUsed"] > 20_000  # no new storage slot was written
    # In a batch, the existing record is skipped and the new one written.
    fresh = signed(registry, new_key())
    events = registry.events_in(registry.register_batch([item, fresh]))
    assert [e.doc_hash for e in events] == [fresh.registration.doc_hash]


def test_batch_of_100(registry: Registry) -> None:
    items = [signed(registry, new_key()) for _ in range(100)]
    receipt = registry.register_batch(items)
    events = registry.events_in(receipt)
    assert [(e.doc_hash, e.signer) for e in events] == [(i.registration.doc_hash, i.registration.signer) for i in items]
    assert all(registry.record(i.registration.doc_hash, i.registration.signer).exists for i in items[::10])


def test_batch_is_all_or_nothing(registry: Registry) -> None:
    good = signed(registry, new_key())
    bad = signed(registry, new_key())
    bad = SignedRegistration(bad.registration, td.sign(registry.domain, bad.registration, new_key()))
    with reverts("InvalidSignature", bad.registration.doc_hash, bad.registration.signer):
        registry.register_batch([good, bad])
    assert not registry.record(good.registration.doc_hash, good.registration.signer).exists


def test_contract_wallet_signs_through_erc1271(registry: Registry, relayer: TxSender, w3: Web3) -> None:
    from docchain.chain import artifacts

    owner = new_key()
    wallet_artifact = artifacts.load("MockERC1271Wallet")
    ctor_arg = bytes(12) + bytes.fromhex(td.address_of(owner)[2:])
    wallet = relayer.transact(None, wallet_artifact.bytecode + ctor_arg)["contractAddress"]
    reg = td.Registration(os.urandom(32), Web3.to_checksum_address(wallet), int(time.time()) + HOUR)
    signature = td.sign(registry.domain, reg, owner)  # the owner's key approves on the wallet's behalf
    registry.register(SignedRegistration(reg, signature))
    assert registry.record(reg.doc_hash, reg.signer).exists
    stranger = SignedRegistration(
        td.Registration(os.urandom(32), reg.signer, reg.deadline), td.sign(registry.domain, reg, new_key())
    )
    with reverts("InvalidSignature"):
        registry.register(stranger)


def test_signature_from_the_nodes_eth_signTypedData_v4_is_accepted(
    registry: Registry, w3: Web3, node: LocalNode
) -> None:
    """The node signs the same JSON a wallet gets: proof our typed data is standard EIP-712."""
    signer = Account.from_key(DEV_KEYS[1]).address  # unlocked dev account of both nodes
    reg = td.Registration(os.urandom(32), signer, int(time.time()) + HOUR, metadata_hash=os.urandom(32))
    typed = td.typed_data(registry.domain, reg)
    # Wallets (MetaMask) and anvil take the typed data as a JSON string; ganache only as an object.
    payload = typed if node.config.kind == "ganache" else json.dumps(typed)
    response = w3.provider.make_request("eth_signTypedData_v4", [signer, payload])  # type: ignore[arg-type]
    assert "error" not in response, response
    signature = bytes.fromhex(response["result"][2:])
    assert signature == td.sign(registry.domain, reg, DEV_KEYS[1])
    registry.register(SignedRegistration(reg, signature))
    assert registry.record(reg.doc_hash, signer).exists
