"""The pipeline loops' scheduling (api/service_loop.py), in one event loop: a wake-up that arrives while a step
is under way ends the sleep that follows it. The anchoring worker's ``on_mined`` wakes the indexer exactly
then (it may be writing the block that holds the transaction), and a lost wake-up left an anchored submission
waiting for the safety poll."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

from docchain.api.chainctx import Bound, ChainContext
from docchain.api.db import Database
from docchain.api.notify import Notifier
from docchain.api.service_loop import ServiceLoop
from docchain.api.settings import Settings

SAFETY_POLL_S = 3600.0


class _Chain:
    async def bound(self) -> Any:
        return None


class Stepper(ServiceLoop):
    component = "test"

    def __init__(self) -> None:
        settings = cast(Settings, SimpleNamespace(idle_poll_s=SAFETY_POLL_S))
        super().__init__(settings, cast(Database, None), cast(ChainContext, _Chain()), Notifier())
        self.steps = 0
        self.in_step = asyncio.Event()
        self.release = asyncio.Event()

    async def step(self, bound: Bound) -> float | None:
        self.steps += 1
        if self.steps == 1:
            self.in_step.set()
            await self.release.wait()
        return self.idle_s


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
    loop.stop()
    await asyncio.wait_for(task, 5)
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
    loop.stop()
    await asyncio.wait_for(task, 5)
    return idle, woken


def test_an_idle_loop_sleeps_until_woken() -> None:
    assert asyncio.run(_idle_until_woken()) == (1, 2)
