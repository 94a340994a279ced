"""Deploys the registry, and the envelopes contract beside it, and records their addresses per chain id in
``<data dir>/deployments.json``.

Deployment is idempotent: when the file already names a registry for this chain and code is present at
that address, it is reused; so are its envelopes. A deployment recorded before the envelopes existed reads as
one without them, and gets them on the next :func:`ensure_deployed`.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from docchain.chain import artifacts
from docchain.chain.errors import ChainError, InvalidInput, NotDeployed
from docchain.chain.values import parse_address

if TYPE_CHECKING:
    # the sender and the envelopes' binding bring web3, only for deploying: reading deployments.json (chain/trust.py,
    # verification) must not import it
    from eth_typing import ChecksumAddress
    from web3.types import TxReceipt

    from docchain.chain.sender import TxSender

FILE_NAME = "deployments.json"


@dataclass(frozen=True)
class EnvelopesDeployment:
    """The DocumentEnvelopes contract counting the registrations of the registry it is recorded with."""

    address: ChecksumAddress
    block_number: int
    tx_hash: str


@dataclass(frozen=True)
class Deployment:
    chain_id: int
    address: ChecksumAddress
    block_number: int
    tx_hash: str
    envelopes: EnvelopesDeployment | None = None


def _path(data_dir: Path) -> Path:
    return Path(data_dir) / FILE_NAME


def _envelopes(raw: object, where: str) -> EnvelopesDeployment | None:
    if raw is None:
        return None
    return EnvelopesDeployment(
        address=parse_address(raw["address"], f"{where}: envelopes address"),  # type: ignore[index]
        block_number=int(raw["block_number"]),  # type: ignore[index]
        tx_hash=str(raw["tx_hash"]),  # type: ignore[index]
    )


def parse_deployments(raw: object, where: str) -> dict[int, Deployment]:
    """A deployments document: ``{"<chain id>": {"chain_id", "address", "block_number", "tx_hash",
    "envelopes"?: {"address", "block_number", "tx_hash"}}}``; keys starting with ``$`` are comments."""
    try:
        return {
            int(k): Deployment(
                chain_id=int(v["chain_id"]),
                address=parse_address(v["address"], f"{where}: address"),
                block_number=int(v["block_number"]),
                tx_hash=str(v["tx_hash"]),
                envelopes=_envelopes(v.get("envelopes"), where),
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


def lookup_envelopes(data_dir: Path, chain_id: int) -> EnvelopesDeployment:
    """The envelopes contract recorded for ``chain_id``; :class:`NotDeployed` when there is none (a registry
    recorded before envelopes existed has none until the next ``docchain up`` or ``docchain deploy``)."""
    envelopes = lookup(data_dir, chain_id).envelopes
    if envelopes is None:
        raise NotDeployed(
            f"no envelopes contract recorded for chain {chain_id} in {_path(data_dir)}; run `docchain up` or "
            "`docchain deploy` to deploy it beside the registry"
        )
    return envelopes


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


def _entry(deployment: Deployment) -> dict[str, object]:
    """A deployment as the file holds it; no ``envelopes`` key when it has none, as files written before."""
    return {k: v for k, v in asdict(deployment).items() if not (k == "envelopes" and v is None)}


def record_in(path: Path, deployment: Deployment) -> None:
    """Add or replace the chain's entry in the deployments file ``path``, atomically (write to a temporary
    file, then rename)."""
    entries = read_file(path)
    entries[deployment.chain_id] = deployment
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".deployments.")
    with os.fdopen(fd, "w") as out:
        json.dump({str(k): _entry(v) for k, v in sorted(entries.items())}, out, indent=2)
        out.write("\n")
    os.replace(tmp, path)


def _tx_hash(receipt: TxReceipt) -> str:
    return "0x" + bytes(receipt["transactionHash"]).hex()


def deploy(sender: TxSender) -> Deployment:
    """Deploy a fresh DocumentRegistry (without envelopes: :func:`deploy_envelopes` adds them)."""
    artifact = artifacts.load()
    receipt = sender.transact(None, artifact.bytecode)
    address = receipt.get("contractAddress")
    if not address:
        raise ChainError("deployment transaction produced no contract")
    return Deployment(
        chain_id=sender.chain_id,
        address=parse_address(address),
        block_number=int(receipt["blockNumber"]),
        tx_hash=_tx_hash(receipt),
    )


def deploy_envelopes(sender: TxSender, registry: Deployment) -> Deployment:
    """``registry`` with a fresh DocumentEnvelopes counting its registrations."""
    from docchain.chain import envelopes_contract

    receipt = envelopes_contract.deploy_tx(sender, registry.address)
    envelopes = EnvelopesDeployment(
        address=parse_address(str(receipt["contractAddress"])),
        block_number=int(receipt["blockNumber"]),
        tx_hash=_tx_hash(receipt),
    )
    return replace(registry, envelopes=envelopes)


def _has_code(sender: TxSender, address: str, contract: str) -> bool:
    from docchain.chain.sender import with_retries

    code = with_retries(lambda: sender.w3.eth.get_code(parse_address(address)), "eth_getCode")
    # Immutables (EIP-712's cached domain, the envelopes' registry) are filled in at deployment, so compare
    # lengths, not bytes.
    return len(code) == len(artifacts.load(contract).deployed_bytecode)


def ensure_deployed(sender: TxSender, data_dir: Path) -> tuple[Deployment, bool]:
    """The recorded registry for the sender's chain and its envelopes, deploying what is not recorded or whose
    code is gone: a new registry gets new envelopes, and a registry recorded without envelopes gets them.

    Returns the deployment and whether the registry was freshly deployed.
    """
    chain_id = sender.chain_id
    known = read_all(data_dir).get(chain_id)
    fresh = known is None or not _has_code(sender, known.address, "DocumentRegistry")
    deployment = deploy(sender) if fresh or known is None else known
    envelopes = deployment.envelopes
    if envelopes is None or not _has_code(sender, envelopes.address, "DocumentEnvelopes"):
        deployment = deploy_envelopes(sender, deployment)
    if deployment != known:
        record(data_dir, deployment)
    return deployment, fresh
