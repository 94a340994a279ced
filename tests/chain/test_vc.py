"""A receipt as a W3C Verifiable Credential (chain/vc.py), over the golden bundles of tests/vectors/bundles (anvil and
ganache; direct, Merkle, revoked and private): the credential states what its bundle proves, reads back to the same
receipt and verifies offline to the same verdict; a member changed apart from its bundle is refused by its path."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from docchain.chain.errors import InvalidInput
from docchain.chain.offline import verify_offline
from docchain.chain.receipt import Receipt, parse_receipt
from docchain.chain.values import parse_hash32, to_hex
from docchain.chain.vc import CONTEXTS, PROOF_TYPE, credential_of, did_pkh, is_credential, parse_credential

CORPUS = json.loads((Path(__file__).parents[1] / "vectors" / "bundles" / "bundles.json").read_text())["bundles"]
BUNDLES = {b["name"]: b for b in CORPUS}


def _receipt(name: str) -> Receipt:
    return parse_receipt(BUNDLES[name]["receipt"])


@pytest.mark.parametrize("name", BUNDLES)
def test_the_credential_states_what_the_bundle_proves(name: str) -> None:
    receipt = _receipt(name)
    vc = credential_of(receipt).to_json()
    assert vc["@context"] == list(CONTEXTS) and vc["@context"][0] == "https://www.w3.org/ns/credentials/v2"
    assert vc["type"] == ["VerifiableCredential", "DocchainSignatureCredential"]
    issuer = f"did:pkh:eip155:{receipt.domain.chain_id}:{receipt.signer}"
    assert vc["issuer"] == issuer == did_pkh(receipt.domain.chain_id, receipt.signer)
    assert vc["validFrom"] == vc["proof"]["created"]
    assert vc["credentialSubject"] == {"sha256": BUNDLES[name]["fileSha256"], "name": receipt.file_name} or (
        receipt.file_name is None and vc["credentialSubject"] == {"sha256": BUNDLES[name]["fileSha256"]}
    )
    proof = vc["proof"]
    assert (proof["type"], proof["proofPurpose"], proof["verificationMethod"]) == (
        PROOF_TYPE,
        "assertionMethod",
        issuer + "#blockchainAccountId",
    )
    assert proof["proofValue"] == to_hex(receipt.signature)
    assert proof["eip712"] == BUNDLES[name]["receipt"]["eip712"]  # domain, types, primaryType and the message signed
    assert receipt.evidence is not None
    assert proof["anchor"] == {
        "chainId": receipt.domain.chain_id,
        "registry": receipt.domain.verifying_contract,
        "blockNumber": receipt.block_number,
        "blockHash": to_hex(receipt.block_hash),
        "txHash": to_hex(receipt.tx_hash),
        "merkleRoot": None if receipt.merkle is None else to_hex(receipt.merkle.root),
        "provenBlock": {"number": receipt.evidence.block.number, "hash": to_hex(receipt.evidence.block.hash)},
        "bundleDigest": "sha256:" + to_hex(credential_of(receipt).bundle_digest),
    }
    assert vc["evidence"] == [{"type": ["DocchainEvidenceBundle"], "receipt": BUNDLES[name]["receipt"]}]


def test_validfrom_is_the_block_time_in_utc() -> None:
    receipt = _receipt("anvil-prague-direct")
    from datetime import UTC, datetime

    moment = datetime.strptime(credential_of(receipt).valid_from, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert int(moment.timestamp()) == receipt.timestamp


@pytest.mark.parametrize("name", BUNDLES)
def test_the_credential_reads_back_and_verifies_as_its_receipt(name: str) -> None:
    receipt = _receipt(name)
    text = credential_of(receipt).dumps()
    assert is_credential(json.loads(text)) and not is_credential(BUNDLES[name]["receipt"])
    back = parse_credential(text).receipt
    assert back == receipt and back.dumps() == receipt.dumps()
    file_hash = parse_hash32(BUNDLES[name]["fileSha256"])
    assert receipt.evidence is not None
    trusted = receipt.evidence.block.hash
    assert verify_offline(file_hash, back, trusted).to_json() == verify_offline(file_hash, receipt, trusted).to_json()


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(vc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = vc
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value

    return change


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda vc: vc.pop(key)


TAMPERS: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("issuer", _set("issuer", "did:pkh:eip155:1:0x0000000000000000000000000000000000000001"), "issuer is not"),
    ("validFrom", _set("validFrom", "2001-01-01T00:00:00Z"), "validFrom is not"),
    ("subject", _set("credentialSubject.sha256", "0x" + "00" * 32), "credentialSubject.sha256 is not"),
    ("name", _set("credentialSubject.name", "other.pdf"), "credentialSubject.name is not"),
    ("proof value", _set("proof.proofValue", "0x" + "11" * 65), "proof.proofValue is not"),
    ("proof type", _set("proof.type", "Ed25519Signature2020"), "proof.type is not"),
    ("block", _set("proof.anchor.blockNumber", 1), "proof.anchor.blockNumber is not"),
    ("digest", _set("proof.anchor.bundleDigest", "sha256:0x" + "22" * 32), "proof.anchor.bundleDigest is not"),
    ("context", _set("@context", ["https://www.w3.org/2018/credentials/v1"]), "@context is not"),
    ("a context", _set("@context.1", "https://example.org/v1"), "@context[1] is not"),
    ("unknown", _set("credentialStatus", {"id": "x"}), "unknown member credentialStatus"),
    ("missing", _drop("proof"), "missing member proof"),
    ("no bundle", _set("evidence", []), "evidence must be a list of one"),
    ("another type", _set("evidence.0.type", ["Evidence"]), "is not a DocchainEvidenceBundle"),
    ("bundle", _set("evidence.0.receipt.signer", "0x00"), "credential: evidence[0].receipt"),
    # the receipt edited inside, the claims left honest: the refusal names the receipt's member too
    (
        "the receipt's time",
        _set("evidence.0.receipt.anchor.timestamp", 1),
        'validFrom is not what its evidence bundle says: "1970-01-01T00:00:01Z"',
    ),
    (
        "the receipt's time, named",
        _set("evidence.0.receipt.anchor.timestamp", 1),
        "receipt's anchor.timestamp: the one",
    ),
    (
        "a signed field",
        _set("proof.eip712.message.deadline", 1),
        "(made from evidence[0].receipt's eip712.message.deadline",
    ),
]


@pytest.mark.parametrize(("change", "message"), [t[1:] for t in TAMPERS], ids=[t[0] for t in TAMPERS])
def test_a_member_changed_apart_from_its_bundle_is_refused_by_its_path(
    change: Callable[[dict[str, Any]], None], message: str
) -> None:
    vc = copy.deepcopy(credential_of(_receipt("anvil-prague-direct")).to_json())
    change(vc)
    with pytest.raises(InvalidInput) as refused:
        parse_credential(json.dumps(vc))
    assert message in str(refused.value)


def test_a_bool_is_not_the_number_it_equals() -> None:
    vc = credential_of(_receipt("anvil-prague-direct")).to_json()
    vc["proof"]["anchor"]["chainId"] = True if vc["proof"]["anchor"]["chainId"] == 1 else 1.0
    with pytest.raises(InvalidInput, match="proof.anchor.chainId is not"):
        parse_credential(json.dumps(vc))


def test_a_receipt_without_evidence_exports_with_no_proven_block() -> None:
    receipt = dataclasses.replace(_receipt("anvil-prague-direct"), evidence=None)
    vc = credential_of(receipt).to_json()
    assert vc["proof"]["anchor"]["provenBlock"] is None
    assert "evidence" not in vc["evidence"][0]["receipt"]
    assert parse_credential(json.dumps(vc)).receipt == receipt
