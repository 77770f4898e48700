"""A Redis outage: redis-server SIGKILLed mid-run and started again on its AOF directory. The
worker rides it out on its own and every job completes, counted once; the enqueue client gives
up with QueueUnavailable instead of hanging."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from graphsim.server import SimServer
from tests.integration.conftest import eventually
from tests.integration.processes import AofRedis, graphworks, graphworks_env, jobs_queued
from worker.stats import Stats

pytestmark = pytest.mark.slow
JOBS = 300


def _sent(sim: SimServer) -> Counter[str]:
    return Counter(r.body["message"]["subject"] for r in sim.state.requests() if r.path.endswith("/sendMail")
                   and r.status == 202)  # fmt: skip


async def _at_least(sim: SimServer, n: int) -> bool:
    return sum(_sent(sim).values()) >= n


async def test_the_worker_rides_out_redis_killed_and_restarted_on_its_aof(graphsim: SimServer, tmp_path: Path) -> None:
    server = AofRedis(tmp_path / "redis").start()
    worker: subprocess.Popen[str] | None = None
    # The limiter's concurrency leases held by requests the outage cut short are freed by their
    # TTL (60 s by default): a short one keeps the test about the outage, not that wait.
    config = tmp_path / "graphworks.toml"
    config.write_text("[limits]\nlease_ttl_s = 8\n")
    try:
        # appendfsync always on a busy disk can take longer than the 1 s socket timeout the other
        # fault tests use; that would be a slow Redis, not this outage.
        env = graphworks_env(server.url, graphsim, GRAPHWORKS_CONFIG=str(config), WORKER_LEASE_S="6",
                             REDIS_SOCKET_TIMEOUT_S="3")  # fmt: skip
        lines = "".join(
            json.dumps({"type": "mail", "payload": {"mailbox": "ops@contoso.com", "to": ["a@contoso.com"],
                                                    "subject": f"m{i}", "body": "b"}}) + "\n"
            for i in range(JOBS)
        )  # fmt: skip
        subprocess.run([sys.executable, "-m", "graphworks", "enqueue", "--file", "-"], input=lines, env=env,  # noqa: ASYNC221
                       capture_output=True, text=True, check=True, timeout=60)  # fmt: skip
        worker = graphworks("worker", env={**env, "WORKER_MAX_JOBS": "4"})
        await eventually(lambda: _at_least(graphsim, 30), timeout_s=60, what="the worker under way")
        server.kill()
        down_at = time.monotonic()
        await asyncio.sleep(1.0)  # the outage itself (not a wait for the worker)
        server.start()
        redis = aioredis.Redis.from_url(server.url)
        try:
            stats = Stats(redis)
            try:
                await eventually(lambda: _all_done(stats), timeout_s=140, what="every job after the outage")
            except AssertionError:
                worker.kill()
                _, err = worker.communicate(timeout=10)
                snap = await stats.snapshot()
                raise AssertionError(f"{snap}\nworker log tail:\n{err[-6000:]}") from None
            assert worker.poll() is None, "the worker died instead of riding the outage out"
            snap = await stats.snapshot()
            assert (snap.completed, snap.dead_lettered, await jobs_queued(redis), snap.scheduled) == (JOBS, 0, 0, 0)
            sent = _sent(graphsim)
            assert set(sent) == {f"m{i}" for i in range(JOBS)}  # nothing lost
            # Sent twice only if in flight when Redis died (at most WORKER_MAX_JOBS of them).
            assert sum(sent.values()) - JOBS <= 4
        finally:
            await redis.aclose()
        worker.send_signal(signal.SIGTERM)
        _, err = await asyncio.to_thread(worker.communicate, timeout=30)
        assert worker.returncode == 0, err
        assert err.count("redis unreachable at worker") == 1, err
        assert err.count("redis answers again at worker") == 1, err
        assert "Traceback" not in err
        assert time.monotonic() - down_at < 120
    finally:
        if worker is not None and worker.poll() is None:
            worker.kill()
        server.stop()


async def _all_done(stats: Stats) -> bool:
    return (await stats.snapshot()).completed >= JOBS


async def test_enqueue_gives_up_with_queue_unavailable_naming_redis_without_its_password(graphsim: SimServer) -> None:
    env = graphworks_env("redis://:s3cret@127.0.0.1:1/0", graphsim, REDIS_ENQUEUE_TIMEOUT_S="1")
    started = time.monotonic()
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "graphworks", "enqueue", "mail", "--mailbox", "o@contoso.com", "--to", "a@contoso.com",
         "--subject", "s", "--body", "b"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert "redis://:***@127.0.0.1:1/0" in done.stderr
    assert "within 1 s" in done.stderr
    assert "s3cret" not in done.stderr
    assert "Traceback" not in done.stderr
    assert time.monotonic() - started < 15
