"""Fixtures for the API tests: a real anvil node, a real database (SQLite file or a throwaway PostgreSQL
cluster), and the real service (``python -m docchain.api``) on a free port, driven over HTTP with httpx."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from web3 import HTTPProvider, Web3

from docchain.chain import deploy
from docchain.chain.registry import Registry
from docchain.chain.sender import TxSender
from docchain.chain.typed_data import Domain, Registration, Revocation, address_of, sign
from tests.support import DevNode, free_port, poll

ROOT = Path(__file__).resolve().parents[2]
# anvil's first dev account: a public test key, passed explicitly as the relayer (there is no default)
DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
PG_BIN = Path(os.environ.get("DOCCHAIN_PG_BIN", "/usr/local/bin"))
RELAYER_LIMITS = (
    "KEY_RATE_PER_MINUTE",
    "KEY_DAILY_QUOTA",
    "SIGNER_RATE_PER_MINUTE",
    "SIGNER_DAILY_QUOTA",
)


# ---------------------------------------------------------------------------------------------- node


Anvil = DevNode  # the API tests' name for it


def _deploy(anvil: Anvil, data_dir: Path) -> deploy.Deployment:
    w3 = Web3(HTTPProvider(anvil.url))
    sender = TxSender(w3, bytes.fromhex(DEV_KEY[2:]))
    deployment, _ = deploy.ensure_deployed(sender, data_dir)
    return deployment


# ---------------------------------------------------------------------------------------------- databases


@dataclass
class PostgresCluster:
    root: Path
    port: int
    proc_started: bool = False

    def url(self, name: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{name}"

    def create_database(self) -> str:
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as c:
            c.execute(f"CREATE DATABASE {name}")
        return self.url(name)


def _pg_available() -> str | None:
    for tool in ("initdb", "pg_ctl", "postgres"):
        if not (PG_BIN / tool).exists():
            return f"PostgreSQL binary {PG_BIN / tool} is missing"
    return None


# ---------------------------------------------------------------------------------------------- the API


@dataclass
class Api:
    port: int
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.url, timeout=30)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Api:
        with open(self.log, "ab") as out:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "docchain.api", "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

        def up() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"the API exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            return httpx.get(self.url + "/healthz", timeout=1).status_code == 200

        poll(up, 30, what="the API")
        return self

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc is None:
            return 0
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.proc = None
        return code

    # helpers
    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.get(path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.post(path, **kw)

    def wait_state(self, sid: str, states: tuple[str, ...], timeout: float = 30) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            body = self.get(f"/v1/submissions/{sid}", params={"wait": 2, "until": "anchored"}).json()
            return body if body["state"] in states else None

        return poll(reached, timeout, interval=0.01, what=f"submission {sid} to reach {states}")


@dataclass
class Env:
    anvil: Anvil
    deployment: deploy.Deployment
    data_dir: Path
    database_url: str
    tmp: Path
    servers: list[Api] = field(default_factory=list)  # every API started here, stopped by close()

    @property
    def domain(self) -> Domain:
        return Domain(chain_id=31337, verifying_contract=self.deployment.address)

    def api_env(self, **overrides: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCCHAIN_")}
        env.update(
            {
                "DOCCHAIN_RPC_URL": self.anvil.url,
                "DOCCHAIN_DATA_DIR": str(self.data_dir),
                "DOCCHAIN_DATABASE_URL": self.database_url,
                "DOCCHAIN_RELAYER_KEY": DEV_KEY,
                "DOCCHAIN_CONFIRMATIONS": "2",
                "DOCCHAIN_BATCH_INTERVAL_MS": "30",
                "DOCCHAIN_POLL_INTERVAL_MS": "30",
                "DOCCHAIN_MAX_UPLOAD_BYTES": str(1024 * 1024),
                "DOCCHAIN_LOG_FILE": str(self.tmp / "api.log.jsonl"),
                "DOCCHAIN_LOG_LEVEL": "INFO",
                # the suites load the API from one address, far past one client's limits: off here, and
                # specified in test_relayer_limits
                **{f"DOCCHAIN_{limit}": "0" for limit in RELAYER_LIMITS},
            }
        )
        env.update(overrides)
        return env

    def api(self, **overrides: str) -> Api:
        server = Api(free_port(), self.api_env(**overrides), self.tmp / "api.out")
        self.servers.append(server)
        return server

    def stop_servers(self, sig: int = signal.SIGTERM) -> None:
        """Stop every API started here (stopping a stopped one does nothing)."""
        for server in self.servers:
            server.stop(sig)

    def close(self) -> None:
        """Stop whatever a failed test left running: an orphaned API would keep anchoring on the shared node."""
        self.stop_servers(signal.SIGKILL)

    def registry(self) -> Registry:
        return Registry(Web3(HTTPProvider(self.anvil.url)), self.deployment.address)


# ---------------------------------------------------------------------------------------------- signing


@dataclass
class Signer:
    key: bytes

    @property
    def address(self) -> str:
        return address_of(self.key)

    def registration(self, domain: Domain, doc_hash: bytes, deadline: int | None = None, **kw: Any) -> dict[str, Any]:
        reg = Registration(doc_hash=doc_hash, signer=self.address, deadline=deadline or int(time.time()) + 3600, **kw)
        return {"registration": reg.to_json(), "signature": "0x" + sign(domain, reg, self.key).hex()}

    def revocation(self, domain: Domain, doc_hash: bytes, nonce: int) -> dict[str, Any]:
        rev = Revocation(doc_hash=doc_hash, signer=self.address, nonce=nonce, deadline=int(time.time()) + 3600)
        return {"revocation": rev.to_json(), "signature": "0x" + sign(domain, rev, self.key).hex()}


def new_signer() -> Signer:
    return Signer(os.urandom(32))


def random_doc() -> tuple[bytes, bytes]:
    import hashlib

    content = os.urandom(64)
    return content, hashlib.sha256(content).digest()


def submit_many(server: Api, env: Env, n: int) -> list[tuple[str, str, str]]:
    """``n`` documents, each by a fresh signer, accepted (202): their (submission id, docHash, signer)."""
    out = []
    for _ in range(n):
        signer = new_signer()
        _, doc = random_doc()
        r = server.post("/v1/documents", json=signer.registration(env.domain, doc))
        assert r.status_code == 202, r.text
        out.append((r.json()["id"], "0x" + doc.hex(), signer.address))
    return out


# Tests of PostgreSQL-only behaviour (advisory locks, outages) take only conftest's "postgres" database_url,
# so they neither run twice nor show as skipped under SQLite (database_url keeps its module scope: they
# share the module's PostgreSQL database and env with the module's other tests). Use with the ``pg`` fixture.
postgres_only = pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)

# For behaviour that no database choice can change (a key read at start, the node going away): one run on
# SQLite is the whole test, and a second on PostgreSQL would only double its time.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@contextmanager
def database_outage(dsn: str, name: str, *, spare: int = -1) -> Iterator[None]:
    """Until exit, PostgreSQL database ``name`` (``dsn`` connects to it) refuses new connections, and every
    session on it but the backend ``spare`` is ended on entry."""
    import psycopg

    admin = dsn.replace(f"dbname={name}", "dbname=postgres")
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        try:
            c.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> %s", (name, spare)
            )
            yield
        finally:
            c.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
