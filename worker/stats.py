"""Counters in one Redis hash: completed, retried and dead-lettered, by job type and error class.

A job's end is counted by worker/lua/outcome.lua, which in the same call writes the job's final
status record, appends its event and wakes its waiters (graphworks_core/status.py)."""

from __future__ import annotations

import time
from importlib import resources

import redis.asyncio as aioredis
from pydantic import BaseModel

from graphworks_core import histogram, keys
from graphworks_core.envelope import Envelope
from graphworks_core.errors import ErrorClass
from graphworks_core.settings import Settings

FINAL_MARKER_TTL_S = 7 * 86_400
THROUGHPUT_TTL_S = 3720  # a minute's throughput hash (keys.throughput) outlives the hour it is read for
# One run's (run time, wait time) in seconds: wait from when the job was due to when it started.
Timing = tuple[float, float]


def _timed(env: Envelope, timing: Timing | None) -> list[str]:
    return histogram.fields(env.type, *timing) if timing is not None else []


class StatsSnapshot(BaseModel):
    completed: int
    retried: int
    dead_lettered: int
    deferred: int = 0  # rate-limit deferrals (not attempts)
    queued: int
    scheduled: int
    dead_letter_size: int
    by_type: dict[str, dict[str, int]]
    by_class: dict[str, dict[str, int]]
    # Processor counters: inbound.delivered|duplicates|gone, sync.pages|created|updated|deleted,
    # sync.full_resyncs[.<resource>], sync.busy_noop.
    processors: dict[str, int] = {}


class Stats:
    def __init__(self, redis: aioredis.Redis, *, status_ttl_s: int = 7 * 86_400, events_maxlen: int = 100_000) -> None:
        self.redis = redis
        self.status_ttl_s = status_ttl_s
        self.events_maxlen = events_maxlen
        text = resources.files("worker").joinpath("lua", "outcome.lua").read_text()
        self._outcome = redis.register_script(text)

    @classmethod
    def from_settings(cls, settings: Settings, redis: aioredis.Redis) -> Stats:
        return cls(redis, status_ttl_s=settings.job_status_ttl_s, events_maxlen=settings.events_stream_maxlen)

    async def completed(
        self,
        env: Envelope,
        record: str,
        *,
        pipe: aioredis.client.Pipeline | None = None,
        timing: Timing | None = None,
    ) -> bool:
        """Count a success once per job (and redrive), with its final status record; False if it
        was counted already.

        With `pipe`, the count is queued on that pipeline (the worker's finish transaction) and
        True is returned; the pipeline's result says whether it counted.
        """
        args = self._args(env, record, "completed", f"completed:type:{env.type}", *_timed(env, timing))
        if pipe is not None:
            await self._outcome(keys=self._keys(env), args=args, client=pipe)
            return True
        return bool(await self._outcome(keys=self._keys(env), args=args))

    async def dead_lettered(
        self, env: Envelope, error_class: ErrorClass, record: str, *, timing: Timing | None = None
    ) -> bool:
        args = self._args(
            env, record, "dead_lettered", f"dead_lettered:type:{env.type}", f"dead_lettered:class:{error_class}",
            *_timed(env, timing),
        )  # fmt: skip
        return bool(await self._outcome(keys=self._keys(env), args=args))

    @staticmethod
    def _keys(env: Envelope) -> list[str]:
        return [
            keys.final_marker(env.id, env.redrive_count), keys.STATS, keys.job_status(env.id), keys.EVENTS,
            keys.job_waiting(env.id), keys.job_done(env.id),
            keys.pending(env.type), keys.throughput(int(time.time() // 60)),
        ]  # fmt: skip

    def _args(self, env: Envelope, record: str, event: str, *fields: str) -> list[str | int]:
        """`record`: the final status record as JSON (JobStatus.stored())."""
        return [
            FINAL_MARKER_TTL_S, record, self.status_ttl_s, event, self.events_maxlen,
            env.id, env.type, event, *fields, f"@{event}:{env.type}",  # and in this minute's throughput
        ]  # fmt: skip

    async def retried(self, env: Envelope, error_class: ErrorClass, *, timing: Timing | None = None) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hincrby(keys.STATS, "retried", 1)
            pipe.hincrby(keys.STATS, f"retried:type:{env.type}", 1)
            pipe.hincrby(keys.STATS, f"retried:class:{error_class}", 1)
            minute = keys.throughput(int(time.time() // 60))
            pipe.hincrby(minute, f"retried:{env.type}", 1)
            pipe.expire(minute, THROUGHPUT_TTL_S)
            for field in _timed(env, timing):
                name, _, by = field.partition(histogram.SUM_SEP)
                pipe.hincrby(keys.STATS, name, int(by or 1))
            await pipe.execute()

    async def deferred(self, env: Envelope) -> None:
        """A rate-limit deferral: the job waits in Redis for its slot; not an attempt."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hincrby(keys.STATS, "deferred", 1)
            pipe.hincrby(keys.STATS, f"deferred:type:{env.type}", 1)
            await pipe.execute()

    async def snapshot(self, queue: str = "default") -> StatsSnapshot:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.STATS)
            pipe.zcard(keys.queue(queue))
            pipe.zcard(keys.scheduled(queue))
            pipe.zcard(keys.DLQ_INDEX)
            pipe.hgetall(keys.PROCESSOR_STATS)
            raw, queued, scheduled, dlq, processor_raw = await pipe.execute()
        counters = {k.decode() if isinstance(k, bytes) else k: int(v) for k, v in raw.items()}
        by_type: dict[str, dict[str, int]] = {}
        by_class: dict[str, dict[str, int]] = {}
        for field, value in counters.items():
            parts = field.split(":")
            if len(parts) == 3:
                target = by_type if parts[1] == "type" else by_class
                target.setdefault(parts[2], {})[parts[0]] = value
        return StatsSnapshot(
            completed=counters.get("completed", 0),
            retried=counters.get("retried", 0),
            dead_lettered=counters.get("dead_lettered", 0),
            deferred=counters.get("deferred", 0),
            queued=int(queued),
            scheduled=int(scheduled),
            dead_letter_size=int(dlq),
            processors={(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in processor_raw.items()},
            by_type=by_type,
            by_class=by_class,
        )
