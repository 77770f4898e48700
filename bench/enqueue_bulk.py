"""Enqueue throughput: GraphworksClient.enqueue one at a time vs arq's enqueue_job one at a time
vs GraphworksClient.enqueue_many (validated, then pipelined in chunks of 1000).

One private redis-server (graphworks.embedded_redis.start_redis), one process. Rounds alternate
(single, arq, bulk, single, arq, bulk, ...); the database is flushed before each and the queue
depth checked after. The timed span of the bulk case includes building the JobRequest list, which
is what a caller holding plain dicts pays. CPU per job is this process's process_time / N.

    .venv/bin/python bench/enqueue_bulk.py [--jobs N] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import platform
import statistics
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import default_queue_name
from timing import Sample, timed

from graphworks.embedded_redis import redis_server_binary, start_redis
from graphworks_core.settings import Settings
from worker import arq_adapter
from worker.client import GraphworksClient, JobRequest

MAIL: dict[str, Any] = {"mailbox": "a@b.c", "to": ["x@y.z"], "subject": "s", "body": "b"}
# DESIGN.md "Performance anchors" (2 cores, Redis on loopback)
ANCHOR_ARQ_SINGLE = 2_065
ANCHOR_BULLMQ_SINGLE = 4_886
ANCHOR_BULLMQ_BULK = 22_163


async def graphworks_single(gw: GraphworksClient, n: int) -> None:
    for _ in range(n):
        await gw.enqueue("mail", MAIL)


async def graphworks_bulk(gw: GraphworksClient, n: int) -> None:
    ids = await gw.enqueue_many([JobRequest(type="mail", payload=MAIL) for _ in range(n)])
    if len(ids) != n:
        raise RuntimeError(f"enqueue_many returned {len(ids)} ids, expected {n}")


async def arq_single(pool: ArqRedis, n: int) -> None:
    for _ in range(n):
        if await pool.enqueue_job("send_mail", MAIL) is None:
            raise RuntimeError("arq refused an enqueue")


async def main_async(n: int, rounds: int) -> None:
    binary = redis_server_binary()
    with start_redis() as server:
        redis = aioredis.Redis.from_url(server.url)
        pool = await create_pool(
            RedisSettings(host="127.0.0.1", port=server.port),
            job_serializer=arq_adapter.serialize,
            job_deserializer=arq_adapter.deserialize,
        )
        settings = Settings(redis_url=server.url, graph_static_token="t")
        gw = GraphworksClient(redis, settings)
        try:
            version = (await redis.info("server"))["redis_version"]
            print(f"enqueue_bulk: {n} 'mail' jobs per case x {rounds} rounds (alternating), JSON codec")
            print(
                f"python {platform.python_version()}, {os.cpu_count()} cpus, "
                f"redis-server {version} ({binary}) on 127.0.0.1:{server.port}"
            )
            cases: dict[str, tuple[Callable[[int], Awaitable[None]], aioredis.Redis, str]] = {
                "graphworks enqueue (one at a time)": (lambda k: graphworks_single(gw, k), redis, gw.queue.queue_key),
                "arq enqueue_job (one at a time)   ": (lambda k: arq_single(pool, k), pool, default_queue_name),
                "graphworks enqueue_many (bulk)    ": (lambda k: graphworks_bulk(gw, k), redis, gw.queue.queue_key),
            }
            # warm-up: script loading, pydantic schema caches, connection setup
            for work, conn, _ in cases.values():
                await conn.flushdb()
                await work(200)
            samples: dict[str, list[Sample]] = {name: [] for name in cases}
            for r in range(1, rounds + 1):
                for name, (work, conn, queue_key) in cases.items():
                    await conn.flushdb()
                    sample = await timed(n, functools.partial(work, n))
                    if (queued := await conn.zcard(queue_key)) != n:
                        raise RuntimeError(f"{name.strip()}: {queued} jobs queued, expected {n}")
                    samples[name].append(sample)
                    print(
                        f"round {r} {name}: {sample.jobs_per_s:9,.0f} jobs/s  {sample.wall_s:6.2f} s  "
                        f"CPU {sample.cpu_us_per_job:6.1f} us/job"
                    )
            rate = {name: statistics.median(s.jobs_per_s for s in ss) for name, ss in samples.items()}
            cpu = {name: statistics.median(s.cpu_us_per_job for s in ss) for name, ss in samples.items()}
            for name in cases:
                print(f"{name} (median): {rate[name]:9,.0f} jobs/s, CPU {cpu[name]:6.1f} us/job")
            single, arq, bulk = (rate[name] for name in cases)
            print(
                f"anchors (DESIGN.md): arq single {ANCHOR_ARQ_SINGLE:,}/s, BullMQ single {ANCHOR_BULLMQ_SINGLE:,}/s, "
                f"BullMQ bulk {ANCHOR_BULLMQ_BULK:,}/s"
            )
            print(f"graphworks single/arq-single ratio: {single / arq:.2f}")
            print(
                f"bulk/arq-single ratio: {bulk / arq:.2f} "
                f"(BullMQ bulk/arq single in the anchors: {ANCHOR_BULLMQ_BULK / ANCHOR_ARQ_SINGLE:.1f})"
            )
            print(
                f"bulk vs BullMQ bulk anchor: {bulk:,.0f} / {ANCHOR_BULLMQ_BULK:,} jobs/s = "
                f"{bulk / ANCHOR_BULLMQ_BULK:.2f} (target: aims at BullMQ's bulk rate)"
            )
        finally:
            await pool.aclose()
            await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=5000, help="jobs per case per round (default 5000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each case, alternating (default 3)")
    args = parser.parse_args()
    if args.jobs < 1 or args.rounds < 1:
        parser.error("--jobs and --rounds must be positive")
    asyncio.run(main_async(args.jobs, args.rounds))


if __name__ == "__main__":
    main()
