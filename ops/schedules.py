"""The Service API's schedule routes (DESIGN.md, "Recurring schedules"), over worker/schedules.py.

GET    /api/schedules                every schedule, by name
GET    /api/schedules/{name}         one, with its next run and recent runs
PUT    /api/schedules/{name}         create or replace (a bad cron, type or payload: 422 naming it, nothing stored)
DELETE /api/schedules/{name}         remove (204)
POST   /api/schedules/{name}/pause   stop its ticks for every worker
POST   /api/schedules/{name}/resume  from the first tick after now (no catch-up)
"""

from __future__ import annotations

from typing import Annotated, Any

import pydantic
from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse

from graphworks_core.settings import Settings
from ops.bodies import body_of
from ops.errors import Message, redis_deadline
from worker.audit import AuditLog
from worker.schedules import NAME_MAX, ScheduleInfo, ScheduleInvalid, ScheduleNotFound, ScheduleSpec, ScheduleStore

# The body of a PUT: a spec's fields but its name (the path names it). Types and bounds are checked
# here; cron, time zone, type and payload by ScheduleSpec.parse, which says which field is wrong.
_FIELDS: dict[str, Any] = {name: (f.annotation, f) for name, f in ScheduleSpec.model_fields.items() if name != "name"}
ScheduleBody = pydantic.create_model("ScheduleBody", __config__=pydantic.ConfigDict(extra="forbid"), **_FIELDS)

Name = Annotated[str, Path(min_length=1, max_length=NAME_MAX, description="the schedule's name")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Message, "description": "no such schedule"}}


def _json(info: ScheduleInfo | list[ScheduleInfo]) -> Response:
    # Serialised as stored: a schedule whose job type changed since must still be readable.
    if isinstance(info, list):
        raw = b"[" + b",".join(i.model_dump_json().encode() for i in info) + b"]"
    else:
        raw = info.model_dump_json().encode()
    return Response(raw, media_type="application/json")


def _not_found(exc: ScheduleNotFound) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=404)


def _invalid(exc: ScheduleInvalid) -> JSONResponse:
    found = []
    for field, problem in exc.problems:
        loc = ["path", "name"] if field == "name" else ["body", *field.split(".")]
        found.append({"loc": loc, "msg": problem, "type": "value_error"})
    return JSONResponse({"detail": found}, status_code=422)


def schedules_router(store: ScheduleStore, settings: Settings, audit: AuditLog | None = None) -> APIRouter:
    async def audited(request: Request, action: str, name: str) -> None:
        # schedule.put / remove / pause / resume, with the caller's role (ops/guard.py sets it)
        if audit is not None:
            await audit.record(action, role=str(getattr(request.state, "role", "admin")), target=name)

    router = APIRouter(prefix="/api/schedules", tags=["schedules"])
    ok: dict[int | str, dict[str, Any]] = {200: {"model": ScheduleInfo}}

    @router.get("", response_model=None, responses={200: {"model": list[ScheduleInfo]}}, operation_id="list_schedules")
    async def list_schedules() -> Response:
        async with redis_deadline(settings):
            return _json(await store.list())

    @router.get("/{name}", response_model=None, responses={**ok, **NOT_FOUND}, operation_id="get_schedule")
    async def get_schedule(name: Name) -> Response:
        try:
            async with redis_deadline(settings):
                return _json(await store.get(name))
        except ScheduleNotFound as exc:
            return _not_found(exc)

    @body_of(ScheduleBody, "the schedule: cron or every_s, the job's type and payload")
    async def put_schedule(*, body: pydantic.BaseModel, name: Name, request: Request) -> Response:
        try:
            spec = {**body.model_dump(exclude_unset=True), "name": name}
            async with redis_deadline(settings):
                info = await store.put(spec)
                await audited(request, "schedule.put", name)
                return _json(info)
        except ScheduleInvalid as exc:
            return _invalid(exc)

    router.add_api_route(
        "/{name}",
        put_schedule,
        methods=["PUT"],
        response_model=None,
        responses=ok,
        operation_id="put_schedule",
        summary="Create or replace a schedule",
    )

    @router.delete("/{name}", status_code=204, response_model=None, responses=NOT_FOUND, operation_id="remove_schedule")
    async def remove_schedule(name: Name, request: Request) -> Response:
        try:
            async with redis_deadline(settings):
                await store.remove(name)
                await audited(request, "schedule.remove", name)
        except ScheduleNotFound as exc:
            return _not_found(exc)
        return Response(status_code=204)

    @router.post("/{name}/pause", response_model=None, responses={**ok, **NOT_FOUND}, operation_id="pause_schedule")
    async def pause_schedule(name: Name, request: Request) -> Response:
        try:
            async with redis_deadline(settings):
                info = await store.pause(name)
                await audited(request, "schedule.pause", name)
                return _json(info)
        except ScheduleNotFound as exc:
            return _not_found(exc)

    @router.post("/{name}/resume", response_model=None, responses={**ok, **NOT_FOUND}, operation_id="resume_schedule")
    async def resume_schedule(name: Name, request: Request) -> Response:
        try:
            async with redis_deadline(settings):
                info = await store.resume(name)
                await audited(request, "schedule.resume", name)
                return _json(info)
        except ScheduleNotFound as exc:
            return _not_found(exc)

    return router
