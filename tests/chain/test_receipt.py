"""chain/receipt.py reads a receipt the API has already parsed (a JSON body's object) by the same rules as
its text: the corpus of tests/vectors/receipts.json, given as objects, gets the same verdicts and messages.
Faults only the text shows (repeated keys, size, broken JSON) are the text reader's; those are in
tests/docs/test_receipt_vectors.py."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest

from docchain.chain import merkle
from docchain.chain.errors import InvalidInput
from docchain.chain.receipt import parse_receipt, read_receipt, receipt_path, write_receipt

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "receipts.json"
CASES = {case["name"]: case for case in json.loads(VECTORS.read_text())}
BASE = CASES["as docchain writes it"]["text"]


def _as_object(case: dict[str, Any]) -> Any:
    return json.loads(case["text"])


def _value_level(case: dict[str, Any]) -> bool:
    """The cases whose fault survives parsing: those the schema sees, and 1.0 where an integer belongs."""
    if "digits" in case["name"]:
        return False  # Python's json refuses to convert 5,000 digits unless its limit is lifted
    if case["text"].startswith('"'):
        return False  # a str given to parse_receipt is a receipt's text, not a JSON string value
    return case.get("schema", True) or "1.0" in case["note"]


def verdict(data: Any) -> str:
    try:
        parse_receipt(data)
    except InvalidInput as exc:
        return str(exc)
    return "valid"


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if _value_level(c)])
def test_an_object_is_judged_as_its_text(name: str) -> None:
    case = CASES[name]
    as_object, as_text = verdict(_as_object(case)), verdict(case["text"])
    if re.search(r"got -?[0-9.]+[eE]", as_text):
        # a number with an exponent, once parsed to a float elsewhere, has lost the text it was written in
        as_object, as_text = as_object.rpartition(", got ")[0], as_text.rpartition(", got ")[0]
    assert as_object == as_text


@pytest.mark.parametrize(
    "path,value,field",
    [
        (("chainId",), 2**256, "chainId"),  # once reached the domain separator as an OverflowError
        (("eip712", "domain", "chainId"), 2**256, "eip712.domain.chainId"),
        (("anchor", "timestamp"), float("nan"), "anchor.timestamp"),
        (("anchor", "blockNumber"), float("inf"), "anchor.blockNumber"),
        (("docchainReceipt",), True, "docchainReceipt"),
        (("eip712", "message", "deadline"), 2**256, "eip712.message.deadline"),
    ],
)
def test_values_no_json_text_can_hold_are_refused_by_name(path: tuple[str, ...], value: Any, field: str) -> None:
    data = json.loads(BASE)
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(InvalidInput, match=f"^receipt: {field} "):
        parse_receipt(data)


@pytest.mark.parametrize(
    "name,message",
    [
        (
            "docchainReceipt true",
            "receipt: docchainReceipt must be 1 or 2 (the format versions this docchain reads), got true",
        ),
        ("chainId 31337.0", "receipt: chainId must be a non-negative integer below 2^53, got 31337.0"),
        ("chainId 3.1337e4", "receipt: chainId must be a non-negative integer below 2^53, got 3.1337e4"),
        ("domain version the number 1", 'receipt: eip712.domain.version must be "1", got 1'),
        ("anchor null", "receipt: anchor must be an object, got null"),
        (
            "a hash of 100 characters (quoted cut)",
            'receipt: anchor.blockHash must be 0x followed by 64 hex digits, got "0x' + "\\u00e9" * 38 + '"...',
        ),
        (
            "foreign types (a changed type string)",
            "receipt: eip712.types must be docchain's EIP712Domain and Registration types, got Registration[4] as "
            '"uint128" "deadline"',
        ),
        (
            "signer with a bad EIP-55 checksum",
            "receipt: signer has an invalid EIP-55 checksum: 0x70997970c51812dc3A010C7d01b50e0d17dc79C8, checksummed "
            "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        ),
    ],
)
def test_a_message_names_the_value_that_failed(name: str, message: str) -> None:
    assert verdict(CASES[name]["text"]) == message


def test_written_receipts_read_back_and_are_never_overwritten_silently(tmp_path: Path) -> None:
    receipt = parse_receipt(BASE)
    path = receipt_path(tmp_path / "contract.pdf")
    assert path.name == "contract.pdf.docchain.json"
    write_receipt(receipt, path)
    assert path.read_text() == BASE
    assert read_receipt(path) == receipt
    with pytest.raises(InvalidInput, match="already exists"):
        write_receipt(receipt, path)
    write_receipt(receipt, path, overwrite=True)
    assert read_receipt(path) == receipt


def test_a_missing_file_is_named() -> None:
    with pytest.raises(InvalidInput, match="cannot read receipt"):
        read_receipt(Path("/nonexistent/x.docchain.json"))


def _block_after(marker: str) -> str:
    text = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
    match = re.search(r"<!-- " + re.escape(marker) + r" -->\s*\n```json\n(.*?)\n```", text, re.S)
    assert match, f"no JSON block after <!-- {marker} -->"
    return match.group(1)


def test_the_documented_merkle_receipt_reads_and_its_proof_leads_to_its_root() -> None:
    """docs/protocol.md's version 2 example: the direct example's registration, anchored in a tree."""
    direct, anchored = parse_receipt(_block_after("example-receipt")), parse_receipt(_block_after("merkle-receipt"))
    assert (anchored.version, direct.version) == (2, 1)
    assert (anchored.registration, anchored.signature) == (direct.registration, direct.signature)
    assert anchored.merkle is not None
    assert anchored.merkle.verifies(merkle.leaf(anchored.registration, anchored.signature))
    assert anchored.to_json() == json.loads(
        _block_after("merkle-receipt")
    )  # the fields docchain writes, as it writes them


def test_a_merkle_receipt_writes_version_2_and_reads_back() -> None:
    direct = parse_receipt(BASE)
    leaves = [merkle.leaf(direct.registration, direct.signature), bytes(32), bytes([1]) * 32]
    inclusion = merkle.MerkleTree.of(leaves).proof(0)
    anchored = dataclasses.replace(direct, merkle=inclusion)
    data = anchored.to_json()
    assert (data["docchainReceipt"], data["anchor"]["merkle"]) == (2, inclusion.to_json())
    assert parse_receipt(anchored.dumps()) == anchored
    assert parse_receipt(direct.dumps()).to_json()["docchainReceipt"] == 1
