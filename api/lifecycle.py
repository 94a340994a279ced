"""The submission lifecycle: its states, the legal transitions between them, and what a signer sees.

Pure: no I/O, no database, no clock. The store persists a :class:`State`; the service asks
:func:`transition` before it writes one; routes show :func:`seen`.

::

    pending --send--> submitted --apply_events--> anchored --apply_events--> confirmed
       ^                  |                           |
       +----- send -------+ (reverted / dropped)      |
       +---------------- apply_events (reorg) --------+         revoked: a Revoked event, from any state

Each state has one operation that moves a submission into it (:data:`WRITER`): ``accept`` creates it
pending; ``send`` (the anchoring worker) writes submitted, and gives a submission back to pending or fails
it when its transaction did not land; ``apply_events`` (the indexer) writes anchored, confirmed and
revoked, and rolls them back when a reorg removes their events.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    """A submission's stored state (the text the API speaks and the database holds)."""

    PENDING = "pending"  # accepted into the outbox
    SUBMITTED = "submitted"  # in a relayer transaction sent to the node
    ANCHORED = "anchored"  # its Registered event (Merkle: its root's RootAnchored event) is indexed
    CONFIRMED = "confirmed"  # that event is at least the configured depth below the head
    FAILED = "failed"  # the relayer gave up on it
    REVOKED = "revoked"  # a Revoked event of its (docHash, signer) is indexed


class Operation(StrEnum):
    """The service's operations that write a submission's state."""

    ACCEPT = "accept"
    SEND = "send"
    APPLY_EVENTS = "apply_events"


class RevocationState(StrEnum):
    PENDING = "pending"
    SUBMITTED = "submitted"
    REVOKED = "revoked"
    FAILED = "failed"


class TxState(StrEnum):
    """A relayer transaction's state: its hash and raw bytes are recorded (prepared) before it is broadcast."""

    PREPARED = "prepared"
    SENT = "sent"
    MINED = "mined"
    REVERTED = "reverted"
    DROPPED = "dropped"


class SignatureKind(StrEnum):
    """How a signature is checked, decided once at acceptance: an EOA's ECDSA signature goes into a
    ``registerBatch``; a contract wallet's (ERC-1271) is registered alone, the registry asking the wallet."""

    EOA = "eoa"
    ERC1271 = "erc1271"


class Anchoring(StrEnum):
    """How a submission goes on chain, chosen at acceptance (per submission, else the deployment's default):
    ``direct`` writes its own record (``registerBatch`` / ``register``); ``merkle`` puts its signed
    registration as one leaf in a tree whose root alone is written (``anchorRoot``), its receipt carrying the
    inclusion proof. Either way it walks the same states."""

    DIRECT = "direct"
    MERKLE = "merkle"


class CopyState(StrEnum):
    """A document's copy in one storage backend (api/storage/replicas.py): the first backend's is stored
    before the API answers 202; the others' are made by the copy worker from the outbox of copies."""

    PENDING = "pending"  # to be made (again after a failed attempt, once its backoff has passed)
    STORED = "stored"  # the backend holds it, hash-checked on the way in
    FAILED = "failed"  # given up on (the reason says why); a new submission of the document queues it again


class CopyOperation(StrEnum):
    """The operations that write a copy's state."""

    ACCEPT = "accept"  # the submission: its first backend's copy stored, the others' queued
    COPY = "copy"  # the copy worker: one attempt at one copy
    READ = "read"  # a read that found a stored copy gone or altered


# (operation, from, to): every change of a copy's state. Accepting a document that is queued or failed
# already queues its copies again, or records the first backend's copy as stored.
COPY_TRANSITIONS: frozenset[tuple[CopyOperation, CopyState | None, CopyState]] = frozenset(
    {
        (CopyOperation.ACCEPT, None, CopyState.STORED),
        (CopyOperation.ACCEPT, None, CopyState.PENDING),
        (CopyOperation.ACCEPT, CopyState.PENDING, CopyState.STORED),
        (CopyOperation.ACCEPT, CopyState.FAILED, CopyState.STORED),
        (CopyOperation.ACCEPT, CopyState.FAILED, CopyState.PENDING),
        (CopyOperation.COPY, CopyState.PENDING, CopyState.STORED),
        (CopyOperation.COPY, CopyState.PENDING, CopyState.PENDING),  # an attempt failed: again after a backoff
        (CopyOperation.COPY, CopyState.PENDING, CopyState.FAILED),
        (CopyOperation.READ, CopyState.STORED, CopyState.FAILED),
    }
)


def copy_sources(operation: CopyOperation, new: CopyState) -> frozenset[CopyState | None]:
    """The states ``operation`` may move a copy from into ``new`` (what the store's UPDATE filters on)."""
    return frozenset(old for op, old, to in COPY_TRANSITIONS if op is operation and to is new)


NEW = None  # the "from" of a submission that does not exist yet

# (operation, from, to): every change of state the service may write. A reorg's rollback and a Revoked
# event are applied by the indexer, whatever the state they find.
TRANSITIONS: frozenset[tuple[Operation, State | None, State]] = frozenset(
    {
        (Operation.ACCEPT, NEW, State.PENDING),
        (Operation.SEND, State.PENDING, State.SUBMITTED),
        (Operation.SEND, State.PENDING, State.FAILED),  # deadline passed, or the registry refused it
        (Operation.SEND, State.SUBMITTED, State.PENDING),  # its transaction reverted or was dropped: again
        (Operation.SEND, State.SUBMITTED, State.FAILED),  # ... once too often
        *(
            (Operation.APPLY_EVENTS, old, new)
            for old in (State.PENDING, State.SUBMITTED, State.FAILED)
            for new in (State.ANCHORED, State.CONFIRMED)
        ),
        (Operation.APPLY_EVENTS, State.ANCHORED, State.CONFIRMED),
        *((Operation.APPLY_EVENTS, old, State.REVOKED) for old in State if old is not State.REVOKED),
        # reorg: the event went away with its block
        *(
            (Operation.APPLY_EVENTS, old, new)
            for old in (State.ANCHORED, State.CONFIRMED, State.REVOKED)
            for new in (State.PENDING, State.SUBMITTED, State.ANCHORED)
            if old is not new
        ),
    }
)

# The one operation that writes each state.
WRITER: dict[State, Operation] = {
    State.PENDING: Operation.ACCEPT,
    State.SUBMITTED: Operation.SEND,
    State.FAILED: Operation.SEND,
    State.ANCHORED: Operation.APPLY_EVENTS,
    State.CONFIRMED: Operation.APPLY_EVENTS,
    State.REVOKED: Operation.APPLY_EVENTS,
}

# States after which nothing changes unless a reorg removes the events they rest on.
FINAL = frozenset({State.CONFIRMED, State.FAILED, State.REVOKED})
# States whose block is known: they count confirmations.
ON_CHAIN = frozenset({State.ANCHORED, State.CONFIRMED, State.REVOKED})
# The order a long-poll's ``until`` compares with (failed and revoked end any wait).
PROGRESS = (State.PENDING, State.SUBMITTED, State.ANCHORED, State.CONFIRMED)


class IllegalTransition(ValueError):
    """An operation tried a change of state the lifecycle does not have."""

    def __init__(self, operation: Operation, old: State | None, new: State) -> None:
        self.operation, self.old, self.new = operation, old, new
        source = "a new submission" if old is None else old.value
        super().__init__(f"{operation.value} cannot move {source} to {new.value}")


def transition(operation: Operation, old: State | None, new: State) -> State:
    """``new``, when ``operation`` may move a submission from ``old`` to it; else :class:`IllegalTransition`."""
    if (operation, old, new) not in TRANSITIONS:
        raise IllegalTransition(operation, old, new)
    return new


def allowed(operation: Operation, new: State) -> frozenset[State | None]:
    """The states ``operation`` may move a submission from into ``new`` (what a store's UPDATE filters on)."""
    return frozenset(old for op, old, to in TRANSITIONS if op is operation and to is new)


@dataclass(frozen=True, slots=True)
class Seen:
    """What a signer sees of a submission or a record: its status, and the blocks on top of its own."""

    status: State
    confirmations: int


def confirmations(head: int | None, block: int | None) -> int:
    """Blocks from ``block`` to ``head``, both counted (0 when either is unknown or the head is behind)."""
    if head is None or block is None:
        return 0
    return max(0, head - block + 1)


def seen(state: State, block: int | None, head: int | None, depth: int) -> Seen:
    """The status a signer sees, from the stored ``state``, the record's ``block`` and the indexed ``head``: an
    anchored record with ``depth`` confirmations is confirmed already, though the indexer may not have
    written it yet. Only states with a block count confirmations."""
    if state not in ON_CHAIN:
        return Seen(state, 0)
    count = confirmations(head, block)
    if state == State.ANCHORED and block is not None and count >= depth:
        return Seen(State.CONFIRMED, count)
    return Seen(state, count)


def reached(state: State, until: State) -> bool:
    """Whether a submission in ``state`` has got as far as ``until`` (failed and revoked end any wait)."""
    if state in (State.FAILED, State.REVOKED):
        return True
    return PROGRESS.index(state) >= PROGRESS.index(until)


# ------------------------------------------------------------------ envelope actions (api/routes/envelopes.py)


class ActionKind(StrEnum):
    """An envelope action the relayer sends for someone (contracts/DocumentEnvelopes.sol). An envelope's
    ``sign`` is not one: it is a submission (its registration is a registry record) with an envelope id."""

    CREATE = "create"  # the requester's signed EnvelopeRequest
    DECLINE = "decline"  # a named signer's signed Decline
    VOID = "void"  # the requester's signed Void
    COUNT = "count"  # countRegistration: a named signer's plain registration counted (no one signs it)


class ActionState(StrEnum):
    """An envelope action's stored state."""

    PENDING = "pending"  # accepted into the outbox
    SUBMITTED = "submitted"  # in a relayer transaction sent to the node
    DONE = "done"  # that transaction was mined and did not revert
    FAILED = "failed"  # the contract refused it (``error`` names its rule), or the relayer gave up


class ActionOperation(StrEnum):
    """The operations that write an envelope action's state."""

    ACCEPT = "accept"  # the route (create, decline, void) or the worker (a plain registration to count)
    SEND = "send"  # the anchoring worker: prepared and recorded, or refused by the contract's rules
    MINED = "mined"  # the worker read its transaction's receipt, or found it gone (dropped, reorged away)


# (operation, from, to): every change of an envelope action's state. A transaction that is dropped or whose
# block a reorg removes gives its action back to pending (mined -> pending), to be sent again.
ACTION_TRANSITIONS: frozenset[tuple[ActionOperation, ActionState | None, ActionState]] = frozenset(
    {
        (ActionOperation.ACCEPT, None, ActionState.PENDING),
        (ActionOperation.SEND, ActionState.PENDING, ActionState.SUBMITTED),
        (ActionOperation.SEND, ActionState.PENDING, ActionState.FAILED),  # a rule refused it: never retried
        (ActionOperation.MINED, ActionState.SUBMITTED, ActionState.DONE),
        (ActionOperation.MINED, ActionState.SUBMITTED, ActionState.FAILED),  # reverted on chain
        (ActionOperation.MINED, ActionState.SUBMITTED, ActionState.PENDING),  # dropped: sent again
        (ActionOperation.MINED, ActionState.DONE, ActionState.SUBMITTED),  # its block went away: in flight again
    }
)


def action_transition(operation: ActionOperation, old: ActionState | None, new: ActionState) -> ActionState:
    """``new``, when ``operation`` may move an envelope action from ``old`` to it; else :class:`ValueError`."""
    if (operation, old, new) not in ACTION_TRANSITIONS:
        source = "a new action" if old is None else old.value
        raise ValueError(f"{operation.value} cannot move {source} envelope action to {new.value}")
    return new
