"""The receiver over real HTTP (uvicorn) on a real Redis: handshake, bad input, clientState, persistence."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from graphsim.server import SimServer
from graphworks_core import keys
from tests.webhooks.conftest import Receiving, receiver_server, webhook_settings
from tests.webhooks.helpers import TENANT, commands_processed, item, queued, queued_notifications, register
from webhooks.app import ReceiverApp
from worker.subscriptions import counters as c


@pytest.mark.parametrize("path", ["/webhooks/graph", "/webhooks/graph/lifecycle"])
async def test_validation_handshake_echoes_the_decoded_token(receiver: Receiving, path: str) -> None:
    token = "Validation: Testing client application reachability for subscription Request-Id: 5f1d <&>"
    async with httpx.AsyncClient() as http:
        # Graph sends it as text/plain with no body: the handshake comes before any other check.
        r = await http.post(
            receiver.url + path, params={"validationToken": token}, headers={"Content-Type": "text/plain"}
        )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert r.text == token


async def test_bad_input_is_refused_counted_and_never_reaches_redis(
    receiver: Receiving, redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = receiver.notify_url
    limit = receiver.settings.webhook_max_body_bytes
    # The counters' background flush (started by the first request, every FLUSH_EVERY_S) would add
    # its own commands to the count on a slow run: keep it from firing here and flush by hand below.
    monkeypatch.setattr("webhooks.app.FLUSH_EVERY_S", 3600.0)
    before = await commands_processed(redis)
    async with httpx.AsyncClient() as http:
        malformed = await http.post(url, content=b'{"value": [', headers={"Content-Type": "application/json"})
        not_collection = await http.post(url, json=[1, 2])
        wrong_type = await http.post(url, content=b'{"value": []}', headers={"Content-Type": "text/plain"})
        too_long = await http.post(url, params={"validationToken": "x" * 5000})
        too_big = await http.post(url, content=b" " * (limit + 1), headers={"Content-Type": "application/json"})
    assert (malformed.status_code, not_collection.status_code) == (400, 400)
    assert wrong_type.status_code == 415
    assert too_long.status_code == 400
    assert too_big.status_code == 413
    # INFO itself is the only command Redis processed in between.
    assert await commands_processed(redis) - before == 1
    totals = receiver.app.counters.totals
    assert totals[c.REJECTED_MALFORMED_JSON] == 2
    assert totals[c.REJECTED_CONTENT_TYPE] == 1
    assert totals[c.REJECTED_VALIDATION_TOKEN] == 1
    assert totals[c.REJECTED_TOO_LARGE] == 1
    assert totals[c.RECEIVED] == 0
    # Only the flush, driven here, writes the rejections to Redis.
    assert await c.read(redis) == {}
    assert await receiver.app.counters.flush(redis)
    assert (await c.read(redis))[c.REJECTED_MALFORMED_JSON] == 2


BOUNDARY_LIMIT = 64 * 1024


@pytest.fixture
def small_receiver(redis: aioredis.Redis, redis_url: str, graphsim: SimServer, key_dir: Path) -> Iterator[Receiving]:
    """The receiver over HTTP with a 64 KiB body limit (a body at the limit is quick to send)."""
    settings = webhook_settings(redis_url, graphsim, key_dir, webhook_max_body_bytes=BOUNDARY_LIMIT)
    app = ReceiverApp(settings)
    server = receiver_server(app)
    try:
        yield Receiving(server.url, app, settings)
    finally:
        server.stop()


def _delivery_of_size(item_: dict[str, object], size: int) -> bytes:
    """A delivery of `item_` padded with JSON whitespace to exactly `size` bytes."""
    body = json.dumps({"value": [item_]}).encode()
    assert len(body) < size
    return body + b" " * (size - len(body))


async def _pieces(body: bytes, piece: int = 4096) -> AsyncIterator[bytes]:
    """`body` as an async stream: httpx sends it chunked, with no Content-Length."""
    for start in range(0, len(body), piece):
        yield body[start : start + piece]


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
@pytest.mark.parametrize(("over", "status"), [(0, 202), (1, 413)])
async def test_a_body_of_exactly_the_limit_is_taken_and_one_byte_more_is_413(
    small_receiver: Receiving, redis: aioredis.Redis, framing: str, over: int, status: int
) -> None:
    limit = small_receiver.settings.webhook_max_body_bytes
    assert limit == BOUNDARY_LIMIT
    secret = await register(redis, "sub-a")
    body = _delivery_of_size(item("sub-a", secret), limit + over)
    assert len(body) == limit + over
    content = body if framing == "content-length" else _pieces(body)
    async with httpx.AsyncClient() as http:
        r = await http.post(small_receiver.notify_url, content=content, headers={"Content-Type": "application/json"})
    sent_as = r.request.headers
    if framing == "chunked":
        assert sent_as.get("transfer-encoding") == "chunked" and "content-length" not in sent_as
    else:
        assert sent_as["content-length"] == str(limit + over)
    assert r.status_code == status, r.text
    totals = small_receiver.app.counters.totals
    if status == 202:  # read in full and stored
        (job,) = await queued(redis)
        assert [i["subscriptionId"] for i in job.payload["items"]] == ["sub-a"]
        assert (totals[c.ACCEPTED], totals[c.REJECTED_TOO_LARGE]) == (1, 0)
    else:
        assert await queued(redis) == []
        assert (totals[c.RECEIVED], totals[c.REJECTED_TOO_LARGE]) == (0, 1)


def _chunked_upload(port: int, limit: int) -> tuple[str, int]:
    """Stream a chunked body past the limit without ever ending it; (status line, bytes sent)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(
        b"POST /webhooks/graph HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"x" * 4096
    sent = 0
    answer = b""
    sock.setblocking(False)
    while sent < limit * 64 and not answer:  # the body never ends: a receiver reading it all never answers
        with contextlib.suppress(BlockingIOError):
            answer = sock.recv(1024)
        if not answer:
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except (BlockingIOError, OSError):
                time.sleep(0.001)
                continue
            sent += len(chunk)
    sock.settimeout(5)
    with contextlib.suppress(OSError):
        answer = answer or sock.recv(1024)
    sock.close()
    return answer.split(b"\r\n", 1)[0].decode(), sent


async def test_chunked_body_over_the_limit_is_413_before_it_ends(
    redis: aioredis.Redis, redis_url: str, graphsim: SimServer, key_dir: Path
) -> None:
    limit = 64 * 1024
    app = ReceiverApp(webhook_settings(redis_url, graphsim, key_dir, webhook_max_body_bytes=limit))
    server = receiver_server(app)
    try:
        status_line, sent = await asyncio.to_thread(_chunked_upload, server.port, limit)
    finally:
        server.stop()
    # The answer came while the body was still open (it never ends), so the receiver stopped reading.
    assert " 413 " in status_line + " ", (status_line, sent)
    assert app.counters.totals[c.REJECTED_TOO_LARGE] == 1


def _announce_huge_body(port: int) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            b"POST /webhooks/graph HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 10000000000\r\n\r\n{"
        )
        return sock.recv(1024).split(b"\r\n", 1)[0].decode()


async def test_announced_body_over_the_limit_is_413_without_reading_it(receiver: Receiving) -> None:
    status_line = await asyncio.to_thread(_announce_huge_body, int(receiver.url.rsplit(":", 1)[1]))
    assert " 413 " in status_line + " "


async def test_mixed_delivery_keeps_only_the_valid_items(receiver: Receiving, redis: aioredis.Redis) -> None:
    secret = await register(redis, "sub-a")
    other_secret = await register(redis, "sub-b")
    body = {
        "value": [
            item("sub-a", secret, resource="Users/u-1/Messages/m-1"),
            item("sub-a", other_secret),  # another subscription's secret
            item("sub-a", "x" * 128),  # wrong clientState
            item("sub-unknown", secret),  # unknown subscription
            item("sub-a", secret, tenantId="other-tenant"),  # unknown tenant
            item("sub-a", None),  # no clientState at all
            {"no": "subscription"},  # malformed item
            item("sub-b", other_secret, resource="Users/u-1/Messages/m-2", resourceData={"id": "m-2"}),
        ]
    }
    async with httpx.AsyncClient() as http:
        r = await http.post(receiver.notify_url, json=body)
    assert r.status_code == 202
    (job,) = await queued(redis)  # the delivery's valid items, in one job
    assert (job.type, job.priority) == ("notification_batch", 5)
    # As Graph sent them, clientState removed (the batch processor validates each)
    kept = [{k: v for k, v in i.items() if k != "clientState"} for i in (body["value"][0], body["value"][-1])]
    assert job.payload == {"items": kept}
    assert "clientState" not in json.dumps(job.payload)
    totals = receiver.app.counters.totals
    assert totals[c.ACCEPTED] == 2
    assert totals[c.DROPPED_CLIENT_STATE] == 3
    assert totals[c.DROPPED_UNKNOWN_SUBSCRIPTION] == 1
    assert totals[c.DROPPED_UNKNOWN_TENANT] == 1
    assert totals[c.DROPPED_MALFORMED_ITEM] == 1


async def test_delivery_with_nothing_valid_still_gets_202_and_stores_nothing(
    receiver: Receiving, redis: aioredis.Redis
) -> None:
    await register(redis, "sub-a")
    async with httpx.AsyncClient() as http:
        r = await http.post(receiver.notify_url, json={"value": [item("sub-a", "wrong")]})
    assert r.status_code == 202
    assert await queued(redis) == []


async def test_lifecycle_event_becomes_a_high_priority_job(receiver: Receiving, redis: aioredis.Redis) -> None:
    secret = await register(redis, "sub-a")
    event = {
        "subscriptionId": "sub-a",
        "subscriptionExpirationDateTime": "2030-01-01T00:00:00Z",
        "tenantId": TENANT,
        "clientState": secret,
        "lifecycleEvent": "reauthorizationRequired",
    }
    async with httpx.AsyncClient() as http:
        r = await http.post(receiver.lifecycle_url, json={"value": [event]})
    assert r.status_code == 202
    (job,) = await queued(redis)
    assert (job.type, job.priority) == ("notification_batch", 8)
    assert [n["lifecycleEvent"] for n in job.payload["items"]] == ["reauthorizationRequired"]


async def test_rich_items_need_valid_validation_tokens(
    receiver: Receiving, redis: aioredis.Redis, graphsim: SimServer
) -> None:
    secret = await register(redis, "sub-rich")
    store = graphsim.state.subscriptions
    enc = {"data": "AAAA", "dataSignature": "AAAA", "dataKey": "AAAA", "encryptionCertificateId": "c"}
    rich = item("sub-rich", secret, encryptedContent=enc)
    deliveries = {
        "valid": [store.validation_token()],
        "expired": [store.validation_token(expired=True)],
        "wrong audience": [store.validation_token(audience="someone-else")],
        "one of two bad": [store.validation_token(), store.validation_token(expired=True)],
        "none": [],
        "garbage": ["not.a.jwt"],
    }
    async with httpx.AsyncClient() as http:
        for tokens in deliveries.values():
            r = await http.post(receiver.notify_url, json={"value": [rich], "validationTokens": tokens})
            assert r.status_code == 202
    (rich_stored,) = await queued_notifications(redis)
    assert rich_stored["encryptedContent"] == enc
    assert receiver.app.counters.totals[c.DROPPED_VALIDATION_TOKEN] == 5


async def test_counters_are_flushed_to_redis(receiver: Receiving, redis: aioredis.Redis) -> None:
    async with httpx.AsyncClient() as http:
        await http.post(receiver.notify_url, content=b"{", headers={"Content-Type": "application/json"})
    # The flusher runs in the receiver's loop every second; flush now from ours instead.
    assert await receiver.app.counters.flush(redis)
    assert (await c.read(redis))[c.REJECTED_MALFORMED_JSON] == 1
    assert await redis.exists(keys.WEBHOOK_COUNTERS)
