"""A job that becomes due while the worker is full (a booked limiter slot, a higher priority) is
the next one it starts: arq drops the rest of a read batch when its slots fill, and the runner
relies on that to get a booked job to its slot in time (ratelimits/limiter.py)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import redis.asyncio as aioredis

from graphsim.server import SimServer
from processors.registry import JOB_TYPES
from tests.integration.conftest import eventually, make_settings, running_pipeline

MAIL = {"mailbox": "ops@contoso.com", "to": ["a@contoso.com"], "body": "b"}


async def test_a_job_queued_while_the_worker_is_full_overtakes_ids_read_before(
    redis: aioredis.Redis, redis_url: str, graphsim: SimServer
) -> None:
    settings = make_settings(redis_url, graphsim, worker_max_jobs=3)
    started: list[str] = []
    release: dict[str, asyncio.Event] = {}

    async def blocking(ctx: Any, payload: Any) -> None:
        started.append(payload.subject)
        await release.setdefault(payload.subject, asyncio.Event()).wait()

    def free(subject: str) -> None:
        release.setdefault(subject, asyncio.Event()).set()

    async with running_pipeline(redis, graphsim, settings) as p:
        p.runner.job_types = {"mail": dataclasses.replace(JOB_TYPES["mail"], run=blocking)}
        for i in range(1, 7):
            await p.client.send_mail(**MAIL, subject=f"low{i}", priority=1)
        await eventually(lambda: _is(started, ["low1", "low2", "low3"]), what="three jobs running")
        free("low1")  # one slot frees: the worker reads the queue with one slot free
        await eventually(lambda: _is(started, ["low1", "low2", "low3", "low4"]), what="the fourth job")
        await p.client.send_mail(**MAIL, subject="urgent", priority=10)
        free("low2")
        await eventually(lambda: _is(started[:5], ["low1", "low2", "low3", "low4", "urgent"]), what="the urgent job")
        for subject in ("low3", "low4", "low5", "low6", "urgent"):
            free(subject)
        await eventually(lambda: _done(p, 7), what="every job")


async def _is(got: list[str], want: list[str]) -> bool:
    return got == want


async def _done(p: Any, n: int) -> bool:
    return bool(await p.completed() == n)
