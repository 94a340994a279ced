"""Captures the evidence vectors of tests/vectors/evidence/ from real nodes, and is the scenario the live tests of
tests/chain/test_evidence.py run.

On a node: deploy a registry, register a document, register and revoke another, anchor a Merkle root, then read
over plain JSON-RPC the latest block (``eth_getBlockByNumber``), the registry's code and ``eth_getProof`` of the
registry for the slots of the two records, the anchor and a slot never written, and of an address that has no
account. Run ``.venv/bin/python -m tests.vectors.evidence.capture`` to rewrite the committed files (one per node
and fork: the header JSON, its RLP and hash, the proofs and what they must prove); the tests read them offline.
The RLP is docchain's encoding (neither node serves a raw header): that it hashes to the block hash the node
named is what vouches for it.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from web3 import Web3

from docchain.chain import deploy
from docchain.chain import typed_data as td
from docchain.chain.evidence import anchor_slot, header_from_rpc, record_slot
from docchain.chain.hashing import keccak256
from docchain.chain.node import LocalNode, NodeConfig, NodeKind
from docchain.chain.registry import Anchor, Record, Registry, SignedRegistration
from docchain.chain.rpc import SyncJsonRpc
from docchain.chain.sender import TxSender
from docchain.chain.values import to_hex

HERE = Path(__file__).resolve().parent
HOUR = 3600

# (kind, hardfork) of every node docchain supports, in each fork its version runs. The registry is compiled for
# shanghai (PUSH0), so on ganache's london only a header is captured.
NODES: tuple[tuple[NodeKind, str], ...] = (
    ("anvil", "shanghai"),
    ("anvil", "cancun"),
    ("anvil", "prague"),
    ("ganache", "london"),
    ("ganache", "shanghai"),
)
HEADER_ONLY = {("ganache", "london")}


@dataclass(frozen=True)
class Slot:
    """A registry storage slot the scenario proves, and what it must hold."""

    slot: bytes
    word: bytes


@dataclass(frozen=True)
class Capture:
    """What one node answered after the scenario, and what the registry's views say the proofs must show."""

    client: str  # web3_clientVersion
    block: dict[str, Any]  # eth_getBlockByNumber(number, false), as the node answered it
    registry: str
    code_hash: bytes  # keccak256 of eth_getCode(registry)
    proof: dict[str, Any]  # eth_getProof(registry, [record, revoked, anchor, unused slot], number)
    absent_proof: dict[str, Any]  # eth_getProof(an address without account, [], number)
    doc_hash: bytes
    signer: str
    record: Record
    revoked_doc_hash: bytes
    revoked_signer: str
    revoked: Record
    root: bytes
    anchor: Anchor
    unused_slot: bytes

    @property
    def number(self) -> int:
        return int(self.block["number"], 16)

    def to_json(self) -> dict[str, Any]:
        return {
            "client": self.client,
            "block": self.block,
            "registry": self.registry,
            "codeHash": to_hex(self.code_hash),
            "proof": self.proof,
            "absentProof": self.absent_proof,
            "record": _record_json(self.doc_hash, self.signer, self.record),
            "revoked": _record_json(self.revoked_doc_hash, self.revoked_signer, self.revoked),
            "anchor": {
                "root": to_hex(self.root),
                "slot": to_hex(anchor_slot(self.root)),
                "anchoredAt": self.anchor.anchored_at,
                "blockNumber": self.anchor.block_number,
            },
            "unusedSlot": to_hex(self.unused_slot),
        }


def _record_json(doc_hash: bytes, signer: str, record: Record) -> dict[str, Any]:
    return {
        "docHash": to_hex(doc_hash),
        "signer": signer,
        "slot": to_hex(record_slot(doc_hash, signer)),
        "registeredAt": record.registered_at,
        "blockNumber": record.block_number,
        "revokedAt": record.revoked_at,
    }


def funded_sender(w3: Web3, rpc: SyncJsonRpc) -> TxSender:
    """A sender with a fresh key, funded by the node's last unlocked dev account (eth_sendTransaction: the node
    keeps that account's nonce), so it never races another test's sender of a shared node."""
    key = os.urandom(32)
    funder = rpc.call("eth_accounts", [])[-1]
    value = hex(10**20)
    tx_hash = rpc.call("eth_sendTransaction", [{"from": funder, "to": td.address_of(key), "value": value}])
    w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
    return TxSender(w3, key)


def run(rpc_url: str) -> Capture:
    """The scenario on the node at ``rpc_url``."""
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
    rpc = SyncJsonRpc(rpc_url, timeout=30)
    try:
        sender = funded_sender(w3, rpc)
        registry = Registry(w3, deploy.deploy(sender).address, sender)
        live, revoked = _registration(registry), _registration(registry)
        registry.register(live.signed)
        registry.register(revoked.signed)
        reg = revoked.signed.registration
        revocation = td.Revocation(reg.doc_hash, reg.signer, nonce=0, deadline=int(time.time()) + HOUR)
        registry.revoke_by_sig(revocation, td.sign(registry.domain, revocation, revoked.key))
        root = os.urandom(32)
        registry.anchor_root(root, 2)

        number = rpc.call("eth_blockNumber", [])  # one number for every read, so all see the same state
        unused = os.urandom(32)
        slots = [record_slot(reg.doc_hash, reg.signer) for reg in (live.signed.registration, reg)]
        slots += [anchor_slot(root), unused]
        nobody = to_hex(os.urandom(20))
        return Capture(
            client=rpc.call("web3_clientVersion", []),
            block=rpc.call("eth_getBlockByNumber", [number, False]),
            registry=registry.address,
            code_hash=keccak256(bytes.fromhex(rpc.call("eth_getCode", [registry.address, number])[2:])),
            proof=rpc.call("eth_getProof", [registry.address, [to_hex(s) for s in slots], number]),
            absent_proof=rpc.call("eth_getProof", [nobody, [], number]),
            doc_hash=live.signed.registration.doc_hash,
            signer=live.signed.registration.signer,
            record=registry.record(live.signed.registration.doc_hash, live.signed.registration.signer),
            revoked_doc_hash=reg.doc_hash,
            revoked_signer=reg.signer,
            revoked=registry.record(reg.doc_hash, reg.signer),
            root=root,
            anchor=registry.anchor(root),
            unused_slot=unused,
        )
    finally:
        rpc.close()


@dataclass(frozen=True)
class _Signed:
    key: bytes
    signed: SignedRegistration


def _registration(registry: Registry) -> _Signed:
    key = os.urandom(32)
    reg = td.Registration(
        doc_hash=os.urandom(32),
        signer=td.address_of(key),
        deadline=int(time.time()) + HOUR,
        metadata_hash=os.urandom(32),
        supersedes=bytes(32),
    )
    return _Signed(key, SignedRegistration(reg, td.sign(registry.domain, reg, key)))


def vector_path(kind: str, hardfork: str) -> Path:
    return HERE / f"{kind}-{hardfork}.json"


def header_only(rpc_url: str) -> dict[str, Any]:
    """The client and the block of one value transfer, for a fork the registry does not run on."""
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
    rpc = SyncJsonRpc(rpc_url, timeout=30)
    try:
        funded_sender(w3, rpc)
        number = rpc.call("eth_blockNumber", [])
        return {
            "client": rpc.call("web3_clientVersion", []),
            "block": rpc.call("eth_getBlockByNumber", [number, False]),
        }
    finally:
        rpc.close()


def main() -> int:
    for kind, hardfork in NODES:
        with (
            tempfile.TemporaryDirectory() as tmp,
            LocalNode(NodeConfig(kind=kind, data_dir=Path(tmp), hardfork=hardfork)) as node,
        ):
            captured = header_only(node.rpc_url) if (kind, hardfork) in HEADER_ONLY else run(node.rpc_url).to_json()
        header = header_from_rpc(captured["block"])  # refuses a header that does not hash to the block hash
        vector = {
            "node": f"{kind} --hardfork {hardfork}",
            "fork": header.fork,
            "headerRlp": to_hex(header.rlp),
            "blockHash": to_hex(header.hash),
            **captured,
        }
        vector_path(kind, hardfork).write_text(json.dumps(vector, indent=1) + "\n")
        print(f"{kind} {hardfork}: block {int(captured['block']['number'], 16)} {captured['block']['hash']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
