"""Writing the jobs a notification leads to: `inbound` fetches and `sync` runs.

They are written with JobQueue.put after validating the payload with its model (the path that
does not need the job type's processor in this process). A change notification's job carries an
idempotency key derived from (subscription, resource, change type, resource id, etag), so a
redelivered notification (Graph delivers at least once) maps onto the job already stored.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import BaseModel

from webhooks.registry import SubscriptionRecord
from webhooks.routing import InboundRoute, SyncRoute, resync_route
from worker.clock import utc
from worker.envelope import Envelope
from worker.payloads import Inbound, Notification, Sync
from worker.queue import JobQueue, Scheduled

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


async def _put(
    queue: JobQueue, job_type: str, payload: BaseModel, key: str | None, priority: int = 5
) -> tuple[str, bool]:
    env = Envelope(
        type=job_type,
        payload=payload.model_dump(mode="json", exclude_none=True),
        queue=queue.name,
        idempotency_key=key,
        priority=priority,
    )
    job_id = (await queue.put([Scheduled(env)]))[0]
    return job_id, job_id != env.id


def sync_payload(route: SyncRoute, tenant_id: str | None, now: float) -> Sync:
    """The sync job for a route; a calendar sync gets the window its calendarView delta needs."""
    window: dict[str, Any] = {}
    if route.kind == "calendar":
        window = {"start": utc(now - CALENDAR_WINDOW_BACK_S), "end": utc(now + CALENDAR_WINDOW_AHEAD_S)}
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


async def enqueue_routed(
    queue: JobQueue, n: Notification, route: InboundRoute | SyncRoute, content: dict[str, Any] | None = None
) -> tuple[str, str, bool]:
    """(job type, job id, duplicate) for one change notification's job."""
    key = idempotency_key(n)
    if isinstance(route, InboundRoute):
        fields = _with_content(
            {"resource": route.resource, "tenant_id": n.tenant_id, "subscription_id": n.subscription_id}, content
        )
        job_id, dup = await _put(queue, "inbound", Inbound.model_validate(fields), key)
        return "inbound", job_id, dup
    job_id, dup = await _put(queue, "sync", sync_payload(route, n.tenant_id, queue.clock.now()), key)
    return "sync", job_id, dup


async def enqueue_resync(queue: JobQueue, record: SubscriptionRecord) -> str | None:
    """A sync of the subscription's collection (after missed or recreated); None if it has no delta."""
    route = resync_route(record.resource)
    if route is None:
        return None
    sync = sync_payload(route, record.tenant_id, queue.clock.now())
    # No idempotency key: a later `missed` must sync again; the sync processor runs one at a time.
    job_id, _ = await _put(queue, "sync", sync, None, priority=7)
    return job_id
