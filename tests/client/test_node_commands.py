"""`docchain node up | status | down` against a real detached anvil. Issue 19, defect 12: `node status` (and
`node up` finding a node already running) read ``.config`` from the pidfile's RunningNode and crashed with
AttributeError; both answer the same fields as the `node up` that started it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "docchain.client", *args]
    return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_node_status_and_a_second_up_describe_the_running_node(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCCHAIN_")}
    env.update(DOCCHAIN_CONFIG_DIR=str(tmp_path / "config"), DOCCHAIN_DATA_DIR=str(data), COLUMNS="200")
    port = free_port()

    up = _cli(env, "node", "up", "--node-port", str(port), "--json")
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        started = json.loads(up.stdout)
        assert started["started"] is True and started["kind"] == "anvil"
        assert started["rpcUrl"] == f"http://127.0.0.1:{port}"

        status = _cli(env, "node", "status", "--json")
        assert status.returncode == 0, status.stdout + status.stderr
        seen = json.loads(status.stdout)
        assert "Traceback" not in status.stderr
        same = ("running", "rpcUrl", "kind", "pid", "dataDir")
        assert {k: seen[k] for k in same} == {k: started[k] for k in same}
        assert seen["chainId"] == 31337 and seen["latestBlock"] >= 0

        human = _cli(env, "node", "status")
        assert human.returncode == 0, human.stdout + human.stderr
        assert f"127.0.0.1:{port}" in human.stdout and "anvil" in human.stdout

        again = _cli(env, "node", "up", "--json")
        assert again.returncode == 0, again.stdout + again.stderr
        reused = json.loads(again.stdout)
        assert reused["started"] is False and {k: reused[k] for k in same} == {k: started[k] for k in same}
    finally:
        down = _cli(env, "node", "down", "--json")
    assert down.returncode == 0 and json.loads(down.stdout) == {"stopped": True}, down.stdout + down.stderr

    gone = _cli(env, "node", "status", "--json")
    assert gone.returncode == 1 and json.loads(gone.stdout) == {"running": False}
