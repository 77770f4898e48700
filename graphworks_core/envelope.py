"""The job envelope every queued job travels in, and its JSON codec (no pickle anywhere)."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from graphworks_core.errors import ErrorClass

PRIORITY_MIN, PRIORITY_MAX, PRIORITY_DEFAULT = 1, 10, 5
ORDERING_KEY_MAX_CHARS = 256
# A job deferred further than this is a mistake (and past it, a due time no datetime can hold).
DEFER_MAX_S = 10 * 366 * 86400


class JobIds:
    """Job ids that sort in the order they were made (in one process), so equal queue scores are
    broken by enqueue order, never at random: Redis orders a sorted set's ties by member, and a
    queue member starts with the job id (worker/queue.py `arq_job_id`).

    32 hex characters, like the uuid4 hex ids before them: 48 bits of milliseconds, a 16-bit
    sequence within the millisecond, 64 random bits. The milliseconds never go backwards: after a
    clock step back, or 65,536 ids in one millisecond, the last one is carried forward.
    """

    def __init__(self, now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000) -> None:
        self._now_ms = now_ms
        self._last_ms = 0
        self._seq = 0
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            ms = self._now_ms()
            if ms > self._last_ms:
                self._last_ms, self._seq = ms, 0
            elif self._seq < 0xFFFF:
                self._seq += 1
            else:
                self._last_ms, self._seq = self._last_ms + 1, 0
            ms, seq = self._last_ms, self._seq
        return f"{ms & 0xFFFF_FFFF_FFFF:012x}{seq:04x}{secrets.randbits(64):016x}"


new_job_id = JobIds()


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
    cause: str | None = None  # finer than the class when it says more, e.g. "unexpected_reply" (an odd 2xx)

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
    # Jobs with one ordering key run one at a time in enqueue order, across retries (worker/queue.py).
    ordering_key: str | None = Field(default=None, min_length=1, max_length=ORDERING_KEY_MAX_CHARS)
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
