"""A deferral reschedules the job: same attempt, no history entry, its own arq job, counted; and a
real limiter's long wait is what defers a job, which then goes at its booked slot."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import redis.asyncio as aioredis

from graphsim.server import SimServer
from graphworks.wiring import build_runner
from graphworks_core.clock import FakeClock
from graphworks_core.envelope import Envelope, decode, encode
from processors.registry import JOB_TYPES
from ratelimits.base import Booking, LimitDeferred, NoLimit
from ratelimits.config import ApiOverride, LimitsConfig
from ratelimits.limiter import GraphLimiter
from ratelimits.redis_backend import RedisBackend
from ratelimits.waiting import AutoAdvanceSleeper
from tests.integration.conftest import make_settings
from worker import arq_adapter
from worker.arq_adapter import JOB_KEY_PREFIX as job_key_prefix
from worker.queue import arq_job_id

MAIL = {"mailbox": "ops@contoso.com", "to": ["a@contoso.com"], "subject": "s", "body": "b"}


async def test_a_processors_limit_deferred_reschedules_the_same_attempt_without_spending_it(
    redis: aioredis.Redis, redis_url: str, graphsim: SimServer
) -> None:
    """The runner's half alone: no limiter decides here, the processor raises LimitDeferred itself."""
    clock = FakeClock()
    runner = build_runner(make_settings(redis_url, graphsim), redis, clock=clock, limiter=NoLimit())
    booked = Booking(keys=("outlook:default:ops@contoso.com",), at=clock.now() + 5)

    async def deferring(ctx: Any, payload: Any) -> None:
        raise LimitDeferred(clock.now() + 4.5, booked, booked.keys)

    runner.job_types = {"mail": dataclasses.replace(JOB_TYPES["mail"], run=deferring)}
    env = Envelope(type="mail", payload=MAIL, attempt=2)
    try:
        assert await runner.run(encode(env), arq_job_id=arq_job_id(env)) == "deferred"
    finally:
        await runner.graph.close()

    ((member, due_ms),) = await redis.zrange(runner.queue.scheduled_key, 0, -1, withscores=True)
    job_id = member.decode().split(":", 1)[1]
    assert job_id == f"{env.id}.0.2.d1"  # not the running job's id: that arq job still exists
    assert due_ms == int((clock.now() + 4.5) * 1000)
    record = arq_adapter.deserialize(await redis.get(job_key_prefix + job_id))
    again = decode(record["a"][0])
    assert (again.attempt, again.history, again.deferrals, again.limit_booking) == (2, [], 1, booked)
    snap = await runner.stats.snapshot()
    assert (snap.deferred, snap.retried, snap.dead_lettered) == (1, 0, 0)


async def test_a_limiter_wait_over_max_wait_defers_the_job_to_its_booked_slot(
    redis: aioredis.Redis, redis_url: str, graphsim: SimServer
) -> None:
    """The real limiter decides: one send per 10 s per mailbox and max_wait_s 1, so the second send
    would wait 10 s; the job is deferred with that slot booked (no Graph request), and run again
    it goes exactly at the slot. Waits move the fake clock (AutoAdvanceSleeper), never real time."""
    clock = FakeClock()
    config = LimitsConfig(apis={"outlook": ApiOverride(rate=1, per_s=10)}, max_wait_s=1, headroom=1.0)
    sleeper = AutoAdvanceSleeper(clock)
    limiter = GraphLimiter(RedisBackend(redis), config, tenant="default", base_url=graphsim.base_url,
                           clock=clock, sleeper=sleeper)  # fmt: skip
    runner = build_runner(make_settings(redis_url, graphsim), redis, clock=clock, limiter=limiter)
    first, second = Envelope(type="mail", payload=MAIL), Envelope(type="mail", payload=MAIL)
    t0 = clock.now()
    try:
        assert await runner.run(encode(first), arq_job_id=arq_job_id(first)) == "completed"
        assert await runner.run(encode(second), arq_job_id=arq_job_id(second)) == "deferred"
        assert clock.now() == t0 and sleeper.slept == []  # deferred, not slept
        assert len(graphsim.state.requests()) == 1

        ((member, due_ms),) = await redis.zrange(runner.queue.scheduled_key, 0, -1, withscores=True)
        job_id = member.decode().split(":", 1)[1]
        again = decode(arq_adapter.deserialize(await redis.get(job_key_prefix + job_id))["a"][0])
        assert again.id == second.id and (again.attempt, again.history, again.deferrals) == (0, [], 1)
        assert again.limit_booking is not None
        assert again.limit_booking.at == pytest.approx(t0 + 10, abs=1e-3)  # the mailbox's next slot
        # due before the slot by DEFER_LEAD_S, capped at half of max_wait_s
        assert due_ms / 1000 == pytest.approx(t0 + 10 - 0.5, abs=1e-3)
        snap = await runner.stats.snapshot()
        assert (snap.deferred, snap.completed, snap.retried) == (1, 1, 0)

        clock.set(due_ms / 1000)
        assert await runner.run(encode(again), arq_job_id=job_id) == "completed"
    finally:
        await runner.graph.close()
    sends = [r for r in graphsim.state.requests() if r.path.endswith("/sendMail")]
    assert [r.status for r in sends] == [202, 202]
    assert clock.now() == pytest.approx(again.limit_booking.at, abs=1e-3)  # it slept to its slot, no later
