"""The one EIP-712 definition: its digest equals eth-account's generic encoder, signatures round-trip."""

from __future__ import annotations

import os

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_hash.auto import keccak
from eth_utils import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from docchain.chain import typed_data as td
from docchain.chain.errors import InvalidInput

KEY = bytes.fromhex("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")
hashes = st.binary(min_size=32, max_size=32)
addresses = st.binary(min_size=20, max_size=20).map(to_checksum_address)
uint256 = st.integers(min_value=0, max_value=2**256 - 1)
domains = st.builds(td.Domain, chain_id=st.integers(1, 2**64), verifying_contract=addresses)
registrations = st.builds(
    td.Registration,
    doc_hash=hashes,
    signer=addresses,
    deadline=uint256,
    metadata_hash=hashes,
    supersedes=hashes,
)
revocations = st.builds(td.Revocation, doc_hash=hashes, signer=addresses, nonce=uint256, deadline=uint256)


def _generic_digest(domain: td.Domain, message: td.Message) -> bytes:
    signable = encode_typed_data(full_message=td.typed_data(domain, message))
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


@settings(max_examples=60, deadline=None)
@given(domain=domains, message=st.one_of(registrations, revocations))
def test_digest_equals_generic_eip712_encoding(domain: td.Domain, message: td.Message) -> None:
    assert td.digest(domain, message) == _generic_digest(domain, message)


@settings(max_examples=30, deadline=None)
@given(domain=domains, message=st.one_of(registrations, revocations))
def test_sign_then_recover_gives_the_signer(domain: td.Domain, message: td.Message) -> None:
    signature = td.sign(domain, message, KEY)
    assert len(signature) == 65
    assert td.recover(domain, message, signature) == td.address_of(KEY)
    # eth-account agrees on the same bytes: what a wallet produces is what we check.
    signed = Account.sign_message(encode_typed_data(full_message=td.typed_data(domain, message)), KEY)
    assert bytes(signed.signature) == signature


@settings(max_examples=40, deadline=None)
@given(message=registrations)
def test_registration_json_round_trip(message: td.Registration) -> None:
    assert td.Registration.from_json(message.to_json()) == message


@given(message=revocations)
def test_revocation_json_round_trip(message: td.Revocation) -> None:
    assert td.Revocation.from_json(message.to_json()) == message


def test_typehash_strings_are_the_contracts() -> None:
    # The same strings are in contracts/DocumentRegistry.sol; test_registry proves the contract agrees on chain.
    assert (
        keccak(b"Registration(bytes32 docHash,address signer,bytes32 metadataHash,bytes32 supersedes,uint256 deadline)")
        == td.Registration.TYPEHASH
    )
    assert (
        keccak(b"Revocation(bytes32 docHash,address signer,uint256 nonce,uint256 deadline)") == td.Revocation.TYPEHASH
    )


def test_domain_binds_chain_and_contract() -> None:
    reg = td.Registration(os.urandom(32), td.address_of(KEY), 10**10)
    a = td.Domain(1, "0x" + "11" * 20)
    assert td.digest(a, reg) != td.digest(td.Domain(2, a.verifying_contract), reg)
    assert td.digest(a, reg) != td.digest(td.Domain(1, "0x" + "22" * 20), reg)


@pytest.mark.parametrize(
    "signature, message",
    [
        (b"\x00" * 64, "65 bytes"),
        (b"\x01" * 64 + b"\x1d", "canonical"),  # v = 29
        (b"\x01" * 32 + b"\xff" * 32 + b"\x1b", "canonical"),  # high s: malleable twin
    ],
)
def test_recover_rejects_malformed_signatures(signature: bytes, message: str) -> None:
    reg = td.Registration(bytes(32), td.address_of(KEY), 1)
    with pytest.raises(InvalidInput, match=message):
        td.recover(td.Domain(1, "0x" + "11" * 20), reg, signature)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("docHash", "0x1234", "32 bytes"),
        ("docHash", "0xzz" + "00" * 31, "not valid hex"),
        ("signer", "0x" + "ab" * 19, "20 bytes"),
        ("signer", "0xAbCdEf0000000000000000000000000000000000", "checksum"),
        ("deadline", -1, "uint256"),
        ("deadline", 2**256, "uint256"),
        ("deadline", "soon", "unsigned integer"),
        ("deadline", True, "unsigned integer"),
    ],
)
def test_registration_from_json_rejects_bad_fields(field: str, value: object, message: str) -> None:
    data = td.Registration(bytes(32), td.address_of(KEY), 1).to_json()
    data[field] = value
    with pytest.raises(InvalidInput, match=message):
        td.Registration.from_json(data)


def test_metadata_hash_is_canonical() -> None:
    assert td.metadata_hash({}) == bytes(32)
    assert td.metadata_hash({"b": 1, "a": "x"}) == td.metadata_hash({"a": "x", "b": 1})
