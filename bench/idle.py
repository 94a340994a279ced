"""Idle CPU of the embedded stack: what the API, its anchoring child and the database cost when nothing happens.

    .venv/bin/python bench/idle.py [--seconds 20] [--settle 5] [--backend sqlite|postgres|both] [--json]

Starts its own anvil (the embedded stack's flags), deploys the registry, runs ``python -m docchain.api`` with
its default settings (pipeline in a child process), submits one document and waits until it is anchored
(so the idle stack has a cursor, a mined transaction and a confirmation behind it), lets it settle, then
reads each process's CPU time from ``/proc/<pid>/stat`` over ``--seconds``. PostgreSQL runs when its
binaries are in ``DOCCHAIN_PG_BIN`` (default /usr/local/bin); its row sums every server process.

The table prints CPU as a percentage of one core per process, with anvil (which does nothing while no
transaction arrives) as the baseline row, and the stack's figure (API + pipeline) next to the target of
0.5 % of a core.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from web3 import HTTPProvider, Web3

from docchain.chain import deploy
from docchain.chain.node import LocalNode, NodeConfig
from docchain.chain.sender import TxSender
from docchain.chain.typed_data import Domain, Registration, address_of, sign

DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
PG_BIN = Path(os.environ.get("DOCCHAIN_PG_BIN", "/usr/local/bin"))
TARGET = 0.5  # % of a core, issue 20
TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except (httpx.TransportError, ConnectionError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


# ------------------------------------------------------------------------------------------- /proc


def cpu_ticks(pid: int) -> int:
    """utime + stime of ``pid`` (clock ticks); 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat(5), counted after the comm field


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(FileNotFoundError):
            out += [int(c) for c in (task / "children").read_text().split()]
    return out


def descendants(pid: int) -> list[int]:
    out = children(pid)
    for child in list(out):
        out += descendants(child)
    return out


def thread_ticks(pid: int) -> dict[str, int]:
    """CPU ticks of each thread of ``pid``, by "tid name"."""
    out = {}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(FileNotFoundError):
            out[f"{task.name} {(task / 'comm').read_text().strip()}"] = _task_ticks(task)
    return out


def _task_ticks(task: Path) -> int:
    fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def measure(groups: dict[str, list[int]], seconds: float, threads: bool = False) -> dict[str, float]:
    """CPU % of one core per group of processes over ``seconds`` (and, with ``threads``, per busy thread)."""
    stack = groups.get("api", []) + groups.get("pipeline", [])
    before = {name: sum(cpu_ticks(p) for p in pids) for name, pids in groups.items()}
    per_thread = {p: thread_ticks(p) for p in stack} if threads else {}
    start = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - start
    after = {name: sum(cpu_ticks(p) for p in pids) for name, pids in groups.items()}
    out = {name: 100.0 * (after[name] - before[name]) / TICK / elapsed for name in groups}
    for pid, ticks in per_thread.items():
        for name, value in thread_ticks(pid).items():
            used = value - ticks.get(name, 0)
            if used:
                out[f"  {pid}/{name}"] = 100.0 * used / TICK / elapsed
    return out


# ------------------------------------------------------------------------------------------- PostgreSQL


class Postgres:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="docchain-idle-pg-"))
        self.port = free_port()
        self.run_as: list[str] = []
        if os.geteuid() == 0:  # postgres refuses to run as root
            subprocess.run(["chown", "-R", "nobody", str(self.root)], check=True)
            self.run_as = ["runuser", "-u", "nobody", "--"]
        data = self.root / "data"
        subprocess.run(
            [*self.run_as, str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync"],
            check=True,
            capture_output=True,
        )
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            [*self.run_as, str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(self.root / "log"), "-w"]
            + ["-o", options, "start"],
            check=True,
            capture_output=True,
        )
        self.pid = int((data / "postmaster.pid").read_text().split()[0])

    def database(self) -> str:
        import psycopg

        name = "idle_" + uuid.uuid4().hex[:8]
        dsn = f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute(f"CREATE DATABASE {name}")
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        subprocess.run(
            [*self.run_as, str(PG_BIN / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(self.root, ignore_errors=True)


# ------------------------------------------------------------------------------------------- the stack


def run_stack(
    node: LocalNode,
    data_dir: Path,
    database_url: str,
    work: Path,
    seconds: float,
    settle: float,
    extra: list[int],
    threads: bool = False,
) -> dict[str, float]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCCHAIN_")}
    env.update(
        DOCCHAIN_RPC_URL=node.rpc_url,
        DOCCHAIN_DATA_DIR=str(data_dir),
        DOCCHAIN_DATABASE_URL=database_url,
        DOCCHAIN_RELAYER_KEY=DEV_KEY,
        DOCCHAIN_LOG_FILE=str(work / "api.log.jsonl"),
        DOCCHAIN_LOG_LEVEL="WARNING",
    )
    with open(work / "api.out", "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "docchain.api", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait(lambda: httpx.get(url + "/healthz", timeout=1).status_code == 200, 60, "the API")
        wait(lambda: children(proc.pid), 30, "the pipeline process")
        deployment = deploy.lookup(data_dir, 31337)
        domain = Domain(chain_id=31337, verifying_contract=deployment.address)
        key = os.urandom(32)
        doc = hashlib.sha256(os.urandom(32)).digest()
        reg = Registration(doc_hash=doc, signer=address_of(key), deadline=int(time.time()) + 3600)
        body = {"registration": reg.to_json(), "signature": "0x" + sign(domain, reg, key).hex()}
        r = httpx.post(url + "/v1/documents", json=body, timeout=30)
        if r.status_code != 202:
            raise SystemExit(f"submission refused: {r.status_code} {r.text}")
        sid = r.json()["id"]

        def anchored() -> bool:
            state = httpx.get(f"{url}/v1/submissions/{sid}", params={"wait": 2}, timeout=30).json()["state"]
            return state in ("anchored", "confirmed")

        wait(anchored, 60, "the submission to be anchored")
        time.sleep(settle)
        groups = {
            "anvil (baseline)": [node.pid or 0],
            "api": [proc.pid],
            "pipeline": children(proc.pid),
        }
        if extra:
            groups["postgres (all)"] = extra + [p for pid in extra for p in descendants(pid)]
        return measure(groups, seconds, threads)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--settle", type=float, default=5.0, help="idle time before measuring")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--threads", action="store_true", help="also CPU per thread of each process")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="docchain-idle-"))
    node = LocalNode(NodeConfig(data_dir=work / "anvil"))
    node.start()
    pg: Postgres | None = None
    results: dict[str, dict[str, float]] = {}
    try:
        data_dir = work / "data"
        data_dir.mkdir()
        sender = TxSender(Web3(HTTPProvider(node.rpc_url)), bytes.fromhex(DEV_KEY[2:]))
        deploy.ensure_deployed(sender, data_dir)
        backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
        for backend in backends:
            if backend == "postgres":
                if not (PG_BIN / "initdb").exists():
                    print(f"PostgreSQL skipped: no {PG_BIN / 'initdb'}", file=sys.stderr)
                    continue
                pg = Postgres()
                url, extra = pg.database(), [pg.pid]
            else:
                url, extra = f"sqlite+aiosqlite:///{work / 'idle.db'}", []
            results[backend] = run_stack(node, data_dir, url, work, args.seconds, args.settle, extra, args.threads)
    finally:
        node.stop()
        if pg is not None:
            pg.stop()
        shutil.rmtree(work, ignore_errors=True)

    if args.json:
        print(json.dumps(results, indent=2))
        return
    for backend, rows in results.items():
        stack = rows["api"] + rows["pipeline"]
        print(f"\nidle {args.seconds:g} s, {backend}: CPU % of one core")
        print(f"  {'process':<18} {'% core':>7}")
        for name, value in rows.items():
            print(f"  {name:<18} {value:>7.2f}")
        print(f"  {'stack (api+pipe)':<18} {stack:>7.2f}   target <= {TARGET}: {'ok' if stack <= TARGET else 'OVER'}")
        base = rows["anvil (baseline)"]
        if base > 0:
            print(f"  stack / anvil: {stack / base:.1f}x")


if __name__ == "__main__":
    main()
