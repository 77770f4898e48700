"""Everything `/metrics` and the alerts read, from Redis in one pipelined round trip (two when
limiter keys exist: their cooldowns are read in a second pipeline), whatever the number of jobs,
dead letters or workers: counters are hashes, depths are ZCOUNT/ZCARD, the oldest job is one
ZRANGE 0 0 per type, the dead-letter store's groups are one zset (worker/deadletter/).

Windows ("over the last 10 min", per minute for the last hour) come from minute snapshots of the
counters (`snapshot_minute`, written by the workers' ops loop, worker/ops_loop.py): a window is
the live counters minus the snapshot at its start, so a job costs nothing extra for them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis

from graphworks_core import histogram, keys
from graphworks_core.payloads import PAYLOAD_MODELS
from worker.liveness import WorkerJobs

SNAPSHOT_TTL_S = 3_900  # an hour of minutes, and a little
COOLDOWN_KEYS_MAX = 10_000  # limiter keys looked at for open cooldowns (most recently used first)
COOLDOWN_LOOKBACK_S = 86_400


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _ints(raw: dict[Any, Any]) -> dict[str, int]:
    return {_s(k): int(float(_s(v))) for k, v in raw.items()}


@dataclass
class TypeDepth:
    queued: int = 0  # due now (those running included, until worker/queue_stats.py tells them apart)
    scheduled: int = 0
    running: int = 0  # what live workers publish they run (keys.worker_jobs)
    oldest_queued_age_s: float = 0.0
    parked: int = 0  # due, but set aside while the type is paused

    @property
    def ready(self) -> int:
        """Due now and waiting for a worker: not running, not parked, not deferred (what KEDA scales on)."""
        return max(0, self.queued - self.running - self.parked)


@dataclass
class ClusterNumbers:
    now: float
    counters: dict[str, int]  # keys.STATS
    graph: dict[str, int]  # keys.GRAPH_REQUESTS
    webhooks: dict[str, int]  # keys.WEBHOOK_COUNTERS
    depth: dict[str, TypeDepth]
    queued_total: int
    scheduled_total: int
    dead_letters: dict[tuple[str, str], int]  # (type, error class) -> entries in the store
    dead_letters_unreviewed: int
    dead_letters_total: int
    workers: int
    workers_last_seen_at: float | None  # the newest heartbeat, if any worker record is left
    soonest_subscription_expiry: float | None  # epoch s
    cooldowns: dict[str, list[float]] = field(default_factory=dict)  # api -> each open cooldown's until
    paused: set[str] = field(default_factory=set)
    auth: dict[str, int] = field(default_factory=dict)  # keys.AUTH_COUNTERS: failures, blocked

    def histograms(self) -> dict[str, dict[str, histogram.Histogram]]:
        return histogram.read(self.counters)


async def read_numbers(redis: aioredis.Redis, now: float, queue: str = "default") -> ClusterNumbers:
    types = sorted(PAYLOAD_MODELS)
    now_ms = int(now * 1000)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(keys.STATS)
        pipe.hgetall(keys.GRAPH_REQUESTS)
        pipe.hgetall(keys.WEBHOOK_COUNTERS)
        pipe.zcard(keys.queue(queue))
        pipe.zcard(keys.scheduled(queue))
        pipe.zrange(keys.DLQ_GROUPS, 0, -1, withscores=True)
        pipe.zcard(keys.DLQ_UNREVIEWED)
        pipe.zcard(keys.DLQ_INDEX)
        pipe.smembers(keys.WORKERS)
        pipe.zrange(keys.SUBSCRIPTIONS, 0, 0, withscores=True)
        pipe.zrevrangebyscore(keys.LIMIT_INDEX, "+inf", now - COOLDOWN_LOOKBACK_S, start=0, num=COOLDOWN_KEYS_MAX)
        pipe.smembers(keys.PAUSED)
        pipe.hgetall(keys.AUTH_COUNTERS)
        for t in types:  # per type: due (queued, running or parked), scheduled, the oldest due, parked
            pipe.zcount(keys.pending(t), "-inf", now_ms)
            pipe.zcount(keys.pending(t), f"({now_ms}", "+inf")
            pipe.zrange(keys.pending(t), 0, 0, withscores=True)
            pipe.zcard(keys.parked(t))
        (
            stats, graph, hooks, queued, scheduled, groups, unreviewed, dlq_total, worker_ids, subs, limit_keys,
            paused, auth, *per_type,
        ) = await pipe.execute()  # fmt: skip
    worker_list = sorted(_s(w) for w in worker_ids)
    limit_names = [_s(k) for k in limit_keys]
    async with redis.pipeline(transaction=False) as pipe:  # the second round trip: records and cooldowns
        if worker_list:
            pipe.mget([keys.worker(w) for w in worker_list])
            pipe.mget([keys.worker_jobs(w) for w in worker_list])
        for name in limit_names:
            pipe.get(keys.limit_cooldown(name))
        second = await pipe.execute() if (worker_list or limit_names) else []
    records = [r for r in (second[0] if worker_list else []) if r is not None]
    running: dict[str, int] = {}
    for raw in second[1] if worker_list else []:  # what each worker runs now (job id -> type)
        if raw is not None:
            for job_type in WorkerJobs.model_validate_json(raw).running.values():
                running[job_type] = running.get(job_type, 0) + 1
    seen = [json.loads(r)["last_seen_at"] for r in records]
    last_seen = max((datetime.fromisoformat(s).timestamp() for s in seen), default=None)
    cooldowns: dict[str, list[float]] = {}
    for name, until in zip(limit_names, second[2:] if worker_list else second, strict=True):
        if until is not None and float(_s(until)) > now:
            cooldowns.setdefault(name.split(":", 1)[0], []).append(float(_s(until)))
    depth: dict[str, TypeDepth] = {}
    for i, t in enumerate(types):
        due, later, oldest, parked = per_type[4 * i : 4 * i + 4]
        age = max(0.0, now - float(oldest[0][1]) / 1000) if oldest and int(due) > 0 else 0.0
        depth[t] = TypeDepth(queued=int(due), scheduled=int(later), running=running.get(t, 0),
                             oldest_queued_age_s=age, parked=int(parked))  # fmt: skip
    dead: dict[tuple[str, str], int] = {}
    for member, score in groups:
        try:
            job_type, error_class = json.loads(_s(member))[:2]
        except (ValueError, TypeError):
            continue
        dead[(str(job_type), str(error_class))] = dead.get((str(job_type), str(error_class)), 0) + int(score)
    return ClusterNumbers(
        now=now, counters=_ints(stats), graph=_ints(graph), webhooks=_ints(hooks), depth=depth,
        queued_total=int(queued), scheduled_total=int(scheduled), dead_letters=dead,
        dead_letters_unreviewed=int(unreviewed), dead_letters_total=int(dlq_total), workers=len(records),
        workers_last_seen_at=last_seen, soonest_subscription_expiry=float(subs[0][1]) if subs else None,
        cooldowns=cooldowns, paused={_s(p) for p in paused}, auth=_ints(auth),
    )  # fmt: skip


async def snapshot_minute(redis: aioredis.Redis, minute: int) -> bool:
    """Keep the counters as they stand now as minute `minute`'s snapshot (once across workers)."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(keys.STATS)
        pipe.hgetall(keys.GRAPH_REQUESTS)
        stats, graph = await pipe.execute()
    body = json.dumps({"stats": _ints(stats), "graph": _ints(graph)})
    return bool(await redis.set(keys.metrics_snapshot(minute), body, nx=True, ex=SNAPSHOT_TTL_S))


async def read_snapshots(redis: aioredis.Redis, minutes: list[int]) -> dict[int, dict[str, dict[str, int]]]:
    """The snapshots of these minutes that exist (one MGET)."""
    if not minutes:
        return {}
    raw = await redis.mget([keys.metrics_snapshot(m) for m in minutes])
    return {m: json.loads(r) for m, r in zip(minutes, raw, strict=True) if r is not None}
