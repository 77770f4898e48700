"""Pause, resume and clear one job type, for every worker (DESIGN.md, "Queue semantics": Pause).

A paused type is a member of `keys.PAUSED` (a Redis set: it survives restarts). Its jobs wait
without churn and spend no attempt:

- a job enqueued (or released by its ordering key) while its type is paused, and due now, goes
  straight to the type's parked zset (`keys.parked`) instead of the queue (worker/lua/enqueue.lua);
- a job already queued when the pause came is parked by the first worker that takes it: workers
  cache the paused set (refreshed every CONTROL_EVERY_S by worker/arq_adapter.py, no Redis read per
  job), and park.lua moves the job, same arq job and attempt, from the queue to the parked zset;
  the worker then hands its run back (no attempt, no run counted). Its status record stays `queued`;
- resume takes the type out of the set, then moves the parked jobs back into the queue in batches
  of RESUME_BATCH with their old scores, so they go first, in their order. Jobs with an ordering key
  are parked only as their line's head (the rest wait in the line's list as always): order is kept.

Clear cancels a type's queued (or scheduled) jobs in batches, read from the type's pending zset
(`keys.pending`, by due time) and cancelled through worker/lua/cancel.lua, one pipelined round trip
per batch; each record becomes `cancelled` with its event, as a single cancel would.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any, Literal

import redis.asyncio as aioredis

from graphworks_core import keys
from graphworks_core.envelope import Envelope
from graphworks_core.payloads import PAYLOAD_MODELS
from graphworks_core.settings import Settings
from graphworks_core.status import JobStatus
from worker.arq_adapter import IN_PROGRESS_KEY_PREFIX, JOB_KEY_PREFIX
from worker.queue import JobQueue

RESUME_BATCH = 1000  # parked jobs moved back per Redis call on resume
CLEAR_BATCH = 200  # jobs cancelled per pipelined round trip on clear

ClearStatus = Literal["queued", "scheduled"]


class UnknownJobType(LookupError):
    def __init__(self, job_type: str) -> None:
        self.job_type = job_type
        super().__init__(f"unknown job type {job_type!r}; known: {', '.join(sorted(PAYLOAD_MODELS))}")


def known_type(job_type: str) -> str:
    if job_type not in PAYLOAD_MODELS:
        raise UnknownJobType(job_type)
    return job_type


def _script(name: str) -> str:
    return resources.files("worker").joinpath("lua", name).read_text()


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


async def paused_types(redis: aioredis.Redis) -> frozenset[str]:
    return frozenset(_text(m) for m in await redis.smembers(keys.PAUSED))  # type: ignore[misc]


@dataclass(frozen=True)
class Cleared:
    type: str
    status: ClearStatus
    cleared: int


class QueueControl:
    """Pause, resume, clear and park; the API (ops/queues.py), the CLI and the runner share it."""

    def __init__(self, redis: aioredis.Redis, queue: JobQueue, settings: Settings) -> None:
        self.redis = redis
        self.queue = queue
        self.settings = settings
        self._park = redis.register_script(_script("park.lua"))
        self._unpark = redis.register_script(_script("unpark.lua"))
        self._cancel = redis.register_script(_script("cancel.lua"))

    async def pause(self, job_type: str) -> bool:
        """True if the type was not paused before."""
        return bool(await self.redis.sadd(keys.PAUSED, known_type(job_type)))  # type: ignore[misc]

    async def resume(self, job_type: str) -> int:
        """Unpause the type and put its parked jobs back in the queue; returns how many went back."""
        await self.redis.srem(keys.PAUSED, known_type(job_type))  # type: ignore[misc]
        moved = 0
        while True:
            n = int(
                await self._unpark(
                    keys=[keys.parked(job_type), self.queue.queue_key],
                    args=[RESUME_BATCH, JOB_KEY_PREFIX, int(self.settings.job_expiry_extra_s * 1000)],
                )
            )
            moved += n
            if n < RESUME_BATCH:
                return moved

    async def park(self, job_type: str, arq_job_id: str) -> bool:
        """A worker took a job of a type it believes paused: park it (True), or run it if resumed (False)."""
        parked = await self._park(
            keys=[keys.PAUSED, self.queue.queue_key, keys.parked(job_type), JOB_KEY_PREFIX + arq_job_id],
            args=[job_type, arq_job_id],
        )
        return bool(parked)

    async def clear(self, job_type: str, status: ClearStatus) -> Cleared:
        """Cancel every queued (due now) or scheduled (due later) job of the type, in batches."""
        pending = keys.pending(known_type(job_type))
        cleared = 0
        skipped = 0  # members that stay (running, or moved on): the next batch reads past them
        while True:
            now_ms = int(self.queue.clock.now() * 1000)
            low, high = ("-inf", now_ms) if status == "queued" else (f"({now_ms}", "+inf")
            batch = [
                _text(m) for m in await self.redis.zrangebyscore(pending, low, high, start=skipped, num=CLEAR_BATCH)
            ]
            if not batch:
                return Cleared(job_type, status, cleared)
            done, dropped, heads = await self._cancel_batch(job_type, batch)
            for record in heads:  # the next job of a cancelled head's ordering key goes
                await self.queue.release(_stub(record))
            cleared += done
            skipped += len(batch) - done - dropped

    async def _cancel_batch(self, job_type: str, ids: list[str]) -> tuple[int, int, list[JobStatus]]:
        """(cancelled, dropped: entries whose record expired or ended, heads whose line must move on)."""
        raws = await self.redis.mget([keys.job_status(i) for i in ids])
        stale: list[str] = []
        targets: list[tuple[JobStatus, str, bytes]] = []
        now = datetime.fromtimestamp(time.time(), UTC)
        for job_id, raw in zip(ids, raws, strict=True):
            record = None if raw is None else JobStatus.model_validate_json(raw)
            if record is None or record.final:
                stale.append(job_id)
                continue
            cancelled = record.model_copy(update={"status": "cancelled", "updated_at": now, "next_run_at": None})
            targets.append((record, cancelled.stored(), raw))
        async with self.redis.pipeline(transaction=False) as pipe:
            for record, cancelled_json, raw in targets:
                await self._cancel(
                    keys=[keys.job_status(record.id), self.queue.queue_key, self.queue.scheduled_key,
                          JOB_KEY_PREFIX + record.run_id, IN_PROGRESS_KEY_PREFIX + record.run_id,
                          keys.order(self.queue.name, record.ordering_key) if record.ordering_key
                          else keys.job_status(record.id),
                          keys.EVENTS, keys.job_waiting(record.id), keys.job_done(record.id),
                          keys.pending(record.type), keys.parked(record.type)],
                    args=[raw, cancelled_json, self.settings.job_status_ttl_s, record.run_id,
                          f"{record.priority:02d}", self.settings.events_stream_maxlen, record.id, record.type,
                          "1" if record.ordering_key else "0"],
                    client=pipe,
                )  # fmt: skip
            if stale:  # nothing to cancel: only the pending entry to drop
                pipe.zrem(keys.pending(job_type), *stale)
            results = await pipe.execute()
        done = 0
        heads: list[JobStatus] = []
        for (record, _, _), outcome in zip(targets, results, strict=False):
            if _text(outcome[0]) == "cancelled":
                done += 1
                if int(outcome[1]) and record.ordering_key:
                    heads.append(record)
        return done, len(stale), heads


def _stub(record: JobStatus) -> Envelope:
    """Enough of an envelope to release its ordering key (worker/queue.py `release`)."""
    return Envelope(
        id=record.id, type=record.type, payload={}, ordering_key=record.ordering_key, redrive_count=record.redrive_count
    )
