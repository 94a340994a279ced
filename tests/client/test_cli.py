"""The CLI as a specification: argument validation, exit statuses, config precedence, keystores.

No network is needed here: every case fails (or succeeds) before any call, or talks to a port that
refuses connections or a local socket that never answers. tests/client/test_exit_codes.py goes through
the exit-status table row by row, with the --json error objects.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from typer.testing import CliRunner

from docchain.client import keys
from docchain.client.api_client import ApiClient
from docchain.client.config import Config
from docchain.client.errors import ApiError, ExitCode, UsageError

PASSWORD = "correct horse battery staple"


def invoke(runner: CliRunner, *args: str, input: str | None = None, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    from docchain.client.cli import app

    return runner.invoke(app, list(args), input=input, env=env, catch_exceptions=False)


DEAD_API = "http://127.0.0.1:9"  # discard port: nothing listens, the connection is refused


def _new_key(runner: CliRunner, name: str = "alice") -> dict[str, str]:
    result = invoke(runner, "keys", "new", name, "--json", env={"DOCCHAIN_PASSWORD": PASSWORD})
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# ---------------------------------------------------------------------- keys


def test_keystore_round_trip(home: Path, runner: CliRunner) -> None:
    created = _new_key(runner)
    path = Path(created["path"])
    assert path.parent == home / "keys"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    stored = json.loads(path.read_text())
    assert "crypto" in stored and "ciphertext" in stored["crypto"]  # encrypted, not plain
    private = keys.unlock("alice", PASSWORD)
    assert Account.from_key(private).address == created["address"]

    listed = json.loads(invoke(runner, "keys", "list", "--json").stdout)
    assert [(k["name"], k["address"]) for k in listed] == [("alice", created["address"])]
    shown = json.loads(invoke(runner, "keys", "show", "alice", "--json").stdout)
    assert shown["address"] == created["address"]
    assert private.hex() not in invoke(runner, "keys", "show", "alice").stdout


def test_keys_import_from_file_and_password_file(home: Path, runner: CliRunner, tmp_path: Path) -> None:
    key = "0x" + "11" * 32
    (tmp_path / "k.hex").write_text(key + "\n")
    (tmp_path / "pw").write_text("s3cret\n")
    result = invoke(
        runner,
        "keys",
        "import",
        "bob",
        "--key-file",
        str(tmp_path / "k.hex"),
        "--password-file",
        str(tmp_path / "pw"),
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["address"] == Account.from_key(key).address
    assert keys.unlock("bob", "s3cret").hex() == "11" * 32


def test_keys_new_prompts_for_the_password_twice(home: Path, runner: CliRunner) -> None:
    result = invoke(runner, "keys", "new", "carol", input="pw1\npw1\n")
    assert result.exit_code == 0, result.output
    assert keys.unlock("carol", "pw1")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["keys", "new", "../evil"], "invalid key name"),
        (["keys", "new", "-x"], "No such option"),
        (["keys", "show", "nobody"], "no key named 'nobody'"),
    ],
)
def test_keys_bad_input_exits_2(home: Path, runner: CliRunner, args: list[str], message: str) -> None:
    result = invoke(runner, *args, env={"DOCCHAIN_PASSWORD": PASSWORD})
    assert result.exit_code == ExitCode.USAGE
    assert message in result.output


def test_keys_never_overwritten(home: Path, runner: CliRunner) -> None:
    _new_key(runner)
    result = invoke(runner, "keys", "new", "alice", env={"DOCCHAIN_PASSWORD": PASSWORD})
    assert result.exit_code == ExitCode.USAGE
    assert "already exists" in result.output


def test_wrong_password_is_a_one_line_error(home: Path, runner: CliRunner, tmp_path: Path) -> None:
    _new_key(runner)
    doc = tmp_path / "doc.txt"
    doc.write_text("hello")
    result = invoke(runner, "submit", str(doc), "--api", DEAD_API, env={"DOCCHAIN_PASSWORD": "wrong"})
    assert result.exit_code == ExitCode.USAGE
    assert "wrong password for key 'alice'" in result.stderr
    assert "Traceback" not in result.output


def test_invalid_private_key_import(home: Path, runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "k").write_text("0x1234")
    result = invoke(
        runner, "keys", "import", "x", "--key-file", str(tmp_path / "k"), env={"DOCCHAIN_PASSWORD": PASSWORD}
    )
    assert result.exit_code == ExitCode.USAGE
    assert "private key must be 32 bytes" in result.stderr


# ---------------------------------------------------------------------- argument validation before network


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["submit", "missing.pdf", "--api", DEAD_API], "no such file: missing.pdf"),
        (["submit", "{doc}", "--api", "ftp://x"], "must be an http(s) URL"),
        (["submit", "{doc}", "{doc}", "--api", DEAD_API], "is given twice"),
        (["submit", "{doc}", "--direct", "--store"], "--store needs the API"),
        (["verify", "nope.pdf", "--api", DEAD_API], "neither an existing file nor"),
        (["verify", "{doc}", "--signer", "0x1234"], "--signer must be 20 bytes"),
        (["verify", "{doc}", "--receipt", "absent.json"], "no such receipt"),
        (["status", "0x1234"], "document hash must be 32 bytes"),
        (["list", "--since", "yesterday"], "--since must be an ISO-8601 date"),
        (["list", "--signer", "0xZZ"], "--signer is not valid hex"),
        (["get", "0x" + "00" * 32, "-o", "{doc}"], "already exists"),
        (["inspect", "tx", "0x12"], "transaction hash must be 32 bytes"),
        (["inspect", "block", "-1"], "No such option"),
        (["up", "--node", "geth", "--port", "1"], "--node must be anvil or ganache"),
        (["submit", "{doc}", "--timeout", "0"], "Invalid value"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    home: Path, runner: CliRunner, tmp_path: Path, args: list[str], message: str
) -> None:
    doc = tmp_path / "doc.txt"
    doc.write_text("hello")
    argv = [a.replace("{doc}", str(doc)) for a in args]
    result = invoke(runner, *argv, env={"DOCCHAIN_PASSWORD": PASSWORD})
    assert result.exit_code == ExitCode.USAGE, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_existing_receipt_is_not_overwritten(home: Path, runner: CliRunner, tmp_path: Path) -> None:
    _new_key(runner)
    doc = tmp_path / "doc.txt"
    doc.write_text("hello")
    (tmp_path / "doc.txt.docchain.json").write_text("{}")
    result = invoke(runner, "submit", str(doc), "--wait", "--api", DEAD_API, env={"DOCCHAIN_PASSWORD": PASSWORD})
    assert result.exit_code == ExitCode.USAGE
    assert "already exists; pass --force" in result.stderr


def test_malformed_receipt_fails_verification(home: Path, runner: CliRunner, tmp_path: Path) -> None:
    doc = tmp_path / "doc.txt"
    doc.write_text("hello")
    (tmp_path / "doc.txt.docchain.json").write_text('{"docchainReceipt": 1}')
    result = invoke(runner, "verify", str(doc), "--rpc", "http://127.0.0.1:9", "--json")
    assert result.exit_code == ExitCode.VERIFICATION_FAILED
    assert json.loads(result.stdout)["failedStep"] == "receipt"  # evidence that fails, before any node is asked


# ---------------------------------------------------------------------- connection errors


def test_connection_refused_is_one_line_exit_3(home: Path, runner: CliRunner, tmp_path: Path) -> None:
    doc = tmp_path / "doc.txt"
    doc.write_text("hello")
    result = invoke(runner, "verify", str(doc), "--api", DEAD_API, "--retries", "1")
    assert result.exit_code == ExitCode.UNAVAILABLE
    assert result.stderr.strip() == f"error: cannot reach the docchain API at {DEAD_API}: connection refused"


class _ServerUrl(str):
    held: list[socket.socket]


@pytest.fixture()
def silent_server() -> Iterator[str]:
    """A TCP server that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    url = _ServerUrl(f"http://127.0.0.1:{server.getsockname()[1]}")
    url.held = held
    yield url
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_timeout_is_one_line_exit_3(home: Path, runner: CliRunner, silent_server: str) -> None:
    result = invoke(runner, "status", "0x" + "ab" * 32, "--api", silent_server, "--timeout", "0.3", "--json")
    assert result.exit_code == ExitCode.UNAVAILABLE
    message = f"cannot reach the docchain API at {silent_server}: no answer within the timeout"
    assert json.loads(result.stdout) == {"error": {"code": 3, "kind": "unavailable", "message": message}}
    assert (
        result.stderr.strip()
        == f"error: cannot reach the docchain API at {silent_server}: no answer within the timeout"
    )


def test_node_unreachable_is_one_line_exit_3(home: Path, runner: CliRunner) -> None:
    result = invoke(runner, "inspect", "events", "--rpc", "http://127.0.0.1:9")
    assert result.exit_code == ExitCode.UNAVAILABLE
    assert result.stderr.strip() == "error: cannot reach the Ethereum node at http://127.0.0.1:9: connection refused"


def test_verbose_shows_the_traceback(home: Path, runner: CliRunner) -> None:
    result = invoke(runner, "status", "0x" + "ab" * 32, "--api", DEAD_API, "--retries", "0", "--verbose")
    assert result.exit_code == ExitCode.UNAVAILABLE
    assert "Traceback" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: cannot reach the docchain API")


def test_retries_back_off_then_give_up() -> None:
    client = ApiClient(DEAD_API, timeout=1, retries=2, backoff=0.01)
    with pytest.raises(UsageError.__mro__[1]) as caught:  # CliError
        client.chain()
    assert "connection refused" in str(caught.value)


def test_problem_json_becomes_one_line() -> None:
    import httpx

    response = httpx.Response(
        422, json={"type": "about:blank", "title": "Invalid input", "detail": "docHash is not valid hex"}
    )
    with pytest.raises(ApiError) as caught:
        ApiClient._check(response)
    assert str(caught.value) == "the API refused the request (422 Invalid input): docHash is not valid hex"
    assert caught.value.code == ExitCode.USAGE
    with pytest.raises(ApiError) as missing:  # a document, receipt or record asked for: the answer "not found"
        ApiClient._check(httpx.Response(404, json={"title": "Not Found"}), lookup=True)
    assert missing.value.code == ExitCode.VERIFICATION_FAILED
    with pytest.raises(ApiError) as no_route:  # anything else: a wrong API address or a stale id
        ApiClient._check(httpx.Response(404, json={"title": "Not Found"}))
    assert no_route.value.code == ExitCode.USAGE
    with pytest.raises(ApiError) as server:
        ApiClient._check(httpx.Response(500, text="boom"))
    assert server.value.code == ExitCode.UNAVAILABLE
    with pytest.raises(ApiError) as reverted:
        revert = {"type": "https://docchain.dev/problems/contract-revert", "title": "The registry rejected the request"}
        ApiClient._check(httpx.Response(422, json=revert))
    assert reverted.value.code == ExitCode.UNAVAILABLE


# ---------------------------------------------------------------------- config precedence


def test_config_precedence_flag_over_env_over_file(home: Path, runner: CliRunner, tmp_path: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text('api = "http://127.0.0.1:7"\ntimeout = 2\n')
    assert Config.load().pick("api", None) == "http://127.0.0.1:7"
    assert Config.load().pick("timeout", None) == 2
    assert Config.load().pick("retries", None) == 3  # built-in default

    def api_used(*extra: str, env: dict[str, str] | None = None) -> str:
        result = invoke(runner, "status", "0x" + "ab" * 32, "--retries", "0", *extra, env=env)
        assert result.exit_code == ExitCode.UNAVAILABLE
        return result.stderr.split("API at ")[1].rsplit(": ", 1)[0]

    assert api_used() == "http://127.0.0.1:7"  # file
    assert api_used(env={"DOCCHAIN_API": "http://127.0.0.1:8"}) == "http://127.0.0.1:8"  # env beats file
    assert api_used("--api", "http://127.0.0.1:9", env={"DOCCHAIN_API": "http://127.0.0.1:8"}) == "http://127.0.0.1:9"


def test_bad_config_file_is_reported(home: Path, runner: CliRunner) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text('apii = "x"\n')
    result = invoke(runner, "keys", "list")
    assert result.exit_code == ExitCode.USAGE
    assert "unknown setting(s)" in result.stderr and "apii" in result.stderr


def test_default_key_selection(home: Path, runner: CliRunner) -> None:
    with pytest.raises(UsageError, match="no signing key yet"):
        keys.default_key_name(None)
    _new_key(runner, "alice")
    assert keys.default_key_name(None) == "alice"
    _new_key(runner, "bob")
    with pytest.raises(UsageError, match="several keys exist"):
        keys.default_key_name(None)
    assert keys.default_key_name("bob") == "bob"


# ---------------------------------------------------------------------- help teaches


def _commands() -> list[list[str]]:
    """Every command's path under `docchain`, found by walking the Click tree (none is forgotten)."""
    import typer.main

    from docchain.client.cli import app

    def walk(command, path):  # type: ignore[no-untyped-def]
        sub = getattr(command, "commands", None)
        if sub:
            for name, child in sub.items():
                yield from walk(child, [*path, name])
        else:
            yield path

    return list(walk(typer.main.get_command(app), []))


def test_the_commands_and_their_names_are_kept() -> None:
    names = {" ".join(path) for path in _commands()}
    assert names >= {
        "keys new", "keys import", "keys list", "keys show", "submit", "verify", "status", "list", "get",
        "revoke", "inspect tx", "inspect block", "inspect events", "node up", "node down", "node status",
        "serve", "deploy", "up", "receipt get", "receipt upgrade", "receipt export", "receipt import",
    }  # fmt: skip


@pytest.mark.parametrize("command", [[], *_commands()], ids=lambda c: " ".join(c) or "docchain")
def test_every_command_has_help_with_an_example_in_80_columns(runner: CliRunner, command: list[str]) -> None:
    result = runner.invoke(app_for_help(), [*command, "--help"], env={"COLUMNS": "80", "TERMINAL_WIDTH": None})
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "Examples:" in text
    examples = text[text.index("Examples:") :]
    assert ("docchain " + " ".join(command)).strip() in examples  # an invocation of this very command
    too_long = [line for line in text.splitlines() if len(line) > 80]
    assert too_long == []


def app_for_help():  # type: ignore[no-untyped-def]
    from docchain.client.cli import app

    return app


def test_global_options_work_before_and_after_the_command(home: Path, runner: CliRunner) -> None:
    _new_key(runner)
    before = invoke(runner, "--json", "keys", "list")
    after = invoke(runner, "keys", "list", "--json")
    assert before.exit_code == after.exit_code == 0
    assert json.loads(before.stdout) == json.loads(after.stdout)
    other = home.parent / "elsewhere"
    listed = invoke(runner, "--config-dir", str(other), "keys", "list", "--json")
    assert json.loads(listed.stdout) == []  # --config-dir beats DOCCHAIN_CONFIG_DIR
    # on the command line, after the command beats before it, and both beat the environment
    refused = invoke(runner, "--api", "http://127.0.0.1:7", "status", "0x" + "ab" * 32, "--api", DEAD_API)
    assert refused.exit_code == ExitCode.UNAVAILABLE and DEAD_API in refused.stderr


def test_a_recorded_stack_is_the_fallback_after_flags_env_and_config(home: Path, runner: CliRunner) -> None:
    from docchain.client import config

    config.record_stack(home, api="http://127.0.0.1:5", rpc="http://127.0.0.1:6")

    def api_used(*extra: str, env: dict[str, str] | None = None) -> str:
        result = invoke(runner, "status", "0x" + "ab" * 32, "--retries", "0", *extra, env=env)
        assert result.exit_code == ExitCode.UNAVAILABLE
        return result.stderr.split("API at ")[1].rsplit(": ", 1)[0]

    assert api_used() == "http://127.0.0.1:5"  # recorded
    (home / "config.toml").write_text('api = "http://127.0.0.1:7"\n')
    assert api_used() == "http://127.0.0.1:7"  # the config file, written by the user, first
    assert api_used(env={"DOCCHAIN_API": "http://127.0.0.1:8"}) == "http://127.0.0.1:8"
    node = invoke(runner, "inspect", "events")
    assert node.stderr.strip() == "error: cannot reach the Ethereum node at http://127.0.0.1:6: connection refused"


def test_client_modules_import_no_cycle_and_hold_no_mutable_globals() -> None:
    """The import graph of docchain.client is acyclic, and no module binds a list, dict or set at module
    level other than constants in capitals (per-invocation state lives in ctx.obj)."""
    import ast

    root = Path(__file__).resolve().parents[2] / "client"
    graph: dict[str, set[str]] = {}
    for path in root.glob("*.py"):
        tree = ast.parse(path.read_text())
        deps = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("docchain.client"):
                if node.module == "docchain.client":
                    deps |= {alias.name for alias in node.names}
                else:
                    deps.add(node.module.split(".")[2])
        graph[path.stem] = deps - {path.stem}
        for stmt in tree.body:
            targets = stmt.targets if isinstance(stmt, ast.Assign) else []
            for target in targets:
                if isinstance(target, ast.Name) and not target.id.isupper() and not target.id.startswith("__"):
                    assert not isinstance(stmt.value, ast.List | ast.Dict | ast.Set), f"{path.name}: {target.id}"

    def visit(name: str, trail: tuple[str, ...]) -> None:
        assert name not in trail, " -> ".join((*trail, name))
        for dep in graph.get(name, ()):
            visit(dep, (*trail, name))

    for name in graph:
        visit(name, ())


def test_every_option_has_an_env_var() -> None:
    import typer.main

    from docchain.client.cli import app

    def walk(command, path):  # type: ignore[no-untyped-def]
        sub = getattr(command, "commands", None)
        if sub:
            for name, child in sub.items():
                yield from walk(child, [*path, name])
        else:
            yield path, command

    # DOCCHAIN_ANCHORING is the server's default for a submission that names no mode: the CLI's flag has no
    # variable, so that an operator's export for the server does not change what the CLI accepts
    flag_only = {"submit --anchoring"}
    missing = []
    for path, command in walk(typer.main.get_command(app), []):
        for param in command.params:
            if param.param_type_name == "option" and "--help" not in param.opts and not param.envvar:
                missing.append(f"{' '.join(path)} {param.opts[0]}")
    assert sorted(set(missing) - flag_only) == []


def test_ctrl_c_exits_130_with_one_line(home: Path, silent_server: str) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "DOCCHAIN_API": silent_server, "DOCCHAIN_TIMEOUT": "30"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "docchain.client", "status", "0x" + "ab" * 32],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as from an interactive shell: a test run started in the background (``make test &``) inherits
        # SIGINT ignored, and Python then leaves Ctrl-C ignored in the CLI too
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 20
    while not silent_server.held:  # type: ignore[attr-defined]  # poll: the CLI has connected and waits
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == ExitCode.INTERRUPTED
    assert err.strip() == "error: interrupted"


@pytest.mark.parametrize("width", [80, 200])
def test_tables_elide_hashes_only_when_the_terminal_is_too_narrow(width: int) -> None:
    import io

    from rich.console import Console

    from docchain.client.output import Output

    doc, signer = "0x" + "ab" * 31 + "cd", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    out = Output()
    out.out = Console(file=io.StringIO(), width=width, highlight=False)
    out.table("documents", ["sha256", "signer", "state", "block"], [(doc, signer, "confirmed", 7)] * 3)
    text = out.out.file.getvalue()  # type: ignore[attr-defined]
    assert all(len(line) <= width for line in text.splitlines())
    rows = [line for line in text.splitlines() if "confirmed" in line]
    if width == 80:  # folded, each row ran 4 lines deep; elided, one line, both ends kept
        assert len(rows) == 3 and all("0xababab…ababcd" in r and "0x709979…dc79C8" in r for r in rows)
        assert len(text.splitlines()) == 8  # title, top border, header, rule, three rows, bottom border
    else:
        assert all(doc in r and signer in r for r in rows)
