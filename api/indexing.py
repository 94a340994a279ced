"""The indexer loop: reads the registry's events (chain/indexer.py: records, revocations and Merkle roots) and
hands each step to the service, which persists them and advances submissions to anchored / confirmed /
revoked; after a reorg it finds the common ancestor (block-hash continuity) and has the service roll back
what the reorg removed. Once records have their confirmations, it captures their evidence bundles (api/store.py):
a batch per block, never per request, while the node still serves the state; once a revocation has them, it
captures its record's bundles again (applying the revocation dropped them)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from docchain.api import metrics
from docchain.api.chainctx import Bound, ChainContext
from docchain.api.db import Database
from docchain.api.notifications import model as notifications
from docchain.api.notify import Notifier
from docchain.api.service import Lifecycle, event_row, root_row
from docchain.api.service_loop import ServiceLoop
from docchain.api.settings import Settings
from docchain.chain.capture import capture_evidence
from docchain.chain.errors import DocchainError
from docchain.chain.indexer import BlockRef, IndexStep
from docchain.chain.offline import slots_of
from docchain.chain.values import parse_hex, to_hex

log = logging.getLogger("docchain.api.indexer")

# Records whose evidence one step captures: one eth_getProof of up to twice as many slots (a Merkle leaf proves
# two), an answer of a few MB at most, so that a backlog (a database from before evidence) drains block by block.
EVIDENCE_BATCH = 256


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
        self.service = Lifecycle(db, settings.confirmations)
        self.head: int | None = None
        self._written_head: int | None = None  # the head recorded (and confirmations computed) last
        self._relink = False  # woken by the worker: the next step writes even if nothing is new
        # called once a reorg's rollback is committed: the worker sends again what the chain lost
        self.on_reorg: Callable[[], None] = lambda: None
        # called once a step anchored records: the worker may hold envelope steps that wait for them (a count,
        # or a signature whose registration reached the chain another way)
        self.on_anchored: Callable[[], None] = lambda: None
        # called once envelope changes are committed: the delivery loop calls their webhooks
        self.on_envelopes: Callable[[], None] = lambda: None
        self._code: bytes | None = None  # the registry's runtime code, read once: it never changes

    def wake(self) -> None:
        """The worker saw a transaction mined (and may have left submissions to link to indexed records):
        step now, and write even if the head did not move. A flag of its own, read at the start of a step:
        a step already under way may have read the database before the transaction was recorded mined."""
        self._relink = True
        self._wake.set()

    async def step(self, bound: Bound) -> float | None:
        """Index what is new; once caught up, sleep until a new block or the safety poll."""
        return self.idle_s if await self.advance(bound) else None

    async def advance(self, bound: Bound) -> bool:
        relink, self._relink = self._relink, False
        cursor = _cursor(await self.service.store.cursor_value())
        step: IndexStep = await bound.indexer.poll(cursor)
        self.head = step.head
        metrics.CHAIN_HEAD.set(step.head)
        if step.reorg:
            await self._rollback(bound)
            return False
        if step.tip is None and step.head == self._written_head and not relink:
            return step.complete  # nothing new: no write transaction (this runs every poll interval)
        # computed before the transaction: the write lock is held for SQL only
        rows = [event_row(e, step.blocks[e.block_number].timestamp) for e in step.events]
        roots = [root_row(e, step.blocks[e.block_number].timestamp) for e in step.roots]
        envelope_events = [
            notifications.indexed(e, step.blocks[e.at.block_number].timestamp) for e in step.envelope_events
        ]
        blocks = [(r.number, to_hex(r.hash), r.timestamp) for r in step.blocks.values()]
        tip = None if step.tip is None else (step.tip.number, to_hex(step.tip.hash))
        applied = await self.service.apply_events(
            rows,
            blocks,
            tip,
            None if cursor is None else cursor.number,
            None if step.tip is None else _cursor_json(step.tip),
            step.head,
            roots,
            envelope_events,
        )
        if step.tip is not None:
            metrics.INDEXED_BLOCK.set(step.tip.number)
        if applied.anchored:
            self.on_anchored()
            metrics.ANCHORED.inc(applied.anchored)
            block = max((r["block_number"] for r in [*rows, *roots]), default=step.head)
            log.info("anchored", extra={"count": applied.anchored, "block": block})
        self._written_head = step.head
        self.notifier.notify(applied.changed)
        if envelope_events:
            self.on_envelopes()
        indexed_to = step.tip.number if step.tip is not None else -1 if cursor is None else cursor.number
        await self._capture(bound, min(step.head - self.service.depth + 1, indexed_to))
        return step.complete

    async def _capture(self, bound: Bound, confirmed_to: int) -> None:
        """Capture the evidence of the records confirmed (at or below ``confirmed_to``) since the last capture, and
        of the records whose revocations are, at the head block: the node may keep no older state. A node that
        refuses is asked again at the next block."""
        due = await self.service.store.evidence_due(confirmed_to, EVIDENCE_BATCH)
        if not due.moves:
            return
        if not due.subjects:
            await self.service.store.save_evidence(due, ())
            return
        slots = [slots_of(s.doc_hash, s.signer, s.merkle_root) for s in due.subjects]
        try:
            captured = await capture_evidence(self.chain.rpc, bound.domain.verifying_contract, slots, self._code)
        except DocchainError as exc:
            log.warning("evidence not captured", extra={"records": len(slots), "error": str(exc)})
            return
        self._code = captured[0].code
        await self.service.store.save_evidence(due, captured)
        log.info("evidence captured", extra={"records": len(slots), "block": captured[0].block.number})

    async def _rollback(self, bound: Bound) -> None:
        known = [(n, parse_hex(h)) for n, h in await self.service.store.recent_blocks()]
        ancestor = await bound.indexer.common_ancestor(known)
        floor = -1 if ancestor is None else ancestor
        log.warning("chain reorganisation: rolling back", extra={"to_block": floor})
        self._written_head = None
        ref = None if ancestor is None else await bound.indexer.block(ancestor)
        if ancestor is not None and ref is None:
            changed = await self.service.roll_back(floor, await self.service.store.cursor_value())
        else:
            changed = await self.service.roll_back(floor, None if ref is None else _cursor_json(ref))
        metrics.REORGS.inc()  # once the rollback is committed: the counter says "handled"
        self.on_reorg()
        self.notifier.notify(changed)
        if any(key.startswith(notifications.WATCH_PREFIX) for key in changed):
            self.on_envelopes()  # removed changes may have webhook deliveries to make
