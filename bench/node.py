"""Does the local node stay fast as its chain grows? Transaction, receipt and log throughput by chain length.

One node is started (through ``docchain.chain.node``, with its default configuration) per checkpoint
(default 100, 1,000 and 10,000 blocks), set up for the workload and filled to its block count. Then the
measurement rounds alternate between the nodes, so a busy machine slows every checkpoint alike; each
round is wrapped in ``evm_snapshot``/``evm_revert``, so every round starts at exactly the checkpoint's
height and replays the same pre-signed transactions. Figures are medians over the rounds; a ratio is the
median over rounds of the checkpoint's figure divided by the baseline's (the smallest checkpoint) in
the same round, taken seconds apart.

Per round and node:
  tx/s          send + await N pre-signed transactions one at a time (``--window`` in flight)
  receipts/s    ``eth_getTransactionReceipt`` of random transactions from the whole chain history
  logs/s new    ``eth_getLogs`` for the workload's contract over the blocks the round mined (an indexer's poll)
  logs/s (all)  the same from block 0: a scan of the whole chain, slower as it grows on any node

Workloads: ``registry`` (default: relayed ``register`` calls on docchain's DocumentRegistry), ``store`` (a
14-byte contract that writes one new storage slot and emits one indexed event, a registration's footprint
without its signature check), ``transfer`` (1 wei to a fixed address), or ``module:factory`` returning an
object with the ``Workload`` protocol below.

Fill: ``transfer`` (default: one ETH transfer per block, real history with receipts but a state that
does not grow), ``workload`` (the workload's own transactions, one per block: the state grows with
the chain, as it would with registrations), ``empty`` (``anvil_mine``/``evm_mine``). If filling would
overrun the time budget the rest is mined empty, and the table says how many blocks were.

    .venv/bin/python bench/node.py                       # anvil, ~40 s
    .venv/bin/python bench/node.py --json
    .venv/bin/python bench/node.py --fill workload       # include state growth
    DOCCHAIN_ANVIL=/tmp/anvil-1.4.4/bin/anvil .venv/bin/python bench/node.py   # another anvil build
"""

from __future__ import annotations

import argparse
import http.client
import importlib
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address

from docchain.chain import artifacts
from docchain.chain import typed_data as td
from docchain.chain.hashing import keccak256
from docchain.chain.node import LocalNode, NodeConfig, NodeKind, find_binary
from docchain.chain.registry import encode_call

DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # dev account 0 of the test mnemonic
SINK = "0x1111111111111111111111111111111111111111"
MAX_FEE = 10 * 10**9  # well above the dev nodes' 1 gwei starting base fee, which only falls on idle blocks


class Rpc:
    """Minimal JSON-RPC over one kept-alive HTTP connection: measures the node, not a client library."""

    def __init__(self, url: str, chain_id: int) -> None:
        parts = urllib.parse.urlsplit(url)
        self.chain_id = chain_id
        self._address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._conn = http.client.HTTPConnection(*self._address, timeout=120)
        self._id = 0

    def __call__(self, method: str, *params: Any) -> Any:
        self._id += 1
        body = json.dumps({"jsonrpc": "2.0", "id": self._id, "method": method, "params": list(params)})
        try:
            self._conn.request("POST", "/", body, {"Content-Type": "application/json"})
            response = self._conn.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # ganache closes kept-alive connections that sat idle (while other nodes were being filled).
            self._conn.close()
            self._conn = http.client.HTTPConnection(*self._address, timeout=120)
            self._conn.request("POST", "/", body, {"Content-Type": "application/json"})
            response = self._conn.getresponse()
        reply = json.loads(response.read())
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def close(self) -> None:
        self._conn.close()


class Workload(Protocol):
    """What the bench sends. Transactions come from one sender, mined one per block under automine."""

    name: str

    def setup(self, rpc: Rpc) -> None:
        """Deploy what the workload needs; runs once per node, before the chain is filled."""

    def transactions(self, rpc: Rpc, nonce: int, count: int) -> list[str]:
        """``count`` signed raw transactions (0x-hex) with consecutive nonces from ``nonce``."""
        ...

    def log_filter(self) -> dict[str, Any]:
        """``eth_getLogs`` filter fields (address, topics) selecting the workload's events."""
        ...


def _sign(account: LocalAccount, chain_id: int, nonce: int, **fields: Any) -> str:
    tx = {"nonce": nonce, "chainId": chain_id, "type": 2, "maxFeePerGas": MAX_FEE, "maxPriorityFeePerGas": 1}
    raw = account.sign_transaction(tx | fields).raw_transaction
    return "0x" + bytes(raw).hex()


def _await_receipt(rpc: Rpc, tx_hash: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        receipt = rpc("eth_getTransactionReceipt", tx_hash)
        if receipt is not None:
            return dict(receipt)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{tx_hash} not mined within {timeout} s")


class TransferWorkload:
    """1 wei to a fixed address: no contract, no logs, a state that does not grow."""

    name = "transfer"

    def __init__(self) -> None:
        self.account: LocalAccount = Account.from_key(DEV_KEY)

    def setup(self, rpc: Rpc) -> None:
        return None

    def transactions(self, rpc: Rpc, nonce: int, count: int) -> list[str]:
        return [_sign(self.account, rpc.chain_id, n, to=SINK, value=1, gas=21_000) for n in range(nonce, nonce + count)]

    def log_filter(self) -> dict[str, Any]:
        return {"address": SINK}


class StoreWorkload:
    """A registration's footprint on the node: one new storage slot and one indexed event per call.

    The contract is 14 bytes of hand-written EVM code (no compiler needed):
    ``sstore(calldataload(0), timestamp()); log1(0, 0, calldataload(0)); stop()``.
    """

    name = "store"
    RUNTIME = "426000355560003560006000a100"
    INIT = "600e600c600039600e6000f3"  # codecopy(0, 12, 14); return(0, 14)

    def __init__(self) -> None:
        self.account: LocalAccount = Account.from_key(DEV_KEY)
        self.address: str | None = None

    def setup(self, rpc: Rpc) -> None:
        nonce = int(rpc("eth_getTransactionCount", self.account.address, "latest"), 16)
        raw = _sign(self.account, rpc.chain_id, nonce, data="0x" + self.INIT + self.RUNTIME, gas=100_000)
        receipt = _await_receipt(rpc, rpc("eth_sendRawTransaction", raw))
        self.address = str(receipt["contractAddress"])

    def transactions(self, rpc: Rpc, nonce: int, count: int) -> list[str]:
        assert self.address is not None, "setup() first"
        to = to_checksum_address(self.address)
        # The nonce is the key: a new slot per transaction, and the same one again after evm_revert.
        return [
            _sign(self.account, rpc.chain_id, n, to=to, data=n.to_bytes(32, "big"), gas=100_000)
            for n in range(nonce, nonce + count)
        ]

    def log_filter(self) -> dict[str, Any]:
        return {"address": self.address}


class RegistryWorkload:
    """docchain's own registrations: the DocumentRegistry (committed artifact), one relayed ``register`` per
    transaction, signed by a fixed signer over a document hash derived from the nonce (so a round replays
    the same transactions after ``evm_revert``)."""

    name = "registry"
    SIGNER_KEY = bytes.fromhex("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")

    def __init__(self) -> None:
        self.account: LocalAccount = Account.from_key(DEV_KEY)
        self.address: str | None = None

    def setup(self, rpc: Rpc) -> None:
        nonce = int(rpc("eth_getTransactionCount", self.account.address, "latest"), 16)
        code = "0x" + artifacts.load().bytecode.hex()
        receipt = _await_receipt(
            rpc, rpc("eth_sendRawTransaction", _sign(self.account, rpc.chain_id, nonce, data=code, gas=3_000_000))
        )
        self.address = to_checksum_address(receipt["contractAddress"])

    def transactions(self, rpc: Rpc, nonce: int, count: int) -> list[str]:
        assert self.address is not None, "setup() first"
        domain = td.Domain(rpc.chain_id, self.address)
        signer = td.address_of(self.SIGNER_KEY)
        txs = []
        for n in range(nonce, nonce + count):
            reg = td.Registration(doc_hash=keccak256(n.to_bytes(32, "big")), signer=signer, deadline=2**40)
            data = encode_call("register", reg.as_tuple(), td.sign(domain, reg, self.SIGNER_KEY))
            txs.append(_sign(self.account, rpc.chain_id, n, to=self.address, data=data, gas=120_000))
        return txs

    def log_filter(self) -> dict[str, Any]:
        return {"address": self.address}


BUILTIN_WORKLOADS: dict[str, Callable[[], Workload]] = {
    "registry": RegistryWorkload,
    "store": StoreWorkload,
    "transfer": TransferWorkload,
}


def load_workload_factory(spec: str) -> Callable[[], Workload]:
    if spec in BUILTIN_WORKLOADS:
        return BUILTIN_WORKLOADS[spec]
    module_name, _, attr = spec.partition(":")
    if not attr:
        raise SystemExit(f"unknown workload {spec!r}: use {', '.join(BUILTIN_WORKLOADS)} or module:factory")
    factory: Callable[[], Workload] = getattr(importlib.import_module(module_name), attr)
    return factory


@dataclass
class Checkpoint:
    """One node held at one chain length, and what was measured on it."""

    blocks: int
    node: LocalNode
    rpc: Rpc
    workload: Workload
    tmp: tempfile.TemporaryDirectory[str]
    sender: str = ""
    history: list[str] = field(default_factory=list)  # hashes of the fill transactions
    filled_empty: int = 0
    round_txs: list[str] = field(default_factory=list)
    tx_rates: list[float] = field(default_factory=list)
    receipt_rates: list[float] = field(default_factory=list)
    logs_window_rates: list[float] = field(default_factory=list)
    logs_all_rates: list[float] = field(default_factory=list)
    rss_mb: float = 0.0


@dataclass
class Row:
    blocks: int
    filled_with_txs: int
    filled_empty: int
    tx_per_s: float
    receipts_per_s: float
    logs_new_per_s: float
    logs_all_per_s: float
    node_rss_mb: float
    tx_per_s_rounds: list[float] = field(default_factory=list)
    tx_ratio: float = 1.0
    receipts_ratio: float = 1.0
    logs_new_ratio: float = 1.0


def block_number(rpc: Rpc) -> int:
    return int(rpc("eth_blockNumber"), 16)


def mine_empty(rpc: Rpc, kind: NodeKind, count: int) -> None:
    if count <= 0:
        return
    if kind == "anvil":
        rpc("anvil_mine", hex(count))
    else:
        rpc("evm_mine", {"blocks": count})


def fill(cp: Checkpoint, kind: NodeKind, mode: str, deadline: float) -> None:
    """Bring the chain to ``cp.blocks`` blocks, one transaction per block while the time budget lasts."""
    rpc = cp.rpc
    source: Workload = cp.workload if mode == "workload" else TransferWorkload()
    chunk = 250
    while (missing := cp.blocks - block_number(rpc)) > 0:
        if mode == "empty" or time.monotonic() > deadline:
            cp.filled_empty += missing
            mine_empty(rpc, kind, missing)
            break
        nonce = int(rpc("eth_getTransactionCount", cp.sender, "latest"), 16)
        for raw in source.transactions(rpc, nonce, min(chunk, missing)):
            tx_hash = rpc("eth_sendRawTransaction", raw)
            _await_receipt(rpc, tx_hash)
            cp.history.append(tx_hash)
            if time.monotonic() > deadline:
                break


def measure_round(cp: Checkpoint, txs: int, window: int, lookups: int, log_calls: int, rng: random.Random) -> None:
    rpc = cp.rpc
    snapshot = rpc("evm_snapshot")
    try:
        if not cp.round_txs:
            nonce = int(rpc("eth_getTransactionCount", cp.sender, "latest"), 16)
            cp.round_txs = cp.workload.transactions(rpc, nonce, txs)
        start = time.perf_counter()
        hashes: list[str] = []
        for i in range(0, len(cp.round_txs), window):
            sent = [rpc("eth_sendRawTransaction", raw) for raw in cp.round_txs[i : i + window]]
            for tx_hash in sent:
                _await_receipt(rpc, tx_hash)
            hashes += sent
        cp.tx_rates.append(len(hashes) / (time.perf_counter() - start))

        pool = cp.history or hashes
        sample = [pool[rng.randrange(len(pool))] for _ in range(lookups)]
        start = time.perf_counter()
        for tx_hash in sample:
            if rpc("eth_getTransactionReceipt", tx_hash) is None:
                raise RuntimeError(f"receipt of {tx_hash} is missing")
        cp.receipt_rates.append(lookups / (time.perf_counter() - start))

        head = block_number(rpc)
        # The blocks this round mined: what an indexer asks for when it catches up, the same size everywhere.
        window_filter = cp.workload.log_filter() | {"fromBlock": hex(cp.blocks + 1), "toBlock": hex(head)}
        all_filter = cp.workload.log_filter() | {"fromBlock": "0x0", "toBlock": hex(head)}
        for flt, rates in ((window_filter, cp.logs_window_rates), (all_filter, cp.logs_all_rates)):
            start = time.perf_counter()
            for _ in range(log_calls):
                rpc("eth_getLogs", flt)
            rates.append(log_calls / (time.perf_counter() - start))
        cp.rss_mb = max(cp.rss_mb, _rss_mb(cp.node.pid))
    finally:
        if rpc("evm_revert", snapshot) is not True:
            raise RuntimeError("evm_revert failed: the next round would not start at the checkpoint")


def paired_ratio(rates: list[float], baseline: list[float]) -> float:
    return statistics.median(rate / base for rate, base in zip(rates, baseline, strict=True))


def _rss_mb(pid: int | None) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        return int(status.split("VmRSS:")[1].split()[0]) / 1024
    except (OSError, IndexError, ValueError):
        return float("nan")


def node_version(kind: NodeKind) -> tuple[str, str]:
    binary = find_binary(kind)
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30).stdout
        version = out.strip().splitlines()[0].split("Version:")[-1].strip() if out.strip() else "?"
    except (OSError, subprocess.SubprocessError):
        version = "?"
    return str(binary), version


def node_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """NodeConfig fields given on the command line; the rest keep docchain's defaults."""
    fields = {
        "hardfork": args.hardfork,
        "history_states": args.history_states,
        "block_time": args.block_time,
        "state_interval": args.state_interval,
    }
    return {name: value for name, value in fields.items() if value is not None}


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    factory = load_workload_factory(args.workload)
    checkpoints: list[Checkpoint] = []
    binary, version = node_version(args.kind)
    try:
        for blocks in sorted(set(args.blocks)):
            tmp = tempfile.TemporaryDirectory(prefix=f"docchain-bench-{blocks}-")
            node = LocalNode(NodeConfig(data_dir=Path(tmp.name), kind=args.kind, **node_overrides(args)))
            node.start(timeout=60)
            rpc = Rpc(node.rpc_url, node.config.chain_id)
            workload = factory()
            workload.setup(rpc)
            sender = str(Account.from_key(DEV_KEY).address)
            checkpoints.append(Checkpoint(blocks, node, rpc, workload, tmp, sender=sender))
        if block_number(checkpoints[0].rpc) > checkpoints[0].blocks:
            raise SystemExit(f"the workload's setup already mined more than {checkpoints[0].blocks} blocks")
        fill_deadline = started + args.time_limit * 0.6
        for cp in checkpoints:
            fill(cp, args.kind, args.fill, fill_deadline)

        rng = random.Random(1)
        for round_no in range(args.rounds):
            if round_no >= 2 and time.monotonic() - started > args.time_limit:
                break
            # Rotate who goes first so no checkpoint always runs on a warmer (or busier) machine.
            order = checkpoints[round_no % len(checkpoints) :] + checkpoints[: round_no % len(checkpoints)]
            for cp in order:
                measure_round(cp, args.txs, args.window, args.lookups, args.log_calls, rng)

        rows = [
            Row(
                blocks=cp.blocks,
                filled_with_txs=len(cp.history),
                filled_empty=cp.filled_empty,
                tx_per_s=statistics.median(cp.tx_rates),
                receipts_per_s=statistics.median(cp.receipt_rates),
                logs_new_per_s=statistics.median(cp.logs_window_rates),
                logs_all_per_s=statistics.median(cp.logs_all_rates),
                node_rss_mb=cp.rss_mb,
                tx_per_s_rounds=[round(rate, 1) for rate in cp.tx_rates],
            )
            for cp in checkpoints
        ]
        # Each ratio is the median of per-round ratios: a round's figures for two checkpoints were taken
        # seconds apart, so a burst of load from elsewhere on the machine mostly cancels out.
        base = checkpoints[0]
        for row, cp in zip(rows, checkpoints, strict=True):
            row.tx_ratio = paired_ratio(cp.tx_rates, base.tx_rates)
            row.receipts_ratio = paired_ratio(cp.receipt_rates, base.receipt_rates)
            row.logs_new_ratio = paired_ratio(cp.logs_window_rates, base.logs_window_rates)
        cfg = checkpoints[0].node.config
        worst = min(row.tx_ratio for row in rows[1:]) if len(rows) > 1 else 1.0
        return {
            "node": {
                "kind": args.kind,
                "binary": binary,
                "version": version,
                "mining": "automine" if cfg.block_time is None else f"interval {cfg.block_time:g} s",
                "hardfork": cfg.hardfork,
                "history_states": cfg.history_states,
                "state_interval_s": cfg.state_interval,
            },
            "workload": checkpoints[0].workload.name,
            "fill": args.fill,
            "rounds": len(checkpoints[0].tx_rates),
            "txs_per_round": args.txs,
            "window": args.window,
            "rows": [asdict(row) for row in rows],
            "min_tx_ratio": worst,
            "target_tx_ratio": 0.8,
            "meets_target": worst >= 0.8,
            "seconds": round(time.monotonic() - started, 1),
        }
    finally:
        for cp in checkpoints:
            cp.rpc.close()
            cp.node.stop()
            cp.tmp.cleanup()


def print_table(result: dict[str, Any]) -> None:
    node = result["node"]
    print(
        f"{node['kind']} {node['version']} ({node['binary']})\n"
        f"{node['mining']}, hardfork {node['hardfork']}"
        + (
            f", history_states {node['history_states']}, state dump every {node['state_interval_s']} s"
            if node["kind"] == "anvil"
            else ""
        )
        + f"; workload {result['workload']}, fill {result['fill']}, "
        f"{result['rounds']} rounds x {result['txs_per_round']} txs (window {result['window']}), medians\n"
    )
    header = (
        f"{'blocks':>8} {'filled (empty)':>15} {'tx/s':>8} {'receipts/s':>11} {'logs/s new':>10} "
        f"{'logs/s all':>11} {'node MB':>8} {'tx x':>6} {'rcpt x':>7} {'logs x':>7}"
    )
    print(header)
    print("-" * len(header))
    for r in result["rows"]:
        filled = f"{r['filled_with_txs']} ({r['filled_empty']})"
        print(
            f"{r['blocks']:>8,} {filled:>15} {r['tx_per_s']:>8,.0f} {r['receipts_per_s']:>11,.0f} "
            f"{r['logs_new_per_s']:>10,.0f} {r['logs_all_per_s']:>11,.0f} {r['node_rss_mb']:>8.0f} "
            f"{r['tx_ratio']:>6.2f} {r['receipts_ratio']:>7.2f} {r['logs_new_ratio']:>7.2f}"
        )
    verdict = "meets" if result["meets_target"] else "MISSES"
    print(
        f"\nx: median per-round ratio to {result['rows'][0]['blocks']:,} blocks, same run. Lowest tx ratio "
        f"{result['min_tx_ratio']:.2f}: {verdict} the {result['target_tx_ratio']} target. ({result['seconds']} s)"
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", choices=["anvil", "ganache"], default="anvil")
    parser.add_argument(
        "--blocks",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[100, 1_000, 10_000],
        help="chain lengths to compare, comma separated; the smallest is the baseline (default 100,1000,10000)",
    )
    parser.add_argument(
        "--workload", default="registry", help="registry | store | transfer | module:factory (default registry)"
    )
    parser.add_argument("--fill", choices=["transfer", "workload", "empty"], default="transfer")
    parser.add_argument("--txs", type=int, default=200, help="transactions per round and node (default 200)")
    parser.add_argument("--window", type=int, default=1, help="transactions in flight before awaiting (default 1)")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--lookups", type=int, default=500, help="receipt lookups per round (default 500)")
    parser.add_argument("--log-calls", type=int, default=20, help="eth_getLogs calls per round and range")
    parser.add_argument("--time-limit", type=float, default=150, help="soft budget in seconds (default 150)")
    node = parser.add_argument_group("node configuration (default: docchain's NodeConfig defaults)")
    node.add_argument("--hardfork")
    node.add_argument("--history-states", type=int)
    node.add_argument("--block-time", type=float, help="interval mining; use --window > 1 with it")
    node.add_argument("--state-interval", type=int, help="seconds between state dumps, 0 = only on exit")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
