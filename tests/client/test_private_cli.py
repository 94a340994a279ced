"""Private mode end to end, as a subprocess CLI against a real API process and a real anvil: ``submit --private
--wait`` registers keccak256(sha256 || salt) and writes a receipt holding the salt; the service is told nothing of
the file (no name, no size, no upload: multipart with private is a problem+json) and shows the submission as
private; the receipt verifies through the API, through a node (--rpc) and offline once the service has captured
its evidence; a wrong salt fails at the commitment step; the file alone, without its receipt, is not registered;
without --wait the salt waits beside the file until ``docchain receipt FILE`` completes the receipt."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from docchain.chain.hashing import keccak256, sha256_bytes
from docchain.chain.receipt import Private, parse_receipt
from docchain.chain.values import parse_hex, to_hex
from docchain.client import receipts
from docchain.client.errors import UsageError
from tests.client.cli_stack import CliStack, cli_stack
from tests.support import poll

PASSWORD = "private cli password"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliStack]:
    with cli_stack(tmp_path_factory.mktemp("private-cli"), PASSWORD) as s:
        s.run("keys", "new", "alice")
        yield s


@dataclass(frozen=True)
class Submitted:
    doc: Path
    row: dict[str, Any]
    receipt: dict[str, Any]

    @property
    def receipt_path(self) -> Path:
        return self.doc.with_name(self.doc.name + ".docchain.json")


@pytest.fixture(scope="module")
def submitted(stack: CliStack) -> Submitted:
    doc = stack.work / "offer.txt"
    doc.write_text("a private offer " + os.urandom(8).hex() + "\n")
    [row] = stack.json("submit", str(doc), "--private", "--wait")
    receipt = json.loads(doc.with_name("offer.txt.docchain.json").read_text())
    return Submitted(doc, row, receipt)


def test_submit_private_wait_writes_a_receipt_holding_the_salt(stack: CliStack, submitted: Submitted) -> None:
    sha = sha256_bytes(submitted.doc.read_bytes())
    salt = parse_hex(submitted.receipt["private"]["salt"])
    commitment = to_hex(keccak256(sha + salt))
    row, receipt = submitted.row, submitted.receipt
    assert (row["sha256"], row["docHash"], row["private"], row["state"] in ("anchored", "confirmed")) == (
        to_hex(sha),
        commitment,
        True,
        True,
    )
    assert receipt["document"] == {"sha256": to_hex(sha), "name": "offer.txt", "size": submitted.doc.stat().st_size}
    assert receipt["eip712"]["message"]["docHash"] == commitment != to_hex(sha)
    assert not submitted.doc.with_name("offer.txt.docchain.salt").exists()  # the receipt is its one home now


def test_the_service_knows_the_commitment_as_private_and_not_the_file(stack: CliStack, submitted: Submitted) -> None:
    commitment = submitted.row["docHash"]
    status = httpx.get(f"{stack.api}/v1/documents/{commitment}", timeout=10).json()
    assert [(s["private"], s["state"] in ("anchored", "confirmed")) for s in status["signers"]] == [(True, True)]
    sub = httpx.get(f"{stack.api}/v1/submissions/{submitted.row['id']}", timeout=10).json()
    assert sub["private"] is True
    listed = httpx.get(f"{stack.api}/v1/documents", params={"signer": submitted.row["signer"]}, timeout=10).json()
    assert [i["private"] for i in listed["items"] if i["docHash"] == commitment] == [True]
    # the CLI's tables say the hash is a commitment, not the document's SHA-256
    table = stack.run("status", commitment).stdout
    assert "direct, private" in table, table
    unknown = httpx.get(f"{stack.api}/v1/documents/{submitted.row['sha256']}", timeout=10)
    assert unknown.status_code == 404
    # the name the receipt holds was never sent: the API's own receipt has none
    api_receipt = httpx.get(f"{stack.api}/v1/documents/{commitment}/receipts/{submitted.row['signer']}", timeout=10)
    assert api_receipt.status_code == 200 and api_receipt.json()["document"]["name"] is None


def test_the_receipt_verifies_through_a_node_and_is_not_sent_to_the_api(stack: CliStack, submitted: Submitted) -> None:
    """By default a private receipt is checked by the node (DOCCHAIN_RPC names it, as config.toml would), not
    posted to the API with its salt and file hash; --via api is refused before anything is sent."""
    by_default = stack.json("verify", str(submitted.doc), DOCCHAIN_RPC=stack.rpc_url)
    assert (by_default["outcome"], by_default["mode"]) == ("valid", "rpc"), by_default
    assert [s["name"] for s in by_default["steps"]][:2] == ["file", "commitment"]
    refused = stack.run("verify", str(submitted.doc), "--via", "api", check=2)
    assert "a private receipt is not sent to the docchain API" in refused.stderr, refused.stderr
    via_rpc = json.loads(
        stack.stranger("verify", str(submitted.doc), "--receipt", str(submitted.receipt_path), "--json").stdout
    )
    assert (via_rpc["outcome"], via_rpc["mode"]) == ("valid", "rpc"), via_rpc
    assert [s["name"] for s in via_rpc["steps"]][:2] == ["file", "commitment"]


def test_status_and_verify_of_a_private_file_keep_its_sha256_from_the_service(
    stack: CliStack, submitted: Submitted
) -> None:
    """The service logs every path it is asked: a private file's SHA-256 must not be among them. ``status`` asks
    by the commitment its receipt opens; ``verify`` goes to the node."""
    log = stack.data_dir / "api.log"
    before = log.read_text()
    status = stack.run("status", str(submitted.doc))
    assert f"private: asked by its commitment {submitted.row['docHash']}" in status.stdout, status.stdout
    assert "direct, private" in status.stdout, status.stdout
    stack.run("verify", str(submitted.doc), DOCCHAIN_RPC=stack.rpc_url)
    asked = log.read_text()[len(before) :]
    assert submitted.row["docHash"][2:] in asked  # the log does hold what status asked for
    assert submitted.row["sha256"][2:] not in asked.lower() and "/v1/verify" not in asked, asked
    # a private file whose receipt is not fetched yet (only its salt file beside it) is not asked about
    pending = stack.work / "pending"
    pending.mkdir(exist_ok=True)
    doc = Path(shutil.copy(submitted.doc, pending / submitted.doc.name))
    receipts.open_private(doc, parse_hex(submitted.row["sha256"]), force=False)
    refused = stack.run("verify", str(doc), check=2)
    assert "was submitted privately" in refused.stderr and "docchain receipt" in refused.stderr, refused.stderr
    assert submitted.row["sha256"][2:] not in log.read_text()[len(before) :].lower()


def test_the_credential_of_a_private_receipt_is_exported_with_a_warning(stack: CliStack, submitted: Submitted) -> None:
    """A credential is made to be handed on, and a private one opens the commitment: export says so."""
    target = stack.work / "offer.vc.json"
    done = stack.run("receipt", "export", str(submitted.receipt_path), "--vc", "-o", str(target))
    assert "carries the file's SHA-256 and the salt of a private registration" in done.stderr, done.stderr
    assert submitted.receipt["private"]["salt"] in target.read_text()


def test_the_file_alone_is_not_registered(stack: CliStack, submitted: Submitted) -> None:
    alone = stack.work / "alone"
    alone.mkdir(exist_ok=True)
    copy = Path(shutil.copy(submitted.doc, alone / submitted.doc.name))  # no receipt beside it
    verdict = json.loads(stack.stranger("verify", str(copy), "--json", check=1).stdout)
    assert verdict["outcome"] == "not_registered"
    assert "a private signature is verified with its receipt" in verdict["reason"]


def test_a_wrong_salt_fails_at_the_commitment_step(stack: CliStack, submitted: Submitted) -> None:
    wrong = dict(submitted.receipt, private={"salt": to_hex(bytes(32))})
    path = stack.work / "wrong-salt.docchain.json"
    path.write_text(json.dumps(wrong))
    verdict = stack.json("verify", str(submitted.doc), "--receipt", str(path), check=1, DOCCHAIN_RPC=stack.rpc_url)
    assert (verdict["outcome"], verdict["failedStep"], verdict["mode"]) == ("invalid", "commitment", "rpc"), verdict
    assert "the receipt's salt does not open this registration's commitment" in verdict["reason"]


def test_the_services_bundle_completed_with_the_salt_verifies_offline(stack: CliStack, submitted: Submitted) -> None:
    """The indexer proves the record under the commitment's slot: the API's bundle, completed with the salt, is
    what docchain verify --offline checks, with the commitment step after the file's."""
    commitment, signer = submitted.row["docHash"], submitted.row["signer"]
    url = f"{stack.api}/v1/documents/{commitment}/receipts/{signer}"

    def captured() -> dict[str, Any] | None:
        answer = httpx.get(url, timeout=10).json()
        return answer if "evidence" in answer else None

    served = parse_receipt(json.dumps(poll(captured, 30, interval=0.1, what="the service's evidence")))
    assert served.private is None  # the service cannot know the salt
    opening = Private(parse_hex(submitted.row["sha256"]), parse_hex(submitted.receipt["private"]["salt"]))
    bundle = stack.work / "offer-bundle.docchain.json"
    bundle.write_text(receipts.with_private(served, opening).dumps())
    assert served.evidence is not None
    trusted = to_hex(served.evidence.block.hash)
    verdict = stack.json(
        "verify", str(submitted.doc), "--receipt", str(bundle), "--offline", "--trusted-block-hash", trusted
    )
    assert (verdict["outcome"], verdict["mode"]) == ("valid", "offline"), verdict
    assert [s["name"] for s in verdict["steps"]][:3] == ["file", "commitment", "signature"]


def test_private_refuses_store_and_the_api_refuses_a_private_upload(stack: CliStack, submitted: Submitted) -> None:
    refused = stack.run("submit", str(submitted.doc), "--private", "--store", check=2)
    assert "--private keeps the document from the service: it cannot be combined with --store" in refused.stderr
    body = {"registration": submitted.receipt["eip712"]["message"], "signature": submitted.receipt["signature"]}
    answer = httpx.post(
        f"{stack.api}/v1/documents",
        files={"submission": (None, json.dumps({**body, "private": True})), "file": ("offer.txt", b"the bytes")},
        timeout=10,
    )
    assert answer.status_code in (400, 422) and answer.headers["content-type"].startswith("application/problem+json")
    assert "a private submission's docHash is a salted commitment" in answer.json()["detail"]


def test_without_wait_the_salt_waits_beside_the_file_until_docchain_receipt(stack: CliStack) -> None:
    doc = stack.work / "later.txt"
    doc.write_text("submitted privately, receipt later " + os.urandom(8).hex() + "\n")
    [first] = stack.json("submit", str(doc), "--private")
    salt_path = receipts.salt_path(doc)
    salt_file = json.loads(salt_path.read_text())
    assert (salt_file["sha256"], salt_file["docHash"]) == (first["sha256"], first["docHash"])
    assert salt_path.stat().st_mode & 0o777 == 0o600
    # a repeat finds the same opening, so asks for the same commitment
    sha = parse_hex(first["sha256"])
    kept = receipts.open_private(doc, sha, force=False)
    assert to_hex(kept.commitment) == first["docHash"] and receipts.pending_private(doc, sha) == kept
    # docchain receipt FILE asks for the commitment and completes the receipt with the salt
    stack.run("receipt", str(doc), "--wait")
    receipt = json.loads(doc.with_name("later.txt.docchain.json").read_text())
    assert receipt["private"] == {"salt": salt_file["salt"]}
    assert receipt["eip712"]["message"]["docHash"] == first["docHash"]
    assert receipt["document"]["sha256"] == first["sha256"] and not salt_path.exists()
    # a salt file of bytes that changed since is not replaced without --force
    receipts.open_private(doc, sha, force=False)
    doc.write_text("the file changed since\n")
    with pytest.raises(UsageError, match="holds the salt of another private submission of later.txt"):
        receipts.open_private(doc, sha256_bytes(doc.read_bytes()), force=False)
    assert receipts.pending_private(doc, sha256_bytes(doc.read_bytes())) is None


def test_a_supersede_through_the_api_is_warned_unless_the_key_signed_the_old_version(
    stack: CliStack, submitted: Submitted
) -> None:
    """The API's document says whether alice has a registration of the old version: none of a hash no one
    signed (one warning line, submitted all the same), hers of her private submission's commitment (no warning)."""
    new, other = stack.work / "v2.txt", stack.work / "v3.txt"
    for path in (new, other):
        path.write_text(f"{path.name} {os.urandom(8).hex()}\n")
    unsigned = to_hex(sha256_bytes(os.urandom(32)))
    warned = stack.run("submit", str(other), "--supersedes", unsigned, "--json")
    assert warned.stderr.strip().splitlines() == [
        f"warning: {json.loads(warned.stdout)[0]['signer']} has no registration of {unsigned}: verifiers ignore "
        "this supersede (only a signer of the old version can supersede it); submitting anyway"
    ]
    quiet = stack.run("submit", str(new), "--supersedes", submitted.row["docHash"], "--json")
    assert quiet.stderr.strip() == "" and json.loads(quiet.stdout)[0]["state"] in ("pending", "submitted", "anchored")


def test_a_private_receipt_whose_node_cannot_be_reached_is_pointed_at_offline(tmp_path: Path) -> None:
    """A private receipt is verified through the node by default; when the node cannot be reached and the
    receipt carries its evidence bundle, the one line says that --offline verifies it without any node."""
    corpus = json.loads((Path(__file__).parents[1] / "vectors" / "bundles" / "bundles.json").read_text())
    bundle = next(b for b in corpus["bundles"] if b["private"] and b["receipt"].get("evidence"))
    doc = tmp_path / "offer.txt"
    doc.write_text(bundle["file"])
    (tmp_path / "offer.txt.docchain.json").write_text(json.dumps(bundle["receipt"]))
    env = {**os.environ, "HOME": str(tmp_path), "DOCCHAIN_CONFIG_DIR": str(tmp_path / "config")}
    done = subprocess.run(
        [sys.executable, "-m", "docchain.client", "verify", str(doc), "--rpc", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert "also verifies with --offline" in done.stderr, done.stderr
