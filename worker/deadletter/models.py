"""Dead-letter entries: everything an operator needs to understand and redrive a failed job."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from worker.envelope import AttemptRecord
from worker.errors import ErrorClass

# One attempt of the job, oldest first; delay_s is the delay the policy chose (None for the last).
# The same record the envelope's history keeps, so a dead-letter entry and a redrive share it.
DeadLetterAttempt = AttemptRecord


class DeadLetterEntry(BaseModel):
    """A job that will not be retried any more. `id` equals `job_id` (one entry per job)."""

    id: str
    job_id: str
    type: str
    queue: str = "default"
    # The job's payload; for an undecodable job, the raw text that could not be decoded.
    payload: dict[str, Any] | str
    priority: int = 5
    idempotency_key: str | None = None
    error_class: ErrorClass
    reason: str
    status: int | None = None
    graph_code: str | None = None
    message: str | None = None
    request_id: str | None = None
    client_request_id: str | None = None
    attempts: list[DeadLetterAttempt] = Field(default_factory=list)
    created_at: datetime | None = None
    first_failure_at: datetime
    last_failure_at: datetime
    dead_lettered_at: datetime
    reviewed: bool = False
    note: str | None = None
    redrive_count: int = 0


class DeadLetterFilter(BaseModel):
    """Which entries an operation applies to; every field narrows, None means any."""

    type: str | None = None
    error_class: ErrorClass | None = None
    reviewed: bool | None = None
    since: datetime | None = None  # last_failure_at >= since
    until: datetime | None = None  # last_failure_at < until

    def matches(self, entry: DeadLetterEntry) -> bool:
        return (
            (self.type is None or entry.type == self.type)
            and (self.error_class is None or entry.error_class == self.error_class)
            and (self.reviewed is None or entry.reviewed == self.reviewed)
            and (self.since is None or entry.last_failure_at >= self.since)
            and (self.until is None or entry.last_failure_at < self.until)
        )


class DeadLetterPage(BaseModel):
    """One page of a listing, newest failure first; next_offset is None on the last page."""

    entries: list[DeadLetterEntry]
    total: int
    next_offset: int | None
