"""Which workers are alive: each writes its record every heartbeat (a third of WORKER_LEASE_S)
with a TTL of LIVENESS_LEASES leases, so a worker not seen for 3 lease periods is gone from the list
(DESIGN.md's health rule) and one that left cleanly is gone at once.

The record is what `/api/queue/health` and `graphworks health` show: id, host, pid, when it
started, when it was last seen, how many jobs it is running.
"""

from __future__ import annotations

import os
import secrets
import socket
from datetime import UTC, datetime

import redis.asyncio as aioredis
from pydantic import BaseModel

from graphworks_core import keys

LIVENESS_LEASES = 3  # a worker not seen for this many leases is gone


class WorkerInfo(BaseModel):
    id: str
    host: str
    pid: int
    started_at: datetime
    last_seen_at: datetime
    running: int


def new_worker_info() -> WorkerInfo:
    host = socket.gethostname()
    now = datetime.now(UTC)
    return WorkerInfo(
        id=f"{host}:{os.getpid()}:{secrets.token_hex(3)}", host=host, pid=os.getpid(),
        started_at=now, last_seen_at=now, running=0,
    )  # fmt: skip


def announce(pipe: aioredis.client.Pipeline, info: WorkerInfo, ttl_s: float) -> None:
    """Queue the heartbeat's writes on `pipe` (two commands)."""
    pipe.set(keys.worker(info.id), info.model_dump_json(), px=int(ttl_s * 1000))
    pipe.sadd(keys.WORKERS, info.id)


async def retire(redis: aioredis.Redis, worker_id: str) -> None:
    """A worker leaving cleanly takes its record with it."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.delete(keys.worker(worker_id), keys.worker_jobs(worker_id))
        pipe.srem(keys.WORKERS, worker_id)
        await pipe.execute()


async def live_workers(redis: aioredis.Redis) -> list[WorkerInfo]:
    """Workers seen within LIVENESS_LEASES leases, oldest first; ids whose record expired are pruned."""
    ids = sorted(m.decode() for m in await redis.smembers(keys.WORKERS))  # type: ignore[misc]
    if not ids:
        return []
    records = await redis.mget([keys.worker(i) for i in ids])
    gone = [i for i, r in zip(ids, records, strict=True) if r is None]
    if gone:
        await redis.srem(keys.WORKERS, *gone)  # type: ignore[misc]
    workers = [WorkerInfo.model_validate_json(r) for r in records if r is not None]
    return sorted(workers, key=lambda w: w.started_at)


class WorkerJobs(BaseModel):
    """What one worker runs now (job id -> type) and the paused types it has seen; `keys.worker_jobs`."""

    running: dict[str, str] = {}
    paused: list[str] = []


async def exchange_control(
    redis: aioredis.Redis, worker_id: str, running: dict[str, str], seen: frozenset[str] | None, ttl_s: float
) -> frozenset[str]:
    """One round trip every ~0.5 s per worker (worker/arq_adapter.py): publish what this worker runs
    (for per-type `running` in stats) and the paused set it had, and read the paused set now."""
    record = WorkerJobs(running=running, paused=sorted(seen or ()))
    async with redis.pipeline(transaction=False) as pipe:
        pipe.smembers(keys.PAUSED)
        pipe.set(keys.worker_jobs(worker_id), record.model_dump_json(), px=int(ttl_s * 1000))
        paused, _ = await pipe.execute()
    return frozenset(m.decode() if isinstance(m, bytes) else str(m) for m in paused)
