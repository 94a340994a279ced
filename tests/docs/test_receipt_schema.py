"""docs/receipt.schema.json describes receipt v1 exactly as chain/receipt.py writes and reads it:
what the builder writes validates; what the schema rejects, the parser rejects too; the rules the
schema cannot state (values that must agree) are the parser's alone and are listed in its description."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest
from docs_support import DOCS, block_after

from docchain.chain import typed_data as td
from docchain.chain.errors import InvalidInput
from docchain.chain.receipt import build_receipt, parse_receipt

SCHEMA = json.loads((DOCS / "receipt.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
KEY = bytes.fromhex("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")


def receipt_json(
    *, name: str | None = "contract.pdf", size: int | None = 1234, chain_id: int = 31337
) -> dict[str, Any]:
    domain = td.Domain(chain_id, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
    reg = td.Registration(
        hashlib.sha256(b"a document").digest(),
        td.address_of(KEY),
        1893456000,
        metadata_hash=td.metadata_hash({"note": "x"}),
    )
    receipt = build_receipt(
        domain=domain,
        registration=reg,
        signature=td.sign(domain, reg, KEY),
        tx_hash=bytes(range(32)),
        block_number=7,
        block_hash=bytes(range(1, 33)),
        timestamp=1767225600,
        file_name=name,
        file_size=size,
    )
    return json.loads(receipt.dumps())


def test_schema_is_valid_2020_12() -> None:
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("name,size", [("contract.pdf", 1234), (None, None), ("é" * 1024, 0)])
def test_what_build_receipt_writes_validates(name: str | None, size: int | None) -> None:
    data = receipt_json(name=name, size=size)
    assert list(VALIDATOR.iter_errors(data)) == []
    assert parse_receipt(json.dumps(data)).to_json() == data


def test_the_documented_example_receipt_validates_and_parses() -> None:
    data = json.loads(block_after((DOCS / "protocol.md").read_text(), "example-receipt"))
    assert list(VALIDATOR.iter_errors(data)) == []
    parsed = parse_receipt(json.dumps(data))
    assert td.recover(parsed.domain, parsed.registration, parsed.signature) == parsed.signer


def test_the_schema_covers_every_field_the_code_writes() -> None:
    data = receipt_json()

    def paths(value: Any, prefix: str = "") -> set[str]:
        if isinstance(value, dict) and prefix not in ("/eip712/types",):
            return {p for k, v in value.items() for p in paths(v, f"{prefix}/{k}")} | {prefix}
        return {prefix}

    def schema_paths(schema: dict[str, Any], prefix: str = "") -> set[str]:
        out = {prefix}
        for key, sub in schema.get("properties", {}).items():
            out |= schema_paths(sub, f"{prefix}/{key}")
        return out

    assert paths(data) - schema_paths(SCHEMA) == set()


Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = data
        for part in parents:
            target = target[part]
        target[last] = value

    return mutate


def _delete(path: str) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = data
        for part in parents:
            target = target[part]
        del target[last]

    return mutate


# Malformed receipts that both the schema and the parser reject.
BOTH_REJECT: dict[str, Mutation] = {
    "unknown top-level field": _set("extra", 1),
    "unknown document field": _set("document.mime", "application/pdf"),
    "unknown anchor field": _set("anchor.logIndex", 0),
    "unknown domain field": _set("eip712.domain.salt", "0x00"),
    "unknown message field": _set("eip712.message.nonce", 1),
    "unknown eip712 field": _set("eip712.extra", {}),
    "missing signature": _delete("signature"),
    "missing document.name": _delete("document.name"),
    "missing anchor.merkle": _delete("anchor.merkle"),
    "missing message.deadline": _delete("eip712.message.deadline"),
    "version 2": _set("docchainReceipt", 2),
    "version as string": _set("docchainReceipt", "1"),
    "document not an object": _set("document", "0xabc"),
    "short document hash": _set("document.sha256", "0x1234"),
    "non-hex block hash": _set("anchor.blockHash", "0x" + "zz" * 32),
    "negative block number": _set("anchor.blockNumber", -1),
    "block number as string": _set("anchor.blockNumber", "7"),
    "timestamp as bool": _set("anchor.timestamp", True),
    "size negative": _set("document.size", -5),
    "size as string": _set("document.size", "12"),
    "name not a string": _set("document.name", 12),
    "name too long": _set("document.name", "x" * 1025),
    "merkle anchor (not in v1)": _set("anchor.merkle", {"root": "0x" + "00" * 32, "proof": []}),
    "foreign primary type": _set("eip712.primaryType", "Revocation"),
    "foreign types": _set("eip712.types.Registration", [{"name": "docHash", "type": "bytes32"}]),
    "chainId negative": _set("chainId", -1),
    "signature not hex": _set("signature", "0xnothex"),
    "signer not an address": _set("signer", "0x1234"),
    "deadline negative": _set("eip712.message.deadline", -1),
    "deadline not a number": _set("eip712.message.deadline", "soon"),
}

# Rules that need two values at once: only the parser can check them (the schema says so in prose).
PARSER_ONLY: dict[str, tuple[Mutation, str]] = {
    "document hash differs from the signed one": (
        _set("document.sha256", "0x" + "11" * 32),
        "`document.sha256` == `eip712.message.docHash`",
    ),
    "signer differs from the signed one": (
        _set("signer", "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"),
        "`signer` == `eip712.message.signer`",
    ),
    "chainId differs from the domain's": (_set("chainId", 1), "`chainId` == `eip712.domain.chainId`"),
    "contract differs from the domain's": (
        _set("contract", "0x" + "22" * 20),
        "`contract` == `eip712.domain.verifyingContract`",
    ),
    "bad EIP-55 checksum": (
        _set("signer", "0x70997970c51812dc3A010C7d01b50e0d17dc79C8"),
        "valid EIP-55 checksum",
    ),
}


@pytest.mark.parametrize("case", sorted(BOTH_REJECT))
def test_malformed_receipts_are_rejected_by_schema_and_parser(case: str) -> None:
    data = copy.deepcopy(receipt_json())
    BOTH_REJECT[case](data)
    assert not VALIDATOR.is_valid(data), f"schema accepts: {case}"
    with pytest.raises(InvalidInput):
        parse_receipt(json.dumps(data))


@pytest.mark.parametrize("case", sorted(PARSER_ONLY))
def test_cross_field_rules_are_the_parsers(case: str) -> None:
    data = copy.deepcopy(receipt_json())
    mutate, rule = PARSER_ONLY[case]
    mutate(data)
    assert VALIDATOR.is_valid(data)
    with pytest.raises(InvalidInput):
        parse_receipt(json.dumps(data))
    assert rule in SCHEMA["description"], "the schema's description lists the rule for other implementers"


@pytest.mark.parametrize(
    "case,mutate",
    [
        ("deadline as decimal string", _set("eip712.message.deadline", "1893456000")),
        ("deadline as hex string", _set("eip712.message.deadline", "0x70dbd880")),
        (
            "upper-case hex hash",
            lambda d: d["anchor"].__setitem__("blockHash", d["anchor"]["blockHash"].upper().replace("0X", "0x")),
        ),
    ],
)
def test_lenient_forms_the_parser_reads_are_schema_valid(case: str, mutate: Mutation) -> None:
    data = copy.deepcopy(receipt_json())
    mutate(data)
    assert VALIDATOR.is_valid(data), case
    parse_receipt(json.dumps(data))
