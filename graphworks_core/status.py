"""A job's status record: what service code reads to follow what it sent (DESIGN.md, "Job states,
results and events"). One JSON string per job in Redis (`keys.job_status`), written whole by
whoever makes the transition, in the round trip of the transition itself:

- enqueue, retry, deferral, redrive: worker/lua/enqueue.lua, with the job;
- completed, dead-lettered: worker/lua/outcome.lua, in the worker's finish transaction;
- cancelled: worker/lua/cancel.lua;
- progress (uploads, syncs): the running job itself.

`running` is not written at start (arq's start transaction is not ours, and a write there would
cost a round trip per job): a reader sees `queued` with the attempt's in-progress key present and
reports `running` (worker/status.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from graphworks_core.envelope import AttemptRecord, Envelope

JobState = Literal["queued", "scheduled", "running", "completed", "dead_lettered", "cancelled"]
JOB_STATES: tuple[str, ...] = ("queued", "scheduled", "running", "completed", "dead_lettered", "cancelled")
FINAL_STATES = frozenset({"completed", "dead_lettered", "cancelled"})

# The transitions appended to the events stream (`keys.EVENTS`), as its `event` field.
EventName = Literal["retry_scheduled", "completed", "dead_lettered", "cancelled", "redriven"]
EVENT_NAMES: tuple[str, ...] = ("retry_scheduled", "completed", "dead_lettered", "cancelled", "redriven")


ProgressUnit = Literal["bytes", "pages", "items"]


class Progress(BaseModel):
    """How far a long job got: bytes of an upload, pages of a sync."""

    done: int = Field(ge=0)
    total: int | None = Field(None, ge=0)
    unit: ProgressUnit


class JobStatus(BaseModel):
    """A job's status record. `result` is what Graph returned that a caller needs (the chat
    message id and webUrl, the drive item, the sync's counts); `attempts` its failed attempts."""

    model_config = ConfigDict(frozen=True)

    id: str
    type: str
    status: JobState
    priority: int
    ordering_key: str | None = None
    idempotency_key: str | None = None
    created_at: datetime
    updated_at: datetime
    next_run_at: datetime | None = None
    attempts: list[AttemptRecord] = Field(default_factory=list)
    progress: Progress | None = None
    result: dict[str, Any] | None = None
    dead_letter_id: str | None = None
    redrive_count: int = 0
    # The arq job of the current attempt (worker/queue.py `arq_job_id`): how a reader tells
    # `running` and how cancel finds the job in the queue.
    run_id: str

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATES

    def stored(self) -> str:
        """The JSON kept in Redis (and compared by cancel.lua), fields at their defaults (None, [])
        left out: a third less memory per record."""
        return self.model_dump_json(exclude_defaults=True)


def record_for(
    env: Envelope,
    status: JobState,
    *,
    run_id: str,
    now: float,
    next_run_at: float | None = None,
    result: BaseModel | dict[str, Any] | None = None,
    progress: Progress | None = None,
    dead_letter_id: str | None = None,
) -> JobStatus:
    if isinstance(result, BaseModel):
        result = result.model_dump(mode="json", exclude_none=True)
    return JobStatus(
        id=env.id,
        type=env.type,
        status=status,
        priority=env.priority,
        ordering_key=env.ordering_key,
        idempotency_key=env.idempotency_key,
        created_at=env.created_at,
        updated_at=datetime.fromtimestamp(now, UTC),
        next_run_at=None if next_run_at is None else datetime.fromtimestamp(next_run_at, UTC),
        attempts=env.history,
        progress=progress,
        result=result,
        dead_letter_id=dead_letter_id,
        redrive_count=env.redrive_count,
        run_id=run_id,
    )


class JobEvent(BaseModel):
    """One entry of the events stream: its stream id (resume from it), the transition and the record."""

    stream_id: str
    event: EventName
    job_id: str
    type: str
    record: JobStatus
