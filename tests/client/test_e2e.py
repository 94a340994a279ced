"""End to end: the `docchain` executable as a subprocess against a real API process and a real anvil.

keys new → submit --wait → receipt written → verify via API → verify via --rpc with the API stopped →
tampered file fails (exit 1) → tampered receipt fails → revoke → verify shows revoked; plus the API
unreachable (one line, exit 3), stored-file download, status / list / inspect.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from docchain.chain.deploy import ensure_deployed
from docchain.chain.sender import TxSender
from docchain.chain.values import parse_hex
from docchain.client.stack import DEV_RELAYER_KEY, ApiProcess
from tests.support import DevNode, free_port

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "e2e password"


@dataclass
class Stack:
    rpc_url: str
    data_dir: Path
    work: Path
    env: dict[str, str]
    api: ApiProcess | None = None
    api_port: int = 0

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start_api(self) -> None:
        self.api = ApiProcess.start(
            host="127.0.0.1",
            port=self.api_port,
            log_path=self.data_dir / "api.log",
            env={
                "DOCCHAIN_RPC_URL": self.rpc_url,
                "DOCCHAIN_DATA_DIR": str(self.data_dir),
                "DOCCHAIN_RELAYER_KEY": DEV_RELAYER_KEY,
                "DOCCHAIN_CONFIRMATIONS": "1",
                "DOCCHAIN_BATCH_INTERVAL_MS": "20",
                "DOCCHAIN_POLL_INTERVAL_MS": "50",
            },
        )
        self.api.wait_ready(60)

    def stop_api(self) -> None:
        assert self.api is not None
        self.api.stop()
        self.api = None

    def run(
        self, *args: str, check: int | None = 0, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "docchain.client", *args],
            env={**self.env, **(env or {})},
            cwd=self.work,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check is not None:
            assert result.returncode == check, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
        return result

    def json(self, *args: str, check: int = 0) -> object:
        return json.loads(self.run(*args, "--json", check=check).stdout)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("e2e")
    anvil = DevNode(base / "node").started()
    rpc_url = anvil.rpc_url
    try:
        from web3 import Web3

        data_dir = base / "data"
        ensure_deployed(TxSender(Web3(Web3.HTTPProvider(rpc_url)), parse_hex(DEV_RELAYER_KEY)), data_dir)
        work = base / "work"
        work.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCCHAIN_")}
        api_port = free_port()
        env.update(
            DOCCHAIN_CONFIG_DIR=str(base / "config"),
            DOCCHAIN_DATA_DIR=str(data_dir),
            DOCCHAIN_PASSWORD=PASSWORD,
            DOCCHAIN_KDF_ITERATIONS="2",
            DOCCHAIN_API=f"http://127.0.0.1:{api_port}",
            DOCCHAIN_TIMEOUT="10",
            COLUMNS="200",
        )
        s = Stack(rpc_url=rpc_url, data_dir=data_dir, work=work, env=env, api_port=api_port)
        s.start_api()
        yield s
        if s.api is not None:
            s.stop_api()
    finally:
        anvil.stop()


def test_sign_verify_tamper_revoke(stack: Stack) -> None:
    key = stack.json("keys", "new", "alice")
    assert isinstance(key, dict)
    signer = key["address"]
    doc = stack.work / "contract.pdf"
    doc.write_bytes(b"%PDF-1.7 a contract between Alice and Bob\n" * 100)

    # submit --wait: signed locally, anchored, receipt written beside the file
    submitted = stack.json("submit", str(doc), "--wait", "--note", "first")
    assert isinstance(submitted, list) and submitted[0]["state"] in ("anchored", "confirmed")
    receipt_file = stack.work / "contract.pdf.docchain.json"
    receipt = json.loads(receipt_file.read_text())
    assert receipt["signer"] == signer and receipt["document"]["name"] == "contract.pdf"
    assert receipt["anchor"]["transactionHash"] == submitted[0]["txHash"]

    # a second submit refuses to overwrite the receipt
    again = stack.run("submit", str(doc), "--wait", check=2)
    assert "already exists; pass --force" in again.stderr

    # verify via the API
    via_api = stack.json("verify", str(doc))
    assert isinstance(via_api, dict) and via_api["outcome"] == "valid" and via_api["mode"] == "api"
    assert via_api["trust"]["sources"] == ["code", "pin"]
    assert via_api["anchor"]["transactionHash"] == submitted[0]["txHash"]
    human = stack.run("verify", str(doc))
    assert f"VALID: Signed by {signer} on " in human.stdout

    # verify independently with the API stopped: receipt + node only
    stack.stop_api()
    down = stack.run("verify", str(doc), "--retries", "1", check=3)
    assert down.stderr.strip() == f"error: cannot reach the docchain API at {stack.api_url}: connection refused"
    independent = stack.json("verify", str(doc), "--rpc", stack.rpc_url)
    assert isinstance(independent, dict) and independent["outcome"] == "valid" and independent["mode"] == "rpc"
    assert [c["name"] for c in independent["steps"]] == [
        "file",
        "chain",
        "registry",
        "signature",
        "record",
        "anchor",
        "confirmations",
        "revocation",
    ]
    assert all(c["ok"] for c in independent["steps"])
    assert independent["summary"] == via_api["summary"]

    # tampered file: one byte changed, the original receipt beside it → exit 1, the hash check fails
    tampered = stack.work / "tampered.pdf"
    tampered.write_bytes(doc.read_bytes()[:-1] + b"?")
    shutil.copy(receipt_file, stack.work / "tampered.pdf.docchain.json")
    bad_file = stack.json("verify", str(tampered), "--rpc", stack.rpc_url, check=1)
    assert isinstance(bad_file, dict) and bad_file["outcome"] == "file_mismatch"
    assert bad_file["failedStep"] == "file"

    # tampered receipts: a forged block number; a signature by someone else; a broken one
    forged = json.loads(receipt_file.read_text())
    forged["anchor"]["blockNumber"] += 1
    (stack.work / "forged-block.json").write_text(json.dumps(forged))
    out = stack.json("verify", str(doc), "--rpc", stack.rpc_url, "--receipt", "forged-block.json", check=1)
    assert isinstance(out, dict) and out["failedStep"] == "anchor"

    forged = json.loads(receipt_file.read_text())
    sig = bytearray(bytes.fromhex(forged["signature"][2:]))
    sig[10] ^= 0x01
    forged["signature"] = "0x" + sig.hex()
    (stack.work / "forged-sig.json").write_text(json.dumps(forged))
    out = stack.json("verify", str(doc), "--rpc", stack.rpc_url, "--receipt", "forged-sig.json", check=1)
    assert isinstance(out, dict) and out["failedStep"] == "signature"

    forged = json.loads(receipt_file.read_text())
    forged["document"]["sha256"] = "0x" + "00" * 32
    (stack.work / "inconsistent.json").write_text(json.dumps(forged))
    broken = stack.json("verify", str(doc), "--rpc", stack.rpc_url, "--receipt", "inconsistent.json", check=1)
    assert isinstance(broken, dict) and broken["failedStep"] == "receipt" and "document.sha256" in broken["reason"]

    # revoke (API back up: submissions and records survived the restart)
    stack.start_api()
    revoked = stack.json("revoke", str(doc), "--wait")
    assert isinstance(revoked, dict) and revoked["state"] == "revoked"
    after = stack.json("verify", str(doc), check=1)
    assert isinstance(after, dict) and after["outcome"] == "revoked"
    assert after["revocation"]["by"] == signer and after["revocation"]["blockNumber"] > after["anchor"]["blockNumber"]
    assert re.fullmatch(
        rf"{signer} revoked this signature in block \d+ on \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d UTC\.", after["summary"]
    )
    after_rpc = stack.run("verify", str(doc), "--rpc", stack.rpc_url, check=1)
    assert f"REVOKED: {after['summary']}" in after_rpc.stdout

    # status and the terminal explorer see it too
    status = stack.json("status", str(doc))
    assert isinstance(status, dict)
    assert [(s["signer"], s["state"]) for s in status["signers"]] == [(signer, "revoked")]
    events = stack.json("inspect", "events", "--signer", signer, "--rpc", stack.rpc_url)
    assert isinstance(events, list) and [e["kind"] for e in events] == ["Registered", "Revoked"]
    tx = stack.json("inspect", "tx", submitted[0]["txHash"], "--rpc", stack.rpc_url)
    assert isinstance(tx, dict) and tx["status"] == "success" and tx["events"][0]["signer"] == signer


def test_many_files_store_list_get(stack: Stack) -> None:
    if stack.api is None:
        stack.start_api()
    stack.json("keys", "import", "bob", "--key-file", str(_hex_file(stack.work, "0x" + "42" * 32)))
    files = []
    for i in range(3):
        path = stack.work / f"report-{i}.txt"
        path.write_text(f"report {i}\n")
        files.append(str(path))
    out = stack.json("submit", *files, "--key", "bob", "--store", "--wait")
    assert isinstance(out, list) and len(out) == 3
    assert all(r["state"] in ("anchored", "confirmed") and Path(r["receipt"]).exists() for r in out)

    listed = stack.json("list", "--signer", out[0]["signer"])
    assert isinstance(listed, dict) and {i["docHash"] for i in listed["items"]} == {r["docHash"] for r in out}

    target = stack.work / "copy.txt"
    got = stack.json("get", out[1]["docHash"], "-o", str(target))
    assert isinstance(got, dict) and target.read_text() == "report 1\n"
    stack.run("get", out[1]["docHash"], "-o", str(target), check=2)  # never overwritten silently

    unknown = stack.run("status", "0x" + "ee" * 32, check=1)
    assert len(unknown.stderr.strip().splitlines()) == 1


def _hex_file(folder: Path, key: str) -> Path:
    path = folder / "key.hex"
    path.write_text(key)
    return path


def _submit_direct(stack: Stack, name: str, key: str, doc: Path) -> object:
    """Import ``key`` as ``name`` and register ``doc`` with it straight on chain (``--direct``; the API
    address given is a dead port, so nothing goes through an API)."""
    stack.json("keys", "import", name, "--key-file", str(_hex_file(stack.work, key)))
    return stack.json(
        "submit", str(doc), "--key", name, "--direct", "--rpc", stack.rpc_url, "--api", "http://127.0.0.1:9"
    )


def test_direct_submission_signer_pays_gas(stack: Stack) -> None:
    # anvil's dev account #2 has ether; --direct sends the transaction itself, no API involved
    doc = stack.work / "direct.txt"
    doc.write_text("sent by the signer\n")
    out = _submit_direct(stack, "carol", "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a", doc)
    assert isinstance(out, list) and out[0]["state"] == "anchored"
    verdict = stack.json("verify", str(doc), "--rpc", stack.rpc_url)
    assert isinstance(verdict, dict) and verdict["outcome"] == "valid"
    again = stack.run("submit", str(doc), "--key", "carol", "--direct", "--rpc", stack.rpc_url, "--force", check=2)
    assert "already registered this document" in again.stderr


def test_inspect_events_scans_from_the_deployment_block(stack: Stack, tmp_path: Path) -> None:
    """Without --from-block, `inspect events` asks eth_getLogs from the registry's recorded deployment block,
    not from block 0: the events are all found, and nothing before that block is scanned."""
    from dataclasses import replace

    from docchain.chain import deploy

    # anvil's dev account #3 has ether: a direct registration, so this test needs no API
    doc = stack.work / "minutes.txt"
    doc.write_text("minutes of the meeting\n")
    out = _submit_direct(stack, "dave", "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6", doc)
    assert isinstance(out, list) and out[0]["state"] == "anchored"
    signer, block = out[0]["signer"], out[0]["blockNumber"]
    (recorded,) = deploy.read_all(stack.data_dir).values()
    assert recorded.block_number < block

    def events(*args: str) -> list[tuple[str, int]]:
        found = stack.json("inspect", "events", "--signer", signer, "--rpc", stack.rpc_url, *args)
        assert isinstance(found, list)
        return [(e["kind"], e["blockNumber"]) for e in found]

    assert events() == [("Registered", block)]
    human = stack.run("inspect", "events", "--signer", signer, "--rpc", stack.rpc_url)
    assert f"registry events since block {recorded.block_number} (its deployment)" in human.stdout

    # The start is the recorded block: a record that (falsely) says "deployed after the event" hides it ...
    httpx.post(stack.rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": "anvil_mine", "params": ["0x2"]})
    later = tmp_path / "later"
    deploy.record(later, replace(recorded, block_number=block + 1))
    assert events("--data-dir", str(later)) == []
    assert events("--data-dir", str(later), "--from-block", "0") == [("Registered", block)]
    assert events("--data-dir", str(later), "--from-block", str(block)) == [("Registered", block)]
    # ... a record beyond the chain's head (kept from before a reset) is not this chain's: block 0 ...
    stale = tmp_path / "stale"
    deploy.record(stale, replace(recorded, block_number=block + 10_000))
    assert events("--data-dir", str(stale)) == [("Registered", block)]
    # ... and a registry the data dir does not record (--registry) is scanned from block 0
    other = tmp_path / "other"
    deploy.record(other, replace(recorded, address="0x" + "11" * 20, block_number=block + 1))
    assert events("--data-dir", str(other), "--registry", recorded.address) == [("Registered", block)]
