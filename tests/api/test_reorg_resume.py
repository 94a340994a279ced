"""Anchoring resumes within seconds after the chain under it changed: the node restarted (gracefully, or
killed and back from its last state dump, which loses its latest blocks and rewinds the relayer's nonce),
blocks holding anchors removed by ``anvil_reorg``, or by ``evm_snapshot`` / ``evm_revert`` and a longer
chain. Each time under a small load of submissions, in direct mode and in Merkle mode, where the blocks lost hold
``anchorRoot`` transactions.

Recovery is the time from the node being back (or the reorg done) until every submission accepted so far is
anchored in a block of the current chain, a submission made after the fault included. The issue bounds it:
a few seconds, asserted here as at most :data:`RECOVERY_BOUND_S`. (It took ~30 s: a transaction the node no
longer had waited for the 30 s re-send timer, and new ones took a nonce the node did not expect.)
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_support import Anvil, Api, Env, _deploy, new_signer, poll, random_doc

from tests.reliability.anchoring import api_env, fetch_answers, merkle_ledger
from tests.reliability.harness import Chain, DbProbe, assert_exactly_once, key_of, server_5xx, wait_all_anchored

# The bound is "within a few seconds of the node being back": RELIABILITY_SCALE=full holds it to 10 s
# (docs/reliability.md measures 0.1-2 s on a quiet host). At CI size four test workers share two cores with the
# nodes and databases, and recovery has taken 11 s there; 20 s still fails the fault this file guards against,
# the ~30 s re-send timer a forgotten transaction used to wait for.
RECOVERY_BOUND_S = 10.0 if os.environ.get("RELIABILITY_SCALE") == "full" else 20.0
# At CI size each fault runs on one database, both at full size: the fault is the chain's, and the pipeline's
# recovery from it is one code path over either store.
CI_DATABASE = {"graceful": "sqlite", "killed": "postgres", "anvil_reorg": "sqlite", "snapshot_revert": "postgres"}
LOAD_PACE_S = 0.05  # a small load: about 20 submissions a second, each by a fresh signer
LOAD_MAX = 2000  # submissions the load makes at most, whatever happens


class Load:
    """One client submitting documents at a steady pace (fresh signers) until stopped."""

    def __init__(self, server: Api, env: Env) -> None:
        self.server, self.env = server, env
        self.accepted: list[str] = []
        self.refused: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load")

    def _run(self) -> None:
        with httpx.Client(base_url=self.server.url, timeout=30) as http:
            for _ in range(LOAD_MAX):
                if self._stop.wait(LOAD_PACE_S):
                    return
                body = new_signer().registration(self.env.domain, random_doc()[1])
                r = http.post("/v1/documents", json=body)
                (self.accepted if r.status_code == 202 else self.refused).append(r.json().get("id", r.text))

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(60)


def _rpc(node: Anvil, method: str, params: list[Any] | None = None) -> Any:
    body = httpx.post(node.url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).json()
    assert "error" not in body, f"{method}: {body['error']}"
    return body["result"]


def _head(node: Anvil) -> int:
    return int(_rpc(node, "eth_blockNumber"), 16)


def _block_hash(node: Anvil, number: int) -> str | None:
    block = _rpc(node, "eth_getBlockByNumber", [hex(number), False])
    return None if block is None else str(block["hash"])


def _block_hashes(node: Anvil, numbers: set[int]) -> dict[int, str | None]:
    """The hashes of many blocks in one JSON-RPC batch."""
    if not numbers:
        return {}
    batch = [{"jsonrpc": "2.0", "id": n, "method": "eth_getBlockByNumber", "params": [hex(n), False]} for n in numbers]
    replies = httpx.post(node.url, json=batch, timeout=30).json()
    return {r["id"]: None if r.get("result") is None else str(r["result"]["hash"]) for r in replies}


def _on_chain(node: Anvil, status: dict[str, Any]) -> bool:
    """Anchored, in a block that is part of the node's current chain."""
    if status["state"] not in ("anchored", "confirmed") or status["blockNumber"] is None:
        return False
    return _block_hash(node, status["blockNumber"]) == status["blockHash"]


class Probe:
    """Reads the submissions' anchors straight from the API's database (read-only): polling each one over
    HTTP took seconds per round under load, longer than the recovery it measures."""

    def __init__(self, url: str) -> None:
        self.url = url

    def anchors(self, ids: list[str]) -> dict[str, tuple[str, int | None, str | None]]:
        marks = ", ".join(["?" if self.url.startswith("sqlite") else "%s"] * len(ids))
        sql = f"SELECT id, state, block_number, block_hash FROM submissions WHERE id IN ({marks})"
        if self.url.startswith("sqlite"):
            path = self.url.split(":///", 1)[1]
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
                rows = conn.execute(sql, ids).fetchall()
        else:
            import psycopg

            dsn = self.url.replace("postgresql+asyncpg://", "postgresql://")
            with psycopg.connect(dsn) as conn:
                rows = conn.execute(sql, ids).fetchall()
        return {sid: (state, number, block_hash) for sid, state, number, block_hash in rows}


def _recovered(server: Api, env: Env, load: Load, since: float, what: str) -> float:
    """Seconds from ``since`` until a fresh submission and everything the load had accepted are anchored in
    the current chain; fails past the bound."""
    node, probe = env.anvil, Probe(env.database_url)
    r = server.post("/v1/documents", json=new_signer().registration(env.domain, random_doc()[1]))
    assert r.status_code == 202, r.text
    ids = [*load.accepted, r.json()["id"]]

    def done() -> bool:
        anchors = probe.anchors(ids)
        assert all(state != "failed" for state, _, _ in anchors.values()), anchors
        hashes = _block_hashes(node, {n for _, n, _ in anchors.values() if n is not None})
        return len(anchors) == len(ids) and all(
            state in ("anchored", "confirmed") and number is not None and hashes[number] == block_hash
            for state, number, block_hash in anchors.values()
        )

    poll(done, RECOVERY_BOUND_S + 20, interval=0.05, what=f"anchoring to resume after {what}")
    took = time.monotonic() - since
    print(f"\n{what}: recovered in {took:.2f} s ({len(ids)} submissions)")
    return took


@pytest.fixture
def history_node(tmp_path: Path) -> Iterator[Anvil]:
    """anvil as the embedded stack runs it, but keeping past states: anvil_reorg needs the state at the fork
    point (on a node that keeps none it answers success and changes nothing)."""
    node = Anvil(tmp_path / "anvil")
    node.config = dataclasses.replace(node.config, history_states=64)
    node.start()
    yield node
    node.stop()


@pytest.fixture
def one_database_at_ci(env: Env, request: pytest.FixtureRequest) -> None:
    """Skip a direct-mode fault on the database CI does not run it on (before its node starts)."""
    params = request.node.callspec.params
    fault = params.get("how") or params.get("kind")
    backend = "sqlite" if env.database_url.startswith("sqlite") else "postgres"
    if os.environ.get("RELIABILITY_SCALE") != "full" and CI_DATABASE[fault] != backend:
        pytest.skip(f"{fault} on {backend}: RELIABILITY_SCALE=full (CI size runs it on {CI_DATABASE[fault]})")


@pytest.fixture
def chain_env(env: Env, history_node: Anvil, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Env]:
    """The registry on the history node, with a database of its own, of the same kind as ``env``'s."""
    data_dir = tmp_path / "data"
    if env.database_url.startswith("sqlite"):
        url = f"sqlite+aiosqlite:///{tmp_path / 'own-node.db'}"
    else:
        url = request.getfixturevalue("postgres").create_database()
    own = Env(history_node, _deploy(history_node, data_dir), data_dir, url, env.tmp)
    yield own
    own.close()


def _start(env: Env) -> Api:
    return env.api(DOCCHAIN_CONFIRMATIONS="2").start()


def _warm(server: Api, node: Anvil, load: Load) -> None:
    """The load is flowing and anchoring."""
    poll(lambda: len(load.accepted) >= 10, 30, interval=0.01, what="submissions accepted")
    first = load.accepted[0]
    poll(lambda: _on_chain(node, server.get(f"/v1/submissions/{first}").json()), 30, what="the load anchored")


def _kill(node: Anvil) -> None:
    """A crash: SIGKILL, so anvil writes no state on the way out: it restarts from its last periodic dump
    (``--state-interval``), which is waited for here, so that it holds the registry and the first anchors and
    the restart loses only the blocks mined since."""
    assert node.pid is not None
    state, since = node.config.state_path, time.time()
    poll(lambda: state.exists() and state.stat().st_mtime > since, 30, what="anvil's next periodic state dump")
    dumped = _head(node)
    poll(lambda: _head(node) >= dumped + 3, 30, what="blocks the crash will lose")
    os.killpg(node.pid, signal.SIGKILL)
    poll(lambda: node._proc is not None and node._proc.poll() is not None, 10, what="anvil to die")
    node.stop()


RESTARTS: dict[str, Callable[[Anvil], None]] = {"graceful": lambda node: node.stop(), "killed": _kill}


def _restart(server: Api, env: Env, node: Anvil, load: Load, how: str) -> float:
    """Stop the node under the load (``how``: graceful or killed) and start it again; the seconds until anchoring
    recovered."""
    _warm(server, node, load)
    RESTARTS[how](node)
    accepted = len(load.accepted)
    poll(lambda: len(load.accepted) >= accepted + 5, 30, interval=0.01, what="submissions accepted, node down")
    node.start()
    return _recovered(server, env, load, time.monotonic(), f"a {how} node restart")


@pytest.mark.parametrize("how", list(RESTARTS))
def test_anchoring_resumes_within_seconds_of_a_node_restart(
    one_database_at_ci: None, chain_env: Env, history_node: Anvil, how: str
) -> None:
    server = _start(chain_env)
    try:
        with Load(server, chain_env) as load:
            took = _restart(server, chain_env, history_node, load, how)
        assert took <= RECOVERY_BOUND_S
        assert not load.refused, load.refused[:3]
    finally:
        server.stop()


def _reorg(server: Api, env: Env, node: Anvil, load: Load, kind: str) -> float:
    """Remove blocks holding anchors under the load (``kind``: anvil_reorg or snapshot_revert, then a longer
    chain); the seconds until anchoring recovered."""
    snapshot, base = _rpc(node, "evm_snapshot"), _head(node)
    _warm(server, node, load)
    poll(lambda: _head(node) >= base + 4, 30, what="a few anchor blocks")
    _rpc(node, "evm_setAutomine", [False])  # nothing slips in between choosing the blocks and removing them
    head = _head(node)
    first = head - 2 if kind == "anvil_reorg" else base + 1
    gone = {n: _block_hash(node, n) for n in range(first, head + 1)}
    if kind == "anvil_reorg":
        _rpc(node, "anvil_reorg", [len(gone), []])
    else:
        assert _rpc(node, "evm_revert", [snapshot]) is True
    _rpc(node, "evm_setAutomine", [True])
    _rpc(node, "anvil_mine", [hex(len(gone) + 1)])  # a longer chain without them
    done = time.monotonic()
    assert any(_block_hash(node, n) != h for n, h in gone.items()), f"{kind} removed no block"
    return _recovered(server, env, load, done, kind)


@pytest.mark.parametrize("kind", ["anvil_reorg", "snapshot_revert"])
def test_anchoring_resumes_within_seconds_of_a_reorg(
    one_database_at_ci: None, chain_env: Env, history_node: Anvil, kind: str
) -> None:
    server = _start(chain_env)
    try:
        with Load(server, chain_env) as load:
            took = _reorg(server, chain_env, history_node, load, kind)
        assert took <= RECOVERY_BOUND_S
        assert not load.refused, load.refused[:3]
    finally:
        server.stop()


FAULTS: dict[str, Callable[[Api, Env, Anvil, Load, str], float]] = {
    "graceful": _restart,
    "killed": _restart,
    "anvil_reorg": _reorg,
    "snapshot_revert": _reorg,
}
# Each fault in Merkle mode on one database (the fault is the chain's; both databases run every one above).
# The killed node restart runs always: it alone loses the node's latest blocks and rewinds the relayer's nonce
# under anchorRoot transactions, while tests/reliability/test_chain_faults.py's Merkle case already removes
# anchored roots by both kinds of reorg; the others run at RELIABILITY_SCALE=full, within the CI budget.
_FULL_ONLY = pytest.mark.skipif(
    os.environ.get("RELIABILITY_SCALE") != "full", reason="Merkle mode under this fault: RELIABILITY_SCALE=full"
)
MERKLE_CASES = [
    pytest.param("killed", "postgres", marks=pytest.mark.postgres),
    pytest.param("graceful", "sqlite", marks=_FULL_ONLY),
    pytest.param("anvil_reorg", "sqlite", marks=_FULL_ONLY),
    pytest.param("snapshot_revert", "postgres", marks=[pytest.mark.postgres, _FULL_ONLY]),
]


@pytest.mark.parametrize(("fault", "database"), MERKLE_CASES)
def test_merkle_anchoring_resumes_within_seconds(
    history_node: Anvil, fault: str, database: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The same in Merkle mode, where the blocks lost hold anchorRoot transactions: each submission ends a leaf
    of exactly one root anchored in the current chain, its receipt's proof checked in Python and by the
    contract (tests/reliability/anchoring.py)."""
    data_dir = tmp_path / "data"
    if database == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'merkle.db'}"
    else:
        url = request.getfixturevalue("postgres").create_database()
    deployment = _deploy(history_node, data_dir)
    env = Env(history_node, deployment, data_dir, url, tmp_path)
    server = env.api(DOCCHAIN_CONFIRMATIONS="2", **api_env("merkle")).start()
    try:
        with Load(server, env) as load:
            took = FAULTS[fault](server, env, history_node, load, fault)
        probe = DbProbe(url)
        rows = probe.rows("SELECT id, doc_hash, signer FROM submissions")
        assert {sid for sid, _, _ in rows} >= set(load.accepted)
        # the load ran on after the recovery was measured: its last submissions are anchored before the ledger
        wait_all_anchored(probe, len(rows), 30, "the load's last submissions anchored")
        accepted = {key_of(doc, signer): sid for sid, doc, signer in rows}
        answers = fetch_answers(server.url, accepted)
        tally = merkle_ledger(
            Chain(history_node, deployment, tmp_path), probe, accepted, answers, deployment.block_number
        )
        assert_exactly_once(None, tally, server_5xx(tmp_path / "api.log.jsonl"))
        assert took <= RECOVERY_BOUND_S
        assert not load.refused, load.refused[:3]
    finally:
        server.stop()
        env.close()
