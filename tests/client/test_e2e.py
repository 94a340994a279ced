"""End to end: the `docchain` executable as a subprocess against a real API process and a real anvil.

keys new → submit --wait → receipt written → verify via API → verify via --rpc with no API to reach →
tampered file fails (exit 1) → tampered receipt fails → revoke → verify shows revoked; plus the API
unreachable (one line, exit 3), stored-file download, status / list / inspect.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.client.cli_stack import CliStack, cli_stack, dead_api

PASSWORD = "e2e password"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliStack]:
    with cli_stack(tmp_path_factory.mktemp("e2e"), PASSWORD) as s:
        yield s


def test_sign_verify_tamper_revoke(stack: CliStack) -> None:
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

    # verify independently with no API to reach (its address a dead port): receipt + node only
    gone = dead_api()
    down = stack.run("verify", str(doc), "--retries", "1", check=3, DOCCHAIN_API=gone)
    assert down.stderr.strip() == f"error: cannot reach the docchain API at {gone}: connection refused"
    independent = stack.json("verify", str(doc), "--rpc", stack.rpc_url, DOCCHAIN_API=gone)
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
    bad_file = stack.json("verify", str(tampered), "--rpc", stack.rpc_url, check=1, DOCCHAIN_API=gone)
    assert isinstance(bad_file, dict) and bad_file["outcome"] == "file_mismatch"
    assert bad_file["failedStep"] == "file"

    # tampered receipts: a forged block number; a signature by someone else; a broken one
    forged = json.loads(receipt_file.read_text())
    forged["anchor"]["blockNumber"] += 1
    (stack.work / "forged-block.json").write_text(json.dumps(forged))
    out = stack.json(
        "verify", str(doc), "--rpc", stack.rpc_url, "--receipt", "forged-block.json", check=1, DOCCHAIN_API=gone
    )
    assert isinstance(out, dict) and out["failedStep"] == "anchor"

    forged = json.loads(receipt_file.read_text())
    sig = bytearray(bytes.fromhex(forged["signature"][2:]))
    sig[10] ^= 0x01
    forged["signature"] = "0x" + sig.hex()
    (stack.work / "forged-sig.json").write_text(json.dumps(forged))
    out = stack.json(
        "verify", str(doc), "--rpc", stack.rpc_url, "--receipt", "forged-sig.json", check=1, DOCCHAIN_API=gone
    )
    assert isinstance(out, dict) and out["failedStep"] == "signature"

    forged = json.loads(receipt_file.read_text())
    forged["document"]["sha256"] = "0x" + "00" * 32
    (stack.work / "inconsistent.json").write_text(json.dumps(forged))
    broken = stack.json(
        "verify", str(doc), "--rpc", stack.rpc_url, "--receipt", "inconsistent.json", check=1, DOCCHAIN_API=gone
    )
    assert isinstance(broken, dict) and broken["failedStep"] == "receipt" and "document.sha256" in broken["reason"]

    # revoke, through the API
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


def test_many_files_store_list_get(stack: CliStack) -> None:
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


def _submit_direct(stack: CliStack, name: str, key: str, doc: Path) -> object:
    """Import ``key`` as ``name`` and register ``doc`` with it straight on chain (``--direct``; the API
    address given is a dead port, so nothing goes through an API)."""
    stack.json("keys", "import", name, "--key-file", str(_hex_file(stack.work, key)))
    return stack.json("submit", str(doc), "--key", name, "--direct", "--rpc", stack.rpc_url, "--api", dead_api())


def test_direct_submission_signer_pays_gas(stack: CliStack) -> None:
    # anvil's dev account #2 has ether; --direct sends the transaction itself, no API involved
    doc = stack.work / "direct.txt"
    doc.write_text("sent by the signer\n")
    out = _submit_direct(stack, "carol", "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a", doc)
    assert isinstance(out, list) and out[0]["state"] == "anchored"
    verdict = stack.json("verify", str(doc), "--rpc", stack.rpc_url)
    assert isinstance(verdict, dict) and verdict["outcome"] == "valid"
    again = stack.run("submit", str(doc), "--key", "carol", "--direct", "--rpc", stack.rpc_url, "--force", check=2)
    assert "already registered this document" in again.stderr


def test_inspect_events_scans_from_the_deployment_block(stack: CliStack, tmp_path: Path) -> None:
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
