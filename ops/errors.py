"""How the API answers what goes wrong: one JSON shape per kind, never a traceback.

    422  {"detail": [{"loc", "msg", "type"}]}   a payload, query or header that fails its model, or a
                                               body that is not JSON (not even UTF-8)
    404 / 409 / 503  {"detail": "..."}          (409s also carry what they conflict with)

A Redis outage is a 503 with `Retry-After`: every Redis call of a request runs under a deadline
(REDIS_ENQUEUE_TIMEOUT_S, plus a long poll's own wait), so a blackholed Redis cannot hold a
request open, and redis-py's connection errors are answered the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException

from graphworks_core.connections import describe_redis
from graphworks_core.errors import EnqueueError, PayloadInvalid, QueueUnavailable
from graphworks_core.settings import Settings

log = logging.getLogger("graphworks.api")

RETRY_AFTER_S = 5
# What FastAPI raises (a 400) for a body it cannot decode at all, e.g. bytes that are not UTF-8; a body
# that decodes but is not JSON is already its 422 `json_invalid`, and this one is answered the same.
BODY_UNDECODABLE = "There was an error parsing the body"


class RedisUnanswered(Exception):
    """Redis did not answer a request's calls within its deadline."""

    def __init__(self, url: str, timeout_s: float) -> None:
        super().__init__(f"Redis at {url} did not answer within {timeout_s:g} s; try again")


class Problem(BaseModel):
    """One thing wrong with the request: where (`loc`, e.g. ["body", "chat_id"]), what, and its kind."""

    loc: list[str | int]
    msg: str
    type: str


class Invalid(BaseModel):
    detail: list[Problem]


class Message(BaseModel):
    detail: str


def problems(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """pydantic's errors as loc, msg, type only (the input is not echoed: it may hold content)."""
    return [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in errors]  # fmt: skip


def invalid(loc: list[str | int], msg: str, kind: str = "value_error") -> JSONResponse:
    return JSONResponse({"detail": [{"loc": loc, "msg": msg, "type": kind}]}, status_code=422)


@contextlib.asynccontextmanager
async def redis_deadline(settings: Settings, extra_s: float = 0.0) -> AsyncIterator[None]:
    """Bound a request's Redis work: RedisUnanswered (503) once Redis has not answered in time."""
    timeout_s = settings.redis_enqueue_timeout_s + extra_s
    try:
        async with asyncio.timeout(timeout_s):
            yield
    except TimeoutError as exc:
        raise RedisUnanswered(describe_redis(settings), timeout_s) from exc


def install(app: FastAPI, settings: Settings) -> None:
    async def validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return JSONResponse({"detail": problems(exc.errors())}, status_code=422)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 400 and exc.detail == BODY_UNDECODABLE:
            return invalid(["body"], "body is not JSON (not UTF-8)", "json_invalid")
        return await http_exception_handler(request, exc)

    async def payload_invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, PayloadInvalid)
        found = []
        for problem in exc.problems:
            where, _, msg = problem.partition(": ")
            loc: list[str | int] = ["body", *(int(p) if p.isdigit() else p for p in where.split("."))]
            found.append({"loc": loc if where != "(payload)" else ["body"], "msg": msg, "type": "value_error"})
        return JSONResponse({"detail": found}, status_code=422)

    async def enqueue_error(request: Request, exc: Exception) -> JSONResponse:
        return invalid(["body"], str(exc))

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, (QueueUnavailable, RedisUnanswered)):
            detail = str(exc)
        else:  # redis-py's own, once its retries are spent
            detail = f"Redis at {describe_redis(settings)} is unreachable ({type(exc).__name__}); try again"
        log.warning("answered 503: %s", detail)
        return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})

    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(PayloadInvalid, payload_invalid)
    app.add_exception_handler(EnqueueError, enqueue_error)
    app.add_exception_handler(QueueUnavailable, unavailable)
    app.add_exception_handler(RedisUnanswered, unavailable)
    app.add_exception_handler(RedisConnectionError, unavailable)
    app.add_exception_handler(RedisTimeoutError, unavailable)
    app.add_exception_handler(ConnectionError, unavailable)
