"""The docchain receipt: a self-contained JSON proof that verifies with any Ethereum node.

Format version 1 (schema: docs/receipt.schema.json). Reading is strict: unknown fields, inconsistent
copies of a value (the document hash in ``document`` and in the signed message) and foreign typed data
are rejected, so a receipt that parses says one thing only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docchain.chain.errors import InvalidInput
from docchain.chain.typed_data import EIP712_DOMAIN_TYPE, Domain, Registration, typed_data
from docchain.chain.values import parse_address, parse_hash32, parse_hex, to_hex

VERSION = 1
MAX_BYTES = 64 * 1024  # a receipt is ~2 KB; the bound keeps a hostile file from costing memory
SUFFIX = ".docchain.json"

_TOP = {"docchainReceipt", "document", "signer", "eip712", "signature", "chainId", "contract", "anchor"}
_DOCUMENT = {"sha256", "name", "size"}
_ANCHOR = {"transactionHash", "blockNumber", "blockHash", "timestamp", "merkle"}


@dataclass(frozen=True)
class Receipt:
    domain: Domain
    registration: Registration
    signature: bytes
    tx_hash: bytes
    block_number: int
    block_hash: bytes
    timestamp: int
    file_name: str | None = None
    file_size: int | None = None

    @property
    def doc_hash(self) -> bytes:
        return self.registration.doc_hash

    @property
    def signer(self) -> str:
        return self.registration.signer

    def to_json(self) -> dict[str, Any]:
        return {
            "docchainReceipt": VERSION,
            "document": {"sha256": to_hex(self.doc_hash), "name": self.file_name, "size": self.file_size},
            "signer": self.signer,
            "eip712": typed_data(self.domain, self.registration),
            "signature": to_hex(self.signature),
            "chainId": self.domain.chain_id,
            "contract": self.domain.verifying_contract,
            "anchor": {
                "transactionHash": to_hex(self.tx_hash),
                "blockNumber": self.block_number,
                "blockHash": to_hex(self.block_hash),
                "timestamp": self.timestamp,
                "merkle": None,
            },
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2) + "\n"


def build_receipt(
    *,
    domain: Domain,
    registration: Registration,
    signature: bytes,
    tx_hash: bytes,
    block_number: int,
    block_hash: bytes,
    timestamp: int,
    file_name: str | None = None,
    file_size: int | None = None,
) -> Receipt:
    return Receipt(domain, registration, signature, tx_hash, block_number, block_hash, timestamp, file_name, file_size)


def _object(value: Any, what: str, keys: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(f"receipt: {what} must be an object")
    unknown = set(value) - keys
    if unknown:
        raise InvalidInput(f"receipt: unknown field(s) in {what}: {', '.join(sorted(unknown))}")
    missing = keys - set(value)
    if missing:
        raise InvalidInput(f"receipt: {what} is missing {', '.join(sorted(missing))}")
    return value


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(f"receipt: {what} must be a non-negative integer")
    return value


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise InvalidInput(f"duplicate key {key!r}")
        obj[key] = value
    return obj


def loads_strict(text: str | bytes, what: str = "receipt") -> Any:
    """JSON text as receipts are read: a key given twice is refused (a reader keeping the first and one
    keeping the last would see two different receipts), and so are NaN and infinities."""

    def no_constant(name: str) -> Any:
        raise InvalidInput(f"{name} is not JSON")

    try:
        return json.loads(text, object_pairs_hook=_refuse_duplicates, parse_constant=no_constant)
    except InvalidInput as exc:
        raise InvalidInput(f"{what}: {exc}") from None
    except ValueError as exc:
        raise InvalidInput(f"{what} is not valid JSON: {exc}") from exc


def parse_receipt(data: dict[str, Any] | str | bytes) -> Receipt:
    """Parse and cross-check a receipt; :class:`InvalidInput` names the first problem found."""
    if isinstance(data, str | bytes):
        if len(data) > MAX_BYTES:
            raise InvalidInput(f"receipt is larger than {MAX_BYTES} bytes")
        data = loads_strict(data)
    top = _object(data, "the receipt", _TOP)
    if top["docchainReceipt"] != VERSION:
        raise InvalidInput(f"unsupported receipt version {top['docchainReceipt']!r} (this docchain reads {VERSION})")
    document = _object(top["document"], "document", _DOCUMENT)
    anchor = _object(top["anchor"], "anchor", _ANCHOR)
    signed = _object(top["eip712"], "eip712", {"types", "primaryType", "domain", "message"})

    if signed["primaryType"] != Registration.PRIMARY_TYPE or signed["types"] != {
        "EIP712Domain": EIP712_DOMAIN_TYPE,
        Registration.PRIMARY_TYPE: Registration.TYPE,
    }:
        raise InvalidInput("receipt: eip712 is not a docchain Registration")
    if not isinstance(signed["message"], dict):
        raise InvalidInput("receipt: eip712.message must be an object")
    domain = Domain.from_json(
        _object(signed["domain"], "eip712.domain", {"name", "version", "chainId", "verifyingContract"})
    )
    registration = Registration.from_json(
        _object(
            signed["message"],
            "eip712.message",
            {"docHash", "signer", "metadataHash", "supersedes", "deadline"},
        )
    )

    if parse_hash32(str(document["sha256"]), "document.sha256") != registration.doc_hash:
        raise InvalidInput("receipt: document.sha256 differs from the signed docHash")
    if parse_address(str(top["signer"]), "signer") != registration.signer:
        raise InvalidInput("receipt: signer differs from the signed message's signer")
    if _int(top["chainId"], "chainId") != domain.chain_id:
        raise InvalidInput("receipt: chainId differs from the EIP-712 domain's")
    if parse_address(str(top["contract"]), "contract") != domain.verifying_contract:
        raise InvalidInput("receipt: contract differs from the EIP-712 domain's verifyingContract")
    if anchor["merkle"] is not None:
        raise InvalidInput("receipt: Merkle anchors are not supported by this version")
    name, size = document["name"], document["size"]
    if name is not None and (not isinstance(name, str) or len(name) > 1024):
        raise InvalidInput("receipt: document.name must be a string of at most 1024 characters")
    return Receipt(
        domain=domain,
        registration=registration,
        signature=parse_hex(str(top["signature"]), what="signature"),
        tx_hash=parse_hash32(str(anchor["transactionHash"]), "anchor.transactionHash"),
        block_number=_int(anchor["blockNumber"], "anchor.blockNumber"),
        block_hash=parse_hash32(str(anchor["blockHash"]), "anchor.blockHash"),
        timestamp=_int(anchor["timestamp"], "anchor.timestamp"),
        file_name=name,
        file_size=None if size is None else _int(size, "document.size"),
    )


def receipt_path(document: Path) -> Path:
    """Where the receipt of ``document`` lives: beside it, ``NAME.docchain.json``."""
    return document.with_name(document.name + SUFFIX)


def read_receipt(path: Path) -> Receipt:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InvalidInput(f"cannot read receipt {path}: {exc.strerror}") from exc
    if size > MAX_BYTES:
        raise InvalidInput(f"receipt {path} is larger than {MAX_BYTES} bytes")
    return parse_receipt(path.read_bytes())


def write_receipt(receipt: Receipt, path: Path, *, overwrite: bool = False) -> None:
    """Write ``receipt``; an existing file is replaced only when ``overwrite`` (never silently)."""
    mode = "w" if overwrite else "x"
    try:
        with open(path, mode) as out:
            out.write(receipt.dumps())
    except FileExistsError as exc:
        raise InvalidInput(f"{path} already exists; pass --force to replace it") from exc
