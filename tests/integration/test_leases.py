"""Leases: a running job's in-progress key lives WORKER_LEASE_S and its worker renews it, so a job
that runs for many leases is never started by a second worker; the heartbeat also keeps the
worker's liveness record. (A SIGKILLed worker's job starting again within one lease:
tests/integration/test_worker_process.py.)"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
from typing import Any

import redis.asyncio as aioredis

from graphsim.server import SimServer
from graphworks.wiring import build_runner
from graphworks_core.clock import FakeClock
from processors.registry import JOB_TYPES
from ratelimits.base import NoLimit
from tests.integration.conftest import eventually, make_settings, running_pipeline, running_worker
from worker.liveness import live_workers

MAIL = {"mailbox": "ops@contoso.com", "to": ["a@contoso.com"], "subject": "long", "body": "b"}


async def test_a_job_running_for_several_leases_is_never_started_twice(
    redis: aioredis.Redis, redis_url: str, graphsim: SimServer
) -> None:
    settings = make_settings(redis_url, graphsim, worker_lease_s=1.0, redis_socket_timeout_s=0.5)
    starts: list[str] = []
    finish = asyncio.Event()

    async def long_job(ctx: Any, payload: Any) -> None:
        starts.append(ctx.envelope.id)
        await finish.wait()

    async with running_pipeline(redis, graphsim, settings) as p:
        p.runner.job_types = {"mail": dataclasses.replace(JOB_TYPES["mail"], run=long_job)}
        other = build_runner(settings, redis, clock=FakeClock(), limiter=NoLimit())
        other.job_types = p.runner.job_types
        async with running_worker(other) as second:
            job_id = await p.client.send_mail(**MAIL)
            await eventually(lambda: _true(len(starts) == 1), what="the job to start")
            first_beats = p.worker.beats + second.beats
            # Seven heartbeats of a worker are more than two leases (a beat is a third of one):
            # without renewal the key would have lapsed twice over and the other worker started it.
            await eventually(lambda: _true(p.worker.beats + second.beats >= first_beats + 14), timeout_s=30,
                             what="two leases of heartbeats")  # fmt: skip
            assert starts == [job_id]
            ttl_ms = await redis.pttl(f"arq:in-progress:{job_id}.0.0")
            assert 0 < ttl_ms <= 1000
            workers = await live_workers(redis)
            assert {w.id for w in workers} == {p.worker.info.id, second.info.id}
            assert sum(w.running for w in workers) == 1
            health = await asyncio.to_thread(
                subprocess.run, [sys.executable, "-m", "graphworks", "health", "--json"],
                env={**os.environ, "REDIS_URL": redis_url}, capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert health.returncode == 0, health.stderr
            shown = json.loads(health.stdout)
            assert shown["ok"] is True
            assert {w["id"] for w in shown["workers"]} == {w.id for w in workers}
            finish.set()
            await eventually(lambda: _completed(p, 1), what="the job to complete")
        assert starts == [job_id]
    assert await live_workers(redis) == []  # both retired on the way out


async def _true(value: bool) -> bool:
    return value


async def _completed(p: Any, n: int) -> bool:
    return bool(await p.completed() == n)
