"""Verification of a (document, signer) claim against the chain — the algorithm of docs/protocol.md.

Needs only a :class:`Registry` bound to any node: the API and the CLI's independent ``--rpc`` mode run
this same code. Each step yields a :class:`Check`; :meth:`VerificationReport.raise_for_verdict` turns a
failed one into a :class:`VerificationError` naming the step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from docchain.chain.errors import InvalidInput, VerificationError
from docchain.chain.receipt import Receipt
from docchain.chain.registry import Record, Registry
from docchain.chain.sender import with_retries
from docchain.chain.typed_data import Domain, Registration, recover
from docchain.chain.values import to_hex, utc_text

Verdict = Literal["valid", "invalid", "unknown"]


class ChainView(Protocol):
    """The chain reads verification needs. :class:`LiveView` asks the node on each call; the API passes a
    snapshot taken at one head (so a service can serve many verifications from one set of reads)."""

    @property
    def domain(self) -> Domain: ...

    def record(self, doc_hash: bytes, signer: str) -> Record: ...

    def latest_block(self) -> int: ...

    def block_hash(self, number: int) -> bytes: ...

    def is_valid_registration(self, reg: Registration, signature: bytes) -> bool: ...


class LiveView:
    """:class:`ChainView` over a :class:`Registry`: every read goes to the node."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    @property
    def domain(self) -> Domain:
        return self.registry.domain

    def record(self, doc_hash: bytes, signer: str) -> Record:
        return self.registry.record(doc_hash, signer)

    def latest_block(self) -> int:
        return int(with_retries(lambda: self.registry.w3.eth.block_number, "eth_blockNumber"))

    def block_hash(self, number: int) -> bytes:
        block = with_retries(lambda: self.registry.w3.eth.get_block(number), "eth_getBlockByNumber")
        return bytes(block["hash"])

    def is_valid_registration(self, reg: Registration, signature: bytes) -> bool:
        return self.registry.is_valid_registration(reg, signature)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class VerificationReport:
    doc_hash: bytes
    signer: str | None
    checks: list[Check] = field(default_factory=list)
    record: Record | None = None
    confirmations: int = 0

    @property
    def verdict(self) -> Verdict:
        if self.record is None or not self.record.exists:
            failed_before_chain = any(not c.ok for c in self.checks if c.name in ("hash", "signature"))
            return "invalid" if failed_before_chain else "unknown"
        return "valid" if all(c.ok for c in self.checks) else "invalid"

    def raise_for_verdict(self) -> None:
        for check in self.checks:
            if not check.ok:
                raise VerificationError(check.name, check.detail)

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "docHash": to_hex(self.doc_hash),
            "signer": self.signer,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
            "confirmations": self.confirmations,
            "record": None
            if self.record is None
            else {
                "registeredAt": self.record.registered_at,
                "blockNumber": self.record.block_number,
                "revokedAt": self.record.revoked_at or None,
            },
        }


def verify(
    registry: Registry | ChainView,
    *,
    doc_hash: bytes,
    signer: str | None,
    receipt: Receipt | None = None,
    confirmations_required: int = 1,
) -> VerificationReport:
    """Check that ``signer`` signed the document whose SHA-256 is ``doc_hash``.

    With a ``receipt``, its signature and anchor are checked too, and ``signer`` defaults to its signer.
    """
    view: ChainView = LiveView(registry) if isinstance(registry, Registry) else registry
    if receipt is not None:
        signer = signer or receipt.signer
    if signer is None:
        raise InvalidInput("a signer (or a receipt naming one) is needed to verify")
    report = VerificationReport(doc_hash=doc_hash, signer=signer)
    add = report.checks.append

    if receipt is None:
        add(Check("hash", True, f"document SHA-256 is {to_hex(doc_hash)}"))
    elif receipt.doc_hash != doc_hash:
        add(
            Check(
                "hash",
                False,
                f"the file hashes to {to_hex(doc_hash)}, the receipt is for {to_hex(receipt.doc_hash)}",
            )
        )
    else:
        add(Check("hash", True, f"the file matches the receipt ({to_hex(doc_hash)})"))

    if receipt is not None:
        add(_signature_check(view, receipt, signer))

    report.record = record = view.record(doc_hash, signer)
    if not record.exists:
        add(
            Check(
                "record",
                False,
                f"no record of {signer} signing {to_hex(doc_hash)} on chain {view.domain.chain_id}",
            )
        )
        return report
    latest = view.latest_block()
    add(_record_check(view, record, receipt))

    report.confirmations = max(0, latest - record.block_number + 1)
    add(
        Check(
            "confirmations",
            report.confirmations >= confirmations_required,
            f"{report.confirmations} confirmation(s), {confirmations_required} required",
        )
    )
    add(
        Check("revocation", False, f"revoked at {_utc(record.revoked_at)}")
        if record.revoked
        else Check("revocation", True, "not revoked")
    )
    return report


def _signature_check(view: ChainView, receipt: Receipt, signer: str) -> Check:
    if receipt.domain != view.domain:
        return Check(
            "signature",
            False,
            f"the receipt is bound to chain {receipt.domain.chain_id} / {receipt.domain.verifying_contract}, "
            f"the node serves chain {view.domain.chain_id} / {view.domain.verifying_contract}",
        )
    if receipt.signer != signer:
        return Check("signature", False, f"the receipt was signed by {receipt.signer}, not {signer}")
    try:
        if recover(receipt.domain, receipt.registration, receipt.signature) == signer:
            return Check("signature", True, f"EIP-712 signature recovers {signer}")
    except InvalidInput:
        pass  # not a plain ECDSA signature: a contract wallet may still accept it
    if view.is_valid_registration(receipt.registration, receipt.signature):
        return Check("signature", True, f"contract wallet {signer} accepts the signature (ERC-1271)")
    return Check("signature", False, f"the signature is not {signer}'s")


def _record_check(view: ChainView, record: Record, receipt: Receipt | None) -> Check:
    if receipt is None:
        return Check("record", True, f"recorded in block {record.block_number} at {_utc(record.registered_at)}")
    if record.block_number != receipt.block_number:
        return Check(
            "record",
            False,
            f"recorded in block {record.block_number}, the receipt says {receipt.block_number}",
        )
    if view.block_hash(record.block_number) != receipt.block_hash:
        return Check("record", False, f"block {record.block_number} is not the receipt's block (reorganised?)")
    return Check("record", True, f"recorded in block {record.block_number} ({to_hex(receipt.block_hash)})")


def _utc(timestamp: int) -> str:
    """A block timestamp for people, with the raw value a script can match."""
    return f"{utc_text(timestamp)} (unix {timestamp})"
