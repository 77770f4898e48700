"""The job envelope every queued job travels in, and its JSON codec (no pickle anywhere)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from graphworks_core.errors import ErrorClass

PRIORITY_MIN, PRIORITY_MAX, PRIORITY_DEFAULT = 1, 10, 5


def new_job_id() -> str:
    return uuid.uuid4().hex


class Booking(BaseModel):
    """A slot a deferred job booked for one request: when it comes back, it goes at `at`
    without being charged again. `keys` are the rate keys the slot was booked on."""

    model_config = ConfigDict(frozen=True)

    keys: tuple[str, ...]
    at: float


MESSAGE_MAX_CHARS = 2000


class ErrorFields(BaseModel):
    """How a job failed, as every record of a failure carries it (the classified failure, an
    attempt in the history, a dead-letter entry): the class, the HTTP status, Graph's error code
    and message, and the request ids to quote to Microsoft support."""

    error_class: ErrorClass
    status: int | None = None
    graph_code: str | None = None
    message: str | None = None
    request_id: str | None = None
    client_request_id: str | None = None

    def error_fields(self) -> dict[str, Any]:
        """Just these fields (message cut to MESSAGE_MAX_CHARS), to build another record from."""
        fields = {name: getattr(self, name) for name in ErrorFields.model_fields}
        if self.message is not None:
            fields["message"] = self.message[:MESSAGE_MAX_CHARS]
        return fields


class AttemptRecord(ErrorFields):
    """One failed attempt: when, how it failed, and the delay the policy chose (None: dead-lettered)."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    delay_s: float | None = None

    @classmethod
    def of(cls, error: ErrorFields, at: datetime, delay_s: float | None) -> AttemptRecord:
        return cls(at=at, delay_s=delay_s, **error.error_fields())


class Envelope(BaseModel):
    """What is stored in Redis for a job: identity, payload, priority and its attempt history."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(default_factory=new_job_id)
    type: str
    payload: dict[str, Any]
    priority: int = Field(default=PRIORITY_DEFAULT, ge=PRIORITY_MIN, le=PRIORITY_MAX)
    queue: str = "default"
    idempotency_key: str | None = None
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    # Attempts made since the job was enqueued or last redriven (the policy's budget);
    # history keeps every failed attempt across redrives.
    attempt: int = 0
    history: list[AttemptRecord] = Field(default_factory=list)
    redrive_count: int = 0
    # Set when the previous attempt failed with 401/403: the next one forces a fresh token.
    refresh_auth: bool = False
    # Times the rate limiter sent this attempt back to wait (never an attempt); with the slot
    # the last deferral booked, which the next run uses instead of being charged again.
    deferrals: int = 0
    limit_booking: Booking | None = None

    def budget_history(self) -> list[AttemptRecord]:
        """The failed attempts that count against the current attempt budget."""
        return self.history[len(self.history) - self.attempt :] if self.attempt else []


class UndecodableJob(Exception):
    """The bytes in Redis are not an envelope; the runner dead-letters them as undecodable."""

    def __init__(self, raw: str, reason: str) -> None:
        self.raw = raw
        self.reason = reason
        super().__init__(reason)


def encode(envelope: Envelope) -> str:
    return envelope.model_dump_json()


def decode(raw: str | bytes) -> Envelope:
    """Parse an envelope; anything else raises UndecodableJob carrying the raw text."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    try:
        return Envelope.model_validate_json(text)
    except ValidationError as exc:
        raise UndecodableJob(text, f"not a job envelope: {exc.errors()[0]['msg']}") from exc
