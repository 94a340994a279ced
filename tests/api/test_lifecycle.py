"""The lifecycle core (api/lifecycle.py), pure: the transition table, illegal transitions refused by name,
and the status a signer sees."""

from __future__ import annotations

import pytest

from docchain.api.lifecycle import (
    FINAL,
    NEW,
    TRANSITIONS,
    WRITER,
    IllegalTransition,
    Operation,
    Seen,
    State,
    allowed,
    confirmations,
    reached,
    seen,
    transition,
)


def test_states_speak_the_api_text() -> None:
    assert [s.value for s in State] == ["pending", "submitted", "anchored", "confirmed", "failed", "revoked"]
    assert State("anchored") is State.ANCHORED
    assert State.ANCHORED == "anchored"  # compares with the stored text


@pytest.mark.parametrize(
    ("operation", "old", "new"),
    [
        (Operation.ACCEPT, NEW, State.PENDING),
        (Operation.SEND, State.PENDING, State.SUBMITTED),
        (Operation.SEND, State.PENDING, State.FAILED),
        (Operation.SEND, State.SUBMITTED, State.PENDING),
        (Operation.SEND, State.SUBMITTED, State.FAILED),
        (Operation.APPLY_EVENTS, State.SUBMITTED, State.ANCHORED),
        (Operation.APPLY_EVENTS, State.PENDING, State.ANCHORED),
        (Operation.APPLY_EVENTS, State.FAILED, State.ANCHORED),
        (Operation.APPLY_EVENTS, State.SUBMITTED, State.CONFIRMED),
        (Operation.APPLY_EVENTS, State.ANCHORED, State.CONFIRMED),
        (Operation.APPLY_EVENTS, State.CONFIRMED, State.REVOKED),
        (Operation.APPLY_EVENTS, State.PENDING, State.REVOKED),
        (Operation.APPLY_EVENTS, State.ANCHORED, State.SUBMITTED),  # reorg
        (Operation.APPLY_EVENTS, State.CONFIRMED, State.PENDING),  # reorg
        (Operation.APPLY_EVENTS, State.REVOKED, State.ANCHORED),  # reorg removed the revocation only
    ],
)
def test_legal_transitions(operation: Operation, old: State | None, new: State) -> None:
    assert transition(operation, old, new) is new


@pytest.mark.parametrize(
    ("operation", "old", "new", "message"),
    [
        (Operation.SEND, State.PENDING, State.ANCHORED, "send cannot move pending to anchored"),
        (Operation.SEND, State.SUBMITTED, State.CONFIRMED, "send cannot move submitted to confirmed"),
        (Operation.ACCEPT, State.FAILED, State.PENDING, "accept cannot move failed to pending"),
        (Operation.ACCEPT, NEW, State.SUBMITTED, "accept cannot move a new submission to submitted"),
        (Operation.APPLY_EVENTS, State.PENDING, State.SUBMITTED, "apply_events cannot move pending to submitted"),
        (Operation.APPLY_EVENTS, State.CONFIRMED, State.FAILED, "apply_events cannot move confirmed to failed"),
        (Operation.SEND, State.CONFIRMED, State.PENDING, "send cannot move confirmed to pending"),
        (Operation.SEND, State.REVOKED, State.SUBMITTED, "send cannot move revoked to submitted"),
    ],
)
def test_illegal_transitions_are_refused_by_name(
    operation: Operation, old: State | None, new: State, message: str
) -> None:
    with pytest.raises(IllegalTransition, match=message) as raised:
        transition(operation, old, new)
    assert (raised.value.operation, raised.value.old, raised.value.new) == (operation, old, new)


def test_each_state_has_one_writer() -> None:
    # anchored, confirmed and revoked come only from the chain's events; submitted only from sending
    for operation, _old, new in TRANSITIONS:
        if new in (State.ANCHORED, State.CONFIRMED, State.REVOKED):
            assert operation is Operation.APPLY_EVENTS
        if operation is not Operation.APPLY_EVENTS:  # (a reorg's rollback restores earlier states)
            assert WRITER[new] is operation or (operation, new) == (Operation.SEND, State.PENDING)
    assert set(WRITER) == set(State)
    assert allowed(Operation.SEND, State.SUBMITTED) == {State.PENDING}
    assert allowed(Operation.APPLY_EVENTS, State.CONFIRMED) == {
        State.PENDING,
        State.SUBMITTED,
        State.FAILED,
        State.ANCHORED,
    }


def test_final_states_leave_only_through_events() -> None:
    for operation, old, _new in TRANSITIONS:
        if old in FINAL - {State.FAILED}:
            assert operation is Operation.APPLY_EVENTS


@pytest.mark.parametrize(
    ("state", "block", "head", "depth", "expected"),
    [
        (State.PENDING, None, 100, 3, Seen(State.PENDING, 0)),
        (State.SUBMITTED, None, 100, 3, Seen(State.SUBMITTED, 0)),
        (State.FAILED, None, 100, 3, Seen(State.FAILED, 0)),
        (State.ANCHORED, 100, 100, 3, Seen(State.ANCHORED, 1)),
        (State.ANCHORED, 98, 100, 3, Seen(State.CONFIRMED, 3)),  # deep enough: confirmed, written or not
        (State.ANCHORED, 98, None, 3, Seen(State.ANCHORED, 0)),  # no head indexed yet
        (State.ANCHORED, 100, 97, 1, Seen(State.ANCHORED, 0)),  # head behind the record (a reorg's instant)
        (State.CONFIRMED, 90, 100, 3, Seen(State.CONFIRMED, 11)),
        (State.REVOKED, 90, 100, 3, Seen(State.REVOKED, 11)),
        (State.ANCHORED, 100, 100, 1, Seen(State.CONFIRMED, 1)),
    ],
)
def test_seen(state: State, block: int | None, head: int | None, depth: int, expected: Seen) -> None:
    assert seen(state, block, head, depth) == expected


def test_confirmations_and_reached() -> None:
    assert confirmations(None, 5) == confirmations(5, None) == 0
    assert confirmations(10, 10) == 1
    assert reached(State.ANCHORED, State.SUBMITTED)
    assert not reached(State.SUBMITTED, State.ANCHORED)
    assert reached(State.FAILED, State.CONFIRMED)
    assert reached(State.REVOKED, State.ANCHORED)
