"""Reading a record's signed registration back from its transaction's calldata: the decoder (pure, round-trips
with the encoders) and the registry binding on real nodes (anvil and ganache), for records written by anyone."""

from __future__ import annotations

import os
import time

import pytest
from web3 import Web3

from docchain.chain import artifacts
from docchain.chain import typed_data as td
from docchain.chain.errors import InvalidInput, RegistrationNotFound
from docchain.chain.registry import (
    Registry,
    RegistryEvent,
    SignedRegistration,
    compact_signature,
    encode_call,
    encode_register_batch,
    expand_signature,
    signed_registration_in_calldata,
)
from docchain.chain.sender import TxSender
from tests.forwarder import deploy_forwarder, forward

DOMAIN = td.Domain(chain_id=31337, verifying_contract=Web3.to_checksum_address("0x" + "ab" * 20))
HOUR = 3600


def _signed(domain: td.Domain = DOMAIN, *, key: bytes | None = None, doc: bytes | None = None) -> SignedRegistration:
    key = key or os.urandom(32)
    reg = td.Registration(
        doc_hash=doc or os.urandom(32),
        signer=td.address_of(key),
        deadline=int(time.time()) + HOUR,
        metadata_hash=os.urandom(32),
        supersedes=os.urandom(32),
    )
    return SignedRegistration(reg, td.sign(domain, reg, key))


def _event(reg: td.Registration, **overrides: object) -> RegistryEvent:
    fields: dict[str, object] = {
        "kind": "Registered",
        "doc_hash": reg.doc_hash,
        "signer": reg.signer,
        "block_number": 1,
        "block_hash": bytes(32),
        "tx_hash": bytes(32),
        "log_index": 0,
        "metadata_hash": reg.metadata_hash,
        "supersedes": reg.supersedes,
    }
    fields.update(overrides)
    return RegistryEvent(**fields)  # type: ignore[arg-type]


def _register_calldata(item: SignedRegistration) -> bytes:
    return encode_call("register", item.registration.as_tuple(), item.signature)


# ---------------------------------------------------------------------------------------------- the decoder


def test_compact_signature_expands_back_to_the_same_65_bytes() -> None:
    parities = set()
    for _ in range(40):
        signature = _signed().signature
        parities.add(signature[64])
        assert expand_signature(*compact_signature(signature)) == signature
    assert parities == {27, 28}  # both values of v went through the top bit of vs


def test_register_calldata_round_trips() -> None:
    item = _signed()
    assert signed_registration_in_calldata(_register_calldata(item), _event(item.registration), DOMAIN) == item


def test_the_batch_calldata_is_the_abi_encoding() -> None:
    # encode_register_batch writes the static layout by hand; eth_abi's generic encoder is the reference
    for n in (0, 1, 7):
        items = [_signed() for _ in range(n)]
        entries = [(i.registration.as_tuple(), *compact_signature(i.signature)) for i in items]
        assert encode_register_batch(items) == encode_call("registerBatch", entries)


def test_every_batch_entry_round_trips_with_its_signature_expanded() -> None:
    items = [_signed() for _ in range(5)]
    calldata = encode_register_batch(items)
    for item in items:
        assert signed_registration_in_calldata(calldata, _event(item.registration), DOMAIN) == item


def test_the_first_batch_entry_for_a_record_is_the_recorded_one() -> None:
    # the contract skips an entry whose record exists, so a second entry for the same (docHash, signer) was
    # never recorded: an event that says otherwise does not belong to this calldata
    key, doc = os.urandom(32), os.urandom(32)
    first, second = _signed(key=key, doc=doc), _signed(key=key, doc=doc)
    calldata = encode_register_batch([_signed(), first, second])
    assert signed_registration_in_calldata(calldata, _event(first.registration), DOMAIN) == first
    with pytest.raises(RegistrationNotFound, match="differs from the recorded event"):
        signed_registration_in_calldata(calldata, _event(second.registration), DOMAIN)


def test_a_contract_wallet_signature_to_register_is_returned_as_given() -> None:
    item = _signed()
    wallet_signature = os.urandom(97)  # ERC-1271: only the wallet (on chain) can say whether it is valid
    calldata = encode_call("register", item.registration.as_tuple(), wallet_signature)
    found = signed_registration_in_calldata(calldata, _event(item.registration), DOMAIN)
    assert found == SignedRegistration(item.registration, wallet_signature)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"metadata_hash": os.urandom(32)}, "differs from the recorded event"),
        ({"supersedes": os.urandom(32)}, "differs from the recorded event"),
        ({"doc_hash": os.urandom(32)}, "carries no registration of"),
        ({"signer": td.address_of(os.urandom(32))}, "carries no registration of"),
    ],
)
def test_a_registration_unlike_the_event_is_not_returned(change: dict[str, object], message: str) -> None:
    item = _signed()
    for calldata in (_register_calldata(item), encode_register_batch([item])):
        with pytest.raises(RegistrationNotFound, match=message):
            signed_registration_in_calldata(calldata, _event(item.registration, **change), DOMAIN)


def test_a_batch_signature_of_another_domain_is_refused() -> None:
    other = td.Domain(chain_id=1, verifying_contract=DOMAIN.verifying_contract)
    item = _signed(other)
    with pytest.raises(RegistrationNotFound, match="does not recover the signer"):
        signed_registration_in_calldata(encode_register_batch([item]), _event(item.registration), DOMAIN)


@pytest.mark.parametrize(
    ("calldata", "message"),
    [
        (b"", "calls function 0x, neither register nor registerBatch"),
        (encode_call("revoke", bytes(32)), "neither register nor registerBatch"),
        (bytes.fromhex("f0f0f0f0") + os.urandom(200), "calls function 0xf0f0f0f0"),
        (encode_call("register", (bytes(32), "0x" + "00" * 20, bytes(32), bytes(32), 0), b"x")[:100], "not decode"),
        (encode_call("registerBatch", [])[:-32], "not decode"),
    ],
    ids=["empty", "revoke", "wrapper", "truncated-register", "truncated-batch"],
)
def test_other_calldata_is_a_typed_not_found(calldata: bytes, message: str) -> None:
    with pytest.raises(RegistrationNotFound, match=message):
        signed_registration_in_calldata(calldata, _event(_signed().registration), DOMAIN)


def test_a_revocation_event_has_no_registration() -> None:
    item = _signed()
    with pytest.raises(InvalidInput):
        signed_registration_in_calldata(_register_calldata(item), _event(item.registration, kind="Revoked"), DOMAIN)


# ---------------------------------------------------------------------------------------------- on real nodes


def test_a_directly_registered_record_reads_back_from_its_transaction(registry: Registry) -> None:
    item = _signed(registry.domain)
    (event,) = registry.events_in(registry.register(item))
    assert registry.signed_registration_of(event) == item


def test_every_record_of_a_batch_reads_back_from_its_transaction(registry: Registry) -> None:
    items = [_signed(registry.domain) for _ in range(3)]
    events = registry.events_in(registry.register_batch(items))
    assert [registry.signed_registration_of(e) for e in events] == items


def test_a_contract_wallet_record_reads_back_with_the_wallets_signature(registry: Registry, relayer: TxSender) -> None:
    owner = os.urandom(32)
    wallet = artifacts.load("MockERC1271Wallet")
    ctor = bytes(12) + bytes.fromhex(td.address_of(owner)[2:])
    address = Web3.to_checksum_address(relayer.transact(None, wallet.bytecode + ctor)["contractAddress"])
    reg = td.Registration(os.urandom(32), address, int(time.time()) + HOUR, metadata_hash=os.urandom(32))
    item = SignedRegistration(reg, td.sign(registry.domain, reg, owner))
    (event,) = registry.events_in(registry.register(item))
    assert registry.signed_registration_of(event) == item


def test_a_record_written_through_another_contract_is_a_typed_not_found(registry: Registry, relayer: TxSender) -> None:
    forwarder = deploy_forwarder(relayer, registry.address)
    item = _signed(registry.domain)
    tx_hash = forward(relayer, forwarder, _register_calldata(item))
    (event,) = registry.events_in(registry.w3.eth.get_transaction_receipt(tx_hash))  # type: ignore[arg-type]
    assert registry.record(item.registration.doc_hash, item.registration.signer).exists
    with pytest.raises(RegistrationNotFound, match=f"sent to {forwarder}, not to the registry"):
        registry.signed_registration_of(event)


def test_an_unknown_transaction_is_a_typed_not_found(registry: Registry) -> None:
    item = _signed(registry.domain)
    with pytest.raises(RegistrationNotFound, match="is not known to the node"):
        registry.signed_registration_of(_event(item.registration, tx_hash=os.urandom(32)))
