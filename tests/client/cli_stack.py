"""The end-to-end CLI tests' stacks: a real anvil with the registry deployed, and either the API as a process of its
own with the ``docchain`` executable run against them as a subprocess, as a user runs it (:func:`cli_stack`), or
the CLI run in this process against the node alone, with funded keys (:func:`funded_cli`).

A stack is started once per test module: an API start costs seconds of CPU (the API and its pipeline child), so
a test whose subject is "no API" points the CLI at :func:`dead_api` rather than stopping the stack's, and a test
that needs a setting the stack's API lacks starts one more beside it (:func:`another_api`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result
from web3 import Web3

from docchain.chain import deploy
from docchain.chain.deploy import ensure_deployed
from docchain.chain.sender import TxSender
from docchain.chain.values import parse_hex
from docchain.client.stack import DEV_RELAYER_KEY, ApiProcess
from tests.support import DevNode, free_port


@dataclass
class CliStack:
    node: DevNode
    registry: str
    api: str
    work: Path  # the user's working directory: their documents and receipts
    env: dict[str, str]
    data_dir: Path  # the API's and the CLI's: deployments.json, the database, the local store
    api_env: dict[str, str]  # the API process's settings

    @property
    def rpc_url(self) -> str:
        return self.node.rpc_url

    def run(
        self, *args: str, check: int | None = 0, cwd: Path | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        """``docchain ARGS`` as the stack's user; its exit status must be ``check`` unless that is None."""
        return _run([*args], {**self.env, **env}, cwd or self.work, check)

    def json(self, *args: str, check: int | None = 0, **env: str) -> Any:
        return json.loads(_run([*args, "--json"], {**self.env, **env}, self.work, check).stdout)

    def stranger(self, *args: str, check: int | None = 0) -> subprocess.CompletedProcess[str]:
        """``docchain ARGS`` from an empty HOME and config, without the API: the node and the registry only."""
        home = self.work / "stranger"
        home.mkdir(exist_ok=True)
        env = {k: v for k, v in self.env.items() if k not in ("DOCCHAIN_API", "DOCCHAIN_DATA_DIR")}
        env.update(HOME=str(home), DOCCHAIN_CONFIG_DIR=str(home / "config"))
        return _run([*args, "--rpc", self.rpc_url, "--registry", self.registry], env, home, check)


def dead_api() -> str:
    """The URL of a port nothing listens on: the CLI pointed there finds no API, as when none runs."""
    return f"http://127.0.0.1:{free_port()}"


def _run(args: list[str], env: dict[str, str], cwd: Path, check: int | None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "docchain.client", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )
    if check is not None:
        assert result.returncode == check, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


@contextmanager
def cli_stack(base: Path, password: str, **api_env: str) -> Iterator[CliStack]:
    """A fresh stack under ``base``; ``api_env`` adds to (or overrides) the API's settings."""
    node = DevNode(base / "node").started()
    api: ApiProcess | None = None
    try:
        data_dir = base / "data"
        sender = TxSender(Web3(Web3.HTTPProvider(node.rpc_url)), parse_hex(DEV_RELAYER_KEY))
        deployment, _ = ensure_deployed(sender, data_dir)
        work = base / "work"
        work.mkdir()
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCCHAIN_")}
        env.update(
            DOCCHAIN_CONFIG_DIR=str(base / "config"),
            DOCCHAIN_DATA_DIR=str(data_dir),
            DOCCHAIN_PASSWORD=password,
            DOCCHAIN_KDF_ITERATIONS="2",  # the key files' KDF at its floor: the tests' keys guard nothing
            DOCCHAIN_API=url,
            DOCCHAIN_TIMEOUT="10",
            COLUMNS="250",  # tables unwrapped, for the tests that read them
        )
        settings = {
            "DOCCHAIN_RPC_URL": node.rpc_url,
            "DOCCHAIN_DATA_DIR": str(data_dir),
            "DOCCHAIN_RELAYER_KEY": DEV_RELAYER_KEY,
            "DOCCHAIN_CONFIRMATIONS": "1",
            "DOCCHAIN_BATCH_INTERVAL_MS": "20",
            "DOCCHAIN_POLL_INTERVAL_MS": "50",
            **api_env,
        }
        api = _start_api(port, data_dir / "api.log", settings)
        yield CliStack(node, deployment.address, url, work, env, data_dir, settings)
    finally:
        if api is not None:
            api.stop()
        node.stop()


def _start_api(port: int, log: Path, settings: dict[str, str]) -> ApiProcess:
    api = ApiProcess.start(host="127.0.0.1", port=port, log_path=log, env=settings)
    try:
        api.wait_ready(60)
    except BaseException:
        api.stop()
        raise
    return api


@contextmanager
def another_api(stack: CliStack, **api_env: str) -> Iterator[str]:
    """A second API on the stack's node and registry, with ``api_env`` over the stack's API settings, for as long
    as the block runs; its URL. Its data directory and database are its own (the stack's API keeps its own
    documents and copies to itself), and it runs no pipeline: what it accepts is not anchored."""
    data_dir = Path(tempfile.mkdtemp(prefix="another-api-", dir=stack.work.parent))
    for deployment in deploy.read_all(stack.data_dir).values():
        deploy.record(data_dir, deployment)
    settings = {**stack.api_env, "DOCCHAIN_DATA_DIR": str(data_dir), "DOCCHAIN_PIPELINE": "off", **api_env}
    port = free_port()
    api = _start_api(port, data_dir / "api.log", settings)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        api.stop()


@dataclass
class FundedCli:
    """The CLI run in this process (typer's runner) against a real anvil with the registry and the envelopes
    deployed and no API: each named key is funded, to send its own transactions as the envelope commands do."""

    node: DevNode
    data_dir: Path
    work: Path
    env: dict[str, str]
    addresses: dict[str, str]  # key name -> address
    runner: CliRunner

    def run(self, *args: str, code: int = 0) -> Result:
        from docchain.client.cli import app

        result = self.runner.invoke(app, list(args), env=self.env, catch_exceptions=False)
        assert result.exit_code == code, f"exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
        return result

    def json(self, *args: str, code: int = 0) -> Any:
        return json.loads(self.run(*args, "--json", code=code).stdout)

    def doc(self, name: str) -> str:
        path = self.work / name
        path.write_text(f"{name}: a document several people sign\n")
        return str(path)

    def create(self, doc: str, *signers: str, extra: tuple[str, ...] = ()) -> dict[str, Any]:
        """``docchain envelope create`` of ``doc`` by alice, naming the ``signers`` (key names)."""
        named = [a for s in signers for a in ("--signer", self.addresses[s])]
        created: dict[str, Any] = self.json("envelope", "create", doc, *named, *extra, "--key", "alice")
        return created


@contextmanager
def funded_cli(base: Path, password: str, names: tuple[str, ...]) -> Iterator[FundedCli]:
    """A fresh anvil under ``base`` with the registry and envelopes deployed, and a funded key per name."""
    node = DevNode(base / "node").started()
    try:
        data_dir = base / "data"
        ensure_deployed(TxSender(Web3(Web3.HTTPProvider(node.rpc_url)), parse_hex(DEV_RELAYER_KEY)), data_dir)
        work = base / "work"
        work.mkdir()
        env = {
            "DOCCHAIN_CONFIG_DIR": str(base / "config"),
            "DOCCHAIN_DATA_DIR": str(data_dir),
            "DOCCHAIN_RPC": node.rpc_url,
            "DOCCHAIN_PASSWORD": password,
            "DOCCHAIN_KDF_ITERATIONS": "2",  # the key files' KDF at its floor: the tests' keys guard nothing
            "DOCCHAIN_TIMEOUT": "10",
            "COLUMNS": "250",  # tables unwrapped, for the tests that read them
        }
        cli = FundedCli(node, data_dir, work, env, {}, CliRunner())
        for name in names:
            address = cli.json("keys", "new", name)["address"]
            node.rpc("anvil_setBalance", [address, hex(10**18)])
            cli.addresses[name] = address
        yield cli
    finally:
        node.stop()
