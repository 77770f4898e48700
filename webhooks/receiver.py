"""What one delivery becomes: each item checked on its own, the valid ones stored as one job.

Graph gives the endpoint 3 s and throttles endpoints slower than 2.9 s, so the only work here
is checking and persisting; everything else happens in the `notification_batch` job.
https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks#throttling
An item is dropped (and counted, never enqueued) when it is not an object with a subscriptionId,
names an unknown subscription or a tenant that is not the subscription's, carries the wrong
clientState, or is rich (encryptedContent) without valid validationTokens; the other items of the
delivery are kept. Whether the kept items' fields fit the model is the batch processor's check.
A delivery's valid items are one job, not one each: a job per item cost the receiver its
throughput target on 50-item deliveries. Writes of concurrent deliveries share a round trip
(batching.py). Nothing is acknowledged that was not stored: if Redis fails or is slower than the
deadline, the caller answers 503 and Graph redelivers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from graphworks_core.envelope import PRIORITY_DEFAULT
from graphworks_core.outage import Outage
from webhooks.batching import GroupWriter
from webhooks.tokens import JwksUnavailable, TokenValidator
from webhooks.validation import Delivery
from worker.queue import JobQueue
from worker.subscriptions import counters as c
from worker.subscriptions.client_state import client_state_ok
from worker.subscriptions.counters import Counters
from worker.subscriptions.jobs import LIFECYCLE_PRIORITY, job
from worker.subscriptions.registry import SubscriptionRecord, SubscriptionRegistry

log = logging.getLogger("graphworks.webhooks")

CACHE_MAX = 10_000  # subscriptions remembered per process


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
    outage: Outage = field(default_factory=lambda: Outage(log, "receiver"))

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
            if isinstance(exc, JwksUnavailable):
                log.warning("delivery not persisted (%s): answering 503", type(exc).__name__)
            else:
                self.outage.failed(exc)  # one warning per outage, not one per delivery
            raise Unavailable(type(exc).__name__) from exc
        self.outage.ok()
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
        # One pass over the items for what the checks need first (this path runs per delivery).
        items: list[dict[str, Any]] = []
        ids: set[str] = set()
        rich = False
        for i in delivery.items:
            if isinstance(i, dict) and isinstance(sub_id := i.get("subscriptionId"), str):
                items.append(i)
                ids.add(sub_id)
                rich = rich or "encryptedContent" in i
        dropped[c.DROPPED_MALFORMED_ITEM] += len(delivery.items) - len(items)
        rich_ok = not rich or (
            self.tokens is not None and await asyncio.to_thread(self.tokens.all_valid, delivery.validation_tokens)
        )
        records = await self._records(ids)
        # The items of a delivery nearly always share one subscription, tenant and clientState:
        # check each distinct triple once (a clientState check is a SHA-256) instead of per item.
        verdicts: dict[tuple[str, object, object], str | None] = {}
        kept: list[dict[str, Any]] = []
        lifecycle = False
        for item in items:
            checked = (item["subscriptionId"], item.get("tenantId"), item.get("clientState"))
            try:
                reason = verdicts[checked]
            except KeyError:
                reason = verdicts[checked] = self._refusal(records.get(checked[0]), checked[1], checked[2])
            except TypeError:  # an unhashable tenantId or clientState: refused, not worth remembering
                reason = self._refusal(records.get(checked[0]), checked[1], checked[2])
            if reason is None and not rich_ok and "encryptedContent" in item:
                reason = c.DROPPED_VALIDATION_TOKEN
            if reason is None:
                item.pop("clientState", None)  # checked; a secret is never stored
                kept.append(item)
                lifecycle = lifecycle or "lifecycleEvent" in item
            else:
                dropped[reason] += 1
        if kept:
            # Stored as Graph sent them: the batch processor validates each item (a model per item
            # here cost more than the rest of the receiver's work on a 50-item delivery).
            priority = LIFECYCLE_PRIORITY if lifecycle else PRIORITY_DEFAULT
            await self.writer.put([job(self.queue.name, "notification_batch", {"items": kept}, priority=priority)])
        return Outcome(len(kept), {k: v for k, v in dropped.items() if v})

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

    def _refusal(self, record: SubscriptionRecord | None, tenant: object, client_state: object) -> str | None:
        """Why an item of this subscription, tenant and clientState is dropped; None when it is kept."""
        if record is None:
            return c.DROPPED_UNKNOWN_SUBSCRIPTION
        expected_tenant = record.tenant_id or self.default_tenant_id
        if expected_tenant and (not isinstance(tenant, str) or tenant.lower() != expected_tenant.lower()):
            return c.DROPPED_UNKNOWN_TENANT
        if not client_state_ok(client_state, record.client_state_sha256):
            return c.DROPPED_CLIENT_STATE
        return None
