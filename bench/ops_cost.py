"""What an operator's read costs: one `/metrics` scrape and one `GET /api/queue/stats` computation,
against an empty Redis (the baseline, same run) and against 100,000 queued jobs with 10,000 dead
letters. Prints wall time (median of --reads) and Redis round trips and commands per read (INFO
commandstats deltas), so "bounded whatever the number of jobs" is a figure, not a claim.

    .venv/bin/python bench/ops_cost.py [--jobs 100000] [--dead 10000] [--reads 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from dlq_redrive import entry

from graphworks.embedded_redis import start_redis
from graphworks_core.settings import load_settings
from ops.metrics import scrape
from worker.alerts import AlertsConfig
from worker.client import GraphworksClient, JobRequest
from worker.deadletter.redis_store import RedisDeadLetterStore
from worker.queue_stats import queue_stats

MAIL = {"mailbox": "ops@contoso.com", "to": ["a@contoso.com"], "subject": "s", "body": "b"}


async def _calls(redis: aioredis.Redis) -> int:
    stats = await redis.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info")


async def _measure(redis: aioredis.Redis, read: Callable[[], Awaitable[object]], reads: int) -> tuple[float, float]:
    """(median ms, commands per read), INFO's own calls excluded."""
    times = []
    before = await _calls(redis)
    for _ in range(reads):
        started = time.perf_counter()
        await read()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), (await _calls(redis) - before) / reads


async def main(jobs: int, dead: int, reads: int) -> None:
    server = start_redis()
    redis = aioredis.Redis.from_url(server.url)
    try:
        settings = load_settings(redis_url=server.url)
        config = AlertsConfig()

        async def read_scrape() -> object:
            return await scrape(redis, config, time.time())

        async def read_stats() -> object:
            return await queue_stats(redis)

        empty = {
            name: await _measure(redis, fn, reads) for name, fn in (("scrape", read_scrape), ("stats", read_stats))
        }
        client = GraphworksClient(redis, settings)
        await client.enqueue_many([JobRequest(type="mail", payload=MAIL) for _ in range(jobs)], chunk=2000)
        store = RedisDeadLetterStore(redis)
        for start in range(0, dead, 2000):
            await store.put_many([entry(i) for i in range(start, min(dead, start + 2000))])
        full = {name: await _measure(redis, fn, reads) for name, fn in (("scrape", read_scrape), ("stats", read_stats))}
        print(f"ops_cost: {jobs} queued mail jobs, {dead} dead letters, {reads} reads each (medians)")
        for name in ("scrape", "stats"):
            (t0, c0), (t1, c1) = empty[name], full[name]
            print(f"  {name:<7} empty Redis {t0:7.2f} ms {c0:5.1f} commands | loaded {t1:7.2f} ms {c1:5.1f} commands"
                  f" | time x{t1 / t0:.2f}, commands x{c1 / c0:.2f}")  # fmt: skip
    finally:
        await redis.aclose()
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--dead", type=int, default=10_000)
    parser.add_argument("--reads", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.jobs, args.dead, args.reads))
