"""Captures the golden evidence bundles of bundles.json from real nodes, and derives each bundle's cases: the
honest bundle and every tamper that matters, with the verdict chain/offline.py gives each.

The test suite reads the committed bundles.json (tests/chain/test_bundle_vectors.py holds chain/offline.py to
every expected verdict; the web page's verifier is held to the same file); nothing here runs in it. By hand::

    .venv/bin/python -m tests.vectors.bundles.capture            # run the nodes, capture, derive, write
    .venv/bin/python -m tests.vectors.bundles.capture --cases    # keep the committed bundles, derive the cases again
    .venv/bin/python -m tests.vectors.bundles.capture --example  # print docs/protocol.md's complete worked example

``--cases`` is for a change of the cases or, deliberately, of a verdict's wording; ``--example`` prints the text
block that docs/protocol.md section 7 shows (tests/docs/test_protocol_bundle_example.py recomputes its values).

The scenario, on anvil ``--hardfork prague`` and on ganache ``--hardfork shanghai`` (the forks docchain's nodes
produce last): anvil's dev account #0 deploys the registry as its first transaction (so at the address of section
2's worked example) and relays; dev account #1 signs section 2's worked example (``Hello, docchain!\\n``) and
three Merkle leaves, anchored under one root; on anvil it also signs a document and revokes it, and registers a
private one (its docHash the commitment keccak256(sha256 || salt), the salt fixed here). Then one
``eth_getProof`` at the head proves them all (chain/capture.py, as the service captures). Every input is fixed,
so signatures repeat from run to run; block numbers, times and hashes are the nodes'.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
import json
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import rlp
from web3 import Web3

from docchain.chain import deploy, merkle
from docchain.chain import typed_data as td
from docchain.chain.bundle import Evidence
from docchain.chain.capture import capture_evidence
from docchain.chain.evidence import _LAYOUTS, decode_header, record_slot
from docchain.chain.hashing import SALT_BYTES, commitment, keccak256
from docchain.chain.node import LocalNode, NodeConfig, NodeKind
from docchain.chain.offline import proven_slots
from docchain.chain.receipt import Private, Receipt, build_receipt, parse_receipt
from docchain.chain.registry import Registry, SignedRegistration
from docchain.chain.rpc import JsonRpc
from docchain.chain.sender import TxSender
from docchain.chain.trust import release_of
from docchain.chain.values import to_hex
from tests.vectors.bundles.corpus import CORPUS, Case, Change, apply, expectation, load, verdict_of

# anvil's and ganache's published dev accounts #0 (deployer, relayer), #1 (the signer) and #2's address
RELAYER = bytes.fromhex("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
SIGNER = bytes.fromhex("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")
OTHER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
WORKED_REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"  # dev account #0's first contract
DEADLINE = 1893456000  # 2030-01-01T00:00:00Z, as in section 2's worked example

HELLO = b"Hello, docchain!\n"
HELLO_METADATA = {"name": "hello.txt", "note": "worked example"}
LEAVES = tuple(f"golden bundle: Merkle leaf {i}\n".encode() for i in range(3))
MERKLE_LEAF = 1  # the leaf whose bundle the corpus holds
REVOKED = b"golden bundle: signed, then revoked\n"
PRIVATE = b"golden bundle: a private registration\n"

NODES: tuple[tuple[NodeKind, str], ...] = (("anvil", "prague"), ("ganache", "shanghai"))
# the bundle the docs' worked example shows
EXAMPLE = "anvil-prague-direct"

DESCRIPTION = (
    "Golden evidence bundles captured from real nodes (tests/vectors/bundles/capture.py), each with cases: a "
    "recipe of changes to its receipt (see tests/vectors/bundles/corpus.py), the file SHA-256 and trusted block "
    "hash to verify with, and the verdict docchain's offline verifier gives: outcome, failedStep, reason, steps. "
    "A receipt the strict reader refuses is invalid at step receipt with the reader's message."
)


@dataclasses.dataclass(frozen=True)
class Captured:
    """One bundle as captured: which node and how it was anchored, the file, and its receipt with evidence."""

    name: str
    node: str
    client: str
    anchoring: str  # direct | merkle
    revoked: bool
    private: bool  # a private registration: the receipt's salt opens the signed commitment
    file: bytes
    receipt: Receipt

    def to_json(self) -> dict[str, Any]:
        assert self.receipt.evidence is not None
        return {
            "name": self.name,
            "node": self.node,
            "client": self.client,
            "fork": decode_header(self.receipt.evidence.block.header).fork,
            "anchoring": self.anchoring,
            "revoked": self.revoked,
            "private": self.private,
            "file": self.file.decode(),
            "fileSha256": to_hex(hashlib.sha256(self.file).digest()),
            "receipt": self.receipt.to_json(),
        }


# ------------------------------------------------------------------------------------------------ capture


def _signed(domain: td.Domain, file: bytes, metadata: dict[str, str], salt: bytes | None = None) -> SignedRegistration:
    sha256 = hashlib.sha256(file).digest()
    reg = td.Registration(
        doc_hash=sha256 if salt is None else commitment(sha256, salt),
        signer=td.address_of(SIGNER),
        deadline=DEADLINE,
        metadata_hash=td.metadata_hash(metadata),
    )
    return SignedRegistration(reg, td.sign(domain, reg, SIGNER))


@dataclasses.dataclass(frozen=True)
class _Made:
    """A receipt the scenario made, before its evidence is captured."""

    what: str  # direct | merkle | revoked | private
    file: bytes
    receipt: Receipt


def capture(kind: NodeKind, hardfork: str) -> list[Captured]:
    """The scenario (module docstring) on a fresh node of ``kind`` at ``hardfork``."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        LocalNode(NodeConfig(kind=kind, data_dir=Path(tmp), hardfork=hardfork)) as node,
    ):
        w3 = Web3(Web3.HTTPProvider(node.rpc_url, request_kwargs={"timeout": 30}))
        relayer = TxSender(w3, RELAYER)
        registry = Registry(w3, deploy.deploy(relayer).address, relayer)
        if registry.address != WORKED_REGISTRY:
            raise SystemExit(f"{kind}: the registry is at {registry.address}, not {WORKED_REGISTRY}: not a fresh node")
        made: list[_Made] = []

        direct = _signed(registry.domain, HELLO, HELLO_METADATA)
        receipt = registry.receipt_for(direct, registry.register(direct), file_name="hello.txt", file_size=len(HELLO))
        made.append(_Made("direct", HELLO, receipt))

        leaves = [_signed(registry.domain, doc, {"name": f"leaf-{i}.txt"}) for i, doc in enumerate(LEAVES)]
        tree = merkle.MerkleTree.of([merkle.leaf(s.registration, s.signature) for s in leaves])
        tx = registry.anchor_root(tree.root, len(leaves))
        block = w3.eth.get_block(tx["blockNumber"])
        ours = leaves[MERKLE_LEAF]
        receipt = build_receipt(
            domain=registry.domain,
            registration=ours.registration,
            signature=ours.signature,
            tx_hash=bytes(tx["transactionHash"]),
            block_number=int(tx["blockNumber"]),
            block_hash=bytes(block["hash"]),
            timestamp=int(block["timestamp"]),
            file_name=f"leaf-{MERKLE_LEAF}.txt",
            file_size=len(LEAVES[MERKLE_LEAF]),
            merkle=tree.proof_for(merkle.leaf(ours.registration, ours.signature)),
        )
        made.append(_Made("merkle", LEAVES[MERKLE_LEAF], receipt))

        if kind == "anvil":
            revoked = _signed(registry.domain, REVOKED, {"name": "revoked.txt"})
            receipt = registry.receipt_for(revoked, registry.register(revoked), file_name="revoked.txt")
            Registry(w3, registry.address, TxSender(w3, SIGNER)).revoke(revoked.registration.doc_hash)
            made.append(_Made("revoked", REVOKED, receipt))

            salt = _label("salt")[:SALT_BYTES]
            private = _signed(registry.domain, PRIVATE, {"name": "private.txt"}, salt)
            receipt = registry.receipt_for(private, registry.register(private), file_name="private.txt")
            receipt = dataclasses.replace(receipt, private=Private(hashlib.sha256(PRIVATE).digest(), salt))
            made.append(_Made("private", PRIVATE, receipt))

        async def prove() -> tuple[str, list[Evidence]]:
            async with JsonRpc(node.rpc_url) as rpc:
                client = await rpc.call("web3_clientVersion", [])
                evidence = await capture_evidence(rpc, registry.address, [proven_slots(m.receipt) for m in made])
                return str(client), evidence

        client, evidence = asyncio.run(prove())
    return [
        Captured(
            name=f"{kind}-{hardfork}-{m.what}",
            node=f"{kind} --hardfork {hardfork}",
            client=client,
            anchoring="direct" if m.receipt.merkle is None else "merkle",
            revoked=m.what == "revoked",
            private=m.receipt.private is not None,
            file=m.file,
            receipt=dataclasses.replace(m.receipt, evidence=ev),
        )
        for m, ev in zip(made, evidence, strict=True)
    ]


# ------------------------------------------------------------------------------------------------ cases


def _label(text: str) -> bytes:
    """A fixed 32-byte value for a tamper, so that the corpus repeats from run to run."""
    return keccak256(b"docchain golden bundle: " + text.encode())


def _altered(node_hex: str) -> str:
    """A trie node with one byte of its content changed, still a well-formed node: a leaf's or extension's value
    (item 1), or a branch's first non-empty child."""
    items = rlp.decode(bytes.fromhex(node_hex[2:]))
    target = 1 if len(items) == 2 else next(i for i, item in enumerate(items) if item)
    items[target] = items[target][:-1] + bytes([items[target][-1] ^ 1])
    return to_hex(rlp.encode(items))


def _header_changes(header: bytes) -> list[Change]:
    """A header replaced, and the block hash made to match: a forged block, consistent in itself."""
    return [
        Change("replace", "/evidence/block/header", to_hex(header)),
        Change("replace", "/evidence/block/hash", to_hex(keccak256(header))),
    ]


def _forged_field(header_rlp: bytes, key: str) -> bytes:
    """The header with field ``key`` (its eth_getBlockByNumber name) changed: a quantity + 1, bytes with the last
    one's low bit flipped, extraData extended."""
    header = decode_header(header_rlp)
    field = next(f for f in _LAYOUTS[header.fork] if f.key == key)
    value = getattr(header, field.attr)
    if isinstance(value, int):
        new: Any = value + 1
    elif key == "extraData":
        new = value + b"forged"
    else:
        new = value[:-1] + bytes([value[-1] ^ 1])
    return dataclasses.replace(header, **{field.attr: new}).rlp


def _resigned(receipt: Receipt, **registration: Any) -> list[Change]:
    """The registration changed and signed again by its signer (the published test key): a genuine signature
    of another message."""
    reg = dataclasses.replace(receipt.registration, **registration)
    signed = receipt.to_json()
    signed["eip712"]["message"] = td.typed_data(receipt.domain, reg)["message"]
    return [
        Change("replace", "/eip712/message", signed["eip712"]["message"]),
        Change("replace", "/signature", to_hex(td.sign(receipt.domain, reg, SIGNER))),
    ]


Spec = tuple[str, str, list[Change], bytes | None, bytes | None]  # name, what, changes, file hash, trusted


def case_specs(bundle: dict[str, Any]) -> Iterator[Spec]:
    """Every case of one bundle: (name, what, changes, file SHA-256 or None for the bundle's file, trusted block
    hash or None for none). A revoked bundle gets the honest cases and the proof tampers only."""
    receipt = parse_receipt(json.dumps(bundle["receipt"]))
    evidence = receipt.evidence
    assert evidence is not None
    mine = evidence.block.hash

    def case(name: str, what: str, changes: list[Change] | None = None, **kw: bytes | None) -> Spec:
        return name, what, changes or [], kw.get("file"), kw.get("trusted", mine)

    yield case("honest", "the bundle as captured, against its own block hash")
    yield case(
        "no trusted block hash", "nothing ties the bundle to a chain: fails at chain, naming the hash", trusted=None
    )
    yield case(
        "another trusted block hash",
        "the bundle proves another block than the one trusted (a revocation too is said only of a trusted block)",
        trusted=_label("another block"),
    )
    yield case("another file", "the file's SHA-256 is not the document's", file=hashlib.sha256(b"another\n").digest())
    for i, node in enumerate(evidence.account_proof.nodes):
        yield case(
            f"evidence.account.proof[{i}] altered",
            "the node no longer hashes to what its parent (or the stateRoot) names",
            [Change("replace", f"/evidence/account/proof/{i}", _altered(node))],
        )
    for k, entry in enumerate(evidence.storage):
        for j, node in enumerate(entry.proof.nodes):
            yield case(
                f"evidence.storage[{k}].proof[{j}] altered",
                "the node no longer hashes to what its parent (or the storageRoot) names",
                [Change("replace", f"/evidence/storage/{k}/proof/{j}", _altered(node))],
            )
    if bundle["revoked"]:
        return
    yield from _evidence_specs(bundle, receipt, case)
    yield from _receipt_specs(bundle, receipt, case)


def _evidence_specs(bundle: dict[str, Any], receipt: Receipt, case: Callable[..., Spec]) -> Iterator[Spec]:
    evidence = receipt.evidence
    assert evidence is not None
    header = evidence.block.header
    yield case(
        "evidence.block.number + 1",
        "the header is another block's",
        [Change("replace", "/evidence/block/number", evidence.block.number + 1)],
    )
    yield case(
        "evidence.block.hash replaced",
        "keccak256 of the header is not the block hash",
        [Change("replace", "/evidence/block/hash", to_hex(_label("block hash")))],
    )
    yield case(
        "evidence.block.header's last byte changed",
        "keccak256 of the header is not the block hash",
        [Change("replace", "/evidence/block/header", to_hex(header[:-1] + bytes([header[-1] ^ 1])))],
    )
    yield case(
        "evidence.block.header an empty list, rehashed",
        "a header's RLP list has 15, 16, 17, 20 or 21 fields",
        _header_changes(rlp.encode([])),
    )
    for field in _LAYOUTS[decode_header(header).fork]:
        yield case(
            f"header.{field.key} forged, rehashed",
            "a forged header hashes to another block than the one trusted, and a stateRoot or number of its own "
            "fails sooner",
            _header_changes(_forged_field(header, field.key)),
        )
    yield case(
        "header.timestamp forged, rehashed, no trusted block hash",
        "without a trusted block hash a forged block fails at chain too, naming the forged hash to check",
        _header_changes(_forged_field(header, "timestamp")),
        trusted=None,
    )
    yield case(
        "evidence.account.address another",
        "the account proven is not the receipt's registry",
        [Change("replace", "/evidence/account/address", OTHER)],
    )
    proof = list(evidence.account_proof.nodes)
    yield case(
        "evidence.account.proof cut",
        "the proof ends before the account's leaf",
        [Change("replace", "/evidence/account/proof", proof[:-1])],
    )
    yield case(
        "evidence.account.proof empty",
        "an empty proof proves only the empty trie",
        [Change("replace", "/evidence/account/proof", [])],
    )
    yield case(
        "evidence.account.proof with an extra node",
        "a node off the key's path is not used by the walk",
        [Change("replace", "/evidence/account/proof", [*proof, proof[0]])],
    )
    release = release_of(evidence.code)
    assert release is not None
    masked = {i for start, length in release.immutables for i in range(start, start + length)}
    plain = next(i for i in range(len(evidence.code)) if i not in masked)
    yield case(
        f"evidence.account.code byte {plain} changed",
        "the code is no released registry's",
        [Change("splice", "/evidence/account/code", to_hex(bytes([evidence.code[plain] ^ 1])), plain)],
    )
    separator = receipt.domain.separator
    cached = next(s for s, n in release.immutables if evidence.code[s : s + n] == separator)
    yield case(
        f"evidence.account.code's cached domain separator (byte {cached + 31}) changed",
        "released code, built for another chain or address than the receipt's",
        [Change("splice", "/evidence/account/code", to_hex(bytes([separator[31] ^ 1])), cached + 31)],
    )
    yield case(
        "evidence.account.code cut by one byte",
        "the code is no released registry's",
        [Change("replace", "/evidence/account/code", to_hex(evidence.code[:-1]))],
    )
    for k, entry in enumerate(evidence.storage):
        yield case(
            f"evidence.storage[{k}].slot another",
            "the storage proofs are not of the receipt's slots",
            [Change("replace", f"/evidence/storage/{k}/slot", to_hex(record_slot(receipt.doc_hash, OTHER)))],
        )
        yield case(
            f"evidence.storage[{k}].proof cut",
            "the proof ends before the slot's leaf",
            [Change("replace", f"/evidence/storage/{k}/proof", list(entry.proof.nodes[:-1]))],
        )
    if bundle["anchoring"] == "merkle":
        storage = bundle["receipt"]["evidence"]["storage"]
        yield case(
            "evidence.storage swapped",
            "the anchor's slot comes first, then the leaf's record slot",
            [Change("replace", "/evidence/storage", storage[::-1])],
        )
        yield case(
            "evidence.storage without the leaf's record",
            "a Merkle bundle proves the root's anchor and the leaf's record (its revocation)",
            [Change("remove", "/evidence/storage/1")],
        )


def _receipt_specs(bundle: dict[str, Any], receipt: Receipt, case: Callable[..., Spec]) -> Iterator[Spec]:
    sig = receipt.signature
    yield case(
        "signature's first byte changed",
        "the signature recovers another address",
        [Change("replace", "/signature", to_hex(bytes([sig[0] ^ 1]) + sig[1:]))],
    )
    yield case(
        "signature's v changed",
        "the signature recovers another address",
        [Change("replace", "/signature", to_hex(sig[:-1] + bytes([55 - sig[-1]])))],
    )
    for key, value in (
        ("metadataHash", to_hex(_label("metadata"))),
        ("supersedes", to_hex(_label("supersedes"))),
        ("deadline", DEADLINE + 1),
    ):
        yield case(
            f"eip712.message.{key} changed",
            "the signature is of another message",
            [Change("replace", f"/eip712/message/{key}", value)],
        )
    other_doc = hashlib.sha256(b"another\n").digest()
    if bundle["private"]:
        yield from _private_specs(other_doc, case)
    else:
        doc_changes = [
            Change("replace", "/document/sha256", to_hex(other_doc)),
            Change("replace", "/eip712/message/docHash", to_hex(other_doc)),
        ]
        yield case("document hash changed", "the receipt is for another file", doc_changes)
        yield case(
            "document hash changed, with that file",
            "the signature is of another document",
            doc_changes,
            file=other_doc,
        )
        yield case(
            "document.sha256 alone changed",
            "the reader refuses a receipt whose two document hashes differ",
            [Change("replace", "/document/sha256", to_hex(other_doc))],
        )
    yield case(
        "signer changed",
        "the signature recovers the real signer, not the one named",
        [Change("replace", "/signer", OTHER), Change("replace", "/eip712/message/signer", OTHER)],
    )
    yield case(
        "chainId changed",
        "the signature is for another chain's domain",
        [Change("replace", "/chainId", 1), Change("replace", "/eip712/domain/chainId", 1)],
    )
    yield case(
        "contract changed",
        "the signature is for another registry's domain",
        [Change("replace", "/contract", OTHER), Change("replace", "/eip712/domain/verifyingContract", OTHER)],
    )
    other_domain = td.Domain(receipt.domain.chain_id, OTHER)
    yield case(
        "contract changed and signed for it",
        "a genuine signature for another registry: the evidence proves the receipt's registry is not there",
        [
            Change("replace", "/contract", OTHER),
            Change("replace", "/eip712/domain/verifyingContract", OTHER),
            Change("replace", "/signature", to_hex(td.sign(other_domain, receipt.registration, SIGNER))),
        ],
    )
    merkle_anchor = bundle["anchoring"] == "merkle"
    yield case(
        "metadataHash changed and signed again",
        "a Merkle leaf commits to the metadataHash; a direct record does not hold it (its event does), so the "
        "signer's own re-signed message verifies offline"
        if merkle_anchor
        else "a direct record does not hold the metadataHash (its event does), so a message re-signed by the "
        "signer with another one verifies offline",
        _resigned(receipt, metadata_hash=_label("metadata")),
    )
    yield case(
        "eip712.domain.name changed",
        "the reader refuses another domain name",
        [Change("replace", "/eip712/domain/name", "docchain2")],
    )
    yield case(
        "anchor.timestamp + 1",
        "the chain holds another time",
        [Change("replace", "/anchor/timestamp", receipt.timestamp + 1)],
    )
    yield case(
        "anchor.blockNumber - 1",
        "the chain holds another block",
        [Change("replace", "/anchor/blockNumber", receipt.block_number - 1)],
    )
    yield case(
        "anchor.transactionHash another",
        "not proven offline: the record holds its block and time, not its transaction",
        [Change("replace", "/anchor/transactionHash", to_hex(_label("transaction")))],
    )
    yield case(
        "anchor.blockHash another",
        "not proven offline: the proven block is the evidence's, not the anchoring one",
        [Change("replace", "/anchor/blockHash", to_hex(_label("anchoring block")))],
    )
    yield case("no evidence", "the receipt carries no bundle", [Change("remove", "/evidence")])
    if merkle_anchor:
        proof = bundle["receipt"]["anchor"]["merkle"]["proof"]
        yield case(
            "anchor.merkle.proof[0] changed",
            "the leaf is not under the root by this proof",
            [Change("replace", "/anchor/merkle/proof/0", to_hex(_label("sibling")))],
        )
        assert proof
        yield case(
            "anchor.merkle.root changed",
            "the storage proofs are of the real root's anchor slot",
            [Change("replace", "/anchor/merkle/root", to_hex(_label("root")))],
        )
        count = bundle["receipt"]["anchor"]["merkle"]["leafCount"]
        yield case(
            "anchor.merkle.leafCount one more",
            "not proven offline: the chain stores a root's time and block, not its leaf count (the RootAnchored "
            "event online does); a proof of the same length, so the reader takes it",
            [Change("replace", "/anchor/merkle/leafCount", count + 1)],
        )


def _private_specs(other_doc: bytes, case: Callable[..., Spec]) -> Iterator[Spec]:
    """A private receipt's own cases: its document.sha256 is the file's, and its salt opens the signed docHash."""
    yield case(
        "document.sha256 changed",
        "the receipt is for another file",
        [Change("replace", "/document/sha256", to_hex(other_doc))],
    )
    yield case(
        "document.sha256 changed, with that file",
        "the salt does not open the signed commitment for another file",
        [Change("replace", "/document/sha256", to_hex(other_doc))],
        file=other_doc,
    )
    yield case(
        "private.salt changed",
        "another salt does not open the signed commitment",
        [Change("replace", "/private/salt", to_hex(_label("another salt")))],
    )
    yield case(
        "private removed",
        "without its salt the receipt's document hash is not the signed docHash: the reader refuses it",
        [Change("remove", "/private")],
    )


def cases_of(bundle: dict[str, Any]) -> list[Case]:
    """``bundle``'s cases, each with the verdict chain/offline.py gives it now."""
    cases = []
    for name, what, changes, file, trusted in case_specs(bundle):
        file_sha256 = file if file is not None else bytes.fromhex(bundle["fileSha256"][2:])
        receipt = apply(bundle["receipt"], tuple(changes))
        verdict = verdict_of(receipt, file_sha256, trusted)
        cases.append(Case(name, what, tuple(changes), file_sha256, trusted, expectation(verdict)))
    return cases


def write(bundles: list[dict[str, Any]]) -> None:
    derived = [(b, cases_of(b)) for b in bundles]
    corpus = {
        "description": DESCRIPTION,
        "bundles": [{**b, "cases": [c.to_json() for c in cases]} for b, cases in derived],
    }
    CORPUS.write_text(_dumps(corpus))
    for b, cases in derived:
        outcomes = Counter(str(c.expect["outcome"]) for c in cases)
        print(f"{b['name']}: block {b['receipt']['evidence']['block']['number']}, {len(cases)} cases {dict(outcomes)}")
    print(f"{CORPUS}: {CORPUS.stat().st_size:,} bytes")


def _dumps(corpus: dict[str, Any]) -> str:
    """The corpus as JSON with one line per case and per receipt: a third smaller than indented, and a changed
    verdict is a changed line in a diff."""

    def line(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    bundles = []
    for bundle in corpus["bundles"]:
        members = [f"  {line(k)}: {line(v)}" for k, v in bundle.items() if k != "cases"]
        cases = ",\n".join(f"    {line(c)}" for c in bundle["cases"])
        bundles.append(" {\n" + ",\n".join(members) + ',\n  "cases": [\n' + cases + "\n  ]\n }")
    return f'{{\n "description": {line(corpus["description"])},\n "bundles": [\n' + ",\n".join(bundles) + "\n ]\n}\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", action="store_true", help="derive the cases of the committed bundles again")
    parser.add_argument("--example", action="store_true", help="print docs/protocol.md's worked example block")
    args = parser.parse_args(argv)
    if args.example:
        from tests.vectors.bundles.example import render

        print(render(next(b for b in load()["bundles"] if b["name"] == EXAMPLE)))
        return 0
    if args.cases:
        bundles = [{k: v for k, v in b.items() if k != "cases"} for b in load()["bundles"]]
    else:
        bundles = [c.to_json() for kind, fork in NODES for c in capture(kind, fork)]
    write(bundles)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
