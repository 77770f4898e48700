"""The job envelope every queued job travels in, and its JSON codec (no pickle anywhere)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ratelimits.base import Booking
from worker.errors import ErrorClass

PRIORITY_MIN, PRIORITY_MAX, PRIORITY_DEFAULT = 1, 10, 5


def new_job_id() -> str:
    return uuid.uuid4().hex


class AttemptRecord(BaseModel):
    """One failed attempt: when, how it failed, and the delay the policy chose (None: dead-lettered)."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    error_class: ErrorClass
    status: int | None = None
    delay_s: float | None = None
    graph_code: str | None = None
    message: str | None = None
    request_id: str | None = None


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
