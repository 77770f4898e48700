"""What the benches share: a timed sample of N jobs (wall and process CPU), with optional profiling."""

from __future__ import annotations

import cProfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Sample:
    jobs: int
    wall_s: float
    cpu_s: float

    @property
    def jobs_per_s(self) -> float:
        return self.jobs / self.wall_s

    @property
    def cpu_ms_per_job(self) -> float:
        return self.cpu_s * 1000 / self.jobs

    @property
    def cpu_us_per_job(self) -> float:
        return self.cpu_s * 1e6 / self.jobs


async def timed(n: int, work: Callable[[], Awaitable[None]], profile: cProfile.Profile | None = None) -> Sample:
    """Time (and optionally profile) only `work`."""
    if profile is not None:
        profile.enable()
    try:
        cpu0, t0 = time.process_time(), time.perf_counter()
        await work()
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    finally:
        if profile is not None:
            profile.disable()
    return Sample(n, wall, cpu)
