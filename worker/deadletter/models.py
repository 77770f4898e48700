"""Dead-letter entries: everything an operator needs to understand and redrive a failed job."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from graphworks_core.envelope import AttemptRecord, Envelope, ErrorFields
from graphworks_core.errors import ErrorClass
from graphworks_core.redact import redact, redact_text


class NotRedrivable(ValueError):
    """The entry cannot run again as it is (its payload could never be decoded)."""


class DeadLetterEntry(ErrorFields):
    """A job that will not be retried any more. `id` equals `job_id` (one entry per job).

    Its error fields are the final failure's; `attempts` is the job's whole history, oldest
    first, the same records the envelope carries, so a redrive keeps it.
    """

    id: str
    job_id: str
    type: str
    queue: str = "default"
    # The job's payload; for an undecodable job, the raw text that could not be decoded.
    payload: dict[str, Any] | str
    priority: int = 5
    idempotency_key: str | None = None
    ordering_key: str | None = None
    # The job of the same ordering key that was waiting for this one and went next when it was
    # dead-lettered (None: no ordering key, or nothing was waiting).
    released_next: str | None = None
    reason: str
    attempts: list[AttemptRecord] = Field(default_factory=list)
    created_at: datetime | None = None
    first_failure_at: datetime
    last_failure_at: datetime
    dead_lettered_at: datetime
    reviewed: bool = False
    note: str | None = None
    redrive_count: int = 0

    @classmethod
    def from_envelope(
        cls,
        env: Envelope,
        error: ErrorFields,
        *,
        reason: str,
        at: datetime,
        payload: str | None = None,
        released_next: str | None = None,
    ) -> DeadLetterEntry:
        """The entry for `env` failing finally with `error` at `at`; `payload`: the raw text of a
        job that could not be decoded, kept instead of the envelope's."""
        history = [*env.history, AttemptRecord.of(error, at, None)]
        return cls(
            id=env.id,
            job_id=env.id,
            type=env.type,
            queue=env.queue,
            payload=env.payload if payload is None else payload,
            priority=env.priority,
            idempotency_key=env.idempotency_key,
            ordering_key=env.ordering_key,
            released_next=released_next,
            reason=reason,
            attempts=history,
            created_at=env.created_at,
            first_failure_at=history[0].at,
            last_failure_at=at,
            dead_lettered_at=at,
            redrive_count=env.redrive_count,
            **error.error_fields(),
        )

    def redacted(self) -> DeadLetterEntry:
        """A copy with its payload and every free-text message redacted: what a store keeps."""
        payload = redact(self.payload) if isinstance(self.payload, dict) else redact_text(self.payload)
        attempts = [
            a.model_copy(update={"message": None if a.message is None else redact_text(a.message)})
            for a in self.attempts
        ]
        return self.model_copy(
            update={
                "payload": payload,
                "message": None if self.message is None else redact_text(self.message),
                "reason": redact_text(self.reason),
                "attempts": attempts,
            }
        )

    def to_envelope(self) -> Envelope:
        """The job again, for a redrive: same id, idempotency key and history, a fresh attempt budget."""
        if not isinstance(self.payload, dict):
            raise NotRedrivable(f"entry {self.id} is {self.error_class}: its raw payload cannot be run; export it")
        return Envelope(
            id=self.job_id,
            type=self.type,
            payload=self.payload,
            priority=self.priority,
            queue=self.queue,
            idempotency_key=self.idempotency_key,
            ordering_key=self.ordering_key,
            created_at=self.created_at or self.first_failure_at,
            attempt=0,
            history=list(self.attempts),
            redrive_count=self.redrive_count + 1,
        )


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
