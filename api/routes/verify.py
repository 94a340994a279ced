"""Verification: by uploaded file or by hash, optionally with an expected signer or a receipt.

The chain is asked (chain/verify.py's algorithm, the same one the CLI runs with ``--rpc``); the index only
says which signers to check when none is given.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from docchain.api.chainctx import Bound
from docchain.api.chainview import Snapshot
from docchain.api.problems import Problem
from docchain.api.responses import FastJSONResponse
from docchain.api.routes.documents import _validation, signer_statuses
from docchain.api.schemas import VerifyIn, VerifyOut
from docchain.chain.errors import InvalidInput
from docchain.chain.hashing import sha256_stream
from docchain.chain.receipt import Receipt, parse_receipt
from docchain.chain.registry import Record
from docchain.chain.typed_data import Registration
from docchain.chain.values import parse_address, parse_hash32, to_hex
from docchain.chain.verify import Check, VerificationReport, verify

router = APIRouter(prefix="/v1", tags=["verify"])


class _NeedsLive(Exception):
    pass


class _Snapshot(Snapshot):
    def is_valid_registration(self, reg: Registration, signature: bytes) -> bool:
        raise _NeedsLive


async def _from_snapshot(
    chain: Bound, doc_hash: bytes, candidates: list[str], receipt: Receipt | None, confirmations: int
) -> list[VerificationReport]:
    """chain/verify.py's checks against reads made at the node's current head (read after the request
    arrived); records and block hashes come from the per-head cache (see api/chainview.py)."""
    if not candidates:
        return []
    heads = chain.heads
    head = await heads.head()
    records: dict[tuple[bytes, str], Record] = {}
    hashes: dict[int, bytes | None] = {}
    for who in candidates:
        record = records[(doc_hash, who)] = await heads.record(head, doc_hash, who)
        if receipt is not None and record.exists and record.block_number == receipt.block_number:
            hashes[record.block_number] = await heads.block_hash(head, record.block_number)
    view = _Snapshot(chain.domain, head, records, hashes)
    return [
        verify(view, doc_hash=doc_hash, signer=who, receipt=receipt, confirmations_required=confirmations)
        for who in candidates
    ]


VERIFY_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/VerifyIn"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "hashed here, not stored"},
                        "signer": {"type": "string"},
                        "receipt": {"type": "string", "description": "receipt JSON as text"},
                        "signers": {"type": "boolean", "description": "list every signer on record"},
                    },
                }
            },
        },
    }
}


@router.post(
    "/verify",
    response_model=VerifyOut,
    openapi_extra=VERIFY_BODY,
    summary="Verify a document (file or hash), optionally against a signer or a receipt",
)
async def verify_document(request: Request) -> JSONResponse:
    state = request.app.state  # no dependency solving on this hot path (see submit)
    settings, db, chainctx = state.settings, state.db, state.chain
    chain = await chainctx.bound()
    content_type = request.headers.get("content-type", "")
    receipt_data: Any = None
    with_signers: bool | None = None
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=8, max_part_size=256 * 1024)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput("multipart verify needs a file part 'file'")
        try:
            doc_hash = await asyncio.to_thread(sha256_stream, upload.file)
        finally:
            await upload.close()
        signer_text = form.get("signer")
        signer = parse_address(signer_text, "signer") if isinstance(signer_text, str) and signer_text else None
        receipt_text = form.get("receipt")
        if isinstance(receipt_text, str) and receipt_text:
            receipt_data = receipt_text
        if isinstance(wanted := form.get("signers"), str):
            with_signers = wanted.lower() in ("1", "true", "yes")
    elif content_type.startswith("application/json") or not content_type:
        try:
            body = VerifyIn.model_validate_json(await request.body())
        except ValidationError as exc:
            raise _validation(exc, "body") from None
        doc_hash = parse_hash32(body.docHash, "docHash")
        signer = parse_address(body.signer, "signer") if body.signer else None
        receipt_data = body.receipt
        with_signers = body.signers
    else:
        raise Problem(
            415, "unsupported-media-type", "Unsupported media type", "send application/json or multipart/form-data"
        )
    receipt = parse_receipt(receipt_data) if receipt_data is not None else None

    doc = to_hex(doc_hash)
    if signer is None and receipt is None:
        candidates = [
            r[0]
            for r in await db.query(
                "SELECT signer FROM events WHERE doc_hash = :doc AND kind = 'Registered' ORDER BY id", {"doc": doc}
            )
        ]
    else:
        candidates = [signer or receipt.signer]  # type: ignore[union-attr]

    try:
        reports = await _from_snapshot(chain, doc_hash, candidates, receipt, settings.confirmations)
    except _NeedsLive:  # a contract wallet's signature: ask the node (ERC-1271) on the live path
        reports = [
            await chainctx.run(
                verify,
                chain.registry,
                doc_hash=doc_hash,
                signer=who,
                receipt=receipt,
                confirmations_required=settings.confirmations,
            )
            for who in candidates
        ]
    if with_signers is None:
        with_signers = signer is None and receipt is None
    # Every signer on record is one more indexed read: only when asked, or when the question was "who signed?"
    signers = (await signer_statuses(db, doc))[0] if with_signers else None
    if not reports:
        verdict = "unknown"
        checks = [
            Check("hash", True, f"document SHA-256 is {doc}"),
            Check("record", False, f"no signer of {doc} is known on chain {chain.domain.chain_id}"),
        ]
        shown_signer = None
    else:
        best = next((r for r in reports if r.verdict == "valid"), reports[0])
        verdict, checks, shown_signer = best.verdict, best.checks, best.signer
    return FastJSONResponse(
        {
            "verdict": verdict,
            "docHash": doc,
            "signer": shown_signer,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in checks],
            "signers": signers,
            "reports": [r.to_json() for r in reports],
        }
    )
