"""The idle pipeline is woken by events, not by its polls: with the safety poll set to an hour, a submission is
still anchored (the API's message to its pipeline, or the database's channel when another replica accepted
it: PostgreSQL's NOTIFY, SQLite's notification socket) and a new block still confirms it (the head poll).
And a wake-up that never arrives is made up for by the safety poll.

Real processes throughout (``python -m docchain.api``, anvil, SQLite or PostgreSQL); the conditions are polled
with timeouts far below the hour a poll would take, so only a wake-up can meet them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from api_support import Api, Env, poll, submit_many

from docchain.api.db import LISTEN_RETRY_S

NO_POLL = {"DOCCHAIN_IDLE_POLL_S": "3600"}  # a loop that relied on its safety poll would sleep through the test
PROMPT_S = 30  # how long a woken pipeline may take on a busy machine: far below the safety poll


def readiness(server: Api) -> dict[str, Any]:
    r = server.get("/readyz")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def anchored(server: Api, sid: str) -> bool:
    return server.get(f"/v1/submissions/{sid}").json()["state"] in ("anchored", "confirmed")


@dataclass
class Worker:
    api: Api
    ready_at: float  # time.monotonic() when its pipeline was seen at work


@pytest.fixture(scope="module")
def worker(env: Env) -> Iterator[Worker]:
    """The replica whose pipeline works, its safety poll set to an hour: the two tests that rely on wake-ups alone
    share it."""
    server = env.api(**NO_POLL).start()
    poll(lambda: readiness(server)["worker"] == "ok", 20, what="the pipeline at work")
    yield Worker(server, time.monotonic())
    server.stop()


def test_submissions_are_anchored_and_confirmed_without_the_safety_poll(env: Env, worker: Worker) -> None:
    server = worker.api
    # one at a time: after the first, the worker has gone idle, so each later one needs its wake-up
    for sid, _, _ in submit_many(server, env, 1) + submit_many(server, env, 1) + submit_many(server, env, 1):
        poll(lambda sid=sid: anchored(server, sid), PROMPT_S, what=f"{sid} anchored")
    sid = submit_many(server, env, 1)[0][0]
    poll(lambda: anchored(server, sid), PROMPT_S, what=f"{sid} anchored")
    # confirmations need blocks on top: the head poll sees them and wakes the indexer
    env.anvil.mine(2)
    poll(
        lambda: server.get(f"/v1/submissions/{sid}").json()["state"] == "confirmed",
        PROMPT_S,
        what=f"{sid} confirmed after two new blocks",
    )


def test_a_replica_without_pipeline_wakes_the_working_one(env: Env, worker: Worker) -> None:
    """Also once the pipeline's listening connection has been checked alive (every LISTEN_RETRY_S): on
    PostgreSQL, a check that leaves a transaction open holds back every NOTIFY after it."""
    front = env.api(DOCCHAIN_PIPELINE="off", **NO_POLL).start()
    try:
        assert readiness(worker.api)["worker"] == "ok"
        # past the listener's first checks: the time elapsed is the condition, there is nothing to poll for
        time.sleep(max(0.0, worker.ready_at + 2 * LISTEN_RETRY_S - time.monotonic()))
        for sid, _, _ in submit_many(front, env, 3):
            poll(lambda sid=sid: anchored(front, sid), PROMPT_S, what=f"{sid}, accepted by the other replica, anchored")
    finally:
        front.stop()


# Losing a wake-up on purpose is simplest with SQLite's socket; on PostgreSQL the outage tests cut the
# listening session, and the same safety poll serves both.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_lost_wake_up_is_made_up_for_by_the_safety_poll(env: Env) -> None:
    env.stop_servers()  # the module's worker among them: this test's pipeline, polling every second, must work
    worker = env.api(DOCCHAIN_IDLE_POLL_S="1").start()
    front = env.api(DOCCHAIN_PIPELINE="off").start()
    try:
        poll(lambda: readiness(worker)["worker"] == "ok", 20, what="the pipeline at work")
        # the working pipeline's outbox socket loses its name: the other replica's signals reach nobody
        sockets = Path(env.database_url.split("///", 1)[1] + ".outbox")
        poll(lambda: any(sockets.glob("*.sock")), 20, what="the pipeline's outbox socket")
        for path in sockets.glob("*.sock"):
            path.unlink()
        sid = submit_many(front, env, 1)[0][0]
        poll(lambda: anchored(front, sid), PROMPT_S, what=f"{sid} anchored by the safety poll")
    finally:
        front.stop()
        worker.stop()
