"""The Ops API's queue routes (DESIGN.md, "Ops API"), over worker/queue_stats.py and worker/pause.py.

    GET    /api/queue/health               no token: ok | degraded (no worker alive) | down (503: no Redis)
    GET    /api/queue/stats                per type: depths, running, outcomes, oldest queued age, paused,
                                           throughput; the dead-letter store's counts; the limiter's keys
    GET    /api/queue/limits               the limiter's keys: rate, in use, waits, cooldown remaining, 429s
    GET    /api/queue/{type}/jobs          the type's status records, newest first, with next_cursor
    POST   /api/queue/{type}/pause         its jobs wait (no attempt spent) until resumed, for every worker
    POST   /api/queue/{type}/resume        its parked jobs go back to the queue, in their order
    DELETE /api/queue/{type}/clear         ?status=queued|scheduled&confirm={type}: cancel them; the count

Every request costs a bounded number of Redis round trips, whatever the number of jobs; clear works
in batches. Pause, resume and clear are recorded in the audit log with the caller's role.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from graphworks_core.payloads import PAYLOAD_MODELS
from graphworks_core.settings import Settings
from graphworks_core.status import JobState
from ops.errors import Message, redis_deadline
from ops.jobs import LIST_LIMIT_MAX, JobPageBody
from worker.audit import AuditLog
from worker.client import GraphworksClient
from worker.pause import ClearStatus, QueueControl
from worker.queue_stats import HealthReport, LimitKey, QueueStatsReport, health, limits_report, queue_stats

HEALTH_TIMEOUT_S = 3.0  # Redis not answering within this is "down"
CLEAR_EXTRA_S = 600.0  # a clear of a large backlog runs in batches; its deadline is longer than one call's

UNKNOWN_TYPE: dict[int | str, dict[str, Any]] = {404: {"model": Message, "description": "unknown job type"}}


class Paused(BaseModel):
    type: str
    paused: bool
    changed: bool = Field(description="false: it was already in that state")


class Resumed(BaseModel):
    type: str
    paused: bool
    requeued: int = Field(description="parked jobs put back in the queue")


class ClearedBody(BaseModel):
    type: str
    status: ClearStatus
    cleared: int = Field(description="jobs cancelled")


class LimitsBody(BaseModel):
    limits: list[LimitKey]


def _unknown(job_type: str) -> JSONResponse:
    known = ", ".join(sorted(PAYLOAD_MODELS))
    return JSONResponse({"detail": f"unknown job type {job_type!r}; known: {known}"}, status_code=404)


def _role(request: Request) -> str:
    return str(getattr(request.state, "role", "admin"))


def queues_router(client: GraphworksClient, settings: Settings) -> APIRouter:
    router = APIRouter(prefix="/api/queue", tags=["ops"])
    redis = client.redis
    control = QueueControl(redis, client.queue, settings)
    audit = AuditLog(redis)

    @router.get(
        "/health",
        response_model=HealthReport,
        operation_id="health",
        summary="Redis and the live workers (no token)",
        openapi_extra={"security": []},
        responses={503: {"model": HealthReport, "description": "down: Redis is unreachable"}},
    )
    async def get_health() -> HealthReport | JSONResponse:
        """ok: Redis answers and a worker was seen within 3 leases; degraded: no worker is; down (503): no Redis."""
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT_S):
                report = await health(redis, lease_s=settings.worker_lease_s)
        except TimeoutError:
            detail = f"unreachable (no answer within {HEALTH_TIMEOUT_S:g} s)"
            report = HealthReport(status="down", redis=detail, workers=[], checks={"redis": detail})
        if report.status == "down":
            return JSONResponse(report.model_dump(mode="json"), status_code=503)
        return report

    @router.get("/stats", response_model=QueueStatsReport, operation_id="queue_stats", summary="Per-type queue stats")
    async def get_stats() -> QueueStatsReport:
        async with redis_deadline(settings):
            return await queue_stats(redis, now=client.clock.now())

    @router.get("/limits", response_model=LimitsBody, operation_id="queue_limits", summary="The limiter's keys")
    async def get_limits() -> LimitsBody:
        async with redis_deadline(settings):
            return LimitsBody(limits=await limits_report(redis))

    @router.get(
        "/{job_type}/jobs",
        response_model=JobPageBody,
        operation_id="queue_jobs",
        summary="One type's status records, newest first",
        responses=UNKNOWN_TYPE,
    )
    async def get_jobs(
        job_type: str,
        status: Annotated[JobState | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=LIST_LIMIT_MAX)] = 50,
        cursor: Annotated[str | None, Query(max_length=64)] = None,
    ) -> JobPageBody | JSONResponse:
        if job_type not in PAYLOAD_MODELS:
            return _unknown(job_type)
        async with redis_deadline(settings):
            page = await client.list_jobs(job_type, status=status, limit=limit, cursor=cursor)
        return JobPageBody(jobs=page.jobs, next_cursor=page.next_cursor)

    @router.post(
        "/{job_type}/pause", response_model=Paused, operation_id="queue_pause", summary="Pause a job type",
        responses=UNKNOWN_TYPE,
    )  # fmt: skip
    async def pause(job_type: str, request: Request) -> Paused | JSONResponse:
        """Its jobs wait, spending no attempt, for every worker, until resumed; survives restarts."""
        if job_type not in PAYLOAD_MODELS:
            return _unknown(job_type)
        async with redis_deadline(settings):
            changed = await control.pause(job_type)
            await audit.record("queue.pause", role=_role(request), target=job_type, count=int(changed))
        return Paused(type=job_type, paused=True, changed=changed)

    @router.post(
        "/{job_type}/resume", response_model=Resumed, operation_id="queue_resume", summary="Resume a job type",
        responses=UNKNOWN_TYPE,
    )  # fmt: skip
    async def resume(job_type: str, request: Request) -> Resumed | JSONResponse:
        if job_type not in PAYLOAD_MODELS:
            return _unknown(job_type)
        async with redis_deadline(settings, CLEAR_EXTRA_S):
            moved = await control.resume(job_type)
            await audit.record("queue.resume", role=_role(request), target=job_type, count=moved)
        return Resumed(type=job_type, paused=False, requeued=moved)

    @router.delete(
        "/{job_type}/clear",
        response_model=ClearedBody,
        operation_id="queue_clear",
        summary="Cancel a type's queued or scheduled jobs",
        responses={**UNKNOWN_TYPE, 400: {"model": Message, "description": "confirm missing or not the type"}},
    )
    async def clear(
        job_type: str,
        request: Request,
        status: Annotated[ClearStatus, Query(description="queued (due now) or scheduled (due later)")],
        confirm: Annotated[str | None, Query(description="the job type again: nothing is removed without it")] = None,
    ) -> ClearedBody | JSONResponse:
        if job_type not in PAYLOAD_MODELS:
            return _unknown(job_type)
        if confirm != job_type:
            detail = f"confirm={job_type} is required to clear {job_type}'s {status} jobs; nothing was removed"
            return JSONResponse({"detail": detail}, status_code=400)
        async with redis_deadline(settings, CLEAR_EXTRA_S):
            cleared = await control.clear(job_type, status)
            await audit.record("queue.clear", role=_role(request), target=job_type, count=cleared.cleared,
                               detail=f"status={status}")  # fmt: skip
        return ClearedBody(type=job_type, status=status, cleared=cleared.cleared)

    return router
