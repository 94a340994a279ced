"""The CLI in Merkle mode, as a subprocess against a real API process and a real anvil: the mode and root in
submit --wait, status and list; a repeat with another mode keeps the first's; the explorer commands show the
roots an anchorRoot transaction anchored; --anchoring is a flag only (DOCCHAIN_ANCHORING is the server's); a
revoked Merkle signature is revoked for a stranger with the file alone; a receipt-less "not registered" says
only what the chain shows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from docchain.client.output import short
from tests.client.cli_stack import CliStack, cli_stack
from tests.support import free_port

PASSWORD = "merkle cli password"
KEPT = "submitted before with merkle anchoring; the first submission's mode is kept"
UNSEEN = "a Merkle-anchored or private signature is verified with its receipt."


def anchored(stack: CliStack, row: dict[str, Any]) -> dict[str, Any]:
    """A submission the CLI sent without --wait, once on chain, as the API's status says it."""
    url = f"{stack.api}/v1/submissions/{row['id']}"
    status: dict[str, Any] = httpx.get(url, params={"wait": 20, "until": "anchored"}, timeout=30).json()
    assert status["state"] in ("anchored", "confirmed"), status
    return status


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliStack]:
    with cli_stack(tmp_path_factory.mktemp("merkle-cli"), PASSWORD, DOCCHAIN_MERKLE_MAX_WAIT_MS="100") as s:
        alice = json.loads(s.run("keys", "new", "alice", "--json").stdout)["address"]
        s.node.rpc("anvil_setBalance", [alice, hex(10**18)])  # gas of its own for --direct
        yield s


@pytest.fixture(scope="module")
def merkle_doc(stack: CliStack) -> tuple[Path, dict[str, Any]]:
    doc = stack.work / "n1.txt"
    doc.write_text("a note anchored under a Merkle root\n")
    [row] = stack.json("submit", str(doc), "--anchoring", "merkle")
    assert row["anchoring"] == "merkle"  # the mode is said before the tree closes, its root once it has
    return doc, anchored(stack, row)


def test_submit_wait_says_the_mode_and_root(stack: CliStack) -> None:
    doc = stack.work / "n3.txt"
    doc.write_text("a note anchored under a Merkle root, waited for\n")
    run = stack.run("submit", str(doc), "--anchoring", "merkle", "--wait", "--json")
    [row] = json.loads(run.stdout)
    root = row["merkleRoot"]
    assert row["anchoring"] == "merkle" and root.startswith("0x") and len(root) == 66
    assert json.loads(doc.with_name("n3.txt.docchain.json").read_text())["anchor"]["merkle"]["root"] == root
    again = stack.work / "n4.txt"
    again.write_text("another, for the table\n")
    said = stack.run("submit", str(again), "--anchoring", "merkle", "--wait").stdout
    root = json.loads(again.with_name("n4.txt.docchain.json").read_text())["anchor"]["merkle"]["root"]
    assert f"anchoring: merkle, under root {root} (1 file)" in said.splitlines()


def test_status_and_list_say_the_mode_and_root(stack: CliStack, merkle_doc: tuple[Path, dict[str, Any]]) -> None:
    doc, row = merkle_doc
    root = row["merkleRoot"]
    assert row["anchoring"] == "merkle" and root.startswith("0x") and len(root) == 66
    status = stack.json("status", str(doc))
    assert [(s["anchoring"], s["merkleRoot"]) for s in status["signers"]] == [("merkle", root)]
    listed = stack.json("list")
    assert ("merkle", root) in [(i["anchoring"], i["merkleRoot"]) for i in listed["items"]]
    for table in (stack.run("status", str(doc)).stdout, stack.run("list").stdout):
        assert f"merkle {short(root, 4)}" in table

    direct = stack.work / "d1.txt"
    direct.write_text("a note with a record of its own\n")
    [row] = stack.json("submit", str(direct))
    anchored(stack, row)
    table = stack.run("status", str(direct)).stdout
    assert " direct " in table and "merkle" not in table
    again = stack.run("submit", str(direct), "--anchoring", "direct").stdout
    assert "anchoring: direct, a record of its own on chain (1 file)" in again.splitlines()


def test_a_repeat_with_another_mode_keeps_the_firsts(stack: CliStack, merkle_doc: tuple[Path, dict[str, Any]]) -> None:
    doc, _ = merkle_doc
    again = stack.run("submit", str(doc), "--anchoring", "direct")
    assert f"{doc.name}: {KEPT}" in again.stdout.splitlines()
    [row] = stack.json("submit", str(doc), "--anchoring", "direct")
    assert row["anchoring"] == "merkle"
    assert KEPT not in stack.run("submit", str(doc), "--anchoring", "merkle").stdout


def test_the_explorer_commands_show_the_roots(stack: CliStack, merkle_doc: tuple[Path, dict[str, Any]]) -> None:
    _, row = merkle_doc
    root, tx, block = row["merkleRoot"], row["txHash"], row["blockNumber"]
    node = ("--rpc", stack.rpc_url)
    shown = stack.json("inspect", "tx", tx, *node)
    assert [(r["root"], r["leafCount"], r["blockNumber"]) for r in shown["roots"]] == [(root, 1, block)]
    assert shown["events"] == []
    in_block = stack.json("inspect", "block", str(block), *node)
    assert [r["root"] for r in in_block["roots"]] == [root]
    events = stack.json("inspect", "events", *node)
    assert [(e["kind"], e["txHash"]) for e in events if e.get("root") == root] == [("RootAnchored", tx)]
    for table in (
        stack.run("inspect", "tx", tx, *node).stdout,
        stack.run("inspect", "block", str(block), *node).stdout,
        stack.run("inspect", "events", *node).stdout,
    ):
        assert "Merkle roots anchored" in table and root in table


def test_anchoring_is_a_flag_only(stack: CliStack) -> None:
    doc = stack.work / "d2.txt"
    doc.write_text("registered directly while the server's default is exported\n")
    [row] = stack.json("submit", str(doc), "--direct", "--rpc", stack.rpc_url, DOCCHAIN_ANCHORING="merkle")
    assert row["state"] == "anchored"
    typed = ("--force", "--direct", "--anchoring", "merkle", "--rpc", stack.rpc_url)
    refused = stack.run("submit", str(doc), *typed, check=2)
    assert "--anchoring merkle needs the API" in refused.stderr and "DOCCHAIN_ANCHORING" not in refused.stderr


def test_a_revoked_merkle_signature_is_revoked_for_a_stranger_with_the_file_alone(stack: CliStack) -> None:
    doc = stack.work / "n2.txt"
    doc.write_text("a note anchored under a Merkle root, then revoked\n")
    [row] = stack.json("submit", str(doc), "--anchoring", "merkle")
    row = anchored(stack, row)
    stack.run("revoke", str(doc), "--wait")
    copy = stack.work / "stranger" / "n2.txt"
    copy.parent.mkdir(exist_ok=True)
    copy.write_bytes(doc.read_bytes())  # no receipt beside it
    verdict = json.loads(stack.stranger("verify", str(copy), "--json", check=1).stdout)
    assert (verdict["outcome"], verdict["revocation"]["by"]) == ("revoked", row["signer"])
    assert verdict["revocation"]["blockNumber"] > row["blockNumber"]
    api_verdict = json.loads(stack.run("verify", str(copy), "--json", check=1).stdout)
    assert api_verdict["outcome"] == "revoked" and api_verdict["summary"] == verdict["summary"]


def test_a_receipt_less_not_registered_says_what_the_chain_shows(stack: CliStack) -> None:
    doc = stack.work / "stranger" / "never.txt"
    doc.parent.mkdir(exist_ok=True)
    doc.write_text("signed by no one\n")
    said = f"No signature of this file is recorded on chain in {stack.registry}; {UNSEEN}"
    stranger = json.loads(stack.stranger("verify", str(doc), "--json", check=1).stdout)
    assert stranger["summary"] == said
    through_api = json.loads(stack.run("verify", str(doc), "--json", check=1).stdout)
    assert through_api["summary"] == said
    assert said in stack.stranger("verify", str(doc), check=1).stdout


def test_up_in_merkle_mode_says_the_root(tmp_path: Path) -> None:
    """``docchain up`` with the server's default exported: the sample goes under a root, which it names."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCCHAIN_")}
    env.update(DOCCHAIN_CONFIG_DIR=str(tmp_path / "config"), DOCCHAIN_ANCHORING="merkle", COLUMNS="250")
    data = tmp_path / "data"
    ports = ("--port", str(free_port()), "--node-port", str(free_port()))
    up = [sys.executable, "-m", "docchain.client", "up", "--no-serve", "--data-dir", str(data), *ports]
    said = subprocess.run(up, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=150)
    assert said.returncode == 0, said.stdout + said.stderr
    [receipt] = [json.loads(p.read_text()) for p in data.rglob("*.docchain.json")]
    root = receipt["anchor"]["merkle"]["root"]
    assert f"anchored under Merkle root {root} in block {receipt['anchor']['blockNumber']}" in said.stdout
