"""The service: the operations the routes, the anchoring worker and the indexer call.

Each operation checks the changes of state it makes against api/lifecycle.py and writes them through
api/store.py, in one transaction:

- :meth:`Lifecycle.accept`: a signed registration into the outbox (pending), its signature kind decided once;
- :meth:`Lifecycle.record_sent`, :meth:`Lifecycle.requeue`, :meth:`Lifecycle.fail`: anchoring a batch
  (submitted), and giving back or failing what did not land;
- :meth:`Lifecycle.apply_events`, :meth:`Lifecycle.roll_back`: the chain's events (anchored, confirmed,
  revoked) and a reorg's rollback;
- :meth:`Lifecycle.receipt`, :meth:`Lifecycle.signers`, :meth:`Lifecycle.submission`: what a signer sees.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from docchain.api import metrics
from docchain.api.db import Database, new_id, now
from docchain.api.lifecycle import (
    NEW,
    ON_CHAIN,
    ActionKind,
    ActionOperation,
    ActionState,
    Anchoring,
    CopyState,
    Operation,
    RevocationState,
    SignatureKind,
    State,
    TxState,
    action_transition,
    allowed,
    seen,
    transition,
)
from docchain.api.notifications import store as notifications
from docchain.api.notifications.model import IndexedEvent
from docchain.api.problems import Problem, conflict, not_found, too_large
from docchain.api.schemas import MAX_REASON_BYTES, EnvelopeStatus, SignerState
from docchain.api.storage.base import NotStored, StorageCorrupted
from docchain.api.storage.replicas import Miss
from docchain.api.store import (
    CURSOR,
    HEAD,
    Accepted,
    CopyRecord,
    EnvelopeAction,
    EnvelopeStore,
    EventRecord,
    InTree,
    NewAction,
    RootRecord,
    Store,
    SubmissionRecord,
    adopt_tree_in,
    anchor_in,
    anchored_at_or_below_in,
    delete_meta_in,
    drop_evidence_in,
    in_trees_in,
    insert_events_in,
    insert_roots_in,
    links_in,
    mined_in,
    pair_in,
    persist_blocks_in,
    record_tx_in,
    requeue_in,
    restore_in,
    revoke_requests_in,
    roll_back_evidence_in,
    roll_back_in,
    root_in,
    root_links_in,
    set_meta_in,
    set_state_in,
    states_of_in,
)
from docchain.chain.envelopes import (
    REMEDY,
    CountPlan,
    Decline,
    EnvelopeRequest,
    EnvelopeState,
    LogPosition,
    Void,
    check_request,
    envelope_id,
    plan_counts,
    reason_hash,
)
from docchain.chain.envelopes import SignerState as ChainSigner
from docchain.chain.envelopes import Status as EnvStatus
from docchain.chain.envelopes_contract import EnvelopesReader
from docchain.chain.errors import ContractRevert, InvalidInput, RegistrationNotFound
from docchain.chain.merkle import InclusionProof
from docchain.chain.receipt import Receipt, build_receipt, parse_receipt
from docchain.chain.registry import RegistryEvent, RegistryReader, RootAnchored, SignedRegistration
from docchain.chain.trust import Pin
from docchain.chain.typed_data import Domain, Registration, Revocation, canonical_metadata, metadata_hash, recover
from docchain.chain.values import parse_hash32, parse_hex, to_hex
from docchain.chain.verify import (
    Question,
    SupersedeClaim,
    Superseder,
    Verdict,
    receipt_refused,
    superseders,
    verify,
)

if TYPE_CHECKING:
    from docchain.api.chainctx import Bound, ChainContext
    from docchain.api.limits import Admission
    from docchain.api.outbox import OutboxWriter
    from docchain.api.pipeline import Pipeline
    from docchain.api.settings import Settings
    from docchain.api.storage.replicas import Fetched, Intake, Replicas

log = logging.getLogger("docchain.api.submissions")

MAX_ATTEMPTS = 5  # sends of one submission before the relayer gives up on it


def registration_of(row: Any) -> Registration:
    """The signed registration a stored submission holds (a :class:`SubmissionRecord` or a pending row)."""
    return Registration(
        doc_hash=parse_hex(row.doc_hash),
        signer=row.signer,
        metadata_hash=parse_hex(row.metadata_hash),
        supersedes=parse_hex(row.supersedes),
        deadline=int(row.deadline),
    )


@dataclass(frozen=True, slots=True)
class Applied:
    """What one indexer step changed: the submissions to notify, and how many it anchored."""

    changed: set[str] = field(default_factory=set)
    anchored: int = 0


@dataclass(frozen=True, slots=True)
class SignerView:
    """One signer of a document as a signer sees it: its submission here and/or its record on chain."""

    signer: str
    status: State
    confirmations: int
    submission_id: str | None = None
    metadata_hash: str | None = None
    supersedes: str | None = None
    tx_hash: str | None = None
    block_number: int | None = None
    block_hash: str | None = None
    timestamp: int | None = None
    revoked_at: int | None = None
    error: str | None = None
    metadata: dict[str, Any] | None = None
    anchoring: Anchoring | None = None  # None: recorded on chain without this API (directly)
    merkle_root: str | None = None
    private: bool = False  # submitted as a salted commitment: the docHash is not the document's SHA-256


class Lifecycle:
    """The operations on submissions; ``depth``: the confirmations after which an anchored record is final."""

    def __init__(self, db: Database, depth: int) -> None:
        self.db = db
        self.store = Store(db)
        self.depth = depth

    # ------------------------------------------------------------ accept

    @staticmethod
    def new_submission(
        *,
        doc_hash: str,
        signer: str,
        metadata_hash: str,
        supersedes: str,
        deadline: int,
        signature: str,
        kind: SignatureKind,
        metadata_json: str | None,
        stored: bool,
        file_name: str | None,
        file_size: int | None,
        client_id: str | None,
        anchoring: Anchoring = Anchoring.DIRECT,
        private: bool = False,
        envelope_id: str | None = None,
    ) -> dict[str, Any]:
        """The outbox row of a newly accepted submission (the outbox writes many in one transaction)."""
        created_at = now()
        return {
            "id": new_id(),
            "doc_hash": doc_hash,
            "signer": signer,
            "metadata_hash": metadata_hash,
            "supersedes": supersedes,
            "deadline": str(deadline),
            "signature": signature,
            "signature_kind": kind.value,
            "metadata_json": metadata_json,
            "stored": stored,
            "file_name": file_name,
            "file_size": file_size,
            "state": transition(Operation.ACCEPT, NEW, State.PENDING).value,
            "attempts": 0,
            "created_at": created_at,
            "updated_at": created_at,
            "client_id": client_id,
            "anchoring": anchoring.value,
            "private": private,
            "envelope_id": envelope_id,
        }

    async def mark_stored(self, accepted: Accepted) -> Accepted:
        """A duplicate submission brought the file: the existing submission now has it stored."""
        if accepted.stored:
            return accepted
        await self.store.mark_stored(accepted.id)
        return Accepted(accepted.id, accepted.doc_hash, accepted.signer, accepted.state, True)

    # ------------------------------------------------------------ send (the anchoring worker)

    async def record_sent(
        self,
        tx_hash: str,
        kind: str,
        raw: bytes,
        nonce: int,
        ids: Sequence[str],
        tree: Mapping[str, InclusionProof] | None = None,
    ) -> int:
        """A signed transaction carrying pending submissions (or, ``kind`` revoke, one revocation), recorded
        before its broadcast. ``tree``: for an ``anchorRoot`` transaction, each submission's inclusion proof,
        committed with it. Returns its id."""
        if kind != "revoke":
            transition(Operation.SEND, State.PENDING, State.SUBMITTED)
        places = None if tree is None else _places(tree)
        return await self.db.transaction(lambda s: record_tx_in(s, tx_hash, kind, raw, nonce, ids, places))

    async def adopt_tree(self, root: bytes, tree: Mapping[str, InclusionProof]) -> None:
        """Pending submissions whose tree's ``root`` another sender anchored already (RootAlreadyAnchored):
        their leaves are under it on chain, so they join it as it is, and the indexer anchors them from the
        root's event (an anchorRoot of the same root would only revert)."""
        transition(Operation.SEND, State.PENDING, State.SUBMITTED)
        places = _places(tree)
        await self.db.transaction(lambda s: adopt_tree_in(s, to_hex(root), places))

    async def requeue(self, tx_id: int, tx_state: TxState, error: str) -> list[str]:
        """A transaction that did not land: its submissions back to the outbox, or failed after MAX_ATTEMPTS."""
        transition(Operation.SEND, State.SUBMITTED, State.PENDING)
        transition(Operation.SEND, State.SUBMITTED, State.FAILED)
        return await self.db.transaction(lambda s: requeue_in(s, tx_id, tx_state, error, MAX_ATTEMPTS))

    async def fail(self, errors: Mapping[str, str]) -> None:
        """Pending submissions the relayer cannot anchor (deadline passed, the registry refuses them)."""
        transition(Operation.SEND, State.PENDING, State.FAILED)
        await self.store.fail(errors)

    async def mined(self, tx_id: int, receipt: Mapping[str, int], ok: bool) -> bool:
        """Record a mined transaction (its anchors come from the indexer). Returns whether the indexer has
        submissions of it to link to records that were on chain before it."""
        return await self.db.transaction(
            lambda s: mined_in(
                s, tx_id, receipt["blockNumber"], receipt["gasUsed"], receipt["fee"], receipt["events"], ok
            )
        )

    # ------------------------------------------------------------ apply chain events (the indexer)

    async def apply_events(
        self,
        events: Sequence[Mapping[str, Any]],
        blocks: Sequence[tuple[int, str, int]],
        tip: tuple[int, str] | None,
        cursor: int | None,
        cursor_json: str | None,
        head: int,
        roots: Sequence[Mapping[str, Any]] = (),
        envelope_events: Sequence[IndexedEvent] = (),
    ) -> Applied:
        """One indexer step as one transaction: the step's block headers (``blocks``; ``tip`` its last block's
        number and hash) and new events (``events``: rows of the events table; ``roots``: of the roots
        table), then the states they imply: anchored, or confirmed at once when deep enough; revoked; and the
        confirmations the new ``head`` brings. ``cursor_json``: the indexer's new cursor."""
        confirmed_to = head - self.depth + 1  # blocks at or below have their confirmations

        def write(s: Session) -> Applied:
            changed: set[str] = set()
            anchored = 0
            if tip is not None:
                persist_blocks_in(s, blocks, tip[0], cursor)
                if roots:
                    insert_roots_in(s, roots)
                    changed, anchored = _apply_roots(s, roots, confirmed_to)
                if events:
                    insert_events_in(s, events)  # (cursor, tip] is new by construction
                    more, count = _apply(s, events, confirmed_to)
                    changed, anchored = changed | more, anchored + count
                if envelope_events:  # with their webhook deliveries (api/notifications/): the notifier's keys
                    changed |= notifications.index_in(s, envelope_events).keys
                assert cursor_json is not None
                set_meta_in(s, CURSOR, cursor_json)
            linked = links_in(s)
            if linked:
                _anchor(s, linked, confirmed_to)
                changed.update(r["b_id"] for r in linked)
            if adopted := root_links_in(s):
                more, count = _apply_roots(s, [_root_fields(r) for r in adopted], confirmed_to)
                changed.update(more)
                anchored += count
            set_meta_in(s, HEAD, str(head))
            confirmed = anchored_at_or_below_in(s, confirmed_to)
            set_state_in(s, confirmed, transition(Operation.APPLY_EVENTS, State.ANCHORED, State.CONFIRMED))
            return Applied(changed | set(confirmed), anchored + len(linked))

        return await self.db.transaction(write)

    async def roll_back(self, floor: int, cursor_json: str | None) -> set[str]:
        """A reorg removed the blocks above ``floor``: their events go, and each submission they concerned
        takes the state its remaining events give it; so does the evidence of a record in them or proven in one
        of them, in the same commit, so that no receipt is ever served a bundle of a block the chain no longer
        holds. ``cursor_json``: the indexer's cursor at ``floor`` (None: start again from the deployment
        block)."""

        def roll_back(s: Session) -> set[str]:
            changed: set[str] = set()
            for doc, signer in roll_back_in(s, floor):
                sub, events = pair_in(s, doc, signer)
                if sub is None:
                    continue
                root = None if sub.merkle_root is None else root_in(s, sub.merkle_root)
                state, record = _after_rollback(sub, events, root)
                if state != sub.state:
                    transition(Operation.APPLY_EVENTS, sub.state, state)
                restore_in(s, sub.id, state, record)
                changed.add(sub.id)
            roll_back_evidence_in(s, floor)
            changed |= notifications.roll_back_in(s, floor).keys  # told as removed changes
            if cursor_json is None:
                delete_meta_in(s, CURSOR)
            else:
                set_meta_in(s, CURSOR, cursor_json)
            return changed

        return await self.db.transaction(roll_back)

    # ------------------------------------------------------------ what a signer sees

    async def submission(self, submission_id: str) -> tuple[SubmissionRecord | None, int | None]:
        return await self.store.submission(submission_id)

    def seen(self, sub: SubmissionRecord, head: int | None) -> tuple[State, int]:
        view = seen(sub.state, sub.block_number, head, self.depth)
        return view.status, view.confirmations

    async def signers(self, doc: str) -> list[SignerView]:
        """Every signer of a document: its submission here, overridden by what the chain recorded."""
        subs, events, head = await self.store.signers_of(doc)
        by_signer: dict[str, dict[str, Any]] = {}
        for sub in subs:
            by_signer[sub.signer] = {
                "signer": sub.signer,
                "state": sub.state,
                "submission_id": sub.id,
                "metadata_hash": sub.metadata_hash,
                "supersedes": sub.supersedes,
                "tx_hash": sub.tx_hash,
                "block_number": sub.block_number,
                "block_hash": sub.block_hash,
                "timestamp": sub.timestamp,
                "error": sub.error,
                # the object as submitted (stored canonical, so it hashes to metadataHash)
                "metadata": json.loads(sub.metadata_json) if sub.metadata_json else None,
                "anchoring": sub.anchoring,
                "merkle_root": sub.merkle_root,
                "private": sub.private,
            }
        merkle = {sub.signer for sub in subs if sub.anchoring is Anchoring.MERKLE}
        for e in events:
            # registered on chain without this API: only the hash is known
            entry = by_signer.setdefault(e.signer, {"signer": e.signer, "state": State.ANCHORED})
            if e.kind == "Registered" and e.signer in merkle:
                continue  # a Merkle submission is anchored by its root, not by a direct record of the pair
            if e.kind == "Registered":
                entry.update(
                    metadata_hash=e.metadata_hash,
                    supersedes=e.supersedes,
                    tx_hash=e.tx_hash,
                    block_number=e.block_number,
                    block_hash=e.block_hash,
                    timestamp=e.timestamp,
                )
                if entry["state"] != State.REVOKED:
                    entry["state"] = State.ANCHORED if entry["state"] != State.CONFIRMED else State.CONFIRMED
            else:
                entry["revoked_at"] = e.timestamp
                entry["state"] = State.REVOKED
        views = []
        for entry in by_signer.values():
            view = seen(entry.pop("state"), entry.get("block_number"), head, self.depth)
            views.append(SignerView(status=view.status, confirmations=view.confirmations, **entry))
        return views

    def record_status(self, revoked: bool, block: int, head: int | None) -> tuple[State, int]:
        """The status of an indexed record (a Registered event, revoked or not)."""
        view = seen(State.REVOKED if revoked else State.ANCHORED, block, head, self.depth)
        return view.status, view.confirmations


def _anchor(s: Session, rows: list[dict[str, Any]], confirmed_to: int) -> None:
    """Anchor submissions by their events; those at or below ``confirmed_to`` are confirmed at once (an
    indexer catching up would otherwise write each row twice in one transaction)."""
    stamp = now()
    for r in rows:
        r["b_state"] = State.CONFIRMED.value if r["b_number"] <= confirmed_to else State.ANCHORED.value
        r["b_updated"] = stamp
    anchor_in(s, rows)


_ANCHORABLE = allowed(Operation.APPLY_EVENTS, State.ANCHORED)


def _apply(s: Session, rows: Sequence[Mapping[str, Any]], confirmed_to: int) -> tuple[set[str], int]:
    """Advance the submissions (and revocations) the new events concern: one indexed read, then one
    executemany UPDATE per kind of change. Returns the submissions changed and how many were anchored."""
    by_key = {
        key: [sid, state, mode]
        for key, (sid, state, mode) in states_of_in(s, list({r["doc_hash"] for r in rows})).items()
    }
    changed: set[str] = set()
    anchored: list[dict[str, Any]] = []
    revoked: list[str] = []
    revoked_pairs: list[tuple[str, str]] = []
    for r in rows:
        sub = by_key.get((r["doc_hash"], r["signer"]))
        if r["kind"] == "Revoked":
            revoke_requests_in(s, r["doc_hash"], r["signer"])
            revoked_pairs.append((r["doc_hash"], r["signer"]))
            if sub is not None:
                sub[1] = State.REVOKED
                revoked.append(sub[0])
                changed.add(sub[0])
            continue
        # a Merkle submission is anchored by its root's event alone: a record of its pair registered directly
        # (by another relayer, say) is not the leaf its receipt proves
        if sub is None or sub[1] not in _ANCHORABLE or sub[2] is Anchoring.MERKLE:
            continue
        sub[1] = State.ANCHORED
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
        _anchor(s, anchored, confirmed_to)
    # after the anchors: a record registered and revoked in one step ends revoked
    set_state_in(s, revoked, State.REVOKED)
    # the record's bundles said "not revoked": none is served until the indexer proves the record again
    # (api/store.py, "evidence bundles")
    drop_evidence_in(s, revoked_pairs)
    return changed, len(anchored)


def _apply_roots(s: Session, rows: Sequence[Mapping[str, Any]], confirmed_to: int) -> tuple[set[str], int]:
    """Anchor the submissions in the trees of newly indexed roots (``rows``: of the roots table), each with
    its root's transaction, block and time. Returns the submissions changed and how many."""
    by_root = {r["root"]: r for r in rows}
    anchored = [
        {
            "b_id": sid,
            "b_tx": by_root[root]["tx_hash"],
            "b_number": by_root[root]["block_number"],
            "b_hash": by_root[root]["block_hash"],
            "b_ts": by_root[root]["timestamp"],
        }
        for sid, root, state in in_trees_in(s, list(by_root))
        if state in _ANCHORABLE
    ]
    if anchored:
        _anchor(s, anchored, confirmed_to)
    return {r["b_id"] for r in anchored}, len(anchored)


def _places(tree: Mapping[str, InclusionProof]) -> dict[str, InTree]:
    return {sid: InTree(to_hex(p.root), json.dumps(p.to_json(), separators=(",", ":"))) for sid, p in tree.items()}


def _root_fields(record: RootRecord) -> dict[str, Any]:
    """An indexed root as :func:`_apply_roots` reads a row of the roots table."""
    return {
        "root": record.root,
        "tx_hash": record.tx_hash,
        "block_number": record.block_number,
        "block_hash": record.block_hash,
        "timestamp": record.timestamp,
    }


def _after_rollback(
    sub: SubmissionRecord, events: list[EventRecord], root: RootRecord | None
) -> tuple[State, EventRecord | RootRecord | None]:
    """The state of a submission from the events a rollback left, with the record that anchors it: a direct
    submission's Registered event, a Merkle one's anchored ``root`` (None: not anchored, or gone)."""
    if any(e.kind == "Revoked" for e in events):
        return State.REVOKED, None
    if sub.anchoring is Anchoring.MERKLE:
        registered: EventRecord | RootRecord | None = root
    else:
        registered = next((e for e in events if e.kind == "Registered"), None)
    if registered is not None:
        return State.ANCHORED, registered
    if sub.state in (State.PENDING, State.SUBMITTED, State.FAILED):
        return sub.state, None
    return (State.SUBMITTED if sub.tx_id is not None else State.PENDING), None


def root_row(e: RootAnchored, timestamp: int) -> dict[str, Any]:
    """An indexed ``RootAnchored`` event as a row of the roots table."""
    return {
        "root": to_hex(e.root),
        "leaf_count": e.leaf_count,
        "sender": e.sender,
        "block_number": e.block_number,
        "block_hash": to_hex(e.block_hash),
        "tx_hash": to_hex(e.tx_hash),
        "log_index": e.log_index,
        "timestamp": timestamp,
    }


def event_row(e: Any, timestamp: int) -> dict[str, Any]:
    """An indexed registry event as a row of the events table."""
    return {
        "kind": e.kind,
        "doc_hash": to_hex(e.doc_hash),
        "signer": e.signer,
        "block_number": e.block_number,
        "block_hash": to_hex(e.block_hash),
        "tx_hash": to_hex(e.tx_hash),
        "log_index": e.log_index,
        "metadata_hash": None if e.metadata_hash is None else to_hex(e.metadata_hash),
        "supersedes": None if e.supersedes is None else to_hex(e.supersedes),
        "timestamp": timestamp,
    }


# ------------------------------------------------------------------ the API's operations


@dataclass(frozen=True, slots=True)
class Signed:
    """A signed registration as the submit route parsed it."""

    registration: Registration
    signature: bytes
    metadata: dict[str, Any] | None
    file_name: str | None
    file_size: int | None
    public: bool = False  # an IPFS copy of the uploaded file holds its plain bytes, not sealed ones
    anchoring: Anchoring | None = None  # None: the deployment's (DOCCHAIN_ANCHORING)
    # the docHash is a salted commitment (docs/protocol.md, "Private mode"): the service never sees the file
    private: bool = False
    envelope_id: str | None = None  # signs this envelope: anchored through its contract's sign (EnvelopeService)


@dataclass(frozen=True, slots=True)
class Acceptance:
    """What accepting a submission produced: its stored row, whether it is new, and where its upload went
    (with the key of a sealed IPFS copy, for the submitter only)."""

    submission: Accepted
    created: bool
    storage: Intake | None = None


class Documents:
    """What the routes call: accept a signed document, what a signer sees of it, its receipt, verify it,
    revoke it. The app builds one (api/app.py) and the routes receive it by dependency (api/deps.py)."""

    def __init__(
        self,
        settings: Settings,
        lifecycle: Lifecycle,
        chain: ChainContext,
        replicas: Replicas,
        outbox: OutboxWriter,
        pipeline: Pipeline,
    ) -> None:
        self.settings = settings
        self.lifecycle = lifecycle
        self.store = lifecycle.store
        self.chain = chain
        self.replicas = replicas
        self.outbox = outbox
        self.pipeline = pipeline
        self.envelopes = EnvelopeStore(lifecycle.db)

    # ------------------------------------------------------------ accept

    async def accept(self, signed: Signed, upload: BinaryIO | None, admission: Admission) -> Acceptance:
        """Accept a signed registration into the outbox, and its file into the first storage backend (the
        copies to the others are queued in the same transaction). Returns the submission of its (docHash,
        signer) and whether it is new (False: a duplicate, answered with the existing one).

        Nothing is recorded when the first backend cannot take the file (:class:`BackendUnavailable`: 503)."""
        if signed.private and upload is not None:
            raise InvalidInput(
                "a private submission's docHash is a salted commitment that keeps the document unknown: send it as "
                "JSON without the file (a stored file would give the service the document it hides)"
            )
        chain = await self.chain.bound()
        reg, signature, settings = signed.registration, signed.signature, self.settings
        if signed.metadata is not None:
            size = len(canonical_metadata(signed.metadata).encode())
            if size > settings.max_metadata_bytes:
                raise too_large(
                    f"metadata is {size} bytes of canonical JSON; the limit is {settings.max_metadata_bytes} "
                    "(DOCCHAIN_MAX_METADATA_BYTES)",
                    settings.max_metadata_bytes,
                )
            if metadata_hash(signed.metadata) != reg.metadata_hash:
                raise InvalidInput("metadataHash is not the keccak256 of the canonical metadata JSON")
        if reg.deadline <= int(time.time()):
            raise InvalidInput(f"the signature's deadline ({reg.deadline}) has already passed")
        kind = await self._signature_kind(chain, reg, signature)
        charge = await admission.charge_submission(to_hex(reg.doc_hash), reg.signer)  # a duplicate spends nothing
        file_size = signed.file_size
        intake: Intake | None = None
        if upload is not None:
            sealed_cid = next(
                (
                    c.locator
                    for c in await self.store.copies_of(to_hex(reg.doc_hash))
                    if c.sealed and c.state is not CopyState.FAILED
                ),
                None,
            )
            try:
                intake = await asyncio.to_thread(
                    self.replicas.store, reg.doc_hash, upload, public=signed.public, sealed_cid=sealed_cid
                )
            except BaseException:
                await charge.refund()  # nothing was accepted
                raise
            file_size = intake.size
        doc = to_hex(reg.doc_hash)
        row = Lifecycle.new_submission(
            doc_hash=doc,
            signer=reg.signer,
            metadata_hash=to_hex(reg.metadata_hash),
            supersedes=to_hex(reg.supersedes),
            deadline=reg.deadline,
            signature=to_hex(signature),
            kind=kind,
            metadata_json=None if signed.metadata is None else canonical_metadata(signed.metadata),
            stored=upload is not None,
            file_name=signed.file_name,
            file_size=file_size,
            client_id=admission.client,
            # a duplicate keeps the first submission's mode: the row of its (docHash, signer) is not written again
            anchoring=signed.anchoring or settings.anchoring,
            private=signed.private,
            envelope_id=signed.envelope_id,
        )
        try:
            accepted, created = await self.outbox.add(row, () if intake is None else intake.copies)
        except BaseException:
            if intake is not None:  # not accepted: no copy will be made from its staged ciphertext
                self.replicas.discard_staged_of(intake)
            raise
        if created:
            metrics.SUBMISSIONS.inc()
            log.info(
                "submission accepted",
                extra={"submission": accepted.id, "doc": doc, "signer": reg.signer, "stored": upload is not None},
            )
            self.pipeline.submitted()
            return Acceptance(accepted, True, intake)
        await charge.refund()  # accepted meanwhile by another request: a duplicate after all
        if upload is not None:
            accepted = await self.lifecycle.mark_stored(accepted)
            self.pipeline.wake()  # its copies may be new: the copy worker need not wait for its safety poll
        return Acceptance(accepted, False, intake)

    async def _signature_kind(self, chain: Bound, reg: Registration, signature: bytes) -> SignatureKind:
        """ECDSA recovery first (~0.1 ms, no I/O); a contract wallet is asked on chain (ERC-1271)."""
        recovered = None
        if len(signature) == 65:
            try:
                recovered = recover(chain.domain, reg, signature)
            except InvalidInput:
                recovered = None
        if recovered == reg.signer:
            return SignatureKind.EOA
        if await chain.registry.is_valid_registration(reg, signature):
            return SignatureKind.ERC1271
        if recovered is not None:
            raise Problem(
                422,
                "signer-mismatch",
                "Signature does not match the signer",
                f"the signature recovers {recovered}, not the signer {reg.signer}",
                recovered=recovered,
            )
        raise Problem(
            422,
            "invalid-signature",
            "Invalid signature",
            f"the signature is not a valid EIP-712 signature by {reg.signer} for this registry",
        )

    # ------------------------------------------------------------ what a signer sees

    async def document(self, doc: str) -> tuple[list[CopyRecord], list[SignerView]]:
        """The document's storage copies (every backend's, whatever their state), and every signer of it
        (none: unknown)."""
        signers = await self.lifecycle.signers(doc)
        if not signers:
            raise not_found(f"no document {doc} is known (submitted or on chain)")
        copies = await self.store.copies_of(doc)
        if not copies:
            copies = await asyncio.to_thread(self.replicas.legacy_copies, parse_hash32(doc))
        return copies, signers

    async def content(self, doc: str, key: bytes | None) -> Fetched:
        """The document read back from the first backend holding an intact copy, into a spool file the caller
        serves and removes. Copies found gone or altered on the way are recorded as failed, with the reason."""
        misses: list[Miss] = []
        copies = await self.store.copies_of(doc)
        try:
            return await asyncio.to_thread(self.replicas.fetch, parse_hash32(doc), copies, key, misses)
        finally:
            for miss in misses:
                if miss.copy.id and isinstance(miss.error, NotStored | StorageCorrupted):
                    await self.store.copy_lost(miss.copy.id, str(miss.error))

    async def receipt(self, doc: str, who: str) -> Receipt:
        """The receipt of (docHash, signer), with its evidence bundle once the indexer has captured it."""
        receipt = await self._receipt(doc, who)
        root = None if receipt.merkle is None else to_hex(receipt.merkle.root)
        evidence = await self.store.evidence_of(doc, who, root)
        return receipt if evidence is None else replace(receipt, evidence=evidence)

    async def _receipt(self, doc: str, who: str) -> Receipt:
        """The receipt of (docHash, signer): the submission's signed registration, once anchored, unless the
        chain recorded another registration of the pair (the signer registered it otherwise first: the
        registry kept that one); otherwise the recorded one, its signature read back from the transaction."""
        chain = await self.chain.bound()
        sub = await self.store.submission_of(doc, who)
        if sub is not None and (merkle := merkle_receipt(chain.domain, sub)) is not None:
            return merkle
        event = await self.store.last_registered(doc, who)
        on_chain = sub is not None and sub.state in ON_CHAIN and sub.block_number is not None
        if sub is not None and on_chain and (event is None or _same_record(sub, event)):
            assert sub.block_number is not None
            return build_receipt(
                domain=chain.domain,
                registration=registration_of(sub),
                signature=bytes.fromhex(sub.signature[2:]),
                tx_hash=parse_hash32(sub.tx_hash or ""),
                block_number=sub.block_number,
                block_hash=parse_hash32(sub.block_hash or ""),
                timestamp=int(sub.timestamp or 0),
                file_name=sub.file_name,
                file_size=sub.file_size,
            )
        if event is not None:
            recorded = RegistryEvent(
                kind="Registered",
                doc_hash=parse_hash32(event.doc_hash),
                signer=event.signer,
                block_number=event.block_number,
                block_hash=parse_hash32(event.block_hash),
                tx_hash=parse_hash32(event.tx_hash),
                log_index=event.log_index,
                metadata_hash=parse_hex(event.metadata_hash or ""),
                supersedes=parse_hex(event.supersedes or ""),
            )
            try:
                # (through this service's envelopes contract, a contract wallet's signature reads back too)
                signed = await chain.registry.signed_registration_of(recorded, chain.envelopes)
            except RegistrationNotFound as exc:
                raise not_found(
                    f"{who}'s record of {doc} is on chain, but its signature cannot be read back for a receipt: {exc}"
                ) from None
            return build_receipt(
                domain=chain.domain,
                registration=signed.registration,
                signature=signed.signature,
                tx_hash=recorded.tx_hash,
                block_number=recorded.block_number,
                block_hash=recorded.block_hash,
                timestamp=event.timestamp,
                file_name=None,
                file_size=None,
            )
        if sub is not None:
            raise conflict(f"the submission is {sub.state.value}, not anchored yet: no receipt")
        raise not_found(f"this service holds no signed registration of {doc} by {who}, nor an indexed record of it")

    async def verify(
        self, doc_hash: bytes, signer: str | None, receipt_data: dict[str, Any] | str | None, with_signers: bool | None
    ) -> tuple[Verdict, list[SignerView] | None]:
        """The chain's verdict on a document (chain/verify.py, against this service's registry), and every
        signer on record when asked (default: when the question names neither a signer nor a receipt)."""
        chain = await self.chain.bound()
        doc = to_hex(doc_hash)
        verdict: Verdict
        receipt: Receipt | None = None
        try:
            receipt = None if receipt_data is None else parse_receipt(receipt_data)
        except InvalidInput as exc:
            verdict = receipt_refused(doc_hash, str(exc))
        else:
            pin = Pin(
                chain.domain.chain_id,
                chain.registry.address,
                "this service's configured registry",
                chain.deployment_block,
            )
            reader = await chain.heads.reader()
            depth = self.settings.confirmations
            # The chain holds only a Merkle submission's root, not its leaf: asked by hash, the service verifies
            # with the receipt it builds from the proof it keeps (the same receipt its owner holds), against
            # the chain all the same.
            held: list[Receipt] = []
            if receipt is None:
                for sub in await self.store.merkle_on_chain(doc):
                    if signer is None or sub.signer == signer:
                        held.extend(r for r in [merkle_receipt(chain.domain, sub)] if r is not None)
            verdicts = [await verify(reader, Question(doc_hash, r.signer, r, depth), pin=pin) for r in held]
            question = Question(doc_hash, signer, receipt, depth)
            if signer is not None or receipt is not None:
                if not verdicts:
                    verdicts.append(await verify(reader, question, pin=pin))
            else:
                # the index only says which signers to try when the question names none
                candidates = await self.store.registered_signers(doc)
                if candidates or not verdicts:
                    verdicts.append(await verify(reader, question, pin=pin, candidates=candidates))
            verdict = next((v for v in verdicts if v.ok), verdicts[0])
        verdict = replace(verdict, superseded=await self.superseded_by(doc))
        if with_signers is None:
            with_signers = signer is None and receipt is None
        return verdict, (await self.lifecycle.signers(doc) if with_signers else None)

    # ------------------------------------------------------------ superseding documents

    async def superseded_by(self, doc: str) -> tuple[Superseder, ...]:
        """The documents that supersede ``doc``, from the index of this service's registry by chain/verify.py's
        rule: named as replaced in a registration, by a signer of ``doc`` (a direct record, or a Merkle leaf this
        service anchored), not revoked. The chain holds no Merkle leaf's ``supersedes``: only direct records
        can supersede."""
        signers = await self.store.registered_signers(doc)
        signers += [sub.signer for sub in await self.store.merkle_on_chain(doc)]
        signers = list(dict.fromkeys(signers))
        if not signers:
            return ()
        old = parse_hash32(doc)
        claims = [
            SupersedeClaim(parse_hash32(x.doc_hash), x.signer, old, x.revoked)
            for x in await self.store.superseding(doc, signers)
        ]
        return superseders(old, signers, claims)

    # ------------------------------------------------------------ revocation

    async def revoke(self, rev: Revocation, signature: bytes, admission: Admission) -> tuple[RevocationState, bool]:
        """Queue a signed revocation for the relayer. Returns its state and whether it is new."""
        chain = await self.chain.bound()
        doc = to_hex(rev.doc_hash)
        if rev.deadline <= int(time.time()):
            raise InvalidInput(f"the revocation's deadline ({rev.deadline}) has already passed")
        recovered = None
        if len(signature) == 65:
            try:
                recovered = recover(chain.domain, rev, signature)
            except InvalidInput:
                recovered = None
        # a signature that does not recover the signer: an EOA's the chain would reject; a contract wallet's is
        # left to the wallet to decide on chain
        if recovered != rev.signer and not await chain.registry.has_code(rev.signer):
            raise Problem(
                422,
                "invalid-signature",
                "Invalid signature",
                f"the revocation is not signed by {rev.signer}"
                + (f" (the signature recovers {recovered})" if recovered else ""),
            )
        existing = await self.store.revocation(doc, rev.signer, rev.nonce)
        if existing is not None and existing.state != RevocationState.FAILED:
            return existing.state, False
        sub = await self.store.submission_of(doc, rev.signer)
        anchor = None if sub is None else merkle_anchor(sub)
        if anchor is not None:
            # the registry holds no record of a Merkle leaf until it is revoked: its anchoring is the root's,
            # which the registry checks with the leaf's proof
            try:
                record = await chain.registry.verify_merkle_registration(*anchor)
            except ContractRevert as exc:
                raise not_found(f"{rev.signer}'s Merkle-anchored record of {doc} is not on chain: {exc}") from None
        else:
            record = await chain.registry.record(rev.doc_hash, rev.signer)
        if not record.exists:
            raise not_found(f"{rev.signer} has no record of {doc} on chain")
        if record.revoked:
            raise conflict(f"{rev.signer}'s record of {doc} is already revoked")
        nonce = await chain.registry.nonce(rev.signer)
        if nonce != rev.nonce:
            raise InvalidInput(
                f"nonce {rev.nonce} is not {rev.signer}'s current nonce ({nonce}); GET /v1/nonces/{rev.signer}"
            )
        charge = await admission.charge(rev.signer)  # a new write for the relayer to pay
        if existing is not None:
            # The relayer gave up on this nonce (the chain refused it) and the nonce is still current: queue the
            # new signature in its place, or the signer could never revoke through this API (one row per nonce).
            await self.store.requeue_revocation(existing.id, rev.deadline, to_hex(signature), admission.client)
            log.info("revocation accepted again", extra={"doc": doc, "signer": rev.signer, "failed": existing.error})
        else:
            try:
                await self.store.add_revocation(
                    doc, rev.signer, rev.nonce, rev.deadline, to_hex(signature), admission.client
                )
            except IntegrityError:  # the same request, accepted meanwhile
                await charge.refund()
                return RevocationState.PENDING, False
            log.info("revocation accepted", extra={"doc": doc, "signer": rev.signer})
        self.pipeline.wake()
        return RevocationState.PENDING, True


def merkle_anchor(sub: SubmissionRecord) -> tuple[SignedRegistration, InclusionProof] | None:
    """A Merkle submission's signed registration and inclusion proof, once it is in a tree (None: a direct
    submission, or one not in a tree)."""
    if sub.anchoring is not Anchoring.MERKLE or sub.merkle_proof is None:
        return None
    signed = SignedRegistration(registration_of(sub), parse_hex(sub.signature))
    return signed, InclusionProof.from_json(json.loads(sub.merkle_proof))


def merkle_receipt(domain: Domain, sub: SubmissionRecord) -> Receipt | None:
    """The receipt (version 2) of a Merkle submission whose root is on chain: the ``anchorRoot`` transaction,
    its block and time, and the leaf's inclusion proof. None for any other submission."""
    anchor = merkle_anchor(sub)
    if anchor is None or sub.state not in ON_CHAIN or sub.block_number is None:
        return None
    signed, proof = anchor
    return build_receipt(
        domain=domain,
        registration=signed.registration,
        signature=signed.signature,
        tx_hash=parse_hash32(sub.tx_hash or ""),
        block_number=sub.block_number,
        block_hash=parse_hash32(sub.block_hash or ""),
        timestamp=int(sub.timestamp or 0),
        file_name=sub.file_name,
        file_size=sub.file_size,
        merkle=proof,
    )


def _same_record(sub: SubmissionRecord, event: EventRecord) -> bool:
    """Whether the indexed record is the submission's registration (its fields as the event carries them)."""
    return (event.metadata_hash, event.supersedes) == (sub.metadata_hash, sub.supersedes)


# ------------------------------------------------------------------ envelopes (api/routes/envelopes.py)

# The status of a refusal by each rule of the envelope (contracts/DocumentEnvelopes.sol's custom errors): a
# request that names the wrong thing is 422, one the envelope's state refuses now is 409.
_RULE_STATUS = {
    "UnknownEnvelope": 404,
    "NotASigner": 422,
    "WrongDocument": 422,
    "InvalidEnvelopeSignature": 422,
    "ExpiredSignature": 422,
}


def envelope_refused(rule: str, detail: str, **extra: Any) -> Problem:
    """A request an envelope's rule refuses, before any transaction: the rule's name (the contract's custom
    error) is the problem's type and title, and its ``rule`` member."""
    return Problem(
        _RULE_STATUS.get(rule, 409),
        f"envelope/{rule}",
        f"Refused by the envelope rule {rule}",
        detail,
        rule=rule,
        **extra,
    )


@dataclass(frozen=True, slots=True)
class KnownEnvelope:
    """An envelope as this service knows it: its request (from the chain, or from the create action this
    service holds while it is not mined), the chain's view once it is there, and the actions accepted here."""

    id: str
    doc_hash: str
    requester: str
    signers: tuple[str, ...]
    ordered: bool
    deadline: int
    chain: EnvelopeState | None  # None: not on chain (yet)
    actions: tuple[EnvelopeAction, ...]
    signs: tuple[SubmissionRecord, ...]  # the submissions that sign it

    @property
    def create(self) -> EnvelopeAction | None:
        return next((a for a in self.actions if a.kind is ActionKind.CREATE), None)

    def accepted(self, kind: ActionKind, actor: str) -> bool:
        """Whether an action of ``kind`` by ``actor`` was accepted here and not refused."""
        return any(a.actor == actor for a in self._live(kind))

    def _live(self, kind: ActionKind) -> list[EnvelopeAction]:
        return [a for a in self.actions if a.kind is kind and a.state is not ActionState.FAILED]

    def coming(self) -> frozenset[str]:
        """The signers whose signature counts on chain, or will once what was accepted here is sent."""
        counted = {s.signer for s in self.chain.signers if s.signed} if self.chain is not None else set()
        counted |= {s.signer for s in self.signs if s.state is not State.FAILED}
        counted |= {a.actor for a in self._live(ActionKind.COUNT)}
        return frozenset(counted)

    def next_signer(self) -> str | None:
        """Whose turn it is in an ordered envelope, counting what was accepted here (None: all have signed)."""
        coming = self.coming()
        return next((s for s in self.signers if s not in coming), None)

    def is_open(self, now: int) -> bool:
        return self.refusal(now) is None

    def refusal(self, now: int) -> Problem | None:
        """Why nothing more can be done to the envelope (declined, voided, completed, expired), if so."""
        status = EnvStatus.NONE if self.chain is None else self.chain.status
        declined = self._live(ActionKind.DECLINE)
        if status is EnvStatus.DECLINED or declined:
            by = self.chain.declined_by if self.chain is not None and self.chain.declined_by else declined[0].actor
            return envelope_refused("DeclinedEnvelope", f"envelope {self.id} was declined by {by}", declinedBy=by)
        if status is EnvStatus.VOIDED or self._live(ActionKind.VOID):
            return envelope_refused("VoidedEnvelope", f"envelope {self.id} was voided by its requester")
        if status is EnvStatus.COMPLETED or set(self.signers) <= self.coming():
            return envelope_refused("CompletedEnvelope", f"envelope {self.id} is complete already")
        if status is EnvStatus.EXPIRED or (self.deadline and self.deadline < now):
            return envelope_refused(
                "ExpiredEnvelope", f"envelope {self.id}'s deadline {self.deadline} has passed", deadline=self.deadline
            )
        return None

    def check_turn(self, signer: str, now: int) -> None:
        """Refuse, with the contract's rule, a signature by ``signer`` the envelope would not count now."""
        if signer not in self.signers:
            raise envelope_refused("NotASigner", f"{signer} is not one of envelope {self.id}'s signers")
        if signer in self.coming():
            raise envelope_refused("AlreadySigned", f"{signer}'s signature already counts toward envelope {self.id}")
        refusal = self.refusal(now)
        if refusal is not None:
            raise refusal
        first = self.next_signer()
        if self.ordered and first != signer:
            raise envelope_refused(
                "OutOfOrder", f"envelope {self.id} is ordered: {first} signs before {signer}", next=first
            )


async def known_envelope(store: EnvelopeStore, reader: EnvelopesReader, eid: str) -> KnownEnvelope:
    """Envelope ``eid`` from the chain and this service's outbox; 404 when neither knows it."""
    actions = tuple(await store.actions(eid))
    signs = tuple(await store.signs_of(eid))
    state = await reader.state(parse_hash32(eid))
    if state.status is not EnvStatus.NONE:
        return KnownEnvelope(
            eid,
            to_hex(state.doc_hash),
            state.requester,
            tuple(s.signer for s in state.signers),
            state.ordered,
            state.deadline,
            state,
            actions,
            signs,
        )
    create = next((a for a in actions if a.kind is ActionKind.CREATE), None)
    if create is None:
        raise not_found(f"no envelope {eid} is known (on chain or accepted here)")
    request = json.loads(create.message_json)
    return KnownEnvelope(
        eid,
        create.doc_hash,
        create.actor,
        tuple(request["signers"]),
        bool(request["ordered"]),
        int(request["deadline"]),
        None,
        actions,
        signs,
    )


async def count_plan(registry: RegistryReader, state: EnvelopeState) -> CountPlan:
    """chain/envelopes.py's :func:`plan_counts` with the records read from the registry (one view per signer not
    counted yet)."""
    if state.status not in (EnvStatus.OPEN, EnvStatus.EXPIRED):
        return plan_counts(state, {})
    pending = state.pending
    records = await asyncio.gather(*(registry.record(state.doc_hash, signer) for signer in pending))
    return plan_counts(state, dict(zip(pending, records, strict=True)))


def _as_on_chain(known: KnownEnvelope) -> EnvelopeState:
    """The chain's view of an envelope, or what it will be once its creation (accepted here) is mined: open, no
    one counted."""
    if known.chain is not None:
        return known.chain
    first = known.signers[0] if known.ordered else None
    return EnvelopeState(
        parse_hash32(known.doc_hash),
        known.requester,
        EnvStatus.OPEN,
        known.ordered,
        known.deadline,
        tuple(ChainSigner(s, False, 0, 0, 0) for s in known.signers),
        first,
        None,
    )


@dataclass(frozen=True, slots=True)
class EnvelopeStep:
    block_number: int
    tx_hash: str
    timestamp: int


@dataclass(frozen=True, slots=True)
class EnvelopeClosing:
    """A decline or a void on chain: where, by whom, and its reason: the hash on chain, and the text when this
    service was given it with the signed message (its keccak256 is that hash)."""

    step: EnvelopeStep
    by: str
    reason_hash: str
    reason: str | None


@dataclass(frozen=True, slots=True)
class EnvelopeSignerView:
    address: str
    state: SignerState
    signed_at: int | None
    block_number: int | None
    tx_hash: str | None
    submission: str | None


@dataclass(frozen=True, slots=True)
class EnvelopeActionView:
    kind: ActionKind | Literal["sign"]  # a signature is a submission, not an action
    state: ActionState
    signer: str | None
    error: str | None


@dataclass(frozen=True, slots=True)
class EnvelopeView:
    """What ``GET /v1/envelopes/{id}`` answers."""

    id: str
    doc_hash: str
    requester: str
    status: EnvelopeStatus
    ordered: bool
    deadline: int
    signers: tuple[EnvelopeSignerView, ...]
    next: str | None
    declined_by: str | None
    created: EnvelopeStep | None
    completed: EnvelopeStep | None
    actions: tuple[EnvelopeActionView, ...]
    chain_id: int
    envelopes: str
    declined: EnvelopeClosing | None = None
    voided: EnvelopeClosing | None = None


# the contract's statuses as the API names them (NONE is never shown: an unknown envelope is a 404)
_STATUS: dict[EnvStatus, EnvelopeStatus] = {
    EnvStatus.NONE: "pending",
    EnvStatus.OPEN: "open",
    EnvStatus.COMPLETED: "completed",
    EnvStatus.DECLINED: "declined",
    EnvStatus.VOIDED: "voided",
    EnvStatus.EXPIRED: "expired",
}


def _seen_on_chain(chain: EnvelopeState | None, kind: ActionKind, actor: str) -> bool:
    """Whether the chain's view shows an action done (its transaction mined, though the worker may not have read
    its receipt yet): the envelope created, the signer counted, the decline or the void in effect."""
    if chain is None:
        return False
    if kind is ActionKind.CREATE:
        return True
    if kind is ActionKind.COUNT:
        return any(s.signer == actor and s.signed for s in chain.signers)
    if kind is ActionKind.DECLINE:
        return chain.declined_by == actor
    return chain.status is EnvStatus.VOIDED


def _sign_state(state: State) -> ActionState:
    if state is State.FAILED:
        return ActionState.FAILED
    if state in ON_CHAIN:
        return ActionState.DONE
    return ActionState.SUBMITTED if state is State.SUBMITTED else ActionState.PENDING


class EnvelopeService:
    """What the envelope routes call: accept a create, sign, decline or void into the outbox after the checks
    the contract would make, and show an envelope. The anchoring worker sends what is accepted
    (api/worker.py, ``_send_envelopes``)."""

    def __init__(self, documents: Documents) -> None:
        self.documents = documents
        self.chain = documents.chain
        self.store = documents.envelopes

    async def reader(self) -> EnvelopesReader:
        bound = await self.chain.bound()
        if bound.envelopes is None:
            raise Problem(
                503,
                "envelopes-unavailable",
                "No envelopes contract",
                f"no envelopes contract is known beside registry {bound.registry.address} on chain "
                f"{bound.domain.chain_id}: run `docchain deploy` (or set DOCCHAIN_ENVELOPES_ADDRESS)",
            )
        return EnvelopesReader(self.chain.rpc, bound.envelopes, bound.domain.chain_id)

    async def _accept(self, new: NewAction, admission: Admission, charged: str) -> bool:
        existing = await self.store.action(new.envelope_id, new.kind, new.actor)
        if existing is not None and existing.state is not ActionState.FAILED:
            return False  # the same request again: nothing to spend
        charge = await admission.charge(charged)
        action, created = await self.store.add(
            new, action_transition(ActionOperation.ACCEPT, None, ActionState.PENDING)
        )
        if not created:
            await charge.refund()  # the same request again
            return False
        log.info("envelope action accepted", extra={"envelope": new.envelope_id, "kind": new.kind.value})
        self.documents.pipeline.wake()
        return True

    async def create(self, request: EnvelopeRequest, signature: bytes, admission: Admission) -> tuple[str, bool]:
        """Accept a signed envelope request; returns the envelope's id and whether it is new."""
        reader = await self.reader()
        check_request(request, int(time.time()))
        eid = to_hex(envelope_id(reader.domain, request))
        await self._signed_by(reader, request, signature, request.requester, eid)
        state = await reader.state(parse_hash32(eid))
        if state.status is not EnvStatus.NONE:
            return eid, False  # on chain already (the same request, sent here or elsewhere)
        new = NewAction(
            ActionKind.CREATE,
            eid,
            to_hex(request.doc_hash),
            request.requester,
            json.dumps(request.to_json(), separators=(",", ":")),
            to_hex(signature),
            None,
            admission.client,
        )
        return eid, await self._accept(new, admission, request.requester)

    async def sign(self, eid: str, signed: Signed, admission: Admission) -> Acceptance:
        """Accept the Registration a signer signs the envelope with: a submission anchored through the envelopes
        contract's ``sign``, so it counts toward the envelope and is a registry record as any other."""
        if signed.anchoring is Anchoring.MERKLE:
            raise InvalidInput(
                "an envelope's signature is anchored directly, through the envelopes contract's sign: a Merkle "
                "leaf has no record of its own for the envelope to count (send it without anchoring: merkle)"
            )
        reader = await self.reader()
        known = await known_envelope(self.store, reader, eid)
        reg = signed.registration
        if to_hex(reg.doc_hash) != known.doc_hash:
            raise envelope_refused(
                "WrongDocument", f"envelope {eid} is of document {known.doc_hash}, not {to_hex(reg.doc_hash)}"
            )
        existing = await self.documents.store.submission_of(known.doc_hash, reg.signer)
        if existing is not None and existing.envelope_id in (None, eid) and existing.state is not State.FAILED:
            if existing.envelope_id is None:  # a plain registration of the pair: the worker counts it if it can
                await self._counts(known, existing)
            accepted = Accepted(existing.id, existing.doc_hash, existing.signer, existing.state, existing.stored)
            return Acceptance(accepted, False)
        known.check_turn(reg.signer, int(time.time()))
        await self._record_counts(known, reg.signer)
        return await self.documents.accept(
            replace(signed, envelope_id=eid, anchoring=Anchoring.DIRECT), None, admission
        )

    async def _record_counts(self, known: KnownEnvelope, signer: str) -> None:
        """Refuse, with the contract's rule, a signature whose signer has a registration of the document on chain
        already (sent straight to the node, or by another service) that the envelope will never count: the
        registry ignores the new one and the contract's ``sign`` judges that record (``_checkRecord``), so it
        would fail once sent."""
        registry = (await self.chain.bound()).registry
        record = await registry.record(parse_hash32(known.doc_hash), signer)
        if not record.exists:
            return
        self._refuse_never(known, signer, await count_plan(registry, _as_on_chain(known)))

    async def _counts(self, known: KnownEnvelope, plain: SubmissionRecord) -> None:
        """Refuse, with the contract's rule, a plain registration the envelope will not count: the signer asked to
        sign it, and the registry keeps only the one record of theirs."""
        signer = plain.signer
        if signer in known.coming():
            return  # counted, or its count is on its way
        if known.chain is None or plain.state not in ON_CHAIN:
            known.check_turn(signer, int(time.time()))  # as a signature now: it is anchored after what is on chain
            return
        if signer not in known.signers:
            raise envelope_refused("NotASigner", f"{signer} is not one of envelope {known.id}'s signers")
        self._refuse_never(known, signer, await count_plan((await self.chain.bound()).registry, known.chain))

    @staticmethod
    def _refuse_never(known: KnownEnvelope, signer: str, plan: CountPlan) -> None:
        rule = plan.never.get(signer)
        if rule is None:
            return
        first = known.next_signer()
        # ``next`` names who signs first; the signer may be next themself, their record made too early all the same
        extra = {} if first == signer else {"next": first}
        raise envelope_refused(
            rule, f"{plan.reasons[signer]}, so envelope {known.id} can never count it; {REMEDY}", **extra
        )

    async def decline(
        self, eid: str, decline: Decline, signature: bytes, reason: str | None, admission: Admission
    ) -> bool:
        """Accept a named signer's signed refusal; returns whether it is new."""
        reader = await self.reader()
        self._matches(eid, decline.envelope_id, decline.deadline, decline.reason_hash, reason)
        known = await known_envelope(self.store, reader, eid)
        if known.accepted(ActionKind.DECLINE, decline.signer):
            return False  # the same decline again
        if decline.signer not in known.signers:
            raise envelope_refused("NotASigner", f"{decline.signer} is not one of envelope {eid}'s signers")
        if decline.signer in known.coming():
            raise envelope_refused("AlreadySigned", f"{decline.signer} signed envelope {eid} already")
        refusal = known.refusal(int(time.time()))
        if refusal is not None:
            raise refusal
        await self._signed_by(reader, decline, signature, decline.signer, eid)
        message = json.dumps(decline.to_json(), separators=(",", ":"))
        new = NewAction(
            ActionKind.DECLINE,
            eid,
            known.doc_hash,
            decline.signer,
            message,
            to_hex(signature),
            reason,
            admission.client,
        )
        return await self._accept(new, admission, decline.signer)

    async def void(self, eid: str, void: Void, signature: bytes, reason: str | None, admission: Admission) -> bool:
        """Accept the requester's signed withdrawal of an envelope not complete; returns whether it is new."""
        reader = await self.reader()
        self._matches(eid, void.envelope_id, void.deadline, void.reason_hash, reason)
        known = await known_envelope(self.store, reader, eid)
        if known.accepted(ActionKind.VOID, known.requester):
            return False  # the same void again
        refusal = known.refusal(int(time.time()))
        if refusal is not None and refusal.extra["rule"] != "ExpiredEnvelope":  # an expired envelope may be voided
            raise refusal
        await self._signed_by(reader, void, signature, known.requester, eid)
        message = json.dumps(void.to_json(), separators=(",", ":"))
        new = NewAction(
            ActionKind.VOID, eid, known.doc_hash, known.requester, message, to_hex(signature), reason, admission.client
        )
        return await self._accept(new, admission, known.requester)

    @staticmethod
    def _matches(eid: str, named: bytes, deadline: int, reason_hash_: bytes, reason: str | None) -> None:
        if reason is not None:  # its size first, as any limit of the body: the same 413 whatever else is wrong
            try:
                size = len(reason.encode())
            except UnicodeEncodeError:  # a lone surrogate (JSON's "\ud800") has no UTF-8, so no keccak256
                raise InvalidInput("the reason is not Unicode text: it holds a lone surrogate") from None
            if size > MAX_REASON_BYTES:
                raise too_large(
                    f"the reason is {size} bytes of UTF-8; the limit is {MAX_REASON_BYTES} bytes", MAX_REASON_BYTES
                )
        if to_hex(named) != eid:
            raise InvalidInput(f"the signed message's envelopeId {to_hex(named)} is not the envelope {eid}")
        if deadline <= int(time.time()):
            raise envelope_refused("ExpiredSignature", f"the signed message's deadline ({deadline}) has passed")
        if reason is not None and reason_hash(reason) != reason_hash_:
            raise InvalidInput("reasonHash is not the keccak256 of the reason's UTF-8")

    async def _signed_by(
        self, reader: EnvelopesReader, message: EnvelopeRequest | Decline | Void, signature: bytes, who: str, eid: str
    ) -> None:
        """The signature must be ``who``'s under the envelopes' domain (this service's chain and contract): an
        EOA's recovers it; a contract wallet's is left to the contract (ERC-1271, checked when it is sent)."""
        recovered = None
        if len(signature) == 65:
            try:
                recovered = recover(reader.domain, message, signature)
            except InvalidInput:
                recovered = None
        if recovered != who and not await reader.chain.code(who):
            shown = f" (it recovers {recovered})" if recovered else ""
            raise envelope_refused(
                "InvalidEnvelopeSignature",
                f"the signature is not {who}'s signature of this {type(message).__name__} for envelope {eid} under "
                f"the envelopes' domain (GET /v1/envelopes/domain){shown}",
            )

    # ------------------------------------------------------------ what the envelope is

    async def view(self, eid: str) -> EnvelopeView:
        reader = await self.reader()
        known = await known_envelope(self.store, reader, eid)
        chain = known.chain
        create = known.create
        actions = [
            EnvelopeActionView(
                a.kind,
                ActionState.DONE if _seen_on_chain(chain, a.kind, a.actor) else a.state,
                None if a.kind is ActionKind.CREATE or a.kind is ActionKind.VOID else a.actor,
                a.error,
            )
            for a in known.actions
        ]
        actions += [
            EnvelopeActionView(
                "sign",
                ActionState.DONE if _seen_on_chain(chain, ActionKind.COUNT, s.signer) else _sign_state(s.state),
                s.signer,
                s.error,
            )
            for s in known.signs
        ]
        by_signer = {s.signer: s for s in known.signs}
        if chain is None:
            status: EnvelopeStatus = (
                "failed" if create is not None and create.state is ActionState.FAILED else "pending"
            )
            first = known.signers[0] if known.ordered else None
            signers = tuple(
                EnvelopeSignerView(a, "next" if a == first else "pending", None, None, None, None)
                for a in known.signers
            )
            return EnvelopeView(
                eid,
                known.doc_hash,
                known.requester,
                status,
                known.ordered,
                known.deadline,
                signers,
                first,
                None,
                None,
                None,
                tuple(actions),
                reader.domain.chain_id,
                reader.address,
            )
        start = (
            create.block_number
            if create is not None and create.block_number
            else (await self.chain.bound()).deployment_block
        )
        past = await reader.history(parse_hash32(eid), start)
        is_open = chain.status is EnvStatus.OPEN
        rows = []
        for s in chain.signers:
            counted = past.signed.get(s.signer)
            state: SignerState
            if s.signed:
                state = "signed"
            elif chain.declined_by == s.signer:
                state = "declined"
            elif is_open and chain.ordered and chain.next == s.signer:
                state = "next"
            else:
                state = "pending"
            sub = by_signer.get(s.signer)
            if sub is None and s.signed:
                sub = await self.documents.store.submission_of(known.doc_hash, s.signer)
            rows.append(
                EnvelopeSignerView(
                    s.signer,
                    state,
                    s.signed_at or None,
                    s.block_number or None,
                    None if counted is None else to_hex(counted.at.tx_hash),
                    None if sub is None else sub.id,
                )
            )
        return EnvelopeView(
            eid,
            known.doc_hash,
            known.requester,
            _STATUS[chain.status],
            chain.ordered,
            chain.deadline,
            tuple(rows),
            chain.next if is_open and chain.ordered else None,
            chain.declined_by,
            None if past.created is None else await self._step(reader, past.created.at),
            None if past.completed is None else await self._step(reader, past.completed.at),
            tuple(actions),
            reader.domain.chain_id,
            reader.address,
            None
            if past.declined is None
            else await self._closing(
                reader, known, ActionKind.DECLINE, past.declined.at, past.declined.signer, past.declined.reason_hash
            ),
            None
            if past.voided is None
            else await self._closing(
                reader, known, ActionKind.VOID, past.voided.at, known.requester, past.voided.reason_hash
            ),
        )

    @classmethod
    async def _closing(
        cls, reader: EnvelopesReader, known: KnownEnvelope, kind: ActionKind, at: LogPosition, by: str, hashed: bytes
    ) -> EnvelopeClosing:
        """A decline or void on chain, with its reason's text when an action accepted here carried the text whose
        hash went on chain (one sent straight to the node carries only the hash)."""
        reason = next(
            (
                a.reason
                for a in known.actions
                if a.kind is kind and a.actor == by and a.reason is not None and reason_hash(a.reason) == hashed
            ),
            None,
        )
        return EnvelopeClosing(await cls._step(reader, at), by, to_hex(hashed), reason)

    @staticmethod
    async def _step(reader: EnvelopesReader, at: LogPosition) -> EnvelopeStep:
        block = await reader.chain.block(at.block_number)
        return EnvelopeStep(at.block_number, to_hex(at.tx_hash), 0 if block is None else block.timestamp)
