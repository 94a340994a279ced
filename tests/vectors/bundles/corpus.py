"""The golden bundle corpus (bundles.json beside this file) as Python reads it: its cases, how a case's recipe
turns the honest receipt into the one to verify, and the verdict chain/offline.py gives it.

A case is applied to a bundle's ``receipt`` (its JSON, with its ``evidence``) by its ``changes``, in order, each
at a JSON Pointer (RFC 6901) ``path``:

- ``{"op": "replace", "path": P, "value": V}``: the member or item at P becomes V;
- ``{"op": "splice", "path": P, "at": N, "value": "0x…"}``: the hex string at P has its bytes from N on overwritten
  by the value's bytes (its length is kept: used for the registry's code, which a copy would make 15 KB);
- ``{"op": "remove", "path": P}``: the member at P is removed.

The result is written as JSON and read by the strict receipt reader (a refusal is the verdict ``invalid`` at step
``receipt``, its reason the reader's message), then verified offline with the case's ``fileSha256`` as the file's
SHA-256 and its ``trustedBlockHash`` (null: none given).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from docchain.chain.errors import InvalidInput
from docchain.chain.offline import verify_offline
from docchain.chain.receipt import parse_receipt
from docchain.chain.values import parse_hex, to_hex
from docchain.chain.verify import Verdict, receipt_refused

CORPUS = Path(__file__).resolve().parent / "bundles.json"

Op = Literal["replace", "splice", "remove"]


@dataclass(frozen=True)
class Change:
    """One step of a tamper recipe (the module docstring says what each ``op`` does)."""

    op: Op
    path: str
    value: Any = None
    at: int = 0

    def to_json(self) -> dict[str, Any]:
        if self.op == "remove":
            return {"op": self.op, "path": self.path}
        if self.op == "splice":
            return {"op": self.op, "path": self.path, "at": self.at, "value": self.value}
        return {"op": self.op, "path": self.path, "value": self.value}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Change:
        return cls(data["op"], data["path"], data.get("value"), data.get("at", 0))


@dataclass(frozen=True)
class Case:
    """A receipt to verify (the bundle's, changed by ``changes``), with the file hash and trusted block hash it is
    verified with, and the verdict it must get."""

    name: str
    what: str  # why the verdict is what it is, in one line
    changes: tuple[Change, ...]
    file_sha256: bytes
    trusted: bytes | None
    expect: dict[str, Any]  # the verdict's outcome, failedStep, reason, summary, steps, asOfBlock (to_json's names)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "what": self.what,
            "changes": [c.to_json() for c in self.changes],
            "fileSha256": to_hex(self.file_sha256),
            "trustedBlockHash": None if self.trusted is None else to_hex(self.trusted),
            "expect": self.expect,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Case:
        trusted = data["trustedBlockHash"]
        return cls(
            name=data["name"],
            what=data["what"],
            changes=tuple(Change.from_json(c) for c in data["changes"]),
            file_sha256=parse_hex(data["fileSha256"], length=32),
            trusted=None if trusted is None else parse_hex(trusted, length=32),
            expect=data["expect"],
        )


def _tokens(pointer: str) -> list[str]:
    if not pointer.startswith("/"):
        raise ValueError(f"a JSON Pointer starts with /: {pointer!r}")
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def apply(receipt: dict[str, Any], changes: tuple[Change, ...]) -> dict[str, Any]:
    """A copy of ``receipt`` with ``changes`` made, in order."""
    out = copy.deepcopy(receipt)
    for change in changes:
        *parents, last = _tokens(change.path)
        target: Any = out
        for token in parents:
            target = target[int(token)] if isinstance(target, list) else target[token]
        key: Any = int(last) if isinstance(target, list) else last
        if change.op == "remove":
            del target[key]
        elif change.op == "splice":
            old, new = bytes.fromhex(target[key][2:]), bytes.fromhex(change.value[2:])
            if change.at + len(new) > len(old):
                raise ValueError(f"a splice at {change.at} of {len(new)} bytes overruns {change.path}")
            target[key] = to_hex(old[: change.at] + new + old[change.at + len(new) :])
        else:
            target[key] = copy.deepcopy(change.value)
    return out


def verdict_of(receipt: dict[str, Any], file_sha256: bytes, trusted: bytes | None) -> Verdict:
    """What chain/offline.py says of ``receipt`` (JSON), read as a receipt file is read."""
    try:
        parsed = parse_receipt(json.dumps(receipt))
    except InvalidInput as exc:
        return receipt_refused(file_sha256, str(exc))
    return verify_offline(file_sha256, parsed, trusted)


def expectation(verdict: Verdict) -> dict[str, Any]:
    """The parts of a verdict the corpus holds every verifier to: docchain's own (Python and the page) word for word,
    including the sentence said beside the title and the block the verdict holds as of (null: none proven)."""
    said = verdict.to_json()
    return {
        **{key: said[key] for key in ("outcome", "failedStep", "reason", "summary", "steps")},
        "asOfBlock": said.get("asOfBlock"),
    }


def load() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(CORPUS.read_text())
    return data
