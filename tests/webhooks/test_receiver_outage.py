"""Redis down or slow: the receiver answers 503 (Graph redelivers) well inside 3 s, then recovers."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import redis.asyncio as aioredis

from graphsim.server import SimServer
from graphworks.embedded_redis import start_redis
from tests.webhooks.conftest import receiver_server, webhook_settings
from tests.webhooks.helpers import item, queued, queued_notifications, register
from webhooks.app import ReceiverApp
from worker.subscriptions import counters as c


async def _post(url: str, body: object) -> tuple[int, float]:
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=5) as http:
        r = await http.post(url, json=body)
    return r.status_code, time.monotonic() - started


async def test_redis_stopped_mid_test_gives_503_then_recovers(graphsim: SimServer, key_dir: Path) -> None:
    private = start_redis()
    port = private.port
    app = ReceiverApp(webhook_settings(private.url, graphsim, key_dir))
    server = receiver_server(app)
    url = f"{server.url}/webhooks/graph"
    client = aioredis.Redis.from_url(private.url)
    try:
        secret = await register(client, "sub-a")
        assert (await _post(url, {"value": [item("sub-a", secret)]}))[0] == 202
        assert len(await queued(client)) == 1
        await client.aclose()

        private.stop()
        status, took = await _post(url, {"value": [item("sub-a", secret)]})
        assert status == 503
        assert took < 2.0  # well inside Graph's 3 s
        assert app.counters.totals[c.UNAVAILABLE] == 1

        private = start_redis(port=port)  # same address: the receiver's client reconnects by itself
        client = aioredis.Redis.from_url(private.url)
        await register(client, "sub-a", secret=secret)  # the new server starts empty (no AOF here)
        assert (await _post(url, {"value": [item("sub-a", secret, resource="Users/u-1/Messages/m-9")]}))[0] == 202
        (stored,) = await queued_notifications(client)
        assert stored["resource"] == "Users/u-1/Messages/m-9"
    finally:
        server.stop()
        await client.aclose()
        private.stop()


async def test_redis_slower_than_the_deadline_gives_503(
    redis: aioredis.Redis, redis_url: str, graphsim: SimServer, key_dir: Path
) -> None:
    app = ReceiverApp(webhook_settings(redis_url, graphsim, key_dir, webhook_persist_deadline_s=0.3))
    server = receiver_server(app)
    url = f"{server.url}/webhooks/graph"
    try:
        secret = await register(redis, "sub-a")
        await redis.execute_command("CLIENT", "PAUSE", "5000", "WRITE")  # reads answer, writes hang
        try:
            status, took = await _post(url, {"value": [item("sub-a", secret)]})
        finally:
            await redis.execute_command("CLIENT", "UNPAUSE")
        assert status == 503
        assert 0.3 <= took < 1.5
        assert (await _post(url, {"value": [item("sub-a", secret)]}))[0] == 202
    finally:
        server.stop()
