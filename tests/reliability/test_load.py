"""Load, and two replicas: many clients submitting, verifying and listing at once, on SQLite and PostgreSQL,
then on two API processes sharing one PostgreSQL database and one document store. Every accepted submission is
anchored exactly once (the chain's Registered events, the submissions table and the index agree), no answer
is a 5xx, and the peak memory of each process (API, anchoring child, node) goes into the report."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.reliability.conftest import Scale
from tests.reliability.harness import (
    Api,
    Body,
    Chain,
    Clients,
    DbProbe,
    api_keys,
    assert_exactly_once,
    book,
    ledger,
    peak_rss,
    pipeline_pid,
    plan,
    server_5xx,
    servers,
    sqlite_url,
    wait_all_anchored,
)
from tests.reliability.report import Entry


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "docchain.db")
    return str(request.getfixturevalue("pg_cluster").create_database())


def _memory(api: Api, chain: Chain) -> dict[str, int | None]:
    assert api.proc is not None
    return {
        "API": peak_rss(api.proc.pid),
        "anchoring child": peak_rss(pipeline_pid(api)),
        "node (anvil)": peak_rss(chain.node.pid),
    }


def test_load(chain: Chain, database_url: str, scale: Scale, entry: Entry) -> None:
    """Load: clients × submissions mixed with verify, list and status calls"""
    backend = "sqlite" if database_url.startswith("sqlite") else "postgres"
    env = chain.env(database_url, f"load-{backend}")
    keys = api_keys(scale.clients)
    api = env.api(DOCCHAIN_API_KEYS=",".join(keys), DOCCHAIN_CONFIRMATIONS="1")
    with servers(api):
        api.start()
        plans = plan(env.domain, scale.clients, scale.per_client)
        load = Clients([api.url], plans, keys, deadline_s=scale.deadline_s).run()
        probe = DbProbe(database_url)
        settle = wait_all_anchored(probe, len(load.accepted), scale.deadline_s, "every accepted submission anchored")
        entry.memory = _memory(api, chain)
        assert api.stop() == 0
    tally = ledger(chain, probe, load.accepted)
    logged = server_5xx(env.tmp / "api.log.jsonl")
    entry.held.insert(0, f"{scale.clients} clients × {scale.per_client} submissions on {backend}, one API process")
    entry.recovery.append(("last anchor after the load", settle))
    book(entry, load, tally, logged)
    assert_exactly_once(load, tally, logged)
    assert load.unavailable == 0, f"{load.unavailable} answers were 503 (nothing was down)"
    assert len(load.accepted) == scale.clients * scale.per_client


def test_two_replicas(chain: Chain, scale: Scale, entry: Entry, request: pytest.FixtureRequest) -> None:
    """Two replicas on one PostgreSQL and one document store, duplicates sent to both at once"""
    database_url = request.getfixturevalue("pg_cluster").create_database()
    env = chain.env(database_url, "replicas")
    keys = api_keys(scale.clients + scale.replica_duplicates)
    shared = {
        "DOCCHAIN_API_KEYS": ",".join(keys),
        "DOCCHAIN_CONFIRMATIONS": "1",
        "DOCCHAIN_STORAGE_DIR": str(env.tmp / "documents"),  # one document store for both
    }
    first, second = env.api(**shared), env.api(**shared)
    with servers(first, second):
        first.start()
        second.start()  # its pipeline stands by (the lease): the first one anchors for both
        plans = plan(env.domain, scale.clients, scale.per_client)
        clients = Clients([first.url, second.url], plans, keys[: scale.clients], deadline_s=scale.deadline_s)
        clients.start()
        dupes = [b for [b] in plan(env.domain, scale.replica_duplicates, 1, files_every=2)]
        answers = asyncio.run(_both_at_once(first.url, second.url, dupes, keys[scale.clients :]))
        load = clients.join(scale.deadline_s)
        accepted = dict(load.accepted)
        for body, answer in zip(dupes, answers, strict=True):
            ids = [json.loads(text)["id"] for status, text in answer.answers if status in (200, 202)]
            if ids:
                accepted[body.key] = ids[0]
        probe = DbProbe(database_url)
        wait_all_anchored(probe, len(accepted), scale.deadline_s, "every accepted submission anchored")
        # one store: a file sent to one replica (client i talks to replica i % 2) is served by the other
        files = [b for b in dupes if b.content is not None]
        other = [(second if i % 2 == 0 else first, b) for i, mine in enumerate(plans) for b in mine if b.content]
        served = [srv.get(f"/v1/documents/0x{b.doc_hash.hex()}/file").content == b.content for srv, b in other]
        entry.memory = {
            "API 1": peak_rss(first.proc.pid if first.proc else None),
            "API 2": peak_rss(second.proc.pid if second.proc else None),
            "anchoring child": max((peak_rss(pipeline_pid(a)) or 0) for a in (first, second)) or None,
            "node (anvil)": peak_rss(chain.node.pid),
        }
        codes = (first.stop(), second.stop())
    tally = ledger(chain, probe, accepted)
    logged = server_5xx(env.tmp / "api.log.jsonl")
    fivexx = [f"{status}: {text}" for answer in answers for status, text in answer.answers if status >= 500]
    load.fivexx += fivexx
    for answer in answers:
        for name in answer.dropped:
            load.errors[f"duplicate pair: {name}"] += 1
    wrong = [f"{b.key}: {a}" for b, a in zip(dupes, answers, strict=True) if not _one_submission(a)]
    entry.held.insert(
        0,
        f"{scale.clients} clients × {scale.per_client} submissions split over 2 API processes on one PostgreSQL; "
        f"{len(dupes)} records each sent to both processes at the same moment ({len(files)} with the file)",
    )
    entry.inputs["duplicate pairs"] += len(dupes)
    book(entry, load, tally, logged)
    entry.duplicated = (entry.duplicated or 0) + len(wrong)
    assert not wrong, f"{len(wrong)} duplicate pairs not answered as one submission (200 + 202, one id): {wrong[:5]}"
    assert_exactly_once(load, tally, logged)
    assert served and all(served), (
        f"{served.count(False)} of {len(served)} stored files not served by the other replica"
    )
    assert codes == (0, 0)


@dataclass
class Pair:
    """One record sent to both replicas at once: their final answers, and any request that got no answer and was
    sent again to the same replica (a kept-alive connection the server closed just then)."""

    answers: list[tuple[int, str]]
    dropped: list[str]


async def _both_at_once(a: str, b: str, dupes: list[Body], keys: list[str]) -> list[Pair]:
    """Each record to both replicas at the same moment (connections warmed first, so they leave together)."""
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        await asyncio.gather(*(http.get(u + "/healthz") for u in (a, b) for _ in range(20)))

        async def send(url: str, body: Body, key: str, dropped: list[str]) -> tuple[int, str]:
            headers = {"X-API-Key": key}
            for attempt in range(5):
                try:
                    if body.content is None:
                        r = await http.post(url + "/v1/documents", json=body.payload, headers=headers)
                    else:
                        files = {
                            "submission": (None, json.dumps(body.payload), "application/json"),
                            "file": ("shared.bin", body.content, "application/octet-stream"),
                        }
                        r = await http.post(url + "/v1/documents", files=files, headers=headers)
                    return r.status_code, r.text
                except httpx.TransportError as exc:
                    dropped.append(type(exc).__name__)
                    await asyncio.sleep(0.1 * (attempt + 1))
            return 0, "no answer after 5 attempts"

        async def pair(body: Body, key: str) -> Pair:
            dropped: list[str] = []
            answers = await asyncio.gather(send(a, body, key, dropped), send(b, body, key, dropped))
            return Pair(list(answers), dropped)

        out: list[Pair] = []
        for start in range(0, len(dupes), 50):  # 50 pairs at a time: 100 requests in flight
            chunk = list(zip(dupes[start : start + 50], keys[start : start + 50], strict=True))
            out += await asyncio.gather(*(pair(body, key) for body, key in chunk))
        return out


def _one_submission(pair: Pair) -> bool:
    """Both answers name one submission, created once: 202 from one replica and 200 from the other (or, where a
    request was sent again, the resend's 200 in place of the 202 it never saw)."""
    statuses = sorted(status for status, _ in pair.answers)
    if not set(statuses) <= {200, 202} or len({json.loads(text)["id"] for _, text in pair.answers}) != 1:
        return False
    return statuses == [200, 202] or (bool(pair.dropped) and statuses.count(202) <= 1)
