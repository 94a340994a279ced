"""SQLite's notification channel (api/notify.py SocketBus): what every listening process receives, what a
publisher does with the sockets of processes that are gone, the process the pipeline woke directly, and the
database path too deep for a socket."""

from __future__ import annotations

import asyncio
import socket
import stat
from pathlib import Path

from docchain.api.db import Database
from docchain.api.notify import Notifier, Publishing, SocketBus


async def _listening(bus: SocketBus, received: list[str]) -> asyncio.Task[None]:
    task = asyncio.create_task(bus.listen(received.append))
    for _ in range(100):
        await asyncio.sleep(0.01)
        if any(bus.directory.glob("*.sock")):
            return task
    raise AssertionError("the bus did not start listening")


def test_every_listener_receives_and_a_dead_listeners_socket_is_removed(tmp_path: Path) -> None:
    database = str(tmp_path / "docchain.db")

    async def scenario() -> tuple[list[str], list[str], bool]:
        received: list[str] = []
        listener = await _listening(SocketBus(database), received)
        # a killed process leaves its bound socket file; nobody reads it any more
        dead = SocketBus(database).directory / "999999999.sock"
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as gone:
            gone.bind(str(dead))
        SocketBus(database).publish("id1,id2")
        SocketBus(database).publish("*")
        for _ in range(100):
            if len(received) == 2:
                break
            await asyncio.sleep(0.01)
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
        return received, sorted(p.name for p in SocketBus(database).directory.iterdir()), dead.exists()

    received, left, dead_exists = asyncio.run(scenario())
    assert received == ["id1,id2", "*"]
    assert not dead_exists
    assert left == []  # the listener removed its own socket when it stopped
    mode = stat.S_IMODE(SocketBus(database).directory.stat().st_mode)
    assert mode == 0o700, oct(mode)


def test_a_database_too_deep_for_a_socket_path_publishes_nothing_and_fails_nothing(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 100) / "docchain.db"
    bus = SocketBus(str(deep))
    bus.publish("id1")  # no directory, no error

    async def scenario() -> bool:
        listener = asyncio.create_task(bus.listen(lambda _: None))
        await asyncio.sleep(0.05)
        running = not listener.done()
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
        return running

    assert asyncio.run(scenario())  # it waits like a listener (the waiters' re-reads remain)
    assert not bus.directory.exists()


def test_the_pipeline_skips_the_socket_of_the_process_it_woke_directly(tmp_path: Path) -> None:
    database = tmp_path / "docchain.db"

    async def scenario() -> tuple[bool, bytes, list[str]]:
        relayed: list[str] = []  # this process's relay, as the API process's own
        listener = await _listening(SocketBus(str(database)), relayed)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as other:  # another API process (a worker)
            other.bind(str(SocketBus(str(database)).directory / "999999998.sock"))
            other.settimeout(5)
            local = Notifier()
            db = Database(f"sqlite+aiosqlite:///{database}")
            async with local.watch("id1") as woken:
                Publishing(local, db).notify(["id1"])
                direct = woken.is_set()
            got = await asyncio.to_thread(other.recv, 100)
            await db.close()
        await asyncio.sleep(0.2)  # time enough for a datagram to this process to arrive
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
        return direct, got, relayed

    direct, got, relayed = asyncio.run(scenario())
    assert direct
    assert got == b"id1"
    assert relayed == []  # woken once, directly: not a second time through its socket
