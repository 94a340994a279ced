"""Storage benchmark: store and fetch MB/s of each docchain backend beside the same server's own client moving
the same file in the same run.

    python bench/storage.py [--size 256] [--runs 3] [--backends local,s3,ipfs] [--json]

Rows (best of ``--runs``, docchain and baseline timed in turns; MB/s = 10^6 bytes per second; the ratio
divides docchain's by the baseline's):

- ``local``: ``LocalStorage.put`` (SHA-256 while writing, fsync, rename) against a plain copy of the file with
  ``shutil.copyfile`` and an fsync; fetch: ``LocalStorage.open`` (hash-checked) into a file against
  ``shutil.copyfile`` of the stored file.
- ``s3``: ``S3Storage.put`` from the open file (what the API hands it) against boto3's ``upload_file`` of the
  same path with its default settings (10 threads, 8 MiB parts, seekable source), to a moto S3 server this
  benchmark starts (``python -m moto.server``, its own process); fetch: ``S3Storage.open`` (hash-checked) into a
  file against ``download_file`` (ranged GETs on 10 threads).
- ``ipfs``: the rows of bench/storage_ipfs.py (docchain's IPFS backend against ``ipfs add`` / ``ipfs cat`` on an
  offline kubo node), when that module and a kubo binary (``make kubo``) are present.

Target (issue 21): every ratio ≥ 0.8.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # tests/storage starts the moto (and kubo) servers

from docchain.api.storage.base import Backend, Placement  # noqa: E402
from docchain.api.storage.local import LocalStorage  # noqa: E402
from docchain.api.storage.s3 import S3Storage  # noqa: E402
from tests.storage import start_moto  # noqa: E402

MiB = 1 << 20
TARGET = 0.8


@dataclass(frozen=True)
class Row:
    backend: str
    operation: str  # "store" or "fetch"
    size: int  # bytes
    mbps: float  # docchain, MB/s (10^6 bytes)
    baseline: str  # what it is compared with
    baseline_mbps: float

    @property
    def ratio(self) -> float:
        return self.mbps / self.baseline_mbps


@dataclass(frozen=True)
class Timed:
    action: Callable[[], object]
    reset: Callable[[], object] = lambda: None  # run after each timing, untimed


def _best(runs: int, docchain: Timed, baseline: Timed) -> tuple[float, float]:
    """The shortest of ``runs`` timings of each, taken in turns, so that a busy moment of the host weighs on
    both sides alike."""
    best = [float("inf"), float("inf")]
    for _ in range(runs):
        for side, timed in enumerate((docchain, baseline)):
            start = time.perf_counter()
            timed.action()
            best[side] = min(best[side], time.perf_counter() - start)
            timed.reset()
    return best[0], best[1]


def _random_file(path: Path, size: int) -> bytes:
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        left = size
        while left:
            block = os.urandom(min(MiB, left))
            digest.update(block)
            out.write(block)
            left -= len(block)
    return digest.digest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _store(backend: Backend, doc_hash: bytes, source: Path) -> Placement:
    with open(source, "rb") as stream:
        return backend.put(doc_hash, stream)


def _fetch(backend: Backend, doc_hash: bytes, placement: Placement, target: Path) -> None:
    with open(target, "wb") as out:
        for chunk in backend.open(doc_hash, placement):
            out.write(chunk)


def local_rows(size: int, workdir: Path, runs: int) -> list[Row]:
    source = workdir / "document.bin"
    doc_hash = _random_file(source, size)
    storage = LocalStorage(workdir / "documents")
    copy, fetched = workdir / "copy.bin", workdir / "fetched.bin"

    def remove() -> None:
        storage.remove(doc_hash)

    def plain_copy() -> None:
        shutil.copyfile(source, copy)
        _fsync(copy)

    store, store_baseline = _best(
        runs, Timed(lambda: _store(storage, doc_hash, source), remove), Timed(plain_copy, copy.unlink)
    )
    placement = _store(storage, doc_hash, source)
    stored = storage.root / placement.locator[:2] / placement.locator[2:4] / placement.locator
    fetch, fetch_baseline = _best(
        runs,
        Timed(lambda: _fetch(storage, doc_hash, placement, fetched)),
        Timed(lambda: shutil.copyfile(stored, fetched)),
    )
    remove()
    mbps = _rate(size)
    return [
        Row("local", "store", size, mbps(store), "copyfile + fsync", mbps(store_baseline)),
        Row("local", "fetch", size, mbps(fetch), "copyfile", mbps(fetch_baseline)),
    ]


def s3_rows(size: int, workdir: Path, runs: int) -> list[Row]:
    source = workdir / "document.bin"
    doc_hash = _random_file(source, size)
    fetched = workdir / "fetched.bin"
    server = start_moto(workdir)
    try:
        client = server.client()
        client.create_bucket(Bucket="bench")
        storage = S3Storage(server.config("bench"))
        placement = Placement("s3", storage.key(doc_hash), size)

        def remove() -> None:
            storage.remove(doc_hash, placement)

        store, store_baseline = _best(
            runs,
            Timed(lambda: _store(storage, doc_hash, source), remove),
            Timed(lambda: client.upload_file(str(source), "bench", "baseline")),
        )
        _store(storage, doc_hash, source)
        fetch, fetch_baseline = _best(
            runs,
            Timed(lambda: _fetch(storage, doc_hash, placement, fetched)),
            Timed(lambda: client.download_file("bench", "baseline", str(fetched))),
        )
    finally:
        server.stop()
    mbps = _rate(size)
    return [
        Row("s3", "store", size, mbps(store), "boto3 upload_file", mbps(store_baseline)),
        Row("s3", "fetch", size, mbps(fetch), "boto3 download_file", mbps(fetch_baseline)),
    ]


def ipfs_rows(size: int, workdir: Path, runs: int) -> tuple[list[Row], str | None]:
    """The IPFS rows, or none and why (bench/storage_ipfs.py or the kubo binary missing)."""
    try:
        from bench.storage_ipfs import ipfs_rows as rows_of
        from tests.storage.kubo import kubo_binary, start_kubo
    except ImportError as exc:
        return [], f"no IPFS rows: {exc}"
    binary = kubo_binary()
    if binary is None:
        return [], "no IPFS rows: no kubo binary (make kubo, or DOCCHAIN_KUBO)"
    node, process = start_kubo(binary, workdir / "kubo")
    try:
        found = rows_of(size, workdir, binary, node.api_url, runs=runs)
    finally:
        process.terminate()
        process.wait(timeout=30)
    return found, None


def _rate(size: int) -> Callable[[float], float]:
    return lambda seconds: size / seconds / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256, help="MiB (default 256)")
    parser.add_argument("--runs", type=int, default=3, help="timings per measurement; the best counts")
    parser.add_argument("--backends", default="local,s3,ipfs", help="comma-separated subset of local,s3,ipfs")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    size = args.size * MiB
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-storage-") as tmp:
        workdir = Path(tmp)
        chosen = {name.strip() for name in args.backends.split(",")}
        if unknown := chosen - {"local", "s3", "ipfs"}:
            parser.error(f"unknown backends: {', '.join(sorted(unknown))}")
        rows: list[Row] = []
        if "local" in chosen:
            rows += local_rows(size, workdir, args.runs)
        if "s3" in chosen:
            rows += s3_rows(size, workdir, args.runs)
        if "ipfs" in chosen:
            more, why = ipfs_rows(size, workdir, args.runs)
            rows += more
            notes += [why] if why else []
    if args.json:
        print(
            json.dumps(
                {
                    "size": size,
                    "runs": args.runs,
                    "target": TARGET,
                    "rows": [asdict(r) | {"ratio": r.ratio} for r in rows],
                    "notes": notes,
                }
            )
        )
        return 0
    print(f"storage, {args.size} MiB document, best of {args.runs}; target ratio >= {TARGET}")
    print(f"{'backend':<13}{'op':<7}{'docchain MB/s':>15}{'baseline MB/s':>15}{'ratio':>8}  baseline")
    for row in rows:
        flag = "" if row.ratio >= TARGET else "  (below target)"
        print(
            f"{row.backend:<13}{row.operation:<7}{row.mbps:>15,.1f}{row.baseline_mbps:>15,.1f}"
            f"{row.ratio:>8.2f}  {row.baseline}{flag}"
        )
    for note in notes:
        print(note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
