"""notification: one change notification or lifecycle event as a job.

The webhook receiver stores each delivery as one `notification_batch` job
(processors/notification_batch.py), which handles the change notifications itself, with
`change_job` below, and hands each lifecycle event to a `notification` job of its own. A
change notification becomes an `inbound` fetch (chat, channel and mail messages) or a `sync` of
its collection (events, contacts, drive items); a rich notification's content is verified
(dataSignature) and decrypted first, and one that fails is dropped and counted. Lifecycle events
do what Graph prescribes:
https://learn.microsoft.com/en-us/graph/change-notifications-lifecycle-events
    reauthorizationRequired -> renew the subscription (renewing reauthorizes it)
    subscriptionRemoved     -> recreate it, then resync its collection
    missed                  -> resync its collection
Redelivered notifications map onto the job already stored (see webhooks/jobs.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from graphworks_core.payloads import Notification
from worker.context import JobContext
from worker.queue import JobQueue, Scheduled
from worker.subscriptions import counters, jobs
from worker.subscriptions.crypto import DecryptError, decrypt_content
from worker.subscriptions.renewal import build_manager, key_store
from worker.subscriptions.routing import route_change

log = logging.getLogger("graphworks.notifications")

Action = Literal[
    "inbound", "sync", "duplicate", "dropped", "unroutable", "renewed", "recreated", "resync", "no_resync",
    "unknown_subscription",
]  # fmt: skip


class NotificationResult(BaseModel):
    action: Action
    job_type: str | None = None
    job_id: str | None = None
    subscription_id: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class Refusal:
    """Why a change notification leads to no job; `counter` is what is counted."""

    action: Literal["dropped", "unroutable"]
    counter: str
    detail: str | None = None


def queue_for(ctx: JobContext) -> JobQueue:
    return JobQueue.from_settings(ctx.settings, ctx.redis, ctx.clock)


def change_job(ctx: JobContext, queue: JobQueue, n: Notification) -> Scheduled | Refusal:
    """The `inbound` or `sync` job for a change notification (rich content decrypted), or why there is none."""
    content = None
    if n.encrypted_content is not None:
        try:
            content = decrypt_content(n.encrypted_content, key_store(ctx.settings))
        except DecryptError as exc:
            log.warning("rich notification dropped subscription=%s reason=%s", n.subscription_id, exc.reason)
            return Refusal("dropped", exc.reason, exc.reason)
    route = route_change(n.resource)
    if route is None:
        return Refusal("unroutable", counters.UNROUTABLE)
    return jobs.routed_job(queue, n, route, content)


async def handle_notification(ctx: JobContext, payload: Notification) -> NotificationResult:
    if payload.lifecycle_event is not None:
        return await _lifecycle(ctx, payload)
    queue = queue_for(ctx)
    job = change_job(ctx, queue, payload)
    if isinstance(job, Refusal):
        await counters.incr(ctx.redis, job.counter)
        return NotificationResult(action=job.action, subscription_id=payload.subscription_id, detail=job.detail)
    ((job_id, duplicate),) = await jobs.put(queue, [job])
    if duplicate:
        await counters.incr(ctx.redis, counters.DUPLICATES)
    job_type = job.envelope.type
    return NotificationResult(
        action="duplicate" if duplicate else "inbound" if job_type == "inbound" else "sync",
        job_type=job_type,
        job_id=job_id,
        subscription_id=payload.subscription_id,
    )


async def _lifecycle(ctx: JobContext, payload: Notification) -> NotificationResult:
    queue = queue_for(ctx)
    manager = build_manager(ctx.graph, ctx.redis, ctx.settings, ctx.clock, queue)
    record = await manager.registry.get(payload.subscription_id)
    if record is None:  # deleted by us meanwhile, or never ours: nothing to act on
        return NotificationResult(action="unknown_subscription", subscription_id=payload.subscription_id)
    event = payload.lifecycle_event
    if event == "reauthorizationRequired":
        renewed = await manager.renew(record.id)
        action: Action = "renewed" if renewed.id == record.id else "recreated"
        return NotificationResult(action=action, subscription_id=renewed.id)
    if event == "subscriptionRemoved":
        new = await manager.recreate(record)  # its resync callback enqueues the sync
        return NotificationResult(action="recreated", subscription_id=new.id, detail=f"replaces {record.id}")
    job_id = await jobs.enqueue_resync(queue, record)  # missed
    return NotificationResult(
        action="resync" if job_id else "no_resync", job_type="sync" if job_id else None, job_id=job_id,
        subscription_id=record.id,
    )  # fmt: skip
