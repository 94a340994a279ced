"""relayer limits and spending

The relayer pays gas for whoever submits: the daily quotas (per API key or client address, and per
signer) and the gas spent per client are kept in the database, so that every replica counts against
the same figures and a restart forgets none of them.

- ``relayer_usage``: relayed writes accepted per (UTC day, subject); a subject is a client id
  (``key-<hash>`` / ``ip-<hash>``) or ``signer-<address>``.
- ``relayer_spending``: wei the relayer spent per client id, in total (decimal text: a sum of wei
  outgrows SQLite's 64-bit integers at 9.2 ether).
- ``submissions.client_id`` / ``revocations.client_id``: who asked the relayer, to charge its gas to.
- ``transactions.fee_wei``: the fee read from the transaction's receipt; set once, so a receipt seen
  twice (a reorg, two pipelines for a moment) is charged once.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "relayer_usage",
        sa.Column("day", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("used", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "subject"),
    )
    op.create_table(
        "relayer_spending",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("spent_wei", sa.String(length=80), nullable=False),
        sa.Column("transactions", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("client_id"),
    )
    with op.batch_alter_table("submissions") as batch_op:
        batch_op.add_column(sa.Column("client_id", sa.String(length=64), nullable=True))
    with op.batch_alter_table("revocations") as batch_op:
        batch_op.add_column(sa.Column("client_id", sa.String(length=64), nullable=True))
    with op.batch_alter_table("transactions") as batch_op:
        batch_op.add_column(sa.Column("fee_wei", sa.String(length=80), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("transactions") as batch_op:
        batch_op.drop_column("fee_wei")
    with op.batch_alter_table("revocations") as batch_op:
        batch_op.drop_column("client_id")
    with op.batch_alter_table("submissions") as batch_op:
        batch_op.drop_column("client_id")
    op.drop_table("relayer_spending")
    op.drop_table("relayer_usage")
