"""Private submissions: submissions.private

A private submission's docHash is a salted commitment to its document (docs/protocol.md, "Private mode"), not the
document's SHA-256: ``private`` lets status, lists and the explorer say so rather than show the commitment as a
file hash. False for every row accepted before this revision.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 18:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        batch.add_column(sa.Column("private", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("private")
