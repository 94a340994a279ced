"""A receipt (an evidence bundle above all) as a W3C Verifiable Credential, Data Model 2.0, and back
(docs/protocol.md section 8).

The credential says what the receipt says, in that ecosystem's terms: its issuer is the signer's account as a
``did:pkh`` (``did:pkh:eip155:<chainId>:<address>``), ``validFrom`` the anchoring block's time, its subject the
document's SHA-256 (and file name, when the receipt has one). Its ``proof`` is the signer's EIP-712 signature in
the shape of the EthereumEip712Signature2021 suite (``proofValue``, ``verificationMethod``, ``eip712`` with the
domain, types and primary type) and points at the on-chain evidence (``anchor``: chain id, registry, block,
transaction, and the SHA-256 of the bundle). The bundle itself travels in the credential's ``evidence``, so
that the credential verifies offline exactly as its receipt does.

The key signed docchain's ``Registration``, not the credential's JSON: ``proof.eip712.message`` carries that
message, which the 2021 suite derives from the credential instead. A generic verifier of that suite therefore
refuses this proof; a reader of this module rebuilds the receipt, and :func:`parse_credential` accepts a
credential only if every claim in it is the one its bundle makes (no claim can be edited apart from the bundle,
which the offline verification then checks down to a block hash).

Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from docchain.chain.errors import InvalidInput
from docchain.chain.hashing import sha256_bytes
from docchain.chain.receipt import MAX_BYTES, Receipt, loads, parse_receipt
from docchain.chain.typed_data import typed_data
from docchain.chain.values import to_hex

__all__ = [
    "BUNDLE_TYPE",
    "CONTEXTS",
    "CREDENTIAL_TYPE",
    "MAX_CREDENTIAL_BYTES",
    "PROOF_TYPE",
    "Credential",
    "credential_of",
    "did_pkh",
    "is_credential",
    "parse_credential",
    "receipt_of",
]

CONTEXTS = ("https://www.w3.org/ns/credentials/v2", "https://w3id.org/security/suites/eip712sig-2021/v1")
CREDENTIAL_TYPE = ("VerifiableCredential", "DocchainSignatureCredential")
PROOF_TYPE = "EthereumEip712Signature2021"
BUNDLE_TYPE = "DocchainEvidenceBundle"
# The receipt, the claims that repeat it and the JSON-LD around them: twice a receipt's bound is ample
MAX_CREDENTIAL_BYTES = 2 * MAX_BYTES
_SHOWN = 80  # characters of the expected value a refusal quotes
# The receipt member each claim is made from: a claim that differs may as well be an honest claim beside an edited
# receipt, so a refusal names both (api/web/js/vc.js holds the same table). Under proof.eip712 the paths are the
# receipt's own eip712 paths.
_MADE_FROM = {
    "issuer": "chainId and signer",
    "validFrom": "anchor.timestamp",
    "credentialSubject.sha256": "document.sha256",
    "credentialSubject.name": "document.name",
    "proof.created": "anchor.timestamp",
    "proof.verificationMethod": "chainId and signer",
    "proof.proofValue": "signature",
    "proof.anchor.chainId": "chainId",
    "proof.anchor.registry": "contract",
    "proof.anchor.blockNumber": "anchor.blockNumber",
    "proof.anchor.blockHash": "anchor.blockHash",
    "proof.anchor.txHash": "anchor.transactionHash",
    "proof.anchor.merkleRoot": "anchor.merkle.root",
    "proof.anchor.provenBlock": "evidence.block",
    "proof.anchor.provenBlock.number": "evidence.block.number",
    "proof.anchor.provenBlock.hash": "evidence.block.hash",
    "proof.anchor.bundleDigest": "text as a whole",
}
_EIP712 = "proof.eip712"


def did_pkh(chain_id: int, address: str) -> str:
    """An Ethereum account as a DID (the did:pkh method, CAIP-10 account id)."""
    return f"did:pkh:eip155:{chain_id}:{address}"


def _instant(timestamp: int) -> str:
    """A block time as XML Schema's dateTimeStamp in UTC, as ``validFrom`` takes it."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Credential:
    """A receipt as a Verifiable Credential: every member of the credential is derived from :attr:`receipt`."""

    receipt: Receipt

    @property
    def issuer(self) -> str:
        return did_pkh(self.receipt.domain.chain_id, self.receipt.signer)

    @property
    def valid_from(self) -> str:
        return _instant(self.receipt.timestamp)

    @property
    def bundle_digest(self) -> bytes:
        """SHA-256 of the bundle as the credential carries it (the receipt's own text, :meth:`Receipt.dumps`)."""
        return sha256_bytes(self.receipt.dumps().encode())

    def to_json(self) -> dict[str, Any]:
        r = self.receipt
        subject: dict[str, Any] = {"sha256": to_hex(r.sha256)}
        if r.file_name is not None:
            subject["name"] = r.file_name
        anchor: dict[str, Any] = {
            "chainId": r.domain.chain_id,
            "registry": r.domain.verifying_contract,
            "blockNumber": r.block_number,
            "blockHash": to_hex(r.block_hash),
            "txHash": to_hex(r.tx_hash),
            "merkleRoot": None if r.merkle is None else to_hex(r.merkle.root),
            "provenBlock": None
            if r.evidence is None
            else {"number": r.evidence.block.number, "hash": to_hex(r.evidence.block.hash)},
            "bundleDigest": "sha256:" + to_hex(self.bundle_digest),
        }
        return {
            "@context": list(CONTEXTS),
            "type": list(CREDENTIAL_TYPE),
            "issuer": self.issuer,
            "validFrom": self.valid_from,
            "credentialSubject": subject,
            "evidence": [{"type": [BUNDLE_TYPE], "receipt": r.to_json()}],
            "proof": {
                "type": PROOF_TYPE,
                "created": self.valid_from,
                "proofPurpose": "assertionMethod",
                "verificationMethod": self.issuer + "#blockchainAccountId",
                "proofValue": to_hex(r.signature),
                "eip712": typed_data(r.domain, r.registration),
                "anchor": anchor,
            },
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2) + "\n"


def credential_of(receipt: Receipt) -> Credential:
    """The credential of ``receipt``."""
    return Credential(receipt)


def is_credential(data: Any) -> bool:
    """Whether a parsed JSON document is meant as a credential (it has an ``@context``), not a receipt."""
    return isinstance(data, Mapping) and "@context" in data


def parse_credential(data: Mapping[str, Any] | str | bytes) -> Credential:
    """Read a credential made by :func:`credential_of`: its bundle read as strictly as any receipt, then every
    other member compared with what that bundle makes of it. :class:`InvalidInput` names the first member that
    differs."""
    if isinstance(data, str | bytes):
        data = loads(data, limit=MAX_CREDENTIAL_BYTES, what="credential")
    if not isinstance(data, Mapping):
        raise InvalidInput("credential: not a JSON object")
    evidence = data.get("evidence")
    if not isinstance(evidence, list) or len(evidence) != 1 or not isinstance(evidence[0], Mapping):
        raise InvalidInput("credential: evidence must be a list of one docchain evidence bundle")
    entry = evidence[0]
    if entry.get("type") != [BUNDLE_TYPE] or "receipt" not in entry:
        raise InvalidInput(f"credential: evidence[0] is not a {BUNDLE_TYPE} with its receipt")
    try:
        receipt = parse_receipt(entry["receipt"])
    except InvalidInput as exc:
        raise InvalidInput(f"credential: evidence[0].{exc}") from None
    credential = Credential(receipt)
    _same(credential.to_json(), data, "")
    return credential


def receipt_of(data: bytes) -> Receipt:
    """The receipt a file holds, as a verifier takes one: a receipt, or a credential of :func:`credential_of`
    (read back by :func:`parse_credential`). Text that is neither JSON nor within a credential's bound, and any
    JSON without an ``@context``, is judged as a receipt, in the receipt reader's words. The web page's reader
    (api/web/js/vc.js) applies the same rule with the same messages."""
    if len(data) <= MAX_CREDENTIAL_BYTES:
        try:
            parsed = loads(data, limit=MAX_CREDENTIAL_BYTES, what="credential")
        except InvalidInput:
            parsed = None
        if is_credential(parsed):
            return parse_credential(parsed).receipt
    return parse_receipt(data)


def _same(expected: Any, given: Any, path: str) -> None:
    """Refuse the first member of ``given`` that is not ``expected``'s, named by its path."""
    if isinstance(expected, Mapping) and isinstance(given, Mapping):
        for key in given:
            if key not in expected:
                raise InvalidInput(f"credential: unknown member {path}{key}")
        for key, value in expected.items():
            if key not in given:
                raise InvalidInput(f"credential: missing member {path}{key}")
            _same(value, given[key], f"{path}{key}.")
        return
    if isinstance(expected, list) and isinstance(given, list) and len(expected) == len(given):
        for i, (e, g) in enumerate(zip(expected, given, strict=True)):
            _same(e, g, f"{path.rstrip('.')}[{i}].")
        return
    if type(expected) is not type(given) or expected != given:
        said = json.dumps(expected)
        shown = said if len(said) <= _SHOWN else said[:_SHOWN] + "..."
        where = path.rstrip(".")
        source = "eip712" + where[len(_EIP712) :] if where.startswith(_EIP712) else _MADE_FROM.get(where)
        made = (
            "" if source is None else f" (made from evidence[0].receipt's {source}: the one or the other was changed)"
        )
        raise InvalidInput(f"credential: {where} is not what its evidence bundle says: {shown}{made}")
