"""Every Redis key graphworks writes, in one place. Prefix: `graphworks:`."""

from __future__ import annotations

PREFIX = "graphworks:"


def queue(name: str = "default") -> str:
    """arq's queue zset for a queue: members are arq job ids, scores priority-adjusted run times (ms)."""
    return f"{PREFIX}queue:{name}"


def scheduled(name: str = "default") -> str:
    """Jobs waiting for a future time (deferred enqueues, retries): zset of `PP:arq_job_id` by due ms."""
    return f"{PREFIX}scheduled:{name}"


def paused(name: str = "default") -> str:
    return f"{PREFIX}paused:{name}"


def idempotency(key: str) -> str:
    """Holds the job id first enqueued with this idempotency key."""
    return f"{PREFIX}idem:{key}"


def final_marker(job_id: str, redrive_count: int) -> str:
    """Set once when a job (in one redrive generation) completes or is dead-lettered: counts it once."""
    return f"{PREFIX}final:{job_id}:{redrive_count}"


STATS = f"{PREFIX}stats"

DLQ_ENTRIES = f"{PREFIX}dlq:entries"  # hash: entry id -> entry JSON
DLQ_INDEX = f"{PREFIX}dlq:index"  # zset: entry id by last_failure_at (epoch seconds)

INBOUND_STREAM = f"{PREFIX}inbound"
