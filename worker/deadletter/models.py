"""Dead-letter entries: everything an operator needs to understand and redrive a failed job."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

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
    graph_code: str | None = None
    status: int | None = None  # the final failure's HTTP status
    reviewed: bool | None = None
    since: datetime | None = None  # last_failure_at >= since
    until: datetime | None = None  # last_failure_at < until

    def matches(self, entry: DeadLetterEntry) -> bool:
        return (
            (self.type is None or entry.type == self.type)
            and (self.error_class is None or entry.error_class == self.error_class)
            and (self.graph_code is None or entry.graph_code == self.graph_code)
            and (self.status is None or entry.status == self.status)
            and (self.reviewed is None or entry.reviewed == self.reviewed)
            and (self.since is None or entry.last_failure_at >= self.since)
            and (self.until is None or entry.last_failure_at < self.until)
        )

    def narrows_group(self) -> bool:
        """Whether a group field (type, class, code, status) is set: then only some groups can match."""
        return any(v is not None for v in (self.type, self.error_class, self.graph_code, self.status))

    def matches_group(self, group: GroupKey) -> bool:
        return (
            (self.type is None or group.type == self.type)
            and (self.error_class is None or group.error_class == self.error_class)
            and (self.graph_code is None or group.graph_code == self.graph_code)
            and (self.status is None or group.status == self.status)
        )


class GroupKey(BaseModel):
    """What groups dead letters by cause: (type, error class, Graph error code, HTTP status)."""

    model_config = ConfigDict(frozen=True)

    type: str
    error_class: ErrorClass
    graph_code: str | None = None
    status: int | None = None

    @classmethod
    def of(cls, entry: DeadLetterEntry) -> GroupKey:
        return cls(type=entry.type, error_class=entry.error_class, graph_code=entry.graph_code, status=entry.status)

    def encode(self) -> str:
        """The key as stored: a compact JSON array (one spelling per group)."""
        return json.dumps([self.type, self.error_class.value, self.graph_code, self.status], separators=(",", ":"))

    @classmethod
    def decode(cls, raw: str) -> GroupKey:
        type_, error_class, graph_code, status = json.loads(raw)
        return cls(type=type_, error_class=error_class, graph_code=graph_code, status=status)


class DeadLetterGroup(BaseModel):
    """One cause's dead letters: how many, the oldest and newest last failure, and the newest entry."""

    type: str
    error_class: ErrorClass
    graph_code: str | None
    status: int | None
    count: int
    first_at: datetime
    last_at: datetime
    sample_id: str


class DeadLetterCursorPage(BaseModel):
    """One page of a cursor listing, newest failure first. `next_cursor` is None once nothing is
    left; a page may hold fewer than `limit` entries (the scan per request is bounded) and still
    have a next_cursor."""

    entries: list[DeadLetterEntry]
    next_cursor: str | None


def encode_cursor(score: float, entry_id: str) -> str:
    """The position after (score, id) in the newest-first order, as an opaque URL-safe string."""
    return base64.urlsafe_b64encode(json.dumps([score, entry_id]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """ValueError if `cursor` is not one encode_cursor made."""
    try:
        score, entry_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return float(score), str(entry_id)
    except (ValueError, TypeError) as exc:
        raise ValueError("not a cursor this API gave out") from exc


class DeadLetterPage(BaseModel):
    """One page of a listing, newest failure first; next_offset is None on the last page."""

    entries: list[DeadLetterEntry]
    total: int
    next_offset: int | None
