"""A 429 storm end to end on Redis + graphsim + an in-process worker, on a fake clock.

graphsim answers one mailbox `Retry-After: 10`; for those 10 s no request for it leaves (beyond
the one in flight), another mailbox keeps its full rate, and the first request after leaves
within 100 ms of the deadline. Deferrals cost no attempt.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import redis.asyncio as aioredis

from graphsim.faults import Fault
from graphsim.server import SimServer
from graphworks.wiring import build_runner
from graphworks_core import keys
from graphworks_core.clock import FakeClock
from ratelimits.config import ApiOverride, LimitsConfig
from ratelimits.limiter import GraphLimiter
from ratelimits.redis_backend import RedisBackend
from ratelimits.waiting import FakeClockSleeper
from tests.integration.conftest import eventually, make_settings, running_worker
from worker.client import GraphworksClient
from worker.stats import Stats

A, B = "storm@contoso.com", "calm@contoso.com"


@dataclass
class Limited:
    clock: FakeClock
    redis: aioredis.Redis
    client: GraphworksClient
    sim: SimServer
    stats: Stats

    def sent(self, mailbox: str, status: int | None = None) -> list[float]:
        """Real arrival times at graphsim of sendMail requests for `mailbox`."""
        return [r.at for r in self.sim.state.requests()
                if r.path == f"/users/{mailbox}/sendMail" and (status is None or r.status == status)]  # fmt: skip

    async def completed(self) -> int:
        return (await self.stats.snapshot()).completed


@pytest.fixture
async def limited(redis: aioredis.Redis, redis_url: str, graphsim: SimServer) -> AsyncIterator[Limited]:
    settings = make_settings(redis_url, graphsim)
    clock = FakeClock()
    # 2 requests/s per mailbox makes "full rate" countable; headroom 1: the documented numbers.
    config = LimitsConfig(apis={"outlook": ApiOverride(rate=2, per_s=1)}, max_wait_s=2, headroom=1)
    limiter = GraphLimiter(RedisBackend(redis), config, tenant="contoso", base_url=graphsim.base_url, clock=clock,
                           sleeper=FakeClockSleeper(clock), late_tolerance_s=1.0)  # fmt: skip
    # (late_tolerance_s: this clock moves in 0.1 s jumps, so every wake-up looks "late")
    runner = build_runner(settings, redis, clock=clock, limiter=limiter)
    runner.rand = lambda: 0.0
    async with running_worker(runner):
        yield Limited(clock, redis, GraphworksClient(redis, settings, clock=clock), graphsim, Stats(redis))


async def send(p: Limited, mailbox: str, n: int) -> None:
    for i in range(n):
        await p.client.send_mail(mailbox=mailbox, to=["x@contoso.com"], subject=f"s{i}", body="b")


async def test_429_storm_closes_one_mailbox_exactly_for_retry_after(limited: Limited) -> None:
    p = limited
    p.sim.state.add_fault(Fault(method="POST", path=f"/users/{A}/sendMail", status=429, retry_after="10"))
    t0 = p.clock.now()
    await send(p, A, 1)
    await eventually(lambda: _true(len(p.sent(A, 429)) == 1), what="the 429")
    # graphsim records before it answers: wait for the worker to have read the 429 and closed A.
    cooling = keys.limit_cooldown(f"outlook:contoso:{A}")
    await eventually(lambda: p.redis.exists(cooling), what="the cooldown")
    assert float(await p.redis.get(cooling)) == t0 + 10
    await send(p, A, 5)
    await send(p, B, 25)

    # 10 s of fake time in 0.1 s steps, each given a moment of real time to act on.
    while p.clock.now() < t0 + 9.9 - 1e-9:
        p.clock.set(min(p.clock.now() + 0.1, t0 + 9.9))
        await asyncio.sleep(0.01)
    await eventually(lambda: _true(len(p.sent(B)) >= 20), what="B at its full rate")
    assert len(p.sent(A)) == 1, "a request for the cooling mailbox left a worker"
    assert len(p.sent(B)) == 20  # 2/s for 9.9 s: slots 0, 0.5, ..., 9.5
    assert all(r.status == 202 for r in p.sim.state.requests() if r.path.startswith(f"/users/{B}"))

    p.clock.set(t0 + 10)  # the deadline
    deadline_real = time.time()
    await eventually(lambda: _true(len(p.sent(A)) >= 2), what="the first request after the cooldown")
    assert p.sent(A)[1] - deadline_real < 0.1

    while await p.completed() < 31:  # the rest at their pace
        p.clock.advance(0.1)
        await asyncio.sleep(0.01)
        assert p.clock.now() < t0 + 30, "jobs did not finish"
    snap = await p.stats.snapshot()
    assert (snap.completed, snap.retried, snap.dead_lettered) == (31, 1, 0)  # the 429 is the only attempt spent
    assert snap.deferred >= 5  # A's jobs waited out the cooldown in Redis, B's for their slots


async def _true(value: bool) -> bool:
    return value
