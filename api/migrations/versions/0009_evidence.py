"""Evidence bundles: the evidence_blocks and evidence tables

The indexer captures, once records reach their confirmations, the head block's header and the registry's account
proof (``evidence_blocks``, one row per capture: every record captured then shares them) and each record's
storage proofs (``evidence``: one row per direct record or Merkle leaf, keyed by its document, signer and root).
The receipt route joins them into the receipt's ``evidence`` section (chain/bundle.py). ``record_block`` is the
block of the record proven, which a reorg's rollback compares with its floor.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 16:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evidence_blocks",
        sa.Column("number", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("hash", sa.String(length=66), nullable=False),
        sa.Column("header", sa.Text(), nullable=False),
        sa.Column("registry", sa.String(length=42), nullable=False),
        sa.Column("account_proof", sa.Text(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
    )
    op.create_table(
        "evidence",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("doc_hash", sa.String(length=66), nullable=False),
        sa.Column("signer", sa.String(length=42), nullable=False),
        sa.Column("merkle_root", sa.String(length=66), nullable=True),
        sa.Column("record_block", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), sa.ForeignKey("evidence_blocks.number"), nullable=False),
        sa.Column("storage", sa.Text(), nullable=False),
    )
    op.create_index("ix_evidence_doc_signer", "evidence", ["doc_hash", "signer"])
    op.create_index("ix_evidence_block", "evidence", ["block_number"])
    op.create_index("ix_evidence_record_block", "evidence", ["record_block"])


def downgrade() -> None:
    op.drop_table("evidence")
    op.drop_table("evidence_blocks")
