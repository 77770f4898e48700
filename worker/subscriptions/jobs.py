"""Building the jobs a notification leads to: `inbound` fetches, `sync` runs, lifecycle `notification` jobs.

Each payload is validated with its model before it is wrapped (the path that does not need the
job type's processor in this process); `put` writes any number of them in one round trip. A change
notification's job carries an idempotency key derived from (subscription, resource, change type,
resource id, etag), so a redelivered notification (Graph delivers at least once), or a
`notification_batch` job run again, maps onto the job already stored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from graphworks_core.clock import utc
from graphworks_core.envelope import PRIORITY_DEFAULT, Envelope
from graphworks_core.payloads import Inbound, Notification, Sync
from worker.queue import JobQueue, Scheduled
from worker.subscriptions.registry import SubscriptionRecord
from worker.subscriptions.routing import InboundRoute, SyncRoute, resync_route

LIFECYCLE_PRIORITY = 8  # a reauthorization or removal is time-bound; it overtakes change notifications
RESYNC_PRIORITY = 7

# calendarView/delta needs a window; a notification-driven resync covers the recent past and the
# coming months (the events a change notification is likely about).
CALENDAR_WINDOW_BACK_S = 30 * 86_400
CALENDAR_WINDOW_AHEAD_S = 365 * 86_400


def idempotency_key(n: Notification) -> str:
    data: dict[str, Any] = n.resource_data or {}
    parts = [n.subscription_id, n.resource or "", n.change_type or "", str(data.get("id") or "")]
    # The etag tells a second real edit of the same item from a redelivery of the first one.
    etag = data.get("@odata.etag")
    if etag:
        parts.append(str(etag))
    return "notification:" + hashlib.sha256("\n".join(parts).encode()).hexdigest()


def lifecycle_key(batch_id: str, index: int) -> str:
    """The key of the `notification` job for item `index` of a batch: one job however often the batch runs."""
    return f"notification_batch:{batch_id}:{index}"


def job(
    queue_name: str,
    job_type: str,
    payload: BaseModel | dict[str, Any],
    key: str | None = None,
    priority: int = PRIORITY_DEFAULT,
) -> Scheduled:
    """A job of `job_type` carrying `payload` (a model, or a dict already in its JSON form), to run now."""
    env = Envelope(
        type=job_type,
        payload=payload if isinstance(payload, dict) else payload.model_dump(mode="json", exclude_none=True),
        queue=queue_name,
        idempotency_key=key,
        priority=priority,
    )
    return Scheduled(env)


async def put(queue: JobQueue, jobs: Sequence[Scheduled]) -> list[tuple[str, bool]]:
    """Store `jobs` in one round trip: (job id, duplicate) for each; a duplicate's id is the job
    already stored under its key."""
    ids = await queue.put(jobs)
    return [(job_id, job_id != j.envelope.id) for j, job_id in zip(jobs, ids, strict=True)]


def sync_payload(route: SyncRoute, tenant_id: str | None, now: float) -> Sync:
    """The sync job for a route; a calendar sync gets the window its calendarView delta needs."""
    window: dict[str, Any] = {}
    if route.kind == "calendar":
        # From the start of the UTC day, not from now: a calendar sync in a new window starts a full
        # round (processors/sync_targets.py), so every notification of a day must name the same one.
        day = now - now % 86_400
        window = {"start": utc(day - CALENDAR_WINDOW_BACK_S), "end": utc(day + CALENDAR_WINDOW_AHEAD_S)}
    return Sync(
        resource=route.kind,
        owner=route.owner,
        folder=route.folder,
        channel_id=route.channel_id,
        tenant_id=tenant_id,
        **window,
    )


def _with_content(fields: dict[str, Any], content: dict[str, Any] | None) -> dict[str, Any]:
    # Rich notifications already carry the resource: hand it on if the inbound model takes it.
    if content is not None and "content" in Inbound.model_fields:
        fields["content"] = content
    return fields


def routed_job(
    queue: JobQueue, n: Notification, route: InboundRoute | SyncRoute, content: dict[str, Any] | None = None
) -> Scheduled:
    """The `inbound` or `sync` job for one change notification, keyed by `idempotency_key`."""
    key = idempotency_key(n)
    if isinstance(route, InboundRoute):
        fields = _with_content(
            {"resource": route.resource, "tenant_id": n.tenant_id, "subscription_id": n.subscription_id}, content
        )
        return job(queue.name, "inbound", Inbound.model_validate(fields), key)
    return job(queue.name, "sync", sync_payload(route, n.tenant_id, queue.clock.now()), key)


def lifecycle_job(queue_name: str, n: Notification, key: str) -> Scheduled:
    """A lifecycle event as its own `notification` job (its handling calls Graph)."""
    return job(queue_name, "notification", n, key, LIFECYCLE_PRIORITY)


async def enqueue_resync(queue: JobQueue, record: SubscriptionRecord) -> str | None:
    """A sync of the subscription's collection (after missed or recreated); None if it has no delta."""
    route = resync_route(record.resource)
    if route is None:
        return None
    sync = sync_payload(route, record.tenant_id, queue.clock.now())
    # No idempotency key: a later `missed` must sync again; the sync processor runs one at a time.
    ((job_id, _),) = await put(queue, [job(queue.name, "sync", sync, priority=RESYNC_PRIORITY)])
    return job_id
