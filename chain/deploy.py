"""Deploys the registry and records its address per chain id in ``<data dir>/deployments.json``.

Deployment is idempotent: when the file already names a registry for this chain and code is present at
that address, it is reused.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from docchain.chain import artifacts
from docchain.chain.errors import ChainError, NotDeployed
from docchain.chain.sender import TxSender, with_retries
from docchain.chain.values import parse_address

FILE_NAME = "deployments.json"


@dataclass(frozen=True)
class Deployment:
    chain_id: int
    address: str
    block_number: int
    tx_hash: str


def _path(data_dir: Path) -> Path:
    return Path(data_dir) / FILE_NAME


def read_all(data_dir: Path) -> dict[int, Deployment]:
    path = _path(data_dir)
    if not path.exists():
        return {}
    raw = json.loads(path.read_text())
    return {int(k): Deployment(**v) for k, v in raw.items()}


def lookup(data_dir: Path, chain_id: int) -> Deployment:
    try:
        return read_all(data_dir)[chain_id]
    except KeyError:
        raise NotDeployed(
            f"no registry recorded for chain {chain_id} in {_path(data_dir)}; run `docchain deploy`"
        ) from None


def deployment_block(data_dir: Path, chain_id: int, address: str) -> int | None:
    """The block the registry at ``address`` was deployed in, when ``deployments.json`` records that very
    registry for ``chain_id``; None otherwise (the contract itself does not store it). No event of the
    registry can be older, so log scans start there rather than at block 0."""
    known = read_all(data_dir).get(chain_id)
    if known is None or known.address.lower() != address.lower():
        return None
    return known.block_number


def record(data_dir: Path, deployment: Deployment) -> None:
    """Add or replace the chain's entry, atomically (write to a temporary file, then rename)."""
    entries = read_all(data_dir)
    entries[deployment.chain_id] = deployment
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=data_dir, prefix=".deployments.")
    with os.fdopen(fd, "w") as out:
        json.dump({str(k): asdict(v) for k, v in sorted(entries.items())}, out, indent=2)
        out.write("\n")
    os.replace(tmp, _path(data_dir))


def deploy(sender: TxSender) -> Deployment:
    """Deploy a fresh DocumentRegistry."""
    artifact = artifacts.load()
    receipt = sender.transact(None, artifact.bytecode)
    address = receipt.get("contractAddress")
    if not address:
        raise ChainError("deployment transaction produced no contract")
    return Deployment(
        chain_id=sender.chain_id,
        address=parse_address(address),
        block_number=int(receipt["blockNumber"]),
        tx_hash="0x" + bytes(receipt["transactionHash"]).hex(),
    )


def ensure_deployed(sender: TxSender, data_dir: Path) -> tuple[Deployment, bool]:
    """The recorded registry for the sender's chain, deploying one if none is recorded or its code is gone.

    Returns the deployment and whether it was freshly deployed.
    """
    chain_id = sender.chain_id
    known = read_all(data_dir).get(chain_id)
    if known is not None:
        code = with_retries(lambda: sender.w3.eth.get_code(known.address), "eth_getCode")
        # Immutables (EIP-712's cached domain) are filled in at deployment, so compare lengths, not bytes.
        if len(code) == len(artifacts.load().deployed_bytecode):
            return known, False
    deployment = deploy(sender)
    record(data_dir, deployment)
    return deployment, True
