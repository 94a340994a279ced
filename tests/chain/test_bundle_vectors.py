"""The golden bundle corpus (tests/vectors/bundles/bundles.json): chain/offline.py gives every case exactly the
verdict the corpus holds — outcome, failed step, reason and each step's words — so that any other verifier (the
web page's) can be held to the same file. The corpus itself is checked to be what it claims: real bundles of
both nodes, a Merkle, a revoked and a private one, each good bundle with a tamper of every field that matters, and no
tamper that passes unless it is one the offline verifier cannot see (listed here, with why)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from docchain.chain.errors import InvalidInput
from docchain.chain.evidence import _LAYOUTS, decode_header
from docchain.chain.receipt import MAX_BYTES, parse_receipt
from docchain.chain.trust import release_of
from docchain.chain.verify import Outcome, Step
from tests.vectors.bundles.corpus import CORPUS, Case, apply, expectation, load, verdict_of

DATA = load()
BUNDLES: dict[str, dict[str, Any]] = {b["name"]: b for b in DATA["bundles"]}
CASES = [(b["name"], Case.from_json(c)) for b in DATA["bundles"] for c in b["cases"]]

# Tampers that verify: what an offline bundle cannot prove (its record holds the block and time, not the
# transaction; a direct record does not hold the metadataHash its event carries) and a proof node off the key's
# path (unused). Without a trusted block hash nothing verifies: a bundle proves itself only down to its header.
PASSING = {
    "honest",
    "evidence.account.proof with an extra node",
    "anchor.transactionHash another",
    "anchor.blockHash another",
}
PASSING_DIRECT = {"metadataHash changed and signed again"}
# a Merkle anchor's storage word holds the root's time and block, not its leaf count: the receipt's count is said
# unproven in the record step rather than checked (protocol.md section 7)
PASSING_MERKLE = {"anchor.merkle.leafCount one more"}


@pytest.mark.parametrize(("bundle", "case"), CASES, ids=[f"{b}: {c.name}" for b, c in CASES])
def test_offline_verification_gives_each_case_its_expected_verdict(bundle: str, case: Case) -> None:
    receipt = apply(BUNDLES[bundle]["receipt"], case.changes)
    assert expectation(verdict_of(receipt, case.file_sha256, case.trusted)) == case.expect


def test_the_corpus_holds_real_bundles_of_both_nodes_direct_merkle_and_revoked() -> None:
    kinds = {(b["node"], b["anchoring"], b["revoked"], b["private"]) for b in BUNDLES.values()}
    assert {
        ("anvil --hardfork prague", "direct", False, False),
        ("anvil --hardfork prague", "merkle", False, False),
        ("anvil --hardfork prague", "direct", True, False),
        ("anvil --hardfork prague", "direct", False, True),
        ("ganache --hardfork shanghai", "direct", False, False),
        ("ganache --hardfork shanghai", "merkle", False, False),
    } <= kinds
    assert CORPUS.stat().st_size < 1_000_000
    for bundle in BUNDLES.values():
        evidence = bundle["receipt"]["evidence"]
        header = decode_header(bytes.fromhex(evidence["block"]["header"][2:]))
        assert header.fork == bundle["fork"] == bundle["node"].split()[-1]
        assert bundle["client"].lower().startswith(bundle["node"].split()[0])
        assert bundle["fileSha256"] == "0x" + hashlib.sha256(bundle["file"].encode()).hexdigest()
        assert bundle["receipt"]["document"]["sha256"] == bundle["fileSha256"]
        assert bundle["receipt"]["docchainReceipt"] == (2 if bundle["anchoring"] == "merkle" else 1)
        text = json.dumps(bundle["receipt"])
        assert len(text) < MAX_BYTES and parse_receipt(text).to_json() == bundle["receipt"]


@pytest.mark.parametrize("name", sorted(BUNDLES))
def test_each_good_bundle_has_a_tamper_of_every_field_that_matters(name: str) -> None:
    bundle = BUNDLES[name]
    cases = {c["name"]: c for c in bundle["cases"]}
    evidence = bundle["receipt"]["evidence"]
    proofs = [f"evidence.account.proof[{i}] altered" for i in range(len(evidence["account"]["proof"]))]
    proofs += [
        f"evidence.storage[{k}].proof[{j}] altered"
        for k, entry in enumerate(evidence["storage"])
        for j in range(len(entry["proof"]))
    ]
    honest = {"honest", "no trusted block hash", "another trusted block hash", "another file"}
    assert honest | set(proofs) <= set(cases)
    expected = Outcome.REVOKED if bundle["revoked"] else Outcome.VALID
    assert cases["honest"]["expect"]["outcome"] == expected
    untrusted = cases["no trusted block hash"]["expect"]
    assert (untrusted["outcome"], untrusted["failedStep"]) == (Outcome.INVALID, "chain")
    if bundle["revoked"]:
        return
    fields = [f.key for f in _LAYOUTS[bundle["fork"]]]
    wanted = {
        *(f"header.{key} forged, rehashed" for key in fields),
        "evidence.block.number + 1",
        "evidence.block.hash replaced",
        "evidence.block.header's last byte changed",
        "evidence.account.address another",
        "evidence.account.proof cut",
        "evidence.account.code cut by one byte",
        *(f"evidence.storage[{k}].slot another" for k in range(len(evidence["storage"]))),
        "signature's first byte changed",
        "eip712.message.metadataHash changed",
        "eip712.message.deadline changed",
        *(
            ("document.sha256 changed, with that file", "private.salt changed", "private removed")
            if bundle["private"]
            else ("document hash changed", "document hash changed, with that file")
        ),
        "signer changed",
        "chainId changed",
        "contract changed",
        "anchor.timestamp + 1",
        "no evidence",
    }
    assert wanted <= set(cases)
    assert any(n.startswith("evidence.account.code byte") for n in cases)
    assert any(n.startswith("evidence.account.code's cached domain separator") for n in cases)
    passing = PASSING | (PASSING_DIRECT if bundle["anchoring"] == "direct" else PASSING_MERKLE)
    assert {n for n, c in cases.items() if c["expect"]["outcome"] == Outcome.VALID} == passing


@pytest.mark.parametrize("name", sorted(BUNDLES))
def test_the_code_holds_its_domain_separator_where_releases_json_says(name: str) -> None:
    """contracts/releases.json's domainSeparatorAt, which protocol.md section 7 sends a third party to, is where
    the deployed code of the bundle's release holds the receipt's EIP-712 domain separator, and no other range
    holds it."""
    receipt = parse_receipt(json.dumps(BUNDLES[name]["receipt"]))
    assert receipt.evidence is not None
    code = receipt.evidence.code
    release = release_of(code)
    assert release is not None
    listed = json.loads((CORPUS.parents[3] / "contracts" / "releases.json").read_text())["releases"]
    at = listed[release.number - 1]["domainSeparatorAt"]
    holding = [
        start for start, length in release.immutables if code[start : start + length] == receipt.domain.separator
    ]
    assert holding == [at]


@pytest.mark.parametrize("name", sorted(BUNDLES))
def test_a_verdict_proven_to_a_trusted_block_holds_as_of_that_block_in_its_headline(name: str) -> None:
    """A bundle shows nothing after its own block: a revocation there is unseen, so a valid verdict's sentence says
    "valid as of block N" (N the bundle's block), and a verdict that never reached a trusted block says no block."""
    number = BUNDLES[name]["receipt"]["evidence"]["block"]["number"]
    as_of = f", valid as of block {number}: a revocation after that block is not in the bundle."
    for case in BUNDLES[name]["cases"]:
        expect = case["expect"]
        trusted = any(s["name"] == "chain" and s["ok"] for s in expect["steps"])
        assert expect["asOfBlock"] == (number if trusted else None), case["name"]
        assert expect["summary"].endswith(as_of) == (expect["outcome"] == Outcome.VALID), (case["name"], expect)


@pytest.mark.parametrize("name", sorted(BUNDLES))
def test_a_tamper_fails_at_the_step_that_checks_what_it_changed(name: str) -> None:
    """The expected verdicts are read, not only recorded: each kind of change ends at the step that owns it."""
    owner = [
        ("evidence.account", Step.REGISTRY),
        ("evidence.storage", Step.RECORD),
        ("evidence.block", Step.ANCHOR),
        ("header.stateRoot", Step.REGISTRY),
        ("header.number", Step.ANCHOR),
        ("header.", Step.CHAIN),
        ("another trusted", Step.CHAIN),
        ("private.salt", Step.COMMITMENT),
        ("document.sha256 changed, with that file", Step.COMMITMENT),
        ("signature", Step.SIGNATURE),
        ("eip712.message", Step.SIGNATURE),
        ("anchor.timestamp", Step.RECORD),
        ("anchor.blockNumber", Step.RECORD),
        ("anchor.merkle", Step.RECORD),
    ]
    bundle = BUNDLES[name]
    for case in bundle["cases"]:
        expect = case["expect"]
        if expect["outcome"] in (Outcome.VALID, Outcome.REVOKED):
            continue
        step = next((s for prefix, s in owner if case["name"].startswith(prefix)), None)
        if step is not None:
            assert expect["failedStep"] == step, (case["name"], expect["reason"])
        assert expect["steps"][-1] == {"name": expect["failedStep"], "ok": False, "detail": expect["reason"]}


def test_the_web_pages_reader_reads_every_case_as_python_does(tmp_path: Path) -> None:
    """api/web/js/receipt.js over every case's receipt: the same receipt back, or the same refusal."""
    texts = [json.dumps(apply(BUNDLES[b]["receipt"], c.changes)) for b, c in CASES]
    cases = tmp_path / "cases.json"
    cases.write_text(json.dumps([{"text": t} for t in texts]))
    node = shutil.which("node")
    assert node, "node is installed with the repository's tools (package.json)"
    reader = Path(__file__).parents[1] / "vectors" / "run_js_reader.mjs"
    done = subprocess.run([node, str(reader), str(cases)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    refused = 0
    for text, result in zip(texts, json.loads(done.stdout), strict=True):
        try:
            python: dict[str, Any] = {"valid": True, "receipt": parse_receipt(text).to_json()}
        except InvalidInput as exc:
            python, refused = {"valid": False, "message": str(exc)}, refused + 1
        assert result["text"] == python
    assert refused >= 2  # the corpus holds receipts the reader refuses, not only ones it reads


def test_the_web_pages_offline_verifier_gives_each_case_its_expected_verdict() -> None:
    """api/web/js/offline.js, run by node over the whole corpus (tests/vectors/bundles/run_js_offline.mjs): the
    verdict of every case, word for word."""
    node = shutil.which("node")
    assert node, "node is installed with the repository's tools (package.json)"
    runner = CORPUS.parent / "run_js_offline.mjs"
    done = subprocess.run([node, str(runner)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert len(results) == len(CASES)
    differ = [f"{b}: {c.name}: {js}" for (b, c), js in zip(CASES, results, strict=True) if js != c.expect]
    assert differ == []
