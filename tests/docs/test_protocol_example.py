"""docs/protocol.md's worked example is what the code computes today — and what an independent EIP-712
implementation (eth-account's generic encoder) computes too, so a reader can trust either."""

from __future__ import annotations

import hashlib
import json

import pytest
from docs_support import DOCS, block_after, key_values
from eth_account import Account
from eth_account.messages import encode_typed_data

from docchain.chain import typed_data as td
from docchain.chain.values import ZERO32, to_hex

PROTOCOL = (DOCS / "protocol.md").read_text()


@pytest.fixture(scope="module")
def example() -> dict[str, str]:
    return key_values(block_after(PROTOCOL, "worked-example"))


@pytest.fixture(scope="module")
def domain(example: dict[str, str]) -> td.Domain:
    return td.Domain(int(example["chainId"]), example["verifyingContract"])


@pytest.fixture(scope="module")
def registration(example: dict[str, str]) -> td.Registration:
    return td.Registration(
        doc_hash=bytes.fromhex(example["docHash"][2:]),
        signer=example["signer"],
        deadline=int(example["deadline"]),
        metadata_hash=bytes.fromhex(example["metadataHash"][2:]),
        supersedes=bytes.fromhex(example["supersedes"][2:]),
    )


def test_the_example_uses_the_published_test_key_and_anvils_first_contract(example: dict[str, str]) -> None:
    assert example["privateKey"] == "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
    assert example["chainId"] == "31337"
    assert example["verifyingContract"] == "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    assert td.address_of(bytes.fromhex(example["privateKey"][2:])) == example["signer"]


def test_inputs_hash_to_the_documented_values(example: dict[str, str]) -> None:
    document = bytes.fromhex(example["document"][2:])
    assert document == b"Hello, docchain!\n"
    assert to_hex(hashlib.sha256(document).digest()) == example["docHash"]
    assert to_hex(td.metadata_hash(json.loads(example["metadata"]))) == example["metadataHash"]
    assert example["supersedes"] == to_hex(ZERO32)


def test_type_hashes(example: dict[str, str]) -> None:
    assert to_hex(td._DOMAIN_TYPEHASH) == example["domainTypeHash"]
    assert to_hex(td.Registration.TYPEHASH) == example["registrationTypeHash"]
    assert to_hex(td.Revocation.TYPEHASH) == example["revocationTypeHash"]


def test_struct_hash_domain_separator_digest_and_signature(
    example: dict[str, str], domain: td.Domain, registration: td.Registration
) -> None:
    assert to_hex(registration.struct_hash()) == example["structHash"]
    assert to_hex(domain.separator) == example["domainSeparator"]
    assert to_hex(td.digest(domain, registration)) == example["digest"]
    signature = td.sign(domain, registration, bytes.fromhex(example["privateKey"][2:]))
    assert to_hex(signature) == example["signature"]
    assert td.recover(domain, registration, bytes.fromhex(example["signature"][2:])) == example["signer"]


def test_an_independent_eip712_implementation_agrees(example: dict[str, str]) -> None:
    """eth-account's generic encoder, on the documented typed-data JSON: same digest and signature."""
    typed = json.loads(block_after(PROTOCOL, "worked-example-typed-data"))
    signable = encode_typed_data(full_message=typed)
    signed = Account.sign_message(signable, bytes.fromhex(example["privateKey"][2:]))
    assert "0x" + bytes(signed.message_hash).hex() == example["digest"]
    assert "0x" + bytes(signed.signature).hex() == example["signature"]


def test_documented_typed_data_is_what_the_code_builds(domain: td.Domain, registration: td.Registration) -> None:
    assert json.loads(block_after(PROTOCOL, "worked-example-typed-data")) == td.typed_data(domain, registration)


def test_documented_selectors_and_topics() -> None:
    from eth_hash.auto import keccak

    for signature, expected in [
        ("recordOf(bytes32,address)", "0x8de2afa2"),
        ("isValidRegistration((bytes32,address,bytes32,bytes32,uint256),bytes)", "0xe74d8985"),
        ("registrationDigest((bytes32,address,bytes32,bytes32,uint256))", "0x844d42bc"),
        ("register((bytes32,address,bytes32,bytes32,uint256),bytes)", "0xc54f0ef0"),
        ("registerBatch(((bytes32,address,bytes32,bytes32,uint256),bytes32,bytes32)[])", "0xba509854"),
        ("revokeBySig(bytes32,address,uint256,uint256,bytes)", "0x802286aa"),
    ]:
        assert "0x" + keccak(signature.encode())[:4].hex() == expected
        assert f"`{expected}`" in PROTOCOL
    for event in ("Registered(bytes32,address,bytes32,bytes32)", "Revoked(bytes32,address)"):
        assert "0x" + keccak(event.encode()).hex() in PROTOCOL


def test_documented_selectors_exist_in_the_compiled_abi() -> None:
    from docchain.chain import artifacts

    artifact = artifacts.load()
    names = {item.get("name") for item in artifact.abi}
    assert {
        "recordOf",
        "isValidRegistration",
        "registrationDigest",
        "register",
        "registerBatch",
        "revokeBySig",
        "revoke",
        "DOMAIN_SEPARATOR",
        "nonces",
        "Registered",
        "Revoked",
    } <= names
