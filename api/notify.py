"""Wake-ups for long-poll and server-sent events: the worker and the indexer call :meth:`Notifier.notify`
with the submission ids whose state they changed.

API processes share the database (replicas, ``--workers``) but only one pipeline works it: the pipeline
also publishes its changes and every API process relays them to its own waiters (:func:`relay`), so a
long-poll on any process answers when the state changes, not at its next re-read. The channel is the
database's: ``NOTIFY docchain_changes`` on PostgreSQL; on SQLite, whose processes share a host, a Unix
datagram socket per listening process in a directory beside the database file (:class:`SocketBus`).
Waiters still re-read the database every 2 s, in case a notification is lost (a listening connection
that dropped, a full socket buffer)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from docchain.api.db import Database

CHANNEL = "docchain_changes"
MAX_IDS = 200  # 32-character ids, comma-separated: NOTIFY payloads stop at 8,000 bytes
EVERYTHING = "*"  # the payload for more changes than that: every waiter re-reads
_SUN_PATH_MAX = 107  # bytes of a Unix socket path (sockaddr_un.sun_path, less its terminating NUL)

log = logging.getLogger("docchain.api.notify")


class Notifier:
    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self.process = os.getpid()  # whose waiters it wakes
        self.closing = False  # the process is stopping: nobody waits any more

    def close(self) -> None:
        """The process is stopping (SIGTERM, SIGINT): every held long-poll and event stream answers now, and
        none waits from here on, so the server's graceful stop does not wait out (then cut) them."""
        self.closing = True
        self.notify_all()

    def notify(self, ids: Iterable[str]) -> None:
        for key in ids:
            for ev in self._waiters.get(key, ()):
                ev.set()

    def notify_all(self) -> None:
        for waiters in self._waiters.values():
            for ev in waiters:
                ev.set()

    @asynccontextmanager
    async def watch(self, key: str) -> AsyncIterator[asyncio.Event]:
        ev = asyncio.Event()
        self._waiters[key].add(ev)
        try:
            yield ev
        finally:
            waiters = self._waiters.get(key)
            if waiters is not None:
                waiters.discard(ev)
                if not waiters:
                    del self._waiters[key]

    @property
    def watching(self) -> int:
        return sum(len(v) for v in self._waiters.values())


class SocketBus:
    """SQLite's NOTIFY. Every listening process binds a datagram socket ``<pid>.sock`` in the directory
    ``<database file>.<channel>`` (mode 0700: the database's owner only); a publisher sends the payload to
    each socket there and removes those nobody listens on any more (a process that was killed). Channels:
    ``notify`` (state changes, for waiters) and ``outbox`` (submissions accepted, for the working pipeline)."""

    def __init__(self, database_file: str, channel: str = "notify") -> None:
        self.directory = Path(f"{database_file}.{channel}")
        self._out: socket.socket | None = None

    def _usable(self) -> bool:
        # a socket path is at most 107 bytes: a database that deep keeps the 2 s re-reads alone
        return len(os.fsencode(self.directory / f"{2**22}.sock")) <= _SUN_PATH_MAX

    def publish(self, payload: str, *, skip: int | None = None) -> None:
        """Send ``payload`` to every listening process but ``skip``."""
        if not self._usable():
            return
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return  # nobody has listened yet
        if self._out is None:
            self._out = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._out.setblocking(False)
        data = payload.encode()
        for name in names:
            if name == f"{skip}.sock":
                continue
            path = self.directory / name
            try:
                self._out.sendto(data, str(path))
            except (ConnectionRefusedError, FileNotFoundError):  # its process is gone
                with contextlib.suppress(OSError):
                    path.unlink()
            except OSError:  # its buffer is full (a busy process): it re-reads within 2 s anyway
                pass

    async def listen(self, on_message: Callable[[str], None], listening: asyncio.Event | None = None) -> None:
        """Until cancelled: ``on_message(payload)`` for each payload published; ``listening`` is set once
        payloads reach this process (at once if they never can)."""
        if not self._usable():
            log.warning("database path too long for a notification socket: waiters re-read every 2 s")
            if listening is not None:
                listening.set()
            await asyncio.Event().wait()
        self.directory.mkdir(mode=0o700, exist_ok=True)
        path = self.directory / f"{os.getpid()}.sock"
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # left by an earlier process that had this pid
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.bind(str(path))
        loop = asyncio.get_running_loop()

        def readable() -> None:
            while True:
                try:
                    data = sock.recv(65536)
                except OSError:  # BlockingIOError: drained
                    return
                on_message(data.decode(errors="replace"))

        loop.add_reader(sock.fileno(), readable)
        if listening is not None:
            listening.set()
        try:
            await asyncio.Event().wait()
        finally:
            loop.remove_reader(sock.fileno())
            sock.close()
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


class Publishing(Notifier):
    """The pipeline's notifier: ``local`` (this process's waiters, or the API process's over the pipe), then
    every API process through the database's channel. Called after the change is committed. PostgreSQL's
    NOTIFY reaches ``local``'s process a second time (a waiter re-reads once more); SQLite's sockets skip it."""

    def __init__(self, local: Notifier, db: Database) -> None:
        super().__init__()
        self.local, self.db = local, db
        self._bus = SocketBus(db.sqlite_path) if db.sqlite_path is not None else None
        self._sending: set[asyncio.Task[Any]] = set()  # strong references until sent

    def notify(self, ids: Iterable[str]) -> None:
        ids = list(ids)
        if not ids:
            return
        self.local.notify(ids)
        payload = ",".join(ids) if len(ids) <= MAX_IDS else EVERYTHING
        if self._bus is not None:  # ``local`` has woken its process's waiters: the others only
            self._bus.publish(payload, skip=self.local.process)
            return
        task = asyncio.get_running_loop().create_task(self._publish(payload))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _publish(self, payload: str) -> None:
        with contextlib.suppress(Exception):  # the database is down: other waiters fall back to their re-reads
            await self.db.notify(CHANNEL, payload)


async def relay(db: Database, notifier: Notifier, listening: asyncio.Event | None = None) -> None:
    """Until cancelled: wake this process's waiters for the changes any pipeline publishes; ``listening`` is
    set once the channel reaches this process."""

    def wake(payload: str) -> None:
        if payload == EVERYTHING:
            notifier.notify_all()
        else:
            notifier.notify(payload.split(","))

    if db.sqlite_path is not None:
        await SocketBus(db.sqlite_path).listen(wake, listening)
    else:
        await db.listen(CHANNEL, wake, listening)
