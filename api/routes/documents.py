"""Submission, status, notification, receipt, file, list and revocation routes."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError
from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from starlette.datastructures import UploadFile

from docchain.api import metrics
from docchain.api.db import Database, EventRow, RevocationRow, Submission, Transaction, new_id, now
from docchain.api.deps import (
    AdmissionDep,
    ApiKey,
    ChainDep,
    DatabaseDep,
    NotifierDep,
    PipelineDep,
    RegistryDep,
    SettingsDep,
    StorageDep,
    require_api_key,
)
from docchain.api.indexing import HEAD, chain_head
from docchain.api.inputs import (
    MAX_INT64,
    attachment,
    check_file_name,
    file_part,
    read_body,
    read_form,
    sent_file_name,
    submission_limit,
    too_large,
)
from docchain.api.openapi import BODY, CHAIN, RELAYED_WHY, problems_for
from docchain.api.problems import RETRY_AFTER_S, Problem, conflict, not_found
from docchain.api.responses import FastJSONResponse
from docchain.api.schemas import (
    DocumentPage,
    DocumentStatus,
    RevocationAccepted,
    RevocationIn,
    RevocationStatus,
    SubmissionAccepted,
    SubmissionIn,
    SubmissionStatus,
)
from docchain.api.worker import registration_of
from docchain.chain.errors import InvalidInput, RegistrationNotFound
from docchain.chain.receipt import build_receipt
from docchain.chain.registry import RegistryEvent
from docchain.chain.typed_data import Registration, Revocation, canonical_metadata, metadata_hash, recover
from docchain.chain.values import parse_address, parse_hash32, parse_hex, parse_signature, to_hex

log = logging.getLogger("docchain.api.submissions")
router = APIRouter(prefix="/v1", tags=["documents"])

FINAL = ("confirmed", "failed", "revoked")
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


def _confirmations(head: int | None, block: int | None) -> int:
    if head is None or block is None:
        return 0
    return max(0, head - block + 1)


def submission_json(row: Submission, head: int | None) -> dict[str, Any]:
    return {
        "id": row.id,
        "docHash": row.doc_hash,
        "signer": row.signer,
        "state": row.state,
        "txHash": row.tx_hash,
        "blockNumber": row.block_number,
        "blockHash": row.block_hash,
        "timestamp": row.timestamp,
        "confirmations": _confirmations(head, row.block_number)
        if row.state in ("anchored", "confirmed", "revoked")
        else 0,
        "stored": row.stored,
        "error": row.error,
    }


def _accepted(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "docHash": row["doc_hash"],
        "signer": row["signer"],
        "state": row["state"],
        "statusUrl": f"/v1/submissions/{row['id']}",
        "eventsUrl": f"/v1/submissions/{row['id']}/events",
    }


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
                    },
                }
            },
        },
    }
}


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
async def submit(request: Request) -> JSONResponse:
    # the app's services straight from app.state: on the hottest route, FastAPI's dependency solving for
    # seven providers cost more than the signature recovery
    await require_api_key(request)  # called here rather than as a route dependency (same check, same 401)
    admission = await request.app.state.limits.admit(request)  # the relayer pays: its limits (api/limits.py)
    state = request.app.state
    settings, db, chainctx, storage = state.settings, state.db, state.chain, state.storage
    pipeline, outbox = state.pipeline, state.outbox
    chain = await chainctx.bound()
    upload: UploadFile | None = None
    content_type = request.headers.get("content-type", "")
    limit = submission_limit(settings.max_metadata_bytes)
    if content_type.startswith("multipart/form-data"):
        form = await read_form(request, part_limit=limit)
        text = form.get("submission")
        if not isinstance(text, str):
            raise InvalidInput("multipart submission needs a text field 'submission' holding the JSON")
        upload = file_part(form)
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
    if body.metadata is not None:
        size = len(canonical_metadata(body.metadata).encode())
        if size > settings.max_metadata_bytes:
            raise too_large(
                f"metadata is {size} bytes of canonical JSON; the limit is {settings.max_metadata_bytes} "
                "(DOCCHAIN_MAX_METADATA_BYTES)",
                settings.max_metadata_bytes,
            )
        if metadata_hash(body.metadata) != reg.metadata_hash:
            raise InvalidInput("metadataHash is not the keccak256 of the canonical metadata JSON")
    # the name the receipt will carry: the JSON's fileName, else the file part's name as it was sent
    if body.fileName is not None:
        name: str | None = check_file_name(body.fileName)
    else:
        name = None if upload is None else check_file_name(sent_file_name(upload), "the file part's name")
    if reg.deadline <= int(time.time()):
        raise InvalidInput(f"the signature's deadline ({reg.deadline}) has already passed")
    ecdsa = await _check_signature(chainctx, chain, reg, signature)
    charge = await admission.charge_submission(to_hex(reg.doc_hash), reg.signer)  # a duplicate spends nothing

    file_size = body.fileSize
    if upload is not None:
        file_size = await chain_run_storage(request, storage, reg.doc_hash, upload)

    doc, signer = to_hex(reg.doc_hash), reg.signer
    created_at = now()
    row = {
        "id": new_id(),
        "doc_hash": doc,
        "signer": signer,
        "metadata_hash": to_hex(reg.metadata_hash),
        "supersedes": to_hex(reg.supersedes),
        "deadline": str(reg.deadline),
        "signature": to_hex(signature),
        "metadata_json": None if body.metadata is None else canonical_metadata(body.metadata),
        "stored": upload is not None,
        "file_name": name,
        "file_size": file_size,
        "state": "pending",
        "attempts": 0,
        "created_at": created_at,
        "updated_at": created_at,
        "client_id": admission.client,
    }
    stored, created = await outbox.add(row)
    sid = stored["id"]
    if created:
        metrics.SUBMISSIONS.inc()
        log.info(
            "submission accepted", extra={"submission": sid, "doc": doc, "signer": signer, "stored": row["stored"]}
        )
        pipeline.submitted(sid if ecdsa else None)
        return FastJSONResponse(_accepted(stored), status_code=202, headers={"Location": f"/v1/submissions/{sid}"})
    await charge.refund()  # accepted meanwhile by another request: a duplicate after all
    if upload is not None and not stored["stored"]:
        await db.execute(Submission.__table__.update().where(Submission.id == sid).values(stored=True))
        stored["stored"] = True
    return JSONResponse(_accepted(stored), status_code=200, headers={"Location": f"/v1/submissions/{sid}"})


async def chain_run_storage(request: Request, storage: Any, doc_hash: bytes, upload: UploadFile) -> int:
    try:
        return int(await asyncio.to_thread(storage.put, doc_hash, upload.file))
    finally:
        await upload.close()


async def _existing(db: Database, doc: str, signer: str) -> Submission | None:
    async with db.read() as s:
        return (
            await s.scalars(select(Submission).where(Submission.doc_hash == doc, Submission.signer == signer))
        ).first()


async def _check_signature(chainctx: Any, chain: Any, reg: Registration, signature: bytes) -> bool:
    """ECDSA recovery first (~0.1 ms, no I/O); a contract wallet is asked on chain (ERC-1271) in a thread.
    Returns whether the signature is the signer's ECDSA signature (False: a contract wallet accepts it)."""
    recovered = None
    if len(signature) == 65:
        try:
            recovered = recover(chain.domain, reg, signature)
        except InvalidInput:
            recovered = None
    if recovered == reg.signer:
        return True
    if await chainctx.run(chain.registry.is_valid_registration, reg, signature):
        return False
    if recovered is not None:
        raise Problem(
            422,
            "signer-mismatch",
            "Signature does not match the signer",
            f"the signature recovers {recovered}, not the signer {reg.signer}",
            recovered=recovered,
        )
    raise Problem(
        422,
        "invalid-signature",
        "Invalid signature",
        f"the signature is not a valid EIP-712 signature by {reg.signer} for this registry",
    )


# ------------------------------------------------------------------ status and notification


_SUBMISSION_ID = re.compile(r"[0-9A-Za-z-]{1,64}")


async def _load(db: Database, submission_id: str) -> tuple[Submission, int | None]:
    # an id is a short token of letters, digits and dashes: anything else is no submission, and does not reach
    # the database (PostgreSQL refuses a NUL in a text parameter with an error, which was a 500)
    if not _SUBMISSION_ID.fullmatch(submission_id):
        raise not_found(f"no submission {submission_id!r:.80}")
    async with db.read() as s:
        row = await s.get(Submission, submission_id)
        if row is None:
            raise not_found(f"no submission {submission_id}")
        return row, await chain_head(s)


@router.get(
    "/submissions/{submission_id}",
    response_model=SubmissionStatus,
    responses=problems_for(404, 422, 503),
    summary="Submission status (long-poll)",
)
async def submission_status(
    submission_id: str,
    db: DatabaseDep,
    notifier: NotifierDep,
    settings: SettingsDep,
    wait: float = Query(0, ge=0, le=60, description="long-poll: seconds to wait for `until`"),
    until: str = Query(
        "anchored",
        pattern="^(submitted|anchored|confirmed)$",
        description="the state to wait for (failed and revoked also end the wait)",
    ),
) -> JSONResponse:
    order = ["pending", "submitted", "anchored", "confirmed"]
    row, head = await _load(db, submission_id)

    def reached(r: Submission) -> bool:
        return r.state in ("failed", "revoked") or (r.state in order and order.index(r.state) >= order.index(until))

    if wait > 0 and not reached(row):
        deadline = time.monotonic() + min(wait, settings.longpoll_max_s)
        async with notifier.watch(submission_id) as ev:
            # a stopping process answers with the state as it is (the client asks again, elsewhere or later)
            while not reached(row) and not notifier.closing:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                ev.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ev.wait(), timeout=min(left, 2.0))
                row, head = await _load(db, submission_id)
    return JSONResponse(submission_json(row, head))


@router.get(
    "/submissions/{submission_id}/events",
    summary="Server-sent events: one `state` event per change, closes at confirmed / failed / revoked",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **problems_for(404, 422, 503)},
)
async def submission_events(
    submission_id: str, request: Request, db: DatabaseDep, notifier: NotifierDep
) -> StreamingResponse:
    row, head = await _load(db, submission_id)
    client = request.client.host if request.client else "?"

    async def stream() -> AsyncIterator[bytes]:
        nonlocal row, head
        metrics.SSE_CLIENTS.inc()
        log.info("sse connect", extra={"submission": submission_id, "client": client})
        last: tuple[str, int] | None = None
        try:
            async with notifier.watch(submission_id) as ev:
                while True:
                    current = submission_json(row, head)
                    key = (row.state, current["confirmations"])
                    if key != last:
                        last = key
                        yield f"event: state\ndata: {json.dumps(current)}\n\n".encode()
                    if row.state in FINAL:
                        return
                    if notifier.closing:  # the process is stopping: say so, and when to come back
                        yield SHUTDOWN_EVENT
                        return
                    ev.clear()
                    try:
                        await asyncio.wait_for(ev.wait(), timeout=2.0)
                    except TimeoutError:
                        if await request.is_disconnected():
                            return
                        yield b": keep-alive\n\n"
                    row, head = await _load(db, submission_id)
        finally:
            metrics.SSE_CLIENTS.dec()
            log.info("sse disconnect", extra={"submission": submission_id, "client": client})

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


# ------------------------------------------------------------------ documents


_HEAD_SQL = "SELECT value FROM meta WHERE key = :key"
_SUBS_SQL = (
    "SELECT id, signer, state, metadata_hash, supersedes, tx_hash, block_number, block_hash, timestamp, "
    "error, metadata_json FROM submissions WHERE doc_hash = :doc"
)
_EVENTS_SQL = (
    "SELECT kind, signer, metadata_hash, supersedes, tx_hash, block_number, block_hash, timestamp "
    "FROM events WHERE doc_hash = :doc ORDER BY id"
)


@dataclass
class _Sub:
    id: str
    signer: str
    state: str
    metadata_hash: str
    supersedes: str
    tx_hash: str | None
    block_number: int | None
    block_hash: str | None
    timestamp: int | None
    error: str | None
    metadata_json: str | None


@dataclass
class _Event:
    kind: str
    signer: str
    metadata_hash: str | None
    supersedes: str | None
    tx_hash: str
    block_number: int
    block_hash: str
    timestamp: int


async def signer_statuses(db: Database, doc: str) -> tuple[list[dict[str, Any]], int | None]:
    # three indexed reads as plain SQL (Database.query): this runs on every verify and status request
    head_rows = await db.query(_HEAD_SQL, {"key": HEAD})
    head = int(head_rows[0][0]) if head_rows else None
    subs = [_Sub(*r) for r in await db.query(_SUBS_SQL, {"doc": doc})]
    events = [_Event(*r) for r in await db.query(_EVENTS_SQL, {"doc": doc})]
    by_signer: dict[str, dict[str, Any]] = {}
    for sub in subs:
        by_signer[sub.signer] = {
            "signer": sub.signer,
            "state": sub.state,
            "submissionId": sub.id,
            "metadataHash": sub.metadata_hash,
            "supersedes": sub.supersedes,
            "txHash": sub.tx_hash,
            "blockNumber": sub.block_number,
            "blockHash": sub.block_hash,
            "timestamp": sub.timestamp,
            "confirmations": 0,
            "revokedAt": None,
            "error": sub.error,
            # the object as submitted (stored canonical, so it hashes to metadataHash); null when none was sent
            "metadata": json.loads(sub.metadata_json) if sub.metadata_json else None,
        }
    for e in events:
        entry = by_signer.setdefault(
            e.signer,
            {
                "signer": e.signer,
                "submissionId": None,
                "error": None,
                "revokedAt": None,
                "state": "anchored",
                "metadata": None,  # registered on chain without this API: only the hash is known
            },
        )
        if e.kind == "Registered":
            entry.update(
                metadataHash=e.metadata_hash,
                supersedes=e.supersedes,
                txHash=e.tx_hash,
                blockNumber=e.block_number,
                blockHash=e.block_hash,
                timestamp=e.timestamp,
            )
            if entry["state"] in ("pending", "submitted", "failed", "anchored"):
                entry["state"] = "anchored"
        else:
            entry["revokedAt"] = e.timestamp
            entry["state"] = "revoked"
    for entry in by_signer.values():
        entry["confirmations"] = _confirmations(head, entry.get("blockNumber"))
        if entry["state"] == "anchored" and head is not None and entry.get("blockNumber") is not None:
            # confirmation depth is read off the indexed head, whoever submitted the record
            pass
    return list(by_signer.values()), head


@router.get(
    "/documents/{doc_hash}",
    response_model=DocumentStatus,
    responses=problems_for(404, 422, 503),
    summary="Document status: every signer",
)
async def document_status(doc_hash: str, db: DatabaseDep, storage: StorageDep, settings: SettingsDep) -> JSONResponse:
    doc = to_hex(parse_hash32(doc_hash, "docHash"))
    signers, head = await signer_statuses(db, doc)
    if not signers:
        raise not_found(f"no document {doc} is known (submitted or on chain)")
    for entry in signers:
        if entry["state"] == "anchored" and entry["confirmations"] >= settings.confirmations:
            entry["state"] = "confirmed"
    stored = await asyncio.to_thread(storage.exists, parse_hash32(doc))
    return JSONResponse({"docHash": doc, "stored": stored, "signers": signers})


@router.get(
    "/documents/{doc_hash}/receipts/{signer}",
    responses=problems_for(404, 409, 422, *CHAIN, why={409: "the submission is not anchored yet: no receipt"}),
    summary="The self-contained receipt of (docHash, signer)",
)
async def receipt(doc_hash: str, signer: str, db: DatabaseDep, chain: RegistryDep, chainctx: ChainDep) -> JSONResponse:
    doc = to_hex(parse_hash32(doc_hash, "docHash"))
    who = parse_address(signer, "signer")
    async with db.read() as s:
        sub = (await s.scalars(select(Submission).where(Submission.doc_hash == doc, Submission.signer == who))).first()
        event = (
            await s.scalars(
                select(EventRow)
                .where(EventRow.doc_hash == doc, EventRow.signer == who, EventRow.kind == "Registered")
                .order_by(EventRow.id.desc())
                .limit(1)
            )
        ).first()
    # The submission's signed registration, once anchored, unless the chain recorded another registration of
    # the pair (the signer registered it otherwise first: the registry kept that one). Otherwise the recorded
    # one, its signature read back from the transaction.
    anchored = sub is not None and sub.state in ("anchored", "confirmed", "revoked") and sub.block_number is not None
    if sub is not None and anchored and (event is None or _same_record(sub, event)):
        registration, signature = registration_of(sub), bytes.fromhex(sub.signature[2:])
        tx_hash, block_number, block_hash = (
            parse_hash32(sub.tx_hash or ""),
            sub.block_number,
            parse_hash32(sub.block_hash or ""),
        )
        timestamp, file_name, file_size = int(sub.timestamp or 0), sub.file_name, sub.file_size
    elif event is not None:
        recorded = RegistryEvent(
            kind="Registered",
            doc_hash=parse_hash32(event.doc_hash),
            signer=event.signer,
            block_number=event.block_number,
            block_hash=parse_hash32(event.block_hash),
            tx_hash=parse_hash32(event.tx_hash),
            log_index=event.log_index,
            metadata_hash=parse_hex(event.metadata_hash or ""),
            supersedes=parse_hex(event.supersedes or ""),
        )
        try:
            signed = await chainctx.run(chain.registry.signed_registration_of, recorded)
        except RegistrationNotFound as exc:
            raise not_found(
                f"{who}'s record of {doc} is on chain, but its signature cannot be read back for a receipt: {exc}"
            ) from None
        registration, signature = signed.registration, signed.signature
        tx_hash, block_number, block_hash = recorded.tx_hash, recorded.block_number, recorded.block_hash
        timestamp, file_name, file_size = event.timestamp, None, None
    elif sub is not None:
        raise conflict(f"the submission is {sub.state}, not anchored yet: no receipt")
    else:
        raise not_found(f"this service holds no signed registration of {doc} by {who}, nor an indexed record of it")
    rec = build_receipt(
        domain=chain.domain,
        registration=registration,
        signature=signature,
        tx_hash=tx_hash,
        block_number=block_number,
        block_hash=block_hash,
        timestamp=timestamp,
        file_name=file_name,
        file_size=file_size,
    )
    name = (rec.file_name or doc[2:14]) + ".docchain.json"
    return JSONResponse(rec.to_json(), headers={"Content-Disposition": attachment(name)})


def _same_record(sub: Submission, event: EventRow) -> bool:
    """Whether the indexed record is the submission's registration (its fields as the event carries them)."""
    return (event.metadata_hash, event.supersedes) == (sub.metadata_hash, sub.supersedes)


@router.get(
    "/documents/{doc_hash}/file",
    summary="Download a stored document (hash checked on read)",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}},
        **problems_for(404, 422, 500, 503, why={500: "the stored copy no longer matches its hash"}),
    },
)
async def document_file(doc_hash: str, storage: StorageDep, db: DatabaseDep) -> StreamingResponse:
    raw = parse_hash32(doc_hash, "docHash")
    if not await asyncio.to_thread(storage.exists, raw):
        raise not_found(f"document {to_hex(raw)} is not stored here")
    if not await asyncio.to_thread(storage.verify, raw):
        raise Problem(
            500,
            "storage-corrupted",
            "Stored document corrupted",
            f"the stored copy of {to_hex(raw)} no longer matches its hash",
        )
    async with db.read() as s:
        name = await s.scalar(
            select(Submission.file_name)
            .where(Submission.doc_hash == to_hex(raw), Submission.file_name.is_not(None))
            .limit(1)
        )
    size = await asyncio.to_thread(storage.size, raw)

    async def chunks() -> AsyncIterator[bytes]:
        iterator = storage.open(raw)
        while True:
            chunk = await asyncio.to_thread(next, iterator, None)
            if chunk is None:
                return
            yield chunk

    headers = {"Content-Length": str(size), "X-Docchain-Sha256": to_hex(raw)}
    if name:
        headers["Content-Disposition"] = attachment(name)
    return StreamingResponse(chunks(), media_type="application/octet-stream", headers=headers)


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
    if seconds > MAX_INT64:  # the database compares BIGINTs: a wider number was a 500 (overflow)
        raise InvalidInput(f"{what} is out of range: at most {MAX_INT64} unix seconds")
    return seconds


def _cursor(value: str | None) -> int | None:
    if not value:
        return None
    try:
        text = base64.urlsafe_b64decode(value[:32].encode() + b"==").decode()
    except (ValueError, UnicodeDecodeError):
        text = ""
    # a row id the API issued: ASCII digits within the database's integers (a wider one was a 500)
    if len(value) > 32 or not (text.isascii() and text.isdigit()) or not 0 < int(text) <= MAX_INT64:
        raise InvalidInput("cursor is not one this API issued")
    return int(text)


@router.get(
    "/documents",
    response_model=DocumentPage,
    responses=problems_for(422, 503),
    summary="List records by signer and time, newest first",
)
async def list_documents(
    db: DatabaseDep,
    settings: SettingsDep,
    signer: str | None = None,
    since: str | None = Query(None, description="ISO-8601 or unix seconds (inclusive)"),
    until: str | None = Query(None, description="ISO-8601 or unix seconds (exclusive)"),
    cursor: str | None = None,
    limit: int = Query(50, ge=1, le=500),
) -> JSONResponse:
    conditions = [EventRow.kind == "Registered"]
    if signer:
        conditions.append(EventRow.signer == parse_address(signer, "signer"))
    start, end = _time(since, "since"), _time(until, "until")
    if start is not None:
        conditions.append(EventRow.timestamp >= start)
    if end is not None:
        conditions.append(EventRow.timestamp < end)
    after = _cursor(cursor)
    if after is not None:
        conditions.append(EventRow.id < after)
    async with db.read() as s:
        head = await chain_head(s)
        rows = (
            await s.scalars(select(EventRow).where(and_(*conditions)).order_by(EventRow.id.desc()).limit(limit + 1))
        ).all()
        page = rows[:limit]
        revoked: dict[tuple[str, str], int] = {}
        if page:
            keys = [and_(EventRow.doc_hash == r.doc_hash, EventRow.signer == r.signer) for r in page]
            for e in (await s.scalars(select(EventRow).where(EventRow.kind == "Revoked", or_(*keys)))).all():
                revoked[(e.doc_hash, e.signer)] = e.timestamp
    items = []
    for r in page:
        conf = _confirmations(head, r.block_number)
        rev = revoked.get((r.doc_hash, r.signer))
        state = "revoked" if rev else ("confirmed" if conf >= settings.confirmations else "anchored")
        items.append(
            {
                "docHash": r.doc_hash,
                "signer": r.signer,
                "state": state,
                "metadataHash": r.metadata_hash,
                "txHash": r.tx_hash,
                "blockNumber": r.block_number,
                "timestamp": r.timestamp,
                "confirmations": conf,
                "revokedAt": rev,
            }
        )
    next_cursor = (
        base64.urlsafe_b64encode(str(page[-1].id).encode()).decode().rstrip("=") if len(rows) > limit else None
    )
    return JSONResponse({"items": items, "nextCursor": next_cursor})


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
    admission: AdmissionDep,
    body: RevocationIn,
    db: DatabaseDep,
    chain: RegistryDep,
    chainctx: ChainDep,
    pipeline: PipelineDep,
) -> JSONResponse:
    rev = Revocation.from_json(body.revocation.model_dump())
    signature = parse_signature(body.signature)
    doc = to_hex(rev.doc_hash)

    def answer(state: str, status_code: int = 200) -> JSONResponse:
        return JSONResponse(
            {"docHash": doc, "signer": rev.signer, "nonce": rev.nonce, "state": state}, status_code=status_code
        )

    if rev.deadline <= int(time.time()):
        raise InvalidInput(f"the revocation's deadline ({rev.deadline}) has already passed")
    recovered = None
    if len(signature) == 65:
        try:
            recovered = recover(chain.domain, rev, signature)
        except InvalidInput:
            recovered = None
    if recovered != rev.signer:
        code = await chainctx.run(chain.registry.w3.eth.get_code, rev.signer)
        if not code:  # an EOA: the chain would reject it; a contract wallet is left to decide on chain
            raise Problem(
                422,
                "invalid-signature",
                "Invalid signature",
                f"the revocation is not signed by {rev.signer}"
                + (f" (the signature recovers {recovered})" if recovered else ""),
            )
    async with db.read() as s:
        existing = (
            await s.scalars(
                select(RevocationRow).where(
                    RevocationRow.doc_hash == doc,
                    RevocationRow.signer == rev.signer,
                    RevocationRow.nonce == str(rev.nonce),
                )
            )
        ).first()
    if existing is not None and existing.state != "failed":
        return answer(existing.state)
    record = await chainctx.run(chain.registry.record, rev.doc_hash, rev.signer)
    if not record.exists:
        raise not_found(f"{rev.signer} has no record of {doc} on chain")
    if record.revoked:
        raise conflict(f"{rev.signer}'s record of {doc} is already revoked")
    nonce = await chainctx.run(chain.registry.nonce, rev.signer)
    if nonce != rev.nonce:
        raise InvalidInput(
            f"nonce {rev.nonce} is not {rev.signer}'s current nonce ({nonce}); GET /v1/nonces/{rev.signer}"
        )
    charge = await admission.charge(rev.signer)  # a new write for the relayer to pay
    if existing is not None:
        # The relayer gave up on this nonce (the chain refused it) and the nonce is still current: queue the new
        # signature in its place, or the signer could never revoke through this API again (one row per nonce).
        requeue = (
            update(RevocationRow)
            .where(RevocationRow.id == existing.id, RevocationRow.state == "failed")
            .values(
                deadline=str(rev.deadline),
                signature=to_hex(signature),
                state="pending",
                error=None,
                tx_id=None,
                created_at=now(),
                client_id=admission.client,
            )
        )
        await db.execute(requeue)
        log.info("revocation accepted again", extra={"doc": doc, "signer": rev.signer, "failed": existing.error})
    else:
        row = RevocationRow(
            doc_hash=doc,
            signer=rev.signer,
            nonce=str(rev.nonce),
            deadline=str(rev.deadline),
            signature=to_hex(signature),
            state="pending",
            created_at=now(),
            client_id=admission.client,
        )
        try:
            await db.transaction(lambda s: s.add(row))
        except IntegrityError:  # the same request, accepted meanwhile
            await charge.refund()
            return answer("pending")
        log.info("revocation accepted", extra={"doc": doc, "signer": rev.signer})
    pipeline.wake()
    return answer("pending", 202)


@router.get(
    "/documents/{doc_hash}/revocations/{signer}",
    response_model=RevocationStatus,
    responses=problems_for(
        404, 422, 503, why={404: "no revocation of this document by this signer was requested here"}
    ),
    summary="A signer's revocation requests for a document, newest first (a failed one with its error)",
)
async def revocation_status(doc_hash: str, signer: str, db: DatabaseDep) -> JSONResponse:
    doc = to_hex(parse_hash32(doc_hash, "docHash"))
    who = parse_address(signer, "signer")
    async with db.read() as s:
        rows = (
            await s.execute(
                select(RevocationRow, Transaction.tx_hash)
                .outerjoin(Transaction, Transaction.id == RevocationRow.tx_id)
                .where(RevocationRow.doc_hash == doc, RevocationRow.signer == who)
                .order_by(RevocationRow.created_at.desc(), RevocationRow.id.desc())
            )
        ).all()
    if not rows:
        raise not_found(f"no revocation of {doc} by {who} was requested here")
    revocations = [
        {
            "nonce": int(row.nonce),
            "state": row.state,
            "error": row.error,
            "txHash": tx_hash,
            "createdAt": row.created_at,
        }
        for row, tx_hash in rows
    ]
    return JSONResponse({"docHash": doc, "signer": who, "revocations": revocations})
