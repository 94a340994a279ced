"""Merkle-anchored records in every list and explorer view (issue 22): a leaf has no Registered event (the chain
holds its root alone), yet ``GET /v1/documents`` by signer and by time, the explorer's signer view, its
transaction and block views and the blocks' registry counts show it beside the direct records, in one order,
through the same paging cursor (whose first form, an event's row id, still reads).

Real processes throughout (``python -m docchain.api``, anvil, SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from api_support import Api, Env, Signer, new_signer, random_doc

from docchain.api.db import Database

CI_BACKEND = "postgres"  # at CI size (tests/api/conftest.py); RELIABILITY_SCALE=full runs both

LEAVES = 4  # a tree closes at 4 leaves: the test sends exactly that many
WAIT_MS = 1000


@pytest.fixture(scope="module")
def server(env: Env) -> Iterator[Api]:
    api = env.api(DOCCHAIN_MERKLE_MAX_LEAVES=str(LEAVES), DOCCHAIN_MERKLE_MAX_WAIT_MS=str(WAIT_MS)).start()
    yield api
    api.stop()


@dataclass(frozen=True)
class Signed:
    """What the module signed: one signer's direct record, then three leaves of one tree (the fourth another
    signer's), then a second direct record; each anchored before the next was sent, so chain order is this."""

    signer: Signer
    other: str
    first: str  # docHash, direct
    leaves: list[str]  # docHashes, merkle, the signer's
    last: str  # docHash, direct
    statuses: dict[str, dict[str, Any]]  # docHash -> its submission's status (the other signer's leaf too)
    ids: dict[str, str]  # docHash -> submission id


def _submit(server: Api, env: Env, signer: Signer, anchoring: str) -> tuple[str, str]:
    _, doc = random_doc()
    r = server.post("/v1/documents", json={**signer.registration(env.domain, doc), "anchoring": anchoring})
    assert r.status_code == 202, r.text
    return r.json()["id"], "0x" + doc.hex()


@pytest.fixture(scope="module")
def signed(env: Env, server: Api) -> Signed:
    signer, other = new_signer(), new_signer()
    statuses: dict[str, dict[str, Any]] = {}
    ids: dict[str, str] = {}

    def anchored(batch: list[tuple[str, str]]) -> None:
        for sid, doc in batch:
            statuses[doc], ids[doc] = server.wait_state(sid, ("anchored", "confirmed")), sid

    first = [_submit(server, env, signer, "direct")]
    anchored(first)
    tree = [_submit(server, env, signer, "merkle") for _ in range(LEAVES - 1)]
    tree.append(_submit(server, env, other, "merkle"))
    anchored(tree)
    last = [_submit(server, env, signer, "direct")]
    anchored(last)
    return Signed(signer, other.address, first[0][1], [doc for _, doc in tree[:-1]], last[0][1], statuses, ids)


def _page(server: Api, **params: Any) -> dict[str, Any]:
    r = server.get("/v1/documents", params=params)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _all(server: Api, limit: int, **params: Any) -> list[dict[str, Any]]:
    """Every page of a listing, followed through nextCursor."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = _page(server, limit=limit, **({"cursor": cursor} if cursor else {}), **params)
        assert len(page["items"]) <= limit
        items += page["items"]
        cursor = page["nextCursor"]
        if cursor is None:
            return items
        assert len(items) < 100, "the cursor does not advance"


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def test_a_signers_list_holds_its_merkle_leaves_between_its_direct_records(server: Api, signed: Signed) -> None:
    items = _page(server, signer=signed.signer.address)["items"]
    # newest first: the last direct record, the three leaves (one block, one root), the first direct record
    assert [i["docHash"] for i in items][0] == signed.last and items[-1]["docHash"] == signed.first
    assert {i["docHash"] for i in items[1:4]} == set(signed.leaves) and len(items) == 5
    [root] = {signed.statuses[doc]["merkleRoot"] for doc in signed.leaves}
    for item in items:
        status = signed.statuses[item["docHash"]]
        assert item["signer"] == signed.signer.address and item["state"] in ("anchored", "confirmed")
        assert (item["txHash"], item["blockNumber"], item["timestamp"]) == (
            status["txHash"],
            status["blockNumber"],
            status["timestamp"],
        )
        merkle = item["docHash"] in signed.leaves
        assert (item["anchoring"], item["merkleRoot"]) == (("merkle", root) if merkle else ("direct", None))
    blocks = [i["blockNumber"] for i in items]
    assert blocks == sorted(blocks, reverse=True) and len(set(blocks)) == 3


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_paging_through_the_cursor_gives_the_same_records_in_the_same_order(
    server: Api, signed: Signed, limit: int
) -> None:
    whole = _page(server, signer=signed.signer.address)["items"]
    assert _all(server, limit, signer=signed.signer.address) == whole


def test_a_time_window_holds_the_leaves_of_its_blocks(server: Api, signed: Signed) -> None:
    at = signed.statuses[signed.leaves[0]]["timestamp"]
    window = _all(server, 2, since=at, until=at + 1)
    tree = {*signed.leaves}
    assert tree <= {i["docHash"] for i in window}
    # the fourth leaf, another signer's, is in the window too; nothing outside it is
    assert signed.other in {i["signer"] for i in window}
    assert all(i["timestamp"] == at for i in window)
    mine = _all(server, 1, signer=signed.signer.address, since=at)
    # (anvil mines several blocks a second: the direct records' blocks may share the leaves' time)
    mine_since = {doc for doc in (signed.first, *tree, signed.last) if signed.statuses[doc]["timestamp"] >= at}
    assert tree | {signed.last} <= mine_since and [i["docHash"] for i in mine] == [
        i["docHash"] for i in _page(server, signer=signed.signer.address)["items"] if i["docHash"] in mine_since
    ]


def _event_id(env: Env, doc: str) -> int:
    async def read() -> int:
        db = Database(env.database_url)
        try:
            [(event_id,)] = await db.query(
                "SELECT id FROM events WHERE doc_hash = :doc AND kind = 'Registered'", {"doc": doc}
            )
            return int(event_id)
        finally:
            await db.close()

    return asyncio.run(read())


def test_a_first_form_cursor_still_reads_and_a_stale_or_foreign_one_is_refused(
    env: Env, server: Api, signed: Signed
) -> None:
    # the first cursors named the last record's event row: they page on from that record, leaves included
    after_last = _page(server, signer=signed.signer.address, cursor=_cursor(str(_event_id(env, signed.last))))
    assert [i["docHash"] for i in after_last["items"]][-1] == signed.first
    assert {i["docHash"] for i in after_last["items"][:3]} == set(signed.leaves)
    for cursor in (
        _cursor(str(2**62)),  # an event that is not (any more) indexed
        _cursor("2:1:2:3:NOT-HEX"),
        _cursor("2:1:2"),
        _cursor("2:" + "9" * 20 + ":1:1:"),
        _cursor("2:1:2:3:" + "a" * 33),
    ):
        r = server.get("/v1/documents", params={"cursor": cursor})
        assert r.status_code == 422, (cursor, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")


def test_the_explorer_signer_view_lists_the_leaves_and_a_revoked_leaf_says_so(
    env: Env, server: Api, signed: Signed
) -> None:
    listed = _page(server, signer=signed.signer.address)["items"]
    r = server.get(f"/v1/explorer/signers/{signed.signer.address}")
    assert r.status_code == 200, r.text
    documents = r.json()["documents"]
    assert [(d["docHash"], d["anchoring"], d["merkleRoot"], d["txHash"]) for d in documents] == [
        (i["docHash"], i["anchoring"], i["merkleRoot"], i["txHash"]) for i in listed
    ]
    # a leaf revoked (revokeMerkleBySig) is revoked in both views, with the time of its Revoked event
    leaf = signed.leaves[1]
    body = signed.signer.revocation(env.domain, bytes.fromhex(leaf[2:]), 0)
    assert server.post("/v1/revocations", json=body).status_code == 202
    server.wait_state(signed.ids[leaf], ("revoked",))
    for view in (
        _page(server, signer=signed.signer.address)["items"],
        server.get(f"/v1/explorer/signers/{signed.signer.address}").json()["documents"],
    ):
        [revoked] = [d for d in view if d["docHash"] == leaf]
        assert revoked["state"] == "revoked" and revoked["revokedAt"] >= revoked["timestamp"]
        assert len(view) == 5 and all(d["state"] != "revoked" for d in view if d["docHash"] != leaf)


def test_an_anchor_root_transaction_shows_its_root_leaf_count_and_documents(server: Api, signed: Signed) -> None:
    status = signed.statuses[signed.leaves[0]]
    r = server.get(f"/v1/explorer/tx/{status['txHash']}")
    assert r.status_code == 200, r.text
    tx = r.json()
    assert tx["call"]["function"] == "anchorRoot" and tx["events"] == []
    [root] = tx["roots"]
    assert (root["root"], root["leafCount"]) == (status["merkleRoot"], LEAVES)
    assert [d["leafIndex"] for d in root["documents"]] == list(range(LEAVES))
    assert {d["docHash"] for d in root["documents"]} == set(signed.statuses) - {signed.first, signed.last}
    assert {d["signer"] for d in root["documents"]} == {signed.signer.address, signed.other}
    # the block's view says the same, and the latest blocks count the root's transaction as a registry one
    block = server.get(f"/v1/explorer/blocks/{status['blockNumber']}").json()
    [in_block] = [t for t in block["transactions"] if t["hash"] == status["txHash"]]
    assert in_block["roots"] == tx["roots"]
    blocks = {b["number"]: b for b in server.get("/v1/explorer/blocks", params={"limit": 50}).json()}
    if status["blockNumber"] in blocks:  # (the shared chain may have moved on past 50 blocks)
        assert blocks[status["blockNumber"]]["registryTxs"] >= 1
