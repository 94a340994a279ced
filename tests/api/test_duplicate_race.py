"""Two API processes on one PostgreSQL database, the same records submitted to both at the same moment.

Each process commits its accepted submissions in group-commit batches (api/outbox.py), so a duplicate's race
is lost inside a batch that also holds other people's submissions. The loser must answer 200 with the
winner's submission, exactly as a sequential duplicate does, and every other request of its batch must be
accepted; on chain each record is registered exactly once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
from api_support import Api, Env, new_signer, poll, postgres_only, random_doc

RECORDS = 120  # each sent to both processes at once
OTHERS = 120  # unrelated submissions, half to each process, in the same batches


async def _post(http: httpx.AsyncClient, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    r = await http.post("/v1/documents", json=body)
    return r.status_code, r.json()


@postgres_only
async def test_concurrent_duplicates_on_two_processes_one_wins_the_other_sees_it(env: Env, pg: tuple[str, str]) -> None:
    since = int(env.anvil.rpc("eth_blockNumber"), 16)
    first: Api = env.api().start()
    second: Api = env.api().start()  # its pipeline stands by: the first one's anchors for both
    try:
        dupes = [new_signer().registration(env.domain, random_doc()[1]) for _ in range(RECORDS)]
        others = [new_signer().registration(env.domain, random_doc()[1]) for _ in range(OTHERS)]
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        async with (
            httpx.AsyncClient(base_url=first.url, timeout=60, limits=limits) as a,
            httpx.AsyncClient(base_url=second.url, timeout=60, limits=limits) as b,
        ):
            # warm both connection pools, so the duplicates leave together rather than behind TCP handshakes
            await asyncio.gather(*(c.get("/healthz") for c in (a, b) for _ in range(50)))
            calls = []
            for i, body in enumerate(dupes):
                calls += [_post(a, body), _post(b, body), _post(a if i % 2 else b, others[i % OTHERS])]
            answers = await asyncio.gather(*calls)

        statuses = Counter(status for status, _ in answers)
        assert set(statuses) <= {200, 202}, f"answers other than 200/202: {statuses}, e.g. " + str(
            next(body for status, body in answers if status not in (200, 202))
        )
        for i in range(RECORDS):
            (sa, ba), (sb, bb), _ = answers[3 * i : 3 * i + 3]
            assert sorted((sa, sb)) == [200, 202], f"record {i}: {sa} and {sb}"
            assert ba["id"] == bb["id"], f"record {i}: two submissions {ba['id']} and {bb['id']}"
        assert [status for status, _ in answers[2::3]] == [202] * RECORDS

        ids = [body["id"] for _, body in answers[0::3]] + [body["id"] for _, body in answers[2::3]]

        def anchored() -> bool:
            states = [first.get(f"/v1/submissions/{sid}").json()["state"] for sid in ids]
            assert "failed" not in states
            return all(s in ("anchored", "confirmed") for s in states)

        poll(anchored, 60, interval=0.5, what=f"{len(ids)} submissions anchored")
        registered = Counter(
            ("0x" + e.doc_hash.hex(), e.signer) for e in env.registry().events(since) if e.kind == "Registered"
        )
        for body in dupes + others:
            reg = body["registration"]
            assert registered[reg["docHash"], reg["signer"]] == 1
    finally:
        second.stop()
        first.stop()
