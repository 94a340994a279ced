"""Shared fixtures: real local nodes (anvil and ganache) and a deployed registry on each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from web3 import Web3

from docchain.chain import deploy
from docchain.chain.node import LocalNode, NodeConfig
from docchain.chain.registry import Registry
from docchain.chain.sender import TxSender

# The dev accounts both nodes derive from the standard test mnemonic.
DEV_KEYS = [
    bytes.fromhex("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"),
    bytes.fromhex("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"),
    bytes.fromhex("5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"),
]


# The folders whose files take longest (each a minute or more of real stacks, browsers and faults) run first:
# `make test` hands whole files to its workers in this order, and one of these started last kept one worker
# busy for minutes while the other had nothing left to do.
HEAVY_FIRST = ("tests/reliability/", "tests/web/")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: not item.nodeid.startswith(HEAVY_FIRST))  # stable: each file stays whole


def _start(kind: str, tmp: Path) -> Iterator[LocalNode]:
    node = LocalNode(NodeConfig(kind=kind, data_dir=tmp))  # type: ignore[arg-type]
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNode]:
    yield from _start("anvil", tmp_path_factory.mktemp("anvil"))


@pytest.fixture(scope="session")
def ganache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNode]:
    yield from _start("ganache", tmp_path_factory.mktemp("ganache"))


@pytest.fixture(scope="session", params=["anvil", pytest.param("ganache", marks=pytest.mark.ganache)])
def node(request: pytest.FixtureRequest) -> LocalNode:
    """Each test using it runs once on anvil and once on ganache."""
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="session")
def w3(node: LocalNode) -> Web3:
    return Web3(Web3.HTTPProvider(node.rpc_url, request_kwargs={"timeout": 30}))


@pytest.fixture(scope="session")
def relayer(w3: Web3) -> TxSender:
    return TxSender(w3, DEV_KEYS[0])


@pytest.fixture(scope="session")
def registry(w3: Web3, relayer: TxSender, tmp_path_factory: pytest.TempPathFactory) -> Registry:
    deployment, fresh = deploy.ensure_deployed(relayer, tmp_path_factory.mktemp("deployments"))
    assert fresh
    return Registry(w3, deployment.address, relayer)
