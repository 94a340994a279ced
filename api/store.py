"""The store: every statement the submission lifecycle runs against the database, and nothing else.

One code path for SQLite and PostgreSQL (SQLAlchemy Core; the few hot reads as portable SQL text through
:meth:`Database.query`). Reads return dataclasses; writes take plain values. The ``*_in`` functions run
inside a transaction the caller opened (:meth:`Database.transaction`), so that one lifecycle step is one
commit; :class:`Store`'s methods are their own transactions or reads.

The states written here are those the service decided (api/service.py checks them against
api/lifecycle.py); each UPDATE also filters on the states it may move a row from, so two processes
racing on a row cannot take it backwards.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    RowMapping,
    Table,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal_column,
    null,
    or_,
    select,
    text,
    union,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from docchain.api.db import (
    COPY_PENDING_SQL,
    PENDING_SQL,
    REGISTERED_SQL,
    BlockRow,
    Database,
    EnvelopeActionRow,
    EventRow,
    EvidenceBlockRow,
    EvidenceRow,
    Many,
    Meta,
    RevocationRow,
    RootRow,
    StorageCopy,
    Submission,
    Transaction,
    charge_fee,
    now,
    pg_notify,
)
from docchain.api.lifecycle import (
    ActionKind,
    ActionState,
    Anchoring,
    CopyOperation,
    CopyState,
    RevocationState,
    SignatureKind,
    State,
    TxState,
    copy_sources,
)
from docchain.api.notifications.model import ChangeKind
from docchain.api.notifications.tables import EnvelopeEventRow
from docchain.chain.bundle import Evidence, parse_evidence
from docchain.chain.errors import DocchainError
from docchain.chain.values import parse_hex, to_hex

CURSOR = "indexer.cursor"
HEAD = "chain.head"
# Transactions mined whose submissions' records were on chain before them (the batch skipped those pairs,
# so no event of theirs comes): the indexer anchors them from the indexed events (one writer of anchored).
LINK = "indexer.link"
# Merkle roots found anchored already when the worker went to send them (another sender anchored the same
# tree): their submissions wait, in their tree, for the indexer to anchor them from the root's indexed event.
ROOT_LINK = "indexer.root_link"
# The last block whose records all have their evidence bundles, and the last block whose revocations have their
# records proven again (see "evidence bundles" below)
EVIDENCE_CURSOR = "evidence.cursor"
REVOKED_CURSOR = "evidence.revoked"
OUTBOX_CHANNEL = "docchain_outbox"  # PostgreSQL NOTIFY channel: "submissions were accepted"
KEEP_TIPS = 256  # recent tip headers kept for finding the common ancestor after a reorg
RECENT_MINED = 64  # mined transactions looked at again after a restart or an outage (a reorg is shallower)

_MAX_ROW_ID = 2**31 - 1  # an INTEGER key: 32 bits on PostgreSQL, where a wider value is an error, not a miss
_SUBS = cast(Table, Submission.__table__)
_TXS = cast(Table, Transaction.__table__)
_REVS = cast(Table, RevocationRow.__table__)
_EVENTS = cast(Table, EventRow.__table__)
_BLOCKS = cast(Table, BlockRow.__table__)
_META = cast(Table, Meta.__table__)
_COPIES = cast(Table, StorageCopy.__table__)
_ROOTS = cast(Table, RootRow.__table__)
_EVIDENCE_BLOCKS = cast(Table, EvidenceBlockRow.__table__)
_EVIDENCE = cast(Table, EvidenceRow.__table__)
_ACTIONS = cast(Table, EnvelopeActionRow.__table__)


def _sql(value: str) -> str:
    """A state as an SQL literal: the partial indexes' predicates must be visible to the planner."""
    return "'" + value.replace("'", "''") + "'"


# ------------------------------------------------------------------ records


@dataclass(frozen=True, slots=True)
class Accepted:
    """A submission as the outbox reports it: the stored row of its (docHash, signer)."""

    id: str
    doc_hash: str
    signer: str
    state: State
    stored: bool


@dataclass(frozen=True, slots=True)
class SubmissionRecord:
    id: str
    doc_hash: str
    signer: str
    metadata_hash: str
    supersedes: str
    deadline: str
    signature: str
    signature_kind: SignatureKind | None
    metadata_json: str | None
    stored: bool
    file_name: str | None
    file_size: int | None
    state: State
    attempts: int
    tx_id: int | None
    tx_hash: str | None
    block_number: int | None
    block_hash: str | None
    timestamp: int | None
    error: str | None
    anchoring: Anchoring = Anchoring.DIRECT
    merkle_root: str | None = None  # the tree it was put in (Merkle anchoring)
    merkle_proof: str | None = None  # its InclusionProof as JSON (chain/merkle.py)
    private: bool = False  # its docHash is a salted commitment to the document, not its SHA-256
    envelope_id: str | None = None  # the envelope it signs: anchored through the envelopes contract's sign


@dataclass(frozen=True, slots=True)
class EventRecord:
    id: int
    kind: str  # Registered | Revoked
    doc_hash: str
    signer: str
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    metadata_hash: str | None
    supersedes: str | None
    timestamp: int


@dataclass(frozen=True, slots=True)
class RootRecord:
    """An indexed ``RootAnchored`` event: where a Merkle root was anchored."""

    root: str
    leaf_count: int
    tx_hash: str
    block_number: int
    block_hash: str
    timestamp: int


@dataclass(frozen=True, slots=True)
class RevocationRecord:
    id: int
    doc_hash: str
    signer: str
    nonce: str
    deadline: str
    signature: str
    state: RevocationState
    error: str | None
    created_at: float
    tx_hash: str | None = None


@dataclass(frozen=True, slots=True)
class TxRecord:
    id: int
    tx_hash: str
    kind: str
    raw: bytes
    nonce: int


class Pending(NamedTuple):
    """What anchoring needs of a pending submission."""

    id: str
    doc_hash: str
    signer: str
    metadata_hash: str
    supersedes: str
    deadline: str
    signature: str
    signature_kind: str | None
    attempts: int


class InFlight(NamedTuple):
    id: int
    tx_hash: str
    state: str
    sent_at: float | None


@dataclass(frozen=True, slots=True)
class SignerRow:
    """A submission of a document, as a signer's status shows it."""

    id: str
    signer: str
    state: State
    metadata_hash: str
    supersedes: str
    tx_hash: str | None
    block_number: int | None
    block_hash: str | None
    timestamp: int | None
    error: str | None
    metadata_json: str | None
    anchoring: Anchoring
    merkle_root: str | None
    private: bool


@dataclass(frozen=True, slots=True)
class SignerEvent:
    kind: str
    signer: str
    metadata_hash: str | None
    supersedes: str | None
    tx_hash: str
    block_number: int
    block_hash: str
    timestamp: int


@dataclass(frozen=True, slots=True, order=True)
class ListKey:
    """A record's place in the lists, newest first: its block's time, the block, the log that recorded it (its
    Registered event, or its root's RootAnchored) and, for the leaves under one root, the submission id
    (empty for a direct record: one log, one record)."""

    timestamp: int
    block_number: int
    log_index: int
    leaf: str


@dataclass(frozen=True, slots=True)
class ListedRecord:
    """A record on chain as the lists show it: direct (its Registered event) or a Merkle leaf (its submission
    here, anchored by its root's indexed event, whose transaction and log it names)."""

    doc_hash: str
    signer: str
    metadata_hash: str | None
    tx_hash: str
    block_number: int
    timestamp: int
    log_index: int
    leaf: str  # the submission id of a Merkle leaf; empty for a direct record
    merkle_root: str | None
    revoked_at: int | None
    private: bool = False  # submitted here as a salted commitment: its docHash is not a document's SHA-256

    @property
    def key(self) -> ListKey:
        return ListKey(self.timestamp, self.block_number, self.log_index, self.leaf)

    @property
    def anchoring(self) -> Anchoring:
        return Anchoring.MERKLE if self.merkle_root is not None else Anchoring.DIRECT


@dataclass(frozen=True, slots=True)
class RecordPage:
    records: list[ListedRecord]
    more: bool  # a page follows the last record
    head: int | None


@dataclass(frozen=True, slots=True)
class TreeLeaf:
    """A submission in a Merkle tree, as an anchorRoot transaction's view lists it."""

    doc_hash: str
    signer: str
    state: State
    leaf_index: int | None  # its place among the tree's sorted leaves (None: its proof is not written yet)


@dataclass(frozen=True, slots=True)
class Subject:
    """A record whose evidence is due: a direct record (``merkle_root`` None) or a Merkle leaf under its root."""

    doc_hash: bytes
    signer: str
    merkle_root: bytes | None
    record_block: int


@dataclass(frozen=True, slots=True)
class Window:
    """How far the evidence cursor ``key`` moves, from ``after`` to ``through``, once the records read from it
    have their evidence."""

    key: str
    after: int
    through: int


@dataclass(frozen=True, slots=True)
class Due:
    """The records to capture now (each once), and the windows of the cursors they were read from."""

    subjects: tuple[Subject, ...]
    windows: tuple[Window, ...]

    @property
    def moves(self) -> bool:
        """Whether anything is to be captured or any cursor is to move."""
        return bool(self.subjects) or any(w.through != w.after for w in self.windows)


# reads the records due in blocks (after, upto], at most n, each with the block that makes it due
_Reader = Callable[[int, int, int], Awaitable[list[tuple[int, Subject]]]]


def _signer_row(row: Sequence[Any]) -> SignerRow:
    sid, signer, state, metadata_hash, supersedes, tx, block, block_hash, ts, error, metadata, mode, root, private = row
    return SignerRow(
        sid,
        signer,
        State(state),
        metadata_hash,
        supersedes,
        tx,
        block,
        block_hash,
        ts,
        error,
        metadata,
        Anchoring(mode),
        root,
        bool(private),
    )


def _submission(row: Any) -> SubmissionRecord:
    return SubmissionRecord(
        id=row.id,
        doc_hash=row.doc_hash,
        signer=row.signer,
        metadata_hash=row.metadata_hash,
        supersedes=row.supersedes,
        deadline=row.deadline,
        signature=row.signature,
        signature_kind=None if row.signature_kind is None else SignatureKind(row.signature_kind),
        metadata_json=row.metadata_json,
        stored=bool(row.stored),
        file_name=row.file_name,
        file_size=row.file_size,
        state=State(row.state),
        attempts=row.attempts,
        tx_id=row.tx_id,
        tx_hash=row.tx_hash,
        block_number=row.block_number,
        block_hash=row.block_hash,
        timestamp=row.timestamp,
        error=row.error,
        anchoring=Anchoring(row.anchoring),
        merkle_root=row.merkle_root,
        merkle_proof=row.merkle_proof,
        private=bool(row.private),
        envelope_id=row.envelope_id,
    )


def _event(row: Any) -> EventRecord:
    return EventRecord(*(getattr(row, f) for f in EventRecord.__slots__))


# ------------------------------------------------------------------ storage copies


@dataclass(frozen=True, slots=True)
class NewCopy:
    """A copy the acceptance records with its submission: the first backend's (stored), or one for the copy
    worker to make (pending; a sealed one from the ciphertext ``staged`` in the spool directory)."""

    backend: str
    locator: str
    sealed: bool
    size: int | None
    state: CopyState
    staged: str | None = None
    staged_by: str | None = None  # the instance whose spool holds ``staged``


@dataclass(frozen=True, slots=True)
class CopyRecord:
    id: int
    doc_hash: str
    backend: str
    locator: str
    sealed: bool
    size: int | None
    state: CopyState
    attempts: int
    next_attempt_at: float | None
    last_error: str | None
    staged: str | None


_COPY_COLUMNS = (
    _COPIES.c.id,
    _COPIES.c.doc_hash,
    _COPIES.c.backend,
    _COPIES.c.locator,
    _COPIES.c.sealed,
    _COPIES.c.size,
    _COPIES.c.state,
    _COPIES.c.attempts,
    _COPIES.c.next_attempt_at,
    _COPIES.c.last_error,
    _COPIES.c.staged,
)
# Two acceptances of one document may plan the same copy at once (replicas, PostgreSQL): the unique
# (doc_hash, backend, locator) keeps one, and the other's INSERT does nothing. The same SQL runs on both
# databases (ON CONFLICT DO NOTHING: SQLite >= 3.24, PostgreSQL >= 9.5).
_NEW_COPY = text(
    "INSERT INTO storage_copies (doc_hash, backend, locator, sealed, size, state, attempts, next_attempt_at,"
    " last_error, staged, staged_by, created_at, updated_at) VALUES (:doc_hash, :backend, :locator, :sealed, :size,"
    " :state, 0, :next_attempt_at, NULL, :staged, :staged_by, :stamp, :stamp) ON CONFLICT DO NOTHING"
)
# A copy's maker: the instance that staged it (its spool holds the ciphertext), or the pipeline's copy worker
# for every copy no instance staged
_BY_OWNER = "staged_by = :owner"
_BY_PIPELINE = "staged_by IS NULL"


def _copy_due_sql(owner: str | None) -> str:
    return (
        f"SELECT {', '.join(c.name for c in _COPY_COLUMNS)} FROM storage_copies WHERE {COPY_PENDING_SQL}"
        f" AND {_BY_PIPELINE if owner is None else _BY_OWNER} AND next_attempt_at <= :now"
        " ORDER BY next_attempt_at LIMIT :n"
    )


def _copy_next_sql(owner: str | None) -> str:
    return (
        f"SELECT min(next_attempt_at) FROM storage_copies WHERE {COPY_PENDING_SQL}"
        f" AND {_BY_PIPELINE if owner is None else _BY_OWNER}"
    )


def _may_move(operation: CopyOperation, new: CopyState) -> ColumnElement[bool]:
    """The filter of an UPDATE that ``operation`` makes to ``new``: the states lifecycle.COPY_TRANSITIONS lets
    it move a copy from, so that two processes racing on a copy cannot take it backwards."""
    return _COPIES.c.state.in_(sorted(old.value for old in copy_sources(operation, new) if old is not None))


def _copy(row: Sequence[Any]) -> CopyRecord:
    """A copy from the values of :data:`_COPY_COLUMNS`, in their order (an ORM row or the fast path's tuple)."""
    id_, doc, backend, locator, sealed, size, state, attempts, next_attempt_at, last_error, staged = row
    return CopyRecord(
        id=id_,
        doc_hash=doc,
        backend=backend,
        locator=locator,
        sealed=bool(sealed),
        size=size,
        state=CopyState(state),
        attempts=attempts,
        next_attempt_at=next_attempt_at,
        last_error=last_error,
        staged=staged,
    )


def record_copies_in(s: Session, doc: str, copies: Sequence[NewCopy]) -> None:
    """Record the copies of ``doc`` an acceptance planned. A sealed copy is new (its own key and CID); a plain
    one is one row per (document, backend): a stored copy updates a queued or failed row, and a queued copy
    queues a failed row again (with fresh attempts), or is already there."""
    stamp = now()
    for copy in copies:
        values = {
            "doc_hash": doc,
            "backend": copy.backend,
            "locator": copy.locator,
            "sealed": copy.sealed,
            "size": copy.size,
            "state": copy.state.value,
            "next_attempt_at": stamp if copy.state is CopyState.PENDING else None,
            "staged": copy.staged,
            "staged_by": copy.staged_by,
            "stamp": stamp,
        }
        if copy.sealed:
            s.execute(_NEW_COPY, values)
            continue
        plain = select(_COPIES.c.id, _COPIES.c.state).where(
            _COPIES.c.doc_hash == doc, _COPIES.c.backend == copy.backend, _COPIES.c.sealed.is_(False)
        )
        found = s.execute(plain.limit(1)).first()
        if found is None:
            s.execute(_NEW_COPY, values)
            continue
        copy_id, state = found[0], CopyState(found[1])
        if copy.state is CopyState.STORED and state is not CopyState.STORED:
            s.execute(
                update(_COPIES)
                .where(_COPIES.c.id == copy_id, _may_move(CopyOperation.ACCEPT, CopyState.STORED))
                .values(
                    state=CopyState.STORED,
                    locator=copy.locator,
                    size=copy.size,
                    next_attempt_at=None,
                    last_error=None,
                    updated_at=stamp,
                )
            )
        elif copy.state is CopyState.PENDING and state is CopyState.FAILED:
            s.execute(
                update(_COPIES)
                .where(_COPIES.c.id == copy_id, _may_move(CopyOperation.ACCEPT, CopyState.PENDING))
                .values(state=CopyState.PENDING, attempts=0, next_attempt_at=stamp, updated_at=stamp)
            )


def copy_stored_in(s: Session, copy_id: int, locator: str, size: int) -> None:
    """The copy worker made a pending copy. Should another row already name the same copy (two acceptances
    queued it at once), that row stands and this one goes."""
    row = s.execute(select(*_COPY_COLUMNS).where(_COPIES.c.id == copy_id)).first()
    if row is None or row.state != CopyState.PENDING:
        return
    twin = s.execute(
        select(_COPIES.c.id).where(
            _COPIES.c.doc_hash == row.doc_hash,
            _COPIES.c.backend == row.backend,
            _COPIES.c.locator == locator,
            _COPIES.c.id != copy_id,
        )
    ).first()
    if twin is not None:
        s.execute(delete(_COPIES).where(_COPIES.c.id == copy_id))
        return
    s.execute(
        update(_COPIES)
        .where(_COPIES.c.id == copy_id, _may_move(CopyOperation.COPY, CopyState.STORED))
        .values(
            state=CopyState.STORED,
            locator=locator,
            size=size,
            staged=None,
            next_attempt_at=None,
            last_error=None,
            attempts=_COPIES.c.attempts + 1,
            updated_at=now(),
        )
    )


# ------------------------------------------------------------------ the outbox (accept)

_EXISTING = (_SUBS.c.id, _SUBS.c.doc_hash, _SUBS.c.signer, _SUBS.c.state, _SUBS.c.stored)
_INSERT = Many(insert(_SUBS))
_NOTIFY = pg_notify(OUTBOX_CHANNEL, "")


def insert_new_in(
    s: Session, rows: Sequence[Mapping[str, Any]], copies: Sequence[Sequence[NewCopy]] = ()
) -> list[tuple[Accepted, bool]]:
    """Which (docHash, signer) pairs exist (indexed IN queries), then one multi-row INSERT of the rest.
    ``rows`` hold the ``submissions`` columns; ``copies[i]``, the storage copies of row i's document
    (:func:`record_copies_in`, for duplicates too: their upload may be the document's first). Returns, per
    row, the stored submission and whether it is new."""
    for row, planned in zip(rows, copies, strict=False):
        record_copies_in(s, row["doc_hash"], planned)
    docs = list({r["doc_hash"] for r in rows})
    existing: dict[tuple[str, str], Accepted] = {}
    for start in range(0, len(docs), 500):  # bound the number of SQL parameters
        query = select(*_EXISTING).where(_SUBS.c.doc_hash.in_(docs[start : start + 500]))
        for sid, doc, signer, state, stored in s.execute(query):
            existing[(doc, signer)] = Accepted(sid, doc, signer, State(state), bool(stored))
    fresh: list[Mapping[str, Any]] = []
    results: list[tuple[Accepted, bool]] = []
    for row in rows:
        key = (row["doc_hash"], row["signer"])
        if key in existing:
            results.append((existing[key], False))
        else:
            accepted = existing[key] = Accepted(row["id"], key[0], key[1], State(row["state"]), bool(row["stored"]))
            fresh.append(row)
            results.append((accepted, True))
    if fresh:
        postgres = s.get_bind().dialect.name == "postgresql"
        if postgres:
            # Two processes inserting overlapping pairs wait on each other's index entries: in one order
            # (the pairs'), the later one waits and then fails on the duplicate, instead of both deadlocking
            fresh.sort(key=lambda r: (r["doc_hash"], r["signer"]))
        _INSERT(s, fresh)
        if postgres:
            s.execute(_NOTIFY)  # delivered to listeners when the transaction commits
    return results


# ------------------------------------------------------------------ anchoring (send)

_PENDING_SQL = PENDING_SQL  # the partial index's own predicate: the planner matches the two as written


# an envelope's signature goes through the envelopes contract's sign, one transaction each (EnvelopeStore)
_NOT_ENVELOPE_SQL = "envelope_id IS NULL"


def _queue_sql(anchoring: Anchoring) -> str:
    return (
        f"SELECT {', '.join(Pending._fields)} FROM submissions WHERE {_PENDING_SQL} "
        f"AND anchoring = {_sql(anchoring)} AND {_NOT_ENVELOPE_SQL} ORDER BY created_at LIMIT :n"
    )


_PENDING_ROWS = _queue_sql(Anchoring.DIRECT)
_MERKLE_ROWS = _queue_sql(Anchoring.MERKLE)
_PENDING_COUNT = (
    f"SELECT anchoring, count(*), min(created_at) FROM submissions WHERE {_PENDING_SQL} AND {_NOT_ENVELOPE_SQL} "
    "GROUP BY anchoring"
)
_IN_FLIGHT_STATES = f"({_sql(TxState.PREPARED)}, {_sql(TxState.SENT)})"
_IN_FLIGHT_TXS = (
    f"SELECT id, tx_hash, state, sent_at FROM transactions WHERE state IN {_IN_FLIGHT_STATES} ORDER BY nonce"
)
_IN_FLIGHT_COUNT = f"SELECT state, count(*) FROM transactions WHERE state IN {_IN_FLIGHT_STATES} GROUP BY state"
_RECENT_MINED = (
    f"SELECT id, tx_hash, block_number FROM transactions WHERE state = {_sql(TxState.MINED)} ORDER BY id DESC LIMIT :n"
)
_META_SQL = "SELECT value FROM meta WHERE key = :key"
# a transaction's writes the chain may still take back: its submissions not anchored, its envelope actions done
_WAITING = (
    f"SELECT (SELECT count(*) FROM submissions WHERE tx_id = :tx AND state = {_sql(State.SUBMITTED)}) + "
    f"(SELECT count(*) FROM envelope_actions WHERE tx_id = :tx AND state = {_sql(ActionState.DONE)})"
)
_ANY_REVOCATION = f"SELECT 1 FROM revocations WHERE state = {_sql(RevocationState.PENDING)} LIMIT 1"
_IS_PENDING = _SUBS.c.state == literal_column(_sql(State.PENDING))


def _to_submitted(**columns: str) -> Many:
    """Pending submissions (by ``b_id``) to submitted, setting each column to its bind parameter."""
    values: dict[str, Any] = {column: bindparam(param) for column, param in columns.items()}
    return Many(
        update(_SUBS)
        .where(_SUBS.c.id == bindparam("b_id"), _IS_PENDING)
        .values(state=literal_column(_sql(State.SUBMITTED)), updated_at=bindparam("b_updated"), **values)
    )


_SUBMITTED = _to_submitted(tx_id="b_tx_id", tx_hash="b_tx")
# a Merkle submission into its tree: the root and its proof go with the transaction that anchors the root
_IN_TREE = _to_submitted(tx_id="b_tx_id", tx_hash="b_tx", merkle_root="b_root", merkle_proof="b_proof")
# a tree whose root another sender anchored: its submissions join it without a transaction of the relayer's
_ADOPTED = _to_submitted(merkle_root="b_root", merkle_proof="b_proof")
_FAILED = (
    update(_SUBS)
    # (literals: an executemany takes no expanding IN parameter)
    .where(
        _SUBS.c.id == bindparam("b_id"),
        _SUBS.c.state.in_([literal_column(_sql(State.PENDING)), literal_column(_sql(State.SUBMITTED))]),
    )
    .values(state=State.FAILED, error=bindparam("b_error"), updated_at=bindparam("b_updated"))
)


class TreeChanged(DocchainError):
    """Some of a tree's submissions were no longer pending when its transaction was recorded."""

    def __init__(self, missing: int, rows: Sequence[tuple[Any, ...]]) -> None:
        self.missing = missing
        super().__init__(f"{missing} of the tree's submissions are no longer pending: {list(rows)[:5]}")


@dataclass(frozen=True, slots=True)
class InTree:
    """A Merkle submission's place in the tree an ``anchorRoot`` transaction anchors."""

    root: str
    proof_json: str  # its InclusionProof (chain/merkle.py) as JSON


def record_tx_in(
    s: Session,
    tx_hash: str,
    kind: str,
    raw: bytes,
    nonce: int,
    submissions: Sequence[str],
    tree: Mapping[str, InTree] | None = None,
) -> int:
    """Record a signed transaction (prepared: hash and raw bytes before the broadcast) and move what it
    carries into it: pending submissions to submitted, or (``kind`` revoke) the one revocation's id. ``tree``:
    each submission's root and proof, for an ``anchorRoot`` transaction (written in the same commit, so a
    root sent is never one whose proofs are lost)."""
    tx_id = s.execute(
        insert(_TXS)
        .values(tx_hash=tx_hash, kind=kind, raw=raw, nonce=nonce, state=TxState.PREPARED, created_at=now())
        .returning(_TXS.c.id)
    ).scalar_one()
    if kind == "revoke":
        s.execute(
            update(_REVS).where(_REVS.c.id == int(submissions[0])).values(state=RevocationState.SUBMITTED, tx_id=tx_id)
        )
    elif tree is not None:
        stamp = now()
        _IN_TREE(
            s,
            [
                {
                    "b_id": i,
                    "b_tx_id": tx_id,
                    "b_tx": tx_hash,
                    "b_root": tree[i].root,
                    "b_proof": tree[i].proof_json,
                    "b_updated": stamp,
                }
                for i in submissions
            ],
        )
        # Every leaf's submission must be the tree's: a root anchoring a leaf whose submission went elsewhere
        # meanwhile would anchor it twice, under a root no receipt names. The caller's transaction rolls back.
        moved = s.scalar(select(func.count()).where(_SUBS.c.tx_id == tx_id)) or 0
        if moved != len(submissions):
            gone = s.execute(
                select(_SUBS.c.id, _SUBS.c.state, _SUBS.c.tx_id).where(
                    _SUBS.c.id.in_(list(submissions)), _SUBS.c.tx_id.is_distinct_from(tx_id)
                )
            ).all()
            raise TreeChanged(len(submissions) - moved, [tuple(r) for r in gone])
    else:
        stamp = now()
        _SUBMITTED(s, [{"b_id": i, "b_tx_id": tx_id, "b_tx": tx_hash, "b_updated": stamp} for i in submissions])
    return int(tx_id)


def adopt_tree_in(s: Session, root: str, tree: Mapping[str, InTree]) -> None:
    """Pending submissions into a tree whose ``root`` is on chain already: submitted in it, without a
    transaction, and the root left for the indexer to link (:func:`root_links_in`)."""
    stamp = now()
    _ADOPTED(
        s,
        [
            {"b_id": sid, "b_root": place.root, "b_proof": place.proof_json, "b_updated": stamp}
            for sid, place in tree.items()
        ],
    )
    row = s.get(Meta, ROOT_LINK)
    waiting = set(json.loads(row.value)) if row is not None else set()
    set_meta_in(s, ROOT_LINK, json.dumps(sorted(waiting | {root})))


def requeue_in(s: Session, tx_id: int, tx_state: TxState, error: str, max_attempts: int) -> list[str]:
    """A transaction that did not land (reverted, dropped): its submissions back to pending (out of their tree:
    the next one is new), or failed after ``max_attempts``; its revocations failed. Returns the submissions
    changed."""
    s.execute(update(_TXS).where(_TXS.c.id == tx_id).values(state=tx_state, error=error))
    rows = s.execute(
        select(_SUBS.c.id, _SUBS.c.attempts).where(_SUBS.c.tx_id == tx_id, _SUBS.c.state == State.SUBMITTED)
    ).all()
    stamp = now()
    for sid, attempts in rows:
        s.execute(
            update(_SUBS)
            .where(_SUBS.c.id == sid, _SUBS.c.state == State.SUBMITTED)
            .values(
                attempts=attempts + 1,
                tx_id=None,
                tx_hash=None,
                merkle_root=None,
                merkle_proof=None,
                state=State.FAILED if attempts + 1 >= max_attempts else State.PENDING,
                error=error,
                updated_at=stamp,
            )
        )
    s.execute(
        update(_REVS)
        .where(_REVS.c.tx_id == tx_id, _REVS.c.state == RevocationState.SUBMITTED)
        .values(state=RevocationState.FAILED, error=error)
    )
    requeue_actions_in(s, tx_id, error, max_attempts)
    return [sid for sid, _ in rows]


def mined_in(s: Session, tx_id: int, block_number: int, gas_used: int, fee: int, events: int, ok: bool) -> bool:
    """Record a mined transaction and charge its fee. Returns whether some of its submissions emitted no event
    (their records were on chain already): those are left for the indexer to anchor from the index."""
    charge_fee(s, tx_id, fee)  # to the clients whose writes it carried (relayer spending per key)
    s.execute(
        update(_TXS)
        .where(_TXS.c.id == tx_id)
        .values(state=TxState.MINED if ok else TxState.REVERTED, block_number=block_number, gas_used=gas_used)
    )
    if not ok:
        return False
    s.execute(
        update(_ACTIONS)
        .where(_ACTIONS.c.tx_id == tx_id, _ACTIONS.c.state == ActionState.SUBMITTED)
        .values(state=ActionState.DONE, block_number=block_number, updated_at=now())
    )
    # Every submission of the transaction emitted its event: nothing for the indexer to link. A Merkle
    # submission's event is its root's, which the indexer applies whatever was on chain before.
    direct = (_SUBS.c.tx_id == tx_id) & (_SUBS.c.anchoring == Anchoring.DIRECT.value)
    if events >= (s.scalar(select(func.count()).where(direct)) or 0):
        return False
    row = s.get(Meta, LINK)
    waiting = set(json.loads(row.value)) if row is not None else set()
    set_meta_in(s, LINK, json.dumps(sorted(waiting | {tx_id})))
    return True


class Store:
    """Reads and single-statement writes, each its own transaction; see the module's docstring."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # ---------------------------------------------------------- accept

    async def insert_new(
        self, rows: Sequence[Mapping[str, Any]], copies: Sequence[Sequence[NewCopy]] = ()
    ) -> list[tuple[Accepted, bool]]:
        return await self.db.transaction(lambda s: insert_new_in(s, rows, copies))

    async def mark_stored(self, submission_id: str) -> None:
        await self.db.execute(update(_SUBS).where(_SUBS.c.id == submission_id).values(stored=True))

    # ---------------------------------------------------------- storage copies

    async def copies_of(self, doc: str) -> list[CopyRecord]:
        """Every copy of ``doc``, in the order they were recorded."""
        async with self.db.read() as session:
            rows = await session.execute(select(*_COPY_COLUMNS).where(_COPIES.c.doc_hash == doc).order_by(_COPIES.c.id))
            return [_copy(r) for r in rows]

    async def due_copies(self, at: float, limit: int, owner: str | None = None) -> list[CopyRecord]:
        """Pending copies whose next attempt is due at ``at``, the longest-waiting first (a read on the
        pipeline's wake-ups: the fast path of :meth:`Database.query`): those instance ``owner`` staged, or
        (None) those no instance staged."""
        params: dict[str, Any] = {"now": at, "n": limit} if owner is None else {"now": at, "n": limit, "owner": owner}
        rows = await self.db.query(_copy_due_sql(owner), params)
        return [_copy(r) for r in rows]

    async def next_copy_due(self, owner: str | None = None) -> float | None:
        """When the earliest pending copy of ``owner`` (as in :meth:`due_copies`) is due (None: none is
        pending)."""
        [(due,)] = await self.db.query(_copy_next_sql(owner), {} if owner is None else {"owner": owner})
        return None if due is None else float(due)

    async def copy_stored(self, copy_id: int, locator: str, size: int) -> None:
        await self.db.transaction(lambda s: copy_stored_in(s, copy_id, locator, size))

    async def copy_retry(self, copy_id: int, error: str, next_attempt_at: float | None) -> None:
        """An attempt failed: try again at ``next_attempt_at``, or (None) give up on the copy."""
        values: dict[str, Any] = {
            "attempts": _COPIES.c.attempts + 1,
            "last_error": error,
            "next_attempt_at": next_attempt_at,
            "updated_at": now(),
        }
        new = CopyState.PENDING if next_attempt_at is not None else CopyState.FAILED
        values["state"] = new
        await self.db.execute(
            update(_COPIES).where(_COPIES.c.id == copy_id, _may_move(CopyOperation.COPY, new)).values(**values)
        )

    async def copies_due_now(self, owner: str | None = None) -> None:
        """Every pending copy of ``owner`` (as in :meth:`due_copies`) due at once: what a restart does, as an
        operator restarts the service once what failed (a backend, its settings) is fixed, and the backoff of
        the attempts before should not delay it."""
        stamp = now()
        due = await self.next_copy_due(owner)
        if due is None or due <= stamp:  # nothing waits for a backoff: no write transaction
            return
        mine = _COPIES.c.staged_by.is_(None) if owner is None else _COPIES.c.staged_by == owner
        await self.db.execute(
            update(_COPIES)
            .where(_COPIES.c.state == CopyState.PENDING, mine, _COPIES.c.next_attempt_at > stamp)
            .values(next_attempt_at=stamp)
        )

    async def copy_lost(self, copy_id: int, error: str) -> None:
        """A read found a stored copy gone or altered: failed, with the reason."""
        await self.db.execute(
            update(_COPIES)
            .where(_COPIES.c.id == copy_id, _may_move(CopyOperation.READ, CopyState.FAILED))
            .values(state=CopyState.FAILED, last_error=error, updated_at=now())
        )

    # ---------------------------------------------------------- send (the anchoring worker)

    async def pending_counts(self) -> dict[Anchoring, tuple[int, float]]:
        """Per anchoring mode with submissions waiting: how many, and when the oldest was accepted."""
        return {Anchoring(mode): (int(n), float(oldest)) for mode, n, oldest in await self.db.query(_PENDING_COUNT, {})}

    async def pending(self, limit: int) -> list[Pending]:
        """The oldest pending direct submissions."""
        return [Pending._make(r) for r in await self.db.query(_PENDING_ROWS, {"n": limit})]

    async def pending_merkle(self, limit: int) -> list[Pending]:
        """The oldest pending Merkle submissions."""
        return [Pending._make(r) for r in await self.db.query(_MERKLE_ROWS, {"n": limit})]

    async def in_flight_counts(self) -> dict[str, int]:
        return {state: int(n) for state, n in await self.db.query(_IN_FLIGHT_COUNT, {})}

    async def in_flight(self) -> list[InFlight]:
        """Transactions prepared or sent, in nonce order (without their raw bytes: this runs every cycle)."""
        return [InFlight._make(r) for r in await self.db.query(_IN_FLIGHT_TXS, {})]

    async def transaction(self, tx_id: int) -> TxRecord:
        async with self.db.read() as s:
            row = (
                await s.execute(
                    select(_TXS.c.id, _TXS.c.tx_hash, _TXS.c.kind, _TXS.c.raw, _TXS.c.nonce).where(_TXS.c.id == tx_id)
                )
            ).one()  # transactions are never deleted
        return TxRecord(*row)

    async def in_flight_full(self) -> list[TxRecord]:
        async with self.db.read() as s:
            rows = (
                await s.execute(
                    select(_TXS.c.id, _TXS.c.tx_hash, _TXS.c.kind, _TXS.c.raw, _TXS.c.nonce)
                    .where(_TXS.c.state.in_((TxState.PREPARED, TxState.SENT)))
                    .order_by(_TXS.c.nonce)
                )
            ).all()
        return [TxRecord(*r) for r in rows]

    async def recent_mined(self) -> list[tuple[int, str, int]]:
        return [(int(i), h, int(b)) for i, h, b in await self.db.query(_RECENT_MINED, {"n": RECENT_MINED})]

    async def indexed_block(self) -> int:
        """The last block the indexer has read (-1 before its first)."""
        rows = await self.db.query(_META_SQL, {"key": CURSOR})
        return int(json.loads(rows[0][0])["number"]) if rows else -1

    async def waiting(self, tx_id: int) -> int:
        """Submissions of a transaction not anchored yet."""
        [(count,)] = await self.db.query(_WAITING, {"tx": tx_id})
        return int(count)

    async def mark_sent(self, tx_id: int) -> None:
        await self.db.execute(
            update(_TXS)
            .where(_TXS.c.id == tx_id, _TXS.c.state.in_((TxState.PREPARED, TxState.SENT)))
            .values(state=TxState.SENT, sent_at=now())
        )

    async def resend_lost(self, tx_id: int) -> None:
        """A mined transaction whose block vanished before it was indexed is in flight again."""
        await self.db.execute(
            update(_TXS)
            .where(_TXS.c.id == tx_id, _TXS.c.state == TxState.MINED)
            .values(state=TxState.SENT, block_number=None, sent_at=None)
        )
        await self.db.execute(
            update(_ACTIONS)
            .where(_ACTIONS.c.tx_id == tx_id, _ACTIONS.c.state == ActionState.DONE)
            .values(state=ActionState.SUBMITTED, block_number=None, updated_at=now())
        )

    async def fail(self, errors: Mapping[str, str]) -> None:
        stamp = now()
        await self.db.execute(_FAILED, [{"b_id": sid, "b_error": e, "b_updated": stamp} for sid, e in errors.items()])

    async def any_pending_revocation(self) -> bool:
        return bool(await self.db.query(_ANY_REVOCATION, {}))

    async def pending_revocations(self, limit: int) -> list[RevocationRecord]:
        async with self.db.read() as s:
            rows = (
                await s.scalars(
                    select(RevocationRow)
                    .where(RevocationRow.state == RevocationState.PENDING)
                    .order_by(RevocationRow.id)
                    .limit(limit)
                )
            ).all()
        return [_revocation(r) for r in rows]

    async def fail_revocation(self, revocation_id: int, error: str) -> None:
        await self.db.execute(
            update(_REVS).where(_REVS.c.id == revocation_id).values(state=RevocationState.FAILED, error=error)
        )

    # ---------------------------------------------------------- apply events (the indexer)

    async def cursor_value(self) -> str | None:
        async with self.db.read() as s:
            return await s.scalar(select(_META.c.value).where(_META.c.key == CURSOR))

    async def recent_blocks(self) -> list[tuple[int, str]]:
        async with self.db.read() as s:
            rows = await s.execute(
                select(_BLOCKS.c.number, _BLOCKS.c.hash).order_by(_BLOCKS.c.number.desc()).limit(KEEP_TIPS * 2)
            )
            return [(int(n), h) for n, h in rows.all()]

    # ---------------------------------------------------------- reads for the API

    async def head(self) -> int | None:
        """The chain head the indexer last recorded."""
        rows = await self.db.query(_META_SQL, {"key": HEAD})
        return int(rows[0][0]) if rows else None

    async def submission(self, submission_id: str) -> tuple[SubmissionRecord | None, int | None]:
        """A submission and the indexed head, read together."""
        async with self.db.read() as s:
            row = (await s.execute(select(_SUBS).where(_SUBS.c.id == submission_id))).first()
            head = await s.scalar(select(_META.c.value).where(_META.c.key == HEAD))
        return (None if row is None else _submission(row)), (None if head is None else int(head))

    async def submission_of(self, doc: str, signer: str) -> SubmissionRecord | None:
        async with self.db.read() as s:
            row = (await s.execute(select(_SUBS).where(_SUBS.c.doc_hash == doc, _SUBS.c.signer == signer))).first()
        return None if row is None else _submission(row)

    async def last_registered(self, doc: str, signer: str) -> EventRecord | None:
        async with self.db.read() as s:
            row = (
                await s.execute(
                    select(_EVENTS)
                    .where(_EVENTS.c.doc_hash == doc, _EVENTS.c.signer == signer, _EVENTS.c.kind == "Registered")
                    .order_by(_EVENTS.c.id.desc())
                    .limit(1)
                )
            ).first()
        return None if row is None else _event(row)

    async def signers_of(self, doc: str) -> tuple[list[SignerRow], list[SignerEvent], int | None]:
        """A document's submissions, its indexed events (in order) and the head: three indexed reads as plain
        SQL (:meth:`Database.query`), as this runs on every verify and status request."""
        head = await self.head()
        subs = [_signer_row(r) for r in await self.db.query(_SIGNER_SUBS, {"doc": doc})]
        events = [SignerEvent(*r) for r in await self.db.query(_SIGNER_EVENTS, {"doc": doc})]
        return subs, events, head

    async def merkle_on_chain(self, doc: str) -> list[SubmissionRecord]:
        """The document's Merkle submissions whose root is indexed on chain."""
        async with self.db.read() as s:
            rows = await s.execute(
                select(_SUBS).where(
                    _SUBS.c.doc_hash == doc,
                    _SUBS.c.anchoring == Anchoring.MERKLE.value,
                    _SUBS.c.merkle_root.isnot(None),
                    _SUBS.c.block_number.isnot(None),
                )
            )
            return [_submission(r) for r in rows]

    async def registered_signers(self, doc: str) -> list[str]:
        return [r[0] for r in await self.db.query(_REGISTERED_SIGNERS, {"doc": doc})]

    async def file_name(self, doc: str) -> str | None:
        async with self.db.read() as s:
            return await s.scalar(
                select(_SUBS.c.file_name).where(_SUBS.c.doc_hash == doc, _SUBS.c.file_name.is_not(None)).limit(1)
            )

    async def records_page(
        self, signer: str | None, start: int | None, end: int | None, after: ListKey | None, limit: int
    ) -> RecordPage:
        """Records on chain newest first, direct (Registered events) and Merkle leaves (anchored submissions
        whose root's event is indexed) in one order: ``limit`` of them past ``after``, with their revocation
        times and the head. Each side is read by its own index, ``limit`` + 1 rows deep (whether a page follows
        is told by the merge), so a page costs two index range scans however deep it is."""
        params: dict[str, Any] = {"n": limit + 1}
        if signer:
            params["signer"] = signer
        if start is not None:
            params["since"] = start
        if end is not None:
            params["until"] = end
        if after is not None:
            params.update(c_ts=after.timestamp, c_block=after.block_number, c_log=after.log_index, c_leaf=after.leaf)
        shape = _PageShape(signer=bool(signer), since=start is not None, until=end is not None, after=after is not None)
        async with self.db.read() as s:
            head = await s.scalar(select(_META.c.value).where(_META.c.key == HEAD))
            direct = [
                ListedRecord(doc, who, meta, tx, number, ts, log, "", None, None)
                for doc, who, meta, tx, number, ts, log in (await s.execute(text(direct_page_sql(shape)), params))
            ]
            leaves = [
                ListedRecord(doc, who, meta, tx, number, ts, log, sid, root, None)
                for doc, who, meta, tx, number, ts, log, sid, root in (
                    await s.execute(text(merkle_page_sql(shape)), params)
                )
            ]
            rows = sorted(direct + leaves, key=lambda r: r.key, reverse=True)
            page = rows[:limit]
            revoked: dict[tuple[str, str], int] = {}
            private: set[tuple[str, str]] = set()
            if page:
                docs = list({r.doc_hash for r in page})
                # by document (ix_events_doc_signer), as one IN list: an OR of 5,000 pairs is deeper than
                # SQLite's expression limit; a document's other signers' revocations are dropped below
                query = select(_EVENTS.c.doc_hash, _EVENTS.c.signer, _EVENTS.c.timestamp).where(
                    _EVENTS.c.kind == "Revoked", _EVENTS.c.doc_hash.in_(docs)
                )
                for doc, who, ts in (await s.execute(query)).all():
                    revoked[(doc, who)] = ts
                # private submissions, by document as well (uq_submissions_doc_signer leads with doc_hash)
                marked = select(_SUBS.c.doc_hash, _SUBS.c.signer).where(_SUBS.c.private, _SUBS.c.doc_hash.in_(docs))
                private.update((doc, who) for doc, who in (await s.execute(marked)).all())
        records = [
            replace(r, revoked_at=revoked.get((r.doc_hash, r.signer)), private=(r.doc_hash, r.signer) in private)
            for r in page
        ]
        return RecordPage(records, len(rows) > limit, None if head is None else int(head))

    async def key_of_event(self, event_id: int) -> ListKey | None:
        """The list position of a Registered event, by its row id (what a version 1 cursor names); None when the
        event is gone (rolled back by a reorg)."""
        if not 0 < event_id <= _MAX_ROW_ID:
            return None
        async with self.db.read() as s:
            row = (
                await s.execute(
                    select(_EVENTS.c.timestamp, _EVENTS.c.block_number, _EVENTS.c.log_index).where(
                        _EVENTS.c.id == event_id, _EVENTS.c.kind == "Registered"
                    )
                )
            ).first()
        return None if row is None else ListKey(int(row[0]), int(row[1]), int(row[2]), "")

    async def unanchored_of(self, signer: str) -> list[tuple[str, State, str]]:
        """A signer's submissions not on chain yet: (docHash, state, submission id)."""
        async with self.db.read() as s:
            pending = (
                await s.execute(
                    select(_SUBS.c.doc_hash, _SUBS.c.state, _SUBS.c.id).where(
                        _SUBS.c.signer == signer, _SUBS.c.state.in_((State.PENDING, State.SUBMITTED))
                    )
                )
            ).all()
        return [(d, State(st), i) for d, st, i in pending]

    async def registry_txs_per_block(self, numbers: Sequence[int]) -> dict[int, int]:
        """How many transactions of each block emitted indexed registry events: records, revocations and
        Merkle roots."""
        blocks = list(numbers)
        txs: dict[int, set[str]] = {}
        async with self.db.read() as s:
            for table in (_EVENTS, _ROOTS):
                query = select(table.c.block_number, table.c.tx_hash).where(table.c.block_number.in_(blocks))
                for number, tx in (await s.execute(query)).all():
                    txs.setdefault(int(number), set()).add(tx)
        return {number: len(hashes) for number, hashes in txs.items()}

    async def tree_leaves(self, roots: Sequence[str], limit: int) -> dict[str, list[TreeLeaf]]:
        """The submissions this service put in the trees of ``roots`` (at most ``limit`` in all), each tree's
        in leaf order: what an anchorRoot transaction anchored, which the chain does not list."""
        if not roots:
            return {}
        out: dict[str, list[TreeLeaf]] = {root: [] for root in roots}
        async with self.db.read() as s:
            query = (
                select(_SUBS.c.merkle_root, _SUBS.c.doc_hash, _SUBS.c.signer, _SUBS.c.state, _SUBS.c.merkle_proof)
                .where(_SUBS.c.merkle_root.isnot(None), _SUBS.c.merkle_root.in_(list(roots)))
                .limit(limit)
            )
            for root, doc, signer, state, proof in (await s.execute(query)).all():
                index = json.loads(proof)["leafIndex"] if proof else None
                out[root].append(TreeLeaf(doc, signer, State(state), index))
        for leaves in out.values():
            leaves.sort(key=lambda leaf: (leaf.leaf_index is None, leaf.leaf_index or 0, leaf.doc_hash))
        return out

    async def spending_by_client(self) -> dict[str, int]:
        """Wei the relayer spent per client id (for /metrics)."""
        return {c: int(w) for c, w in await self.db.query("SELECT client_id, spent_wei FROM relayer_spending", {})}

    # ---------------------------------------------------------- revocations

    async def revocation(self, doc: str, signer: str, nonce: int) -> RevocationRecord | None:
        async with self.db.read() as s:
            row = (
                await s.scalars(
                    select(RevocationRow).where(
                        RevocationRow.doc_hash == doc, RevocationRow.signer == signer, RevocationRow.nonce == str(nonce)
                    )
                )
            ).first()
        return None if row is None else _revocation(row)

    async def requeue_revocation(
        self, revocation_id: int, deadline: int, signature: str, client_id: str | None
    ) -> None:
        """Queue a new signature for a failed revocation's nonce (one row per nonce)."""
        await self.db.execute(
            update(_REVS)
            .where(_REVS.c.id == revocation_id, _REVS.c.state == RevocationState.FAILED)
            .values(
                deadline=str(deadline),
                signature=signature,
                state=RevocationState.PENDING,
                error=None,
                tx_id=None,
                created_at=now(),
                client_id=client_id,
            )
        )

    async def add_revocation(
        self, doc: str, signer: str, nonce: int, deadline: int, signature: str, client_id: str | None
    ) -> None:
        """A new revocation request (IntegrityError: the same one exists)."""
        await self.db.execute(
            insert(_REVS).values(
                doc_hash=doc,
                signer=signer,
                nonce=str(nonce),
                deadline=str(deadline),
                signature=signature,
                state=RevocationState.PENDING,
                created_at=now(),
                client_id=client_id,
            )
        )

    async def revocations_of(self, doc: str, signer: str) -> list[RevocationRecord]:
        async with self.db.read() as s:
            rows = (
                await s.execute(
                    select(RevocationRow, Transaction.tx_hash)
                    .outerjoin(Transaction, Transaction.id == RevocationRow.tx_id)
                    .where(RevocationRow.doc_hash == doc, RevocationRow.signer == signer)
                    .order_by(RevocationRow.created_at.desc(), RevocationRow.id.desc())
                )
            ).all()
        return [_revocation(row, tx_hash) for row, tx_hash in rows]

    # ---------------------------------------------------------- evidence bundles (the indexer, the receipt route)

    async def evidence_due(self, confirmed_to: int, limit: int) -> Due:
        """The records to capture at or below ``confirmed_to`` (they have their confirmations), at most ``limit``
        of them but a block's never split (a block holding more is taken whole): first those after the
        evidence cursor, then, in what room is left, those whose revocation is after the revocation cursor (a
        revocation dropped their evidence: see :func:`drop_evidence_in`)."""
        records, window = await self._window(EVIDENCE_CURSOR, self._subjects, confirmed_to, limit)
        again, revoked = await self._window(REVOKED_CURSOR, self._revoked, confirmed_to, limit - len(records))
        taken = {(s.doc_hash, s.signer, s.merkle_root) for s in records}
        subjects = records + [s for s in again if (s.doc_hash, s.signer, s.merkle_root) not in taken]
        return Due(tuple(subjects), (window, revoked))

    async def _window(self, key: str, read: _Reader, confirmed_to: int, limit: int) -> tuple[list[Subject], Window]:
        """The records ``read`` finds after the cursor ``key``, by the blocks that make them due."""
        rows = await self.db.query(_META_SQL, {"key": key})
        after = int(rows[0][0]) if rows else -1  # -1: nothing captured yet
        if confirmed_to <= after or limit <= 0:
            return [], Window(key, after, after)
        found = await read(after, confirmed_to, limit + 1)
        if len(found) <= limit:
            return [s for _, s in found], Window(key, after, confirmed_to)
        last = found[-1][0]
        whole = [s for block, s in found if block < last]
        if whole:
            return whole, Window(key, after, last - 1)
        block = await read(last - 1, last, 2**31 - 1)  # that block's records, however many
        return [s for _, s in block], Window(key, after, last)

    async def _subjects(self, after: int, upto: int, n: int) -> list[tuple[int, Subject]]:
        """Records anchored in blocks (``after``, ``upto``], by their blocks."""
        window = {"after": after, "upto": upto, "n": n}
        direct = [Subject(parse_hex(d), s, None, int(b)) for d, s, b in await self.db.query(_DUE_DIRECT, window)]
        leaves = [
            Subject(parse_hex(d), s, parse_hex(r), int(b)) for d, s, r, b in await self.db.query(_DUE_MERKLE, window)
        ]
        merged = sorted(direct + leaves, key=lambda s: s.record_block)  # stable: each list keeps its order
        return [(s.record_block, s) for s in merged[:n]]

    async def _revoked(self, after: int, upto: int, n: int) -> list[tuple[int, Subject]]:
        """Records revoked in blocks (``after``, ``upto``], by their revocations' blocks."""
        window = {"after": after, "upto": upto, "n": n}
        direct = [
            (int(v), Subject(parse_hex(d), s, None, int(b)))
            for v, d, s, b in await self.db.query(_REVOKED_DIRECT, window)
        ]
        leaves = [
            (int(v), Subject(parse_hex(d), s, parse_hex(r), int(b)))
            for v, d, s, r, b in await self.db.query(_REVOKED_MERKLE, window)
        ]
        return sorted(direct + leaves, key=lambda found: found[0])[:n]  # stable: each list keeps its order

    async def save_evidence(self, due: Due, captured: Sequence[Evidence]) -> None:
        """Keep the evidence captured for ``due``'s subjects (in their order; none when none was due) and move
        its cursors. A record captured again keeps its newest evidence only."""
        await self.db.transaction(lambda s: save_evidence_in(s, due, captured))

    async def evidence_of(self, doc: str, signer: str, merkle_root: str | None) -> Evidence | None:
        """The evidence kept for the record of (``doc``, ``signer``), directly or as a leaf of ``merkle_root``."""
        query = (
            select(_EVIDENCE.c.storage, _EVIDENCE_BLOCKS)
            .join(_EVIDENCE_BLOCKS, _EVIDENCE_BLOCKS.c.number == _EVIDENCE.c.block_number)
            .where(*_evidence_keys(doc, signer, merkle_root))
            .order_by(_EVIDENCE.c.id.desc())
            .limit(1)
        )
        async with self.db.read() as s:
            row = (await s.execute(query)).first()
        return None if row is None else parse_evidence(_evidence_section(row._mapping))

    # ---------------------------------------------------------- superseding registrations (verify, documents)

    async def superseding(self, doc: str, signers: Sequence[str]) -> list[Superseding]:
        """The indexed registrations by ``signers`` that name ``doc`` as the document they replace, in the
        chain's order, each with whether its record has a Revoked event. ``supersedes`` is in no index: each
        signer's Registered events are read by their partial index, and only those rows compared."""
        found: list[Superseding] = []
        for signer in signers:
            rows = await self.db.query(_SUPERSEDING, {"doc": doc, "signer": signer})
            found += [Superseding(new, signer, int(order), bool(revoked)) for new, order, revoked in rows]
        return sorted(found, key=lambda x: x.order)


def _revocation(row: RevocationRow, tx_hash: str | None = None) -> RevocationRecord:
    return RevocationRecord(
        id=row.id,
        doc_hash=row.doc_hash,
        signer=row.signer,
        nonce=row.nonce,
        deadline=row.deadline,
        signature=row.signature,
        state=RevocationState(row.state),
        error=row.error,
        created_at=row.created_at,
        tx_hash=tx_hash,
    )


_SIGNER_SUBS = (
    "SELECT id, signer, state, metadata_hash, supersedes, tx_hash, block_number, block_hash, timestamp, "
    "error, metadata_json, anchoring, merkle_root, private FROM submissions WHERE doc_hash = :doc"
)
_SIGNER_EVENTS = (
    "SELECT kind, signer, metadata_hash, supersedes, tx_hash, block_number, block_hash, timestamp "
    "FROM events WHERE doc_hash = :doc ORDER BY id"
)
_REGISTERED_SIGNERS = "SELECT signer FROM events WHERE doc_hash = :doc AND kind = 'Registered' ORDER BY id"


@dataclass(frozen=True, slots=True)
class Superseding:
    """An indexed registration of ``doc_hash`` by ``signer`` that names another document as the one it replaces."""

    doc_hash: str
    signer: str
    order: int  # the event's row id: the chain's order, as indexed
    revoked: bool


_SUPERSEDING = (
    "SELECT e.doc_hash, e.id, EXISTS (SELECT 1 FROM events r WHERE r.doc_hash = e.doc_hash AND r.signer = e.signer "
    f"AND r.kind = 'Revoked') FROM events e WHERE e.{REGISTERED_SQL} AND e.signer = :signer AND e.supersedes = :doc "
    "ORDER BY e.id"
)


@dataclass(frozen=True, slots=True)
class _PageShape:
    """Which of the list's filters a page applies: each is a condition of the SQL, present or not."""

    signer: bool
    since: bool
    until: bool
    after: bool


# The lists' two reads, spelled as SQL text with literal predicates: the partial indexes' (REGISTERED_SQL,
# MERKLE_ON_CHAIN_SQL) must be visible to the planner. The position past the cursor is a row-value comparison
# on the index's own columns, with its leading column bounded apart so that a planner that does not range-scan
# row values still starts at the cursor. tests/api/test_query_plans.py reads these plans.


def direct_page_sql(shape: _PageShape) -> str:
    where = [REGISTERED_SQL]
    if shape.signer:
        where.append("signer = :signer")
    if shape.since:
        where.append("timestamp >= :since")
    if shape.until:
        where.append("timestamp < :until")
    if shape.after:
        where.append("timestamp <= :c_ts AND (timestamp, block_number, log_index) < (:c_ts, :c_block, :c_log)")
    return (
        "SELECT doc_hash, signer, metadata_hash, tx_hash, block_number, timestamp, log_index FROM events "
        f"WHERE {' AND '.join(where)} ORDER BY timestamp DESC, block_number DESC, log_index DESC LIMIT :n"
    )


_ON_CHAIN_STATES = ", ".join(_sql(s) for s in (State.ANCHORED, State.CONFIRMED, State.REVOKED))


def merkle_page_sql(shape: _PageShape) -> str:
    # a leaf is listed under the root event its row names (same root, same transaction): a row whose root is
    # not indexed (yet, or any more after a reorg) is not on chain as far as this service knows
    # (db.MERKLE_ON_CHAIN_SQL, the partial indexes' predicate, on the aliased table)
    where = [
        f"s.anchoring = {_sql(Anchoring.MERKLE)} AND s.block_number IS NOT NULL",
        f"s.state IN ({_ON_CHAIN_STATES})",
    ]
    if shape.signer:
        where.append("s.signer = :signer")
    if shape.since:
        where.append("s.timestamp >= :since")
    if shape.until:
        where.append("s.timestamp < :until")
    if shape.after:
        where.append(
            "s.timestamp <= :c_ts AND (s.timestamp, s.block_number, r.log_index, s.id) "
            "< (:c_ts, :c_block, :c_log, :c_leaf)"
        )
    return (
        "SELECT s.doc_hash, s.signer, s.metadata_hash, s.tx_hash, s.block_number, s.timestamp, r.log_index, s.id, "
        "s.merkle_root FROM submissions s JOIN roots r ON r.root = s.merkle_root AND r.tx_hash = s.tx_hash "
        f"WHERE {' AND '.join(where)} ORDER BY s.timestamp DESC, s.block_number DESC, r.log_index DESC, s.id DESC "
        "LIMIT :n"
    )


# ------------------------------------------------------------------ apply events (the indexer's transaction)


def set_meta_in(s: Session, key: str, value: str) -> None:
    # Core, not the ORM's get-then-flush: that cost more than the rest of an indexer step's key writes
    result = cast(
        "CursorResult[Any]", s.connection().execute(update(_META).where(_META.c.key == key).values(value=value))
    )
    if result.rowcount == 0:
        s.execute(insert(_META).values(key=key, value=value))


def delete_meta_in(s: Session, key: str) -> None:
    s.execute(delete(_META).where(_META.c.key == key))


def persist_blocks_in(s: Session, blocks: Iterable[tuple[int, str, int]], tip: int, cursor: int | None) -> None:
    """Store block headers (number, hash, timestamp) and forget tips that fell KEEP_TIPS behind (unless they
    hold events). Only the tips that fell behind since ``cursor`` are looked at: the rest were dealt with."""
    rows = [{"b_number": n, "b_hash": h, "b_ts": ts} for n, h, ts in blocks]
    known = set(s.scalars(select(_BLOCKS.c.number).where(_BLOCKS.c.number.in_([r["b_number"] for r in rows]))).all())
    if fresh := [r for r in rows if r["b_number"] not in known]:
        s.execute(
            _BLOCKS.insert().values(
                number=bindparam("b_number"), hash=bindparam("b_hash"), timestamp=bindparam("b_ts")
            ),
            fresh,
        )
    if seen := [r for r in rows if r["b_number"] in known]:
        s.execute(
            _BLOCKS.update()
            .where(_BLOCKS.c.number == bindparam("b_number"))
            .values(hash=bindparam("b_hash"), timestamp=bindparam("b_ts")),
            seen,
        )
    has_events = exists().where(_EVENTS.c.block_number == _BLOCKS.c.number)
    floor = -1 if cursor is None else cursor - KEEP_TIPS
    s.execute(delete(_BLOCKS).where(_BLOCKS.c.number >= floor, _BLOCKS.c.number < tip - KEEP_TIPS, ~has_events))


_INSERT_EVENTS = Many(_EVENTS.insert())


def insert_events_in(s: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    _INSERT_EVENTS(s, rows)


def states_of_in(s: Session, docs: Sequence[str]) -> dict[tuple[str, str], tuple[str, State, Anchoring]]:
    """(docHash, signer) -> (submission id, state, anchoring) of the documents' submissions."""
    query = select(_SUBS.c.id, _SUBS.c.doc_hash, _SUBS.c.signer, _SUBS.c.state, _SUBS.c.anchoring).where(
        _SUBS.c.doc_hash.in_(docs)
    )
    return {(doc, signer): (sid, State(state), Anchoring(mode)) for sid, doc, signer, state, mode in s.execute(query)}


_INSERT_ROOTS = Many(_ROOTS.insert())


def insert_roots_in(s: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Indexed ``RootAnchored`` events (rows of the ``roots`` table)."""
    _INSERT_ROOTS(s, rows)


def in_trees_in(s: Session, roots: Sequence[str]) -> list[tuple[str, str, State]]:
    """(submission id, root, state) of the submissions put in the trees of ``roots``."""
    query = select(_SUBS.c.id, _SUBS.c.merkle_root, _SUBS.c.state).where(_SUBS.c.merkle_root.in_(list(roots)))
    return [(sid, root, State(state)) for sid, root, state in s.execute(query)]


def root_in(s: Session, root: str) -> RootRecord | None:
    """Where ``root`` was anchored, as indexed (None: not, or no longer after a reorg)."""
    row = s.execute(
        select(
            _ROOTS.c.root,
            _ROOTS.c.leaf_count,
            _ROOTS.c.tx_hash,
            _ROOTS.c.block_number,
            _ROOTS.c.block_hash,
            _ROOTS.c.timestamp,
        )
        .where(_ROOTS.c.root == root)
        .order_by(_ROOTS.c.id)
        .limit(1)
    ).first()
    return None if row is None else RootRecord(*row)


def revoke_requests_in(s: Session, doc: str, signer: str) -> None:
    """A Revoked event of (docHash, signer) ends its revocation requests in flight."""
    s.execute(
        update(_REVS)
        .where(
            _REVS.c.doc_hash == doc,
            _REVS.c.signer == signer,
            _REVS.c.state.in_((RevocationState.PENDING, RevocationState.SUBMITTED)),
        )
        .values(state=RevocationState.REVOKED)
    )


_ANCHOR = Many(
    update(_SUBS)
    .where(_SUBS.c.id == bindparam("b_id"))
    .values(
        state=bindparam("b_state"),
        tx_hash=bindparam("b_tx"),
        block_number=bindparam("b_number"),
        block_hash=bindparam("b_hash"),
        timestamp=bindparam("b_ts"),
        error=null(),
        updated_at=bindparam("b_updated"),
    )
)


def anchor_in(s: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Mark submissions anchored (or confirmed) by their events: one executemany UPDATE. ``rows`` hold
    ``b_id`` (the submission), ``b_state``, the event's ``b_tx``, ``b_number``, ``b_hash``, ``b_ts`` (block
    timestamp) and ``b_updated``."""
    _ANCHOR(s, rows)


def set_state_in(s: Session, ids: Sequence[str], state: State) -> None:
    if ids:
        s.execute(update(_SUBS).where(_SUBS.c.id.in_(list(ids))).values(state=state, updated_at=now()))


_IS_ANCHORED = _SUBS.c.state == literal_column(_sql(State.ANCHORED))


def anchored_at_or_below_in(s: Session, block: int) -> list[str]:
    """Anchored submissions in blocks at or below ``block`` (the partial index of anchored rows)."""
    return list(s.scalars(select(_SUBS.c.id).where(_IS_ANCHORED, _SUBS.c.block_number <= block)).all())


def links_in(s: Session) -> list[dict[str, Any]]:
    """The submissions of the transactions :func:`mined_in` left to link, each with its indexed record
    (``anchor_in``'s row keys but ``b_state``), and forgets the transactions."""
    row = s.get(Meta, LINK)
    if row is None:
        return []
    tx_ids = json.loads(row.value)
    delete_meta_in(s, LINK)
    recorded = (_EVENTS.c.doc_hash == _SUBS.c.doc_hash) & (_EVENTS.c.signer == _SUBS.c.signer)
    linked = {
        sid: {"b_id": sid, "b_tx": tx, "b_number": number, "b_hash": block_hash, "b_ts": ts}
        for sid, tx, number, block_hash, ts in s.execute(
            select(_SUBS.c.id, _EVENTS.c.tx_hash, _EVENTS.c.block_number, _EVENTS.c.block_hash, _EVENTS.c.timestamp)
            .join(_EVENTS, recorded & (_EVENTS.c.kind == "Registered"))
            .where(_SUBS.c.tx_id.in_(tx_ids), _SUBS.c.state == State.SUBMITTED)
        )
    }
    return list(linked.values())


def root_links_in(s: Session) -> list[RootRecord]:
    """The indexed records of the roots :func:`adopt_tree_in` left to link, and forgets them (a root not indexed
    yet anchors its submissions when its event is)."""
    row = s.get(Meta, ROOT_LINK)
    if row is None:
        return []
    delete_meta_in(s, ROOT_LINK)
    return [record for root in json.loads(row.value) if (record := root_in(s, root)) is not None]


def roll_back_in(s: Session, floor: int) -> set[tuple[str, str]]:
    """Forget events, anchored roots and blocks above ``floor``; transactions mined there are in flight again
    (the worker re-checks or re-sends them). Returns the (docHash, signer) pairs whose events went away,
    those of the submissions in the trees of the roots that went away among them."""
    keys = {
        (doc, signer)
        for doc, signer in s.execute(select(_EVENTS.c.doc_hash, _EVENTS.c.signer).where(_EVENTS.c.block_number > floor))
    }
    gone = select(_ROOTS.c.root).where(_ROOTS.c.block_number > floor)
    keys.update(
        (doc, signer)
        for doc, signer in s.execute(
            select(_SUBS.c.doc_hash, _SUBS.c.signer).where(
                _SUBS.c.merkle_root.isnot(None), _SUBS.c.merkle_root.in_(gone)
            )
        )
    )
    s.execute(delete(_ROOTS).where(_ROOTS.c.block_number > floor))
    s.execute(delete(_EVENTS).where(_EVENTS.c.block_number > floor))
    s.execute(delete(_BLOCKS).where(_BLOCKS.c.number > floor))
    s.execute(
        update(_TXS)
        .where(_TXS.c.block_number > floor, _TXS.c.state.in_((TxState.MINED, TxState.REVERTED)))
        .values(state=TxState.SENT, block_number=None, sent_at=now())
    )
    return keys


def pair_in(s: Session, doc: str, signer: str) -> tuple[SubmissionRecord | None, list[EventRecord]]:
    """A (docHash, signer) pair's submission and its indexed events, in order."""
    row = s.execute(select(_SUBS).where(_SUBS.c.doc_hash == doc, _SUBS.c.signer == signer)).first()
    events = s.execute(
        select(_EVENTS).where(_EVENTS.c.doc_hash == doc, _EVENTS.c.signer == signer).order_by(_EVENTS.c.id)
    ).all()
    return (None if row is None else _submission(row)), [_event(e) for e in events]


def restore_in(s: Session, submission_id: str, state: State, record: EventRecord | RootRecord | None) -> None:
    """Set a submission's state after a rollback, with the anchor of its remaining record (or none)."""
    values: dict[str, Any] = {"state": state, "updated_at": now()}
    if record is not None:
        values.update(
            tx_hash=record.tx_hash,
            block_number=record.block_number,
            block_hash=record.block_hash,
            timestamp=record.timestamp,
        )
    elif state in (State.PENDING, State.SUBMITTED):
        values.update(block_number=None, block_hash=None, timestamp=None)
    if state is State.PENDING:
        values.update(merkle_root=None, merkle_proof=None)  # back in the outbox: its next tree is new
    s.execute(update(_SUBS).where(_SUBS.c.id == submission_id).values(**values))


# ------------------------------------------------------------------ evidence bundles
#
# Once a record reaches its confirmations, the indexer (api/indexing.py) captures the head block's header and
# the registry's account proof once, and each record's storage proofs, in one ``eth_getProof``
# (chain/capture.py): ``evidence_blocks`` keeps the first, ``evidence`` the second (api/db.py). Records are
# walked by block: EVIDENCE_CURSOR is the last block whose records all have their evidence, so a capture the node
# refuses is asked again at the next block, and a reorg's rollback moves the cursor back under what it removed.
#
# Direct records come from the indexed ``Registered`` events (whoever sent them: their receipts are served too),
# Merkle leaves from the submissions in the trees of indexed ``RootAnchored`` events (the chain shows no leaf).
# Both are read by block, on the events' and roots' block indexes; a block's records keep the events' order.
#
# A revocation (a ``Revoked`` event: revokeBySig, or revokeMerkleBySig of a leaf) changes the record slot that
# every bundle of the pair proves, so the transaction that applies it drops them (drop_evidence_in): a bundle of
# before would verify as not revoked. Its records are then proven again by a second cursor, REVOKED_CURSOR, the
# last block whose revocations have their records' new evidence, walked the same way on the Revoked events.
_DUE_DIRECT = (
    "SELECT doc_hash, signer, block_number FROM events WHERE kind = 'Registered' "
    "AND block_number > :after AND block_number <= :upto ORDER BY block_number, id LIMIT :n"
)
_DUE_MERKLE = (
    "SELECT s.doc_hash, s.signer, r.root, r.block_number FROM roots r JOIN submissions s ON s.merkle_root = r.root "
    "WHERE r.block_number > :after AND r.block_number <= :upto AND s.merkle_root IS NOT NULL "  # its partial index
    "ORDER BY r.block_number, s.id LIMIT :n"
)
# a revoked pair's direct record (its Registered event) and Merkle leaf (its submission's root), by revocation
_REVOKED_DIRECT = (
    "SELECT v.block_number, r.doc_hash, r.signer, r.block_number FROM events v JOIN events r "
    "ON r.doc_hash = v.doc_hash AND r.signer = v.signer AND r.kind = 'Registered' "
    "WHERE v.kind = 'Revoked' AND v.block_number > :after AND v.block_number <= :upto "
    "ORDER BY v.block_number, v.id LIMIT :n"
)
_REVOKED_MERKLE = (
    "SELECT v.block_number, s.doc_hash, s.signer, t.root, t.block_number FROM events v JOIN submissions s "
    "ON s.doc_hash = v.doc_hash AND s.signer = v.signer JOIN roots t ON t.root = s.merkle_root "
    "WHERE v.kind = 'Revoked' AND v.block_number > :after AND v.block_number <= :upto "
    "ORDER BY v.block_number, v.id LIMIT :n"
)
_DROP_EVIDENCE = Many(
    delete(_EVIDENCE).where(_EVIDENCE.c.doc_hash == bindparam("b_doc"), _EVIDENCE.c.signer == bindparam("b_signer"))
)


def _evidence_keys(doc: str, signer: str, merkle_root: str | None) -> tuple[ColumnElement[bool], ...]:
    root = _EVIDENCE.c.merkle_root
    return (
        _EVIDENCE.c.doc_hash == doc,
        _EVIDENCE.c.signer == signer,
        root.is_(None) if merkle_root is None else root == merkle_root,
    )


def _evidence_section(row: RowMapping) -> dict[str, Any]:
    """A stored bundle in the receipt's form, so that it is read back through the receipt's own reader."""
    return {
        "block": {"number": int(row["number"]), "hash": row["hash"], "header": row["header"]},
        "account": {"address": row["registry"], "proof": json.loads(row["account_proof"]), "code": row["code"]},
        "storage": json.loads(row["storage"]),
    }


def save_evidence_in(s: Session, due: Due, captured: Sequence[Evidence]) -> None:
    """See :meth:`Store.save_evidence`."""
    # one capture is of one block; a block of that number kept already is that block (a reorg's rollback drops
    # the blocks it removes), proven by the same header and account
    for e in {c.block.number: c for c in captured}.values():
        kept = _EVIDENCE_BLOCKS.c.number == e.block.number
        if s.execute(select(_EVIDENCE_BLOCKS.c.number).where(kept)).first() is None:
            s.execute(
                insert(_EVIDENCE_BLOCKS).values(
                    number=e.block.number,
                    hash=to_hex(e.block.hash),
                    header=to_hex(e.block.header),
                    registry=e.registry,
                    account_proof=json.dumps(list(e.account_proof.nodes)),
                    code=to_hex(e.code),
                )
            )
    for subject, evidence in zip(due.subjects, captured, strict=True):
        doc, root = to_hex(subject.doc_hash), None if subject.merkle_root is None else to_hex(subject.merkle_root)
        s.execute(delete(_EVIDENCE).where(*_evidence_keys(doc, subject.signer, root)))
        s.execute(
            insert(_EVIDENCE).values(
                doc_hash=doc,
                signer=subject.signer,
                merkle_root=root,
                record_block=subject.record_block,
                block_number=evidence.block.number,
                storage=json.dumps(evidence.to_json()["storage"]),
            )
        )
    for window in due.windows:
        set_meta_in(s, window.key, str(window.through))


def drop_evidence_in(s: Session, pairs: Sequence[tuple[str, str]]) -> None:
    """Drop the evidence of every record of the (docHash, signer) ``pairs``, direct and Merkle leaves alike:
    their records were revoked, so a bundle captured before proves a state the chain no longer holds."""
    _DROP_EVIDENCE(s, [{"b_doc": doc, "b_signer": signer} for doc, signer in pairs])


def roll_back_evidence_in(s: Session, floor: int) -> None:
    """A reorg removed the blocks above ``floor``: evidence of a record in them, or proven in one of them, is
    dropped, and the evidence cursor goes back under the earliest record dropped so that it is captured again;
    the revocation cursor goes back to ``floor`` (the revocations above it are gone with their blocks)."""
    gone = or_(_EVIDENCE.c.block_number > floor, _EVIDENCE.c.record_block > floor)
    earliest = s.execute(select(func.min(_EVIDENCE.c.record_block)).where(gone)).scalar()
    s.execute(delete(_EVIDENCE).where(gone))
    s.execute(delete(_EVIDENCE_BLOCKS).where(_EVIDENCE_BLOCKS.c.number > floor))
    revoked = s.execute(select(_META.c.value).where(_META.c.key == REVOKED_CURSOR)).scalar()
    if revoked is not None and int(revoked) > floor:
        set_meta_in(s, REVOKED_CURSOR, str(floor))
    cursor = s.execute(select(_META.c.value).where(_META.c.key == EVIDENCE_CURSOR)).scalar()
    if cursor is None:
        return
    back = min(int(cursor), floor, floor if earliest is None else int(earliest) - 1)
    set_meta_in(s, EVIDENCE_CURSOR, str(back))


# ------------------------------------------------------------------ envelope actions (migration 0011)


@dataclass(frozen=True, slots=True)
class EnvelopeAction:
    """An envelope action of the outbox (api/lifecycle.py ``ActionKind``): what was signed, and where it is."""

    id: int
    kind: ActionKind
    envelope_id: str
    doc_hash: str
    actor: str  # the requester of a create or void, the signer of a decline or count
    message_json: str  # the signed message (a count's {envelopeId, signer})
    signature: str | None  # None for a count
    reason: str | None
    state: ActionState
    attempts: int
    tx_hash: str | None
    block_number: int | None
    error: str | None
    created_at: float


@dataclass(frozen=True, slots=True)
class NewAction:
    """An envelope action to accept."""

    kind: ActionKind
    envelope_id: str
    doc_hash: str
    actor: str
    message_json: str
    signature: str | None
    reason: str | None
    client_id: str | None


@dataclass(frozen=True, slots=True)
class CountDue:
    """A registration of a document on chain, by a signer an envelope of it on chain may name."""

    envelope_id: str
    doc_hash: str
    signer: str
    client_id: str | None  # whose submission it is: the count's fee is charged to them


def _action(row: Any) -> EnvelopeAction:
    return EnvelopeAction(
        id=int(row.id),
        kind=ActionKind(row.kind),
        envelope_id=row.envelope_id,
        doc_hash=row.doc_hash,
        actor=row.actor,
        message_json=row.message_json,
        signature=row.signature,
        reason=row.reason,
        state=ActionState(row.state),
        attempts=int(row.attempts),
        tx_hash=row.tx_hash,
        block_number=row.block_number,
        error=row.error,
        created_at=float(row.created_at),
    )


def requeue_actions_in(s: Session, tx_id: int, error: str, max_attempts: int) -> None:
    """A transaction that did not land (reverted, dropped): its envelope actions back to pending, where the
    next send's gas estimate names the contract's rule if one refuses them, or failed after ``max_attempts``."""
    rows = s.execute(
        select(_ACTIONS.c.id, _ACTIONS.c.attempts).where(
            _ACTIONS.c.tx_id == tx_id, _ACTIONS.c.state == ActionState.SUBMITTED
        )
    ).all()
    for action_id, attempts in rows:
        s.execute(
            update(_ACTIONS)
            .where(_ACTIONS.c.id == action_id, _ACTIONS.c.state == ActionState.SUBMITTED)
            .values(
                attempts=attempts + 1,
                tx_id=None,
                tx_hash=None,
                state=ActionState.FAILED if attempts + 1 >= max_attempts else ActionState.PENDING,
                error=error,
                updated_at=now(),
            )
        )


def record_action_tx_in(s: Session, tx_hash: str, kind: str, raw: bytes, nonce: int, action_id: int) -> int:
    """Record a signed transaction carrying one pending envelope action (before its broadcast), and the action
    submitted in it. Returns the transaction's id."""
    tx_id = s.execute(
        insert(_TXS)
        .values(tx_hash=tx_hash, kind=kind, raw=raw, nonce=nonce, state=TxState.PREPARED, created_at=now())
        .returning(_TXS.c.id)
    ).scalar_one()
    s.execute(
        update(_ACTIONS)
        .where(_ACTIONS.c.id == action_id, _ACTIONS.c.state == ActionState.PENDING)
        .values(state=ActionState.SUBMITTED, tx_id=tx_id, tx_hash=tx_hash, updated_at=now())
    )
    return int(tx_id)


_IN_FLIGHT_TX = _TXS.c.state.in_((TxState.PREPARED, TxState.SENT))
_ON_CHAIN_SUB = _SUBS.c.state.in_((State.ANCHORED, State.CONFIRMED))


_ENVELOPE_EVENTS = cast(Table, EnvelopeEventRow.__table__)  # the envelopes' events as indexed (migration 0012)
_CLOSING = (ChangeKind.COMPLETED.value, ChangeKind.DECLINED.value, ChangeKind.VOIDED.value)


_ANY_PENDING = (
    f"SELECT 1 WHERE EXISTS (SELECT 1 FROM envelope_actions WHERE state = {_sql(ActionState.PENDING)}) "
    f"OR EXISTS (SELECT 1 FROM submissions WHERE envelope_id IS NOT NULL AND {_PENDING_SQL})"
)


class EnvelopeStore:
    """The statements of envelope actions, and of the submissions that sign an envelope."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, new: NewAction, created: ActionState) -> tuple[EnvelopeAction, bool]:
        """Accept ``new`` in state ``created``, or answer the action of its (envelope, kind, actor) and False.
        A failed one is accepted again with the new message and signature (the contract refused the last one:
        an expired deadline, say); any other is the same request again."""
        stamp = now()
        values = {
            "kind": new.kind.value,
            "envelope_id": new.envelope_id,
            "doc_hash": new.doc_hash,
            "actor": new.actor,
            "message_json": new.message_json,
            "signature": new.signature,
            "reason": new.reason,
            "state": created.value,
            "attempts": 0,
            "client_id": new.client_id,
            "created_at": stamp,
            "updated_at": stamp,
        }
        key = (_ACTIONS.c.envelope_id == new.envelope_id, _ACTIONS.c.kind == new.kind, _ACTIONS.c.actor == new.actor)

        def write(s: Session) -> tuple[EnvelopeAction, bool]:
            row = s.execute(select(_ACTIONS).where(*key)).first()
            if row is None:
                s.execute(insert(_ACTIONS).values(**values))
            elif row.state == ActionState.FAILED:
                retry = {k: v for k, v in values.items() if k != "created_at"}
                s.execute(
                    update(_ACTIONS).where(*key, _ACTIONS.c.state == ActionState.FAILED).values(**retry, error=None)
                )
            else:
                return _action(row), False
            return _action(s.execute(select(_ACTIONS).where(*key)).one()), True

        try:
            return await self.db.transaction(write)
        except IntegrityError:  # the same action, accepted meanwhile by another request (or replica)
            async with self.db.read() as s:
                return _action((await s.execute(select(_ACTIONS).where(*key))).one()), False

    async def action(self, envelope_id: str, kind: ActionKind, actor: str) -> EnvelopeAction | None:
        """The action of ``kind`` by ``actor`` on the envelope, if one was accepted."""
        key = (_ACTIONS.c.envelope_id == envelope_id, _ACTIONS.c.kind == kind, _ACTIONS.c.actor == actor)
        async with self.db.read() as s:
            row = (await s.execute(select(_ACTIONS).where(*key))).first()
        return None if row is None else _action(row)

    async def any_pending(self) -> bool:
        """Whether an envelope action or an envelope's signature waits to be sent (the partial indexes' rows)."""
        return bool(await self.db.query(_ANY_PENDING, {}))

    async def actions(self, envelope_id: str) -> list[EnvelopeAction]:
        """The envelope's actions, oldest first."""
        async with self.db.read() as s:
            rows = (
                await s.execute(select(_ACTIONS).where(_ACTIONS.c.envelope_id == envelope_id).order_by(_ACTIONS.c.id))
            ).all()
        return [_action(r) for r in rows]

    async def pending(self, limit: int) -> list[EnvelopeAction]:
        """The oldest pending actions."""
        async with self.db.read() as s:
            rows = (
                await s.execute(
                    select(_ACTIONS)
                    .where(_ACTIONS.c.state == literal_column(_sql(ActionState.PENDING)))
                    .order_by(_ACTIONS.c.created_at, _ACTIONS.c.id)  # an ordered envelope's counts in its order
                    .limit(limit)
                )
            ).all()
        return [_action(r) for r in rows]

    async def pending_signs(self, limit: int) -> list[SubmissionRecord]:
        """The oldest pending submissions that sign an envelope."""
        async with self.db.read() as s:
            rows = (
                await s.execute(
                    select(_SUBS)
                    .where(_SUBS.c.envelope_id.isnot(None), _IS_PENDING)
                    .order_by(_SUBS.c.created_at)
                    .limit(limit)
                )
            ).all()
        return [_submission(r) for r in rows]

    async def signs_of(self, envelope_id: str) -> list[SubmissionRecord]:
        """The submissions that sign the envelope."""
        async with self.db.read() as s:
            rows = (await s.execute(select(_SUBS).where(_SUBS.c.envelope_id == envelope_id))).all()
        return [_submission(r) for r in rows]

    async def busy(self) -> set[str]:
        """Envelopes with a transaction in flight (prepared or sent, not mined): their next action waits for it,
        since its gas estimate runs against the chain without it (a second signer of an ordered envelope would
        be out of order, a sign before the create an unknown envelope)."""
        async with self.db.read() as s:
            actions = await s.scalars(
                select(_ACTIONS.c.envelope_id).join(_TXS, _TXS.c.id == _ACTIONS.c.tx_id).where(_IN_FLIGHT_TX)
            )
            ids = set(actions.all())
            signs = await s.scalars(
                select(_SUBS.c.envelope_id)
                .join(_TXS, _TXS.c.id == _SUBS.c.tx_id)
                .where(_SUBS.c.envelope_id.isnot(None), _IN_FLIGHT_TX)
            )
            ids.update(x for x in signs.all() if x is not None)
        return ids

    async def fail(self, action_id: int, error: str) -> None:
        """A pending action the contract refuses (its rule's name in ``error``): never sent."""
        await self.db.execute(
            update(_ACTIONS)
            .where(_ACTIONS.c.id == action_id, _ACTIONS.c.state == ActionState.PENDING)
            .values(state=ActionState.FAILED, error=error, updated_at=now())
        )

    async def record_sent(self, tx_hash: str, kind: str, raw: bytes, nonce: int, action_id: int) -> int:
        return await self.db.transaction(lambda s: record_action_tx_in(s, tx_hash, kind, raw, nonce, action_id))

    async def counts_due(self) -> list[CountDue]:
        """Registrations on chain (anchored, or in a transaction the worker saw mined: the count need not wait
        for the indexer) of documents with an envelope on chain, whose (envelope, signer) has no count action
        yet. The envelopes are every one the indexer saw created, from anywhere (the CLI sends straight to the
        node), and those created here seen mined before it got there; not those it saw closed. Which of them the
        contract's rule accepts is the worker's to read from the chain (api/service.py ``plan_counts``).

        One statement for every document (the envelope events' table, api/notifications/tables.py, joined here
        rather than read per document through its store), run once per mined transaction or idle period."""
        created = union(
            select(_ENVELOPE_EVENTS.c.envelope_id, _ENVELOPE_EVENTS.c.doc_hash).where(
                _ENVELOPE_EVENTS.c.kind == ChangeKind.CREATED.value
            ),
            select(_ACTIONS.c.envelope_id, _ACTIONS.c.doc_hash).where(
                _ACTIONS.c.kind == ActionKind.CREATE, _ACTIONS.c.state == ActionState.DONE
            ),
        ).subquery("created")
        closed = select(_ENVELOPE_EVENTS.c.id).where(
            _ENVELOPE_EVENTS.c.envelope_id == created.c.envelope_id, _ENVELOPE_EVENTS.c.kind.in_(_CLOSING)
        )
        counted = select(_ACTIONS.c.id).where(
            _ACTIONS.c.envelope_id == created.c.envelope_id,
            _ACTIONS.c.kind == ActionKind.COUNT,
            _ACTIONS.c.actor == _SUBS.c.signer,
        )
        query = (
            select(created.c.envelope_id, created.c.doc_hash, _SUBS.c.signer, _SUBS.c.client_id)
            .select_from(
                created.join(_SUBS, _SUBS.c.doc_hash == created.c.doc_hash).outerjoin(_TXS, _TXS.c.id == _SUBS.c.tx_id)
            )
            .where(
                # any registration but the envelope's own signature sent through its sign (which counted it): a
                # plain one, one that signs another envelope, or this one's anchored before it was sent (the
                # pair's record reached the chain another way, and the indexer anchored the submission by it)
                or_(
                    _SUBS.c.envelope_id.is_(None),
                    _SUBS.c.envelope_id != created.c.envelope_id,
                    _SUBS.c.tx_id.is_(None),
                ),
                or_(_ON_CHAIN_SUB, (_SUBS.c.state == State.SUBMITTED) & (_TXS.c.state == TxState.MINED)),
                ~exists(closed),
                ~exists(counted),
            )
        )
        async with self.db.read() as s:
            rows = (await s.execute(query)).all()
        return [CountDue(envelope_id, doc, signer, client) for envelope_id, doc, signer, client in rows]
