"""Where trust in a registry comes from: released code (immutables masked) and pins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from docchain.chain import artifacts, deploy, trust
from docchain.chain.errors import InvalidInput


def test_the_committed_registry_is_a_listed_release() -> None:
    """Changing the contract without appending its release would make every new receipt unverifiable."""
    artifact = artifacts.load()
    release = trust.release_of(artifact.deployed_bytecode)
    assert release is not None, "append trust.current_release_entry(...) to contracts/releases.json"
    assert release.immutables == artifact.immutable_references


def test_the_committed_envelopes_contract_is_a_listed_release() -> None:
    """A changed DocumentEnvelopes without its entry in releases.json's envelopes list would leave every new
    certificate unverifiable; the registry's releases do not admit it, nor its releases the registry."""
    artifact = artifacts.load(trust.ENVELOPES_CONTRACT)
    release = trust.envelopes_release_of(artifact.deployed_bytecode)
    assert release is not None, (
        "append trust.current_release_entry(..., trust.ENVELOPES_CONTRACT) to contracts/releases.json's envelopes"
    )
    assert release.immutables == artifact.immutable_references
    assert trust.release_of(artifact.deployed_bytecode) is None
    assert trust.envelopes_release_of(artifacts.load().deployed_bytecode) is None
    start, length = artifact.immutable_references[0]
    outside = bytearray(artifact.deployed_bytecode)
    outside[start - 1] ^= 0xFF
    assert trust.envelopes_release_of(bytes(outside)) is None


def test_immutables_are_masked_and_nothing_else() -> None:
    code = artifacts.load().deployed_bytecode
    start, length = artifacts.load().immutable_references[0]
    per_deployment = code[:start] + b"\x5a" * length + code[start + length :]
    assert trust.release_of(per_deployment) is not None  # another chain / address: same release
    outside = bytearray(code)
    outside[start - 1] ^= 0xFF  # one byte of real code beside an immutable
    assert trust.release_of(bytes(outside)) is None
    assert trust.release_of(code + b"\x00") is None
    assert trust.release_of(artifacts.load("LookAlikeRegistry").deployed_bytecode) is None


def test_releases_are_append_only_history() -> None:
    data = json.loads((Path(trust.__file__).parents[1] / "contracts" / "releases.json").read_text())
    for key in ("releases", "envelopes"):
        names = [r["name"] for r in data[key]]
        assert len(names) == len(set(names)) >= 1
    # a registry's domain separator is at one of its immutable ranges, which a third-party verifier reads here
    # (tests/chain/test_bundle_vectors.py finds it there in real deployed code)
    for r in data["releases"]:
        assert [r["domainSeparatorAt"], 32] in r["immutables"], r["name"]


def test_pins_come_from_the_first_deployments_list_naming_the_chain(tmp_path: Path) -> None:
    mine = deploy.Deployment(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3", 1, "0x" + "11" * 32)
    published = deploy.Deployment(31337, "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512", 7, "0x" + "22" * 32)
    deploy.record_in(tmp_path / "deployments.json", mine)
    local = deploy.read_file(tmp_path / "deployments.json")
    pin = trust.pin_from_deployments(31337, ("local", local), ("published", {31337: published}))
    assert pin == trust.Pin(31337, mine.address, "local", 1)
    assert trust.pin_from_deployments(1, ("local", local), ("published", {31337: published})) is None


def test_the_shipped_deployments_file_reads() -> None:
    for chain_id, known in trust.shipped_deployments().items():
        assert known.chain_id == chain_id


@pytest.mark.parametrize(
    "text",
    ['{"1": {"address": "0x5FbDB2315678afecb367f032d93F642f64180aa3"}}', "[1]", "{"],
)
def test_a_malformed_deployments_file_is_refused_by_name(tmp_path: Path, text: str) -> None:
    path = tmp_path / "deployments.json"
    path.write_text(text)
    with pytest.raises(InvalidInput, match="deployments file"):
        deploy.read_file(path)
