"""The reliability suite's tools: a chain of a test's own (anvil through the product's node manager, the
registry deployed), databases, a load of many HTTP clients, the ledger that proves every accepted submission
was anchored exactly once, and the processes' peak memory.

Everything is real: ``python -m docchain.api`` as tests/api/api_support.py starts it, anvil, SQLite files and
a PostgreSQL cluster, HTTP on 127.0.0.1. Every loop is bounded in count and in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import os
import random
import signal
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from web3 import Web3

from docchain.chain import deploy
from tests.api.api_support import Api, Env, Signer, _deploy, new_signer
from tests.support import DevNode, free_port, poll

REGISTERED_TOPIC = "0x" + Web3.keccak(text="Registered(bytes32,address,bytes32,bytes32)").hex().removeprefix("0x")
ANCHORED = ("anchored", "confirmed")
Key = tuple[str, str]  # (docHash, signer), both lower-case hex


def key_of(doc_hash: str, signer: str) -> Key:
    return doc_hash.lower(), signer.lower()


# ---------------------------------------------------------------------------------------------- the chain


class HistoryNode(DevNode):
    """The product's node manager running anvil as the embedded stack does, but keeping ``history`` past states:
    ``anvil_reorg`` needs the state at the fork point, and on a node that keeps none (the product's default,
    ``--prune-history``) it answers success and changes nothing."""

    def __init__(self, data_dir: Path, history: int = 64) -> None:
        super().__init__(data_dir)
        self.config = dataclasses.replace(self.config, history_states=history)


@dataclass
class Chain:
    """A node and the registry deployed on it, for one test module or one test."""

    node: DevNode
    deployment: deploy.Deployment
    tmp: Path

    @classmethod
    def start(cls, tmp: Path, node: DevNode | None = None) -> Chain:
        node = node or DevNode(tmp / "node")
        if not node.is_running():
            node.start()
        data_dir = tmp / "deploy"
        data_dir.mkdir(parents=True, exist_ok=True)
        return cls(node, _deploy(node, data_dir), tmp)

    def env(self, database_url: str, name: str) -> Env:
        """A data dir, log and database of its own on this chain (the relayer's transactions and the index
        belong to one chain: one database per chain, and one per test so the ledger sees only its own rows)."""
        tmp = self.tmp / name
        data_dir = tmp / "data"
        data_dir.mkdir(parents=True)
        deploy.record(data_dir, self.deployment)
        return Env(self.node, self.deployment, data_dir, database_url, tmp)

    def rpc(self, method: str, params: list[Any] | None = None) -> Any:
        r = httpx.post(self.node.url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
        body = r.json()
        if "error" in body:
            raise AssertionError(f"{method}: {body['error']}")
        return body.get("result")

    def head(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)

    def block_hash(self, number: int) -> str | None:
        block = self.rpc("eth_getBlockByNumber", [hex(number), False])
        return None if block is None else str(block["hash"]).lower()

    def registered(self) -> dict[Key, list[tuple[int, str]]]:
        """Every Registered event of the registry in the canonical chain: (docHash, signer) -> [(block, hash)]."""
        logs = self.rpc(
            "eth_getLogs",
            [
                {
                    "address": self.deployment.address,
                    "fromBlock": hex(self.deployment.block_number),
                    "toBlock": "latest",
                    "topics": [REGISTERED_TOPIC],
                }
            ],
        )
        out: dict[Key, list[tuple[int, str]]] = {}
        for log in logs:
            doc, signer = log["topics"][1], "0x" + log["topics"][2][-40:]
            out.setdefault(key_of(doc, signer), []).append((int(log["blockNumber"], 16), log["blockHash"].lower()))
        return out


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


# ---------------------------------------------------------------------------------------------- the database


class DbProbe:
    """Read-only SQL on the API's own database (SQLite file or PostgreSQL), for the ledger's bulk checks."""

    def __init__(self, url: str) -> None:
        self.url = url

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        if self.url.startswith("sqlite"):
            # an ordinary connection (only SELECTs are run): a read-only one (mode=ro) cannot rebuild the WAL
            # index when it needs it and waits on the busy handler until a writer does, which took up to ~40 s
            # on an idle API and was then reported as recovery time
            path = self.url.split(":///", 1)[1]
            with contextlib.closing(sqlite3.connect(path, timeout=10)) as c:
                return list(c.execute(sql).fetchall())
        import psycopg

        rest = self.url.split("://", 1)[1]  # postgres@127.0.0.1:PORT/NAME
        user, hostpart = rest.split("@", 1)
        hostport, name = hostpart.split("/", 1)
        host, port = hostport.split(":")
        with psycopg.connect(f"host={host} port={port} user={user} dbname={name}", connect_timeout=10) as c:
            return list(c.execute(sql).fetchall())  # type: ignore[arg-type]

    def states(self) -> Counter[str]:
        return Counter(
            {str(state): int(n) for state, n in self.rows("SELECT state, count(*) FROM submissions GROUP BY state")}
        )

    def submissions(self) -> dict[Key, list[tuple[str, str, int | None, str | None]]]:
        out: dict[Key, list[tuple[str, str, int | None, str | None]]] = {}
        for sid, doc, signer, state, number, block_hash in self.rows(
            "SELECT id, doc_hash, signer, state, block_number, block_hash FROM submissions"
        ):
            out.setdefault(key_of(doc, signer), []).append((sid, state, number, block_hash))
        return out

    def indexed(self) -> Counter[Key]:
        return Counter(
            key_of(doc, signer)
            for doc, signer in self.rows("SELECT doc_hash, signer FROM events WHERE kind = 'Registered'")
        )


# ---------------------------------------------------------------------------------------------- the ledger


@dataclass
class Tally:
    accepted: int = 0
    anchored: int = 0
    lost: list[Key] = field(default_factory=list)  # accepted, yet not anchored on chain, in the table and the index
    duplicated: list[str] = field(default_factory=list)
    stale_block: list[str] = field(default_factory=list)  # anchored at a block the chain no longer holds
    failed: list[str] = field(default_factory=list)
    unknown_rows: int = 0
    # Merkle mode (tests/reliability/anchoring.py): anchored, yet the receipt's proof fails in Python or on chain
    unproven: list[str] = field(default_factory=list)
    roots: int = 0  # canonical roots anchored during the run
    leaves: int = 0  # their leaf counts, summed


def wait_all_anchored(probe: DbProbe, expected: int, timeout: float, what: str) -> float:
    """Poll the database until ``expected`` submissions are anchored and none is waiting; the seconds it took."""
    start = time.monotonic()

    def done() -> bool:
        states = probe.states()
        waiting = sum(n for s, n in states.items() if s not in (*ANCHORED, "failed", "revoked"))
        return waiting == 0 and sum(states[s] for s in ANCHORED) >= expected

    poll(done, timeout, interval=0.25, what=what)
    return time.monotonic() - start


def anchored_rows(probe: DbProbe, ids: list[str] | None = None) -> dict[str, tuple[int, str]]:
    """Anchored submissions (of ``ids``, or all): id -> (block number, block hash)."""
    where = ""
    if ids is not None:
        if not ids:
            return {}
        where = " AND id IN (" + ",".join("'" + i.replace("'", "") + "'" for i in ids) + ")"
    rows = probe.rows(
        "SELECT id, block_number, block_hash FROM submissions WHERE state IN ('anchored', 'confirmed')" + where
    )
    return {str(i): (int(n), str(h).lower()) for i, n, h in rows}


def metric(api: Api, name: str) -> float:
    """A Prometheus sample of the API's /metrics (the pipeline's included); 0 when absent."""
    for line in api.get("/metrics").text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def ledger(chain: Chain, probe: DbProbe, accepted: dict[Key, str]) -> Tally:
    """Every accepted submission against the chain's Registered events, the submissions table and the index:
    each anchored exactly once, at a block that is still in the canonical chain."""
    on_chain = chain.registered()
    rows = probe.submissions()
    indexed = probe.indexed()
    tally = Tally(accepted=len(accepted))
    for key, sid in accepted.items():
        mine = rows.get(key, [])
        events = on_chain.get(key, [])
        if len(mine) > 1:
            tally.duplicated.append(f"{key}: {len(mine)} submissions")
        if len(events) > 1:
            tally.duplicated.append(f"{key}: {len(events)} Registered events on chain")
        if indexed[key] > 1:
            tally.duplicated.append(f"{key}: indexed {indexed[key]} times")
        if not mine or not events or indexed[key] == 0:
            tally.lost.append(key)
            continue
        row_id, state, number, block_hash = mine[0]
        if row_id != sid:
            tally.duplicated.append(f"{key}: answered as {sid}, stored as {row_id}")
        if state == "failed":
            tally.failed.append(f"{key} ({row_id})")
            continue
        if state not in ANCHORED:
            tally.lost.append(key)
            continue
        tally.anchored += 1
        if (number, (block_hash or "").lower()) not in events:
            tally.stale_block.append(f"{key}: block {number} {block_hash}")
    tally.unknown_rows = len(set(rows) - set(accepted))
    return tally


# ---------------------------------------------------------------------------------------------- processes


def children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(entry.name))
    return out


def pipeline_pid(api: Api) -> int | None:
    """The API's anchoring child (``python -m docchain.api.pipeline``), if it runs now."""
    if api.proc is None:
        return None
    for pid in children(api.proc.pid):
        with contextlib.suppress(OSError):
            if b"docchain.api.pipeline" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
    return None


def peak_rss(pid: int | None) -> int | None:
    """The process's peak resident set (the kernel's high-water mark, VmHWM) in bytes."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def kill_api(api: Api, *, child: bool = True) -> int | None:
    """SIGKILL the API (and its anchoring child first, when ``child``): a crash, nothing flushed. An orphaned
    child that survives finishes its step and exits when its stdin closes; it is waited for (bounded)."""
    assert api.proc is not None
    orphan = pipeline_pid(api)
    if child and orphan is not None:
        os.kill(orphan, signal.SIGKILL)
    api.proc.kill()
    api.proc.wait(10)
    api.proc = None
    if orphan is not None:
        poll(lambda: not alive(orphan), 30, what=f"the pipeline child {orphan} to end")
    return orphan


def server_5xx(log: Path, allowed: tuple[int, ...] = (503,)) -> list[str]:
    """Every request the API logged with a 5xx status (the structured log survives a SIGKILL), but ``allowed``:
    a 503 is the right answer while something is down, and its clients check it is a clean one (problem+json
    with Retry-After), which the log line does not show."""
    out: list[str] = []
    if not log.exists():
        return out
    for line in log.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            status = entry.get("status")
            if isinstance(status, int) and status >= 500 and status not in allowed:
                out.append(f"{entry.get('method')} {entry.get('path')} -> {status}")
    return out


# ---------------------------------------------------------------------------------------------- load


@dataclass(eq=False)
class Body:
    """One submission a client will send: JSON, or multipart with the file to store."""

    signer: Signer
    doc_hash: bytes
    payload: dict[str, Any]
    content: bytes | None = None  # multipart with the file when set

    @property
    def key(self) -> Key:
        return key_of("0x" + self.doc_hash.hex(), self.signer.address)


def plan(domain: Any, clients: int, per_client: int, files_every: int = 10) -> list[list[Body]]:
    """Each client signs its own documents with its own key (one person or application per client)."""
    out = []
    for _ in range(clients):
        signer = new_signer()
        mine = []
        for i in range(per_client):
            content = os.urandom(48)
            doc = hashlib.sha256(content).digest()
            mine.append(
                Body(
                    signer,
                    doc,
                    signer.registration(domain, doc),
                    content if files_every and i % files_every == 0 else None,
                )
            )
        out.append(mine)
    return out


@dataclass
class Load:
    """What a load saw: every answer by (call, status), the accepted submissions, anything that went wrong."""

    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)  # transport errors by call and kind
    fivexx: list[str] = field(default_factory=list)  # 5xx that are not a clean 503 + Retry-After
    unavailable: int = 0  # clean 503 problem+json with Retry-After
    accepted: dict[Key, str] = field(default_factory=dict)
    conflicts: list[str] = field(default_factory=list)  # a 200 naming another submission than the 202 did
    refused: list[str] = field(default_factory=list)  # a valid submission answered 4xx (other than 429)
    given_up: list[Key] = field(default_factory=list)
    requests: int = 0
    elapsed: float = 0.0
    timeline: list[tuple[float, float, str, int | str]] = field(default_factory=list)  # (start, end, call, outcome)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def calls(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for (call, _), n in self.statuses.items():
            out[call] += n
        return out


def clean_503(r: httpx.Response) -> bool:
    return (
        r.status_code == 503
        and "retry-after" in r.headers
        and r.headers.get("content-type", "").startswith("application/problem+json")
    )


class Clients:
    """``plans[i]`` is client i's submissions; client i talks to ``urls[i % len(urls)]`` with API key
    ``keys[i]``. Between submissions each client verifies an earlier document, lists its records and reads a
    submission's status. A submission whose answer never came (connection refused or cut, a clean 503, a
    429) is sent again, the same body, until accepted, up to ``attempts`` times and the deadline."""

    def __init__(
        self,
        urls: list[str] | Callable[[], list[str]],
        plans: list[list[Body]],
        keys: list[str],
        *,
        deadline_s: float,
        attempts: int = 200,
        mix: bool = True,
        rng: random.Random | None = None,
        pace_s: float = 0.0,
    ) -> None:
        self.urls = urls
        self.plans = plans
        self.keys = keys
        self.deadline_s = deadline_s
        self.attempts = attempts
        self.mix = mix
        self.pace_s = pace_s  # a client's think time between submissions (random, up to this): spreads the load
        self.rng = rng or random.Random(0)
        self.load = Load()
        self.stop = threading.Event()
        self.started = time.monotonic()
        self._thread: threading.Thread | None = None

    # -- running -------------------------------------------------------------------------------------

    def run(self) -> Load:
        asyncio.run(self._all())
        return self.load

    def start(self) -> Clients:
        """Run the clients in a thread of their own (its own event loop) while the test injects faults."""
        self._thread = threading.Thread(target=self.run, name="load", daemon=True)
        self._thread.start()
        return self

    def join(self, timeout: float) -> Load:
        assert self._thread is not None
        self._thread.join(timeout)
        if self._thread.is_alive():
            self.stop.set()
            self._thread.join(30)
            raise AssertionError(f"the load did not finish within {timeout:.0f} s")
        return self.load

    def accepted_count(self) -> int:
        with self.load.lock:
            return len(self.load.accepted)

    def finished(self) -> bool:
        return self._thread is not None and not self._thread.is_alive()

    def progressed(self, since: int) -> bool:
        """More submissions accepted than ``since``, or nothing more to send."""
        return self.accepted_count() > since or self.finished()

    async def _all(self) -> None:
        self.started = time.monotonic()
        limits = httpx.Limits(max_connections=4, max_keepalive_connections=4)
        await asyncio.gather(*(self._client(i, mine, limits) for i, mine in enumerate(self.plans)))
        self.load.elapsed = time.monotonic() - self.started

    def _url(self, i: int) -> str:
        urls = self.urls() if callable(self.urls) else self.urls
        return urls[i % len(urls)]

    def _over(self) -> bool:
        return self.stop.is_set() or time.monotonic() - self.started > self.deadline_s

    async def _client(self, i: int, mine: list[Body], limits: httpx.Limits) -> None:
        headers = {"X-API-Key": self.keys[i % len(self.keys)]} if self.keys else {}
        async with httpx.AsyncClient(timeout=60, limits=limits, headers=headers) as http:
            done: list[tuple[Body, str]] = []
            for n, body in enumerate(mine):
                if self._over():
                    return
                if self.pace_s:
                    await asyncio.sleep(self.rng.uniform(0, self.pace_s))
                sid = await self._submit(http, i, body)
                if sid is None:
                    continue
                done.append((body, sid))
                if not self.mix:
                    continue
                if n % 2 == 0:
                    earlier, _ = self.rng.choice(done)
                    verify = {"docHash": "0x" + earlier.doc_hash.hex(), "signer": earlier.signer.address}
                    await self._call(http, i, "verify", "POST", "/v1/verify", json=verify)
                if n % 3 == 0:
                    await self._call(http, i, "list", "GET", "/v1/documents", params={"signer": body.signer.address})
                if n % 5 == 0:
                    _, earlier_id = self.rng.choice(done)
                    await self._call(http, i, "status", "GET", f"/v1/submissions/{earlier_id}")

    async def _call(
        self, http: httpx.AsyncClient, i: int, call: str, method: str, path: str, **kw: Any
    ) -> httpx.Response | None:
        start = time.monotonic()
        try:
            r = await http.request(method, self._url(i) + path, **kw)
        except httpx.TransportError as exc:
            self._note(call, start, type(exc).__name__)
            return None
        self._note(call, start, r.status_code, r)
        return r

    def _note(self, call: str, start: float, outcome: int | str, r: httpx.Response | None = None) -> None:
        end = time.monotonic()
        with self.load.lock:
            self.load.requests += 1
            self.load.timeline.append((start, end, call, outcome))
            if isinstance(outcome, str):
                self.load.errors[f"{call}: {outcome}"] += 1
                return
            self.load.statuses[(call, outcome)] += 1
            if r is not None and outcome >= 500:
                if clean_503(r):
                    self.load.unavailable += 1
                else:
                    self.load.fivexx.append(
                        f"{call} {r.request.method} {r.request.url.path} -> {outcome}: {r.text[:300]}"
                    )

    async def _submit(self, http: httpx.AsyncClient, i: int, body: Body) -> str | None:
        for attempt in range(self.attempts):
            if self._over():
                break
            if body.content is None:
                r = await self._call(http, i, "submit", "POST", "/v1/documents", json=body.payload)
            else:
                files = {
                    "submission": (None, json.dumps(body.payload), "application/json"),
                    "file": ("document.bin", body.content, "application/octet-stream"),
                }
                r = await self._call(http, i, "submit", "POST", "/v1/documents", files=files)
            if r is not None and r.status_code in (200, 202):
                sid = str(r.json()["id"])
                with self.load.lock:
                    known = self.load.accepted.setdefault(body.key, sid)
                    if known != sid:
                        self.load.conflicts.append(f"{body.key}: {known} then {sid}")
                return sid
            if r is not None and r.status_code not in (429, 503) and r.status_code < 500:
                with self.load.lock:
                    self.load.refused.append(f"{r.status_code} {r.text[:300]}")
                return None
            retry_after = 0.0
            if r is not None:
                with contextlib.suppress(ValueError):
                    retry_after = float(r.headers.get("retry-after", "0"))
            # back off: the server is restarting, overloaded or down (bounded by attempts and the deadline)
            await asyncio.sleep(min(max(retry_after, 0.05 * (attempt + 1)), 2.0))
        with self.load.lock:
            self.load.given_up.append(body.key)
        return None


def api_keys(n: int) -> list[str]:
    """One API key per client: each client is one application with its own key and its own quota."""
    return [f"reliability-{i:04d}-{os.urandom(6).hex()}" for i in range(n)]


def start_together(*apis: Api) -> None:
    """Start API processes at the same time (each start waits for its own health check): replicas are up in
    about the time one takes."""
    with ThreadPoolExecutor(len(apis)) as pool:
        list(pool.map(Api.start, apis))


@contextlib.contextmanager
def servers(*apis: Api) -> Iterator[None]:
    try:
        yield
    finally:
        for api in apis:
            if api.proc is not None:
                api.stop(signal.SIGKILL)


def mib(n: int | None) -> str:
    return "n/a" if n is None else f"{n / 2**20:.0f} MiB"


__all__ = [
    "ANCHORED",
    "Api",
    "Body",
    "Chain",
    "Clients",
    "DbProbe",
    "Env",
    "HistoryNode",
    "Load",
    "Tally",
    "alive",
    "api_keys",
    "clean_503",
    "free_port",
    "kill_api",
    "ledger",
    "mib",
    "peak_rss",
    "pipeline_pid",
    "plan",
    "poll",
    "server_5xx",
    "sqlite_url",
    "start_together",
    "wait_all_anchored",
]


# ---------------------------------------------------------------------------------------------- verdicts


def book(entry: Any, load: Load | None, tally: Tally, logged_5xx: list[str]) -> None:
    """Write a run's ledger into its report entry (before any assertion, so a failure still reports)."""
    entry.accepted = tally.accepted
    entry.lost = len(tally.lost) + len(tally.failed) + len(tally.unproven)  # a leaf nobody can prove is lost
    entry.duplicated = len(tally.duplicated) + (len(load.conflicts) if load else 0)
    entry.fivexx_client = len(load.fivexx) if load else 0
    entry.fivexx_server = len(logged_5xx)
    if tally.roots:
        entry.held.append(
            f"Merkle mode: {tally.anchored:,} submissions anchored as leaves of {tally.roots:,} roots "
            f"({tally.leaves / tally.roots:.1f} leaves a root); each receipt's proof checked in Python and by one "
            "eth_call of verifyMerkleRegistration"
        )
    if load is not None:
        calls = load.calls()
        rate = load.requests / load.elapsed if load.elapsed else 0.0
        entry.held.append(
            f"{load.requests:,} requests in {load.elapsed:.1f} s ({rate:,.0f}/s): "
            + ", ".join(f"{n:,} {call}" for call, n in sorted(calls.items()))
            + (f"; {load.unavailable} clean 503s (problem+json, Retry-After)" if load.unavailable else "")
        )
        statuses = Counter({f"{call} {status}": n for (call, status), n in load.statuses.items()})
        entry.table(
            "Answers seen by the clients:",
            ["call and status", "count"],
            [[k, f"{n:,}"] for k, n in sorted(statuses.items())]
            + [[f"{k} (no answer)", f"{n:,}"] for k, n in sorted(load.errors.items())],
        )


def assert_exactly_once(load: Load | None, tally: Tally, logged_5xx: list[str]) -> None:
    assert not tally.lost, f"{len(tally.lost)} accepted submissions not anchored: {tally.lost[:5]}"
    assert not tally.failed, f"{len(tally.failed)} accepted submissions failed: {tally.failed[:5]}"
    assert not tally.duplicated, f"duplicates: {tally.duplicated[:5]}"
    assert not tally.stale_block, (
        f"{len(tally.stale_block)} records name a block no longer in the chain: {tally.stale_block[:5]}"
    )
    assert not tally.unproven, f"{len(tally.unproven)} anchored submissions not proven: {tally.unproven[:5]}"
    if load is not None:
        assert not load.conflicts, f"one record answered as two submissions: {load.conflicts[:5]}"
        assert not load.given_up, f"{len(load.given_up)} submissions were never accepted: {load.given_up[:5]}"
        assert not load.refused, f"{len(load.refused)} valid submissions refused, e.g. {load.refused[:3]}"
        assert not load.fivexx, f"{len(load.fivexx)} 5xx answers, e.g. {load.fivexx[:3]}"
    assert not logged_5xx, f"{len(logged_5xx)} requests logged with 5xx by the API, e.g. {logged_5xx[:5]}"
