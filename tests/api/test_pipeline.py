"""The pipeline (anchoring worker + indexer) beside the HTTP server: in a supervised child process by default,
in the API's own process (``inline``) or not at all (``off``), and one per database (the lease).

Real processes throughout: the API is ``python -m docchain.api``; its pipeline child is found among the
API process's children in /proc. Every submission is checked anchored, and on chain each one was
registered by exactly one registry transaction."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_support import Api, Env, database_outage, poll, postgres_only, submit_many
from prometheus_client.parser import text_string_to_metric_families
from web3 import HTTPProvider, Web3

from docchain.chain.registry import RegistrationNotFound, _signed_registrations

PIPELINE_MODULE = b"docchain.api.pipeline"
Submitted = tuple[str, str, str]  # (submission id, docHash hex, signer)


# ---------------------------------------------------------------------------------------------- processes


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, ppid) of a process, None once it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = raw[raw.rindex(")") + 2 :].split()  # the command name may hold spaces and parentheses
    return fields[0], int(fields[1])


def alive(pid: int) -> bool:
    """Running (a zombie has exited: only its parent, or init, has not reaped it yet)."""
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


def children(parent: int, argument: bytes) -> list[int]:
    """Live processes of ``parent`` with ``argument`` on their command line."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        stat = _stat(pid)
        if stat is None or stat[1] != parent or stat[0] == "Z":
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if argument in cmdline.split(b"\0"):
            found.append(pid)
    return found


def pipeline_children(api: Api) -> list[int]:
    """Live ``python -m docchain.api.pipeline`` processes whose parent is the API process."""
    assert api.proc is not None
    return children(api.proc.pid, PIPELINE_MODULE)


def the_child(api: Api, timeout: float = 15) -> int:
    def one() -> int | None:
        children = pipeline_children(api)
        assert len(children) <= 1, f"more than one pipeline child: {children}"
        return children[0] if children else None

    return int(poll(one, timeout, what="the pipeline child process"))


# ---------------------------------------------------------------------------------------------- submissions


def state(server: Api, sid: str) -> str:
    r = server.get(f"/v1/submissions/{sid}")
    assert r.status_code == 200, f"submission {sid}: {r.status_code} {r.text}"
    return str(r.json()["state"])


def states(server: Api, accepted: list[Submitted]) -> dict[str, str]:
    return {sid: state(server, sid) for sid, _, _ in accepted}


def all_anchored(server: Api, accepted: list[Submitted], timeout: float = 30) -> None:
    def done() -> bool:
        now = states(server, accepted)
        failed = {sid: s for sid, s in now.items() if s == "failed"}
        assert not failed, f"failed submissions: {failed}"
        return all(s in ("anchored", "confirmed") for s in now.values())

    poll(done, timeout, interval=0.1, what=f"{len(accepted)} submissions anchored")


def readiness(server: Api) -> dict[str, Any]:
    r = server.get("/readyz")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def block_number(env: Env) -> int:
    return int(env.anvil.rpc("eth_blockNumber"), 16)


def assert_registered_once(env: Env, accepted: list[Submitted], since_block: int) -> None:
    """Each (docHash, signer) was carried by exactly one registry transaction since ``since_block``, and has
    exactly one Registered event: no pipeline anchored it a second time."""
    w3 = Web3(HTTPProvider(env.anvil.url))
    registry = env.registry()
    carried: Counter[tuple[str, str]] = Counter()
    for number in range(since_block, int(w3.eth.block_number) + 1):
        for tx in w3.eth.get_block(number, full_transactions=True)["transactions"]:
            if tx["to"] != registry.address:
                continue
            try:
                _, items = _signed_registrations(bytes(tx["input"]))
            except RegistrationNotFound:
                continue  # a revocation
            for item in items:
                carried["0x" + item.registration.doc_hash.hex(), item.registration.signer] += 1
    events: Counter[tuple[str, str]] = Counter(
        ("0x" + e.doc_hash.hex(), e.signer) for e in registry.events(since_block) if e.kind == "Registered"
    )
    for _, doc, signer in accepted:
        assert carried[doc, signer] == 1, f"{doc} by {signer} was sent in {carried[doc, signer]} transactions"
        assert events[doc, signer] == 1, f"{doc} by {signer} has {events[doc, signer]} Registered events"


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def server(env: Env) -> Iterator[Api]:
    """The default deployment: ``DOCCHAIN_PIPELINE`` unset (process). The two-API test ends it with SIGKILL
    (the off-replica test stops it too, when run without that one)."""
    api = env.api().start()
    yield api
    api.stop()


# ---------------------------------------------------------------------------------------------- tests


def test_child_process_anchors_and_metrics_come_from_both(env: Env, server: Api) -> None:
    child = the_child(server)
    assert child != server.proc.pid  # type: ignore[union-attr]
    poll(lambda: readiness(server)["worker"] == "ok", 15, what="the child to report its health")
    accepted = submit_many(server, env, 4)
    all_anchored(server, accepted)
    assert pipeline_children(server) == [child]

    r = server.get("/metrics")
    assert r.status_code == 200
    families = list(text_string_to_metric_families(r.text))
    names = [f.name for f in families]
    duplicates = sorted(n for n, k in Counter(names).items() if k > 1)
    assert not duplicates, f"families exposed twice: {duplicates}"
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}
    # from the child (the pipeline's registry): the indexer saw them anchored
    assert samples[("docchain_anchored_total", ())] >= len(accepted)
    assert any(name == "docchain_transactions_total" for name, _ in samples)
    # from the parent (the HTTP registry)
    accepted_posts = sum(
        v
        for (name, labels), v in samples.items()
        if name == "docchain_http_requests_total" and dict(labels).get("method") == "POST"
        if dict(labels).get("status") == "202"
    )
    assert accepted_posts >= len(accepted)
    assert samples[("docchain_submissions_total", ())] >= len(accepted)


def test_killed_child_is_respawned_and_nothing_is_lost(env: Env, server: Api) -> None:
    old = the_child(server)
    since = block_number(env)
    os.kill(old, signal.SIGKILL)
    accepted = submit_many(server, env, 5)  # while the child is dead or restarting

    def noticed() -> str | None:
        worker = str(readiness(server)["worker"])
        if worker.startswith("restarting") or (worker == "ok" and pipeline_children(server) not in ([], [old])):
            return worker
        return None

    seen = poll(noticed, 10, interval=0.02, what="/readyz to show the restart (or the recovered child)")
    assert seen in ("ok", f"restarting (exit -{signal.SIGKILL.value})"), seen
    new = poll(lambda: [p for p in pipeline_children(server) if p != old], 15, what="a new pipeline child")
    assert not alive(old)
    assert len(new) == 1
    all_anchored(server, accepted)
    poll(lambda: readiness(server)["worker"] == "ok", 10, what="/readyz worker ok again")
    assert readiness(server)["indexer"] == "ok"
    assert_registered_once(env, accepted, since)


def test_two_apis_one_pipeline_and_failover(env: Env, server: Api) -> None:
    """A second API on the same database stands by; submissions to either anchor; when the first API is
    killed (its child exits as its stdin closes), the second takes over; nothing is anchored twice."""
    first = server
    first_child = the_child(first)
    since = block_number(env)
    second = env.api().start()
    try:
        second_child = the_child(second)
        poll(lambda: readiness(second)["worker"] == "standby", 10, what="the second pipeline to stand by")
        ready = readiness(second)
        assert ready["indexer"] == "standby"
        assert readiness(first)["worker"] == "ok"

        accepted = submit_many(first, env, 3) + submit_many(second, env, 3)
        all_anchored(second, accepted)  # the second API's submissions too, anchored by the first's pipeline
        assert readiness(second)["worker"] == "standby"

        # in flight when the first API dies: accepted by it, maybe mid-batch in its child
        in_flight = submit_many(first, env, 3)
        first.stop(signal.SIGKILL)
        poll(lambda: not alive(first_child), 25, what="the first API's orphaned child to exit (stdin closed)")
        after = submit_many(second, env, 3)
        poll(lambda: readiness(second)["worker"] == "ok", 20, what="the second pipeline to take over")
        assert pipeline_children(second) == [second_child]  # the standby child took over; not a restart
        everything = accepted + in_flight + after
        all_anchored(second, everything)
        assert_registered_once(env, everything, since)
    finally:
        second.stop()


def test_off_replica_serves_http_and_inline_replica_anchors(env: Env) -> None:
    """``off`` accepts but never anchors; an ``inline`` replica on the same database anchors, with no child."""
    env.stop_servers()  # the module's server among them: no pipeline may work this database now
    since = block_number(env)
    http_only = env.api(DOCCHAIN_PIPELINE="off").start()
    try:
        assert pipeline_children(http_only) == []
        ready = readiness(http_only)
        assert (ready["worker"], ready["indexer"]) == ("off", "off")
        accepted = submit_many(http_only, env, 3)
        # a running pipeline would have anchored them long before (batch interval 30 ms)
        time.sleep(2)
        assert set(states(http_only, accepted).values()) == {"pending"}

        # its safety poll out of reach, so that only the wake-up can anchor the late submission below in time
        inline = env.api(DOCCHAIN_PIPELINE="inline", DOCCHAIN_IDLE_POLL_S="60").start()
        try:
            poll(lambda: readiness(inline)["worker"] == "ok", 10, what="the inline pipeline")
            assert pipeline_children(inline) == []
            assert pipeline_children(http_only) == []
            mine = submit_many(inline, env, 3)
            all_anchored(inline, mine + accepted)
            all_anchored(http_only, accepted)  # the off replica reads the shared database

            # The working pipeline is idle now (its safety poll 60 s away). A submission the off replica accepts
            # wakes it (PostgreSQL NOTIFY, SQLite's outbox socket) and is anchored within seconds: 3 at full size,
            # 8 at CI size, where four test workers share two cores with the nodes and databases.
            time.sleep(1)
            bound = 3.0 if os.environ.get("RELIABILITY_SCALE") == "full" else 8.0
            started = time.monotonic()
            (late,) = submit_many(http_only, env, 1)
            state = http_only.get(f"/v1/submissions/{late[0]}", params={"wait": 10}).json()["state"]
            took = time.monotonic() - started
            assert state in ("anchored", "confirmed") and took < bound, f"{state} after {took:.1f} s"
            accepted.append(late)
            assert readiness(http_only)["worker"] == "off"
            families = [f.name for f in text_string_to_metric_families(inline.get("/metrics").text)]
            assert len(families) == len(set(families))
            assert "docchain_anchored" in families and "docchain_http_requests" in families
            assert_registered_once(env, mine + accepted, since)
        finally:
            inline.stop()
    finally:
        http_only.stop()


def test_sigterm_stops_the_child_too(env: Env) -> None:
    api = env.api().start()
    try:
        child = the_child(api)
        accepted = submit_many(api, env, 2)
        all_anchored(api, accepted)
    finally:
        code = api.stop(signal.SIGTERM)
    assert code == 0  # a graceful stop is not a crash: no re-raised signal in the exit status
    poll(lambda: not alive(child), 5, what=f"the pipeline child {child} to exit with the API")


def test_long_poll_on_a_replica_without_pipeline_answers_at_the_anchor(env: Env) -> None:
    """The pipeline working the database is another replica's: its notification (PostgreSQL NOTIFY, SQLite's
    socket directory) wakes this replica's long-poll when the submission is anchored. The long-poll's own
    re-read of the database is set longer than its wait, so only the notification can end it anchored."""
    working = env.api().start()
    http_only = env.api(DOCCHAIN_PIPELINE="off", DOCCHAIN_REREAD_S="600").start()
    try:
        poll(lambda: readiness(working)["worker"] == "ok", 30, what="the working pipeline")
        for _ in range(2):
            ((sid, _, _),) = submit_many(http_only, env, 1)
            body = http_only.get(f"/v1/submissions/{sid}", params={"wait": 20, "until": "anchored"}).json()
            assert body["state"] in ("anchored", "confirmed"), body
    finally:
        http_only.stop()
        working.stop()


# ---------------------------------------------------------------------------------------------- --workers


def fresh(server: Api, path: str) -> httpx.Response:
    """One request on a new connection: the kernel picks the worker by the connection's hash."""
    return httpx.get(server.url + path, timeout=10)


def test_workers_share_the_port_one_pipeline_one_set_of_metrics(env: Env) -> None:
    """``DOCCHAIN_WORKERS=2``: two processes answer on the port, one pipeline anchors (the other stands by),
    /metrics on either sums every process's values, a killed worker is started again, and SIGTERM stops
    the supervisor, the workers and their pipelines, with status 0."""
    if env.database_url.startswith("sqlite") and os.environ.get("RELIABILITY_SCALE") != "full":
        pytest.skip(
            "on SQLite: RELIABILITY_SCALE=full (the processes' supervision is the subject; PostgreSQL at CI size)"
        )
    env.stop_servers()  # the module's server among them: only this API's pipelines may work the database
    since = block_number(env)
    api = env.api(DOCCHAIN_WORKERS="2").start()
    assert api.proc is not None
    try:
        workers = poll(lambda: sorted(children(api.proc.pid, b"--fd")) or None, 15, what="the workers")  # type: ignore[union-attr]
        assert len(workers) == 2
        pipelines = poll(
            lambda: [c for w in workers for c in children(w, PIPELINE_MODULE)] or None, 15, what="the pipelines"
        )
        # both workers answer (one holds the lease, the other's pipeline stands by)
        seen = set()

        def both() -> bool:
            seen.add(fresh(api, "/readyz").json()["worker"])
            return {"ok", "standby"} <= seen  # ("starting" until the pipelines report)

        poll(both, 20, interval=0.05, what="/readyz from both workers")

        accepted = submit_many(api, env, 6)
        all_anchored(api, accepted)
        assert_registered_once(env, accepted, since)

        def summed() -> dict[str, float]:
            text = fresh(api, "/metrics").text
            families = list(text_string_to_metric_families(text))
            names = [f.name for f in families]
            assert len(names) == len(set(names)), names
            totals: dict[str, float] = {}
            for family in families:
                for sample in family.samples:
                    totals[sample.name] = totals.get(sample.name, 0) + sample.value
            return totals

        for _ in range(8):  # whichever worker answers: the working pipeline's counters and both workers' requests
            totals = summed()
            assert totals["docchain_anchored_total"] >= len(accepted)
            assert totals["docchain_submissions_total"] >= len(accepted)
        assert totals["docchain_http_requests_total"] >= 2 + len(accepted) + 8

        victim = workers[0]
        os.kill(victim, signal.SIGKILL)
        poll(lambda: not alive(victim), 10, what="the killed worker to die")
        replaced = poll(
            lambda: len(now := children(api.proc.pid, b"--fd")) == 2 and victim not in now,  # type: ignore[union-attr]
            15,
            what="the supervisor to start a new worker",
        )
        assert replaced
        more = submit_many(api, env, 3)
        all_anchored(api, more)
        assert_registered_once(env, accepted + more, since)
        serving = children(api.proc.pid, b"--fd")  # the surviving worker and the replacement
        everyone = serving + [c for w in serving for c in children(w, PIPELINE_MODULE)]
    finally:
        code = api.stop(signal.SIGTERM)
    assert code == 0
    for pid in everyone + pipelines:
        poll(lambda pid=pid: not alive(pid), 10, what=f"process {pid} to exit with the supervisor")


def test_workers_argument_errors_are_one_line(env: Env) -> None:
    bad = subprocess.run(
        [sys.executable, "-m", "docchain.api", "--workers", "0"], env=env.api_env(), capture_output=True, text=True
    )
    assert bad.returncode == 2
    assert bad.stderr.strip() == "docchain-api: --workers must be at least 1"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = subprocess.run(
            [sys.executable, "-m", "docchain.api", "--port", str(port), "--workers", "2"],
            env=env.api_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert busy.returncode == 3
    assert busy.stderr.strip() == f"docchain-api: cannot listen on http://127.0.0.1:{port}: Address already in use"


# ---------------------------------------------------------------------------------------------- PostgreSQL lease


LEASE_HOLDER = (
    "SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
    "WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()"
)


@postgres_only
def test_pg_holder_that_lost_its_lease_stops_working(env: Env, pg: tuple[str, str]) -> None:
    import psycopg

    dsn, _ = pg
    first = env.api().start()
    try:
        poll(lambda: readiness(first)["worker"] == "ok", 15, what="the first pipeline")
        second = env.api().start()
        try:
            poll(lambda: readiness(second)["worker"] == "standby", 15, what="the second pipeline to stand by")
            with psycopg.connect(dsn, autocommit=True) as c:
                (holder,) = c.execute(LEASE_HOLDER).fetchone()  # type: ignore[misc]
                assert c.execute("SELECT pg_terminate_backend(%s)", (holder,)).fetchone() == (True,)

                # someone takes the lease again (until then the readiness of both is still the old one's)
                def retaken() -> bool:
                    row = c.execute(LEASE_HOLDER).fetchone()
                    return row is not None and row[0] != holder

                poll(retaken, 15, what="a pipeline to take the lease again")

            # whichever took it, one pipeline works and the other stands by (within the lease check period,
            # LEASE_CHECK_S, and one health report, the old holder may still say it works)
            def one_works() -> bool:
                return sorted(readiness(a)["worker"] for a in (first, second)) == ["ok", "standby"]

            # stale reports can make that true for an instant before the new holder reports; what must hold is a
            # state that stays so
            def settled() -> bool:
                deadline = time.monotonic() + 3
                while time.monotonic() < deadline:
                    if not one_works():
                        return False
                    time.sleep(0.1)
                return True

            poll(settled, 30, what="one pipeline working and the other standing by, for 3 s in a row")
        finally:
            second.stop()
    finally:
        first.stop()


@postgres_only
def test_pg_standby_survives_a_database_outage(env: Env, pg: tuple[str, str]) -> None:
    import psycopg

    dsn, name = pg
    with psycopg.connect(dsn, autocommit=True) as lock:
        (mine,) = lock.execute("SELECT pg_backend_pid()").fetchone()  # type: ignore[misc]
        assert lock.execute("SELECT pg_try_advisory_lock(%s)", (0x646F63636861696E,)).fetchone() == (True,)
        api = env.api().start()
        try:
            poll(lambda: readiness(api)["worker"] == "standby", 15, what="the pipeline to stand by (we hold the lease)")
            with database_outage(dsn, name, spare=mine):
                time.sleep(3)  # longer than the standby's retry period (LEASE_RETRY_S = 2 s)
        except BaseException:
            api.stop()
            raise
    # the database is back and the lease is free (our session ended): the pipeline must take over
    try:
        poll(lambda: readiness(api)["worker"] == "ok", 6, what="the standby pipeline to take the free lease")
        all_anchored(api, submit_many(api, env, 2))
    finally:
        api.stop()
