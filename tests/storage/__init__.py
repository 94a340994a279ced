"""What the storage tests share: a backend under test with its test-only powers (BackendCase), documents of
any size generated as a stream (PatternStream), the peak-RSS probe behind the memory bounds, and moto's S3
server as a process of its own (MotoServer)."""

from __future__ import annotations

import functools
import hashlib
import io
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config
from pydantic import SecretStr

from docchain.api.storage.base import Backend, Placement
from docchain.api.storage.s3 import S3Config
from tests.support import free_port, poll

MiB = 1 << 20


@dataclass
class BackendCase:
    """A backend for the contract suite (test_backend_contract.py), with what only a test may do to it.

    ``corrupt(doc_hash, placement)`` makes the stored copy read back as other bytes, behind the backend's
    back, and returns the placement to read it through (an IPFS copy cannot change under its CID, so there it
    may be a placement naming other content). ``leftovers()`` lists whatever the backend holds, one entry per
    copy, file, object, incomplete upload or pin, so that a refused write can be shown to leave nothing
    behind and a repeated one to leave one copy."""

    backend: Backend
    corrupt: Callable[[bytes, Placement], Placement]
    leftovers: Callable[[], list[str]]


class PatternStream:
    """``size`` bytes of a deterministic, incompressible pattern, read like a file without ever being held
    whole: a 1 GiB document costs one MiB of memory. ``sha256`` hashes the same bytes (by a first pass)."""

    def __init__(self, size: int, seed: int = 0) -> None:
        self.size = size
        self.seed = seed
        self._pattern = hashlib.sha256(seed.to_bytes(8, "big")).digest() * (MiB // 32)
        self._current = (-1, b"")
        self._pos = 0

    def _mib(self, index: int) -> bytes:
        # each MiB differs (its index is stamped at its start), so no two parts or blocks are alike
        if self._current[0] != index:
            self._current = (index, index.to_bytes(8, "big") + self._pattern[8:])
        return self._current[1]

    def read(self, n: int = -1) -> bytes:
        n = self.size - self._pos if n is None or n < 0 else min(n, self.size - self._pos)
        if n <= 0:
            return b""
        out = bytearray()
        while len(out) < n:
            index, offset = divmod(self._pos + len(out), MiB)
            out += self._mib(index)[offset : offset + n - len(out)]
        self._pos += n
        return bytes(out)

    def readable(self) -> bool:
        return True

    def sha256(self) -> bytes:
        digest = hashlib.sha256()
        copy = PatternStream(self.size, self.seed)
        while chunk := copy.read(MiB):
            digest.update(chunk)
        return digest.digest()


class Interrupted(Exception):
    """What :class:`CutShort` raises: an upload's client went away."""


class CutShort:
    """An upload whose client goes away after ``at`` bytes of ``data``."""

    def __init__(self, data: bytes, at: int) -> None:
        self._data = io.BytesIO(data)
        self.at = at

    def read(self, n: int | None = -1) -> bytes:
        left = self.at - self._data.tell()
        if left <= 0:
            raise Interrupted("client disconnected")
        return self._data.read(left if n is None or n < 0 else min(n, left))


def document(size: int, seed: int = 0) -> tuple[bytes, bytes]:
    """A small document held in memory, and its SHA-256."""
    data = PatternStream(size, seed).read()
    return data, hashlib.sha256(data).digest()


def _status(field_name: str) -> int:
    text = Path("/proc/self/status").read_text()
    match = re.search(rf"^{field_name}:\s+(\d+) kB$", text, re.MULTILINE)
    assert match, f"/proc/self/status has no {field_name}"
    return int(match.group(1)) * 1024


@dataclass
class RssGrowth:
    bytes: int = 0


@contextmanager
def peak_rss_growth() -> Iterator[RssGrowth]:
    """How far this process's peak resident memory rose above its resident memory at the start of the block
    (Linux: writing 5 to /proc/self/clear_refs resets the peak, VmHWM, to the current RSS)."""
    growth = RssGrowth()
    Path("/proc/self/clear_refs").write_text("5")
    start = _status("VmRSS")
    yield growth
    growth.bytes = _status("VmHWM") - start


def full_scale() -> bool:
    """The sizes the issue names (a 1 GiB document): ``RELIABILITY_SCALE=full``, as ``make reliability`` sets."""
    return os.environ.get("RELIABILITY_SCALE", "ci") == "full"


S3_KEY_ID = "docchain-test"  # moto accepts any credentials; SigV4 signing still runs on every request
S3_SECRET = "docchain-test-secret"
S3_REGION = "us-east-1"


@dataclass
class MotoServer:
    """One moto S3 server process on 127.0.0.1."""

    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @functools.cached_property
    def _client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=S3_REGION,
            aws_access_key_id=S3_KEY_ID,
            aws_secret_access_key=S3_SECRET,
            config=Config(s3={"addressing_style": "path"}),
        )

    def client(self) -> Any:
        """A plain boto3 client of the server (for what tests do behind the backend's back), made once per
        server: building a client loads and parses the whole S3 service model."""
        return self._client

    def config(self, bucket: str, **overrides: Any) -> S3Config:
        fields: dict[str, Any] = {
            "bucket": bucket,
            "endpoint_url": self.url,
            "region": S3_REGION,
            "access_key_id": S3_KEY_ID,
            "secret_access_key": SecretStr(S3_SECRET),
            "addressing_style": "path",
        }
        return S3Config(**(fields | overrides))

    def new_bucket(self) -> str:
        name = f"docchain-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_moto(log_dir: Path, port: int | None = None) -> MotoServer:
    port = port or free_port()
    log = log_dir / f"moto-{port}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = MotoServer(port, process, log)

    def up() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"moto exited with {process.returncode}: {log.read_text()[-2000:]}")
        return httpx.get(server.url + "/moto-api/", timeout=1).status_code < 500

    try:
        poll(up, timeout=30, what=f"moto on port {port}")
    except BaseException:
        server.stop()
        raise
    return server
