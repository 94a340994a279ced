"""The anchoring worker: drains the outbox into registry transactions.

Per cycle:
1. reconcile in-flight transactions: broadcast any that are only *prepared* (hash and raw bytes are
   committed before the first broadcast, so a crash between the two is repaired here), read receipts of
   *sent* ones, re-broadcast those the node forgot, and return the submissions of reverted or dropped
   transactions to the outbox;
2. when no transaction is left unbroadcast (a nonce gap would stall the relayer), take up to
   ``batch_size`` pending submissions once that many wait or the oldest has waited ``batch_interval_ms``,
   and anchor them: ECDSA ones in one ``registerBatch``, contract-wallet (ERC-1271) ones with ``register``;
3. send pending revocations (``revokeBySig``), one transaction each.

The node being down raises :class:`NodeError`; the cycle is retried with backoff and nothing is lost:
submissions stay in the database until an event proves them anchored.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

from sqlalchemy import bindparam, func, literal_column, select, update
from sqlalchemy.orm import Session

from docchain.api import metrics
from docchain.api.chainctx import Bound, ChainContext
from docchain.api.db import (
    IS_PENDING,
    PENDING_SQL,
    Database,
    EventRow,
    Many,
    RevocationRow,
    Submission,
    Transaction,
    charge_fee,
    now,
)
from docchain.api.indexing import CURSOR, anchor
from docchain.api.notify import Notifier
from docchain.api.service_loop import ServiceLoop
from docchain.api.settings import Settings
from docchain.chain.errors import ChainError, ContractRevert, InvalidInput, NodeError
from docchain.chain.registry import SignedRegistration, encode_call, encode_register_batch
from docchain.chain.sender import PreparedTx
from docchain.chain.typed_data import Domain, Registration, recover
from docchain.chain.values import parse_hex, to_hex

log = logging.getLogger("docchain.api.worker")

MAX_ATTEMPTS = 5
# Gas limit of a registerBatch transaction: measured ~31.2k gas per new record (storage slot, ecrecover,
# event, calldata) plus the transaction's base cost; the bound leaves >40% headroom. Unused gas is not paid.
BATCH_GAS_BASE = 60_000
BATCH_GAS_PER_DOC = 45_000


def batch_gas(n: int) -> int:
    return BATCH_GAS_BASE + BATCH_GAS_PER_DOC * n


def registration_of(row: Submission | _Pending) -> Registration:
    return Registration(
        doc_hash=parse_hex(row.doc_hash),
        signer=row.signer,
        metadata_hash=parse_hex(row.metadata_hash),
        supersedes=parse_hex(row.supersedes),
        deadline=int(row.deadline),
    )


@dataclass
class _Entry:
    row: _Pending
    signed: SignedRegistration


class AnchorWorker(ServiceLoop):
    component = "worker"

    def __init__(self, settings: Settings, db: Database, chain: ChainContext, notifier: Notifier) -> None:
        super().__init__(settings, db, chain, notifier)
        self._recovered = False
        self._arrived = 0  # submissions accepted since the current cycle started
        self._ecdsa_checked: set[str] = set()  # ids whose ECDSA signature the submit route recovered
        self._sleeping_until: float | None = None  # loop time the current sleep ends, None while working
        # transactions seen mined whose submissions wait for the indexer to reach their block: id -> (hash, block)
        self._unindexed: dict[int, tuple[str, int]] = {}
        self.on_mined: Callable[[], None] = lambda: None

    def submitted(self, ecdsa_checked: str | None = None) -> None:
        """A submission was accepted. Wakes the worker only if it would otherwise sleep past the batch
        interval, or once a full batch has arrived: a wake per request would run a cycle (several queries)
        per request under load, for nothing: the batch is not due yet.

        ``ecdsa_checked``: the submission's id when the submit route has just recovered its ECDSA signature
        to its signer (under the same domain): the batch need not recover it a second time."""
        if ecdsa_checked is not None:
            if len(self._ecdsa_checked) >= 100_000:  # bounded: unknown ids are simply recovered again
                self._ecdsa_checked.clear()
            self._ecdsa_checked.add(ecdsa_checked)
        self._arrived += 1
        if self._sleeping_until is None:
            return  # mid-cycle: the next sleep is capped at the batch interval (see _sleep)
        interval = self.settings.batch_interval_ms / 1000
        left = self._sleeping_until - asyncio.get_running_loop().time()
        if left > interval or self._arrived >= self.settings.batch_size:
            self._wake.set()

    def restart(self) -> None:
        super().restart()
        self._recovered = False  # another pipeline may have sent transactions meanwhile: reconcile first

    def chain_changed(self) -> None:
        """The chain under the relayer changed (a reorg, the node back from an outage): before anything new is
        signed, send again what is in flight, in nonce order, and read the nonce from the node, whose count
        may have gone back. A cached nonce above it made every new transaction wait for the gap to fill."""
        self._recovered = False
        self.wake()

    def node_down(self) -> None:
        self.chain_changed()  # the node may come back with another chain (restarted from an older state)

    async def step(self, bound: Bound) -> float | None:
        if not self._recovered:
            await self._recover(bound)
        self._arrived = 0
        return await self.cycle(bound)

    async def _sleep(self, seconds: float) -> None:
        if self._arrived and self.last_error is None:  # arrived during the cycle, after it counted the outbox
            seconds = min(seconds, self.settings.batch_interval_ms / 1000)
        self._sleeping_until = asyncio.get_running_loop().time() + seconds
        try:
            await super()._sleep(seconds)
        finally:
            self._sleeping_until = None

    # ------------------------------------------------------------ recovery

    async def _recover(self, bound: Bound) -> None:
        """After a restart: re-send what was prepared or in flight (in nonce order), then trust the node's nonce."""
        async with self.db.read() as s:
            txs = (
                await s.scalars(
                    select(Transaction).where(Transaction.state.in_(("prepared", "sent"))).order_by(Transaction.nonce)
                )
            ).all()
        if txs:
            log.info("reconciling in-flight transactions", extra={"count": len(txs)})
        for tx in txs:
            await self._broadcast(bound, tx)
        bound.sender.resync_nonce()
        # the latest mined ones too: one whose block vanished before the indexer reached it is found below
        for tx_id, tx_hash, block in await self.db.query(_RECENT_MINED, {"n": RECENT_MINED}):
            self._unindexed.setdefault(tx_id, (tx_hash, block))
        self._recovered = True

    async def _broadcast(self, bound: Bound, tx: Transaction) -> None:
        prepared = PreparedTx(tx_hash=parse_hex(tx.tx_hash), raw=tx.raw, nonce=tx.nonce, gas=0)
        try:
            await bound.sender.broadcast(prepared)
        except NodeError:
            raise
        except ChainError as exc:
            receipt = await bound.sender.receipt(prepared.tx_hash)
            if receipt is None:
                log.warning("transaction dropped by the node", extra={"tx": tx.tx_hash, "error": str(exc)})
                await self._requeue(tx.id, "dropped", f"dropped by the node: {exc}")
                bound.sender.resync_nonce()
                return
        sent = (
            update(Transaction)
            .where(Transaction.id == tx.id, Transaction.state.in_(("prepared", "sent")))
            .values(state="sent", sent_at=now())
        )
        await self.db.execute(sent)

    async def _requeue(self, tx_id: int, tx_state: str, error: str) -> None:
        """Return a transaction's submissions (and revocations) to the outbox, or fail them after MAX_ATTEMPTS."""

        def requeue(s: Session) -> list[str]:
            s.execute(update(Transaction).where(Transaction.id == tx_id).values(state=tx_state, error=error))
            rows = s.scalars(select(Submission).where(Submission.tx_id == tx_id, Submission.state == "submitted")).all()
            for row in rows:
                row.attempts += 1
                row.tx_id = None
                row.tx_hash = None
                row.state = "failed" if row.attempts >= MAX_ATTEMPTS else "pending"
                row.error = error
                row.updated_at = now()
            s.execute(
                update(RevocationRow)
                .where(RevocationRow.tx_id == tx_id, RevocationRow.state == "submitted")
                .values(state="failed", error=error)
            )
            return [r.id for r in rows]

        self.notifier.notify(await self.db.transaction(requeue))

    # ------------------------------------------------------------ one cycle

    async def cycle(self, bound: Bound) -> float | None:
        """One pass; returns how long to sleep (None: go again at once)."""
        await self._reconcile(bound)
        await self._lost_before_indexed()
        # Under load this runs several times a second: plain indexed reads (Database.query), each a small
        # fraction of an ORM query through aiosqlite's thread (measured: the cycle's reads were ~30% of the
        # pipeline's Python time while it anchored ~2,500 documents/s)
        in_flight = dict(await self.db.query(_IN_FLIGHT, {}))
        if in_flight.get("prepared"):
            return self.settings.poll_interval_ms / 1000
        [(pending, oldest)] = await self.db.query(_PENDING, {})
        metrics.OUTBOX.set(pending)
        anchored_any = False
        interval = self.settings.batch_interval_ms / 1000
        if pending:
            age = time.time() - oldest
            if pending >= self.settings.batch_size or age >= interval or self._stopping.is_set():
                await self._anchor_batch(bound)
                anchored_any = True
            else:
                return interval - age
        if await self._send_revocations(bound):
            anchored_any = True
        if anchored_any:
            return None
        return self.settings.poll_interval_ms / 1000 if in_flight.get("sent") else self.idle_s

    async def _reconcile(self, bound: Bound) -> None:
        # without the raw bytes (tens of kilobytes for a batch), read again only to re-broadcast: this runs
        # every cycle, and loading them through the ORM cost more than the rest of the cycle's reads
        for tx in map(_InFlight._make, await self.db.query(_IN_FLIGHT_TXS, {})):
            if tx.state == "prepared":
                await self._broadcast(bound, await self._transaction(tx.id))
                continue
            receipt = await self._receipt(tx.tx_hash)
            if receipt is None:
                # A transaction the node no longer has (its block removed by a reorg, the node restarted from
                # an older state, or dropped) is sent again at once: waiting for the re-send timer stalled
                # anchoring ~30 s, and later nonces with it. One the node still holds gets the timer.
                forgotten = await self.chain.rpc.call("eth_getTransactionByHash", [tx.tx_hash]) is None
                if forgotten or tx.sent_at is None or time.time() - tx.sent_at > self.settings.resend_after_s:
                    log.info("re-broadcasting transaction", extra={"tx": tx.tx_hash, "forgotten": forgotten})
                    await self._broadcast(bound, await self._transaction(tx.id))
                continue
            ok = receipt["status"] == 1
            self.notifier.notify(await self.db.transaction(partial(_mined, tx_id=tx.id, receipt=receipt, ok=ok)))
            if ok:
                self._unindexed[tx.id] = (tx.tx_hash, int(receipt["blockNumber"]))
            self.on_mined()
            log.info(
                "transaction mined",
                extra={
                    "tx": tx.tx_hash,
                    "block": int(receipt["blockNumber"]),
                    "ok": ok,
                    "gas": int(receipt["gasUsed"]),
                },
            )
            if not ok:
                metrics.REVERTED.inc()
                await self._requeue(tx.id, "reverted", f"transaction {tx.tx_hash} reverted")

    async def _lost_before_indexed(self) -> None:
        """Transactions seen mined whose submissions the indexer did not anchor although it indexed past their
        block: that block was replaced before the indexer got there (a reorg its cursor could not see, or the
        receipt read just before the node restarted from an older state), so nothing rolled them back. They
        are in flight again: sent at once (the node no longer has them), with the nonce read again."""
        if not self._unindexed:
            return
        rows = await self.db.query(_CURSOR, {"key": CURSOR})
        indexed = int(json.loads(rows[0][0])["number"]) if rows else -1
        for tx_id, (tx_hash, block) in list(self._unindexed.items()):
            if block > indexed:
                continue
            [(waiting,)] = await self.db.query(_WAITING, {"tx": tx_id})
            # else anchored, or still in the chain (the indexer anchors it there)
            if waiting and await self._receipt(tx_hash) is None:
                log.warning(
                    "a mined transaction's block vanished before it was indexed: sending it again",
                    extra={"tx": tx_hash},
                )
                await self.db.execute(
                    update(Transaction)
                    .where(Transaction.id == tx_id, Transaction.state == "mined")
                    .values(state="sent", block_number=None, sent_at=None)
                )
                self.chain_changed()
            del self._unindexed[tx_id]

    async def _transaction(self, tx_id: int) -> Transaction:
        async with self.db.read() as s:
            tx = await s.get(Transaction, tx_id)
        assert tx is not None  # transactions are never deleted
        return tx

    async def _receipt(self, tx_hash: str) -> dict[str, int] | None:
        """status, blockNumber and gasUsed of a mined transaction (None: not mined). Read raw on the event
        loop: web3 would format every one of a batch's hundreds of logs, which this does not need."""
        raw = await self.chain.rpc.call("eth_getTransactionReceipt", [tx_hash])
        if raw is None or raw.get("blockNumber") is None:
            return None
        return {
            "status": int(raw.get("status", "0x1"), 16),
            "blockNumber": int(raw["blockNumber"], 16),
            "gasUsed": int(raw["gasUsed"], 16),
            "events": len(raw.get("logs") or ()),  # a relayer transaction calls the registry alone
            "fee": _fee(raw),
        }

    # ------------------------------------------------------------ anchoring

    async def _anchor_batch(self, bound: Bound) -> None:
        rows = [_Pending._make(r) for r in await self.db.query(_PENDING_ROWS, {"n": self.settings.batch_size})]
        # ~0.1 ms of signature recovery per row: in the chain thread, so the event loop keeps serving
        checked = {r.id for r in rows if r.id in self._ecdsa_checked}
        self._ecdsa_checked -= checked
        batch, singles, failed = await self.chain.run(_classify, bound.domain, rows, checked)
        if failed:
            await self._fail(failed)

        while batch:
            try:
                data = encode_register_batch([e.signed for e in batch])
                # registerBatch reverts only on a bad ECDSA signature or an expired deadline, and _classify
                # checked both by the contract's own rules. Simulating every batch doubled the node's work
                # (anvil, measured: 125 -> 80 us of CPU per document without it). Entries tried before (their
                # transaction reverted or was dropped: a chain clock ahead of ours, say) are simulated first,
                # so one eth_call names the culprit instead of a second revert. The gas limit is a
                # per-document bound, not eth_estimateGas (~0.5 s of repeated executions for 300 entries).
                if any(e.row.attempts for e in batch):
                    await bound.writes.simulate(data, ["uint256"])
                prepared = await bound.writes.prepare(data, batch_gas(len(batch)))
            except ContractRevert as exc:
                bad = self._culprits(exc, batch)
                if not bad:
                    await self._fail({e.row.id: f"the registry rejected the batch: {exc}" for e in batch})
                    return
                await self._fail({e.row.id: f"the registry rejected it: {exc}" for e in bad})
                batch = [e for e in batch if e not in bad]
                continue
            await self._record(prepared, "register_batch", [e.row.id for e in batch])
            metrics.BATCH_SIZE.observe(len(batch))
            break

        for entry in singles:
            reg, sig = entry.signed.registration, entry.signed.signature
            try:
                prepared = await bound.writes.prepare(encode_call("register", reg.as_tuple(), sig))
            except ContractRevert as exc:
                await self._fail({entry.row.id: f"the registry rejected it: {exc}"})
                continue
            await self._record(prepared, "register", [entry.row.id])

    @staticmethod
    def _culprits(exc: ContractRevert, batch: list[_Entry]) -> list[_Entry]:
        if exc.name in ("InvalidSignature", "NotRegistered", "AlreadyRevoked") and len(exc.args_) == 2:
            doc, signer = exc.args_
            return [
                e for e in batch if e.signed.registration.doc_hash == doc and e.signed.registration.signer == signer
            ]
        if exc.name == "ExpiredSignature" and exc.args_:
            return [e for e in batch if e.signed.registration.deadline == exc.args_[0]]
        return []

    async def _fail(self, errors: dict[str, str]) -> None:
        failed = (
            update(Submission.__table__)
            .where(Submission.__table__.c.id == bindparam("b_id"))
            .values(state="failed", error=bindparam("b_error"), updated_at=now())
        )
        await self.db.execute(failed, [{"b_id": sid, "b_error": error} for sid, error in errors.items()])
        for sid, error in errors.items():
            log.warning("submission failed", extra={"submission": sid, "error": error})
        self.notifier.notify(errors)

    async def _record(self, prepared: PreparedTx, kind: str, submission_ids: list[str]) -> None:
        """Commit the transaction (hash + raw) and its submissions' new state, then broadcast it."""
        tx_hash = to_hex(prepared.tx_hash)
        tx = Transaction(
            tx_hash=tx_hash, kind=kind, raw=prepared.raw, nonce=prepared.nonce, state="prepared", created_at=now()
        )

        def record(s: Session) -> None:
            s.add(tx)
            s.flush()  # assigns tx.id
            if kind == "revoke":
                s.execute(
                    update(RevocationRow)
                    .where(RevocationRow.id == int(submission_ids[0]))
                    .values(state="submitted", tx_id=tx.id)
                )
            else:
                stamp = now()
                _SUBMITTED(
                    s, [{"b_id": i, "b_tx_id": tx.id, "b_tx": tx_hash, "b_updated": stamp} for i in submission_ids]
                )

        await self.db.transaction(record)
        metrics.TXS.labels(kind).inc()
        log.info(
            "anchoring", extra={"tx": tx_hash, "kind": kind, "count": len(submission_ids), "nonce": prepared.nonce}
        )
        if kind != "revoke":
            self.notifier.notify(submission_ids)
        bound = await self.chain.bound()
        await self._broadcast(bound, tx)

    async def _send_revocations(self, bound: Bound) -> bool:
        if not await self.db.query("SELECT 1 FROM revocations WHERE state = 'pending' LIMIT 1", {}):
            return False
        async with self.db.read() as s:
            rows = (
                await s.scalars(
                    select(RevocationRow).where(RevocationRow.state == "pending").order_by(RevocationRow.id).limit(20)
                )
            ).all()
        for row in rows:
            data = encode_call(
                "revokeBySig",
                parse_hex(row.doc_hash),
                row.signer,
                int(row.nonce),
                int(row.deadline),
                parse_hex(row.signature),
            )
            try:
                prepared = await bound.writes.prepare(data)
            except ContractRevert as exc:
                await self.db.execute(
                    update(RevocationRow).where(RevocationRow.id == row.id).values(state="failed", error=str(exc))
                )
                log.warning("revocation rejected", extra={"doc": row.doc_hash, "signer": row.signer, "error": str(exc)})
                continue
            await self._record(prepared, "revoke", [str(row.id)])
        return bool(rows)


def _fee(receipt: dict[str, str]) -> int:
    """What the relayer paid for a mined transaction, reverted or not: gas used x effective gas price, plus
    the L1 data fee an OP-stack L2 reports in its receipts (``l1Fee``)."""
    price = int(receipt.get("effectiveGasPrice") or "0x0", 16)
    return int(receipt["gasUsed"], 16) * price + int(receipt.get("l1Fee") or "0x0", 16)


def _mined(s: Session, tx_id: int, receipt: dict[str, int], ok: bool) -> list[str]:
    """Record a mined transaction. Its submissions whose record already existed on chain (the batch
    skipped them: no event in this transaction) take the anchor from the indexed event; the indexer
    handles the rest as it sees the events. Returns the submissions anchored here."""
    charge_fee(s, tx_id, receipt["fee"])  # to the clients whose writes it carried (relayer spending per key)
    s.execute(
        update(Transaction)
        .where(Transaction.id == tx_id)
        .values(
            state="mined" if ok else "reverted",
            block_number=receipt["blockNumber"],
            gas_used=receipt["gasUsed"],
        )
    )
    if not ok:
        return []
    s.execute(
        update(RevocationRow)
        .where(RevocationRow.tx_id == tx_id, RevocationRow.state == "submitted")
        .values(state="revoked")
    )
    subs, events = Submission.__table__, EventRow.__table__
    # Every submission of the transaction emitted its event: none was skipped, nothing to link here. The
    # join below probes the events index once per submission (~2.5 ms for 300, with the write lock held).
    if receipt["events"] >= (s.scalar(select(func.count()).where(subs.c.tx_id == tx_id)) or 0):
        return []
    # one join in SQL: loading a batch's hundreds of submissions as ORM objects took milliseconds, with the
    # database's write lock held (the API's submissions wait for it)
    recorded = (events.c.doc_hash == subs.c.doc_hash) & (events.c.signer == subs.c.signer)
    linked = {
        sid: {"b_id": sid, "b_tx": tx, "b_number": number, "b_hash": block_hash, "b_ts": ts}
        for sid, tx, number, block_hash, ts in s.execute(
            select(subs.c.id, events.c.tx_hash, events.c.block_number, events.c.block_hash, events.c.timestamp)
            .join(events, recorded & (events.c.kind == "Registered"))
            .where(subs.c.tx_id == tx_id, subs.c.state == "submitted")
        )
    }
    if linked:
        anchor(s, list(linked.values()))
    return list(linked)


class _Pending(NamedTuple):
    """What anchoring needs of a pending submission."""

    id: str
    doc_hash: str
    signer: str
    metadata_hash: str
    supersedes: str
    deadline: str
    signature: str
    attempts: int


_PENDING_ROWS = (
    f"SELECT {', '.join(_Pending._fields)} FROM submissions WHERE {PENDING_SQL} ORDER BY created_at LIMIT :n"
)


class _InFlight(NamedTuple):
    id: int
    tx_hash: str
    state: str
    sent_at: float | None


_IN_FLIGHT_TXS = (
    "SELECT id, tx_hash, state, sent_at FROM transactions WHERE state IN ('prepared', 'sent') ORDER BY nonce"
)
_IN_FLIGHT = "SELECT state, count(*) FROM transactions WHERE state IN ('prepared', 'sent') GROUP BY state"
RECENT_MINED = 64  # mined transactions looked at again after a restart or an outage (a reorg is shallower)
_RECENT_MINED = "SELECT id, tx_hash, block_number FROM transactions WHERE state = 'mined' ORDER BY id DESC LIMIT :n"
_CURSOR = "SELECT value FROM meta WHERE key = :key"
_WAITING = "SELECT count(*) FROM submissions WHERE tx_id = :tx AND state = 'submitted'"
_PENDING = f"SELECT count(*), min(created_at) FROM submissions WHERE {PENDING_SQL}"
_SUBMITTED = Many(
    update(Submission.__table__)
    .where(Submission.__table__.c.id == bindparam("b_id"), IS_PENDING)
    .values(
        state=literal_column("'submitted'"),
        tx_id=bindparam("b_tx_id"),
        tx_hash=bindparam("b_tx"),
        updated_at=bindparam("b_updated"),
    )
)


def _classify(
    domain: Domain, rows: list[_Pending], checked: set[str]
) -> tuple[list[_Entry], list[_Entry], dict[str, str]]:
    """Split pending rows into ECDSA ones (for registerBatch), the rest (contract wallets: ``register``) and
    those whose deadline is too close to be mined in time. Rows in ``checked`` were recovered on
    submission by this process; the others (after a restart, say) are recovered here."""
    batch: list[_Entry] = []
    singles: list[_Entry] = []
    failed: dict[str, str] = {}
    horizon = int(time.time()) + 15  # the deadline must still hold when the block is mined
    for row in rows:
        reg = registration_of(row)
        sig = parse_hex(row.signature)
        if reg.deadline < horizon:
            failed[row.id] = f"the signature's deadline ({reg.deadline}) has passed"
            continue
        entry = _Entry(row, SignedRegistration(reg, sig))
        try:
            ecdsa = len(sig) == 65 and (row.id in checked or recover(domain, reg, sig) == reg.signer)
        except InvalidInput:
            ecdsa = False
        (batch if ecdsa else singles).append(entry)
    return batch, singles, failed
