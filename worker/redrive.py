"""Redrive: put dead-lettered jobs back on the queue with a fresh attempt budget.

The job keeps its id, idempotency key and history; its redrive count goes up, so it is counted
again once when it completes or fails anew. The queue writes its "redriven" event. A bulk redrive
goes a batch at a time (REDRIVE_BATCH): one pipelined enqueue of the batch, then one call that
removes the batch's entries, so no single Redis call grows with the store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from worker.deadletter.models import DeadLetterEntry, DeadLetterFilter, NotRedrivable
from worker.deadletter.store import DeadLetterStore
from worker.queue import JobQueue, Scheduled

REDRIVE_BATCH = 500

# Called after each batch with (redriven so far, skipped so far).
Progress = Callable[[int, int], None]


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
    await _redrive_batch(store, queue, [entry], result)
    return result


async def redrive_matching(
    store: DeadLetterStore,
    queue: JobQueue,
    flt: DeadLetterFilter | None = None,
    *,
    batch: int = REDRIVE_BATCH,
    progress: Progress | None = None,
) -> RedriveResult:
    """Redrive every entry matching `flt`, `batch` at a time, newest first; `progress` after each."""
    result = RedriveResult()
    async for entries in store.walk(flt, batch=batch):
        await _redrive_batch(store, queue, entries, result)
        if progress is not None:
            progress(len(result.redriven), len(result.skipped))
    return result


async def _redrive_batch(
    store: DeadLetterStore, queue: JobQueue, entries: list[DeadLetterEntry], result: RedriveResult
) -> None:
    jobs, ids = [], []
    for entry in entries:
        try:
            env = entry.to_envelope()
        except NotRedrivable as exc:
            result.skipped[entry.id] = str(exc)
            continue
        jobs.append(Scheduled(env, use_idempotency=False, event="redriven"))
        ids.append(entry.id)
    if not jobs:
        return
    # Queue first, then remove: a crash in between leaves the entries to be redriven again, never
    # lost; the second time enqueues nothing while the first's job exists (same arq job id).
    await queue.put(jobs)
    await store.remove_many(ids)
    result.redriven.extend(ids)
