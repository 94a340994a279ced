"""The exit-status contract of the CLI (client/errors.py), row by row, against real things: the `docchain`
command in-process (CliRunner) or as a subprocess, a real anvil with the registry, a real API process, and
ports where nothing listens.

    0    ok
    1    verification failed (invalid, not registered, signed by others, file mismatch, revoked, ...)
    2    usage or bad input (arguments, file, hash, address, config)
    3    network or chain unavailable (API or node unreachable or timed out, 5xx, chain errors)
    130  interrupted (Ctrl-C anywhere: at a password prompt, during `submit --wait`)

With --json every outcome is exactly one JSON document on stdout, an error being
``{"error": {"code": N, "kind": ..., "message": ...}}`` whose message is the one line on stderr.

The API of this module runs without its anchoring pipeline (``DOCCHAIN_PIPELINE=off``, an HTTP-only
replica): it accepts submissions and never anchors them, so `submit --wait` waits for as long as it is let.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from docchain.chain.deploy import ensure_deployed
from docchain.chain.errors import (
    ChainError,
    ContractRevert,
    InvalidInput,
    NodeError,
    NotDeployed,
    TransactionTimeout,
    VerificationError,
)
from docchain.chain.sender import TxSender
from docchain.chain.values import parse_hex
from docchain.client.errors import ApiError, ApiUnreachable, ExitCode, VerificationFailed, exit_code_for
from docchain.client.stack import DEV_RELAYER_KEY, ApiProcess
from tests.support import DevNode, free_port, poll

PASSWORD = "exit codes"
KINDS = {1: "verification", 2: "usage", 3: "unavailable", 130: "interrupted"}
UNKNOWN = "0x" + "ee" * 32  # a document nobody registered


def invoke(runner: CliRunner, *args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    from docchain.client.cli import app

    return runner.invoke(app, list(args), env=env, catch_exceptions=False)


def error_message(code: int, stdout: str, stderr: str, *, only_line: bool = True) -> str:
    """The contract for an error ending with ``code``: stdout is one JSON document, the error object, and its
    message is the line on stderr (the only one, unless a prompt came first); no traceback. Returns it."""
    document = json.loads(stdout)  # one document: json.loads refuses a second after the first
    assert set(document) == {"error"}, document
    error = document["error"]
    assert (error["code"], error["kind"]) == (code, KINDS[code]), error
    assert isinstance(error["message"], str) and error["message"]
    lines = stderr.strip().splitlines()
    assert lines[-1] == f"error: {error['message']}"
    if only_line:
        assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return str(error["message"])


# ---------------------------------------------------------------------- the real stack of this module


@dataclass
class Stack:
    rpc_url: str
    api_url: str
    data_dir: Path
    env: dict[str, str]  # for `docchain` subprocesses: this module's config dir (key alice), nothing of the caller's

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "docchain.client", *args],
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("exit-codes")
    node = DevNode(base / "node").started()
    api: ApiProcess | None = None
    try:
        from web3 import Web3

        data_dir = base / "data"
        ensure_deployed(TxSender(Web3(Web3.HTTPProvider(node.rpc_url)), parse_hex(DEV_RELAYER_KEY)), data_dir)
        api = ApiProcess.start(
            host="127.0.0.1",
            port=free_port(),
            log_path=base / "api.log",
            env={
                "DOCCHAIN_RPC_URL": node.rpc_url,
                "DOCCHAIN_DATA_DIR": str(data_dir),
                "DOCCHAIN_RELAYER_KEY": DEV_RELAYER_KEY,
                "DOCCHAIN_PIPELINE": "off",  # accepts, never anchors
            },
        )
        api.wait_ready(60)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCCHAIN_")}
        env.update(
            DOCCHAIN_CONFIG_DIR=str(base / "config"),
            DOCCHAIN_DATA_DIR=str(data_dir),
            DOCCHAIN_KDF_ITERATIONS="2",
            COLUMNS="200",
        )
        s = Stack(node.rpc_url, api.url, data_dir, env)
        created = s.run("keys", "new", "alice", env={**env, "DOCCHAIN_PASSWORD": PASSWORD})
        assert created.returncode == 0, created.stderr
        yield s
    finally:
        if api is not None:
            api.stop()
        node.stop()


def _document(folder: Path, name: str) -> Path:
    path = folder / name
    path.write_bytes(os.urandom(32))  # a new document each time: no earlier run registered it
    return path


# ---------------------------------------------------------------------- 0 ok


def test_0_ok_prints_the_result_as_the_one_json_document(stack: Stack, tmp_path: Path) -> None:
    doc = _document(tmp_path, "ok.txt")
    env = {**stack.env, "DOCCHAIN_PASSWORD": PASSWORD}
    submitted = stack.run("submit", str(doc), "--api", stack.api_url, "--json", env=env)
    assert submitted.returncode == ExitCode.OK == 0, submitted.stderr
    (row,) = json.loads(submitted.stdout)
    assert row["state"] == "pending" and submitted.stderr == ""
    status = stack.run("status", str(doc), "--api", stack.api_url, "--json")
    assert status.returncode == 0, status.stderr
    assert [s["state"] for s in json.loads(status.stdout)["signers"]] == ["pending"]


# ---------------------------------------------------------------------- 1 verification failed


def test_1_a_document_not_found(stack: Stack, tmp_path: Path) -> None:
    unknown = stack.run("status", UNKNOWN, "--api", stack.api_url, "--json")
    assert unknown.returncode == ExitCode.VERIFICATION_FAILED == 1
    message = error_message(1, unknown.stdout, unknown.stderr)
    assert message.startswith("the API refused the request (404 Not found): no document")


def _verdict(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """`verify` fails with its verdict as the one JSON document (the steps and why), not an error object."""
    assert result.returncode == 1, result.stderr
    verdict = json.loads(result.stdout)  # one document
    assert "error" not in verdict and verdict["outcome"] != "valid"
    assert "Traceback" not in result.stderr
    return dict(verdict)


def test_1_verification_failed(stack: Stack, tmp_path: Path) -> None:
    never_signed = _document(tmp_path, "never-signed.txt")
    _verdict(stack.run("verify", str(never_signed), "--api", stack.api_url, "--json"))
    doc = _document(tmp_path, "doc.txt")
    (tmp_path / "doc.txt.docchain.json").write_text('{"docchainReceipt": 1}')  # evidence that fails
    _verdict(stack.run("verify", str(doc), "--rpc", stack.rpc_url, "--json"))


# ---------------------------------------------------------------------- 2 usage or bad input


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["submit", "{doc}", "--bogus"], "No such option: --bogus"),  # Click's own, before any command runs
        (["keys", "show"], "Missing argument"),
        (["--bogus", "status"], "No such option: --bogus"),  # the top-level group's parser
        (["status", "0x12"], "document hash must be 32 bytes"),
        (["list", "--signer", "0xZZ"], "--signer is not valid hex"),
        (["submit", "{dir}"], "not a regular file"),
        (["submit", "{doc}", "--password-file", "{dir}"], "cannot read the password file"),
        (["submit", "{doc}", "--timeout", "0"], "Invalid value for '--timeout'"),
    ],
)
def test_2_usage_and_bad_input(
    home: Path, runner: CliRunner, tmp_path: Path, args: list[str], says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "doc.txt").write_text("hello")
    argv = [a.replace("{doc}", str(tmp_path / "doc.txt")).replace("{dir}", str(tmp_path)) for a in args]
    invoke(runner, "keys", "new", "alice", env={"DOCCHAIN_PASSWORD": PASSWORD})
    dead = f"http://127.0.0.1:{free_port()}"  # never reached: every case fails before any network call
    monkeypatch.setenv("DOCCHAIN_API", dead)

    result = invoke(runner, *argv, "--json", env={"DOCCHAIN_PASSWORD": PASSWORD})
    assert result.exit_code == ExitCode.USAGE == 2
    assert says in error_message(2, result.stdout, result.stderr)

    # without --json: the same one line on stderr, nothing on stdout
    human = invoke(runner, *argv, env={"DOCCHAIN_PASSWORD": PASSWORD})
    assert human.exit_code == 2 and human.stdout == ""
    assert human.stderr.strip().splitlines() == [result.stderr.strip()]


def test_2_json_from_the_environment_covers_clicks_own_errors(home: Path, runner: CliRunner) -> None:
    result = invoke(runner, "status", "--bogus", env={"DOCCHAIN_JSON": "1"})
    assert "No such option: --bogus" in error_message(2, result.stdout, result.stderr)
    assert result.exit_code == 2


def test_2_a_bad_config_file(home: Path, runner: CliRunner) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text('apii = "x"\n')
    result = invoke(runner, "keys", "list", "--json")
    assert result.exit_code == 2
    assert "unknown setting(s)" in error_message(2, result.stdout, result.stderr)


@pytest.mark.parametrize("given", ["config", "env", "flag"])
def test_2_a_bad_registry_is_named_where_it_was_given(
    home: Path, runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    """`registry = "0xnope"` in config.toml is the config file's key at fault, not a --registry never typed."""
    (tmp_path / "doc.txt").write_text("hello")
    home.mkdir(parents=True, exist_ok=True)
    args = ["verify", str(tmp_path / "doc.txt"), "--rpc", f"http://127.0.0.1:{free_port()}", "--json"]
    if given == "config":
        (home / "config.toml").write_text('registry = "0xnope"\n')
    elif given == "env":
        monkeypatch.setenv("DOCCHAIN_REGISTRY", "0xnope")
    else:
        args += ["--registry", "0xnope"]
    result = invoke(runner, *args)
    assert result.exit_code == 2
    message = error_message(2, result.stdout, result.stderr)
    names = {
        "config": f"registry in the config file {home / 'config.toml'}",
        "env": "DOCCHAIN_REGISTRY",
        "flag": "--registry",
    }
    assert message.startswith(f"{names[given]} is not valid hex"), message


def test_2_input_the_api_refuses(stack: Stack) -> None:
    refused = stack.run("list", "--cursor", "not-a-cursor", "--api", stack.api_url, "--json")
    assert refused.returncode == 2
    assert "(422 Invalid input): cursor is not one this API issued" in error_message(2, refused.stdout, refused.stderr)
    # a wrong API address (a path where docchain has no routes) is the user's to fix, not "not found"
    env = {**stack.env, "DOCCHAIN_PASSWORD": PASSWORD}
    wrong = stack.run("submit", __file__, "--api", stack.api_url + "/nowhere", "--json", env=env)
    assert wrong.returncode == 2
    assert "404 Not found" in error_message(2, wrong.stdout, wrong.stderr)


# ---------------------------------------------------------------------- 3 network or chain unavailable


def test_3_api_and_node_unreachable(home: Path, runner: CliRunner) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    api = invoke(runner, "status", UNKNOWN, "--api", dead, "--retries", "0", "--json")
    assert api.exit_code == ExitCode.UNAVAILABLE == 3
    assert error_message(3, api.stdout, api.stderr) == f"cannot reach the docchain API at {dead}: connection refused"

    node = invoke(runner, "inspect", "events", "--rpc", dead, "--json")
    assert node.exit_code == 3
    assert error_message(3, node.stdout, node.stderr) == f"cannot reach the Ethereum node at {dead}: connection refused"


def test_3_the_api_answering_503(stack: Stack, tmp_path: Path) -> None:
    """A real API whose node is down answers the chain's routes with 503."""
    api = ApiProcess.start(
        host="127.0.0.1",
        port=free_port(),
        log_path=tmp_path / "api.log",
        env={
            "DOCCHAIN_RPC_URL": f"http://127.0.0.1:{free_port()}",
            "DOCCHAIN_DATA_DIR": str(tmp_path / "data"),
            "DOCCHAIN_RELAYER_KEY": DEV_RELAYER_KEY,
            "DOCCHAIN_PIPELINE": "off",
        },
    )
    try:
        import httpx

        poll(lambda: httpx.get(api.url + "/healthz").status_code == 200, 60, what="the API")
        doc = _document(tmp_path, "doc.txt")
        result = stack.run(
            "submit",
            str(doc),
            "--api",
            api.url,
            "--retries",
            "0",
            "--json",
            env={**stack.env, "DOCCHAIN_PASSWORD": PASSWORD},
        )
    finally:
        api.stop()
    assert result.returncode == 3, result.stderr
    assert error_message(3, result.stdout, result.stderr).startswith(
        "the docchain API could not serve the request (503 "
    )


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (VerificationError("hash", "the file's SHA-256 differs"), 1),
        (VerificationFailed("signed by others"), 1),
        (ApiError(404, "Not found", "no document", lookup=True), 1),
        (ApiError(422, "Verification failed", "record", problem="verification-failed"), 1),
        (InvalidInput("bad hex"), 2),
        (FileNotFoundError(2, "No such file or directory", "x.pdf"), 2),
        (ApiError(404, "Not found", "no route"), 2),
        (ApiError(422, "Invalid input", "docHash"), 2),
        (ApiUnreachable("cannot reach the docchain API"), 3),
        (ApiError(500, "Internal error", None), 3),
        (ApiError(503, "Ethereum node unavailable", None), 3),
        (ApiError(429, "Too many requests", "a signer's daily quota", problem="quota-exceeded"), 3),
        (ApiError(422, "The registry rejected the request", None, problem="contract-revert"), 3),
        (NodeError("cannot reach the Ethereum node"), 3),
        (ContractRevert("AlreadyRevoked", (b"\x01", "0x00")), 3),
        (TransactionTimeout("not mined"), 3),
        (NotDeployed("no registry"), 3),
        (ChainError("chain error"), 3),
        (ConnectionRefusedError(111, "Connection refused"), 3),  # an OSError, yet the network
        (TimeoutError("timed out"), 3),
        (KeyboardInterrupt(), 130),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_each_error_type_has_its_row(exc: BaseException, code: int) -> None:
    assert exit_code_for(exc) == code


def test_3_requests_and_web3_transport_errors_are_the_network() -> None:
    import requests
    from web3.exceptions import TimeExhausted

    assert exit_code_for(requests.ConnectionError("reset")) == 3  # an OSError subclass too
    assert exit_code_for(TimeExhausted("no receipt")) == 3


# ---------------------------------------------------------------------- 130 interrupted


class _Reader(threading.Thread):
    """Collects a pipe's bytes as they come, so a test can poll for a prompt without blocking on it."""

    def __init__(self, stream: Any) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.data = b""
        self.start()

    def run(self) -> None:
        while chunk := os.read(self.stream.fileno(), 4096):
            self.data += chunk


def _interactive(command: list[str], env: dict[str, str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """``docchain`` as from an interactive shell: a pty as stdin (no controlling terminal, so getpass reads
    the pty), and SIGINT at its default (a test run started in the background inherits it ignored, and
    Python then leaves Ctrl-C ignored in the CLI too)."""
    return subprocess.Popen(
        [sys.executable, "-m", "docchain.client", *command],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        **kwargs,
    )


def _kill_if_running(proc: subprocess.Popen[bytes]) -> None:
    """A command a failed test left running is not left behind."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("json_flag", [["--json"], []], ids=["json", "human"])
@pytest.mark.parametrize("command", ["submit", "keys new"])
def test_130_ctrl_c_at_a_password_prompt(stack: Stack, tmp_path: Path, command: str, json_flag: list[str]) -> None:
    doc = _document(tmp_path, "doc.txt")
    args = (
        ["submit", str(doc), "--api", stack.api_url]  # the password is asked once the API has answered
        if command == "submit"
        else ["keys", "new", "bob"]
    )
    prompt = b"Password for key 'alice':" if command == "submit" else b"New password for 'bob':"
    controller, terminal = pty.openpty()
    proc = _interactive([*args, *json_flag], stack.env, stdin=terminal)  # no DOCCHAIN_PASSWORD: it asks
    os.close(terminal)
    err = _Reader(proc.stderr)
    try:
        poll(lambda: proc.poll() is not None or prompt in err.data, 30, what="the password prompt")
        assert proc.poll() is None, err.data
        proc.send_signal(signal.SIGINT)
        assert proc.stdout is not None
        out = proc.stdout.read()
        assert proc.wait(30) == ExitCode.INTERRUPTED == 130
        err.join(10)
    finally:
        _kill_if_running(proc)
        os.close(controller)
    stderr = err.data.decode()
    assert stderr.startswith(prompt.decode())  # the prompt went to stderr: stdout holds only the JSON
    if json_flag:
        assert error_message(130, out.decode(), stderr, only_line=False) == "interrupted"
    else:
        assert out == b"" and stderr.strip().splitlines()[-1] == "error: interrupted" and "Traceback" not in stderr
    assert not (Path(stack.env["DOCCHAIN_CONFIG_DIR"]) / "keys" / "bob.json").exists()  # nothing half-made


class Recorder:
    """A TCP relay on 127.0.0.1 in front of ``upstream``, keeping what clients sent: a test sees a request
    arrive (a long-poll the API holds) instead of guessing when it did."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.sent = b""
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.sockets: list[socket.socket] = [self.server]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            self.sockets += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket, record: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if record:
                    self.sent += chunk
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):  # already closed by the other direction
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


@pytest.mark.parametrize("json_flag", [["--json"], []], ids=["json", "human"])
def test_130_ctrl_c_during_submit_wait(stack: Stack, tmp_path: Path, json_flag: list[str]) -> None:
    """Interrupted while the API holds its long-poll (up to 60 s, and never anchored here): the command ends
    at once with 130, not after the threads waiting for the anchor have had their answer."""
    docs = [str(_document(tmp_path, f"doc-{i}.txt")) for i in range(2)]  # two: the wait runs on threads
    relay = Recorder(stack.api_url)
    proc = _interactive(
        ["submit", *docs, "--wait", "--api", relay.url, *json_flag],
        {**stack.env, "DOCCHAIN_PASSWORD": PASSWORD},
        stdin=subprocess.DEVNULL,
    )
    try:
        poll(
            lambda: proc.poll() is not None or relay.sent.count(b"GET /v1/submissions/") >= 2,
            60,
            what="the long-polls of submit --wait",
        )
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)  # well before the held long-polls would answer
    finally:
        _kill_if_running(proc)
        relay.close()
    assert proc.returncode == 130, err
    if json_flag:
        assert error_message(130, out.decode(), err.decode()) == "interrupted"
    else:
        assert out == b"" and err.decode().strip() == "error: interrupted"
