"""Local work on documents: hash files (with a progress bar for big ones), build and sign the EIP-712
registration and revocation. Nothing here talks to the network; the private key stays in memory here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from docchain.chain.hashing import sha256_file
from docchain.chain.typed_data import NAME, VERSION, Domain, Registration, Revocation, metadata_hash, sign
from docchain.chain.values import ZERO32, parse_hash32, to_hex
from docchain.client.errors import UsageError

PROGRESS_FROM = 32 * 1024 * 1024  # below this, hashing is over before a bar could be read
DEFAULT_DEADLINE_S = 7 * 24 * 3600  # a relayer may hold a submission during a node outage


@dataclass(frozen=True)
class HashedFile:
    path: Path
    size: int
    doc_hash: bytes

    @property
    def hex(self) -> str:
        return to_hex(self.doc_hash)


def check_files(paths: Sequence[Path]) -> list[Path]:
    """Validate every path before any work: exists, is a regular file, is readable."""
    seen: set[Path] = set()
    result = []
    for path in paths:
        if not path.exists():
            raise UsageError(f"no such file: {path}")
        if not path.is_file():
            raise UsageError(f"not a regular file: {path}")
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
        resolved = path.resolve()
        if resolved in seen:
            raise UsageError(f"{path} is given twice")
        seen.add(resolved)
        result.append(path)
    return result


def hash_files(paths: Sequence[Path], *, progress: Console | None = None) -> list[HashedFile]:
    """SHA-256 of each file, in parallel threads (hashlib releases the GIL), with a bar on ``progress`` for
    large files when it is a terminal."""
    sizes = [p.stat().st_size for p in paths]
    with _bars(progress, sum(sizes)) as bars:
        trackers = [bars.track(p.name, s) for p, s in zip(paths, sizes, strict=True)]  # bars in the files' order
        with ThreadPoolExecutor(max_workers=4) as pool:
            hashes = list(pool.map(sha256_file, paths, trackers))
    return [HashedFile(p, s, h) for p, s, h in zip(paths, sizes, hashes, strict=True)]


def hash_or_file(target: str, *, progress: Console | None = None) -> tuple[bytes, Path | None]:
    """A 0x… SHA-256 given directly, or the path of a file to hash (with a bar on ``progress``, as
    :func:`hash_files`)."""
    path = Path(target)
    if path.is_file():
        return hash_files([path], progress=progress)[0].doc_hash, path
    if target.startswith("0x") or (len(target) == 64 and all(c in "0123456789abcdefABCDEF" for c in target)):
        return parse_hash32(target, "document hash"), None
    raise UsageError(f"{target!r} is neither an existing file nor a 0x-prefixed 32-byte SHA-256")


class _Bars:
    """One hashing bar per file on a rich :class:`Progress`, or nothing at all."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress

    def track(self, name: str, size: int) -> Callable[[int], None] | None:
        if self.progress is None:
            return None
        bars, task = self.progress, self.progress.add_task(name, total=size)
        return lambda n: bars.advance(task, n)


@contextmanager
def _bars(console: Console | None, total: int) -> Iterator[_Bars]:
    # Drawn only where someone watches: a pipe, a log file or --json (no console) gets no bar and pays nothing.
    if console is None or not console.is_terminal or total < PROGRESS_FROM:
        yield _Bars(None)
        return
    columns = (TextColumn("hashing {task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        yield _Bars(progress)


def metadata_for(note: str | None) -> dict[str, Any]:
    return {"note": note} if note else {}


def sign_registration(
    domain: Domain,
    doc_hash: bytes,
    signer_key: bytes,
    signer: str,
    *,
    metadata: dict[str, Any],
    deadline_s: int = DEFAULT_DEADLINE_S,
    supersedes: bytes = ZERO32,
) -> tuple[Registration, bytes]:
    """The registration of ``doc_hash`` by ``signer`` and its signature; ``supersedes``: the docHash of the
    document it replaces (zero: none), signed with it so that no relayer can add or change it."""
    registration = Registration(
        doc_hash=doc_hash,
        signer=signer,
        deadline=int(time.time()) + deadline_s,
        metadata_hash=metadata_hash(metadata),
        supersedes=supersedes,
    )
    return registration, sign(domain, registration, signer_key)


def sign_revocation(
    domain: Domain,
    doc_hash: bytes,
    signer_key: bytes,
    signer: str,
    nonce: int,
    *,
    deadline_s: int = DEFAULT_DEADLINE_S,
) -> tuple[Revocation, bytes]:
    revocation = Revocation(doc_hash=doc_hash, signer=signer, nonce=nonce, deadline=int(time.time()) + deadline_s)
    return revocation, sign(domain, revocation, signer_key)


def domain_from_api(chain: dict[str, Any]) -> Domain:
    """The EIP-712 domain the API's registry uses (GET /v1/chain's ``eip712.domain``)."""
    eip712 = chain.get("eip712")
    try:
        raw = (
            eip712["domain"]
            if isinstance(eip712, dict) and isinstance(eip712.get("domain"), dict)
            else {
                "name": NAME,
                "version": VERSION,
                "chainId": chain["chainId"],
                "verifyingContract": chain["contract"],
            }
        )
    except KeyError as exc:
        raise UsageError(f"the API's /v1/chain answer lacks {exc.args[0]}") from None
    domain = Domain.from_json(raw)
    # Never sign for a domain that is not docchain's, whatever the server says.
    if (domain.name, domain.version) != (NAME, VERSION):
        raise UsageError(f"the API asks for signatures in domain {domain.name!r} v{domain.version}, not docchain's")
    return domain
