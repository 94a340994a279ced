"""What the storage tests share: a backend under test with its test-only powers (BackendCase), documents of
any size generated as a stream (PatternStream), and the peak-RSS probe behind the memory bounds."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from docchain.api.storage.base import Backend, Placement

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
