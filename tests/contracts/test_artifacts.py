"""The committed contract artifacts are exactly what the pinned compiler produces from the sources."""

from __future__ import annotations

import json

from docchain.contracts import compile as solc_build


def test_committed_artifacts_are_byte_identical_to_a_fresh_compile() -> None:
    fresh = solc_build.compile_artifacts()
    assert set(fresh) == {
        "DocumentRegistry.json",
        "DocumentEnvelopes.json",
        "MockERC1271Wallet.json",
        "LookAlikeRegistry.json",
    }
    for name, text in fresh.items():
        assert (solc_build.BUILD / name).read_text() == text, (
            f"{name} is stale: run python -m docchain.contracts.compile"
        )


def test_artifacts_pin_an_evm_version_both_nodes_run() -> None:
    artifact = json.loads((solc_build.BUILD / "DocumentRegistry.json").read_text())
    assert artifact["settings"]["evmVersion"] == "shanghai"  # ganache 7.9's last hardfork
    assert json.loads(artifact["metadata"])["settings"]["evmVersion"] == "shanghai"
    assert artifact["compiler"].startswith("0.8.37")
