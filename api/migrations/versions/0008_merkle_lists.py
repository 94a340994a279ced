"""Lists and explorer views hold Merkle leaves beside direct records: indexes in their order

The lists page newest first by (timestamp, block, log index), over the Registered events of direct records and
the Merkle leaves on chain, which have no event of their own (their root's ``RootAnchored`` is the record).
Each side gets the index of that order, by signer and by time: partial on Registered events (the Revoked ones
are looked up by pair) and on Merkle submissions with a block. They replace the events' (signer, timestamp)
and (timestamp) indexes, which served the same reads in id order.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 16:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

REGISTERED = sa.text("kind = 'Registered'")
MERKLE_ON_CHAIN = sa.text("anchoring = 'merkle' AND block_number IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_events_signer_ts", table_name="events")
    op.drop_index("ix_events_ts", table_name="events")
    op.create_index(
        "ix_events_registered_signer",
        "events",
        ["signer", "timestamp", "block_number", "log_index"],
        sqlite_where=REGISTERED,
        postgresql_where=REGISTERED,
    )
    op.create_index(
        "ix_events_registered",
        "events",
        ["timestamp", "block_number", "log_index"],
        sqlite_where=REGISTERED,
        postgresql_where=REGISTERED,
    )
    op.create_index(
        "ix_submissions_merkle_signer",
        "submissions",
        ["signer", "timestamp", "block_number"],
        sqlite_where=MERKLE_ON_CHAIN,
        postgresql_where=MERKLE_ON_CHAIN,
    )
    op.create_index(
        "ix_submissions_merkle_time",
        "submissions",
        ["timestamp", "block_number"],
        sqlite_where=MERKLE_ON_CHAIN,
        postgresql_where=MERKLE_ON_CHAIN,
    )


def downgrade() -> None:
    op.drop_index("ix_submissions_merkle_time", table_name="submissions")
    op.drop_index("ix_submissions_merkle_signer", table_name="submissions")
    op.drop_index("ix_events_registered", table_name="events")
    op.drop_index("ix_events_registered_signer", table_name="events")
    op.create_index("ix_events_ts", "events", ["timestamp"])
    op.create_index("ix_events_signer_ts", "events", ["signer", "timestamp"])
