"""Fixtures for the API tests: a real anvil node, a real database (SQLite file or a throwaway PostgreSQL
cluster), and the real service (``python -m docchain.api``) on a free port, driven over HTTP with httpx."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import (
    PG_BIN,
    Anvil,
    Api,
    Env,
    PostgresCluster,
    _deploy,
    _pg_available,
    free_port,
)

from docchain.chain import deploy


@pytest.fixture(scope="session")
def session_chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Anvil, deploy.Deployment]]:
    anvil = Anvil(tmp_path_factory.mktemp("anvil")).started()
    data_dir = tmp_path_factory.mktemp("chain")
    yield anvil, _deploy(anvil, data_dir)
    anvil.stop()


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresCluster]:
    reason = _pg_available()
    if reason:
        pytest.skip(reason)
    # not under pytest's tmp dir: that is private to root (0700), and postgres must not run as root
    root = Path(tempfile.mkdtemp(prefix="docchain-pg-"))
    data = root / "data"
    env = {**os.environ}
    run_as: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root: use an unprivileged account
        subprocess.run(["chown", "-R", "nobody", str(root)], check=True)
        run_as = ["runuser", "-u", "nobody", "--"]
    subprocess.run(
        [*run_as, str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"],
        check=True,
        capture_output=True,
        env=env,
    )
    port = free_port()
    subprocess.run(
        [
            *run_as,
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(root / "log"),
            "-w",
            "-o",
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            "start",
        ],
        check=True,
        capture_output=True,
        env=env,
    )
    try:
        yield PostgresCluster(root, port, True)
    finally:
        subprocess.run(
            [*run_as, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """At CI size, a module whose subject is not the database runs on the one backend its ``CI_BACKEND`` names;
    ``RELIABILITY_SCALE=full`` runs it on both. The database's own behaviour (the store, query plans, leases,
    wake-ups, races, concurrency, reorg rollback) keeps both backends at every size, as do the tests that pick
    their backend themselves (``postgres_only``, ``sqlite_only``)."""
    if os.environ.get("RELIABILITY_SCALE") == "full":
        return
    kept, deselected = [], []
    for item in items:
        backend = getattr(getattr(item, "module", None), "CI_BACKEND", None)
        callspec = getattr(item, "callspec", None)
        param = None if callspec is None else callspec.params.get("database_url")
        own = any(m.args and m.args[0] == "database_url" for m in item.iter_markers("parametrize"))
        (deselected if backend and param and param != backend and not own else kept).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """One database per test module and backend; tests share it (random documents and signers)."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('sqlite') / 'docchain.db'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return cluster.create_database()


@pytest.fixture(scope="module")
def env(
    session_chain: tuple[Anvil, deploy.Deployment], database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Env]:
    anvil, deployment = session_chain
    tmp_path = tmp_path_factory.mktemp("env")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    deploy.record(data_dir, deployment)
    env = Env(anvil, deployment, data_dir, database_url, tmp_path)
    yield env
    env.close()


@pytest.fixture(scope="module")
def api(env: Env) -> Iterator[Api]:
    server = env.api().start()
    yield server
    server.stop()


@pytest.fixture
def pg(env: Env, request: pytest.FixtureRequest) -> tuple[str, str]:
    """(libpq connection string of the module's database, its name); for ``postgres_only`` tests."""
    assert env.database_url.startswith("postgresql"), "mark the test @postgres_only"
    cluster = request.getfixturevalue("postgres")
    name = env.database_url.rsplit("/", 1)[1]
    return f"host=127.0.0.1 port={cluster.port} user=postgres dbname={name}", name


@pytest.fixture
def own_node(tmp_path: Path) -> Iterator[Anvil]:
    """An anvil of the test's own (the embedded stack's flags, --prune-history among them), on a fixed port
    so it can be stopped and started again at the same address."""
    node = Anvil(tmp_path / "anvil").started()
    yield node
    node.stop()


@pytest.fixture
def node_env(env: Env, own_node: Anvil, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Env]:
    """The registry on the test's own node, with a database of its own (the index and the relayer's
    transactions belong to one chain), on the same kind of database as ``env``."""
    data_dir = tmp_path / "data"
    if env.database_url.startswith("sqlite"):
        url = f"sqlite+aiosqlite:///{tmp_path / 'own-node.db'}"
    else:
        url = request.getfixturevalue("postgres").create_database()
    own = Env(own_node, _deploy(own_node, data_dir), data_dir, url, env.tmp)
    yield own
    own.close()
