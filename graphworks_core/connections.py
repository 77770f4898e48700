"""Redis connections as every component makes them: timeouts, keepalive and retry with backoff
set from the settings, never redis-py's defaults (no socket timeout: a blackholed Redis hangs a
command forever; no retry: one reset fails it).

A command that fails with a connection error or timeout is retried by redis-py itself, with
exponential backoff (50 ms doubling, at most 1 s between tries), `retries` times; what outlasts
that reaches the caller, which rides the outage out its own way (the worker's loops back off and
reconnect, the enqueue client raises QueueUnavailable after REDIS_ENQUEUE_TIMEOUT_S, the
receiver answers 503).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from graphworks_core.settings import Settings

# What "Redis is unreachable" looks like to a caller: redis-py's errors and the OS's.
UNREACHABLE: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)
# redis-py's alone: raised inside a job, they say Redis is down, not that the job failed (Graph's
# network errors arrive as httpx's own).
REDIS_DOWN: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError)


def redis_client(
    settings: Settings,
    *,
    url: str | None = None,
    retries: int = 3,
    connection_class: type[Connection] | None = None,
    socket_timeout: bool = True,
    connect_timeout_s: float | None = None,
) -> aioredis.Redis:
    """A client for REDIS_URL (or `url`) with the settings' timeouts; `retries` per command.

    `socket_timeout=False` is for a caller that bounds every call itself (the receiver's persist
    deadline): redis-py's socket timeout wraps each read in a timeout of its own, which costs.
    """
    target = url or settings.redis_url
    if not target:
        raise ValueError("REDIS_URL is not set")
    options: dict[str, Any] = {
        "socket_timeout": settings.redis_socket_timeout_s if socket_timeout else None,
        "socket_connect_timeout": connect_timeout_s or settings.redis_connect_timeout_s,
        "socket_keepalive": True,
        "health_check_interval": 30,
        "retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), retries),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError, ConnectionError, OSError],
    }
    if connection_class is not None:
        options["connection_class"] = connection_class
    client: aioredis.Redis = aioredis.Redis.from_url(target, **options)
    return client


def display_url(url: str | None) -> str:
    """The URL without its password, for messages and logs."""
    if not url:
        return "(REDIS_URL unset)"
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    netloc = f"{userinfo.split(':', 1)[0]}:***@{hostport}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
