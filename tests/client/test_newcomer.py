"""What a newcomer trips on, against a real stack that `docchain up` brought up on non-default ports.

The commands here are given no --api, --rpc or --data-dir and no DOCCHAIN_API / DOCCHAIN_RPC /
DOCCHAIN_DATA_DIR: they find the stack through what `up` recorded in the config directory. Covered: the
recorded URLs; submit run again after an interrupted --wait; `docchain receipt`; DOCCHAIN_RPC not
switching verify to a node; the password asked only once the API answered; tables within 80 columns.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import free_port, poll

PASSWORD = "newcomer"
WIDTH = 80


@dataclass
class Up:
    api_url: str
    rpc_url: str
    data_dir: Path
    config_dir: Path
    work: Path
    env: dict[str, str]

    def run(
        self, *args: str, check: int | None = 0, env: dict[str, str] | None = None, **kwargs: object
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "docchain.client", *args],
            env={**self.env, **(env or {})},
            cwd=self.work,
            capture_output=True,
            text=True,
            timeout=120,
            **kwargs,  # type: ignore[call-overload]
        )
        if check is not None:
            assert result.returncode == check, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
        return result

    def json(self, *args: str, check: int = 0, env: dict[str, str] | None = None) -> object:
        return json.loads(self.run(*args, "--json", check=check, env=env).stdout)

    def document(self, name: str) -> Path:
        path = self.work / name
        path.write_bytes(os.urandom(64))  # a new document each time
        return path


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    base = tmp_path_factory.mktemp("newcomer")
    api_port, node_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCCHAIN_")}
    env.update(
        DOCCHAIN_CONFIG_DIR=str(base / "config"),
        DOCCHAIN_KDF_ITERATIONS="2",
        COLUMNS=str(WIDTH),
    )
    data = base / "data"
    command = [sys.executable, "-m", "docchain.client", "up", "--data-dir", str(data)]
    command += ["--port", str(api_port), "--node-port", str(node_port)]
    log = base / "up.out"
    with open(log, "w") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        poll(lambda: proc.poll() is not None or "docchain is up" in log.read_text(), 150, what="docchain up")
        assert proc.poll() is None, log.read_text()
        work = base / "work"
        work.mkdir()
        stack = Up(f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{node_port}", data, base / "config", work, env)
        stack.run("keys", "new", "alice", env={"DOCCHAIN_PASSWORD": PASSWORD})
        yield stack
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # stops the API, then the node it started
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _signer(up: Up, name: str = "alice") -> str:
    shown = up.json("keys", "show", name)
    assert isinstance(shown, dict)
    return str(shown["address"])


# ---------------------------------------------------------------------- (1) up records what it serves


def test_up_records_the_urls_it_serves_and_later_commands_use_them(up: Up) -> None:
    recorded = json.loads((up.config_dir / "stack.json").read_text())
    assert recorded == {"api": up.api_url, "rpc": up.rpc_url, "dataDir": str(up.data_dir)}
    assert (up.config_dir / "deployments.json").is_file()  # beside the registry `up` trusts

    listed = up.json("list")  # the API: the sample document `up` signed
    assert isinstance(listed, dict) and len(listed["items"]) >= 1
    events = up.json("inspect", "events")  # the node, and the registry recorded in up's data dir
    assert isinstance(events, list) and {e["docHash"] for e in events} >= {i["docHash"] for i in listed["items"]}
    node = up.json("node", "status")
    assert isinstance(node, dict) and node["running"] and node["rpcUrl"] == up.rpc_url

    # flags and the environment still come first
    dead = f"http://127.0.0.1:{free_port()}"
    refused = up.run("list", "--retries", "0", env={"DOCCHAIN_API": dead}, check=3)
    assert f"cannot reach the docchain API at {dead}" in refused.stderr


# ---------------------------------------------------------------------- (3) receipts again


def test_submit_again_after_an_interrupted_wait_writes_the_first_submissions_receipt(up: Up) -> None:
    doc = up.document("contract.pdf")
    env = {"DOCCHAIN_PASSWORD": PASSWORD}
    first = up.json("submit", str(doc), env=env)  # as if --wait had been interrupted: accepted, no receipt
    assert isinstance(first, list) and first[0]["state"] in ("pending", "accepted", "sent", "submitted")
    assert not (up.work / "contract.pdf.docchain.json").exists()

    # run again with --wait: a new signature (new deadline), answered with the first submission, whose
    # receipt carries the first signature; that is still alice's, so it is written
    again = up.json("submit", str(doc), "--wait", env=env)
    assert isinstance(again, list) and again[0]["id"] == first[0]["id"]
    assert again[0]["state"] in ("anchored", "confirmed")
    receipt = json.loads((up.work / "contract.pdf.docchain.json").read_text())
    assert receipt["signer"] == _signer(up) and receipt["anchor"]["transactionHash"] == again[0]["txHash"]
    verdict = up.json("verify", str(doc))
    assert isinstance(verdict, dict) and verdict["outcome"] == "valid"


def test_receipt_command_by_key_signer_and_submission_id(up: Up) -> None:
    doc = up.document("minutes.txt")
    submitted = up.json("submit", str(doc), env={"DOCCHAIN_PASSWORD": PASSWORD})
    assert isinstance(submitted, list)
    sid, doc_hash, signer = submitted[0]["id"], submitted[0]["docHash"], submitted[0]["signer"]

    # the only key's address, no password needed; --wait follows the submission until it is anchored
    got = up.json("receipt", str(doc), "--wait")
    assert isinstance(got, dict) and got["signer"] == signer and got["state"] in ("anchored", "confirmed")
    beside = up.work / "minutes.txt.docchain.json"
    assert json.loads(beside.read_text())["document"]["name"] == "minutes.txt"

    again = up.run("receipt", str(doc), check=2)  # never replaced silently
    assert "already exists; pass --force" in again.stderr
    by_id = up.json("receipt", str(doc), "--id", sid, "-o", str(up.work / "by-id.json"))
    by_hash = up.json("receipt", doc_hash, "--signer", signer, "-o", str(up.work / "by-hash.json"))
    assert isinstance(by_id, dict) and isinstance(by_hash, dict)
    assert by_id["txHash"] == by_hash["txHash"] == got["txHash"]
    assert json.loads((up.work / "by-id.json").read_text()) == json.loads(beside.read_text())
    verdict = up.json("verify", str(doc), "--receipt", str(up.work / "by-hash.json"), "--via", "rpc")
    assert isinstance(verdict, dict) and verdict["outcome"] == "valid" and verdict["mode"] == "rpc"

    nobody = "0x" + "12" * 20
    missing = up.run("receipt", str(doc), "--signer", nobody, "-o", str(up.work / "x.json"), check=1)
    assert "has not signed" in missing.stderr
    other = up.run("receipt", str(up.document("other.txt")), "--id", sid, check=2)
    assert f"submission {sid} is of document {doc_hash}" in other.stderr
    hash_only = up.run("receipt", doc_hash, "--signer", signer, check=2)
    assert "--output FILE" in hash_only.stderr


# ---------------------------------------------------------------------- (2) verify's mode is explicit


def test_docchain_rpc_does_not_switch_verify_to_a_node(up: Up) -> None:
    doc = up.document("report.pdf")
    up.run("submit", str(doc), "--wait", env={"DOCCHAIN_PASSWORD": PASSWORD})
    dead = f"http://127.0.0.1:{free_port()}"

    via_api = up.json("verify", str(doc), env={"DOCCHAIN_RPC": dead})  # the variable names a node only
    assert isinstance(via_api, dict) and via_api["mode"] == "api" and via_api["outcome"] == "valid"
    on_line = up.json("verify", str(doc), "--rpc", up.rpc_url)  # on the command line: through the node
    assert isinstance(on_line, dict) and on_line["mode"] == "rpc" and on_line["outcome"] == "valid"
    before = up.json("--rpc", up.rpc_url, "verify", str(doc))  # as a global option before the command
    assert isinstance(before, dict) and before["mode"] == "rpc"
    chosen = up.json("verify", str(doc), env={"DOCCHAIN_RPC": up.rpc_url, "DOCCHAIN_VERIFY_VIA": "rpc"})
    assert isinstance(chosen, dict) and chosen["mode"] == "rpc" and chosen["outcome"] == "valid"
    # the API down and a node in DOCCHAIN_RPC: still no silent switch, but the message says how
    hint = up.run("verify", str(doc), "--retries", "0", env={"DOCCHAIN_API": dead, "DOCCHAIN_RPC": up.rpc_url}, check=3)
    assert hint.stderr.strip().endswith(f"to verify through the node {up.rpc_url} instead, add --via rpc")
    refused = up.run("verify", str(doc), "--via", "rpc", "--json", env={"DOCCHAIN_RPC": dead}, check=3)
    assert "cannot reach" in json.loads(refused.stdout)["error"]["message"]


# ---------------------------------------------------------------------- (4) the password, once the API answers


def test_the_password_is_asked_only_once_the_api_answers(up: Up) -> None:
    doc = up.document("unsigned.txt")
    dead = f"http://127.0.0.1:{free_port()}"
    # no DOCCHAIN_PASSWORD: it would have to be typed; stdin ends at once, as when nobody is there
    down = up.run("submit", str(doc), "--api", dead, "--retries", "0", check=3, stdin=subprocess.DEVNULL)
    assert "Password" not in down.stderr
    assert down.stderr.strip() == f"error: cannot reach the docchain API at {dead}: connection refused"

    # (a new session: no controlling terminal for getpass to open instead of stdin)
    asked = up.run("submit", str(doc), check=2, stdin=subprocess.DEVNULL, start_new_session=True)
    assert "Password for key 'alice':" in asked.stderr
    assert asked.stderr.strip().endswith("error: no password given: pass --password-file FILE or set DOCCHAIN_PASSWORD")

    # a password given by file is checked before any network call
    wrong = up.work / "wrong.pw"
    wrong.write_text("not it\n")
    early = up.run("submit", str(doc), "--api", dead, "--password-file", str(wrong), check=2)
    assert "wrong password for key 'alice'" in early.stderr


# ---------------------------------------------------------------------- (5) 80 columns


def _fits(text: str, tables_only: bool = False) -> list[str]:
    lines = [line for line in text.splitlines() if not tables_only or line[:1] in "┏┃┡│└"]
    too_long = [line for line in lines if len(line) > WIDTH]
    assert too_long == [], "\n".join(too_long)
    return text.splitlines()


def test_tables_fit_80_columns_one_line_per_row(up: Up) -> None:
    env = {"DOCCHAIN_PASSWORD": PASSWORD}
    docs = [up.document(f"quarterly-report-{i}.pdf") for i in range(2)]
    submitted = _fits(up.run("submit", *map(str, docs), "--wait", "--note", "Q3", env=env).stdout)
    done = [line for line in submitted if "quarterly-report-" in line and ("anchored" in line or "confirmed" in line)]
    assert len(done) == 2

    status = _fits(up.run("status", str(docs[0])).stdout)
    assert sum(1 for line in status if "anchored" in line or "confirmed" in line) == 1
    signer = _signer(up)
    listed = up.json("list", "--signer", signer)
    assert isinstance(listed, dict)
    rows = _fits(up.run("list", "--signer", signer).stdout)
    assert sum(1 for line in rows if "anchored" in line or "confirmed" in line) == len(listed["items"])
    events = up.json("inspect", "events", "--signer", signer)
    assert isinstance(events, list)
    lines = _fits(up.run("inspect", "events", "--signer", signer).stdout)
    assert sum(1 for line in lines if "Registered" in line) == len(events)
    verified = _fits(up.run("verify", str(docs[0])).stdout, tables_only=True)  # its steps are sentences
    assert sum(1 for line in verified if "anchored" in line or "confirmed" in line) == 1
    _fits(up.run("keys", "list").stdout)
    _fits(up.run("node", "status").stdout)
