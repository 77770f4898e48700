"""What one job costs Redis: commands (Lua's inner calls included) and redis-server CPU per job.

Enqueues N jobs of a type with the client (pipelined, as `enqueue --file` does), drains them with
one in-process worker (limiter on, as in production) against graphsim over HTTP, and reads the
private redis-server's INFO commandstats and CPU before and after. Prints the totals per job and
the commands that make them up, so a change on the hot path can say what it costs.

    .venv/bin/python bench/redis_cost.py [--jobs N] [--type mail|teams_message] [--no-limits]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
from typing import Any

import redis.asyncio as aioredis

from graphsim.server import run_in_thread
from graphworks.embedded_redis import start_redis
from graphworks.wiring import build_runner, build_worker
from graphworks_core import keys
from graphworks_core.settings import load_settings
from ratelimits.base import NoLimit
from worker.client import GraphworksClient, JobRequest
from worker.stats import Stats

PAYLOADS: dict[str, Any] = {
    "mail": lambda i: {"mailbox": f"box{i % 50}@contoso.com", "to": ["a@contoso.com"], "subject": f"s{i}", "body": "b"},
    "teams_message": lambda i: {"chat_id": f"19:chat-{i % 50}", "content": f"m{i}"},
}


async def _counters(redis: aioredis.Redis) -> tuple[dict[str, int], float]:
    stats = await redis.info("commandstats")
    cpu = await redis.info("cpu")
    calls = {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}
    return calls, float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"])


async def measure(jobs: int, job_type: str, limits: bool) -> None:
    server = start_redis()
    sim = run_in_thread()
    try:
        settings = load_settings(
            redis_url=server.url, graph_base_url=sim.base_url, graph_static_token="t", worker_poll_delay_s=0.01
        )
        redis = aioredis.Redis.from_url(server.url)
        runner = build_runner(settings, redis, limiter=None if limits else NoLimit())
        client = GraphworksClient(redis, settings)
        await client.send_mail(mailbox="warm@contoso.com", to=["a@contoso.com"], subject="warm", body="b")
        await build_worker(runner, burst=True, handle_signals=False).main()  # warm-up, not counted
        await redis.config_resetstat()
        before, cpu_before = await _counters(redis)
        await client.enqueue_many([JobRequest(type=job_type, payload=PAYLOADS[job_type](i)) for i in range(jobs)])
        await build_worker(runner, burst=True, handle_signals=False).main()
        after, cpu_after = await _counters(redis)
        snap = await Stats(redis).snapshot()
        assert snap.completed == jobs + 1, snap
        per_job = {k: (after.get(k, 0) - before.get(k, 0)) / jobs for k in after}
        total = sum(per_job.values())
        limiter = "on" if limits else "off"
        print(f"redis_cost: {jobs} {job_type} jobs, enqueue_many + one worker (limiter {limiter}) against graphsim")
        print(
            f"commands per job: {total:.1f}   redis-server CPU per job: {(cpu_after - cpu_before) / jobs * 1e6:.0f} us"
        )
        for name, n in sorted(per_job.items(), key=lambda kv: -kv[1]):
            if n >= 0.05:
                print(f"  {name:<22} {n:6.2f}")
        await _memory(redis, job_type, jobs)
        await runner.graph.close()
        await redis.aclose()
    finally:
        sim.stop()
        server.stop()


async def _memory(redis: aioredis.Redis, job_type: str, jobs: int) -> None:
    """What a finished job leaves in Redis for JOB_STATUS_TTL_S: its status record, its entry in its
    type's index, its event (bounded by EVENTS_STREAM_MAXLEN), its count-once marker."""
    ids = [m.decode() for m in await redis.zrange(keys.jobs_index(job_type), 0, 99)]
    record = statistics.mean([await redis.memory_usage(keys.job_status(i)) or 0 for i in ids])
    marker = statistics.mean([await redis.memory_usage(keys.final_marker(i, 0)) or 0 for i in ids])
    index = (await redis.memory_usage(keys.jobs_index(job_type)) or 0) / max(
        1, await redis.zcard(keys.jobs_index(job_type))
    )
    events = (await redis.memory_usage(keys.EVENTS) or 0) / max(1, await redis.xlen(keys.EVENTS))
    per_job = record + marker + index
    print(
        f"bytes kept per finished job: status record {record:.0f}, count-once marker {marker:.0f},"
        f" index entry {index:.0f} (= {per_job:.0f}; 1 million finished jobs: {per_job * 1e6 / 2**20:.0f} MiB),"
        f" event {events:.0f} (the stream holds at most EVENTS_STREAM_MAXLEN of them)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--type", dest="job_type", choices=sorted(PAYLOADS), default="mail")
    parser.add_argument(
        "--no-limits",
        dest="limits",
        action="store_false",
        help="no rate limiter (Teams' 1 rps per chat would dominate)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(measure(args.jobs, args.job_type, args.limits))


if __name__ == "__main__":
    main()
