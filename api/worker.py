"""The anchoring worker: drains the outbox into registry transactions.

Per cycle:
1. reconcile in-flight transactions: broadcast any that are only *prepared* (hash and raw bytes are
   committed before the first broadcast, so a crash between the two is repaired here), read receipts of
   *sent* ones, re-broadcast those the node forgot, and return the submissions of reverted or dropped
   transactions to the outbox;
2. when no transaction is left unbroadcast (a nonce gap would stall the relayer), take up to
   ``batch_size`` pending direct submissions once that many wait or the oldest has waited
   ``batch_interval_ms``, and anchor them: ECDSA ones in one ``registerBatch``, contract-wallet (ERC-1271)
   ones with ``register``; and close a Merkle tree of up to ``merkle_max_leaves`` pending Merkle submissions
   once that many wait or the oldest has waited ``merkle_max_wait_ms``, its root sent with ``anchorRoot``;
3. send pending revocations (``revokeBySig``, or ``revokeMerkleBySig`` with the leaf's proof for a
   Merkle-anchored record), one transaction each;
4. send envelope actions (create, decline, void, countRegistration) and the submissions that sign an envelope
   (its contract's ``sign``), one transaction each and one at a time per envelope: a step's gas estimate runs
   against the chain without the step before it. A registration on chain by a signer an envelope of its
   document names (an envelope created anywhere) is queued as a count first, when the contract's rule accepts
   it. A refusal of the contract fails the action with its rule's name (``OutOfOrder``, ...), never sent again.

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

from docchain.api import metrics
from docchain.api.chainctx import Bound, ChainContext
from docchain.api.db import Database
from docchain.api.lifecycle import (
    ActionKind,
    ActionOperation,
    ActionState,
    Anchoring,
    SignatureKind,
    TxState,
    action_transition,
)
from docchain.api.notify import Notifier
from docchain.api.service import Lifecycle, count_plan, merkle_anchor, registration_of
from docchain.api.service_loop import ServiceLoop
from docchain.api.settings import Settings
from docchain.api.store import CountDue, EnvelopeAction, EnvelopeStore, NewAction, Pending, TreeChanged, TxRecord
from docchain.chain import envelopes as env
from docchain.chain.envelopes import Status as EnvStatus
from docchain.chain.envelopes_contract import EnvelopesReader
from docchain.chain.errors import ChainError, ContractRevert, InvalidInput, NodeError
from docchain.chain.merkle import InclusionProof, MerkleTree, leaf
from docchain.chain.registry import SignedRegistration, encode_call, encode_register_batch, merkle_leaf_values
from docchain.chain.rpc import RpcError
from docchain.chain.sender import PreparedTx
from docchain.chain.typed_data import Domain, recover
from docchain.chain.values import parse_hex, to_hex

log = logging.getLogger("docchain.api.worker")

# Gas limit of a registerBatch transaction: measured ~31.2k gas per new record (storage slot, ecrecover,
# event, calldata) plus the transaction's base cost; the bound leaves >40% headroom. Unused gas is not paid.
BATCH_GAS_BASE = 60_000
BATCH_GAS_PER_DOC = 45_000


# Gas limit of an anchorRoot transaction: ~45,500 whatever the tree's size (one new slot, an event, calldata)
ANCHOR_ROOT_GAS = 80_000


def batch_gas(n: int) -> int:
    return BATCH_GAS_BASE + BATCH_GAS_PER_DOC * n


@dataclass
class _Entry:
    row: Pending
    signed: SignedRegistration


class AnchorWorker(ServiceLoop):
    component = "worker"

    def __init__(self, settings: Settings, db: Database, chain: ChainContext, notifier: Notifier) -> None:
        super().__init__(settings, db, chain, notifier)
        self.service = Lifecycle(db, settings.confirmations)
        self.store = self.service.store
        self.envelopes = EnvelopeStore(db)
        self._recovered = False
        self._arrived = 0  # submissions accepted since the current cycle started
        self._sleeping_until: float | None = None  # loop time the current sleep ends, None while working
        self._tree_open = False  # the current sleep waits for a Merkle tree's deadline, no direct batch pending
        self._cut: asyncio.TimerHandle | None = None  # the timer that ends a sleep early (see submitted)
        # transactions seen mined whose submissions wait for the indexer to reach their block: id -> (hash, block)
        self._unindexed: dict[int, tuple[str, int]] = {}
        # when plain registrations to count toward envelopes are looked for next: after a transaction of the
        # relayer is mined (its registrations are on chain), else once per idle period (one the indexer anchored
        # by a record sent by someone else)
        self._counts_at = 0.0
        # (envelope, signer) of registrations on chain the envelope will never count (the contract's rule refuses
        # them for good, or it counts them already): not read from the chain again until the chain changes
        self._uncountable: set[tuple[str, str]] = set()
        self.on_mined: Callable[[], None] = lambda: None

    def submitted(self) -> None:
        """A submission was accepted. Wakes the worker only if it would otherwise sleep past the batch
        interval, or once a full batch has arrived: a wake per request would run a cycle (several queries)
        per request under load, for nothing: the batch is not due yet."""
        self._arrived += 1
        if self._sleeping_until is None:
            return  # mid-cycle: the next sleep is capped at the batch interval (see _sleep)
        interval = self.settings.batch_interval_ms / 1000
        loop = asyncio.get_running_loop()
        left = self._sleeping_until - loop.time()
        if self._arrived >= self.settings.batch_size:
            self._wake.set()
        elif left > interval and self._tree_open:
            # Sleeping until a Merkle tree's deadline: the arrival may be direct (due within the batch
            # interval) or one more leaf (due with the tree). Under a Merkle load a wake per arrival would run
            # a cycle per request; the sleep is cut to one interval from now instead, which the arrivals after
            # this one find short enough.
            self._sleeping_until = loop.time() + interval
            self._cut = loop.call_later(interval, self._wake.set)
        elif left > interval:
            self._wake.set()

    def restart(self) -> None:
        super().restart()
        self._recovered = False  # another pipeline may have sent transactions meanwhile: reconcile first

    def chain_changed(self) -> None:
        """The chain under the relayer changed (a reorg, the node back from an outage): before anything new is
        signed, send again what is in flight, in nonce order, and read the nonce from the node, whose count
        may have gone back. A cached nonce above it made every new transaction wait for the gap to fill."""
        self._recovered = False
        self._uncountable.clear()  # the records and envelopes judged may be gone, or be others
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
            if self._cut is not None:
                self._cut.cancel()
                self._cut = None

    # ------------------------------------------------------------ recovery

    async def _recover(self, bound: Bound) -> None:
        """After a restart: re-send what was prepared or in flight (in nonce order), then trust the node's nonce."""
        txs = await self.store.in_flight_full()
        if txs:
            log.info("reconciling in-flight transactions", extra={"count": len(txs)})
        for tx in txs:
            await self._broadcast(bound, tx)
        bound.sender.resync_nonce()
        # the latest mined ones too: one whose block vanished before the indexer reached it is found below
        for tx_id, tx_hash, block in await self.store.recent_mined():
            self._unindexed.setdefault(tx_id, (tx_hash, block))
        self._recovered = True

    async def _broadcast(self, bound: Bound, tx: TxRecord) -> None:
        prepared = PreparedTx(tx_hash=parse_hex(tx.tx_hash), raw=tx.raw, nonce=tx.nonce, gas=0)
        try:
            await bound.sender.broadcast(prepared)
        except NodeError:
            raise
        except ChainError as exc:
            receipt = await bound.sender.receipt(prepared.tx_hash)
            if receipt is None:
                log.warning("transaction dropped by the node", extra={"tx": tx.tx_hash, "error": str(exc)})
                await self._requeue(tx.id, TxState.DROPPED, f"dropped by the node: {exc}")
                bound.sender.resync_nonce()
                return
        await self.store.mark_sent(tx.id)

    async def _requeue(self, tx_id: int, tx_state: TxState, error: str) -> None:
        """Return a transaction's submissions (and revocations) to the outbox, or fail them after MAX_ATTEMPTS."""
        self.notifier.notify(await self.service.requeue(tx_id, tx_state, error))

    # ------------------------------------------------------------ one cycle

    async def cycle(self, bound: Bound) -> float | None:
        """One pass; returns how long to sleep (None: go again at once)."""
        await self._reconcile(bound)
        await self._lost_before_indexed()
        # Under load this runs several times a second: plain indexed reads (Database.query), each a small
        # fraction of an ORM query through aiosqlite's thread (measured: the cycle's reads were ~30% of the
        # pipeline's Python time while it anchored ~2,500 documents/s)
        in_flight = await self.store.in_flight_counts()
        if in_flight.get(TxState.PREPARED):
            return self.settings.poll_interval_ms / 1000
        queues = await self.store.pending_counts()
        metrics.OUTBOX.set(sum(n for n, _ in queues.values()))
        anchored_any = False
        waits: list[float] = []  # until the next batch or tree is due
        stopping = self._stopping.is_set()
        if (direct := queues.get(Anchoring.DIRECT)) is not None:
            pending, oldest = direct
            interval = self.settings.batch_interval_ms / 1000
            age = time.time() - oldest
            if pending >= self.settings.batch_size or age >= interval or stopping:
                await self._anchor_batch(bound)
                anchored_any = True
            else:
                waits.append(interval - age)
        if (merkle := queues.get(Anchoring.MERKLE)) is not None:
            leaves, oldest = merkle
            max_wait = self.settings.merkle_max_wait_ms / 1000
            age = time.time() - oldest
            if leaves >= self.settings.merkle_max_leaves or age >= max_wait or stopping:
                await self._anchor_tree(bound)
                anchored_any = True
            else:
                waits.append(max_wait - age)
        self._tree_open = direct is None and merkle is not None and not anchored_any
        if waits and not anchored_any:
            return min(waits)
        if await self._send_revocations(bound):
            anchored_any = True
        if await self._send_envelopes(bound):
            anchored_any = True
        if anchored_any:
            return None
        return self.settings.poll_interval_ms / 1000 if in_flight.get(TxState.SENT) else self.idle_s

    async def _reconcile(self, bound: Bound) -> None:
        # without the raw bytes (tens of kilobytes for a batch), read again only to re-broadcast: this runs
        # every cycle, and loading them through the ORM cost more than the rest of the cycle's reads
        for tx in await self.store.in_flight():
            if tx.state == TxState.PREPARED:
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
            await self.service.mined(tx.id, receipt, ok)
            if ok:
                self._unindexed[tx.id] = (tx.tx_hash, int(receipt["blockNumber"]))
                self._counts_at = 0.0
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
                await self._requeue(tx.id, TxState.REVERTED, f"transaction {tx.tx_hash} reverted")

    async def _lost_before_indexed(self) -> None:
        """Transactions seen mined whose submissions the indexer did not anchor although it indexed past their
        block: that block was replaced before the indexer got there (a reorg its cursor could not see, or the
        receipt read just before the node restarted from an older state), so nothing rolled them back. They
        are in flight again: sent at once (the node no longer has them), with the nonce read again."""
        if not self._unindexed:
            return
        indexed = await self.store.indexed_block()
        for tx_id, (tx_hash, block) in list(self._unindexed.items()):
            if block > indexed:
                continue
            waiting = await self.store.waiting(tx_id)
            # else anchored, or still in the chain (the indexer anchors it there)
            if waiting and await self._receipt(tx_hash) is None:
                log.warning(
                    "a mined transaction's block vanished before it was indexed: sending it again",
                    extra={"tx": tx_hash},
                )
                await self.store.resend_lost(tx_id)
                self.chain_changed()
            del self._unindexed[tx_id]

    async def _transaction(self, tx_id: int) -> TxRecord:
        return await self.store.transaction(tx_id)

    async def _receipt(self, tx_hash: str) -> dict[str, int] | None:
        """status, blockNumber and gasUsed of a mined transaction (None: not mined). Read raw on the event
        loop: web3 would format every one of a batch's hundreds of logs, which this does not need."""
        raw = await self.chain.rpc.call("eth_getTransactionReceipt", [tx_hash])
        if raw is None or raw.get("blockNumber") is None:
            return None
        logs = raw.get("logs") or ()
        bound = self.chain.ready
        registry = None if bound is None else bound.registry.address.lower()
        return {
            "status": int(raw.get("status", "0x1"), 16),
            "blockNumber": int(raw["blockNumber"], 16),
            "gasUsed": int(raw["gasUsed"], 16),
            # the registry's events: an envelope's sign emits the envelopes contract's too, and emits no Registered
            # event when it counts a record the registry held already (left for the indexer to link, as a batch's)
            "events": sum(1 for x in logs if registry is None or str(x.get("address", "")).lower() == registry),
            "fee": _fee(raw),
        }

    # ------------------------------------------------------------ anchoring

    async def _anchor_batch(self, bound: Bound) -> None:
        rows = await self.store.pending(self.settings.batch_size)
        # rows accepted before signature kinds were stored are recovered (~0.1 ms each): in a thread, so the
        # event loop keeps serving
        batch, singles, failed = await asyncio.to_thread(_classify, bound.domain, rows)
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

    async def _anchor_tree(self, bound: Bound) -> None:
        """Close a Merkle tree of the oldest pending Merkle submissions and send its root (``anchorRoot``). The
        root and every submission's proof are committed with the transaction, before its broadcast."""
        rows = await self.store.pending_merkle(self.settings.merkle_max_leaves)
        tree, proofs, failed = await asyncio.to_thread(_grow_tree, rows)
        if failed:
            await self._fail(failed)
        if tree is None:
            return
        data = encode_call("anchorRoot", tree.root, len(tree))
        # a tree holding submissions tried before (their root's transaction reverted or was dropped) has its gas
        # estimated, which executes it: a refusal is named instead of sent again
        retried = any(r.attempts for r in rows if r.id in proofs)
        try:
            prepared = await bound.writes.prepare(data, None if retried else ANCHOR_ROOT_GAS)
        except ContractRevert as exc:
            if exc.name == "RootAlreadyAnchored":
                # another sender anchored this very tree (say, copied from the mempool): its leaves are on chain
                await self.service.adopt_tree(tree.root, proofs)
                log.warning("a tree's root was anchored by another sender", extra={"root": to_hex(tree.root)})
                self.notifier.notify(list(proofs))
                self.on_mined()  # the indexer anchors them from the root's event
                return
            await self._fail({sid: f"the registry refused the tree's root: {exc}" for sid in proofs})
            return
        try:
            await self._record(prepared, "anchor_root", list(proofs), proofs)
        except TreeChanged as exc:
            # nothing was recorded or sent: the nonce it took is free again, and the next cycle grows a new tree
            log.warning("a tree changed before its root was recorded", extra={"error": str(exc)})
            bound.sender.resync_nonce()
            return
        metrics.BATCH_SIZE.observe(len(proofs))

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
        await self.service.fail(errors)
        for sid, error in errors.items():
            log.warning("submission failed", extra={"submission": sid, "error": error})
        self.notifier.notify(errors)

    async def _record(
        self,
        prepared: PreparedTx,
        kind: str,
        submission_ids: list[str],
        tree: dict[str, InclusionProof] | None = None,
    ) -> None:
        """Commit the transaction (hash + raw) and its submissions' new state (with their proofs, for a tree's
        root), then broadcast it."""
        tx_hash = to_hex(prepared.tx_hash)
        tx_id = await self.service.record_sent(tx_hash, kind, prepared.raw, prepared.nonce, submission_ids, tree)
        tx = TxRecord(tx_id, tx_hash, kind, prepared.raw, prepared.nonce)
        metrics.TXS.labels(kind).inc()
        log.info(
            "anchoring", extra={"tx": tx_hash, "kind": kind, "count": len(submission_ids), "nonce": prepared.nonce}
        )
        if kind != "revoke" and not kind.startswith("envelope_"):
            self.notifier.notify(submission_ids)
        bound = await self.chain.bound()
        await self._broadcast(bound, tx)

    async def _send_revocations(self, bound: Bound) -> bool:
        if not await self.store.any_pending_revocation():
            return False
        rows = await self.store.pending_revocations(20)
        for row in rows:
            sub = await self.store.submission_of(row.doc_hash, row.signer)
            anchor = None if sub is None else merkle_anchor(sub)
            if anchor is not None:
                # the registry holds no record of a Merkle leaf: the revocation proves the leaf under its root
                signed, inclusion = anchor
                data = encode_call(
                    "revokeMerkleBySig",
                    inclusion.root,
                    merkle_leaf_values(signed),
                    list(inclusion.proof),
                    int(row.nonce),
                    int(row.deadline),
                    parse_hex(row.signature),
                )
            else:
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
                await self.store.fail_revocation(row.id, str(exc))
                log.warning("revocation rejected", extra={"doc": row.doc_hash, "signer": row.signer, "error": str(exc)})
                continue
            await self._record(prepared, "revoke", [str(row.id)])
        return bool(rows)

    # ------------------------------------------------------------ envelopes

    async def _send_envelopes(self, bound: Bound) -> bool:
        """Send pending envelope actions, then pending envelope signatures, each envelope's one at a time.
        Returns whether anything was sent."""
        if bound.envelopes is None:
            return False
        if time.time() >= self._counts_at:
            await self._queue_counts(bound, bound.envelopes)
            self._counts_at = time.time() + self.idle_s
        # under a load of plain submissions this runs several times a second: one indexed read when idle
        if not await self.envelopes.any_pending():
            return False
        busy = await self.envelopes.busy()
        sent = False
        for action in await self.envelopes.pending(20):
            if action.envelope_id in busy:
                continue
            busy.add(action.envelope_id)
            try:
                prepared = await self._prepare_envelope(bound, bound.envelopes, _action_call(action))
            except ContractRevert as exc:
                action_transition(ActionOperation.SEND, ActionState.PENDING, ActionState.FAILED)
                await self.envelopes.fail(action.id, str(exc))
                log.warning("envelope action refused", extra={"envelope": action.envelope_id, "error": str(exc)})
                continue
            action_transition(ActionOperation.SEND, ActionState.PENDING, ActionState.SUBMITTED)
            tx_hash = to_hex(prepared.tx_hash)
            kind = f"envelope_{action.kind.value}"
            tx_id = await self.envelopes.record_sent(tx_hash, kind, prepared.raw, prepared.nonce, action.id)
            metrics.TXS.labels(kind).inc()
            log.info("envelope action", extra={"tx": tx_hash, "kind": kind, "envelope": action.envelope_id})
            await self._broadcast(bound, TxRecord(tx_id, tx_hash, kind, prepared.raw, prepared.nonce))
            sent = True
        for sub in await self.envelopes.pending_signs(20):
            assert sub.envelope_id is not None  # (the query's)
            if sub.envelope_id in busy:
                continue
            busy.add(sub.envelope_id)
            reg = registration_of(sub)
            data = env.encode_sign(parse_hex(sub.envelope_id), reg, parse_hex(sub.signature))
            try:
                prepared = await self._prepare_envelope(bound, bound.envelopes, data)
            except ContractRevert as exc:
                await self._fail({sub.id: str(exc)})
                continue
            await self._record(prepared, "envelope_sign", [sub.id])
            self.notifier.notify([sub.id])
            sent = True
        return sent

    async def _prepare_envelope(self, bound: Bound, envelopes: str, data: bytes) -> PreparedTx:
        """Sign a transaction to the envelopes contract, its gas estimated: a rule that refuses it is the
        contract's custom error (the relayer's sender decodes the registry's alone)."""
        try:
            return await bound.sender.prepare(envelopes, data)
        except RpcError as exc:
            data_ = exc.revert_data
            revert = None if data_ is None else env.decode_revert(data_)
            if revert is None:
                raise
            raise revert from exc

    async def _queue_counts(self, bound: Bound, envelopes: str) -> None:
        """A plain registration on chain by a signer named in an envelope of its document counts toward it: a
        ``countRegistration`` action is queued (once per envelope and signer) when the contract's rule accepts
        it now (:func:`plan_counts`), in the envelope's order. One it refuses for good (out of turn, made after
        the deadline, the envelope closed) is never queued: its count would only fail. One that waits for a
        signer ahead to be counted is looked at again next time."""
        due = [c for c in await self.envelopes.counts_due() if (c.envelope_id, c.signer) not in self._uncountable]
        if not due:
            return
        reader = EnvelopesReader(self.chain.rpc, envelopes, bound.domain.chain_id)
        by_envelope: dict[str, dict[str, CountDue]] = {}
        for one in due:
            by_envelope.setdefault(one.envelope_id, {})[one.signer] = one
        for eid, dues in by_envelope.items():
            state = await reader.state(parse_hex(eid))
            plan = await count_plan(bound.registry, state)
            coming = {
                a.actor
                for a in await self.envelopes.actions(eid)
                if a.kind is ActionKind.COUNT and a.state is not ActionState.FAILED
            }
            for signer in plan.ready:
                mine = dues.get(signer)
                if mine is not None:
                    await self._queue_count(mine)
                elif state.ordered and signer not in coming:
                    break  # a record sent elsewhere, counted by no one here yet: those behind it wait for its count
            counted = {s.signer for s in state.signers if s.signed}
            named = {s.signer for s in state.signers}
            for signer in dues:
                if (
                    signer in plan.never
                    or signer in counted
                    or (state.status is not EnvStatus.NONE and signer not in named)
                ):
                    self._uncountable.add((eid, signer))

    async def _queue_count(self, due: CountDue) -> None:
        message = json.dumps({"envelopeId": due.envelope_id, "signer": due.signer}, separators=(",", ":"))
        new = NewAction(ActionKind.COUNT, due.envelope_id, due.doc_hash, due.signer, message, None, None, due.client_id)
        await self.envelopes.add(new, action_transition(ActionOperation.ACCEPT, None, ActionState.PENDING))
        log.info(
            "counting a registration toward an envelope", extra={"envelope": due.envelope_id, "signer": due.signer}
        )


def _action_call(action: EnvelopeAction) -> bytes:
    """The envelopes contract's calldata of a stored action."""
    message = json.loads(action.message_json)
    signature = b"" if action.signature is None else parse_hex(action.signature)
    if action.kind is ActionKind.CREATE:
        request = env.EnvelopeRequest(
            doc_hash=parse_hex(message["docHash"]),
            requester=message["requester"],
            signers=tuple(message["signers"]),
            ordered=bool(message["ordered"]),
            deadline=int(message["deadline"]),
            salt=parse_hex(message["salt"]),
            request_deadline=int(message["requestDeadline"]),
        )
        return env.encode_create(request, signature)
    if action.kind is ActionKind.DECLINE:
        decline = env.Decline(
            parse_hex(message["envelopeId"]),
            message["signer"],
            int(message["deadline"]),
            parse_hex(message["reasonHash"]),
        )
        return env.encode_decline(decline, signature)
    if action.kind is ActionKind.VOID:
        void = env.Void(parse_hex(message["envelopeId"]), int(message["deadline"]), parse_hex(message["reasonHash"]))
        return env.encode_void(void, signature)
    return env.encode_count_registration(parse_hex(action.envelope_id), action.actor)


def _fee(receipt: dict[str, str]) -> int:
    """What the relayer paid for a mined transaction, reverted or not: gas used x effective gas price, plus
    the L1 data fee an OP-stack L2 reports in its receipts (``l1Fee``)."""
    price = int(receipt.get("effectiveGasPrice") or "0x0", 16)
    return int(receipt["gasUsed"], 16) * price + int(receipt.get("l1Fee") or "0x0", 16)


def _classify(domain: Domain, rows: list[Pending]) -> tuple[list[_Entry], list[_Entry], dict[str, str]]:
    """Split pending rows into EOA ones (for registerBatch), contract wallets' (``register``) and those whose
    deadline is too close to be mined in time. The kind was decided at acceptance; a row without one
    (accepted before kinds were stored) is recovered here."""
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
        if row.signature_kind is not None:
            ecdsa = row.signature_kind == SignatureKind.EOA
        else:
            try:
                ecdsa = len(sig) == 65 and recover(domain, reg, sig) == reg.signer
            except InvalidInput:
                ecdsa = False
        (batch if ecdsa else singles).append(entry)
    return batch, singles, failed


def _grow_tree(rows: list[Pending]) -> tuple[MerkleTree | None, dict[str, InclusionProof], dict[str, str]]:
    """The Merkle tree of pending Merkle submissions, each submission's inclusion proof, and those whose
    deadline is too close (the registry verifies a leaf only if its root was anchored by the signature's
    deadline). Submissions of the same leaf share it: one leaf, the same proof for each. No tree: none left."""
    failed: dict[str, str] = {}
    by_leaf: dict[bytes, list[str]] = {}
    horizon = int(time.time()) + 15  # the deadline must still hold when the root's block is mined
    for row in rows:
        reg = registration_of(row)
        if reg.deadline < horizon:
            failed[row.id] = f"the signature's deadline ({reg.deadline}) has passed"
            continue
        by_leaf.setdefault(leaf(reg, parse_hex(row.signature)), []).append(row.id)
    if not by_leaf:
        return None, {}, failed
    tree = MerkleTree.of(list(by_leaf))
    proofs = {sid: tree.proof_for(value) for value, ids in by_leaf.items() for sid in ids}
    return tree, proofs, failed
