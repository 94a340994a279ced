"""`docchain up --no-serve`: the README's first command, run once end to end and cleaned up after."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_up_no_serve_signs_and_verifies_a_sample_then_stops(tmp_path: Path) -> None:
    from docchain.client import stack

    data = tmp_path / "data"
    api_port, node_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCCHAIN_")}
    env["DOCCHAIN_CONFIG_DIR"] = str(tmp_path / "config")
    command = [
        sys.executable,
        "-m",
        "docchain.client",
        "up",
        "--no-serve",
        "--data-dir",
        str(data),
        "--port",
        str(api_port),
        "--node-port",
        str(node_port),
    ]

    result = subprocess.run([*command, "--json"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=150)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["apiVerdict"] == "valid" and report["rpcVerdict"] == "valid"
    assert Path(report["receipt"]).exists() and Path(report["sample"]).exists()
    deployments = json.loads((data / "deployments.json").read_text())
    assert deployments[str(report["chainId"])]["address"] == report["registry"]

    # everything it started is stopped: the node and the API port are free again
    assert stack.find_node(data) is None
    stack.check_port("127.0.0.1", api_port)

    # a second run reuses the registry (deployed once) and prints each step for people
    again = subprocess.run(
        command, env={**env, "COLUMNS": "200"}, cwd=ROOT, capture_output=True, text=True, timeout=150
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"found the registry at {report['registry']}" in again.stdout
    assert "verified independently (receipt + node only): VALID" in again.stdout
    assert "node stopped" in again.stdout
