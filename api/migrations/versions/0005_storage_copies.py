"""storage_copies

A document may be kept by several storage backends (``DOCCHAIN_STORAGE=local,s3,ipfs``): the first holds it
before the API answers 202, the others receive copies made by the pipeline's copy worker. One row per copy:
where it is (``locator``: the S3 key, the IPFS CID, the local name), whether it is sealed (encrypted on
IPFS), and its state (pending / stored / failed, api/lifecycle.py's ``CopyState``) with the attempts made,
when the next one is due and the last error. A partial index holds the pending copies by due time: the
worker's queue.

Documents stored before this revision have no rows; the local store still holds them, and reads find them
there (api/storage/replicas.py).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "storage_copies",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("doc_hash", sa.String(length=66), nullable=False),
        sa.Column("backend", sa.String(length=16), nullable=False),
        sa.Column("locator", sa.String(length=1024), nullable=False),
        sa.Column("sealed", sa.Boolean(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("staged", sa.String(length=1024), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("doc_hash", "backend", "locator", name="uq_storage_copies_doc_backend_locator"),
    )
    pending = sa.text("state = 'pending'")
    op.create_index(
        "ix_storage_copies_due",
        "storage_copies",
        ["next_attempt_at"],
        sqlite_where=pending,
        postgresql_where=pending,
    )


def downgrade() -> None:
    op.drop_index("ix_storage_copies_due", table_name="storage_copies")
    op.drop_table("storage_copies")
