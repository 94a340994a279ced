"""Evidence bundles (chain/bundle.py, chain/capture.py, chain/offline.py) on both nodes: evidence captured from a
real node makes a receipt verify with no node at all, opening no socket; each field of the evidence changed in
turn ends verification at its named step; a Merkle anchor, a revoked record and an absent one say so as of the
proven block; the section is read as strictly as the rest of a receipt."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import rlp
from web3 import Web3

from docchain.chain import merkle
from docchain.chain.bundle import Evidence, parse_evidence
from docchain.chain.capture import capture_evidence
from docchain.chain.errors import InvalidInput
from docchain.chain.hashing import keccak256, sha256_bytes
from docchain.chain.offline import proven_slots, verify_offline
from docchain.chain.receipt import MAX_BYTES, Receipt, build_receipt, parse_receipt
from docchain.chain.registry import Registry, SignedRegistration
from docchain.chain.rpc import JsonRpc
from docchain.chain.sender import TxSender
from docchain.chain.trust import Pin
from docchain.chain.typed_data import Registration, address_of, sign
from docchain.chain.values import to_hex
from docchain.chain.verify import Outcome, Step, Verdict

SCHEMA = jsonschema.Draft202012Validator(
    json.loads((Path(__file__).parents[2] / "docs" / "receipt.schema.json").read_text())
)
ALICE = bytes.fromhex("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")


def _url(w3: Web3) -> str:
    return str(w3.provider.endpoint_uri)  # type: ignore[attr-defined]


def _signed(registry: Registry, doc: bytes) -> SignedRegistration:
    reg = Registration(doc_hash=sha256_bytes(doc), signer=address_of(ALICE), deadline=int(time.time()) + 3600)
    return SignedRegistration(reg, sign(registry.domain, reg, ALICE))


def _captured(w3: Web3, registry: Registry, receipt: Receipt) -> Receipt:
    async def go() -> list[Evidence]:
        async with JsonRpc(_url(w3)) as rpc:
            return await capture_evidence(rpc, registry.address, [proven_slots(receipt)])

    [evidence] = asyncio.run(go())
    return dataclasses.replace(receipt, evidence=evidence)


@dataclasses.dataclass(frozen=True)
class Bundle:
    doc: bytes
    receipt: Receipt  # with its evidence

    @property
    def evidence(self) -> Evidence:
        assert self.receipt.evidence is not None
        return self.receipt.evidence


@pytest.fixture(scope="module")
def direct(registry: Registry, w3: Web3) -> Bundle:
    doc = b"bundle " + os.urandom(16)
    signed = _signed(registry, doc)
    receipt = registry.receipt_for(signed, registry.register(signed))
    return Bundle(doc, _captured(w3, registry, receipt))


def _verify(bundle: Bundle, trusted: bytes | None = None, receipt: Receipt | None = None) -> Verdict:
    return verify_offline(sha256_bytes(bundle.doc), receipt or bundle.receipt, trusted)


# ------------------------------------------------------------------------------------------------ honest bundles


def test_a_captured_bundle_verifies_offline_against_its_block_hash(direct: Bundle) -> None:
    block = direct.evidence.block
    verdict = _verify(direct, block.hash)
    assert verdict.outcome is Outcome.VALID, verdict.summary
    assert [c.name for c in verdict.steps] == [
        Step.FILE,
        Step.SIGNATURE,
        Step.ANCHOR,
        Step.REGISTRY,
        Step.RECORD,
        Step.CONFIRMATIONS,
        Step.CHAIN,
        Step.REVOCATION,
    ]
    a, r = verdict.anchor, direct.receipt
    assert a is not None and (a.block_number, a.timestamp) == (r.block_number, r.timestamp)
    assert a.confirmations == block.number - r.block_number + 1 >= 1
    assert verdict.trust is not None and verdict.trust.sources == ("released code", "trusted block hash")
    assert _step(verdict, Step.CHAIN) == f"block {block.number}'s hash {to_hex(block.hash)} is the one you trust"
    # the bundle proves the record's block and time, not its transaction: the summary does not repeat the receipt's
    assert verdict.summary.startswith(f"Signed by {r.signer} on ") and to_hex(r.tx_hash) not in verdict.summary


def _step(verdict: Verdict, name: Step) -> str:
    (detail,) = (c.detail for c in verdict.steps if c.name is name)
    return detail


def test_without_a_trusted_hash_verification_fails_at_chain_naming_the_hash_to_check(direct: Bundle) -> None:
    # a bundle proves itself only down to its own header, which anyone can make on a node of their own
    block = direct.evidence.block
    verdict = _verify(direct)
    assert (verdict.outcome, verdict.failed_step) == (Outcome.INVALID, Step.CHAIN)
    assert verdict.reason is not None
    assert to_hex(block.hash) in verdict.reason and f"block {block.number}" in verdict.reason


def test_a_pinned_registry_must_be_the_receipts(direct: Bundle) -> None:
    block_hash = direct.evidence.block.hash
    other = Pin(None, "0x0000000000000000000000000000000000000001", "--registry")
    verdict = verify_offline(sha256_bytes(direct.doc), direct.receipt, block_hash, other)
    assert (verdict.outcome, verdict.failed_step) == (Outcome.INVALID, Step.REGISTRY)
    assert verdict.reason is not None and "0x0000000000000000000000000000000000000001 (--registry)" in verdict.reason
    mine = Pin(None, direct.receipt.domain.verifying_contract, "--registry")
    verdict = verify_offline(sha256_bytes(direct.doc), direct.receipt, block_hash, mine)
    assert verdict.ok and verdict.trust is not None and "pin" in verdict.trust.sources


def test_a_bundle_survives_the_receipts_json_and_its_schema(direct: Bundle) -> None:
    text = direct.receipt.dumps()
    assert len(text.encode()) < MAX_BYTES // 2  # the registry's code is most of it: room for deeper tries
    assert [e.message for e in SCHEMA.iter_errors(json.loads(text))] == []
    again = parse_receipt(text)
    assert again == direct.receipt
    assert list(again.to_json())[-1] == "evidence"
    assert verify_offline(sha256_bytes(direct.doc), again, direct.evidence.block.hash).ok


def test_offline_verification_opens_no_socket(direct: Bundle, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[object] = []

    def refuse(*args: object) -> None:
        opened.append(args[-1])
        raise AssertionError(f"offline verification connected to {args[-1]}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    verdict = verify_offline(
        sha256_bytes(direct.doc), parse_receipt(direct.receipt.dumps()), direct.evidence.block.hash
    )
    assert verdict.outcome is Outcome.VALID and opened == []
    with pytest.raises(AssertionError, match="connected to"):  # the trap is armed: a connection would be caught
        socket.socket().connect(("127.0.0.1", 9))


# ------------------------------------------------------------------------------------------------ tampering


def _altered(node_hex: str) -> str:
    """The trie node with one byte of its content changed, still a well-formed node."""
    items = rlp.decode(bytes.fromhex(node_hex[2:]))
    target = 1 if len(items) == 2 else next(i for i, item in enumerate(items) if item)
    items[target] = items[target][:-1] + bytes([items[target][-1] ^ 1])
    return to_hex(rlp.encode(items))


def _reheaded(section: dict[str, Any]) -> None:
    """The header's extraData changed and the block hash made to match: a forged block, self-consistent."""
    fields = rlp.decode(bytes.fromhex(section["block"]["header"][2:]))
    fields[12] = b"forged"
    header = rlp.encode(fields)
    section["block"]["header"], section["block"]["hash"] = to_hex(header), to_hex(keccak256(header))


def _code_byte_flipped(section: dict[str, Any]) -> None:
    code = bytearray(bytes.fromhex(section["account"]["code"][2:]))
    code[1] ^= 1
    section["account"]["code"] = to_hex(bytes(code))


def _set(path: str, value: Callable[[Any], Any]) -> Callable[[dict[str, Any]], None]:
    def change(section: dict[str, Any]) -> None:
        *parents, last = [int(p) if p.lstrip("-").isdigit() else p for p in path.split(".")]
        target: Any = section
        for p in parents:
            target = target[p]
        target[last] = value(target[last])

    return change


OTHER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
EVIDENCE_CASES: list[tuple[str, Callable[[dict[str, Any]], None], Step, str]] = [
    ("block.number", _set("block.number", lambda n: n + 1), Step.ANCHOR, "the header is block"),
    ("block.hash", _set("block.hash", lambda _: to_hex(os.urandom(32))), Step.ANCHOR, "not the block hash"),
    ("block.header", _set("block.header", lambda hx: hx[:-2] + "00"), Step.ANCHOR, "keccak256 of the header"),
    ("a forged header", _reheaded, Step.CHAIN, "not the trusted"),
    ("account.address", _set("account.address", lambda _: OTHER), Step.REGISTRY, "the account proof is of"),
    ("account.proof[0]", _set("account.proof.0", _altered), Step.REGISTRY, "proof node 0 hashes to"),
    ("account.proof[-1]", _set("account.proof.-1", _altered), Step.REGISTRY, "the account proof"),
    ("account.proof cut", _set("account.proof", lambda p: p[:-1]), Step.REGISTRY, "ends before node"),
    ("account.code", _code_byte_flipped, Step.REGISTRY, "not a released docchain registry"),
    (
        "storage.slot",
        _set("storage.0.slot", lambda _: to_hex(os.urandom(32))),
        Step.RECORD,
        "the storage proofs are of",
    ),
    ("storage.proof[-1]", _set("storage.0.proof.-1", _altered), Step.RECORD, "the storage proof"),
    ("storage.proof cut", _set("storage.0.proof", lambda p: p[:-1]), Step.RECORD, "the storage proof"),
]


@pytest.mark.parametrize(("field", "change", "step", "words"), EVIDENCE_CASES, ids=[c[0] for c in EVIDENCE_CASES])
def test_each_evidence_field_changed_fails_at_its_step(
    direct: Bundle, field: str, change: Callable[[dict[str, Any]], None], step: Step, words: str
) -> None:
    section = copy.deepcopy(direct.evidence.to_json())
    change(section)
    tampered = dataclasses.replace(direct.receipt, evidence=parse_evidence(section))
    verdict = _verify(direct, direct.evidence.block.hash, tampered)
    assert (verdict.outcome, verdict.failed_step) == (Outcome.INVALID, step), verdict.reason
    assert verdict.reason is not None and words in verdict.reason
    assert [c.ok for c in verdict.steps][-1] is False


RECEIPT_CASES: list[tuple[str, Callable[[Receipt], Receipt], Step, Outcome]] = [
    (
        "signature",
        lambda r: dataclasses.replace(r, signature=r.signature[:-2] + b"\x01\x1b"),
        Step.SIGNATURE,
        Outcome.INVALID,
    ),
    ("timestamp", lambda r: dataclasses.replace(r, timestamp=r.timestamp + 1), Step.RECORD, Outcome.INVALID),
    ("blockNumber", lambda r: dataclasses.replace(r, block_number=r.block_number - 1), Step.RECORD, Outcome.INVALID),
    ("no evidence", lambda r: dataclasses.replace(r, evidence=None), Step.RECEIPT, Outcome.INVALID),
]


@pytest.mark.parametrize(("field", "change", "step", "outcome"), RECEIPT_CASES, ids=[c[0] for c in RECEIPT_CASES])
def test_a_receipt_field_changed_fails_at_its_step(
    direct: Bundle, field: str, change: Callable[[Receipt], Receipt], step: Step, outcome: Outcome
) -> None:
    verdict = _verify(direct, direct.evidence.block.hash, change(direct.receipt))
    assert (verdict.outcome, verdict.failed_step) == (outcome, step), verdict.reason


def test_another_file_and_another_trusted_hash_are_named(direct: Bundle) -> None:
    other = verify_offline(sha256_bytes(b"another file"), direct.receipt, direct.evidence.block.hash)
    assert (other.outcome, other.failed_step) == (Outcome.FILE_MISMATCH, Step.FILE)
    untrusted = _verify(direct, os.urandom(32))
    assert (untrusted.outcome, untrusted.failed_step) == (Outcome.INVALID, Step.CHAIN)


# ------------------------------------------------------------------------------------------------ other records


def test_a_revoked_record_is_revoked_as_of_the_proven_block(registry: Registry, w3: Web3) -> None:
    doc = b"revoked " + os.urandom(16)
    signed = _signed(registry, doc)
    receipt = registry.receipt_for(signed, registry.register(signed))
    alice = Registry(w3, registry.address, TxSender(w3, ALICE))
    alice.revoke(signed.registration.doc_hash)
    bundle = Bundle(doc, _captured(w3, registry, receipt))
    verdict = _verify(bundle, bundle.evidence.block.hash)
    assert (verdict.outcome, verdict.failed_step) == (Outcome.REVOKED, Step.REVOCATION)
    assert verdict.revocation is not None and verdict.revocation.timestamp >= receipt.timestamp
    assert verdict.reason is not None and verdict.reason.endswith(f"as of block {bundle.evidence.block.number}")
    # a revocation is said only of a block the verifier trusts: against another hash, the chain step fails first
    untrusted = _verify(bundle, os.urandom(32))
    assert (untrusted.outcome, untrusted.failed_step) == (Outcome.INVALID, Step.CHAIN)
    assert untrusted.revocation is None


def test_an_absent_record_is_not_registered_as_of_the_proven_block(
    direct: Bundle, registry: Registry, w3: Web3
) -> None:
    doc = b"never registered " + os.urandom(16)
    unsent = dataclasses.replace(direct.receipt, registration=_signed(registry, doc).registration)
    unsent = dataclasses.replace(unsent, signature=sign(registry.domain, unsent.registration, ALICE))
    bundle = Bundle(doc, _captured(w3, registry, unsent))
    verdict = _verify(bundle, bundle.evidence.block.hash)
    assert (verdict.outcome, verdict.failed_step) == (Outcome.NOT_REGISTERED, Step.RECORD)


def test_a_merkle_anchor_is_proven_by_its_roots_anchor_and_its_leafs_record(registry: Registry, w3: Web3) -> None:
    items = [_signed(registry, b"leaf " + os.urandom(16)) for _ in range(3)]
    tree = merkle.MerkleTree.of([merkle.leaf(i.registration, i.signature) for i in items])
    tx = registry.anchor_root(tree.root, len(items))
    block = w3.eth.get_block(tx["blockNumber"])
    receipt = build_receipt(
        domain=registry.domain,
        registration=items[1].registration,
        signature=items[1].signature,
        tx_hash=bytes(tx["transactionHash"]),
        block_number=int(tx["blockNumber"]),
        block_hash=bytes(block["hash"]),
        timestamp=int(block["timestamp"]),
        merkle=tree.proof(tree.index_of(merkle.leaf(items[1].registration, items[1].signature))),
    )
    bundle = Bundle(b"", _captured(w3, registry, receipt))
    assert len(bundle.evidence.storage) == 2
    verdict = verify_offline(None, bundle.receipt, bundle.evidence.block.hash)
    assert verdict.outcome is Outcome.VALID, verdict.summary
    assert verdict.anchor is not None and verdict.anchor.merkle_root == tree.root
    # another leaf's receipt under the same root is not this registration's
    swapped = dataclasses.replace(bundle.receipt, registration=items[0].registration, signature=items[0].signature)
    wrong = verify_offline(None, swapped, bundle.evidence.block.hash)
    assert (wrong.outcome, wrong.failed_step) == (Outcome.INVALID, Step.RECORD)


# ------------------------------------------------------------------------------------------------ strict reading


def _section(**changes: Any) -> dict[str, Any]:
    section: dict[str, Any] = {
        "block": {"number": 7, "hash": "0x" + "11" * 32, "header": "0xc0"},
        "account": {"address": OTHER, "proof": ["0xc0"], "code": "0x60"},
        "storage": [{"slot": "0x" + "22" * 32, "proof": []}],
    }
    for path, value in changes.items():
        *parents, last = [int(p) if p.isdigit() else p for p in path.split("__")]
        target: Any = section
        for p in parents:
            target = target[p]
        if value is KeyError:
            del target[last]
        else:
            target[last] = value
    return section


MALFORMED: list[tuple[dict[str, Any] | Any, str]] = [
    ([], "evidence must be an object, got a list of 0"),
    (_section(extra=1), "unknown field evidence.extra"),
    (_section(block__size=1), "unknown field evidence.block.size"),
    (_section(account=KeyError), "missing field evidence.account"),
    (_section(block__number=True), "evidence.block.number must be a non-negative integer below 2^53, got true"),
    (_section(block__number=2**53), "evidence.block.number must be a non-negative integer"),
    (_section(block__hash="0x11"), "evidence.block.hash must be 0x followed by 64 hex digits"),
    (_section(block__header="0x" + "00" * 2049), "evidence.block.header must be 0x followed by hex digits"),
    (_section(block__header="0x"), "evidence.block.header must be 0x followed by hex digits"),
    (_section(account__address="0x3c44cdddb6a900fa2b585dd299e03d12fa4293Bc"), "invalid EIP-55 checksum"),
    (_section(account__proof=["0xc0"] * 65), "evidence.account.proof must be a list of at most 64 trie nodes"),
    (_section(account__proof=["0xc"]), "evidence.account.proof[0] must be 0x followed by hex digits"),
    (_section(account__code="0x" + "60" * 24577), "evidence.account.code must be 0x followed by hex digits"),
    (_section(storage=[]), "evidence.storage must be a list of 1 to 2 slot proofs, got a list of 0"),
    (_section(storage={"slot": "0x" + "22" * 32, "proof": []}), "evidence.storage must be a list of 1 to 2"),
    (_section(storage__0__slot=1), "evidence.storage[0].slot must be 0x followed by 64 hex digits, got 1"),
    # one slot twice with other proofs: the schema's uniqueItems sees only entries equal in every member
    (
        _section(storage=[{"slot": "0x" + "22" * 32, "proof": []}, {"slot": "0x" + "22" * 32, "proof": ["0x80"]}]),
        "evidence.storage proves a slot twice",
    ),
]


# what a JSON Schema cannot see (docs/receipt.schema.json's description lists it)
READER_ONLY = {"invalid EIP-55 checksum", "evidence.storage proves a slot twice"}


@pytest.mark.parametrize(("section", "message"), MALFORMED)
def test_a_malformed_section_is_refused_with_its_field(direct: Bundle, section: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match="^receipt: ") as refused:
        parse_evidence(section)
    assert message in str(refused.value)
    in_receipt = {**direct.receipt.to_json(), "evidence": section}
    assert (message in READER_ONLY) == SCHEMA.is_valid(in_receipt)


def test_the_web_pages_reader_reads_a_bundle_as_python_does(direct: Bundle, tmp_path: Path) -> None:
    """api/web/js/receipt.js, run by node over the honest bundle and every malformed section: the same receipt
    back, or the same message."""
    honest = direct.receipt.to_json()
    texts = [json.dumps(honest)] + [json.dumps({**honest, "evidence": section}) for section, _ in MALFORMED]
    cases = tmp_path / "cases.json"
    cases.write_text(json.dumps([{"text": t} for t in texts]))
    node = shutil.which("node")
    assert node, "node is installed with the repository's tools (package.json)"
    reader = Path(__file__).parents[1] / "vectors" / "run_js_reader.mjs"
    done = subprocess.run([node, str(reader), str(cases)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    results = [r["text"] for r in json.loads(done.stdout)]
    assert results[0] == {"valid": True, "receipt": parse_receipt(texts[0]).to_json()}
    for text, js in zip(texts[1:], results[1:], strict=True):
        with pytest.raises(InvalidInput) as python:
            parse_receipt(text)
        assert js == {"valid": False, "message": str(python.value)}


def test_the_well_formed_section_reads_back_to_its_json() -> None:
    assert parse_evidence(_section()).to_json() == _section()
