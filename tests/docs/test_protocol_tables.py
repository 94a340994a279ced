"""docs/protocol.md's function, event and error tables are the compiled registry's ABI, exactly: every item
listed once, no other, each with the selector or topic0 computed here from its signature, and the signature
(parameter types, names, `indexed`, return types, view or call) as the ABI has it.

A stranger matches calldata, logs and revert data against these numbers; they were once copied by hand and
wrong (one selector for `revokeBySig` and `revoke`, `InvalidAccountNonce` missing). Computing them from the
ABI file the contract is deployed from means a changed contract fails here until the page is updated."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
from docs_support import DOCS, ROOT

from docchain.chain.hashing import keccak256

PROTOCOL = (DOCS / "protocol.md").read_text()
ABI: list[dict[str, Any]] = json.loads((ROOT / "contracts" / "build" / "DocumentRegistry.json").read_text())["abi"]


# ------------------------------------------------------------------ reading the page


def _cells(line: str) -> list[str]:
    inner = line.strip()
    assert inner.startswith("|") and inner.endswith("|"), f"not a table row: {line!r}"
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", inner[1:-1])]


def table_after(marker: str) -> list[dict[str, str]]:
    """The rows of the Markdown table that follows ``<!-- marker ... -->``, as {header: cell}."""
    match = re.search(r"<!--\s*" + re.escape(marker) + r"\b[^>]*-->\s*\n((?:\|.*(?:\n|$))+)", PROTOCOL)
    assert match, f"no table after <!-- {marker} --> in docs/protocol.md"
    lines = match.group(1).strip().splitlines()
    header = _cells(lines[0])
    assert all(set(c) <= set("-: ") for c in _cells(lines[1])), f"{marker}: the second line is not a delimiter row"
    return [dict(zip(header, _cells(line), strict=True)) for line in lines[2:]]


def code(cell: str) -> str:
    """The one code span a cell holds (a cell with two items, or prose around the value, is refused)."""
    match = re.fullmatch(r"`([^`]+)`", cell)
    assert match, f"expected exactly one `code span`, got {cell!r}"
    return match.group(1)


def split_top(text: str) -> list[str]:
    """Split at the commas outside parentheses: tuple types hold commas of their own."""
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current)
    return [p.strip() for p in parts]


@dataclass(frozen=True)
class Param:
    type: str
    name: str
    indexed: bool


@dataclass(frozen=True)
class Signature:
    """``Name(type [indexed] [name], ...)`` as the page writes it."""

    name: str
    params: tuple[Param, ...]

    @classmethod
    def parse(cls, text: str) -> Signature:
        match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)\((.*)\)", text)
        assert match, f"not a signature: {text!r}"
        params = []
        for part in split_top(match.group(2)):
            words = part.split()
            assert 1 <= len(words) <= 3 and all(w != "indexed" for w in (words[0], *words[2:])), part
            indexed = len(words) >= 2 and words[1] == "indexed"
            named = words[2:] if indexed else words[1:]
            params.append(Param(words[0], named[0] if named else "", indexed))
        return cls(match.group(1), tuple(params))

    @property
    def canonical(self) -> str:
        return f"{self.name}({','.join(p.type for p in self.params)})"


# ------------------------------------------------------------------ reading the ABI


def abi_type(param: dict[str, Any]) -> str:
    """The canonical type of an ABI parameter: a struct is the tuple of its components' types."""
    if param["type"].startswith("tuple"):
        return "(" + ",".join(abi_type(c) for c in param["components"]) + ")" + param["type"][len("tuple") :]
    return str(param["type"])


def abi_items(kind: str) -> dict[str, dict[str, Any]]:
    """Every ABI item of a kind, by canonical signature."""
    items = {}
    for item in ABI:
        if item["type"] == kind:
            items[f"{item['name']}({','.join(abi_type(p) for p in item['inputs'])})"] = item
    return items


def selector(signature: str) -> str:
    return "0x" + keccak256(signature.encode())[:4].hex()


def topic(signature: str) -> str:
    return "0x" + keccak256(signature.encode()).hex()


def page_rows(marker: str, column: str) -> dict[str, tuple[Signature, dict[str, str]]]:
    """A table's rows by the canonical signature of their ``column``."""
    parsed = [(Signature.parse(code(row[column])), row) for row in table_after(marker)]
    listed = [sig.canonical for sig, _ in parsed]
    assert len(listed) == len(set(listed)), f"{marker}: an item is listed twice: {listed}"
    return {sig.canonical: (sig, row) for sig, row in parsed}


def page_row(kind: str, signature: str) -> tuple[Signature, dict[str, str]]:
    marker, column = TABLES[kind]
    rows = page_rows(marker, column)
    assert signature in rows, f"docs/protocol.md's {kind} table (<!-- {marker} -->) lacks {signature}"
    return rows[signature]


# ------------------------------------------------------------------ the tables


TABLES = {"function": ("abi-functions", "function"), "event": ("abi-events", "event"), "error": ("abi-errors", "error")}


@pytest.mark.parametrize("kind", sorted(TABLES))
def test_the_page_lists_the_whole_abi_and_nothing_else(kind: str) -> None:
    marker, column = TABLES[kind]
    assert sorted(page_rows(marker, column)) == sorted(abi_items(kind))


def test_the_abi_is_the_one_the_registry_is_deployed_from() -> None:
    """Guards the guard: the tables are checked against a non-trivial ABI, with the revocation entry points and
    the nonce error that the page once had wrong."""
    assert {"revoke(bytes32)", "revokeBySig(bytes32,address,uint256,uint256,bytes)"} <= set(abi_items("function"))
    assert "InvalidAccountNonce(address,uint256)" in abi_items("error")
    assert selector("revoke(bytes32)") != selector("revokeBySig(bytes32,address,uint256,uint256,bytes)")


@pytest.mark.parametrize("signature", sorted(abi_items("function")))
def test_function_row(signature: str) -> None:
    sig, row = page_row("function", signature)
    item = abi_items("function")[signature]
    assert code(row["selector"]) == selector(signature), f"{signature}: selector"
    assert all(p.name == "" and not p.indexed for p in sig.params), f"{signature}: write the canonical form"
    kind = "view" if item["stateMutability"] in ("view", "pure") else "call"
    assert row["kind"] == kind, f"{signature}: {item['stateMutability']} is a {kind}"
    returns = ",".join(abi_type(o) for o in item["outputs"])
    assert (code(row["returns"]) if row["returns"] != "—" else "") == returns, f"{signature}: returns {returns}"


@pytest.mark.parametrize("signature", sorted(abi_items("event")))
def test_event_row(signature: str) -> None:
    sig, row = page_row("event", signature)
    item = abi_items("event")[signature]
    assert code(row["topic0"]) == topic(signature), f"{signature}: topic0"
    assert not item["anonymous"]
    documented = [(p.name, p.indexed) for p in sig.params]
    assert documented == [(p["name"], p["indexed"]) for p in item["inputs"]], f"{signature}: names and indexed"


@pytest.mark.parametrize("signature", sorted(abi_items("error")))
def test_error_row(signature: str) -> None:
    sig, row = page_row("error", signature)
    item = abi_items("error")[signature]
    assert code(row["selector"]) == selector(signature), f"{signature}: selector"
    assert [p.name for p in sig.params] == [p["name"] for p in item["inputs"]], f"{signature}: parameter names"


def test_the_parser_refuses_what_the_page_once_had() -> None:
    """The old table listed two functions in one cell, under one selector; such a row cannot pass code()."""
    with pytest.raises(AssertionError, match="exactly one"):
        code("`revokeBySig(bytes32,address,uint256,uint256,bytes)`; `revoke(bytes32)` by the signer itself")
    assert Signature.parse("Registered(bytes32 indexed docHash, address indexed signer, bytes32 metadataHash)") == (
        Signature(
            "Registered",
            (
                Param("bytes32", "docHash", True),
                Param("address", "signer", True),
                Param("bytes32", "metadataHash", False),
            ),
        )
    )
    assert split_top("((bytes32,address),bytes32)[],bytes") == ["((bytes32,address),bytes32)[]", "bytes"]
