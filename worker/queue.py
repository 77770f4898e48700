"""Writing jobs into Redis the way arq's worker reads them, with priorities, deferral and idempotency.

arq has no priority: its worker takes the lowest score <= now from the queue zset. A job's score
is its run time minus `priority * step`, so a priority-10 job overtakes priority-5 jobs enqueued
up to 5 steps earlier, and an old low-priority job eventually beats new high-priority ones (no
starvation: a job waits at most 9 steps behind any later job). Deferred jobs and retries wait in
a separate zset by due time and are promoted with their head start when due; this keeps a future
job from running early and lets `--burst` see what is still to come.

Durability: with `wait_replicas` N (REDIS_WAIT_REPLICAS, for the client and the receiver) each
put ends its pipeline with `WAIT N timeout`, on the same connection as the writes, so it returns
once N replicas hold them or raises NotReplicated (a Redis ConnectionError: callers answer it as
Redis down). One WAIT per put, whatever its size; none with N = 0.

Two clocks, on purpose: when a job is due is decided by the injected Clock (tests move it); the
queue zset's scores are wall-clock ms, because arq's worker compares them with its own clock.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError

from graphworks_core import keys
from graphworks_core.clock import Clock
from graphworks_core.envelope import Envelope, encode
from graphworks_core.status import EventName, record_for
from worker.arq_adapter import JOB_KEY_PREFIX, job_record

if TYPE_CHECKING:
    from graphworks_core.settings import Settings


def _script(name: str) -> str:
    return resources.files("worker").joinpath("lua", name).read_text()


class NotReplicated(RedisConnectionError):
    """Fewer replicas than REDIS_WAIT_REPLICAS acknowledged a put in time. The jobs are on the
    master and may run, but a failover now could lose them: the enqueue is not acknowledged."""

    def __init__(self, acknowledged: int, wanted: int, timeout_ms: int) -> None:
        self.acknowledged = acknowledged
        self.wanted = wanted
        super().__init__(f"{acknowledged} of {wanted} replicas acknowledged the write within {timeout_ms} ms")


@dataclass(frozen=True)
class Scheduled:
    """An envelope and when it may run (None: now)."""

    envelope: Envelope
    due_at: float | None = None
    use_idempotency: bool = True
    # Queue position instead of the envelope's priority (1-99; the envelope keeps its own): a
    # job holding a booked rate-limit slot goes ahead of the backlog so it is not late for it.
    queue_priority: int | None = None
    # A new job joins the end of its ordering key's line; a retry or deferral of the line's head
    # does not (it still holds the head, and its successors wait for it).
    joins_order: bool = True
    # Appended to the events stream with the status record: a retry, a redrive.
    event: EventName | None = None
    # Kept with the idempotency key: a later request with the key and another fingerprint is a
    # conflict (Stripe's rule), not a duplicate (PutResult.conflict).
    fingerprint: str | None = None


@dataclass(frozen=True)
class PutResult:
    id: str  # this job's id, or the first job's if its idempotency key was held
    duplicate: bool
    conflict: bool  # a duplicate whose first request had another fingerprint


def arq_job_id(envelope: Envelope) -> str:
    """Each attempt is its own arq job, so arq's per-job state (expiry, job_try) starts fresh.

    A rate-limit deferral of the same attempt is a new arq job too (`.dN`): the deferring job's
    own arq job still exists while it reschedules itself.
    """
    base = f"{envelope.id}.{envelope.redrive_count}.{envelope.attempt}"
    return f"{base}.d{envelope.deferrals}" if envelope.deferrals else base


class JobQueue:
    def __init__(
        self,
        redis: aioredis.Redis,
        clock: Clock,
        *,
        name: str = "default",
        priority_step_s: float = 60.0,
        idempotency_ttl_s: int = 86_400,
        job_expiry_extra_s: float = 86_400.0,
        status_ttl_s: int = 7 * 86_400,
        events_maxlen: int = 100_000,
        wait_replicas: int = 0,
        wait_timeout_ms: int = 500,
    ) -> None:
        self.redis = redis
        self.clock = clock
        self.name = name
        self.queue_key = keys.queue(name)
        self.scheduled_key = keys.scheduled(name)
        self.step_ms = int(priority_step_s * 1000)
        self.idempotency_ttl_s = idempotency_ttl_s
        self.expiry_extra_ms = int(job_expiry_extra_s * 1000)
        self.status_ttl_ms = status_ttl_s * 1000
        self.events_maxlen = events_maxlen
        self.wait_replicas = wait_replicas
        self.wait_timeout_ms = wait_timeout_ms
        self._enqueue = redis.register_script(_script("enqueue.lua"))
        self._promote = redis.register_script(_script("promote.lua"))
        self._release = redis.register_script(_script("release.lua"))
        self._scripts_loaded = False

    @classmethod
    def from_settings(
        cls, settings: Settings, redis: aioredis.Redis, clock: Clock, *, acknowledged: bool = False
    ) -> JobQueue:
        """The queue WORKER_QUEUE names, with the priority step, idempotency and expiry settings.

        `acknowledged`: puts answer a caller outside (the client, the receiver's 202), so they
        wait for REDIS_WAIT_REPLICAS. The worker's own puts (retries, fan-out) do not: a write lost
        in a failover takes the job's later writes with it (replication keeps their order), so the
        job runs again."""
        return cls(
            redis,
            clock,
            name=settings.worker_queue,
            priority_step_s=settings.queue_priority_step_s,
            idempotency_ttl_s=settings.idempotency_ttl_s,
            job_expiry_extra_s=settings.job_expiry_extra_s,
            status_ttl_s=settings.job_status_ttl_s,
            events_maxlen=settings.events_stream_maxlen,
            wait_replicas=settings.redis_wait_replicas if acknowledged else 0,
            wait_timeout_ms=max(1, round(settings.redis_wait_timeout_s * 1000)),
        )

    async def put(self, jobs: Sequence[Scheduled]) -> list[str]:
        """Store jobs in one pipelined round trip; returns each job's id (the first job's for a known key)."""
        return [r.id for r in await self.put_results(jobs)]

    async def put_results(self, jobs: Sequence[Scheduled]) -> list[PutResult]:
        """`put`, saying for each job whether its idempotency key was held, and by a request like it."""
        if not jobs:
            return []
        now_ms = int(self.clock.now() * 1000)
        wall_ms = int(time.time() * 1000)
        try:
            results = await self._put(jobs, now_ms, wall_ms, check_scripts=not self._scripts_loaded)
        except NoScriptError:  # Redis restarted or its scripts were flushed: load them again, once
            results = await self._put(jobs, now_ms, wall_ms, check_scripts=True)
        self._scripts_loaded = True
        out = []
        for job, raw in zip(jobs, results, strict=True):
            held_id, _, held_fp = (raw.decode() if isinstance(raw, bytes) else str(raw)).partition(" ")
            duplicate = held_id != job.envelope.id
            conflict = duplicate and held_fp != (job.fingerprint or "")
            out.append(PutResult(held_id, duplicate, conflict))
        return out

    async def _put(self, jobs: Sequence[Scheduled], now_ms: int, wall_ms: int, *, check_scripts: bool) -> list[Any]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for job in jobs:
                await self._add(pipe, job, now_ms, wall_ms)
            if self.wait_replicas:
                pipe.execute_command("WAIT", self.wait_replicas, self.wait_timeout_ms)
            if not check_scripts:
                # redis-py sends SCRIPT EXISTS before every pipeline that runs a script: a second
                # round trip per put. Once loaded, skip it; a NoScriptError (no job stored) reloads.
                pipe.scripts.clear()
            results: list[Any] = await pipe.execute()
        if self.wait_replicas:
            acknowledged = int(results.pop())
            if acknowledged < self.wait_replicas:
                raise NotReplicated(acknowledged, self.wait_replicas, self.wait_timeout_ms)
        return results

    async def _add(self, pipe: aioredis.client.Pipeline, job: Scheduled, now_ms: int, wall_ms: int) -> None:
        env = job.envelope
        job_id = arq_job_id(env)
        due_ms = now_ms if job.due_at is None else int(job.due_at * 1000)
        later = due_ms > now_ms
        priority = job.queue_priority or env.priority
        score = due_ms if later else wall_ms - priority * self.step_ms
        idem = job.use_idempotency and env.idempotency_key is not None
        ordered = job.joins_order and env.ordering_key is not None
        job_key = JOB_KEY_PREFIX + job_id
        ttl_ms = max(due_ms - now_ms, 0) + self.expiry_extra_ms
        record = record_for(
            env,
            "scheduled" if later else "queued",
            run_id=job_id,
            now=now_ms / 1000,
            next_run_at=due_ms / 1000 if later else None,
        ).stored()
        fresh = env.attempt == 0 and env.deferrals == 0  # a new job or a redrive: (re)listed in its type's index
        await self._enqueue(
            keys=[keys.idempotency(env.idempotency_key) if idem and env.idempotency_key else job_key,
                  job_key, self.queue_key, self.scheduled_key,
                  keys.order(self.name, env.ordering_key) if ordered and env.ordering_key else job_key,
                  keys.job_status(env.id), keys.EVENTS, keys.jobs_index(env.type),
                  keys.pending(env.type), keys.PAUSED, keys.parked(env.type)],
            args=[env.id, job_id, job_record(encode(env), due_ms),  # arq's enqueue time: when due (wait histogram)
                  ttl_ms, score, "1" if later else "0",
                  self.idempotency_ttl_s if idem else 0, priority, "1" if ordered else "0",
                  due_ms if later else 0,
                  record, ttl_ms + self.status_ttl_ms, job.event or "", self.events_maxlen, env.type,
                  "0" if fresh else "", job.fingerprint or "", now_ms],
            client=pipe,
        )  # fmt: skip

    async def release(self, env: Envelope, *, pipe: aioredis.client.Pipeline | None = None) -> str | None:
        """`env` (the head of its ordering key's line) ended: queue the next job of the key.

        Returns the next job's id ("" if none waits; None if `env` was not the head, e.g. a re-run
        after a crash already released it). With `pipe`, it is queued on that pipeline (the
        worker's finish transaction) and None is returned.
        """
        if env.ordering_key is None:
            return None
        now_ms, wall_ms = int(self.clock.now() * 1000), int(time.time() * 1000)
        script_keys = [keys.order(self.name, env.ordering_key), self.queue_key, self.scheduled_key]
        args: list[str | int] = [
            f"{env.id}.{env.redrive_count}.", now_ms, wall_ms, self.step_ms, JOB_KEY_PREFIX, self.expiry_extra_ms
        ]  # fmt: skip
        if pipe is not None:
            await self._release(keys=script_keys, args=args, client=pipe)
            return None
        result = await self._release(keys=script_keys, args=args)
        return None if result is None else (result.decode() if isinstance(result, bytes) else str(result))

    async def next_in_order(self, env: Envelope) -> str | None:
        """The id of the job waiting right behind `env` in its ordering key's line, if `env` is its head."""
        if env.ordering_key is None:
            return None
        raw: list[bytes] = await self.redis.lrange(keys.order(self.name, env.ordering_key), 0, 1)  # type: ignore[misc]
        members = [m.decode() for m in raw]
        if not members or not members[0].split(":", 2)[2].startswith(f"{env.id}.{env.redrive_count}."):
            return None
        return members[1].split(":", 2)[2].split(".")[0] if len(members) > 1 else None

    async def promote_due(self, limit: int = 1000) -> int:
        """Move every scheduled job whose time has come into the queue; returns how many moved."""
        now_ms = int(self.clock.now() * 1000)
        wall_ms = int(time.time() * 1000)
        moved = await self._promote(
            keys=[self.scheduled_key, self.queue_key], args=[now_ms, wall_ms, self.step_ms, limit]
        )
        return int(moved)

    async def depth(self) -> tuple[int, int]:
        """(queued, scheduled) job counts."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zcard(self.queue_key)
            pipe.zcard(self.scheduled_key)
            queued, scheduled = await pipe.execute()
        return int(queued), int(scheduled)
