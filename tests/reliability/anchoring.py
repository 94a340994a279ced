"""The anchoring modes of the reliability cases, and what "anchored exactly once" means in Merkle mode.

A case runs in either mode by the API server's environment alone (:func:`api_env`). In direct mode a submission
is anchored by its own ``Registered`` event, which :func:`tests.reliability.harness.ledger` finds on chain. In
Merkle mode the chain holds only roots (``RootAnchored``): the leaves are in the database and in the receipts.
So :func:`merkle_ledger` checks every accepted submission as a third party would, from its receipt:

- the receipt is version 2, of that (docHash, signer), and its proof leads from the leaf of its registration
  and signature to its root (chain/merkle.py), the root the submission's status names;
- the root's ``RootAnchored`` event is in the canonical chain, at the block (and time) that the receipt and the
  submission's row name, with the leaf count the proof claims;
- one ``eth_call`` of ``verifyMerkleRegistration`` accepts leaf, proof and signature under that root and
  answers the root's time and block, unrevoked;

and over the whole run: no Merkle submission has a ``Registered`` event (anchored directly as well), and the
leaf counts of the canonical roots anchored since the run began add up to the Merkle submissions anchored, so no
leaf is under two roots and no root was anchored for leaves the database no longer knows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from eth_abi.abi import decode as abi_decode

from docchain.chain import merkle
from docchain.chain.errors import DocchainError
from docchain.chain.merkle import InclusionProof
from docchain.chain.receipt import Receipt, parse_receipt
from docchain.chain.registry import (
    ROOT_ANCHORED_TOPIC,
    Record,
    decode_revert,
    decode_rpc_root_anchored,
    encode_call,
)
from docchain.chain.values import to_hex
from tests.reliability.harness import ANCHORED, Chain, DbProbe, Key, Tally, key_of

Anchoring = Literal["direct", "merkle"]
ANCHORINGS: tuple[Anchoring, ...] = ("direct", "merkle")

MERKLE_MAX_WAIT_MS = 200
"""A tree closes this long after its first leaf: well within a client's think time, so a load is anchored under
many roots and a fault finds roots in flight, as direct mode's batches are."""

_CALLS_PER_BATCH = 200  # eth_calls per JSON-RPC batch: one HTTP round trip for a CI run's whole ledger


def api_env(anchoring: Anchoring) -> dict[str, str]:
    """The API server's environment for ``anchoring``; direct is named too, so that a direct case stays one
    whatever the deployment default becomes."""
    if anchoring == "direct":
        return {"DOCCHAIN_ANCHORING": "direct"}
    return {"DOCCHAIN_ANCHORING": "merkle", "DOCCHAIN_MERKLE_MAX_WAIT_MS": str(MERKLE_MAX_WAIT_MS)}


# ---------------------------------------------------------------------------------------------- evidence


@dataclass(frozen=True)
class RootEvent:
    """A ``RootAnchored`` event of the canonical chain, with its block's time."""

    root: str  # 0x-prefixed lower-case hex, as the receipts' hashes are compared
    leaf_count: int
    block_number: int
    block_hash: str
    timestamp: int


@dataclass(frozen=True)
class Proven:
    """What the chain answered for one leaf: the record ``verifyMerkleRegistration`` returned, or its revert."""

    record: Record | None
    revert: str | None


@dataclass(frozen=True)
class Answered:
    """What the API answers of one accepted submission: its receipt, strictly parsed, and the anchoring and
    root its status names; ``problem`` says why there is no receipt (the answer's status and text, or the
    parser's error)."""

    receipt: Receipt | None
    anchoring: str | None
    merkle_root: str | None
    problem: str | None = None


def fetch_answers(api_url: str, accepted: dict[Key, str]) -> dict[Key, Answered]:
    """Each accepted submission's status and receipt, as its client would ask for them (the API must be up)."""

    def one(http: httpx.Client, key: Key, sid: str) -> tuple[Key, Answered]:
        doc, signer = key
        try:
            status = http.get(f"/v1/submissions/{sid}")
            r = http.get(f"/v1/documents/{doc}/receipts/{signer}")
        except httpx.TransportError as exc:  # a finding of the ledger's, not an error of the test's
            return key, Answered(None, None, None, f"no answer: {type(exc).__name__} {exc}")
        body = status.json() if status.status_code == 200 else {}
        anchoring, root = body.get("anchoring"), body.get("merkleRoot")
        if r.status_code != 200:
            return key, Answered(None, anchoring, root, f"{r.status_code} {r.text[:200]}")
        try:
            return key, Answered(parse_receipt(r.content), anchoring, root)
        except DocchainError as exc:
            return key, Answered(None, anchoring, root, f"unreadable receipt: {exc}")

    with httpx.Client(base_url=api_url, timeout=30) as http, ThreadPoolExecutor(8) as pool:
        return dict(pool.map(lambda item: one(http, *item), list(accepted.items())))


def _rpc(url: str, method: str, params: list[Any]) -> Any:
    body = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, timeout=30).json()
    if "error" in body:
        raise AssertionError(f"{method}: {body['error']}")
    return body["result"]


def canonical_roots(rpc_url: str, registry: str, since_block: int) -> dict[str, list[RootEvent]]:
    """The registry's ``RootAnchored`` events in the node's canonical chain from ``since_block``, by root (a
    root is anchored at most once: the contract refuses it again, so a list longer than one is a finding)."""
    logs = _rpc(
        rpc_url,
        "eth_getLogs",
        [
            {
                "address": registry,
                "fromBlock": hex(since_block),
                "toBlock": "latest",
                "topics": [to_hex(ROOT_ANCHORED_TOPIC)],
            }
        ],
    )
    events = [e for e in map(decode_rpc_root_anchored, logs) if e is not None]
    assert len(events) == len(logs), "a log of the RootAnchored topic that is no RootAnchored event"
    times = _block_times(rpc_url, {e.block_number for e in events})
    out: dict[str, list[RootEvent]] = {}
    for event in events:
        root = to_hex(event.root)
        out.setdefault(root, []).append(
            RootEvent(root, event.leaf_count, event.block_number, to_hex(event.block_hash), times[event.block_number])
        )
    return out


def _block_times(rpc_url: str, numbers: set[int]) -> dict[int, int]:
    """The timestamps of blocks, in one JSON-RPC batch."""
    if not numbers:
        return {}
    batch = [{"jsonrpc": "2.0", "id": n, "method": "eth_getBlockByNumber", "params": [hex(n), False]} for n in numbers]
    replies = httpx.post(rpc_url, json=batch, timeout=60).json()
    return {r["id"]: int(r["result"]["timestamp"], 16) for r in replies}


def verify_on_chain(rpc_url: str, registry: str, items: Sequence[tuple[Receipt, InclusionProof]]) -> list[Proven]:
    """One ``eth_call`` of ``verifyMerkleRegistration`` per receipt at the latest block (sent in JSON-RPC
    batches): what the contract itself says of each leaf, proof and signature."""
    out: list[Proven] = []
    for start in range(0, len(items), _CALLS_PER_BATCH):
        chunk = items[start : start + _CALLS_PER_BATCH]
        batch = [
            {
                "jsonrpc": "2.0",
                "id": n,
                "method": "eth_call",
                "params": [
                    {
                        "to": registry,
                        "data": to_hex(
                            encode_call(
                                "verifyMerkleRegistration",
                                inclusion.root,
                                receipt.registration.as_tuple(),
                                receipt.signature,
                                list(inclusion.proof),
                            )
                        ),
                    },
                    "latest",
                ],
            }
            for n, (receipt, inclusion) in enumerate(chunk)
        ]
        replies = {r["id"]: r for r in httpx.post(rpc_url, json=batch, timeout=60).json()}
        for n in range(len(chunk)):
            out.append(_proven(replies.get(n)))
    return out


def _proven(reply: dict[str, Any] | None) -> Proven:
    if reply is None:
        return Proven(None, "no answer")
    if "error" in reply:
        data = reply["error"].get("data")
        revert = None
        with contextlib.suppress(ValueError, TypeError):
            revert = decode_revert(bytes.fromhex(str(data).removeprefix("0x")))
        return Proven(None, revert.name if revert is not None else str(reply["error"])[:200])
    (fields,) = abi_decode(["(uint48,uint48,uint48)"], bytes.fromhex(reply["result"].removeprefix("0x")))
    return Proven(Record(*fields), None)


# ---------------------------------------------------------------------------------------------- the ledger


def merkle_ledger(
    chain: Chain, probe: DbProbe, accepted: dict[Key, str], answers: dict[Key, Answered], since_block: int
) -> Tally:
    """Every accepted submission anchored exactly once as a Merkle leaf (see the module's docstring); the
    findings go into the same :class:`Tally` as direct mode's, proofs that fail into ``unproven``."""
    registered = chain.registered()
    rows = probe.submissions()
    roots = canonical_roots(chain.node.url, chain.deployment.address, since_block)
    tally = Tally(accepted=len(accepted))
    to_prove: list[tuple[Key, Receipt, InclusionProof, RootEvent]] = []
    for key, sid in accepted.items():
        mine = rows.get(key, [])
        if len(mine) > 1:
            tally.duplicated.append(f"{key}: {len(mine)} submissions")
        if registered.get(key):
            tally.duplicated.append(f"{key}: anchored directly too ({len(registered[key])} Registered events)")
        if not mine:
            tally.lost.append(key)
            continue
        row_id, state, number, block_hash = mine[0]
        if row_id != sid:
            tally.duplicated.append(f"{key}: answered as {sid}, stored as {row_id}")
        if state == "failed":
            tally.failed.append(f"{key} ({row_id})")
            continue
        if state not in ANCHORED:
            tally.lost.append(key)
            continue
        tally.anchored += 1
        answered = answers.get(key, Answered(None, None, None, "not asked"))
        receipt = answered.receipt
        if receipt is None:
            tally.unproven.append(f"{key}: no receipt: {answered.problem}")
            continue
        inclusion = receipt.merkle
        if inclusion is None:
            tally.unproven.append(f"{key}: a version-{receipt.version} receipt, anchored directly")
            continue
        if (answered.anchoring, answered.merkle_root) != ("merkle", to_hex(inclusion.root)):
            tally.unproven.append(
                f"{key}: its status says {answered.anchoring} under {answered.merkle_root}, its receipt merkle "
                f"under {to_hex(inclusion.root)}"
            )
            continue
        if key_of(to_hex(receipt.doc_hash), receipt.signer) != key:
            tally.unproven.append(f"{key}: the receipt is of {to_hex(receipt.doc_hash)} by {receipt.signer}")
            continue
        if not inclusion.verifies(merkle.leaf(receipt.registration, receipt.signature)):
            tally.unproven.append(f"{key}: its proof does not lead from its leaf to {to_hex(inclusion.root)}")
            continue
        events = roots.get(to_hex(inclusion.root), [])
        if len(events) != 1:
            tally.stale_block.append(f"{key}: its root has {len(events)} RootAnchored events in the canonical chain")
            continue
        (event,) = events
        where = (event.block_number, event.block_hash)
        if (receipt.block_number, to_hex(receipt.block_hash)) != where or (number, (block_hash or "").lower()) != where:
            tally.stale_block.append(
                f"{key}: root at block {event.block_number}, receipt says {receipt.block_number}, row says {number}"
            )
            continue
        if (receipt.timestamp, inclusion.count) != (event.timestamp, event.leaf_count):
            tally.unproven.append(
                f"{key}: receipt's time and leaf count {receipt.timestamp}, {inclusion.count}; "
                f"the chain's {event.timestamp}, {event.leaf_count}"
            )
            continue
        to_prove.append((key, receipt, inclusion, event))
    proofs = verify_on_chain(chain.node.url, chain.deployment.address, [(r, i) for _, r, i, _ in to_prove])
    for (key, _, _, event), proven in zip(to_prove, proofs, strict=True):
        expected = Record(event.timestamp, event.block_number, 0)
        if proven.record != expected:
            tally.unproven.append(f"{key}: verifyMerkleRegistration answered {proven.record or proven.revert}")
    tally.roots = sum(len(events) for events in roots.values())
    tally.leaves = sum(e.leaf_count for events in roots.values() for e in events)
    named = {a.merkle_root for a in answers.values()} | {to_hex(i.root) for _, _, i, _ in to_prove}
    for root, events in roots.items():
        if root not in named:  # its leaves are submissions anchored under another root too, or none at all
            tally.duplicated.extend(
                f"root {root} of {e.leaf_count} leaves, anchored at block {e.block_number}, is no submission's root"
                for e in events
            )
    # (fewer leaves than anchored submissions leaves some without a leaf under a canonical root: each of those is
    # a finding of its own above)
    if tally.leaves > tally.anchored:
        tally.duplicated.append(
            f"{tally.leaves} leaves under the {tally.roots} roots anchored during the run, "
            f"for {tally.anchored} submissions anchored: a leaf is under two roots"
        )
    tally.unknown_rows = len(set(rows) - set(accepted))
    return tally
