"""The tables of envelope notifications (migration 0012), beside api/db.py's on the same metadata.

- ``envelope_events``: the envelopes contract's events as indexed, removed by a reorg's rollback like the
  registry's ``events``; the source of ``GET /v1/documents/{hash}/envelopes`` and of who may be reminded.
- ``envelope_changes``: an append-only feed of what subscribers are told: one row per event indexed, and one with
  ``removed`` per event a reorg took back. Its ids order a server-sent event stream (``Last-Event-ID``).
- ``envelope_webhooks``: the URLs (and HMAC secrets) to tell of an envelope's changes, each URL once per envelope.
- ``envelope_contacts``: a named signer's e-mail address, for invitations and reminders, who set it and when the
  signer was last written to (migration 0013).
- ``envelope_deliveries``: the durable outbox of webhook calls and e-mails, with their next attempt time.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Float, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from docchain.api.db import ADDRESS, HASH, Base

PENDING_SQL = "state = 'pending'"


class EnvelopeEventRow(Base):
    __tablename__ = "envelope_events"
    __table_args__ = (
        UniqueConstraint("tx_hash", "log_index", name="uq_envelope_events_tx_log"),
        Index("ix_envelope_events_envelope", "envelope_id"),
        Index("ix_envelope_events_doc", "doc_hash"),
        Index("ix_envelope_events_block", "block_number"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    envelope_id: Mapped[str] = mapped_column(HASH)
    kind: Mapped[str] = mapped_column(String(16))  # created | signed | declined | voided | completed
    doc_hash: Mapped[str | None] = mapped_column(HASH)  # created and completed
    signer: Mapped[str | None] = mapped_column(ADDRESS)  # signed and declined
    signers: Mapped[str | None] = mapped_column(Text)  # created: the required signers, comma-separated, in order
    ordered: Mapped[bool | None] = mapped_column(Boolean)  # created
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(HASH)
    tx_hash: Mapped[str] = mapped_column(HASH)
    log_index: Mapped[int] = mapped_column(Integer)
    timestamp: Mapped[int] = mapped_column(BigInteger)
    deadline: Mapped[int | None] = mapped_column(BigInteger)  # created: unix s, 0 none; NULL: indexed before 0013


class EnvelopeChangeRow(Base):
    __tablename__ = "envelope_changes"
    __table_args__ = (Index("ix_envelope_changes_envelope", "envelope_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    envelope_id: Mapped[str] = mapped_column(HASH)
    kind: Mapped[str] = mapped_column(String(16))
    signer: Mapped[str | None] = mapped_column(ADDRESS)
    block_number: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(HASH)
    removed: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[float] = mapped_column(Float)


class WebhookRow(Base):
    __tablename__ = "envelope_webhooks"
    __table_args__ = (
        Index("ix_envelope_webhooks_envelope", "envelope_id"),
        # one receiver is called once per change, however often it is registered
        Index("uq_envelope_webhooks_envelope_url", "envelope_id", "url", unique=True),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    envelope_id: Mapped[str] = mapped_column(HASH)
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(String(64))  # the HMAC key, shown once to whoever registered the URL
    created_at: Mapped[float] = mapped_column(Float)


class ContactRow(Base):
    __tablename__ = "envelope_contacts"

    envelope_id: Mapped[str] = mapped_column(HASH, primary_key=True)
    signer: Mapped[str] = mapped_column(ADDRESS, primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    set_by: Mapped[str | None] = mapped_column(String(64))  # SHA-256 of the API key that set it; NULL: no keys
    mailed_at: Mapped[float | None] = mapped_column(Float)  # the last invitation or reminder queued to the signer


class DeliveryRow(Base):
    __tablename__ = "envelope_deliveries"
    __table_args__ = (
        # the delivery loop's one query: the pending deliveries by next attempt time
        Index(
            "ix_envelope_deliveries_due",
            "next_at",
            sqlite_where=text(PENDING_SQL),
            postgresql_where=text(PENDING_SQL),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # webhook | invitation | reminder
    envelope_id: Mapped[str] = mapped_column(HASH)
    webhook_id: Mapped[str | None] = mapped_column(String(32))  # webhook: where to
    change_id: Mapped[int | None] = mapped_column(Integer)  # webhook: what (its body)
    email: Mapped[str | None] = mapped_column(String(254))  # invitation, reminder: to whom
    signer: Mapped[str | None] = mapped_column(ADDRESS)  # invitation, reminder: for which signer
    link: Mapped[str | None] = mapped_column(Text)  # invitation, reminder: the signing link
    state: Mapped[str] = mapped_column(String(16))  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer)
    next_at: Mapped[float | None] = mapped_column(Float)  # when it is due (pending only)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)
    delivered_at: Mapped[float | None] = mapped_column(Float)
