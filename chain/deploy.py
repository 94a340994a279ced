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
from typing import TYPE_CHECKING

from docchain.chain import artifacts
from docchain.chain.errors import ChainError, InvalidInput, NotDeployed
from docchain.chain.sender import TxSender, with_retries
from docchain.chain.values import parse_address

if TYPE_CHECKING:
    from eth_typing import ChecksumAddress

FILE_NAME = "deployments.json"


@dataclass(frozen=True)
class Deployment:
    chain_id: int
    address: ChecksumAddress
    block_number: int
    tx_hash: str


def _path(data_dir: Path) -> Path:
    return Path(data_dir) / FILE_NAME


def parse_deployments(raw: object, where: str) -> dict[int, Deployment]:
    """A deployments document: ``{"<chain id>": {"chain_id", "address", "block_number", "tx_hash"}}``; keys
    starting with ``$`` are comments."""
    try:
        return {
            int(k): Deployment(
                chain_id=int(v["chain_id"]),
                address=parse_address(v["address"], f"{where}: address"),
                block_number=int(v["block_number"]),
                tx_hash=str(v["tx_hash"]),
            )
            for k, v in raw.items()  # type: ignore[attr-defined]
            if not str(k).startswith("$")
        }
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidInput(f"malformed deployments file {where}: {exc}") from exc


def read_file(path: Path) -> dict[int, Deployment]:
    """The deployments recorded in ``path``; none when it does not exist."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise InvalidInput(f"cannot read the deployments file {path}: {exc.strerror}") from exc
    try:
        return parse_deployments(json.loads(text), str(path))
    except ValueError as exc:
        raise InvalidInput(f"malformed deployments file {path}: {exc}") from exc


def read_all(data_dir: Path) -> dict[int, Deployment]:
    return read_file(_path(data_dir))


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
    """Add or replace the chain's entry in ``<data_dir>/deployments.json``."""
    record_in(_path(data_dir), deployment)


def record_in(path: Path, deployment: Deployment) -> None:
    """Add or replace the chain's entry in the deployments file ``path``, atomically (write to a temporary
    file, then rename)."""
    entries = read_file(path)
    entries[deployment.chain_id] = deployment
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".deployments.")
    with os.fdopen(fd, "w") as out:
        json.dump({str(k): asdict(v) for k, v in sorted(entries.items())}, out, indent=2)
        out.write("\n")
    os.replace(tmp, path)


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
