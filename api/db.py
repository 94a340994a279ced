"""Database: SQLAlchemy 2 async models, engine set-up (SQLite in WAL mode or PostgreSQL) and migrations.

Tables:
- ``submissions``: the durable outbox. A row is written before the API answers 202 and walks
  pending → submitted → anchored → confirmed (or failed / revoked).
- ``transactions``: every transaction the relayer signed, with its hash and raw bytes recorded *before*
  broadcast, so a restart can re-send or reconcile it.
- ``revocations``: the outbox of signed revocations.
- ``events``: the registry's events as indexed from the chain (the source of truth for status and lists).
- ``blocks``: headers of indexed blocks (event blocks and recent tips), for timestamps and reorg detection.
- ``meta``: small key/value state (indexer cursor, chain head).

Hashes are stored as 0x-prefixed lower-case hex text and addresses in EIP-55 form: the same text the API
speaks, portable across SQLite and PostgreSQL, and readable in a SQL shell.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    event,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from docchain.chain.errors import NodeError

T = TypeVar("T")
HASH = String(66)
ADDRESS = String(42)


class Base(DeclarativeBase):
    pass


class Submission(Base):
    __tablename__ = "submissions"
    __table_args__ = (
        UniqueConstraint("doc_hash", "signer", name="uq_submissions_doc_signer"),
        Index("ix_submissions_state_created", "state", "created_at"),
        Index("ix_submissions_tx", "tx_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    doc_hash: Mapped[str] = mapped_column(HASH)
    signer: Mapped[str] = mapped_column(ADDRESS)
    metadata_hash: Mapped[str] = mapped_column(HASH)
    supersedes: Mapped[str] = mapped_column(HASH)
    deadline: Mapped[str] = mapped_column(String(80))  # uint256 as decimal text: wider than any SQL integer
    signature: Mapped[str] = mapped_column(Text)
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


class Transaction(Base):
    __tablename__ = "transactions"
    __table_args__ = (Index("ix_transactions_state", "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tx_hash: Mapped[str] = mapped_column(HASH, unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # register_batch | register | revoke
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    nonce: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16))  # prepared | sent | mined | reverted | dropped
    sent_at: Mapped[float | None] = mapped_column(Float)
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    gas_used: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)


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
    state: Mapped[str] = mapped_column(String(16))  # pending | submitted | revoked | failed
    tx_id: Mapped[int | None] = mapped_column(ForeignKey("transactions.id"))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)


class EventRow(Base):
    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("tx_hash", "log_index", name="uq_events_tx_log"),
        Index("ix_events_doc_signer", "doc_hash", "signer"),
        Index("ix_events_signer_ts", "signer", "timestamp"),
        Index("ix_events_ts", "timestamp"),
        Index("ix_events_block", "block_number"),
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


class BlockRow(Base):
    __tablename__ = "blocks"

    number: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(HASH)
    timestamp: Mapped[int] = mapped_column(BigInteger)


class Meta(Base):
    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


CHAIN_ID = "chain.id"
CHAIN_REGISTRY = "chain.registry"


class ChainMismatch(NodeError):
    """The configured chain or registry is not the one the database was built from. A :class:`NodeError`
    subclass: chain-bound routes answer 503 with this message and the worker and indexer stay paused."""


def now() -> float:
    return time.time()


class Database:
    """Engine + sessions. On SQLite, writers are serialised in-process (one writer at a time is all SQLite
    allows; queueing here avoids 'database is locked' from lock upgrades inside deferred transactions)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            path = url.split(":///", 1)[1] if ":///" in url else ""
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine: AsyncEngine = create_async_engine(url, connect_args={"timeout": 30})
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        self._sqlite_path = url.split(":///", 1)[1] if self.is_sqlite and ":///" in url else None
        self._ro: sqlite3.Connection | None = None
        # SQLite: a plain connection in one dedicated thread for whole write transactions on hot paths
        self.sync_writer: ThreadPoolExecutor | None = None
        self._rw: sqlite3.Connection | None = None
        self._rw_nowait: sqlite3.Connection | None = None
        if self._sqlite_path and self._sqlite_path != ":memory:":
            self.sync_writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="docchain-sqlite-writer")

    @property
    def sqlite_path(self) -> str | None:
        return self._sqlite_path

    async def sync_write(self, fn: Callable[[sqlite3.Connection, Any], T], arg: Any) -> T:
        """Run ``fn(connection, arg)`` as one SQLite transaction, in turn with this process's other writers
        (the same lock as :meth:`write`); committed on return, rolled back on error."""
        assert self.sync_writer is not None and self._write_lock is not None
        async with self._write_lock:
            # When no other process holds SQLite's write lock (the usual case), the transaction runs right
            # here: a few hundred microseconds of C. Handed to a thread under load, it took ~2 ms: the thread
            # re-takes the GIL from the busy event loop at every step and waits out a switch interval each
            # time. Only a transaction that must wait for the lock (the pipeline's process is writing) goes
            # to the writer thread, where waiting blocks nothing.
            if self._rw_nowait is None:
                self._rw_nowait = _writer_connection(self._sqlite_path or "", wait=False)
            try:
                return self._transaction(self._rw_nowait, fn, arg)
            except _Busy:
                return await asyncio.get_running_loop().run_in_executor(self.sync_writer, self._run_write, fn, arg)

    def _run_write(self, fn: Callable[[sqlite3.Connection, Any], T], arg: Any) -> T:
        if self._rw is None:
            self._rw = _writer_connection(self._sqlite_path or "", wait=True)
        return self._transaction(self._rw, fn, arg)

    @staticmethod
    def _transaction(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection, Any], T], arg: Any) -> T:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise _Busy from exc
            raise
        try:
            result = fn(conn, arg)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    async def query(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """A small indexed read on a hot path (verify, status), as plain SQL.

        On SQLite it runs on a read-only connection in the calling thread: an indexed lookup takes tens of
        microseconds, less than one hop to aiosqlite's thread, and WAL readers never wait for the writer.
        Each statement is its own read transaction, so it sees everything committed before it. On other
        databases it goes through the async engine.
        """
        if self._sqlite_path and self._sqlite_path != ":memory:":
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

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session whose transaction commits on success and rolls back on error."""
        if self._write_lock is None:
            async with self.sessions() as session, session.begin():
                yield session
            return
        async with self._write_lock, self.sessions() as session, session.begin():
            yield session

    async def claim_chain(self, chain_id: int, registry: str) -> None:
        """Record which chain and registry this database indexes (first start), or raise
        :class:`ChainMismatch` when it already belongs to another one."""
        keys = (CHAIN_ID, CHAIN_REGISTRY)
        async with self.write() as s:
            known = dict((await s.execute(select(Meta.key, Meta.value).where(Meta.key.in_(keys)))).all())
            if not known:
                s.add_all([Meta(key=CHAIN_ID, value=str(chain_id)), Meta(key=CHAIN_REGISTRY, value=registry)])
                return
        if known.get(CHAIN_ID) != str(chain_id) or str(known.get(CHAIN_REGISTRY, "")).lower() != registry.lower():
            raise ChainMismatch(
                f"the database {self.engine.url.render_as_string()} belongs to chain {known.get(CHAIN_ID)} / registry "
                f"{known.get(CHAIN_REGISTRY)}, but the configured node and registry are chain {chain_id} / {registry}; "
                "point DOCCHAIN_RPC_URL / DOCCHAIN_REGISTRY_ADDRESS back at them or use another database"
            )

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        from docchain.api.migrations import upgrade

        async with self.engine.begin() as conn:
            await conn.run_sync(upgrade)

    async def close(self) -> None:
        if self._ro is not None:
            self._ro.close()
            self._ro = None
        if self.sync_writer is not None:
            if self._rw_nowait is not None:
                self._rw_nowait.close()
                self._rw_nowait = None
            rw, self._rw = self._rw, None
            if rw is not None:
                self.sync_writer.submit(rw.close).result()
            self.sync_writer.shutdown(wait=True)
        await self.engine.dispose()


class _Busy(Exception):
    """Another connection holds SQLite's write lock."""


def _writer_connection(path: str, *, wait: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    _sqlite_pragmas(conn, None)
    if not wait:
        conn.execute("PRAGMA busy_timeout=0")  # BEGIN IMMEDIATE fails at once instead of sleeping
        conn.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints (and their fsyncs) stay off the event loop
    return conn


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes; WAL fsyncs at checkpoint
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
