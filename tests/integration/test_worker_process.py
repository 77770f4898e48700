"""Real `graphworks worker` processes: a SIGKILL mid-job loses nothing and counts the job once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest
import redis.asyncio as aioredis

from graphsim.faults import Fault
from graphsim.server import SimServer
from tests.integration.conftest import eventually
from tests.integration.processes import jobs_queued
from worker.stats import Stats

pytestmark = pytest.mark.slow


def worker_env(redis_url: str, sim: SimServer, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        REDIS_URL=redis_url,
        GRAPH_BASE_URL=sim.base_url,
        GRAPH_STATIC_TOKEN="test-token",
        WORKER_JOB_TIMEOUT_S="4",
        GRAPH_CALL_TIMEOUT_S="3",
        WORKER_LEASE_S="2",
        REDIS_SOCKET_TIMEOUT_S="1",
        **extra,
    )
    return env


def graphworks(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "graphworks", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip


async def test_sigkilled_worker_loses_nothing_and_the_job_counts_once(
    redis: aioredis.Redis, redis_url: str, graphsim: SimServer
) -> None:
    env = worker_env(redis_url, graphsim)
    enq = subprocess.run(  # noqa: ASYNC221  (a short CLI call before anything else runs)
        [sys.executable, "-m", "graphworks", "enqueue", "mail", "--mailbox", "ops@contoso.com", "--to", "a@contoso.com",
         "--subject", "s", "--body", "b"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    job_id = enq.stdout.strip()
    # The first delivery hangs in graphsim, so the worker is mid-job when it dies.
    graphsim.state.add_fault(Fault(method="POST", path="/users/*/sendMail", kind="slow", delay_s=30))

    first = graphworks("worker", env=env)
    try:
        await eventually(lambda: _fault_taken(graphsim), timeout_s=20, what="the first worker to be mid-request")
        assert await redis.exists(f"arq:in-progress:{job_id}.0.0") == 1
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()

    started = time.monotonic()
    second = graphworks("worker", "--burst", env=env)
    try:
        _, err = await asyncio.to_thread(second.communicate, timeout=60)
    finally:
        if second.poll() is None:
            second.kill()
    assert second.returncode == 0, err
    # The dead worker's lease (2 s, whatever the job timeout) lapses and the job runs again: the
    # second worker's start-up (about 1-2 s) plus one lease, with room for a slow machine.
    assert time.monotonic() - started < 15

    snap = await Stats(redis).snapshot()
    assert (snap.completed, snap.dead_lettered, await jobs_queued(redis), snap.scheduled) == (1, 0, 0, 0)
    delivered = [r for r in graphsim.state.requests() if r.status == 202]
    assert len(delivered) == 1
    assert f"job={job_id}" in err and "outcome=completed" in err


async def _fault_taken(sim: SimServer) -> bool:
    return not sim.state.faults()
