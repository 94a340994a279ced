"""docs/protocol.md section 10's worked envelope request is what chain/envelopes.py computes today, and what an
independent EIP-712 implementation (eth-account's generic encoder, fed the types GET /v1/chain serves) computes
too: its id is the request's digest, and the documented body of POST /v1/envelopes carries that request."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from docs_support import DOCS, block_after, key_values
from eth_account import Account
from eth_account.messages import encode_typed_data

from docchain.chain import envelopes as env
from docchain.chain import typed_data as td
from docchain.chain.hashing import keccak256
from docchain.chain.values import to_hex

PROTOCOL = (DOCS / "protocol.md").read_text()


@pytest.fixture(scope="module")
def example() -> dict[str, str]:
    return key_values(block_after(PROTOCOL, "envelope-example"))


@pytest.fixture(scope="module")
def body() -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(block_after(PROTOCOL, "envelope-request-body"))
    return parsed


@pytest.fixture(scope="module")
def request_(body: dict[str, Any]) -> env.EnvelopeRequest:
    r = body["request"]
    return env.EnvelopeRequest(
        doc_hash=bytes.fromhex(r["docHash"][2:]),
        requester=r["requester"],
        signers=tuple(r["signers"]),
        ordered=r["ordered"],
        deadline=r["deadline"],
        salt=bytes.fromhex(r["salt"][2:]),
        request_deadline=r["requestDeadline"],
    )


@pytest.fixture(scope="module")
def domain(example: dict[str, str]) -> td.Domain:
    return env.domain(int(example["chainId"]), example["verifyingContract"])


def test_the_request_is_the_one_the_text_describes(example: dict[str, str], request_: env.EnvelopeRequest) -> None:
    """Anvil's dev account #0 asks #1 then #2 to sign section 2's file by 2030, through the contract it deploys
    second, with the salt keccak256("docchain worked example")."""
    assert td.address_of(bytes.fromhex(example["privateKey"][2:])) == example["requester"] == request_.requester
    assert request_.doc_hash == hashlib.sha256(b"Hello, docchain!\n").digest()
    assert request_.signers == (
        "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    )
    assert (request_.ordered, request_.deadline, request_.request_deadline) == (True, 1893456000, 1893456000)
    assert request_.salt == keccak256(b"docchain worked example")
    assert example["verifyingContract"] == "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"  # dev #0's nonce 1
    env.check_request(request_, 0)


def test_the_documented_hashes_and_id(
    example: dict[str, str], request_: env.EnvelopeRequest, domain: td.Domain
) -> None:
    words = b"".join(bytes(12) + bytes.fromhex(s[2:]) for s in request_.signers)
    assert to_hex(env.EnvelopeRequest.TYPEHASH) == example["envelopeRequestTypeHash"]
    assert to_hex(keccak256(words)) == example["signersHash"]
    assert to_hex(domain.separator) == example["domainSeparator"]
    assert to_hex(request_.struct_hash()) == example["structHash"]
    assert to_hex(env.envelope_id(domain, request_)) == example["id"]


def test_an_independent_encoder_of_the_served_types_gives_the_same_id(
    example: dict[str, str], body: dict[str, Any], domain: td.Domain
) -> None:
    """eth-account's encoder, fed the full form built as section 2 says from what GET /v1/chain serves for the
    envelopeRequest action (the types and domain come from the same definitions the route serves)."""
    full = {
        "types": {"EIP712Domain": td.EIP712_DOMAIN_TYPE, env.EnvelopeRequest.PRIMARY_TYPE: env.EnvelopeRequest.TYPE},
        "primaryType": env.EnvelopeRequest.PRIMARY_TYPE,
        "domain": domain.to_json(),
        "message": body["request"],
    }
    signable = encode_typed_data(full_message=full)
    assert to_hex(keccak256(b"\x19" + signable.version + signable.header + signable.body)) == example["id"]
    signed = Account.sign_message(signable, bytes.fromhex(example["privateKey"][2:]))
    assert to_hex(bytes(signed.signature)) == example["signature"] == body["signature"]


def test_the_signature_is_the_requesters(
    example: dict[str, str], request_: env.EnvelopeRequest, domain: td.Domain
) -> None:
    signature = env.sign(domain, request_, bytes.fromhex(example["privateKey"][2:]))
    assert to_hex(signature) == example["signature"]
    assert td.recover(domain, request_, signature) == example["requester"]
