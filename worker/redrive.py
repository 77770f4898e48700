"""Redrive: put dead-lettered jobs back on the queue with a fresh attempt budget.

The job keeps its id, idempotency key and history; its redrive count goes up, so it is counted
again once when it completes or fails anew.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from worker.deadletter.models import DeadLetterEntry, DeadLetterFilter, NotRedrivable
from worker.deadletter.store import DeadLetterStore
from worker.queue import JobQueue, Scheduled


@dataclass
class RedriveResult:
    redriven: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # entry id -> why


async def redrive_one(store: DeadLetterStore, queue: JobQueue, entry_id: str) -> RedriveResult:
    result = RedriveResult()
    entry = await store.get(entry_id)
    if entry is None:
        result.skipped[entry_id] = "no such dead-letter entry"
        return result
    await _redrive(store, queue, entry, result)
    return result


async def redrive_matching(
    store: DeadLetterStore, queue: JobQueue, flt: DeadLetterFilter | None = None
) -> RedriveResult:
    result = RedriveResult()
    entries = [e async for e in store.scan(flt)]
    for entry in entries:
        await _redrive(store, queue, entry, result)
    return result


async def _redrive(store: DeadLetterStore, queue: JobQueue, entry: DeadLetterEntry, result: RedriveResult) -> None:
    try:
        env = entry.to_envelope()
    except NotRedrivable as exc:
        result.skipped[entry.id] = str(exc)
        return
    # Queue first, then remove: a crash in between leaves the entry to be redriven again, never lost.
    await queue.put([Scheduled(env, use_idempotency=False, event="redriven")])
    await store.remove(entry.id)
    result.redriven.append(entry.id)
