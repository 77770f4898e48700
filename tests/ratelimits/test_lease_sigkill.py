"""A `graphworks worker` SIGKILLed while holding a mailbox's concurrency lease blocks that lease for
at most lease_ttl_s: the lease expires, nobody has to release it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from graphsim.faults import Fault
from graphsim.server import SimServer
from graphworks_core import keys
from graphworks_core.clock import FakeClock
from ratelimits.config import ApiOverride, LimitsConfig
from ratelimits.limiter import GraphLimiter
from ratelimits.redis_backend import RedisBackend
from tests.integration.conftest import eventually
from tests.integration.test_worker_process import worker_env

pytestmark = pytest.mark.slow

MAILBOX = "ops@contoso.com"
LEASE_TTL_S = 6.0


async def test_sigkilled_lease_holder_blocks_the_mailbox_at_most_lease_ttl(
    redis: aioredis.Redis, redis_url: str, graphsim: SimServer, tmp_path: Path
) -> None:
    toml = tmp_path / "graphworks.toml"
    toml.write_text(f"[limits]\nmax_wait_s = 1\nlease_ttl_s = {LEASE_TTL_S}\n[limits.apis.outlook]\nconcurrency = 1\n")
    env = worker_env(redis_url, graphsim, GRAPHWORKS_CONFIG=str(toml))
    subprocess.run(  # noqa: ASYNC221  (a short CLI call before anything else runs)
        [sys.executable, "-m", "graphworks", "enqueue", "mail", "--mailbox", MAILBOX, "--to", "a@contoso.com",
         "--subject", "s", "--body", "b"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    graphsim.state.add_fault(Fault(method="POST", path="/users/*/sendMail", kind="slow", delay_s=30))
    lease_key = keys.limit_leases(f"outlook:default:{MAILBOX}")

    command = [sys.executable, "-m", "graphworks", "worker"]
    worker = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: ASYNC220
    try:
        await eventually(lambda: _fault_taken(graphsim), timeout_s=20, what="the worker to be mid-request")
        ((_, expiry),) = await redis.zrange(lease_key, 0, -1, withscores=True)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        killed_at = time.time()
    finally:
        if worker.poll() is None:
            worker.kill()

    assert expiry - killed_at <= LEASE_TTL_S
    config = LimitsConfig(apis={"outlook": ApiOverride(concurrency=1)}, lease_ttl_s=LEASE_TTL_S)
    clock = FakeClock(killed_at)
    limiter = GraphLimiter(RedisBackend(redis), config, tenant="default", base_url=graphsim.base_url, clock=clock)
    plan = limiter.plan("POST", f"{graphsim.base_url}/users/{MAILBOX}/sendMail")
    assert (await limiter.backend.acquire(plan, killed_at, 100, None, "next")).kind == "retry"
    assert (await limiter.backend.acquire(plan, expiry - 0.001, 100, None, "next")).kind == "retry"
    decision = await limiter.backend.acquire(plan, expiry, 100, None, "next")
    assert decision.kind == "go" and decision.at == pytest.approx(expiry, abs=1e-6)


async def _fault_taken(sim: SimServer) -> bool:
    return not sim.state.faults()
