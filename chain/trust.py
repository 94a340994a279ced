"""Where trust in a registry comes from: released code, and pins the verifier chose.

A receipt names its registry, but nothing in a receipt is trusted because the receipt says so. A registry
is genuine when its runtime code equals the code of a released docchain registry once the immutable values
(EIP-712's cached domain, which the constructor fills in per chain and address) are masked out; a look-alike
contract that answers every view "yes" has other code and is refused however it behaves. A pin — an address
the verifier got from somewhere other than the receipt — narrows this to one registry per chain.

The envelopes contract (DocumentEnvelopes) is pinned the same way, by its own list of released code: a certificate
of completion is read from it, and a receipt's transaction that went through it is reported with its release.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from docchain.chain import artifacts
from docchain.chain.deploy import Deployment, parse_deployments
from docchain.chain.hashing import keccak256
from docchain.chain.values import parse_hash32, to_hex

RELEASES_FILE = "releases.json"
REGISTRY_CONTRACT = "DocumentRegistry"
ENVELOPES_CONTRACT = "DocumentEnvelopes"
DEPLOYMENTS_FILE = "deployments.json"
MERKLE_RELEASE = 2
"""The first release that anchors Merkle roots (``anchorRoot``, ``verifyMerkleRegistration``)."""


@dataclass(frozen=True)
class Release:
    """One released contract: the keccak256 of its runtime code with every immutable zeroed."""

    number: int  # its place in its releases.json list from 1: the list is append-only, so a release keeps its number
    name: str
    masked_code_hash: bytes
    code_length: int
    immutables: tuple[tuple[int, int], ...]

    @property
    def anchors_roots(self) -> bool:
        """Whether this registry can hold Merkle-anchored registrations (format version 2 receipts)."""
        return self.number >= MERKLE_RELEASE


def masked_code(code: bytes, immutables: tuple[tuple[int, int], ...]) -> bytes:
    out = bytearray(code)
    for start, length in immutables:
        out[start : start + length] = bytes(length)
    return bytes(out)


def masked_code_hash(code: bytes, immutables: tuple[tuple[int, int], ...]) -> bytes:
    return keccak256(masked_code(code, immutables))


def current_release_entry(name: str, contract: str = REGISTRY_CONTRACT) -> dict[str, object]:
    """The releases.json entry of ``contract``'s committed artifact (what a new release appends to its list:
    ``releases`` for the registry, ``envelopes`` for DocumentEnvelopes)."""
    artifact = artifacts.load(contract)
    code, refs = artifact.deployed_bytecode, artifact.immutable_references
    return {
        "name": name,
        "maskedCodeHash": to_hex(masked_code_hash(code, refs)),
        "codeLength": len(code),
        "immutables": [list(r) for r in refs],
    }


def _listed(key: str) -> tuple[Release, ...]:
    data = json.loads(files("docchain.contracts").joinpath(RELEASES_FILE).read_text())
    return tuple(
        Release(
            number=number,
            name=str(r["name"]),
            masked_code_hash=parse_hash32(r["maskedCodeHash"], "maskedCodeHash"),
            code_length=int(r["codeLength"]),
            immutables=tuple((int(s), int(n)) for s, n in r["immutables"]),
        )
        for number, r in enumerate(data.get(key, ()), start=1)
    )


@cache
def releases() -> tuple[Release, ...]:
    """Every released registry's code, oldest first, so receipts made by older releases still verify."""
    return _listed("releases")


@cache
def envelopes_releases() -> tuple[Release, ...]:
    """Every released DocumentEnvelopes' code, oldest first (releases.json's ``envelopes`` list)."""
    return _listed("envelopes")


def _match(code: bytes, listed: tuple[Release, ...]) -> Release | None:
    for release in listed:
        if len(code) == release.code_length and masked_code_hash(code, release.immutables) == release.masked_code_hash:
            return release
    return None


def release_of(code: bytes) -> Release | None:
    """The release whose code ``code`` is, immutables aside; None for any other code."""
    return _match(code, releases())


def envelopes_release_of(code: bytes) -> Release | None:
    """The DocumentEnvelopes release whose code ``code`` is, immutables (the registry it counts toward, its
    EIP-712 domain) aside; None for any other code."""
    return _match(code, envelopes_releases())


@dataclass(frozen=True)
class Pin:
    """A registry address the verifier trusts for one chain, and where it learnt it (said in the verdict)."""

    chain_id: int | None  # None: whatever chain the node serves (an explicit --registry)
    address: str
    source: str
    deploy_block: int | None = None


@cache
def shipped_deployments() -> dict[int, Deployment]:
    """The registries docchain publishes (chain id → address, deploy block and transaction), shipped with
    the package like EAS's and Safe's deployment lists."""
    text = files("docchain.contracts").joinpath(DEPLOYMENTS_FILE).read_text()
    return parse_deployments(json.loads(text), f"docchain.contracts/{DEPLOYMENTS_FILE}")


def pin_from_deployments(chain_id: int, *sources: tuple[str, dict[int, Deployment]]) -> Pin | None:
    """The first deployments list (in the order given) that names a registry for ``chain_id``."""
    for where, deployments in sources:
        known = deployments.get(chain_id)
        if known is not None:
            return Pin(chain_id, known.address, where, known.block_number)
    return None
