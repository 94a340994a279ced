"""Merkle anchoring: submissions.anchoring / merkle_root / merkle_proof, the roots table

A submission is anchored ``direct`` (its own record) or ``merkle`` (a leaf of a tree whose root alone goes
on chain): ``anchoring`` says which, ``direct`` for every row accepted before this revision. A Merkle
submission put in a tree holds its root and inclusion proof (the proof's JSON), found by root when the
indexer sees that root's ``RootAnchored`` event; ``roots`` keeps those events, as ``events`` keeps the
registry's others. The pending queue's partial index leads with ``anchoring``: the worker reads the two
queues apart.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 15:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

PENDING = sa.text("state = 'pending'")
IN_TREE = sa.text("merkle_root IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        batch.add_column(sa.Column("anchoring", sa.String(length=16), nullable=False, server_default="direct"))
        batch.add_column(sa.Column("merkle_root", sa.String(length=66), nullable=True))
        batch.add_column(sa.Column("merkle_proof", sa.Text(), nullable=True))
    op.drop_index("ix_submissions_pending", table_name="submissions")
    op.create_index(
        "ix_submissions_pending",
        "submissions",
        ["anchoring", "created_at"],
        sqlite_where=PENDING,
        postgresql_where=PENDING,
    )
    op.create_index(
        "ix_submissions_merkle_root", "submissions", ["merkle_root"], sqlite_where=IN_TREE, postgresql_where=IN_TREE
    )
    op.create_table(
        "roots",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("root", sa.String(length=66), nullable=False),
        sa.Column("leaf_count", sa.BigInteger(), nullable=False),
        sa.Column("sender", sa.String(length=42), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("tx_hash", "log_index", name="uq_roots_tx_log"),
    )
    op.create_index("ix_roots_root", "roots", ["root"])
    op.create_index("ix_roots_block", "roots", ["block_number"])


def downgrade() -> None:
    op.drop_index("ix_roots_block", table_name="roots")
    op.drop_index("ix_roots_root", table_name="roots")
    op.drop_table("roots")
    op.drop_index("ix_submissions_merkle_root", table_name="submissions")
    op.drop_index("ix_submissions_pending", table_name="submissions")
    op.create_index(
        "ix_submissions_pending", "submissions", ["created_at"], sqlite_where=PENDING, postgresql_where=PENDING
    )
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("merkle_proof")
        batch.drop_column("merkle_root")
        batch.drop_column("anchoring")
