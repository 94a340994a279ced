"""Envelope notifications: envelope_events, envelope_changes, envelope_webhooks, envelope_contacts,
envelope_deliveries

The indexer keeps the envelopes contract's events (``envelope_events``, rolled back with a reorg) and appends
what subscribers are told to ``envelope_changes`` (an event, or its removal by a reorg); each change queues one
``envelope_deliveries`` row per webhook of its envelope in the same transaction, and the invitation and reminder
routes queue e-mails there too, to the addresses of ``envelope_contacts``. See api/notifications/.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 22:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

HASH = sa.String(66)
ADDRESS = sa.String(42)
PENDING = sa.text("state = 'pending'")


def upgrade() -> None:
    op.create_table(
        "envelope_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("envelope_id", HASH, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("doc_hash", HASH, nullable=True),
        sa.Column("signer", ADDRESS, nullable=True),
        sa.Column("signers", sa.Text(), nullable=True),
        sa.Column("ordered", sa.Boolean(), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", HASH, nullable=False),
        sa.Column("tx_hash", HASH, nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("tx_hash", "log_index", name="uq_envelope_events_tx_log"),
    )
    op.create_index("ix_envelope_events_envelope", "envelope_events", ["envelope_id"])
    op.create_index("ix_envelope_events_doc", "envelope_events", ["doc_hash"])
    op.create_index("ix_envelope_events_block", "envelope_events", ["block_number"])
    op.create_table(
        "envelope_changes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("envelope_id", HASH, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("signer", ADDRESS, nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", HASH, nullable=False),
        sa.Column("removed", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_envelope_changes_envelope", "envelope_changes", ["envelope_id", "id"])
    op.create_table(
        "envelope_webhooks",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("envelope_id", HASH, nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_envelope_webhooks_envelope", "envelope_webhooks", ["envelope_id"])
    op.create_table(
        "envelope_contacts",
        sa.Column("envelope_id", HASH, primary_key=True),
        sa.Column("signer", ADDRESS, primary_key=True),
        sa.Column("email", sa.String(254), nullable=False),
    )
    op.create_table(
        "envelope_deliveries",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("envelope_id", HASH, nullable=False),
        sa.Column("webhook_id", sa.String(32), nullable=True),
        sa.Column("change_id", sa.Integer(), nullable=True),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("signer", ADDRESS, nullable=True),
        sa.Column("link", sa.Text(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", sa.Float(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("delivered_at", sa.Float(), nullable=True),
    )
    op.create_index(
        "ix_envelope_deliveries_due",
        "envelope_deliveries",
        ["next_at"],
        sqlite_where=PENDING,
        postgresql_where=PENDING,
    )


def downgrade() -> None:
    op.drop_index("ix_envelope_deliveries_due", table_name="envelope_deliveries")
    op.drop_table("envelope_deliveries")
    op.drop_table("envelope_contacts")
    op.drop_index("ix_envelope_webhooks_envelope", table_name="envelope_webhooks")
    op.drop_table("envelope_webhooks")
    op.drop_index("ix_envelope_changes_envelope", table_name="envelope_changes")
    op.drop_table("envelope_changes")
    for name in ("block", "doc", "envelope"):
        op.drop_index(f"ix_envelope_events_{name}", table_name="envelope_events")
    op.drop_table("envelope_events")
