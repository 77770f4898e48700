"""A long limiter wait defers the job: same attempt, no history entry, its own arq job, counted."""

from __future__ import annotations

import dataclasses
from typing import Any

import redis.asyncio as aioredis

from graphsim.server import SimServer
from graphworks.wiring import build_runner
from graphworks_core.clock import FakeClock
from graphworks_core.envelope import Envelope, decode, encode
from processors.registry import JOB_TYPES
from ratelimits.base import Booking, LimitDeferred, NoLimit
from tests.integration.conftest import make_settings
from worker import arq_adapter
from worker.arq_adapter import JOB_KEY_PREFIX as job_key_prefix
from worker.queue import arq_job_id

MAIL = {"mailbox": "ops@contoso.com", "to": ["a@contoso.com"], "subject": "s", "body": "b"}


async def test_deferral_reschedules_the_same_attempt_without_spending_it(
    redis: aioredis.Redis, redis_url: str, graphsim: SimServer
) -> None:
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
