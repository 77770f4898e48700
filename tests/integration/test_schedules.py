"""Recurring schedules run by workers: in this process on a fake clock, and by real worker processes
on the real clock (the issue's Must-show: two workers, one job per tick; an outage, one catch-up)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import time

import pytest
import redis.asyncio as aioredis

from graphsim.server import SimServer
from graphworks_core import keys
from graphworks_core.clock import SystemClock
from graphworks_core.settings import Settings, load_settings
from tests.integration.conftest import eventually, make_settings, running_pipeline
from tests.integration.processes import graphworks, graphworks_env
from worker.liveness import live_workers
from worker.queue import JobQueue
from worker.schedules import ScheduleStore
from worker.stats import Stats

CHAT = "19:schedules"
TEAMS = {"chat_id": CHAT, "content": "tick"}


def store_for(redis: aioredis.Redis, settings: Settings, clock: object) -> ScheduleStore:
    return ScheduleStore(redis, JobQueue.from_settings(settings, redis, clock), settings, clock)  # type: ignore[arg-type]


def posts(sim: SimServer) -> int:
    return sum(1 for r in sim.state.requests() if r.method == "POST" and r.path == f"/chats/{CHAT}/messages")


async def test_a_worker_ticks_schedules_on_its_clock(
    redis: aioredis.Redis, redis_url: str, graphsim: SimServer
) -> None:
    settings = make_settings(redis_url, graphsim, schedule_tick_s=0.01)
    async with running_pipeline(redis, graphsim, settings) as pipe:
        store = store_for(redis, settings, pipe.clock)
        info = await store.put({"name": "ping", "every_s": 60, "type": "teams_message", "payload": TEAMS})
        start = info.next_run_at
        assert start is not None
        pipe.clock.set(start.timestamp())

        async def completed(n: int) -> bool:
            return await pipe.completed() >= n

        await eventually(lambda: completed(1), timeout_s=30, what="the first tick's job")
        pipe.clock.advance(300)  # five ticks at once: one job
        await eventually(lambda: completed(2), timeout_s=30, what="the catch-up tick's job")
        runs = (await store.get("ping")).runs
        assert [r.tick.timestamp() for r in runs] == [start.timestamp() + 300, start.timestamp()]
        assert await pipe.completed() == 2 and posts(graphsim) == 2


# -- real worker processes, real clock ---------------------------------------------------------


async def tick_jobs(redis: aioredis.Redis, name: str) -> dict[float, str]:
    """Every tick that stored a job, from the idempotency keys the jobs took: tick -> job id."""
    prefix = keys.idempotency(f"schedule:{name}:")
    found: dict[float, str] = {}
    async for key in redis.scan_iter(match=prefix + "*", count=1000):
        held = await redis.get(key)
        if held is not None:
            found[float(key.decode().removeprefix(prefix))] = held.decode().split(" ")[0]
    return found


def stop(workers: list[subprocess.Popen[str]]) -> None:
    """SIGTERM, then SIGKILL what has not exited 15 s later. Not this test's subject: a worker under
    load sometimes never exits on SIGTERM (arq's loop swallows the cancel; its jobs are handed back
    by then, so a SIGKILL doubles nothing)."""
    for w in workers:
        if w.poll() is None:
            w.send_signal(signal.SIGTERM)
    for w in workers:
        try:
            w.wait(timeout=15)
        except subprocess.TimeoutExpired:
            w.kill()
            w.wait(timeout=10)


async def until_live(redis: aioredis.Redis, n: int) -> None:
    async def enough() -> bool:
        return len(await live_workers(redis)) >= n

    await eventually(enough, timeout_s=90, what=f"{n} live workers")


@pytest.mark.slow
async def test_two_workers_one_job_per_tick_and_one_catch_up_after_all_stopped(
    redis: aioredis.Redis, redis_url: str, graphsim: SimServer
) -> None:
    env = graphworks_env(redis_url, graphsim)  # SCHEDULE_TICK_S: its default
    started: list[subprocess.Popen[str]] = []
    try:
        started += [graphworks("worker", env=env) for _ in range(2)]
        await until_live(redis, 2)
        add = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "graphworks", "schedules", "add", "tick", "--every", "1", "--type", "teams_message",
             "--payload", '{"chat_id": "19:schedules", "content": "tick"}'],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert add.returncode == 0, add.stderr

        # Two workers for ten seconds of ticks (measured by the ticks, not by this test's clock).
        async def ten_seconds_of_ticks() -> bool:
            ticks = await tick_jobs(redis, "tick")
            return bool(ticks) and max(ticks) >= min(ticks) + 10

        await eventually(ten_seconds_of_ticks, timeout_s=60, what="ten seconds of ticks")
        ticks = await tick_jobs(redis, "tick")
        first = min(ticks)
        window = [t for t in ticks if first <= t < first + 10]
        assert 9 <= len(window) <= 11, sorted(ticks)
        assert all(t == int(t) for t in ticks), "every 1 s: ticks on whole seconds"

        # Every worker stopped for 5 s, then one started again.
        stop(started)
        before = await tick_jobs(redis, "tick")
        last_before = max(before)
        down_since = time.time()
        await asyncio.sleep(5)  # the outage itself (what the test is about), not a wait for the worker
        assert await tick_jobs(redis, "tick") == before, "no worker, no tick"
        assert time.time() - down_since >= 5
        started.append(graphworks("worker", env=env))

        async def three_ticks_after_restart() -> bool:
            return len([t for t in await tick_jobs(redis, "tick") if t > last_before]) >= 3

        await eventually(three_ticks_after_restart, timeout_s=90, what="ticks after the restart")
        after = sorted(t for t in await tick_jobs(redis, "tick") if t > last_before)
        # The ticks from last_before + 1 to the first one after the restart all passed with no worker:
        # at least five, and they made one job (the latest of them); then the schedule goes on as before.
        catch_up = after[0]
        assert catch_up - last_before >= 5, f"the outage's ticks ran as a burst: {last_before} then {after}"
        assert after[1] - catch_up <= 2, f"after the catch-up the ticks go on every second: {after}"

        # Each tick's job ran once: Graph got one message per tick, and the runs name those jobs.
        settings = load_settings(redis_url=redis_url)
        store = store_for(redis, settings, SystemClock())
        await store.pause("tick")

        async def all_delivered() -> bool:
            jobs = await tick_jobs(redis, "tick")
            return posts(graphsim) == len(jobs) == (await Stats(redis).snapshot()).completed

        await eventually(all_delivered, timeout_s=60, what="one message per tick, each job completed once")
        jobs = await tick_jobs(redis, "tick")
        assert len(set(jobs.values())) == len(jobs)
        info = await store.get("tick")
        assert [(r.tick.timestamp(), r.job_id) for r in info.runs] == sorted(jobs.items(), reverse=True)[:20]
    finally:
        for w in started:
            with contextlib.suppress(ProcessLookupError):
                if w.poll() is None:
                    w.kill()
                    w.wait(timeout=10)
