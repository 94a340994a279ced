"""The page's offline verifier (api/web/js/offline.js): an evidence bundle dropped on the verify page is checked in
the browser, step by step, with no call to the docchain API, to the verdict chain/offline.py gives: the same
outcome, failed step, reasons and trust, for honest bundles (direct, Merkle, revoked, absent) of the stack's
anvil and for each tampered variant of tests/chain/test_bundle.py, and for the bundle dropped as its Verifiable
Credential. The block's canonicity is asked of the nodes the person names, which must agree (the stack's anvil
answers the bundle's hash; another anvil none, then another). The vendored proof libraries
are esbuild's bundle of node_modules and the released code hashes are contracts/releases.json's, byte for
byte."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from web3 import HTTPProvider, Web3
from webstack import Pages, Stack

from docchain.chain import merkle
from docchain.chain import typed_data as td
from docchain.chain.bundle import parse_evidence
from docchain.chain.capture import capture_evidence
from docchain.chain.hashing import SALT_BYTES, commitment, sha256_bytes
from docchain.chain.offline import proven_slots, verify_offline
from docchain.chain.receipt import Private, Receipt, build_receipt
from docchain.chain.registry import Registry, SignedRegistration
from docchain.chain.rpc import JsonRpc
from docchain.chain.sender import TxSender
from docchain.chain.values import to_hex
from docchain.chain.vc import credential_of
from tests.chain.test_bundle import EVIDENCE_CASES, RECEIPT_CASES
from tests.support import DevNode
from tests.vectors.bundles.corpus import load

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "api" / "web" / "js"
ENTRY = WEB / "vendor" / "proofs.entry.js"
BUNDLE = WEB / "vendor" / "proofs.js"
RELEASES_JS = WEB / "releases.js"
RELEASES_JSON = ROOT / "contracts" / "releases.json"
LIBRARIES = ("@ethereumjs/trie", "@ethereumjs/rlp", "@noble/curves", "esbuild")
REMAKE = "PYTHONPATH=. python tests/web/test_page_offline.py --vendor"
ESBUILD_ARGS = (
    "--bundle",
    "--format=esm",
    "--platform=browser",
    "--target=es2022",
    "--minify",
    "--legal-comments=eof",
    "--charset=utf8",
)

RELAYER = bytes.fromhex("7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6")  # anvil's account #3
SIGNER = bytes.fromhex("47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a")  # account #4
TIMEOUT = 20_000


# ------------------------------------------------------------------------------------------------ vendored files


def _versions() -> dict[str, str]:
    return {n: json.loads((ROOT / "node_modules" / n / "package.json").read_text())["version"] for n in LIBRARIES}


def bundle_text() -> str:
    """api/web/js/vendor/proofs.js as esbuild builds it from node_modules."""
    v = _versions()
    built = subprocess.run(
        [str(ROOT / "node_modules" / ".bin" / "esbuild"), str(ENTRY.relative_to(ROOT)), *ESBUILD_ARGS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return (
        f"// @ethereumjs/trie {v['@ethereumjs/trie']} and @ethereumjs/rlp {v['@ethereumjs/rlp']} (MPL-2.0) and "
        f"@noble/curves {v['@noble/curves']} (MIT) as one ES module\n"
        f"// for the page's offline verifier: esbuild {v['esbuild']}'s bundle of proofs.entry.js beside it, from "
        "node_modules (package.json\n"
        f"// pins every version): `esbuild api/web/js/vendor/proofs.entry.js {' '.join(ESBUILD_ARGS)}`,\n"
        f"// run by `{REMAKE}`; a test rebuilds it and holds it equal.\n"
        f"{built}"
    )


def releases_text() -> str:
    """api/web/js/releases.js: contracts/releases.json's released registries, as chain/trust.py reads them."""
    releases = [
        {
            "number": number,
            "name": r["name"],
            "maskedCodeHash": r["maskedCodeHash"].lower(),
            "codeLength": r["codeLength"],
            "immutables": r["immutables"],
        }
        for number, r in enumerate(json.loads(RELEASES_JSON.read_text())["releases"], start=1)
    ]
    return (
        "// Every released DocumentRegistry, oldest first: keccak256 of its runtime code with its immutables (byte\n"
        "// ranges) zeroed, as contracts/releases.json lists them and chain/trust.py reads them (a release's number\n"
        f"// is its place from 1). Made by `{REMAKE}`; a test holds it equal.\n"
        "\n"
        "export const MERKLE_RELEASE = 2;  // the first release that anchors Merkle roots (chain/trust.py)\n"
        "\n"
        f"export const RELEASES = {json.dumps(releases, indent=2)};\n"
    )


def test_the_vendored_proof_libraries_are_esbuilds_bundle_of_node_modules() -> None:
    if not (ROOT / "node_modules" / ".bin" / "esbuild").exists():
        pytest.skip("esbuild is not installed (npm install)")
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]
    assert _versions() == {n: pinned[n] for n in LIBRARIES}
    assert BUNDLE.read_text() == bundle_text(), f"stale: {REMAKE}"


def test_the_pages_releases_are_contracts_releases_json() -> None:
    assert RELEASES_JS.read_text() == releases_text(), f"stale: {REMAKE}"


# ------------------------------------------------------------------------------------------------ bundles


@dataclasses.dataclass(frozen=True)
class Case:
    """One question for both verifiers: a file's SHA-256 (None: the receipt's own), a receipt's JSON, a trusted
    block hash; and Python's verdict of it."""

    name: str
    file_hash: str | None
    receipt: dict[str, Any]
    trusted: str | None
    expected: dict[str, Any]


def _case(name: str, receipt: Receipt, file_hash: bytes | None, trusted: bytes | None) -> Case:
    verdict = verify_offline(file_hash, receipt, trusted).to_json()
    return Case(
        name,
        None if file_hash is None else to_hex(file_hash),
        receipt.to_json(),
        None if trusted is None else to_hex(trusted),
        verdict,
    )


@dataclasses.dataclass(frozen=True)
class Bundles:
    direct: Receipt  # with its evidence
    content: bytes  # the direct receipt's document
    cases: list[Case]


def _captured(rpc_url: str, registry: Registry, receipt: Receipt) -> Receipt:
    async def go() -> Receipt:
        async with JsonRpc(rpc_url) as rpc:
            [evidence] = await capture_evidence(rpc, registry.address, [proven_slots(receipt)])
        return dataclasses.replace(receipt, evidence=evidence)

    # in a thread of its own: Playwright's sync API runs an event loop in this one while the browser lives
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, go()).result()


def _signed(domain: td.Domain, content: bytes) -> SignedRegistration:
    reg = td.Registration(doc_hash=sha256_bytes(content), signer=td.address_of(SIGNER), deadline=2**40)
    return SignedRegistration(reg, td.sign(domain, reg, SIGNER))


@pytest.fixture(scope="module")
def bundles(stack: Stack) -> Bundles:
    """Bundles captured from the stack's anvil (direct, revoked, Merkle, absent) and the direct one tampered
    with in every way tests/chain/test_bundle.py tampers with it, each with Python's verdict."""
    w3 = Web3(HTTPProvider(stack.rpc_url))
    registry = Registry(w3, stack.domain.verifying_contract, TxSender(w3, RELAYER))
    domain = stack.domain

    content = b"Lease, verified offline\n" + os.urandom(16)
    signed = _signed(domain, content)
    direct = _captured(
        stack.rpc_url, registry, registry.receipt_for(signed, registry.register(signed), file_name="lease.txt")
    )
    block = direct.evidence.block if direct.evidence else None
    assert block is not None

    gone = _signed(domain, b"revoked " + os.urandom(16))
    revoked_receipt = registry.receipt_for(gone, registry.register(gone))
    Registry(w3, registry.address, TxSender(w3, SIGNER)).revoke(gone.registration.doc_hash)
    revoked = _captured(stack.rpc_url, registry, revoked_receipt)

    items = [_signed(domain, b"leaf " + os.urandom(16)) for _ in range(3)]
    tree = merkle.MerkleTree.of([merkle.leaf(i.registration, i.signature) for i in items])
    tx = registry.anchor_root(tree.root, len(items))
    anchored = w3.eth.get_block(tx["blockNumber"])
    leaf = merkle.leaf(items[1].registration, items[1].signature)
    in_tree = _captured(
        stack.rpc_url,
        registry,
        build_receipt(
            domain=domain,
            registration=items[1].registration,
            signature=items[1].signature,
            tx_hash=bytes(tx["transactionHash"]),
            block_number=int(tx["blockNumber"]),
            block_hash=bytes(anchored["hash"]),
            timestamp=int(anchored["timestamp"]),
            merkle=tree.proof(tree.index_of(leaf)),
        ),
    )
    hidden = b"Private terms\n" + os.urandom(16)
    salt = os.urandom(SALT_BYTES)
    reg = td.Registration(doc_hash=commitment(sha256_bytes(hidden), salt), signer=td.address_of(SIGNER), deadline=2**40)
    sealed = SignedRegistration(reg, td.sign(domain, reg, SIGNER))
    private = _captured(
        stack.rpc_url,
        registry,
        dataclasses.replace(
            registry.receipt_for(sealed, registry.register(sealed)), private=Private(sha256_bytes(hidden), salt)
        ),
    )
    never = _signed(domain, b"never registered " + os.urandom(16))
    unsent = dataclasses.replace(direct, registration=never.registration, signature=never.signature, evidence=None)
    absent = _captured(stack.rpc_url, registry, unsent)

    def trusted(r: Receipt) -> bytes:
        assert r.evidence is not None
        return r.evidence.block.hash

    doc = sha256_bytes(content)
    cases = [
        _case("direct", direct, doc, block.hash),
        _case("direct, no trusted hash", direct, None, None),
        _case("another file", direct, sha256_bytes(b"another file"), block.hash),
        _case("another trusted hash", direct, doc, bytes(32)),
        _case("revoked", revoked, None, trusted(revoked)),
        _case("merkle", in_tree, None, trusted(in_tree)),
        _case(
            "merkle, another leaf",
            dataclasses.replace(in_tree, registration=items[0].registration, signature=items[0].signature),
            None,
            trusted(in_tree),
        ),
        _case("absent", absent, None, trusted(absent)),
        _case("private", private, sha256_bytes(hidden), trusted(private)),
        _case(
            "private, another salt",
            dataclasses.replace(private, private=Private(sha256_bytes(hidden), os.urandom(SALT_BYTES))),
            sha256_bytes(hidden),
            trusted(private),
        ),
    ]
    for name, change, _step, _words in EVIDENCE_CASES:
        section = direct.evidence.to_json() if direct.evidence else {}
        section = copy.deepcopy(section)
        change(section)
        cases.append(_case(name, dataclasses.replace(direct, evidence=parse_evidence(section)), doc, block.hash))
    for name, alter, _step, _outcome in RECEIPT_CASES:
        if name != "no evidence":  # the page asks the API for a receipt without evidence
            cases.append(_case(name, alter(direct), doc, block.hash))
    return Bundles(direct, content, cases)


# ------------------------------------------------------------------------------------------------ the verifier

RUN_CASES = """async cases => {
  const { parseReceipt } = await import('/js/receipt.js');
  const { verifyOffline } = await import('/js/offline.js');
  const out = [];
  for (const c of cases) {
    const receipt = parseReceipt(JSON.stringify(c.receipt));
    out.push(await verifyOffline(c.fileHash, receipt, c.trusted));
  }
  return out;
}"""


def _api_calls(page: Any) -> list[str]:
    """Every request to the docchain API from now on, refused, as if the service were gone. The header's node
    status (app.js asks /v1/chain when the page opens and every 15 s) is the page's, not the verifier's: it goes
    through, uncounted."""
    calls: list[str] = []

    def refuse(route: Any) -> None:
        request = route.request
        if request.method == "GET" and request.url.split("?")[0].endswith("/v1/chain"):
            route.continue_()
            return
        calls.append(f"{request.method} {request.url}")
        route.abort()

    page.route("**/v1/**", refuse)
    return calls


@pytest.mark.browser
def test_the_browser_gives_pythons_verdict_for_every_bundle(pages: Pages, bundles: Bundles) -> None:
    page = pages.open("verify")
    page.wait_for_selector("#verify-file")
    calls = _api_calls(page)
    cases = [{"fileHash": c.file_hash, "receipt": c.receipt, "trusted": c.trusted} for c in bundles.cases]
    verdicts = page.evaluate(RUN_CASES, cases)
    for case, js in zip(bundles.cases, verdicts, strict=True):
        assert js == case.expected, case.name
    outcomes = {c.name: (c.expected["outcome"], c.expected["failedStep"]) for c in bundles.cases}
    assert outcomes["direct"] == ("valid", None)
    assert outcomes["revoked"] == ("revoked", "revocation")
    assert outcomes["merkle"] == ("valid", None)
    assert outcomes["absent"] == ("not_registered", "record")
    assert outcomes["account.code"] == ("invalid", "registry")
    assert outcomes["private"] == ("valid", None)
    assert outcomes["private, another salt"] == ("invalid", "commitment")
    assert calls == [] and pages.errors == []


# Each case's receipt is its bundle's changed by its recipe (tests/vectors/bundles/corpus.py says the three ops),
# made in the page: the corpus crosses over once. A receipt the strict reader refuses is invalid at step receipt
# with the reader's message, as the corpus says and as api/web/js/verify.js shows it.
RUN_GOLDEN = """async bundles => {
  const { parseReceipt } = await import('/js/receipt.js');
  const { verifyOffline } = await import('/js/offline.js');
  const apply = (receipt, changes) => {
    const out = structuredClone(receipt);
    for (const change of changes) {
      const tokens = change.path.slice(1).split('/').map(t => t.replaceAll('~1', '/').replaceAll('~0', '~'));
      const last = tokens.pop();
      const target = tokens.reduce((node, token) => node[Array.isArray(node) ? Number(token) : token], out);
      const key = Array.isArray(target) ? Number(last) : last;
      if (change.op === 'remove') Array.isArray(target) ? target.splice(key, 1) : delete target[key];
      else if (change.op === 'splice') {
        const at = 2 + 2 * change.at, bytes = change.value.slice(2);
        target[key] = target[key].slice(0, at) + bytes + target[key].slice(at + bytes.length);
      } else target[key] = structuredClone(change.value);
    }
    return out;
  };
  const out = [];
  for (const bundle of bundles) {
    for (const c of bundle.cases) {
      let receipt;
      try {
        receipt = parseReceipt(JSON.stringify(apply(bundle.receipt, c.changes)));
      } catch (err) {
        out.push({ outcome: 'invalid', failedStep: 'receipt', reason: err.message,
                   summary: `Verification failed at step receipt: ${err.message}`,
                   steps: [{ name: 'receipt', ok: false, detail: err.message }], asOfBlock: null });
        continue;
      }
      const v = await verifyOffline(c.fileSha256, receipt, c.trustedBlockHash);
      out.push({ outcome: v.outcome, failedStep: v.failedStep, reason: v.reason, summary: v.summary,
                 steps: v.steps, asOfBlock: v.asOfBlock ?? null });
    }
  }
  return out;
}"""


@pytest.mark.browser
def test_the_browser_gives_every_golden_case_its_verdict(pages: Pages) -> None:
    """tests/vectors/bundles/bundles.json: real bundles of anvil and ganache (direct, Merkle, revoked, private)
    and their tampered variants, with the outcome, failed step, reason, summary, steps and block it holds as of
    that chain/offline.py gives each."""
    corpus = load()["bundles"]
    cases = [(b["name"], c) for b in corpus for c in b["cases"]]
    page = pages.open("verify")
    page.wait_for_selector("#verify-file")
    calls = _api_calls(page)
    verdicts = page.evaluate(RUN_GOLDEN, corpus)
    for (bundle, case), js in zip(cases, verdicts, strict=True):
        assert js == case["expect"], f"{bundle}: {case['name']}"
    assert len({b["node"] for b in corpus}) == 2 and len(cases) > 200
    assert calls == [] and pages.errors == []


# ------------------------------------------------------------------------------------------------ the page


def _drop(page: Any, tmp_path: Path, name: str, receipt: dict[str, Any], content: bytes) -> None:
    path = tmp_path / name
    path.write_text(json.dumps(receipt))
    page.set_input_files("#verify-receipt", str(path))
    doc = tmp_path / "lease.txt"
    doc.write_bytes(content)
    page.set_input_files("#verify-file", str(doc))


def _steps(page: Any) -> list[tuple[str, bool]]:
    items = page.locator("#verdict-steps li")
    return [(li.get_attribute("data-check"), "ok" in (li.get_attribute("class") or "")) for li in items.all()]


@pytest.mark.browser
def test_a_dropped_bundle_is_verified_in_the_page_without_the_api(
    pages: Pages, bundles: Bundles, tmp_path: Path
) -> None:
    page = pages.open("verify")
    page.wait_for_selector("#verify-file")
    calls = _api_calls(page)
    _drop(page, tmp_path, "lease.txt.docchain.json", bundles.direct.to_json(), bundles.content)
    # the bundle alone: every step holds down to its header, which nothing ties to a chain yet; the page asks
    # for the block hash (Python's verdict: invalid at chain, with the same words)
    expect(page.locator("#verdict")).to_have_attribute("data-verdict", "unanchored", timeout=TIMEOUT)
    proven = ["file", "signature", "anchor", "registry", "record", "confirmations"]
    assert _steps(page) == [*((s, True) for s in proven), ("chain", False)]
    expected = next(c for c in bundles.cases if c.name == "direct, no trusted hash").expected
    assert page.locator("#verdict .summary").inner_text() == expected["summary"]
    assert page.locator("#offline-mode").is_visible()
    # held to the block hash the person trusts: valid
    evidence = bundles.direct.evidence
    assert evidence is not None
    page.fill("#offline-trusted", to_hex(evidence.block.hash))
    page.click("#offline-check")
    expect(page.locator("#verdict")).to_have_attribute("data-verdict", "valid", timeout=TIMEOUT)
    assert _steps(page) == [(s, True) for s in [*proven, "chain", "revocation"]]
    # a bundle shows nothing after its block: the headline says what the verdict holds as of
    expect(page.locator("#verdict h2")).to_have_text(f"Valid as of block {evidence.block.number}")
    Pages.shot(page, "verify-offline-valid")
    page.fill("#offline-trusted", "")

    # the same bundle dropped as its Verifiable Credential (docchain receipt export --vc): read back, then verified
    credential = credential_of(bundles.direct).to_json()
    _drop(page, tmp_path, "lease.txt.vc.json", credential, bundles.content)
    expect(page.locator("#verdict")).to_have_attribute("data-verdict", "unanchored", timeout=TIMEOUT)
    page.fill("#offline-trusted", to_hex(evidence.block.hash))
    page.click("#offline-check")
    expect(page.locator("#verdict")).to_have_attribute("data-verdict", "valid", timeout=TIMEOUT)
    expect(page.locator("#offline-source")).to_contain_text("Checked against credential lease.txt.vc.json")
    # a claim changed apart from its bundle: refused at the receipt step, in chain/vc.py's words
    _drop(page, tmp_path, "forged.vc.json", {**credential, "validFrom": "2001-01-01T00:00:00Z"}, bundles.content)
    expect(page.locator("#verdict")).to_have_attribute("data-verdict", "invalid", timeout=TIMEOUT)
    assert _steps(page) == [("receipt", False)]
    said = json.dumps(credential["validFrom"])
    expect(page.locator("#verdict-steps li.bad .detail")).to_have_text(
        f"credential: validFrom is not what its evidence bundle says: {said} (made from evidence[0].receipt's "
        "anchor.timestamp: the one or the other was changed)"
    )

    # a tampered bundle: the cross at its named step, the reason Python gives
    tampered = next(c for c in bundles.cases if c.name == "account.proof[0]")
    _drop(page, tmp_path, "tampered.docchain.json", tampered.receipt, bundles.content)
    expect(page.locator("#verdict")).to_have_attribute("data-verdict", "invalid", timeout=TIMEOUT)
    assert _steps(page)[-1] == ("registry", False)
    assert page.locator("#verdict-steps li.bad .detail").inner_text() == tampered.expected["reason"]
    Pages.shot(page, "verify-offline-tampered")
    assert calls == [] and pages.errors == []


@pytest.fixture(scope="module")
def other_anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevNode]:
    """A second chain, whose blocks have other hashes than the stack's."""
    node = DevNode(tmp_path_factory.mktemp("other-anvil")).started()
    yield node
    node.stop()


@pytest.mark.browser
def test_the_block_is_checked_with_the_node_the_person_names(
    pages: Pages, bundles: Bundles, stack: Stack, other_anvil: DevNode, tmp_path: Path
) -> None:
    evidence = bundles.direct.evidence
    assert evidence is not None
    page = pages.open("verify")
    page.wait_for_selector("#verify-file")
    calls = _api_calls(page)
    nodes: list[str] = []
    page.on("request", lambda r: nodes.append(r.post_data or "") if r.method == "POST" else None)
    _drop(page, tmp_path, "lease.txt.docchain.json", bundles.direct.to_json(), bundles.content)
    expect(page.locator("#verdict")).to_have_attribute("data-verdict", "unanchored", timeout=TIMEOUT)

    # the stack's own node: its block has the bundle's hash
    page.fill("#offline-rpc", stack.rpc_url)
    page.click("#offline-check")
    chain = page.locator('#verdict-steps li[data-check="chain"]')
    expect(chain).to_have_class("ok", timeout=TIMEOUT)
    expect(chain.locator(".detail")).to_have_text(
        f"block {evidence.block.number}'s hash {to_hex(evidence.block.hash)} is the one you trust"
    )
    expect(page.locator("#offline-source")).to_contain_text(stack.rpc_url)
    [asked] = [json.loads(n) for n in nodes]
    assert (asked["method"], asked["params"]) == ("eth_getBlockByNumber", [hex(evidence.block.number), False])

    # a node of another chain: before it has the block, that is its answer, and nothing is left to trust
    number, true_hash = evidence.block.number, to_hex(evidence.block.hash)
    page.fill("#offline-rpc", other_anvil.rpc_url)
    page.click("#offline-check")
    expect(page.locator("#verdict")).to_have_attribute("data-verdict", "invalid", timeout=TIMEOUT)
    expect(chain.locator(".detail")).to_have_text(
        f"the node does not hold block {number}, which the bundle proves: {other_anvil.rpc_url} says no such block"
    )
    expect(page.locator("#offline-nodes li")).to_have_text([f"{other_anvil.rpc_url} has no block {number}"])
    # then it answers another hash for that block, and the cross is at the chain step, naming its answer
    other_anvil.mine(number)
    other_hash = other_anvil.rpc("eth_getBlockByNumber", [hex(number), False])["hash"]
    page.click("#offline-check")
    expect(chain.locator(".detail")).to_have_text(
        f"the bundle proves block {number} {true_hash}, not the trusted {other_hash} ({other_anvil.rpc_url} says "
        f"{other_hash})"
    )
    # several nodes, one per line or comma separated, each asked once: they must agree, in the CLI's words
    nodes.clear()
    page.fill("#offline-rpc", f"{stack.rpc_url}\n{other_anvil.rpc_url}")
    page.click("#offline-check")
    expect(chain.locator(".detail")).to_have_text(
        f"the nodes disagree on block {number}, which the bundle proves: {stack.rpc_url} says {true_hash}; "
        f"{other_anvil.rpc_url} says {other_hash}"
    )
    expect(page.locator("#offline-nodes li")).to_have_text(
        [
            f"{stack.rpc_url} has block {number} as {true_hash}",
            f"{other_anvil.rpc_url} has block {number} as {other_hash}",
        ]
    )
    assert len(nodes) == 2
    page.fill("#offline-rpc", f"{stack.rpc_url}, {stack.rpc_url}")
    page.click("#offline-check")
    expect(page.locator("#verdict")).to_have_attribute("data-verdict", "valid", timeout=TIMEOUT)
    page.fill("#offline-rpc", ", ".join([stack.rpc_url] * 6))
    page.click("#offline-check")
    expect(page.locator("#offline-note")).to_have_text("Name at most 5 nodes.")

    # a trusted hash typed in is the same question, asked instead of a node's
    page.fill("#offline-trusted", to_hex(evidence.block.hash))
    page.click("#offline-check")
    expect(page.locator("#offline-note")).to_have_text(
        "Give the block hash you trust or nodes to ask for it, not both."
    )
    page.fill("#offline-rpc", "")
    page.fill("#offline-trusted", to_hex(evidence.block.hash))
    page.click("#offline-check")
    expect(page.locator("#verdict")).to_have_attribute("data-verdict", "valid", timeout=TIMEOUT)
    Pages.shot(page, "verify-offline-trusted")
    assert calls == [] and pages.errors == []


if __name__ == "__main__" and sys.argv[1:] == ["--vendor"]:
    BUNDLE.write_text(bundle_text())
    RELEASES_JS.write_text(releases_text())
