"""The web page's verifier says what chain/ says, word for word, where the golden corpus (tests/vectors/bundles) does
not reach: the chain step held to the answers of the nodes a verifier asked (chain/offline.py's NodeAnswer and
api/web/js/offline.js's nodes), and a Verifiable Credential read back (chain/vc.py's receipt_of and api/web/js/vc.js's
receiptOf), honest and with each member changed apart from its bundle. One node process runs every JavaScript case."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from docchain.chain.errors import InvalidInput
from docchain.chain.offline import NodeAnswer, verify_offline
from docchain.chain.receipt import parse_receipt
from docchain.chain.values import parse_hex, to_hex
from docchain.chain.vc import credential_of, receipt_of

ROOT = Path(__file__).resolve().parents[2]
CORPUS = json.loads((ROOT / "tests" / "vectors" / "bundles" / "bundles.json").read_text())["bundles"]
BUNDLES = {b["name"]: b for b in CORPUS}
DIRECT, MERKLE, PRIVATE = (
    BUNDLES["anvil-prague-direct"],
    BUNDLES["ganache-shanghai-merkle"],
    BUNDLES["anvil-prague-private"],
)
FAKE = "0x" + "5e" * 32
A, B, C = "https://a.example", "https://b.example", "https://c.example"

RUNNER = """
import { parseReceipt } from "%(web)s/receipt.js";
import { verifyOffline } from "%(web)s/offline.js";
import { receiptOf, credentialOf } from "%(web)s/vc.js";
let input = "";
for await (const chunk of process.stdin) input += chunk;
const out = [];
for (const task of JSON.parse(input)) {
  if (task.kind === "nodes") {
    const receipt = parseReceipt(JSON.stringify(task.receipt));
    const v = await verifyOffline(task.fileSha256, receipt, null, { nodes: task.nodes });
    out.push({ outcome: v.outcome, failedStep: v.failedStep, reason: v.reason, steps: v.steps });
  } else {
    try {
      const { receipt, credential } = receiptOf(new TextEncoder().encode(task.text));
      out.push({ credential, digest: credentialOf(receipt).proof.anchor.bundleDigest });
    } catch (err) {
      out.push({ error: err.message });
    }
  }
}
process.stdout.write(JSON.stringify(out));
"""


def _run_js(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    node = shutil.which("node")
    assert node, "node is installed with the repository's tools (package.json)"
    script = RUNNER % {"web": (ROOT / "api" / "web" / "js").as_uri()}
    done = subprocess.run(
        [node, "--no-warnings", "--input-type=module", "-e", script],
        input=json.dumps(tasks),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    results: list[dict[str, Any]] = json.loads(done.stdout)
    return results


# ------------------------------------------------------------------------------------------------ the nodes


def _nodes(bundle: dict[str, Any], *said: tuple[str, str | None]) -> list[dict[str, Any]]:
    number = bundle["receipt"]["evidence"]["block"]["number"]
    return [{"rpc": url, "blockNumber": number, "blockHash": block_hash} for url, block_hash in said]


def _true(bundle: dict[str, Any]) -> str:
    return str(bundle["receipt"]["evidence"]["block"]["hash"])


NODE_CASES: list[tuple[str, dict[str, Any], list[dict[str, Any]]]] = [
    ("one agrees", DIRECT, _nodes(DIRECT, (A, _true(DIRECT)))),
    ("three agree", MERKLE, _nodes(MERKLE, (A, _true(MERKLE)), (B, _true(MERKLE)), (C, _true(MERKLE)))),
    ("two disagree", DIRECT, _nodes(DIRECT, (A, _true(DIRECT)), (B, FAKE))),
    ("one lacks the block", PRIVATE, _nodes(PRIVATE, (A, _true(PRIVATE)), (B, None))),
    ("the only node lacks it", DIRECT, _nodes(DIRECT, (A, None))),
    ("neither holds it", DIRECT, _nodes(DIRECT, (A, None), (B, None))),
    ("both agree on another hash", MERKLE, _nodes(MERKLE, (A, FAKE), (B, FAKE))),
]


def _python_nodes(bundle: dict[str, Any], nodes: list[dict[str, Any]]) -> dict[str, Any]:
    answers = [
        NodeAnswer(n["rpc"], n["blockNumber"], None if n["blockHash"] is None else parse_hex(n["blockHash"], length=32))
        for n in nodes
    ]
    verdict = verify_offline(
        parse_hex(bundle["fileSha256"], length=32), parse_receipt(bundle["receipt"]), None, nodes=answers
    ).to_json()
    return {key: verdict[key] for key in ("outcome", "failedStep", "reason", "steps")}


@pytest.fixture(scope="module")
def js_nodes() -> list[dict[str, Any]]:
    tasks = [
        {"kind": "nodes", "receipt": b["receipt"], "fileSha256": b["fileSha256"], "nodes": nodes}
        for _, b, nodes in NODE_CASES
    ]
    return _run_js(tasks)


@pytest.mark.parametrize("index", range(len(NODE_CASES)), ids=[name for name, _, _ in NODE_CASES])
def test_the_page_judges_the_nodes_answers_as_python_does(index: int, js_nodes: list[dict[str, Any]]) -> None:
    _, bundle, nodes = NODE_CASES[index]
    assert js_nodes[index] == _python_nodes(bundle, nodes)


def test_nodes_that_do_not_agree_fail_at_the_chain_step_naming_each_answer() -> None:
    number, true = DIRECT["receipt"]["evidence"]["block"]["number"], _true(DIRECT)
    said = {name: _python_nodes(bundle, nodes) for name, bundle, nodes in NODE_CASES}
    assert said["one agrees"]["outcome"] == said["three agree"]["outcome"] == "valid"
    assert (said["two disagree"]["outcome"], said["two disagree"]["failedStep"]) == ("invalid", "chain")
    assert said["two disagree"]["reason"] == (
        f"the nodes disagree on block {number}, which the bundle proves: {A} says {true}; {B} says {FAKE}"
    )
    assert said["one lacks the block"]["reason"].startswith("the nodes disagree on block ")
    assert said["one lacks the block"]["reason"].endswith(f"{B} says no such block")
    assert said["neither holds it"]["reason"] == (
        f"the nodes do not hold block {number}, which the bundle proves: {A} says no such block; {B} says no such block"
    )
    assert said["the only node lacks it"]["reason"] == (
        f"the node does not hold block {number}, which the bundle proves: {A} says no such block"
    )
    assert said["both agree on another hash"]["reason"].endswith(
        f"not the trusted {FAKE} ({A} says {FAKE}; {B} says {FAKE})"
    )


def test_a_trusted_hash_and_the_nodes_answers_together_are_refused() -> None:
    with pytest.raises(ValueError, match="not both"):
        verify_offline(None, parse_receipt(DIRECT["receipt"]), bytes(32), nodes=[NodeAnswer(A, 1, bytes(32))])


# ------------------------------------------------------------------------------------------------ credentials


def _credential(receipt: dict[str, Any]) -> dict[str, Any]:
    return credential_of(parse_receipt(receipt)).to_json()


def _named(receipt: dict[str, Any], name: str) -> dict[str, Any]:
    changed = copy.deepcopy(receipt)
    changed["document"]["name"] = name
    return changed


def _deadline(receipt: dict[str, Any], deadline: int) -> dict[str, Any]:
    changed = copy.deepcopy(receipt)
    changed["eip712"]["message"]["deadline"] = deadline  # the signature no longer holds: not this reader's concern
    return changed


def _edit(vc: dict[str, Any], change: Any) -> str:
    edited = copy.deepcopy(vc)
    change(edited)
    return json.dumps(edited, indent=2)


HONEST = _credential(DIRECT["receipt"])
CREDENTIAL_CASES: list[tuple[str, str]] = [
    ("honest", json.dumps(HONEST, indent=2)),
    ("honest merkle", json.dumps(_credential(MERKLE["receipt"]))),
    ("honest private", json.dumps(_credential(PRIVATE["receipt"]))),
    ("a name beyond ASCII", json.dumps(_credential(_named(DIRECT["receipt"], "naïve – contrat 合同.pdf")))),
    ("a deadline beyond 2^53", json.dumps(_credential(_deadline(DIRECT["receipt"], 2**60 + 1)))),
    ("no evidence bundle", json.dumps(_credential({k: v for k, v in DIRECT["receipt"].items() if k != "evidence"}))),
    ("the receipt itself", json.dumps(DIRECT["receipt"])),
    ("validFrom", _edit(HONEST, lambda vc: vc.update(validFrom="2001-01-01T00:00:00Z"))),
    ("the receipt's time", _edit(HONEST, lambda vc: vc["evidence"][0]["receipt"]["anchor"].update(timestamp=1))),
    ("issuer", _edit(HONEST, lambda vc: vc.update(issuer="did:pkh:eip155:1:" + "0x" + "11" * 20))),
    ("subject name", _edit(HONEST, lambda vc: vc["credentialSubject"].update(name="other.pdf"))),
    ("subject member added", _edit(HONEST, lambda vc: vc["credentialSubject"].update(size=1))),
    ("subject name removed", _edit(HONEST, lambda vc: vc["credentialSubject"].pop("name"))),
    ("bundle digest", _edit(HONEST, lambda vc: vc["proof"]["anchor"].update(bundleDigest="sha256:" + FAKE))),
    ("proven block", _edit(HONEST, lambda vc: vc["proof"]["anchor"]["provenBlock"].update(hash=FAKE))),
    ("block number as text", _edit(HONEST, lambda vc: vc["proof"]["anchor"].update(blockNumber="7"))),
    ("signed deadline", _edit(HONEST, lambda vc: vc["proof"]["eip712"]["message"].update(deadline=1))),
    ("proof value", _edit(HONEST, lambda vc: vc["proof"].update(proofValue="0x00"))),
    ("types reordered", _edit(HONEST, lambda vc: vc.update(type=vc["type"][::-1]))),
    ("a context added", _edit(HONEST, lambda vc: vc["@context"].append("https://example.org/ctx"))),
    ("a member added", _edit(HONEST, lambda vc: vc.update(id="urn:uuid:1"))),
    ("proof removed", _edit(HONEST, lambda vc: vc.pop("proof"))),
    ("evidence not a list", _edit(HONEST, lambda vc: vc.update(evidence=vc["evidence"][0]))),
    ("two bundles", _edit(HONEST, lambda vc: vc.update(evidence=vc["evidence"] * 2))),
    ("bundle type", _edit(HONEST, lambda vc: vc["evidence"][0].update(type=["Other"]))),
    ("bundle's receipt refused", _edit(HONEST, lambda vc: vc["evidence"][0]["receipt"].pop("anchor"))),
    ("bundle's receipt not an object", _edit(HONEST, lambda vc: vc["evidence"][0].update(receipt=[]))),
    ("a fraction for an integer", json.dumps(HONEST).replace('"chainId": 31337', '"chainId": 31337.0', 1)),
    ("not an object", json.dumps([HONEST])),
]


def _python_credential(text: str) -> dict[str, Any]:
    try:
        receipt = receipt_of(text.encode())
    except InvalidInput as exc:
        return {"error": str(exc)}
    digest = "sha256:" + to_hex(credential_of(receipt).bundle_digest)
    return {"credential": "@context" in json.loads(text), "digest": digest}


@pytest.fixture(scope="module")
def js_credentials() -> list[dict[str, Any]]:
    return _run_js([{"kind": "credential", "text": text} for _, text in CREDENTIAL_CASES])


@pytest.mark.parametrize("index", range(len(CREDENTIAL_CASES)), ids=[name for name, _ in CREDENTIAL_CASES])
def test_the_page_reads_a_credential_back_as_python_does(index: int, js_credentials: list[dict[str, Any]]) -> None:
    assert js_credentials[index] == _python_credential(CREDENTIAL_CASES[index][1])


def test_a_credential_is_read_back_only_if_every_member_is_its_bundles() -> None:
    said = {name: _python_credential(text) for name, text in CREDENTIAL_CASES}
    for honest in ("honest", "honest merkle", "honest private", "a name beyond ASCII", "a deadline beyond 2^53"):
        assert said[honest]["credential"] is True, said[honest]
    assert said["the receipt itself"] == {"credential": False, "digest": said["honest"]["digest"]}
    assert said["validFrom"]["error"].startswith("credential: validFrom is not what its evidence bundle says: ")
    assert said["the receipt's time"]["error"].endswith(
        "(made from evidence[0].receipt's anchor.timestamp: the one or the other was changed)"
    )
    assert said["subject member added"] == {"error": "credential: unknown member credentialSubject.size"}
    assert said["subject name removed"] == {"error": "credential: missing member credentialSubject.name"}
    assert said["types reordered"]["error"].startswith("credential: type[0] is not what its evidence bundle says")
    assert said["bundle's receipt refused"] == {"error": "credential: evidence[0].receipt: missing field anchor"}
    assert said["a fraction for an integer"]["error"].startswith(
        "credential: evidence[0].receipt: eip712.domain.chainId must be"
    )
    assert said["not an object"] == {"error": "receipt must be a JSON object"}
