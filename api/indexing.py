"""The indexer loop: persists the registry's events (chain/indexer.py reads them), advances submissions
to anchored / confirmed / revoked, and rolls back what a reorg removed (block-hash continuity)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import bindparam, delete, exists, insert, null, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from docchain.api import metrics
from docchain.api.chainctx import Bound, ChainContext
from docchain.api.db import (
    IS_ANCHORED,
    BlockRow,
    Database,
    EventRow,
    Many,
    Meta,
    RevocationRow,
    Submission,
    Transaction,
    now,
)
from docchain.api.notify import Notifier
from docchain.api.service_loop import ServiceLoop
from docchain.api.settings import Settings
from docchain.chain.indexer import BlockRef, IndexStep
from docchain.chain.values import parse_hex, to_hex

log = logging.getLogger("docchain.api.indexer")

CURSOR = "indexer.cursor"
HEAD = "chain.head"
_SUBS = Submission.__table__
KEEP_TIPS = 256  # recent tip headers kept for finding the common ancestor after a reorg


async def get_meta(s: AsyncSession, key: str) -> str | None:
    row = await s.get(Meta, key)
    return None if row is None else row.value


def set_meta(s: Session, key: str, value: str) -> None:
    # Core, not the ORM's get-then-flush: that cost ~0.75 ms a key, in every indexer step, lock held
    meta = Meta.__table__
    if s.connection().execute(update(meta).where(meta.c.key == key).values(value=value)).rowcount == 0:
        s.execute(insert(meta).values(key=key, value=value))


async def chain_head(s: AsyncSession) -> int | None:
    value = await s.scalar(select(Meta.__table__.c.value).where(Meta.__table__.c.key == HEAD))
    return None if value is None else int(value)


def _cursor_json(ref: BlockRef) -> str:
    return json.dumps(
        {"number": ref.number, "hash": to_hex(ref.hash), "parent": to_hex(ref.parent_hash), "timestamp": ref.timestamp}
    )


def _cursor(value: str | None) -> BlockRef | None:
    if value is None:
        return None
    data = json.loads(value)
    return BlockRef(data["number"], parse_hex(data["hash"]), parse_hex(data["parent"]), data["timestamp"])


class IndexerLoop(ServiceLoop):
    component = "indexer"

    def __init__(self, settings: Settings, db: Database, chain: ChainContext, notifier: Notifier) -> None:
        super().__init__(settings, db, chain, notifier)
        self.head: int | None = None
        self._written_head: int | None = None  # the head recorded (and confirmations computed) last
        # called once a reorg's rollback is committed: the worker sends again what the chain lost
        self.on_reorg: Callable[[], None] = lambda: None

    def wake(self) -> None:
        """The worker saw a transaction mined (and may have anchored submissions from the index): step now,
        and write even if the head did not move, so their confirmations are computed."""
        self._written_head = None
        self._wake.set()

    async def step(self, bound: Bound) -> float | None:
        """Index what is new; once caught up, sleep until a new block or the safety poll."""
        return self.idle_s if await self.advance(bound) else None

    async def advance(self, bound: Bound) -> bool:
        async with self.db.read() as s:
            cursor = _cursor(await get_meta(s, CURSOR))
        step: IndexStep = await bound.indexer.poll(cursor)
        self.head = step.head
        metrics.CHAIN_HEAD.set(step.head)
        if step.reorg:
            await self._rollback(bound)
            return False
        if step.tip is None and step.head == self._written_head:
            return step.complete  # nothing new: no write transaction (this runs every poll interval)
        rows = _event_rows(step)  # computed before the transaction: the write lock is held for SQL only
        confirmed_to = step.head - self.settings.confirmations + 1  # blocks at or below have their confirmations

        def write(s: Session) -> tuple[set[str], int]:
            changed, anchored = set[str](), 0
            if step.tip is not None:
                _persist_blocks(s, step, cursor)
                if rows:
                    _INSERT_EVENTS(s, rows)  # (cursor, tip] is new by construction
                    changed, anchored = _apply(s, rows, confirmed_to)
                set_meta(s, CURSOR, _cursor_json(step.tip))
            set_meta(s, HEAD, str(step.head))
            return changed | _confirm(s, confirmed_to), anchored

        changed, anchored = await self.db.transaction(write)
        if step.tip is not None:
            metrics.INDEXED_BLOCK.set(step.tip.number)
        if anchored:
            metrics.ANCHORED.inc(anchored)
            log.info("anchored", extra={"count": anchored, "block": max(r["block_number"] for r in rows)})
        self._written_head = step.head
        self.notifier.notify(changed)
        return step.complete

    async def _rollback(self, bound: Bound) -> None:
        async with self.db.read() as s:
            known = [
                (n, parse_hex(h))
                for n, h in (
                    await s.execute(
                        select(BlockRow.number, BlockRow.hash).order_by(BlockRow.number.desc()).limit(KEEP_TIPS * 2)
                    )
                ).all()
            ]
        ancestor = await bound.indexer.common_ancestor(known)
        floor = -1 if ancestor is None else ancestor
        log.warning("chain reorganisation: rolling back", extra={"to_block": floor})
        self._written_head = None
        ref = None if ancestor is None else await bound.indexer.block(ancestor)

        def roll_back(s: Session) -> set[str]:
            gone = s.scalars(select(EventRow).where(EventRow.block_number > floor)).all()
            keys = {(e.doc_hash, e.signer) for e in gone}
            s.execute(delete(EventRow).where(EventRow.block_number > floor))
            s.execute(delete(BlockRow).where(BlockRow.number > floor))
            # transactions mined in dropped blocks are in flight again: the worker re-checks or re-sends them
            s.execute(
                update(Transaction)
                .where(Transaction.block_number > floor, Transaction.state.in_(("mined", "reverted")))
                .values(state="sent", block_number=None, sent_at=now())
            )
            changed = _recompute(s, keys)
            if ancestor is None:
                if (row := s.get(Meta, CURSOR)) is not None:
                    s.delete(row)
            elif ref is not None:
                set_meta(s, CURSOR, _cursor_json(ref))
            return changed

        changed = await self.db.transaction(roll_back)
        metrics.REORGS.inc()  # once the rollback is committed: the counter says "handled"
        self.on_reorg()
        self.notifier.notify(changed)


def _recompute(s: Session, keys: Iterable[tuple[str, str]]) -> set[str]:
    """The state of each (docHash, signer) submission from the events left after a rollback."""
    changed: set[str] = set()
    for doc, signer in keys:
        sub = s.scalars(select(Submission).where(Submission.doc_hash == doc, Submission.signer == signer)).first()
        if sub is None:
            continue
        events = s.scalars(select(EventRow).where(EventRow.doc_hash == doc, EventRow.signer == signer)).all()
        reg = next((e for e in events if e.kind == "Registered"), None)
        if any(e.kind == "Revoked" for e in events):
            sub.state = "revoked"
        elif reg is not None:
            sub.state = "anchored"
            sub.tx_hash, sub.block_number, sub.block_hash, sub.timestamp = (
                reg.tx_hash,
                reg.block_number,
                reg.block_hash,
                reg.timestamp,
            )
        else:
            sub.state = "submitted" if sub.tx_id is not None else "pending"
            sub.block_number = sub.block_hash = sub.timestamp = None
        sub.updated_at = now()
        changed.add(sub.id)
    return changed


def _event_rows(step: IndexStep) -> list[dict[str, Any]]:
    return [
        {
            "kind": e.kind,
            "doc_hash": to_hex(e.doc_hash),
            "signer": e.signer,
            "block_number": e.block_number,
            "block_hash": to_hex(e.block_hash),
            "tx_hash": to_hex(e.tx_hash),
            "log_index": e.log_index,
            "metadata_hash": None if e.metadata_hash is None else to_hex(e.metadata_hash),
            "supersedes": None if e.supersedes is None else to_hex(e.supersedes),
            "timestamp": step.blocks[e.block_number].timestamp,
        }
        for e in step.events
    ]


def _persist_blocks(s: Session, step: IndexStep, cursor: BlockRef | None) -> None:
    """Store the step's block headers and forget tips that fell KEEP_TIPS behind (unless they hold events).
    Only the tips that fell behind in this step are looked at: the rest were dealt with before."""
    assert step.tip is not None
    t = BlockRow.__table__
    known = set(s.scalars(select(t.c.number).where(t.c.number.in_(list(step.blocks)))).all())
    rows = [{"b_number": r.number, "b_hash": to_hex(r.hash), "b_ts": r.timestamp} for r in step.blocks.values()]
    if fresh := [r for r in rows if r["b_number"] not in known]:
        s.execute(
            t.insert().values(number=bindparam("b_number"), hash=bindparam("b_hash"), timestamp=bindparam("b_ts")),
            fresh,
        )
    if seen := [r for r in rows if r["b_number"] in known]:
        s.execute(
            t.update()
            .where(t.c.number == bindparam("b_number"))
            .values(hash=bindparam("b_hash"), timestamp=bindparam("b_ts")),
            seen,
        )
    has_events = exists().where(EventRow.__table__.c.block_number == t.c.number)
    floor = -1 if cursor is None else cursor.number - KEEP_TIPS
    s.execute(delete(t).where(t.c.number >= floor, t.c.number < step.tip.number - KEEP_TIPS, ~has_events))


def _apply(s: Session, rows: list[dict[str, Any]], confirmed_to: int) -> tuple[set[str], int]:
    """Advance the submissions (and revocations) the new events concern: one indexed read, then one
    executemany UPDATE per kind of change (Core; a block of hundreds of events costs a few statements).
    Events at or below block ``confirmed_to`` confirm their submissions at once. Returns the submissions
    changed and how many were anchored."""
    docs = list({r["doc_hash"] for r in rows})
    t = _SUBS
    by_key: dict[tuple[str, str], list[str]] = {
        (doc, signer): [sid, state]
        for sid, doc, signer, state in (
            s.execute(select(t.c.id, t.c.doc_hash, t.c.signer, t.c.state).where(t.c.doc_hash.in_(docs)))
        ).all()
    }
    changed: set[str] = set()
    anchored: list[dict[str, Any]] = []
    revoked: list[str] = []
    stamp = now()
    for r in rows:
        sub = by_key.get((r["doc_hash"], r["signer"]))
        if r["kind"] == "Revoked":
            s.execute(
                update(RevocationRow)
                .where(
                    RevocationRow.doc_hash == r["doc_hash"],
                    RevocationRow.signer == r["signer"],
                    RevocationRow.state.in_(("pending", "submitted")),
                )
                .values(state="revoked")
            )
            if sub is not None:
                sub[1] = "revoked"
                revoked.append(sub[0])
                changed.add(sub[0])
            continue
        if sub is None or sub[1] not in ("pending", "submitted", "failed"):
            continue
        sub[1] = "anchored"
        anchored.append(
            {
                "b_id": sub[0],
                "b_tx": r["tx_hash"],
                "b_number": r["block_number"],
                "b_hash": r["block_hash"],
                "b_ts": r["timestamp"],
            }
        )
        changed.add(sub[0])
    if anchored:
        anchor(s, anchored, confirmed_to)
    if revoked:  # after the anchors: a record registered and revoked in one step ends revoked
        s.execute(update(t).where(t.c.id.in_(revoked)).values(state="revoked", updated_at=stamp))
    return changed, len(anchored)


def anchor(s: Session, rows: list[dict[str, Any]], confirmed_to: int = -1) -> None:
    """Mark submissions anchored by their indexed events: one executemany UPDATE. ``rows`` hold ``b_id`` (the
    submission) and the event's ``b_tx``, ``b_number``, ``b_hash`` and ``b_ts`` (block timestamp). Those in
    blocks at or below ``confirmed_to`` are marked confirmed directly: an indexer catching up would
    otherwise write each row twice in the same transaction (anchored, then confirmed by :func:`_confirm`)."""
    stamp = now()
    for r in rows:
        r["b_state"] = "confirmed" if r["b_number"] <= confirmed_to else "anchored"
        r["b_updated"] = stamp
    _ANCHOR(s, rows)


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
_INSERT_EVENTS = Many(EventRow.__table__.insert())


def _confirm(s: Session, limit: int) -> set[str]:
    """Anchored submissions at or below block ``limit`` are confirmed."""
    ids = s.scalars(select(_SUBS.c.id).where(IS_ANCHORED, _SUBS.c.block_number <= limit)).all()
    if ids:
        s.execute(update(_SUBS).where(_SUBS.c.id.in_(ids)).values(state="confirmed", updated_at=now()))
    return set(ids)
