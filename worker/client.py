"""The enqueue client for service code: typed, async, one method per job type plus a generic one.

    async with GraphworksClient.from_settings() as gw:
        job_id = await gw.send_mail(mailbox="ops@contoso.com", to=["a@contoso.com"], subject="Hi", body="...")

A payload that fails its model raises PayloadInvalid naming the field; nothing is stored then.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

import pydantic
import redis.asyncio as aioredis
from pydantic import BaseModel, Field

from graphworks_core import keys
from graphworks_core.clock import Clock, SystemClock
from graphworks_core.connections import UNREACHABLE, describe_redis, redis_client
from graphworks_core.envelope import (
    DEFER_MAX_S,
    ORDERING_KEY_MAX_CHARS,
    PRIORITY_DEFAULT,
    PRIORITY_MAX,
    PRIORITY_MIN,
    Envelope,
)
from graphworks_core.errors import ConfigError, EnqueueError, IdempotencyConflict, PayloadInvalid, QueueUnavailable
from graphworks_core.payloads import (
    PAYLOAD_MODELS,
    Attachment,
    Inbound,
    Mail,
    Notification,
    Payload,
    Sync,
    TeamsMessage,
)
from graphworks_core.settings import Settings, load_settings
from graphworks_core.status import JobEvent, JobState, JobStatus, Progress
from worker.queue import JobQueue, NotReplicated, PutResult, Scheduled
from worker.status import JobNotFound, JobPage, JobStatusStore, NotCancellable, WaitTimedOut

__all__ = [
    "EnqueueError",
    "Enqueued",
    "GraphworksClient",
    "IdempotencyConflict",
    "JobEvent",
    "JobNotFound",
    "JobPage",
    "JobRequest",
    "JobStatus",
    "NotCancellable",
    "PayloadInvalid",
    "Progress",
    "QueueUnavailable",
    "WaitTimedOut",
    "validate_payload",
]


class JobRequest(BaseModel):
    """One job to enqueue; also the shape of a line of a JOBS.jsonl file."""

    model_config = pydantic.ConfigDict(extra="forbid")

    type: str
    payload: dict[str, Any]
    priority: int = Field(PRIORITY_DEFAULT, ge=PRIORITY_MIN, le=PRIORITY_MAX)
    idempotency_key: str | None = Field(None, min_length=1, max_length=512)
    defer_s: float | None = Field(None, ge=0, le=DEFER_MAX_S)
    ordering_key: str | None = Field(None, min_length=1, max_length=ORDERING_KEY_MAX_CHARS)


class Enqueued(BaseModel):
    """What an enqueue answers over HTTP: the job's id and status, and whether it was already there."""

    id: str
    type: str
    status: JobState
    duplicate: bool


def _fingerprint(
    job_type: str, payload: dict[str, Any], priority: int, ordering_key: str | None, defer_s: float | None
) -> str:
    text = json.dumps([job_type, payload, priority, ordering_key, defer_s], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _problems(exc: pydantic.ValidationError) -> list[str]:
    return [f"{'.'.join(str(p) for p in e['loc']) or '(payload)'}: {e['msg']}" for e in exc.errors()]


def validate_payload(job_type: str, payload: Mapping[str, Any] | BaseModel) -> Payload:
    """The payload as its model, or PayloadInvalid naming each bad field."""
    if job_type not in PAYLOAD_MODELS:
        raise EnqueueError(f"unknown job type {job_type!r}; known: {', '.join(sorted(PAYLOAD_MODELS))}")
    model = PAYLOAD_MODELS[job_type]
    data = payload.model_dump() if isinstance(payload, BaseModel) else dict(payload)
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise PayloadInvalid(job_type, _problems(exc)) from exc


class GraphworksClient:
    def __init__(self, redis: aioredis.Redis, settings: Settings, *, clock: Clock | None = None) -> None:
        self.redis = redis
        self.settings = settings
        self.clock = clock or SystemClock()
        self.queue = JobQueue.from_settings(settings, redis, self.clock, acknowledged=True)
        self.jobs = JobStatusStore(redis, self.queue, settings)
        self._owns_redis = False

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> GraphworksClient:
        settings = settings or load_settings()
        if not settings.redis_configured:
            raise ConfigError("REDIS_URL (or REDIS_SENTINELS) is not set: the client needs the Redis the workers use")
        # Retries within a command until REDIS_ENQUEUE_TIMEOUT_S, then QueueUnavailable (enqueue).
        client = cls(redis_client(settings, retries=-1), settings)
        client._owns_redis = True
        return client

    async def __aenter__(self) -> GraphworksClient:
        return self

    async def __aexit__(self, *exc: tuple[type[BaseException], BaseException, TracebackType] | None) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_redis:
            await self.redis.aclose()

    def _scheduled(
        self,
        job_type: str,
        payload: Mapping[str, Any] | BaseModel,
        *,
        priority: int,
        idempotency_key: str | None,
        defer_by: float | timedelta | None,
        defer_until: datetime | None,
        ordering_key: str | None = None,
    ) -> Scheduled:
        if defer_by is not None and defer_until is not None:
            raise EnqueueError("give defer_by or defer_until, not both")
        if not PRIORITY_MIN <= priority <= PRIORITY_MAX:
            raise EnqueueError(f"priority must be {PRIORITY_MIN}-{PRIORITY_MAX}, got {priority}")
        if ordering_key is not None and not 1 <= len(ordering_key) <= ORDERING_KEY_MAX_CHARS:
            raise EnqueueError(f"ordering_key must be 1-{ORDERING_KEY_MAX_CHARS} characters")
        model = validate_payload(job_type, payload)
        due: float | None = None
        if defer_by is not None:
            seconds = defer_by.total_seconds() if isinstance(defer_by, timedelta) else float(defer_by)
            if not 0 <= seconds <= DEFER_MAX_S:  # NaN included
                raise EnqueueError(f"defer_by must be 0-{DEFER_MAX_S} seconds")
            due = self.clock.now() + seconds
        elif defer_until is not None:
            if defer_until.tzinfo is None:
                raise EnqueueError("defer_until must be timezone-aware")
            due = defer_until.timestamp()
        data = model.model_dump(mode="json", exclude_none=True)
        env = Envelope(
            type=job_type,
            payload=data,
            priority=priority,
            queue=self.settings.worker_queue,
            idempotency_key=idempotency_key,
            ordering_key=ordering_key if ordering_key is not None else model.default_ordering_key(),
        )
        fingerprint = None
        if idempotency_key is not None:
            defer_s = defer_by.total_seconds() if isinstance(defer_by, timedelta) else defer_by
            fingerprint = _fingerprint(job_type, data, priority, ordering_key, defer_s)
        return Scheduled(env, due_at=due, fingerprint=fingerprint)

    async def enqueue(
        self,
        job_type: str,
        payload: Mapping[str, Any] | BaseModel,
        *,
        priority: int = PRIORITY_DEFAULT,
        idempotency_key: str | None = None,
        defer_by: float | timedelta | None = None,
        defer_until: datetime | None = None,
        ordering_key: str | None = None,
    ) -> str:
        """Enqueue one job; returns its id (the first job's id if the idempotency key was seen).

        `ordering_key`: jobs with one key run one at a time, in enqueue order, across retries;
        None takes the type's default (a Teams message: its chat, or its team and channel).
        """
        job = self._scheduled(
            job_type,
            payload,
            priority=priority,
            idempotency_key=idempotency_key,
            defer_by=defer_by,
            defer_until=defer_until,
            ordering_key=ordering_key,
        )
        return (await self._put([job]))[0]

    async def enqueue_many(self, requests: Iterable[JobRequest], *, chunk: int = 1000) -> list[str]:
        """Validate every job first (one bad job: nothing is stored), then store in pipelined chunks."""
        jobs = self._requests(requests)
        ids: list[str] = []
        for start in range(0, len(jobs), chunk):
            ids.extend(await self._put(jobs[start : start + chunk]))
        return ids

    async def submit(self, request: JobRequest) -> Enqueued:
        """Enqueue one job as the HTTP API does: IdempotencyConflict if its key was used by a
        different request (Stripe's rule; the first job untouched), else the job and whether it
        was a duplicate."""
        return (await self.submit_many([request]))[0]

    async def submit_many(self, requests: Iterable[JobRequest]) -> list[Enqueued]:
        """All or nothing as far as validation goes (EnqueueError naming the job's index, from 1)."""
        jobs = self._requests(requests)
        results = await self._put_results(jobs, refuse_conflicts=True)
        answers = []
        for job, result in zip(jobs, results, strict=True):
            env = job.envelope
            if result.conflict:
                raise IdempotencyConflict(env.idempotency_key or "", result.id)
            status: JobState = "scheduled" if job.due_at is not None else "queued"
            if result.duplicate:
                try:
                    status = (await self.jobs.get(result.id)).status
                except JobNotFound:
                    status = "completed"  # its record outlived by its idempotency key
            answers.append(Enqueued(id=result.id, type=env.type, status=status, duplicate=result.duplicate))
        return answers

    async def _refuse_conflicts(self, jobs: list[Scheduled]) -> None:
        """IdempotencyConflict if a job's key is already held by a request with another fingerprint.
        (A conflict that races in between is still caught after the put, for that job alone.)"""
        keyed = [j for j in jobs if j.envelope.idempotency_key is not None]
        if not keyed:
            return
        held = await self.redis.mget([keys.idempotency(j.envelope.idempotency_key or "") for j in keyed])
        for job, raw in zip(keyed, held, strict=True):
            if raw is None:
                continue
            job_id, _, fingerprint = (raw.decode() if isinstance(raw, bytes) else str(raw)).partition(" ")
            if fingerprint != (job.fingerprint or ""):
                raise IdempotencyConflict(job.envelope.idempotency_key or "", job_id)

    def _requests(self, requests: Iterable[JobRequest]) -> list[Scheduled]:
        jobs: list[Scheduled] = []
        for i, req in enumerate(requests):
            try:
                jobs.append(
                    self._scheduled(
                        req.type,
                        req.payload,
                        priority=req.priority,
                        idempotency_key=req.idempotency_key,
                        defer_by=req.defer_s,
                        defer_until=None,
                        ordering_key=req.ordering_key,
                    )
                )
            except EnqueueError as exc:
                raise EnqueueError(f"job {i + 1}: {exc}") from exc
        return jobs

    async def _put(self, jobs: list[Scheduled]) -> list[str]:
        return [r.id for r in await self._put_results(jobs)]

    async def _put_results(self, jobs: list[Scheduled], *, refuse_conflicts: bool = False) -> list[PutResult]:
        """Store jobs, or raise QueueUnavailable once Redis has not answered for REDIS_ENQUEUE_TIMEOUT_S
        (or fewer than REDIS_WAIT_REPLICAS replicas acknowledged them within REDIS_WAIT_TIMEOUT_S)."""
        timeout_s = self.settings.redis_enqueue_timeout_s
        try:
            async with asyncio.timeout(timeout_s):
                if refuse_conflicts:  # before anything is stored: a batch is all or nothing
                    await self._refuse_conflicts(jobs)
                return await self.queue.put_results(jobs)
        except NotReplicated as exc:
            raise QueueUnavailable(describe_redis(self.settings), self.settings.redis_wait_timeout_s, exc) from exc
        except TimeoutError as exc:
            raise QueueUnavailable(describe_redis(self.settings), timeout_s, None) from exc
        except UNREACHABLE as exc:
            raise QueueUnavailable(describe_redis(self.settings), timeout_s, exc) from exc

    async def send_teams_message(self, payload: TeamsMessage | None = None, /, **opts: Any) -> str:
        return await self._typed("teams_message", TeamsMessage, payload, opts)

    async def send_mail(self, payload: Mail | None = None, /, **opts: Any) -> str:
        return await self._typed("mail", Mail, payload, opts)

    async def fetch_inbound(self, payload: Inbound | None = None, /, **opts: Any) -> str:
        return await self._typed("inbound", Inbound, payload, opts)

    async def attachment(self, payload: Attachment | None = None, /, **opts: Any) -> str:
        return await self._typed("attachment", Attachment, payload, opts)

    async def notification(self, payload: Notification | None = None, /, **opts: Any) -> str:
        return await self._typed("notification", Notification, payload, opts)

    async def sync(self, payload: Sync | None = None, /, **opts: Any) -> str:
        return await self._typed("sync", Sync, payload, opts)

    async def _typed(self, job_type: str, model: type[Payload], payload: Payload | None, opts: dict[str, Any]) -> str:
        """Fields of the model come from payload or keyword arguments; the rest are enqueue options."""
        enqueue_opts = {
            k: opts.pop(k)
            for k in ("priority", "idempotency_key", "defer_by", "defer_until", "ordering_key")
            if k in opts
        }
        data: Mapping[str, Any] | BaseModel = payload if payload is not None else opts
        if payload is not None and opts:
            raise EnqueueError(f"unexpected arguments with a {model.__name__} payload: {', '.join(opts)}")
        return await self.enqueue(job_type, data, **enqueue_opts)

    # -- following what was sent (worker/status.py) --

    async def status(self, job_id: str) -> JobStatus:
        """The job's status record; JobNotFound if there is none (unknown id, or expired)."""
        return await self.jobs.get(job_id)

    async def wait(self, job_id: str, *, timeout_s: float = 60.0) -> JobStatus:
        """The final record (completed, dead_lettered or cancelled) once the job ends; WaitTimedOut
        (with the record as it stands) after `timeout_s`. No polling: blocks on the job's own key."""
        return await self.jobs.wait(job_id, timeout_s)

    async def cancel(self, job_id: str) -> JobStatus:
        """Cancel a queued or scheduled job (it never runs); NotCancellable if it runs or ended."""
        return await self.jobs.cancel(job_id)

    async def list_jobs(
        self, job_type: str | None = None, *, status: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> JobPage:
        return await self.jobs.list_jobs(job_type, status=status, limit=limit, cursor=cursor)

    def events(
        self, *, since: str | datetime = "$", group: str | None = None, consumer: str = "graphworks"
    ) -> AsyncIterator[JobEvent]:
        """Job transitions from the events stream, after `since` (a stream id, "0", "$" or a time);
        with `group`, as a consumer group's `consumer` (each event acknowledged as the next is read)."""
        return self.jobs.events(since=since, group=group, consumer=consumer)
