"""`docchain up`: the README's first command, run end to end and cleaned up after; `docchain serve`.
A supervisor's SIGTERM stops either one gracefully, with exit status 0."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support import DevNode, free_port, poll

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def running(command: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``command`` in the background, its output in ``log``; killed on the way out if a test left it running."""
    with open(log, "w") as out:
        proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def stops_on_sigterm(proc: subprocess.Popen[bytes], log: Path) -> None:
    """SIGTERM to the command only, as a supervisor sends it: a graceful stop, exit status 0."""
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0, log.read_text()


def test_up_signs_and_verifies_a_sample_then_stops(tmp_path: Path) -> None:
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

    # a second run reuses the registry (deployed once), prints each step for people and serves until a
    # supervisor's SIGTERM, which stops the API and the node and exits 0; with two confirmations required, it
    # mines the block the idle dev node would not, and the sample verifies
    serving = [*(arg for arg in command if arg != "--no-serve"), "--confirmations", "2"]
    out_file = tmp_path / "up.out"
    with running(serving, {**env, "COLUMNS": "200"}, out_file) as proc:
        poll(lambda: proc.poll() is not None or "docchain is up" in out_file.read_text(), 150, what="docchain up")
        assert proc.poll() is None, out_file.read_text()
        stops_on_sigterm(proc, out_file)
    again = out_file.read_text()
    assert f"found the registry at {report['registry']}" in again
    assert "mined 1 empty block(s): the sample needs 2 confirmations" in again
    assert "verified through the API: VALID" in again
    assert "verified independently (receipt + node only): VALID" in again
    assert "API stopped" in again and "node stopped" in again
    assert stack.find_node(data) is None
    stack.check_port("127.0.0.1", api_port)


def test_serve_stops_the_api_on_sigterm_and_exits_0(tmp_path: Path) -> None:
    from web3 import HTTPProvider, Web3

    from docchain.chain.deploy import ensure_deployed
    from docchain.chain.sender import TxSender
    from docchain.chain.values import parse_hex
    from docchain.client import stack

    data = tmp_path / "data"
    node = DevNode(tmp_path / "node").started()
    try:
        ensure_deployed(TxSender(Web3(HTTPProvider(node.url)), parse_hex(stack.DEV_RELAYER_KEY)), data)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCCHAIN_")}
        env.update(DOCCHAIN_CONFIG_DIR=str(tmp_path / "config"), DOCCHAIN_RELAYER_KEY=stack.DEV_RELAYER_KEY)
        command = [sys.executable, "-m", "docchain.client", "serve", "--rpc", node.url, "--data-dir", str(data)]
        log = tmp_path / "serve.out"  # the API child writes its request log lines here too
        with running([*command, "--port", str(port)], env, log) as proc:

            def ready() -> bool:
                assert proc.poll() is None, log.read_text()
                return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200

            poll(ready, 60, what="the API behind `docchain serve`")
            stops_on_sigterm(proc, log)
        stack.check_port("127.0.0.1", port)  # the API child was stopped, not orphaned
    finally:
        node.stop()


def test_serve_on_the_embedded_node_deploys_the_registry_and_runs_workers(tmp_path: Path) -> None:
    """`docchain node up && docchain serve --workers 2`, as serve's help shows it: with no relayer configured,
    the dev account #0 deploys the registry (none was recorded) and two API processes serve the port."""
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCCHAIN_")}
    env.update(DOCCHAIN_CONFIG_DIR=str(tmp_path / "config"))
    cli = [sys.executable, "-m", "docchain.client"]
    node_port, port = free_port(), free_port()
    up = subprocess.run(
        [*cli, "node", "up", "--data-dir", str(data), "--node-port", str(node_port)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert up.returncode == 0, up.stderr
    try:
        log = tmp_path / "serve.out"
        serve = [*cli, "serve", "--data-dir", str(data), "--port", str(port), "--workers", "2"]
        with running(serve, env, log) as proc:
            seen: set[str] = set()

            def both_ready() -> bool:
                assert proc.poll() is None, log.read_text()
                r = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)  # a new connection: either worker
                if r.status_code == 200:
                    seen.add(r.json()["worker"])
                return {"ok", "standby"} <= seen

            poll(both_ready, 90, what="both workers ready behind `docchain serve --workers 2`")
            assert "deployed the registry at" in log.read_text()
            assert (data / "deployments.json").is_file()
            stops_on_sigterm(proc, log)
        from docchain.client import stack

        stack.check_port("127.0.0.1", port)  # every worker stopped with it
    finally:
        subprocess.run([*cli, "node", "down", "--data-dir", str(data)], env=env, capture_output=True, timeout=60)
