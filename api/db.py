"""Database: SQLAlchemy 2 async models, engine set-up (SQLite in WAL mode or PostgreSQL), migrations, and the
pipeline's lease (:class:`Lease`). The lifecycle's statements live in api/store.py.

Tables:
- ``submissions``: the durable outbox. A row is written before the API answers 202 and walks
  pending → submitted → anchored → confirmed (or failed / revoked): api/lifecycle.py.
- ``transactions``: every transaction the relayer signed, with its hash and raw bytes recorded *before*
  broadcast, so a restart can re-send or reconcile it.
- ``revocations``: the outbox of signed revocations.
- ``envelope_actions``: the outbox of an envelope's relayed actions (create, decline, void, count).
- ``events``: the registry's events as indexed from the chain (the source of truth for status and lists).
- ``roots``: the registry's ``RootAnchored`` events (Merkle roots anchored), as indexed.
- ``blocks``: headers of indexed blocks (event blocks and recent tips), for timestamps and reorg detection.
- ``meta``: small key/value state (indexer cursor, chain head, evidence cursor).
- ``evidence_blocks`` / ``evidence``: the evidence bundles the indexer captures (a block's header and the
  registry's account proof, shared by the records captured at it; each record's storage proofs).
- ``storage_copies``: each document's copy per storage backend, and the outbox of the copies still to make.
- ``relayer_usage`` / ``relayer_spending``: the relayer's daily quotas and the gas it spent per client
  (see :func:`reserve_usage` and :func:`charge_fee`).

Hashes are stored as 0x-prefixed lower-case hex text and addresses in EIP-55 form: the same text the API
speaks, portable across SQLite and PostgreSQL, and readable in a SQL shell.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    Connection,
    CursorResult,
    Engine,
    Executable,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    create_engine,
    delete,
    event,
    false,
    func,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql import Select
from sqlalchemy.sql.dml import Insert, UpdateBase

from docchain.api.lifecycle import Anchoring, CopyState, State
from docchain.chain.errors import DocchainError, NodeError

log = logging.getLogger("docchain.api.db")

T = TypeVar("T")
HASH = String(66)
ADDRESS = String(42)
CLIENT_ID = String(64)  # key-<hash> / ip-<hash> (api/limits.py), or signer-<address> in relayer_usage
WEI = String(80)  # decimal text: sums of wei outgrow SQLite's 64-bit integers (9.2 ether)


class Base(DeclarativeBase):
    pass


class Submission(Base):
    __tablename__ = "submissions"
    __table_args__ = (UniqueConstraint("doc_hash", "signer", name="uq_submissions_doc_signer"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    doc_hash: Mapped[str] = mapped_column(HASH)
    signer: Mapped[str] = mapped_column(ADDRESS)
    metadata_hash: Mapped[str] = mapped_column(HASH)
    supersedes: Mapped[str] = mapped_column(HASH)
    deadline: Mapped[str] = mapped_column(String(80))  # uint256 as decimal text: wider than any SQL integer
    signature: Mapped[str] = mapped_column(Text)
    # eoa | erc1271 (lifecycle.SignatureKind), decided at acceptance; null on rows accepted before the column
    signature_kind: Mapped[str | None] = mapped_column(String(16))
    metadata_json: Mapped[str | None] = mapped_column(Text)
    stored: Mapped[bool] = mapped_column(Boolean, default=False)
    file_name: Mapped[str | None] = mapped_column(String(1024))
    file_size: Mapped[int | None] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    tx_id: Mapped[int | None] = mapped_column(ForeignKey("transactions.id"))
    tx_hash: Mapped[str | None] = mapped_column(HASH)
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    block_hash: Mapped[str | None] = mapped_column(HASH)
    timestamp: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    client_id: Mapped[str | None] = mapped_column(CLIENT_ID)  # who asked the relayer (charge_fee)
    # direct | merkle (lifecycle.Anchoring), chosen at acceptance
    anchoring: Mapped[str] = mapped_column(String(16), default="direct", server_default="direct")
    # the tree a Merkle submission was put in: its root, and its InclusionProof's JSON (chain/merkle.py), written
    # with the anchorRoot transaction that carries it and cleared when that transaction does not land
    merkle_root: Mapped[str | None] = mapped_column(HASH)
    merkle_proof: Mapped[str | None] = mapped_column(Text)
    # the docHash is a salted commitment, not the document's SHA-256 (docs/protocol.md, "Private mode"; 0010)
    private: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # the envelope this signature is for: anchored through the envelopes contract's sign (migration 0011)
    envelope_id: Mapped[str | None] = mapped_column(HASH)


# Partial indexes hold only the rows a query looks for (the worker's pending queue, the anchored rows
# awaiting confirmations, the rows of a transaction): a submission enters and leaves each once, where a
# full (state, created_at) index was rewritten at every change of state. See migration 0002. Queries use
# the same predicates, rendered as SQL literals rather than bound parameters: a planner can use a partial
# index only when it sees the value (PostgreSQL's generic plans of prepared statements do not). The store's
# raw SQL spells the pending predicate with PENDING_SQL, so it cannot drift from the index's.
PENDING_SQL = f"state = '{State.PENDING.value}'"
IS_PENDING = text(PENDING_SQL)
IS_ANCHORED = text(f"state = '{State.ANCHORED.value}'")
_HAS_TX = Submission.__table__.c.tx_id.isnot(None)
# the pending queue per anchoring mode: the worker takes direct and Merkle submissions apart (migration 0007)
Index(
    "ix_submissions_pending",
    Submission.anchoring,
    Submission.created_at,
    sqlite_where=IS_PENDING,
    postgresql_where=IS_PENDING,
)
_IN_TREE = Submission.__table__.c.merkle_root.isnot(None)
Index("ix_submissions_merkle_root", Submission.merkle_root, sqlite_where=_IN_TREE, postgresql_where=_IN_TREE)
Index("ix_submissions_anchored", Submission.block_number, sqlite_where=IS_ANCHORED, postgresql_where=IS_ANCHORED)
Index("ix_submissions_tx", Submission.tx_id, sqlite_where=_HAS_TX, postgresql_where=_HAS_TX)
# Merkle leaves on chain, in the order the lists page through them (by signer, by time): a leaf has no event of
# its own, so these take the place the events' indexes hold for direct records (migration 0008)
MERKLE_ON_CHAIN_SQL = f"anchoring = '{Anchoring.MERKLE.value}' AND block_number IS NOT NULL"
_MERKLE_ON_CHAIN = text(MERKLE_ON_CHAIN_SQL)
Index(
    "ix_submissions_merkle_signer",
    Submission.signer,
    Submission.timestamp,
    Submission.block_number,
    sqlite_where=_MERKLE_ON_CHAIN,
    postgresql_where=_MERKLE_ON_CHAIN,
)
Index(
    "ix_submissions_merkle_time",
    Submission.timestamp,
    Submission.block_number,
    sqlite_where=_MERKLE_ON_CHAIN,
    postgresql_where=_MERKLE_ON_CHAIN,
)
_IN_ENVELOPE = Submission.__table__.c.envelope_id.isnot(None)
Index("ix_submissions_envelope", Submission.envelope_id, sqlite_where=_IN_ENVELOPE, postgresql_where=_IN_ENVELOPE)


class StorageCopy(Base):
    """A document's copy in one storage backend: the outbox of the copies to make, and where each one is.

    ``locator`` is the backend's name for the copy (api/storage/base.py, ``Placement``): known from the
    start for a sealed IPFS copy (the CID of the ciphertext staged at acceptance, ``staged``), empty for a
    plain copy until it is stored. A sealed copy is one per submission (each has its own key), a plain copy
    one per (document, backend)."""

    __tablename__ = "storage_copies"
    __table_args__ = (UniqueConstraint("doc_hash", "backend", "locator", name="uq_storage_copies_doc_backend_locator"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    doc_hash: Mapped[str] = mapped_column(HASH)
    backend: Mapped[str] = mapped_column(String(16))  # local | s3 | ipfs
    locator: Mapped[str] = mapped_column(String(1024))
    sealed: Mapped[bool] = mapped_column(Boolean)
    size: Mapped[int | None] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16))  # lifecycle.CopyState
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[float | None] = mapped_column(Float)
    last_error: Mapped[str | None] = mapped_column(Text)
    staged: Mapped[str | None] = mapped_column(String(1024))  # the spool file a sealed copy is made from
    # the instance whose spool holds ``staged`` (its host makes the copy); NULL: the pipeline's copy worker
    staged_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


# The copy worker's queue: only pending copies, by when they are due (see migration 0005)
COPY_PENDING_SQL = f"state = '{CopyState.PENDING.value}'"
_COPY_PENDING = text(COPY_PENDING_SQL)
Index(
    "ix_storage_copies_due",
    StorageCopy.next_attempt_at,
    sqlite_where=_COPY_PENDING,
    postgresql_where=_COPY_PENDING,
)


class Transaction(Base):
    __tablename__ = "transactions"
    __table_args__ = (Index("ix_transactions_state", "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tx_hash: Mapped[str] = mapped_column(HASH, unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # register_batch | register | anchor_root | revoke
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    nonce: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16))  # lifecycle.TxState
    sent_at: Mapped[float | None] = mapped_column(Float)
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    gas_used: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)
    fee_wei: Mapped[str | None] = mapped_column(WEI)  # set once, by charge_fee


class RevocationRow(Base):
    __tablename__ = "revocations"
    __table_args__ = (
        UniqueConstraint("doc_hash", "signer", "nonce", name="uq_revocations_doc_signer_nonce"),
        Index("ix_revocations_state", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    doc_hash: Mapped[str] = mapped_column(HASH)
    signer: Mapped[str] = mapped_column(ADDRESS)
    nonce: Mapped[str] = mapped_column(String(80))
    deadline: Mapped[str] = mapped_column(String(80))
    signature: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))  # lifecycle.RevocationState
    tx_id: Mapped[int | None] = mapped_column(ForeignKey("transactions.id"))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)
    client_id: Mapped[str | None] = mapped_column(CLIENT_ID)


# ------------------------------------------------------------------ envelope actions (migration 0011)


class EnvelopeActionRow(Base):
    """The outbox of an envelope's relayed actions (create, decline, void, count): written before the API
    answers 202 and sent by the anchoring worker (api/lifecycle.py ``ActionState``). ``actor`` is the requester
    of a create or void, the signer of a decline or count; ``message_json`` the signed message (a count's
    ``{envelopeId, signer}``), ``signature`` NULL for a count, which no one signs."""

    __tablename__ = "envelope_actions"
    __table_args__ = (
        UniqueConstraint("envelope_id", "kind", "actor", name="uq_envelope_actions_envelope_kind_actor"),
        Index("ix_envelope_actions_envelope", "envelope_id"),
        Index("ix_envelope_actions_doc", "doc_hash", "kind"),
        Index("ix_envelope_actions_tx", "tx_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # lifecycle.ActionKind
    envelope_id: Mapped[str] = mapped_column(HASH)
    doc_hash: Mapped[str] = mapped_column(HASH)
    actor: Mapped[str] = mapped_column(ADDRESS)
    message_json: Mapped[str] = mapped_column(Text)
    signature: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))  # lifecycle.ActionState
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    tx_id: Mapped[int | None] = mapped_column(ForeignKey("transactions.id"))
    tx_hash: Mapped[str | None] = mapped_column(HASH)
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    client_id: Mapped[str | None] = mapped_column(CLIENT_ID)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


Index(
    "ix_envelope_actions_pending",
    EnvelopeActionRow.created_at,
    sqlite_where=text("state = 'pending'"),
    postgresql_where=text("state = 'pending'"),
)


REGISTERED_SQL = "kind = 'Registered'"


class EventRow(Base):
    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("tx_hash", "log_index", name="uq_events_tx_log"),
        Index("ix_events_doc_signer", "doc_hash", "signer"),
        Index("ix_events_block", "block_number"),
        # the lists' order (time, then place on chain) over Registered events alone, by signer and by time
        # (migration 0008)
        Index(
            "ix_events_registered_signer",
            "signer",
            "timestamp",
            "block_number",
            "log_index",
            sqlite_where=text(REGISTERED_SQL),
            postgresql_where=text(REGISTERED_SQL),
        ),
        Index(
            "ix_events_registered",
            "timestamp",
            "block_number",
            "log_index",
            sqlite_where=text(REGISTERED_SQL),
            postgresql_where=text(REGISTERED_SQL),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # Registered | Revoked
    doc_hash: Mapped[str] = mapped_column(HASH)
    signer: Mapped[str] = mapped_column(ADDRESS)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(HASH)
    tx_hash: Mapped[str] = mapped_column(HASH)
    log_index: Mapped[int] = mapped_column(Integer)
    metadata_hash: Mapped[str | None] = mapped_column(HASH)
    supersedes: Mapped[str | None] = mapped_column(HASH)
    timestamp: Mapped[int] = mapped_column(BigInteger)


class RootRow(Base):
    """A ``RootAnchored`` event of the registry as indexed: the Merkle root it anchored, in which block."""

    __tablename__ = "roots"
    __table_args__ = (
        UniqueConstraint("tx_hash", "log_index", name="uq_roots_tx_log"),
        Index("ix_roots_root", "root"),
        Index("ix_roots_block", "block_number"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    root: Mapped[str] = mapped_column(HASH)
    leaf_count: Mapped[int] = mapped_column(BigInteger)
    sender: Mapped[str] = mapped_column(ADDRESS)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(HASH)
    tx_hash: Mapped[str] = mapped_column(HASH)
    log_index: Mapped[int] = mapped_column(Integer)
    timestamp: Mapped[int] = mapped_column(BigInteger)


class BlockRow(Base):
    __tablename__ = "blocks"

    number: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(HASH)
    timestamp: Mapped[int] = mapped_column(BigInteger)


class Meta(Base):
    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


# ------------------------------------------------------------------ evidence bundles (migration 0009)


class EvidenceBlockRow(Base):
    """The block a capture proved, and the registry's account and code in it: shared by the records captured."""

    __tablename__ = "evidence_blocks"

    number: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(HASH)
    header: Mapped[str] = mapped_column(Text)  # RLP, hex
    registry_address: Mapped[str] = mapped_column("registry", ADDRESS)  # (``registry`` is Declarative's own)
    account_proof: Mapped[str] = mapped_column(Text)  # JSON list of hex nodes
    code: Mapped[str] = mapped_column(Text)  # hex


class EvidenceRow(Base):
    """One record's storage proofs (the JSON list of a bundle's ``storage``), against its capture's block: a
    direct record (``merkle_root`` NULL) or a Merkle leaf. ``record_block``, the block of the record proven, is
    what a reorg's rollback compares with its floor."""

    __tablename__ = "evidence"
    __table_args__ = (
        Index("ix_evidence_doc_signer", "doc_hash", "signer"),
        Index("ix_evidence_block", "block_number"),
        Index("ix_evidence_record_block", "record_block"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    doc_hash: Mapped[str] = mapped_column(HASH)
    signer: Mapped[str] = mapped_column(ADDRESS)
    merkle_root: Mapped[str | None] = mapped_column(HASH)
    record_block: Mapped[int] = mapped_column(BigInteger)
    block_number: Mapped[int] = mapped_column(BigInteger, ForeignKey("evidence_blocks.number"))
    storage: Mapped[str] = mapped_column(Text)


# ------------------------------------------------------------------ relayer quotas and spending (api/limits.py)


class RelayerUsage(Base):
    """Relayed writes accepted per UTC day (days since the epoch) and subject (a client id or a signer)."""

    __tablename__ = "relayer_usage"

    day: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    subject: Mapped[str] = mapped_column(CLIENT_ID, primary_key=True)
    used: Mapped[int] = mapped_column(BigInteger)


class RelayerSpending(Base):
    """Wei the relayer spent on each client's writes, since the table was created."""

    __tablename__ = "relayer_spending"

    client_id: Mapped[str] = mapped_column(CLIENT_ID, primary_key=True)
    spent_wei: Mapped[str] = mapped_column(WEI)
    transactions: Mapped[int] = mapped_column(BigInteger)


UNATTRIBUTED = "unattributed"  # rows accepted before client ids were recorded
_USAGE = cast(Table, RelayerUsage.__table__)  # (typed as a FromClause, which update() does not take)
_SPENDING = cast(Table, RelayerSpending.__table__)
# Rows are created first (a no-op when they exist), then locked in one order: on PostgreSQL, concurrent
# replicas then queue on the same rows instead of each counting from a stale figure or deadlocking;
# SQLite's writer lock already serialises them (FOR UPDATE is not rendered there). The same SQL runs on
# both (ON CONFLICT DO NOTHING: SQLite >= 3.24, PostgreSQL >= 9.5).
_NEW_USAGE = text("INSERT INTO relayer_usage (day, subject, used) VALUES (:day, :subject, 0) ON CONFLICT DO NOTHING")
_NEW_SPENDING = text(
    "INSERT INTO relayer_spending (client_id, spent_wei, transactions) VALUES (:client_id, '0', 0) "
    "ON CONFLICT DO NOTHING"
)
_SET_USAGE = (
    update(_USAGE)
    .where(_USAGE.c.day == bindparam("b_day"), _USAGE.c.subject == bindparam("b_subject"))
    .values(used=bindparam("b_used"))
)
_SET_SPENDING = (
    update(_SPENDING)
    .where(_SPENDING.c.client_id == bindparam("b_client"))
    .values(spent_wei=bindparam("b_wei"), transactions=bindparam("b_txs"))
)


def reserve_usage(
    s: Session, day: int, requests: Sequence[Sequence[tuple[str, int]]], *, forget_before: int | None = None
) -> list[tuple[str, int] | None]:
    """Count each request against its subjects' quotas for ``day``, in order: a request is counted against
    all of its ``(subject, limit)`` pairs, or (when one of them is at its limit) against none. Returns, per
    request, None when counted, else the pair that refused it. ``forget_before``: drop older days' rows."""
    if forget_before is not None:
        s.execute(delete(_USAGE).where(_USAGE.c.day < forget_before))
    subjects = sorted({subject for request in requests for subject, _ in request})
    if not subjects:
        return [None] * len(requests)
    s.execute(_NEW_USAGE, [{"day": day, "subject": subject} for subject in subjects])
    locked = (
        select(_USAGE.c.subject, _USAGE.c.used)
        .where(_USAGE.c.day == day, _USAGE.c.subject.in_(subjects))
        .order_by(_USAGE.c.subject)
        .with_for_update()
    )
    before: dict[str, int] = {subject: used for subject, used in s.execute(locked).tuples()}
    used = dict(before)
    refusals: list[tuple[str, int] | None] = []
    for request in requests:
        over = next(((subject, limit) for subject, limit in request if used[subject] >= limit), None)
        if over is None:
            for subject, _ in request:
                used[subject] += 1
        refusals.append(over)
    changed = [{"b_day": day, "b_subject": k, "b_used": n} for k, n in used.items() if n != before[k]]
    if changed:
        s.execute(_SET_USAGE, changed)
    return refusals


def release_usage(s: Session, day: int, subjects: Sequence[str]) -> None:
    """Give back what :func:`reserve_usage` counted for a request that turned out not to be a new write."""
    for subject in sorted(subjects):  # rows locked in reserve_usage's order: two transactions never deadlock
        s.execute(
            update(_USAGE)
            .where(_USAGE.c.day == day, _USAGE.c.subject == subject, _USAGE.c.used > 0)
            .values(used=_USAGE.c.used - 1)
        )


def charge_fee(s: Session, tx_id: int, fee_wei: int) -> None:
    """Charge a mined transaction's fee (from its receipt) to the clients whose writes it carried, split
    evenly per write (the wei that do not divide go one each to the first clients in id order). A
    transaction is charged once, however often its receipt is seen (:attr:`Transaction.fee_wei`)."""
    txs = cast(Table, Transaction.__table__)
    first = s.execute(update(txs).where(txs.c.id == tx_id, txs.c.fee_wei.is_(None)).values(fee_wei=str(fee_wei)))
    if cast("CursorResult[Any]", first).rowcount != 1 or fee_wei <= 0:
        return
    writes: dict[str, int] = {}
    for table in (
        cast(Table, Submission.__table__),
        cast(Table, RevocationRow.__table__),
        cast(Table, EnvelopeActionRow.__table__),
    ):
        per_client = select(table.c.client_id, func.count()).where(table.c.tx_id == tx_id).group_by(table.c.client_id)
        for client, n in s.execute(per_client).tuples():
            key = client or UNATTRIBUTED
            writes[key] = writes.get(key, 0) + n
    if not writes:
        writes[UNATTRIBUTED] = 1
    share, left = divmod(fee_wei, sum(writes.values()))
    owed: dict[str, int] = {}
    for client in sorted(writes):
        extra = min(left, writes[client])
        left -= extra
        owed[client] = share * writes[client] + extra
    clients = sorted(owed)
    s.execute(_NEW_SPENDING, [{"client_id": client} for client in clients])
    locked = (
        select(_SPENDING.c.client_id, _SPENDING.c.spent_wei, _SPENDING.c.transactions)
        .where(_SPENDING.c.client_id.in_(clients))
        .order_by(_SPENDING.c.client_id)
        .with_for_update()
    )
    s.execute(
        _SET_SPENDING,
        [
            {"b_client": client, "b_wei": str(int(spent) + owed[client]), "b_txs": txs_count + 1}
            for client, spent, txs_count in s.execute(locked).tuples()
        ],
    )


CHAIN_ID = "chain.id"
CHAIN_REGISTRY = "chain.registry"


class ChainMismatch(NodeError):
    """The configured chain or registry is not the one the database was built from. A :class:`NodeError`
    subclass: chain-bound routes answer 503 with this message and the worker and indexer stay paused."""


def now() -> float:
    return time.time()


def new_id() -> str:
    """A UUIDv7 (RFC 9562) as 32 hex digits. Time-ordered, so a new row appends to the primary-key index
    instead of dirtying a random page of it (measured: the commit of a 50-row outbox batch went from
    ~0.8 to ~0.5 ms)."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")  # 12 bits of rand_a, 62 of rand_b
    value = (ms & (1 << 48) - 1) << 80 | 0x7 << 76 | (rand >> 62 & 0xFFF) << 64 | 0b10 << 62 | rand & (1 << 62) - 1
    return f"{value:032x}"


def pg_notify(channel: str, payload: str) -> Select[Any]:
    """PostgreSQL's ``NOTIFY channel, payload`` (payload at most 8,000 bytes), delivered to listeners when
    the transaction that runs it commits."""
    return select(func.pg_notify(channel, payload))


class Many:
    """A write statement run with many parameter sets, handed to the driver as positional tuples.

    Through ``Session.execute(statement, rows)`` SQLAlchemy builds and processes a parameter dictionary
    for every row: ~10 us a row (measured), a third of the CPU of the outbox's transactions and of the
    indexer's, spent with the database's write lock held. The statements given here take plain values
    (text, numbers, booleans, None) that sqlite3 and asyncpg accept as they are, so each dialect's compiled
    SQL is kept and the rows go straight to the cursor's ``executemany``. Every parameter must come from
    the rows: constants belong in the SQL (``null()``, ``literal_column``), not in bound parameters. An
    INSERT writes the columns its rows name (the others take their defaults); all rows name the same ones.
    """

    def __init__(self, statement: UpdateBase) -> None:
        self.statement = statement
        self._insert = isinstance(statement, Insert)
        self._compiled: dict[tuple[str, tuple[str, ...] | None], tuple[str, tuple[str, ...]]] = {}

    def __call__(self, s: Session, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        conn = s.connection()
        key = (conn.dialect.name, tuple(rows[0]) if self._insert else None)
        compiled = self._compiled.get(key)
        if compiled is None:
            sql = self.statement.compile(dialect=conn.dialect, column_keys=None if key[1] is None else list(key[1]))
            assert sql.positiontup is not None, "sqlite3 and asyncpg take positional parameters"
            compiled = self._compiled[key] = (sql.string, tuple(sql.positiontup))
        text_, names = compiled
        conn.exec_driver_sql(text_, [tuple(map(row.__getitem__, names)) for row in rows])


class DatabaseTooNew(DocchainError):
    """The database is at a migration revision this docchain does not have: a newer docchain migrated it."""


class DatabaseBusy(DocchainError):
    """SQLite's write lock stayed taken for longer than :data:`LOCK_TIMEOUT_S`."""


LOCK_TIMEOUT_S = 30.0
_FIRST_WAIT_S = 0.0005  # lock waits: most transactions hold the lock for a millisecond or two
_MAX_WAIT_S = 0.005
LISTEN_RETRY_S = 2.0  # a listening connection's liveness check, and the wait before listening again
MIGRATION_LOCK = 0x646F6363_6D696772  # "doccmigr": the PostgreSQL advisory lock replicas migrate under
_CHECKPOINT_EVERY = 200  # commits between WAL checkpoints (run in a thread, off the event loop)


class Database:
    """Engine, reads and write transactions (SQLite in WAL mode, or PostgreSQL).

    Every write goes through :meth:`transaction`: ``fn(session)`` runs whole, with a synchronous
    :class:`~sqlalchemy.orm.Session`, as one transaction. On SQLite it runs on the event loop itself, on a
    connection that never sleeps inside SQLite waiting for the write lock: ``BEGIN IMMEDIATE`` fails at once
    when another process holds it, and the coroutine retries after a short sleep. A transaction then holds
    the lock for as long as its statements take. Through aiosqlite it held it across one thread hand-off
    per statement, each waiting for the GIL (measured with the pipeline anchoring ~2,000 docs/s: the
    indexer's transaction held the lock 30 ms on average, while the API's submissions waited behind it),
    and SQLite's own busy handler sleeps in steps of up to 100 ms. On PostgreSQL, ``fn`` runs through the
    async driver (``run_sync``).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self._sqlite_path: str | None = None
        self._sync: Engine | None = None
        self._checkpointer: ThreadPoolExecutor | None = None
        self._commits = 0
        self._ro: sqlite3.Connection | None = None
        if self.is_sqlite:
            path = url.split(":///", 1)[1] if ":///" in url else ""
            if not path or path == ":memory:":
                raise ValueError("SQLite needs a database file (sqlite+aiosqlite:///path/to/docchain.db)")
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._sqlite_path = path
            self.engine: AsyncEngine = create_async_engine(url, connect_args={"timeout": LOCK_TIMEOUT_S})
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            self._sync = create_engine(
                f"sqlite:///{path}",
                poolclass=StaticPool,
                connect_args={"isolation_level": None, "check_same_thread": False},
            )
            event.listen(self._sync, "connect", _writer_pragmas)
            event.listen(self._sync, "begin", _begin_immediate)
            self._checkpointer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="docchain-sqlite-checkpoint")
        else:
            self.engine = create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # one writer at a time is all SQLite allows: this process's writers queue here, in order
        self._write_lock = asyncio.Lock() if self.is_sqlite else None

    @property
    def sqlite_path(self) -> str | None:
        return self._sqlite_path

    async def transaction(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn(session)`` as one transaction: committed when it returns, rolled back when it raises.

        ``fn`` runs once the write lock is held (on SQLite the retries happen before it, at ``BEGIN``); it must
        only use the session and must not block on anything but the database.
        """
        if self._sync is None:
            async with self.sessions() as session, session.begin():
                return await session.run_sync(fn)
        assert self._write_lock is not None
        loop = asyncio.get_running_loop()
        async with self._write_lock:
            wait, give_up = _FIRST_WAIT_S, loop.time() + LOCK_TIMEOUT_S
            while True:
                try:
                    result = self._sqlite_transaction(self._sync, fn)
                    break
                except _Busy:
                    if loop.time() > give_up:
                        raise DatabaseBusy(f"the database stayed locked for {LOCK_TIMEOUT_S:.0f} s") from None
                    await asyncio.sleep(wait)
                    wait = min(wait * 2, _MAX_WAIT_S)
        self._commits += 1
        if self._commits % _CHECKPOINT_EVERY == 0 and self._checkpointer and self._sqlite_path:
            self._checkpointer.submit(_checkpoint, self._sqlite_path)
        return result

    async def execute(self, statement: Executable, params: list[dict[str, Any]] | None = None) -> None:
        """One statement (``params``: executemany) as its own transaction."""
        await self.transaction(lambda s: s.execute(statement, params))

    @staticmethod
    def _sqlite_transaction(engine: Engine, fn: Callable[[Session], T]) -> T:
        with engine.connect() as conn:
            try:
                txn = conn.begin()  # BEGIN IMMEDIATE: the write lock now, or _Busy
            except OperationalError as exc:
                if _locked(exc):
                    raise _Busy from exc
                raise
            with Session(bind=conn, expire_on_commit=False) as session:  # joins the connection's transaction
                result = fn(session)
                session.flush()
            txn.commit()
            return result

    async def query(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """A small indexed read on a hot path (verify, status), as plain SQL.

        On SQLite it runs on a read-only connection in the calling thread: an indexed lookup takes tens of
        microseconds, less than one hop to aiosqlite's thread, and WAL readers never wait for the writer.
        Each statement is its own read transaction, so it sees everything committed before it. On other
        databases it goes through the async engine.
        """
        if self._sqlite_path:
            if self._ro is None:
                self._ro = sqlite3.connect(
                    f"file:{self._sqlite_path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
                )
                self._ro.execute("PRAGMA busy_timeout=30000")
            return self._ro.execute(sql, params).fetchall()
        async with self.engine.connect() as conn:
            return [tuple(r) for r in (await conn.execute(text(sql), params)).all()]

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    async def claim_chain(self, chain_id: int, registry: str) -> None:
        """Record which chain and registry this database indexes (first start), or raise
        :class:`ChainMismatch` when it already belongs to another one."""

        def claim(s: Session) -> dict[str, str]:
            known = dict(s.execute(select(Meta.key, Meta.value).where(Meta.key.in_((CHAIN_ID, CHAIN_REGISTRY)))).all())
            if not known:
                s.add_all([Meta(key=CHAIN_ID, value=str(chain_id)), Meta(key=CHAIN_REGISTRY, value=registry)])
            return known

        try:
            known = await self.transaction(claim)
        except IntegrityError:  # another replica claimed it between this one's read and its insert: read again
            known = await self.transaction(claim)
        if not known:
            return
        if known.get(CHAIN_ID) != str(chain_id) or str(known.get(CHAIN_REGISTRY, "")).lower() != registry.lower():
            raise ChainMismatch(
                f"the database {self.engine.url.render_as_string()} belongs to chain {known.get(CHAIN_ID)} / registry "
                f"{known.get(CHAIN_REGISTRY)}, but the configured node and registry are chain {chain_id} / {registry}; "
                "point DOCCHAIN_RPC_URL / DOCCHAIN_REGISTRY_ADDRESS back at them or use another database"
            )

    async def listen(
        self, channel: str, on_message: Callable[[str], None], listening: asyncio.Event | None = None
    ) -> None:
        """PostgreSQL only: call ``on_message(payload)`` for each ``NOTIFY`` on ``channel``, until cancelled;
        ``listening`` is set once the first ``LISTEN`` is active. A database restart closes the listening
        connection: the next one listens again."""
        while True:
            try:
                async with self.engine.connect() as conn:
                    raw = await conn.get_raw_connection()
                    listener = raw.driver_connection  # asyncpg's connection: LISTEN with a callback
                    assert listener is not None
                    await listener.add_listener(channel, lambda _c, _pid, _ch, payload: on_message(payload))
                    if listening is not None:
                        listening.set()
                    while not listener.is_closed():
                        await asyncio.sleep(LISTEN_RETRY_S)
                        # on the driver's connection, outside any transaction: PostgreSQL holds back the
                        # notifications of a session inside a transaction until it ends, and SQLAlchemy's
                        # execute would begin one that nothing here ends
                        await listener.execute("SELECT 1")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is down or restarting: callers have their own slow polls
                log.warning("listen: database unavailable", extra={"channel": channel, "error": repr(exc)})
            await asyncio.sleep(LISTEN_RETRY_S)

    async def notify(self, channel: str, payload: str) -> None:
        """PostgreSQL only: ``NOTIFY channel, payload`` at once, delivered to every listener."""
        await self.execute(pg_notify(channel, payload))

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision.

        Replicas starting together on a fresh PostgreSQL database migrated it at the same time, and one failed
        on the other's half-made schema (``type "alembic_version" already exists``): they take turns under a
        transaction-scoped advisory lock, and the later ones find it current."""
        from docchain.api.migrations import upgrade

        async with self.engine.begin() as conn:
            if not self.is_sqlite:
                await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            await conn.run_sync(_refuse_unknown_revision)
            await conn.run_sync(upgrade)

    async def close(self) -> None:
        if self._ro is not None:
            self._ro.close()
            self._ro = None
        if self._checkpointer is not None:
            self._checkpointer.shutdown(wait=True)
        if self._sync is not None:
            self._sync.dispose()
        await self.engine.dispose()


def _refuse_unknown_revision(connection: Connection) -> None:
    """Alembic cannot upgrade from a revision it does not know (a newer docchain's migration) and says so with
    a traceback; the operator's remedy is one line."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from docchain.api.migrations import config

    script = ScriptDirectory.from_config(config())
    known = {r.revision for r in script.walk_revisions()}
    unknown = [r for r in MigrationContext.configure(connection).get_current_heads() if r not in known]
    if unknown:
        raise DatabaseTooNew(
            f"the database is at revision {', '.join(unknown)}, newer than this docchain knows "
            f"({script.get_current_head()}): upgrade docchain"
        )


LEASE_KEY = 0x646F63636861696E  # "docchain": the PostgreSQL advisory lock's key


class Lease:
    """One pipeline per database: a lease that vanishes with its process — an exclusive ``flock`` on
    ``<SQLite file>.pipeline.lock``, or a session-level advisory lock on PostgreSQL (api/pipeline.py says
    why one pipeline)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._file: int | None = None
        self._conn: AsyncConnection | None = None

    async def try_acquire(self) -> bool:
        if self.db.is_sqlite:
            path = self.db.sqlite_path
            assert path is not None  # Database refuses SQLite without a file
            fd = os.open(f"{path}.pipeline.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            self._file = fd
            return True
        conn = await self.db.engine.connect()
        if await conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": LEASE_KEY}):
            self._conn = conn
            return True
        await conn.close()
        return False

    async def held(self) -> bool:
        """Whether the lease is still ours. An flock lasts as long as the process; a PostgreSQL advisory lock
        lasts as long as its session, which a database restart, failover or cut connection ends."""
        if self._conn is None:
            return self._file is not None or self.db.is_sqlite
        try:
            return bool(
                await asyncio.wait_for(
                    self._conn.scalar(
                        text(
                            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                            " AND pid = pg_backend_pid() AND objsubid = 1"
                            " AND ((classid::bigint << 32) | objid::bigint) = :key"
                        ),
                        {"key": LEASE_KEY},
                    ),
                    timeout=5,
                )
            )
        except Exception:
            return False

    async def release(self) -> None:
        if self._file is not None:
            os.close(self._file)  # closing the descriptor drops the flock
            self._file = None
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LEASE_KEY})
            await self._conn.close()
            self._conn = None


class _Busy(Exception):
    """Another connection holds SQLite's write lock."""


def _locked(exc: OperationalError) -> bool:
    return isinstance(exc.orig, sqlite3.OperationalError) and ("locked" in str(exc.orig) or "busy" in str(exc.orig))


def _begin_immediate(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _writer_pragmas(dbapi_conn, record) -> None:  # type: ignore[no-untyped-def]
    _sqlite_pragmas(dbapi_conn, record)
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA busy_timeout=0")  # BEGIN IMMEDIATE fails at once instead of sleeping in SQLite
    cursor.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints (and their fsyncs) run in a thread instead
    cursor.close()


def _checkpoint(path: str) -> None:
    """A PASSIVE checkpoint: copies what it can from the WAL back to the database without blocking writers."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    finally:
        conn.close()


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes; WAL fsyncs at checkpoint
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
