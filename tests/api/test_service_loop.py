"""The background loops' control (api/service_loop.py), in one event loop: one base runs the anchoring worker,
the indexer, the copy worker and the delivery loop. A wake-up that arrives while a step is under way ends the
sleep that follows it: the anchoring worker's ``on_mined`` wakes the indexer exactly then (it may be writing the
block that holds the transaction), and a lost wake-up left an anchored submission waiting for the safety poll.
A failed step is recorded, logged and retried; a chain loop backs off through a node outage instead."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from docchain.api import metrics
from docchain.api.chainctx import Bound, ChainContext
from docchain.api.db import Database
from docchain.api.notifications.delivery import DeliveryWorker
from docchain.api.notify import Notifier
from docchain.api.service_loop import ERROR_PAUSE_S, BackgroundLoop, ServiceLoop
from docchain.api.settings import Settings
from docchain.api.storage.local import LocalStorage
from docchain.api.storage.replicas import CopyWorker, Replicas
from docchain.chain.errors import NodeError

SAFETY_POLL_S = 3600.0
STOP_WITHIN_S = 5.0  # a stopped loop ends this soon (its sleeps are an hour long)


class _Chain:
    async def bound(self) -> Any:
        return None


def _settings() -> Settings:
    return cast(Settings, SimpleNamespace(idle_poll_s=SAFETY_POLL_S))


class Stepper(ServiceLoop):
    component = "test"

    def __init__(self) -> None:
        super().__init__(_settings(), cast(Database, None), cast(ChainContext, _Chain()), Notifier())
        self.steps = 0
        self.in_step = asyncio.Event()
        self.release = asyncio.Event()

    async def step(self, bound: Bound) -> float | None:
        self.steps += 1
        if self.steps == 1:
            self.in_step.set()
            await self.release.wait()
        return self.idle_s


class Scripted(BackgroundLoop):
    """Each step takes the next outcome: a pause to return or an exception to raise; then the safety poll."""

    component = "scripted"
    logger = logging.getLogger("tests.service_loop")

    def __init__(self, *outcomes: float | Exception | None) -> None:
        super().__init__()
        self.outcomes = list(outcomes)
        self.starts: list[float] = []
        self.slept: list[float] = []

    async def _take_step(self) -> float | None:
        self.starts.append(asyncio.get_running_loop().time())
        outcome = self.outcomes.pop(0) if self.outcomes else SAFETY_POLL_S
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def _sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        await super()._sleep(seconds)


STOP_IN_OUTAGE = NodeError("stopped during an outage")  # the step stops its loop, then fails


class Outage(ServiceLoop):
    """A chain loop whose steps take the next outcome; its back-off pauses are recorded, not slept."""

    component = "outage-test"

    def __init__(self, *outcomes: float | Exception) -> None:
        super().__init__(_settings(), cast(Database, None), cast(ChainContext, _Chain()), Notifier())
        self.outcomes = list(outcomes)
        self.slept: list[float] = []
        self.errors_seen: list[str | None] = []  # last_error as node_down found it

    async def step(self, bound: Bound) -> float | None:
        outcome = self.outcomes.pop(0) if self.outcomes else SAFETY_POLL_S
        if outcome is STOP_IN_OUTAGE:
            self.stop()
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def node_down(self) -> None:
        self.errors_seen.append(self.last_error)

    async def _sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if seconds >= SAFETY_POLL_S:
            await super()._sleep(seconds)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self, level: int) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno == level]


@contextmanager
def _logged(*names: str) -> Iterator[_Records]:
    """What the named loggers log, whatever configured them (api/logs.py stops propagation to the root)."""
    handler = _Records()
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)


async def _until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not reached within 5 s: {what}")


async def _stopped(loop: BackgroundLoop, task: Awaitable[None]) -> None:
    loop.stop()
    await asyncio.wait_for(task, STOP_WITHIN_S)


# ------------------------------------------------------------------ wake-ups, sleeps, stop, restart


async def _wake_during_step() -> int:
    loop = Stepper()
    task = asyncio.create_task(loop.run())
    await loop.in_step.wait()
    loop.wake()  # mid-step
    loop.release.set()
    for _ in range(100):  # the second step follows at once, or after the hour-long safety poll
        await asyncio.sleep(0.01)
        if loop.steps >= 2:
            break
    await _stopped(loop, task)
    return loop.steps


def test_a_wake_up_during_a_step_ends_the_next_sleep() -> None:
    assert asyncio.run(_wake_during_step()) == 2


async def _idle_until_woken() -> tuple[int, int]:
    loop = Stepper()
    loop.release.set()
    task = asyncio.create_task(loop.run())
    await asyncio.sleep(0.2)
    idle = loop.steps  # asleep after one step: nothing woke it
    loop.wake()
    await asyncio.sleep(0.2)
    woken = loop.steps
    await _stopped(loop, task)
    return idle, woken


def test_an_idle_loop_sleeps_until_woken() -> None:
    assert asyncio.run(_idle_until_woken()) == (1, 2)


async def _pauses() -> Scripted:
    loop = Scripted(None, 0.0, 0.05)
    task = asyncio.create_task(loop.run())
    await _until(lambda: len(loop.starts) == 4, "the step after the 0.05 s pause")
    await _stopped(loop, task)
    return loop


def test_none_or_zero_steps_again_at_once_and_a_pause_is_slept() -> None:
    loop = asyncio.run(_pauses())
    assert loop.slept == [0.05, SAFETY_POLL_S]  # the fourth step asked for the safety poll, cut by the stop
    assert loop.starts[3] - loop.starts[2] >= 0.05


async def _stop_and_restart() -> tuple[int, int, int]:
    loop = Scripted()
    task = asyncio.create_task(loop.run())
    await _until(lambda: loop.slept == [SAFETY_POLL_S], "the first sleep")
    await _stopped(loop, task)
    stopped = len(loop.starts)
    await asyncio.wait_for(loop.run(), STOP_WITHIN_S)  # still stopped: no step
    not_restarted = len(loop.starts)
    loop.restart()
    task = asyncio.create_task(loop.run())
    await _until(lambda: len(loop.starts) == 2, "a step after the restart")
    await _stopped(loop, task)
    return stopped, not_restarted, len(loop.starts)


def test_a_stop_ends_the_sleep_and_a_restart_runs_the_loop_again() -> None:
    assert asyncio.run(_stop_and_restart()) == (1, 1, 2)


class Spaced(Scripted):
    min_step_s = 0.1


async def _spaced() -> list[float]:
    loop = Spaced(None, None, None)
    task = asyncio.create_task(loop.run())
    for _ in range(30):  # wake-ups do not shorten the spacing
        loop.wake()
        await asyncio.sleep(0.01)
    await _until(lambda: len(loop.starts) == 4, "four spaced steps")
    await _stopped(loop, task)
    return loop.starts


def test_min_step_s_spaces_the_steps_whatever_wakes_the_loop() -> None:
    starts = asyncio.run(_spaced())
    assert all(b - a >= 0.1 - 0.005 for a, b in zip(starts, starts[1:], strict=False))


class LongSpaced(Scripted):
    min_step_s = SAFETY_POLL_S


async def _stop_while_spacing() -> tuple[int, int]:
    loop = LongSpaced(None)
    task = asyncio.create_task(loop.run())
    await _until(lambda: len(loop.starts) == 1, "the first step")
    loop.wake()
    await asyncio.sleep(0.05)
    woken = len(loop.starts)
    await _stopped(loop, task)
    return woken, len(loop.starts)


def test_a_stop_ends_the_wait_between_spaced_steps() -> None:
    assert asyncio.run(_stop_while_spacing()) == (1, 1)


# ------------------------------------------------------------------ failures


async def _failure() -> tuple[Scripted, str | None, str | None, _Records]:
    with _logged(Scripted.logger.name) as log:
        loop = Scripted(RuntimeError("database down"))
        task = asyncio.create_task(loop.run())
        await _until(lambda: loop.slept == [ERROR_PAUSE_S], "the pause after the failure")
        failed = loop.last_error
        loop.wake()  # ends the pause: the retry follows at once
        await _until(lambda: len(loop.starts) == 2, "the retry")
        recovered = loop.last_error
        await _stopped(loop, task)
    return loop, failed, recovered, log


def test_a_failed_step_is_recorded_logged_and_retried_after_a_pause_a_wake_up_cuts() -> None:
    loop, failed, recovered, log = asyncio.run(_failure())
    assert (failed, recovered) == ("RuntimeError('database down')", None)
    assert log.messages(logging.ERROR) == ["scripted step failed"]
    exc_info = log.records[0].exc_info
    assert exc_info is not None and isinstance(exc_info[1], RuntimeError)


def _node_errors(component: str) -> float:
    return metrics.PIPELINE.get_sample_value("docchain_node_errors_total", {"component": component}) or 0.0


async def _outage(loop: Outage) -> None:
    task = asyncio.create_task(loop.run())
    await _until(lambda: loop.slept[-1:] == [SAFETY_POLL_S], "the sleep after the outage")
    await _stopped(loop, task)


def test_a_node_outage_backs_off_logs_once_and_says_when_it_ends() -> None:
    down = NodeError("connection refused")
    loop = Outage(down, down, down, down, down)
    before = _node_errors(loop.component)
    with _logged("docchain.api.pipeline") as log:
        asyncio.run(_outage(loop))
    assert loop.slept == [0.2, 0.4, 0.8, 1.0, 1.0, SAFETY_POLL_S]
    assert loop.errors_seen == ["connection refused"] * 5 and loop.last_error is None
    assert _node_errors(loop.component) - before == 5
    assert log.messages(logging.WARNING) == ["node unavailable; outage-test paused"]
    assert log.messages(logging.INFO) == ["node reachable again; outage-test resumed"]


class _DownChain:
    """A node that refuses every connection: each binding attempt fails at once."""

    def __init__(self) -> None:
        self.attempts = 0

    async def bound(self) -> Any:
        self.attempts += 1
        raise NodeError("connection refused")


class WakesWhenDown(ServiceLoop):
    """As the anchoring worker: a node outage wakes the loop (its next step is to reconcile first)."""

    component = "wakes-when-down"

    def __init__(self, chain: _DownChain) -> None:
        super().__init__(_settings(), cast(Database, None), cast(ChainContext, chain), Notifier())

    async def step(self, bound: Bound) -> float | None:
        raise AssertionError("never bound")

    def node_down(self) -> None:
        self.wake()


async def _down_for(seconds: float) -> int:
    chain = _DownChain()
    loop = WakesWhenDown(chain)
    task = asyncio.create_task(loop.run())
    await asyncio.sleep(seconds)
    await _stopped(loop, task)
    return chain.attempts


def test_a_loop_that_wakes_itself_on_an_outage_still_backs_off() -> None:
    """Attempts at 0, 0.2 and 0.6 s within 1.2 s: the wake-up node_down sets does not cut the back-off (it did,
    and a pipeline whose node was down spun on binding attempts at a third of a core)."""
    with _logged("docchain.api.pipeline"):
        attempts = asyncio.run(_down_for(1.2))
    assert 2 <= attempts <= 4, attempts


def test_any_other_failure_of_a_chain_loop_keeps_the_back_off_and_pauses_one_second() -> None:
    down = NodeError("connection refused")
    loop = Outage(down, ValueError("bad row"), down)
    with _logged("docchain.api.pipeline") as log:
        asyncio.run(_outage(loop))
    assert loop.slept == [0.2, ERROR_PAUSE_S, 0.4, SAFETY_POLL_S]
    assert log.messages(logging.ERROR) == ["outage-test step failed"]
    assert log.messages(logging.WARNING) == ["node unavailable; outage-test paused"]  # one outage, not two
    assert log.messages(logging.INFO) == ["node reachable again; outage-test resumed"]


async def _restart_mid_outage() -> Outage:
    down = NodeError("connection refused")
    loop = Outage(down, down, STOP_IN_OUTAGE)
    await asyncio.wait_for(loop.run(), STOP_WITHIN_S)  # stopped during its third failed step
    first = list(loop.slept)
    loop.outcomes = [down]
    loop.restart()
    await _outage(loop)
    assert first == [0.2, 0.4, 0.8]
    return loop


def test_a_restart_starts_the_back_off_afresh() -> None:
    with _logged("docchain.api.pipeline") as log:
        loop = asyncio.run(_restart_mid_outage())
    assert loop.slept[3:] == [0.2, SAFETY_POLL_S]  # not 1.0: the outage before the stop is over
    assert log.messages(logging.WARNING) == ["node unavailable; outage-test paused"] * 2


# ------------------------------------------------------------------ the copy and delivery loops on the base


@dataclass
class Seen:
    failed: dict[str, str | None]
    recovered: dict[str, str | None]
    client_closed: bool


async def _storage_loops(tmp_path: Path) -> Seen:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'loops.db'}")  # no database yet: every step fails
    settings = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    replicas = Replicas([LocalStorage(tmp_path / "first")], tmp_path / "spool")
    deliveries = DeliveryWorker(db, settings)
    loops: dict[str, BackgroundLoop] = {"copy": CopyWorker(db, replicas, idle_s=SAFETY_POLL_S), "delivery": deliveries}
    tasks = [asyncio.create_task(loop.run()) for loop in loops.values()]
    try:
        await _until(lambda: all(loop.last_error for loop in loops.values()), "both loops failed a step")
        failed = {name: loop.last_error for name, loop in loops.items()}
        await db.migrate()
        for loop in loops.values():
            loop.wake()  # ends the one-second pause after the failure
        await _until(lambda: all(loop.last_error is None for loop in loops.values()), "both loops recovered")
        recovered = {name: loop.last_error for name, loop in loops.items()}
        for loop, task in zip(loops.values(), tasks, strict=True):
            await _stopped(loop, task)
        return Seen(failed, recovered, deliveries._client is None)
    finally:
        for task in tasks:
            task.cancel()
        await db.close()


def test_the_copy_and_delivery_loops_fail_log_and_recover_on_a_wake_up(tmp_path: Path) -> None:
    with _logged("docchain.api.storage", "docchain.api.notifications") as log:
        seen = asyncio.run(_storage_loops(tmp_path))
    assert all((error or "").startswith("OperationalError(") for error in seen.failed.values()), seen.failed
    assert seen.recovered == {"copy": None, "delivery": None}
    assert seen.client_closed
    failures = {r.name: r.getMessage() for r in log.records if r.levelno == logging.ERROR}
    assert failures == {
        "docchain.api.storage": "copy step failed",
        "docchain.api.notifications": "delivery step failed",
    }
