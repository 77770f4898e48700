"""Sort any exception a job raised into one of DESIGN.md's error classes, keeping Graph's details."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pydantic
from pydantic import ConfigDict

from graphworks_core.envelope import ErrorFields
from graphworks_core.errors import (
    CallTimeout,
    ErrorClass,
    GraphHTTPError,
    JobRejected,
    NetworkError,
    UnexpectedGraphReply,
)
from graphworks_core.redact import redact_text

VALIDATION_STATUSES = frozenset({400, 404, 405, 409, 411, 413, 415, 422})
UNAVAILABLE_STATUSES = frozenset({500, 502, 503, 504})
AUTH_STATUSES = frozenset({401, 403})


class Failure(ErrorFields):
    """A classified failure: what the policy decides on, and what the history and the dead-letter
    entry keep of it (`ErrorFields`), plus Graph's Retry-After."""

    model_config = ConfigDict(frozen=True)

    message: str
    retry_after_s: float | None = None

    def __init__(self, error_class: ErrorClass, message: str, **fields: Any) -> None:
        super().__init__(error_class=error_class, message=message, **fields)


def class_of_status(status: int) -> ErrorClass:
    if status == 429:
        return ErrorClass.THROTTLED
    if status in UNAVAILABLE_STATUSES:
        return ErrorClass.UNAVAILABLE
    if status in AUTH_STATUSES:
        return ErrorClass.AUTH
    if status in VALIDATION_STATUSES:
        return ErrorClass.VALIDATION
    return ErrorClass.UNKNOWN


def classify(exc: BaseException) -> Failure:
    if isinstance(exc, GraphHTTPError):
        return Failure(
            class_of_status(exc.status),
            redact_text(str(exc)),
            status=exc.status,
            graph_code=exc.graph_code,
            request_id=exc.request_id,
            client_request_id=exc.client_request_id,
            retry_after_s=exc.retry_after_s,
        )
    if isinstance(exc, UnexpectedGraphReply):
        # A 2xx we cannot read is Graph's surprise, not our payload's fault: unknown (retried a few
        # times), told apart by its cause, with the status and a short excerpt of the body.
        return Failure(
            ErrorClass.UNKNOWN,
            redact_text(str(exc)),
            cause=UnexpectedGraphReply.CAUSE,
            status=exc.status,
            request_id=exc.request_id,
            client_request_id=exc.client_request_id,
        )
    message = redact_text(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, CallTimeout | TimeoutError | httpx.TimeoutException):
        return Failure(ErrorClass.TIMEOUT, message)
    if isinstance(exc, NetworkError | httpx.TransportError | ConnectionError):
        return Failure(ErrorClass.NETWORK, message)
    if isinstance(exc, JobRejected | pydantic.ValidationError):
        return Failure(ErrorClass.VALIDATION, message)
    if isinstance(exc, asyncio.CancelledError):
        return Failure(ErrorClass.UNKNOWN, "cancelled")
    return Failure(ErrorClass.UNKNOWN, message)
