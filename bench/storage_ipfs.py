"""IPFS rows of the storage benchmark: docchain's IPFS backend against kubo's own CLI, same file, same node, same run.

    python bench/storage_ipfs.py [--size 256] [--runs 3] [--json]

Store: ``IpfsStorage.put`` (SHA-256 and CID computed while streaming, then pinned) against ``ipfs add`` with the
same import options; fetch: ``IpfsStorage.open`` read to the end (hash-checked) against ``ipfs cat`` into
/dev/null. Each transfer starts from an empty blockstore (the copy is unpinned and ``repo gc`` runs between runs),
so no run finds the blocks of an earlier one; the best of ``--runs`` counts. The sealed rows move the staged
ciphertext (``add_sealed``; ``open`` with the key, unsealing and hash-checking) against ``ipfs add`` / ``ipfs cat``
of the same staging file; sealing into the spool is the acceptance's local step, not an IPFS transfer.

It starts its own offline kubo node (the binary ``make kubo`` builds, or ``$DOCCHAIN_KUBO``): every run empties the
node's pins and blocks.
bench/storage.py imports :func:`ipfs_rows` for its table. Target (issue 21): ratio ≥ 0.8.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # tests/storage/kubo.py runs the node

from bench.storage import Row  # noqa: E402
from docchain.api.storage.base import Placement  # noqa: E402
from docchain.api.storage.ipfs import IpfsConfig, IpfsStorage, stage_sealed  # noqa: E402
from docchain.chain.cid import ADD_OPTIONS, cid_of_stream  # noqa: E402
from docchain.chain.sealed import new_key  # noqa: E402
from tests.storage.kubo import kubo_binary, start_kubo  # noqa: E402

MiB = 1 << 20


def _best(runs: int, action: Callable[[], None], reset: Callable[[], None]) -> float:
    """The shortest of ``runs`` timings of ``action``, ``reset`` run after each (untimed)."""
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - start)
        reset()
    return best


def ipfs_rows(size: int, workdir: Path, binary: Path, api_url: str, *, runs: int = 3) -> list[Row]:
    """Store and fetch MB/s of docchain's IPFS backend and of ``ipfs add`` / ``ipfs cat`` for one file of
    ``size`` random bytes, public and sealed, against the kubo node whose RPC API is ``api_url`` (``binary`` is
    its CLI), which must be the benchmark's own: each run empties its pins and blocks. The sealed rows transfer
    the staged ciphertext (staging is the acceptance's local step)."""
    url = urlsplit(api_url)
    cli = [str(binary), f"--api=/ip4/{url.hostname}/tcp/{url.port}"]
    flags = [f"--{name}={value}" for name, value in ADD_OPTIONS]
    path = workdir / "bench.bin"
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        left = size
        while left:
            block = os.urandom(min(MiB, left))
            digest.update(block)
            out.write(block)
            left -= len(block)
    doc_hash = digest.digest()
    storage = IpfsStorage(IpfsConfig(api_url=api_url, timeout=300))
    key = new_key()
    with open(path, "rb") as stream:
        staged = stage_sealed(stream, key, workdir / "spool", expected_hash=doc_hash)

    def run(*args: str) -> str:
        return subprocess.run([*cli, *args], check=True, capture_output=True, text=True).stdout.strip()

    def emptied() -> None:
        """No pin, no block: the next add writes every block again."""
        for cid in run("pin", "ls", "--type=recursive", "--quiet").split():
            run("pin", "rm", cid)
        run("repo", "gc", "--quiet")

    def cli_add(file: Path) -> Callable[[], None]:
        return lambda: run("add", "--quieter", *flags, str(file))

    def cli_cat(cid: str) -> Callable[[], None]:
        def cat() -> None:
            with open(os.devnull, "wb") as sink:
                subprocess.run([*cli, "cat", cid], stdout=sink, check=True)

        return cat

    def put() -> None:
        with open(path, "rb") as stream:
            storage.put(doc_hash, stream)

    def add_sealed() -> None:
        with open(staged.path, "rb") as stream:
            storage.add_sealed(doc_hash, stream, staged.cid)

    def read(placement: Placement, key: bytes | None = None) -> Callable[[], None]:
        def fetch() -> None:
            for _ in storage.open(doc_hash, placement, key=key):
                pass

        return fetch

    def nothing() -> None:
        pass

    emptied()
    timings = {
        "store": _best(runs, put, emptied),
        "store baseline": _best(runs, cli_add(path), emptied),
        "sealed store": _best(runs, add_sealed, emptied),
        "sealed store baseline": _best(runs, cli_add(staged.path), emptied),
    }
    public = Placement("ipfs", cid_of_stream_at(path), size)
    sealed = Placement("ipfs", staged.cid, staged.sealed_size, sealed=True)
    put()
    add_sealed()
    timings |= {
        "fetch": _best(runs, read(public), nothing),
        "fetch baseline": _best(runs, cli_cat(public.locator), nothing),
        "sealed fetch": _best(runs, read(sealed, key), nothing),
        "sealed fetch baseline": _best(runs, cli_cat(sealed.locator), nothing),
    }
    emptied()
    storage.close()

    def mbps(what: str) -> float:
        return size / timings[what] / 1e6

    add, cat = "ipfs add (kubo CLI)", "ipfs cat (kubo CLI)"
    return [
        Row("ipfs", "store", size, mbps("store"), add, mbps("store baseline")),
        Row("ipfs", "fetch", size, mbps("fetch"), cat, mbps("fetch baseline")),
        Row("ipfs sealed", "store", size, mbps("sealed store"), add, mbps("sealed store baseline")),
        Row("ipfs sealed", "fetch", size, mbps("sealed fetch"), cat, mbps("sealed fetch baseline")),
    ]


def cid_of_stream_at(path: Path) -> str:
    with open(path, "rb") as stream:
        return cid_of_stream(stream)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256, help="MiB (default 256)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    binary = kubo_binary()
    if binary is None:
        print("no kubo binary: run `make kubo` (or set DOCCHAIN_KUBO)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-ipfs-") as tmp:
        workdir = Path(tmp)
        node, process = start_kubo(binary, workdir / "kubo")
        try:
            rows = ipfs_rows(args.size * MiB, workdir, binary, node.api_url, runs=args.runs)
        finally:
            process.terminate()
            process.wait(timeout=30)
    if args.json:
        print(json.dumps({"size": args.size * MiB, "rows": [asdict(row) | {"ratio": row.ratio} for row in rows]}))
        return 0
    print(f"IPFS, {args.size} MiB, best of {args.runs}")
    print(f"{'backend':<13}{'op':<7}{'docchain MB/s':>15}{'baseline MB/s':>15}{'ratio':>8}  baseline")
    for row in rows:
        print(
            f"{row.backend:<13}{row.operation:<7}{row.mbps:>15,.1f}{row.baseline_mbps:>15,.1f}"
            f"{row.ratio:>8.2f}  {row.baseline}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
