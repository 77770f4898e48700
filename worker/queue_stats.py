"""Per-type queue stats and health, shared by `GET /api/queue/stats|health|limits` and `graphworks stats`.

Every number comes from a bounded set of Redis reads, whatever the number of jobs (three pipelined
round trips for stats, two for health):

- queued / scheduled: the type's pending zset (`keys.pending`: job id by due ms, kept by
  enqueue.lua, outcome.lua and cancel.lua) counted by score: due now or earlier is queued (or
  running), later is scheduled. Parked jobs of a paused type stay in it: they are queued;
- running: what each live worker publishes every ~0.5 s (`keys.worker_jobs`), subtracted from the
  due-now count; the oldest queued job is the lowest-scored due member that no worker runs;
- completed / retried / dead_lettered: the stats hash; throughput over the last minute and hour:
  the per-minute hashes (`keys.throughput`, written in the same Lua call that counts the outcome);
- the dead-letter store's total and unreviewed counts (two ZCARDs); the limiter's keys
  (ratelimits/report.py).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, Literal

import redis.asyncio as aioredis
from pydantic import BaseModel, Field

from graphworks_core import keys
from graphworks_core.payloads import PAYLOAD_MODELS
from ratelimits.backend import KeyStats
from ratelimits.report import limit_stats
from worker.liveness import WorkerInfo, WorkerJobs, live_workers

OUTCOMES = ("completed", "retried", "dead_lettered")


class Throughput(BaseModel):
    completed: int = 0
    retried: int = 0
    dead_lettered: int = 0


class TypeStats(BaseModel):
    queued: int = Field(description="due now, not running (parked jobs of a paused type included)")
    scheduled: int = Field(description="due later: deferred, retry backoff, limiter booking")
    running: int
    completed: int
    retried: int
    dead_lettered: int
    oldest_queued_age_s: float | None = Field(description="how long the oldest queued job has been due; null: none")
    paused: bool
    parked: int = Field(description="queued jobs a worker set aside because the type is paused")
    last_minute: Throughput
    last_hour: Throughput


class DeadLetterCounts(BaseModel):
    total: int
    unreviewed: int


class LimitKey(BaseModel):
    """One limiter key: its rate over the last full 10 s, what it let through and made wait, 429s."""

    key: str
    rate_per_s: float
    in_use: int = Field(description="requests in flight (concurrency leases held)")
    sent: int
    waits: int
    wait_s: float
    deferred: int
    blocked: int
    cooldowns: int
    throttled: int = Field(description="429s seen")
    cooldown_remaining_s: float

    @classmethod
    def of(cls, s: KeyStats, now: float) -> LimitKey:
        return cls(
            key=s.key, rate_per_s=s.rate_per_s, in_use=s.in_flight, sent=s.sent, waits=s.waited,
            wait_s=s.wait_ms / 1000, deferred=s.deferred, blocked=s.blocked, cooldowns=s.cooldowns,
            throttled=s.throttled, cooldown_remaining_s=max(0.0, (s.cooling_until or now) - now),
        )  # fmt: skip


class QueueStatsReport(BaseModel):
    at: datetime
    types: dict[str, TypeStats]
    dead_letter: DeadLetterCounts
    limits: list[LimitKey]


class WorkerHealth(BaseModel):
    id: str
    host: str
    pid: int
    started_at: datetime
    last_seen_at: datetime
    running: int


class HealthReport(BaseModel):
    status: Literal["ok", "degraded", "down"]
    redis: str = Field(description="'ok', or why Redis did not answer")
    workers: list[WorkerHealth]
    checks: dict[str, str] = Field(description="each check and its finding")


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


async def running_jobs(redis: aioredis.Redis) -> dict[str, str]:
    """job id -> type of every job a live worker runs (one round trip after the workers' set)."""
    ids = [_text(m) for m in await redis.smembers(keys.WORKERS)]  # type: ignore[misc]
    if not ids:
        return {}
    running: dict[str, str] = {}
    for raw in await redis.mget([keys.worker_jobs(i) for i in ids]):
        if raw is not None:
            running.update(WorkerJobs.model_validate_json(raw).running)
    return running


async def queue_stats(
    redis: aioredis.Redis, *, now: float | None = None, types: list[str] | None = None, limits: int = 50
) -> QueueStatsReport:
    wall = time.time()
    now = wall if now is None else now
    now_ms = int(now * 1000)
    names = types or sorted(PAYLOAD_MODELS)
    running = await running_jobs(redis)
    running_ids: dict[str, list[str]] = {}
    for job_id, job_type in running.items():
        running_ids.setdefault(job_type, []).append(job_id)
    running_by_type = {t: len(ids) for t, ids in running_ids.items()}
    minute = int(wall // 60)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(keys.STATS)
        pipe.smembers(keys.PAUSED)
        pipe.zcard(keys.DLQ_INDEX)
        pipe.zcard(keys.DLQ_UNREVIEWED)
        for m in range(minute - 59, minute + 1):
            pipe.hgetall(keys.throughput(m))
        for t in names:
            pipe.zcount(keys.pending(t), "-inf", now_ms)
            pipe.zcount(keys.pending(t), f"({now_ms}", "+inf")
            pipe.zcard(keys.parked(t))
            # The oldest due members: the first one no worker runs is the oldest queued.
            pipe.zrangebyscore(keys.pending(t), "-inf", now_ms, start=0, num=running_by_type.get(t, 0) + 1,
                               withscores=True)  # fmt: skip
        # Which of the jobs workers say they run are still unfinished: a worker publishes what it runs
        # every 0.5 s, so a job that has just finished can still be listed (it is not queued either).
        with_running = [t for t in names if running_ids.get(t)]
        for t in with_running:
            pipe.zmscore(keys.pending(t), running_ids[t])
        replies = await pipe.execute()
    still = dict(zip(with_running, replies[len(replies) - len(with_running) :], strict=True))
    replies = replies[: len(replies) - len(with_running)]
    counters = {_text(k): int(v) for k, v in replies[0].items()}
    paused = {_text(m) for m in replies[1]}
    dead_letter = DeadLetterCounts(total=int(replies[2]), unreviewed=int(replies[3]))
    buckets = [{_text(k): int(v) for k, v in b.items()} for b in replies[4:64]]
    rest = replies[64:]
    out: dict[str, TypeStats] = {}
    for i, t in enumerate(names):
        due, later, parked, oldest = rest[4 * i : 4 * i + 4]
        age = next((max(0.0, now - score / 1000) for member, score in oldest if _text(member) not in running), None)
        runs = min(sum(1 for score in still.get(t, []) if score is not None and score <= now_ms), int(due))
        out[t] = TypeStats(
            queued=int(due) - runs, scheduled=int(later), running=runs,
            completed=counters.get(f"completed:type:{t}", 0), retried=counters.get(f"retried:type:{t}", 0),
            dead_lettered=counters.get(f"dead_lettered:type:{t}", 0), oldest_queued_age_s=age,
            paused=t in paused, parked=int(parked),
            last_minute=_throughput(buckets[-1:], t), last_hour=_throughput(buckets, t),
        )  # fmt: skip
    rows = await limit_stats(redis, wall, limits)
    return QueueStatsReport(
        at=datetime.fromtimestamp(wall, UTC), types=out, dead_letter=dead_letter,
        limits=[LimitKey.of(s, wall) for s in rows],
    )  # fmt: skip


def _throughput(buckets: list[dict[str, int]], job_type: str) -> Throughput:
    return Throughput(**{o: sum(b.get(f"{o}:{job_type}", 0) for b in buckets) for o in OUTCOMES})


async def limits_report(redis: aioredis.Redis, limit: int = 200) -> list[LimitKey]:
    now = time.time()
    return [LimitKey.of(s, now) for s in await limit_stats(redis, now, limit)]


async def health(redis: aioredis.Redis, *, lease_s: float) -> HealthReport:
    """ok: Redis answers and a worker is alive; degraded: none is (none seen for 3 leases); down: no Redis."""
    try:
        await redis.ping()
        workers: list[WorkerInfo] = await live_workers(redis)
    except (ConnectionError, OSError, aioredis.ConnectionError, aioredis.TimeoutError, TimeoutError) as exc:
        detail = f"unreachable ({type(exc).__name__})"
        return HealthReport(status="down", redis=detail, workers=[], checks={"redis": detail, "workers": "unknown"})
    alive = [WorkerHealth(**w.model_dump()) for w in workers]
    checks = {
        "redis": "ok",
        "workers": f"{len(alive)} alive" if alive else f"none seen within {3 * lease_s:g} s (3 leases)",
    }
    return HealthReport(status="ok" if alive else "degraded", redis="ok", workers=alive, checks=checks)
