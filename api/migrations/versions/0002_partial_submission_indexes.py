"""partial submission indexes

The worker reads the pending queue, the indexer the anchored rows awaiting confirmations, and both the
rows of one transaction: three partial indexes replace the full (state, created_at) and tx_id indexes,
so a submission's changes of state touch an index entry only where a query needs it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 11:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

PENDING = sa.text("state = 'pending'")
ANCHORED = sa.text("state = 'anchored'")
HAS_TX = sa.text("tx_id IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_submissions_state_created", table_name="submissions")
    op.drop_index("ix_submissions_tx", table_name="submissions")
    op.create_index(
        "ix_submissions_pending", "submissions", ["created_at"], sqlite_where=PENDING, postgresql_where=PENDING
    )
    op.create_index(
        "ix_submissions_anchored", "submissions", ["block_number"], sqlite_where=ANCHORED, postgresql_where=ANCHORED
    )
    op.create_index("ix_submissions_tx", "submissions", ["tx_id"], sqlite_where=HAS_TX, postgresql_where=HAS_TX)


def downgrade() -> None:
    op.drop_index("ix_submissions_tx", table_name="submissions")
    op.drop_index("ix_submissions_anchored", table_name="submissions")
    op.drop_index("ix_submissions_pending", table_name="submissions")
    op.create_index("ix_submissions_tx", "submissions", ["tx_id"])
    op.create_index("ix_submissions_state_created", "submissions", ["state", "created_at"])
