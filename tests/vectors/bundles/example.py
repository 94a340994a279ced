"""docs/protocol.md's complete worked example, rendered from one bundle of bundles.json: every intermediate value
of its offline verification, from the file to the verdict, as ``key = value`` lines. Printed by
``python -m tests.vectors.bundles.capture --example``; tests/docs/test_protocol_bundle_example.py recomputes each
value the page shows from the corpus by its own means, so the page and the code cannot drift apart."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import rlp

from docchain.chain import typed_data as td
from docchain.chain.evidence import RECORDS_SLOT, decode_header, decode_record, record_slot
from docchain.chain.hashing import keccak256
from docchain.chain.receipt import parse_receipt
from docchain.chain.trust import masked_code_hash, release_of
from docchain.chain.values import to_hex

__all__ = ["render", "walk"]


def _compact(path: bytes) -> tuple[bool, str]:
    """A leaf's or extension's hex-prefix path (the yellow paper's HP encoding): whether it is a leaf, and its
    nibbles."""
    flag = path[0] >> 4
    digits = path.hex()
    return flag >= 2, digits[1:] if flag % 2 else digits[2:]


def walk(root: bytes, key: bytes, proof: list[str]) -> Iterator[tuple[str, str, str, bytes]]:
    """Each node of a Merkle-Patricia proof on the path of ``key``: (kind, the key's nibbles it takes, the hash of
    the next node or, for the leaf, the value). Each node's keccak256 must be what the step before named, starting
    from ``root``; every reference on these paths is a hash (32 bytes), not an inline node."""
    path, expected = key.hex(), root
    for node_hex in proof:
        node = bytes.fromhex(node_hex[2:])
        if keccak256(node) != expected:
            raise ValueError(f"{node_hex[:18]}… hashes to {to_hex(keccak256(node))}, not {to_hex(expected)}")
        items = rlp.decode(node)
        if len(items) == 17:
            kind, taken, expected = "branch", path[0], items[int(path[0], 16)]
        else:
            is_leaf, taken = _compact(items[0])
            kind, expected = ("leaf" if is_leaf else "extension"), items[1]
            if not path.startswith(taken):
                raise ValueError(f"the {kind}'s path {taken} leaves the key's {path}")
        yield kind, taken, to_hex(keccak256(node)), expected
        path = path[len(taken) :]
        if kind == "leaf":
            if path:
                raise ValueError("the leaf ends the proof before the key's end")
            return
    raise ValueError("the proof ends before a leaf")


def render(bundle: dict[str, Any]) -> str:
    """The worked example's text block for ``bundle`` (a direct, unrevoked bundle of bundles.json)."""
    receipt = parse_receipt(json.dumps(bundle["receipt"]))
    evidence = receipt.evidence
    assert evidence is not None and receipt.merkle is None
    file = bundle["file"].encode()
    reg, domain = receipt.registration, receipt.domain
    lines: list[tuple[str, object]] = [
        ("file", to_hex(file)),
        ("fileSha256", to_hex(hashlib.sha256(file).digest())),
        ("domainSeparator", to_hex(domain.separator)),
        ("structHash", to_hex(reg.struct_hash())),
        ("digest", to_hex(td.digest(domain, reg))),
        ("signature", to_hex(receipt.signature)),
        ("recoveredSigner", td.recover(domain, reg, receipt.signature)),
    ]
    header = decode_header(evidence.block.header)
    lines += [
        ("headerRlp", to_hex(evidence.block.header)),
        ("headerFields", f"{len(rlp.decode(evidence.block.header))} ({header.fork})"),
        ("blockHash", to_hex(keccak256(evidence.block.header))),
        ("blockNumber", header.number),
        ("blockTimestamp", header.timestamp),
        ("stateRoot", to_hex(header.state_root)),
        ("registry", evidence.registry),
        ("accountKey", to_hex(keccak256(bytes.fromhex(evidence.registry[2:])))),
    ]
    key = keccak256(bytes.fromhex(evidence.registry[2:]))
    walked, account_value = _proof_lines("accountProof", header.state_root, key, evidence.account_proof.nodes)
    lines += walked
    nonce, balance, storage_root, code_hash = rlp.decode(account_value)
    code = evidence.code
    release = release_of(code)
    assert release is not None
    separator_at = [s for s, n in release.immutables if code[s : s + n] == domain.separator]
    lines += [
        ("accountValue", to_hex(account_value)),
        ("accountNonce", int.from_bytes(nonce, "big")),
        ("accountBalance", int.from_bytes(balance, "big")),
        ("storageRoot", to_hex(storage_root)),
        ("codeHash", to_hex(code_hash)),
        ("codeLength", len(code)),
        ("codeKeccak256", to_hex(keccak256(code))),
        ("release", release.name),
        ("immutables", " ".join(f"{s}+{n}" for s, n in release.immutables)),
        ("maskedCodeHash", to_hex(masked_code_hash(code, release.immutables))),
        ("domainSeparatorAt", " ".join(str(s) for s in separator_at)),
        ("docHash", to_hex(reg.doc_hash)),
        ("signer", reg.signer),
        ("recordsOuterSlot", to_hex(keccak256(reg.doc_hash + RECORDS_SLOT.to_bytes(32, "big")))),
        ("recordSlot", to_hex(record_slot(reg.doc_hash, reg.signer))),
        ("storageKey", to_hex(keccak256(record_slot(reg.doc_hash, reg.signer)))),
    ]
    [entry] = evidence.storage
    walked, value = _proof_lines("storageProof", storage_root, keccak256(entry.slot), entry.proof.nodes)
    lines += walked
    word = rlp.decode(value).rjust(32, b"\0")
    record = decode_record(word)
    lines += [
        ("storageValue", to_hex(value)),
        ("word", to_hex(word)),
        ("registeredAt", record.registered_at),
        ("recordBlockNumber", record.block_number),
        ("revokedAt", record.revoked_at),
        ("anchorTimestamp", receipt.timestamp),
        ("anchorBlockNumber", receipt.block_number),
        ("confirmations", header.number - record.block_number + 1),
    ]
    honest = next(c for c in bundle["cases"] if c["name"] == "honest")["expect"]
    lines += [("outcome", honest["outcome"])]
    lines += [(f"step.{s['name']}", s["detail"]) for s in honest["steps"]]
    width = max(len(k) for k, _ in lines)
    return "\n".join(f"{k.ljust(width)} = {v}" for k, v in lines)


def _proof_lines(name: str, root: bytes, key: bytes, nodes: tuple[str, ...]) -> tuple[list[tuple[str, object]], bytes]:
    """Each node of a proof as the page shows it (the node, its keccak256, its kind, the key's nibbles it takes,
    the next node's hash), and the value the leaf holds."""
    lines: list[tuple[str, object]] = []
    value = b""
    for i, (kind, taken, digest, following) in enumerate(walk(root, key, list(nodes))):
        lines += [
            (f"{name}[{i}]", nodes[i]),
            (f"{name}[{i}].keccak256", digest),
            (f"{name}[{i}].kind", kind),
            (f"{name}[{i}].nibbles", taken),
        ]
        if kind == "leaf":
            value = following
        else:
            lines.append((f"{name}[{i}].next", to_hex(following)))
    return lines, value
