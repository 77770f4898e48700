"""What one delivery becomes: each item checked on its own, the valid ones stored in one round trip.

Graph gives the endpoint 3 s and throttles endpoints slower than 2.9 s, so the only work here
is checking and persisting; everything else happens in the `notification` job.
https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks#throttling
An item is dropped (and counted, never enqueued) when it is malformed, names an unknown
subscription or a tenant that is not the subscription's, carries the wrong clientState, or is
rich (encryptedContent) without valid validationTokens; the other items of the delivery are kept.
Writes of concurrent deliveries share a round trip (batching.py). Nothing is acknowledged that
was not stored: if Redis fails or is slower than the deadline, the caller answers 503 and Graph
redelivers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pydantic
import redis.asyncio as aioredis

from webhooks import counters as c
from webhooks.batching import GroupWriter
from webhooks.client_state import client_state_ok
from webhooks.counters import Counters
from webhooks.registry import SubscriptionRecord, SubscriptionRegistry
from webhooks.tokens import JwksUnavailable, TokenValidator
from webhooks.validation import Delivery
from worker.envelope import Envelope
from worker.payloads import Notification
from worker.queue import JobQueue, Scheduled

log = logging.getLogger("graphworks.webhooks")

CACHE_MAX = 10_000  # subscriptions remembered per process
LIFECYCLE_PRIORITY = 8  # a reauthorization or removal is time-bound; it overtakes change notifications


class Unavailable(Exception):
    """The delivery could not be persisted in time: answer 503 so Graph redelivers."""


@dataclass(frozen=True)
class Outcome:
    accepted: int
    dropped: dict[str, int]


@dataclass
class Receiver:
    registry: SubscriptionRegistry
    queue: JobQueue
    counters: Counters
    tokens: TokenValidator | None
    deadline_s: float
    default_tenant_id: str | None = None
    cache_s: float = 5.0
    _cache: dict[str, tuple[SubscriptionRecord, float]] = field(default_factory=dict)
    writer: GroupWriter = field(init=False)

    def __post_init__(self) -> None:
        self.writer = GroupWriter(self.queue)

    async def handle(self, delivery: Delivery) -> Outcome:
        """Check and persist; Unavailable if the valid items could not be stored within the deadline."""
        self.counters.add(c.RECEIVED)
        try:
            async with asyncio.timeout(self.deadline_s):
                outcome = await self._check_and_store(delivery)
        except (TimeoutError, aioredis.RedisError, OSError, JwksUnavailable) as exc:
            self.counters.add(c.UNAVAILABLE)
            log.warning("delivery not persisted (%s): answering 503", type(exc).__name__)
            raise Unavailable(type(exc).__name__) from exc
        self.counters.add(c.ACCEPTED, outcome.accepted)
        for reason, n in outcome.dropped.items():
            self.counters.add(reason, n)
        if outcome.dropped:
            log.info(
                "delivery items=%d accepted=%d dropped %s",
                outcome.accepted + sum(outcome.dropped.values()),
                outcome.accepted,
                " ".join(f"{k}={v}" for k, v in sorted(outcome.dropped.items())),
            )
        return outcome

    async def _check_and_store(self, delivery: Delivery) -> Outcome:
        dropped: Counter[str] = Counter()
        items = [i for i in delivery.items if isinstance(i, dict) and isinstance(i.get("subscriptionId"), str)]
        dropped[c.DROPPED_MALFORMED_ITEM] += len(delivery.items) - len(items)
        rich_ok = True
        if any("encryptedContent" in i for i in items):
            rich_ok = self.tokens is not None and await asyncio.to_thread(
                self.tokens.all_valid, delivery.validation_tokens
            )
        records = await self._records({i["subscriptionId"] for i in items})
        jobs: list[Scheduled] = []
        for item in items:
            reason = self._refusal(item, records.get(item["subscriptionId"]), rich_ok)
            if reason is None:
                job = _job(item, self.queue.name)
                reason = c.DROPPED_MALFORMED_ITEM if job is None else None
                if job is not None:
                    jobs.append(job)
            if reason is not None:
                dropped[reason] += 1
        await self.writer.put(jobs)
        return Outcome(len(jobs), {k: v for k, v in dropped.items() if v})

    async def _records(self, ids: set[str]) -> dict[str, SubscriptionRecord]:
        """Records by id, from a short in-process cache (a Redis round trip saved per delivery).

        Only known subscriptions are cached: a subscription created a moment ago is seen at once,
        and one deleted stays accepted for at most `cache_s`.
        """
        now = time.monotonic()
        found = {i: hit[0] for i in ids if (hit := self._cache.get(i)) is not None and now - hit[1] < self.cache_s}
        missing = ids - found.keys()
        if missing:
            fetched = await self.registry.get_many(missing)
            if len(self._cache) > CACHE_MAX:
                self._cache.clear()
            for sub_id, record in fetched.items():
                self._cache[sub_id] = (record, now)
            found.update(fetched)
        return found

    def _refusal(self, item: dict[str, Any], record: SubscriptionRecord | None, rich_ok: bool) -> str | None:
        """Why an item is dropped, or None when it is kept."""
        if record is None:
            return c.DROPPED_UNKNOWN_SUBSCRIPTION
        expected_tenant = record.tenant_id or self.default_tenant_id
        tenant = item.get("tenantId")
        if expected_tenant and (not isinstance(tenant, str) or tenant.lower() != expected_tenant.lower()):
            return c.DROPPED_UNKNOWN_TENANT
        if not client_state_ok(item.get("clientState"), record.client_state_sha256):
            return c.DROPPED_CLIENT_STATE
        if "encryptedContent" in item and not rich_ok:
            return c.DROPPED_VALIDATION_TOKEN
        return None


def _job(item: dict[str, Any], queue_name: str) -> Scheduled | None:
    """The notification job for one checked item; None if the item does not fit the model."""
    try:
        payload = Notification(
            subscription_id=item["subscriptionId"],
            tenant_id=item.get("tenantId"),
            change_type=item.get("changeType"),
            resource=item.get("resource"),
            resource_data=item.get("resourceData"),
            lifecycle_event=item.get("lifecycleEvent"),
            subscription_expiration=item.get("subscriptionExpirationDateTime"),
            encrypted_content=item.get("encryptedContent"),
        )
    except pydantic.ValidationError:
        return None
    env = Envelope(
        type="notification",
        payload=payload.model_dump(mode="json", exclude_none=True),
        queue=queue_name,
        priority=LIFECYCLE_PRIORITY if payload.lifecycle_event else 5,
    )
    return Scheduled(env)
