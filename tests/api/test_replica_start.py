"""Replicas started together on a fresh PostgreSQL database (a deployment's first start, or a rollout that
starts every replica at once): both migrate it and claim it for their chain at the same moment. Both must
come up and serve, neither failing on the other's half-made schema or claim."""

from __future__ import annotations

import threading

import pytest
from api_support import Api, Env, postgres_only, submit_many


@postgres_only
def test_replicas_starting_together_on_a_fresh_database_both_serve(
    env: Env, pg: tuple[str, str], request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("postgres").create_database()
    replicas: list[Api] = [env.api(DOCCHAIN_DATABASE_URL=url) for _ in range(2)]
    failures: list[BaseException] = []

    def start(server: Api) -> None:
        try:
            server.start()
        except BaseException as exc:  # an AssertionError from start(): the process exited
            failures.append(exc)

    threads = [threading.Thread(target=start, args=(server,)) for server in replicas]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not failures, failures[0]
        accepted = submit_many(replicas[0], env, 1) + submit_many(replicas[1], env, 1)
        for server in replicas:
            for sid, _, _ in accepted:
                server.wait_state(sid, ("anchored", "confirmed"))
    finally:
        for server in replicas:
            server.stop()
