"""notification_batch: the job the webhook receiver stores for the checked items of one delivery.

Each item, as Graph sent it, is validated here on its own (one that does not fit is dropped and
counted as a malformed item, the others go on).
Change notifications are handled here, all of the batch together (processors/notifications.py
`change_job`: rich ones decrypted, then routed), and every job they lead to is written in one
round trip. Lifecycle events call Graph, so each becomes a `notification` job of its own, keyed by
this batch's id and the item's index. A redelivered notification, or this batch run again after
a failure, maps onto the jobs already stored (counted as duplicates; a lifecycle event's job is
never written twice).
"""

from __future__ import annotations

from collections import Counter

import pydantic
from pydantic import BaseModel

from graphworks_core.payloads import Notification, NotificationBatch
from processors.notification import Refusal, change_job, queue_for
from worker.context import JobContext
from worker.queue import Scheduled
from worker.subscriptions import counters, jobs


class NotificationBatchResult(BaseModel):
    """How many items of the batch led to what."""

    inbound: int = 0
    sync: int = 0
    duplicate: int = 0  # its job was already stored (a redelivery, or this batch run again)
    dropped: int = 0  # rich content that failed its signature or decryption
    malformed: int = 0  # an item that does not fit the Notification model (dropped)
    unroutable: int = 0
    lifecycle: int = 0  # handed to a `notification` job (written now or by an earlier run)


async def handle_notification_batch(ctx: JobContext, payload: NotificationBatch) -> NotificationBatchResult:
    queue = queue_for(ctx)
    actions: Counter[str] = Counter()
    tally = counters.Counters()
    planned: list[Scheduled] = []
    for index, item in enumerate(payload.items):
        try:
            n = Notification.from_graph(item)
        except pydantic.ValidationError:
            actions["malformed"] += 1
            tally.add(counters.DROPPED_MALFORMED_ITEM)
            continue
        if n.lifecycle_event is not None:
            planned.append(jobs.lifecycle_job(queue.name, n, jobs.lifecycle_key(ctx.envelope.id, index)))
            continue
        job = change_job(ctx, queue, n)
        if isinstance(job, Refusal):
            actions[job.action] += 1
            tally.add(job.counter)
        else:
            planned.append(job)
    for job, (_, duplicate) in zip(planned, await jobs.put(queue, planned), strict=True):
        if job.envelope.type == "notification":
            actions["lifecycle"] += 1
        elif duplicate:
            actions["duplicate"] += 1
            tally.add(counters.DUPLICATES)
        else:
            actions[job.envelope.type] += 1
    # Counted once the jobs are stored: a run that failed before counts nothing. One round trip;
    # a failed flush is logged, not raised (re-running the batch would count its items again).
    await tally.flush(ctx.redis)
    return NotificationBatchResult.model_validate(actions)
