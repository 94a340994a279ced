"""The pipeline behind the API: the anchoring worker and the indexer, and where they run.

``DOCCHAIN_PIPELINE`` chooses:

* ``process`` (default): in a child process of the API. Request handling and anchoring are both CPU-bound
  Python; in one interpreter they take turns on one core (the GIL), so under load every anchored batch
  is paid for in request latency. In a child they run on the other core and meet only in the database.
* ``inline``: in the API's own event loop (one process).
* ``off``: not here; this replica only serves HTTP.

Whatever the mode, only one pipeline works a database at a time: it holds a lease (an ``flock`` beside
the SQLite file, a session advisory lock on PostgreSQL) that vanishes with its process, so replicas or an
overlapping restart stand by instead of anchoring the same documents twice, and take over when the
holder dies.

The child speaks to its parent over two pipes, one JSON object per line. Parent → child, on the child's
stdin: the settings first, then ``{"submitted": n}``, ``{"wake": true}`` and
``{"metrics": id}``. Child → parent, on an inherited descriptor: ``{"started": true}`` (once, as its pipeline
starts), ``{"notify": [ids]}``, ``{"health": {...}}`` and ``{"metrics": id, "text": ...}``. The child finishes
its current step and exits when its stdin closes, however the parent ended (one not started yet is killed); it
ignores SIGINT and SIGTERM, which a terminal or a supervisor sends to the whole process group.

Idle, the working pipeline waits for wake-ups instead of polling (api/service_loop.py): submissions its own
API accepted arrive over the pipe; those another process accepted (a replica, another ``--workers``
process, whose pipeline stands by or is off) through the database's channel, ``LISTEN`` on PostgreSQL (the
outbox's transaction sends the ``NOTIFY``) and, on SQLite, the ``outbox`` notification socket that such a
process signals (:class:`OutboxSignal`); new blocks from :class:`HeadWatcher`'s one head poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from prometheus_client import generate_latest

from docchain.api import logs, metrics, outbox
from docchain.api.chainctx import ChainContext
from docchain.api.db import Database, Lease
from docchain.api.indexing import IndexerLoop
from docchain.api.notifications.delivery import DeliveryWorker
from docchain.api.notify import Notifier, Publishing, SocketBus
from docchain.api.service_loop import HeadWatcher
from docchain.api.settings import Settings
from docchain.api.storage import replicas
from docchain.api.worker import AnchorWorker

log = logging.getLogger("docchain.api.pipeline")

LEASE_RETRY_S = 2.0
LEASE_CHECK_S = 2.0  # how often a holder confirms it still holds the lease (PostgreSQL can drop it)
PIPELINE_NICENESS = 10  # the child's CPU priority below the API's (see main)
# How long a stop waits for the step in progress (a few hundred ms, measured under load) before it cancels
# it, or kills the child: a stopping API exits within 5 s, and the child, at a lower priority, can be starved
# of CPU on a busy host, so the kill must come well inside that. Safe at any point: a transaction is recorded
# (hash and raw bytes) before it is broadcast, and the next start reconciles it (the SIGKILL tests).
STOP_WAIT_S = 2.0


class Pipeline(Protocol):
    """What the HTTP side needs of the pipeline, wherever it runs."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def submitted(self) -> None: ...
    def wake(self) -> None: ...
    def health(self) -> dict[str, str]: ...
    async def metrics_text(self) -> bytes: ...


# ------------------------------------------------------------------ the lease


# ------------------------------------------------------------------ submissions accepted elsewhere

OUTBOX_BUS = "outbox"  # SQLite: the notification socket's channel (see notify.SocketBus)


class OutboxSignal:
    """Called by a process that accepted submissions while its own pipeline does not work the database (it
    stands by, or is off): tells the working one. On SQLite a datagram on the ``outbox`` socket, at most one
    per turn of the event loop; on PostgreSQL nothing, as the outbox's own transaction sent ``NOTIFY``."""

    def __init__(self, db: Database) -> None:
        self._bus = None if db.sqlite_path is None else SocketBus(db.sqlite_path, OUTBOX_BUS)
        self._scheduled = False

    def __call__(self) -> None:
        if self._bus is None or self._scheduled:
            return
        self._scheduled = True
        asyncio.get_running_loop().call_soon(self._send)

    def _send(self) -> None:
        self._scheduled = False
        if self._bus is not None:
            self._bus.publish("1")


async def watch_outbox(db: Database, on_change: Callable[[], None]) -> None:
    """Until cancelled, ``on_change()`` when another process may have accepted submissions (PostgreSQL's
    ``NOTIFY``, SQLite's ``outbox`` socket). Should it fail, the worker's safety poll reads the outbox anyway."""
    try:
        if db.sqlite_path is None:
            await db.listen(outbox.CHANNEL, lambda _payload: on_change())
        else:
            await SocketBus(db.sqlite_path, OUTBOX_BUS).listen(lambda _payload: on_change())
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.warning("outbox notifications unavailable: the safety poll reads the outbox", extra={"error": repr(exc)})


# ------------------------------------------------------------------ in this process


class InlinePipeline:
    """The worker and the indexer as tasks of the running event loop, once the lease is held."""

    def __init__(self, settings: Settings, db: Database, chain: ChainContext, notifier: Notifier) -> None:
        notifier = Publishing(notifier, db)  # replicas share the database: tell their waiters too
        self.worker = AnchorWorker(settings, db, chain, notifier)
        self.indexer = IndexerLoop(settings, db, chain, notifier)
        self.worker.on_mined = self.indexer.wake
        self.indexer.on_reorg = self.worker.chain_changed
        self.indexer.on_anchored = self.worker.wake
        # the storage copies the submissions queued, made beside the anchoring under the same lease
        self.copier = replicas.CopyWorker(db, replicas.build(settings), idle_s=settings.idle_poll_s)
        # envelope notifications' webhook calls and e-mails, queued by the indexer and the routes
        self.deliveries = DeliveryWorker(db, settings)
        self.indexer.on_envelopes = self.deliveries.wake
        self._lease = Lease(db)
        self._leased = False
        self._stopped = False
        self._task: asyncio.Task[None] | None = None
        self._signal = OutboxSignal(db)
        self._heads = HeadWatcher(
            chain.rpc,
            self.indexer.wake,
            idle_s=settings.head_poll_ms / 1000,
            busy_s=settings.poll_interval_ms / 1000,
        )

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="pipeline")

    async def _run(self) -> None:
        while not self._stopped:
            await self._acquire()
            if self._stopped:
                break
            self._leased = True
            log.info("pipeline started")
            loops = asyncio.gather(self.worker.run(), self.indexer.run(), self.copier.run(), self.deliveries.run())
            watch = asyncio.create_task(watch_outbox(self.worker.db, self._arrived_elsewhere))
            heads = asyncio.create_task(self._heads.run())
            try:
                while not loops.done():
                    await asyncio.wait([loops], timeout=LEASE_CHECK_S)
                    if not loops.done() and not await self._lease.held():
                        # Another pipeline may take the lease now: stop after the current step. Until then both
                        # may anchor; that costs gas (the registry ignores a second registration), loses nothing.
                        log.error("pipeline lease lost (database session ended): standing by")
                        self.worker.stop()
                        self.indexer.stop()
                        self.copier.stop()
                        self.deliveries.stop()
                        await loops
            finally:
                watch.cancel()
                heads.cancel()
                self._heads.head = None  # the next holder's first read counts as new
                self._leased = False
                await self._lease.release()
            if not self._stopped:  # back to standby with fresh loops
                self.worker.restart()
                self.indexer.restart()
                self.copier.restart()
                self.deliveries.restart()

    async def _acquire(self) -> None:
        waiting_logged = False
        while not self._stopped:
            try:
                if await self._lease.try_acquire():
                    return
                if not waiting_logged:
                    log.info("standing by: another pipeline works this database")
                    waiting_logged = True
            except Exception as exc:  # the database is down: keep standing by
                log.warning("pipeline lease: database unavailable", extra={"error": repr(exc)})
            await asyncio.sleep(LEASE_RETRY_S)

    async def stop(self) -> None:
        self._stopped = True
        self.worker.stop()
        self.indexer.stop()
        self.copier.stop()
        self.deliveries.stop()
        if self._task is None:
            return
        if not self._leased:
            self._task.cancel()
        _, stuck = await asyncio.wait([self._task], timeout=STOP_WAIT_S)
        for task in stuck:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task

    def submitted(self) -> None:
        if self._leased:
            self.worker.submitted()
            self.copier.wake()
        else:  # another pipeline works the database: tell it
            self._signal()

    def _arrived_elsewhere(self) -> None:
        self.worker.submitted()
        self.copier.wake()

    def arrived(self, count: int) -> None:
        """``count`` submissions accepted by the API."""
        for _ in range(count):
            self.submitted()

    def wake(self) -> None:
        self.worker.wake()
        self.copier.wake()
        self.deliveries.wake()  # a route queued e-mails

    def health(self) -> dict[str, str]:
        if not self._leased:
            return {"worker": "standby", "indexer": "standby"}
        return {"worker": self.worker.last_error or "ok", "indexer": self.indexer.last_error or "ok"}

    async def metrics_text(self) -> bytes:
        return generate_latest(metrics.PIPELINE)


class AlsoWaking:
    """A pipeline whose wake-ups also reach ``also`` (the API's own :class:`~replicas.StagedCopier`): a
    submission accepted here may have staged a sealed copy only this host can make."""

    def __init__(self, pipeline: Pipeline, also: Callable[[], None]) -> None:
        self.pipeline = pipeline
        self.also = also

    async def start(self) -> None:
        await self.pipeline.start()

    async def stop(self) -> None:
        await self.pipeline.stop()

    def submitted(self) -> None:
        self.pipeline.submitted()
        self.also()

    def wake(self) -> None:
        self.pipeline.wake()
        self.also()

    def health(self) -> dict[str, str]:
        return self.pipeline.health()

    async def metrics_text(self) -> bytes:
        return await self.pipeline.metrics_text()


class NoPipeline:
    """``DOCCHAIN_PIPELINE=off``: another replica anchors and indexes."""

    def __init__(self, db: Database) -> None:
        self._signal = OutboxSignal(db)

    async def start(self) -> None:
        log.info("pipeline off: this replica only serves HTTP")

    async def stop(self) -> None:
        pass

    def submitted(self) -> None:
        self._signal()

    def wake(self) -> None:
        pass

    def health(self) -> dict[str, str]:
        return {"worker": "off", "indexer": "off"}

    async def metrics_text(self) -> bytes:
        return b""


# ------------------------------------------------------------------ in a child process


class ChildPipeline:
    """Runs ``python -m docchain.api.pipeline`` and restarts it (with backoff) if it dies."""

    def __init__(self, settings: Settings, relayer_key: bytes, notifier: Notifier) -> None:
        config = settings.model_dump(mode="json", exclude={"relayer_keystore", "relayer_password_file"})
        config["relayer_key"] = "0x" + relayer_key.hex()  # decrypted once, by the parent
        if settings.s3_secret_access_key is not None:  # (dumped masked, as every SecretStr)
            config["s3_secret_access_key"] = settings.s3_secret_access_key.get_secret_value()
        if settings.smtp_password is not None:  # the delivery loop's SMTP login
            config["smtp_password"] = settings.smtp_password.get_secret_value()
        self._config = json.dumps(config).encode() + b"\n"
        self.notifier = notifier
        self._proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._health = {"worker": "starting", "indexer": "starting"}
        self._submitted = 0
        self._flush_scheduled = False
        self._replies: dict[int, asyncio.Future[bytes]] = {}
        self._next_id = 0
        self._started = False  # the current child has begun its pipeline (its first message)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name="pipeline-supervisor")

    async def _supervise(self) -> None:
        delay = 0.5
        loop = asyncio.get_running_loop()
        while not self._stopping:
            started = loop.time()
            code = await self._serve_one()
            if self._stopping:
                break
            self._health = {"worker": f"restarting (exit {code})", "indexer": f"restarting (exit {code})"}
            log.error("pipeline process exited; restarting", extra={"exit": code, "retry_s": delay})
            await asyncio.sleep(delay)
            delay = 0.5 if loop.time() - started > 60 else min(delay * 2, 10.0)

    async def _serve_one(self) -> int | None:
        self._started = False
        read_fd, write_fd = os.pipe()
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "docchain.api.pipeline",
                str(write_fd),
                stdin=asyncio.subprocess.PIPE,
                pass_fds=(write_fd,),
            )
        finally:
            os.close(write_fd)
        assert proc.stdin is not None
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 24, loop=loop)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader, loop=loop), os.fdopen(read_fd, "rb")
        )
        proc.stdin.write(self._config)
        self._proc = proc
        try:
            while line := await reader.readline():
                self._dispatch(json.loads(line))
        finally:
            transport.close()
            self._proc = None
            for future in self._replies.values():
                if not future.done():
                    future.set_result(b"")
            self._replies.clear()
        return await proc.wait()

    def _dispatch(self, message: dict[str, Any]) -> None:
        if "started" in message:
            self._started = True
        elif "notify" in message:
            self.notifier.notify(message["notify"])
        elif "health" in message:
            self._health = message["health"]
        elif "metrics" in message:
            future = self._replies.pop(message["metrics"], None)
            if future is not None and not future.done():
                future.set_result(message["text"].encode())

    def _send(self, message: dict[str, Any]) -> bool:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdin.is_closing():
            return False  # no child right now: it reads the outbox from the database when it starts
        proc.stdin.write(json.dumps(message).encode() + b"\n")
        return True

    def submitted(self) -> None:
        # One line per turn of the event loop, not one per request: under load, tens of submissions share it.
        self._submitted += 1
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        self._send({"submitted": self._submitted})
        self._submitted = 0

    def wake(self) -> None:
        self._send({"wake": True})

    def health(self) -> dict[str, str]:
        return dict(self._health)

    async def metrics_text(self) -> bytes:
        self._next_id += 1
        ident = self._next_id
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._replies[ident] = future
        if not self._send({"metrics": ident}):
            self._replies.pop(ident, None)
            return b""
        try:
            return await asyncio.wait_for(future, timeout=2)
        except TimeoutError:
            self._replies.pop(ident, None)
            return b""

    async def stop(self) -> None:
        """Close the child's stdin (it finishes its step and exits) and wait for it. A child that has not said
        ``started`` is still importing (~2 s, at a lower priority): it has no step to finish, and waiting for it
        made a stop right after a start miss its 5 s, so it is killed. (Should its ``started`` be in the pipe,
        unread, its first step is cut short as by a crash, which loses nothing: a transaction is recorded
        before it is sent.)"""
        self._stopping = True
        proc = self._proc
        if proc is not None and proc.stdin is not None:
            proc.stdin.close()
            if not self._started:
                proc.kill()
            try:
                # the child's own wait for its step, then its exit
                await asyncio.wait_for(proc.wait(), timeout=STOP_WAIT_S + 1)
            except TimeoutError:
                log.error("pipeline process did not stop in %g s; killing it", STOP_WAIT_S + 1)
                proc.kill()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def create_pipeline(settings: Settings, db: Database, chain: ChainContext, notifier: Notifier) -> Pipeline:
    if settings.pipeline == "process":
        return ChildPipeline(settings, chain.relayer_key, notifier)
    if settings.pipeline == "inline":
        return InlinePipeline(settings, db, chain, notifier)
    return NoPipeline(db)


# ------------------------------------------------------------------ the child's side


class _ToParent(Notifier):
    """The child's notifier: state changes go to the parent, whose long-polls and event streams wait."""

    def __init__(self, out: asyncio.WriteTransport) -> None:
        super().__init__()
        self.out = out
        self.process = os.getppid()

    def send(self, message: dict[str, Any]) -> None:
        if not self.out.is_closing():
            self.out.write(json.dumps(message).encode() + b"\n")

    def notify(self, ids: Iterable[str]) -> None:
        ids = list(ids)
        if ids:
            self.send({"notify": ids})


async def _child(out_fd: int) -> None:
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader(limit=1 << 24, loop=loop)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin, loop=loop), sys.stdin.buffer)
    out, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(out_fd, "wb"))
    settings = Settings(**json.loads(await stdin.readline()))
    logs.setup(settings.log_level, settings.log_file)
    db = Database(settings.resolved_database_url)
    chain = ChainContext(settings)
    chain.claim = db.claim_chain
    link = _ToParent(out)  # type: ignore[arg-type]
    pipeline = InlinePipeline(settings, db, chain, link)

    async def report_health() -> None:
        last: dict[str, str] = {}
        while True:
            now = pipeline.health()
            if now != last:
                link.send({"health": now})
                last = now
            await asyncio.sleep(0.5)

    async def commands() -> None:
        while line := await stdin.readline():
            message = json.loads(line)
            if "submitted" in message:
                pipeline.arrived(message["submitted"])
            elif "wake" in message:
                pipeline.wake()
            elif "metrics" in message:
                link.send({"metrics": message["metrics"], "text": (await pipeline.metrics_text()).decode()})

    link.send({"started": True})  # from here a step may be under way: a stop waits for it (ChildPipeline.stop)
    await pipeline.start()
    health = asyncio.create_task(report_health())
    await commands()  # until stdin closes
    log.info("pipeline stopping: finishing the current step")
    await pipeline.stop()
    health.cancel()
    await db.close()
    await chain.close()
    out.close()


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m docchain.api.pipeline FD  (started by the API; see api/pipeline.py)", file=sys.stderr)
        return 2
    # Ctrl-C, and SIGTERM from a supervisor that signals the whole group (systemd), reach this process too:
    # the parent alone decides when it stops (by closing its stdin), so it is never restarted mid-shutdown.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Anchoring is background work; answering requests is not. On a host with fewer cores than busy
    # processes, the API's process gets the CPU first (measured on 2 cores while anchoring ~2,000 docs/s:
    # submission acceptance 0.50-0.60 -> 0.61-0.64 of the bare-endpoint ceiling, anchoring no slower).
    os.nice(PIPELINE_NICENESS)
    import uvloop

    uvloop.run(_child(int(argv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
