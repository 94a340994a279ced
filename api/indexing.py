"""The indexer loop: persists the registry's events (chain/indexer.py reads them), advances submissions
to anchored / confirmed / revoked, and rolls back what a reorg removed (block-hash continuity)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from docchain.api import metrics
from docchain.api.chainctx import Bound, ChainContext
from docchain.api.db import BlockRow, Database, EventRow, Meta, RevocationRow, Submission, Transaction, now
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


async def set_meta(s: AsyncSession, key: str, value: str) -> None:
    row = await s.get(Meta, key)
    if row is None:
        s.add(Meta(key=key, value=value))
    else:
        row.value = value


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

    def wake(self) -> None:
        """The worker saw a transaction mined (and may have anchored submissions from the index): step now,
        and write even if the head did not move, so their confirmations are computed."""
        self._written_head = None
        self._wake.set()

    async def step(self, bound: Bound) -> float | None:
        """Index what is new; sleep a poll interval once caught up with the head."""
        return self.settings.poll_interval_ms / 1000 if await self.advance(bound) else None

    async def advance(self, bound: Bound) -> bool:
        async with self.db.read() as s:
            cursor = _cursor(await get_meta(s, CURSOR))
        step: IndexStep = await self.chain.run(bound.indexer.poll, cursor)
        self.head = step.head
        metrics.CHAIN_HEAD.set(step.head)
        if step.reorg:
            await self._rollback(bound)
            return False
        if step.tip is None and step.head == self._written_head:
            return step.complete  # nothing new: no write transaction (this runs every poll interval)
        changed: set[str] = set()
        async with self.db.write() as s:
            if step.tip is not None:
                changed |= await self._persist(s, step)
                await set_meta(s, CURSOR, _cursor_json(step.tip))
                metrics.INDEXED_BLOCK.set(step.tip.number)
            await set_meta(s, HEAD, str(step.head))
            changed |= await self._confirm(s, step.head)
        self._written_head = step.head
        self.notifier.notify(changed)
        return step.complete

    async def _persist(self, s: AsyncSession, step: IndexStep) -> set[str]:
        assert step.tip is not None
        existing = set((await s.scalars(select(BlockRow.number).where(BlockRow.number.in_(list(step.blocks))))).all())
        for ref in step.blocks.values():
            if ref.number in existing:
                await s.execute(
                    update(BlockRow)
                    .where(BlockRow.number == ref.number)
                    .values(hash=to_hex(ref.hash), timestamp=ref.timestamp)
                )
            else:
                s.add(BlockRow(number=ref.number, hash=to_hex(ref.hash), timestamp=ref.timestamp))
        # tips older than KEEP_TIPS blocks are only needed if they hold events
        await s.execute(
            delete(BlockRow).where(
                BlockRow.number < step.tip.number - KEEP_TIPS,
                ~BlockRow.number.in_(select(EventRow.block_number).distinct()),
            )
        )
        if not step.events:
            return set()
        rows = [
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
        # (cursor, tip] is new by construction: persist and cursor move in one transaction
        await s.execute(EventRow.__table__.insert(), rows)
        return await self._apply(s, rows)

    async def _apply(self, s: AsyncSession, rows: list[dict]) -> set[str]:  # type: ignore[type-arg]
        """Advance the submissions (and revocations) the new events concern: one indexed read, then one
        executemany UPDATE per kind of change (Core; a block of hundreds of events costs a few statements)."""
        docs = list({r["doc_hash"] for r in rows})
        t = _SUBS
        by_key: dict[tuple[str, str], list[str]] = {
            (doc, signer): [sid, state]
            for sid, doc, signer, state in (
                await s.execute(select(t.c.id, t.c.doc_hash, t.c.signer, t.c.state).where(t.c.doc_hash.in_(docs)))
            ).all()
        }
        changed: set[str] = set()
        anchored: list[dict] = []  # type: ignore[type-arg]
        revoked: list[str] = []
        stamp = now()
        for r in rows:
            sub = by_key.get((r["doc_hash"], r["signer"]))
            if r["kind"] == "Revoked":
                await s.execute(
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
            await s.execute(
                update(t)
                .where(t.c.id == bindparam("b_id"))
                .values(
                    state="anchored",
                    tx_hash=bindparam("b_tx"),
                    block_number=bindparam("b_number"),
                    block_hash=bindparam("b_hash"),
                    timestamp=bindparam("b_ts"),
                    error=None,
                    updated_at=stamp,
                ),
                anchored,
            )
        if revoked:  # after the anchors: a record registered and revoked in one step ends revoked
            await s.execute(update(t).where(t.c.id.in_(revoked)).values(state="revoked", updated_at=stamp))
        if anchored:
            metrics.ANCHORED.inc(len(anchored))
            log.info("anchored", extra={"count": len(anchored), "block": max(r["block_number"] for r in rows)})
        return changed

    async def _confirm(self, s: AsyncSession, head: int) -> set[str]:
        limit = head - self.settings.confirmations + 1
        ids = (
            await s.scalars(
                select(Submission.id).where(Submission.state == "anchored", Submission.block_number <= limit)
            )
        ).all()
        if ids:
            await s.execute(
                update(Submission).where(Submission.id.in_(ids)).values(state="confirmed", updated_at=now())
            )
        return set(ids)

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
        ancestor = await self.chain.run(bound.indexer.common_ancestor, known)
        floor = -1 if ancestor is None else ancestor
        log.warning("chain reorganisation: rolling back", extra={"to_block": floor})
        self._written_head = None
        async with self.db.write() as s:
            gone = (await s.scalars(select(EventRow).where(EventRow.block_number > floor))).all()
            keys = {(e.doc_hash, e.signer) for e in gone}
            await s.execute(delete(EventRow).where(EventRow.block_number > floor))
            await s.execute(delete(BlockRow).where(BlockRow.number > floor))
            # transactions mined in dropped blocks are in flight again: the worker re-checks or re-sends them
            await s.execute(
                update(Transaction)
                .where(Transaction.block_number > floor, Transaction.state.in_(("mined", "reverted")))
                .values(state="sent", block_number=None, sent_at=now())
            )
            changed = await self._recompute(s, keys)
            if ancestor is None:
                row = await s.get(Meta, CURSOR)
                if row is not None:
                    await s.delete(row)
            else:
                ref = await self.chain.run(bound.indexer.block, ancestor)
                if ref is not None:
                    await set_meta(s, CURSOR, _cursor_json(ref))
        metrics.REORGS.inc()  # once the rollback is committed: the counter says "handled"
        self.notifier.notify(changed)

    async def _recompute(self, s: AsyncSession, keys: Iterable[tuple[str, str]]) -> set[str]:
        changed: set[str] = set()
        for doc, signer in keys:
            sub = (
                await s.scalars(select(Submission).where(Submission.doc_hash == doc, Submission.signer == signer))
            ).first()
            if sub is None:
                continue
            events = (
                await s.scalars(select(EventRow).where(EventRow.doc_hash == doc, EventRow.signer == signer))
            ).all()
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
