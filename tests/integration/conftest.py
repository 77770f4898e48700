"""A real pipeline in the test's event loop: Redis, graphsim over HTTP, an arq worker, a fake clock."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
import redis.asyncio as aioredis

from graphsim.server import SimServer
from graphworks.wiring import build_runner, build_worker
from graphworks_core.clock import FakeClock
from graphworks_core.settings import Settings, load_settings
from ratelimits.base import Limiter, NoLimit
from worker.arq_adapter import GraphworksWorker
from worker.client import GraphworksClient
from worker.deadletter.models import DeadLetterEntry
from worker.runner import Runner
from worker.stats import Stats


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 10.0, what: str = "condition") -> None:
    """Wait for a condition the worker brings about (real time is only a safety net, never the test)."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


@dataclass
class Pipeline:
    settings: Settings
    redis: aioredis.Redis
    sim: SimServer
    clock: FakeClock
    runner: Runner
    client: GraphworksClient
    worker: GraphworksWorker
    stats: Stats
    _seen: set[str] = field(default_factory=set)

    async def completed(self) -> int:
        return (await self.stats.snapshot()).completed

    async def dead_letters(self) -> list[DeadLetterEntry]:
        return (await self.runner.dlq.page(limit=100)).entries

    async def scheduled(self) -> list[tuple[str, float]]:
        """(member, due epoch seconds) of jobs waiting for a future time."""
        rows = await self.redis.zrange(self.runner.queue.scheduled_key, 0, -1, withscores=True)
        return [(m.decode(), s / 1000) for m, s in rows]

    async def advance_to_next_retry(self) -> float:
        """Move the clock exactly to the next scheduled job's due time; returns the step taken."""

        async def new_one() -> bool:
            rows = await self.scheduled()
            return bool(rows) and rows[0][0] not in self._seen

        await eventually(new_one, what="a new scheduled retry")
        member, due = (await self.scheduled())[0]
        self._seen.add(member)
        step = max(0.0, due - self.clock.now())
        self.clock.set(due)
        return step

    def graph_requests(self, method: str = "POST") -> list[object]:
        return [r for r in self.sim.state.requests() if r.method == method]


def make_settings(redis_url: str, sim: SimServer, **extra: object) -> Settings:
    values: dict[str, object] = {
        "redis_url": redis_url,
        "graph_base_url": sim.base_url,
        "graph_static_token": "test-token",
        "worker_poll_delay_s": 0.005,
        "worker_promote_interval_s": 0.005,
        "worker_job_timeout_s": 20.0,
        "graph_call_timeout_s": 5.0,
    }
    values.update(extra)
    return load_settings(**values)


@contextlib.asynccontextmanager
async def running_worker(runner: Runner) -> AsyncIterator[GraphworksWorker]:
    """An arq worker for `runner` in this event loop, stopped (and its Graph client closed) on exit."""
    worker = build_worker(runner, handle_signals=False)
    task = asyncio.create_task(worker.main())
    try:
        yield worker
    finally:
        task.cancel()
        jobs = list(worker.tasks.values())
        for t in jobs:
            t.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        # Retrieve what the job tasks ended with, so none is reported as "never retrieved" at exit.
        await asyncio.gather(*jobs, return_exceptions=True)
        await runner.graph.close()


@contextlib.asynccontextmanager
async def running_pipeline(
    redis: aioredis.Redis, sim: SimServer, settings: Settings, *, limiter: Limiter | None = None
) -> AsyncIterator[Pipeline]:
    """Runner + worker + client on a fake clock, no jitter; no rate limits unless given (their
    waits would run on the fake clock; tests/ratelimits brings its own)."""
    clock = FakeClock()
    runner = build_runner(settings, redis, clock=clock, limiter=limiter or NoLimit())
    runner.rand = lambda: 0.0  # no jitter: delays are the policy's nominal values
    async with running_worker(runner) as worker:
        client = GraphworksClient(redis, settings, clock=clock)
        yield Pipeline(settings, redis, sim, clock, runner, client, worker, Stats(redis))


@pytest.fixture
async def pipeline(redis: aioredis.Redis, redis_url: str, graphsim: SimServer) -> AsyncIterator[Pipeline]:
    async with running_pipeline(redis, graphsim, make_settings(redis_url, graphsim)) as pipe:
        yield pipe
