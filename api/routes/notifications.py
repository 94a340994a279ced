"""Envelope notifications over HTTP: an envelope's server-sent events, its webhooks, e-mail invitations and
reminders, and the envelopes of a document. Thin: the index and the delivery queue are api/notifications/'s."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.exc import DBAPIError

from docchain.api import metrics
from docchain.api.db import DatabaseBusy
from docchain.api.deps import ApiKey, DatabaseDep, NotifierDep, PipelineDep, SettingsDep
from docchain.api.limits import presented_key
from docchain.api.notifications.delivery import Mailer
from docchain.api.notifications.model import (
    ContactTaken,
    DeliveryKind,
    EnvelopeFacts,
    MailTooSoon,
    WebhookExists,
    WebhooksFull,
    check_email,
    check_webhook_url,
    signing_link,
    watch_key,
)
from docchain.api.notifications.schemas import (
    HASH_PATTERN,
    DocumentEnvelopes,
    InvitationsIn,
    Queued,
    WebhookCreated,
    WebhookIn,
)
from docchain.api.notifications.store import NotificationStore
from docchain.api.openapi import problems_for
from docchain.api.problems import RETRY_AFTER_S, Problem, not_found
from docchain.api.settings import Settings
from docchain.chain.errors import InvalidInput
from docchain.chain.values import parse_address

log = logging.getLogger("docchain.api.notifications")

router = APIRouter(prefix="/v1", tags=["envelopes"])

EnvelopeId = Annotated[str, Path(pattern=HASH_PATTERN, description="the envelope's id (0x + 64 hex)")]
DocHash = Annotated[str, Path(pattern=HASH_PATTERN, description="the document's SHA-256 (0x + 64 hex)")]
# Each stream holds a connection and a waiter; past this many in one process, a new one is answered 503.
MAX_STREAMS = 1000
SHUTDOWN_EVENT = (
    f"retry: {RETRY_AFTER_S * 1000}\nevent: shutdown\n"
    f'data: {{"retryAfter": {RETRY_AFTER_S}, "detail": "the server is stopping: reconnect with Last-Event-ID"}}\n\n'
).encode()

CHANGES_PER_READ = 100
MAX_CHANGE_ID = 2**31 - 1  # envelope_changes.id is a 32-bit INTEGER on PostgreSQL
RECONNECT_MS = 1000  # the ``retry`` a stream asks of its client once it ends
_streams = 0  # this process's open envelope streams


@router.get(
    "/envelopes/{envelope_id}/events",
    summary="Server-sent events: one `envelope` event per change of the envelope on chain",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **problems_for(422, 503)},
)
async def envelope_events(
    envelope_id: EnvelopeId,
    request: Request,
    db: DatabaseDep,
    notifier: NotifierDep,
    settings: SettingsDep,
    last_event_id: Annotated[int | None, Header(ge=0, le=MAX_CHANGE_ID, description="resume after this change")] = None,
    after: Annotated[int, Query(ge=0, le=MAX_CHANGE_ID, description="resume after this change (as Last-Event-ID)")] = 0,
) -> StreamingResponse:
    if _streams >= MAX_STREAMS:
        raise Problem(
            503,
            "too-many-streams",
            "Too many event streams",
            f"this server holds {MAX_STREAMS} event streams already; retry later",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
    envelope = envelope_id.lower()
    store = NotificationStore(db)
    cursor = max(after, last_event_id or 0)

    async def stream() -> AsyncIterator[bytes]:
        global _streams
        nonlocal cursor
        _streams += 1  # here, not before the response: a body never started never runs the ``finally`` below
        metrics.SSE_CLIENTS.inc()
        # A stream is held at most DOCCHAIN_LONGPOLL_MAX_S, as a long-poll is: a client reconnects by itself (with
        # Last-Event-ID, after ``retry``), so streams spread again over replicas and none is held without bound.
        ends = asyncio.get_running_loop().time() + settings.longpoll_max_s
        try:
            yield b"retry: %d\n\n" % RECONNECT_MS
            async with notifier.watch(watch_key(envelope)) as ev:
                while True:
                    ev.clear()  # before the read: a change committed during it wakes the wait below
                    while True:
                        changes = await store.changes(envelope, cursor, CHANGES_PER_READ)
                        for change in changes:
                            cursor = change.id
                            yield b"id: %d\nevent: envelope\ndata: %s\n\n" % (change.id, change.body())
                        if len(changes) < CHANGES_PER_READ:
                            break
                    if notifier.closing:  # the process is stopping: say so, and when to come back
                        yield SHUTDOWN_EVENT
                        return
                    left = ends - asyncio.get_running_loop().time()
                    if left <= 0:
                        return
                    try:
                        await asyncio.wait_for(ev.wait(), timeout=min(settings.reread_s, left))
                    except TimeoutError:
                        if await request.is_disconnected():
                            return
                        yield b": keep-alive\n\n"
        except (DBAPIError, DatabaseBusy) as exc:
            # headers are sent: no problem+json now. The stream ends and its client reconnects with Last-Event-ID
            log.warning("envelope stream ended: database unavailable", extra={"error": repr(exc)})
        finally:
            _streams -= 1
            metrics.SSE_CLIENTS.dec()

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


@router.post(
    "/envelopes/{envelope_id}/webhooks",
    status_code=201,
    response_model=WebhookCreated,
    responses=problems_for(400, 401, 404, 408, 409, 413, 422, 503),
    dependencies=[ApiKey],
    summary="Call a URL with each change of the envelope (HMAC-signed, retried until acknowledged)",
)
async def add_webhook(
    envelope_id: EnvelopeId, body: WebhookIn, db: DatabaseDep, settings: SettingsDep
) -> WebhookCreated:
    url = (await check_webhook_url(body.url, allow_private=settings.webhook_allow_private)).url
    store = NotificationStore(db)
    envelope = envelope_id.lower()
    if not await store.known(envelope):
        raise not_found(f"no envelope {envelope} is on chain or accepted by this service")
    try:
        hook = await store.add_webhook(envelope, url, settings.webhooks_per_envelope)
    except WebhookExists as exc:
        # its secret was shown once, to whoever registered it: not again
        raise Problem(409, "webhook-exists", "Webhook registered", str(exc), webhook=exc.webhook_id) from None
    except WebhooksFull as exc:
        raise Problem(409, "too-many-webhooks", "Too many webhooks", str(exc), limit=exc.cap) from None
    log.info("webhook added", extra={"envelope": hook.envelope_id, "webhook": hook.id})
    return WebhookCreated(id=hook.id, url=hook.url, secret=hook.secret)


async def _mail_ready(settings: Settings, store: NotificationStore, envelope: str) -> EnvelopeFacts:
    if not Mailer(settings).configured:
        # 409, not a 5xx: the service works as configured, and asking again will not help until its operator acts
        raise Problem(
            409,
            "email-not-configured",
            "E-mail not configured",
            "this service sends no e-mail: its operator sets DOCCHAIN_SMTP_HOST and DOCCHAIN_SMTP_FROM",
        )
    facts = await store.facts(envelope)
    if facts is None:
        raise not_found(f"no envelope {envelope} is on chain (yet): invite once its creation is indexed")
    if (why := facts.not_open(time.time())) is not None:
        raise Problem(409, "envelope-closed", "Envelope closed", f"envelope {envelope} is {why}")
    return facts


async def _queue_mail(
    request: Request,
    settings: Settings,
    store: NotificationStore,
    envelope: str,
    kind: DeliveryKind,
    mail: list[tuple[str, str, str]],
) -> list[str]:
    """Queue the e-mails, or answer why not: a contact another key set (409), a signer written to too recently
    (429 with Retry-After)."""
    given = presented_key(request) if settings.api_keys else None
    key = None if given is None else hashlib.sha256(given.encode()).hexdigest()
    try:
        return await store.queue_mail(envelope, kind, mail, key=key, interval_s=settings.mail_interval_s)
    except ContactTaken as exc:
        raise Problem(409, "contact-set", "Contact set", str(exc), signer=exc.signer) from None
    except MailTooSoon as exc:
        wait = max(1, math.ceil(exc.wait_s))
        raise Problem(
            429,
            "mail-too-soon",
            "E-mailed too recently",
            f"{exc}: at most one e-mail per signer every {settings.mail_interval_s:g} s; retry in {wait} s",
            headers={"Retry-After": str(wait)},
            signers=list(exc.signers),
        ) from None


def _page(settings: Settings, request: Request) -> str:
    return settings.public_url or str(request.base_url)


@router.post(
    "/envelopes/{envelope_id}/invitations",
    status_code=202,
    response_model=Queued,
    responses=problems_for(400, 401, 404, 408, 409, 413, 422, 429, 503),
    dependencies=[ApiKey],
    summary="E-mail signers their signing link (and remember their addresses for reminders)",
)
async def invite(
    envelope_id: EnvelopeId,
    body: InvitationsIn,
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    pipeline: PipelineDep,
) -> Queued:
    store = NotificationStore(db)
    envelope = envelope_id.lower()
    facts = await _mail_ready(settings, store, envelope)
    mail: dict[str, tuple[str, str, str]] = {}
    for item in body.invitations:
        signer = parse_address(item.signer, "signer")
        if signer not in facts.signers:
            raise InvalidInput(f"{signer} is not a signer of envelope {envelope}")
        mail[signer] = (signer, check_email(item.email), signing_link(_page(settings, request), envelope, signer))
    ordered = [mail[s] for s in facts.signers if s in mail]
    ids = await _queue_mail(request, settings, store, envelope, DeliveryKind.INVITATION, ordered)
    pipeline.wake()
    return Queued(envelopeId=envelope, deliveries=ids, recipients=[m[0] for m in ordered])


@router.post(
    "/envelopes/{envelope_id}/reminders",
    status_code=202,
    response_model=Queued,
    responses=problems_for(401, 404, 408, 409, 413, 422, 429, 503),
    dependencies=[ApiKey],
    summary="E-mail a reminder to the signers still awaited who were invited",
)
async def remind(
    envelope_id: EnvelopeId, request: Request, db: DatabaseDep, settings: SettingsDep, pipeline: PipelineDep
) -> Queued:
    store = NotificationStore(db)
    envelope = envelope_id.lower()
    facts = await _mail_ready(settings, store, envelope)
    contacts = await store.contacts(envelope)
    page = _page(settings, request)
    mail = [(s, contacts[s], signing_link(page, envelope, s)) for s in facts.waiting_for if s in contacts]
    ids = await _queue_mail(request, settings, store, envelope, DeliveryKind.REMINDER, mail)
    pipeline.wake()
    return Queued(envelopeId=envelope, deliveries=ids, recipients=[m[0] for m in mail])


@router.get(
    "/documents/{doc_hash}/envelopes",
    response_model=DocumentEnvelopes,
    responses=problems_for(422, 503),
    summary="The envelopes created on chain for a document",
)
async def document_envelopes(doc_hash: DocHash, db: DatabaseDep) -> DocumentEnvelopes:
    doc = doc_hash.lower()
    return DocumentEnvelopes(docHash=doc, envelopes=await NotificationStore(db).envelopes_of(doc))
