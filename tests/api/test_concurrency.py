"""50 concurrent clients submitting 20 documents each: every one anchored, none lost, none duplicated."""

from __future__ import annotations

import asyncio

import httpx
from api_support import Api, Env, new_signer, poll, random_doc

CLIENTS, PER_CLIENT = 50, 20


async def test_50_clients_20_documents_each(env: Env, api: Api) -> None:
    signers = [new_signer() for _ in range(CLIENTS)]
    bodies = [[s.registration(env.domain, random_doc()[1]) for _ in range(PER_CLIENT)] for s in signers]

    async def client(mine: list[dict]) -> list[str]:
        ids = []
        async with httpx.AsyncClient(base_url=api.url, timeout=60) as http:
            for body in mine:
                r = await http.post("/v1/documents", json=body)
                assert r.status_code == 202, r.text
                ids.append(r.json()["id"])
        return ids

    results = await asyncio.gather(*(client(b) for b in bodies))
    ids = [i for ids in results for i in ids]
    assert len(ids) == len(set(ids)) == CLIENTS * PER_CLIENT

    # the same bodies again, from two racing clients each: the existing submissions come back
    again = await asyncio.gather(*(client_dupe(api, b) for b in bodies[:5] * 2))
    assert {i for ids in again for i in ids} <= set(ids)

    def all_anchored() -> bool:
        for signer in signers:
            body = api.get(f"/v1/explorer/signers/{signer.address}").json()
            if len(body["documents"]) != PER_CLIENT:
                return False
        return True

    poll(all_anchored, 90, interval=0.2, what="all 1000 documents anchored")
    for signer, mine in zip(signers, bodies, strict=True):
        docs = api.get(f"/v1/explorer/signers/{signer.address}").json()["documents"]
        assert sorted(d["docHash"] for d in docs) == sorted(b["registration"]["docHash"] for b in mine)
    # every submission reached anchored/confirmed state, none failed
    sample = [api.get(f"/v1/submissions/{i}").json()["state"] for i in ids[::37]]
    assert set(sample) <= {"anchored", "confirmed"}


async def client_dupe(api: Api, mine: list[dict]) -> list[str]:
    async with httpx.AsyncClient(base_url=api.url, timeout=60) as http:
        out = []
        for body in mine:
            r = await http.post("/v1/documents", json=body)
            assert r.status_code == 200, r.text
            out.append(r.json()["id"])
        return out
