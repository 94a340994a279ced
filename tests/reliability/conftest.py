"""The reliability suite's fixtures: its sizes (one place: ``RELIABILITY_SCALE``), the session-wide report,
a chain per module, and a PostgreSQL cluster of its own.

``RELIABILITY_SCALE=ci`` (the default, what ``make test`` runs) keeps the suite within a few minutes on two
cores; ``RELIABILITY_SCALE=full`` (``make reliability``) runs the issue's sizes. ``RELIABILITY_REPORT`` names
the report file (``make reliability``: docs/reliability.md; otherwise test-output/reliability-<scale>.md).
``RELIABILITY_SEED`` replays the random moments of a run (the report names the seed it used).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.api.api_support import PG_BIN, PostgresCluster, _pg_available
from tests.reliability.harness import Chain
from tests.reliability.report import ROOT, Entry, Report
from tests.support import free_port


@dataclass(frozen=True)
class Scale:
    name: str
    clients: int  # load: concurrent clients ...
    per_client: int  # ... each sending this many submissions (mixed with verify, list and status calls)
    replica_duplicates: int  # records sent to both replicas at once
    kills: int  # SIGKILLs of the API (and its anchoring child)
    crash_clients: int
    crash_per_client: int
    crash_pace_s: float  # a crash-test client's think time between submissions (random, up to this)
    fault_clients: int  # node outage and reorg loads
    fault_per_client: int
    fault_pace_s: float  # their think time between submissions (random, up to this): the load spans the faults
    reorgs: int  # anvil_reorg and snapshot/revert, each, under load
    shutdown_clients: int
    held: int  # long-polls and event streams held open at a shutdown, each
    invariant_examples: int  # hypothesis: state machine runs ...
    invariant_steps: int  # ... of at most this many steps (each a transaction or a refused one)
    deadline_s: float  # the longest any one load may run
    storage_clients: int  # storage outages: clients submitting documents with their files ...
    storage_per_client: int  # ... each this many
    storage_pace_s: float  # their think time between submissions (random, up to this): the load spans the outages
    storage_outage_s: float  # how long the S3 server, then the IPFS node, stays down
    big_upload_mib: int  # the upload cut by a SIGKILL (several S3 parts of 5 MiB)
    shared_documents: int  # documents sent at once to two replicas sharing one bucket


SCALES = {
    "ci": Scale(
        name="ci",
        clients=10,
        per_client=10,
        replica_duplicates=20,
        kills=3,
        crash_clients=6,
        crash_per_client=10,
        crash_pace_s=1.5,
        fault_clients=6,
        fault_per_client=10,
        fault_pace_s=2.0,
        reorgs=1,
        shutdown_clients=6,
        held=4,
        invariant_examples=8,
        invariant_steps=25,
        deadline_s=240,
        storage_clients=6,
        storage_per_client=12,
        storage_pace_s=2.0,
        storage_outage_s=2.5,
        big_upload_mib=24,
        shared_documents=6,
    ),
    "full": Scale(
        name="full",
        clients=100,
        per_client=50,
        replica_duplicates=500,
        kills=12,
        crash_clients=40,
        crash_per_client=25,
        crash_pace_s=4.0,
        fault_clients=40,
        fault_per_client=25,
        fault_pace_s=2.0,
        reorgs=3,
        shutdown_clients=40,
        held=25,
        invariant_examples=50,
        invariant_steps=40,
        deadline_s=900,
        storage_clients=30,
        storage_per_client=30,
        storage_pace_s=2.0,
        storage_outage_s=10.0,
        big_upload_mib=200,
        shared_documents=100,
    ),
}


def _scale() -> Scale:
    name = os.environ.get("RELIABILITY_SCALE", "ci")
    if name not in SCALES:
        raise pytest.UsageError(f"RELIABILITY_SCALE={name!r}: expected one of {', '.join(SCALES)}")
    return SCALES[name]


SCALE = _scale()
REPORT_KEY = pytest.StashKey[Report]()


def pytest_configure(config: pytest.Config) -> None:
    seed = int(os.environ.get("RELIABILITY_SEED") or time.time_ns() % 1_000_000)
    config.stash[REPORT_KEY] = Report(SCALE.name, seed)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    rep: pytest.TestReport = yield
    report = item.config.stash.get(REPORT_KEY, None)
    if report is None:
        return rep
    if rep.when == "call":
        report.outcome(item.nodeid, "xfailed" if hasattr(rep, "wasxfail") else rep.outcome, rep.duration)
    elif rep.outcome != "passed":
        report.outcome(item.nodeid, "error" if rep.outcome == "failed" else rep.outcome, 0.0)
    return rep


def pytest_sessionfinish(session: pytest.Session) -> None:
    report = session.config.stash.get(REPORT_KEY, None)
    if report is None or not any(e.outcome != "not run" for e in report.entries):
        return
    target = os.environ.get("RELIABILITY_REPORT")
    # `make test` runs files on several pytest-xdist workers: each writes the report of the tests it ran
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    name = f"reliability-{SCALE.name}-{worker}.md" if worker else f"reliability-{SCALE.name}.md"
    path = Path(target) if target else ROOT / "test-output" / name
    report.write(path if path.is_absolute() else ROOT / path)


@pytest.fixture(scope="session")
def scale() -> Scale:
    return SCALE


@pytest.fixture(scope="session")
def report(request: pytest.FixtureRequest) -> Report:
    return request.config.stash[REPORT_KEY]


@pytest.fixture
def entry(report: Report, request: pytest.FixtureRequest) -> Entry:
    """This test's entry in the report; its title is the test's docstring's first line."""
    doc = (request.function.__doc__ or request.node.name).strip().splitlines()[0].rstrip(".")
    params = getattr(request.node, "callspec", None)
    title = doc + (f" [{params.id}]" if params is not None else "")
    return report.entry(title, request.node.nodeid)


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    """A node (the product's node manager, as the embedded stack runs anvil) and a registry for the module."""
    tmp = tmp_path_factory.mktemp("chain")
    chain = Chain.start(tmp)
    yield chain
    chain.node.stop()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL cluster for the suite (the same set-up as tests/api's)."""
    reason = _pg_available()
    if reason:
        pytest.skip(reason)
    root = Path(tempfile.mkdtemp(prefix="docchain-rel-pg-"))
    data = root / "data"
    run_as: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root
        subprocess.run(["chown", "-R", "nobody", str(root)], check=True)
        run_as = ["runuser", "-u", "nobody", "--"]
    subprocess.run(
        [*run_as, str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    port = free_port()
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300"
    subprocess.run(
        [*run_as, str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-o", options, "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield PostgresCluster(root, port, True)
    finally:
        subprocess.run(
            [*run_as, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)
