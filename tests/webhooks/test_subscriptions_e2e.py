"""End to end: `graphworks subscriptions create` against graphsim, the handshake against the running
receiver, notifications fired by graphsim becoming jobs, and the notification processor running them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from datetime import datetime
from urllib.parse import unquote, urlsplit

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from graphsim.server import SimServer
from graphworks_core import keys
from graphworks_core.errors import GraphHTTPError
from graphworks_core.payloads import Notification, Sync
from processors.parts.sync_targets import target_for
from tests.integration.conftest import Pipeline, eventually
from tests.webhooks.conftest import Receiving, manager_for, receiver_server
from tests.webhooks.helpers import queued
from worker.subscriptions import counters as c
from worker.subscriptions.jobs import idempotency_key
from worker.subscriptions.registry import SubscriptionRegistry


async def _completed(pipe: Pipeline, job_type: str, n: int) -> bool:
    snap = await pipe.stats.snapshot()
    return snap.by_type.get(job_type, {}).get("completed", 0) >= n


async def _fire(sim: SimServer, path: str, body: dict[str, object]) -> dict[str, object]:
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.post(f"{sim.root_url}/_sim/subscriptions/{path}", json=body)
    r.raise_for_status()
    result: dict[str, object] = r.json()
    return result


def _cli_create(pipe: Pipeline, receiver: Receiving, resource: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "REDIS_URL": pipe.settings.redis_url or "",
        "GRAPH_BASE_URL": pipe.sim.base_url,
        "GRAPH_STATIC_TOKEN": "test-token",
    }
    args = ["--resource", resource, "--change-type", "created,updated", "--notification-url", receiver.notify_url,
            "--lifecycle-url", receiver.lifecycle_url]  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "graphworks", "subscriptions", "create", *args],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


async def test_cli_create_handshake_notifications_jobs_processor(notif_pipeline: Pipeline, receiver: Receiving) -> None:
    pipe = notif_pipeline
    started = time.time()
    done = await asyncio.to_thread(_cli_create, pipe, receiver, "users/u-1/messages")
    assert done.returncode == 0, done.stderr
    sub_id = done.stdout.strip()

    (post,) = [r for r in pipe.sim.state.requests() if r.method == "POST" and r.path == "/subscriptions"]
    assert post.status == 201
    asked = datetime.fromisoformat(post.body["expirationDateTime"].replace("Z", "+00:00")).timestamp()
    assert abs(asked - (started + 10_080 * 60 - 30)) < 30  # Outlook message: the documented 10,080 minutes
    assert len(post.body["clientState"]) == 128
    assert receiver.app.counters.totals[c.HANDSHAKES] == 2  # notification and lifecycle URLs
    record = await SubscriptionRegistry(pipe.redis).get(sub_id)
    assert record is not None and record.resource == "users/u-1/messages"

    items = [
        {"resource": "Users/u-1/Messages/m-1", "resourceData": {"id": "m-1"}},
        {"resource": "Users/u-1/Messages/m-2", "resourceData": {"id": "m-2"}},
        {"resource": "Users/u-1/Messages/m-1", "resourceData": {"id": "m-1"}},  # Graph redelivers
    ]
    assert (await _fire(pipe.sim, f"{sub_id}/notify", {"items": items}))["status"] == 202
    assert (await _fire(pipe.sim, f"{sub_id}/notify", {"items": items[:1]}))["status"] == 202  # and again
    # One job per delivery: the items of each are routed together.
    await eventually(lambda: _completed(pipe, "notification_batch", 2), what="2 notification_batch jobs run")

    inbound_ids = set()
    for message in ("m-1", "m-2"):
        n = Notification(subscription_id=sub_id, change_type="created", resource=f"Users/u-1/Messages/{message}",
                         resource_data={"id": message})  # fmt: skip
        job_id = await pipe.redis.get(keys.idempotency(idempotency_key(n)))
        assert job_id is not None
        inbound_ids.add(job_id)
    assert len(inbound_ids) == 2  # four deliveries of two messages: two inbound jobs
    assert (await c.read(pipe.redis))["duplicates"] == 2


async def _wrong_echo(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"not the token"})


async def test_graphsim_refuses_a_subscription_whose_endpoint_echoes_wrong(notif_pipeline: Pipeline) -> None:
    server = receiver_server(_wrong_echo)
    try:
        with pytest.raises(GraphHTTPError) as info:
            await manager_for(notif_pipeline).create("users/u-1/messages", "created", f"{server.url}/webhooks/graph")
    finally:
        server.stop()
    assert info.value.status == 400 and "exactly match" in (info.value.message or "")
    assert await SubscriptionRegistry(notif_pipeline.redis).all() == []


async def test_lifecycle_events_do_what_graph_prescribes(notif_pipeline: Pipeline, receiver: Receiving) -> None:
    pipe = notif_pipeline
    manager = manager_for(pipe)
    record = await manager.create(
        "users/u-1/messages", "created", receiver.notify_url, lifecycle_url=receiver.lifecycle_url
    )

    assert (await _fire(pipe.sim, f"{record.id}/lifecycle", {"event": "reauthorizationRequired"}))["status"] == 202
    await eventually(lambda: _completed(pipe, "notification", 1), what="reauthorization handled")
    patches = [r for r in pipe.sim.state.requests() if r.method == "PATCH"]
    assert [p.path for p in patches] == [f"/subscriptions/{record.id}"]

    assert (await _fire(pipe.sim, f"{record.id}/lifecycle", {"event": "missed"}))["status"] == 202
    await eventually(lambda: _completed(pipe, "notification", 2), what="missed handled")
    inbox = Sync(resource="mail", owner="u-1", folder="inbox")
    await eventually(lambda: _sync_enqueued(pipe, inbox), what="a sync of u-1's inbox")

    assert (await _fire(pipe.sim, f"{record.id}/lifecycle", {"event": "subscriptionRemoved"}))["status"] == 202
    await eventually(lambda: _completed(pipe, "notification", 3), what="removal handled")
    (current,) = await SubscriptionRegistry(pipe.redis).all()
    assert current.id != record.id and current.resource == record.resource
    assert pipe.sim.state.subscriptions.get(current.id) is not None  # recreated at Graph, handshake passed
    assert len([r for r in pipe.sim.state.requests() if r.method == "POST" and r.path == "/subscriptions"]) == 2


async def _sync_enqueued(pipe: Pipeline, expected: Sync) -> bool:
    """The sync job of `expected`'s collection (resource, owner, folder, channel) is queued,
    dead-lettered, or (the sync processor is registered) ran: graphsim saw that collection's delta query."""

    def same(payload: object) -> bool:
        if not isinstance(payload, dict):
            return False
        got = Sync.model_validate(payload)
        return (got.resource, got.owner, got.folder, got.channel_id) == (
            expected.resource, expected.owner, expected.folder, expected.channel_id,
        )  # fmt: skip

    if any(j.type == "sync" and same(j.payload) for j in await queued(pipe.redis)):
        return True
    if any(e.type == "sync" and same(e.payload) for e in await pipe.dead_letters()):
        return True
    delta_url = target_for(expected, pipe.sim.base_url).initial_url
    delta_path = unquote(urlsplit(delta_url).path).removeprefix(urlsplit(pipe.sim.base_url).path)
    return any(r.method == "GET" and r.path == delta_path for r in pipe.sim.state.requests())


async def test_rich_notifications_are_verified_and_decrypted_by_the_processor(
    notif_pipeline: Pipeline, receiver: Receiving
) -> None:
    pipe = notif_pipeline
    record = await manager_for(pipe).create(
        "chats/19:abc@thread.v2/messages", "created", receiver.notify_url,
        lifecycle_url=receiver.lifecycle_url, include_resource_data=True,
    )  # fmt: skip
    post = [r for r in pipe.sim.state.requests() if r.method == "POST" and r.path == "/subscriptions"][-1]
    assert post.body["encryptionCertificateId"] == "graphworks-test-cert" and post.body["includeResourceData"]
    content = {"id": "1612", "body": {"content": "secret words"}}
    resource = "chats('19:abc@thread.v2')/messages('1612')"
    good = {"resource": resource, "resourceData": {"id": "1612"}, "content": content}
    assert (await _fire(pipe.sim, f"{record.id}/notify", good))["status"] == 202
    assert (await _fire(pipe.sim, f"{record.id}/notify", {**good, "tamper": "dataSignature"}))["status"] == 202
    assert (await _fire(pipe.sim, f"{record.id}/notify", {**good, "tokenExpired": True}))["status"] == 202
    await eventually(lambda: _completed(pipe, "notification_batch", 2), what="two rich notifications run")

    counts = await c.read(pipe.redis)
    assert counts[c.DROPPED_DATA_SIGNATURE] == 1
    assert receiver.app.counters.totals[c.DROPPED_VALIDATION_TOKEN] == 1  # never became a job
    n = Notification(subscription_id=record.id, change_type="created", resource=resource, resource_data={"id": "1612"})
    assert await pipe.redis.get(keys.idempotency(idempotency_key(n))) is not None


async def test_renewal_cron_renews_and_recreates(notif_pipeline: Pipeline, receiver: Receiving) -> None:
    from worker.subscriptions.renewal import renew_subscriptions

    pipe = notif_pipeline
    manager = manager_for(pipe)
    kept = await manager.create(
        "chats/19:a/messages", "created", receiver.notify_url, lifecycle_url=receiver.lifecycle_url
    )
    lapsed = await manager.create(
        "teams/t-1/channels/19:c/messages", "created", receiver.notify_url, lifecycle_url=receiver.lifecycle_url
    )
    await _fire_expire(pipe.sim, lapsed.id)  # Graph lost it: PATCH will answer 404

    # Three days less 20 minutes later: both are inside the 30-minute margin.
    step = kept.expiration.timestamp() - pipe.clock.now() - 20 * 60
    pipe.clock.advance(step)
    pipe.sim.state.subscriptions.advance(step)
    result = await renew_subscriptions({"runner": pipe.runner})
    assert result["renewed"] == [kept.id]
    assert list(result["recreated"]) == [lapsed.id] and result["failed"] == [], result
    by_id = {r.id: r for r in await SubscriptionRegistry(pipe.redis).all()}
    assert by_id[kept.id].expiration > kept.expiration
    assert lapsed.id not in by_id and result["recreated"][lapsed.id] in by_id
    channel = Sync(resource="channel_messages", owner="t-1", channel_id="19:c")
    await eventually(lambda: _sync_enqueued(pipe, channel), what="a sync of channel 19:c of team t-1")

    names = [job.name for job in pipe.worker.cron_jobs]
    assert "renew_subscriptions" in names


async def _fire_expire(sim: SimServer, sub_id: str) -> None:
    async with httpx.AsyncClient() as http:
        (await http.post(f"{sim.root_url}/_sim/subscriptions/{sub_id}/expire")).raise_for_status()
