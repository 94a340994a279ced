"""Receipts the API hands out, checked before they are written beside a document: used by ``submit --wait``
and by ``docchain receipt``, which fetches one again (after an interrupted wait, say).

A private submission's salt (docs/protocol.md, "Private mode") never reaches the API, so its receipt is completed
here: the salt is written beside the document (``FILE.docchain.salt``) before the submission is sent, so that no
interruption loses it, put into the receipt once the receipt is fetched, and the salt file removed once the
receipt holds it."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from docchain.chain.errors import InvalidInput
from docchain.chain.files import read_bounded
from docchain.chain.hashing import SALT_BYTES
from docchain.chain.receipt import (
    Private,
    Receipt,
    Storage,
    parse_receipt,
    parse_storage,
    read_receipt,
    receipt_path,
    write_receipt,
)
from docchain.chain.typed_data import recover
from docchain.chain.values import parse_hash32, to_hex
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
    client: ApiClient,
    doc_hash: bytes,
    signer: str,
    *,
    file_name: str | None = None,
    file_size: int | None = None,
    private: Private | None = None,
) -> Receipt:
    """The API's receipt for (``doc_hash``, ``signer``), refused unless it is for that document and its
    signature is that signer's. The signature need not be the one this run made: a submission sent again
    (after an interrupted ``submit --wait``) is answered with the first one, signed earlier by the same key.
    ``private``: the opening of a private submission, whose commitment ``doc_hash`` is; the receipt gets it."""
    receipt = parse_receipt(client.receipt(to_hex(doc_hash), signer))
    if private is not None:
        receipt = with_private(receipt, private)
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


SALT_SUFFIX = ".docchain.salt"
_SALT_FORMAT = 1
MAX_SALT_FILE_BYTES = 4096  # its JSON holds two hashes


def salt_path(document: Path) -> Path:
    """Where a private submission's salt waits for its receipt: beside the document, ``NAME.docchain.salt``."""
    return document.with_name(document.name + SALT_SUFFIX)


def with_private(receipt: Receipt, private: Private) -> Receipt:
    """``receipt`` (the API's, which cannot know the salt) completed with the opening of its commitment, refused
    unless the opening is that of the receipt's signed docHash."""
    if private.commitment != receipt.doc_hash:
        raise CliError(
            f"the API's receipt is of docHash {to_hex(receipt.doc_hash)}, not of this document's commitment "
            f"{to_hex(private.commitment)}",
            ExitCode.UNAVAILABLE,
        )
    return dataclasses.replace(receipt, private=private)


def open_private(document: Path, sha256: bytes, *, force: bool) -> Private:
    """The opening a private submission of ``document`` commits to: the salt kept beside it by an earlier
    submission of the same bytes (so that submitting again asks for the same commitment, and gets the first
    submission's answer), or a new random salt written there before anything is sent.

    A salt file of other bytes (the document changed since) may be the only copy of that submission's salt: it is
    replaced only with ``force``."""
    path = salt_path(document)
    kept = _read_salt(path)
    if kept is not None and kept.sha256 == sha256:
        return kept
    if path.exists() and not force:
        raise UsageError(
            f"{path} holds the salt of another private submission of {document.name} (its bytes have changed "
            "since, or the file is not a salt file); fetch that receipt first (docchain receipt), or pass --force "
            "to replace it"
        )
    private = Private(sha256, os.urandom(SALT_BYTES))
    text = json.dumps(
        {
            "docchainSalt": _SALT_FORMAT,
            "sha256": to_hex(sha256),
            "salt": to_hex(private.salt),
            "docHash": to_hex(private.commitment),
        },
        indent=2,
    )
    # created private to the user: with the file, the salt shows which record on chain is this document's
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text + "\n")
    return private


def pending_private(document: Path | None, sha256: bytes, receipt_file: Path | None = None) -> Private | None:
    """The opening of a private submission of ``document`` (whose bytes hash to ``sha256``) that a receipt is
    fetched for: from its salt file, else from the private receipt it already has at ``receipt_file``; None for a
    public document. ``docchain receipt FILE`` asks the API for ``opening.commitment`` when there is one."""
    if document is not None:
        kept = _read_salt(salt_path(document))
        if kept is not None and kept.sha256 == sha256:
            return kept
    if receipt_file is not None:
        try:
            old = read_receipt(receipt_file)
        except InvalidInput:
            return None
        if old.private is not None and old.private.sha256 == sha256:
            return old.private
    return None


def settle_private(document: Path, receipt: Receipt) -> None:
    """Remove the salt file once ``receipt``, written, holds its salt: the receipt is the one place it is kept."""
    path = salt_path(document)
    kept = _read_salt(path)
    if kept is not None and receipt.private == kept:
        path.unlink(missing_ok=True)


def _read_salt(path: Path) -> Private | None:
    try:
        data = json.loads(read_bounded(path, MAX_SALT_FILE_BYTES, "salt file"))
        if data.get("docchainSalt") != _SALT_FORMAT:
            return None
        private = Private(parse_hash32(data["sha256"], "sha256"), parse_hash32(data["salt"], "salt"))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, InvalidInput):
        return None  # absent or not a salt file: open_private will not replace it without --force
    return private


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


# The API has no long-poll for the evidence capture; its indexer captures within a poll interval of the record's
# confirmations, so twice a second is prompt without loading it
EVIDENCE_POLL_S = 0.5


def wait_evidence(client: ApiClient, doc: str, signer: str, until: float, progress: Callable[[int], None]) -> bool:
    """Wait until the API's receipt of ``doc`` by ``signer`` carries its evidence bundle, which the service captures
    once the record has its confirmations; ``progress`` is told the record's confirmations as the API counts them.
    Whether the bundle came before ``until``."""
    while True:
        if "evidence" in client.receipt(doc, signer):
            return True
        if time.monotonic() >= until:
            return False
        entry: dict[str, Any] = next(
            (s for s in client.document(doc).get("signers", []) if s.get("signer") == signer), {}
        )
        progress(int(entry.get("confirmations") or 0))
        time.sleep(EVIDENCE_POLL_S)
