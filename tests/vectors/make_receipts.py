"""Regenerates tests/vectors/receipts.json: receipt texts that every docchain receipt reader must accept or
refuse alike (chain/receipt.py, api/web/js/receipt.js, and anyone's implementation of
docs/receipt.schema.json plus the rules its description adds).

Run: ``.venv/bin/python tests/vectors/make_receipts.py``. The file is committed; the test
tests/docs/test_receipt_vectors.py checks it is what this script writes, so a change to the code that
builds receipts shows up as a change of the corpus.

Each case: ``name``; ``text``, the receipt as raw text (so that repeated keys, ``1.0`` and broken JSON can
be written); ``valid``; for an invalid one ``field``, the field its error must name (``receipt`` for a
fault of the whole text); ``schema: false`` with a ``note`` where JSON Schema cannot see the fault (it
validates parsed values: a repeated key leaves one value, ``1.0`` equals ``1``, and text that is not JSON
has no value at all).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from docchain.chain import merkle
from docchain.chain import typed_data as td
from docchain.chain.hashing import commitment, keccak256
from docchain.chain.receipt import MAX_BYTES, Private, build_receipt, parse_receipt

OUT = Path(__file__).with_name("receipts.json")

# Fixed inputs: anvil's dev account #1 signs a known document for the first registry anvil deploys.
KEY = bytes.fromhex("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")
CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
OTHER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"  # anvil's dev account #2
BAD_CHECKSUM = "0x70997970c51812dc3A010C7d01b50e0d17dc79C8"  # account #1 with two letters' case flipped


def base_text() -> str:
    domain = td.Domain(31337, CONTRACT)
    registration = td.Registration(
        hashlib.sha256(b"a document").digest(),
        td.address_of(KEY),
        1893456000,
        metadata_hash=td.metadata_hash({"note": "x"}),
    )
    receipt = build_receipt(
        domain=domain,
        registration=registration,
        signature=td.sign(domain, registration, KEY),
        tx_hash=bytes(range(32)),
        block_number=7,
        block_hash=bytes(range(1, 33)),
        timestamp=1767225600,
        file_name="contract.pdf",
        file_size=1234,
    )
    return receipt.dumps()


BASE = base_text()


def merkle_text() -> str:
    """The base receipt anchored in a Merkle tree of five leaves (its own and four fixed others) at a place
    whose proof holds 3 hashes (sorted positions 0 and 1; positions 2 to 4 have 2): format version 2."""
    receipt = parse_receipt(BASE)
    own = merkle.leaf(receipt.registration, receipt.signature)
    # the first set of fixed others that puts the receipt's leaf at a place three levels deep
    inclusion = next(
        proof
        for k in range(0, 256, 4)
        if (proof := merkle.MerkleTree.of([own, *(keccak256(bytes([k + i])) for i in range(4))]).proof(0)).index < 2
    )
    return build_receipt(
        domain=receipt.domain,
        registration=receipt.registration,
        signature=receipt.signature,
        tx_hash=receipt.tx_hash,
        block_number=receipt.block_number,
        block_hash=receipt.block_hash,
        timestamp=receipt.timestamp,
        file_name=receipt.file_name,
        file_size=receipt.file_size,
        merkle=inclusion,
    ).dumps()


MERKLE_BASE = merkle_text()


class Raw(str):
    """A token written as it is: ``31337.0``, ``1e3``, ``NaN``."""


class Pairs(list[tuple[str, Any]]):
    """An object written with exactly these pairs, repeated keys included."""


def dump(value: Any) -> str:
    """Compact JSON that can also write Raw tokens and Pairs."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, Pairs):
        return "{" + ",".join(f"{json.dumps(k)}:{dump(v)}" for k, v in value) + "}"
    if isinstance(value, dict):
        return dump(Pairs(value.items()))
    if isinstance(value, list):
        return "[" + ",".join(dump(v) for v in value) + "]"
    return json.dumps(value)


Mutation = Callable[[dict[str, Any]], Any]


def _parent(data: dict[str, Any], path: str) -> tuple[Any, str | int]:
    *parents, last = path.split(".")
    target: Any = data
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    return target, int(last) if isinstance(target, list) else last


def put(path: str, value: Any) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        parent, key = _parent(data, path)
        parent[key] = value

    return mutate


def drop(path: str) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        parent, key = _parent(data, path)
        del parent[key]

    return mutate


def repeat(path: str, value: Any = None) -> Mutation:
    """The key at ``path`` written a second time (with its own value unless one is given); a repeated
    top-level key replaces the whole receipt, which the mutation then returns."""

    def mutate(data: dict[str, Any]) -> Pairs | None:
        parent, key = _parent(data, path)
        grand, name = _parent(data, path.rpartition(".")[0]) if "." in path else (None, "")
        pairs = Pairs(parent.items())
        pairs.append((str(key), parent[key] if value is None else value))
        if grand is None:
            return pairs  # the whole receipt
        grand[name] = pairs
        return None

    return mutate


def both(*mutations: Mutation) -> Mutation:
    def mutate(data: dict[str, Any]) -> Any:
        replaced = None
        for m in mutations:
            replaced = m(data) or replaced
        return replaced

    return mutate


def text_of(mutate: Mutation, base: str = BASE) -> str:
    data = json.loads(base)
    replaced = mutate(data)
    return dump(replaced if replaced is not None else data)


SIGNER = json.loads(BASE)["signer"]
DOC = json.loads(BASE)["document"]["sha256"]

cases: list[dict[str, Any]] = []


def valid(name: str, text: str) -> None:
    cases.append({"name": name, "text": text, "valid": True})


def invalid(name: str, text: str, field: str, *, note: str | None = None) -> None:
    case: dict[str, Any] = {"name": name, "text": text, "valid": False, "field": field}
    if note:
        case["schema"] = False
        case["note"] = note
    cases.append(case)


def mutated(name: str, mutate: Mutation, field: str | None, note: str | None = None, *, base: str = BASE) -> None:
    if field is None:
        valid(name, text_of(mutate, base))
    else:
        invalid(name, text_of(mutate, base), field, note=note)


NOT_JSON = "not JSON: JSON Schema has no value to validate"
DUPLICATE = "a repeated key: a JSON Schema validator sees one value only"
FRACTION = "JSON Schema's data model holds 1.0 equal to the integer 1; receipts write integers as integers"
SIZE = "the size of the text: JSON Schema sees the value, not its text"
CHECKSUM = "an EIP-55 checksum: a rule of the schema's description (a pattern cannot compute keccak256)"
CROSS = "two copies that disagree: a rule of the schema's description"

# ---- accepted ----
valid("as docchain writes it", BASE)
mutated("name and size unknown (null)", both(put("document.name", None), put("document.size", None)), None)
mutated("name of 1024 characters outside the BMP", put("document.name", "\U0001f600" * 1024), None)
mutated("name of 1024 two-byte characters", put("document.name", "é" * 1024), None)
mutated("empty name, size zero", both(put("document.name", ""), put("document.size", 0)), None)
mutated("upper-case hex digits in hashes", put("anchor.blockHash", "0x" + "AB" * 32), None)
mutated(
    "addresses all in lower case",
    both(
        put("signer", SIGNER.lower()),
        put("eip712.message.signer", SIGNER.lower()),
        put("contract", CONTRACT.lower()),
        put("eip712.domain.verifyingContract", CONTRACT.lower()),
    ),
    None,
)
mutated(
    "addresses with all their letters in upper case",
    both(put("signer", "0x" + SIGNER[2:].upper()), put("eip712.message.signer", "0x" + SIGNER[2:].upper())),
    None,
)
mutated("deadline as a decimal string", put("eip712.message.deadline", "1893456000"), None)
mutated("deadline as a 0x-hex string", put("eip712.message.deadline", "0x70dbd880"), None)
mutated("deadline as a 0X-hex string", put("eip712.message.deadline", "0X70DBD880"), None)
mutated("deadline zero", put("eip712.message.deadline", 0), None)
mutated("deadline 2^256-1 as an integer", put("eip712.message.deadline", 2**256 - 1), None)
mutated("deadline 2^256-1 as a decimal string", put("eip712.message.deadline", str(2**256 - 1)), None)
mutated("deadline 2^256-1 as 64 hex digits", put("eip712.message.deadline", "0x" + "f" * 64), None)
mutated("deadline with leading hex zeros", put("eip712.message.deadline", "0x" + "0" * 56 + "70dbd880"), None)
mutated(
    "chain id 2^53-1",
    both(put("chainId", 2**53 - 1), put("eip712.domain.chainId", 2**53 - 1)),
    None,
)
mutated("block number and timestamp zero", both(put("anchor.blockNumber", 0), put("anchor.timestamp", 0)), None)
mutated("a one-byte signature (a contract wallet may accept any)", put("signature", "0x00"), None)
valid("fields in another order", dump(dict(reversed(list(json.loads(BASE).items())))))
mutated(
    "type entries with their keys in another order",
    put("eip712.types.Registration", [{"type": e["type"], "name": e["name"]} for e in td.Registration.TYPE]),
    None,
)
valid("compact, no whitespace", dump(json.loads(BASE)))
valid("whitespace around and inside", " \t\r\n" + BASE.replace(": ", " :\t") + "\r\n ")
valid("escaped characters in the name", BASE.replace('"contract.pdf"', '"contr\\u0061ct \\"1\\"\\/\\u00e9.pdf"'))
valid("size written -0 (the integer zero)", BASE.replace('"size": 1234', '"size": -0'))
valid("exactly 65536 bytes", BASE + " " * (MAX_BYTES - len(BASE.encode())))

# ---- refused: the text ----
invalid("not JSON", "{nope", "receipt", note=NOT_JSON)
invalid("empty", "", "receipt", note=NOT_JSON)
invalid("trailing comma", BASE.replace('"merkle": null\n', '"merkle": null,\n'), "receipt", note=NOT_JSON)
invalid("a comment", "// receipt\n" + BASE, "receipt", note=NOT_JSON)
invalid("single quotes", BASE.replace('"contract.pdf"', "'contract.pdf'"), "receipt", note=NOT_JSON)
invalid("a byte-order mark", "\ufeff" + BASE, "receipt", note=NOT_JSON)
invalid("a second value after the receipt", BASE + "{}", "receipt", note=NOT_JSON)
invalid("NaN", BASE.replace('"size": 1234', '"size": NaN'), "receipt", note=NOT_JSON)
invalid("Infinity", BASE.replace('"size": 1234', '"size": Infinity'), "receipt", note=NOT_JSON)
invalid(
    "a raw control character in a string", BASE.replace("contract.pdf", "contract\x01.pdf"), "receipt", note=NOT_JSON
)
invalid("an invalid escape", BASE.replace("contract.pdf", "contract\\x41.pdf"), "receipt", note=NOT_JSON)
invalid("a number with a leading zero", BASE.replace('"size": 1234', '"size": 01234'), "receipt", note=NOT_JSON)
invalid("a number with a plus sign", BASE.replace('"size": 1234', '"size": +1234'), "receipt", note=NOT_JSON)
invalid("a number ending in a dot", BASE.replace('"size": 1234', '"size": 1234.'), "receipt", note=NOT_JSON)
invalid("one byte over 65536", BASE + " " * (MAX_BYTES + 1 - len(BASE.encode())), "receipt", note=SIZE)
invalid("brackets nested past any stack", "[" * 5000, "receipt", note=NOT_JSON)
# the receipt is level 0 and the value of "padding" level 1
mutated("values nested 16 levels deep", put("padding", json.loads("[" * 16 + "]" * 16)), "padding")
mutated("values nested 17 levels deep", put("padding", json.loads("[" * 17 + "]" * 17)), "receipt")
invalid("not an object: an array", "[]", "receipt")
invalid("not an object: null", "null", "receipt")
invalid("not an object: a string", json.dumps(BASE), "receipt")
invalid("not an object: a number", "1", "receipt")

# ---- refused: repeated keys ----
mutated("the same field twice, same value", repeat("signer"), "signer", DUPLICATE)
mutated("docchainReceipt twice", repeat("docchainReceipt", 2), "docchainReceipt", DUPLICATE)
mutated("document.sha256 twice", repeat("document.sha256", "0x" + "11" * 32), "document.sha256", DUPLICATE)
mutated("eip712.domain.chainId twice", repeat("eip712.domain.chainId", 1), "eip712.domain.chainId", DUPLICATE)
mutated("eip712.message.signer twice", repeat("eip712.message.signer", OTHER), "eip712.message.signer", DUPLICATE)
mutated("anchor.blockNumber twice", repeat("anchor.blockNumber", 8), "anchor.blockNumber", DUPLICATE)
mutated(
    "a key twice inside a type entry",
    repeat("eip712.types.Registration.0.name"),
    "eip712.types.Registration[0].name",
    DUPLICATE,
)
mutated("an unknown field twice", both(put("extra", 1), repeat("extra")), "extra", DUPLICATE)

# ---- refused: the version ----
mutated("docchainReceipt missing", drop("docchainReceipt"), "docchainReceipt")
mutated("docchainReceipt true", put("docchainReceipt", True), "docchainReceipt")
mutated("docchainReceipt 1.0", put("docchainReceipt", Raw("1.0")), "docchainReceipt", FRACTION)
mutated("docchainReceipt 1e0", put("docchainReceipt", Raw("1e0")), "docchainReceipt", FRACTION)
mutated("docchainReceipt as a string", put("docchainReceipt", "1"), "docchainReceipt")
mutated("docchainReceipt 3 (a later version)", both(put("docchainReceipt", 3), put("newField", 1)), "docchainReceipt")
mutated("docchainReceipt 0", put("docchainReceipt", 0), "docchainReceipt")
mutated("docchainReceipt null", put("docchainReceipt", None), "docchainReceipt")

# ---- refused: fields missing or unknown ----
STRUCTURE = {
    "": ["document", "signer", "eip712", "signature", "chainId", "contract", "anchor"],
    "document": ["sha256", "name", "size"],
    "eip712": ["types", "primaryType", "domain", "message"],
    "eip712.domain": ["name", "version", "chainId", "verifyingContract"],
    "eip712.message": ["docHash", "signer", "metadataHash", "supersedes", "deadline"],
    "anchor": ["transactionHash", "blockNumber", "blockHash", "timestamp", "merkle"],
}
for parent, keys in STRUCTURE.items():
    for key in keys:
        path = f"{parent}.{key}" if parent else key
        mutated(f"{path} missing", drop(path), path)
    unknown = f"{parent}.extra" if parent else "extra"
    mutated(f"unknown field {unknown}", put(unknown, 0), unknown)
mutated("two fields missing", both(drop("anchor.blockHash"), drop("anchor.merkle")), "anchor.blockHash, anchor.merkle")
mutated("an unknown field named oddly", put("document.a\nb\u00e9", 1), 'document."a\\nb\\u00e9"')

# ---- refused: types and formats, field by field ----
mutated("document a string", put("document", DOC), "document")
mutated("eip712 an array", put("eip712", []), "eip712")
mutated("anchor null", put("anchor", None), "anchor")
mutated("eip712.domain an array", put("eip712.domain", []), "eip712.domain")
mutated("eip712.message null", put("eip712.message", None), "eip712.message")

for path in ("document.sha256", "eip712.message.metadataHash", "anchor.transactionHash"):
    mutated(f"{path} of 2 bytes", put(path, "0x1234"), path)
mutated("document.sha256 of 33 bytes", put("document.sha256", DOC + "00"), "document.sha256")
mutated("document.sha256 without 0x", put("document.sha256", DOC[2:]), "document.sha256")
mutated("document.sha256 with 0X", put("document.sha256", "0X" + DOC[2:]), "document.sha256")
mutated("document.sha256 with a space before", put("document.sha256", " " + DOC), "document.sha256")
mutated(
    "document.sha256 with a final newline",
    put("document.sha256", DOC + "\n"),
    "document.sha256",
    "a final newline: Python's re.search lets the schema's $ match before it (ECMA-262's $ does not)",
)
mutated("anchor.blockHash not hex", put("anchor.blockHash", "0x" + "zz" * 32), "anchor.blockHash")
mutated("eip712.message.docHash a number", put("eip712.message.docHash", 1), "eip712.message.docHash")
mutated("eip712.message.supersedes null", put("eip712.message.supersedes", None), "eip712.message.supersedes")

mutated("document.name of 1025 characters", put("document.name", "x" * 1025), "document.name")
mutated("document.name of 1025 characters outside the BMP", put("document.name", "\U0001f600" * 1025), "document.name")
mutated("document.name a number", put("document.name", 12), "document.name")
mutated("document.name false", put("document.name", False), "document.name")
mutated("document.size negative", put("document.size", -5), "document.size")
mutated("document.size a string", put("document.size", "12"), "document.size")
mutated("document.size true", put("document.size", True), "document.size")
mutated("document.size 1234.0", put("document.size", Raw("1234.0")), "document.size", FRACTION)
mutated("document.size 2^53", put("document.size", 2**53), "document.size")

mutated("signer with a bad EIP-55 checksum", put("signer", BAD_CHECKSUM), "signer", CHECKSUM)
mutated("signer of 19 bytes", put("signer", SIGNER[:-2]), "signer")
mutated("signer without 0x", put("signer", SIGNER[2:]), "signer")
mutated("signer with 0X", put("signer", "0X" + SIGNER[2:]), "signer")
mutated("signer null", put("signer", None), "signer")
mutated("contract with a bad EIP-55 checksum", put("contract", CONTRACT.replace("f", "F", 1)), "contract", CHECKSUM)
mutated(
    "verifyingContract with a bad EIP-55 checksum",
    put("eip712.domain.verifyingContract", CONTRACT.replace("b", "B", 1)),
    "eip712.domain.verifyingContract",
    CHECKSUM,
)
mutated(
    "message signer with a bad EIP-55 checksum",
    put("eip712.message.signer", BAD_CHECKSUM),
    "eip712.message.signer",
    CHECKSUM,
)

mutated("signature empty (0x)", put("signature", "0x"), "signature")
mutated("signature of an odd number of digits", put("signature", "0xabc"), "signature")
mutated("signature not hex", put("signature", "0xnothex"), "signature")
mutated("signature with 0X", put("signature", "0X00"), "signature")
mutated("signature a number", put("signature", 0), "signature")

mutated("chainId 31337.0", put("chainId", Raw("31337.0")), "chainId", FRACTION)
mutated("chainId 3.1337e4", put("chainId", Raw("3.1337e4")), "chainId", FRACTION)
mutated("chainId true", put("chainId", True), "chainId")
mutated("chainId as a string", put("chainId", "31337"), "chainId")
mutated("chainId negative", put("chainId", -1), "chainId")
mutated("chainId 2^53", both(put("chainId", 2**53), put("eip712.domain.chainId", 2**53)), "eip712.domain.chainId")
mutated(
    "eip712.domain.chainId 31337.0", put("eip712.domain.chainId", Raw("31337.0")), "eip712.domain.chainId", FRACTION
)
mutated("eip712.domain.chainId a hex string", put("eip712.domain.chainId", "0x7a69"), "eip712.domain.chainId")
mutated("anchor.blockNumber negative", put("anchor.blockNumber", -1), "anchor.blockNumber")
mutated("anchor.blockNumber true", put("anchor.blockNumber", True), "anchor.blockNumber")
mutated("anchor.blockNumber a string", put("anchor.blockNumber", "7"), "anchor.blockNumber")
mutated("anchor.blockNumber 7.0", put("anchor.blockNumber", Raw("7.0")), "anchor.blockNumber", FRACTION)
mutated("anchor.blockNumber 7e0", put("anchor.blockNumber", Raw("7e0")), "anchor.blockNumber", FRACTION)
mutated("anchor.blockNumber of 400 digits", put("anchor.blockNumber", Raw("9" * 400)), "anchor.blockNumber")
mutated("anchor.blockNumber of 5000 digits", put("anchor.blockNumber", Raw("9" * 5000)), "anchor.blockNumber")
mutated("anchor.timestamp 1767225600.0", put("anchor.timestamp", Raw("1767225600.0")), "anchor.timestamp", FRACTION)
mutated("anchor.timestamp negative", put("anchor.timestamp", -1767225600), "anchor.timestamp")
mutated("anchor.timestamp null", put("anchor.timestamp", None), "anchor.timestamp")

DEADLINE = "eip712.message.deadline"
mutated("deadline negative", put(DEADLINE, -1), DEADLINE)
mutated("deadline true", put(DEADLINE, True), DEADLINE)
mutated("deadline 1893456000.0", put(DEADLINE, Raw("1893456000.0")), DEADLINE, FRACTION)
mutated("deadline 2^256", put(DEADLINE, 2**256), DEADLINE)
mutated("deadline a word", put(DEADLINE, "soon"), DEADLINE)
mutated("deadline 65 hex digits", put(DEADLINE, "0x1" + "0" * 64), DEADLINE)
mutated(
    "deadline 2^256 as a decimal string",
    put(DEADLINE, str(2**256)),
    DEADLINE,
    "the schema's pattern bounds the decimal string's digits (78), not its value (below 2^256)",
)
mutated("deadline with a sign", put(DEADLINE, "+1893456000"), DEADLINE)
mutated("deadline with a leading zero", put(DEADLINE, "01893456000"), DEADLINE)
mutated("deadline with spaces", put(DEADLINE, " 1893456000"), DEADLINE)
mutated("deadline with an underscore", put(DEADLINE, "1_893_456_000"), DEADLINE)
mutated("deadline in octal", put(DEADLINE, "0o16066754200"), DEADLINE)
mutated("deadline as a string with an exponent", put(DEADLINE, "1e9"), DEADLINE)
mutated("deadline an empty string", put(DEADLINE, ""), DEADLINE)

# ---- refused: the typed data is not docchain's ----
mutated("primaryType Revocation", put("eip712.primaryType", "Revocation"), "eip712.primaryType")
mutated("primaryType in lower case", put("eip712.primaryType", "registration"), "eip712.primaryType")
mutated("domain name not docchain", put("eip712.domain.name", "DocChain"), "eip712.domain.name")
mutated("domain version 2", put("eip712.domain.version", "2"), "eip712.domain.version")
mutated("domain version the number 1", put("eip712.domain.version", 1), "eip712.domain.version")
mutated(
    "foreign types (a field dropped)",
    put("eip712.types.Registration", [{"name": "docHash", "type": "bytes32"}]),
    "eip712.types",
)
mutated(
    "foreign types (fields swapped)",
    put("eip712.types.Registration", [td.Registration.TYPE[1], td.Registration.TYPE[0], *td.Registration.TYPE[2:]]),
    "eip712.types",
)
mutated("foreign types (a type added)", put("eip712.types.Revocation", td.Revocation.TYPE), "eip712.types")
mutated(
    "foreign types (a changed type string)",
    put("eip712.types.Registration.4.type", "uint128"),
    "eip712.types",
)
mutated("foreign types (not an object)", put("eip712.types", Raw("1e3")), "eip712.types")
mutated("a hash of 100 characters (quoted cut)", put("anchor.blockHash", "0x" + "é" * 98), "anchor.blockHash")
mutated(
    "foreign types (a salt in the domain)",
    put("eip712.types.EIP712Domain", [*td.EIP712_DOMAIN_TYPE, {"name": "salt", "type": "bytes32"}]),
    "eip712.types",
)
mutated("foreign types (an extra key in an entry)", put("eip712.types.Registration.0.indexed", True), "eip712.types")
mutated("types an array", put("eip712.types", []), "eip712.types")

# ---- refused: copies that disagree (rules only a reader can check) ----
mutated("document.sha256 is not the signed docHash", put("document.sha256", "0x" + "11" * 32), "document.sha256", CROSS)
mutated("signer is not the message's signer", put("signer", OTHER), "signer", CROSS)
mutated("chainId is not the domain's", put("chainId", 1), "chainId", CROSS)
mutated("contract is not the verifyingContract", put("contract", "0x" + "22" * 20), "contract", CROSS)

# ---- refused: Merkle anchors are not in version 1 ----
mutated("anchor.merkle an object", put("anchor.merkle", {"root": "0x" + "00" * 32, "proof": []}), "anchor.merkle")
mutated("anchor.merkle an empty array", put("anchor.merkle", []), "anchor.merkle")
mutated("anchor.merkle false", put("anchor.merkle", False), "anchor.merkle")
mutated("anchor.merkle zero", put("anchor.merkle", 0), "anchor.merkle")

# ---- format version 2: a Merkle anchor ----
M = "anchor.merkle"
M_JSON = json.loads(MERKLE_BASE)["anchor"]["merkle"]
ROOT, PROOF = M_JSON["root"], M_JSON["proof"]
H = "0x" + "ab" * 32
PROOF_LENGTH = "a proof's length follows from leafIndex and leafCount: a rule of the schema's description"
BELOW_COUNT = "leafIndex < leafCount compares two values: a rule of the schema's description"


def v2(name: str, mutate: Mutation, field: str | None, note: str | None = None) -> None:
    mutated(f"v2: {name}", mutate, field, note, base=MERKLE_BASE)


valid("v2: as docchain writes a Merkle anchor", MERKLE_BASE)
v2("leaf 4 of 5 (2 hashes)", both(put(f"{M}.leafIndex", 4), put(f"{M}.proof", PROOF[:2])), None)
v2(
    "a tree of one leaf: an empty proof",
    both(put(f"{M}.leafIndex", 0), put(f"{M}.leafCount", 1), put(f"{M}.proof", [])),
    None,
)
v2(
    "the largest tree: 32 hashes for leaf 2^32-1 of 2^32",
    both(put(f"{M}.leafIndex", 2**32 - 1), put(f"{M}.leafCount", 2**32), put(f"{M}.proof", [H] * 32)),
    None,
)
v2("upper-case hex digits in the proof", put(f"{M}.proof", [p.upper().replace("0X", "0x") for p in PROOF]), None)
v2("merkle's keys in another order", put(M, dict(reversed(list(M_JSON.items())))), None)
v2("with a storage section", put("storage", {"backends": ["local"], "ipfs": None}), None)
v2("merkle null", put(M, None), M)
v2("merkle an array", put(M, []), M)
v2("merkle a string", put(M, ROOT), M)
for key in ("root", "leafIndex", "leafCount", "proof"):
    v2(f"{M}.{key} missing", drop(f"{M}.{key}"), f"{M}.{key}")
v2(f"unknown field {M}.extra", put(f"{M}.extra", 0), f"{M}.extra")
v2(f"unknown field {M}.leaf (a verifier computes the leaf)", put(f"{M}.leaf", H), f"{M}.leaf")
v2(f"{M}.root twice", repeat(f"{M}.root", H), f"{M}.root", DUPLICATE)
v2(f"{M}.root of 31 bytes", put(f"{M}.root", ROOT[:-2]), f"{M}.root")
v2(f"{M}.root without 0x", put(f"{M}.root", ROOT[2:]), f"{M}.root")
v2(f"{M}.root null", put(f"{M}.root", None), f"{M}.root")
v2(f"{M}.leafIndex negative", put(f"{M}.leafIndex", -1), f"{M}.leafIndex")
v2(f"{M}.leafIndex a string", put(f"{M}.leafIndex", "4"), f"{M}.leafIndex")
v2(f"{M}.leafIndex true", put(f"{M}.leafIndex", True), f"{M}.leafIndex")
v2(f"{M}.leafIndex 4.0", put(f"{M}.leafIndex", Raw("4.0")), f"{M}.leafIndex", FRACTION)
v2(f"{M}.leafIndex null", put(f"{M}.leafIndex", None), f"{M}.leafIndex")
v2(f"{M}.leafIndex equal to leafCount", put(f"{M}.leafIndex", 5), f"{M}.leafIndex", BELOW_COUNT)
v2(f"{M}.leafIndex beyond leafCount", put(f"{M}.leafIndex", 9), f"{M}.leafIndex", BELOW_COUNT)
v2(f"{M}.leafCount zero", both(put(f"{M}.leafIndex", 0), put(f"{M}.leafCount", 0)), f"{M}.leafCount")
v2(f"{M}.leafCount 2^32 + 1", put(f"{M}.leafCount", 2**32 + 1), f"{M}.leafCount")
v2(f"{M}.leafCount of 20 digits", put(f"{M}.leafCount", 10**19), f"{M}.leafCount")
v2(f"{M}.leafCount a string", put(f"{M}.leafCount", "5"), f"{M}.leafCount")
v2(f"{M}.leafCount 5.0", put(f"{M}.leafCount", Raw("5.0")), f"{M}.leafCount", FRACTION)
v2(f"{M}.leafCount false", put(f"{M}.leafCount", False), f"{M}.leafCount")
v2(f"{M}.proof an object", put(f"{M}.proof", {"0": PROOF[0]}), f"{M}.proof")
v2(f"{M}.proof null", put(f"{M}.proof", None), f"{M}.proof")
v2(f"{M}.proof of 33 hashes", put(f"{M}.proof", [H] * 33), f"{M}.proof")
v2(
    f"{M}.proof of 33 hashes in the largest tree",
    both(put(f"{M}.leafIndex", 2**32 - 1), put(f"{M}.leafCount", 2**32), put(f"{M}.proof", [H] * 33)),
    f"{M}.proof",
)
v2(f"{M}.proof a hash short", put(f"{M}.proof", PROOF[:-1]), f"{M}.proof", PROOF_LENGTH)
v2(f"{M}.proof a hash too many", put(f"{M}.proof", [*PROOF, H]), f"{M}.proof", PROOF_LENGTH)
v2(f"{M}.proof empty for a leaf 3 levels deep", put(f"{M}.proof", []), f"{M}.proof", PROOF_LENGTH)
v2(f"{M}.proof with a hash of 31 bytes", put(f"{M}.proof.1", PROOF[1][:-2]), f"{M}.proof[1]")
v2(f"{M}.proof with a number", put(f"{M}.proof.0", 1), f"{M}.proof[0]")
v2(f"{M}.proof with a nested list", put(f"{M}.proof.2", [PROOF[2]]), f"{M}.proof[2]")
v2(f"{M}.proof with null", put(f"{M}.proof.2", None), f"{M}.proof[2]")
v2("docchainReceipt 2.0", put("docchainReceipt", Raw("2.0")), "docchainReceipt", FRACTION)
v2("docchainReceipt 1 with a Merkle anchor", put("docchainReceipt", 1), M)
v2("copies that disagree are still refused", put("signer", OTHER), "signer", CROSS)

# ---- the optional storage section (informative, not signed) ----
CID = "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"  # the CID of b"hello world\n"
DOC_KEY = "q6vmGG1aHvcsNPaDWCbk1UCtRDvl0ZSY5qvlrBo5ZwE"
SEALED = {"cid": CID, "sealed": True, "key": DOC_KEY}


def storage(backends: list[str], **ipfs: Any) -> Mutation:
    return put("storage", {"backends": backends, "ipfs": {**SEALED, **ipfs}})


mutated("storage: a sealed IPFS copy with its key", storage(["local", "s3", "ipfs"]), None)
mutated("storage: a sealed IPFS copy without its key", storage(["ipfs"], key=None), None)
mutated("storage: a public IPFS copy", storage(["s3", "ipfs"], sealed=False, key=None), None)
mutated("storage: no IPFS copy", put("storage", {"backends": ["local"], "ipfs": None}), None)
mutated("storage null", put("storage", None), "storage")
mutated("storage.backends empty", put("storage", {"backends": [], "ipfs": None}), "storage.backends")
mutated(
    "storage.backends names one twice", put("storage", {"backends": ["s3", "s3"], "ipfs": None}), "storage.backends"
)
mutated("storage.backends upper case", put("storage", {"backends": ["S3"], "ipfs": None}), "storage.backends[0]")
mutated("storage without ipfs", put("storage", {"backends": ["local"]}), "storage.ipfs")
mutated(
    "storage with an unknown field", put("storage", {"backends": ["local"], "ipfs": None, "url": ""}), "storage.url"
)
mutated("storage.ipfs.cid a CIDv0", storage(["ipfs"], cid="Qm" + "a" * 44), "storage.ipfs.cid")
mutated("storage.ipfs.sealed a string", storage(["ipfs"], sealed="yes"), "storage.ipfs.sealed")
mutated("storage.ipfs.key in hex", storage(["ipfs"], key="ab" * 32), "storage.ipfs.key")
mutated("storage.ipfs.key of a public copy", storage(["ipfs"], sealed=False), "storage.ipfs.key")


# ---- the optional private section: docHash is keccak256(sha256 || salt), document.sha256 the file's ----
SALT = "0x" + bytes(range(32)).hex()
PRIVATE_NOTE = "docHash equal to document.sha256 in a private receipt: a rule of the schema's description"


def private_text() -> str:
    """The base receipt's document registered privately: the same signer signs the commitment to it."""
    receipt = parse_receipt(BASE)
    salt = bytes.fromhex(SALT[2:])
    registration = dataclasses.replace(receipt.registration, doc_hash=commitment(receipt.sha256, salt))
    return dataclasses.replace(
        receipt,
        registration=registration,
        signature=td.sign(receipt.domain, registration, KEY),
        private=Private(receipt.sha256, salt),
    ).dumps()


PRIVATE_BASE = private_text()


def private(name: str, mutate: Mutation, field: str | None, note: str | None = None) -> None:
    mutated(f"private: {name}", mutate, field, note, base=PRIVATE_BASE)


valid("private: as docchain writes a private receipt", PRIVATE_BASE)
private("with a storage section", put("storage", {"backends": ["local"], "ipfs": None}), None)
# a salt that does not open the commitment is read: it fails verification's commitment step, as a wrong signature
# fails the signature step
private("a salt that does not open the commitment", put("private.salt", "0x" + "00" * 32), None)
private("upper-case hex digits in the salt", put("private.salt", SALT.upper().replace("0X", "0x")), None)
private("private null", put("private", None), "private")
private("private a string", put("private", SALT), "private")
private("private empty", put("private", {}), "private.salt")
private("private.salt null", put("private.salt", None), "private.salt")
private("private.salt of 31 bytes", put("private.salt", SALT[:-2]), "private.salt")
private("private.salt without 0x", put("private.salt", SALT[2:]), "private.salt")
private("unknown field private.sha256", put("private.sha256", DOC), "private.sha256")
private("private.salt twice", repeat("private.salt", SALT), "private.salt", DUPLICATE)
private(
    "docHash equal to document.sha256",
    put("eip712.message.docHash", DOC),
    "eip712.message.docHash",
    PRIVATE_NOTE,
)
mutated(
    "a public receipt's docHash differs from document.sha256",
    put("document.sha256", "0x" + "ab" * 32),
    "document.sha256",
    CROSS,
)


def main() -> None:
    names = [c["name"] for c in cases]
    assert len(names) == len(set(names)), "case names are unique"
    OUT.write_text(render())
    print(f"{OUT}: {sum(c['valid'] for c in cases)} valid, {sum(not c['valid'] for c in cases)} invalid")


def render() -> str:
    return json.dumps(copy.deepcopy(cases), indent=1, ensure_ascii=True) + "\n"


if __name__ == "__main__":
    main()
