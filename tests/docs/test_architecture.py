"""docs/architecture.md's lifecycle diagram and table say what api/lifecycle.py does: every arrow is a legal
transition made by the operation it names, every state is drawn, and the table names each state's writer."""

from __future__ import annotations

import re
from pathlib import Path

from docchain.api.lifecycle import NEW, TRANSITIONS, WRITER, Operation, State

PAGE = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"
ARROW = re.compile(r"^\s*(\[\*\]|\w+) --> (\[\*\]|\w+)(?:: (\w+))?")


def _diagram() -> list[tuple[str, str, str | None]]:
    text = PAGE.read_text()
    block = text[text.index("```mermaid\nstateDiagram-v2") :]
    block = block[: block.index("```", 3)]
    return [(m[1], m[2], m[3]) for line in block.splitlines() if (m := ARROW.match(line))]


def test_every_arrow_is_a_legal_transition_by_its_operation() -> None:
    arrows = [(a, b, op) for a, b, op in _diagram() if b != "[*]"]
    assert len(arrows) >= 10
    for old, new, op in arrows:
        assert op is not None, (old, new)
        source = NEW if old == "[*]" else State(old)
        assert (Operation(op), source, State(new)) in TRANSITIONS, (old, new, op)


def test_every_state_is_drawn() -> None:
    drawn = {name for a, b, _ in _diagram() for name in (a, b)}
    assert {s.value for s in State} <= drawn


def test_the_table_names_each_states_writer() -> None:
    rows = dict(re.findall(r"^\| `(\w+)` \| `(\w+)`", PAGE.read_text(), re.M))
    assert rows == {state.value: op.value for state, op in WRITER.items()}
