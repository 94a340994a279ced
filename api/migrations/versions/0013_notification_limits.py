"""Envelope notification limits: one webhook per URL and envelope, a contact's owner and last e-mail, an
envelope's deadline

- ``envelope_webhooks``: unique (envelope_id, url), so that one receiver is called once per change however often
  it is registered. Duplicates already registered are dropped (the oldest of each URL stays), with their pending
  deliveries.
- ``envelope_contacts.set_by``: the SHA-256 of the API key that set the address (NULL: no keys configured), the
  only key that may change it; ``mailed_at``: when the signer was last invited or reminded, for the interval
  between two e-mails.
- ``envelope_events.deadline``: an envelope's deadline (on its creation), so that the delivery loop knows when it
  expired. Rows indexed before this revision keep NULL: their envelopes are not known to expire.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 22:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# the webhooks with an older one of the same URL and envelope (ties broken by id)
DUPLICATES = (
    "SELECT w.id FROM envelope_webhooks w WHERE EXISTS (SELECT 1 FROM envelope_webhooks o "
    "WHERE o.envelope_id = w.envelope_id AND o.url = w.url "
    "AND (o.created_at < w.created_at OR (o.created_at = w.created_at AND o.id < w.id)))"
)


def upgrade() -> None:
    op.execute(f"DELETE FROM envelope_deliveries WHERE state = 'pending' AND webhook_id IN ({DUPLICATES})")
    op.execute(f"DELETE FROM envelope_webhooks WHERE id IN ({DUPLICATES})")
    op.create_index("uq_envelope_webhooks_envelope_url", "envelope_webhooks", ["envelope_id", "url"], unique=True)
    op.add_column("envelope_contacts", sa.Column("set_by", sa.String(64), nullable=True))
    op.add_column("envelope_contacts", sa.Column("mailed_at", sa.Float(), nullable=True))
    op.add_column("envelope_events", sa.Column("deadline", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("envelope_events") as batch:
        batch.drop_column("deadline")
    with op.batch_alter_table("envelope_contacts") as batch:
        batch.drop_column("mailed_at")
        batch.drop_column("set_by")
    op.drop_index("uq_envelope_webhooks_envelope_url", table_name="envelope_webhooks")
