"""Receipts the API hands out, checked before they are written beside a document: used by ``submit --wait``
and by ``docchain receipt``, which fetches one again (after an interrupted wait, say)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from docchain.chain.errors import InvalidInput
from docchain.chain.receipt import (
    Receipt,
    Storage,
    parse_receipt,
    parse_storage,
    read_receipt,
    receipt_path,
    write_receipt,
)
from docchain.chain.typed_data import recover
from docchain.chain.values import to_hex
from docchain.client.api_client import ApiClient
from docchain.client.errors import CliError, ExitCode, UsageError, VerificationFailed

ANCHORED = ("anchored", "confirmed", "revoked")


def check_targets(paths: list[Path], force: bool) -> None:
    """Refuse before any work to replace a receipt, unless ``force``."""
    for path in paths:
        target = receipt_path(path)
        if target.exists() and not force:
            raise UsageError(f"{target} already exists; pass --force to replace it")


def save(receipt: Receipt, target: Path, force: bool) -> Path:
    write_receipt(receipt, target, overwrite=force)
    return target


def fetch(
    client: ApiClient, doc_hash: bytes, signer: str, *, file_name: str | None = None, file_size: int | None = None
) -> Receipt:
    """The API's receipt for (``doc_hash``, ``signer``), refused unless it is for that document and its
    signature is that signer's. The signature need not be the one this run made: a submission sent again
    (after an interrupted ``submit --wait``) is answered with the first one, signed earlier by the same key."""
    receipt = parse_receipt(client.receipt(to_hex(doc_hash), signer))
    if (receipt.doc_hash, receipt.signer) != (doc_hash, signer):
        raise CliError("the API returned a receipt for another document or signer", ExitCode.UNAVAILABLE)
    try:
        by = recover(receipt.domain, receipt.registration, receipt.signature)
    except Exception as exc:  # a malformed signature: the receipt proves nothing
        raise VerificationFailed(f"the API's receipt carries an invalid signature: {exc}") from exc
    if by.lower() != signer.lower():
        raise VerificationFailed(f"the API's receipt is signed by {by}, not by {signer}")
    if file_name is not None:
        receipt = dataclasses.replace(receipt, file_name=file_name, file_size=file_size)
    return receipt


def storage_section(answer: Any) -> Storage | None:
    """The receipt's storage section from the API's 202 (``storage``: where the uploaded file went, with the
    key of a sealed IPFS copy), checked as a receipt reader will check it; None when no file was stored."""
    if not isinstance(answer, dict):
        return None
    ipfs = answer.get("ipfs")
    try:
        return parse_storage({"backends": answer.get("backends"), "ipfs": ipfs})
    except InvalidInput as exc:
        raise CliError(f"the API's answer about the stored file is malformed: {exc}", ExitCode.UNAVAILABLE) from exc


def keep_storage(receipt: Receipt, replaced: Path) -> Receipt:
    """``receipt`` with the storage section of the receipt it replaces, when that one is of the same document:
    the API does not know a sealed copy's key, so a receipt fetched again must not lose it."""
    try:
        old = read_receipt(replaced)
    except InvalidInput:  # none there, or not a receipt: nothing to keep
        return receipt
    if old.storage is None or old.doc_hash != receipt.doc_hash or receipt.storage is not None:
        return receipt
    return dataclasses.replace(receipt, storage=old.storage)


def wait_anchored(client: ApiClient, doc: str, signer: str, submission: str | None, until: float) -> dict[str, Any]:
    """Wait until the signer's record of ``doc`` is anchored (or failed, or ``until`` passes), following
    its submission when the API has one; the signer's status as the API last said it."""
    while True:
        signers = client.document(doc).get("signers", [])
        entry: dict[str, Any] = next((s for s in signers if s.get("signer") == signer), {})
        if not entry:
            raise VerificationFailed(f"{signer} has not signed {doc} (docchain status {doc} lists who has)")
        sid = submission or entry.get("submissionId")
        if entry.get("state") in ANCHORED or entry.get("state") == "failed" or time.monotonic() >= until:
            return entry
        if sid:
            state = client.wait_for(str(sid), until=until)
            if state.get("state") not in ANCHORED:
                return {**entry, **state}
            submission = str(sid)
        else:  # a record the API learnt from the chain: nothing to long-poll, and it is anchored already
            return entry
