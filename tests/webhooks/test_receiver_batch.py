"""The receiver in process on a real Redis: a delivery's valid items are one job, each item still judged alone."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis

from graphworks_core.clock import FakeClock
from tests.webhooks.helpers import TENANT, item, queued, register
from webhooks import receiver as receiver_module
from webhooks.receiver import Outcome, Receiver
from webhooks.validation import Delivery
from worker.queue import JobQueue
from worker.subscriptions import counters as c
from worker.subscriptions.counters import Counters
from worker.subscriptions.registry import SubscriptionRegistry


def _receiver(redis: aioredis.Redis) -> Receiver:
    return Receiver(SubscriptionRegistry(redis), JobQueue(redis, FakeClock()), Counters(), None, 2.0)


async def _handle(redis: aioredis.Redis, items: list[Any]) -> Outcome:
    return await _receiver(redis).handle(Delivery(items=items, validation_tokens=[]))


async def test_a_delivery_of_50_is_one_job_holding_every_item_in_order(redis: aioredis.Redis) -> None:
    secret = await register(redis, "sub-a")
    items = [item("sub-a", secret, resource=f"Users/u-1/Messages/m-{i}", resourceData={"id": f"m-{i}"})
             for i in range(50)]  # fmt: skip
    outcome = await _handle(redis, items)
    assert outcome == Outcome(50, {})
    (job,) = await queued(redis)
    assert (job.type, job.priority, job.idempotency_key) == ("notification_batch", 5, None)
    assert [n["resource"] for n in job.payload["items"]] == [f"Users/u-1/Messages/m-{i}" for i in range(50)]


async def test_shared_checks_still_judge_every_item(redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    a = await register(redis, "sub-a")
    b = await register(redis, "sub-b")
    hashed: list[object] = []
    real = receiver_module.client_state_ok

    def counting(given: object, expected: str) -> bool:
        hashed.append(given)
        return real(given, expected)

    monkeypatch.setattr(receiver_module, "client_state_ok", counting)
    items = [
        item("sub-a", a, resource="Users/u-1/Messages/1"),
        item("sub-a", b),  # b's secret on a: wrong
        item("sub-b", b, resource="Users/u-1/Messages/2"),
        item("sub-a", a, resource="Users/u-1/Messages/3"),  # same triple as the first: no second hash
        item("sub-a", b),  # same wrong triple: still dropped
        item("sub-b", a),  # a's secret on b: wrong, though a's secret was right a moment ago
        item("sub-a", a, tenantId="other-tenant"),  # right secret, wrong tenant
        item("sub-a", [a]),  # unhashable clientState: dropped, no crash
        item("sub-gone", a),
        item("sub-b", b, resource="Users/u-1/Messages/4"),
    ]
    outcome = await _handle(redis, items)
    (job,) = await queued(redis)
    assert [(n["subscriptionId"], n["resource"]) for n in job.payload["items"]] == [
        ("sub-a", "Users/u-1/Messages/1"),
        ("sub-b", "Users/u-1/Messages/2"),
        ("sub-a", "Users/u-1/Messages/3"),
        ("sub-b", "Users/u-1/Messages/4"),
    ]
    assert outcome == Outcome(
        4, {c.DROPPED_CLIENT_STATE: 4, c.DROPPED_UNKNOWN_TENANT: 1, c.DROPPED_UNKNOWN_SUBSCRIPTION: 1}
    )
    # One clientState check per distinct (subscription, tenant, clientState) that got that far.
    assert hashed == [a, b, b, a, [a]]


async def test_items_are_stored_as_graph_sent_them_without_their_client_state(redis: aioredis.Redis) -> None:
    """Field types are the batch processor's to check (tests/webhooks/test_notification_batch.py);
    here only an item with no subscription to check it against is dropped."""
    secret = await register(redis, "sub-a")
    items = [
        item("sub-a", secret, resource="Users/u-1/Messages/1"),
        item("sub-a", secret, lifecycleEvent="bogus"),
        {"subscriptionId": 3, "clientState": secret},
        "not an object",
    ]
    outcome = await _handle(redis, items)
    assert outcome == Outcome(2, {c.DROPPED_MALFORMED_ITEM: 2})
    (job,) = await queued(redis)
    assert [n.get("lifecycleEvent") for n in job.payload["items"]] == [None, "bogus"]
    assert all("clientState" not in n for n in job.payload["items"])
    assert secret not in job.model_dump_json()


async def test_nothing_valid_stores_nothing(redis: aioredis.Redis) -> None:
    secret = await register(redis, "sub-a")
    assert await _handle(redis, [item("sub-a", "wrong" + secret[5:])]) == Outcome(0, {c.DROPPED_CLIENT_STATE: 1})
    assert await queued(redis) == []


async def test_a_lifecycle_event_makes_its_batch_high_priority(redis: aioredis.Redis) -> None:
    secret = await register(redis, "sub-a")
    event = {"subscriptionId": "sub-a", "clientState": secret, "tenantId": TENANT, "lifecycleEvent": "missed"}
    await _handle(redis, [item("sub-a", secret), event])
    (job,) = await queued(redis)
    assert job.priority == 8
    assert [n.get("lifecycleEvent") for n in job.payload["items"]] == [None, "missed"]
