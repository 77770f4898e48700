"""The notification_batch processor on a real Redis: change notifications routed inline in one write,
re-runs and redeliveries adding nothing, tampered rich items dropped alone, lifecycle events fanned out once."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from graphsim.server import SimServer
from graphsim.subscriptions import encrypt_content
from graphworks_core import keys
from graphworks_core.clock import FakeClock
from graphworks_core.envelope import Envelope
from graphworks_core.payloads import Notification, NotificationBatch
from graphworks_core.settings import Settings
from processors.notification import handle_notification
from processors.notification_batch import NotificationBatchResult, handle_notification_batch
from tests.webhooks.conftest import CERT_ID, key_store, webhook_settings
from tests.webhooks.helpers import TENANT, queued
from worker.context import JobContext
from worker.graph.auth import StaticTokenProvider
from worker.graph.client import GraphClient
from worker.queue import JobQueue, Scheduled
from worker.subscriptions import counters as c
from worker.subscriptions.jobs import idempotency_key, lifecycle_key

MAIL = Notification(subscription_id="sub-a", tenant_id=TENANT, change_type="created",
                    resource="Users/u-1/Messages/m-1", resource_data={"id": "m-1"})  # fmt: skip
CHAT = Notification(subscription_id="sub-c", change_type="created", resource="chats('19:a@thread.v2')/messages('7')",
                    resource_data={"id": "7"})  # fmt: skip
EVENT = Notification(subscription_id="sub-e", change_type="updated", resource="Users/u-1/Events/E1",
                     resource_data={"id": "E1"})  # fmt: skip
PRESENCE = Notification(subscription_id="sub-p", change_type="updated", resource="communications/presences/u-1")
REAUTH = Notification(subscription_id="sub-a", tenant_id=TENANT, lifecycle_event="reauthorizationRequired",
                      subscription_expiration="2030-01-01T00:00:00Z")  # fmt: skip


@pytest.fixture
def settings(redis_url: str, graphsim: SimServer, key_dir: Path) -> Settings:
    return webhook_settings(redis_url, graphsim, key_dir)


@pytest.fixture
async def graph(settings: Settings) -> AsyncIterator[GraphClient]:
    """Never called by change notifications; there because a JobContext carries one."""
    client = GraphClient(settings.graph_base, StaticTokenProvider("t"))
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def puts(monkeypatch: pytest.MonkeyPatch) -> list[list[Scheduled]]:
    """Every JobQueue.put call's jobs, in order (the calls still reach Redis)."""
    calls: list[list[Scheduled]] = []
    real = JobQueue.put

    async def recording(self: JobQueue, jobs: list[Scheduled]) -> list[str]:
        calls.append(list(jobs))
        return await real(self, jobs)

    monkeypatch.setattr(JobQueue, "put", recording)
    return calls


GRAPH_NAMES = {
    "subscription_id": "subscriptionId", "tenant_id": "tenantId", "change_type": "changeType", "resource": "resource",
    "resource_data": "resourceData", "lifecycle_event": "lifecycleEvent",
    "subscription_expiration": "subscriptionExpirationDateTime", "encrypted_content": "encryptedContent",
}  # fmt: skip


def as_graph(n: Notification) -> dict[str, object]:
    """The item as Graph delivers it (clientState already removed by the receiver)."""
    return {GRAPH_NAMES[k]: v for k, v in n.model_dump(mode="json", exclude_none=True).items()}


def _batch(*items: Notification | dict[str, object]) -> Envelope:
    """The envelope the receiver stores for a delivery of `items` (Graph's own field names)."""
    graph_items = [as_graph(i) if isinstance(i, Notification) else i for i in items]
    return Envelope(type="notification_batch", payload={"items": graph_items})


async def _run(env: Envelope, redis: aioredis.Redis, settings: Settings, graph: GraphClient) -> NotificationBatchResult:
    ctx = JobContext(graph, redis, settings, FakeClock(), env)
    return await handle_notification_batch(ctx, NotificationBatch.model_validate(env.payload))


async def _job_for(redis: aioredis.Redis, key: str) -> str | None:
    raw = await redis.get(keys.idempotency(key))
    return raw.decode() if raw is not None else None


async def test_change_notifications_are_routed_inline_in_one_write(
    redis: aioredis.Redis, settings: Settings, graph: GraphClient, puts: list[list[Scheduled]]
) -> None:
    result = await _run(_batch(MAIL, PRESENCE, CHAT, EVENT), redis, settings, graph)
    assert result == NotificationBatchResult(inbound=2, sync=1, unroutable=1)
    assert len(puts) == 1  # every routed job in one round trip
    stored = {j.idempotency_key: j for j in await queued(redis, settings.worker_queue)}
    assert len(stored) == 3
    for n, job_type in ((MAIL, "inbound"), (CHAT, "inbound"), (EVENT, "sync")):
        job = stored[idempotency_key(n)]  # the key a notification's job has always had
        assert job.type == job_type
        assert await _job_for(redis, idempotency_key(n)) == job.id
    # Unchanged from the one-job-per-notification days, so jobs stored before still catch redeliveries.
    parts = "sub-a\nUsers/u-1/Messages/m-1\ncreated\nm-1"
    assert idempotency_key(MAIL) == "notification:" + hashlib.sha256(parts.encode()).hexdigest()
    assert stored[idempotency_key(MAIL)].payload == {
        "resource": "Users/u-1/Messages/m-1", "tenant_id": TENANT, "subscription_id": "sub-a",
    }  # fmt: skip
    assert stored[idempotency_key(EVENT)].payload["resource"] == "calendar"
    assert (await c.read(redis))[c.UNROUTABLE] == 1


async def test_running_the_batch_again_writes_nothing_new(
    redis: aioredis.Redis, settings: Settings, graph: GraphClient
) -> None:
    env = _batch(MAIL, CHAT, EVENT)
    await _run(env, redis, settings, graph)
    before = await queued(redis, settings.worker_queue)
    again = await _run(env, redis, settings, graph)
    assert again == NotificationBatchResult(duplicate=3)
    assert await queued(redis, settings.worker_queue) == before
    assert (await c.read(redis))[c.DUPLICATES] == 3


async def test_a_redelivery_maps_onto_the_job_the_single_path_stored(
    redis: aioredis.Redis, settings: Settings, graph: GraphClient
) -> None:
    ctx = JobContext(graph, redis, settings, FakeClock(), Envelope(type="notification", payload={}))
    first = await handle_notification(ctx, MAIL)
    result = await _run(_batch(MAIL, CHAT, MAIL), redis, settings, graph)
    # MAIL was stored by the `notification` job; its second copy in the same delivery is a duplicate too.
    assert result == NotificationBatchResult(inbound=1, duplicate=2)
    assert await _job_for(redis, idempotency_key(MAIL)) == first.job_id
    assert len(await queued(redis, settings.worker_queue)) == 2


def _rich(key_dir: Path, message_id: str) -> Notification:
    key = key_store(key_dir).get(CERT_ID)
    assert key is not None
    enc = encrypt_content({"id": message_id}, key.certificate_base64(), CERT_ID)
    resource = f"chats('19:r')/messages('{message_id}')"
    return Notification(subscription_id="sub-r", change_type="created", resource=resource,
                        resource_data={"id": message_id}, encrypted_content=enc)  # fmt: skip


def _tampered(n: Notification) -> Notification:
    assert n.encrypted_content is not None
    sig = base64.b64decode(n.encrypted_content["dataSignature"])
    bad = base64.b64encode(bytes([sig[0] ^ 1]) + sig[1:]).decode()
    return n.model_copy(update={"encrypted_content": {**n.encrypted_content, "dataSignature": bad}})


async def test_a_tampered_rich_item_is_dropped_and_the_others_go_on(
    redis: aioredis.Redis, settings: Settings, graph: GraphClient, key_dir: Path
) -> None:
    good, bad = _rich(key_dir, "1"), _tampered(_rich(key_dir, "2"))
    result = await _run(_batch(good, bad, MAIL), redis, settings, graph)
    assert result == NotificationBatchResult(inbound=2, dropped=1)
    stored = [j.payload["resource"] for j in await queued(redis, settings.worker_queue)]
    assert sorted(stored) == sorted(["chats('19:r')/messages('1')", "Users/u-1/Messages/m-1"])
    assert await _job_for(redis, idempotency_key(bad)) is None
    assert (await c.read(redis))[c.DROPPED_DATA_SIGNATURE] == 1  # what the notification job counts


async def test_an_item_that_does_not_fit_the_model_is_dropped_alone(
    redis: aioredis.Redis, settings: Settings, graph: GraphClient
) -> None:
    odd = {"subscriptionId": "sub-a", "lifecycleEvent": "nonsense"}
    result = await _run(_batch(MAIL, odd, CHAT), redis, settings, graph)
    assert result == NotificationBatchResult(inbound=2, malformed=1)
    assert len(await queued(redis, settings.worker_queue)) == 2
    assert (await c.read(redis))[c.DROPPED_MALFORMED_ITEM] == 1


async def test_a_lifecycle_event_becomes_one_notification_job_however_often_the_batch_runs(
    redis: aioredis.Redis, settings: Settings, graph: GraphClient
) -> None:
    env = _batch(MAIL, REAUTH)
    assert await _run(env, redis, settings, graph) == NotificationBatchResult(inbound=1, lifecycle=1)
    assert await _run(env, redis, settings, graph) == NotificationBatchResult(duplicate=1, lifecycle=1)
    lifecycle = [j for j in await queued(redis, settings.worker_queue) if j.type == "notification"]
    assert len(lifecycle) == 1
    (job,) = lifecycle
    assert job.idempotency_key == lifecycle_key(env.id, 1) and job.priority == 8
    assert Notification.model_validate(job.payload) == REAUTH  # what the notification processor handles
    # Another delivery of the same event is another batch: Graph asked again, so it is handled again.
    await _run(_batch(REAUTH), redis, settings, graph)
    assert len([j for j in await queued(redis, settings.worker_queue) if j.type == "notification"]) == 2
