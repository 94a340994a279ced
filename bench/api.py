"""API throughput benchmark: documents/s from submission to anchored at 50 concurrent clients, and verify
requests/s with p50/p99 latency — each beside a ceiling measured in the same run: a bare FastAPI endpoint
(uvicorn, uvloop + httptools, as many processes as the API's ``--workers``, each on its own SO_REUSEPORT
socket) that only parses the same request and recovers its EIP-712 signer.

    python bench/api.py [--docs 3000] [--clients 50] [--workers 1] [--seconds 8] [--database-url URL] [--json]

Starts its own anvil, deploys the registry, runs the API as ``python -m docchain.api`` on SQLite (or on
``--database-url``), and drives it with a minimal keep-alive HTTP/1.1 client (so the load generator
costs as little CPU as possible on a 2-core machine). Each ceiling is measured just before and just
after the docchain run it is compared with (after: once anchoring has finished), and the ratio uses
their mean.

Targets (issue 3): ≥ 1,000 docs/s anchored; acceptance and verify ≥ 0.7 × the ceiling; p99 verify ≤ 30 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any, cast

import httpx
import uvloop
from web3 import HTTPProvider, Web3

from docchain.chain import deploy
from docchain.chain.sender import TxSender
from docchain.chain.typed_data import Domain, Registration, sign

ROOT = Path(__file__).resolve().parents[1]
ANVIL = ROOT / "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"

CEILING_APP = textwrap.dedent("""
    import sys, uvicorn
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse
    from docchain.api.schemas import SubmissionIn, VerifyIn
    from docchain.chain.typed_data import Domain, Registration, recover
    from docchain.chain.receipt import parse_receipt
    from docchain.chain.values import parse_signature

    domain = Domain(chain_id=int(sys.argv[2]), verifying_contract=sys.argv[3])
    app = FastAPI()

    @app.post("/submit")
    async def submit(request: Request):
        body = SubmissionIn.model_validate_json(await request.body())
        reg = Registration.from_json(body.registration.model_dump())
        signer = recover(domain, reg, parse_signature(body.signature))
        return JSONResponse({"signer": signer, "ok": signer == reg.signer}, status_code=202)

    @app.post("/verify")
    async def verify(request: Request):
        body = VerifyIn.model_validate_json(await request.body())
        receipt = parse_receipt(body.receipt)
        signer = recover(receipt.domain, receipt.registration, receipt.signature)
        return JSONResponse({"verdict": "valid" if signer == receipt.signer else "invalid"})

    # each of --workers processes on its own SO_REUSEPORT socket, as python -m docchain.api --workers does
    from docchain.api.workers import reuseport_socket
    sock = reuseport_socket("127.0.0.1", int(sys.argv[1]))
    uvicorn.Server(uvicorn.Config(app, loop="uvloop", http="httptools", access_log=False, log_level="warning")).run(
        sockets=[sock]
    )
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise SystemExit(f"{url} did not come up")


class _Client(asyncio.Protocol):
    """One keep-alive connection sending its ``bodies`` one request at a time: parsed straight from the
    socket's data (a protocol, not streams; on uvloop), since every microsecond the load generator spends is
    a microsecond the servers it shares the machine with do not get (measured: ~80 us of CPU per request,
    against ~140 us for asyncio streams on the default loop)."""

    def __init__(
        self, path: bytes, bodies: list[bytes], results: tuple[list[float], dict[int, int]], stop_at: float | None
    ) -> None:
        self.path, self.bodies, self.stop_at = path, bodies, stop_at
        self.latencies, self.statuses = results
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sent = 0
        self.buffer = b""
        self.started = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.WriteTransport, transport)  # uvloop's TCP transport (not asyncio's class)
        self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)

    def _send(self) -> None:
        finished = self.sent >= len(self.bodies) if self.stop_at is None else time.perf_counter() >= self.stop_at
        if finished:
            self.transport.close()
            return
        body = self.bodies[self.sent % len(self.bodies)]
        self.sent += 1
        self.started = time.perf_counter()
        self.transport.write(
            b"POST %s HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (self.path, len(body), body)
        )

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data
        end = buffer.find(b"\r\n\r\n")
        length = 0
        if end >= 0:
            head = buffer[:end].lower()
            at = head.find(b"\r\ncontent-length:")
            if at >= 0:
                value_end = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : value_end if value_end >= 0 else None])
        if end < 0 or len(buffer) < end + 4 + length:
            self.buffer = buffer  # the rest of the response is still on its way
            return
        self.latencies.append(time.perf_counter() - self.started)
        status = int(buffer[9:12])
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.buffer = buffer[end + 4 + length :]
        self._send()


async def _load(port: int, path: str, bodies: list[bytes], clients: int, seconds: float | None) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    shares = [bodies[i::clients] for i in range(clients)]
    started = time.perf_counter()
    stop_at = None if seconds is None else started + seconds
    connections = []
    for share in (s for s in shares if s):
        _, client = await loop.create_connection(
            partial(_Client, path.encode(), share, (latencies, statuses), stop_at), "127.0.0.1", port
        )
        connections.append(client.done)
    # bounded: a connection that never completes (a server that stopped answering) ends the run with an error
    await asyncio.wait_for(asyncio.gather(*connections), timeout=(seconds or 0) + 120)
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "seconds": round(elapsed, 3),
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(1000 * latencies[len(latencies) // 2], 2),
        "p99_ms": round(1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 2),
        "statuses": statuses,
        "started": started,
    }


def load(port: int, path: str, bodies: list[bytes], clients: int, seconds: float | None) -> dict[str, Any]:
    """``clients`` keep-alive connections; each sends its share of ``bodies`` once (seconds=None) or loops
    over them for ``seconds``."""
    return uvloop.run(_load(port, path, bodies, clients, seconds))


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (Linux /proc; 10 ms resolution)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def serving(pid: int, workers: int) -> list[int]:
    """The processes that answer HTTP: the API itself, or its ``--workers`` (children with ``--fd``)."""
    if workers == 1:
        return [pid]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = []
        for entry in Path("/proc").iterdir():
            try:
                child = entry.name.isdigit() and (entry / "stat").read_text().rpartition(")")[2].split()[1] == str(pid)
                if child and b"--fd" in (entry / "cmdline").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
        if len(found) == workers:
            return found
        time.sleep(0.1)
    raise SystemExit("the API's workers did not start")


def measured(
    pids: list[int], port: int, path: str, bodies: list[bytes], clients: int, seconds: float | None
) -> dict[str, Any]:
    """A timed load, with the servers' CPU per request: a figure that a busy neighbour moves far less than
    throughput, since the servers are charged only for the CPU they used."""
    before = sum(map(cpu_seconds, pids))
    result = load(port, path, bodies, clients, seconds)
    used = sum(map(cpu_seconds, pids)) - before
    result["cpu_us"] = round(1e6 * used / max(1, result["requests"]), 1)
    return result


def around(ceiling: list[dict[str, Any]]) -> dict[str, Any]:
    """The ceiling measured just before and just after a docchain run: their mean is the baseline, so a
    burst of noise on one side of the run moves the ratio half as much."""
    return {
        "rps": round(sum(c["rps"] for c in ceiling) / len(ceiling), 1),
        "p50_ms": round(sum(c["p50_ms"] for c in ceiling) / len(ceiling), 2),
        "p99_ms": round(sum(c["p99_ms"] for c in ceiling) / len(ceiling), 2),
        "runs_rps": [c["rps"] for c in ceiling],
        "cpu_us": round(sum(c["cpu_us"] for c in ceiling) / len(ceiling), 1),
    }


def signed_bodies(domain: Domain, n: int) -> tuple[list[bytes], list[dict[str, Any]]]:
    key = os.urandom(32)
    from docchain.chain.typed_data import address_of

    signer = address_of(key)
    deadline = int(time.time()) + 3600
    bodies, raw = [], []
    for _ in range(n):
        reg = Registration(doc_hash=os.urandom(32), signer=signer, deadline=deadline)
        body = {"registration": reg.to_json(), "signature": "0x" + sign(domain, reg, key).hex()}
        raw.append(body)
        bodies.append(json.dumps(body).encode())
    return bodies, raw


def run(
    docs: int,
    clients: int,
    workers: int,
    seconds: float,
    database_url: str | None = None,
    settings: Mapping[str, str] | None = None,
    inspect: Callable[[str, list[bytes]], None] | None = None,
) -> dict[str, Any]:
    """One whole run (node, ceiling, API, submissions, verify), its figures as ``main`` prints them as JSON;
    ``settings`` are more ``DOCCHAIN_*`` variables for the API (bench/compare.py sets its anchoring mode), and
    ``inspect`` is called with the API's URL and the verify bodies before they are timed (to check what they
    verify to, untimed)."""
    tmp = Path(tempfile.mkdtemp(prefix="docchain-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    results: dict[str, Any] = {"clients": clients, "workers": workers}
    try:
        node_port = free_port()
        procs.append(
            subprocess.Popen(
                [str(ANVIL), "--port", str(node_port), "--silent", "--gas-limit", "60000000"], stdout=subprocess.DEVNULL
            )
        )
        rpc = f"http://127.0.0.1:{node_port}"
        w3 = Web3(HTTPProvider(rpc))
        deadline = time.monotonic() + 20
        while not w3.is_connected():
            if time.monotonic() > deadline:
                raise SystemExit("anvil did not start")
            time.sleep(0.05)
        deployment, _ = deploy.ensure_deployed(TxSender(w3, bytes.fromhex(DEV_KEY[2:])), tmp)
        domain = Domain(chain_id=deployment.chain_id, verifying_contract=deployment.address)

        # ---- ceiling: bare FastAPI, parse + recover
        ceiling_port = free_port()
        script = tmp / "ceiling.py"
        script.write_text(CEILING_APP)
        ceiling_pids = []
        for _ in range(workers):
            proc = subprocess.Popen(
                [sys.executable, str(script), str(ceiling_port), str(deployment.chain_id), deployment.address],
                stdout=subprocess.DEVNULL,
            )
            procs.append(proc)
            ceiling_pids.append(proc.pid)
        wait_http(f"http://127.0.0.1:{ceiling_port}/docs")

        # ---- the API
        api_port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCCHAIN_")}
        env.update(
            {
                "DOCCHAIN_RPC_URL": rpc,
                "DOCCHAIN_DATA_DIR": str(tmp),
                "DOCCHAIN_RELAYER_KEY": DEV_KEY,
                "DOCCHAIN_CONFIRMATIONS": "1",
                "DOCCHAIN_LOG_LEVEL": "WARNING",
                "DOCCHAIN_BATCH_SIZE": "300",
                "DOCCHAIN_BATCH_INTERVAL_MS": "100",
                "DOCCHAIN_POLL_INTERVAL_MS": "50",
                # one client from one address sending thousands of documents: past any relayer limit
                "DOCCHAIN_KEY_RATE_PER_MINUTE": "0",
                "DOCCHAIN_KEY_DAILY_QUOTA": "0",
                "DOCCHAIN_SIGNER_RATE_PER_MINUTE": "0",
                "DOCCHAIN_SIGNER_DAILY_QUOTA": "0",
                "DOCCHAIN_WORKERS": str(workers),
            }
        )
        if database_url:
            env["DOCCHAIN_DATABASE_URL"] = database_url
        env.update(settings or {})
        api_proc = subprocess.Popen(
            [sys.executable, "-m", "docchain.api", "--port", str(api_port)], env=env, stdout=subprocess.DEVNULL
        )
        procs.append(api_proc)
        wait_http(f"http://127.0.0.1:{api_port}/healthz")
        for _ in range(4 * workers):  # new connections reach every worker: each binds to the chain
            httpx.get(f"http://127.0.0.1:{api_port}/v1/chain", timeout=30)
        api_pids = serving(api_proc.pid, workers)

        bodies, raw = signed_bodies(domain, docs)
        ceiling_bodies, _ = signed_bodies(domain, 2000)
        ceiling_before = measured(ceiling_pids, ceiling_port, "/submit", ceiling_bodies, clients, seconds)

        # ---- submissions, end to end
        accept = measured(api_pids, api_port, "/v1/documents", bodies, clients, None)
        t0 = accept["started"]

        def anchored() -> int:
            text = httpx.get(f"http://127.0.0.1:{api_port}/metrics", timeout=10).text
            for line in text.splitlines():
                if line.startswith("docchain_anchored_total "):
                    return int(float(line.split()[1]))
            return 0

        limit = time.monotonic() + 120
        while (done := anchored()) < docs and time.monotonic() < limit:
            time.sleep(0.02)
        t_all = time.perf_counter() - t0
        ceiling_after = measured(ceiling_pids, ceiling_port, "/submit", ceiling_bodies, clients, seconds)
        ceiling_submit = around([ceiling_before, ceiling_after])
        results["submit"] = {
            "documents": docs,
            "anchored": done,
            "accept_rps": accept["rps"],
            "accept_p99_ms": accept["p99_ms"],
            "statuses": accept["statuses"],
            "end_to_end_docs_per_s": round(done / t_all, 1),
            "ceiling_rps": ceiling_submit["rps"],
            "ceiling_runs_rps": ceiling_submit["runs_rps"],
            "accept_ratio": round(accept["rps"] / ceiling_submit["rps"], 3),
            "cpu_us": accept["cpu_us"],  # the HTTP processes' only: the pipeline anchors in its own
            "ceiling_cpu_us": ceiling_submit["cpu_us"],
            "cpu_ratio": round(ceiling_submit["cpu_us"] / accept["cpu_us"], 3),
        }

        # ---- verify with receipts
        receipts = []
        for body in raw[:200]:
            reg = body["registration"]
            r = httpx.get(
                f"http://127.0.0.1:{api_port}/v1/documents/{reg['docHash']}/receipts/{reg['signer']}", timeout=30
            )
            receipts.append(json.dumps({"docHash": reg["docHash"], "receipt": r.json()}).encode())
        if inspect is not None:
            inspect(f"http://127.0.0.1:{api_port}", receipts)
        before = measured(ceiling_pids, ceiling_port, "/verify", receipts, clients, seconds)
        verify = measured(api_pids, api_port, "/v1/verify", receipts, clients, seconds)
        after = measured(ceiling_pids, ceiling_port, "/verify", receipts, clients, seconds)
        ceiling_verify = around([before, after])
        results["verify"] = {
            "rps": verify["rps"],
            "p50_ms": verify["p50_ms"],
            "p99_ms": verify["p99_ms"],
            "statuses": verify["statuses"],
            "ceiling_rps": ceiling_verify["rps"],
            "ceiling_p50_ms": ceiling_verify["p50_ms"],
            "ceiling_p99_ms": ceiling_verify["p99_ms"],
            "ceiling_runs_rps": ceiling_verify["runs_rps"],
            "ratio": round(verify["rps"] / ceiling_verify["rps"], 3),
            "cpu_us": verify["cpu_us"],
            "ceiling_cpu_us": ceiling_verify["cpu_us"],
            "cpu_ratio": round(ceiling_verify["cpu_us"] / verify["cpu_us"], 3),
        }
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=3000, help="documents submitted end to end")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument(
        "--workers", type=int, default=1, help="HTTP processes of the API (--workers) and of the ceiling alike"
    )
    parser.add_argument("--seconds", type=float, default=6.0, help="duration of each verify / ceiling run")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--database-url", help="the API's database (an empty PostgreSQL database, say); default: SQLite in a temp dir"
    )
    args = parser.parse_args()
    results = run(args.docs, args.clients, args.workers, args.seconds, args.database_url)

    if args.json:
        print(json.dumps(results))
        return 0
    s, v = results["submit"], results["verify"]
    print(
        f"docchain API benchmark, {args.clients} concurrent clients, {args.workers} HTTP process(es) each"
        " (ceiling: bare FastAPI parse + recover,"
    )
    print(
        f"mean of the runs before and after: submit {' / '.join(f'{r:,.0f}' for r in s['ceiling_runs_rps'])}, "
        f"verify {' / '.join(f'{r:,.0f}' for r in v['ceiling_runs_rps'])} req/s)"
    )
    print(f"{'measure':<34}{'docchain':>12}{'ceiling':>12}{'ratio':>8}  target")
    print(
        f"{'submission acceptance (req/s)':<34}{s['accept_rps']:>12,.0f}{s['ceiling_rps']:>12,.0f}"
        f"{s['accept_ratio']:>8.2f}  >= 0.70"
    )
    print(
        f"{'submission CPU per request (us)':<34}{s['cpu_us']:>12,.0f}{s['ceiling_cpu_us']:>12,.0f}"
        f"{s['cpu_ratio']:>8.2f}  (HTTP processes only)"
    )
    print(
        f"{'anchored end to end (docs/s)':<34}{s['end_to_end_docs_per_s']:>12,.0f}{'':>12}{'':>8}  >= 1,000"
        f"  ({s['anchored']}/{s['documents']} anchored)"
    )
    print(f"{'verify (req/s)':<34}{v['rps']:>12,.0f}{v['ceiling_rps']:>12,.0f}{v['ratio']:>8.2f}  >= 0.70")
    print(
        f"{'verify CPU per request (us)':<34}{v['cpu_us']:>12,.0f}{v['ceiling_cpu_us']:>12,.0f}{v['cpu_ratio']:>8.2f}"
        "  (ceiling / docchain: the ratio with less host noise)"
    )
    print(
        f"{'verify p50 / p99 (ms)':<34}{v['p50_ms']:>6.1f} /{v['p99_ms']:>5.1f}"
        f"{v['ceiling_p50_ms']:>6.1f} /{v['ceiling_p99_ms']:>5.1f}{'':>8}  p99 <= 30"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
