"""The Ops API's dead-letter routes (DESIGN.md, "Ops API"), over worker/triage.py (the CLI's too).

GET    /api/queue/dead-letter                 entries, newest failure first, by cursor (filters below)
GET    /api/queue/dead-letter/groups          by (type, error class, Graph code, status), largest first
GET    /api/queue/dead-letter/{id}            one entry with every attempt
POST   /api/queue/dead-letter/{id}/retry      redrive it (same id, idempotency key, history)
POST   /api/queue/dead-letter/{id}/review     {"note"}: mark it reviewed
POST   /api/queue/dead-letter/retry           a filter + "dry_run": {"matched","sample"} or {"redriven"}
DELETE /api/queue/dead-letter?older_than=&reviewed=   purge (at least one filter)
GET    /api/queue/{type}/failed               one type's dead letters, by cursor
GET    /api/queue/audit                       the operators' actions, newest first, by cursor

Filters: type, error_class, graph_code, status, reviewed, since, until (ISO 8601 or epoch seconds;
without a zone, UTC). A bad value is a 422 naming it; an unknown id or type a 404. Every action is
audited with the caller's role (request.state.role, set by ops/guard.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from graphworks_core.clock import Clock
from graphworks_core.errors import ErrorClass
from graphworks_core.payloads import PAYLOAD_MODELS
from graphworks_core.settings import Settings
from ops.errors import Message, invalid, redis_deadline
from ops.events import stream_id
from worker.audit import AuditLog, AuditPage
from worker.client import GraphworksClient
from worker.deadletter.models import DeadLetterEntry, DeadLetterFilter, DeadLetterGroup
from worker.deadletter.redis_store import RedisDeadLetterStore
from worker.triage import Preview, Triage, parse_age

LIMIT_MAX = 500
# A bulk redrive or purge walks the store a batch per call; give it time beyond one request's.
BULK_EXTRA_S = 600.0

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Message, "description": "no such dead-letter entry"}}


class EntryPage(BaseModel):
    entries: list[DeadLetterEntry]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null once nothing is left")


class ReviewBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(None, max_length=4000)
    reviewed: bool = True


class RedriveBody(BaseModel):
    """The filter (every field narrows; none: every entry) and whether to only preview."""

    model_config = ConfigDict(extra="forbid")
    dry_run: bool = Field(description="true: answer what would be redriven and change nothing")
    type: str | None = None
    error_class: ErrorClass | None = None
    graph_code: str | None = None
    status: int | None = None
    reviewed: bool | None = None
    since: datetime | None = None
    until: datetime | None = None


class Redriven(BaseModel):
    redriven: int
    skipped: int = Field(0, description="entries that cannot run again (an undecodable payload); kept")


class RetriedOne(BaseModel):
    id: str
    job_id: str
    redriven: bool


class Purged(BaseModel):
    purged: int


def _utc(at: datetime | None) -> datetime | None:
    return at if at is None or at.tzinfo is not None else at.replace(tzinfo=UTC)


class Filters:
    """The listing's query filters, validated by FastAPI (a bad class, status or time: 422)."""

    def __init__(
        self,
        type: Annotated[str | None, Query(min_length=1, description="a job type")] = None,
        error_class: Annotated[ErrorClass | None, Query()] = None,
        graph_code: Annotated[str | None, Query(min_length=1, description="Graph's error code")] = None,
        status: Annotated[int | None, Query(ge=100, le=599, description="the final HTTP status")] = None,
        reviewed: Annotated[bool | None, Query()] = None,
        since: Annotated[datetime | None, Query(description="last failure at or after")] = None,
        until: Annotated[datetime | None, Query(description="last failure before")] = None,
    ) -> None:
        self.filter = DeadLetterFilter(type=type, error_class=error_class, graph_code=graph_code, status=status,
                                       reviewed=reviewed, since=_utc(since), until=_utc(until))  # fmt: skip


Limit = Annotated[int, Query(ge=1, le=LIMIT_MAX)]
Cursor = Annotated[str | None, Query(min_length=1, max_length=400)]
EntryId = Annotated[str, Path(min_length=1, max_length=200, description="the entry's id (its job's id)")]


def _role(request: Request) -> str:
    return str(getattr(request.state, "role", "admin"))


def _bad_cursor() -> JSONResponse:
    return invalid(["query", "cursor"], "not a cursor this API gave out")


def deadletters_router(client: GraphworksClient, settings: Settings, clock: Clock) -> APIRouter:
    triage = Triage(RedisDeadLetterStore(client.redis), client.queue, AuditLog(client.redis))
    router = APIRouter(prefix="/api/queue", tags=["dead letters"])

    async def unknown_type(job_type: str | None) -> bool:
        return job_type is not None and job_type not in PAYLOAD_MODELS and job_type not in await triage.known_types()

    async def listing(flt: DeadLetterFilter, limit: int, cursor: str | None) -> EntryPage | JSONResponse:
        try:
            page = await triage.page(flt, limit=limit, cursor=cursor)
        except ValueError:
            return _bad_cursor()
        return EntryPage(entries=page.entries, next_cursor=page.next_cursor)

    @router.get("/dead-letter", response_model=EntryPage, operation_id="list_dead_letters")
    async def list_dead_letters(
        filters: Annotated[Filters, Depends()], limit: Limit = 50, cursor: Cursor = None
    ) -> EntryPage | JSONResponse:
        """Entries matching every filter given, newest failure first. A page examines a bounded
        number of entries: it may come back short with a next_cursor; follow it."""
        async with redis_deadline(settings):
            if await unknown_type(filters.filter.type):
                return invalid(["query", "type"], f"no job type {filters.filter.type!r}")
            return await listing(filters.filter, limit, cursor)

    @router.get("/dead-letter/groups", response_model=list[DeadLetterGroup], operation_id="dead_letter_groups")
    async def dead_letter_groups() -> list[DeadLetterGroup]:
        """Dead letters by cause, largest first, with the oldest and newest failure and a sample id."""
        async with redis_deadline(settings, BULK_EXTRA_S):  # the first call on an old store rebuilds
            return await triage.groups()

    @router.post("/dead-letter/retry", response_model=Preview | Redriven, operation_id="redrive_dead_letters")
    async def redrive_dead_letters(body: RedriveBody, request: Request) -> Preview | Redriven | JSONResponse:
        """Redrive every entry matching the filter, a batch at a time; `dry_run: true` answers how many
        would be redriven and the newest few, and changes nothing."""
        fields = body.model_dump(exclude={"dry_run"})
        flt = DeadLetterFilter(**{**fields, "since": _utc(body.since), "until": _utc(body.until)})
        async with redis_deadline(settings, BULK_EXTRA_S):
            if await unknown_type(flt.type):
                return invalid(["body", "type"], f"no job type {flt.type!r}")
            if body.dry_run:
                return await triage.preview(flt)
            result = await triage.redrive(flt, role=_role(request))
        return Redriven(redriven=len(result.redriven), skipped=len(result.skipped))

    @router.delete("/dead-letter", response_model=Purged, operation_id="purge_dead_letters")
    async def purge_dead_letters(
        request: Request,
        filters: Annotated[Filters, Depends()],
        older_than: Annotated[
            str | None, Query(description="last failure older than this: 30m, 12h, 7d, seconds")
        ] = None,
    ) -> Purged | JSONResponse:
        """Delete matching entries; at least one filter (older_than, reviewed, ...) is required."""
        flt = filters.filter
        if older_than is not None:
            try:
                age = parse_age(older_than)
            except ValueError as exc:
                return invalid(["query", "older_than"], str(exc))
            cut = datetime.fromtimestamp(clock.now(), UTC) - age
            flt = flt.model_copy(update={"until": min(cut, flt.until) if flt.until else cut})
        if flt == DeadLetterFilter():
            return invalid(["query", "older_than"], "give older_than or another filter: a purge never takes all")
        async with redis_deadline(settings, BULK_EXTRA_S):
            return Purged(purged=await triage.purge(flt, role=_role(request)))

    @router.get("/dead-letter/{entry_id}", response_model=DeadLetterEntry, responses=NOT_FOUND,
                operation_id="get_dead_letter")  # fmt: skip
    async def get_dead_letter(entry_id: EntryId) -> DeadLetterEntry | JSONResponse:
        async with redis_deadline(settings):
            entry = await triage.get(entry_id)
        return entry if entry is not None else _missing(entry_id)

    conflict: dict[int | str, dict[str, Any]] = {409: {"model": Message, "description": "the entry cannot run again"}}

    @router.post("/dead-letter/{entry_id}/retry", response_model=RetriedOne, responses={**NOT_FOUND, **conflict},
                 operation_id="retry_dead_letter")  # fmt: skip
    async def retry_dead_letter(entry_id: EntryId, request: Request) -> RetriedOne | JSONResponse:
        """Back on the queue with a fresh attempt budget, its id, idempotency key and history kept."""
        async with redis_deadline(settings):
            entry = await triage.get(entry_id)
            if entry is None:
                return _missing(entry_id)
            result = await triage.retry(entry_id, role=_role(request))
        if entry_id in result.skipped:
            why = result.skipped[entry_id]
            return JSONResponse({"detail": why}, status_code=404 if "no such" in why else 409)
        return RetriedOne(id=entry_id, job_id=entry.job_id, redriven=True)

    @router.post("/dead-letter/{entry_id}/review", response_model=DeadLetterEntry, responses=NOT_FOUND,
                 operation_id="review_dead_letter")  # fmt: skip
    async def review_dead_letter(
        entry_id: EntryId, body: ReviewBody, request: Request
    ) -> DeadLetterEntry | JSONResponse:
        async with redis_deadline(settings):
            entry = await triage.review(entry_id, body.note, role=_role(request), reviewed=body.reviewed)
        return entry if entry is not None else _missing(entry_id)

    @router.get("/audit", response_model=AuditPage, operation_id="audit_log")
    async def audit_log(limit: Limit = 50, cursor: Cursor = None) -> AuditPage | JSONResponse:
        """Operator actions, newest first: time, role, action, target, count."""
        if cursor is not None and (after := stream_id(cursor)) is None:
            return _bad_cursor()
        if cursor is not None and after == (0, 0):  # nothing is older (Redis refuses the range "(0-0")
            return AuditPage(entries=[], next_cursor=None)
        async with redis_deadline(settings):
            return await triage.audit.page(limit=limit, cursor=cursor)

    @router.get("/{job_type}/failed", response_model=EntryPage, responses={404: {"model": Message}},
                operation_id="failed_of_type")  # fmt: skip
    async def failed_of_type(
        job_type: str, filters: Annotated[Filters, Depends()], limit: Limit = 50, cursor: Cursor = None
    ) -> EntryPage | JSONResponse:
        """One job type's dead letters (the other filters apply too)."""
        async with redis_deadline(settings):
            if await unknown_type(job_type):
                return JSONResponse({"detail": f"no job type {job_type!r}"}, status_code=404)
            return await listing(filters.filter.model_copy(update={"type": job_type}), limit, cursor)

    return router


def _missing(entry_id: str) -> JSONResponse:
    return JSONResponse({"detail": f"no dead-letter entry {entry_id!r}"}, status_code=404)


__all__ = ["deadletters_router"]
