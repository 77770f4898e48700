"""How long Redis is held during a bulk redrive of a big dead-letter store: the longest single call.

Fills a private redis-server's dead-letter store with N entries (default 100,000, in two causes),
then redrives them all with worker.redrive.redrive_matching (as `graphworks dlq retry --all` and
`POST /api/queue/dead-letter/retry` do: REDRIVE_BATCH per batch), with SLOWLOG recording every
call (slowlog-log-slower-than 0). Prints the time taken, the number of calls, the longest ones and
the percentiles, beside the cost of one call that removed the whole store at once (the baseline
a batched redrive avoids; measured on a copy of the store with DEL).

    .venv/bin/python bench/dlq_redrive.py [--entries N] [--batch B]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis

from graphworks.embedded_redis import start_redis
from graphworks_core import keys
from graphworks_core.clock import SystemClock
from graphworks_core.envelope import AttemptRecord
from graphworks_core.errors import ErrorClass
from worker.deadletter.models import DeadLetterEntry
from worker.deadletter.redis_store import RedisDeadLetterStore
from worker.queue import JobQueue
from worker.redrive import redrive_matching

T0 = datetime(2026, 1, 1, tzinfo=UTC)
MAIL = {"mailbox": "ops@contoso.com", "to": ["a@contoso.com"], "subject": "report", "body": "x" * 200}


def entry(i: int) -> DeadLetterEntry:
    at = T0 + timedelta(milliseconds=i)
    cls, status, code = (ErrorClass.THROTTLED, 429, "TooManyRequests") if i % 2 else (ErrorClass.UNAVAILABLE, 503, None)
    attempts = [AttemptRecord(at=at, error_class=cls, status=status, graph_code=code, delay_s=1.0)] * 3
    return DeadLetterEntry(id=f"job-{i:06d}", job_id=f"job-{i:06d}", type="mail", payload=MAIL,
                           idempotency_key=f"idem-{i}", error_class=cls, status=status, graph_code=code,
                           reason="retries exhausted", attempts=attempts, first_failure_at=at, last_failure_at=at,
                           dead_lettered_at=at)  # fmt: skip


async def main(n: int, batch: int) -> None:
    server = start_redis()
    redis = aioredis.Redis.from_url(server.url)
    try:
        store = RedisDeadLetterStore(redis)
        started = time.perf_counter()
        for start in range(0, n, 2000):
            await store.put_many([entry(i) for i in range(start, min(n, start + 2000))])
        print(f"filled {n} entries in {time.perf_counter() - started:.1f} s; "
              f"{(await redis.info('memory'))['used_memory_human']} used")  # fmt: skip

        # Baseline: one call over the whole store (what an unbatched redrive's removal would be).
        await redis.copy(keys.DLQ_ENTRIES, "bench:copy")
        await redis.config_set("slowlog-log-slower-than", 0)
        await redis.config_set("slowlog-max-len", 2_000_000)
        await redis.slowlog_reset()
        await redis.delete("bench:copy")
        whole = max(e["duration"] for e in await redis.slowlog_get(10))
        await redis.slowlog_reset()

        queue = JobQueue(redis, SystemClock())
        last = time.perf_counter()

        def progress(done: int, skipped: int) -> None:
            nonlocal last
            if done % 10_000 < batch or time.perf_counter() - last > 5:
                print(f"  redriven {done}, skipped {skipped}")
                last = time.perf_counter()

        started = time.perf_counter()
        result = await redrive_matching(store, queue, batch=batch, progress=progress)
        took = time.perf_counter() - started
        log = await redis.slowlog_get(2_000_000)
        await redis.config_set("slowlog-log-slower-than", 10_000)
        durations = sorted(e["duration"] for e in log)
        q = statistics.quantiles(durations, n=1000)
        print(f"redrove {len(result.redriven)} entries (batch {batch}) in {took:.1f} s, {len(log)} Redis calls")
        print(f"call duration: p50 {q[499] / 1000:.3f} ms, p99 {q[989] / 1000:.3f} ms, p99.9 {q[998] / 1000:.3f} ms, "
              f"longest {durations[-1] / 1000:.2f} ms")  # fmt: skip
        for e in sorted(log, key=lambda e: -e["duration"])[:5]:
            print(f"  {e['duration'] / 1000:8.2f} ms  {e['command'][:70]!r}")
        print(f"baseline: one DEL of the whole {n}-entry hash took {whole / 1000:.2f} ms "
              f"({whole / max(durations[-1], 1):.1f}x the longest batched call)")  # fmt: skip
        assert await store.count() == 0 and await redis.zcard(keys.queue()) == n
    finally:
        await redis.aclose()
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    asyncio.run(main(args.entries, args.batch))
