"""Document storage on real servers under faults (issue 21). The API keeps documents in its local store, an S3
bucket and an IPFS node: moto's S3 server (SigV4 over HTTP) and a kubo node, each a process of its own on
loopback, started, killed and started again by these tests.

- **A backend down under load**: ``DOCCHAIN_STORAGE=local,s3,ipfs``; in the middle of a load of submissions with
  their files, the S3 server and then the kubo daemon are killed and started again on the same port a few
  seconds later. Every accepted submission is anchored exactly once, the first backend keeps accepting, and
  every copy ends ``stored`` on every backend, checked on the servers themselves; how soon after each backend
  returned goes into the report.
- **A SIGKILL in the middle of a large upload** (several S3 parts): the API killed while it writes an upload into
  its first backend before accepting it (S3 first, then local first), and while its copy worker copies an
  accepted document to S3. After each restart no backend is reported to hold a copy it does not hold whole,
  nothing but a complete object ever sits under a document's key and no partial file under its name in the
  local store, and a document whose upload was cut is unknown until it is sent again; what an operator must
  reclaim (incomplete multipart uploads, temporary files) goes into the report.
- **Two replicas sharing one bucket** and one PostgreSQL, each on a host of its own as far as files go (a data
  directory each, its spool private in a mount namespace where the machine allows one): every document sent to
  both at once by two signers. One object per document, every S3 copy stored, every read through either replica
  the exact bytes, and every sealed IPFS copy stored, those staged by the replica whose pipeline stands by
  too (each replica makes the sealed copies it staged: the working pipeline cannot read another host's spool).

moto keeps its state in memory, so a restarted moto server starts empty. Its recorder journals each request to a
file and the restarted server replays the journal: the bucket comes back as a server's disk would bring it
back. Only objects written by a single PUT survive a replay (a multipart upload's parts name an upload id the
replay does not recreate); every document of the outage's load is far below the 5 MiB part size.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from docchain.api.storage.s3 import PART_SIZE, UPLOAD_THREADS
from tests.api.api_support import Api, Signer, new_signer
from tests.reliability.conftest import Scale
from tests.reliability.harness import (
    Chain,
    Clients,
    DbProbe,
    api_keys,
    assert_exactly_once,
    book,
    key_of,
    kill_api,
    ledger,
    mib,
    peak_rss,
    pipeline_pid,
    plan,
    poll,
    server_5xx,
    servers,
    sqlite_url,
    start_together,
    wait_all_anchored,
)
from tests.reliability.report import ROOT, Entry, Report
from tests.storage import S3_KEY_ID, S3_REGION, S3_SECRET, MiB, MotoServer, PatternStream, start_moto
from tests.storage.kubo import DEFAULT_BINARY, Kubo, kubo_binary, start_kubo

RECOVERY_BOUND_S = 120  # the longest the copies may take once a backend is back before the test fails
BACKENDS = ("local", "s3", "ipfs")

# ---------------------------------------------------------------------------------------------- servers


@dataclass
class S3Server:
    """moto's S3 server, which a test may kill and start again on the same port. With ``journal``, moto's
    recorder appends every request to that file and a restart replays it (the module's docstring says why)."""

    server: MotoServer
    log_dir: Path
    journal: Path | None

    @property
    def pid(self) -> int:
        return self.server.process.pid

    def kill(self) -> None:
        self.server.process.kill()
        self.server.process.wait(10)

    def restart(self) -> None:
        self.server = start_moto(self.log_dir, self.server.port)
        if self.journal is not None:
            r = httpx.post(self.server.url + "/moto-api/recorder/replay-recording", timeout=300)
            assert r.status_code == 200, f"moto could not replay its journal: {r.status_code} {r.text[:300]}"

    def stop(self) -> None:
        self.server.stop()


@dataclass
class KuboDaemon:
    """A kubo node of the test's own, which the test may kill and start again on the same ports (the API keeps
    the RPC URL it was given)."""

    node: Kubo
    process: subprocess.Popen[bytes]
    starts: int = 1

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)

    def restart(self, timeout: float = 60.0) -> None:
        config_path = self.node.repo / "config"
        config = json.loads(config_path.read_text())
        config["Addresses"]["API"] = _multiaddr(self.node.api_url)
        config["Addresses"]["Gateway"] = _multiaddr(self.node.gateway_url)
        config_path.write_text(json.dumps(config, indent=2))
        self.starts += 1
        log_path = self.node.repo / f"daemon-{self.starts}.log"
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                [str(self.node.binary), "daemon", "--offline"],
                env=self.node.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

        def ready() -> bool:
            text = log_path.read_text(errors="replace")
            if self.process.poll() is not None:
                raise AssertionError(f"kubo exited with {self.process.returncode} on its restart:\n{text[-2000:]}")
            return "Daemon is ready" in text

        poll(ready, timeout, what="kubo to start again")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def pins(self) -> set[str]:
        return set(self.node.cli("pin", "ls", "--type=recursive", "--quiet").split())


def _multiaddr(url: str) -> str:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return f"/ip4/{host}/tcp/{port}"


def _s3_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, journaled: bool) -> Iterator[S3Server]:
    journal = tmp_path / "moto-journal.jsonl" if journaled else None
    if journal is not None:  # read by the moto process at its start (and at its restart)
        monkeypatch.setenv("MOTO_ENABLE_RECORDING", "true")
        monkeypatch.setenv("MOTO_RECORDER_FILEPATH", str(journal))
    log_dir = tmp_path / "moto"
    log_dir.mkdir()
    server = S3Server(start_moto(log_dir), log_dir, journal)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Server]:
    yield from _s3_server(tmp_path, monkeypatch, journaled=False)


@pytest.fixture
def journaled_s3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Server]:
    yield from _s3_server(tmp_path, monkeypatch, journaled=True)


@pytest.fixture
def kubo_daemon(tmp_path: Path) -> Iterator[KuboDaemon]:
    binary = kubo_binary()
    if binary is None:  # CI builds it in its set-up: a missing node is a broken set-up, not a reason to skip
        pytest.fail(f"no kubo binary at $DOCCHAIN_KUBO or {DEFAULT_BINARY}: run `make kubo`")
    repo = tmp_path / "kubo"
    repo.mkdir()
    node, process = start_kubo(binary, repo)
    daemon = KuboDaemon(node, process)
    try:
        yield daemon
    finally:
        daemon.stop()


def storage_env(order: str, s3: MotoServer, bucket: str, kubo: Kubo) -> dict[str, str]:
    """The API's storage settings: the backends in ``order``, on these servers."""
    return {
        "DOCCHAIN_STORAGE": order,
        "DOCCHAIN_S3_ENDPOINT_URL": s3.url,
        "DOCCHAIN_S3_BUCKET": bucket,
        "DOCCHAIN_S3_REGION": S3_REGION,
        "DOCCHAIN_S3_ACCESS_KEY_ID": S3_KEY_ID,
        "DOCCHAIN_S3_SECRET_ACCESS_KEY": S3_SECRET,
        "DOCCHAIN_S3_ADDRESSING_STYLE": "path",
        "DOCCHAIN_IPFS_API_URL": kubo.api_url,
    }


# ---------------------------------------------------------------------------------------------- what the servers hold


@dataclass(frozen=True)
class Copy:
    """A row of the API's storage_copies table."""

    doc: str  # 0x-prefixed hex docHash
    backend: str
    locator: str
    sealed: bool
    state: str
    attempts: int
    error: str | None


def copies(probe: DbProbe) -> list[Copy]:
    rows = probe.rows("SELECT doc_hash, backend, locator, sealed, state, attempts, last_error FROM storage_copies")
    return [Copy(str(d), str(b), str(loc), bool(s), str(st), int(a), e) for d, b, loc, s, st, a, e in rows]


def pending_copies(probe: DbProbe, backend: str | None = None) -> int:
    where = "" if backend is None else f" AND backend = '{backend}'"
    return int(probe.rows(f"SELECT count(*) FROM storage_copies WHERE state = 'pending'{where}")[0][0])


def wait_copies_settled(probe: DbProbe, timeout: float) -> float:
    """Poll until no copy is pending; the seconds it took."""
    start = time.monotonic()
    poll(lambda: pending_copies(probe) == 0, timeout, interval=0.25, what="every storage copy made")
    return time.monotonic() - start


def s3_objects(client: Any, bucket: str) -> dict[str, int]:
    """Every object in the bucket: key -> size."""
    out: dict[str, int] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        out.update({o["Key"]: int(o["Size"]) for o in page.get("Contents", [])})
    return out


def s3_incomplete(client: Any, bucket: str) -> dict[str, int]:
    """The bucket's incomplete multipart uploads: upload id -> parts uploaded."""
    out = {}
    for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        try:
            parts = client.list_parts(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]).get("Parts", [])
        except client.exceptions.NoSuchUpload:
            continue  # completed or aborted since it was listed: no longer incomplete
        out[str(upload["UploadId"])] = len(parts)
    return out


def s3_sha256(client: Any, bucket: str, key: str) -> bytes:
    digest = hashlib.sha256()
    for chunk in client.get_object(Bucket=bucket, Key=key)["Body"].iter_chunks(MiB):
        digest.update(chunk)
    return digest.digest()


def file_sha256(path: Path) -> bytes:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(MiB):
            digest.update(chunk)
    return digest.digest()


def holds_whole(path: Path, doc_hash: bytes) -> bool:
    """The file is there and hashes to the document."""
    return path.is_file() and file_sha256(path) == doc_hash


def local_path(store: Path, doc_hash: bytes) -> Path:
    name = doc_hash.hex()
    return store / name[:2] / name[2:4] / name


def answer_of(r: httpx.Response) -> dict[str, Any]:
    """A submission's answer: its JSON (202/200, problem+json), or the start of whatever else came."""
    if r.headers.get("content-type", "").startswith(("application/json", "application/problem+json")):
        return dict(r.json())
    return {"text": r.text[:300]}


@dataclass(frozen=True)
class Served:
    status: int
    backend: str | None
    sha256: bytes
    size: int


def read_content(api: Api, doc_hash: bytes) -> Served:
    """``GET /v1/documents/{hash}/content``, streamed and hashed (a large document is never held whole)."""
    digest, size = hashlib.sha256(), 0
    with api.client.stream("GET", f"/v1/documents/0x{doc_hash.hex()}/content", timeout=120) as r:
        for chunk in r.iter_bytes(MiB):
            digest.update(chunk)
            size += len(chunk)
    return Served(r.status_code, r.headers.get("x-docchain-storage-backend"), digest.digest(), size)


def reported(api: Api, doc_hash: bytes) -> tuple[int, list[dict[str, Any]]]:
    """The document's copies as ``GET /v1/documents/{hash}`` reports them (status, storage list)."""
    r = api.get(f"/v1/documents/0x{doc_hash.hex()}")
    return r.status_code, list(r.json().get("storage", [])) if r.status_code == 200 else []


# ---------------------------------------------------------------------------------------------- 1. a backend down


@dataclass
class Outage:
    backend: str
    down_s: float
    pending_at_return: int  # the backend's copies waiting when it answered again
    back_at: float  # wall clock (time.time()), as the storage_copies timestamps are
    cleared_s: float = 0.0  # from its return to its last waiting copy stored


def outage(backend: str, server: S3Server | KuboDaemon, probe: DbProbe, down_s: float) -> Outage:
    """Kill the backend's server, wait ``down_s`` (the outage's length is the experiment), start it again."""
    start = time.monotonic()
    server.kill()
    time.sleep(down_s)
    pending = pending_copies(probe, backend)
    server.restart()
    return Outage(backend, time.monotonic() - start, pending, time.time())


def test_backend_down_under_load(
    chain: Chain,
    scale: Scale,
    entry: Entry,
    report: Report,
    tmp_path: Path,
    journaled_s3: S3Server,
    kubo_daemon: KuboDaemon,
) -> None:
    """Storage outage: the S3 server, then the IPFS node, killed under a load of uploads and started again"""
    rng = random.Random(report.seed)
    s3, ipfs = journaled_s3, kubo_daemon
    bucket = s3.server.new_bucket()
    env = chain.env(sqlite_url(tmp_path / "docchain.db"), "storage-outage")
    keys = api_keys(scale.storage_clients)
    api = env.api(
        DOCCHAIN_API_KEYS=",".join(keys),
        DOCCHAIN_CONFIRMATIONS="1",
        **storage_env("local,s3,ipfs", s3.server, bucket, ipfs.node),
    )
    probe = DbProbe(env.database_url)
    total = scale.storage_clients * scale.storage_per_client
    plans = plan(env.domain, scale.storage_clients, scale.storage_per_client, files_every=1)
    contents = {body.doc_hash: body.content for mine in plans for body in mine if body.content is not None}
    outages: list[Outage] = []
    with servers(api):
        api.start()
        clients = Clients([api.url], plans, keys, deadline_s=scale.deadline_s, rng=rng, pace_s=scale.storage_pace_s)
        clients.start()
        poll(lambda: clients.accepted_count() >= total // 6 or clients.finished(), 120, what="the load under way")
        # one outage after the other, while the clients keep submitting
        for backend, server in (("s3", s3), ("ipfs", ipfs)):
            outages.append(outage(backend, server, probe, scale.storage_outage_s))
            entry.faults[f"{backend} server killed under load, started again {scale.storage_outage_s:g} s later"] += 1
        still_loaded = not clients.finished()
        load = clients.join(scale.deadline_s)
        wait_all_anchored(probe, len(load.accepted), scale.deadline_s, "every accepted submission anchored")
        settle = wait_copies_settled(probe, RECOVERY_BOUND_S)
        rows = copies(probe)
        for o in outages:
            waited = probe.rows(
                "SELECT max(updated_at) FROM storage_copies WHERE state = 'stored' AND backend = "
                f"'{o.backend}' AND created_at < {o.back_at!r} AND updated_at >= {o.back_at!r}"
            )[0][0]
            o.cleared_s = 0.0 if waited is None else float(waited) - o.back_at
        listed = [reported(api, doc) for doc in contents]
        served = [read_content(api, doc) for doc in contents]
        entry.memory = {
            "API": peak_rss(api.proc.pid if api.proc else None),
            "anchoring child": peak_rss(pipeline_pid(api)),
            "kubo (after its restart)": peak_rss(ipfs.process.pid),
            "moto (after its restart)": peak_rss(s3.pid),
        }
        assert api.stop() == 0
    tally = ledger(chain, probe, load.accepted)
    logged = server_5xx(env.tmp / "api.log.jsonl")
    client = s3.server.client()
    objects = s3_objects(client, bucket)
    pins = ipfs.pins()

    by_backend: Counter[tuple[str, str]] = Counter((c.backend, c.state) for c in rows)
    plain = Counter((c.doc, c.backend) for c in rows if not c.sealed)
    entry.held.insert(
        0,
        f"{scale.storage_clients} clients × {scale.storage_per_client} submissions, each with its file, on "
        "DOCCHAIN_STORAGE=local,s3,ipfs (moto's S3 server and a kubo node, each in its own process), SQLite",
    )
    for o in outages:
        entry.recovery.append((f"{o.backend} back to its copies all stored", o.cleared_s))
    entry.recovery.append(("every copy stored after the load", settle))
    entry.table(
        "Outages (the copy worker retries 2 s, doubling):",
        ["backend", "down", "its copies pending at its return", "those all stored after its return"],
        [[o.backend, f"{o.down_s:.1f} s", o.pending_at_return, f"{o.cleared_s:.1f} s"] for o in outages],
    )
    entry.table(
        "Copies at the end (storage_copies):",
        ["backend", "state", "copies", "most attempts"],
        [
            [b, s, n, max(c.attempts for c in rows if (c.backend, c.state) == (b, s))]
            for (b, s), n in sorted(by_backend.items())
        ],
    )
    entry.notes.append(
        "moto keeps its state in memory: its recorder journals every request and the restarted server replays "
        "the journal, as a disk would bring the bucket back"
    )
    book(entry, load, tally, logged)
    assert_exactly_once(load, tally, logged)
    assert still_loaded, "the load ended before the outages did: make it longer (storage_per_client, storage_pace_s)"
    assert len(load.accepted) == total
    assert load.unavailable == 0, f"{load.unavailable} answers were 503: the first backend (local) never went down"

    docs = {"0x" + d.hex() for d in contents}
    not_stored = [c for c in rows if c.state != "stored"]
    assert not not_stored, f"{len(not_stored)} copies not stored, e.g. {not_stored[:3]}"
    for backend in BACKENDS:
        held = {c.doc for c in rows if c.backend == backend}
        assert held == docs, f"{len(docs - held)} documents without a {backend} copy, e.g. {sorted(docs - held)[:3]}"
    assert max(plain.values()) == 1, f"one plain copy recorded twice: {[k for k, n in plain.items() if n > 1][:3]}"
    # what the servers hold, not what the database says they hold
    assert set(objects) == {d.hex() for d in contents}, "the bucket's objects are not the accepted documents"
    wrong = [k for k in objects if s3_sha256(client, bucket, k) != bytes.fromhex(k)]
    assert not wrong, f"{len(wrong)} S3 objects do not hash to their key, e.g. {wrong[:3]}"
    unpinned = [c for c in rows if c.backend == "ipfs" and c.locator not in pins]
    assert not unpinned, f"{len(unpinned)} IPFS copies recorded stored are not pinned on the node: {unpinned[:3]}"
    store = env.data_dir / "documents"
    missing = [d.hex() for d in contents if not holds_whole(local_path(store, d), d)]
    assert not missing, f"{len(missing)} local copies missing or altered, e.g. {missing[:3]}"
    staged = sorted(p.name for p in (env.data_dir / "spool").glob("*") if not p.name.startswith(".read-"))
    assert not staged, f"sealed copies staged but never removed: {staged[:5]}"
    listing = [(status, {c["backend"]: c["state"] for c in storage}) for status, storage in listed]
    unlike = [x for x in listing if x != (200, dict.fromkeys(BACKENDS, "stored"))]
    assert not unlike, f"GET /v1/documents/{{hash}} does not report every copy stored: {unlike[:3]}"
    bad = [(doc.hex(), s) for doc, s in zip(contents, served, strict=True) if (s.status, s.sha256) != (200, doc)]
    assert not bad, f"{len(bad)} documents not served intact through the API, e.g. {bad[:3]}"


# ---------------------------------------------------------------------------------------------- 2. SIGKILL mid-upload


@dataclass
class Upload:
    """One multipart submission sent from a thread of its own, the file streamed from disk."""

    url: str
    body: dict[str, Any]
    path: Path
    outcome: int | str | None = None  # the status, or the transport error that ended it
    answer: dict[str, Any] = field(default_factory=dict)
    _thread: threading.Thread | None = None

    def start(self) -> Upload:
        self._thread = threading.Thread(target=self._send, name="upload", daemon=True)
        self._thread.start()
        return self

    def _send(self) -> None:
        try:
            with open(self.path, "rb") as f:
                files: dict[str, Any] = {
                    "submission": (None, json.dumps(self.body), "application/json"),
                    "file": (self.path.name, f, "application/octet-stream"),
                }
                r = httpx.post(self.url + "/v1/documents", files=files, timeout=600)
            self.outcome = r.status_code
            self.answer = answer_of(r)
        except httpx.TransportError as exc:
            self.outcome = type(exc).__name__

    def join(self, timeout: float) -> int | str | None:
        assert self._thread is not None
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"the upload did not end within {timeout:.0f} s"
        return self.outcome


@dataclass(frozen=True)
class Document:
    """A large document on disk (never held whole), its names in the backends and its signed submission."""

    path: Path
    doc_hash: bytes
    local: Path  # its name in the local store
    body: dict[str, Any]

    @property
    def key(self) -> str:
        """Its S3 key (no prefix configured)."""
        return self.doc_hash.hex()

    @classmethod
    def write(cls, path: Path, size: int, seed: int, store: Path, domain: Any) -> Document:
        source = PatternStream(size, seed)
        with open(path, "wb") as out:
            while chunk := source.read(MiB):
                out.write(chunk)
        doc_hash = file_sha256(path)
        return cls(path, doc_hash, local_path(store, doc_hash), new_signer().registration(domain, doc_hash))


def lifecycle_rule_documented() -> bool:
    """docs/operations.md tells operators to reclaim incomplete multipart uploads with a lifecycle rule."""
    text = (ROOT / "docs" / "operations.md").read_text()
    return re.search(r"lifecycle rule[^.]*incomplete multipart upload", text, re.IGNORECASE) is not None


@dataclass(frozen=True)
class Moment:
    """Where a SIGKILL lands on a document's way to its backends."""

    name: str
    order: str  # DOCCHAIN_STORAGE
    accepted: bool  # the upload was accepted (202) before the kill: the copy worker is writing it
    target: str  # the backend being written when the kill lands


MOMENTS = (
    Moment("accepting it into S3 (first backend)", "s3,local,ipfs", accepted=False, target="s3"),
    Moment("accepting it into the local store (first backend)", "local,s3,ipfs", accepted=False, target="local"),
    Moment("copying it to S3 (after its 202)", "local,s3,ipfs", accepted=True, target="s3"),
)
TRIES = 5  # documents sent for one moment: a write may end between two looks on a fast disk


@dataclass
class WriteWatch:
    """Sees a document's write to ``target`` under way (``writing``) or at its end (``done``: a kill could land
    after it). Seen with the writer frozen, ``writing`` still holds at the kill: a frozen writer sends nothing
    more. What an earlier kill left is not this write."""

    target: str
    document: Document
    size: int
    client: Any
    bucket: str
    earlier_uploads: set[str]
    earlier_files: set[Path]

    def state(self) -> str:
        if self.target == "local":
            temporaries = set(self.document.local.parents[2].rglob(".upload-*")) - self.earlier_files
            if any(p.stat().st_size > 0 for p in temporaries):
                return "writing"  # renamed under the document's name only once it is written whole
            return "done" if self.document.local.exists() else ""
        # An upload whose every part is stored may have its completion in flight: moto completes it even if its
        # writer is frozen or killed the moment after. One that misses a part cannot be completed by a frozen
        # writer, since the writer completes it only once each part's answer is back.
        parts = -(-self.size // PART_SIZE)
        new = {u: n for u, n in s3_incomplete(self.client, self.bucket).items() if u not in self.earlier_uploads}
        if any(0 < n < parts for n in new.values()):  # a part stored, another still to come
            return "writing"
        done = any(n == parts for n in new.values()) or self.document.key in s3_objects(self.client, self.bucket)
        return "done" if done else ""


@dataclass
class Kill:
    """What one SIGKILL left, seen before and right after the restart."""

    moment: Moment
    document: Document
    missed: int  # documents whose write ended before it was seen (sent, not killed)
    client_saw: int | str | None
    writer_rss: int | None  # the writing process's peak RSS at the kill
    incomplete: dict[str, int]  # the multipart uploads this kill left incomplete: upload id -> parts
    object_at_kill: bool  # an object under the document's key
    local_at_kill: bool  # a file under the document's name in the local store
    temporaries: list[str]  # the local store's temporary files this kill left
    status: int = 0  # GET /v1/documents/{hash} after the restart
    listed: list[dict[str, Any]] = field(default_factory=list)  # its storage list
    false_claims: list[dict[str, Any]] = field(default_factory=list)  # reported stored, not held whole
    new_pins: set[str] = field(default_factory=set)  # pinned since the upload, by no recorded copy


def test_sigkill_during_large_upload(
    chain: Chain,
    scale: Scale,
    entry: Entry,
    report: Report,
    tmp_path: Path,
    s3_server: S3Server,
    kubo_daemon: KuboDaemon,
) -> None:
    """SIGKILL of the API in the middle of a large document's upload, at three moments"""
    ipfs = kubo_daemon
    size = scale.big_upload_mib * MiB
    # the backend sends UPLOAD_THREADS parts at once: with no more parts than that they are stored together, and
    # no look sees one stored while another is still to come
    assert -(-size // PART_SIZE) > UPLOAD_THREADS, f"{scale.big_upload_mib} MiB is too few S3 parts to cut"
    client, bucket = s3_server.server.client(), s3_server.server.new_bucket()
    env = chain.env(sqlite_url(tmp_path / "docchain.db"), "sigkill")
    spooled = env.tmp / "tmp"  # the API's TMPDIR: where a request body in flight is spooled
    spooled.mkdir()
    api = env.api(
        DOCCHAIN_CONFIRMATIONS="1",
        DOCCHAIN_MAX_UPLOAD_BYTES=str(size + MiB),
        TMPDIR=str(spooled),
        **storage_env(MOMENTS[0].order, s3_server.server, bucket, ipfs.node),
    )
    probe = DbProbe(env.database_url)
    store = env.data_dir / "documents"
    documents: list[Document] = []

    def document() -> Document:
        n = len(documents)
        documents.append(Document.write(tmp_path / f"large-{n}.bin", size, report.seed + n, store, env.domain))
        return documents[-1]

    def held_whole(doc: Document, copy: dict[str, Any]) -> bool:
        if copy["backend"] == "local":
            return holds_whole(doc.local, doc.doc_hash)
        if copy["backend"] == "s3":
            return doc.key in s3_objects(client, bucket) and s3_sha256(client, bucket, doc.key) == doc.doc_hash
        return str(copy["locator"]) in ipfs.pins()

    kills: list[Kill] = []
    with servers(api):
        api.start()
        for i, moment in enumerate(MOMENTS):
            missed = 0
            while missed < TRIES:
                doc = document()
                pins_before = ipfs.pins()
                earlier = (set(s3_incomplete(client, bucket)), set(store.rglob(".upload-*")))
                watch = WriteWatch(moment.target, doc, size, client, bucket, *earlier)
                writer = poll(lambda: pipeline_pid(api), 30, what="the pipeline child") if moment.accepted else None
                writer = writer or (api.proc.pid if api.proc else None)
                assert writer is not None
                upload = Upload(api.url, doc.body, doc.path).start()
                if moment.accepted:
                    assert upload.join(120) == 202, f"the upload was not accepted: {upload.outcome} {upload.answer}"
                seen = poll(watch.state, 120, interval=0.005, what=f"the API writing the document to {moment.target}")
                if seen == "writing":
                    # the writing process is frozen the moment its write is seen, so that the kill lands in the
                    # middle of it however fast this machine moves the bytes; unless the write ended between the
                    # look and the stop, which a second look after it sees
                    os.kill(writer, signal.SIGSTOP)
                    if watch.state() == "writing":
                        break
                    os.kill(writer, signal.SIGCONT)
                upload.join(120)  # the write ended between two looks: this document is stored, the next one tried
                missed += 1
            assert missed < TRIES, f"{TRIES} writes to {moment.target} ended unseen: no kill could land mid-write"
            writer_rss = peak_rss(writer)
            kill_api(api, child=True)
            entry.faults["SIGKILL of the API and its child mid-upload"] += 1
            kill = Kill(
                moment,
                doc,
                missed,
                upload.join(60),
                writer_rss,
                {u: n for u, n in s3_incomplete(client, bucket).items() if u not in watch.earlier_uploads},
                doc.key in s3_objects(client, bucket),
                doc.local.exists(),
                sorted(p.name for p in set(store.rglob(".upload-*")) - watch.earlier_files),
            )
            api.env["DOCCHAIN_STORAGE"] = MOMENTS[min(i + 1, len(MOMENTS) - 1)].order
            api.start()
            kill.status, kill.listed = reported(api, doc.doc_hash)
            # whatever the API reports stored after its restart, the backend holds whole
            kill.false_claims = [c for c in kill.listed if c["state"] == "stored" and not held_whole(doc, c)]
            # pins that no recorded copy accounts for (another document's copy may be pinned meanwhile)
            kill.new_pins = ipfs.pins() - pins_before - {c.locator for c in copies(probe)}
            kills.append(kill)
        restart = time.monotonic()
        for kill in kills:  # what a kill refused is sent again, as its client would
            if not kill.moment.accepted:
                resent = Upload(api.url, kill.document.body, kill.document.path).start()
                assert resent.join(300) == 202, f"the document sent again was not accepted: {resent.outcome}"
        poll(
            lambda: all(all(c["state"] == "stored" for c in reported(api, d.doc_hash)[1]) for d in documents),
            RECOVERY_BOUND_S,
            interval=0.25,
            what="every copy of the documents stored",
        )
        recovered = time.monotonic() - restart
        wait_all_anchored(probe, len(documents), 120, "the documents anchored")
        served = [read_content(api, d.doc_hash) for d in documents]
        final = [reported(api, d.doc_hash) for d in documents]
        assert api.stop() == 0
    rows = copies(probe)
    objects = s3_objects(client, bucket)
    incomplete = s3_incomplete(client, bucket)
    pins = ipfs.pins()
    temporaries = list(store.rglob(".upload-*"))
    spooled_files = [p for p in spooled.rglob("*") if p.is_file()]

    entry.held.append(
        f"{scale.big_upload_mib} MiB documents ({-(-size // (5 * MiB))} S3 parts of 5 MiB), the API SIGKILLed in the "
        "middle of writing one, at three moments; the local store, moto's S3 server and a kubo node as backends; "
        "a document refused by its kill sent again after the last restart"
    )
    entry.table(
        "The kills (the writing process frozen the moment its write was seen, then killed with its API):",
        [
            "the API killed while",
            "DOCCHAIN_STORAGE",
            "writes ended unseen first",
            "client saw",
            "writer's peak RSS",
            "S3 incomplete uploads (parts)",
            "object under its key",
            "file under its name",
            "local temporary files",
            "after the restart: copies reported",
        ],
        [
            [
                k.moment.name,
                k.moment.order,
                k.missed,
                k.client_saw,
                mib(k.writer_rss),
                ", ".join(str(parts) for parts in k.incomplete.values()) or "none",
                "yes" if k.object_at_kill else "no",
                "yes" if k.local_at_kill else "no",
                len(k.temporaries),
                f"{k.status}: " + (", ".join(f"{c['backend']} {c['state']}" for c in k.listed) or "none"),
            ]
            for k in kills
        ],
    )
    entry.recovery.append(("last restart to every copy stored", recovered))
    documented = "yes" if lifecycle_rule_documented() else "NO"
    entry.notes.append(
        f"left for the operator: {len(incomplete)} incomplete multipart upload(s) in the bucket after the recovery "
        f"(docs/operations.md asks for a lifecycle rule aborting them: {documented}), {len(temporaries)} temporary "
        f"file(s) in the local store, {len(spooled_files)} spooled request bodies in the API's TMPDIR"
    )
    entry.accepted = len(documents)
    entry.lost = sum(1 for d, s in zip(documents, served, strict=True) if s.sha256 != d.doc_hash)
    for k in kills:
        what = f"killed {k.moment.name}"
        if k.moment.target == "s3":
            assert k.incomplete, f"{what}: no incomplete multipart upload, so the kill did not land mid-upload"
        else:
            assert k.temporaries, f"{what}: no temporary file in the local store, so the kill did not land mid-write"
        assert not k.false_claims, f"{what}: reported stored after the restart, yet not held whole: {k.false_claims}"
        if k.moment.accepted:
            assert k.status == 200 and k.local_at_kill, f"{what}: the accepted document is lost ({k.status})"
        else:
            assert k.status == 404 and not k.listed, f"{what}: a document never accepted is known: {k.listed}"
            assert not k.object_at_kill, f"{what}: an object under the key of a document never accepted"
            assert not k.local_at_kill, f"{what}: a file under the name of a document never accepted"
            assert not k.new_pins, f"{what}: IPFS pins of a document never accepted: {k.new_pins}"
    assert lifecycle_rule_documented(), "docs/operations.md does not tell operators to abort incomplete uploads"
    for d, (status, storage) in zip(documents, final, strict=True):
        states = {c["backend"]: c["state"] for c in storage}
        assert status == 200 and states == dict.fromkeys(BACKENDS, "stored"), f"{d.key[:12]}: {status} {states}"
    assert objects == {d.key: size for d in documents}, f"the bucket holds {objects}"
    assert all(s3_sha256(client, bucket, d.key) == d.doc_hash for d in documents), "an S3 object is not whole"
    assert all(holds_whole(d.local, d.doc_hash) for d in documents), "a local copy is not the document"
    assert {c.locator for c in rows if c.backend == "ipfs"} <= pins, "an IPFS copy recorded stored is not pinned"
    bad = [(d.key[:12], s) for d, s in zip(documents, served, strict=True) if (s.status, s.sha256) != (200, d.doc_hash)]
    assert not bad, f"documents not served whole: {bad}"


# ---------------------------------------------------------------------------------------------- 3. replicas, one bucket


@dataclass
class Sent:
    """One (document, signer) sent to both replicas at once: each replica's (status, answer)."""

    content: bytes
    doc_hash: bytes
    signer: Signer
    answers: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    dropped: int = 0

    @property
    def ids(self) -> set[str]:
        return {str(a["id"]) for s, a in self.answers if s in (200, 202)}

    def cids(self) -> list[str | None]:
        """The sealed IPFS copy's CID each replica's answer named (each acceptance stages a copy of its own)."""
        return [(a.get("storage") or {}).get("ipfs", {}).get("cid") for _, a in self.answers]

    def answered_once(self) -> bool:
        """One submission, created once: 202 from one replica and 200 from the other (or, where a request was
        sent again, the resend's 200 in place of the 202 it never saw)."""
        statuses = sorted(status for status, _ in self.answers)
        if len(self.ids) != 1 or not set(statuses) <= {200, 202}:
            return False
        return statuses == [200, 202] or (self.dropped > 0 and statuses.count(202) <= 1)


def shared_documents(n: int, seed: int) -> list[tuple[bytes, bytes]]:
    """``n`` documents of mixed sizes: every fourth spans two S3 parts (a multipart upload), the others one PUT,
    some of several IPFS blocks."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        size = 6 * MiB if i % 4 == 3 else rng.choice((1, 4 * 1024, 300 * 1024))
        content = os.urandom(size)
        out.append((content, hashlib.sha256(content).digest()))
    return out


async def send_to_both(urls: tuple[str, str], domain: Any, sent: list[Sent], at_once: int) -> None:
    """Each (document, signer) to both replicas at the same moment, ``at_once`` of them in flight; a request
    that got no answer is sent again to the same replica."""
    limits = httpx.Limits(max_connections=4 * at_once, max_keepalive_connections=4 * at_once)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        await asyncio.gather(*(http.get(u + "/healthz") for u in urls for _ in range(at_once)))

        async def post(url: str, one: Sent) -> tuple[int, dict[str, Any]]:
            payload = one.signer.registration(domain, one.doc_hash)
            for attempt in range(5):
                files: dict[str, Any] = {
                    "submission": (None, json.dumps(payload), "application/json"),
                    "file": ("shared.bin", one.content, "application/octet-stream"),
                }
                try:
                    r = await http.post(url + "/v1/documents", files=files)
                    return r.status_code, answer_of(r)
                except httpx.TransportError:
                    one.dropped += 1
                    await asyncio.sleep(0.1 * (attempt + 1))
            return 0, {}

        async def both(one: Sent) -> None:
            one.answers = list(await asyncio.gather(*(post(u, one) for u in urls)))

        for start in range(0, len(sent), at_once):
            await asyncio.gather(*(both(one) for one in sent[start : start + at_once]))


def _sealed_row(replica: str, staged: list[Copy]) -> list[Any]:
    lost = [c for c in staged if c.state != "stored"]
    reason = f"{lost[0].state}: {lost[0].error}" if lost else "–"
    return [replica, len(staged), len(staged) - len(lost), reason]


def own_hosts_available() -> bool:
    """Whether this machine lets a process have a mount namespace of its own (root, or a container allowing it)."""
    try:
        done = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"], capture_output=True)
    except FileNotFoundError:
        return False
    return done.returncode == 0


def own_host_python(tmp: Path) -> Path:
    """A ``python`` for API processes that behave as if each ran on a host of its own, as far as files go that
    replicas do not share: the process (and its pipeline child) sees a private tmpfs over its data directory's
    spool, in a mount namespace of its own, so no other replica can read what it stages there."""
    wrapper = tmp / "python-on-its-own-host"
    mount = 'mkdir -p "$DOCCHAIN_DATA_DIR/spool" && mount -t tmpfs tmpfs "$DOCCHAIN_DATA_DIR/spool" && exec "$0" "$@"'
    wrapper.write_text(
        f"#!/bin/sh\nexec unshare --mount --propagation private -- sh -c '{mount}' {sys.executable} \"$@\"\n"
    )
    wrapper.chmod(0o755)
    return wrapper


def test_two_replicas_one_bucket(
    chain: Chain,
    scale: Scale,
    entry: Entry,
    report: Report,
    tmp_path: Path,
    s3_server: S3Server,
    kubo_daemon: KuboDaemon,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    """Two replicas on one PostgreSQL and one S3 bucket, each document sent to both at once by two signers"""
    s3, ipfs = s3_server, kubo_daemon
    client, bucket = s3.server.client(), s3.server.new_bucket()
    database_url = request.getfixturevalue("pg_cluster").create_database()
    # two hosts: one database and one bucket, a data directory each
    env, other_host = chain.env(database_url, "storage-replica-1"), chain.env(database_url, "storage-replica-2")
    two_hosts = own_hosts_available()
    shared = {
        "DOCCHAIN_CONFIRMATIONS": "1",
        "DOCCHAIN_MAX_UPLOAD_BYTES": str(8 * MiB),
        **storage_env("s3,ipfs", s3.server, bucket, ipfs.node),
    }
    first, second = env.api(**shared), other_host.api(**shared)
    documents = shared_documents(scale.shared_documents, report.seed)
    sent = [Sent(content, doc, new_signer()) for content, doc in documents for _ in range(2)]
    probe = DbProbe(database_url)
    with servers(first, second):
        with monkeypatch.context() as patch:
            if two_hosts:  # else they share this host's files, which hides what a replica keeps to itself
                patch.setattr(sys, "executable", str(own_host_python(tmp_path)))
            start_together(first, second)  # one pipeline works (the lease), anchoring and copying for both
        start = time.monotonic()
        asyncio.run(send_to_both((first.url, second.url), env.domain, sent, at_once=8))
        took = time.monotonic() - start
        accepted = {key_of("0x" + s.doc_hash.hex(), s.signer.address): min(s.ids) for s in sent if s.ids}
        wait_all_anchored(probe, len(accepted), scale.deadline_s, "every accepted submission anchored")
        settle = wait_copies_settled(probe, RECOVERY_BOUND_S)
        reads = [(api, doc, read_content(api, doc)) for _, doc in documents for api in (first, second)]
        codes = (first.stop(), second.stop())
    tally = ledger(chain, probe, accepted)
    logged = server_5xx(env.tmp / "api.log.jsonl") + server_5xx(other_host.tmp / "api.log.jsonl")
    rows = copies(probe)
    objects = s3_objects(client, bucket)
    incomplete = s3_incomplete(client, bucket)
    pins = ipfs.pins()

    statuses = Counter(status for s in sent for status, _ in s.answers)
    entry.held.insert(
        0,
        f"{len(documents)} documents ({sum(1 for c, _ in documents if len(c) > 5 * MiB)} of 6 MiB, multipart), each "
        f"signed by 2 signers, each submission sent to both replicas at the same moment: {len(sent) * 2} uploads in "
        f"{took:.1f} s on DOCCHAIN_STORAGE=s3,ipfs, one bucket, one kubo node, one PostgreSQL, a data directory each",
    )
    entry.inputs["uploads of one document to two replicas at once"] += len(sent) * 2
    staged_by = {cid: i for one in sent for i, cid in enumerate(one.cids()) if cid}
    entry.table(
        "Sealed IPFS copies by the replica that staged them"
        + (" (each replica on a host of its own: a private spool)" if two_hosts else " (both on this host's files)"),
        ["replica", "staged", "stored", "not stored (the first reason)"],
        [_sealed_row(f"API {i + 1}", [c for c in rows if staged_by.get(c.locator) == i]) for i in range(2)],
    )
    entry.recovery.append(("every copy stored after the uploads", settle))
    entry.table(
        "Answers (each submission once 202, once 200):",
        ["status", "count"],
        [[s, n] for s, n in sorted(statuses.items())] + [["no answer, sent again", sum(s.dropped for s in sent)]],
    )
    book(entry, None, tally, logged)
    entry.fivexx_client = sum(n for s, n in statuses.items() if s >= 500)
    twice = [s for s in sent if not s.answered_once()]
    assert not twice, (
        f"{len(twice)} submissions not answered as one (202 + 200, one id): "
        f"{[(s.doc_hash.hex()[:12], s.answers) for s in twice][:3]}"
    )
    assert_exactly_once(None, tally, logged)
    assert len(accepted) == len(sent), f"{len(sent) - len(accepted)} submissions never accepted"
    assert entry.fivexx_client == 0, f"5xx answers: {statuses}"
    keys = {doc.hex() for _, doc in documents}
    assert set(objects) == keys, f"the bucket holds {sorted(set(objects) - keys)[:3]} beside the documents"
    assert not incomplete, f"incomplete multipart uploads left in the bucket: {incomplete[:5]}"
    wrong = [k for k in objects if s3_sha256(client, bucket, k) != bytes.fromhex(k)]
    assert not wrong, f"{len(wrong)} objects do not hash to their key: {wrong[:3]}"
    s3_rows = Counter(c.doc for c in rows if c.backend == "s3")
    assert set(s3_rows) == {"0x" + k for k in keys} and set(s3_rows.values()) == {1}, (
        f"the S3 copy of a document is not recorded exactly once: {[d for d, n in s3_rows.items() if n != 1][:3]}"
    )
    assert all(c.state == "stored" for c in rows if c.backend == "s3"), "an S3 copy not stored"
    bad = [
        (api.url, doc.hex()[:12], r.status, r.backend)
        for api, doc, r in reads
        if (r.status, r.sha256, r.backend) != (200, doc, "s3")
    ]
    assert not bad, f"{len(bad)} of {len(reads)} reads through a replica not the exact bytes from S3: {bad[:5]}"
    assert codes == (0, 0)
    sealed = [c for c in rows if c.backend == "ipfs"]
    assert {c.doc for c in sealed} == {"0x" + k for k in keys}, "a document without its IPFS copy"
    assert {c.locator for c in sealed if c.state == "stored"} <= pins, "an IPFS copy recorded stored is not pinned"
    lost = [c for c in sealed if c.state != "stored"]
    assert not lost, f"{len(lost)} sealed IPFS copies not stored: {lost[:3]}"
