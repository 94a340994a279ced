"""The replicated set of storage backends a deployment names in ``DOCCHAIN_STORAGE`` (``local,s3,ipfs``).

- **Building it** (:func:`build`): each name becomes its backend, configured from the ``DOCCHAIN_S3_*`` and
  ``DOCCHAIN_IPFS_*`` settings. A wrong setting is a :class:`StorageSettingError` or a backend's
  ``StorageMisconfigured``, naming the setting (the API exits 2 before anything starts); a backend that
  cannot be reached is :class:`BackendUnavailable` from :meth:`Replicas.check` (exit 3).
- **Accepting a document** (:meth:`Replicas.store`): the first backend holds the bytes before the submission
  is accepted; the copies to the other backends are planned as :class:`~docchain.api.store.NewCopy` rows,
  written in the submission's own transaction (the outbox of copies). A submission stored on IPFS is sealed
  unless it asks for public storage: a fresh key, the ciphertext staged in the spool directory with its CID
  computed on the way, so that the key and the CID go back in the 202 (and nowhere else: no database row, no
  log line holds the key).
- **Making the copies** (:meth:`Replicas.copy`, run by :class:`CopyWorker`): a plain copy is read from a
  backend that holds the document and written to its target, hash-checked at both ends; a sealed one is
  added to IPFS from its staged ciphertext, which is removed once IPFS holds it. The staged ciphertext is a
  file of the accepting process's host, and replicas run on several hosts, so each sealed copy records the
  instance that staged it (``staged_by``, the id kept in the data directory, :func:`instance_id`) and is made
  by that instance's own :class:`StagedCopier`, which every API process runs (one per data directory at a
  time, under an ``flock``); the pipeline's copy worker, under the pipeline's lease, makes the copies no
  instance staged. The same :class:`CopyWorker` loop serves both, only its queue differs: one home for the
  copy logic, retries and backoff, and the outbox row keeps the copy across restarts of its instance.
- **Reading back** (:meth:`Replicas.fetch`): the stored copies in the configured order (then those a read
  found failed, should an operator have restored them), each read into a file in the spool directory while
  its hash is checked; a copy that is missing, unreachable or altered is skipped for the next one, so a
  caller never serves bytes before they have matched the document's hash.

Backends are synchronous and streaming (api/storage/base.py): callers run these methods in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from docchain.api.lifecycle import CopyState
from docchain.api.service_loop import BackgroundLoop
from docchain.api.storage.base import (
    CHUNK,
    Backend,
    BackendUnavailable,
    HashMismatch,
    NotStored,
    Placement,
    StorageCorrupted,
    StorageError,
    StorageMisconfigured,
)
from docchain.api.storage.hashing import VerifyingReader
from docchain.api.store import CopyRecord, NewCopy, Store
from docchain.chain.errors import InvalidInput
from docchain.chain.values import to_hex

if TYPE_CHECKING:
    from docchain.api.db import Database
    from docchain.api.settings import Settings
    from docchain.api.storage.ipfs import IpfsStorage

log = logging.getLogger("docchain.api.storage")

KNOWN = ("local", "s3", "ipfs")
# The copy worker's retries: 2 s doubling to 10 min, given up after MAX_COPY_ATTEMPTS (about 8 h of a
# backend that stays down); a new submission of the document queues a failed copy again.
FIRST_BACKOFF_S = 2.0
MAX_BACKOFF_S = 600.0
MAX_COPY_ATTEMPTS = 60
COPY_BATCH = 32  # due copies read per step
COPIES_AT_ONCE = 4  # transfers in flight: enough to overlap a slow backend's latency, few enough for memory
MIN_STEP_S = 0.2  # the copy worker's shortest interval between two reads of its queue
HEALTH_MAX_AGE_S = 5.0  # /readyz reuses the backends' last check this long: a load balancer's probes stay cheap
STOP_WAIT_S = 3.0  # a stopping API waits this long for the copies in flight, then cancels them
HEALTH_TIMEOUT_S = 2.0  # a backend whose check takes longer is reported as not answering
READ_PREFIX = ".read-"  # a document read back, before it is served
STAGING_PREFIX = ".staging-"  # a sealed copy being staged (api/storage/ipfs.py: stage_sealed)
SPOOL_MAX_AGE_S = 3600.0  # a read-back file older than this outlived its response
INSTANCE_FILE = "instance-id"  # in the data directory: who stages into its spool
STAGED_LOCK = "staged-copies.lock"  # in the data directory: one StagedCopier per spool at a time


class StorageSettingError(InvalidInput):
    """A storage setting is missing or wrong; the message names the setting."""


class KeyRequired(StorageError):
    """The document is held only sealed (encrypted on IPFS), and the request brought no key."""


class CopyImpossible(StorageError):
    """A copy that no retry can make (its source is gone for good, its backend no longer configured)."""


# ------------------------------------------------------------------ building the set from the settings


def backend_names(settings: Settings) -> list[str]:
    """``DOCCHAIN_STORAGE`` checked: known names, each once, at least one."""
    names = list(settings.storage)
    if not names:
        raise StorageSettingError("DOCCHAIN_STORAGE is empty: name at least one backend (local, s3, ipfs)")
    for name in names:
        if name not in KNOWN:
            raise StorageSettingError(
                f"DOCCHAIN_STORAGE names an unknown backend {name!r:.40}; known: {', '.join(KNOWN)}"
            )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise StorageSettingError(f"DOCCHAIN_STORAGE names {repeated[0]} more than once")
    if names[0] == "ipfs" and len(names) > 1:
        # the other copies are made from a plain copy, and IPFS first holds a sealed document only as ciphertext
        raise StorageSettingError(
            f"DOCCHAIN_STORAGE={','.join(names)}: put local or s3 first when other backends follow ipfs "
            "(their copies are made from plain bytes; ipfs alone is fine)"
        )
    return names


def build(settings: Settings) -> Replicas:
    """The backends ``DOCCHAIN_STORAGE`` names, configured; :class:`StorageSettingError` on a bad setting.
    Nothing is contacted here (see :meth:`Replicas.check`)."""
    backends: list[Backend] = []
    for name in backend_names(settings):
        if name == "local":
            from docchain.api.storage.local import LocalStorage

            backends.append(LocalStorage(settings.resolved_storage_dir))
        elif name == "s3":
            backends.append(_s3(settings))
        else:
            backends.append(_ipfs(settings))
    return Replicas(backends, settings.spool_dir, instance=instance_id(settings.data_dir))


def instance_id(data_dir: Path) -> str:
    """This instance's stable id, created on first use in ``data_dir`` beside the spool it names: a restart
    keeps it, so the sealed copies staged before are still its own. Processes sharing a data directory
    (``--workers``) share the id, as they share the spool."""
    path = Path(data_dir) / INSTANCE_FILE
    with contextlib.suppress(FileNotFoundError):
        found = path.read_text().strip()
        if found:
            return found
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{INSTANCE_FILE}-")
    with os.fdopen(fd, "w") as out:
        out.write(uuid.uuid4().hex)
    try:
        os.link(name, path)  # two processes starting at once: the first link wins, the other reads it
    except FileExistsError:
        pass
    finally:
        os.unlink(name)
    return path.read_text().strip()


def _s3(settings: Settings) -> Backend:
    """The S3 backend; its configuration refuses a missing bucket or half a key pair
    (:class:`~docchain.api.storage.base.StorageMisconfigured`, naming the setting), and its ``check`` missing
    credentials."""
    from docchain.api.storage.s3 import S3Config, S3Storage

    config = S3Config(
        bucket=settings.s3_bucket or "",
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        prefix=settings.s3_prefix,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=settings.s3_secret_access_key,
        addressing_style=settings.s3_addressing_style,
    )
    return S3Storage(config)


def _ipfs(settings: Settings) -> Backend:
    from docchain.api.storage.ipfs import IpfsConfig, IpfsStorage

    if not settings.ipfs_api_url.startswith(("http://", "https://")):
        raise StorageSettingError(f"DOCCHAIN_IPFS_API_URL must be an http(s) URL, got {settings.ipfs_api_url!r:.80}")
    config = IpfsConfig(
        api_url=settings.ipfs_api_url, gateway_url=settings.ipfs_gateway_url, timeout=settings.ipfs_timeout_s
    )
    return IpfsStorage(config)


# ------------------------------------------------------------------ results


@dataclass(frozen=True, slots=True)
class Intake:
    """What storing a submission's upload produced: the copies to record with it (the first backend's stored,
    the others pending), the document's size and, for a sealed IPFS copy, its key and CID for the 202."""

    size: int
    copies: list[NewCopy]
    key: bytes | None = None
    cid: str | None = None
    key_given_earlier: bool = False  # the sealed copy existed: its key went to the submission that made it


@dataclass(frozen=True, slots=True)
class Miss:
    """A copy a read skipped, and why."""

    copy: CopyRecord
    error: StorageError | InvalidInput


@dataclass(frozen=True, slots=True)
class Fetched:
    """A document read back into ``path`` (the caller serves it, then removes it), hash-checked."""

    path: Path
    backend: str
    size: int


class ChunkReader:
    """A minimal read-only file object over an iterator of chunks, so that a backend's ``put`` can read what
    another backend's ``open`` yields without the document being held in memory."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self._buffer + b"".join(self._chunks)
        while len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out


@dataclass(frozen=True, slots=True)
class BackendState:
    """One backend's last readiness check: ``state`` is ``ok`` or why not, in words without server paths."""

    backend: str
    state: str

    @property
    def ok(self) -> bool:
        return self.state == "ok"


# ------------------------------------------------------------------ the set


class Replicas:
    """The configured backends in order: the first holds a document before its submission is accepted."""

    def __init__(self, backends: Sequence[Backend], spool: Path, *, instance: str | None = None) -> None:
        if not backends:
            raise StorageSettingError("DOCCHAIN_STORAGE is empty: name at least one backend (local, s3, ipfs)")
        self.backends = list(backends)
        self.spool = Path(spool)
        self.instance = instance  # recorded with every sealed copy staged in ``spool``
        self._states: list[BackendState] = []
        self._states_at = float("-inf")
        self._refreshing: asyncio.Lock | None = None

    @property
    def names(self) -> list[str]:
        return [b.name for b in self.backends]

    @property
    def primary(self) -> Backend:
        return self.backends[0]

    def backend(self, name: str) -> Backend | None:
        return next((b for b in self.backends if b.name == name), None)

    @property
    def ipfs(self) -> IpfsStorage | None:
        from docchain.api.storage.ipfs import IpfsStorage

        return next((b for b in self.backends if isinstance(b, IpfsStorage)), None)

    def check(self) -> None:
        """Every backend usable now (the spool directory too); :class:`BackendUnavailable` names the first that
        is not."""
        try:
            self.spool.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BackendUnavailable("spool", f"cannot create {self.spool}: {exc.strerror or exc}") from exc
        for backend in self.backends:
            backend.check()

    async def states(self) -> list[BackendState]:
        """Every backend's check, each bounded by :data:`HEALTH_TIMEOUT_S` and run at most once per
        :data:`HEALTH_MAX_AGE_S` (concurrent callers share one run). The first backend's decides readiness:
        an upload waits for it."""
        if self._refreshing is None:
            self._refreshing = asyncio.Lock()
        async with self._refreshing:
            if time.monotonic() - self._states_at >= HEALTH_MAX_AGE_S:
                self._states = list(await asyncio.gather(*(self._state(b) for b in self.backends)))
                self._states_at = time.monotonic()
        return self._states

    async def _state(self, backend: Backend) -> BackendState:
        try:
            # a hung backend's thread outlives the wait, bounded by the backend's own timeout
            await asyncio.wait_for(asyncio.to_thread(backend.check), timeout=HEALTH_TIMEOUT_S)
        except TimeoutError:
            state = f"no answer within {HEALTH_TIMEOUT_S:g} s"
        except StorageMisconfigured as exc:
            state = f"misconfigured ({exc.setting})"
        except StorageError:
            state = "unavailable"
        else:
            return BackendState(backend.name, "ok")
        log.warning("storage backend not ready", extra={"backend": backend.name, "error": state})
        return BackendState(backend.name, state)

    def sweep_spool(self, older_than_s: float = SPOOL_MAX_AGE_S) -> None:
        """Remove read-back files that outlived their response and half-sealed files (a process killed while
        writing one); files of this age are no request's any more, whichever process of the service wrote
        them."""
        limit = time.time() - older_than_s
        with contextlib.suppress(FileNotFoundError):
            for path in [*self.spool.glob(f"{READ_PREFIX}*"), *self.spool.glob(f"{STAGING_PREFIX}*")]:
                with contextlib.suppress(FileNotFoundError):
                    if path.stat().st_mtime < limit:
                        path.unlink()

    # ---------------------------------------------------------- accept

    def store(self, doc_hash: bytes, upload: BinaryIO, *, public: bool, sealed_cid: str | None = None) -> Intake:
        """Put ``upload`` into the first backend (:class:`BackendUnavailable` when it cannot take it,
        :class:`HashMismatch` when the bytes are not the document) and plan the other copies. On IPFS the
        document is sealed unless ``public``.

        ``sealed_cid`` names a sealed IPFS copy the document already has (stored or queued): a duplicate or a
        retried request then reuses it instead of sealing a second copy with a fresh key nobody asked for."""
        ipfs = self.ipfs
        sealed = ipfs is not None and not public
        if sealed and sealed_cid is not None:
            return self._store_beside_sealed(doc_hash, upload, sealed_cid)
        if sealed and self.primary is ipfs:
            return self._store_sealed_first(doc_hash, upload)
        placement = self.primary.put(doc_hash, upload)
        copies = [NewCopy(placement.backend, placement.locator, placement.sealed, placement.size, CopyState.STORED)]
        key: bytes | None = None
        cid = placement.locator if self.primary is ipfs else None
        for backend in self.backends[1:]:
            if sealed and backend is ipfs:
                key = _new_key()
                staged, cid, size = self._stage(doc_hash, self._again(doc_hash, upload, placement), key)
                copies.append(
                    NewCopy(
                        backend.name, cid, True, size, CopyState.PENDING, staged=str(staged), staged_by=self.instance
                    )
                )
            else:
                if backend is ipfs:
                    cid = self._plain_cid(doc_hash, upload, placement)
                copies.append(NewCopy(backend.name, "", False, None, CopyState.PENDING))
        return Intake(placement.size, copies, key, cid)

    def _store_beside_sealed(self, doc_hash: bytes, upload: BinaryIO, cid: str) -> Intake:
        plain = [b for b in self.backends if b is not self.ipfs]
        if not plain:  # ipfs alone: nothing to write, yet the upload must still be the signed document
            reader = VerifyingReader(upload, doc_hash)
            while reader.read(CHUNK):
                pass
            return Intake(reader.size, [], None, cid, key_given_earlier=True)
        placement = plain[0].put(doc_hash, upload)  # plain[0] is the first backend: ipfs is never first beside others
        copies = [NewCopy(placement.backend, placement.locator, placement.sealed, placement.size, CopyState.STORED)]
        copies += [NewCopy(b.name, "", False, None, CopyState.PENDING) for b in plain[1:]]
        return Intake(placement.size, copies, None, cid, key_given_earlier=True)

    def _store_sealed_first(self, doc_hash: bytes, upload: BinaryIO) -> Intake:
        ipfs = self.ipfs
        assert ipfs is not None
        key = _new_key()
        staged, cid, size = self._stage(doc_hash, upload, key)
        try:
            with open(staged, "rb") as ciphertext:
                placement = ipfs.add_sealed(doc_hash, ciphertext, cid)
        finally:
            staged.unlink(missing_ok=True)
        copies = [NewCopy(ipfs.name, placement.locator, True, placement.size, CopyState.STORED)]
        copies += [NewCopy(b.name, "", False, None, CopyState.PENDING) for b in self.backends[1:]]
        return Intake(size, copies, key, placement.locator)

    def _stage(self, doc_hash: bytes, stream: BinaryIO, key: bytes) -> tuple[Path, str, int]:
        """Seal ``stream`` into the spool directory; the staged file, its CID and the plaintext's size."""
        from docchain.api.storage.ipfs import stage_sealed

        staged = stage_sealed(stream, key, self.spool, expected_hash=doc_hash)
        return staged.path, staged.cid, staged.size

    def _plain_cid(self, doc_hash: bytes, upload: BinaryIO, placement: Placement) -> str:
        """The CID a public IPFS copy will have, told to the submitter at once (kubo's answer is compared
        with the same computation when the copy is made)."""
        from docchain.chain.cid import cid_of_stream

        return cid_of_stream(self._again(doc_hash, upload, placement))

    def _again(self, doc_hash: bytes, upload: BinaryIO, placement: Placement) -> BinaryIO:
        """The upload from its start once more: rewound when it can be (a spooled upload), else read back
        from the first backend."""
        if upload.seekable():
            upload.seek(0)
            return upload
        return ChunkReader(self.primary.open(doc_hash, placement))  # type: ignore[return-value]

    # ---------------------------------------------------------- copies

    def copy(self, row: CopyRecord, holders: Sequence[CopyRecord]) -> Placement:
        """Make the pending copy ``row`` from its staged ciphertext (sealed) or from one of ``holders`` (the
        document's stored copies). :class:`CopyImpossible` when no attempt can ever make it; any other
        :class:`StorageError` is worth another attempt later."""
        target = self.backend(row.backend)
        if target is None:
            raise CopyImpossible(row.backend, f"backend {row.backend} is no longer in DOCCHAIN_STORAGE")
        doc_hash = bytes.fromhex(row.doc_hash[2:])
        if row.sealed:
            return self._add_staged(row, doc_hash)
        sources = [h for h in self._ordered(holders) if not h.sealed and h.backend != row.backend]
        if not sources:
            raise CopyImpossible(row.backend, f"no backend holds a plain copy of {row.doc_hash} to copy from")
        problems: list[str] = []
        for source in sources:
            backend = self.backend(source.backend)
            assert backend is not None  # _ordered keeps the configured backends only
            try:
                chunks = backend.open(doc_hash, _placement(source))
                return target.put(doc_hash, ChunkReader(chunks))  # type: ignore[arg-type]
            except BackendUnavailable as exc:
                if exc.backend == target.name:
                    raise
                problems.append(str(exc))
            except (StorageError, HashMismatch) as exc:  # the source's copy is gone or altered: the next one
                if isinstance(exc, StorageError) and exc.backend == target.name:
                    raise
                problems.append(str(exc))
        raise StorageError(row.backend, "no source copy could be read: " + "; ".join(problems))

    def _add_staged(self, row: CopyRecord, doc_hash: bytes) -> Placement:
        ipfs = self.ipfs
        if ipfs is None or ipfs.name != row.backend:
            raise CopyImpossible(row.backend, "a sealed copy goes to the ipfs backend, which is not configured")
        staged = self._staged_path(row)
        try:
            ciphertext = open(staged, "rb")  # noqa: SIM115 (closed below)
        except FileNotFoundError:
            raise CopyImpossible(
                row.backend, f"the staged ciphertext {staged} is gone: submit the document again for a sealed copy"
            ) from None
        with ciphertext:
            return ipfs.add_sealed(doc_hash, ciphertext, row.locator)  # type: ignore[arg-type]

    def _staged_path(self, row: CopyRecord) -> Path:
        if not row.staged:
            raise CopyImpossible(row.backend, "the sealed copy has no staged ciphertext")
        return Path(row.staged)

    def discard_staged_of(self, intake: Intake) -> None:
        """Remove what an acceptance staged when its submission was not recorded after all."""
        for copy in intake.copies:
            if copy.staged:
                Path(copy.staged).unlink(missing_ok=True)

    def discard_staged(self, row: CopyRecord) -> None:
        """Remove a sealed copy's staged ciphertext once IPFS holds it (or it can never be copied)."""
        if row.staged:
            Path(row.staged).unlink(missing_ok=True)

    # ---------------------------------------------------------- reads

    def _ordered(self, copies: Sequence[CopyRecord]) -> list[CopyRecord]:
        """The copies of configured backends worth reading: the stored ones in the configured order, then
        those a read found altered or gone (an operator may have restored them; the hash check decides)."""
        rank = {name: i for i, name in enumerate(self.names)}
        held = [c for c in copies if c.backend in rank and c.locator and c.state is not CopyState.PENDING]
        return sorted(held, key=lambda c: (c.state is not CopyState.STORED, rank[c.backend]))

    def legacy_copies(self, doc_hash: bytes) -> list[CopyRecord]:
        """A document stored before copies were recorded (migration 0005) is a file of the local store."""
        local = self.backend("local")
        if local is None or not local.exists(doc_hash, _placement(_legacy_local(doc_hash))):
            return []
        return [_legacy_local(doc_hash)]

    def fetch(self, doc_hash: bytes, copies: Sequence[CopyRecord], key: bytes | None, misses: list[Miss]) -> Fetched:
        """Read the document from the first copy that yields it intact, into a file in the spool directory;
        each copy skipped on the way is added to ``misses`` with its error.

        Sealed copies are read only with ``key``. Raises :class:`NotStored` when no backend holds it,
        :class:`KeyRequired` when only sealed copies do and no key came, :class:`BackendUnavailable` when a
        holder could not be reached, :class:`StorageCorrupted` when every copy read was altered."""
        doc = to_hex(doc_hash)
        ordered = self._ordered(copies) if copies else [_legacy_local(doc_hash)] if self.backend("local") else []
        readable = [c for c in ordered if not c.sealed or key is not None]
        if not readable:
            if ordered:
                raise KeyRequired(
                    "ipfs",
                    f"{doc} is stored sealed only: send its key (the receipt's storage.ipfs.key) in X-Docchain-Key",
                )
            raise NotStored("storage", f"no configured backend holds {doc}")
        for copy in readable:
            try:
                return self._read_into_spool(doc_hash, copy, key)
            except (StorageError, InvalidInput) as exc:
                log.warning(
                    "stored copy unreadable; trying the next backend",
                    extra={"doc": doc, "backend": copy.backend, "error": str(exc)},
                )
                misses.append(Miss(copy, exc))
        reasons = "; ".join(f"{m.copy.backend}: {_told(m.error)}" for m in misses)
        if any(isinstance(m.error, BackendUnavailable) for m in misses):
            raise BackendUnavailable("storage", f"no backend holding {doc} could serve it ({reasons})")
        wrong_key = [m.error for m in misses if isinstance(m.error, InvalidInput)]
        if wrong_key:
            raise InvalidInput(f"X-Docchain-Key does not open the sealed copy of {doc}: {wrong_key[0]}")
        if len(readable) < len(ordered):  # the plain copies failed, a sealed one may still hold it: ask for the key
            raise KeyRequired("ipfs", f"{doc} is held sealed only now ({reasons}): send its key in X-Docchain-Key")
        corrupted = [m.error for m in misses if isinstance(m.error, StorageCorrupted)]
        if corrupted:
            # every copy altered: data loss the operator must see; the client gets the hashes, no server detail
            log.error(
                "every stored copy is altered",
                extra={"doc": doc, "errors": "; ".join(f"{m.copy.backend}: {m.error}" for m in misses)},
            )
            raise corrupted[0]
        if all(isinstance(m.error, NotStored) for m in misses):
            raise NotStored("storage", f"no backend holds {doc} any more ({reasons})")
        raise StorageError("storage", f"no copy of {doc} could be read ({reasons})")

    def _read_into_spool(self, doc_hash: bytes, copy: CopyRecord, key: bytes | None) -> Fetched:
        backend = self.backend(copy.backend)
        assert backend is not None
        placement = _placement(copy)
        self.spool.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.spool, prefix=READ_PREFIX)
        path = Path(name)
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                if copy.sealed:
                    ipfs = self.ipfs
                    assert ipfs is not None and ipfs is backend
                    chunks = ipfs.open(doc_hash, placement, key=key)
                else:
                    chunks = backend.open(doc_hash, placement)
                for chunk in chunks:
                    out.write(chunk)
                    size += len(chunk)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return Fetched(path, copy.backend, size)


def _told(error: StorageError | InvalidInput) -> str:
    """What a client is told of a skipped copy: the kind of failure, never a backend's own wording (paths,
    endpoints and buckets stay in the log line :meth:`Replicas.fetch` writes)."""
    if isinstance(error, NotStored):
        return "copy missing"
    if isinstance(error, StorageCorrupted):
        return f"copy altered (hashes to {to_hex(error.actual)})"
    if isinstance(error, BackendUnavailable):
        return "unreachable"
    if isinstance(error, InvalidInput):
        return "the key does not open it"
    return "unreadable"


def _placement(copy: CopyRecord) -> Placement:
    return Placement(copy.backend, copy.locator, copy.size or 0, copy.sealed)


def _legacy_local(doc_hash: bytes) -> CopyRecord:
    return CopyRecord(
        id=0,
        doc_hash=to_hex(doc_hash),
        backend="local",
        locator=doc_hash.hex(),
        sealed=False,
        size=None,
        state=CopyState.STORED,
        attempts=0,
        next_attempt_at=None,
        last_error=None,
        staged=None,
    )


def _new_key() -> bytes:
    from docchain.chain.sealed import new_key

    return new_key()


# ------------------------------------------------------------------ the copy worker


def backoff(attempts: int) -> float:
    """Seconds before the next attempt at a copy that has failed ``attempts`` times."""
    return min(FIRST_BACKOFF_S * 2 ** max(attempts - 1, 0), MAX_BACKOFF_S)


class CopyWorker(BackgroundLoop):
    """Makes the pending copies of one queue: with ``owner`` None, those no instance staged, in the pipeline
    beside the anchoring worker (under its lease, so one process copies them for a database); with an
    ``owner``, the sealed copies that instance staged (:class:`StagedCopier`). The due ones, then a sleep until
    the next is due, a wake-up (a submission was accepted) or the safety poll. Starting makes every pending
    copy of the queue due at once (a restart). Every attempt's outcome is written before the next: a restart
    resumes from the database, and a copy made but not yet recorded is made again (a put of a held document
    is a no-op)."""

    component = "copy"
    logger = log
    min_step_s = MIN_STEP_S  # under a stream of submissions, one look at the queue per MIN_STEP_S, not one each

    def __init__(self, db: Database, replicas: Replicas, *, idle_s: float, owner: str | None = None) -> None:
        super().__init__()
        self.store = Store(db)
        self.replicas = replicas
        self.idle_s = idle_s
        self.owner = owner
        self._started = False  # the run's first step makes the queue's pending copies due

    def restart(self) -> None:
        super().restart()
        self._started = False

    async def _take_step(self) -> float:
        if not self._started:
            await self.store.copies_due_now(self.owner)
            self._started = True
        return await self.step()

    async def step(self) -> float:
        """Attempt every due copy; returns how long to sleep."""
        due = await self.store.due_copies(time.time(), COPY_BATCH, self.owner)
        limit = asyncio.Semaphore(COPIES_AT_ONCE)

        async def attempt(row: CopyRecord) -> None:
            async with limit:
                if not self._stopping.is_set():
                    await self.attempt(row)

        await asyncio.gather(*(attempt(row) for row in due))
        if len(due) == COPY_BATCH:
            return 0.0
        next_due = await self.store.next_copy_due(self.owner)
        if next_due is None:
            return self.idle_s
        return min(max(next_due - time.time(), 0.0), self.idle_s)

    async def attempt(self, row: CopyRecord) -> None:
        holders = await self.store.copies_of(row.doc_hash)
        try:
            placement = await asyncio.to_thread(self.replicas.copy, row, holders)
        except CopyImpossible as exc:
            log.error("copy given up", extra={"doc": row.doc_hash, "backend": row.backend, "error": str(exc)})
            await self.store.copy_retry(row.id, str(exc), None)
            self.replicas.discard_staged(row)
        except (StorageError, InvalidInput, OSError) as exc:
            attempts = row.attempts + 1
            again = None if attempts >= MAX_COPY_ATTEMPTS else time.time() + backoff(attempts)
            level = logging.ERROR if again is None else logging.WARNING
            log.log(
                level,
                "copy failed" + ("; given up" if again is None else "; will retry"),
                extra={"doc": row.doc_hash, "backend": row.backend, "attempts": attempts, "error": str(exc)},
            )
            await self.store.copy_retry(row.id, str(exc), again)
            if again is None:
                self.replicas.discard_staged(row)
        else:
            await self.store.copy_stored(row.id, placement.locator, placement.size)
            self.replicas.discard_staged(row)
            log.info("copy stored", extra={"doc": row.doc_hash, "backend": row.backend, "locator": placement.locator})


class StagedCopier:
    """The sealed copies this instance staged, made by an API process of its host (the module docstring says
    why): a :class:`CopyWorker` on the instance's queue, run by whichever process sharing the data directory
    holds its ``flock`` (the others stand by, retrying each safety poll, so that ``--workers`` processes do
    not attempt one copy twice). The lock vanishes with its process; a restart takes it again."""

    def __init__(self, db: Database, replicas: Replicas, data_dir: Path, *, idle_s: float) -> None:
        self.worker = CopyWorker(db, replicas, idle_s=idle_s, owner=replicas.instance)
        self.lock_path = Path(data_dir) / STAGED_LOCK
        self.idle_s = idle_s
        self._task: asyncio.Task[None] | None = None
        self._locked = False

    def wake(self) -> None:
        self.worker.wake()

    def start(self) -> None:
        if self.worker.owner is not None and self.worker.replicas.ipfs is not None:
            self._task = asyncio.create_task(self._run(), name="staged-copies")

    async def _run(self) -> None:
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:  # another process of this data directory makes them
                    await asyncio.sleep(self.idle_s)
            self._locked = True
            await self.worker.run()
        finally:
            os.close(fd)  # releases the lock

    async def stop(self) -> None:
        if self._task is None:
            return
        self.worker.stop()
        if not self._locked:  # standing by: no copy in flight
            self._task.cancel()
        _, stuck = await asyncio.wait([self._task], timeout=STOP_WAIT_S)
        for task in stuck:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
