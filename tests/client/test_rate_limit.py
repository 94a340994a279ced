"""`docchain submit` of more documents than a signer's burst: the CLI waits out the API's 429s (as its
Retry-After says) and every document is accepted (a limit it cannot wait out is exit 3, "try later": see
test_exit_codes)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from web3 import Web3

from docchain.chain.deploy import ensure_deployed
from docchain.chain.sender import TxSender
from docchain.chain.values import parse_hex
from docchain.client.stack import DEV_RELAYER_KEY, ApiProcess
from tests.support import DevNode, free_port

SIGNER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, dict[str, str]]]:
    """An API whose per-signer bucket holds 2 writes and refills one a second."""
    base = tmp_path_factory.mktemp("limits")
    node = DevNode(base / "node").started()
    api = None
    try:
        data = base / "data"
        ensure_deployed(TxSender(Web3(Web3.HTTPProvider(node.rpc_url)), parse_hex(DEV_RELAYER_KEY)), data)
        port = free_port()
        api = ApiProcess.start(
            host="127.0.0.1",
            port=port,
            log_path=base / "api.log",
            env={
                "DOCCHAIN_RPC_URL": node.rpc_url,
                "DOCCHAIN_DATA_DIR": str(data),
                "DOCCHAIN_RELAYER_KEY": DEV_RELAYER_KEY,
                "DOCCHAIN_SIGNER_RATE_PER_MINUTE": "60",
                "DOCCHAIN_SIGNER_BURST": "2",
            },
        )
        api.wait_ready(60)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCCHAIN_")}
        env.update(
            DOCCHAIN_API=f"http://127.0.0.1:{port}",
            DOCCHAIN_CONFIG_DIR=str(base / "config"),
            DOCCHAIN_DATA_DIR=str(data),
            DOCCHAIN_PASSWORD="pw",
            DOCCHAIN_KDF_ITERATIONS="2",
        )
        work = base / "work"
        work.mkdir()
        key_file = base / "key.txt"
        key_file.write_text(SIGNER_KEY)
        _cli(env, work, "keys", "import", "alice", "--key-file", str(key_file))
        yield f"http://127.0.0.1:{port}", work, env
    finally:
        if api is not None:
            api.stop()
        node.stop()


def _cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "docchain.client", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_submit_waits_out_the_signer_limit(limited: tuple[str, Path, dict[str, str]]) -> None:
    _, work, env = limited
    files = []
    for i in range(5):
        path = work / f"minutes-{i}.txt"
        path.write_bytes(f"minutes of meeting {i}\n".encode() + os.urandom(8))
        files.append(str(path))
    result = _cli(env, work, "submit", *files, "--json")
    assert result.returncode == 0, result.stderr
    assert "429" not in result.stderr
