"""How the limiter waits: until a time on the injected clock. The one seam tests replace.

`SystemSleeper` sleeps for real. `FakeClockSleeper` returns once a FakeClock, moved by the
test, reaches the time (polling every millisecond of real time), so a whole pipeline can run
on a fake clock. `AutoAdvanceSleeper` moves the fake clock itself: unit tests then see every
wait as a jump of the clock and never sleep.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from graphworks_core.clock import Clock, FakeClock


class Sleeper(Protocol):
    async def until(self, when: float) -> None:
        """Return once the clock reads `when` or later."""


class SystemSleeper:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    async def until(self, when: float) -> None:
        delay = when - self.clock.now()
        if delay > 0:
            await asyncio.sleep(delay)


class FakeClockSleeper:
    def __init__(self, clock: Clock, poll_s: float = 0.001) -> None:
        self.clock = clock
        self.poll_s = poll_s

    async def until(self, when: float) -> None:
        while self.clock.now() < when:  # noqa: ASYNC110  (a FakeClock has no event to wait on)
            await asyncio.sleep(self.poll_s)


class AutoAdvanceSleeper:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.slept: list[float] = []

    async def until(self, when: float) -> None:
        delay = when - self.clock.now()
        if delay > 0:
            self.slept.append(delay)
            self.clock.advance(delay)
        await asyncio.sleep(0)
