"""A real kubo node for the IPFS backend's tests: offline, loopback only, started and stopped by its pid.

The node never dials out: it is initialised with the ``test`` profile, its config then loses every bootstrap
peer, swarm address, DHT/delegated routing, mDNS, AutoConf and telemetry, and the daemon runs ``--offline``. The
API and gateway listen on ports the kernel picks on 127.0.0.1 (no race with other tests for a "free" port); the
daemon prints them, and the fixture reads them from its log.

The binary is ``$DOCCHAIN_KUBO`` or the one ``make kubo`` builds into ``~/.cache/docchain``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from docchain.api.storage.base import Placement
from docchain.api.storage.ipfs import IpfsConfig, IpfsStorage
from tests.storage import BackendCase

KUBO_VERSION = "v0.43.1"  # the Makefile's KUBO_VERSION
DEFAULT_BINARY = Path.home() / ".cache" / "docchain" / f"kubo-{KUBO_VERSION}" / "ipfs"


def kubo_binary() -> Path | None:
    configured = os.environ.get("DOCCHAIN_KUBO")
    path = Path(configured) if configured else DEFAULT_BINARY
    return path if path.is_file() and os.access(path, os.X_OK) else None


@dataclass(frozen=True)
class Kubo:
    """A running node: its RPC API and gateway URLs, and its repo (``IPFS_PATH``) for the ``ipfs`` CLI."""

    binary: Path
    repo: Path
    api_url: str
    gateway_url: str
    pid: int

    def env(self) -> dict[str, str]:
        return _env(self.repo)

    def cli(self, *args: str, input: bytes | None = None, timeout: float = 120) -> str:
        """``ipfs ARGS`` against this node (the CLI finds the daemon through the repo's ``api`` file)."""
        done = subprocess.run(
            [str(self.binary), *args], env=self.env(), input=input, capture_output=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise AssertionError(f"ipfs {' '.join(args)} failed: {done.stderr.decode(errors='replace')}")
        return done.stdout.decode()


def _env(repo: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IPFS_", "LIBP2P_"))}
    env["IPFS_PATH"] = str(repo)
    env["IPFS_TELEMETRY"] = "off"
    env["GOLOG_LOG_LEVEL"] = "error"
    return env


def _offline_config(config: dict[str, Any], /) -> None:
    """Removes everything in a kubo config that could reach beyond this machine (the ``test`` profile already
    drops some of it; saying it again keeps the node offline whatever a later kubo's profile does)."""
    config["Addresses"].update(
        API="/ip4/127.0.0.1/tcp/0", Gateway="/ip4/127.0.0.1/tcp/0", Swarm=[], Announce=[], AppendAnnounce=[]
    )
    config["Bootstrap"] = []
    config["Routing"].update(Type="none", DelegatedRouters=[])
    config["Discovery"] = {"MDNS": {"Enabled": False}}
    config["AutoConf"] = {"Enabled": False}
    config["Plugins"] = {"Plugins": {"telemetry": {"Config": {"Mode": "off"}}}}


def start_kubo(binary: Path, repo: Path, timeout: float = 60.0) -> tuple[Kubo, subprocess.Popen[bytes]]:
    env = _env(repo)
    subprocess.run(
        [str(binary), "init", "--profile=test", "--empty-repo"], env=env, check=True, capture_output=True, timeout=60
    )
    config_path = repo / "config"
    config = json.loads(config_path.read_text())
    _offline_config(config)
    config_path.write_text(json.dumps(config, indent=2))
    log_path = repo / "daemon.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(binary), "daemon", "--offline"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    deadline = time.monotonic() + timeout
    while True:
        text = log_path.read_text(errors="replace")
        if "Daemon is ready" in text:
            break
        if process.poll() is not None or time.monotonic() > deadline:
            _stop(process)
            raise RuntimeError(f"kubo did not start (exit {process.returncode}):\n{text}")
        time.sleep(0.05)
    api = re.search(r"RPC API server listening on /ip4/127\.0\.0\.1/tcp/(\d+)", text)
    gateway = re.search(r"Gateway server listening on /ip4/127\.0\.0\.1/tcp/(\d+)", text)
    if not api or not gateway:
        _stop(process)
        raise RuntimeError(f"kubo's listening addresses are not in its log:\n{text}")
    kubo = Kubo(binary, repo, f"http://127.0.0.1:{api.group(1)}", f"http://127.0.0.1:{gateway.group(1)}", process.pid)
    return kubo, process


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def kubo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubo]:
    """One offline kubo node for the session. Missing binary: skipped locally (``make kubo`` builds it), a
    failure in CI, where ``make test`` has built it."""
    binary = kubo_binary()
    if binary is None:
        message = f"no kubo binary at $DOCCHAIN_KUBO or {DEFAULT_BINARY}: run `make kubo`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    node, process = start_kubo(binary, tmp_path_factory.mktemp("kubo"))
    try:
        yield node
    finally:
        _stop(process)


@pytest.fixture
def ipfs_case(kubo: Kubo) -> Iterator[BackendCase]:
    """The IPFS backend for the contract suite. A copy cannot change under its CID, so ``corrupt`` pins other
    bytes of the same length and names them (tests/storage/test_ipfs.py alters a block in the datastore
    instead); ``leftovers`` are the pins made since the case began (the session's node is shared), unpinned
    blocks being the node's cache until its garbage collection."""
    storage = IpfsStorage(IpfsConfig(api_url=kubo.api_url, timeout=30))
    before = set(_pins(kubo))

    def corrupt(doc_hash: bytes, placement: Placement) -> Placement:
        data = b"".join(storage.open(doc_hash, placement))
        other = data[:-1] + bytes([data[-1] ^ 1]) if data else b"\0"
        cid = kubo.cli("add", "--quieter", "--cid-version=1", input=other).strip()
        return Placement(placement.backend, cid, len(other), placement.sealed)

    def leftovers() -> list[str]:
        return sorted(f"pin {cid}" for cid in set(_pins(kubo)) - before)

    yield BackendCase(storage, corrupt, leftovers)
    storage.close()


def _pins(kubo: Kubo) -> list[str]:
    return kubo.cli("pin", "ls", "--type=recursive", "--quiet").split()
