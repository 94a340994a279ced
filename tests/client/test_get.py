"""``docchain get`` and the storage a submission asks for, end to end: the `docchain` executable against a
real API (local store first, a real offline kubo node second) on a real anvil.

submit --store --wait writes the sealed IPFS copy's key into the receipt → get RECEIPT through the API →
get RECEIPT --ipfs-gateway with no API to reach (only the receipt and a gateway) → submit --public → status
shows each backend's copy; plus the usage errors, which need no server.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from docchain.chain.cid import cid_of_bytes
from docchain.client.cli import app
from docchain.client.stack import DEV_RELAYER_KEY, ApiProcess
from tests.client.cli_stack import CliStack, another_api, cli_stack, dead_api
from tests.storage.kubo import Kubo, kubo  # noqa: F401 (the session's kubo node; skipped where none is built)
from tests.support import free_port, poll
from tests.vectors.make_receipts import BASE

PASSWORD = "get password"


@pytest.fixture(scope="module")
def ipfs_node(request: pytest.FixtureRequest) -> Kubo:
    return request.getfixturevalue("kubo")  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def stack(ipfs_node: Kubo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliStack]:
    """The CLI stack, its API storing documents in the local store and on IPFS."""
    storage = {"DOCCHAIN_STORAGE": "local,ipfs", "DOCCHAIN_IPFS_API_URL": ipfs_node.api_url}
    with cli_stack(tmp_path_factory.mktemp("get"), PASSWORD, DOCCHAIN_IPFS_TIMEOUT_S="15", **storage) as s:
        s.json("keys", "import", "carol", "--key-file", str(_key_file(s.work)))
        yield s


def _key_file(work: Path) -> Path:
    path = work / "carol.key"
    path.write_text("0x" + "43" * 32 + "\n")
    return path


def _ipfs_copy_stored(stack: CliStack, doc: Path) -> dict[str, Any]:
    """The document's IPFS copy as `docchain status --json` shows it, once the copy worker has made it."""

    def stored() -> dict[str, Any] | None:
        status = stack.json("status", str(doc))
        assert isinstance(status, dict)
        found = {c["backend"]: c for c in status["storage"]}
        return found["ipfs"] if found.get("ipfs", {}).get("state") == "stored" else None

    return poll(stored, 30, interval=0.2, what="the IPFS copy")  # type: ignore[no-any-return]


def _stored(stack: CliStack, doc: Path, *extra: str) -> dict[str, object]:
    out = stack.json("submit", str(doc), "--key", "carol", "--store", "--wait", *extra)
    assert isinstance(out, list) and out[0]["state"] in ("anchored", "confirmed")
    return json.loads(Path(out[0]["receipt"]).read_text())  # type: ignore[no-any-return]


def test_sealed_copy_round_trip_through_the_api_and_any_gateway(stack: CliStack, ipfs_node: Kubo) -> None:
    doc = stack.work / "contract.pdf"
    content = os.urandom(600_000)
    doc.write_bytes(content)
    receipt = _stored(stack, doc)
    storage = receipt["storage"]
    assert isinstance(storage, dict) and storage["backends"] == ["local", "ipfs"]
    ipfs = storage["ipfs"]
    assert ipfs["sealed"] is True and len(ipfs["key"]) == 43 and ipfs["cid"] != cid_of_bytes(content)
    receipt_file = stack.work / "contract.pdf.docchain.json"

    # through the API: the local store serves it
    copy = stack.work / "via-api.pdf"
    got = stack.json("get", str(receipt_file), "-o", str(copy))
    assert isinstance(got, dict) and got["source"] == "local" and copy.read_bytes() == content
    stack.run("get", str(receipt_file), "-o", str(copy), check=2)  # never overwritten silently

    # status shows each backend's copy, the IPFS one once the copy worker has made it
    assert _ipfs_copy_stored(stack, doc)["locator"] == ipfs["cid"]
    table = stack.run("status", str(doc)).stdout
    assert "ipfs" in table and "stored" in table

    # with no API to reach (its address a dead port): the receipt and a gateway are enough
    gateway, gone = ipfs_node.gateway_url, dead_api()
    fetched = stack.work / "via-gateway.pdf"
    got = stack.json("get", str(receipt_file), "--ipfs-gateway", gateway, "-o", str(fetched), DOCCHAIN_API=gone)
    assert isinstance(got, dict) and fetched.read_bytes() == content and got["source"].startswith("ipfs")
    # a receipt whose key was removed cannot open the sealed copy: said before any download
    keyless = stack.work / "keyless.docchain.json"
    receipt["storage"]["ipfs"]["key"] = None  # type: ignore[index]
    keyless.write_text(json.dumps(receipt))
    refused = stack.run("get", str(keyless), "--ipfs-gateway", gateway, "-o", "x.pdf", check=2, DOCCHAIN_API=gone)
    assert "no key" in refused.stderr and not (stack.work / "x.pdf").exists()


def test_public_copy_is_the_documents_own_cid(stack: CliStack, ipfs_node: Kubo) -> None:
    doc = stack.work / "brochure.txt"
    content = b"a public brochure\n" * 10_000
    doc.write_bytes(content)
    receipt = _stored(stack, doc, "--public")
    assert receipt["storage"]["ipfs"] == {"cid": cid_of_bytes(content), "sealed": False, "key": None}  # type: ignore[index]
    _ipfs_copy_stored(stack, doc)  # a gateway finds only what the node holds
    fetched = stack.work / "brochure-copy.txt"
    receipt_file = stack.work / "brochure.txt.docchain.json"
    got = stack.json("get", str(receipt_file), "--ipfs-gateway", ipfs_node.gateway_url, "-o", str(fetched))
    assert isinstance(got, dict) and hashlib.sha256(fetched.read_bytes()).digest() == hashlib.sha256(content).digest()


def test_a_repeat_reuses_the_sealed_copy_and_shows_where_it_is_on_chain(stack: CliStack) -> None:
    doc = stack.work / "again.pdf"
    doc.write_bytes(os.urandom(80_000))
    receipt = _stored(stack, doc)
    ipfs = receipt["storage"]["ipfs"]  # type: ignore[index]
    receipt_file = stack.work / "again.pdf.docchain.json"

    again = stack.run("submit", str(doc), "--key", "carol", "--store")
    assert f"already sealed on IPFS as {ipfs['cid']}" in again.stdout, again.stdout
    assert "first submission" in again.stdout and ipfs["key"] not in again.stdout
    assert json.loads(receipt_file.read_text())["storage"]["ipfs"]["key"] == ipfs["key"]  # the receipt keeps it
    status = stack.json("status", str(doc))
    assert isinstance(status, dict) and [c["backend"] for c in status["storage"]].count("ipfs") == 1

    # a document already on chain: the repeat shows its block and transaction, not "-"
    rows = stack.json("submit", str(doc), "--key", "carol")
    assert isinstance(rows, list) and rows[0]["state"] in ("anchored", "confirmed")
    assert isinstance(rows[0]["blockNumber"], int) and str(rows[0]["txHash"]).startswith("0x"), rows
    table = stack.run("submit", str(doc), "--key", "carol").stdout
    assert str(rows[0]["blockNumber"]) in table, table

    # a dead gateway is named as such, not as the API
    dead = dead_api()
    failed = stack.run("get", str(receipt_file), "--ipfs-gateway", dead, "-o", "dead.pdf", check=3)
    assert f"IPFS gateway {dead} unreachable" in failed.stderr, failed.stderr


def test_a_hung_first_backend_is_a_503_naming_it(stack: CliStack, ipfs_node: Kubo) -> None:
    """kubo frozen while it is the first backend: the API answers 503 naming ipfs within its bound, the CLI
    says so (not "cannot reach the docchain API") and does not resend the upload; nothing is recorded. An API
    of its own beside the stack's: the module's API stores locally first."""
    doc = stack.work / "frozen.bin"
    doc.write_bytes(os.urandom(200_000))
    with another_api(stack, DOCCHAIN_STORAGE="ipfs", DOCCHAIN_IPFS_TIMEOUT_S="1") as url:
        os.kill(ipfs_node.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            refused = stack.run("submit", str(doc), "--key", "carol", "--store", check=3, DOCCHAIN_API=url)
            took = time.monotonic() - started
        finally:
            os.kill(ipfs_node.pid, signal.SIGCONT)
        assert "ipfs" in refused.stderr and "could not serve" in refused.stderr, refused.stderr
        assert "cannot reach" not in refused.stderr and "refused the request" not in refused.stderr
        assert took < 10, took
        stack.run("status", str(doc), check=1, DOCCHAIN_API=url)  # not accepted


# ------------------------------------------------------------------ usage errors: no server needed


@pytest.mark.parametrize(
    ("status", "starts"),
    [(500, "the docchain API could not serve the request (500 "), (422, "the API refused the request (422 ")],
)
def test_a_server_error_is_not_a_refusal(status: int, starts: str) -> None:
    from docchain.client.errors import ApiError, ExitCode

    error = ApiError(status, "Internal error" if status == 500 else "Invalid input", "detail")
    assert str(error).startswith(starts) and error.code == (ExitCode.UNAVAILABLE if status == 500 else ExitCode.USAGE)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["get", "0x1234", "-o", "x"], "document hash"),
        (["get", "0x" + "ab" * 32], "-o FILE"),
        (["get", "no-such-receipt.json", "-o", "x"], "neither a 0x SHA-256 nor a receipt file"),
        (["get", "{receipt}", "--ipfs-gateway", "http://127.0.0.1:9", "-o", "x"], "storage section"),
        (["submit", "{doc}", "--public"], "needs --store"),
    ],
    ids=["short-hash", "no-output", "no-receipt", "gateway-without-cid", "public-without-store"],
)
def test_usage_errors_exit_2_before_any_network_call(
    home: Path, runner: CliRunner, tmp_path: Path, args: list[str], says: str
) -> None:
    receipt = tmp_path / "old.docchain.json"
    receipt.write_text(BASE)  # a receipt from before storage sections
    doc = tmp_path / "doc.txt"
    doc.write_text("x")
    filled = [a.format(receipt=receipt, doc=doc) for a in args]
    result = runner.invoke(app, ["--api", "http://127.0.0.1:9", *filled])
    assert result.exit_code == 2, result.output
    assert says in result.output


def test_a_stack_start_passes_on_the_apis_refusal(tmp_path: Path) -> None:
    """`docchain up` / `serve` start the API as a child: its one line about a bad storage setting (and its
    status, 2) reach the user, not "exited with status 2, see the log"."""
    from docchain.client.errors import CliError, ExitCode

    log = tmp_path / "api.log"
    log.write_text("docchain-api: an older run's line, not this one's\n")
    env = {"DOCCHAIN_DATA_DIR": str(tmp_path), "DOCCHAIN_RELAYER_KEY": DEV_RELAYER_KEY, "DOCCHAIN_STORAGE": "tape"}
    api = ApiProcess.start(host="127.0.0.1", port=free_port(), env=env, log_path=log)
    with pytest.raises(CliError) as refused:
        api.wait_ready(60)
    assert refused.value.code == ExitCode.USAGE
    assert str(refused.value).startswith("DOCCHAIN_STORAGE names an unknown backend 'tape'")


def test_up_checks_storage_before_starting_anything(tmp_path: Path) -> None:
    """`docchain up` with a storage setting the API would refuse: one line, exit 2, and no node started, no
    registry deployed."""
    import subprocess
    import sys

    from docchain.client.stack import node_dir

    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCCHAIN_")}
    env.update(
        DOCCHAIN_CONFIG_DIR=str(tmp_path / "config"),
        DOCCHAIN_DATA_DIR=str(tmp_path / "data"),
        DOCCHAIN_STORAGE="ipfs,local",
    )
    ports = ["--port", str(free_port()), "--node-port", str(free_port())]
    done = subprocess.run(
        [sys.executable, "-m", "docchain.client", "up", "--no-serve", *ports],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "put local or s3 first" in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "starting" not in done.stdout and not node_dir(tmp_path / "data").exists()
    assert not (tmp_path / "data" / "deployments.json").exists()
