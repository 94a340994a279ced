"""submissions.signature_kind

How a submission's signature is checked is decided once, when the API accepts it: ``eoa`` (an ECDSA
signature by the signer, anchored in a ``registerBatch``) or ``erc1271`` (a contract wallet accepted it,
registered alone so the registry asks the wallet). The anchoring worker reads it instead of recovering
every signature again. Rows accepted before this revision hold null: the worker recovers those.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 09:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("submissions") as batch_op:
        batch_op.add_column(sa.Column("signature_kind", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("submissions") as batch_op:
        batch_op.drop_column("signature_kind")
