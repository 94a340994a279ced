"""The only code that touches the notification tables (api/notifications/tables.py). The ``*_in`` functions run
inside a caller's transaction: the indexer's step and its reorg rollback (api/service.py), so that an event, its
change and its webhook deliveries are committed together, or not at all."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, and_, delete, exists, func, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from docchain.api.db import Database, EnvelopeActionRow, new_id, now
from docchain.api.lifecycle import ActionKind
from docchain.api.notifications.model import (
    ChangeKind,
    ContactTaken,
    Delivery,
    DeliveryKind,
    DeliveryState,
    EnvelopeChange,
    EnvelopeFacts,
    IndexedEvent,
    MailTooSoon,
    Webhook,
    WebhookExists,
    WebhooksFull,
    watch_key,
)
from docchain.api.notifications.tables import (
    ContactRow,
    DeliveryRow,
    EnvelopeChangeRow,
    EnvelopeEventRow,
    WebhookRow,
)

_EVENTS = cast(Table, EnvelopeEventRow.__table__)
_CHANGES = cast(Table, EnvelopeChangeRow.__table__)
_HOOKS = cast(Table, WebhookRow.__table__)
_CONTACTS = cast(Table, ContactRow.__table__)
_DELIVERIES = cast(Table, DeliveryRow.__table__)
_ACTIONS = cast(Table, EnvelopeActionRow.__table__)
_PENDING = DeliveryState.PENDING.value


def _lock_envelope(s: Session, envelope: str) -> None:
    """Serialise this transaction with the others that count or change one envelope's webhooks and contacts, so
    that a cap or an interval holds across concurrent requests and replicas. SQLite's writes are serialised
    already; on PostgreSQL a transaction-scoped advisory lock keyed by the envelope."""
    if s.get_bind().dialect.name == "postgresql":
        s.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": "envelope " + envelope})


@dataclass
class Changed:
    """What a step or a rollback told subscribers: the envelopes whose streams to wake, the deliveries queued."""

    envelopes: set[str] = field(default_factory=set)
    deliveries: int = 0

    @property
    def keys(self) -> set[str]:
        """The notifier's keys of the envelopes changed (:func:`watch_key`)."""
        return {watch_key(e) for e in self.envelopes}


def _change_in(s: Session, envelope: str, kind: str, signer: str | None, block: int, tx: str, removed: bool) -> int:
    """Append one change to the feed and queue its delivery to each of the envelope's webhooks; returns how many."""
    change_id = s.execute(
        insert(_CHANGES)
        .values(
            envelope_id=envelope,
            kind=kind,
            signer=signer,
            block_number=block,
            tx_hash=tx,
            removed=removed,
            created_at=now(),
        )
        .returning(_CHANGES.c.id)
    ).scalar_one()
    hooks = s.execute(select(_HOOKS.c.id).where(_HOOKS.c.envelope_id == envelope)).scalars().all()
    at = now()
    rows = [
        {
            "id": new_id(),
            "kind": DeliveryKind.WEBHOOK.value,
            "envelope_id": envelope,
            "webhook_id": hook,
            "change_id": change_id,
            "state": _PENDING,
            "attempts": 0,
            "next_at": at,
            "created_at": at,
        }
        for hook in hooks
    ]
    if rows:
        s.execute(insert(_DELIVERIES), rows)
    return len(rows)


def index_in(s: Session, events: Sequence[IndexedEvent]) -> Changed:
    """Persist an indexer step's envelope events (new by construction: the step's range is new), one change each,
    and their webhook deliveries."""
    changed = Changed()
    for e in events:
        s.execute(
            insert(_EVENTS).values(
                envelope_id=e.envelope_id,
                kind=e.kind.value,
                doc_hash=e.doc_hash,
                signer=e.signer,
                signers=None if e.signers is None else ",".join(e.signers),
                ordered=e.ordered,
                block_number=e.block_number,
                block_hash=e.block_hash,
                tx_hash=e.tx_hash,
                log_index=e.log_index,
                timestamp=e.timestamp,
                deadline=e.deadline,
            )
        )
        changed.deliveries += _change_in(s, e.envelope_id, e.kind.value, e.signer, e.block_number, e.tx_hash, False)
        changed.envelopes.add(e.envelope_id)
    return changed


def roll_back_in(s: Session, floor: int) -> Changed:
    """A reorg removed the blocks above ``floor``: their envelope events go, each told as a removed change (newest
    first, as a chain unwinds)."""
    changed = Changed()
    gone = s.execute(
        select(_EVENTS.c.envelope_id, _EVENTS.c.kind, _EVENTS.c.signer, _EVENTS.c.block_number, _EVENTS.c.tx_hash)
        .where(_EVENTS.c.block_number > floor)
        .order_by(_EVENTS.c.block_number.desc(), _EVENTS.c.log_index.desc())
    ).all()
    for envelope, kind, signer, block, tx in gone:
        changed.deliveries += _change_in(s, envelope, kind, signer, block, tx, True)
        changed.envelopes.add(envelope)
    s.execute(delete(_EVENTS).where(_EVENTS.c.block_number > floor))
    return changed


def _change(row: Any) -> EnvelopeChange:
    return EnvelopeChange(
        id=row.id,
        envelope_id=row.envelope_id,
        kind=ChangeKind(row.kind),
        signer=row.signer,
        block_number=row.block_number,
        transaction_hash=row.tx_hash,
        removed=bool(row.removed),
    )


class NotificationStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ------------------------------------------------------------ reads

    async def facts(self, envelope: str) -> EnvelopeFacts | None:
        """The envelope as the index knows it; None when its creation is not indexed."""
        async with self.db.read() as s:
            rows = (
                await s.execute(
                    select(
                        _EVENTS.c.kind,
                        _EVENTS.c.doc_hash,
                        _EVENTS.c.signer,
                        _EVENTS.c.signers,
                        _EVENTS.c.ordered,
                        _EVENTS.c.deadline,
                    )
                    .where(_EVENTS.c.envelope_id == envelope)
                    .order_by(_EVENTS.c.block_number, _EVENTS.c.log_index)
                )
            ).all()
        created = next((r for r in rows if r.kind == ChangeKind.CREATED), None)
        if created is None:
            return None
        closing = (ChangeKind.COMPLETED, ChangeKind.DECLINED, ChangeKind.VOIDED)
        ended = next((ChangeKind(r.kind) for r in rows if r.kind in closing), None)
        return EnvelopeFacts(
            envelope_id=envelope,
            doc_hash=created.doc_hash,
            signers=tuple(created.signers.split(",")) if created.signers else (),
            ordered=bool(created.ordered),
            signed=frozenset(r.signer for r in rows if r.kind == ChangeKind.SIGNED),
            ended=ended,
            deadline=created.deadline,
        )

    async def changes(self, envelope: str, after: int, limit: int = 100) -> list[EnvelopeChange]:
        """The envelope's changes with an id above ``after``, oldest first."""
        async with self.db.read() as s:
            rows = await s.execute(
                select(_CHANGES)
                .where(_CHANGES.c.envelope_id == envelope, _CHANGES.c.id > after)
                .order_by(_CHANGES.c.id)
                .limit(limit)
            )
            return [_change(r) for r in rows]

    async def envelopes_of(self, doc_hash: str) -> list[str]:
        """The envelopes created on chain for a document, oldest first."""
        async with self.db.read() as s:
            rows = await s.execute(
                select(_EVENTS.c.envelope_id)
                .where(_EVENTS.c.doc_hash == doc_hash, _EVENTS.c.kind == ChangeKind.CREATED.value)
                .order_by(_EVENTS.c.block_number, _EVENTS.c.log_index)
            )
            return [r[0] for r in rows]

    async def contacts(self, envelope: str) -> dict[str, str]:
        """signer -> e-mail address, of the envelope's signers that have one."""
        async with self.db.read() as s:
            rows = await s.execute(
                select(_CONTACTS.c.signer, _CONTACTS.c.email).where(_CONTACTS.c.envelope_id == envelope)
            )
            return {signer: email for signer, email in rows}

    async def delivery_state(self, delivery: str) -> tuple[DeliveryState, int, str | None] | None:
        """(state, attempts, last error) of a delivery."""
        async with self.db.read() as s:
            row = (
                await s.execute(
                    select(_DELIVERIES.c.state, _DELIVERIES.c.attempts, _DELIVERIES.c.last_error).where(
                        _DELIVERIES.c.id == delivery
                    )
                )
            ).first()
        return None if row is None else (DeliveryState(row[0]), row[1], row[2])

    # ------------------------------------------------------------ subscriptions

    async def known(self, envelope: str) -> bool:
        """Whether the envelope's creation is indexed from the chain or accepted in the actions' outbox (to be sent
        by the relayer): the envelopes one may subscribe to."""
        on_chain = exists().where(_EVENTS.c.envelope_id == envelope, _EVENTS.c.kind == ChangeKind.CREATED.value)
        accepted = exists().where(_ACTIONS.c.envelope_id == envelope, _ACTIONS.c.kind == ActionKind.CREATE.value)
        async with self.db.read() as s:
            return bool((await s.execute(select(or_(on_chain, accepted)))).scalar())

    async def add_webhook(self, envelope: str, url: str, cap: int) -> Webhook:
        """Register ``url`` for the envelope's changes with a new secret. Raises :class:`WebhookExists` when the
        URL is registered for it already, :class:`WebhooksFull` when it has ``cap`` webhooks."""
        hook = Webhook(id=new_id(), envelope_id=envelope, url=url, secret=secrets.token_hex(32))

        def write(s: Session) -> None:
            _lock_envelope(s, envelope)
            mine = _HOOKS.c.envelope_id == envelope
            same = s.execute(select(_HOOKS.c.id).where(mine, _HOOKS.c.url == url)).scalar()
            if same is not None:
                raise WebhookExists(same)
            if s.execute(select(func.count()).select_from(_HOOKS).where(mine)).scalar_one() >= cap:
                raise WebhooksFull(cap)
            s.execute(
                insert(_HOOKS).values(id=hook.id, envelope_id=envelope, url=url, secret=hook.secret, created_at=now())
            )

        try:
            await self.db.transaction(write)
        except IntegrityError:  # the same URL registered meanwhile (the unique index): answered as registered
            async with self.db.read() as s:
                same = (
                    await s.execute(select(_HOOKS.c.id).where(_HOOKS.c.envelope_id == envelope, _HOOKS.c.url == url))
                ).scalar()
            if same is None:
                raise
            raise WebhookExists(same) from None
        return hook

    async def queue_mail(
        self,
        envelope: str,
        kind: DeliveryKind,
        mail: Sequence[tuple[str, str, str]],
        *,
        key: str | None,
        interval_s: float,
    ) -> list[str]:
        """Record each (signer, e-mail, link) as the signer's contact and queue an e-mail of ``kind`` to it; returns
        the deliveries' ids. All or none: :class:`ContactTaken` when a signer's address is set to another one and
        ``key`` (the SHA-256 of the request's API key; None without keys) is not the one that set it,
        :class:`MailTooSoon` when a signer was written to less than ``interval_s`` ago."""
        at = now()
        rows = [
            {
                "id": new_id(),
                "kind": kind.value,
                "envelope_id": envelope,
                "email": email,
                "signer": signer,
                "link": link,
                "state": _PENDING,
                "attempts": 0,
                "next_at": at,
                "created_at": at,
            }
            for signer, email, link in mail
        ]

        def write(s: Session) -> None:
            _lock_envelope(s, envelope)
            signers = [signer for signer, _, _ in mail]
            known = {
                r.signer: r
                for r in s.execute(
                    select(_CONTACTS).where(_CONTACTS.c.envelope_id == envelope, _CONTACTS.c.signer.in_(signers))
                )
            }
            waits: dict[str, float] = {}
            for signer, email, _ in mail:
                contact = known.get(signer)
                if contact is None:
                    continue
                if contact.email != email and (key is None or contact.set_by != key):
                    raise ContactTaken(signer)
                if contact.mailed_at is not None and at - contact.mailed_at < interval_s:
                    waits[signer] = contact.mailed_at + interval_s - at
            if waits:
                raise MailTooSoon(tuple(waits), max(waits.values()))
            for signer, email, _ in mail:
                if signer in known:
                    s.execute(
                        update(_CONTACTS)
                        .where(_CONTACTS.c.envelope_id == envelope, _CONTACTS.c.signer == signer)
                        .values(email=email, mailed_at=at)
                    )
                else:
                    s.execute(
                        insert(_CONTACTS).values(
                            envelope_id=envelope, signer=signer, email=email, set_by=key, mailed_at=at
                        )
                    )
            if rows:
                s.execute(insert(_DELIVERIES), rows)

        await self.db.transaction(write)
        return [str(r["id"]) for r in rows]

    # ------------------------------------------------------------ the delivery loop's

    async def due(self, at: float, limit: int) -> list[Delivery]:
        """Pending deliveries due at ``at``, oldest due first, with their webhook and change."""
        query = (
            select(_DELIVERIES, _HOOKS.c.url, _HOOKS.c.secret, _CHANGES)
            .select_from(
                _DELIVERIES.outerjoin(_HOOKS, _HOOKS.c.id == _DELIVERIES.c.webhook_id).outerjoin(
                    _CHANGES, _CHANGES.c.id == _DELIVERIES.c.change_id
                )
            )
            .where(and_(_DELIVERIES.c.state == _PENDING, _DELIVERIES.c.next_at <= at))
            .order_by(_DELIVERIES.c.next_at)
            .limit(limit)
        )
        async with self.db.read() as s:
            rows = (await s.execute(query)).all()
        out = []
        for r in rows:
            m = r._mapping
            change = None
            if m[_DELIVERIES.c.change_id] is not None:
                change = EnvelopeChange(
                    id=m[_CHANGES.c.id],
                    envelope_id=m[_CHANGES.c.envelope_id],
                    kind=ChangeKind(m[_CHANGES.c.kind]),
                    signer=m[_CHANGES.c.signer],
                    block_number=m[_CHANGES.c.block_number],
                    transaction_hash=m[_CHANGES.c.tx_hash],
                    removed=bool(m[_CHANGES.c.removed]),
                )
            hook_id = m[_DELIVERIES.c.webhook_id]
            out.append(
                Delivery(
                    id=m[_DELIVERIES.c.id],
                    kind=DeliveryKind(m[_DELIVERIES.c.kind]),
                    envelope_id=m[_DELIVERIES.c.envelope_id],
                    attempts=m[_DELIVERIES.c.attempts],
                    webhook=None
                    if hook_id is None
                    else Webhook(hook_id, m[_DELIVERIES.c.envelope_id], m[_HOOKS.c.url], m[_HOOKS.c.secret]),
                    change=change,
                    email=m[_DELIVERIES.c.email],
                    signer=m[_DELIVERIES.c.signer],
                    link=m[_DELIVERIES.c.link],
                )
            )
        return out

    async def next_due(self) -> float | None:
        async with self.db.read() as s:
            value = (
                await s.execute(select(func.min(_DELIVERIES.c.next_at)).where(_DELIVERIES.c.state == _PENDING))
            ).scalar()
        return None if value is None else float(value)

    async def delivered(self, delivery: str) -> None:
        await self._update(delivery, state=DeliveryState.DELIVERED.value, next_at=None, delivered_at=now())

    async def skipped(self, delivery: str, reason: str) -> None:
        """An e-mail not sent, and not to be: ``reason`` says why."""
        await self._update(delivery, state=DeliveryState.SKIPPED.value, next_at=None, last_error=reason[:1000])

    async def failed(self, delivery: str, attempts: int, error: str, again_at: float | None) -> None:
        """An attempt failed: try again at ``again_at``, or (None) give up, keeping the error."""
        state = DeliveryState.PENDING if again_at is not None else DeliveryState.FAILED
        await self._update(delivery, state=state.value, attempts=attempts, last_error=error[:1000], next_at=again_at)

    async def _update(self, delivery: str, **values: Any) -> None:
        def write(s: Session) -> None:
            s.execute(update(_DELIVERIES).where(_DELIVERIES.c.id == delivery).values(**values))

        await self.db.transaction(write)
