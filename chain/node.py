"""The local development node: anvil (default) or ganache, run as a child process of docchain.

Defaults were chosen by measurement (``bench/node.py``); with anvil 1.7.1 they keep transaction and
receipt throughput flat as the chain grows to 10,000+ blocks:

* ``--hardfork shanghai``: from prague on, every block writes its hash into the EIP-2935 history contract,
  so the state grows with the chain until 8,191 slots, and anvil <= 1.7.1 recomputes the whole state
  trie for every block. Shanghai is also the last fork ganache 7.9 runs and the contracts' evmVersion.
* ``--prune-history``: without it anvil keeps a state snapshot per block and spills them to its cache
  directory as JSON that includes the ever-growing block-hash map: O(blocks) work per block and
  gigabytes of ``~/.foundry/anvil/tmp`` after 10,000 blocks, never cleaned up. Even a few snapshots
  kept in memory carry that map (~170 bytes per block of chain each) and slow every transaction as the
  chain grows (4 kept: 0.77-0.87x the 100-block rate at 10,000 blocks; none kept: 1.0x). So none are
  kept: state queries (``eth_call``, ``eth_getBalance``, ``eth_getProof``...) answer at the latest block
  only, an older block number fails with BlockOutOfRangeError. Blocks, transactions, receipts and logs
  stay available for the whole chain.
* automine: one block per transaction, mined at once; an idle chain costs nothing and does not grow.

Not cured by any flag: anvil <= 1.7.1 also rebuilds the whole state trie for every block, ~2 us per
storage slot held by any contract (1,000 registrations: +2 ms per block; 20,000: +42 ms). Fewer blocks
per registration (batch registration, Merkle anchoring) is the remedy until a release ships foundry
#15715 (incremental state root, merged July 2026; npm serves nothing newer than 1.7.1).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from docchain.chain.errors import NodeBinaryMissing, NodeError, PortInUse

__all__ = [
    "DEV_MNEMONIC",
    "DEFAULT_CHAIN_ID",
    "LocalNode",
    "NodeConfig",
    "NodeKind",
    "RunningNode",
    "find_binary",
]

log = logging.getLogger(__name__)

NodeKind = Literal["anvil", "ganache"]

# Public test mnemonic: both nodes derive the same 10 funded dev accounts, so tests run unchanged on either.
DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEFAULT_CHAIN_ID = 31337
PIDFILE_NAME = "node.json"

_REPO_NODE_MODULES = Path(__file__).resolve().parents[1] / "node_modules"
_POLL_INTERVAL = 0.02
_LOG_TAIL_LINES = 25


@dataclass(frozen=True, kw_only=True)
class NodeConfig:
    """How to run the local node. Every field has a working default except where its data lives."""

    data_dir: Path
    kind: NodeKind = "anvil"
    host: str = "127.0.0.1"
    port: int | None = None  # None: pick a free port at start
    chain_id: int = DEFAULT_CHAIN_ID
    mnemonic: str = DEV_MNEMONIC
    block_gas_limit: int = 30_000_000
    hardfork: str = "shanghai"
    # None = automine (a block per transaction, at once). A number = interval mining every that many seconds.
    block_time: float | None = None
    # anvil: state snapshots kept in memory for state queries (eth_call, eth_getProof...) at past block
    # numbers. Any number > 0 makes transactions slower as the chain grows (see the module docstring).
    history_states: int = 0
    # anvil: also dump the state every so many seconds, so a crash loses at most that much (a crash in the
    # middle of a dump falls back to the copy taken at the last start: see _guard_state_file).
    state_interval: int | None = 10
    # The nodes log one line per RPC call; off by default so the log stays small over a long life.
    log_requests: bool = False
    balance_ether: int = 10_000  # anvil's default; ganache is told the same
    binary: Path | None = None  # None: see find_binary()

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        if self.kind not in ("anvil", "ganache"):
            raise ValueError(f"unknown node kind {self.kind!r}: expected 'anvil' or 'ganache'")
        if self.port is not None and not 0 < self.port < 65536:
            raise ValueError(f"port {self.port} is out of range 1..65535")
        if self.history_states < 0:
            raise ValueError("history_states must be >= 0")
        if self.block_time is not None and self.block_time <= 0:
            raise ValueError("block_time must be > 0 (None means automine)")

    @property
    def log_path(self) -> Path:
        return self.data_dir / f"{self.kind}.log"

    @property
    def state_path(self) -> Path:
        """anvil's ``--state`` file, or ganache's database directory."""
        return self.data_dir / ("anvil-state.json" if self.kind == "anvil" else "ganache-db")

    @property
    def pidfile(self) -> Path:
        return self.data_dir / PIDFILE_NAME


@dataclass(frozen=True)
class RunningNode:
    """What the pidfile says about a node process that is still alive."""

    pid: int
    kind: NodeKind
    rpc_url: str
    port: int
    chain_id: int


def find_binary(kind: NodeKind) -> Path:
    """Locate the node executable: ``DOCCHAIN_ANVIL``/``DOCCHAIN_GANACHE``, the repo's node_modules, PATH."""
    env_name = f"DOCCHAIN_{kind.upper()}"
    override = os.environ.get(env_name)
    if override:
        path = Path(override).expanduser()
        if _is_executable(path):
            return path
        raise NodeBinaryMissing(f"{kind} not found: {env_name}={override} is not an executable file")
    candidates: list[Path] = []
    if kind == "anvil":
        # The platform package holds the native binary; npm installs only the one matching this machine.
        # It starts ~100 ms faster than the node.js wrapper in .bin and is signalled directly on stop.
        candidates += sorted(_REPO_NODE_MODULES.glob("@foundry-rs/anvil-*/bin/anvil"))
    candidates.append(_REPO_NODE_MODULES / ".bin" / kind)
    for candidate in candidates:
        if _is_executable(candidate):
            return candidate
    found = shutil.which(kind)
    if found:
        return Path(found)
    raise NodeBinaryMissing(
        f"{kind} not found: run `npm ci` in {_REPO_NODE_MODULES.parent} "
        f"(looked in {_REPO_NODE_MODULES} and PATH), or set {env_name} to the executable"
    )


class LocalNode:
    """A dev node process. ``start()`` returns once it answers JSON-RPC; ``stop()`` lets it save its state."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self._proc: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self._detached = False

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self, timeout: float = 30, *, detach: bool = False) -> None:
        """Spawn the node and wait until ``eth_chainId`` answers with the configured chain id.

        ``detach=True`` leaves the node running after this process exits (for ``docchain node up``);
        find it again with ``find_running`` and stop it with ``stop_detached``.
        """
        if self.is_running():
            raise NodeError(f"{self.config.kind} is already running (pid {self.pid}) at {self.rpc_url}")
        cfg = self.config
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        # Two nodes on one data dir would overwrite each other's state.
        other = LocalNode.find_running(cfg.data_dir)
        if other is not None:
            raise NodeError(
                f"a {other.kind} node (pid {other.pid}) already runs on {cfg.data_dir} at {other.rpc_url}; "
                "stop it first"
            )
        binary = cfg.binary if cfg.binary is not None else find_binary(cfg.kind)
        if not _is_executable(binary):
            raise NodeBinaryMissing(f"{cfg.kind} not found: {binary} is not an executable file")
        if cfg.kind == "anvil":
            self._guard_state_file()

        deadline = time.monotonic() + timeout
        # A port picked by us can be taken by someone else before the node binds it: retry on a new one.
        attempts = 1 if cfg.port is not None else 3
        for attempt in range(attempts):
            port = cfg.port if cfg.port is not None else _free_port(cfg.host)
            if cfg.port is not None:
                _ensure_port_free(cfg.host, port)
            proc, log_offset = self._spawn(binary, port)
            self._proc, self._port = proc, port
            try:
                self._wait_ready(proc, port, deadline, log_offset, timeout)
            except _AddressInUse as exc:
                self._proc = None
                if cfg.port is not None:
                    raise PortInUse(f"port {port} on {cfg.host} is already in use") from exc
                if attempt == attempts - 1:
                    raise NodeError(f"could not find a free port on {cfg.host}: {exc}") from exc
                continue
            except BaseException:
                self._kill(proc)
                self._proc = None
                raise
            break

        self._detached = detach
        assert self._proc is not None
        _write_pidfile(
            cfg.pidfile,
            RunningNode(pid=self._proc.pid, kind=cfg.kind, rpc_url=self.rpc_url, port=port, chain_id=cfg.chain_id),
        )
        if not detach:
            # Started in its own session (so a terminal's Ctrl-C does not kill it before we save its state),
            # the node would outlive an interpreter that exits without stop(): stop it then.
            atexit.register(self.stop)

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM (anvil then writes its ``--state`` file), SIGKILL if still alive after ``timeout``."""
        proc = self._proc
        if proc is None:
            return
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s (pid %d) ignored SIGTERM for %.0f s; killing it", self.config.kind, proc.pid, timeout)
                self._kill(proc)
        self._proc = None
        _remove_pidfile(self.config.pidfile, proc.pid)

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def port(self) -> int:
        if self._port is None:
            raise NodeError("the node has not been started: its port is not known yet")
        return self._port

    @property
    def rpc_url(self) -> str:
        return _rpc_url(self.config.host, self.port)

    def __enter__(self) -> Self:
        if not self.is_running():
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"running pid={self.pid} {self.rpc_url}" if self.is_running() else "stopped"
        return f"<LocalNode {self.config.kind} {state} data_dir={self.config.data_dir}>"

    # -- detached nodes --------------------------------------------------------------------------------

    @staticmethod
    def find_running(data_dir: Path) -> RunningNode | None:
        """The node recorded in ``data_dir/node.json`` if its process is still alive, else None."""
        pidfile = Path(data_dir) / PIDFILE_NAME
        try:
            raw = json.loads(pidfile.read_text())
            info = RunningNode(
                pid=int(raw["pid"]),
                kind=raw["kind"],
                rpc_url=str(raw["rpc_url"]),
                port=int(raw["port"]),
                chain_id=int(raw["chain_id"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return info if _is_our_process(info.pid, info.kind) else None

    @staticmethod
    def stop_detached(data_dir: Path, timeout: float = 10) -> bool:
        """Stop the node recorded in ``data_dir``; False if none was running."""
        pidfile = Path(data_dir) / PIDFILE_NAME
        info = LocalNode.find_running(Path(data_dir))
        if info is None:
            pidfile.unlink(missing_ok=True)  # stale: the process is gone
            return False
        _signal_group(info.pid, signal.SIGTERM)
        if not _wait_dead(info.pid, timeout):
            _signal_group(info.pid, signal.SIGKILL)
            _wait_dead(info.pid, 5)
        _remove_pidfile(pidfile, info.pid)
        return True

    # -- internals -------------------------------------------------------------------------------------

    def _command(self, binary: Path, port: int) -> list[str]:
        cfg = self.config
        if cfg.kind == "anvil":
            cmd = [
                str(binary),
                "--host", cfg.host,
                "--port", str(port),
                "--chain-id", str(cfg.chain_id),
                "--mnemonic", cfg.mnemonic,
                "--balance", str(cfg.balance_ether),
                "--gas-limit", str(cfg.block_gas_limit),
                "--hardfork", cfg.hardfork,
                "--state", str(cfg.state_path),
            ]  # fmt: skip
            # `--prune-history 0` makes anvil 1.7.1 hang on the next block; the bare flag keeps no history.
            cmd += ["--prune-history"] + ([str(cfg.history_states)] if cfg.history_states > 0 else [])
            if cfg.state_interval:
                cmd += ["--state-interval", str(cfg.state_interval)]
            if cfg.block_time is not None:
                cmd += ["--block-time", _number(cfg.block_time)]
            if not cfg.log_requests:
                cmd.append("--quiet")  # start-up errors are still printed
            return cmd
        cmd = [
            str(binary),
            "--server.host", cfg.host,
            "--server.port", str(port),
            "--chain.chainId", str(cfg.chain_id),
            "--chain.networkId", str(cfg.chain_id),
            "--chain.hardfork", cfg.hardfork,
            "--wallet.mnemonic", cfg.mnemonic,
            "--wallet.defaultBalance", str(cfg.balance_ether),
            "--miner.blockGasLimit", str(cfg.block_gas_limit),
            "--database.dbPath", str(cfg.state_path),
        ]  # fmt: skip
        if cfg.block_time is not None:
            cmd += ["--miner.blockTime", _number(cfg.block_time)]
        if not cfg.log_requests:
            cmd.append("--logging.quiet")
        return cmd

    def _spawn(self, binary: Path, port: int) -> tuple[subprocess.Popen[bytes], int]:
        cfg = self.config
        cmd = self._command(binary, port)
        if cfg.kind == "ganache":
            cfg.state_path.mkdir(parents=True, exist_ok=True)
        with cfg.log_path.open("ab") as logf:
            offset = logf.tell()
            shown = " ".join(cmd).replace(cfg.mnemonic, "<mnemonic>")
            logf.write(f"--- docchain {datetime.now(UTC).isoformat(timespec='seconds')}: {shown}\n".encode())
            logf.flush()
            try:
                proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=logf,
                    stderr=subprocess.STDOUT,
                    cwd=cfg.data_dir,
                    start_new_session=True,
                )
            except OSError as exc:
                raise NodeBinaryMissing(f"{cfg.kind} could not be executed ({binary}): {exc}") from exc
        return proc, offset

    def _wait_ready(
        self, proc: subprocess.Popen[bytes], port: int, deadline: float, log_offset: int, timeout: float
    ) -> None:
        url = _rpc_url(self.config.host, port)
        while True:
            code = proc.poll()
            if code is not None:
                tail = _log_tail(self.config.log_path, log_offset)
                if "address already in use" in tail.lower() or "eaddrinuse" in tail.lower():
                    raise _AddressInUse(tail)
                raise NodeError(
                    f"{self.config.kind} exited with code {code} during start-up; "
                    f"end of {self.config.log_path}:\n{tail}"
                )
            try:
                chain_id = int(_rpc(url, "eth_chainId", timeout=1.0), 16)
            except (OSError, ValueError, urllib.error.URLError):
                chain_id = None
            if chain_id is not None:
                if chain_id != self.config.chain_id:
                    raise NodeError(f"{url} answered chain id {chain_id}, expected {self.config.chain_id}")
                return
            if time.monotonic() >= deadline:
                raise NodeError(
                    f"{self.config.kind} did not answer eth_chainId at {url} within {timeout:g} s; "
                    f"end of {self.config.log_path}:\n{_log_tail(self.config.log_path, log_offset)}"
                )
            time.sleep(_POLL_INTERVAL)

    def _guard_state_file(self) -> None:
        """Keep a copy of the last good state, and fall back to it if the file was cut short.

        anvil rewrites ``--state`` in place (truncate, then write; no rename, no fsync), so a kill or crash
        during a periodic dump leaves a truncated file that anvil refuses to load.
        """
        state = self.config.state_path
        backup = state.with_name(state.name + ".bak")
        if not state.exists():
            return
        if _json_looks_complete(state):
            tmp = backup.with_name(backup.name + ".tmp")
            shutil.copyfile(state, tmp)
            os.replace(tmp, backup)
            return
        if backup.exists() and _json_looks_complete(backup):
            corrupt = state.with_name(f"{state.name}.corrupt-{int(time.time())}")
            os.replace(state, corrupt)
            shutil.copyfile(backup, state)
            log.warning("%s was truncated (kept as %s); restored the copy from the previous start", state, corrupt)
            return
        raise NodeError(
            f"{state} is truncated (the node was killed while saving it) and there is no usable backup; "
            "move it away to start a new chain"
        )

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)


class _AddressInUse(Exception):
    """The node exited because its port was taken (a race with another process, or a fixed port)."""


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _rpc_url(host: str, port: int) -> str:
    # A node bound to every interface is reached on loopback.
    connect = "127.0.0.1" if host in ("", "0.0.0.0") else "::1" if host == "::" else host
    return f"http://[{connect}]:{port}" if ":" in connect else f"http://{connect}:{port}"


# No proxy: HTTP(S)_PROXY in the environment must not capture calls to a local node.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _rpc(url: str, method: str, params: list[object] | None = None, timeout: float = 5.0) -> str:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with _opener.open(request, timeout=timeout) as response:
        reply = json.loads(response.read())
    if "result" not in reply:
        raise ValueError(f"{method}: {reply.get('error')}")
    return str(reply["result"])


def _free_port(host: str) -> int:
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _ensure_port_free(host: str, port: int) -> None:
    """Fail before spawning: a node that cannot bind would otherwise only say so in its log."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR: a port left in TIME_WAIT by a previous node is free for a new listener.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise PortInUse(f"port {port} on {host} is already in use") from exc


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _log_tail(path: Path, offset: int) -> str:
    try:
        with path.open("rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    lines = text.strip().splitlines()
    return "\n".join(lines[-_LOG_TAIL_LINES:]) or "(empty log)"


def _json_looks_complete(path: Path) -> bool:
    # A truncated dump ends mid-value; a complete one ends with the closing brace. Cheap on a 100 MB file.
    try:
        with path.open("rb") as f:
            size = f.seek(0, os.SEEK_END)
            if size == 0:
                return False
            f.seek(max(0, size - 64))
            return f.read().rstrip().endswith(b"}")
    except OSError:
        return False


def _write_pidfile(path: Path, info: RunningNode) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(asdict(info), indent=2) + "\n")
    os.replace(tmp, path)


def _remove_pidfile(path: Path, pid: int) -> None:
    # Only our own record: another node may have been started on this data dir since.
    try:
        if int(json.loads(path.read_text())["pid"]) == pid:
            path.unlink()
    except (OSError, ValueError, KeyError, TypeError):
        pass


def _signal_group(pid: int, sig: signal.Signals) -> None:
    # The node leads its own session, so its process group also holds any child (the npm wrapper's binary).
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        # A zombie still answers signal 0 but has exited.
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _is_our_process(pid: int, kind: str) -> bool:
    if not _is_alive(pid):
        return False
    # The pid may have been reused by an unrelated process since the pidfile was written.
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no procfs (macOS): trust the pidfile
    return kind.encode() in cmdline


def _wait_dead(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)  # reap it if it is our own child
        if not _is_alive(pid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_INTERVAL)
