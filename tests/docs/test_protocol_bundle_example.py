"""docs/protocol.md's complete bundle, step by step: every value it shows is recomputed here from the corpus's
bundle (tests/vectors/bundles/bundles.json) by independent means — eth-account's EIP-712 encoder, eth-hash's
keccak256, a proof walk written here from the page's own rules, releases.json read as JSON — and only the
verdict's words come from docchain's offline verifier. The page shows exactly these values, no fewer and no
others."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
import rlp
from docs_support import DOCS, ROOT, block_after, key_values
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data
from eth_hash.auto import keccak

from docchain.chain.offline import verify_offline
from docchain.chain.receipt import parse_receipt
from tests.vectors.bundles.capture import EXAMPLE
from tests.vectors.bundles.corpus import load
from tests.vectors.bundles.example import render

PROTOCOL = (DOCS / "protocol.md").read_text()
FORK_OF_LENGTH = {15: "frontier", 16: "london", 17: "shanghai", 20: "cancun", 21: "prague"}


def hx(data: bytes) -> str:
    return "0x" + data.hex()


def unhex(text: str) -> bytes:
    return bytes.fromhex(text[2:])


@pytest.fixture(scope="module")
def bundle() -> dict[str, Any]:
    return next(b for b in load()["bundles"] if b["name"] == EXAMPLE)


@pytest.fixture(scope="module")
def shown() -> dict[str, str]:
    return key_values(block_after(PROTOCOL, "bundle-example"))


def _walk(name: str, root: bytes, key: bytes, proof: list[str]) -> tuple[dict[str, str], bytes]:
    """The page's step 4 walk: each node hashes to the reference before it; a branch takes one nibble, a leaf
    (hex-prefix flag 2 or 3) the rest of the key and holds the value."""
    values: dict[str, str] = {}
    path, expected = key.hex(), root
    for i, node_hex in enumerate(proof):
        node = unhex(node_hex)
        assert keccak(node) == expected, f"{name}[{i}]"
        items = rlp.decode(node)
        values |= {f"{name}[{i}]": node_hex, f"{name}[{i}].keccak256": hx(keccak(node))}
        if len(items) == 17:
            values |= {f"{name}[{i}].kind": "branch", f"{name}[{i}].nibbles": path[0]}
            expected, path = items[int(path[0], 16)], path[1:]
            values[f"{name}[{i}].next"] = hx(expected)
            continue
        flag = items[0][0] >> 4
        assert flag in (2, 3), "the example's paths hold branches and a leaf only"
        rest = items[0].hex()[1:] if flag == 3 else items[0].hex()[2:]
        assert rest == path
        values |= {f"{name}[{i}].kind": "leaf", f"{name}[{i}].nibbles": rest}
        assert i == len(proof) - 1
        return values, items[1]
    raise AssertionError(f"{name} ends before its leaf")


def _recomputed(bundle: dict[str, Any]) -> dict[str, str]:
    receipt = bundle["receipt"]
    evidence = receipt["evidence"]
    file = bundle["file"].encode()
    typed = encode_typed_data(full_message=receipt["eip712"])
    signature = unhex(receipt["signature"])
    values = {
        "file": hx(file),
        "fileSha256": hx(hashlib.sha256(file).digest()),
        "domainSeparator": hx(typed.header),
        "structHash": hx(typed.body),
        "digest": hx(_hash_eip191_message(typed)),
        "signature": receipt["signature"],
        "recoveredSigner": Account.recover_message(typed, signature=signature),
    }
    header = unhex(evidence["block"]["header"])
    fields = rlp.decode(header)
    block_number = int.from_bytes(fields[8], "big")
    state_root = fields[3]
    values |= {
        "headerRlp": evidence["block"]["header"],
        "headerFields": f"{len(fields)} ({FORK_OF_LENGTH[len(fields)]})",
        "blockHash": hx(keccak(header)),
        "blockNumber": str(block_number),
        "blockTimestamp": str(int.from_bytes(fields[11], "big")),
        "stateRoot": hx(state_root),
        "registry": evidence["account"]["address"],
        "accountKey": hx(keccak(unhex(evidence["account"]["address"]))),
    }
    account_key = keccak(unhex(evidence["account"]["address"]))
    walked, account_value = _walk("accountProof", state_root, account_key, evidence["account"]["proof"])
    values |= walked
    nonce, balance, storage_root, code_hash = rlp.decode(account_value)
    code = unhex(evidence["account"]["code"])
    releases = json.loads((ROOT / "contracts" / "releases.json").read_text())["releases"]
    masked = bytearray(code)
    [release] = [r for r in releases if r["codeLength"] == len(code)]
    for start, length in release["immutables"]:
        masked[start : start + length] = bytes(length)
    values |= {
        "accountValue": hx(account_value),
        "accountNonce": str(int.from_bytes(nonce, "big")),
        "accountBalance": str(int.from_bytes(balance, "big")),
        "storageRoot": hx(storage_root),
        "codeHash": hx(code_hash),
        "codeLength": str(len(code)),
        "codeKeccak256": hx(keccak(code)),
        "release": release["name"],
        "immutables": " ".join(f"{s}+{n}" for s, n in release["immutables"]),
        "maskedCodeHash": release["maskedCodeHash"],
        "domainSeparatorAt": " ".join(str(s) for s, n in release["immutables"] if code[s : s + n] == typed.header),
    }
    doc_hash, signer = unhex(receipt["eip712"]["message"]["docHash"]), receipt["signer"]
    outer = keccak(doc_hash + (3).to_bytes(32, "big"))
    slot = keccak(unhex(signer).rjust(32, b"\0") + outer)
    assert hx(slot) == evidence["storage"][0]["slot"]
    values |= {
        "docHash": hx(doc_hash),
        "signer": signer,
        "recordsOuterSlot": hx(outer),
        "recordSlot": hx(slot),
        "storageKey": hx(keccak(slot)),
    }
    walked, storage_value = _walk("storageProof", storage_root, keccak(slot), evidence["storage"][0]["proof"])
    values |= walked
    word = rlp.decode(storage_value).rjust(32, b"\0")
    packed = int.from_bytes(word, "big")
    record_block = (packed >> 48) & (2**48 - 1)
    values |= {
        "storageValue": hx(storage_value),
        "word": hx(word),
        "registeredAt": str(packed & (2**48 - 1)),
        "recordBlockNumber": str(record_block),
        "revokedAt": str(packed >> 96),
        "anchorTimestamp": str(receipt["anchor"]["timestamp"]),
        "anchorBlockNumber": str(receipt["anchor"]["blockNumber"]),
        "confirmations": str(block_number - record_block + 1),
    }
    verdict = verify_offline(hashlib.sha256(file).digest(), parse_receipt(json.dumps(receipt)), keccak(header))
    values["outcome"] = verdict.outcome.value
    values |= {f"step.{check.name.value}": check.detail for check in verdict.steps}
    return values


def test_every_value_of_the_complete_example_is_recomputed_from_the_corpus(
    bundle: dict[str, Any], shown: dict[str, str]
) -> None:
    assert shown == _recomputed(bundle)


def test_the_example_is_a_valid_direct_bundle_continuing_section_2s_example(shown: dict[str, str]) -> None:
    section2 = key_values(block_after(PROTOCOL, "worked-example"))
    for key in ("docHash", "signer", "domainSeparator", "structHash", "digest", "signature"):
        assert shown[key] == section2[key], key
    assert shown["registry"] == section2["verifyingContract"]
    assert shown["recoveredSigner"] == shown["signer"]
    assert shown["stateRoot"] == shown["accountProof[0].keccak256"]
    assert shown["storageRoot"] == shown["storageProof[0].keccak256"]
    assert shown["codeHash"] == shown["codeKeccak256"]
    assert (shown["outcome"], shown["revokedAt"]) == ("valid", "0")


def test_the_page_shows_what_the_generator_prints(bundle: dict[str, Any]) -> None:
    """The block is pasted from ``python -m tests.vectors.bundles.capture --example``: regenerating the corpus
    shows here first."""
    assert block_after(PROTOCOL, "bundle-example") == render(bundle)
