"""CPU per JSON-RPC call: docchain's transport against the HTTP clients it could be built on, in one run.

    .venv/bin/python bench/rpc.py [--calls 2000] [--rounds 3] [--json]

Starts its own anvil and sends ``eth_blockNumber`` through each client, one call at a time and then
``--calls`` at once (as the API's verify and the indexer do under load). Prints CPU microseconds per call
(this process's CPU time, so the node's work is left out) and each row's ratio to bare aiohttp, the
baseline. The median of ``--rounds`` rounds is shown; rounds interleave the clients so that a noisy
neighbour on a shared host costs all rows alike.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import httpx

from docchain.chain.node import LocalNode, NodeConfig
from docchain.chain.rpc import JsonRpc

BODY = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}).encode()
HEADERS = {"Content-Type": "application/json"}


async def _measure(call: Callable[[], Awaitable[object]], calls: int, concurrent: bool) -> float:
    """CPU microseconds per call."""
    start = time.process_time()
    if concurrent:
        await asyncio.gather(*(call() for _ in range(calls)))
    else:
        for _ in range(calls):
            await call()
    return (time.process_time() - start) / calls * 1e6


async def run(url: str, calls: int, rounds: int) -> dict[str, dict[str, float]]:
    session = aiohttp.ClientSession(headers=HEADERS)
    client = httpx.AsyncClient()
    transport = httpx.AsyncHTTPTransport()
    rpc = JsonRpc(url)

    async def bare_aiohttp() -> object:
        async with session.post(url, data=BODY) as response:
            return json.loads(await response.read())

    async def httpx_client() -> object:
        return (await client.post(url, content=BODY, headers=HEADERS)).json()

    async def httpx_transport() -> object:
        request = httpx.Request("POST", url, headers=HEADERS, content=BODY)
        response = await transport.handle_async_request(request)
        await response.aread()
        await response.aclose()
        return json.loads(response.content)

    async def docchain() -> object:
        return await rpc.call("eth_blockNumber", [])

    rows: dict[str, Callable[[], Awaitable[object]]] = {
        "aiohttp (baseline)": bare_aiohttp,
        "docchain JsonRpc": docchain,
        "httpx AsyncClient": httpx_client,
        "httpx transport": httpx_transport,
    }
    samples: dict[str, dict[str, list[float]]] = {name: {"one at a time": [], "all at once": []} for name in rows}
    try:
        for call in rows.values():  # warm up: connections open, code paths imported
            await asyncio.gather(*(call() for _ in range(50)))
        for _ in range(rounds):
            for name, call in rows.items():
                samples[name]["one at a time"].append(await _measure(call, calls, concurrent=False))
                samples[name]["all at once"].append(await _measure(call, calls, concurrent=True))
    finally:
        await session.close()
        await client.aclose()
        await transport.aclose()
        await rpc.aclose()
    return {name: {mode: statistics.median(v) for mode, v in modes.items()} for name, modes in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data, LocalNode(NodeConfig(data_dir=Path(data))) as node:
        result = asyncio.run(run(node.rpc_url, args.calls, args.rounds))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    base = result["aiohttp (baseline)"]
    print(f"eth_blockNumber to a local anvil, {args.calls} calls, median of {args.rounds} rounds (CPU µs per call)\n")
    print(f"| client | one at a time | ratio | {args.calls} at once | ratio |")
    print("|---|---:|---:|---:|---:|")
    for name, modes in result.items():
        one, many = modes["one at a time"], modes["all at once"]
        print(
            f"| {name} | {one:,.0f} | {one / base['one at a time']:.2f} × "
            f"| {many:,.0f} | {many / base['all at once']:.2f} × |"
        )


if __name__ == "__main__":
    main()
