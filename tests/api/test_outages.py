"""The node behind a bound API goes away and comes back.

* Chain-bound routes (chain info, nonces, the explorer's blocks and transactions) answer a clean 503
  problem+json with ``Retry-After`` while it is down, on a connection that stays usable (an unhandled error
  used to answer 500 and close it), and answer again once it is back. The problem never names the RPC URL.
* Verification reads the chain at one head; a node that keeps no past state (anvil ``--prune-history``, as
  the embedded stack runs it) refuses reads at a block that is no longer the latest. Verifying while blocks
  are mined as fast as the node can must never answer 5xx, and every answer must be the same verdict.
"""

from __future__ import annotations

import threading
from collections import Counter

import httpx
from api_support import Anvil, Env, poll, sqlite_only, submit_many

pytestmark = sqlite_only  # the node goes away: nothing a database choice changes

VERIFY_ROUNDS = 60
MAX_MINED = 5_000  # bound on the mining loop, whatever happens to the verifications


def _routes(tx_hash: str) -> list[str]:
    return [
        "/v1/chain",
        "/v1/explorer/blocks?limit=5",
        "/v1/explorer/blocks/1",
        f"/v1/explorer/tx/{tx_hash}",
        "/v1/nonces/0x" + "22" * 20,
    ]


def test_node_down_chain_routes_answer_503_with_retry_after_then_recover(node_env: Env, own_node: Anvil) -> None:
    server = node_env.api().start()
    try:
        [(sid, _, _)] = submit_many(server, node_env, 1)
        tx_hash = server.wait_state(sid, ("anchored", "confirmed"))["txHash"]
        routes = _routes(tx_hash)
        for path in routes:
            assert server.get(path).status_code == 200, path

        own_node.stop()
        with httpx.Client(base_url=server.url, timeout=30) as http:  # one keep-alive connection throughout
            for path in routes:
                r = http.get(path)
                assert r.status_code == 503, f"{path}: {r.status_code} {r.text}"
                assert r.headers["content-type"] == "application/problem+json"
                problem = r.json()
                assert problem["type"].endswith("/node-unavailable"), problem
                assert problem["instance"] == path.split("?")[0]
                assert int(r.headers["retry-after"]) > 0
                assert str(own_node.port) not in r.text  # the RPC URL may carry a provider's key
            r = http.post("/v1/verify", json={"docHash": "0x" + "ab" * 32})
            assert r.status_code == 503 and r.json()["type"].endswith("/node-unavailable"), r.text
            assert int(r.headers["retry-after"]) > 0
            # the database-backed pages still answer
            assert http.get(f"/v1/submissions/{sid}").status_code == 200

        own_node.started()
        poll(lambda: all(server.get(p).status_code == 200 for p in routes), 30, what="the chain routes back")
        log = (node_env.tmp / "api.log.jsonl").read_text()
        assert "unhandled error" not in log
    finally:
        server.stop()


def test_verify_while_blocks_are_mined_on_a_node_without_history_never_5xx(node_env: Env, own_node: Anvil) -> None:
    server = node_env.api(DOCCHAIN_CONFIRMATIONS="1").start()
    stop = threading.Event()
    mined = 0

    def mine() -> None:
        nonlocal mined
        with httpx.Client(timeout=10) as rpc:
            while not stop.is_set() and mined < MAX_MINED:
                rpc.post(own_node.url, json={"jsonrpc": "2.0", "id": 1, "method": "anvil_mine", "params": ["0x1"]})
                mined += 1

    miner = threading.Thread(target=mine, name="miner")
    try:
        accepted = submit_many(server, node_env, 3)
        for sid, _, _ in accepted:
            server.wait_state(sid, ("anchored", "confirmed"))
        receipts = [server.get(f"/v1/documents/{doc}/receipts/{signer}").json() for _, doc, signer in accepted]
        questions = [{"docHash": doc, "signer": signer} for _, doc, signer in accepted]
        questions += [{"docHash": doc} for _, doc, _ in accepted]
        with_receipts = zip(accepted, receipts, strict=True)
        questions += [{"docHash": doc, "receipt": receipt} for (_, doc, _), receipt in with_receipts]

        statuses: Counter[int] = Counter()
        outcomes: Counter[str] = Counter()
        failures: list[str] = []
        miner.start()
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for _ in range(VERIFY_ROUNDS):
                for question in questions:
                    r = http.post("/v1/verify", json=question)
                    statuses[r.status_code] += 1
                    if r.status_code != 200:
                        failures.append(f"{r.status_code} {r.text[:300]}")
                        continue
                    outcomes[r.json()["outcome"]] += 1
                    if r.json()["outcome"] != "valid":
                        failures.append(r.text[:500])
        stop.set()
        miner.join()
        assert mined > VERIFY_ROUNDS, f"only {mined} blocks were mined during the verifications"
        assert not failures, f"{statuses} {outcomes}: {failures[:3]}"
    finally:
        stop.set()
        if miner.is_alive():
            miner.join()
        server.stop()
