"""SIGTERM: a worker takes nothing new, lets running jobs finish within WORKER_SHUTDOWN_GRACE_S,
hands the rest back to the queue at once without spending an attempt, and exits 0."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys

import pytest
import redis.asyncio as aioredis

from graphsim.faults import Fault
from graphsim.server import SimServer
from tests.integration.conftest import eventually
from tests.integration.processes import graphworks, graphworks_env, jobs_queued
from worker.stats import Stats

pytestmark = pytest.mark.slow


def _enqueue(env: dict[str, str], subject: str) -> str:
    done = subprocess.run(  # a short CLI call before the worker starts
        [sys.executable, "-m", "graphworks", "enqueue", "mail", "--mailbox", "ops@contoso.com", "--to", "a@contoso.com",
         "--subject", subject, "--body", "b"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.strip()


async def _mid_request(sim: SimServer) -> bool:
    # graphsim records a request once it has answered; a fault is used up when a request takes it.
    return not sim.state.faults()


async def _terminated(worker: subprocess.Popen[str], sim: SimServer) -> str:
    """SIGTERM once the job is mid-request; the worker's stderr once it exited 0."""
    try:
        await eventually(lambda: _mid_request(sim), timeout_s=20, what="the job mid-request")
        worker.send_signal(signal.SIGTERM)
        _, err = await asyncio.to_thread(worker.communicate, timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(timeout=10)
    assert worker.returncode == 0, err
    return err


async def test_sigterm_lets_a_short_job_finish_and_exits_0(
    redis: aioredis.Redis, redis_url: str, graphsim: SimServer
) -> None:
    env = graphworks_env(redis_url, graphsim, WORKER_SHUTDOWN_GRACE_S="10")
    _enqueue(env, "short")
    graphsim.state.add_fault(Fault(method="POST", path="/users/*/sendMail", kind="slow", delay_s=1.0))
    worker = graphworks("worker", env=env)
    err = await _terminated(worker, graphsim)
    snap = await Stats(redis).snapshot()
    assert (snap.completed, snap.retried, await jobs_queued(redis)) == (1, 0, 0)
    assert "handed back" not in err


async def test_sigterm_hands_a_long_job_back_without_spending_an_attempt(
    redis: aioredis.Redis, redis_url: str, graphsim: SimServer
) -> None:
    env = graphworks_env(redis_url, graphsim, WORKER_SHUTDOWN_GRACE_S="1", GRAPH_CALL_TIMEOUT_S="8")
    job_id = _enqueue(env, "long")
    graphsim.state.add_fault(Fault(method="POST", path="/users/*/sendMail", kind="slow", delay_s=60))
    worker = graphworks("worker", env=env)
    err = await _terminated(worker, graphsim)
    assert f"job={job_id} handed back to the queue on shutdown" in err
    # Back in the queue at once (no lease to wait out), its run given back, no attempt recorded.
    arq_id = f"{job_id}.0.0"
    assert await redis.zscore("graphworks:queue:default", arq_id) is not None
    assert await redis.exists(f"arq:in-progress:{arq_id}") == 0
    assert int(await redis.get(f"arq:retry:{arq_id}") or 0) == 0
    snap = await Stats(redis).snapshot()
    assert (snap.completed, snap.retried, snap.dead_lettered) == (0, 0, 0)

    graphsim.state.clear_faults()
    second = graphworks("worker", "--burst", env=env)
    try:
        _, err2 = await asyncio.to_thread(second.communicate, timeout=60)
    finally:
        if second.poll() is None:
            second.kill()
    assert second.returncode == 0, err2
    assert f"job={job_id} type=mail attempt=1 outcome=completed" in err2
    assert (await Stats(redis).snapshot()).completed == 1
