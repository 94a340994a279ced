"""storage_copies.staged_by

A sealed IPFS copy is made from a ciphertext staged in the accepting API's own spool directory, which only
its host can read. ``staged_by`` names the instance (the id kept in its data directory) that staged it, so
that a process on that host makes the copy and the pipeline's copy worker, wherever it runs, leaves it alone.
Rows without it (plain copies, and sealed ones staged before this revision) are the copy worker's.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 13:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("storage_copies") as batch:
        batch.add_column(sa.Column("staged_by", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("storage_copies") as batch:
        batch.drop_column("staged_by")
