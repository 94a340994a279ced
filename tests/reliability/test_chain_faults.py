"""Node outage and reorgs: the node stopped in the middle of a load and started again; blocks holding anchors
removed by ``anvil_reorg`` and by ``evm_snapshot`` / ``evm_revert`` (then a longer chain), while clients keep
submitting. Records in the vanished blocks go back to pending and are anchored again in the new chain; every
accepted submission ends anchored exactly once, at a block of the canonical chain. The reorgs run in both
anchoring modes: in Merkle mode the vanished blocks hold ``anchorRoot`` transactions, and each submission ends a
leaf of exactly one root whose ``RootAnchored`` event is in the canonical chain. Times to recovery go into the
report."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from tests.reliability.anchoring import ANCHORINGS, Anchoring, api_env, fetch_answers, merkle_ledger
from tests.reliability.conftest import Scale
from tests.reliability.harness import (
    Chain,
    Clients,
    DbProbe,
    HistoryNode,
    Load,
    anchored_rows,
    api_keys,
    assert_exactly_once,
    book,
    clean_503,
    ledger,
    metric,
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

RECOVERY_BOUND_S = 180  # the longest a recovery may take before the test fails (the report has the real time)


@pytest.fixture
def own_chain(tmp_path: Path) -> Chain:
    """A chain of the test's own (faults must not reach other tests), keeping past states for anvil_reorg."""
    chain = Chain.start(tmp_path, HistoryNode(tmp_path / "node"))
    yield chain  # type: ignore[misc]
    chain.node.stop()


def test_node_outage_under_load(own_chain: Chain, scale: Scale, entry: Entry, tmp_path: Path) -> None:
    """Node outage: the node stopped during a load, then started again"""
    chain = own_chain
    env = chain.env(sqlite_url(tmp_path / "docchain.db"), "outage")
    keys = api_keys(scale.fault_clients)
    api = env.api(DOCCHAIN_API_KEYS=",".join(keys), DOCCHAIN_CONFIRMATIONS="1")
    probe = DbProbe(env.database_url)
    total = scale.fault_clients * scale.fault_per_client
    answers: dict[str, str] = {}
    with servers(api):
        api.start()
        clients = Clients(
            [api.url],
            plan(env.domain, scale.fault_clients, scale.fault_per_client),
            keys,
            deadline_s=scale.deadline_s,
            pace_s=scale.fault_pace_s,
        ).start()
        poll(lambda: clients.accepted_count() >= total // 3 or clients.finished(), 120, what="a third of the load")
        chain.node.stop()
        down = time.monotonic()
        entry.faults["node stopped under load"] += 1
        # while it is down, what needs the chain says so cleanly; submissions are still accepted (checked locally)
        for path, method, body in (
            ("/v1/chain", "GET", None),
            ("/v1/explorer/blocks", "GET", None),
            ("/v1/verify", "POST", {"docHash": "0x" + "ab" * 32}),
            ("/readyz", "GET", None),
        ):
            r = api.client.request(method, path, json=body)
            answers[f"{method} {path}"] = f"{r.status_code} {'clean' if clean_503(r) else r.text[:200]}"
        during = clients.accepted_count()
        poll(
            lambda: clients.accepted_count() >= during + total // 6 or clients.finished(),
            60,
            what="submissions accepted while the node is down",
        )
        accepted_while_down = clients.accepted_count() - during
        chain.node.start()
        up = time.monotonic()
        waiting = [sid for sid in list(clients.load.accepted.values())]
        poll(
            lambda: len(anchored_rows(probe, waiting)) == len(waiting),
            RECOVERY_BOUND_S,
            interval=0.1,
            what="everything accepted before the node came back anchored",
        )
        recovered = time.monotonic() - up
        load = clients.join(scale.deadline_s)
        wait_all_anchored(probe, len(load.accepted), scale.deadline_s, "every accepted submission anchored")
        entry.memory = {
            "API": peak_rss(api.proc.pid if api.proc else None),
            "anchoring child": peak_rss(pipeline_pid(api)),
            "node (anvil)": peak_rss(chain.node.pid),
        }
        assert api.stop() == 0
    tally = ledger(chain, probe, load.accepted)
    logged = server_5xx(env.tmp / "api.log.jsonl")
    entry.held.insert(
        0,
        f"{scale.fault_clients} clients × {scale.fault_per_client} submissions on SQLite; the node was down "
        f"{up - down:.1f} s, during which {accepted_while_down} submissions were accepted",
    )
    entry.recovery.append(("node back to all earlier submissions anchored", recovered))
    entry.table("Answers while the node was down:", ["request", "answer"], [[k, v] for k, v in answers.items()])
    book(entry, load, tally, logged)
    assert_exactly_once(load, tally, logged)
    unclean = {k: v for k, v in answers.items() if not v.endswith("clean")}
    assert not unclean, f"with the node down these were not a clean 503 problem+json with Retry-After: {unclean}"


@pytest.mark.parametrize("anchoring", ANCHORINGS)
def test_reorgs_under_load(
    own_chain: Chain, anchoring: Anchoring, scale: Scale, entry: Entry, report: Report, tmp_path: Path
) -> None:
    """Reorgs (anvil_reorg, then snapshot and revert) remove anchored blocks under load"""
    chain = own_chain
    rng = random.Random(report.seed)
    env = chain.env(sqlite_url(tmp_path / "docchain.db"), "reorgs")
    since = chain.head() + 1
    keys = api_keys(scale.fault_clients)
    api = env.api(DOCCHAIN_API_KEYS=",".join(keys), DOCCHAIN_CONFIRMATIONS="3", **api_env(anchoring))
    probe = DbProbe(env.database_url)
    rows: list[list[str]] = []
    with servers(api):
        api.start()
        clients = Clients(
            [api.url],
            plan(env.domain, scale.fault_clients, scale.fault_per_client),
            keys,
            deadline_s=scale.deadline_s,
            pace_s=scale.fault_pace_s,
            rng=rng,
        ).start()
        extra: list[Load] = []

        def fresh_anchors(above: int) -> None:
            """Wait for records anchored above block ``above``; once the load is over, send a few to make some."""
            if clients.finished():
                extra.append(Clients([api.url], plan(env.domain, 1, 3), keys[:1], deadline_s=60, mix=False).run())
            poll(lambda: any(num > above for num, _ in anchored_rows(probe).values()), 60, what="fresh anchors")

        def indexed_to(head: int) -> None:
            """The blocks about to be removed are recorded as anchors (the last one mined may not be yet)."""
            poll(
                lambda: max((num for num, _ in anchored_rows(probe).values()), default=0) >= head,
                30,
                what=f"anchors of block {head} recorded",
            )

        for n, kind in enumerate(["anvil_reorg", "snapshot_revert"] * scale.reorgs):
            reorgs_before = metric(api, "docchain_reorgs_total")
            under_load = not clients.finished()
            if kind == "anvil_reorg":
                fresh_anchors(chain.head())
                chain.rpc("evm_setAutomine", [False])  # no block may slip in between choosing and removing them
                head = chain.head()
                indexed_to(head)
                depth = rng.randint(1, min(4, head - chain.deployment.block_number))
                gone = {n: chain.block_hash(n) for n in range(head - depth + 1, head + 1)}
                standing = anchored_rows(probe)
                chain.rpc("anvil_reorg", [depth, []])
                chain.rpc("evm_setAutomine", [True])
                chain.rpc("evm_mine")  # whatever arrived meanwhile
            else:
                snapshot = chain.rpc("evm_snapshot")
                base = chain.head()
                fresh_anchors(base)
                chain.rpc("evm_setAutomine", [False])
                head = chain.head()
                indexed_to(head)
                gone = {n: chain.block_hash(n) for n in range(base + 1, head + 1)}
                standing = anchored_rows(probe)
                assert chain.rpc("evm_revert", [snapshot]) is True
                chain.rpc("evm_setAutomine", [True])
                chain.rpc("anvil_mine", [hex(len(gone) + 1)])  # a longer chain without them
            start = time.monotonic()
            entry.faults[kind] += 1
            changed = [b for b, h in gone.items() if chain.block_hash(b) != h]
            assert changed, f"{kind} changed no block: the reorg did not happen"
            fork = min(gone)  # blocks below it were not touched: only those from it on are read again
            hashes = {num: chain.block_hash(num) for num in {num for num, _ in standing.values() if num >= fork}}
            affected = [sid for sid, (num, h) in standing.items() if num >= fork and hashes[num] != h]

            def reanchored(ids: list[str] = affected) -> bool:
                now = anchored_rows(probe, ids)
                return len(now) == len(ids) and all(chain.block_hash(num) == h for num, h in now.values())

            poll(reanchored, RECOVERY_BOUND_S, interval=0.1, what=f"records of the removed blocks re-anchored ({kind})")
            took = time.monotonic() - start
            entry.recovery.append((f"{kind} #{n // 2 + 1}", took))
            rows.append(
                [
                    f"{kind} #{n // 2 + 1}",
                    "yes" if under_load else "no (the load was over)",
                    str(len(gone)),
                    str(len(affected)),
                    f"{took:.1f} s",
                    str(int(metric(api, "docchain_reorgs_total") - reorgs_before)),
                ]
            )
        load = clients.join(scale.deadline_s)
        for more in extra:  # what was sent to make fresh anchors after the load counts the same
            load.accepted.update(more.accepted)
            load.fivexx += more.fivexx
            load.given_up += more.given_up
        wait_all_anchored(probe, len(load.accepted), scale.deadline_s, "every accepted submission anchored")
        entry.memory = {
            "API": peak_rss(api.proc.pid if api.proc else None),
            "anchoring child": peak_rss(pipeline_pid(api)),
            "node (anvil)": peak_rss(chain.node.pid),
        }
        answers = fetch_answers(api.url, load.accepted) if anchoring == "merkle" else None
        assert api.stop() == 0
    if answers is None:
        tally = ledger(chain, probe, load.accepted)
    else:
        tally = merkle_ledger(chain, probe, load.accepted, answers, since)
    logged = server_5xx(env.tmp / "api.log.jsonl")
    entry.held.insert(
        0, f"{scale.fault_clients} clients × {scale.fault_per_client} submissions on SQLite, {anchoring} anchoring"
    )
    entry.table(
        "Reorgs injected:",
        [
            "reorg",
            "under load",
            "blocks removed",
            "anchored records in them",
            "re-anchored after",
            "reorgs the indexer counted",
        ],
        rows,
    )
    book(entry, load, tally, logged)
    assert_exactly_once(load, tally, logged)
    assert all(int(r[3]) for r in rows), "a reorg removed no anchored record: it tested nothing"
    assert rows[0][1] == "yes", "the first reorg came after the load: none was under load"
