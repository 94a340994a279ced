"""``docchain envelope`` against a real anvil, with the envelopes deployed beside the registry as ``docchain up``
deploys them: a two-signer ordered envelope created and completed from the CLI; a signer out of order, past the
deadline, or not named refused with the contract's rule in one line and exit 1; a decline; a void; a plain
``submit --direct`` shown as registered and counted by ``envelope count``, and one made too early in an ordered
envelope shown as never counting, refused in words by ``count`` and ``sign``; input refused with exit 2 before any
network call; every custom error of the contract has its line.

One anvil for the module (its clock is moved forward for the deadline case, so it is this module's own), the
CLI run in-process; four keys funded with anvil_setBalance: alice requests, bob and carol sign, dave is named
nowhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from docchain.chain import artifacts, deploy
from docchain.chain.errors import ContractRevert
from docchain.chain.hashing import keccak256
from docchain.chain.sender import TxSender
from docchain.chain.values import parse_hex, to_hex
from docchain.client.envelope_commands import refusal
from docchain.client.errors import ExitCode
from docchain.client.stack import DEV_RELAYER_KEY
from tests.client.cli_stack import FundedCli, funded_cli

PASSWORD = "envelope cli password"
DEAD_RPC = "http://127.0.0.1:9"  # discard port: nothing listens


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FundedCli]:
    with funded_cli(tmp_path_factory.mktemp("envelope-cli"), PASSWORD, ("alice", "bob", "carol", "dave")) as c:
        yield c


def test_the_envelopes_are_deployed_and_recorded_beside_the_registry(cli: FundedCli) -> None:
    w3 = Web3(Web3.HTTPProvider(cli.node.rpc_url))
    recorded = deploy.read_all(cli.data_dir)[31337]
    assert recorded.envelopes is not None
    runtime = w3.eth.get_code(recorded.envelopes.address)
    assert len(runtime) == len(artifacts.load("DocumentEnvelopes").deployed_bytecode)
    assert json.loads((cli.data_dir / "deployments.json").read_text())["31337"]["envelopes"]["address"] == (
        recorded.envelopes.address
    )

    # a deployments file written before envelopes existed: read as it is, and given envelopes on the next run
    old = cli.work / "old-data"
    old.mkdir()
    entry = {k: v for k, v in json.loads((cli.data_dir / "deployments.json").read_text())["31337"].items()}
    del entry["envelopes"]
    (old / "deployments.json").write_text(json.dumps({"31337": entry}))
    assert deploy.read_all(old)[31337].envelopes is None
    sender = TxSender(w3, parse_hex(DEV_RELAYER_KEY))
    again, fresh = deploy.ensure_deployed(sender, old)
    assert not fresh and again.address == recorded.address  # the registry is kept
    assert again.envelopes is not None and again.envelopes.address != recorded.envelopes.address
    assert deploy.read_all(old)[31337] == again
    assert deploy.ensure_deployed(sender, old) == (again, False)  # nothing new the second time


def test_a_two_signer_ordered_envelope_completes_from_the_cli(cli: FundedCli) -> None:
    doc = cli.doc("ordered.txt")
    created = cli.create(doc, "bob", "carol", extra=("--ordered",))
    assert created["signers"] == [cli.addresses["bob"], cli.addresses["carol"]] and created["ordered"] is True

    early = cli.run("envelope", "sign", doc, "--key", "carol", code=ExitCode.VERIFICATION_FAILED)
    bob, carol = cli.addresses["bob"], cli.addresses["carol"]
    assert f"refused (OutOfOrder): envelope {created['id']} is ordered: {bob} signs before {carol}" in early.stderr
    waiting = cli.json("envelope", "status", doc)
    assert (waiting["status"], waiting["next"], waiting["pending"]) == ("open", bob, [bob, carol])

    first = cli.json("envelope", "sign", doc, "--key", "bob")
    assert first["completed"] is False
    # bob's receipt lies beside the file: carol, signing the same copy, replaces it with hers
    refused = cli.run("envelope", "sign", doc, "--key", "carol", "--rpc", DEAD_RPC, code=ExitCode.USAGE)
    assert "already exists; pass --force" in refused.stderr
    last = cli.json("envelope", "sign", doc, "--key", "carol", "--force")
    assert last["completed"] is True and last["completedBlock"] == last["blockNumber"]

    done = cli.json("envelope", "status", doc)
    assert done["status"] == "completed" and done["id"] == created["id"]
    assert done["completed"] == {"blockNumber": last["blockNumber"], "txHash": last["txHash"]}
    assert [(s["signer"], s["state"], s["blockNumber"], s["txHash"]) for s in done["signers"]] == [
        (bob, "signed", first["blockNumber"], first["txHash"]),
        (carol, "signed", last["blockNumber"], last["txHash"]),
    ]
    assert done["created"]["blockNumber"] == created["blockNumber"] and done["pending"] == []
    table = cli.run("envelope", "status", doc).stdout
    assert f"complete in block {last['blockNumber']}" in table
    assert [line.split("│")[3].strip() for line in table.splitlines() if bob in line or carol in line][:2] == [
        "signed",
        "signed",
    ]

    again = cli.run("envelope", "sign", doc, "--key", "bob", "--force", code=ExitCode.VERIFICATION_FAILED)
    assert f"refused (CompletedEnvelope): envelope {created['id']} is complete already" in again.stderr

    # a registration relayed through the envelope is the registry's record like any other, with or without the
    # receipt its sign wrote
    registry = deploy.read_all(cli.data_dir)[31337].address
    assert last["receipt"] == doc + ".docchain.json"
    verdict = cli.json("verify", doc, "--rpc", cli.node.rpc_url, "--registry", registry)
    assert (verdict["outcome"], verdict["signer"], verdict["anchor"]["transactionHash"]) == (
        "valid",
        carol,
        last["txHash"],
    )
    Path(last["receipt"]).unlink()
    verdict = cli.json("verify", doc, "--signer", bob, "--rpc", cli.node.rpc_url, "--registry", registry)
    assert (verdict["outcome"], verdict["anchor"]["transactionHash"]) == ("valid", first["txHash"])


def test_an_envelope_signed_receipt_verifies_online_and_offline(cli: FundedCli) -> None:
    """The receipt `envelope sign` writes: its transaction went to the envelopes contract, and the registry's
    Registered log in it is what the anchor step holds it to, online; upgraded with its bundle, it verifies with
    no node."""
    doc = cli.doc("receipted.txt")
    created = cli.create(doc, "bob")
    signed = cli.json("envelope", "sign", doc, "--key", "bob")
    envelopes = deploy.read_all(cli.data_dir)[31337].envelopes
    assert envelopes is not None
    sent = cli.node.rpc("eth_getTransactionByHash", [signed["txHash"]])
    assert (sent["to"].lower(), signed["completed"]) == (envelopes.address.lower(), True)
    receipt = json.loads(Path(signed["receipt"]).read_text())
    assert (receipt["signer"], receipt["anchor"]["transactionHash"]) == (cli.addresses["bob"], signed["txHash"])
    assert receipt["document"]["sha256"] == created["docHash"]

    online = cli.json("verify", doc, "--rpc", cli.node.rpc_url)
    assert (online["outcome"], online["anchor"]["transactionHash"]) == ("valid", signed["txHash"])
    assert {s["name"]: s["ok"] for s in online["steps"]}["anchor"] is True

    cli.run("receipt", "upgrade", signed["receipt"], "--rpc", cli.node.rpc_url)
    proven = json.loads(Path(signed["receipt"]).read_text())["evidence"]["block"]
    offline = cli.json("verify", doc, "--offline", "--trusted-block-hash", proven["hash"])
    assert (offline["outcome"], offline["mode"], offline["signer"]) == ("valid", "offline", cli.addresses["bob"])


def test_a_signature_past_the_deadline_is_refused(cli: FundedCli) -> None:
    doc = cli.doc("deadline.txt")
    created = cli.create(doc, "bob", extra=("--deadline", "60s"))
    mined = int(cli.node.rpc("eth_getBlockByNumber", [hex(created["blockNumber"]), False])["timestamp"], 16)
    assert 50 <= created["deadline"] - mined <= 60  # 60 s from the next block's earliest time when the command ran
    cli.node.rpc("evm_increaseTime", [120])
    cli.node.mine()
    late = cli.run("envelope", "sign", doc, "--key", "bob", code=ExitCode.VERIFICATION_FAILED)
    assert f"refused (ExpiredEnvelope): envelope {created['id']}'s deadline" in late.stderr
    assert "has passed" in late.stderr and len(late.stderr.strip().splitlines()) == 1
    assert cli.json("envelope", "status", doc)["status"] == "expired"


def test_a_signer_not_named_is_refused(cli: FundedCli) -> None:
    doc = cli.doc("named.txt")
    created = cli.create(doc, "bob")
    dave = cli.addresses["dave"]
    found = cli.run("envelope", "sign", doc, "--key", "dave", code=ExitCode.VERIFICATION_FAILED)
    assert f"no envelope of document {created['docHash']} naming {dave}" in found.stderr
    by_id = cli.run("envelope", "sign", doc, "--id", created["id"], "--key", "dave", code=1)
    assert f"refused (NotASigner): {dave} is not one of envelope {created['id']}'s signers" in by_id.stderr
    assert cli.json("envelope", "status", doc)["pending"] == [cli.addresses["bob"]]


def test_two_open_envelopes_of_a_document_need_an_id(cli: FundedCli) -> None:
    doc, other = cli.doc("twice.txt"), cli.doc("other.txt")
    first, second = cli.create(doc, "bob"), cli.create(doc, "bob", "carol")
    assert first["id"] != second["id"]  # the same document and requester: each request has its own salt
    which = cli.run("envelope", "sign", doc, "--key", "bob", code=ExitCode.USAGE)
    assert "2 open envelopes; pick one with --id" in which.stderr and first["id"] in which.stderr
    elsewhere = cli.create(other, "bob")
    wrong = cli.run("envelope", "sign", doc, "--id", elsewhere["id"], "--key", "bob", code=ExitCode.USAGE)
    assert f"envelope {elsewhere['id']} is of document {elsewhere['docHash']}, not this one" in wrong.stderr
    assert cli.json("envelope", "sign", doc, "--id", first["id"], "--key", "bob")["completed"] is True
    # status without --id: the open one, and the others named
    shown = cli.json("envelope", "status", doc)
    assert (shown["id"], shown["otherEnvelopes"]) == (second["id"], [first["id"]])


def test_a_decline_ends_the_envelope(cli: FundedCli) -> None:
    doc = cli.doc("declined.txt")
    created = cli.create(doc, "bob", "carol")
    declined = cli.json("envelope", "decline", doc, "--reason", "clause 4 is wrong", "--key", "bob")
    assert declined["reasonHash"] == to_hex(keccak256(b"clause 4 is wrong"))
    status = cli.json("envelope", "status", doc)
    assert status["status"] == "declined"
    assert status["declined"] == {
        "blockNumber": declined["blockNumber"],
        "txHash": declined["txHash"],
        "by": cli.addresses["bob"],
        "reasonHash": declined["reasonHash"],
    }
    states = {row["signer"]: row["state"] for row in status["signers"]}
    assert states == {cli.addresses["bob"]: "declined", cli.addresses["carol"]: "pending"}
    late = cli.run("envelope", "sign", doc, "--key", "carol", code=ExitCode.VERIFICATION_FAILED)
    assert f"refused (DeclinedEnvelope): envelope {created['id']} was declined by {cli.addresses['bob']}" in late.stderr
    assert f"declined by {cli.addresses['bob']}" in cli.run("envelope", "status", doc).stdout


def test_the_requester_voids_the_envelope(cli: FundedCli) -> None:
    doc = cli.doc("voided.txt")
    created = cli.create(doc, "bob")
    stranger = cli.run("envelope", "void", doc, "--key", "bob", code=ExitCode.VERIFICATION_FAILED)
    assert f"no envelope of document {created['docHash']} created by {cli.addresses['bob']}" in stranger.stderr
    voided = cli.json("envelope", "void", doc, "--reason", "wrong version", "--key", "alice")
    status = cli.json("envelope", "status", doc)
    assert status["status"] == "voided" and status["voided"]["txHash"] == voided["txHash"]
    recorded = deploy.read_all(cli.data_dir)[31337].envelopes
    assert recorded is not None
    assert cli.json("envelope", "status", doc, "--envelopes", recorded.address) == status  # the flag names it too
    late = cli.run("envelope", "sign", doc, "--key", "bob", code=ExitCode.VERIFICATION_FAILED)
    assert f"refused (VoidedEnvelope): envelope {created['id']} was voided by its requester" in late.stderr


def test_a_plain_submit_shows_registered_then_counts(cli: FundedCli) -> None:
    doc = cli.doc("plain.txt")
    created = cli.create(doc, "bob")
    cli.json("submit", doc, "--direct", "--key", "bob")
    before = cli.json("envelope", "status", doc)
    [row] = before["signers"]
    assert (before["status"], row["state"], row["registered"]) == ("open", "registered, not counted", True)
    assert "registered it, not counted yet" in cli.run("envelope", "status", doc).stdout

    counted = cli.json("envelope", "count", doc, "--signer", cli.addresses["bob"], "--key", "alice")
    assert counted["completed"] is True and counted["id"] == created["id"]
    after = cli.json("envelope", "status", doc)
    assert after["status"] == "completed" and after["signers"][0]["state"] == "signed"
    assert after["completed"]["blockNumber"] == counted["blockNumber"]


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("create", "--signer", "0x1234"), "--signer 0x1234"),
        (("create", "--signer", "BOB", "--signer", "BOB"), "is named twice"),
        (("create", "--signer", "0x" + "00" * 20), "signer 1 is the zero address"),
        (("create", "--signer", "BOB", "--deadline", "next week"), "neither a duration"),
        (("create", "--signer", "BOB", "--deadline", "0s"), "a duration must be positive"),
        (("sign", "--id", "0x1234"), "--id"),
        (("count", "--signer", "0x1234"), "--signer"),
        (("status", "--envelopes", "nowhere"), "--envelopes"),
    ],
    ids=["short-address", "duplicate", "zero", "deadline-words", "deadline-zero", "id", "count-signer", "envelopes"],
)
def test_bad_input_is_refused_before_any_network_call(cli: FundedCli, args: tuple[str, ...], said: str) -> None:
    command, *rest = args
    named = [cli.addresses["bob"] if a == "BOB" else a for a in rest]
    doc = cli.doc("input.txt")
    key = () if command == "status" else ("--key", "alice")
    result = cli.run("envelope", command, doc, *named, *key, "--rpc", DEAD_RPC, code=ExitCode.USAGE)
    assert said in result.stderr and len(result.stderr.strip().splitlines()) == 1


# OpenZeppelin ShortStrings' errors, raised only while a constructor stores its EIP-712 name: never by a call.
_CONSTRUCTOR_ONLY = {"InvalidShortString", "StringTooLong"}
# What a call can revert with: the envelopes' errors, and the registry's InvalidSignature, which sign() passes on.
_ENVELOPE_ERRORS = [
    i
    for i in [*artifacts.load("DocumentEnvelopes").abi, *artifacts.load().abi]
    if i["type"] == "error" and i["name"] not in _CONSTRUCTOR_ONLY
    if i in artifacts.load("DocumentEnvelopes").abi or i["name"] == "InvalidSignature"
]


@pytest.mark.parametrize("error", _ENVELOPE_ERRORS, ids=lambda e: str(e["name"]))
def test_every_custom_error_has_its_line(error: dict[str, Any]) -> None:
    values: dict[str, object] = {"bytes32": b"\x11" * 32, "address": "0x" + "22" * 20, "uint256": 3}
    exc = ContractRevert(error["name"], tuple(values[i["type"]] for i in error["inputs"]))
    line = str(refusal(exc))
    assert line.startswith(f"refused ({error['name']}): ") and "(0x" not in line  # said in words, not as a call
    assert int(refusal(exc).code) in (ExitCode.VERIFICATION_FAILED, ExitCode.USAGE)


def test_an_early_registration_in_an_ordered_envelope_is_never_suggested_and_refused_in_words(cli: FundedCli) -> None:
    """carol registers straight on the node before bob signs: the ordered envelope can never count her record (the
    registry keeps it in its block, before bob's). status does not suggest `envelope count` but says why; count and
    sign are refused before any transaction with that reason, not with the contract's "bob signs before carol",
    which reads wrong once bob has signed."""
    doc = cli.doc("early.txt")
    created = cli.create(doc, "bob", "carol", extra=("--ordered",))
    bob, carol = cli.addresses["bob"], cli.addresses["carol"]
    [early] = cli.json("submit", doc, "--direct", "--key", "carol")

    def refused_in_words(why: str) -> None:
        status = cli.json("envelope", "status", doc)
        row = status["signers"][1]
        assert (row["state"], row["registered"], row["neverCounts"]) == ("registered, never counts", True, "OutOfOrder")
        table = cli.run("envelope", "status", doc).stdout
        assert "docchain envelope count" not in table and f"{carol}'s registration never counts (OutOfOrder)" in table
        for command in (("count", "--signer", carol, "--key", "alice"), ("sign", "--key", "carol", "--force")):
            said = cli.run("envelope", *command, doc, code=ExitCode.VERIFICATION_FAILED).stderr.strip()
            assert (
                f"refused (OutOfOrder): {carol}'s registration (block {early['blockNumber']}) was made before {why}"
            ) in said, said
            assert f"so envelope {created['id']} can never count it" in said and "a new envelope is the remedy" in said
            assert f"{bob} signs before {carol}" not in said and len(said.splitlines()) == 1, said

    refused_in_words(f"{bob} signed")
    signed = cli.json("envelope", "sign", doc, "--key", "bob", "--force")
    refused_in_words(f"{bob}'s (block {signed['blockNumber']})")
    assert cli.json("envelope", "status", doc)["status"] == "open"
