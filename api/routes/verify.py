"""Verification: by uploaded file or by hash, optionally with an expected signer or a receipt.

The chain answers (chain/verify.py's algorithm, the same one the CLI runs with ``--rpc``), read at one
head through the per-head cache of api/chainview.py. The service trusts its own configured registry: a
receipt naming another one fails at the registry step. The index only says which signers to try when the
question names none.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from docchain.api.openapi import BODY, CHAIN, problems_for
from docchain.api.problems import Problem, too_large
from docchain.api.responses import FastJSONResponse
from docchain.api.routes.documents import _validation, signer_status
from docchain.api.schemas import VerifyIn, VerifyOut
from docchain.chain import receipt as receipt_format
from docchain.chain.errors import InvalidInput
from docchain.chain.hashing import sha256_stream
from docchain.chain.values import parse_address, parse_hash32

router = APIRouter(prefix="/v1", tags=["verify"])

# A receipt is at most 64 KiB; sent as a JSON string its escapes may grow it, hence the margin.
BODY_LIMIT = 4 * receipt_format.MAX_BYTES


def _plain(value: Any) -> Any:
    """A number the strict reader kept as written (Decimal for 1.0) as pydantic expects it; pydantic then
    refuses what is not the field's type."""
    return float(value) if isinstance(value, Decimal) else value


VERIFY_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": VerifyIn.model_json_schema(ref_template="#/components/schemas/{model}")},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "hashed here, not stored"},
                        "signer": {"type": "string"},
                        "receipt": {"type": "string", "description": "receipt JSON as text"},
                        "signers": {
                            "type": "string",
                            "description": "1, true or yes (any case): list every signer on record; else not",
                        },
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
    responses=problems_for(*BODY, *CHAIN),
    summary="Verify a document (file or hash), optionally against a signer or a receipt",
)
async def verify_document(request: Request) -> JSONResponse:
    state = request.app.state  # no dependency solving on this hot path (see submit)
    await state.chain.bound()  # (503 while the node is away, before the body is read)
    content_type = request.headers.get("content-type", "")
    receipt_data: dict[str, Any] | str | None = None
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
        # Read as receipts are read, so an inline receipt keeps its repeated keys and its numbers as written
        # for the strict reader (pydantic would keep the last of two keys and turn 1.0 into 1).
        raw = await request.body()
        if len(raw) > BODY_LIMIT:
            raise too_large(f"a verify request's JSON body is at most {BODY_LIMIT} bytes", BODY_LIMIT)
        data = receipt_format.loads(raw, limit=BODY_LIMIT, what="the request body")
        if not isinstance(data, dict):
            raise InvalidInput("the request body must be a JSON object")
        if len(receipt_format.keys_as_written(data)) != len(data):
            raise InvalidInput("the request body repeats a field")
        receipt_data = data.get("receipt")
        if receipt_data is not None and not isinstance(receipt_data, dict | str):
            raise InvalidInput("receipt must be a receipt's JSON object or its text")
        try:
            body = VerifyIn.model_validate({k: _plain(v) for k, v in data.items() if k != "receipt"})
        except ValidationError as exc:
            raise _validation(exc, "body") from None
        doc_hash = parse_hash32(body.docHash, "docHash")
        signer = parse_address(body.signer, "signer") if body.signer else None
        with_signers = body.signers
    else:
        raise Problem(
            415, "unsupported-media-type", "Unsupported media type", "send application/json or multipart/form-data"
        )

    verdict, views = await state.documents.verify(doc_hash, signer, receipt_data, with_signers)
    signers = None if views is None else [signer_status(v).model_dump() for v in views]
    return FastJSONResponse({**verdict.to_json(), "signers": signers})
