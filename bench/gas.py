"""Gas per registered document on anvil: single relayed registration, batches of 10 and 100, and Merkle roots of
100, 1,000 and 10,000 signed registrations (one anchorRoot transaction each, its gas shared by the leaves).

Beside each figure: the issue's target, and a baseline measured in the same run — a minimal registry
(EIP-712 ecrecover + one storage slot + one event, bench/baseline/MinimalRegistry.sol) that does none of
docchain's extra work (deadline, metadata and supersedes in the event, idempotency, ERC-1271).

    python bench/gas.py [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from coincurve import PrivateKey
from eth_abi import encode
from web3 import Web3

from docchain.chain import deploy, merkle
from docchain.chain import typed_data as td
from docchain.chain.hashing import keccak256
from docchain.chain.node import LocalNode, NodeConfig
from docchain.chain.registry import Registry, SignedRegistration
from docchain.chain.sender import TxSender
from docchain.contracts.compile import SETTINGS, solc

DEV_KEY = bytes.fromhex("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
TARGETS = {
    "single": 60_000,
    "batch10": None,
    "batch100": 32_000,
    "merkle100": None,
    "merkle1000": 100,
    "merkle10000": None,
}
MERKLE_SIZES = (100, 1_000, 10_000)
EAS = {"single": 196_327, "batch100": 145_783}  # ../shared/perf-anchors.md, same node


def signed(registry: Registry) -> SignedRegistration:
    key = os.urandom(32)
    reg = td.Registration(os.urandom(32), td.address_of(key), int(time.time()) + 3600, metadata_hash=os.urandom(32))
    return SignedRegistration(reg, td.sign(registry.domain, reg, key))


def baseline_gas(sender: TxSender) -> int:
    """Gas of one registration on the minimal registry, compiled with the same solc settings."""
    source = (Path(__file__).parent / "baseline" / "MinimalRegistry.sol").read_text()
    out = solc({"MinimalRegistry.sol": source}, SETTINGS)["MinimalRegistry.sol"]["MinimalRegistry"]
    address = sender.transact(None, bytes.fromhex(out["evm"]["bytecode"]["object"]))["contractAddress"]
    separator = bytes(sender.w3.eth.call({"to": address, "data": keccak256(b"separator()")[:4]}))
    key = os.urandom(32)
    signer = td.address_of(key)
    doc = os.urandom(32)
    struct = keccak256(
        keccak256(b"Registration(bytes32 docHash,address signer)") + encode(["bytes32", "address"], [doc, signer])
    )
    sig = PrivateKey(key).sign_recoverable(keccak256(b"\x19\x01" + separator + struct), hasher=None)
    data = keccak256(b"register(bytes32,address,uint8,bytes32,bytes32)")[:4] + encode(
        ["bytes32", "address", "uint8", "bytes32", "bytes32"],
        [doc, signer, sig[64] + 27, sig[:32], sig[32:64]],
    )
    return int(sender.transact(address, data)["gasUsed"])


def measure() -> dict[str, float]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        LocalNode(NodeConfig(kind="anvil", data_dir=Path(tmp))) as node,
    ):
        w3 = Web3(Web3.HTTPProvider(node.rpc_url))
        return measure_on(TxSender(w3, DEV_KEY), Path(tmp))


def measure_on(sender: TxSender, workdir: Path) -> dict[str, float]:
    """The figures on the node ``sender`` sends to, with a registry deployed there now (its deployment record
    written under ``workdir``): bench/compare.py measures other contracts on the same node."""
    deployment, _ = deploy.ensure_deployed(sender, workdir)
    registry = Registry(sender.w3, deployment.address, sender)
    registry.register(signed(registry))  # first write to the contract's storage pays extra; warm up once
    figures: dict[str, float] = {"baseline": baseline_gas(sender)}
    figures["single"] = registry.register(signed(registry))["gasUsed"]
    for n in (10, 100):
        figures[f"batch{n}"] = registry.register_batch([signed(registry) for _ in range(n)])["gasUsed"] / n
    for n in MERKLE_SIZES:
        figures[f"root{n}"] = anchor_gas(registry, n)
        figures[f"merkle{n}"] = figures[f"root{n}"] / n
    return figures


def anchor_gas(registry: Registry, n: int) -> float:
    """Gas of anchoring the root of ``n`` real signed registrations; one leaf is then confirmed on chain, so the
    figure is that of a root the registry accepts."""
    items = [signed(registry) for _ in range(n)]
    tree = merkle.MerkleTree.of([merkle.leaf(i.registration, i.signature) for i in items])
    gas = registry.anchor_root(tree.root, n)["gasUsed"]
    registry.verify_merkle_registration(items[n // 2], tree.proof(n // 2))
    return float(gas)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()
    figures = measure()
    if args.json:
        print(json.dumps({k: round(v) for k, v in figures.items()}))
        return 0
    base = figures["baseline"]
    print(f"{'case':<22}{'gas/doc':>10}{'target':>10}{'vs minimal':>12}{'vs EAS':>9}")
    for case, label in (
        ("single", "single (relayed)"),
        ("batch10", "batch of 10"),
        ("batch100", "batch of 100"),
        *((f"merkle{n}", f"merkle root of {n:,}") for n in MERKLE_SIZES),
    ):
        target = TARGETS[case]
        eas = EAS.get(case)
        print(
            f"{label:<22}{figures[case]:>10,.0f}{(f'{target:,}' if target else '-'):>10}"
            f"{figures[case] / base:>11.2f}x{(f'{figures[case] / eas:.2f}x' if eas else '-'):>9}"
        )
    print(f"{'minimal registry':<22}{base:>10,.0f}{'':>10}{1:>11.2f}x")
    roots = ", ".join(f"{n:,} leaves {figures[f'root{n}']:,.0f}" for n in MERKLE_SIZES)
    print(f"gas of one anchorRoot transaction: {roots}")
    missed = [c for c, t in TARGETS.items() if t and figures[c] > t]
    if missed:
        print(f"over target: {', '.join(missed)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
