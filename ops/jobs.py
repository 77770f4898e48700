"""The Service API's job routes (DESIGN.md, "Service API"): enqueue over HTTP with the same payload
models as the Python client, read a job's status record (or hold until it ends), cancel, list.

    POST   /api/jobs/{type}     one route per job type, its payload model as the body (so OpenAPI
                                shows each type's schema); 202 {"id","type","status","duplicate"}
    POST   /api/jobs            {"jobs": [{"type", "payload", ...}]}: all validated before any is stored
    GET    /api/jobs/{id}       the status record; ?wait=S holds until the job ends or S (at most 60) passes
    DELETE /api/jobs/{id}       cancel a queued or scheduled job; 409 if it runs or ended
    GET    /api/jobs?type=      one type's records, newest first, with next_cursor
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pydantic
from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from graphworks_core.envelope import DEFER_MAX_S, ORDERING_KEY_MAX_CHARS, PRIORITY_DEFAULT, PRIORITY_MAX, PRIORITY_MIN
from graphworks_core.errors import IdempotencyConflict
from graphworks_core.payloads import PAYLOAD_MODELS, Payload
from graphworks_core.settings import Settings
from graphworks_core.status import JobState, JobStatus
from ops.bodies import body_of
from ops.errors import Message, invalid, redis_deadline
from worker.client import Enqueued, GraphworksClient, JobNotFound, JobRequest, NotCancellable, WaitTimedOut

WAIT_MAX_S = 60.0  # ?wait= above this is held to it, not refused
LIST_LIMIT_MAX = 500
BULK_MAX_JOBS = 10_000

Priority = Annotated[int, Query(ge=PRIORITY_MIN, le=PRIORITY_MAX, description="10 runs before 1")]
DeferS = Annotated[
    float | None, Query(ge=0, le=DEFER_MAX_S, description="run no sooner than this many seconds from now")
]
OrderingKey = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=ORDERING_KEY_MAX_CHARS,
        description="jobs with one key run one at a time, in enqueue order (default: the type's own, "
        "a Teams message's chat or channel)",
    ),
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=512,
        description="a second request with this key answers the first job (duplicate: true); with a "
        "different type, payload or options it is a 409",
    ),
]


class IdempotencyConflictBody(BaseModel):
    detail: str
    idempotency_key: str
    job_id: str = Field(description="the job that holds the key; it is untouched")


class NotCancellableBody(BaseModel):
    detail: str
    status: JobState
    record: JobStatus


class JobPageBody(BaseModel):
    jobs: list[JobStatus]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last")


class EnqueuedMany(BaseModel):
    jobs: list[Enqueued]


# A bulk item's options: JobRequest's own fields (one definition of their bounds).
OPTION_FIELDS = ("priority", "idempotency_key", "defer_s", "ordering_key")
JobOptions = pydantic.create_model(
    "JobOptions",
    __config__=pydantic.ConfigDict(extra="forbid"),
    **{name: (JobRequest.model_fields[name].annotation, JobRequest.model_fields[name]) for name in OPTION_FIELDS},  # type: ignore[call-overload]
)


def _camel(job_type: str) -> str:
    return "".join(part.capitalize() for part in job_type.split("_"))


# One bulk item model per job type ({"type": "mail", "payload": Mail, ...}), told apart by `type`: a
# bad item's error names its index and field, and OpenAPI documents each as a oneOf branch.
BULK_ITEMS: dict[str, type[BaseModel]] = {
    job_type: pydantic.create_model(
        f"{_camel(job_type)}Job",
        __base__=JobOptions,
        type=(Literal[job_type], ...),  # type: ignore[arg-type]
        payload=(model, ...),
    )
    for job_type, model in PAYLOAD_MODELS.items()
}


def _bulk_model() -> type[BaseModel]:
    union: Any = None
    for item in BULK_ITEMS.values():
        union = item if union is None else union | item
    jobs: Any = list[Annotated[union, Field(discriminator="type")]]
    return pydantic.create_model(
        "BulkRequest", jobs=(jobs, Field(min_length=1, max_length=BULK_MAX_JOBS, description="one item per job"))
    )


BULK_MODEL = _bulk_model()


def _request(job_type: str, payload: Payload, options: dict[str, Any]) -> JobRequest:
    return JobRequest(type=job_type, payload=payload.model_dump(mode="json", exclude_none=True), **options)


def _conflict(exc: IdempotencyConflict) -> JSONResponse:
    body = IdempotencyConflictBody(detail=str(exc), idempotency_key=exc.key, job_id=exc.job_id)
    return JSONResponse(body.model_dump(mode="json"), status_code=409)


def jobs_router(client: GraphworksClient, settings: Settings) -> APIRouter:
    router = APIRouter(prefix="/api/jobs", tags=["jobs"])

    for job_type, model in PAYLOAD_MODELS.items():
        router.add_api_route(
            f"/{job_type}",
            _enqueue_route(client, settings, job_type, model),
            methods=["POST"],
            status_code=202,
            response_model=Enqueued,
            operation_id=f"enqueue_{job_type}",
            summary=f"Enqueue a {job_type} job",
            responses={409: {"model": IdempotencyConflictBody, "description": "Idempotency-Key reused"}},
        )

    @router.post("/{job_type}", include_in_schema=False)
    async def enqueue_unknown(job_type: str) -> JSONResponse:
        known = ", ".join(sorted(PAYLOAD_MODELS))
        return JSONResponse({"detail": f"unknown job type {job_type!r}; known: {known}"}, status_code=404)

    @router.post(
        "",
        status_code=202,
        response_model=EnqueuedMany,
        operation_id="enqueue_many",
        summary="Enqueue several jobs, all validated before any is stored",
        responses={409: {"model": IdempotencyConflictBody, "description": "Idempotency-Key reused"}},
    )
    @body_of(BULK_MODEL, "the jobs, each with its type's payload")
    async def enqueue_many(*, body: BaseModel) -> EnqueuedMany | JSONResponse:
        items: list[Any] = getattr(body, "jobs")  # noqa: B009  (a model made at run time)
        requests = [_request(item.type, item.payload, item.model_dump(include=set(OPTION_FIELDS))) for item in items]
        try:
            async with redis_deadline(settings):
                return EnqueuedMany(jobs=await client.submit_many(requests))
        except IdempotencyConflict as exc:
            return _conflict(exc)

    @router.get("", response_model=JobPageBody, operation_id="list_jobs", summary="One type's jobs, newest first")
    async def list_jobs(
        type: Annotated[str, Query(description="the job type, e.g. teams_message")],
        status: Annotated[JobState | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=LIST_LIMIT_MAX)] = 50,
        cursor: Annotated[str | None, Query(max_length=64)] = None,
    ) -> JobPageBody | JSONResponse:
        if type not in PAYLOAD_MODELS:
            return invalid(["query", "type"], f"unknown job type; one of {', '.join(sorted(PAYLOAD_MODELS))}")
        async with redis_deadline(settings):
            page = await client.list_jobs(type, status=status, limit=limit, cursor=cursor)
        return JobPageBody(jobs=page.jobs, next_cursor=page.next_cursor)

    @router.get(
        "/{job_id}",
        response_model=JobStatus,
        operation_id="get_job",
        summary="A job's status record, or hold until it ends with ?wait=",
        responses={404: {"model": Message}},
    )
    async def get_job(
        job_id: str,
        wait: Annotated[
            float | None,
            Query(ge=0, description=f"hold until the job ends or this many seconds pass (above {WAIT_MAX_S:g}: "
                                    f"{WAIT_MAX_S:g})"),
        ] = None,
    ) -> JobStatus | JSONResponse:  # fmt: skip
        held_s = min(wait, WAIT_MAX_S) if wait else 0.0
        try:
            async with redis_deadline(settings, held_s):
                if not held_s:
                    return await client.status(job_id)
                try:
                    return await client.wait(job_id, timeout_s=held_s)
                except WaitTimedOut as timed_out:
                    return timed_out.record
        except JobNotFound as exc:
            return JSONResponse({"detail": str(exc)}, status_code=404)

    @router.delete(
        "/{job_id}",
        response_model=JobStatus,
        operation_id="cancel_job",
        summary="Cancel a queued or scheduled job",
        responses={404: {"model": Message}, 409: {"model": NotCancellableBody, "description": "running or ended"}},
    )
    async def cancel_job(job_id: str) -> JobStatus | JSONResponse:
        try:
            async with redis_deadline(settings):
                return await client.cancel(job_id)
        except JobNotFound as exc:
            return JSONResponse({"detail": str(exc)}, status_code=404)
        except NotCancellable as exc:
            body = NotCancellableBody(detail=str(exc), status=exc.record.status, record=exc.record)
            return JSONResponse(body.model_dump(mode="json"), status_code=409)

    return router


def _enqueue_route(client: GraphworksClient, settings: Settings, job_type: str, model: type[Payload]) -> Any:
    async def enqueue(
        *,
        payload: Payload,
        response: Response,
        priority: Priority = PRIORITY_DEFAULT,
        defer_s: DeferS = None,
        ordering_key: OrderingKey = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Enqueued | JSONResponse:
        options = {"priority": priority, "defer_s": defer_s, "ordering_key": ordering_key,
                   "idempotency_key": idempotency_key}  # fmt: skip
        try:
            async with redis_deadline(settings):
                enqueued = await client.submit(_request(job_type, payload, options))
        except IdempotencyConflict as exc:
            return _conflict(exc)
        response.headers["Location"] = f"/api/jobs/{enqueued.id}"
        return enqueued

    enqueue.__name__ = f"enqueue_{job_type}"
    enqueue.__doc__ = model.__doc__
    return body_of(model, model.__doc__)(enqueue)
