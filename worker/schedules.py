"""Recurring schedules: a job enqueued on a cron expression or every N seconds, by every worker.

Kept in Redis (graphworks_core/keys.py):
- `graphworks:schedules`, a hash: name -> the spec (JSON), paused or not;
- `graphworks:schedules:due`, a zset: each unpaused schedule's name by its next tick (epoch s);
- `graphworks:schedule:<name>:runs`, a zset: its last RUNS_KEPT runs, job id by tick.

Every worker calls `tick()` every SCHEDULE_TICK_S. When nothing is due that is one command
(ZRANGEBYSCORE on the due zset); a due schedule costs three more round trips. A tick's job
carries the idempotency key `schedule:<name>:<tick epoch s>`, so however many workers see the
tick, one job is stored, and the enqueue script answers the others with its id: the run is
recorded by whoever gets there (idempotent), and next_run_at only moves forward.

Missed ticks are coalesced: a tick() finding a schedule due enqueues only its latest tick <= now
(never a burst after an outage or while no worker ran), then sets the first tick after now.
A paused schedule is off the due zset; resuming sets the first tick after now (no catch-up).
`every_s` ticks are multiples of every_s since the epoch (to the millisecond); cron expressions
are croniter's (5 fields, or a 6th for seconds), evaluated in the schedule's time zone.
"""

from __future__ import annotations

import builtins
import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pydantic
import redis.asyncio as aioredis
from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from redis.exceptions import WatchError

from graphworks_core import keys
from graphworks_core.clock import Clock, utc
from graphworks_core.envelope import PRIORITY_DEFAULT, PRIORITY_MAX, PRIORITY_MIN, Envelope
from graphworks_core.errors import EnqueueError, PayloadInvalid
from graphworks_core.payloads import PAYLOAD_MODELS
from worker.client import validate_payload
from worker.queue import JobQueue, Scheduled

if TYPE_CHECKING:
    from graphworks_core.settings import Settings

log = logging.getLogger("graphworks.schedules")

__all__ = ["ScheduleInfo", "ScheduleInvalid", "ScheduleNotFound", "ScheduleRun", "ScheduleSpec", "ScheduleStore"]

NAME_CHARS = "A-Za-z0-9_.-"
NAME_MAX = 64
RUNS_KEPT = 20
DUE_BATCH = 100  # schedules one tick() takes at most; the rest wait for the next call
RETRY_BROKEN_S = 60.0  # a stored schedule that cannot be planned (its job type changed) is tried again after this


class ScheduleNotFound(LookupError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"no schedule named {name!r}")


class ScheduleInvalid(ValueError):
    """A schedule was refused; nothing was stored. The message names each field and what is wrong."""

    def __init__(self, field: str, problem: str, *, more: Sequence[tuple[str, str]] = ()) -> None:
        self.field = field
        self.problem = problem
        self.problems: list[tuple[str, str]] = [(field, problem), *more]
        super().__init__("; ".join(f"{f}: {p}" for f, p in self.problems))


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{name!r} is not an IANA time zone (like UTC or Europe/Berlin)") from exc


# Longer is a mistake, and far longer overflowed counting ticks in milliseconds (a 500 to the API).
EVERY_MAX_S = 10 * 366 * 86_400


def _every_ms(every_s: float) -> int:
    return round(every_s * 1000)


class ScheduleSpec(BaseModel):
    """What a schedule is: its name, when (`cron` or `every_s`, exactly one), and the job it enqueues."""

    model_config = ConfigDict(extra="forbid")

    name: str
    cron: str | None = None
    every_s: float | None = Field(None, gt=0, le=EVERY_MAX_S, allow_inf_nan=False, validate_default=True)
    type: str
    payload: dict[str, Any]
    priority: int = Field(PRIORITY_DEFAULT, ge=PRIORITY_MIN, le=PRIORITY_MAX)
    timezone: str = "UTC"
    paused: bool = False

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not 1 <= len(value) <= NAME_MAX or any(not (c.isascii() and (c.isalnum() or c in "_.-")) for c in value):
            raise ValueError(f"{value!r}: use 1-{NAME_MAX} characters of {NAME_CHARS}")
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        value = value.strip()
        try:  # `H` fields are hashed on the schedule's name, as _cron_iter does
            croniter(value, time.time(), hash_id=info.data.get("name") or "-").get_next(float)
        except (ValueError, KeyError, TypeError) as exc:  # CroniterBadCronError / BadDateError are ValueErrors
            raise ValueError(f"{value!r} is not a valid cron expression: {exc}") from exc
        return value

    @field_validator("every_s")
    @classmethod
    def _one_cadence(cls, value: float | None, info: ValidationInfo) -> float | None:
        if "cron" not in info.data:  # the cron expression itself was wrong: reported there
            return value
        if (info.data["cron"] is None) == (value is None):
            got = "both" if value is not None else "neither"
            raise ValueError(f"give exactly one of cron or every_s (got {got})")
        if value is not None and _every_ms(value) < 1:
            raise ValueError("must be at least 0.001 (ticks are counted in milliseconds)")
        return value

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        if value not in PAYLOAD_MODELS:
            raise ValueError(f"unknown job type {value!r}; known: {', '.join(sorted(PAYLOAD_MODELS))}")
        return value

    @field_validator("payload")
    @classmethod
    def _payload(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        job_type = info.data.get("type")
        if job_type is None:  # unknown type: reported there
            return value
        try:
            validate_payload(job_type, value)
        except PayloadInvalid as exc:
            raise ValueError(f"not a valid {job_type} payload: {'; '.join(exc.problems)}") from exc
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        _zone(value)
        return value

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> ScheduleSpec:
        """Validate `data`; ScheduleInvalid names each bad field (what the CLI and the HTTP API report)."""
        try:
            return cls.model_validate(dict(data))
        except pydantic.ValidationError as exc:
            problems = [(".".join(str(p) for p in e["loc"]) or "schedule", _message(e["msg"])) for e in exc.errors()]
            raise ScheduleInvalid(*problems[0], more=problems[1:]) from exc

    # -- when it runs (times in epoch milliseconds) --

    def latest_tick_ms(self, now_ms: int) -> int:
        """The latest tick at or before `now_ms`."""
        if self.every_s is not None:
            every = _every_ms(self.every_s)
            return now_ms // every * every
        # Cron ticks fall on whole seconds; croniter's get_prev is strictly before its start.
        start = datetime.fromtimestamp(now_ms // 1000 + 1, ZoneInfo(self.timezone))
        return round(float(self._cron_iter(start).get_prev(float)) * 1000)

    def next_tick_ms(self, now_ms: int) -> int:
        """The first tick after `now_ms`."""
        if self.every_s is not None:
            return self.latest_tick_ms(now_ms) + _every_ms(self.every_s)
        start = datetime.fromtimestamp(now_ms / 1000, ZoneInfo(self.timezone))
        return round(float(self._cron_iter(start).get_next(float)) * 1000)

    def _cron_iter(self, start: datetime) -> croniter:
        assert self.cron is not None
        return croniter(self.cron, start, hash_id=self.name)


def _message(msg: str) -> str:
    return msg.removeprefix("Value error, ")


class ScheduleRun(BaseModel):
    """One tick that enqueued a job."""

    tick: datetime
    job_id: str


class ScheduleInfo(ScheduleSpec):
    """A schedule with its state: when it runs next (None while paused), and its recent runs, newest first."""

    next_run_at: datetime | None
    last_run_at: datetime | None
    last_job_id: str | None
    runs: list[ScheduleRun]


def _script(name: str) -> str:
    return resources.files("worker").joinpath("lua", name).read_text()


def _stored(raw: bytes | str) -> ScheduleSpec:
    """A spec as stored (validated when it was put; not again on every read)."""
    return ScheduleSpec.model_construct(**json.loads(raw))


def _tick_label(tick_ms: int) -> str:
    return str(tick_ms // 1000) if tick_ms % 1000 == 0 else f"{tick_ms / 1000:.3f}"


def idempotency_key(name: str, tick_ms: int) -> str:
    """The key of a tick's job: one job per tick across every worker."""
    return f"schedule:{name}:{_tick_label(tick_ms)}"


def _info(spec: ScheduleSpec, next_s: float | None, rows: Sequence[tuple[bytes, float]]) -> ScheduleInfo:
    runs = [ScheduleRun(tick=utc(score), job_id=member.decode()) for member, score in rows]
    return ScheduleInfo.model_construct(
        **spec.model_dump(),
        next_run_at=None if next_s is None else utc(float(next_s)),
        last_run_at=runs[0].tick if runs else None,
        last_job_id=runs[0].job_id if runs else None,
        runs=runs,
    )


class ScheduleStore:
    def __init__(self, redis: aioredis.Redis, queue: JobQueue, settings: Settings, clock: Clock) -> None:
        self.redis = redis
        self.queue = queue
        self.settings = settings
        self.clock = clock
        self._ran = redis.register_script(_script("schedule_ran.lua"))

    def _now_ms(self) -> int:
        return math.floor(self.clock.now() * 1000)

    async def put(self, spec: ScheduleSpec | Mapping[str, Any]) -> ScheduleInfo:
        """Create or replace a schedule; its next tick is the first after now. ScheduleInvalid: nothing stored."""
        spec = ScheduleSpec.parse(
            spec.model_dump(include=set(ScheduleSpec.model_fields)) if isinstance(spec, BaseModel) else spec
        )
        try:
            next_ms = None if spec.paused else spec.next_tick_ms(self._now_ms())
        except ValueError as exc:  # croniter: no date after now matches
            raise ScheduleInvalid("cron", f"{spec.cron!r} has no tick after now: {exc}") from exc
        async with self.redis.pipeline(transaction=True) as tr:
            tr.hset(keys.SCHEDULES, spec.name, spec.model_dump_json())
            if next_ms is None:
                tr.zrem(keys.SCHEDULES_DUE, spec.name)
            else:
                tr.zadd(keys.SCHEDULES_DUE, {spec.name: next_ms / 1000})
            tr.zrevrange(keys.schedule_runs(spec.name), 0, RUNS_KEPT - 1, withscores=True)
            *_, rows = await tr.execute()
        log.debug("schedule=%s stored (%s)", spec.name, "paused" if next_ms is None else f"next {utc(next_ms / 1000)}")
        return _info(spec, None if next_ms is None else next_ms / 1000, rows)

    async def get(self, name: str) -> ScheduleInfo:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(keys.SCHEDULES, name)
            pipe.zscore(keys.SCHEDULES_DUE, name)
            pipe.zrevrange(keys.schedule_runs(name), 0, RUNS_KEPT - 1, withscores=True)
            raw, next_s, rows = await pipe.execute()
        if raw is None:
            raise ScheduleNotFound(name)
        return _info(_stored(raw), next_s, rows)

    async def list(self) -> builtins.list[ScheduleInfo]:
        """Every schedule, by name."""
        stored: dict[bytes, bytes] = await self.redis.hgetall(keys.SCHEDULES)  # type: ignore[misc]
        if not stored:
            return []
        names = sorted(stored)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zmscore(keys.SCHEDULES_DUE, [n.decode() for n in names])
            for name in names:
                pipe.zrevrange(keys.schedule_runs(name.decode()), 0, RUNS_KEPT - 1, withscores=True)
            next_runs, *runs = await pipe.execute()
        return [_info(_stored(stored[n]), s, rows) for n, s, rows in zip(names, next_runs, runs, strict=True)]

    async def remove(self, name: str) -> None:
        async with self.redis.pipeline(transaction=True) as tr:
            tr.hdel(keys.SCHEDULES, name)
            tr.zrem(keys.SCHEDULES_DUE, name)
            tr.delete(keys.schedule_runs(name))
            removed, *_ = await tr.execute()
        if not removed:
            raise ScheduleNotFound(name)
        log.debug("schedule=%s removed", name)

    async def pause(self, name: str) -> ScheduleInfo:
        """Stop enqueuing its ticks (for every worker) until resumed."""
        return await self._set_paused(name, True)

    async def resume(self, name: str) -> ScheduleInfo:
        """Run again from the first tick after now; ticks that passed while paused are not caught up."""
        return await self._set_paused(name, False)

    async def _set_paused(self, name: str, paused: bool) -> ScheduleInfo:
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(keys.SCHEDULES)  # a put or another pause meanwhile: read again
                    raw = await pipe.hget(keys.SCHEDULES, name)  # type: ignore[misc]
                    if raw is None:
                        raise ScheduleNotFound(name)
                    spec = _stored(raw)
                    pipe.multi()  # type: ignore[no-untyped-call]
                    if spec.paused != paused:
                        spec = spec.model_copy(update={"paused": paused})
                        pipe.hset(keys.SCHEDULES, name, spec.model_dump_json())
                        if paused:
                            pipe.zrem(keys.SCHEDULES_DUE, name)
                        else:
                            pipe.zadd(keys.SCHEDULES_DUE, {name: spec.next_tick_ms(self._now_ms()) / 1000})
                    pipe.zscore(keys.SCHEDULES_DUE, name)
                    pipe.zrevrange(keys.schedule_runs(name), 0, RUNS_KEPT - 1, withscores=True)
                    *_, next_s, rows = await pipe.execute()
                except WatchError:
                    continue
                log.debug("schedule=%s %s", name, "paused" if paused else "resumed")
                return _info(spec, next_s, rows)

    async def tick(self) -> builtins.list[str]:
        """Enqueue the latest due tick of every due schedule; the ids of the jobs this call stored."""
        now_ms = self._now_ms()
        due: builtins.list[bytes] = await self.redis.zrangebyscore(
            keys.SCHEDULES_DUE, "-inf", now_ms / 1000, start=0, num=DUE_BATCH
        )
        if not due:
            return []
        names = [n.decode() for n in due]
        raws: builtins.list[bytes | None] = await self.redis.hmget(keys.SCHEDULES, names)  # type: ignore[misc]
        plans = [self._plan(name, raw, now_ms) for name, raw in zip(names, raws, strict=True)]
        jobs = [p.job for p in plans if p.job is not None]
        ids = iter(await self.queue.put(jobs))
        enqueued: builtins.list[str] = []
        async with self.redis.pipeline(transaction=False) as pipe:
            for p in plans:
                job_id = next(ids) if p.job is not None else ""
                if p.job is not None and job_id == p.job.envelope.id:
                    enqueued.append(job_id)
                    log.info("schedule=%s tick=%s job=%s enqueued", p.name, utc(p.tick_ms / 1000), job_id)
                next_s = "" if p.next_ms is None else p.next_ms / 1000
                await self._ran(
                    keys=[keys.SCHEDULES, keys.SCHEDULES_DUE, keys.schedule_runs(p.name)],
                    args=[p.name, p.raw, job_id, p.tick_ms / 1000, next_s, RUNS_KEPT],
                    client=pipe,
                )
            await pipe.execute()
        return enqueued

    def _plan(self, name: str, raw: bytes | None, now_ms: int) -> _Plan:
        if raw is None:  # removed since the due zset was read
            return _Plan(name, "", 0, None, None)
        text = raw.decode()
        spec = _stored(text)
        if spec.paused:
            return _Plan(name, text, 0, None, None)
        try:
            tick_ms, next_ms = spec.latest_tick_ms(now_ms), spec.next_tick_ms(now_ms)
            return _Plan(name, text, tick_ms, next_ms, self._job(spec, tick_ms))
        except (EnqueueError, ValueError, TypeError, KeyError) as exc:
            # Stored before an upgrade changed its job type's model, say: skipped, not a crash loop.
            log.warning("schedule=%s cannot be enqueued (tried again in %g s): %s", name, RETRY_BROKEN_S, exc)
            return _Plan(name, text, 0, now_ms + round(RETRY_BROKEN_S * 1000), None)

    def _job(self, spec: ScheduleSpec, tick_ms: int) -> Scheduled:
        model = validate_payload(spec.type, spec.payload)
        env = Envelope(
            type=spec.type,
            payload=model.model_dump(mode="json", exclude_none=True),
            priority=spec.priority,
            queue=self.settings.worker_queue,
            idempotency_key=idempotency_key(spec.name, tick_ms),
            ordering_key=model.default_ordering_key(),
        )
        return Scheduled(env)


@dataclass(frozen=True, slots=True)
class _Plan:
    """What tick() does for one due schedule: the job of its tick (None: nothing), and its next tick."""

    name: str
    raw: str  # the spec as read ("": gone)
    tick_ms: int
    next_ms: int | None  # None: off the due zset
    job: Scheduled | None
