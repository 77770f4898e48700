"""Worker throughput: bare tuned arq vs the graphworks runner, both draining no-op jobs.

One private redis-server (graphworks.embedded_redis.start_redis), one process. Each round pre-fills
the queue with N jobs (untimed), then times only the worker draining it in burst mode; rounds
alternate bare/runner (ABAB...) so machine noise hits both alike. Reports median jobs/s, worker
CPU per job (process_time delta / N, the redis-server's CPU excluded) and the ratio runner/bare.

    .venv/bin/python bench/runner_vs_arq.py [--jobs N] [--rounds R] [--profile runner|bare]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import logging
import os
import platform
import pstats
import statistics
import sys
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from arq import Worker
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import default_queue_name
from arq.worker import func
from timing import Sample, timed

from graphworks.embedded_redis import redis_server_binary, start_redis
from graphworks.wiring import build_runner, build_worker
from graphworks_core.envelope import Envelope
from graphworks_core.payloads import Payload
from graphworks_core.settings import Settings
from worker import arq_adapter
from worker.context import JobContext
from worker.job_type import JobType
from worker.queue import Scheduled
from worker.stats import Stats

MAX_JOBS = 100
POLL_DELAY_S = 0.01
FILL_BATCH = 1000  # envelopes per JobQueue.put call
ARQ_FILL_CONCURRENCY = 100  # arq enqueue_job calls in flight while pre-filling
TARGET_RATIO = 0.75  # DESIGN.md: the runner costs at most a quarter of tuned arq's throughput
ANCHOR_ARQ_JOBS_S = 2_084  # DESIGN.md "Performance anchors": arq tuned, this machine
ANCHOR_ARQ_CPU_MS = 0.47


class NoopPayload(Payload):
    n: int


async def noop(ctx: dict[str, Any], *args: Any) -> None:
    """The bare arq job."""


async def noop_processor(ctx: JobContext, payload: NoopPayload) -> None:
    """The runner's processor: never touches Graph."""


NOOP_JOB_TYPE = JobType(name="noop", model=NoopPayload, run=noop_processor)


async def bare_round(pool: ArqRedis, n: int, profile: cProfile.Profile | None = None) -> Sample:
    await pool.flushdb()
    for start in range(0, n, ARQ_FILL_CONCURRENCY):
        jobs = await asyncio.gather(
            *(pool.enqueue_job("noop", i) for i in range(start, min(start + ARQ_FILL_CONCURRENCY, n)))
        )
        if any(job is None for job in jobs):
            raise RuntimeError("arq refused an enqueue (duplicate job id?)")
    if (queued := await pool.zcard(default_queue_name)) != n:
        raise RuntimeError(f"bare arq: {queued} jobs queued, expected {n}")
    worker = Worker(
        functions=[func(noop, name="noop")],
        redis_pool=pool,
        burst=True,
        max_jobs=MAX_JOBS,
        poll_delay=POLL_DELAY_S,
        keep_result=0,
        job_serializer=arq_adapter.serialize,
        job_deserializer=arq_adapter.deserialize,
        handle_signals=False,
    )
    sample = await timed(n, worker.main, profile)
    left = await pool.zcard(default_queue_name)
    if worker.jobs_complete != n or worker.jobs_failed or left:
        raise RuntimeError(
            f"bare arq: {worker.jobs_complete} complete, {worker.jobs_failed} failed, {left} left; expected {n}"
        )
    return sample


async def runner_round(
    redis: aioredis.Redis, settings: Settings, n: int, profile: cProfile.Profile | None = None
) -> Sample:
    await redis.flushdb()
    runner = build_runner(settings, redis)  # a real GraphClient (static token); the no-op never calls it
    runner.job_types = {NOOP_JOB_TYPE.name: NOOP_JOB_TYPE}
    try:
        for start in range(0, n, FILL_BATCH):
            batch = [
                Scheduled(Envelope(type="noop", payload={"n": i})) for i in range(start, min(start + FILL_BATCH, n))
            ]
            await runner.queue.put(batch)
        queued, scheduled = await runner.queue.depth()
        if (queued, scheduled) != (n, 0):
            raise RuntimeError(f"runner: {queued} queued and {scheduled} scheduled, expected {n} queued")
        worker = build_worker(runner, burst=True, handle_signals=False)
        sample = await timed(n, worker.main, profile)
        snap = await Stats(redis).snapshot(settings.worker_queue)
        if snap.completed != n or snap.retried or snap.dead_lettered or snap.queued or snap.scheduled:
            raise RuntimeError(f"runner: expected {n} completed, got {snap.model_dump_json()}")
        return sample
    finally:
        await runner.graph.close()


def median(samples: list[Sample], key: Callable[[Sample], float]) -> float:
    return statistics.median(key(s) for s in samples)


def print_profile(profile: cProfile.Profile, top: int = 25) -> None:
    for order in ("cumulative", "tottime"):
        print(f"\n--- cProfile, top {top} by {order} ---")
        pstats.Stats(profile, stream=sys.stdout).strip_dirs().sort_stats(order).print_stats(top)


async def main_async(n: int, rounds: int, warmup: int, profile_which: str | None) -> None:
    binary = redis_server_binary()
    with start_redis() as server:
        redis = aioredis.Redis.from_url(server.url)
        pool = await create_pool(
            RedisSettings(host="127.0.0.1", port=server.port),
            job_serializer=arq_adapter.serialize,
            job_deserializer=arq_adapter.deserialize,
        )
        settings = Settings(
            redis_url=server.url,
            graph_static_token="t",
            worker_max_jobs=MAX_JOBS,
            worker_poll_delay_s=POLL_DELAY_S,
        )
        try:
            version = (await redis.info("server"))["redis_version"]
            print(
                f"runner_vs_arq: {n} no-op jobs x {rounds} rounds (ABAB), max_jobs={MAX_JOBS} "
                f"poll_delay={POLL_DELAY_S}s keep_result=0 JSON codec"
            )
            print(
                f"python {platform.python_version()}, {os.cpu_count()} cpus, "
                f"redis-server {version} ({binary}) on 127.0.0.1:{server.port}"
            )
            if warmup:
                await bare_round(pool, warmup)
                await runner_round(redis, settings, warmup, None)
                print(f"warm-up: {warmup} jobs each, not counted")

            if profile_which:
                profile = cProfile.Profile()
                if profile_which == "runner":
                    sample = await runner_round(redis, settings, n, profile)
                else:
                    sample = await bare_round(pool, n, profile)
                print(f"profiled {profile_which} round: {sample.jobs_per_s:,.0f} jobs/s under cProfile")
                print_profile(profile)
                return

            bare: list[Sample] = []
            runner: list[Sample] = []
            for r in range(1, rounds + 1):
                for name in ("bare arq", "runner  "):
                    if name == "bare arq":
                        sample = await bare_round(pool, n)
                        bare.append(sample)
                    else:
                        sample = await runner_round(redis, settings, n, None)
                        runner.append(sample)
                    print(
                        f"round {r} {name}: {sample.jobs_per_s:8,.0f} jobs/s  {sample.wall_s:6.2f} s  "
                        f"worker CPU {sample.cpu_ms_per_job:.3f} ms/job"
                    )
            bare_rate, runner_rate = median(bare, lambda s: s.jobs_per_s), median(runner, lambda s: s.jobs_per_s)
            bare_cpu, runner_cpu = median(bare, lambda s: s.cpu_ms_per_job), median(runner, lambda s: s.cpu_ms_per_job)
            print(f"bare arq (median): {bare_rate:,.0f} jobs/s, worker CPU {bare_cpu:.3f} ms/job")
            print(f"runner   (median): {runner_rate:,.0f} jobs/s, worker CPU {runner_cpu:.3f} ms/job")
            print(f"anchor (DESIGN.md, arq tuned): {ANCHOR_ARQ_JOBS_S:,} jobs/s, {ANCHOR_ARQ_CPU_MS} ms CPU/job")
            ratio = runner_rate / bare_rate
            verdict = "OK" if ratio >= TARGET_RATIO else "BELOW TARGET"
            print(f"runner/arq CPU per job: {runner_cpu / bare_cpu:.2f}x")
            print(f"runner/arq throughput ratio: {ratio:.2f} (target >= {TARGET_RATIO}) {verdict}")
        finally:
            await pool.aclose()
            await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=5000, help="jobs per round (default 5000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each, alternating (default 3)")
    parser.add_argument("--warmup", type=int, default=500, help="untimed jobs run once by each first (default 500)")
    parser.add_argument(
        "--profile", choices=["runner", "bare"], help="instead: one cProfile'd round, top 25 by cumulative and tottime"
    )
    args = parser.parse_args()
    if args.jobs < 1 or args.rounds < 1:
        parser.error("--jobs and --rounds must be positive")
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main_async(args.jobs, args.rounds, args.warmup, args.profile))


if __name__ == "__main__":
    main()
