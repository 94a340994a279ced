"""Envelope actions: the envelope_actions outbox, submissions.envelope_id

The API relays an envelope's create, decline, void and countRegistration (docs/protocol.md, "Envelopes over
REST"): each accepted action is a row of ``envelope_actions`` written before the 202, walking pending →
submitted → done | failed (api/lifecycle.py, ``ActionState``), sent by the anchoring worker in a transaction of
the ``transactions`` table. ``actor`` is who the action is for (the requester of a create or void, the signer
of a decline or count): one action of a kind per (envelope, actor). An envelope's signature is a submission
with ``envelope_id`` set, anchored through the envelopes contract's ``sign``; NULL for every other submission.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 21:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

PENDING = sa.text("state = 'pending'")
IN_ENVELOPE = sa.text("envelope_id IS NOT NULL")


def upgrade() -> None:
    op.create_table(
        "envelope_actions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("envelope_id", sa.String(length=66), nullable=False),
        sa.Column("doc_hash", sa.String(length=66), nullable=False),
        sa.Column("actor", sa.String(length=42), nullable=False),
        sa.Column("message_json", sa.Text(), nullable=False),
        sa.Column("signature", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("tx_id", sa.Integer(), sa.ForeignKey("transactions.id"), nullable=True),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("client_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.UniqueConstraint("envelope_id", "kind", "actor", name="uq_envelope_actions_envelope_kind_actor"),
    )
    op.create_index("ix_envelope_actions_envelope", "envelope_actions", ["envelope_id"])
    op.create_index("ix_envelope_actions_doc", "envelope_actions", ["doc_hash", "kind"])
    op.create_index(
        "ix_envelope_actions_pending",
        "envelope_actions",
        ["created_at"],
        sqlite_where=PENDING,
        postgresql_where=PENDING,
    )
    op.create_index("ix_envelope_actions_tx", "envelope_actions", ["tx_id"])
    with op.batch_alter_table("submissions") as batch:
        batch.add_column(sa.Column("envelope_id", sa.String(length=66), nullable=True))
    op.create_index(
        "ix_submissions_envelope",
        "submissions",
        ["envelope_id"],
        sqlite_where=IN_ENVELOPE,
        postgresql_where=IN_ENVELOPE,
    )


def downgrade() -> None:
    op.drop_index("ix_submissions_envelope", table_name="submissions")
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("envelope_id")
    op.drop_index("ix_envelope_actions_tx", table_name="envelope_actions")
    op.drop_index("ix_envelope_actions_pending", table_name="envelope_actions")
    op.drop_index("ix_envelope_actions_doc", table_name="envelope_actions")
    op.drop_index("ix_envelope_actions_envelope", table_name="envelope_actions")
    op.drop_table("envelope_actions")
