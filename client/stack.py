"""The embedded development stack: the local node (chain/node.py), the API as a child process, and the
sample document that ``docchain up`` signs and verifies. Processes are started here and stopped in
reverse order (API, then node), each only if this process started it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from docchain.chain.node import LocalNode, NodeConfig, NodeKind, RunningNode
from docchain.client.errors import CliError, ExitCode, UsageError

# anvil's (and ganache --deterministic's) well-known development accounts. Public test keys: they are
# only ever passed explicitly, to a node this process started itself, never used as a default elsewhere.
DEV_RELAYER_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # account #0
DEV_SIGNER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"  # account #1

NODE_SUBDIR = "node"


def node_dir(data_dir: Path) -> Path:
    return data_dir / NODE_SUBDIR


def find_node(data_dir: Path) -> RunningNode | None:
    """The detached embedded node recorded in the data dir, if it is running."""
    return LocalNode.find_running(node_dir(data_dir))


def start_node(data_dir: Path, kind: NodeKind, host: str, port: int | None) -> LocalNode:
    node = LocalNode(NodeConfig(kind=kind, host=host, port=port, data_dir=node_dir(data_dir)))
    node.start(detach=True)
    return node


def stop_node(data_dir: Path) -> bool:
    return LocalNode.stop_detached(node_dir(data_dir))


@dataclass
class ApiProcess:
    """``python -m docchain.api`` as a child process."""

    process: subprocess.Popen[bytes]
    url: str
    log_path: Path | None
    log_start: int = 0  # where this run's lines begin in the (appended) log

    @classmethod
    def start(cls, *, host: str, port: int, env: dict[str, str], log_path: Path | None) -> ApiProcess:
        command = [sys.executable, "-m", "docchain.api", "--host", host, "--port", str(port)]
        out = open(log_path, "ab") if log_path is not None else None  # noqa: SIM115 - handed to the child
        start = 0 if out is None else out.seek(0, os.SEEK_END)
        try:
            process = subprocess.Popen(
                command,
                env={**os.environ, **env},
                stdout=out,
                stderr=subprocess.STDOUT if out else None,
                stdin=subprocess.DEVNULL,
                start_new_session=out is not None,
            )
        finally:
            if out is not None:
                out.close()
        shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        return cls(process, f"http://{shown_host}:{port}", log_path, start)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Poll /readyz until the API answers (the process may need seconds to migrate its database)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                refusal = self.refusal()
                if refusal is not None and code in (ExitCode.USAGE, ExitCode.UNAVAILABLE):
                    raise CliError(refusal, ExitCode(code))  # a bad setting (2), an unreachable backend (3)
                where = f"; see {self.log_path}" if self.log_path else ""
                raise CliError(f"the API exited with status {code} while starting{where}", ExitCode.CHAIN)
            try:
                if httpx.get(self.url + "/readyz", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise CliError(f"the API at {self.url} was not ready within {timeout:g}s", ExitCode.CHAIN)

    def refusal(self) -> str | None:
        """The one line ``python -m docchain.api`` wrote when it refused to start (a setting it names, a
        storage backend it cannot reach), from its log."""
        if self.log_path is None or not self.log_path.is_file():
            return None
        with open(self.log_path, "rb") as log:
            log.seek(max(self.log_start, log.seek(0, os.SEEK_END) - 8192))
            lines = log.read().decode(errors="replace").splitlines()
        said = [line.removeprefix("docchain-api: ") for line in lines if line.startswith("docchain-api: ")]
        return said[-1] if said else None

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM lets the API finish its pending batch (graceful shutdown); SIGKILL only if it hangs."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def api_env(
    *, rpc_url: str, data_dir: Path, relayer_key: str | None, confirmations: int | None = None
) -> dict[str, str]:
    env = {"DOCCHAIN_RPC_URL": rpc_url, "DOCCHAIN_DATA_DIR": str(data_dir)}
    if relayer_key is not None:
        env["DOCCHAIN_RELAYER_KEY"] = relayer_key
    if confirmations is not None:
        env["DOCCHAIN_CONFIRMATIONS"] = str(confirmations)
    return env


def has_relayer_configured() -> bool:
    return bool(os.environ.get("DOCCHAIN_RELAYER_KEY") or os.environ.get("DOCCHAIN_RELAYER_KEYSTORE"))


def check_port(host: str, port: int) -> None:
    import socket

    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            raise UsageError(f"port {port} on {host} is already in use; choose another with --port") from None


def sample_document(data_dir: Path) -> Path:
    """A small new file to sign: unique content each run, so every run registers a new document."""
    folder = data_dir / "samples"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    path = folder / f"sample-{stamp}-{os.getpid()}.txt"
    path.write_text(
        "docchain sample document\n"
        f"created {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC "
        f"by `docchain up` (pid {os.getpid()})\n"
    )
    return path
