"""The CLI's evidence commands (issue 23) on anvil (with a real API process) and on ganache: a receipt fetched
(``docchain receipt FILE``) and given its bundle (``receipt upgrade``), verified offline with every socket
refused, then its block checked canonical by one honest node and a lie about it caught by a second; ``receipt
upgrade`` from a node that keeps no state and from one that holds no such record; a revocation said "as of
block N" offline and by ``status --as-of-block`` before and after it; the bundle exported as a Verifiable
Credential that verifies the same and imports back to the receipt.

One stack per node (module-scoped); the cases share its receipt, and copy it where they change it."""

from __future__ import annotations

import dataclasses
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result
from web3 import Web3

from docchain.chain.deploy import ensure_deployed
from docchain.chain.hashing import keccak256, sha256_bytes
from docchain.chain.node import LocalNode
from docchain.chain.receipt import write_receipt
from docchain.chain.registry import Registry, SignedRegistration
from docchain.chain.sender import TxSender
from docchain.chain.typed_data import Registration, address_of, sign
from docchain.chain.values import to_hex
from docchain.client.cli import app
from docchain.client.errors import ExitCode
from docchain.client.stack import ApiProcess
from tests.conftest import DEV_KEYS
from tests.support import free_port

ALICE = DEV_KEYS[1]  # the signer, with gas of her own to revoke
API_RELAYER = DEV_KEYS[2]  # not the deployer's key, which the session's other tests send with


class Proxy:
    """A JSON-RPC proxy on 127.0.0.1 in front of a real node that tells one lie, chosen by the test: the hash of a
    block (``lie_about_block``) or that it keeps no state (``prune``); everything else passes on unchanged."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.lie_about_block: int | None = None
        self.prune = False
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                call = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if proxy.prune and call["method"] == "eth_getProof":
                    said = f"BlockOutOfRangeError: block height is 99 but requested was {call['params'][-1]}"
                    return self._answer(
                        {"jsonrpc": "2.0", "id": call["id"], "error": {"code": -32000, "message": said}}
                    )
                answer = httpx.post(proxy.upstream, json=call, timeout=30).json()
                if call["method"] == "eth_getBlockByNumber" and call["params"][0] == hex(proxy.lie_about_block or -1):
                    answer["result"]["hash"] = "0x" + "5e" * 32
                return self._answer(answer)

            def _answer(self, body: dict[str, Any]) -> None:
                content = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, *_: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Stack:
    kind: str
    node: LocalNode
    registry: Registry
    api: str | None  # None: no API; the receipt tells status --as-of-block the signer
    work: Path
    proxy: Proxy
    document: Path  # signed by ALICE, anchored by the API, its receipt upgraded to a bundle
    receipt: Path
    revoked_in: int = 0  # the block of ALICE's revocation, once revoke_it ran

    @property
    def rpc(self) -> str:
        return str(self.node.rpc_url)

    def call(self, method: str, params: list[Any]) -> Any:
        return httpx.post(self.rpc, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).json()[
            "result"
        ]

    def head(self) -> int:
        return int(self.call("eth_blockNumber", []), 16)

    def cli(self, *args: str) -> Result:
        # with no API, one at a port nothing listens on: a command that asked it would fail loudly
        api = self.api or f"http://127.0.0.1:{free_port()}"
        return CliRunner().invoke(app, ["--json", *args], env={"DOCCHAIN_API": api})

    def status(self, block: int) -> Result:
        """``docchain status FILE --as-of-block N``: the signers from the API, else from the receipt."""
        told = [] if self.api else ["--receipt", str(self.receipt)]
        return self.cli("status", str(self.document), "--as-of-block", str(block), "--rpc", self.rpc, *told)

    def copy(self, name: str, source: Path | None = None) -> Path:
        """A copy of the stack's receipt (or ``source``) that a case may change."""
        target = self.work / name
        target.write_bytes((source or self.receipt).read_bytes())
        return target


def _answer(result: Result, code: ExitCode) -> Any:
    assert result.exit_code == code, (result.stdout, result.stderr)
    return json.loads(result.stdout) if code == ExitCode.OK or result.stdout.strip().startswith("{") else None


@pytest.fixture(scope="module", params=["anvil", pytest.param("ganache", marks=pytest.mark.ganache)])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, home_module: Path
) -> Iterator[Stack]:
    """anvil with an API process, which anchors the document and names its signers; ganache without one (its
    receipt made from the registration's transaction, ``status --as-of-block`` told the signer by ``--receipt``)."""
    kind: str = request.param
    node: LocalNode = request.getfixturevalue(kind)
    base = tmp_path_factory.mktemp(f"evidence-cli-{kind}")
    w3 = Web3(Web3.HTTPProvider(str(node.rpc_url), request_kwargs={"timeout": 30}))
    data_dir = base / "data"
    deployment, _ = ensure_deployed(TxSender(w3, DEV_KEYS[0]), data_dir)
    registry = Registry(w3, deployment.address, TxSender(w3, ALICE))
    work = base / "work"
    work.mkdir()
    document = work / "contract.pdf"
    document.write_bytes(b"a contract, " + os.urandom(16))
    proxy = Proxy(str(node.rpc_url))
    api: ApiProcess | None = None
    try:
        if kind == "anvil":
            api = ApiProcess.start(
                host="127.0.0.1",
                port=free_port(),
                log_path=base / "api.log",
                env={
                    "DOCCHAIN_RPC_URL": str(node.rpc_url),
                    "DOCCHAIN_DATA_DIR": str(data_dir),
                    "DOCCHAIN_RELAYER_KEY": to_hex(API_RELAYER),
                    "DOCCHAIN_PIPELINE": "inline",  # no child process to start: anchoring begins with the API
                    "DOCCHAIN_CONFIRMATIONS": "1",
                    "DOCCHAIN_BATCH_INTERVAL_MS": "20",
                    "DOCCHAIN_POLL_INTERVAL_MS": "50",
                },
            )
            api.wait_ready(60)
        url = None if api is None else api.url
        s = Stack(kind, node, registry, url, work, proxy, document, work / "contract.pdf.docchain.json")
        _submit(s)
        yield s
    finally:
        proxy.close()
        if api is not None:
            api.stop()


@pytest.fixture(scope="module")
def home_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An empty config dir and no DOCCHAIN_* variable of the caller, for the whole module."""
    patch = pytest.MonkeyPatch()
    for name in list(os.environ):
        if name.startswith("DOCCHAIN_"):
            patch.delenv(name)
    config = tmp_path_factory.mktemp("evidence-cli-home")
    patch.setenv("DOCCHAIN_CONFIG_DIR", str(config / "config"))
    patch.setenv("DOCCHAIN_DATA_DIR", str(config / "data"))
    yield config
    patch.undo()


def _submit(s: Stack) -> None:
    """ALICE signs the document; the API anchors it and ``docchain receipt FILE --wait`` fetches its receipt (with
    no API: ALICE sends it herself and the receipt is made from her transaction); ``receipt upgrade`` then adds
    its bundle from the node (the service's own capture is tests/api/test_evidence_capture.py's)."""
    reg = Registration(
        doc_hash=sha256_bytes(s.document.read_bytes()), signer=address_of(ALICE), deadline=int(time.time()) + 3600
    )
    signature = sign(s.registry.domain, reg, ALICE)
    if s.api is None:
        signed = SignedRegistration(reg, signature)
        receipt = s.registry.receipt_for(signed, s.registry.register(signed))
        write_receipt(dataclasses.replace(receipt, file_name=s.document.name), s.receipt)
    else:
        body = {"registration": reg.to_json(), "signature": to_hex(signature)}
        assert httpx.post(f"{s.api}/v1/documents", json=body, timeout=30).status_code == 202
        fetched = _answer(s.cli("receipt", str(s.document), "--signer", reg.signer, "--wait"), ExitCode.OK)
        assert fetched["receipt"] == str(s.receipt)
    _answer(s.cli("receipt", "upgrade", str(s.receipt), "--rpc", s.rpc), ExitCode.OK)


def _evidence_block(path: Path) -> tuple[int, str]:
    block = json.loads(path.read_text())["evidence"]["block"]
    return block["number"], block["hash"]


@pytest.fixture()
def no_socket(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    def refuse() -> None:
        def connect(*args: object) -> None:
            raise AssertionError(f"offline verification connected to {args[-1]}")

        monkeypatch.setattr(socket.socket, "connect", connect)
        monkeypatch.setattr(socket.socket, "connect_ex", connect)

    return refuse


# ------------------------------------------------------------------------------------------------ the bundle

# The CLI in a process of its own where creating any socket raises: what importing it and verifying offline does,
# libraries included (web3's import, for one, probes IPv6 with a socket of its own).
NO_SOCKET = """
import socket, sys
class NoSocket(socket.socket):
    def __init__(self, *args, **kwargs):
        raise AssertionError("offline verification created a socket")
socket.socket = NoSocket
sys.argv = ["docchain", *sys.argv[1:]]
from docchain.client.cli import main
main()
"""


def test_offline_verification_creates_no_socket_at_all(tmp_path: Path) -> None:
    golden = json.loads((Path(__file__).parents[1] / "vectors" / "bundles" / "bundles.json").read_text())
    bundle = golden["bundles"][0]
    document = tmp_path / "hello.txt"
    document.write_text(bundle["file"])
    (tmp_path / "hello.txt.docchain.json").write_text(json.dumps(bundle["receipt"]))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCCHAIN_")}
    env.update(HOME=str(tmp_path / "home"), DOCCHAIN_CONFIG_DIR=str(tmp_path / "config"))
    trusted = bundle["receipt"]["evidence"]["block"]["hash"]
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            NO_SOCKET,
            "--json",
            "verify",
            str(document),
            "--offline",
            "--trusted-block-hash",
            trusted,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == ExitCode.OK, done.stderr
    assert json.loads(done.stdout)["outcome"] == "valid"


def test_the_bundle_verifies_offline_with_no_socket(stack: Stack, no_socket: Callable[[], None]) -> None:
    number, block_hash = _evidence_block(stack.receipt)
    no_socket()
    verdict = _answer(
        stack.cli("verify", str(stack.document), "--offline", "--trusted-block-hash", block_hash), ExitCode.OK
    )
    assert (verdict["outcome"], verdict["mode"]) == ("valid", "offline") and "canonical" not in verdict
    assert "trusted block hash" in verdict["trust"]["sources"]
    # the bundle shows nothing after its block: the verdict's sentence, the CLI's headline, says so
    assert verdict["asOfBlock"] == number
    assert verdict["summary"].endswith(
        f"valid as of block {number}: a revocation after that block is not in the bundle."
    )
    # a bundle alone proves nothing on chain: without a block hash to hold it to, it fails at chain, naming it
    alone = _answer(stack.cli("verify", str(stack.document), "--offline"), ExitCode.VERIFICATION_FAILED)
    assert (alone["outcome"], alone["failedStep"]) == ("invalid", "chain") and block_hash in alone["reason"]


def test_one_honest_node_says_the_block_is_canonical(stack: Stack) -> None:
    number, block_hash = _evidence_block(stack.receipt)
    verdict = _answer(stack.cli("verify", str(stack.document), "--offline", "--rpc", stack.rpc), ExitCode.OK)
    assert verdict["canonical"] == [{"rpc": stack.rpc, "blockNumber": number, "blockHash": block_hash}]
    chain = next(step for step in verdict["steps"] if step["name"] == "chain")
    assert chain == {
        "name": "chain",
        "ok": True,
        "detail": f"block {number}'s hash {block_hash} is the one you trust",
    }


def test_a_node_that_lies_about_the_block_is_caught_by_a_second(stack: Stack) -> None:
    number, block_hash = _evidence_block(stack.receipt)
    nodes = ("--rpc", stack.rpc, "--rpc", stack.proxy.url)
    stack.proxy.lie_about_block = number
    try:
        both = stack.cli("verify", str(stack.document), "--offline", *nodes)
        text = CliRunner().invoke(app, ["verify", str(stack.document), "--offline", *nodes])
        alone = stack.cli("verify", str(stack.document), "--offline", "--rpc", stack.proxy.url)
    finally:
        stack.proxy.lie_about_block = None
    # nodes that disagree leave no block hash to trust: a verdict, invalid at the chain step, naming each answer
    verdict = _answer(both, ExitCode.VERIFICATION_FAILED)
    said = f"{stack.rpc} says {block_hash}; {stack.proxy.url} says 0x{'5e' * 32}"
    assert (verdict["outcome"], verdict["failedStep"], verdict["mode"]) == ("invalid", "chain", "offline")
    assert verdict["reason"] == f"the nodes disagree on block {number}, which the bundle proves: {said}"
    assert verdict["canonical"] == [
        {"rpc": stack.rpc, "blockNumber": number, "blockHash": block_hash},
        {"rpc": stack.proxy.url, "blockNumber": number, "blockHash": "0x" + "5e" * 32},
    ]
    assert [s["name"] for s in verdict["steps"] if not s["ok"]] == ["chain"]
    assert text.exit_code == ExitCode.VERIFICATION_FAILED, text.stdout
    shown = " ".join(text.stdout.split())  # rich wraps long lines
    assert "INVALID: Verification failed at step chain: the nodes disagree" in shown
    assert f"canonical: {stack.proxy.url} has block {number} as 0x{'5e' * 32}" in shown
    # one lying node alone is still caught by the bundle itself: the header hashes to the true hash
    lied = _answer(alone, ExitCode.VERIFICATION_FAILED)
    assert (lied["outcome"], lied["failedStep"]) == ("invalid", "chain")
    assert lied["reason"].endswith(f"not the trusted 0x{'5e' * 32} ({stack.proxy.url} says 0x{'5e' * 32})")


def test_an_unreachable_node_is_exit_3_and_the_options_conflict_is_exit_2(stack: Stack) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    down = stack.cli("verify", str(stack.document), "--offline", "--rpc", stack.rpc, "--rpc", closed)
    assert down.exit_code == ExitCode.UNAVAILABLE and closed in down.stderr
    both = stack.cli(
        "verify", str(stack.document), "--offline", "--rpc", stack.rpc, "--trusted-block-hash", "0x" + "00" * 32
    )
    assert both.exit_code == ExitCode.USAGE and "not both" in both.stderr
    online = stack.cli("verify", str(stack.document), "--rpc", stack.rpc, "--rpc", stack.proxy.url)
    assert online.exit_code == ExitCode.USAGE and "--offline" in online.stderr
    for malformed in ("ftp://x", "http://[::1"):  # bad input, said in the CLI's words, not the HTTP library's
        bad = stack.cli("verify", str(stack.document), "--offline", "--rpc", malformed)
        said = bad.stdout + bad.stderr
        assert bad.exit_code == ExitCode.USAGE and "--rpc must be an http(s) URL" in said and "Error" not in said


# ------------------------------------------------------------------------------------------------ upgrade


def test_upgrade_refreshes_the_bundle_at_the_nodes_head(stack: Stack) -> None:
    receipt = stack.copy("refreshed.json")
    stack.call("evm_mine", [])
    added = _answer(stack.cli("receipt", "upgrade", str(receipt), "--rpc", stack.rpc), ExitCode.OK)
    assert (added["outcome"], added["replaced"]) == ("valid", True)
    assert added["blockNumber"] > _evidence_block(stack.receipt)[0]
    assert _evidence_block(receipt) == (added["blockNumber"], added["blockHash"])


def test_upgrade_from_a_node_that_keeps_no_state_is_one_line_exit_3(stack: Stack) -> None:
    receipt = stack.copy("pruned.json")
    stack.proxy.prune = True
    try:
        result = stack.cli("receipt", "upgrade", str(receipt), "--rpc", stack.proxy.url)
    finally:
        stack.proxy.prune = False
    assert result.exit_code == ExitCode.UNAVAILABLE
    line = json.loads(result.stdout)["error"]["message"]
    assert line.startswith(f"the node at {stack.proxy.url}: the node does not serve the state of its head block")
    assert "BlockOutOfRangeError" in line and "\n" not in line
    assert receipt.read_bytes() == stack.receipt.read_bytes()  # left as it was


def test_upgrade_of_a_record_the_node_does_not_hold_is_one_line_exit_1(stack: Stack) -> None:
    """A record not found is a verification outcome (exit 1), not an outage a retry outlives (exit 3)."""
    receipt = json.loads(stack.receipt.read_text())
    other = Registration(doc_hash=os.urandom(32), signer=address_of(ALICE), deadline=int(time.time()) + 3600)
    domain = stack.registry.domain
    receipt["document"]["sha256"] = to_hex(other.doc_hash)
    receipt["eip712"]["message"] = other.to_json()
    receipt["signature"] = to_hex(sign(domain, other, ALICE))
    receipt.pop("evidence")
    path = stack.work / "unsent.json"
    path.write_text(json.dumps(receipt))
    result = stack.cli("receipt", "upgrade", str(path), "--rpc", stack.rpc)
    assert result.exit_code == ExitCode.VERIFICATION_FAILED, result.stdout
    line = json.loads(result.stdout)["error"]["message"]
    assert line.startswith(f"the node at {stack.rpc} holds no record of {path} as of its block ")
    assert "evidence" not in json.loads(path.read_text())


# ------------------------------------------------------------------------------------------------ the credential


def test_the_credential_verifies_as_its_receipt_and_imports_back(stack: Stack, no_socket: Callable[[], None]) -> None:
    credential = stack.work / "contract.vc.json"
    _answer(stack.cli("receipt", "export", str(stack.receipt), "--vc", "-o", str(credential)), ExitCode.OK)
    again = stack.cli("receipt", "export", str(stack.receipt), "--vc", "-o", str(credential))
    assert again.exit_code == ExitCode.USAGE and "--force" in again.stderr  # never replaced silently
    vc = json.loads(credential.read_text())
    signer = address_of(ALICE)
    assert vc["issuer"] == f"did:pkh:eip155:{stack.registry.chain_id}:{signer}"
    assert vc["proof"]["anchor"]["provenBlock"]["hash"] == _evidence_block(stack.receipt)[1]
    back = stack.work / "imported.json"
    _answer(stack.cli("receipt", "import", str(credential), "-o", str(back)), ExitCode.OK)
    assert back.read_text() == stack.receipt.read_text()
    no_socket()
    trust = ("--offline", "--trusted-block-hash", _evidence_block(stack.receipt)[1])
    as_receipt = _answer(stack.cli("verify", str(stack.document), *trust), ExitCode.OK)
    as_credential = _answer(stack.cli("verify", str(stack.document), "--receipt", str(credential), *trust), ExitCode.OK)
    assert as_credential == as_receipt
    vc["validFrom"] = "2001-01-01T00:00:00Z"  # a claim changed apart from its bundle
    credential.write_text(json.dumps(vc))
    forged = _answer(
        stack.cli("verify", str(stack.document), "--receipt", str(credential), *trust), ExitCode.VERIFICATION_FAILED
    )
    assert forged["failedStep"] == "receipt" and "validFrom is not what its evidence bundle says" in forged["reason"]


# ------------------------------------------------------------------------------------------------ revocation


@pytest.fixture(scope="module")
def revoked(stack: Stack) -> Stack:
    """ALICE revokes her signature on chain; the receipt's bundle is refreshed after it."""
    doc = json.loads(stack.receipt.read_text())["eip712"]["message"]["docHash"]
    tx = stack.registry.revoke(bytes.fromhex(doc[2:]))
    stack.revoked_in = int(tx["blockNumber"])
    _answer(stack.cli("receipt", "upgrade", str(stack.receipt), "--rpc", stack.rpc), ExitCode.OK)
    return stack


def test_a_revoked_record_is_revoked_as_of_the_proven_block(revoked: Stack) -> None:
    number, block_hash = _evidence_block(revoked.receipt)
    verdict = _answer(
        revoked.cli("verify", str(revoked.document), "--offline", "--trusted-block-hash", block_hash),
        ExitCode.VERIFICATION_FAILED,
    )
    assert (verdict["outcome"], verdict["failedStep"]) == ("revoked", "revocation")
    assert verdict["reason"].endswith(f", as of block {number}")


def test_status_as_of_a_block_after_the_revocation_says_revoked(revoked: Stack) -> None:
    head = revoked.head()
    answer = _answer(revoked.status(head), ExitCode.OK)
    [alice] = answer["signers"]
    assert (answer["asOfBlock"], alice["signer"], alice["registered"], alice["revoked"]) == (
        head,
        address_of(ALICE),
        True,
        True,
    )
    assert alice["blockNumber"] == json.loads(revoked.receipt.read_text())["anchor"]["blockNumber"]


def test_status_before_the_revocation_says_not_revoked_or_that_the_node_no_longer_serves_it(revoked: Stack) -> None:
    before = revoked.revoked_in - 1
    result = revoked.status(before)
    if revoked.kind == "ganache":  # it keeps every state
        [alice] = _answer(result, ExitCode.OK)["signers"]
        assert (alice["registered"], alice["revoked"], alice["revokedAt"]) == (True, False, None)
    else:  # anvil as docchain runs it keeps its head's state alone
        assert result.exit_code == ExitCode.UNAVAILABLE
        line = json.loads(result.stdout)["error"]["message"]
        assert line.startswith(f"the node at {revoked.rpc} no longer serves the state of block {before}: ")
    later = revoked.status(revoked.head() + 1000)
    assert later.exit_code == ExitCode.UNAVAILABLE and "has no block" in later.stdout


def test_status_before_the_registry_existed_says_it_had_no_code_there(stack: Stack) -> None:
    result = stack.status(0)  # the genesis block: the registry is deployed later
    if stack.kind == "anvil":  # it keeps its head's state alone
        assert result.exit_code == ExitCode.UNAVAILABLE, result.stdout
        return
    assert result.exit_code == ExitCode.VERIFICATION_FAILED, result.stdout
    line = json.loads(result.stdout)["error"]["message"]
    assert line == (
        f"the registry {stack.registry.address} has no code at block 0 on the node at {stack.rpc}: it held no record "
        "then (it was deployed later, or is not on this chain)"
    )


def test_receipt_of_a_private_file_without_its_salt_or_receipt_says_where_its_opening_is(stack: Stack) -> None:
    if stack.api is None:
        pytest.skip("the receipt is fetched from an API")
    document = stack.work / "private.pdf"
    document.write_bytes(b"a private contract, " + os.urandom(16))
    salt = os.urandom(32)
    committed = keccak256(sha256_bytes(document.read_bytes()) + salt)
    reg = Registration(doc_hash=committed, signer=address_of(ALICE), deadline=int(time.time()) + 3600)
    body = {
        "registration": reg.to_json(),
        "signature": to_hex(sign(stack.registry.domain, reg, ALICE)),
        "private": True,
    }
    assert httpx.post(f"{stack.api}/v1/documents", json=body, timeout=30).status_code == 202
    # the salt was lost with the salt file: the API is asked by the file's plain SHA-256, under which nothing is
    result = stack.cli("receipt", str(document), "--signer", reg.signer)
    assert result.exit_code == ExitCode.VERIFICATION_FAILED, result.stdout
    line = json.loads(result.stdout)["error"]["message"]
    doc = to_hex(sha256_bytes(document.read_bytes()))
    assert line == (
        f"the API has no record of {doc} by {reg.signer}; a private submission (submit --private) is found only "
        f"by its commitment, opened by its salt file {document}.docchain.salt or its receipt "
        f"{document}.docchain.json, and neither is there"
    )


def test_receipt_with_evidence_waits_for_the_bundle_the_service_captures(stack: Stack) -> None:
    if stack.api is None:
        pytest.skip("the receipt is fetched from an API")
    document = stack.work / "fresh.pdf"
    document.write_bytes(b"a fresh contract, " + os.urandom(16))
    reg = Registration(
        doc_hash=sha256_bytes(document.read_bytes()), signer=address_of(ALICE), deadline=int(time.time()) + 3600
    )
    body = {"registration": reg.to_json(), "signature": to_hex(sign(stack.registry.domain, reg, ALICE))}
    assert httpx.post(f"{stack.api}/v1/documents", json=body, timeout=30).status_code == 202
    # asked at once: the record is neither anchored nor confirmed yet, and the command waits for both and the capture
    answer = _answer(stack.cli("receipt", str(document), "--signer", reg.signer, "--evidence"), ExitCode.OK)
    written = json.loads(Path(answer["receipt"]).read_text())
    assert answer["evidence"] is True and written["evidence"]["block"]["number"] >= answer["blockNumber"]
    number, block_hash = written["evidence"]["block"]["number"], written["evidence"]["block"]["hash"]
    verdict = _answer(stack.cli("verify", str(document), "--offline", "--trusted-block-hash", block_hash), ExitCode.OK)
    assert verdict["outcome"] == "valid" and number >= verdict["anchor"]["blockNumber"]
