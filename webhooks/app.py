"""The receiver's ASGI adapter: routes, body limit and status codes; the logic is in receiver.py
and validation.py (plain functions with their own tests).

    POST /webhooks/graph             change notifications
    POST /webhooks/graph/lifecycle   lifecycle events (reauthorizationRequired, subscriptionRemoved, missed)
    GET  /api/queue/health           200 for deploy health checks (the ops API is a later issue)

Plain ASGI rather than a framework: this path has a p99 budget well under 100 ms and does
little, so it pays for nothing it does not use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import redis.asyncio as aioredis
from starlette.types import Receive, Scope, Send

from graphworks_core.clock import Clock, SystemClock
from graphworks_core.settings import Settings, load_settings
from graphworks_core.startup_heap import freeze_startup_heap
from webhooks.receiver import Receiver, Unavailable
from webhooks.redis_conn import receiver_redis
from webhooks.tokens import TokenValidator
from webhooks.validation import BadDelivery, check_content_type, parse_delivery, validation_token
from worker.queue import JobQueue
from worker.subscriptions import counters as c
from worker.subscriptions.counters import Counters
from worker.subscriptions.registry import SubscriptionRegistry

log = logging.getLogger("graphworks.webhooks")

NOTIFY_PATH = "/webhooks/graph"
LIFECYCLE_PATH = "/webhooks/graph/lifecycle"
HEALTH_PATH = "/api/queue/health"
FLUSH_EVERY_S = 1.0


async def _respond(
    send: Send, status: int, body: bytes = b"", content_type: bytes = b"text/plain; charset=utf-8"
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The body, or BadDelivery(413) as soon as it is known to be over `limit` (never read in full)."""
    length = _header(scope, b"content-length")
    if length is not None and length.strip().isdigit() and int(length) > limit:
        raise BadDelivery(413, c.REJECTED_TOO_LARGE, "body over the limit")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:  # a chunked body (or a lying Content-Length): stop reading here
            raise BadDelivery(413, c.REJECTED_TOO_LARGE, "body over the limit")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


class ReceiverApp:
    """One per process; holds the Redis client, the counters and the token validator."""

    def __init__(
        self,
        settings: Settings,
        *,
        redis: aioredis.Redis | None = None,
        clock: Clock | None = None,
        tokens: TokenValidator | None = None,
    ) -> None:
        self.settings = settings
        if redis is None:
            if not settings.redis_configured:
                raise ValueError(
                    "REDIS_URL (or REDIS_SENTINELS) is not set: the receiver stores notifications as jobs there"
                )
            redis = receiver_redis(settings)
        self.redis = redis
        self.counters = Counters()
        queue = JobQueue.from_settings(settings, redis, clock or SystemClock(), acknowledged=True)
        if tokens is None and settings.graph_client_id:
            tokens = TokenValidator(
                settings.webhook_jwks_url, settings.graph_client_id, cache_s=settings.webhook_jwks_cache_s
            )
        self.receiver = Receiver(
            SubscriptionRegistry(redis),
            queue,
            self.counters,
            tokens,
            settings.webhook_persist_deadline_s,
            settings.graph_tenant_id,
        )
        self._flusher: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_forever())
        path = scope["path"].rstrip("/") or "/"
        if path == HEALTH_PATH:
            await _respond(send, 200, b'{"ok":true}', b"application/json")
        elif path in (NOTIFY_PATH, LIFECYCLE_PATH):
            if scope["method"] != "POST":
                await _respond(send, 405, b"POST only")
                return
            await self._webhook(scope, receive, send)
        else:
            await _respond(send, 404, b"not found")

    async def _webhook(self, scope: Scope, receive: Receive, send: Send) -> None:
        settings = self.settings
        try:
            # The handshake comes before every other check (Graph sends it with no JSON body).
            token = validation_token(
                scope.get("query_string", b""), max_chars=settings.webhook_validation_token_max_chars
            )
            if token is not None:
                self.counters.add(c.HANDSHAKES)
                await _respond(send, 200, token.encode())
                return
            check_content_type(_header(scope, b"content-type"))
            delivery = parse_delivery(await read_body(scope, receive, settings.webhook_max_body_bytes))
        except BadDelivery as bad:
            self.counters.add(bad.counter)
            log.info("refused delivery: %d %s", bad.status, bad.message)
            await _respond(send, bad.status, bad.message.encode())
            return
        try:
            await self.receiver.handle(delivery)
        except Unavailable:
            await _respond(send, 503, b"not persisted; redeliver")
            return
        await _respond(send, 202)

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            await self.counters.flush(self.redis)

    async def aclose(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        with contextlib.suppress(aioredis.RedisError, OSError):
            await self.counters.flush(self.redis)
        await self.redis.aclose()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                freeze_startup_heap()  # a full GC pass over the imports would be a p99 outlier
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_app() -> ReceiverApp:
    """uvicorn's factory (`webhooks.app:create_app`): settings from the environment."""
    return ReceiverApp(load_settings())
