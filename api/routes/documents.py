"""Submission, status, notification, receipt, file, list and revocation routes: adapters from HTTP to the
service (api/service.py), answering its results as the response models of api/schemas.py."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from pydantic import ValidationError
from starlette.background import BackgroundTask
from starlette.datastructures import UploadFile

from docchain.api import metrics
from docchain.api.deps import (
    AdmissionDep,
    ApiKey,
    DocumentsDep,
    LifecycleDep,
    NotifierDep,
    RelayedWriteDep,
    SettingsDep,
)
from docchain.api.inputs import (
    MAX_INT64,
    anchoring_field,
    attachment,
    check_file_name,
    file_part,
    read_body,
    read_form,
    sent_file_name,
    submission_limit,
)
from docchain.api.lifecycle import FINAL, Anchoring, CopyState, State, reached
from docchain.api.openapi import BODY, CHAIN, RELAYED_WHY, problems_for
from docchain.api.problems import RETRY_AFTER_S, Problem, not_found
from docchain.api.schemas import (
    DocumentPage,
    DocumentStatus,
    DocumentSummary,
    IpfsCopyOut,
    RevocationAccepted,
    RevocationIn,
    RevocationRequest,
    RevocationStatus,
    SignerStatus,
    StorageAccepted,
    StorageCopyOut,
    SubmissionAccepted,
    SubmissionIn,
    SubmissionStatus,
    SupersederOut,
)
from docchain.api.service import Acceptance, Lifecycle, Signed, SignerView
from docchain.api.storage.replicas import Replicas
from docchain.api.store import CopyRecord, ListKey, Store, SubmissionRecord
from docchain.chain.errors import InvalidInput
from docchain.chain.sealed import key_from_text, key_to_text
from docchain.chain.typed_data import Registration, Revocation
from docchain.chain.values import parse_address, parse_hash32, parse_signature, to_hex
from docchain.chain.verify import Superseder

log = logging.getLogger("docchain.api.submissions")
router = APIRouter(prefix="/v1", tags=["documents"])

# An event stream's last event when the process stops before the submission is final: ``retry`` tells an
# EventSource to reconnect after that long (to another replica, or this one restarted).
SHUTDOWN_EVENT = (
    f"retry: {RETRY_AFTER_S * 1000}\nevent: shutdown\n"
    f'data: {{"retryAfter": {RETRY_AFTER_S}, "detail": "the server is stopping: reconnect to follow the submission"}}'
    "\n\n"
).encode()


def _validation(exc: ValidationError, where: str) -> RequestValidationError:
    errors = []
    for err in exc.errors():
        errors.append({**err, "loc": (where, *err.get("loc", ()))})
    return RequestValidationError(errors)


def submission_status_of(row: SubmissionRecord, head: int | None, lifecycle: Lifecycle) -> SubmissionStatus:
    status, confirmations = lifecycle.seen(row, head)
    return SubmissionStatus(
        id=row.id,
        docHash=row.doc_hash,
        signer=row.signer,
        state=status.value,
        txHash=row.tx_hash,
        blockNumber=row.block_number,
        blockHash=row.block_hash,
        timestamp=row.timestamp,
        confirmations=confirmations,
        stored=row.stored,
        error=row.error,
        anchoring=row.anchoring,
        merkleRoot=row.merkle_root,
        private=row.private,
    )


def signer_status(view: SignerView) -> SignerStatus:
    return SignerStatus(
        signer=view.signer,
        state=view.status.value,
        submissionId=view.submission_id,
        metadataHash=view.metadata_hash,
        supersedes=view.supersedes,
        txHash=view.tx_hash,
        blockNumber=view.block_number,
        blockHash=view.block_hash,
        timestamp=view.timestamp,
        confirmations=view.confirmations,
        revokedAt=view.revoked_at,
        error=view.error,
        anchoring=view.anchoring,
        merkleRoot=view.merkle_root,
        private=view.private,
        metadata=view.metadata,
    )


def superseder_out(superseder: Superseder) -> SupersederOut:
    return SupersederOut(docHash=to_hex(superseder.doc_hash), signers=list(superseder.signers))


def accepted_out(acceptance: Acceptance, replicas: Replicas) -> SubmissionAccepted:
    accepted, intake = acceptance.submission, acceptance.storage
    storage = None
    if intake is not None:
        ipfs = None
        if intake.cid is not None:
            key = None if intake.key is None else key_to_text(intake.key)
            sealed = intake.key is not None or intake.key_given_earlier
            ipfs = IpfsCopyOut(cid=intake.cid, sealed=sealed, key=key)
        storage = StorageAccepted(
            storedIn=replicas.primary.name, backends=replicas.names, ipfs=ipfs, keyGivenEarlier=intake.key_given_earlier
        )
    return SubmissionAccepted(
        id=accepted.id,
        docHash=accepted.doc_hash,
        signer=accepted.signer,
        state=accepted.state.value,
        statusUrl=f"/v1/submissions/{accepted.id}",
        eventsUrl=f"/v1/submissions/{accepted.id}/events",
        storage=storage,
    )


def copy_out(copy: CopyRecord) -> StorageCopyOut:
    return StorageCopyOut(
        backend=copy.backend,
        state=copy.state,
        locator=copy.locator or None,
        sealed=copy.sealed,
        size=copy.size,
        attempts=copy.attempts,
        error=copy.last_error,
    )


# ------------------------------------------------------------------ submit

# A submission is JSON, or multipart with the document to store: two content types for one body, which a
# FastAPI body parameter cannot declare, so the route reads the body itself and the document says so here.
SUBMIT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/SubmissionIn"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["submission"],
                    "properties": {
                        "submission": {"type": "string", "description": "the SubmissionIn JSON as text"},
                        "file": {"type": "string", "format": "binary", "description": "the document, to store"},
                        "anchoring": {
                            "type": "string",
                            "enum": ["direct", "merkle"],
                            "description": "as SubmissionIn.anchoring (the JSON's own field, when given, wins)",
                        },
                    },
                }
            },
        },
    }
}


async def signed_submission(request: Request) -> tuple[Signed, UploadFile | None]:
    """The submission a request carries, as JSON or as multipart with the document's file."""
    settings = request.app.state.settings
    upload: UploadFile | None = None
    form_anchoring: Anchoring | None = None
    content_type = request.headers.get("content-type", "")
    limit = submission_limit(settings.max_metadata_bytes)
    if content_type.startswith("multipart/form-data"):
        form = await read_form(request, part_limit=limit)
        text = form.get("submission")
        if not isinstance(text, str):
            raise InvalidInput("multipart submission needs a text field 'submission' holding the JSON")
        upload = file_part(form)
        form_anchoring = anchoring_field(form.get("anchoring"))
        raw: bytes | str = text
    elif content_type.startswith("application/json") or not content_type:
        raw = await read_body(request, limit, "the submission")
    else:
        raise Problem(
            415, "unsupported-media-type", "Unsupported media type", "send application/json or multipart/form-data"
        )
    try:
        body = SubmissionIn.model_validate_json(raw)
    except ValidationError as exc:
        raise _validation(exc, "body") from None
    reg = Registration.from_json(body.registration.model_dump())
    signature = parse_signature(body.signature)
    # the name the receipt will carry: the JSON's fileName, else the file part's name as it was sent
    if body.fileName is not None:
        name: str | None = check_file_name(body.fileName)
    else:
        name = None if upload is None else check_file_name(sent_file_name(upload), "the file part's name")
    anchoring = form_anchoring if body.anchoring is None else Anchoring(body.anchoring)
    return Signed(reg, signature, body.metadata, name, body.fileSize, body.public, anchoring, body.private), upload


SignedDep = Annotated[tuple[Signed, UploadFile | None], Depends(signed_submission)]


@router.post(
    "/documents",
    status_code=202,
    response_model=SubmissionAccepted,
    openapi_extra=SUBMIT_BODY,
    responses={
        200: {"model": SubmissionAccepted, "description": "already submitted: the existing submission"},
        **problems_for(401, 429, *BODY, *CHAIN, why=RELAYED_WHY),
    },
    summary="Submit a signed document (JSON, or multipart with the file to store)",
)
async def submit(admission: RelayedWriteDep, submission: SignedDep, documents: DocumentsDep) -> Response:
    signed, upload = submission
    try:
        acceptance = await documents.accept(signed, None if upload is None else upload.file, admission)
    finally:
        if upload is not None:
            await upload.close()
    # the model's own JSON, answered as it is: the route's hottest path skips FastAPI's revalidation of a
    # model it has just built (the OpenAPI document still comes from response_model)
    headers = {"Location": f"/v1/submissions/{acceptance.submission.id}"}
    if acceptance.storage is not None and acceptance.storage.key is not None:
        headers["Cache-Control"] = "no-store"  # the answer holds a document key
    return Response(
        accepted_out(acceptance, documents.replicas).model_dump_json(),
        status_code=202 if acceptance.created else 200,
        media_type="application/json",
        headers=headers,
    )


# ------------------------------------------------------------------ status and notification


_SUBMISSION_ID = re.compile(r"[0-9A-Za-z-]{1,64}")


async def _load(lifecycle: Lifecycle, submission_id: str) -> tuple[SubmissionRecord, int | None]:
    # an id is a short token of letters, digits and dashes: anything else is no submission, and does not reach
    # the database (PostgreSQL refuses a NUL in a text parameter with an error)
    if not _SUBMISSION_ID.fullmatch(submission_id):
        raise not_found(f"no submission {submission_id!r:.80}")
    row, head = await lifecycle.submission(submission_id)
    if row is None:
        raise not_found(f"no submission {submission_id}")
    return row, head


@router.get(
    "/submissions/{submission_id}",
    response_model=SubmissionStatus,
    responses=problems_for(404, 422, 503),
    summary="Submission status (long-poll)",
)
async def submission_status(
    submission_id: str,
    lifecycle: LifecycleDep,
    notifier: NotifierDep,
    settings: SettingsDep,
    wait: float = Query(0, ge=0, le=60, description="long-poll: seconds to wait for `until`"),
    until: str = Query(
        State.ANCHORED.value,
        pattern=f"^({State.SUBMITTED.value}|{State.ANCHORED.value}|{State.CONFIRMED.value})$",
        description="the state to wait for (failed and revoked also end the wait)",
    ),
) -> SubmissionStatus:
    goal = State(until)
    row, head = await _load(lifecycle, submission_id)
    if wait > 0 and not reached(lifecycle.seen(row, head)[0], goal):
        deadline = time.monotonic() + min(wait, settings.longpoll_max_s)
        async with notifier.watch(submission_id) as ev:
            # a stopping process answers with the state as it is (the client asks again, elsewhere or later)
            while not reached(lifecycle.seen(row, head)[0], goal) and not notifier.closing:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                ev.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ev.wait(), timeout=min(left, settings.reread_s))
                row, head = await _load(lifecycle, submission_id)
    return submission_status_of(row, head, lifecycle)


@router.get(
    "/submissions/{submission_id}/events",
    summary="Server-sent events: one `state` event per change, closes at confirmed / failed / revoked",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **problems_for(404, 422, 503)},
)
async def submission_events(
    submission_id: str, request: Request, lifecycle: LifecycleDep, notifier: NotifierDep, settings: SettingsDep
) -> StreamingResponse:
    row, head = await _load(lifecycle, submission_id)
    client = request.client.host if request.client else "?"

    async def stream() -> AsyncIterator[bytes]:
        nonlocal row, head
        metrics.SSE_CLIENTS.inc()
        log.info("sse connect", extra={"submission": submission_id, "client": client})
        last: tuple[str, int] | None = None
        try:
            async with notifier.watch(submission_id) as ev:
                while True:
                    current = submission_status_of(row, head, lifecycle)
                    key = (current.state, current.confirmations)
                    if key != last:
                        last = key
                        yield f"event: state\ndata: {current.model_dump_json()}\n\n".encode()
                    if current.state in FINAL:
                        return
                    if notifier.closing:  # the process is stopping: say so, and when to come back
                        yield SHUTDOWN_EVENT
                        return
                    ev.clear()
                    try:
                        await asyncio.wait_for(ev.wait(), timeout=settings.reread_s)
                    except TimeoutError:
                        if await request.is_disconnected():
                            return
                        yield b": keep-alive\n\n"
                    row, head = await _load(lifecycle, submission_id)
        finally:
            metrics.SSE_CLIENTS.dec()
            log.info("sse disconnect", extra={"submission": submission_id, "client": client})

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


# ------------------------------------------------------------------ documents


@router.get(
    "/documents/{doc_hash}",
    response_model=DocumentStatus,
    responses=problems_for(404, 422, 503),
    summary="Document status: every signer",
)
async def document_status(doc_hash: str, documents: DocumentsDep) -> DocumentStatus:
    doc = to_hex(parse_hash32(doc_hash, "docHash"))
    copies, signers = await documents.document(doc)
    return DocumentStatus(
        docHash=doc,
        stored=any(c.state is CopyState.STORED for c in copies),
        signers=[signer_status(v) for v in signers],
        storage=[copy_out(c) for c in copies],
        superseded_by=[superseder_out(x) for x in await documents.superseded_by(doc)],
    )


@router.get(
    "/documents/{doc_hash}/receipts/{signer}",
    response_class=JSONResponse,
    responses={
        200: {"content": {"application/json": {}}, "description": "the receipt (docs/receipt-format.md)"},
        **problems_for(404, 409, 422, *CHAIN, why={409: "the submission is not anchored yet: no receipt"}),
    },
    summary="The self-contained receipt of (docHash, signer)",
)
async def receipt(doc_hash: str, signer: str, documents: DocumentsDep) -> JSONResponse:
    doc = to_hex(parse_hash32(doc_hash, "docHash"))
    rec = await documents.receipt(doc, parse_address(signer, "signer"))
    name = (rec.file_name or doc[2:14]) + ".docchain.json"
    # a file to keep: its bytes are the receipt format's, not a response model's
    return JSONResponse(rec.to_json(), headers={"Content-Disposition": attachment(name)})


CONTENT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"application/octet-stream": {}},
        "headers": {
            "X-Docchain-Storage-Backend": {
                "description": "the backend that served the copy",
                "schema": {"type": "string"},
            },
            "X-Docchain-Sha256": {"description": "the document's SHA-256 (checked)", "schema": {"type": "string"}},
        },
    },
    **problems_for(
        403,
        404,
        422,
        500,
        502,
        503,
        why={
            403: "the document is stored sealed only, and no X-Docchain-Key came",
            502: "a storage backend failed otherwise (the detail names it)",
            500: "every copy read was altered: none is served",
            503: "every backend holding it is unavailable now",
        },
    ),
}


async def _content(doc_hash: str, documents: DocumentsDep, key: str | None) -> FileResponse:
    doc = to_hex(parse_hash32(doc_hash, "docHash"))
    secret = None if key is None else key_from_text(key.strip())
    fetched = await documents.content(doc, secret)
    name = await documents.store.file_name(doc)
    headers = {
        "X-Docchain-Sha256": doc,
        "X-Docchain-Storage-Backend": fetched.backend,
        "Content-Disposition": attachment(name or doc[2:14]),
    }
    # the spool file was read whole and matched the hash before the first byte goes out; it goes once sent
    return FileResponse(
        fetched.path,
        media_type="application/octet-stream",
        headers=headers,
        background=BackgroundTask(fetched.path.unlink, missing_ok=True),
    )


KeyHeader = Annotated[
    str | None,
    Header(
        alias="X-Docchain-Key",
        description="the key of a sealed IPFS copy (the receipt's storage.ipfs.key), to read that copy too",
    ),
]


@router.get(
    "/documents/{doc_hash}/content",
    summary="Download a stored document from the first backend holding an intact copy (hash checked)",
    response_class=FileResponse,
    responses=CONTENT_RESPONSES,
)
async def document_content(doc_hash: str, documents: DocumentsDep, key: KeyHeader = None) -> FileResponse:
    """The copies are tried in the configured order (``DOCCHAIN_STORAGE``); one that is missing, unreachable
    or altered is skipped for the next. ``X-Docchain-Storage-Backend`` names the one that served."""
    return await _content(doc_hash, documents, key)


@router.get(
    "/documents/{doc_hash}/file",
    summary="Download a stored document (deprecated: GET /v1/documents/{docHash}/content)",
    response_class=FileResponse,
    responses=CONTENT_RESPONSES,
    deprecated=True,
)
async def document_file(doc_hash: str, documents: DocumentsDep, key: KeyHeader = None) -> FileResponse:
    return await _content(doc_hash, documents, key)


def _time(value: str | None, what: str) -> int | None:
    if value is None or value == "":
        return None
    if value.isascii() and value.isdigit():  # (str.isdigit alone admits "²", which int() refuses)
        seconds = int(value[:20])  # past 19 digits it is out of range anyway: no 4,300-digit int() of a query
    else:
        try:
            seconds = int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
        except (ValueError, OverflowError):
            raise InvalidInput(f"{what} must be ISO-8601 or unix seconds, got {value!r:.40}") from None
    if seconds > MAX_INT64:  # the database compares BIGINTs: a wider number overflows there
        raise InvalidInput(f"{what} is out of range: at most {MAX_INT64} unix seconds")
    return seconds


# A cursor names the last record of a page by its place in the lists' order (api/store.py, ListKey), as
# "2:<timestamp>:<block>:<log index>:<leaf>" in base64url: a place stays meaningful whichever side, direct or
# Merkle, the next record comes from. The first cursors named a Registered event's row id (digits alone):
# they still read, as that event's place, while the event is indexed.
_CURSOR_V2 = re.compile(r"2:(\d{1,19}):(\d{1,19}):(\d{1,10}):([0-9a-f]{0,32})")
_MAX_CURSOR = 128


def _cursor_text(key: ListKey) -> str:
    text = f"2:{key.timestamp}:{key.block_number}:{key.log_index}:{key.leaf}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


async def _cursor(value: str | None, store: Store) -> ListKey | None:
    if not value:
        return None
    text = ""
    if len(value) <= _MAX_CURSOR:
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            text = base64.urlsafe_b64decode(value.encode() + b"==").decode()
    if match := _CURSOR_V2.fullmatch(text):
        ts, block, log = (int(match[i]) for i in (1, 2, 3))
        if max(ts, block, log) <= MAX_INT64:
            return ListKey(ts, block, log, match[4])
    elif text.isascii() and text.isdigit() and len(text) <= 19 and 0 < int(text) <= MAX_INT64:
        key = await store.key_of_event(int(text))
        if key is None:
            raise InvalidInput("cursor names a record that is no longer indexed (a reorg): start again without it")
        return key
    raise InvalidInput("cursor is not one this API issued")


@router.get(
    "/documents",
    response_model=DocumentPage,
    responses=problems_for(422, 503),
    summary="List records by signer and time, newest first (direct and Merkle-anchored, in one order)",
)
async def list_documents(
    lifecycle: LifecycleDep,
    signer: str | None = None,
    since: str | None = Query(None, description="ISO-8601 or unix seconds (inclusive)"),
    until: str | None = Query(None, description="ISO-8601 or unix seconds (exclusive)"),
    cursor: str | None = None,
    limit: int = Query(50, ge=1, le=500),
) -> DocumentPage:
    who = parse_address(signer, "signer") if signer else None
    start, end = _time(since, "since"), _time(until, "until")
    after = await _cursor(cursor, lifecycle.store)
    page = await lifecycle.store.records_page(who, start, end, after, limit)
    items = []
    for r in page.records:
        status, confirmations = lifecycle.record_status(r.revoked_at is not None, r.block_number, page.head)
        items.append(
            DocumentSummary(
                docHash=r.doc_hash,
                signer=r.signer,
                state=status.value,
                metadataHash=r.metadata_hash,
                txHash=r.tx_hash,
                blockNumber=r.block_number,
                timestamp=r.timestamp,
                confirmations=confirmations,
                revokedAt=r.revoked_at,
                anchoring=r.anchoring.value,
                merkleRoot=r.merkle_root,
                private=r.private,
            )
        )
    next_cursor = _cursor_text(page.records[-1].key) if page.more else None
    return DocumentPage(items=items, nextCursor=next_cursor)


# ------------------------------------------------------------------ revocation


@router.post(
    "/revocations",
    status_code=202,
    response_model=RevocationAccepted,
    dependencies=[ApiKey],
    responses={
        200: {"model": RevocationAccepted, "description": "already received"},
        # (FastAPI reads this body as JSON whatever its content type: no 415)
        **problems_for(
            400, 401, 404, 408, 409, 413, 422, 429, *CHAIN, why={409: "the record is already revoked", **RELAYED_WHY}
        ),
    },
    summary="Revoke a signature with an EIP-712 Revocation signed by the signer",
)
async def revoke(
    response: Response, admission: AdmissionDep, body: RevocationIn, documents: DocumentsDep
) -> RevocationAccepted:
    rev = Revocation.from_json(body.revocation.model_dump())
    state, created = await documents.revoke(rev, parse_signature(body.signature), admission)
    if not created:
        response.status_code = 200
    return RevocationAccepted(docHash=to_hex(rev.doc_hash), signer=rev.signer, nonce=rev.nonce, state=state.value)


@router.get(
    "/documents/{doc_hash}/revocations/{signer}",
    response_model=RevocationStatus,
    responses=problems_for(
        404, 422, 503, why={404: "no revocation of this document by this signer was requested here"}
    ),
    summary="A signer's revocation requests for a document, newest first (a failed one with its error)",
)
async def revocation_status(doc_hash: str, signer: str, lifecycle: LifecycleDep) -> RevocationStatus:
    doc = to_hex(parse_hash32(doc_hash, "docHash"))
    who = parse_address(signer, "signer")
    rows = await lifecycle.store.revocations_of(doc, who)
    if not rows:
        raise not_found(f"no revocation of {doc} by {who} was requested here")
    return RevocationStatus(
        docHash=doc,
        signer=who,
        revocations=[
            RevocationRequest(
                nonce=int(r.nonce), state=r.state.value, error=r.error, txHash=r.tx_hash, createdAt=r.created_at
            )
            for r in rows
        ],
    )
