"""The floor for bench/webhooks_receiver.py: the least a receiver that checks items and persists
before answering can do. It parses the JSON body (each item's clientState can only be checked
once the body is parsed) and stores the body in Redis in one round trip, then answers 202. No
checks, no jobs: what is left between this and the bare handler is the cost of parsing and
persisting alone, which no receiver can skip."""

from __future__ import annotations

import json
import os

import redis.asyncio as aioredis
from starlette.types import Receive, Scope, Send
from webhooks_bare import not_http  # served with --app-dir bench, as the bare handler is

_redis: aioredis.Redis | None = None


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    global _redis
    if await not_http(scope, receive, send):
        return
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(chunks)
    json.loads(body)
    if _redis is None:
        _redis = aioredis.Redis.from_url(os.environ["REDIS_URL"])
    await _redis.rpush("graphworks:bench:floor", body)
    await send({"type": "http.response.start", "status": 202, "headers": [(b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})
