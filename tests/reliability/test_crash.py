"""Crash: the API and its anchoring child are SIGKILLed again and again while clients keep submitting, at random
moments and at the worst one (a transaction sent, its receipt not yet seen: mined while the API is down, or
still pending when it comes back), and the anchoring child alone. Clients resend whatever got no answer, as any
client of an HTTP API must. Every accepted submission is anchored exactly once: by its own record in direct mode,
as a leaf of exactly one root, its receipt's proof checked in Python and on chain, in Merkle mode (whose
transaction in flight is an ``anchorRoot``)."""

from __future__ import annotations

import os
import random
import signal
import time

import pytest

from tests.reliability.anchoring import ANCHORINGS, Anchoring, api_env, fetch_answers, merkle_ledger
from tests.reliability.conftest import SCALE, Scale
from tests.reliability.harness import (
    Chain,
    Clients,
    DbProbe,
    Load,
    alive,
    api_keys,
    assert_exactly_once,
    book,
    kill_api,
    ledger,
    peak_rss,
    pipeline_pid,
    plan,
    poll,
    server_5xx,
    servers,
    sqlite_url,
    wait_all_anchored,
)
from tests.reliability.report import Entry, Report

MODES = (
    "SIGKILL API + child at a random moment",
    "SIGKILL API + child with a transaction sent, mined while down",
    "SIGKILL API + child with a transaction sent, still pending at restart",
    "SIGKILL anchoring child alone",
)


@pytest.fixture(params=["sqlite", "postgres"] if SCALE.name == "full" else ["sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "docchain.db")  # type: ignore[operator]
    return str(request.getfixturevalue("pg_cluster").create_database())


# At CI size the crashes hit Merkle mode: its trees are recorded with their transaction, which the kills must not
# split; direct mode's recovery, which Merkle mode shares (outbox, prepared transactions, the indexer), is
# crashed at CI size by tests/api/test_resilience.py and here at RELIABILITY_SCALE=full.
@pytest.mark.parametrize("anchoring", ANCHORINGS if SCALE.name == "full" else ("merkle",))
def test_crash(
    chain: Chain, database_url: str, anchoring: Anchoring, scale: Scale, entry: Entry, report: Report
) -> None:
    """Crash: repeated SIGKILLs under load, transactions in flight included"""
    rng = random.Random(report.seed)
    backend = "sqlite" if database_url.startswith("sqlite") else "postgres"
    env = chain.env(database_url, f"crash-{backend}-{anchoring}")
    since = chain.head() + 1  # the module's chain: this run's roots are those anchored after its head now
    keys = api_keys(scale.crash_clients)
    api = env.api(DOCCHAIN_API_KEYS=",".join(keys), DOCCHAIN_CONFIRMATIONS="1", **api_env(anchoring))
    probe = DbProbe(database_url)
    restarts: list[float] = []
    peaks: dict[str, int] = {}
    seen_children: set[int] = set()
    extra: list[Load] = []  # submissions sent when the load was over, so a kill still finds work in flight

    def remember_peaks() -> None:
        child = pipeline_pid(api)
        if child is not None:
            seen_children.add(child)
        for name, pid in (("API", api.proc.pid if api.proc else None), ("anchoring child", child)):
            rss = peak_rss(pid)
            if rss:
                peaks[name] = max(peaks.get(name, 0), rss)

    def sent_not_mined() -> bool:
        """A transaction the relayer recorded as sent that the node holds unmined. A row still marked sent is not
        enough: one mined while the API was down stays so until the restarted pipeline reads its receipt, and a
        kill then would find nothing in flight."""
        return any(
            chain.rpc("eth_getTransactionReceipt", [tx_hash]) is None
            and chain.rpc("eth_getTransactionByHash", [tx_hash]) is not None
            for (tx_hash,) in probe.rows("SELECT tx_hash FROM transactions WHERE state = 'sent'")
        )

    with servers(api):
        api.start()
        plans = plan(env.domain, scale.crash_clients, scale.crash_per_client)
        clients = Clients(
            [api.url], plans, keys, deadline_s=scale.deadline_s, rng=rng, pace_s=scale.crash_pace_s
        ).start()
        try:
            for k in range(scale.kills):
                mode = MODES[k % len(MODES)]
                before = clients.accepted_count()
                poll(lambda b=before: clients.progressed(b), 60, what="the load to make progress")  # type: ignore[misc]
                remember_peaks()
                if mode == MODES[3]:
                    child = pipeline_pid(api)
                    assert child is not None, "no anchoring child"
                    os.kill(child, signal.SIGKILL)
                    poll(lambda c=child: pipeline_pid(api) not in (None, c), 60, what="the API to restart its child")  # type: ignore[misc]
                    entry.faults[mode] += 1
                    continue
                if mode == MODES[0]:
                    # a random moment of the load: the fault's timing is the experiment, not a wait for something
                    time.sleep(rng.uniform(0.0, 0.5))
                else:
                    chain.rpc("evm_setAutomine", [False])
                    if clients.finished():  # nothing left to anchor: a few more, so that a transaction is sent
                        extra.append(
                            Clients([api.url], plan(env.domain, 1, 3), keys[:1], deadline_s=60, mix=False).run()
                        )
                    poll(sent_not_mined, 60, what="a transaction sent and not mined")
                kill_api(api, child=True)
                entry.faults[mode] += 1
                if mode == MODES[1]:
                    chain.rpc("evm_mine")  # its receipt exists now; no process saw it
                    chain.rpc("evm_setAutomine", [True])
                start = time.monotonic()
                api.start()
                restarts.append(time.monotonic() - start)
                if mode == MODES[2]:
                    chain.rpc("evm_setAutomine", [True])
                    chain.rpc("evm_mine")  # the chain moves on: the pending transaction is mined now
        finally:
            chain.rpc("evm_setAutomine", [True])
        load = clients.join(scale.deadline_s)
        for more in extra:
            load.accepted.update(more.accepted)
            load.fivexx += more.fivexx
            load.given_up += more.given_up
        settle = wait_all_anchored(probe, len(load.accepted), scale.deadline_s, "every accepted submission anchored")
        remember_peaks()
        answers = fetch_answers(api.url, load.accepted) if anchoring == "merkle" else None
        assert api.stop() == 0
    if answers is None:
        tally = ledger(chain, probe, load.accepted)
    else:
        tally = merkle_ledger(chain, probe, load.accepted, answers, since)
    logged = server_5xx(env.tmp / "api.log.jsonl")
    entry.held.insert(
        0,
        f"{scale.crash_clients} clients × {scale.crash_per_client} submissions on {backend}, {anchoring} anchoring, "
        f"through {scale.kills} kills; unanswered requests resent (same body) until accepted",
    )
    entry.memory = {**peaks, "node (anvil)": peak_rss(chain.node.pid)}
    if restarts:
        entry.recovery.append(("API restart to healthy (longest)", max(restarts)))
    entry.recovery.append(("last anchor after the load", settle))
    book(entry, load, tally, logged)
    assert_exactly_once(load, tally, logged)
    assert len(load.accepted) == scale.crash_clients * scale.crash_per_client + sum(len(m.accepted) for m in extra)
    assert not [pid for pid in seen_children if alive(pid)], "an anchoring child outlived its API"
